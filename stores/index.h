/* index.h - where each stored chunk is: id -> (pack, offset, length, plain length, kind).
 *
 * A table whose RAM is a few bytes per chunk: an in-memory Bloom filter, sorted runs in
 * files of a local directory (read with pread, cached by the page cache) and a small
 * in-memory table of recent changes (layout and policy in index.c; run files, merges and
 * the kept table in index_persist.c). Runs are merged by a background thread of the
 * table, never inside a change. Packs are named by a small number (the repository's
 * pack slot), not by their id.
 *
 * Persistence (index_open_persisted): the runs, the pack-slot table they refer to and a
 * manifest naming both live in a local state directory and are loaded at the next
 * open, so an open reads only the index segments of packs the table does not cover.
 * One process (the writer) updates the directory; others use it read-only.
 *
 * Calls are not locked against each other: the owner (the repository) serialises every
 * call; the background thread is synchronised inside.
 *
 * Index segments "index/<32 hex pack id>" are the persistent form in the repository: one
 * per pack, listing its records (layout in index.c).
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

/* A pack slot as the persisted table records it. */
enum index_pack_state {
	INDEX_PACK_GONE = 0,    /* no pack: entries naming it are dead (a miss) */
	INDEX_PACK_STORED = 1,  /* stored, and every record of its segment is in the table */
	INDEX_PACK_PENDING = 2, /* open or not yet stored: entries naming it are dead at the
				 * next open, and the pack, if stored by then, is read anew */
};
#define INDEX_PACK_SHADOW 1u /* flags: some of its records are not the table's location of
			      * their id (another pack's copy is) */
struct index_pack {
	uint8_t id[PACK_ID_LEN];
	uint32_t nents;
	uint8_t state;          /* enum index_pack_state */
	uint8_t flags;          /* INDEX_PACK_SHADOW (filled by the table) */
};

/* Sums over the live entries (not removed, not naming a dead slot). */
struct index_totals {
	uint64_t chunks, tree_chunks, rec_bytes, plain_bytes;
};

/* What the owner of a persisted table provides. */
struct index_owner {
	/* The pack slots now, one per slot number (*packs malloc'd; flags may stay 0).
	 * Called from inside a table-changing call or index_checkpoint(), with the owner's
	 * serialisation held, at a moment when every change so far is in the runs. Nonzero:
	 * no checkpoint this time. */
	int (*packs)(void *arg, struct index_pack **packs, uint32_t *n);
	void *arg;
};

struct index_persist {
	const char *dir;           /* the table's directory (created); NULL: not persisted */
	uint8_t owner_id[16];      /* the repository id: a manifest of another is unsound */
	int writer;                /* may update the directory (else it is only read) */
	struct index_owner owner;  /* writer only */
};

/* An empty table whose run files go to dir (NULL, or not writable: $TMPDIR or /tmp),
 * unlinked at creation: nothing outlives the process. */
int index_open(const char *dir, struct index **out);
/* index_open(NULL); expect is a hint only. */
int index_create(size_t expect, struct index **out);
/* The table persisted in p->dir, when its manifest is sound: *loaded 1, *packs (malloc'd,
 * *npacks of them; the caller frees) the pack-slot table its entries refer to, flags
 * filled; slots GONE or PENDING are dead already. Else (none, damaged, another
 * repository, a run file missing or damaged: a log line says which) an empty table,
 * *loaded 0, and a writer removes the old manifest before anything else. A writer takes
 * a lock file in the directory: when another process holds it, this one is a reader.
 * A reader (p->writer 0, or the lock held elsewhere) never creates or changes anything
 * in the directory, none there reading as no table; its runs are unlinked files in
 * $TMPDIR. It may read while the writer merges (index_persist.c says why). Not
 * persisted (p->dir NULL or unusable): as index_open(NULL). */
int index_open_persisted(const struct index_persist *p, struct index **out,
			 struct index_pack **packs, uint32_t *npacks, int *loaded);
/* Forget a loaded table (as if nothing was loaded: empty, the manifest removed). */
void index_discard(struct index *ix);
/* The pack of slot is gone: entries naming it read as absent from now on. After the
 * dead slots of a loaded table are set, index_settle() recounts the totals (one pass
 * over the runs, only when a slot with counted entries died). */
void index_set_dead(struct index *ix, uint32_t slot);
int index_settle(struct index *ix);
/* Writer: write every change so far as a run and record the table in the manifest
 * (pack slots from the owner). sync: now, durably (write, fsync, rename); else handed to
 * the background thread. Also turns on the periodic checkpoints (after a run is
 * written, at most every 30 s, or $CAIRN_INDEX_CHECKPOINT_S). 0 at once when not a
 * persisting writer (or ix NULL). */
int index_checkpoint(struct index *ix, int sync);

/* For tests and bench: the number of recent changes kept in RAM before they are
 * written as a run (default 8192; SIZE_MAX keeps everything in RAM, which is the
 * former all-in-RAM table), the number of runs on disk, the period of checkpoints,
 * a wait until the background thread is idle (merges and manifest writes done), and
 * (bench: the former behaviour) a change that writes a run waiting for its merges. */
void index_set_mem_max(struct index *ix, size_t n);
void index_set_inline_merges(struct index *ix, int on);
unsigned index_runs(const struct index *ix);
void index_set_checkpoint_interval(struct index *ix, unsigned seconds);
void index_quiesce(struct index *ix);
/* Close: a writer's pending manifest write is finished first. */
void index_destroy(struct index *ix);
/* 0 and *loc if present, -ENOENT if not, -EIO if the table file is damaged (never a
 * wrong location). */
int index_lookup(const struct index *ix, const struct chunk_id *id, struct index_loc *loc);
/* Add id; -EEXIST (table unchanged) if it is already there. */
int index_insert(struct index *ix, const struct chunk_id *id, const struct index_loc *loc);
/* An entry of a pack's segment read at open: added if id is absent; if present, newer
 * decides (1: loc replaces it, 0: it stays). The pack whose copy is not the table's
 * location gets INDEX_PACK_SHADOW. */
int index_load(struct index *ix, const struct chunk_id *id, const struct index_loc *loc,
	       int newer);
/* Replace the location of id, which must be present (-ENOENT if not). */
int index_replace(struct index *ix, const struct chunk_id *id, const struct index_loc *loc);
/* Forget id; -ENOENT if it is not there. */
int index_remove(struct index *ix, const struct chunk_id *id);
size_t index_count(const struct index *ix);
void index_get_totals(const struct index *ix, struct index_totals *t);

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
