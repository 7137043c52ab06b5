/* prefetch.h - a small bounded pool that reads ahead of sequential readers.
 *
 * A pool is a fixed set of worker threads, each with a scratch buffer allocated at
 * creation, and a ring of queued jobs of fixed capacity: submitting never allocates and
 * never blocks (a full ring refuses the job). A job is run(arg, off, len, scratch) on a
 * worker, then done(arg) (also for a job dropped unrun at destroy, so a reference it
 * holds is always released). The pool knows nothing of what is read: the caller's run
 * brings the range into whatever cache sits below it.
 *
 * A stream is the read-ahead state of one open file: prefetch_stream_next() tells from
 * each read which range to queue next. Callers serialise calls on one stream.
 * All functions return 0 or a negative errno.
 */
#ifndef CAIRN_PREFETCH_H
#define CAIRN_PREFETCH_H

#include <stddef.h>
#include <stdint.h>

struct prefetch_job {
	/* Read [off, off+len) into the cache below; scratch is the worker's own. */
	void (*run)(void *arg, uint64_t off, size_t len, void *scratch, size_t scratch_len);
	/* Called once after run, or instead of it when the job is dropped at destroy. */
	void (*done)(void *arg);
	void *arg;
	uint64_t off;
	size_t len;
};

struct prefetch;

/* workers threads with scratch_len bytes each, and room for queue_len queued jobs. */
int prefetch_create(unsigned workers, unsigned queue_len, size_t scratch_len,
		    struct prefetch **out);
/* Queue a job: -EAGAIN when the ring is full (nothing is taken), -ESHUTDOWN after
 * prefetch_destroy began. */
int prefetch_submit(struct prefetch *pf, const struct prefetch_job *job);
/* Stop: queued jobs are dropped (done() only), running ones finish; threads joined. */
void prefetch_destroy(struct prefetch *pf);

struct prefetch_stream {
	uint64_t last_end;  /* end of the last read */
	uint64_t ahead;     /* everything before it was queued already */
	unsigned hits;      /* reads in a row that looked sequential */
};

/* A read of [off, off+len) of a file of size bytes happened. A read that lands within
 * window bytes of the previous one's end (either side: the kernel's read-ahead requests
 * arrive out of order) counts as sequential; from the second such read on, [*from, *to)
 * gets the range to queue: from past what was queued before, up to window bytes past
 * this read, in whole units (unit: a power of two), clipped to size. *from ==
 * *to: nothing to queue. The caller queues, then calls prefetch_stream_queued() with
 * where it stopped (a full ring stops early; the rest is asked again next read). */
void prefetch_stream_next(struct prefetch_stream *s, uint64_t off, size_t len, uint64_t size,
			  uint64_t window, uint32_t unit, uint64_t *from, uint64_t *to);
void prefetch_stream_queued(struct prefetch_stream *s, uint64_t upto);

#endif
