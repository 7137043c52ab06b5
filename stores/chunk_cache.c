/* chunk_cache.c - striped byte-bounded LRU of decoded chunks (see chunk_cache.h).
 *
 * Each stripe: a chained hash table of entries and a doubly linked LRU list (head =
 * most recent). An entry is one allocation: bookkeeping followed by the plaintext.
 * Copies in and out happen under the stripe lock; allocation and freeing happen
 * outside it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "chunk_cache.h"

#define STRIPES 16u

struct ent {
	struct chunk_id id;
	struct ent *hnext;         /* hash chain */
	struct ent *prev, *next;   /* LRU list */
	size_t len;
	uint8_t data[];
};

struct stripe {
	pthread_mutex_t lock;
	struct ent **buckets;
	size_t mask;
	struct ent *head, *tail;
	size_t bytes, budget;
} __attribute__((aligned(64)));

struct chunk_cache {
	struct stripe s[STRIPES];
	atomic_uint_fast64_t hits, misses;
};

static size_t id_word(const struct chunk_id *id, int w)
{
	uint64_t v;

	memcpy(&v, id->b + 8 * w, sizeof(v));
	return (size_t)v;
}

static struct stripe *stripe_of(struct chunk_cache *c, const struct chunk_id *id)
{
	return &c->s[id_word(id, 1) % STRIPES];
}

static struct ent **bucket(struct stripe *s, const struct chunk_id *id)
{
	return &s->buckets[id_word(id, 0) & s->mask];
}

int chunk_cache_create(size_t bytes, struct chunk_cache **out)
{
	struct chunk_cache *c = calloc(1, sizeof(*c));
	size_t nb = 64;
	unsigned i;

	if (!c)
		return -ENOMEM;
	/* about one bucket per 16 KiB of budget */
	while (nb * STRIPES * (16u << 10) < bytes)
		nb *= 2;
	for (i = 0; i < STRIPES; i++) {
		struct stripe *s = &c->s[i];

		s->buckets = calloc(nb, sizeof(*s->buckets));
		if (!s->buckets)
			goto out_free_stripes;
		s->mask = nb - 1;
		s->budget = bytes / STRIPES;
		pthread_mutex_init(&s->lock, NULL);
	}
	*out = c;
	return 0;

out_free_stripes:
	while (i--) {
		pthread_mutex_destroy(&c->s[i].lock);
		free(c->s[i].buckets);
	}
	free(c);
	return -ENOMEM;
}

void chunk_cache_destroy(struct chunk_cache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < STRIPES; i++) {
		struct stripe *s = &c->s[i];

		for (struct ent *e = s->head, *n; e; e = n) {
			n = e->next;
			free(e);
		}
		free(s->buckets);
		pthread_mutex_destroy(&s->lock);
	}
	free(c);
}

static struct ent *lookup(struct stripe *s, const struct chunk_id *id)
{
	for (struct ent *e = *bucket(s, id); e; e = e->hnext)
		if (memcmp(e->id.b, id->b, CHUNK_ID_LEN) == 0)
			return e;
	return NULL;
}

static void lru_unlink(struct stripe *s, struct ent *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		s->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		s->tail = e->prev;
}

static void lru_push_head(struct stripe *s, struct ent *e)
{
	e->prev = NULL;
	e->next = s->head;
	if (s->head)
		s->head->prev = e;
	else
		s->tail = e;
	s->head = e;
}

static void hash_unlink(struct stripe *s, struct ent *e)
{
	struct ent **pp = bucket(s, &e->id);

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
}

int chunk_cache_get(struct chunk_cache *c, const struct chunk_id *id, void *buf, size_t cap,
		    size_t *len)
{
	struct stripe *s = stripe_of(c, id);
	struct ent *e;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	e = lookup(s, id);
	if (!e) {
		pthread_mutex_unlock(&s->lock);
		atomic_fetch_add_explicit(&c->misses, 1, memory_order_relaxed);
		return -ENOENT;
	}
	if (e != s->head) {
		lru_unlink(s, e);
		lru_push_head(s, e);
	}
	if (e->len > cap) {
		rc = -ENOBUFS;
	} else {
		memcpy(buf, e->data, e->len);
		*len = e->len;
	}
	pthread_mutex_unlock(&s->lock);
	atomic_fetch_add_explicit(&c->hits, 1, memory_order_relaxed);
	return rc;
}

void chunk_cache_put(struct chunk_cache *c, const struct chunk_id *id, const void *data, size_t len)
{
	struct stripe *s = stripe_of(c, id);
	size_t cost = sizeof(struct ent) + len;
	struct ent *e, *victims = NULL;

	if (cost > s->budget)
		return;
	e = malloc(cost);
	if (!e)
		return;
	e->id = *id;
	e->len = len;
	memcpy(e->data, data, len);
	pthread_mutex_lock(&s->lock);
	if (lookup(s, id)) {
		pthread_mutex_unlock(&s->lock);
		free(e);
		return;
	}
	while (s->bytes + cost > s->budget && s->tail) {
		struct ent *v = s->tail;

		lru_unlink(s, v);
		hash_unlink(s, v);
		s->bytes -= sizeof(struct ent) + v->len;
		v->next = victims;
		victims = v;
	}
	e->hnext = *bucket(s, id);
	*bucket(s, id) = e;
	lru_push_head(s, e);
	s->bytes += cost;
	pthread_mutex_unlock(&s->lock);
	while (victims) {
		struct ent *n = victims->next;

		free(victims);
		victims = n;
	}
}

void chunk_cache_del(struct chunk_cache *c, const struct chunk_id *id)
{
	struct stripe *s = stripe_of(c, id);
	struct ent *e;

	pthread_mutex_lock(&s->lock);
	e = lookup(s, id);
	if (e) {
		lru_unlink(s, e);
		hash_unlink(s, e);
		s->bytes -= sizeof(struct ent) + e->len;
	}
	pthread_mutex_unlock(&s->lock);
	if (e) {
		explicit_bzero(e->data, e->len);
		free(e);
	}
}

void chunk_cache_clear(struct chunk_cache *c)
{
	for (unsigned i = 0; i < STRIPES; i++) {
		struct stripe *s = &c->s[i];
		struct ent *e, *n;

		pthread_mutex_lock(&s->lock);
		e = s->head;
		s->head = s->tail = NULL;
		s->bytes = 0;
		memset(s->buckets, 0, (s->mask + 1) * sizeof(*s->buckets));
		pthread_mutex_unlock(&s->lock);
		for (; e; e = n) {
			n = e->next;
			explicit_bzero(e->data, e->len);
			free(e);
		}
	}
}

void chunk_cache_counters(struct chunk_cache *c, uint64_t *hits, uint64_t *misses)
{
	*hits = atomic_load(&c->hits);
	*misses = atomic_load(&c->misses);
}
