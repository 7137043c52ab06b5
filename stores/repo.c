/* repo.c - the content-addressed chunk repository (see repo.h).
 *
 * "config" object, JSON (json-c), written once with BACKEND_PUT_EXCL:
 *   {
 *     "magic": "cairn-repository",   must match, else -EPROTO
 *     "version": 2,                  integer; newer than REPO_VERSION -> -EPROTO
 *     "id": "<32 hex>",              16 random bytes
 *     "chunk_size": 65536,           default chunk size of new volumes
 *     "encryption": "none"           or "aes-256-gcm"; anything else -> -EPROTONOSUPPORT
 *     "key_slots": "keys/"           (encrypted only) where the key slots are (keyring.c)
 *   }
 * The config carries no checksum: JSON that does not parse, or lacks a field, is -EPROTO.
 * It names no volume and no size: everything else about the data is in sealed objects.
 *
 * Metadata objects "meta/<key>" (version 2): plain, "CAIRNMT1", XXH3_64bits of the
 * content (8 bytes, little-endian), then the content; encrypted, the content sealed
 * under the meta key with the object key "meta/<key>" as aad (aead.h). Either way a
 * damaged object reads as -EBADMSG. Version 1 repositories stored the content bare.
 *
 * "lock" (local directory only): flock(LOCK_EX|LOCK_NB) by the one writer; a read-only
 * open neither creates nor takes it. On S3 the writer holds a lease instead (lease.c).
 *
 * Concurrency: one mutex (r->lock) guards the index, the pack slots and the open pack.
 * It is held only for hash probes and record copies; SHA-256, LZ4, checksums and every
 * backend call run outside it. repo_chunk_put looks the id up, encodes the record into
 * a pooled scratch buffer, then appends under the lock after a second lookup, so
 * concurrent puts of one content store it once. A full pack is swapped for a fresh one
 * under the lock and handed to the writer pool, which stores it outside the lock;
 * until it is stored its records are served from memory.
 *
 * Writer pool: 'nwriters' threads (repo_open_opts.uploads; default 4 on S3, 1 on a
 * local directory) each take the lowest pending SEALED slot, so up to nwriters packs
 * upload at once, each with its own backend request (the S3 backend runs them on
 * separate pooled connections). At most max_sealed = MAX(MAX_SEALED, nwriters + 1)
 * packs are pending or being written: beyond that, puts wait (backpressure), so memory
 * stays bounded by about max_sealed + 2 packs (the open one and one spare builder).
 * Ordering does not depend on the pool: a pack's index segment is written by the
 * thread that wrote the pack, after it; packs are independent of one another; and
 * repo_flush() returns only once every pack sealed before it (and its segment) is
 * stored, which is what metadata written after a flush relies on (crash order: pack,
 * then index segment, then root). Packs may land in the backend out of slot order.
 *
 * Pack slot states: OPEN (taking records) -> SEALED (complete, not yet stored; one
 * thread at a time writes it, flagged by 'writing') -> STORED (pack and index segment
 * written, memory freed) -> GONE (retired by gc: no index entry names it). A SEALED
 * slot whose pack object is stored but whose index segment is not has 'pack_done': its
 * next write puts only the segment. A failed write (pack or segment) leaves the slot
 * SEALED and 'failed': puts fail fast with the write's error while any slot is failed
 * (callers keep their data and retry), the writers retry every failed slot RETRY_MS
 * after the first failure and every RETRY_MS after that, so the store catches up by
 * itself when the backend returns, and repo_flush() retries them at once. Since a
 * segment counts as part of its slot's write, a segment that could not be stored is
 * retried like a pack, never just dropped; gc (which takes only STORED slots) never
 * sees a pack whose segment is still to come.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <json-c/json.h>

#include <openssl/crypto.h>
#include <xxhash.h>

#include "aead.h"
#include "backend_cache.h"
#include "backend_s3.h"
#include "bufpool.h"
#include "chunk_cache.h"
#include "chunk_codec.h"
#include "index.h"
#include "keyring.h"
#include "le.h"
#include "lease.h"
#include "log.h"
#include "pack.h"
#include "repo.h"
#include "util.h"
#include "vkey.h"

#define REPO_MAGIC "cairn-repository"
#define REPO_VERSION 2
#define META_MAGIC "CAIRNMT1"
#define META_HDR_LEN 16u
#define CACHE_DEFAULT (256u << 20)
#define NO_SLOT UINT32_MAX
#define MAX_SEALED 3
#define RETRY_MS 2000 /* between retries of failed pack writes */
#define UPLOADS_S3 4  /* default writer threads on S3 ($CAIRN_S3_UPLOADS) */
#define UPLOADS_MAX 32

enum slot_state { SLOT_OPEN, SLOT_SEALED, SLOT_STORED, SLOT_GONE };

struct pack_slot {
	uint8_t id[PACK_ID_LEN];
	enum slot_state state;
	int writing;               /* a thread is writing this SEALED pack */
	int failed;                /* its last write failed; the writers retry it every
				    * RETRY_MS, repo_flush() at once */
	int pack_done;             /* SEALED: the pack object is stored, its segment not */
	int err;                   /* error of its last failed write */
	uint64_t fail_seq;         /* r->fail_seq at its last failed write; 0: none */
	uint32_t nents;            /* records, once STORED */
	struct pack_builder *pb;   /* records in memory until STORED */
};

struct repo {
	struct backend *be;
	int lock_fd;
	struct lease *lease;       /* S3 writer lease, or NULL */
	int read_only;
	int version;               /* of the config */
	char id_hex[2 * 16 + 1];
	uint8_t id[16];
	uint32_t chunk_size;
	int encrypted;
	struct aead_keys keys;
	const struct aead_keys *k; /* &keys when encrypted, else NULL */
	uint8_t master[AEAD_KEY_LEN]; /* to wrap new key slots; wiped at close */
	char key_slot[33];         /* the slot that opened it */

	pthread_mutex_t lock;
	pthread_cond_t written;    /* a pack write finished */
	pthread_cond_t work;       /* a pack was sealed or made pending again, or the
				    * writers must stop (CLOCK_MONOTONIC for timed waits) */
	pthread_t *writers;        /* the writer pool: nwriters threads, wrunning started */
	unsigned nwriters, wrunning;
	int writer_stop;
	uint32_t max_sealed;       /* bound of 'sealed' before puts wait */
	uint32_t sealed;           /* SEALED slots neither failed nor stored */
	uint32_t first_unstored;   /* no slot below it is OPEN or SEALED */
	uint64_t fail_seq;         /* failed writes so far */
	uint64_t retry_at_ns;      /* util_mono_ns() when failed slots become pending */
	int write_err;             /* error of a failed pack write, until no pack is failed:
				    * puts fail fast meanwhile (callers retry; their data
				    * stays in their journal), so no lock is held across an
				    * outage */
	uint32_t failed_n;         /* SEALED slots with failed set */
	struct index *ix;
	uint32_t ix_kept, ix_read; /* at open: packs the kept index table covered; packs read */
	struct pack_slot *slots;
	uint32_t nslots, cap_slots;
	uint32_t open_slot;
	struct pack_builder *spare; /* a stored pack's builder, kept for the next pack */
	uint64_t chunks, tree_chunks, stored_bytes, plain_bytes, packs;
	atomic_uint_fast64_t dedup_hits;

	struct chunk_cache *cache;
	struct bufpool *scratch;   /* CODEC_REC_MAX bytes each: records in flight */
	struct vkey_table *vkeys;  /* volume keys loaded (encrypted only; vkey.h) */

	struct repo_gc_hook gc_hook; /* gc_hook.reused NULL: none (under lock) */
	unsigned gc_hook_calls;      /* meta_replacing calls running (under lock) */
	pthread_cond_t gc_hook_idle;
};

static int is_s3(const char *url)
{
	return strncmp(url, "s3://", 5) == 0;
}

static int chunk_size_ok(uint64_t s)
{
	return s >= CHUNK_SIZE_MIN && s <= CHUNK_SIZE_MAX && (s & (s - 1)) == 0;
}

/* ---- config ---- */

static int config_encode(const char *id_hex, uint32_t chunk_size, int encrypted, char **out)
{
	json_object *o = json_object_new_object();
	const char *s;
	int rc = 0;

	if (!o)
		return -ENOMEM;
	if (json_object_object_add(o, "magic", json_object_new_string(REPO_MAGIC)) ||
	    json_object_object_add(o, "version", json_object_new_int(REPO_VERSION)) ||
	    json_object_object_add(o, "id", json_object_new_string(id_hex)) ||
	    json_object_object_add(o, "chunk_size", json_object_new_int64(chunk_size)) ||
	    json_object_object_add(o, "encryption",
				   json_object_new_string(encrypted ? "aes-256-gcm" : "none")) ||
	    (encrypted && json_object_object_add(o, "key_slots", json_object_new_string(KEYRING_PREFIX)))) {
		rc = -ENOMEM;
		goto out_put_obj;
	}
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	*out = s ? strdup(s) : NULL;
	if (!*out)
		rc = -ENOMEM;
out_put_obj:
	json_object_put(o);
	return rc;
}

