/* volume_ingest.c - bulk ingest of whole chunks (volume_ingest.h).
 *
 * One lock and one condition variable guard everything below; the producer and the
 * workers wait on the same condition (a broadcast per chunk: a few thousand a second,
 * never per block). Buffers: 2 per worker plus 2, each one chunk; a buffer is either
 * free, held by the producer, queued, or being stored by a worker.
 *
 * Segment: chunks [base, next) submitted since the last commit, ids[c - base] filled by
 * the workers; pending counts the ones not stored yet. A commit waits for pending to
 * reach 0, flushes the store (the chunks become durable), then appends the ids as COPY
 * records of at most volume_share_max() chunks under the volume's write order.
 */
#include "volume_ingest.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define INGEST_THREADS_MAX 8

struct ingest_job {
	uint64_t c;
	uint8_t *buf;
};

struct volume_ingest {
	struct volume *v;
	struct chunk_store *cs;
	uint32_t csz;
	unsigned cshift;
	uint64_t nchunks;          /* whole chunks inside the volume */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t th[INGEST_THREADS_MAX];
	unsigned nthreads;

	uint8_t **free_bufs;       /* stack of free buffers */
	unsigned nfree, nbufs;
	uint8_t *mem;              /* the buffers, one block */
	struct ingest_job *q;      /* ring of queued jobs, nbufs long */
	unsigned qhead, qlen;

	uint64_t base, next;       /* the open segment: chunks [base, next) */
	uint32_t seg_max;          /* chunks per segment */
	struct chunk_id *ids;      /* seg_max ids of the open segment */
	uint32_t pending;          /* submitted, not stored yet */
	uint64_t stored, zero;
	int err, stop;
};

static void set_err(struct volume_ingest *g, int err)
{
	if (err && !g->err)
		g->err = err;
}

