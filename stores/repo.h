/* repo.h - the content-addressed chunk repository.
 *
 * A repository lives on a backend and holds:
 *   config                     repository header: magic, version, id, defaults (repo.c)
 *   keys/<32 hex>              key slots of an encrypted repository (keyring.c)
 *   lock                       (local backend only) flock'd by the one writer
 *   lease/<32 hex>             (S3 only) the writer lease (lease.c)
 *   packs/<2 hex>/<32 hex>     packs of chunks, about 16 MiB each (pack.c)
 *   index/<32 hex>             one index segment per pack (index.c)
 *   meta/<path>                small metadata objects: volume heads etc. (opaque here);
 *                              meta/vkeys/ holds the volume keys (vkey.h)
 *   gc/condemned/<32 hex>.<016x time_ns>
 *                              a pack gc found unneeded at that time (gc.c); it is
 *                              deleted by a later gc after the grace period. At open,
 *                              condemned packs are loaded last, so a chunk that gc moved
 *                              out of one is found in its new pack.
 *
 * Chunks are identified by a 32-byte id: SHA-256 of the plaintext in a plain
 * repository, HMAC-SHA256 under the id key in an encrypted one. The all-zero
 * chunk has the reserved null id (32 zero bytes) and is never stored.
 *
 * Crash order: a pack is written (fsync'd) before its index segment, and both before
 * any metadata that references its chunks (repo_flush() then repo_meta_put()).
 *
 * Thread safety: every function may be called from any thread concurrently.
 * All functions return 0 or a negative errno.
 */
#ifndef CAIRN_REPO_H
#define CAIRN_REPO_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

#define CHUNK_ID_LEN 32
#define CHUNK_SIZE_MIN (4u << 10)
#define CHUNK_SIZE_MAX (1u << 20)
#define CHUNK_SIZE_DEFAULT (64u << 10)

struct chunk_id {
	uint8_t b[CHUNK_ID_LEN];
};

/* Kind of a stored chunk; kept in pack headers so check/gc can walk trees. */
enum chunk_kind {
	CHUNK_DATA = 1, /* volume data */
	CHUNK_TREE = 2, /* block-map node (references other chunks) */
};

/* Hint OR'ed into the kind given to repo_chunk_put (and chunk_store put): the chunk is
 * likely to be rewritten soon (a partial-chunk fold of random IO), so compress it fast
 * (LZ4) rather than hard (LZ4HC, the default for whole chunks: sequential, cold data).
 * Only the effort changes, never the stored format. */
#define CHUNK_PUT_FAST 0x100

static inline int chunk_id_is_null(const struct chunk_id *id)
{
	for (int i = 0; i < CHUNK_ID_LEN; i++)
		if (id->b[i])
			return 0;
	return 1;
}

struct repo;

/* What unlocks an encrypted repository: a password, or the 32 bytes of a key file. */
struct repo_secret {
	const char *password;      /* NULL: none */
	size_t password_len;
	const uint8_t *raw_key;    /* 32 bytes, or NULL */
};

struct repo_create_opts {
	uint32_t chunk_size; /* default chunk size of new volumes; 0 = 64 KiB */
	int encrypt;         /* AES-256-GCM; needs secret */
	const struct repo_secret *secret; /* the first key slot's secret */
	const char *s3_endpoint; /* for s3:// urls: "http://127.0.0.1:9000"; NULL = AWS */
};