static int config_decode(const char *buf, size_t len, struct repo *r)
{
	json_tokener *tok = json_tokener_new();
	json_object *o, *v;
	const char *s;
	uint8_t idb[16];
	int64_t ver, cs;
	int rc = -EPROTO;

	if (!tok)
		return -ENOMEM;
	if (len > INT_MAX)
		goto out_free_tok;
	o = json_tokener_parse_ex(tok, buf, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success)
		goto out_put_obj;
	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "magic", &v) || !json_object_is_type(v, json_type_string) ||
	    strcmp(json_object_get_string(v), REPO_MAGIC) != 0)
		goto out_put_obj;
	if (!json_object_object_get_ex(o, "version", &v) || !json_object_is_type(v, json_type_int))
		goto out_put_obj;
	ver = json_object_get_int64(v);
	if (ver < 1 || ver > REPO_VERSION)
		goto out_put_obj;
	r->version = (int)ver;
	if (!json_object_object_get_ex(o, "id", &v) || !json_object_is_type(v, json_type_string) ||
	    strlen(s = json_object_get_string(v)) != 32 || util_unhex(s, idb, sizeof(idb)))
		goto out_put_obj;
	util_hex(idb, sizeof(idb), r->id_hex);
	memcpy(r->id, idb, sizeof(idb));
	if (!json_object_object_get_ex(o, "chunk_size", &v) || !json_object_is_type(v, json_type_int) ||
	    !chunk_size_ok((uint64_t)(cs = json_object_get_int64(v))))
		goto out_put_obj;
	r->chunk_size = (uint32_t)cs;
	if (!json_object_object_get_ex(o, "encryption", &v) || !json_object_is_type(v, json_type_string))
		goto out_put_obj;
	if (!strcmp(json_object_get_string(v), "aes-256-gcm") && ver >= 2) {
		r->encrypted = 1;
	} else if (strcmp(json_object_get_string(v), "none") != 0) {
		rc = -EPROTONOSUPPORT;
		goto out_put_obj;
	}
	rc = 0;
out_put_obj:
	json_object_put(o);
out_free_tok:
	json_tokener_free(tok);
	return rc;
}

/* The backend of url: a local directory, or an S3 bucket (created when create). */
/* S3: uploads writer threads get their own connections beside 8 for everything else. */
static int open_backend(const char *url, int create, const char *endpoint, unsigned uploads,
			struct backend **out)
{
	struct backend_s3_opts so = { 0 };
	char bucket[64], prefix[1024];
	int rc;

	if (!is_s3(url))
		return backend_local_open(url, create, out);
	rc = backend_s3_parse_url(url, bucket, sizeof(bucket), prefix, sizeof(prefix));
	if (rc)
		return rc;
	so.bucket = bucket;
	so.prefix = prefix;
	so.endpoint = endpoint && *endpoint ? endpoint : NULL;
	so.parallelism = uploads + 8;
	rc = backend_s3_open(&so, out);
	if (rc)
		return rc;
	if (create) {
		rc = backend_s3_create_bucket(*out);
		if (rc) {
			backend_close(*out);
			return rc;
		}
	}
	return 0;
}

/* Write the first key slot of a new encrypted repository. */
static int create_first_slot(struct backend *be, const char *id_hex, const struct repo_secret *s)
{
	uint8_t master[AEAD_KEY_LEN], slot[KEYRING_SLOT_LEN], sid[16];
	char sid_hex[33], key[64];
	int rc;

	rc = util_random(master, sizeof(master));
	if (!rc)
		rc = util_random(sid, sizeof(sid));
	if (rc)
		goto out_wipe;
	util_hex(sid, sizeof(sid), sid_hex);
	rc = keyring_slot_make(id_hex, sid_hex, master, s, slot);
	if (rc)
		goto out_wipe;
	snprintf(key, sizeof(key), KEYRING_PREFIX "%s", sid_hex);
	rc = be->ops->put(be->ctx, key, slot, sizeof(slot), BACKEND_PUT_EXCL);
out_wipe:
	OPENSSL_cleanse(master, sizeof(master));
	return rc;
}

int repo_create(const char *url, const struct repo_create_opts *o)
{
	uint32_t cs = o && o->chunk_size ? o->chunk_size : CHUNK_SIZE_DEFAULT;
	int encrypt = o && o->encrypt;
	struct backend *be;
	uint8_t idb[16];
	char hex[33], *json;
	uint64_t size;
	int rc;

	if (!url || !*url)
		return -EINVAL;
	if (!chunk_size_ok(cs))
		return -EINVAL;
	if (encrypt && (!o->secret || (!o->secret->password && !o->secret->raw_key)))
		return -ENOKEY;
	rc = open_backend(url, 1, o ? o->s3_endpoint : NULL, 1, &be);
	if (rc)
		return rc;
	rc = be->ops->stat(be->ctx, "config", &size);
	if (rc == 0) {
		rc = -EEXIST;
		goto out_close_backend;
	}
	if (rc != -ENOENT)
		goto out_close_backend;
	rc = util_random(idb, sizeof(idb));
	if (rc)
		goto out_close_backend;
	util_hex(idb, sizeof(idb), hex);
	if (encrypt) { /* the slot before the config: a config always has its key */
		rc = create_first_slot(be, hex, o->secret);
		if (rc)
			goto out_close_backend;
	}
	rc = config_encode(hex, cs, encrypt, &json);
	if (rc)
		goto out_close_backend;
	rc = be->ops->put(be->ctx, "config", json, strlen(json), BACKEND_PUT_EXCL);
	free(json);
out_close_backend:
	backend_close(be);
	return rc;
}

/* ---- pack slots ---- */

/* New slot in state; caller holds r->lock (or is single-threaded at open). */
static int slot_add(struct repo *r, const uint8_t id[PACK_ID_LEN], enum slot_state state,
		    struct pack_builder *pb, uint32_t *out)
{
	if (r->nslots == NO_SLOT)
		return -ENOSPC;
	if (r->nslots == r->cap_slots) {
		uint32_t cap = r->cap_slots ? r->cap_slots * 2 : 64;
		struct pack_slot *n = realloc(r->slots, sizeof(*n) * cap);

		if (!n)
			return -ENOMEM;
		r->slots = n;
		r->cap_slots = cap;
	}
	memcpy(r->slots[r->nslots].id, id, PACK_ID_LEN);
	r->slots[r->nslots].state = state;
	r->slots[r->nslots].writing = 0;
	r->slots[r->nslots].failed = 0;
	r->slots[r->nslots].pack_done = 0;
	r->slots[r->nslots].err = 0;
	r->slots[r->nslots].fail_seq = 0;
	r->slots[r->nslots].nents = 0;
	r->slots[r->nslots].pb = pb;
	*out = r->nslots++;
	return 0;
}

/* Open a fresh pack as the open slot; caller holds r->lock. */
static int open_pack(struct repo *r)
{
	struct pack_builder *pb = r->spare;
	int rc;

	if (pb) {
		r->spare = NULL;
		rc = pack_builder_reset(pb);
		if (rc)
			goto out_builder_free;
	} else {
		pb = malloc(sizeof(*pb));
		if (!pb)
			return -ENOMEM;
		rc = pack_builder_init(pb);
		if (rc)
			goto out_free_pb;
	}
	rc = slot_add(r, pb->id, SLOT_OPEN, pb, &r->open_slot);
	if (rc)
		goto out_builder_free;
	return 0;

out_builder_free:
	pack_builder_free(pb);
out_free_pb:
	free(pb);
	return rc;
}

/* Lowest slot that may be OPEN or SEALED (slots only ever move forward from those
 * states, so the bound only rises); caller holds r->lock. */
static uint32_t first_unstored(struct repo *r)
{
	while (r->first_unstored < r->nslots &&
	       (r->slots[r->first_unstored].state == SLOT_STORED ||
		r->slots[r->first_unstored].state == SLOT_GONE))
		r->first_unstored++;
	return r->first_unstored;
}

/* Write the SEALED slot s, which the caller flagged 'writing'; called without r->lock.
 * Pack first (unless an earlier attempt stored it), then its index segment. Any failure
 * leaves the slot failed, to be retried whole or from the segment on. */
static int write_pack(struct repo *r, uint32_t s)
{
	struct pack_builder *pb;
	char key[PACK_KEY_LEN];
	void *seg;
	size_t len, seg_len;
	int rc, pack_done;

	pthread_mutex_lock(&r->lock);
	pb = r->slots[s].pb;
	pack_done = r->slots[s].pack_done;
	pthread_mutex_unlock(&r->lock);

	pack_key(pb->id, key);
	if (r->lease && !lease_held(r->lease)) {
		rc = -EIO;
		log_error("repo", "the writer lease of this repository could not be renewed; "
			  "pack %s is kept in memory and retried", key);
		goto out_done;
	}
	if (!pack_done) {
		rc = pack_builder_finish(pb, r->k, &len);
		if (rc)
			goto out_done;
		rc = r->be->ops->put(r->be->ctx, key, pb->buf, len, 0);
		if (rc) {
			log_error("repo", "writing pack %s failed: %s; it is kept in memory and "
				  "retried", key, strerror(-rc));
			goto out_done;
		}
		pack_done = 1;
	}
	index_segment_key(pb->id, key);
	rc = index_segment_encode(r->k, pb->id, pb->ents, pb->n, &seg, &seg_len);
	if (rc)
		goto out_done;
	rc = r->be->ops->put(r->be->ctx, key, seg, seg_len, 0);
	free(seg);
	if (rc)
		log_error("repo", "writing index segment %s failed: %s; it is kept in memory "
			  "and retried", key, strerror(-rc));
out_done:
	pthread_mutex_lock(&r->lock);
	r->slots[s].writing = 0;
	r->slots[s].pack_done = pack_done;
	r->sealed--;
	if (rc == 0) {
		r->slots[s].state = SLOT_STORED;
		r->slots[s].nents = pb->n;
		r->slots[s].pb = NULL;
		r->packs++;
		if (!r->spare) {
			r->spare = pb;
			pb = NULL;
		}
		if (r->write_err && !r->failed_n) {
			log_info("repo", "the store takes writes again: every pending pack is "
				 "written");
			r->write_err = 0;
		}
	} else {
		if (!r->failed_n)
			r->retry_at_ns = util_mono_ns() + RETRY_MS * 1000000ull;
		r->slots[s].failed = 1;
		r->slots[s].err = rc;
		r->slots[s].fail_seq = ++r->fail_seq;
		r->failed_n++;
		r->write_err = rc;
	}
	pthread_cond_broadcast(&r->written);
	pthread_mutex_unlock(&r->lock);
	if (rc == 0 && pb) {
		pack_builder_free(pb);
		free(pb);
	}
	return rc;
}

