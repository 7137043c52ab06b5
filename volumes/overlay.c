/* overlay.c - see overlay.h. Entries come from an array allocated at creation and
 * buffers from a bufpool of the same count; the hash table has a power-of-two number
 * of buckets (at least twice the entries) chained through hnext. RAM only: the journal
 * is what survives a crash, so nothing here has an on-disk format. */
#include "overlay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bufpool.h"
#include "util.h"

struct overlay {
	uint32_t chunk_size;
	unsigned sectors;          /* per chunk */
	unsigned nbufs, count;
	struct bufpool *pool;
	struct overlay_entry *entries;
	struct overlay_entry *free;  /* chained through hnext */
	struct overlay_entry **buckets;
	uint64_t mask;
	struct overlay_entry *head, *tail; /* age list */
};

static uint64_t bucket_of(const struct overlay *o, uint64_t chunk)
{
	return (chunk * 0x9E3779B97F4A7C15ull >> 20) & o->mask;
}

int overlay_create(uint32_t chunk_size, unsigned nbufs, struct overlay **out)
{
	struct overlay *o;
	uint64_t nb = 16;

	if (chunk_size < OVERLAY_SECTOR || chunk_size > (1u << 20) || !nbufs)
		return -EINVAL;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->chunk_size = chunk_size;
	o->sectors = chunk_size / OVERLAY_SECTOR;
	o->nbufs = nbufs;
	while (nb < 2ull * nbufs)
		nb <<= 1;
	o->mask = nb - 1;
	o->pool = bufpool_create(chunk_size, nbufs);
	o->entries = calloc(nbufs, sizeof(*o->entries));
	o->buckets = calloc(nb, sizeof(*o->buckets));
	if (!o->pool || !o->entries || !o->buckets) {
		overlay_destroy(o);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < nbufs; i++) {
		o->entries[i].hnext = o->free;
		o->free = &o->entries[i];
	}
	*out = o;
	return 0;
}

void overlay_destroy(struct overlay *o)
{
	if (!o)
		return;
	bufpool_destroy(o->pool);
	free(o->entries);
	free(o->buckets);
	free(o);
}

struct overlay_entry *overlay_find(struct overlay *o, uint64_t chunk)
{
	struct overlay_entry *e = o->buckets[bucket_of(o, chunk)];

	while (e && e->chunk != chunk)
		e = e->hnext;
	return e;
}

static void age_unlink(struct overlay *o, struct overlay_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		o->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		o->tail = e->prev;
	e->prev = e->next = NULL;
}

static void age_append(struct overlay *o, struct overlay_entry *e)
{
	e->next = NULL;
	e->prev = o->tail;
	if (o->tail)
		o->tail->next = e;
	else
		o->head = e;
	o->tail = e;
}

struct overlay_entry *overlay_get(struct overlay *o, uint64_t chunk, uint64_t seq)
{
	struct overlay_entry *e = overlay_find(o, chunk);
	uint64_t b;
	void *buf;

	if (e)
		return e;
	if (!o->free)
		return NULL;
	buf = bufpool_tryget(o->pool);
	if (!buf)
		return NULL;
	e = o->free;
	o->free = e->hnext;
	memset(e, 0, sizeof(*e));
	e->chunk = chunk;
	e->buf = buf;
	e->first_seq = e->last_seq = seq;
	e->born_ns = util_mono_ns();
	b = bucket_of(o, chunk);
	e->hnext = o->buckets[b];
	o->buckets[b] = e;
	age_append(o, e);
	o->count++;
	return e;
}