struct repo_open_opts {
	int read_only;             /* no lock, no writes */
	/* Read the config and unlock the keys, nothing more (implies read_only): the id is
	 * known and the password checked, but no index is loaded and chunk and metadata
	 * calls are not allowed. For the CLI to find a running daemon cheaply. */
	int probe;
	size_t cache_bytes;        /* decoded-chunk cache; 0 = default 256 MiB */
	const struct repo_secret *secret; /* needed by an encrypted repository */
	const char *s3_endpoint;   /* for s3:// urls, as in repo_create_opts */
	/* S3 only: local cache of packs and index segments, so reads of recent data do not
	 * go to S3. cache_dir wins; else <state_root>/<repo id>/cache; neither: no cache. */
	const char *cache_dir;
	const char *state_root;
	/* (any backend) the index table is kept across opens in <state_root>/<repo id>/index,
	 * else in "index" beside cache_dir; neither: rebuilt from the segments (index.h) */
	uint64_t disk_cache_bytes; /* bound of that cache; 0 = 4 GiB */
	unsigned lease_ttl_s;      /* S3 writer lease lifetime; 0 = 60 s ($CAIRN_LEASE_TTL) */
	/* Packs stored at once (writer threads, at most 32); 0 = $CAIRN_S3_UPLOADS, else 4
	 * on S3 and 1 on a local directory. */
	unsigned uploads;
	/* A command's short-lived open (not the daemon): the index table is still kept under
	 * state_root / cache_dir, but no disk cache is opened there (it is the daemon's), and
	 * the index summary of the open is a debug line. */
	int transient;
};

/* Create a new repository at url (a directory path or s3://bucket/prefix; a missing
 * directory or bucket is created). -EEXIST if one is there; -ENOKEY if encrypt without
 * a secret. */
int repo_create(const char *url, const struct repo_create_opts *o);
/* Open an existing repository. -ENOENT if there is none at url; -EBUSY if another
 * writer holds the lock or a fresh S3 lease (unless read_only); -EPROTO if the config
 * is not cairn's or its version is newer than this binary knows; -ENOKEY when the
 * repository is encrypted and no secret was given; -EKEYREJECTED when no key slot
 * opens with the secret (nothing is changed). */
int repo_open(const char *url, const struct repo_open_opts *o, struct repo **out);
/* Flush (repo_flush) and close. */
void repo_close(struct repo *r);

/* 16-byte random repository id as 32 hex chars (NUL-terminated, 33 bytes). */
const char *repo_id_hex(const struct repo *r);
uint32_t repo_default_chunk_size(const struct repo *r);
/* 1 if the repository is encrypted. */
int repo_encrypted(const struct repo *r);

/* ---- key slots (encrypted repositories) ----
 * Slots are independent objects: they may be added and removed through a read-only
 * open, even while a writer holds the repository. */
struct repo_key_info {
	char id[33];               /* slot id, 32 hex */
	const char *kind;          /* "password" or "key-file" */
	uint64_t created_ns;
	unsigned scrypt_log2_n, scrypt_r, scrypt_p;
	int current;               /* this open used it */
	int damaged;               /* checksum failed */
};
/* Add a slot for secret; its id goes to id_out (33 bytes). -EINVAL if not encrypted. */
int repo_key_add(struct repo *r, const struct repo_secret *s, char *id_out);
/* Call cb for every slot, in id order. */
int repo_key_list(struct repo *r, int (*cb)(void *arg, const struct repo_key_info *ki), void *arg);
/* Remove slot id: -ENOENT if none, -EBUSY if it is the last sound one. */
int repo_key_remove(struct repo *r, const char *id);
/* Id of the slot this open used ("" if plain). */
const char *repo_key_current(const struct repo *r);

/* For stores/ internals that walk the objects (check, gc): the repository's backend
 * and its keys (NULL when plain). */
struct aead_keys;
struct backend *repo_backend(struct repo *r);
const struct aead_keys *repo_aead_keys(const struct repo *r);

/* Store a chunk of len bytes (len <= CHUNK_SIZE_MAX): compute its id, and unless it is
 * already present (dedup) or all zero (null id), compress and append it to the open
 * pack. The chunk is readable at once; it is durable after the next repo_flush(). */
int repo_chunk_put(struct repo *r, enum chunk_kind kind, const void *data, size_t len,
		   struct chunk_id *id_out);
/* As repo_chunk_put, for a volume with a key of its own (vkey.h): a CHUNK_DATA chunk
 * gets its id and payload under the subkeys of volume key ref (0: as repo_chunk_put);
 * a CHUNK_TREE chunk stays under the repository's keys. -EKEYREVOKED: the key was
 * destroyed; -ENOKEY: there is no such key; -EOPNOTSUPP: a plain repository. */