/* Make every failed SEALED slot pending again and wake the writers; caller holds
 * r->lock. */
static void retry_failed(struct repo *r)
{
	for (uint32_t s = first_unstored(r); s < r->nslots && r->failed_n; s++)
		if (r->slots[s].state == SLOT_SEALED && r->slots[s].failed) {
			r->slots[s].failed = 0;
			r->failed_n--;
			r->sealed++;
		}
	r->retry_at_ns = util_mono_ns() + RETRY_MS * 1000000ull;
	pthread_cond_broadcast(&r->work);
}

/* The lowest SEALED slot below n that no thread writes and that is not failed, or
 * NO_SLOT; caller holds r->lock. */
static uint32_t next_pending(struct repo *r, uint32_t n)
{
	for (uint32_t s = first_unstored(r); s < n; s++)
		if (r->slots[s].state == SLOT_SEALED && !r->slots[s].writing && !r->slots[s].failed)
			return s;
	return NO_SLOT;
}

/* One thread of the writer pool: store pending sealed packs, lowest slot first, until
 * told to stop; make failed ones pending again RETRY_MS after a failure (the backend
 * has already retried each request), so the store catches up by itself when the
 * backend comes back. */
static void *writer_main(void *arg)
{
	struct repo *r = arg;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		uint32_t s = next_pending(r, r->nslots);

		if (s != NO_SLOT) {
			r->slots[s].writing = 1;
			pthread_mutex_unlock(&r->lock);
			write_pack(r, s);
			pthread_mutex_lock(&r->lock);
			continue;
		}
		if (r->writer_stop)
			break;
		if (r->failed_n) {
			uint64_t now = util_mono_ns();
			struct timespec ts;

			if (now >= r->retry_at_ns) {
				retry_failed(r);
				continue;
			}
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += (time_t)((r->retry_at_ns - now) / 1000000000ull);
			ts.tv_nsec += (long)((r->retry_at_ns - now) % 1000000000ull);
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&r->work, &r->lock, &ts);
			continue;
		}
		pthread_cond_wait(&r->work, &r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* Stop and join the writer pool. */
static void writers_stop(struct repo *r)
{
	pthread_mutex_lock(&r->lock);
	r->writer_stop = 1;
	pthread_cond_broadcast(&r->work);
	pthread_mutex_unlock(&r->lock);
	for (unsigned i = 0; i < r->wrunning; i++)
		pthread_join(r->writers[i], NULL);
	r->wrunning = 0;
}

/* Writer threads: opts, else $CAIRN_S3_UPLOADS on S3, else UPLOADS_S3 on S3 and 1 on a
 * local directory; at most UPLOADS_MAX. */
static unsigned uploads_of(const char *url, const struct repo_open_opts *o)
{
	const char *e = getenv("CAIRN_S3_UPLOADS");
	unsigned n = 1;

	if (o && o->uploads)
		n = o->uploads;
	else if (is_s3(url) && e && atoi(e) > 0)
		n = (unsigned)atoi(e);
	else if (is_s3(url))
		n = UPLOADS_S3;
	return MIN(n, UPLOADS_MAX);
}

/* Seal the open pack and wake a writer; caller holds r->lock. */
static void seal_open(struct repo *r)
{
	r->slots[r->open_slot].state = SLOT_SEALED;
	r->open_slot = NO_SLOT;
	r->sealed++;
	pthread_cond_signal(&r->work);
}

/* ---- chunks ---- */

/* Put under keys k; key_ref 0: the repository's (k = r->k), else the volume key whose
 * subkeys k are. */
static int chunk_put(struct repo *r, const struct aead_keys *k, uint32_t key_ref,
		     enum chunk_kind kind, const void *data, size_t len, struct chunk_id *id_out);

int repo_chunk_put(struct repo *r, enum chunk_kind kind, const void *data, size_t len,
		   struct chunk_id *id_out)
{
	return chunk_put(r, r->k, 0, kind, data, len, id_out);
}

int repo_chunk_put_keyed(struct repo *r, uint32_t ref, enum chunk_kind kind, const void *data,
			 size_t len, struct chunk_id *id_out)
{
	const struct aead_keys *k;
	int rc;

	if (!ref || ((enum chunk_kind)(kind & ~CHUNK_PUT_FAST)) != CHUNK_DATA)
		return chunk_put(r, r->k, 0, kind, data, len, id_out);
	rc = vkey_keys(r, ref, &k);
	if (rc)
		return rc;
	return chunk_put(r, k, ref, kind, data, len, id_out);
}

static int chunk_put(struct repo *r, const struct aead_keys *k, uint32_t key_ref,
		     enum chunk_kind kind, const void *data, size_t len, struct chunk_id *id_out)
{
	struct index_loc loc;
	struct chunk_id id;
	struct pack_builder *pb;
	uint64_t off;
	size_t rec_len;
	void *rec;
	int rc, fast = (kind & CHUNK_PUT_FAST) != 0;

	kind = (enum chunk_kind)(kind & ~CHUNK_PUT_FAST);
	if (len > CHUNK_SIZE_MAX || (kind != CHUNK_DATA && kind != CHUNK_TREE) || (len && !data))
		return -EINVAL;
	if (r->read_only)
		return -EROFS;
	rc = chunk_codec_id(k, data, len, &id);
	if (rc)
		return rc;
	if (chunk_id_is_null(&id)) {
		*id_out = id;
		return 0;
	}
	pthread_mutex_lock(&r->lock);
	rc = index_lookup(r->ix, &id, &loc);
	if (rc == 0 && r->gc_hook.reused)
		r->gc_hook.reused(r->gc_hook.arg, loc.pack, loc.entry);
	pthread_mutex_unlock(&r->lock);
	if (rc == 0)
		goto out_dedup;

	rec = bufpool_get(r->scratch);
	rc = chunk_codec_encode_keyed(k, key_ref, kind, &id, data, len, fast ? 0 : CODEC_LEVEL_DEFAULT,
				      rec, &rec_len);
	if (rc)
		goto out_put_scratch;
	pthread_mutex_lock(&r->lock);
	if (index_lookup(r->ix, &id, &loc) == 0) {
		if (r->gc_hook.reused)
			r->gc_hook.reused(r->gc_hook.arg, loc.pack, loc.entry);
		pthread_mutex_unlock(&r->lock);
		bufpool_put(r->scratch, rec);
		goto out_dedup;
	}
	if (r->open_slot != NO_SLOT && !pack_builder_fits(r->slots[r->open_slot].pb, rec_len))
		seal_open(r);
	while (r->sealed > r->max_sealed && !r->write_err)
		pthread_cond_wait(&r->written, &r->lock);
	if (r->write_err) {
		rc = r->write_err;
		goto out_unlock;
	}
	if (r->open_slot == NO_SLOT && (rc = open_pack(r)) != 0)
		goto out_unlock;
	pb = r->slots[r->open_slot].pb;
	if (!pack_builder_fits(pb, rec_len)) { /* filled by others while we waited */
		seal_open(r);
		if ((rc = open_pack(r)) != 0)
			goto out_unlock;
		pb = r->slots[r->open_slot].pb;
	}
	pack_builder_append(pb, rec, rec_len, (uint8_t)kind, &id, (uint32_t)len, &off);
	loc = (struct index_loc){ .pack = r->open_slot, .offset = (uint32_t)off,
				  .rec_len = (uint32_t)rec_len, .plain_len = (uint32_t)len,
				  .entry = pb->n - 1, .kind = (uint8_t)kind };
	rc = index_insert(r->ix, &id, &loc);
	if (rc) {
		pb->n--;
		pb->used -= rec_len;
		goto out_unlock;
	}
	r->chunks++;
	r->tree_chunks += kind == CHUNK_TREE;
	r->stored_bytes += rec_len;
	r->plain_bytes += len;
	*id_out = id;
out_unlock:
	pthread_mutex_unlock(&r->lock);
out_put_scratch:
	bufpool_put(r->scratch, rec);
	return rc;

out_dedup:
	atomic_fetch_add_explicit(&r->dedup_hits, 1, memory_order_relaxed);
	*id_out = id;
	return 0;
}

/* Decode a record under the keys it names: the repository's, or a volume key's. */
static int decode(struct repo *r, void *rec, size_t rec_len, const struct chunk_id *id,
		  void *buf, size_t cap, size_t *len)
{
	const struct aead_keys *k = r->k;
	struct codec_hdr h;
	int rc;

	if (rec_len >= CODEC_REC_HDR_LEN && chunk_codec_parse_hdr(rec, &h) == 0 && h.key_ref) {
		rc = vkey_keys(r, h.key_ref, &k);
		if (rc == -ENOKEY || rc == -EOPNOTSUPP) {
			log_error("repo", "chunk record names volume key %08x, which does not exist",
				  h.key_ref);
			return -EBADMSG;
		}
		if (rc)
			return rc;
	}
	return chunk_codec_decode(k, rec, rec_len, id, buf, cap, len);
}

int repo_chunk_get(struct repo *r, const struct chunk_id *id, void *buf, size_t cap, size_t *len)
{
	char key[PACK_KEY_LEN];
	struct index_loc loc, prev;
	struct pack_builder *pb;
	void *rec;
	int rc, tries = 0;

	if (chunk_id_is_null(id))
		return -EINVAL;
	rc = chunk_cache_get(r->cache, id, buf, cap, len);
	if (rc != -ENOENT)
		return rc;
	rec = bufpool_get(r->scratch);
	memset(&prev, 0, sizeof(prev));
again:
	pthread_mutex_lock(&r->lock);
	rc = index_lookup(r->ix, id, &loc);
	if (rc)
		goto out_unlock;
	if (cap < loc.plain_len) {
		rc = -ENOBUFS;
		goto out_unlock;
	}
	if (loc.rec_len > CODEC_REC_MAX) {
		rc = -EBADMSG;
		goto out_unlock;
	}
	pb = r->slots[loc.pack].pb;
	if (pb)
		memcpy(rec, pb->buf + loc.offset, loc.rec_len);
	else
		pack_key(r->slots[loc.pack].id, key);
	pthread_mutex_unlock(&r->lock);

	if (!pb) {
		rc = r->be->ops->get_range(r->be->ctx, key, loc.offset, rec, loc.rec_len);
		if (rc == -ENOENT && tries++ < 3 &&
		    (tries == 1 || prev.pack != loc.pack || prev.offset != loc.offset)) {
			/* gc may have moved the chunk to another pack and deleted this one
			 * since the lookup: look again */
			prev = loc;
			goto again;
		}
		if (rc == -ENODATA) {
			rc = -EBADMSG;
		} else if (rc == -ENOENT) {
			log_error("repo", "pack %s is missing", key);
			rc = -EIO;
		}
		if (rc)
			goto out_put_scratch;
	}
	rc = decode(r, rec, loc.rec_len, id, buf, cap, len);
	if (rc == -EBADMSG)
		log_error("repo", "chunk record damaged in pack %s at offset %u",
			  pb ? "(open)" : key, loc.offset);
	if (rc == 0)
		chunk_cache_put(r->cache, id, buf, *len);
	goto out_put_scratch;

out_unlock:
	pthread_mutex_unlock(&r->lock);
out_put_scratch:
	bufpool_put(r->scratch, rec);
	return rc;
}

int repo_chunk_has(struct repo *r, const struct chunk_id *id)
{
	struct index_loc loc;
	int rc;

	if (chunk_id_is_null(id))
		return 1;
	pthread_mutex_lock(&r->lock);
	rc = index_lookup(r->ix, id, &loc);
	pthread_mutex_unlock(&r->lock);
	return rc == 0;
}

int repo_chunk_stat(struct repo *r, const struct chunk_id *id, uint32_t *plain_len,
		    uint32_t *rec_len)
{
	struct index_loc loc;
	int rc;

	pthread_mutex_lock(&r->lock);
	rc = index_lookup(r->ix, id, &loc);
	pthread_mutex_unlock(&r->lock);
	if (rc)
		return rc;
	*plain_len = loc.plain_len;
	*rec_len = loc.rec_len;
	return 0;
}

/* Every slot sealed before the call is written, by the writer pool or by this thread
 * (failed ones are made pending again first, so the pool retries them in parallel).
 * A slot whose write fails again during the call is not waited for once more: its
 * error is returned. */
int repo_flush(struct repo *r)
{
	uint64_t start;
	uint32_t n;
	int rc;

	if (r->read_only)
		return 0;
	pthread_mutex_lock(&r->lock);
	if (r->open_slot != NO_SLOT && r->slots[r->open_slot].pb->n)
		seal_open(r);
	n = r->nslots;
	start = r->fail_seq;
	if (r->failed_n)
		retry_failed(r);
	for (;;) {
		uint32_t pick = NO_SLOT;
		int busy = 0;

		rc = 0;
		for (uint32_t s = first_unstored(r); s < n; s++) {
			struct pack_slot *ps = &r->slots[s];

			if (ps->state != SLOT_SEALED)
				continue;
			if (ps->fail_seq > start) {
				if (!rc)
					rc = ps->err;
			} else if (ps->writing) {
				busy = 1;
			} else if (pick == NO_SLOT) {
				pick = s;
			}
		}
		if (pick != NO_SLOT) {
			if (r->slots[pick].failed) { /* failed before the call, not yet pending */
				r->slots[pick].failed = 0;
				r->failed_n--;
				r->sealed++;
			}
			r->slots[pick].writing = 1;
			pthread_mutex_unlock(&r->lock);
			write_pack(r, pick);
			pthread_mutex_lock(&r->lock);
			continue;
		}
		if (!busy)
			break;
		pthread_cond_wait(&r->written, &r->lock);
	}
	if (!rc && !r->failed_n)
		r->write_err = 0;
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* ---- open: load or rebuild the index ---- */

/* Entries of the pack key (size bytes): from its index segment when that is sound,
 * else from the pack trailer, writing the segment anew unless read-only. */
static int pack_entries(struct repo *r, const struct backend_keys *segs, const char *key,
			const uint8_t id[PACK_ID_LEN], uint64_t size,
			struct pack_entry **ents, uint32_t *n)
{
	char seg_key[PACK_KEY_LEN];
	void *seg, *buf;
	size_t seg_len, len;
	int rc;

	index_segment_key(id, seg_key);
	if (backend_keys_find(segs, seg_key) >= 0) {
		rc = r->be->ops->get(r->be->ctx, seg_key, &seg, &seg_len);
		if (rc == 0) {
			rc = index_segment_decode(r->k, seg, seg_len, id, ents, n);
			free(seg);
			if (rc == 0)
				return 0;
		}
		log_warn("repo", "index segment %s unreadable (%s); rebuilding it from %s",
			 seg_key, strerror(-rc), key);
	} else {
		log_info("repo", "index segment %s missing; rebuilding it from %s", seg_key, key);
	}
	rc = pack_read_trailer(r->be, r->k, key, size, ents, n);
	if (rc)
		return rc;
	if (r->read_only)
		return 0;
	if (index_segment_encode(r->k, id, *ents, *n, &buf, &len) == 0) {
		int src = r->be->ops->put(r->be->ctx, seg_key, buf, len, 0);

		if (src)
			log_warn("repo", "writing index segment %s failed: %s", seg_key, strerror(-src));
		free(buf);
	}
	return 0;
}

/* 1 if gc condemned the pack key (a "gc/condemned/<id>.<time>" is in the sorted list). */
static int pack_condemned(const struct backend_keys *cond, const char *key)
{
	char probe[sizeof(REPO_GC_CONDEMNED) + 2 * PACK_ID_LEN];
	size_t pl = strlen(REPO_GC_CONDEMNED) + 2 * PACK_ID_LEN, i;

	if (!cond->n || strlen(key) != PACK_KEY_LEN - 1)
		return 0;
	snprintf(probe, sizeof(probe), REPO_GC_CONDEMNED "%s", key + 9);
	i = backend_keys_lower(cond, probe, pl);
	return i < cond->n && !strncmp(cond->keys[i], probe, pl);
}

/* ---- the persisted index table (index.h) ----
 * Its directory: <state_root>/<repo id>/index, else "index" beside the cache directory;
 * neither: nothing is kept (the index lives in unlinked files in $TMPDIR). Its slot
 * table is this open's: slot numbers are kept, slots of packs no longer listed are GONE
 * (their entries dead), and the packs it does not cover are read and added. */

static const char *index_dir(const struct repo *r, const struct repo_open_opts *o, char *buf,
			     size_t len)
{
	size_t n;

	if (o && o->state_root && *o->state_root) {
		if ((size_t)snprintf(buf, len, "%s/%s/index", o->state_root, r->id_hex) >= len)
			return NULL;
		return buf;
	}
	if (!o || !o->cache_dir || !*o->cache_dir)
		return NULL;
	if ((size_t)snprintf(buf, len, "%s", o->cache_dir) >= len - 8)
		return NULL;
	n = strlen(buf);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = 0;
	while (n > 0 && buf[n - 1] != '/')
		n--;
	if (n == 0)
		snprintf(buf, len, "index");
	else
		snprintf(buf + n, len - n, "index");
	return buf;
}

/* index_owner.packs: the slots now (the caller holds r->lock, or is the only thread). */
static int index_packs_cb(void *arg, struct index_pack **out, uint32_t *n)
{
	struct repo *r = arg;
	struct index_pack *p = calloc(r->nslots ? r->nslots : 1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	for (uint32_t s = 0; s < r->nslots; s++) {
		memcpy(p[s].id, r->slots[s].id, PACK_ID_LEN);
		p[s].nents = r->slots[s].nents;
		p[s].state = r->slots[s].state == SLOT_STORED ? INDEX_PACK_STORED :
			     r->slots[s].state == SLOT_GONE ? INDEX_PACK_GONE : INDEX_PACK_PENDING;
		if (r->slots[s].state == SLOT_OPEN && r->slots[s].pb && !r->slots[s].pb->n)
			p[s].state = INDEX_PACK_GONE; /* no entry names it */
	}
	*out = p;
	*n = r->nslots;
	return 0;
}

/* Add the n entries of pack key (size bytes), slot slot, to the index (newer: as
 * index_load). */
static int load_entries(struct repo *r, uint32_t slot, const char *key, uint64_t size,
			const struct pack_entry *ents, uint32_t n, int newer)
{
	for (uint32_t e = 0; e < n; e++) {
		const struct pack_entry *pe = &ents[e];
		struct index_loc loc = { .pack = slot, .offset = (uint32_t)pe->offset,
					 .rec_len = pe->rec_len, .plain_len = pe->plain_len,
					 .entry = e, .kind = pe->kind };
		int rc;

		if (pe->offset < PACK_HDR_LEN || pe->offset + pe->rec_len > size ||
		    pe->rec_len < CODEC_REC_HDR_LEN || pe->rec_len > CODEC_REC_MAX ||
		    pe->plain_len == 0 || pe->plain_len > CHUNK_SIZE_MAX) {
			log_warn("repo", "bad index entry for pack %s skipped", key);
			continue;
		}
		/* the same chunk in two packs (a crash, or repack): newer decides */
		rc = index_load(r->ix, &pe->id, &loc, newer);
		if (rc)
			return rc;
	}
	return 0;
}

/* Read pack key's entries (segment, else trailer) and add them under a new slot. */
static int load_pack(struct repo *r, const struct backend_keys *segs, const char *key,
		     const uint8_t id[PACK_ID_LEN], uint64_t size, int newer)
{
	struct pack_entry *ents;
	uint32_t n, slot;
	int rc;

	rc = pack_entries(r, segs, key, id, size, &ents, &n);
	if (rc) {
		log_error("repo", "pack %s is damaged (%s); its chunks are unavailable", key,
			  strerror(-rc));
		return 0;
	}
	r->ix_read++;
	rc = slot_add(r, id, SLOT_STORED, NULL, &slot);
	if (rc == 0) {
		r->slots[slot].nents = n;
		rc = load_entries(r, slot, key, size, ents, n, newer);
	}
	free(ents);
	return rc;
}

/* Packs listed[0..nl) (indices into packs) are not in the index: add them, condemned
 * ones last and never over another copy, so that a chunk gc copied out of one (and that
 * is therefore in two packs) is found in its new pack. Others: newer wins. */
static int load_listed(struct repo *r, const struct backend_keys *packs,
		       const struct backend_keys *segs, const struct backend_keys *cond,
		       const size_t *listed, size_t nl, int newer)
{
	uint8_t id[PACK_ID_LEN];
	int rc;

	for (size_t k = 0; k < 2 * nl; k++) {
		size_t i = listed[k % nl];
		int condemned = pack_condemned(cond, packs->keys[i]);

		if (condemned != (k >= nl) || pack_id_from_key(packs->keys[i], id))
			continue;
		rc = load_pack(r, segs, packs->keys[i], id, packs->sizes[i], newer && !condemned);
		if (rc)
			return rc;
	}
	return 0;
}

struct slot_by_id {
	uint8_t id[PACK_ID_LEN];
	uint32_t slot;
};

static int slot_by_id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, PACK_ID_LEN);
}

/* The index table was loaded with its slots mp[np]: set them up, mark the slots of
 * packs gone since (dead), and add what it does not cover. -ESTALE: too many dead
 * slots, rebuild instead (nothing changed). */
static int load_kept(struct repo *r, const struct index_pack *mp, uint32_t np,
		     const struct backend_keys *packs, const struct backend_keys *segs,
		     const struct backend_keys *cond)
{
	static const uint8_t none[PACK_ID_LEN];
	struct slot_by_id *by = calloc(np ? np : 1, sizeof(*by));
	size_t *where = malloc(sizeof(size_t) * (np ? np : 1));
	size_t *listed = malloc(sizeof(size_t) * (packs->n ? packs->n : 1)), nl = 0;
	uint32_t nby = 0, gone = 0, died = 0, slot;
	uint8_t id[PACK_ID_LEN];
	int rc = -ENOMEM;

	if (!by || !where || !listed)
		goto out_free;
	for (uint32_t s = 0; s < np; s++) {
		where[s] = SIZE_MAX;
		if (mp[s].state == INDEX_PACK_STORED) {
			memcpy(by[nby].id, mp[s].id, PACK_ID_LEN);
			by[nby++].slot = s;
		}
	}
	qsort(by, nby, sizeof(*by), slot_by_id_cmp);
	for (size_t i = 0; i < packs->n; i++) {
		struct slot_by_id *f;

		if (pack_id_from_key(packs->keys[i], id)) {
			log_warn("repo", "ignoring stray object %s", packs->keys[i]);
			continue;
		}
		f = nby ? bsearch(id, by, nby, sizeof(*by), slot_by_id_cmp) : NULL;
		if (f)
			where[f->slot] = i;
		else
			listed[nl++] = i;
	}
	for (uint32_t s = 0; s < np; s++) {
		gone += mp[s].state != INDEX_PACK_STORED || where[s] == SIZE_MAX;
		died += mp[s].state == INDEX_PACK_STORED && where[s] == SIZE_MAX;
	}
	if (gone > 4096 && gone > np - gone) {
		rc = -ESTALE;
		goto out_free;
	}
	r->ix_kept = np - gone;
	for (uint32_t s = 0; s < np; s++) {
		int live = where[s] != SIZE_MAX;

		rc = slot_add(r, live ? mp[s].id : none, live ? SLOT_STORED : SLOT_GONE, NULL, &slot);
		if (rc)
			goto out_free;
		r->slots[slot].nents = mp[s].nents;
		if (!live)
			index_set_dead(r->ix, slot);
	}
	rc = index_settle(r->ix);
	if (rc)
		goto out_free;
	/* A dead pack's chunks may also be in a kept pack whose copy the index did not
	 * point at (a duplicate): read the packs flagged with such copies again. */
	for (uint32_t s = 0; died && s < np; s++) {
		struct pack_entry *ents;
		uint32_t n;
		size_t i = where[s];

		if (i == SIZE_MAX || !(mp[s].flags & INDEX_PACK_SHADOW))
			continue;
		rc = pack_entries(r, segs, packs->keys[i], mp[s].id, packs->sizes[i], &ents, &n);
		if (rc) {
			log_error("repo", "pack %s is damaged (%s); its chunks are unavailable",
				  packs->keys[i], strerror(-rc));
			continue;
		}
		r->ix_read++;
		rc = load_entries(r, s, packs->keys[i], packs->sizes[i], ents, n, 0);
		free(ents);
		if (rc)
			goto out_free;
	}
	rc = load_listed(r, packs, segs, cond, listed, nl, 1);
	if (rc == 0 && died)
		log_info("repo", "index: %u packs gone since the index table was kept", died);
out_free:
	free(listed);
	free(where);
	free(by);
	return rc;
}

/* Open the index (kept in the state directory when o names one) and fill it: from the
 * kept table plus the packs it does not cover, or from every pack. */
static int load_index(struct repo *r, const struct repo_open_opts *o)
{
	struct backend_keys segs = { 0 }, packs = { 0 }, cond = { 0 };
	struct index_persist p = { .writer = !r->read_only,
				   .owner = { .packs = index_packs_cb, .arg = r } };
	struct index_pack *mp = NULL;
	struct index_totals t;
	char dir[PATH_MAX];
	uint32_t np = 0;
	size_t *all = NULL;
	int rc, loaded;

	p.dir = index_dir(r, o, dir, sizeof(dir));
	memcpy(p.owner_id, r->id, sizeof(p.owner_id));
	rc = index_open_persisted(&p, &r->ix, &mp, &np, &loaded);
	if (rc)
		return rc;
	rc = backend_list_keys(r->be, "index/", &segs);
	if (rc)
		goto out_free_lists;
	rc = backend_list_keys(r->be, "packs/", &packs);
	if (rc)
		goto out_free_lists;
	rc = backend_list_keys(r->be, REPO_GC_CONDEMNED, &cond);
	if (rc)
		goto out_free_lists;
	if (loaded) {
		rc = load_kept(r, mp, np, &packs, &segs, &cond);
		if (rc != -ESTALE)
			goto out_loaded;
		log_info("repo", "index: most pack slots of the kept index table are dead: "
			 "rebuilding it");
		index_discard(r->ix);
	}
	all = malloc(sizeof(*all) * (packs.n ? packs.n : 1));
	rc = all ? 0 : -ENOMEM;
	for (size_t i = 0; all && i < packs.n; i++) {
		uint8_t id[PACK_ID_LEN];

		all[i] = i;
		if (pack_id_from_key(packs.keys[i], id))
			log_warn("repo", "ignoring stray object %s", packs.keys[i]);
	}
	if (rc == 0)
		rc = load_listed(r, &packs, &segs, &cond, all, packs.n, 0);
out_loaded:
	if (rc)
		goto out_free_lists;
	for (uint32_t s = 0; s < r->nslots; s++)
		r->packs += r->slots[s].state == SLOT_STORED;
	index_get_totals(r->ix, &t);
	r->chunks = t.chunks;
	r->tree_chunks = t.tree_chunks;
	r->stored_bytes = t.rec_bytes;
	r->plain_bytes = t.plain_bytes;
	if (p.dir && !r->read_only && !(o && o->transient))
		log_info("repo", "index: %u packs from the kept index table, %u read from the "
			 "repository", r->ix_kept, r->ix_read);
	else
		log_debug("repo", "index: %u packs from the kept index table, %u read from the "
			  "repository", r->ix_kept, r->ix_read);
	rc = index_checkpoint(r->ix, 0); /* the next open starts from here */
	if (rc) {
		log_warn("repo", "index checkpoint failed: %s", strerror(-rc));
		rc = 0;
	}
out_free_lists:
	free(all);
	free(mp);
	backend_keys_free(&cond);
	backend_keys_free(&segs);
	backend_keys_free(&packs);
	return rc;
}

static int take_lock(const char *dir, int *fd_out)
{
	char path[PATH_MAX];
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/lock", dir) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;

		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

struct unlock_scan {
	struct repo *r;
	const struct repo_secret *secret;
	uint8_t master[AEAD_KEY_LEN];
	int found, slots, damaged;
};

static int unlock_cb(void *arg, const char *key, uint64_t size)
{
	struct unlock_scan *u = arg;
	const char *sid = key + strlen(KEYRING_PREFIX);
	void *obj;
	size_t len;
	int rc;

	(void)size;
	if (u->found || strlen(sid) != 32)
		return 0;
	u->slots++;
	rc = u->r->be->ops->get(u->r->be->ctx, key, &obj, &len);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	rc = keyring_slot_unwrap(u->r->id_hex, sid, obj, len, u->secret, u->master);
	free(obj);
	if (rc == 0) {
		u->found = 1;
		snprintf(u->r->key_slot, sizeof(u->r->key_slot), "%s", sid);
	} else if (rc == -EBADMSG) {
		u->damaged++;
		log_error("repo", "key slot %s is damaged", key);
	} else if (rc != -EKEYREJECTED) {
		return rc;
	}
	return 0;
}

/* Find the key slot the secret opens and derive the subkeys. */
static int unlock(struct repo *r, const struct repo_secret *secret)
{
	struct unlock_scan u = { .r = r, .secret = secret };
	int rc;

	if (!secret || (!secret->password && !secret->raw_key))
		return -ENOKEY;
	rc = r->be->ops->list(r->be->ctx, KEYRING_PREFIX, unlock_cb, &u);
	if (rc)
		goto out_wipe;
	if (!u.found) {
		rc = u.slots == u.damaged && u.slots ? -EBADMSG : -EKEYREJECTED;
		goto out_wipe;
	}
	rc = aead_derive(u.master, r->id, &r->keys);
	if (rc)
		goto out_wipe;
	memcpy(r->master, u.master, sizeof(r->master));
	r->k = &r->keys;
out_wipe:
	OPENSSL_cleanse(u.master, sizeof(u.master));
	return rc;
}

/* S3: wrap the backend with the local cache of packs and index segments. */
static int add_disk_cache(struct repo *r, const struct repo_open_opts *o)
{
	char dir[PATH_MAX];

	if (!o || o->transient || (!o->cache_dir && !o->state_root))
		return 0;
	if (o->cache_dir)
		snprintf(dir, sizeof(dir), "%s", o->cache_dir);
	else if ((size_t)snprintf(dir, sizeof(dir), "%s/%s/cache", o->state_root, r->id_hex) >= sizeof(dir))
		return -ENAMETOOLONG;
	return backend_cache_open(r->be, dir, o->disk_cache_bytes, &r->be);
}

static unsigned lease_ttl(const struct repo_open_opts *o)
{
	const char *e = getenv("CAIRN_LEASE_TTL");

	if (o && o->lease_ttl_s)
		return o->lease_ttl_s;
	if (e && atoi(e) > 0)
		return (unsigned)atoi(e);
	return 60;
}

int repo_open(const char *url, const struct repo_open_opts *o, struct repo **out)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	pthread_condattr_t ca;
	struct repo *r;
	void *cfg;
	size_t cfg_len;
	int rc;

	if (!url || !*url)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->lock_fd = -1;
	r->open_slot = NO_SLOT;
	r->read_only = o && (o->read_only || o->probe);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->written, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->work, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&r->gc_hook_idle, NULL);
	r->nwriters = uploads_of(url, o);
	r->max_sealed = MAX(MAX_SEALED, r->nwriters + 1);
	rc = open_backend(url, 0, o ? o->s3_endpoint : NULL, r->nwriters, &r->be);
	if (rc)
		goto out_free_repo;
	rc = r->be->ops->get(r->be->ctx, "config", &cfg, &cfg_len);
	if (rc)
		goto out_close_backend;
	rc = config_decode(cfg, cfg_len, r);
	free(cfg);
	if (rc)
		goto out_close_backend;
	if (r->encrypted) {
		rc = unlock(r, o ? o->secret : NULL);
		if (rc)
			goto out_close_backend;
	}
	if (o && o->probe) {
		*out = r;
		return 0;
	}
	if (is_s3(url)) {
		rc = add_disk_cache(r, o);
		if (rc) {
			r->be = NULL; /* closed by backend_cache_open */
			goto out_close_backend;
		}
	}
	if (!r->read_only) {
		if (is_s3(url))
			rc = lease_acquire(r->be, lease_ttl(o), &r->lease);
		else
			rc = take_lock(url, &r->lock_fd);
		if (rc)
			goto out_close_backend;
	}
	rc = chunk_cache_create(o && o->cache_bytes ? o->cache_bytes : CACHE_DEFAULT, &r->cache);
	if (rc)
		goto out_unlock;
	r->scratch = bufpool_create(CODEC_REC_MAX, (unsigned)MAX(8, 2 * (ncpu > 0 ? ncpu : 1) + 2));
	if (!r->scratch) {
		rc = -ENOMEM;
		goto out_destroy_cache;
	}
	if (r->encrypted) {
		rc = vkey_table_create(&r->vkeys);
		if (rc)
			goto out_destroy_index;
	}
	/* the index: kept in the state directory (load_index), else in $TMPDIR */
	rc = load_index(r, o);
	if (rc)
		goto out_destroy_index;
	if (!r->read_only) {
		r->writers = calloc(r->nwriters, sizeof(*r->writers));
		if (!r->writers) {
			rc = -ENOMEM;
			goto out_destroy_index;
		}
		for (; r->wrunning < r->nwriters; r->wrunning++) {
			rc = -pthread_create(&r->writers[r->wrunning], NULL, writer_main, r);
			if (rc)
				goto out_stop_writers;
		}
	}
	*out = r;
	return 0;

out_stop_writers:
	writers_stop(r);
	free(r->writers);
out_destroy_index:
	index_destroy(r->ix);
	free(r->slots);
	vkey_table_destroy(r->vkeys);
	bufpool_destroy(r->scratch);
out_destroy_cache:
	chunk_cache_destroy(r->cache);
out_unlock:
	if (r->lock_fd >= 0)
		close(r->lock_fd);
	lease_release(r->lease);
out_close_backend:
	backend_close(r->be);
out_free_repo:
	OPENSSL_cleanse(&r->keys, sizeof(r->keys));
	OPENSSL_cleanse(r->master, sizeof(r->master));
	pthread_cond_destroy(&r->gc_hook_idle);
	pthread_cond_destroy(&r->work);
	pthread_cond_destroy(&r->written);
	pthread_mutex_destroy(&r->lock);
	free(r);
	return rc;
}

