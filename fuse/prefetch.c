/* prefetch.c - see prefetch.h. Nothing here is stored: no on-disk format.
 *
 * The ring holds jobs[head .. head+count) modulo cap; one mutex guards it, one condition
 * wakes the workers. Workers take the oldest job first, so the nearest range of a stream
 * is read first.
 */
#include "prefetch.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct prefetch {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct prefetch_job *jobs;
	unsigned cap, head, count;
	int stop;
	unsigned nthreads;
	pthread_t *threads;
	void **scratch;
	size_t scratch_len;
};

struct worker_arg {
	struct prefetch *pf;
	unsigned idx;
};

static void *worker(void *arg)
{
	struct prefetch *pf = ((struct worker_arg *)arg)->pf;
	void *scratch = pf->scratch[((struct worker_arg *)arg)->idx];

	free(arg);
	pthread_mutex_lock(&pf->lock);
	for (;;) {
		struct prefetch_job j;

		while (!pf->count && !pf->stop)
			pthread_cond_wait(&pf->wake, &pf->lock);
		if (pf->stop)
			break;
		j = pf->jobs[pf->head];
		pf->head = (pf->head + 1) % pf->cap;
		pf->count--;
		pthread_mutex_unlock(&pf->lock);
		j.run(j.arg, j.off, j.len, scratch, pf->scratch_len);
		if (j.done)
			j.done(j.arg);
		pthread_mutex_lock(&pf->lock);
	}
	pthread_mutex_unlock(&pf->lock);
	return NULL;
}

static void free_pool(struct prefetch *pf)
{
	for (unsigned i = 0; pf->scratch && i < pf->nthreads; i++)
		free(pf->scratch[i]);
	free(pf->scratch);
	free(pf->threads);
	free(pf->jobs);
	pthread_cond_destroy(&pf->wake);
	pthread_mutex_destroy(&pf->lock);
	free(pf);
}

int prefetch_create(unsigned workers, unsigned queue_len, size_t scratch_len,
		    struct prefetch **out)
{
	struct prefetch *pf;
	unsigned started = 0;
	int rc = -ENOMEM;

	if (!workers || !queue_len)
		return -EINVAL;
	pf = calloc(1, sizeof(*pf));
	if (!pf)
		return -ENOMEM;
	pthread_mutex_init(&pf->lock, NULL);
	pthread_cond_init(&pf->wake, NULL);
	pf->cap = queue_len;
	pf->nthreads = workers;
	pf->scratch_len = scratch_len;
	pf->jobs = calloc(queue_len, sizeof(*pf->jobs));
	pf->threads = calloc(workers, sizeof(*pf->threads));
	pf->scratch = calloc(workers, sizeof(*pf->scratch));
	if (!pf->jobs || !pf->threads || !pf->scratch)
		goto out_free_pool;
	for (unsigned i = 0; i < workers; i++)
		if (!(pf->scratch[i] = malloc(scratch_len ? scratch_len : 1)))
			goto out_free_pool;
	for (; started < workers; started++) {
		struct worker_arg *wa = malloc(sizeof(*wa));

		if (!wa)
			goto out_stop_threads;
		wa->pf = pf;
		wa->idx = started;
		rc = -pthread_create(&pf->threads[started], NULL, worker, wa);
		if (rc) {
			free(wa);
			goto out_stop_threads;
		}
	}
	*out = pf;
	return 0;

out_stop_threads:
	pthread_mutex_lock(&pf->lock);
	pf->stop = 1;
	pthread_cond_broadcast(&pf->wake);
	pthread_mutex_unlock(&pf->lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(pf->threads[i], NULL);
out_free_pool:
	free_pool(pf);
	return rc;
}

int prefetch_submit(struct prefetch *pf, const struct prefetch_job *job)
{
	int rc = 0;

	pthread_mutex_lock(&pf->lock);
	if (pf->stop)
		rc = -ESHUTDOWN;
	else if (pf->count == pf->cap)
		rc = -EAGAIN;
	if (!rc) {
		pf->jobs[(pf->head + pf->count) % pf->cap] = *job;
		pf->count++;
		pthread_cond_signal(&pf->wake);
	}
	pthread_mutex_unlock(&pf->lock);
	return rc;
}

void prefetch_destroy(struct prefetch *pf)
{
	if (!pf)
		return;
	pthread_mutex_lock(&pf->lock);
	pf->stop = 1;
	pthread_cond_broadcast(&pf->wake);
	pthread_mutex_unlock(&pf->lock);
	for (unsigned i = 0; i < pf->nthreads; i++)
		pthread_join(pf->threads[i], NULL);
	while (pf->count) {
		struct prefetch_job *j = &pf->jobs[pf->head];

		if (j->done)
			j->done(j->arg);
		pf->head = (pf->head + 1) % pf->cap;
		pf->count--;
	}
	free_pool(pf);
}

void prefetch_stream_next(struct prefetch_stream *s, uint64_t off, size_t len, uint64_t size,
			  uint64_t window, uint32_t unit, uint64_t *from, uint64_t *to)
{
	uint64_t end = off + len, mask = (uint64_t)unit - 1, start, stop;

	*from = *to = 0;
	if (off + window >= s->last_end && off <= s->last_end + window) {
		if (s->hits < 2)
			s->hits++;
	} else {
		s->hits = 0;
		s->ahead = 0;
	}
	s->last_end = end;
	if (s->hits < 2 || !unit || (unit & mask))
		return;
	start = end & ~mask;
	if (start < s->ahead)
		start = s->ahead;
	stop = (end + window + mask) & ~mask;
	if (stop > size)
		stop = size;
	if (stop > start) {
		*from = start;
		*to = stop;
	}
}

void prefetch_stream_queued(struct prefetch_stream *s, uint64_t upto)
{
	if (upto > s->ahead)
		s->ahead = upto;
}
