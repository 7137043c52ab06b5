/* work_pool.h - a fixed set of worker threads draining one bounded FIFO of work items.
 *
 * Items are intrusive (no allocation per submit). fn runs on a worker thread; the
 * item belongs to fn from then on. Submit never blocks: -EAGAIN when the queue holds
 * `capacity` items, -ESHUTDOWN after destroy started.
 */
#ifndef CAIRN_WORK_POOL_H
#define CAIRN_WORK_POOL_H

struct work_item {
	struct work_item *next;
	void (*fn)(struct work_item *w);
};

struct work_pool;

/* Start nthreads workers (at least 1) with a queue of at most capacity items. */
int work_pool_create(unsigned nthreads, unsigned capacity, struct work_pool **out);
int work_pool_submit(struct work_pool *p, struct work_item *w);
/* Items queued now (for tests and stats). */
unsigned work_pool_queued(struct work_pool *p);
/* Run every item already queued, then stop and join the workers, and free the pool. */
void work_pool_destroy(struct work_pool *p);

#endif
