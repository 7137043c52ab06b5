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
	/* A key of its own (`volume create --own-key`, vkey.h): its data chunks are under
	 * volume key key_ref (0: the repository's keys), which a CRYPTO ERASE destroys
	 * and replaces (key_gen counts them: 1 at creation). Clones share the key. */
	uint32_t key_ref;
	uint64_t key_gen;
	/* Bytes per physical block the LUN reports (READ CAPACITY (16) LOGICAL BLOCKS PER
	 * PHYSICAL BLOCK EXPONENT; 4096: a "512e" disk): 0 = VOLUME_SECTOR, else a power
	 * of two from VOLUME_SECTOR to chunk_size. Fixed at creation; clones inherit it. */
	uint32_t phys_block;
};

/* 1 if name is a valid volume name. */
int volume_name_valid(const char *name);

/* Create a volume. -EEXIST if the name is taken; -EINVAL on a bad name, a size that is
 * zero or not a multiple of VOLUME_SECTOR, or a chunk size that is not a power of two
 * in [CHUNK_SIZE_MIN, CHUNK_SIZE_MAX]. chunk_size 0 = CHUNK_SIZE_DEFAULT. */
int volume_create(struct chunk_store *cs, const char *name, uint64_t size, uint32_t chunk_size,
		  struct volume_info *info_out);
/* 1 if phys_block is a valid volume_info.phys_block for that chunk size (0 included). */
int volume_phys_block_valid(uint32_t phys_block, uint32_t chunk_size);
/* Create volume name whose block map starts as root (a clone of a materialized
 * point, sharing every chunk): O(1). Same errors as volume_create. */
int volume_create_from(struct chunk_store *cs, const char *name, uint64_t size,
		       uint32_t chunk_size, const struct chunk_id *root,
		       struct volume_info *info_out);
/* As volume_create_from (root NULL: an empty map), with the volume's keys: own_key 0,
 * the repository's; VOLUME_KEY_NEW, a new volume key of its own (-EOPNOTSUPP unless the
 * repository is encrypted); else the key_ref of the own-key volume whose chunks root
 * holds (a clone shares its key, at its generation key_gen). phys_block: the
 * volume_info field (0: VOLUME_SECTOR); -EINVAL unless volume_phys_block_valid. */
#define VOLUME_KEY_NEW UINT32_MAX
int volume_create_keyed(struct chunk_store *cs, const char *name, uint64_t size,
			uint32_t chunk_size, uint32_t phys_block, const struct chunk_id *root,
			uint32_t own_key, uint64_t key_gen, struct volume_info *info_out);
/* Call cb for every live volume, ordered by name. A non-zero return from cb stops it. */
int volume_list(struct chunk_store *cs, int (*cb)(void *arg, const struct volume_info *vi),
		void *arg);
/* Look one volume up by name. -ENOENT if there is none. */
int volume_lookup(struct chunk_store *cs, const char *name, struct volume_info *out);
/* Delete a volume (writes a tombstone head; chunks are reclaimed by gc). -EBUSY if open. */
int volume_delete(struct chunk_store *cs, const char *name);
/* volume_delete, then, once its tombstone is stored, the volume's local state in
 * state_dir (<state_dir>/<volid>: journal, fetched segments) is removed (volume_state.c);
 * a failure there is logged and left to volume_state_sweep(). state_dir NULL: as
 * volume_delete. */
int volume_delete_local(struct chunk_store *cs, const char *name, const char *state_dir);
/* Remove what a crash between volume_delete_local's two steps left: every
 * <state_dir>/<32 hex> holding a journal/ or jcache/ whose volume's newest head in cs is
 * a tombstone (a log line each). A live volume's stays, and so does one of a volume cs
 * does not know (another repository's sharing the directory: a log line). *removed (may
 * be NULL): how many were. -errno if the repository cannot tell (nothing removed then). */
int volume_state_sweep(struct chunk_store *cs, const char *state_dir, unsigned *removed);

