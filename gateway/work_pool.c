/* work_pool.c - see work_pool.h. One mutex + condvar guard a singly linked FIFO. */
#include "work_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct work_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct work_item *head, *tail;
	unsigned queued, capacity;
	int stopping;
	unsigned nthreads;
	pthread_t *threads;
};

static void *worker(void *arg)
{
	struct work_pool *p = arg;
	struct work_item *w;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		w = p->head;
		if (!w) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		p->head = w->next;
		if (!p->head)
			p->tail = NULL;
		p->queued--;
		pthread_mutex_unlock(&p->lock);
		w->next = NULL;
		w->fn(w);
	}
}

int work_pool_create(unsigned nthreads, unsigned capacity, struct work_pool **out)
{
	struct work_pool *p = calloc(1, sizeof(*p));
	int ret;

	if (!p)
		return -ENOMEM;
	if (!nthreads)
		nthreads = 1;
	p->capacity = capacity ? capacity : 1;
	p->threads = calloc(nthreads, sizeof(*p->threads));
	if (!p->threads) {
		ret = -ENOMEM;
		goto out_free_pool;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	for (p->nthreads = 0; p->nthreads < nthreads; p->nthreads++) {
		ret = -pthread_create(&p->threads[p->nthreads], NULL, worker, p);
		if (ret)
			goto out_join;
	}
	*out = p;
	return 0;

out_join:
	work_pool_destroy(p);
	return ret;
out_free_pool:
	free(p);
	return ret;
}

int work_pool_submit(struct work_pool *p, struct work_item *w)
{
	int ret = 0;

	w->next = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->stopping) {
		ret = -ESHUTDOWN;
	} else if (p->queued >= p->capacity) {
		ret = -EAGAIN;
	} else {
		if (p->tail)
			p->tail->next = w;
		else
			p->head = w;
		p->tail = w;
		p->queued++;
		pthread_cond_signal(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

unsigned work_pool_queued(struct work_pool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->queued;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void work_pool_destroy(struct work_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p->threads);
	free(p);
}
