/* backend_cache.c - local copies of immutable objects (see backend_cache.h).
 *
 * State: the copies in a local backend under dir; an entry per copy (key, size) in a
 * hash table by key and in an LRU list (head = least recently used) whose sizes sum to
 * 'used' <= max, kept so by dropping from the head. A hit moves the entry to the tail. At
 * open the entries are the directory's listing, in its order.
 *
 * Fill on miss: a ranged read of a pack that misses is answered by the inner backend,
 * and the pack is queued for one background thread that fetches it whole and copies it
 * in, so the next reads of that pack (the chunks written with it, read together) stay
 * local. The queue is bounded (FILL_QUEUE) and holds each key once; a failed fetch is
 * dropped (the next miss queues it again).
 *
 * One mutex guards the table, the list and the queue; object IO runs outside it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "backend_cache.h"
#include "log.h"

#define DEFAULT_MAX (4ull << 30)
#define FILL_QUEUE 16
#define FILL_MAX_DIV 8 /* never fill an object larger than max / FILL_MAX_DIV */

struct entry {
	char *key;
	uint64_t size;
	struct entry *prev, *next; /* LRU list */
	struct entry *hnext;       /* hash chain */
};

struct cache {
	struct backend *inner, *disk;
	uint64_t max, used;
	pthread_mutex_t mu;
	struct entry *head, *tail;
	struct entry **table;
	size_t nbuckets, n;

	pthread_t filler;
	int filler_running, stop;
	pthread_cond_t fill_cond;
	pthread_cond_t filled_cond; /* the filler finished a key (cache_del waits for it) */
	char *queue[FILL_QUEUE];   /* keys to fetch whole; queue[0] is next */
	int nqueued;
	char *filling;             /* the key the filler fetches now */
};

static int cacheable(const char *key)
{
	return !strncmp(key, "packs/", 6) || !strncmp(key, "index/", 6);
}

/* ---- table and LRU (caller holds mu) ---- */

static size_t bucket(const struct cache *c, const char *key)
{
	return (size_t)XXH3_64bits(key, strlen(key)) & (c->nbuckets - 1);
}

static struct entry *find(struct cache *c, const char *key)
{
	struct entry *e;

	for (e = c->table[bucket(c, key)]; e; e = e->hnext)
		if (!strcmp(e->key, key))
			return e;
	return NULL;
}

