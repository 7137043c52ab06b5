/* volume.h - the volume engine: a block device on a chunk store.
 *
 * A volume is a byte-addressed disk of a fixed size, split into chunks of a fixed
 * size (a power of two, 4 KiB..1 MiB, set at creation). Its state is:
 *   - in the repository: a head object "meta/volumes/<volid>/head.<016x version>"
 *     (the newest version wins) naming the volume, its size and chunk size, the root of
 *     its block map (a radix tree of CHUNK_TREE chunks, chunk number -> chunk id), and
 *     the journal seq the map includes (every record with seq < ckpt_seq is folded);
 *   - in the state directory <state_dir>/<volid>/: the journal (the CDP log), whose
 *     records with seq >= ckpt_seq are replayed into the overlay at open.
 *
 * Write path: volume_write() appends one journal record and applies it to the
 * in-memory overlay, then returns: the write is acknowledged. With fua (or after
 * volume_flush()) the record is durable (fdatasync, group commit) before return.
 * The repository is never on the acknowledgement path. Background fold threads
 * turn overlay chunks into stored chunks, update the map and write checkpoints.
 * When the overlay or the journal is full, writers wait for folding (backpressure).
 *
 * Offsets and lengths are multiples of VOLUME_SECTOR. All calls are thread-safe and
 * return 0 or a negative errno (-ERANGE: beyond the end; -EIO/-EBADMSG: the store
 * failed or returned damaged data for that range; -ENOENT: no such volume).
 */
#ifndef CAIRN_VOLUME_H
#define CAIRN_VOLUME_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "repo.h"

#define VOLUME_SECTOR 512u
#define VOLUME_NAME_MAX 64 /* [A-Za-z0-9._-], starting with an alphanumeric */

/* What the history of a volume keeps (stored in its head, so it persists; `cairn volume
 * set`). Every write for retain_ns; past that, one point in time per hourly_every_ns
 * while younger than hourly_ns, and one per daily_every_ns while younger than
 * daily_ns (the oldest checkpoint of each period, made exact); snapshots stay until
 * deleted. retain_ns 0 keeps no write past folding (CDP off). */
struct volume_retention {
	uint64_t retain_ns;        /* default 24 h */
	uint64_t hourly_ns;        /* default 7 days */
	uint64_t hourly_every_ns;  /* default 1 h */
	uint64_t daily_ns;         /* default 30 days */
	uint64_t daily_every_ns;   /* default 1 day */
};
#define VOLUME_NS_PER_S 1000000000ull
#define VOLUME_RETAIN_DEFAULT_NS (24ull * 3600 * VOLUME_NS_PER_S)
void volume_retention_default(struct volume_retention *r);

struct volume_info {
	char name[VOLUME_NAME_MAX + 1];
	char id[33];         /* 16 random bytes as hex: the volume's identity, stable */
	uint64_t size;       /* bytes */
	uint32_t chunk_size; /* bytes */
	uint64_t created_ns; /* wall clock */
	uint64_t ckpt_seq;   /* journal seq folded into the stored map */
	struct volume_retention retention;
};

/* 1 if name is a valid volume name. */
int volume_name_valid(const char *name);

/* Create a volume. -EEXIST if the name is taken; -EINVAL on a bad name, a size that is
 * zero or not a multiple of VOLUME_SECTOR, or a chunk size that is not a power of two
 * in [CHUNK_SIZE_MIN, CHUNK_SIZE_MAX]. chunk_size 0 = CHUNK_SIZE_DEFAULT. */
int volume_create(struct chunk_store *cs, const char *name, uint64_t size, uint32_t chunk_size,
		  struct volume_info *info_out);
/* Create volume name whose block map starts as root (a clone of a materialized
 * point, sharing every chunk): O(1). Same errors as volume_create. */
int volume_create_from(struct chunk_store *cs, const char *name, uint64_t size,
		       uint32_t chunk_size, const struct chunk_id *root,
		       struct volume_info *info_out);
/* Call cb for every live volume, ordered by name. A non-zero return from cb stops it. */
int volume_list(struct chunk_store *cs, int (*cb)(void *arg, const struct volume_info *vi),
		void *arg);
/* Look one volume up by name. -ENOENT if there is none. */
int volume_lookup(struct chunk_store *cs, const char *name, struct volume_info *out);
/* Delete a volume (writes a tombstone head; chunks are reclaimed by gc). -EBUSY if open. */
int volume_delete(struct chunk_store *cs, const char *name);

struct volume_open_opts {
	const char *state_dir;     /* journal lives in <state_dir>/<volid>/ ; required */
	size_t overlay_bytes;      /* RAM for unfolded chunks; 0 = 256 MiB */
	uint64_t journal_max;      /* unfolded journal bytes before writers wait; 0 = 1 GiB */
	uint64_t segment_bytes;    /* journal segment size; 0 = 64 MiB */
	int read_only;             /* no journal, no folding: reads of the stored map only */
	uint64_t retain_ns;        /* overrides the volume's stored retention window when
				    * non-zero (tests); 0 = the stored one */
};

