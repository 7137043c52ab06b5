/* bufpool.c - see bufpool.h. A LIFO free stack under one mutex: the most recently
 * used buffer (warm in cache) is handed out first. */
#include "bufpool.h"

#include <pthread.h>
#include <stdlib.h>

struct bufpool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t size;
	unsigned count, nfree;
	char *mem;
	void **free;
};

struct bufpool *bufpool_create(size_t size, unsigned count)
{
	struct bufpool *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	size = (size + 63) & ~(size_t)63;
	if (posix_memalign((void **)&p->mem, 64, size * count))
		goto out_free_pool;
	p->free = malloc(sizeof(void *) * count);
	if (!p->free)
		goto out_free_mem;
	p->size = size;
	p->count = p->nfree = count;
	for (unsigned i = 0; i < count; i++)
		p->free[i] = p->mem + (size_t)(count - 1 - i) * size;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	return p;

out_free_mem:
	free(p->mem);
out_free_pool:
	free(p);
	return NULL;
}

void bufpool_destroy(struct bufpool *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p->free);
	free(p->mem);
	free(p);
}

size_t bufpool_bufsize(const struct bufpool *p) { return p->size; }

void *bufpool_get(struct bufpool *p)
{
	void *b;

	pthread_mutex_lock(&p->lock);
	while (!p->nfree)
		pthread_cond_wait(&p->cond, &p->lock);
	b = p->free[--p->nfree];
	pthread_mutex_unlock(&p->lock);
	return b;
}

void *bufpool_tryget(struct bufpool *p)
{
	void *b = NULL;

	pthread_mutex_lock(&p->lock);
	if (p->nfree)
		b = p->free[--p->nfree];
	pthread_mutex_unlock(&p->lock);
	return b;
}

void bufpool_put(struct bufpool *p, void *buf)
{
	if (!buf)
		return;
	pthread_mutex_lock(&p->lock);
	p->free[p->nfree++] = buf;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

unsigned bufpool_in_use(struct bufpool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->count - p->nfree;
	pthread_mutex_unlock(&p->lock);
	return n;
}