int repo_chunk_put_keyed(struct repo *r, uint32_t ref, enum chunk_kind kind, const void *data,
			 size_t len, struct chunk_id *id_out);
/* Read a chunk into buf (cap bytes); *len gets its plaintext length. The null id is
 * -EINVAL here: callers read it as zeros themselves. -ENOENT: not in the index.
 * -EBADMSG: stored bytes damaged (checksum or authentication failed); never wrong data.
 * -ENOBUFS: cap is smaller than the chunk. -EKEYREVOKED: it is under a volume key that
 * was destroyed (CRYPTO ERASE). */
int repo_chunk_get(struct repo *r, const struct chunk_id *id, void *buf, size_t cap, size_t *len);
/* 1 if present, 0 if not. */
int repo_chunk_has(struct repo *r, const struct chunk_id *id);
/* A put of a chunk the caller knows by id (its data hashed earlier): 0 when the
 * repository holds it, which then counts as reused for a running gc exactly as a put
 * answered by dedup does; -ENOENT when it does not (the caller puts the data). */
int repo_chunk_ref(struct repo *r, const struct chunk_id *id);
/* Plaintext and stored (record) bytes of a present chunk; -ENOENT if absent. */
int repo_chunk_stat(struct repo *r, const struct chunk_id *id, uint32_t *plain_len,
		    uint32_t *rec_len);
/* Seal the open pack (if any chunks) and write its index segment, both durable. */
int repo_flush(struct repo *r);

/* Small metadata objects (volume heads, ...), stored under "meta/<key>". Written whole,
 * durably. With excl, -EEXIST if the key exists. */
int repo_meta_put(struct repo *r, const char *key, const void *data, size_t len, int excl);
int repo_meta_get(struct repo *r, const char *key, void **data, size_t *len);
int repo_meta_del(struct repo *r, const char *key);
/* Keys (without the "meta/" prefix) starting with prefix, in order. */
int repo_meta_list(struct repo *r, const char *prefix, backend_list_cb cb, void *arg);

struct repo_stats {
	uint64_t chunks;        /* unique chunks stored */
	uint64_t tree_chunks;   /* of which block-map nodes */
	uint64_t stored_bytes;  /* bytes in packs (after compression) */
	uint64_t plain_bytes;   /* plaintext bytes of unique chunks */
	uint64_t packs;
	uint64_t dedup_hits;    /* puts answered by an existing chunk, since open */
	uint64_t cache_hits, cache_misses;
	uint64_t index_packs_kept; /* at open: packs the index table kept in the state dir covered */
	uint64_t index_packs_read; /* at open: packs whose index segment (or trailer) was read */
};
void repo_get_stats(struct repo *r, struct repo_stats *st);

/* ---- for stores/gc.c: pack slots, moves and retirement, and a hook that tells gc
 * what is reused while it runs ----
 * Pack slots are numbered from 0 and never reused; index locations name them. */
#define REPO_GC_CONDEMNED "gc/condemned/"
struct pack_entry;

/* Number of pack slots so far (slot numbers are below it). */
uint32_t repo_pack_slots(struct repo *r);
/* Slot s holds a stored pack: 0 with its id (16 bytes) and record count; -ENOENT when
 * it is open, not yet stored, or retired. */
int repo_pack_get(struct repo *r, uint32_t s, uint8_t id[16], uint32_t *nents);
/* Where id is stored: 0 with its slot and record ordinal; -ENOENT if absent. */
int repo_chunk_locate(struct repo *r, const struct chunk_id *id, uint32_t *slot, uint32_t *entry);

struct repo_gc_hook {
	/* Called under the repository lock: a put was answered by the stored chunk
	 * (slot, entry) (dedup), so it is referenced again. Must not block. */
	void (*reused)(void *arg, uint32_t slot, uint32_t entry);
	/* Before the metadata object key (without "meta/") is deleted or replaced (a put
	 * without excl): the hook may still read it. */
	void (*meta_replacing)(void *arg, const char *key);
	void *arg;
};
/* Install the hook (one at a time), or remove it with NULL; removal returns once no
 * call of the old hook runs any more. */