struct volume;

/* Open a volume for IO: load its head, replay the journal tail (cutting a torn tail at
 * the first bad checksum), start fold threads. */
int volume_open(struct chunk_store *cs, const char *name, const struct volume_open_opts *o,
		struct volume **out);
/* Fold everything, write a final checkpoint, stop threads, close the journal. */
int volume_close(struct volume *v);

const struct volume_info *volume_get_info(const struct volume *v);

int volume_read(struct volume *v, uint64_t off, void *buf, size_t len);
int volume_write(struct volume *v, uint64_t off, const void *buf, size_t len, int fua);
/* Make [off, off+len) read as zeros (UNMAP, WRITE SAME of zeros). Journaled like a write. */
int volume_write_zeroes(struct volume *v, uint64_t off, uint64_t len, int fua);
/* Every write acknowledged before this call is durable when it returns. */
int volume_flush(struct volume *v);
/* Fold every unfolded write into the repository and write a checkpoint (tests, close). */
int volume_checkpoint(struct volume *v);

struct volume_stats {
	uint64_t next_seq;         /* seq the next record will get */
	uint64_t ckpt_seq;         /* folded into the stored map up to here */
	uint64_t overlay_chunks;   /* chunks with unfolded data in RAM */
	uint64_t journal_bytes;    /* bytes of journal on disk */
	uint64_t unfolded_bytes;   /* of it, segments holding unfolded records (backpressure
				    * keeps this near journal_max; the rest is CDP history) */
	uint64_t writes, reads, flushes, folds;
};
void volume_get_stats(struct volume *v, struct volume_stats *st);

/* ---- history (history.h, point.h) ---- */

/* Cut the history now: *seq_out gets the seq of the next record, so the state at
 * seq_out holds exactly the writes acknowledged before this call; they are durable on
 * return, and a base for the point is recorded. O(1): no folding, no data copied. */
int volume_cut(struct volume *v, uint64_t *seq_out);
/* Append a MARK record labelled label (history_label_valid, else -EINVAL), durable on
 * return, and record it for `cdp list`. */
int volume_mark(struct volume *v, const char *label, uint64_t *seq_out);
/* Roll the volume back to the map root (a materialized point): appends a RESTORE
 * record (*seq_out gets its seq), so the writes it undoes stay in the history and the
 * state before it remains a point (seq:*seq_out). Writers wait meanwhile; O(1) in the
 * volume size. */
int volume_restore(struct volume *v, const struct chunk_id *root, uint64_t *seq_out);
/* The state directory the volume was opened with (NULL if read-only). */
const char *volume_state_dir(const struct volume *v);
/* Set the retention of volume name (stored in a new head version, so it persists).
 * v: the volume when it is open for IO here (NULL otherwise: then -EBUSY if another
 * opener holds it); the new policy applies to it at once. -EINVAL if not
 * volume_retention_valid(r). */
int volume_set_retention(struct chunk_store *cs, struct volume *v, const char *name,
			 const struct volume_retention *r);
/* 1 if r is a valid policy (both periods non-zero). */
int volume_retention_valid(const struct volume_retention *r);

/* ---- provisioning and SCSI state (volume_map.c, volume_blob.c) ---- */

/* Provisioning of the chunk holding off: *mapped = 1 when it holds data (a stored chunk,
 * or unfolded writes that are not all zeros), 0 when it is deallocated (no stored
 * chunk: it reads as zeros). *run gets the bytes from off, at most len, that share that
 * state (chunk granularity; the scan stops early past a bound, so a run may end before
 * the state changes). -ERANGE beyond the end, -EINVAL on an unaligned range or len 0. */
int volume_map_status(struct volume *v, uint64_t off, uint64_t len, uint64_t *run, int *mapped);

/* A small opaque blob named name ([a-z0-9-], 1..32 chars) kept with the volume in the
 * repository's metadata (encrypted like it), durable when put returns; at most 1 MiB.
 * get gives a malloc'd copy of the newest one, -ENOENT if none was ever put. The LUN
 * adapter keeps the SCSI persistent-reservation state (APTPL) in one. */
int volume_blob_put(struct volume *v, const char *name, const void *data, size_t len);
int volume_blob_get(struct volume *v, const char *name, void **data, size_t *len);

/* Internals of an open volume for volume_map.c and volume_blob.c only (the engine's
 * locking rules are at the top of volume.c: the overlay is guarded by *olock; ov is NULL
 * when read-only). */
struct overlay;
struct blockmap;
struct volume_internals {
	struct chunk_store *cs;
	struct overlay *ov;
	struct blockmap *bm;
	pthread_mutex_t *olock;
	unsigned cshift;
	uint64_t nchunks;
};
void volume_get_internals(struct volume *v, struct volume_internals *out);

#endif