static void *worker(void *arg)
{
	struct volume_ingest *g = arg;

	pthread_mutex_lock(&g->lock);
	for (;;) {
		struct ingest_job j;
		struct chunk_id id;
		int rc = 0, zero;

		while (!g->qlen && !g->stop)
			pthread_cond_wait(&g->cond, &g->lock);
		if (!g->qlen)
			break;
		j = g->q[g->qhead];
		g->qhead = (g->qhead + 1) % g->nbufs;
		g->qlen--;
		pthread_mutex_unlock(&g->lock);

		zero = util_is_zero(j.buf, g->csz);
		if (zero)
			memset(&id, 0, sizeof(id));
		else
			rc = g->cs->ops->put(g->cs->ctx, CHUNK_DATA, j.buf, g->csz, &id);

		pthread_mutex_lock(&g->lock);
		g->ids[j.c - g->base] = id; /* base moves only once pending is 0 */
		set_err(g, rc);
		if (zero)
			g->zero++;
		else if (!rc)
			g->stored++;
		g->free_bufs[g->nfree++] = j.buf;
		g->pending--;
		pthread_cond_broadcast(&g->cond);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

/* Commit the open segment (g->lock held on entry and return; dropped while the store
 * is flushed and the records appended, when nothing else can touch the segment: the
 * producer is the caller and the workers have nothing queued). */
static int commit(struct volume_ingest *g)
{
	uint64_t n = g->next - g->base, seq = 0;
	uint32_t max = volume_share_max(g->v);
	int rc;

	while (g->pending)
		pthread_cond_wait(&g->cond, &g->lock);
	if (g->err || !n)
		return g->err;
	pthread_mutex_unlock(&g->lock);
	rc = g->cs->ops->flush(g->cs->ctx);
	for (uint64_t done = 0; !rc && done < n;) {
		uint32_t k = (uint32_t)MIN(n - done, (uint64_t)max);
		uint64_t c = g->base + done;

		volume_order_lock(g->v);
		rc = volume_locked_share(g->v, c, k, g->ids + done, g->v, c << g->cshift, &seq);
		volume_order_unlock(g->v);
		done += k;
	}
	pthread_mutex_lock(&g->lock);
	set_err(g, rc);
	g->base = g->next;
	return g->err;
}

int volume_ingest_open(struct volume *v, unsigned threads, struct volume_ingest **out)
{
	const struct volume_info *vi = volume_get_info(v);
	struct volume_internals in;
	struct volume_ingest *g;
	int rc = -ENOMEM;

	if (!volume_state_dir(v))
		return -EROFS;
	if (!threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		threads = n > 0 ? (unsigned)n : 1;
	}
	threads = MIN(threads, (unsigned)INGEST_THREADS_MAX);
	volume_get_internals(v, &in);
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->v = v;
	g->cs = in.cs;
	g->cshift = in.cshift;
	g->csz = vi->chunk_size;
	g->nchunks = vi->size >> in.cshift;
	g->seg_max = (uint32_t)MAX(1ull, INGEST_SEGMENT_BYTES >> in.cshift);
	g->nbufs = 2 * threads + 2;
	g->ids = calloc(g->seg_max, sizeof(*g->ids));
	g->free_bufs = calloc(g->nbufs, sizeof(*g->free_bufs));
	g->q = calloc(g->nbufs, sizeof(*g->q));
	g->mem = malloc((size_t)g->nbufs * g->csz);
	if (!g->ids || !g->free_bufs || !g->q || !g->mem)
		goto out_free;
	for (unsigned i = 0; i < g->nbufs; i++)
		g->free_bufs[g->nfree++] = g->mem + (size_t)i * g->csz;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	for (; g->nthreads < threads; g->nthreads++) {
		rc = -pthread_create(&g->th[g->nthreads], NULL, worker, g);
		if (rc)
			break;
	}
	if (!g->nthreads)
		goto out_sync;
	*out = g;
	return 0;

out_sync:
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->lock);
out_free:
	free(g->mem);
	free(g->q);
	free(g->free_bufs);
	free(g->ids);
	free(g);
	return rc;
}

uint8_t *volume_ingest_buffer(struct volume_ingest *g)
{
	uint8_t *buf = NULL;

	pthread_mutex_lock(&g->lock);
	while (!g->nfree && !g->err)
		pthread_cond_wait(&g->cond, &g->lock);
	if (!g->err)
		buf = g->free_bufs[--g->nfree];
	pthread_mutex_unlock(&g->lock);
	return buf;
}

void volume_ingest_release(struct volume_ingest *g, uint8_t *buf)
{
	pthread_mutex_lock(&g->lock);
	g->free_bufs[g->nfree++] = buf;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

int volume_ingest_submit(struct volume_ingest *g, uint64_t c, uint8_t *buf)
{
	int rc;

	pthread_mutex_lock(&g->lock);
	if (c >= g->nchunks || (g->next > g->base && c < g->next))
		set_err(g, -EINVAL);
	else if (g->next > g->base && (c != g->next || g->next - g->base == g->seg_max))
		commit(g);
	if (g->err) {
		g->free_bufs[g->nfree++] = buf;
		rc = g->err;
		goto out;
	}
	if (g->next == g->base) /* an empty segment starts where the chunk is */
		g->base = g->next = c;
	g->next = c + 1;
	g->pending++;
	g->q[(g->qhead + g->qlen) % g->nbufs] = (struct ingest_job){ .c = c, .buf = buf };
	g->qlen++;
	pthread_cond_broadcast(&g->cond);
	rc = 0;
out:
	pthread_mutex_unlock(&g->lock);
	return rc;
}

int volume_ingest_finish(struct volume_ingest *g, uint64_t *stored, uint64_t *zero)
{
	int rc;

	pthread_mutex_lock(&g->lock);
	commit(g);
	g->stop = 1;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	for (unsigned i = 0; i < g->nthreads; i++)
		pthread_join(g->th[i], NULL);
	rc = g->err;
	if (stored)
		*stored = g->stored;
	if (zero)
		*zero = g->zero;
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->lock);
	free(g->mem);
	free(g->q);
	free(g->free_bufs);
	free(g->ids);
	free(g);
	return rc;
}