void repo_close(struct repo *r)
{
	int rc;

	if (!r)
		return;
	rc = repo_flush(r);
	writers_stop(r);
	free(r->writers);
	if (index_checkpoint(r->ix, 1)) /* the index table for the next open (index.h) */
		log_warn("repo", "the index table could not be kept; the next open rebuilds it");
	for (uint32_t s = 0; s < r->nslots; s++) {
		if (rc && r->slots[s].state == SLOT_SEALED)
			log_error("repo", r->slots[s].pack_done ?
				  "index segment of pack slot %u not written at close (%s); it "
				  "is rebuilt from the pack at the next open" :
				  "pack slot %u not written at close (%s); its chunks are lost",
				  s, strerror(-rc));
		if (r->slots[s].pb) {
			pack_builder_free(r->slots[s].pb);
			free(r->slots[s].pb);
		}
	}
	if (r->spare) {
		pack_builder_free(r->spare);
		free(r->spare);
	}
	free(r->slots);
	index_destroy(r->ix);
	vkey_table_destroy(r->vkeys);
	bufpool_destroy(r->scratch);
	chunk_cache_destroy(r->cache);
	if (r->lock_fd >= 0)
		close(r->lock_fd);
	lease_release(r->lease);
	backend_close(r->be);
	OPENSSL_cleanse(&r->keys, sizeof(r->keys));
	OPENSSL_cleanse(r->master, sizeof(r->master));
	pthread_cond_destroy(&r->gc_hook_idle);
	pthread_cond_destroy(&r->work);
	pthread_cond_destroy(&r->written);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

const char *repo_id_hex(const struct repo *r)
{
	return r->id_hex;
}

uint32_t repo_default_chunk_size(const struct repo *r)
{
	return r->chunk_size;
}

int repo_encrypted(const struct repo *r)
{
	return r->encrypted;
}

struct backend *repo_backend(struct repo *r)
{
	return r->be;
}

const struct aead_keys *repo_aead_keys(const struct repo *r)
{
	return r->k;
}

struct vkey_table *repo_vkey_table(struct repo *r)
{
	return r->vkeys;
}

void repo_cache_clear(struct repo *r)
{
	chunk_cache_clear(r->cache);
}

const uint8_t *repo_id_bytes(const struct repo *r)
{
	return r->id;
}

const char *repo_key_current(const struct repo *r)
{
	return r->key_slot;
}

int repo_key_add(struct repo *r, const struct repo_secret *s, char *id_out)
{
	uint8_t slot[KEYRING_SLOT_LEN], sid[16];
	char sid_hex[33], key[64];
	int rc;

	if (!r->encrypted)
		return -EINVAL;
	rc = util_random(sid, sizeof(sid));
	if (rc)
		return rc;
	util_hex(sid, sizeof(sid), sid_hex);
	rc = keyring_slot_make(r->id_hex, sid_hex, r->master, s, slot);
	if (rc)
		return rc;
	snprintf(key, sizeof(key), KEYRING_PREFIX "%s", sid_hex);
	rc = r->be->ops->put(r->be->ctx, key, slot, sizeof(slot), BACKEND_PUT_EXCL);
	if (rc == 0 && id_out)
		memcpy(id_out, sid_hex, sizeof(sid_hex));
	return rc;
}

struct key_walk {
	struct repo *r;
	int (*cb)(void *arg, const struct repo_key_info *ki);
	void *arg;
	const char *skip;   /* count only: slot id not to count */
	int sound;          /* sound slots other than skip */
	int err;
};

static int key_walk_cb(void *arg, const char *key, uint64_t size)
{
	struct key_walk *w = arg;
	struct repo_key_info ki;
	const char *sid = key + strlen(KEYRING_PREFIX);
	void *obj;
	size_t len;
	int rc;

	(void)size;
	if (strlen(sid) != 32)
		return 0;
	rc = w->r->be->ops->get(w->r->be->ctx, key, &obj, &len);
	if (rc) {
		w->err = rc;
		return rc == -ENOENT ? 0 : rc;
	}
	memset(&ki, 0, sizeof(ki));
	if (keyring_slot_parse(obj, len, &ki))
		ki.damaged = 1, ki.kind = "damaged";
	free(obj);
	snprintf(ki.id, sizeof(ki.id), "%s", sid);
	ki.current = !strcmp(sid, w->r->key_slot);
	if (!ki.damaged && (!w->skip || strcmp(sid, w->skip)))
		w->sound++;
	return w->cb ? w->cb(w->arg, &ki) : 0;
}

int repo_key_list(struct repo *r, int (*cb)(void *arg, const struct repo_key_info *ki), void *arg)
{
	struct key_walk w = { .r = r, .cb = cb, .arg = arg };

	if (!r->encrypted)
		return -EINVAL;
	return r->be->ops->list(r->be->ctx, KEYRING_PREFIX, key_walk_cb, &w);
}

int repo_key_remove(struct repo *r, const char *id)
{
	struct key_walk w = { .r = r, .skip = id };
	char key[64];
	uint64_t size;
	int rc;

	if (!r->encrypted)
		return -EINVAL;
	if (!id || strlen(id) != 32 || strchr(id, '/'))
		return -ENOENT;
	snprintf(key, sizeof(key), KEYRING_PREFIX "%s", id);
	rc = r->be->ops->stat(r->be->ctx, key, &size);
	if (rc)
		return rc;
	rc = r->be->ops->list(r->be->ctx, KEYRING_PREFIX, key_walk_cb, &w);
	if (rc)
		return rc;
	if (w.sound == 0)
		return -EBUSY;
	return r->be->ops->del(r->be->ctx, key);
}

/* ---- metadata objects ---- */

static int meta_key(const char *key, char *out, size_t cap)
{
	if (!key || !*key)
		return -EINVAL;
	if ((size_t)snprintf(out, cap, "meta/%s", key) >= cap)
		return -ENAMETOOLONG;
	return 0;
}

/* The stored form of a metadata object's content (see the top of this file). */
static int meta_wrap(struct repo *r, const char *k, const void *data, size_t len, void **out,
		     size_t *out_len)
{
	uint8_t *b;

	if (r->k)
		return aead_seal_object(r->k->meta, k, data, len, out, out_len);
	b = malloc(META_HDR_LEN + len);
	if (!b)
		return -ENOMEM;
	memcpy(b, META_MAGIC, 8);
	le_put64(b + 8, XXH3_64bits(data, len));
	if (len)
		memcpy(b + META_HDR_LEN, data, len);
	*out = b;
	*out_len = META_HDR_LEN + len;
	return 0;
}

static int meta_unwrap(struct repo *r, const char *k, void *stored, size_t len, void **out,
		       size_t *out_len)
{
	uint8_t *b = stored, *p;

	if (r->k)
		return aead_open_object(r->k->meta, k, stored, len, out, out_len);
	if (r->version < 2) {
		*out = stored;
		*out_len = len;
		return 1; /* stored is the content */
	}
	if (len < META_HDR_LEN || memcmp(b, META_MAGIC, 8) != 0 ||
	    le_get64(b + 8) != XXH3_64bits(b + META_HDR_LEN, len - META_HDR_LEN))
		return -EBADMSG;
	p = malloc(len - META_HDR_LEN + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p, b + META_HDR_LEN, len - META_HDR_LEN);
	p[len - META_HDR_LEN] = 0;
	*out = p;
	*out_len = len - META_HDR_LEN;
	return 0;
}

/* A gc runs: let it see the object key before it is deleted or replaced. */
static void gc_replacing(struct repo *r, const char *key)
{
	struct repo_gc_hook h;

	pthread_mutex_lock(&r->lock);
	h = r->gc_hook;
	if (h.meta_replacing)
		r->gc_hook_calls++;
	pthread_mutex_unlock(&r->lock);
	if (!h.meta_replacing)
		return;
	h.meta_replacing(h.arg, key);
	pthread_mutex_lock(&r->lock);
	if (--r->gc_hook_calls == 0)
		pthread_cond_broadcast(&r->gc_hook_idle);
	pthread_mutex_unlock(&r->lock);
}

int repo_meta_put(struct repo *r, const char *key, const void *data, size_t len, int excl)
{
	char k[PATH_MAX];
	void *obj;
	size_t obj_len;
	int rc;

	if (r->read_only)
		return -EROFS;
	rc = meta_key(key, k, sizeof(k));
	if (rc)
		return rc;
	if (!excl)
		gc_replacing(r, key);
	if (r->version < 2)
		return r->be->ops->put(r->be->ctx, k, data, len, excl ? BACKEND_PUT_EXCL : 0);
	rc = meta_wrap(r, k, data, len, &obj, &obj_len);
	if (rc)
		return rc;
	rc = r->be->ops->put(r->be->ctx, k, obj, obj_len, excl ? BACKEND_PUT_EXCL : 0);
	free(obj);
	return rc;
}

int repo_meta_get(struct repo *r, const char *key, void **data, size_t *len)
{
	char k[PATH_MAX];
	void *obj;
	size_t obj_len;
	int rc = meta_key(key, k, sizeof(k));

	if (rc)
		return rc;
	rc = r->be->ops->get(r->be->ctx, k, &obj, &obj_len);
	if (rc)
		return rc;
	rc = meta_unwrap(r, k, obj, obj_len, data, len);
	if (rc == 1)
		return 0;
	free(obj);
	if (rc == -EBADMSG)
		log_error("repo", "metadata object %s is damaged", k);
	return rc;
}

int repo_meta_del(struct repo *r, const char *key)
{
	char k[PATH_MAX];
	int rc;

	if (r->read_only)
		return -EROFS;
	rc = meta_key(key, k, sizeof(k));
	if (rc)
		return rc;
	gc_replacing(r, key);
	return r->be->ops->del(r->be->ctx, k);
}

struct meta_list_arg {
	backend_list_cb cb;
	void *arg;
};

static int meta_list_cb(void *arg, const char *key, uint64_t size)
{
	struct meta_list_arg *m = arg;

	return m->cb(m->arg, key + 5, size);
}

int repo_meta_list(struct repo *r, const char *prefix, backend_list_cb cb, void *arg)
{
	struct meta_list_arg m = { cb, arg };
	char k[PATH_MAX];

	if ((size_t)snprintf(k, sizeof(k), "meta/%s", prefix ? prefix : "") >= sizeof(k))
		return -ENAMETOOLONG;
	return r->be->ops->list(r->be->ctx, k, meta_list_cb, &m);
}

void repo_get_stats(struct repo *r, struct repo_stats *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&r->lock);
	st->chunks = r->chunks;
	st->tree_chunks = r->tree_chunks;
	st->stored_bytes = r->stored_bytes;
	st->plain_bytes = r->plain_bytes;
	st->packs = r->packs;
	st->index_packs_kept = r->ix_kept;
	st->index_packs_read = r->ix_read;
	pthread_mutex_unlock(&r->lock);
	st->dedup_hits = atomic_load(&r->dedup_hits);
	chunk_cache_counters(r->cache, &st->cache_hits, &st->cache_misses);
}

