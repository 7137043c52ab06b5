/* backend_cache.c - local copies of immutable objects (see backend_cache.h).
 *
 * State: the copies in a local backend under dir, and a FIFO of (key, size) in the
 * order the copies were made (at open: the order the directory lists them), whose sum
 * 'used' is kept <= max by dropping from the front. One mutex guards the FIFO; object
 * IO runs outside it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backend_cache.h"
#include "log.h"

#define DEFAULT_MAX (4ull << 30)

struct entry {
	char *key;
	uint64_t size;
	struct entry *next;
};

struct cache {
	struct backend *inner, *disk;
	uint64_t max, used;
	pthread_mutex_t mu;
	struct entry *head, *tail;
};

static int cacheable(const char *key)
{
	return !strncmp(key, "packs/", 6) || !strncmp(key, "index/", 6);
}

/* Record a new copy and drop the oldest beyond the bound. */
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
	if (c->tail)
		c->tail->next = e;
	else
		c->head = e;
	c->tail = e;
	c->used += size;
	while (c->used > c->max && c->head && c->head != e) {
		struct entry *old = c->head;

		c->head = old->next;
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

static int cache_get_range(void *ctx, const char *key, uint64_t off, void *buf, size_t len)
{
	struct cache *c = ctx;

	if (cacheable(key) && c->disk->ops->get_range(c->disk->ctx, key, off, buf, len) == 0)
		return 0;
	return c->inner->ops->get_range(c->inner->ctx, key, off, buf, len);
}

static int cache_get(void *ctx, const char *key, void **data, size_t *len)
{
	struct cache *c = ctx;
	int rc;

	if (cacheable(key) && c->disk->ops->get(c->disk->ctx, key, data, len) == 0)
		return 0;
	rc = c->inner->ops->get(c->inner->ctx, key, data, len);
	if (rc == 0 && !strncmp(key, "index/", 6))
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

static int cache_del(void *ctx, const char *key)
{
	struct cache *c = ctx;

	if (cacheable(key))
		c->disk->ops->del(c->disk->ctx, key); /* its FIFO entry ages out harmlessly */
	return c->inner->ops->del(c->inner->ctx, key);
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

	while (c->head) {
		struct entry *e = c->head;

		c->head = e->next;
		free(e->key);
		free(e);
	}
	backend_close(c->disk);
	backend_close(c->inner);
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
	b->ops = &cache_ops;
	b->ctx = c;
	*out = b;
	return 0;

out_close:
	cache_close(c);
	return rc;
}