struct volume_open_opts {
	const char *state_dir;     /* journal lives in <state_dir>/<volid>/ ; required */
	size_t overlay_bytes;      /* RAM for unfolded chunks; 0 = 256 MiB */
	uint64_t journal_max;      /* unfolded journal bytes before writers wait; 0 = 1 GiB */
	uint64_t segment_bytes;    /* journal segment size; 0 = 64 MiB */
	uint64_t journal_keep;     /* bytes of journal segments kept in the state directory
				    * once they are stored in the repository and below the
				    * checkpoint (the local cache of recent history); 0 = 256 MiB */
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
/* EXTENDED COPY (volume_copy.c): make [dst, dst+len) of v a copy of [src, src+len) of
 * sv as it was when the call began (sv is v, or another volume open for IO on the
 * same chunk store; overlapping ranges copy like memmove). Whole chunks aligned on
 * both sides are shared by chunk id: one COPY journal record, no chunk read, decoded
 * or stored. Unaligned heads and tails, and ranges whose offsets differ modulo the
 * chunk size, are read and written (WRITE records). Atomic with respect to every other
 * write to either volume (both write orders are held throughout); with fua, durable
 * before return, else like a write (durable after volume_flush). Volumes whose data is
 * under different keys (another chunk store: an own-key volume and any volume not
 * sharing its key, vkey.h) cannot share chunks: the whole range is read and written.
 * -EXDEV if sv has another chunk size; -EROFS if v is read-only. */
int volume_copy(struct volume *v, uint64_t dst, struct volume *sv, uint64_t src, uint64_t len,
		int fua);
/* Fold every unfolded write into the repository and write a checkpoint, then wait for
 * a journal segment upload in flight (gc settles through it; tests). */
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

/* ---- purge of the history (SANITIZE: volume_purge.c) ---- */

/* Make every state of v before now unrecoverable from its history, keeping its current
 * state: every acknowledged write is folded into the head (written twice more; every
 * older head version is deleted); snapshots that are not materialized are materialized
 * (named snapshots, like clones, are the user's own objects and stay); then the journal
 * records before now (local segments, the segments stored in the repository and their
 * fetched copies), every history checkpoint and every mark before now are deleted, and
 * an exact checkpoint of the current state starts the new history (`cdp list` and
 * points start there; an earlier seq or time is -ENODATA). Writers wait meanwhile.
 * *seq_out (may be NULL): the seq the history now starts at. The chunks that only the
 * dropped history referenced stay in the repository until a gc deletes them. */
int volume_purge_history(struct volume *v, uint64_t *seq_out);
/* The locked core of it (volume.c): with writers held off and every record folded (the
 * head holds every record < seq and none after), fn(arg, seq, VOLUME_RESET_KEEP, 0)
 * runs while the history is intact (save what must stay), then the local journal
 * before seq is deleted, an exact history checkpoint at seq and two new head versions
 * (the newer one head_version) are written, and fn(arg, seq, VOLUME_RESET_DROP,
 * head_version) deletes the rest; no checkpoint, retention or upload runs meanwhile. */
enum { VOLUME_RESET_KEEP = 1, VOLUME_RESET_DROP = 2 };
typedef int (*volume_reset_fn)(void *arg, uint64_t seq, int stage, uint64_t head_version);
int volume_history_reset(struct volume *v, volume_reset_fn fn, void *arg, uint64_t *seq_out);

/* ---- CRYPTO ERASE (volume_purge.c) ---- */

/* 0 if v can be crypto-erased now; -EOPNOTSUPP if it has no key of its own; -EBUSY if
 * another live volume (a clone) shares its key (*other gets its name when not NULL). */
int volume_crypto_erase_check(struct volume *v, char other[VOLUME_NAME_MAX + 1]);
/* 1 if a live volume other than the one with id self_id (may be "") has its data under
 * volume key ref (its name to other when not NULL), 0 if none, -errno. */
int volume_key_shared(struct chunk_store *cs, uint32_t ref, const char *self_id,
		      char other[VOLUME_NAME_MAX + 1]);
/* SANITIZE CRYPTO ERASE: a new volume key (the next generation) replaces the volume's,
 * the volume becomes empty (reads zeros) with no unfolded write folded, its history is
 * dropped (local journal, journal segments in the repository and their fetched copies,
 * history checkpoints, marks, old heads) and so are its snapshots (they were under the
 * old key), then the old key is destroyed: every chunk stored under it is unreadable
 * at once (gc reclaims the space later), and no decoded copy stays in the chunk cache.
 * No data is read or rewritten. Idempotent: a run cut short by a crash is run again
 * (a key that an earlier run replaced but did not destroy is destroyed first).
 * Writers wait meanwhile. Errors as volume_crypto_erase_check, or the store's. */
int volume_crypto_erase(struct volume *v);
/* The locked core (volume.c): with writers, folds, checkpoints and uploads held off,
 * drop every unfolded write (their overlay buffers wiped), delete the local journal
 * below the next seq, switch the volume to chunk store ncs (volume key nref,
 * generation ngen) with an empty map, write two new head versions (the newer one
 * head_version), then fn(arg, seq, head_version) deletes the rest of the history (all
 * of it: every history checkpoint too), then an exact history checkpoint of the empty
 * map at seq is written; no checkpoint, retention or upload runs meanwhile. */
typedef int (*volume_rekey_fn)(void *arg, uint64_t seq, uint64_t head_version);
int volume_rekey_reset(struct volume *v, const struct chunk_store *ncs, uint32_t nref,
		       uint64_t ngen, volume_rekey_fn fn, void *arg, uint64_t *seq_out);

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

/* For volume_copy.c only: the write order (wlock, taken after waiting for journal
 * space) and what may be done while holding it. */
void volume_order_lock(struct volume *v);
void volume_order_unlock(struct volume *v);
/* Append a WRITE record of len bytes (at most the journal's payload) and apply it. */
int volume_locked_write(struct volume *v, uint64_t off, const void *buf, uint32_t len,
			uint64_t *seq);
/* The chunk ids of chunks [c, c+n) as the volume holds them now, durable in the store:
 * their unfolded writes are folded first, and the store flushed when a fold since the
 * last flush may have put one of them. */
int volume_locked_resolve(struct volume *v, uint64_t c, uint32_t n, struct chunk_id *ids);
/* Append a COPY record making chunks [c, c+n) the ids given (durable ones, from
 * volume_locked_resolve of sv at src_off) and apply it. */
int volume_locked_share(struct volume *v, uint64_t c, uint32_t n, const struct chunk_id *ids,
			const struct volume *sv, uint64_t src_off, uint64_t *seq);
/* Chunk ids one COPY record may carry. */
uint32_t volume_share_max(struct volume *v);
/* Every record up to seq is durable on return. */
int volume_sync_to(struct volume *v, uint64_t seq);

#endif