static void lru_unlink(struct cache *c, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_append(struct cache *c, struct entry *e)
{
	e->prev = c->tail;
	e->next = NULL;
	if (c->tail)
		c->tail->next = e;
	else
		c->head = e;
	c->tail = e;
}

static void table_remove(struct cache *c, struct entry *e)
{
	struct entry **pp = &c->table[bucket(c, e->key)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	c->n--;
}

/* Double the table when it is as full as it is wide; a failed grow only costs speed. */
static void table_grow(struct cache *c)
{
	size_t nb = c->nbuckets * 2;
	struct entry **t = calloc(nb, sizeof(*t));
	struct entry *e;

	if (!t)
		return;
	for (e = c->head; e; e = e->next) {
		size_t b = (size_t)XXH3_64bits(e->key, strlen(e->key)) & (nb - 1);

		e->hnext = t[b];
		t[b] = e;
	}
	free(c->table);
	c->table = t;
	c->nbuckets = nb;
}

/* A hit: e becomes the most recently used. */
static void touch(struct cache *c, const char *key)
{
	struct entry *e;

	pthread_mutex_lock(&c->mu);
	e = find(c, key);
	if (e && e != c->tail) {
		lru_unlink(c, e);
		lru_append(c, e);
	}
	pthread_mutex_unlock(&c->mu);
}

/* Record a new copy and drop the least recently used beyond the bound. */
static void remember(struct cache *c, const char *key, uint64_t size)
{
	struct entry *e = calloc(1, sizeof(*e)), *drop = NULL;

	if (!e || !(e->key = strdup(key))) {
		free(e);
		c->disk->ops->del(c->disk->ctx, key);
		return;
	}
	e->size = size;
	pthread_mutex_lock(&c->mu);
	if (find(c, key)) { /* copied twice (a put racing a fill): keep one entry */
		pthread_mutex_unlock(&c->mu);
		free(e->key);
		free(e);
		return;
	}
	if (c->n >= c->nbuckets)
		table_grow(c);
	e->hnext = c->table[bucket(c, key)];
	c->table[bucket(c, key)] = e;
	c->n++;
	lru_append(c, e);
	c->used += size;
	while (c->used > c->max && c->head && c->head != e) {
		struct entry *old = c->head;

		lru_unlink(c, old);
		table_remove(c, old);
		c->used -= old->size;
		old->next = drop;
		drop = old;
	}
	pthread_mutex_unlock(&c->mu);
	while (drop) {
		struct entry *n = drop->next;

		c->disk->ops->del(c->disk->ctx, drop->key);
		free(drop->key);
		free(drop);
		drop = n;
	}
}

/* Forget the copy of key, if any (its file is removed by the caller). */
static void forget(struct cache *c, const char *key)
{
	struct entry *e;

	pthread_mutex_lock(&c->mu);
	e = find(c, key);
	if (e) {
		lru_unlink(c, e);
		table_remove(c, e);
		c->used -= e->size;
	}
	pthread_mutex_unlock(&c->mu);
	if (e) {
		free(e->key);
		free(e);
	}
}

static void copy_in(struct cache *c, const char *key, const void *data, size_t len)
{
	int rc;

	if (!cacheable(key) || len > c->max)
		return;
	rc = c->disk->ops->put(c->disk->ctx, key, data, len, 0);
	if (rc) {
		log_warn("cache", "cannot copy %s into the local cache: %s", key, strerror(-rc));
		return;
	}
	remember(c, key, len);
}

/* ---- fill on miss ---- */

/* Queue key for a whole fetch unless it is queued, being fetched or the queue is full. */
static void queue_fill(struct cache *c, const char *key)
{
	char *k;

	pthread_mutex_lock(&c->mu);
	if (!c->filler_running || c->nqueued == FILL_QUEUE ||
	    (c->filling && !strcmp(c->filling, key)))
		goto out_unlock;
	for (int i = 0; i < c->nqueued; i++)
		if (!strcmp(c->queue[i], key))
			goto out_unlock;
	if (find(c, key))
		goto out_unlock;
	k = strdup(key);
	if (!k)
		goto out_unlock;
	c->queue[c->nqueued++] = k;
	pthread_cond_signal(&c->fill_cond);
out_unlock:
	pthread_mutex_unlock(&c->mu);
}

static void *filler_main(void *arg)
{
	struct cache *c = arg;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		uint64_t size;
		void *data;
		size_t len;
		char *key;

		while (!c->stop && !c->nqueued)
			pthread_cond_wait(&c->fill_cond, &c->mu);
		if (c->stop)
			break;
		key = c->queue[0];
		memmove(c->queue, c->queue + 1, sizeof(c->queue[0]) * (size_t)--c->nqueued);
		c->filling = key;
		pthread_mutex_unlock(&c->mu);

		if (c->inner->ops->stat(c->inner->ctx, key, &size) == 0 &&
		    size <= c->max / FILL_MAX_DIV &&
		    c->inner->ops->get(c->inner->ctx, key, &data, &len) == 0) {
			copy_in(c, key, data, len);
			free(data);
		}

		pthread_mutex_lock(&c->mu);
		c->filling = NULL;
		pthread_cond_broadcast(&c->filled_cond);
		free(key);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* ---- backend ops ---- */

static int cache_get_range(void *ctx, const char *key, uint64_t off, void *buf, size_t len)
{
	struct cache *c = ctx;
	int rc;

	if (cacheable(key) && c->disk->ops->get_range(c->disk->ctx, key, off, buf, len) == 0) {
		touch(c, key);
		return 0;
	}
	rc = c->inner->ops->get_range(c->inner->ctx, key, off, buf, len);
	if (rc == 0 && !strncmp(key, "packs/", 6))
		queue_fill(c, key);
	return rc;
}

static int cache_get(void *ctx, const char *key, void **data, size_t *len)
{
	struct cache *c = ctx;
	int rc;

	if (cacheable(key) && c->disk->ops->get(c->disk->ctx, key, data, len) == 0) {
		touch(c, key);
		return 0;
	}
	rc = c->inner->ops->get(c->inner->ctx, key, data, len);
	if (rc == 0 && cacheable(key))
		copy_in(c, key, *data, *len);
	return rc;
}

static int cache_put(void *ctx, const char *key, const void *data, size_t len, int flags)
{
	struct cache *c = ctx;
	int rc = c->inner->ops->put(c->inner->ctx, key, data, len, flags);

	if (rc == 0)
		copy_in(c, key, data, len);
	return rc;
}

/* The object goes first, then any fill of it (queued or in flight, which would copy
 * it back in) and only then the copy: no copy of a deleted object stays (gc, SANITIZE). */
static int cache_del(void *ctx, const char *key)
{
	struct cache *c = ctx;
	int rc = c->inner->ops->del(c->inner->ctx, key);

	if (cacheable(key)) {
		pthread_mutex_lock(&c->mu);
		for (int i = 0; i < c->nqueued; i++)
			if (!strcmp(c->queue[i], key)) {
				free(c->queue[i]);
				memmove(c->queue + i, c->queue + i + 1,
					sizeof(c->queue[0]) * (size_t)(c->nqueued - i - 1));
				c->nqueued--;
				break;
			}
		while (c->filling && !strcmp(c->filling, key))
			pthread_cond_wait(&c->filled_cond, &c->mu);
		pthread_mutex_unlock(&c->mu);
		forget(c, key);
		c->disk->ops->del(c->disk->ctx, key);
	}
	return rc;
}

static int cache_list(void *ctx, const char *prefix, backend_list_cb cb, void *arg)
{
	struct cache *c = ctx;

	return c->inner->ops->list(c->inner->ctx, prefix, cb, arg);
}

static int cache_stat(void *ctx, const char *key, uint64_t *size)
{
	struct cache *c = ctx;

	return c->inner->ops->stat(c->inner->ctx, key, size);
}

static void cache_close(void *ctx)
{
	struct cache *c = ctx;

	if (c->filler_running) {
		pthread_mutex_lock(&c->mu);
		c->stop = 1;
		pthread_cond_signal(&c->fill_cond);
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->filler, NULL);
	}
	for (int i = 0; i < c->nqueued; i++)
		free(c->queue[i]);
	while (c->head) {
		struct entry *e = c->head;

		c->head = e->next;
		free(e->key);
		free(e);
	}
	free(c->table);
	if (c->disk)
		backend_close(c->disk);
	backend_close(c->inner);
	pthread_cond_destroy(&c->fill_cond);
	pthread_cond_destroy(&c->filled_cond);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static const struct backend_ops cache_ops = {
	.get_range = cache_get_range,
	.get = cache_get,
	.put = cache_put,
	.del = cache_del,
	.list = cache_list,
	.stat = cache_stat,
	.close = cache_close,
};

static int scan_cb(void *arg, const char *key, uint64_t size)
{
	remember(arg, key, size);
	return 0;
}

int backend_cache_open(struct backend *inner, const char *dir, uint64_t max_bytes,
		       struct backend **out)
{
	struct cache *c = calloc(1, sizeof(*c));
	struct backend *b = NULL;
	int rc;

	if (!c) {
		backend_close(inner);
		return -ENOMEM;
	}
	c->inner = inner;
	c->max = max_bytes ? max_bytes : DEFAULT_MAX;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->fill_cond, NULL);
	pthread_cond_init(&c->filled_cond, NULL);
	c->nbuckets = 1024;
	c->table = calloc(c->nbuckets, sizeof(*c->table));
	if (!c->table) {
		rc = -ENOMEM;
		goto out_close;
	}
	rc = backend_local_open(dir, 1, &c->disk);
	if (rc)
		goto out_close;
	rc = c->disk->ops->list(c->disk->ctx, "", scan_cb, c);
	if (rc)
		goto out_close;
	b = calloc(1, sizeof(*b));
	if (!b || !(b->url = strdup(inner->url ? inner->url : dir))) {
		free(b);
		rc = -ENOMEM;
		goto out_close;
	}
	if (pthread_create(&c->filler, NULL, filler_main, c) == 0)
		c->filler_running = 1;
	else
		log_warn("cache", "no background fill thread; misses are not copied in");
	b->ops = &cache_ops;
	b->ctx = c;
	*out = b;
	return 0;

out_close:
	cache_close(c);
	return rc;
}