/* ---- the chunk store of volumes/ ---- */

static int cs_put(void *ctx, enum chunk_kind kind, const void *data, size_t len, struct chunk_id *id)
{
	return repo_chunk_put(ctx, kind, data, len, id);
}

static int cs_get(void *ctx, const struct chunk_id *id, void *buf, size_t cap, size_t *len)
{
	return repo_chunk_get(ctx, id, buf, cap, len);
}

static int cs_flush(void *ctx)
{
	return repo_flush(ctx);
}

static int cs_meta_put(void *ctx, const char *key, const void *data, size_t len, int excl)
{
	return repo_meta_put(ctx, key, data, len, excl);
}

static int cs_meta_get(void *ctx, const char *key, void **data, size_t *len)
{
	return repo_meta_get(ctx, key, data, len);
}

static int cs_meta_del(void *ctx, const char *key)
{
	return repo_meta_del(ctx, key);
}

static int cs_meta_list(void *ctx, const char *prefix, backend_list_cb cb, void *arg)
{
	return repo_meta_list(ctx, prefix, cb, arg);
}

static int cs_keyed(void *ctx, uint32_t ref, struct chunk_store *out)
{
	return vkey_chunk_store(ctx, ref, out);
}

static int cs_key_new(void *ctx, const char *volid, uint64_t gen, uint32_t prev, uint32_t *ref)
{
	return vkey_create(ctx, volid, gen, prev, ref);
}