void repo_gc_set_hook(struct repo *r, const struct repo_gc_hook *h);
/* Retire slot s, whose records are ents[n] (as its index segment lists them):
 * atomically with puts, unless busy(arg) (called under the repository lock) returns
 * non-zero (then -EBUSY and nothing changes), forget every index entry that still
 * points into s and mark the slot retired. From then on no put dedups against the pack
 * and its chunks read as absent; the caller deletes its objects. */
int repo_pack_retire(struct repo *r, uint32_t s, const struct pack_entry *ents, uint32_t n,
		     int (*busy)(void *arg), void *arg);
/* Register a pack gc wrote (durable, with its index segment) holding records copied
 * verbatim: ents[i] was the record at from_off[i] of slot from_slot[i]. The index is
 * pointed at the new record where it still names the old one. *slot_out: its slot. */
int repo_pack_adopt(struct repo *r, const uint8_t id[16], const struct pack_entry *ents,
		    uint32_t n, const uint32_t *from_slot, const uint64_t *from_off,
		    uint32_t *slot_out);

/* The chunk layer as seen from volumes/: a struct of function pointers so that tests
 * can put a fault-injecting layer between a volume and its repository. */
struct chunk_store;
struct chunk_store_ops {
	/* as repo_chunk_put */
	int (*put)(void *ctx, enum chunk_kind kind, const void *data, size_t len, struct chunk_id *id);
	/* as repo_chunk_get */
	int (*get)(void *ctx, const struct chunk_id *id, void *buf, size_t cap, size_t *len);
	/* as repo_chunk_ref (optional: NULL where a layer has none; callers then put) */
	int (*ref)(void *ctx, const struct chunk_id *id);
	/* as repo_flush: everything put so far becomes durable */
	int (*flush)(void *ctx);
	/* as repo_meta_put / get / del / list */
	int (*meta_put)(void *ctx, const char *key, const void *data, size_t len, int excl);
	int (*meta_get)(void *ctx, const char *key, void **data, size_t *len);
	int (*meta_del)(void *ctx, const char *key);
	int (*meta_list)(void *ctx, const char *prefix, backend_list_cb cb, void *arg);
	/* ---- volume keys (vkey.h). Optional: NULL where the store has none (a read-only
	 * view); callers then get -EOPNOTSUPP. get above reads a chunk under any key: the
	 * record names its key. ---- */
	/* A store like this one whose put stores CHUNK_DATA chunks under volume key ref
	 * (vkey.h; CHUNK_TREE ones stay under the repository's keys); every other member
	 * as this one. Valid until the repository is closed. The same ref always gives
	 * the same ops and ctx, so two stores share chunks by id iff they compare equal.
	 * -ENOKEY: no such key; -EKEYREVOKED: destroyed; -EOPNOTSUPP: plain repository. */
	int (*keyed)(void *ctx, uint32_t ref, struct chunk_store *out);
	/* as vkey_create / vkey_destroy */
	int (*key_new)(void *ctx, const char *volid, uint64_t gen, uint32_t prev, uint32_t *ref);
	int (*key_destroy)(void *ctx, uint32_t ref);
	/* What the key object of ref says: the key it replaced (*prev, 0: none) and its
	 * generation; -EKEYREVOKED if destroyed, -ENOKEY if there is no such key. */
	int (*key_info)(void *ctx, uint32_t ref, uint32_t *prev, uint64_t *gen);
};

struct chunk_store {
	const struct chunk_store_ops *ops;
	void *ctx;
};

/* The chunk store that forwards to a repository. */
void repo_chunk_store(struct repo *r, struct chunk_store *out);

/* ---- refresh (cairn mount, issue 6) ---- */
/* A read-only open (cairn mount beside cairn serve): add to the index the packs a
 * writer stored since the open or the last refresh (from their index segments, else
 * their trailers); *added (may be NULL) gets how many. Chunks reached from metadata
 * read before the call are found after it. One listing of packs/ per call: callers
 * rate-limit. A writable open's index is always complete: 0 at once. */
int repo_refresh(struct repo *r, unsigned *added);

#endif