void overlay_apply(struct overlay *o, struct overlay_entry *e, uint32_t off, uint32_t len,
		   const void *data, uint64_t seq)
{
	unsigned s0 = off / OVERLAY_SECTOR, s1 = (off + len) / OVERLAY_SECTOR;

	(void)o;
	if (data)
		memcpy((char *)e->buf + off, data, len);
	else
		memset((char *)e->buf + off, 0, len);
	for (unsigned s = s0; s < s1;) {
		uint64_t *w = &e->bitmap[s / 64];

		if (!(s % 64) && s + 64 <= s1) {
			e->nvalid += 64 - (unsigned)__builtin_popcountll(*w);
			*w = ~0ull;
			s += 64;
			continue;
		}
		if (!(*w & (1ull << (s % 64)))) {
			*w |= 1ull << (s % 64);
			e->nvalid++;
		}
		s++;
	}
	e->last_seq = seq;
}

static int valid(const struct overlay_entry *e, unsigned s)
{
	return (e->bitmap[s / 64] >> (s % 64)) & 1;
}

int overlay_covers(const struct overlay *o, const struct overlay_entry *e, uint32_t off,
		   uint32_t len)
{
	unsigned s0 = off / OVERLAY_SECTOR, s1 = (off + len) / OVERLAY_SECTOR;

	if (e->nvalid == o->sectors)
		return 1;
	for (unsigned s = s0; s < s1;) {
		if (!(s % 64) && s + 64 <= s1) {
			if (e->bitmap[s / 64] != ~0ull)
				return 0;
			s += 64;
			continue;
		}
		if (!valid(e, s))
			return 0;
		s++;
	}
	return 1;
}

int overlay_full(const struct overlay *o, const struct overlay_entry *e)
{
	return e->nvalid == o->sectors;
}

/* Copy runs of valid sectors in [s0, s1) from src (chunk-relative) to dst at -base. */
static void copy_runs(const uint64_t *bitmap, unsigned s0, unsigned s1, const char *src,
		      char *dst, uint32_t base)
{
	unsigned s = s0;

	while (s < s1) {
		unsigned r;

		if (!((bitmap[s / 64] >> (s % 64)) & 1)) {
			s++;
			continue;
		}
		r = s;
		while (r < s1 && ((bitmap[r / 64] >> (r % 64)) & 1))
			r++;
		memcpy(dst + (size_t)s * OVERLAY_SECTOR - base, src + (size_t)s * OVERLAY_SECTOR,
		       (size_t)(r - s) * OVERLAY_SECTOR);
		s = r;
	}
}

void overlay_copy_valid(const struct overlay *o, const struct overlay_entry *e, uint32_t off,
			uint32_t len, void *dst)
{
	(void)o;
	copy_runs(e->bitmap, off / OVERLAY_SECTOR, (off + len) / OVERLAY_SECTOR, e->buf, dst, off);
}

void overlay_merge(const struct overlay *o, const void *src_buf, const uint64_t *src_bitmap,
		   void *dst)
{
	copy_runs(src_bitmap, 0, o->sectors, src_buf, dst, 0);
}

void overlay_remove(struct overlay *o, struct overlay_entry *e)
{
	struct overlay_entry **pp = &o->buckets[bucket_of(o, e->chunk)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	age_unlink(o, e);
	bufpool_put(o->pool, e->buf);
	e->buf = NULL;
	e->hnext = o->free;
	o->free = e;
	o->count--;
}

void overlay_touch(struct overlay *o, struct overlay_entry *e, uint64_t now_ns)
{
	age_unlink(o, e);
	age_append(o, e);
	e->born_ns = now_ns;
}

struct overlay_entry *overlay_oldest(struct overlay *o)
{
	return o->head;
}

uint64_t overlay_min_first_seq(struct overlay *o, uint64_t none_seq)
{
	uint64_t m = none_seq;

	for (struct overlay_entry *e = o->head; e; e = e->next)
		if (e->first_seq < m)
			m = e->first_seq;
	return m;
}

unsigned overlay_count(const struct overlay *o) { return o->count; }
unsigned overlay_capacity(const struct overlay *o) { return o->nbufs; }
uint32_t overlay_chunk_size(const struct overlay *o) { return o->chunk_size; }