static int cs_key_destroy(void *ctx, uint32_t ref)
{
	return vkey_destroy(ctx, ref);
}

static int cs_key_info(void *ctx, uint32_t ref, uint32_t *prev, uint64_t *gen)
{
	struct vkey_info vi;
	int rc = vkey_info(ctx, ref, &vi);

	if (!rc) {
		*prev = vi.prev;
		*gen = vi.generation;
	}
	return rc;
}

static int cs_ref(void *ctx, const struct chunk_id *id)
{
	return repo_chunk_ref(ctx, id);
}

static const struct chunk_store_ops repo_cs_ops = {
	.put = cs_put,
	.get = cs_get,
	.ref = cs_ref,
	.flush = cs_flush,
	.meta_put = cs_meta_put,
	.meta_get = cs_meta_get,
	.meta_del = cs_meta_del,
	.meta_list = cs_meta_list,
	.keyed = cs_keyed,
	.key_new = cs_key_new,
	.key_destroy = cs_key_destroy,
	.key_info = cs_key_info,
};

void repo_chunk_store(struct repo *r, struct chunk_store *out)
{
	out->ops = &repo_cs_ops;
	out->ctx = r;
}

/* ---- for stores/gc.c ---- */

uint32_t repo_pack_slots(struct repo *r)
{
	uint32_t n;

	pthread_mutex_lock(&r->lock);
	n = r->nslots;
	pthread_mutex_unlock(&r->lock);
	return n;
}

