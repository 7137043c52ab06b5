/* overlay.h - unfolded writes of a volume, in RAM.
 *
 * A hash map chunk number -> entry. An entry holds a chunk_size buffer from a pool
 * sized at creation, a bitmap of the 512-byte sectors of that buffer that hold data,
 * and the seq range of the journal records applied to it. A write is a memcpy plus bit
 * sets (a zero write: memset plus bit sets); nothing is ever read on the write path.
 *
 * Thread safety: none inside. The caller serialises every call with one lock (the
 * volume's overlay lock). No call blocks or allocates after overlay_create().
 */
#ifndef CAIRN_OVERLAY_H
#define CAIRN_OVERLAY_H

#include <stddef.h>
#include <stdint.h>

#define OVERLAY_SECTOR 512u
#define OVERLAY_BITMAP_WORDS ((1u << 20) / OVERLAY_SECTOR / 64) /* enough for 1 MiB */

struct overlay_entry {
	uint64_t chunk;
	void *buf;               /* chunk_size bytes; only valid sectors are meaningful */
	uint64_t first_seq;      /* every record that touched this chunk with seq < first_seq
				  * is folded into the block map */
	uint64_t last_seq;       /* newest record applied */
	uint64_t born_ns;        /* monotonic time the entry (re)entered the age list */
	unsigned nvalid;         /* valid sectors */
	int folding;             /* a fold thread holds a copy of it */
	struct overlay_entry *hnext;        /* hash chain */
	struct overlay_entry *prev, *next;  /* age list: oldest at the head */
	uint64_t bitmap[OVERLAY_BITMAP_WORDS];
};

struct overlay;

/* An overlay for chunks of chunk_size bytes with room for nbufs chunks. */
int overlay_create(uint32_t chunk_size, unsigned nbufs, struct overlay **out);
void overlay_destroy(struct overlay *o);

struct overlay_entry *overlay_find(struct overlay *o, uint64_t chunk);
/* The entry of chunk, created empty (first_seq = seq) if absent; NULL if the pool is
 * exhausted (the caller waits for folding and retries). */
struct overlay_entry *overlay_get(struct overlay *o, uint64_t chunk, uint64_t seq);
/* Apply bytes [off, off+len) of the chunk (sector aligned): copy data, or zeros when
 * data is NULL; mark the sectors valid; last_seq = seq. */
void overlay_apply(struct overlay *o, struct overlay_entry *e, uint32_t off, uint32_t len,
		   const void *data, uint64_t seq);
/* 1 if every sector of [off, off+len) is valid. */
int overlay_covers(const struct overlay *o, const struct overlay_entry *e, uint32_t off,
		   uint32_t len);
/* 1 if every sector of the chunk is valid. */
int overlay_full(const struct overlay *o, const struct overlay_entry *e);
/* Copy the valid sectors of [off, off+len) into dst (dst[0] is chunk byte off). */
void overlay_copy_valid(const struct overlay *o, const struct overlay_entry *e, uint32_t off,
			uint32_t len, void *dst);
/* Copy the valid sectors of a whole chunk from src_buf/src_bitmap onto dst. */
void overlay_merge(const struct overlay *o, const void *src_buf, const uint64_t *src_bitmap,
		   void *dst);
/* Drop the entry and return its buffer to the pool. */
void overlay_remove(struct overlay *o, struct overlay_entry *e);
/* Move the entry to the tail of the age list (it is now the youngest). */
void overlay_touch(struct overlay *o, struct overlay_entry *e, uint64_t now_ns);

/* Oldest entry in the age list (NULL if empty) and the next younger one. */
struct overlay_entry *overlay_oldest(struct overlay *o);
static inline struct overlay_entry *overlay_younger(struct overlay_entry *e) { return e->next; }
/* min first_seq over all entries, or none_seq when empty. */
uint64_t overlay_min_first_seq(struct overlay *o, uint64_t none_seq);
unsigned overlay_count(const struct overlay *o);
unsigned overlay_capacity(const struct overlay *o);
uint32_t overlay_chunk_size(const struct overlay *o);

#endif
