/* index.h - where each stored chunk is: id -> (pack, offset, length, plain length, kind).
 *
 * A table whose RAM is a few bytes per chunk: an in-memory Bloom filter, sorted runs in
 * unlinked files of a local directory (read with pread, cached by the page cache) and
 * a small in-memory table of recent changes (layout and policy in index.c). It is
 * filled from the index segments at open. The table is not locked: the repository
 * serialises access. Packs are named by a small number
 * (the repository's pack slot), not by their id.
 *
 * Index segments "index/<32 hex pack id>" are the persistent form: one per pack,
 * listing its records (layout in index.c).
 */
#ifndef CAIRN_INDEX_H
#define CAIRN_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "aead.h"
#include "pack.h"
#include "repo.h"

struct index_loc {
	uint32_t pack;       /* pack slot */
	uint32_t offset;     /* of the record in the pack */
	uint32_t rec_len;    /* record bytes */
	uint32_t plain_len;
	uint32_t entry;      /* ordinal of the record in its pack's trailer (gc's mark bit) */
	uint8_t kind;
};

struct index;

/* An empty table whose run files go to dir (NULL, or not writable: $TMPDIR or /tmp). */
int index_open(const char *dir, struct index **out);
/* index_open(NULL); expect is a hint only. */
int index_create(size_t expect, struct index **out);
/* For tests and bench: the number of recent changes kept in RAM before they are
 * written as a run (default 8192; SIZE_MAX keeps everything in RAM, which is the
 * former all-in-RAM table), and the number of runs on disk. */
void index_set_mem_max(struct index *ix, size_t n);
unsigned index_runs(const struct index *ix);
void index_destroy(struct index *ix);
/* 0 and *loc if present, -ENOENT if not, -EIO if the table file is damaged (never a
 * wrong location). */
int index_lookup(const struct index *ix, const struct chunk_id *id, struct index_loc *loc);
/* Add id; -EEXIST (table unchanged) if it is already there. */
int index_insert(struct index *ix, const struct chunk_id *id, const struct index_loc *loc);
/* Replace the location of id, which must be present (-ENOENT if not). */
int index_replace(struct index *ix, const struct chunk_id *id, const struct index_loc *loc);
/* Forget id; -ENOENT if it is not there. */
int index_remove(struct index *ix, const struct chunk_id *id);
size_t index_count(const struct index *ix);

/* "index/<32 hex>" of a pack id (PACK_KEY_LEN bytes are enough). */
void index_segment_key(const uint8_t pack_id[PACK_ID_LEN], char out[PACK_KEY_LEN]);
/* Encode the segment of one pack into a malloc'd buffer (sealed under k->meta unless
 * k is NULL). */
int index_segment_encode(const struct aead_keys *k, const uint8_t pack_id[PACK_ID_LEN],
			 const struct pack_entry *ents, uint32_t n, void **buf, size_t *len);
/* Verify (decrypt) and decode a segment that must belong to pack_id; entries are
 * malloc'd. -EBADMSG if damaged. */
int index_segment_decode(const struct aead_keys *k, const void *buf, size_t len,
			 const uint8_t pack_id[PACK_ID_LEN], struct pack_entry **ents,
			 uint32_t *n);

#endif