int repo_pack_get(struct repo *r, uint32_t s, uint8_t id[16], uint32_t *nents)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&r->lock);
	if (s < r->nslots && r->slots[s].state == SLOT_STORED) {
		memcpy(id, r->slots[s].id, PACK_ID_LEN);
		*nents = r->slots[s].nents;
		rc = 0;
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int repo_chunk_locate(struct repo *r, const struct chunk_id *id, uint32_t *slot, uint32_t *entry)
{
	struct index_loc loc;
	int rc;

	pthread_mutex_lock(&r->lock);
	rc = index_lookup(r->ix, id, &loc);
	pthread_mutex_unlock(&r->lock);
	if (rc)
		return rc;
	*slot = loc.pack;
	*entry = loc.entry;
	return 0;
}

int repo_chunk_ref(struct repo *r, const struct chunk_id *id)
{
	struct index_loc loc;
	int rc;

	if (r->read_only)
		return -EROFS;
	pthread_mutex_lock(&r->lock);
	rc = index_lookup(r->ix, id, &loc);
	if (rc == 0 && r->gc_hook.reused)
		r->gc_hook.reused(r->gc_hook.arg, loc.pack, loc.entry);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

void repo_gc_set_hook(struct repo *r, const struct repo_gc_hook *h)
{
	pthread_mutex_lock(&r->lock);
	if (h) {
		r->gc_hook = *h;
	} else {
		memset(&r->gc_hook, 0, sizeof(r->gc_hook));
		while (r->gc_hook_calls)
			pthread_cond_wait(&r->gc_hook_idle, &r->lock);
	}
	pthread_mutex_unlock(&r->lock);
}

int repo_pack_retire(struct repo *r, uint32_t s, const struct pack_entry *ents, uint32_t n,
		     int (*busy)(void *arg), void *arg)
{
	int rc = 0;

	pthread_mutex_lock(&r->lock);
	if (s >= r->nslots || r->slots[s].state != SLOT_STORED) {
		rc = -ENOENT;
		goto out_unlock;
	}
	if (busy && busy(arg)) {
		rc = -EBUSY;
		goto out_unlock;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct index_loc loc;

		if (index_lookup(r->ix, &ents[i].id, &loc) || loc.pack != s ||
		    loc.offset != ents[i].offset)
			continue; /* found in another pack */
		index_remove(r->ix, &ents[i].id);
		chunk_cache_del(r->cache, &ents[i].id); /* no plaintext of it stays in RAM */
		r->chunks--;
		r->tree_chunks -= loc.kind == CHUNK_TREE;
		r->stored_bytes -= loc.rec_len;
		r->plain_bytes -= loc.plain_len;
	}
	r->slots[s].state = SLOT_GONE;
	r->packs--;
out_unlock:
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int repo_pack_adopt(struct repo *r, const uint8_t id[16], const struct pack_entry *ents,
		    uint32_t n, const uint32_t *from_slot, const uint64_t *from_off,
		    uint32_t *slot_out)
{
	uint32_t slot;
	int rc;

	pthread_mutex_lock(&r->lock);
	rc = slot_add(r, id, SLOT_STORED, NULL, &slot);
	if (rc)
		goto out_unlock;
	r->slots[slot].nents = n;
	r->packs++;
	for (uint32_t i = 0; i < n; i++) {
		struct index_loc loc;

		if (index_lookup(r->ix, &ents[i].id, &loc) || loc.pack != from_slot[i] ||
		    loc.offset != from_off[i])
			continue; /* forgotten or moved meanwhile: the copy stays unreferenced */
		loc.pack = slot;
		loc.offset = (uint32_t)ents[i].offset;
		loc.entry = i;
		index_replace(r->ix, &ents[i].id, &loc);
	}
	*slot_out = slot;
out_unlock:
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* ==== repo_refresh (cairn mount, issue 6) ==========================================
 * Self-contained addition: uses the backend, pack.h and index.h calls and slot_add()
 * only, and nothing else of this file's internals.
 *
 * A read-only open lists the packs once, at open. A writer (cairn serve) keeps adding
 * packs, and metadata written later (checkpoints, volume heads) refers to their chunks.
 * repo_refresh() lists packs/ again and adds every pack this open has no slot for:
 * entries from its index segment, else from the pack's trailer (segment not written
 * yet, or lost), as at open. Since a pack is stored before any metadata that refers to
 * it, a refresh that starts after some metadata was read finds every chunk it reaches. */

struct refresh_scan {
	const uint8_t (*known)[PACK_ID_LEN]; /* sorted pack ids of the slots at the start */
	uint32_t nknown;
	char **keys;                          /* packs not known */
	uint64_t *sizes;
	size_t n, cap;
};

static int refresh_id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, PACK_ID_LEN);
}

static int refresh_list_cb(void *arg, const char *key, uint64_t size)
{
	struct refresh_scan *s = arg;
	uint8_t id[PACK_ID_LEN];

	if (pack_id_from_key(key, id) ||
	    (s->nknown && bsearch(id, s->known, s->nknown, PACK_ID_LEN, refresh_id_cmp)))
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char **k = realloc(s->keys, sizeof(*k) * cap);
		uint64_t *z;

		if (!k)
			return -ENOMEM;
		s->keys = k;
		z = realloc(s->sizes, sizeof(*z) * cap);
		if (!z)
			return -ENOMEM;
		s->sizes = z;
		s->cap = cap;
	}
	s->keys[s->n] = strdup(key);
	if (!s->keys[s->n])
		return -ENOMEM;
	s->sizes[s->n++] = size;
	return 0;
}

/* Entries of one new pack: its index segment if sound, else its trailer. */
static int refresh_entries(struct repo *r, const char *key, const uint8_t id[PACK_ID_LEN],
			   uint64_t size, struct pack_entry **ents, uint32_t *n)
{
	char seg_key[PACK_KEY_LEN];
	void *seg;
	size_t seg_len;
	int rc;

	index_segment_key(id, seg_key);
	rc = r->be->ops->get(r->be->ctx, seg_key, &seg, &seg_len);
	if (rc == 0) {
		rc = index_segment_decode(r->k, seg, seg_len, id, ents, n);
		free(seg);
		if (rc == 0)
			return 0;
	}
	return pack_read_trailer(r->be, r->k, key, size, ents, n);
}

/* Add the entries of pack id (size bytes) under a new slot, unless a concurrent refresh
 * added it first. Caller holds r->lock. (Entry ordinals, gc's business, stay 0: gc never
 * runs on a read-only open.) */
static int refresh_add(struct repo *r, const uint8_t id[PACK_ID_LEN], uint64_t size,
		       const struct pack_entry *ents, uint32_t n)
{
	uint32_t slot;
	int rc;

	for (uint32_t s = 0; s < r->nslots; s++)
		if (!memcmp(r->slots[s].id, id, PACK_ID_LEN))
			return 0;
	rc = slot_add(r, id, SLOT_STORED, NULL, &slot);
	if (rc)
		return rc;
	r->packs++;
	for (uint32_t e = 0; e < n; e++) {
		const struct pack_entry *pe = &ents[e];
		struct index_loc loc = { .pack = slot, .offset = (uint32_t)pe->offset,
					 .rec_len = pe->rec_len, .plain_len = pe->plain_len,
					 .kind = pe->kind };

		if (pe->offset < PACK_HDR_LEN || pe->offset + pe->rec_len > size ||
		    pe->rec_len < CODEC_REC_HDR_LEN || pe->rec_len > CODEC_REC_MAX ||
		    pe->plain_len == 0 || pe->plain_len > CHUNK_SIZE_MAX)
			continue;
		rc = index_insert(r->ix, &pe->id, &loc);
		if (rc == -EEXIST)
			continue;
		if (rc)
			return rc;
		r->chunks++;
		r->tree_chunks += pe->kind == CHUNK_TREE;
		r->stored_bytes += pe->rec_len;
		r->plain_bytes += pe->plain_len;
	}
	return 0;
}

int repo_refresh(struct repo *r, unsigned *added)
{
	struct refresh_scan s = { 0 };
	uint8_t (*known)[PACK_ID_LEN] = NULL;
	unsigned count = 0;
	int rc = 0;

	if (added)
		*added = 0;
	if (!r->read_only)
		return 0;
	pthread_mutex_lock(&r->lock);
	s.nknown = r->nslots;
	if (s.nknown) {
		known = malloc((size_t)s.nknown * PACK_ID_LEN);
		if (!known) {
			pthread_mutex_unlock(&r->lock);
			return -ENOMEM;
		}
		for (uint32_t i = 0; i < s.nknown; i++)
			memcpy(known[i], r->slots[i].id, PACK_ID_LEN);
	}
	pthread_mutex_unlock(&r->lock);
	if (known)
		qsort(known, s.nknown, PACK_ID_LEN, refresh_id_cmp);
	s.known = (const uint8_t (*)[PACK_ID_LEN])known;
	rc = r->be->ops->list(r->be->ctx, "packs/", refresh_list_cb, &s);
	if (rc)
		goto out_free_scan;
	for (size_t i = 0; i < s.n; i++) {
		struct pack_entry *ents;
		uint8_t id[PACK_ID_LEN];
		uint32_t n;

		if (pack_id_from_key(s.keys[i], id))
			continue;
		rc = refresh_entries(r, s.keys[i], id, s.sizes[i], &ents, &n);
		if (rc) {
			/* gone since the listing (gc), or damaged: its chunks stay unavailable */
			log_warn("repo", "pack %s not added to the index: %s", s.keys[i],
				 strerror(-rc));
			rc = 0;
			continue;
		}
		pthread_mutex_lock(&r->lock);
		rc = refresh_add(r, id, s.sizes[i], ents, n);
		pthread_mutex_unlock(&r->lock);
		free(ents);
		if (rc)
			goto out_free_scan;
		count++;
	}
	if (added)
		*added = count;
out_free_scan:
	for (size_t i = 0; i < s.n; i++)
		free(s.keys[i]);
	free(s.keys);
	free(s.sizes);
	free(known);
	return rc;
}
