/* gc.c - garbage collection of a repository (see gc.h).
 *
 * PROTOCOL
 *
 * Mark. The walker (gc_opts.walker) reports every chunk reachable from the roots: each
 * live volume head's block map, every history checkpoint and materialized snapshot of
 * a live volume, the roots of RESTORE records in its retained journal. Deleted volumes
 * are no roots. The mark set is two bitmaps per pack stored when the run began, one bit
 * per record of the pack's trailer (index_loc.entry): WALKED (reached from a root) and
 * REUSED (since gc_begin, a put of this process was answered by that record: a writer
 * now references it). A record is live when either bit is set. Packs created during
 * the run are never candidates. Tree nodes already walked are not descended again, so
 * snapshots that share a subtree cost it once.
 *
 * A writer in the same process (the daemon runs gc itself when it serves the
 * repository; without a daemon the CLI holds the writer lock, so no writer exists) is
 * never broken:
 *  1. gc_begin() installs the reuse hook (repo_gc_set_hook): from then on every dedup
 *     hit sets a REUSED bit under the repository lock, the lock under which the put
 *     found the chunk. The daemon calls it on its control thread, so no control command
 *     (clone, restore, ...) is half done at that moment.
 *  2. settle() then makes every reference taken before step 1 durable in a root: the
 *     daemon checkpoints each open volume (folds, stores its map, writes its head; a
 *     checkpoint waits for running folds and for retention's materializations).
 *  3. The walk reads the roots after that. A metadata object deleted after step 1 (a
 *     checkpoint expired by retention, a snapshot deleted, an old head version dropped)
 *     or replaced is read by gc before it goes (meta_replacing) and walked too,
 *     so whatever copied subtree ids out of a root that then vanished is covered.
 *     Hence every reference anyone holds after step 3 came from a walked root, from a
 *     put during the run (a new pack, or a REUSED bit), or was copied from those.
 *  4. A pack is deleted only after repo_pack_retire(), which under the repository lock
 *     (so atomically with puts) checks the REUSED bits once more and forgets the pack's
 *     index entries: from then on a put of the same content stores a new copy instead
 *     of dedup'ing against the doomed one.
 *  5. Repack copies live records verbatim (no decryption, no recompression: a record is
 *     bound to its chunk id, not to its pack) into new packs, stores each new pack and
 *     then its index segment, and only then points the index at the copies
 *     (repo_pack_adopt). A record reused between the copy and the retirement of the old
 *     pack is either a copied one (the index now names the copy) or a dead one that
 *     came back, and then the old pack is kept (retire's busy check fails).
 *  A reader of this process that looked a chunk up just before it moved finds the pack
 *  gone and looks again (repo_chunk_get).
 *
 * Two phases and the grace period, for readers in other processes (cairn mount, check,
 * exports of old points) that loaded the index earlier and may read from roots that
 * are no roots any more: a pack found unneeded, or whose live chunks were copied out,
 * is first CONDEMNED (object below), and deleted only by a later run at least grace_ns
 * after it was condemned, and only if that run's own mark still finds it unneeded. A
 * condemned pack that is referenced again (a writer dedup'd against it) is REVIVED: its
 * mark is removed. The repository loads condemned packs last at open, so a chunk that
 * lives in an old and in a new pack is read from the new one. grace_ns 0 deletes in
 * the same run.
 *
 * Crash order (pack, then index, then root). Repack: new pack, its index segment, then
 * (in memory) the index, then the condemn mark or the deletion. Deletion: the index
 * segment, the pack, then its condemn mark. A crash anywhere leaves a chunk in two packs
 * (loaded once; the spare copy is garbage for the next run), a pack without its segment
 * (rebuilt from the pack's trailer at the next open), or a mark whose pack is gone
 * (removed by the next run): `cairn check` passes all of these. Nothing a root needs
 * is deleted before its copy is durable.
 *
 * Untouched: every key outside packs/, index/ and gc/ (key slots, whatever a newer
 * version adds), and every metadata object but those the walker reports dead (below).
 * An index segment is deleted with its pack, or when its pack is gone: index/ is
 * listed before packs/, and a segment is written after its pack, so a segment listed
 * without a pack is an orphan and not one whose pack is being written.
 *
 * INCOMPLETE UPLOADS. A pack object under packs/ that is no stored pack of the
 * repository, has no index segment and no sound trailer is an upload a crash cut short
 * (a store that keeps partial objects, or a local file truncated by a failing disk);
 * `cairn check` notes it. Nothing can reference its chunks: roots are written only
 * after the pack and its segment are stored. The one writer that may be storing such
 * a pack right now is this process's (the lock or lease excludes others): before it
 * decides, gc (a dry run too) waits for every pack sealed so far to be stored
 * (repo_flush), then takes again the stored packs of the repository; a pack being
 * stored at the listing was sealed before that flush, so it is a stored pack by then
 * and no candidate. The rest
 * follows the grace protocol of dead packs, with the same marks: condemned first,
 * deleted by a run at least grace_ns later that still finds it incomplete (grace 0:
 * at once). A run that found a referenced chunk missing deletes none (the object
 * might be damage to a pack that holds it: 'cairn check'), nor does a damaged run.
 *
 * DEAD METADATA. The walker's dead() reports the metadata objects of volumes that no
 * longer exist (deleted: history checkpoints and snapshots, journal segments kept in
 * the repository, volume blobs, head versions but the tombstone), one group per
 * volume. A group is condemned by a mark "gc/dead/<group>.<016x time_ns>" (layout as
 * the pack marks below, same magic) and its objects are deleted by a run at least
 * grace_ns later (grace 0: at once), then its marks; a mark whose group reports no
 * object any more is an orphan and deleted. Readers in other processes that opened a
 * point of the volume before it was deleted keep it for the grace period. A deleted
 * volume never comes back (a new one gets a new id), so no revival is needed; a crash
 * in the middle leaves objects that the next run deletes. A damaged run deletes none.
 *
 * Object "gc/condemned/<32 hex pack id>.<016x time_ns>" (REPO_GC_CONDEMNED), 16 bytes:
 *   off len  field
 *     0   8  magic    "CAIRNGC1"
 *     8   8  time_ns  when it was condemned, little-endian (the key carries it too)
 * Written once; the key alone is read (its content is for a person looking at the
 * bucket). Several marks of one pack may exist after a crash; the oldest counts.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk_codec.h"
#include "gc.h"
#include "idset.h"
#include "index.h"
#include "le.h"
#include "log.h"
#include "pack.h"
#include "util.h"

#define MARK_LEN 16u
#define COND_KEY_LEN (sizeof(REPO_GC_CONDEMNED) - 1 + 2 * PACK_ID_LEN + 1 + 16)
#define DEAD_PREFIX "gc/dead/"
#define DEAD_GROUP_MAX 64

struct gpack {
	uint32_t nents;            /* 0 with walked NULL: not a candidate */
	uint64_t *walked, *reused; /* nents bits each */
	uint8_t id[PACK_ID_LEN];
	uint64_t size;             /* object bytes (0: the object was not listed) */
	uint64_t condemned_ns;     /* oldest mark, 0 if none */
};

struct stashed {
	char *key;
	void *data;
	size_t len;
	struct stashed *next;
};

/* Repack output: the open new pack and where its records came from. */
struct source {
	uint32_t slot;
	struct pack_entry *ents;
	uint32_t n;
	uint64_t *moved;           /* bits of the records copied out */
	uint64_t size;
	int complete;              /* every live record appended */
	struct source *next;
};

struct gc {
	struct repo *r;
	struct backend *be;
	const struct aead_keys *k;
	struct gc_opts o;
	struct gc_result *res;

	pthread_mutex_t tlock;     /* reused bits (taken under the repository lock) */
	uint32_t n0;
	struct gpack *p;

	pthread_mutex_t slock;     /* the stash */
	struct stashed *stash;
	int stash_closed;

	struct idset fresh;        /* ids of chunks in packs newer than the run: only to
				    * walk shared subtrees once */
	struct idset missing;      /* referenced chunks no pack holds (res->missing) */
	int walk_err;

	struct pack_builder out;
	int out_ready;
	uint32_t *from_slot;       /* per record of out */
	uint64_t *from_off;
	struct source *sources;
	uint64_t now;
};

static uint64_t *bits_new(uint32_t n)
{
	return calloc((n + 63) / 64 ? (n + 63) / 64 : 1, sizeof(uint64_t));
}

static int bit_get(const uint64_t *b, uint32_t i)
{
	return (int)((b[i / 64] >> (i % 64)) & 1);
}

static void bit_set(uint64_t *b, uint32_t i)
{
	b[i / 64] |= 1ull << (i % 64);
}

static void step(struct gc *g, const char *what)
{
	if (g->o.step)
		g->o.step(g->o.arg, what);
}

static void progress(struct gc *g, const char *phase, uint64_t done, uint64_t total)
{
	if (g->o.progress)
		g->o.progress(g->o.arg, phase, done, total);
}

/* ---- hooks (called by the repository) ---- */

static void on_reused(void *arg, uint32_t slot, uint32_t entry)
{
	struct gc *g = arg;

	if (slot >= g->n0 || !g->p[slot].reused || entry >= g->p[slot].nents)
		return;
	pthread_mutex_lock(&g->tlock);
	bit_set(g->p[slot].reused, entry);
	pthread_mutex_unlock(&g->tlock);
}

static void on_meta_replacing(void *arg, const char *key)
{
	struct gc *g = arg;
	const char *const *pre = g->o.walker->object_prefixes;
	struct stashed *s;
	void *data;
	size_t len;
	int rc;

	while (pre && *pre && strncmp(key, *pre, strlen(*pre)))
		pre++;
	if (!pre || !*pre || !g->o.walker->walk_object)
		return;
	pthread_mutex_lock(&g->slock);
	rc = g->stash_closed;
	pthread_mutex_unlock(&g->slock);
	if (rc)
		return;
	rc = repo_meta_get(g->r, key, &data, &len);
	if (rc == -ENOENT)
		return;
	if (rc) {
		pthread_mutex_lock(&g->slock);
		if (!g->stash_closed)
			g->walk_err = rc; /* cannot prove safety: delete nothing */
		pthread_mutex_unlock(&g->slock);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (s)
		s->key = strdup(key);
	if (!s || !s->key) {
		free(data);
		free(s);
		pthread_mutex_lock(&g->slock);
		if (!g->stash_closed)
			g->walk_err = -ENOMEM; /* cannot prove safety: delete nothing */
		pthread_mutex_unlock(&g->slock);
		return;
	}
	s->data = data;
	s->len = len;
	pthread_mutex_lock(&g->slock);
	if (g->stash_closed) {
		pthread_mutex_unlock(&g->slock);
		free(s->key);
		free(s->data);
		free(s);
		return;
	}
	s->next = g->stash;
	g->stash = s;
	pthread_mutex_unlock(&g->slock);
}

/* ---- mark ---- */

static int mark_ref(void *arg, const char *root, const struct chunk_id *id)
{
	struct gc *g = arg;
	uint32_t slot, entry;
	int rc;

	(void)root;
	g->res->refs++;
	if ((g->res->refs & 0xfff) == 0) {
		progress(g, "mark", g->res->refs, 0);
		if (g->o.cancelled && g->o.cancelled(g->o.arg))
			return -ECANCELED;
	}
	rc = repo_chunk_locate(g->r, id, &slot, &entry);
	if (rc == -ENOENT) {
		/* counted once however many roots name it, as 'cairn check' names it */
		rc = idset_add(&g->missing, id);
		if (rc < 0)
			return rc;
		g->res->missing += (uint64_t)rc;
		return 0;
	}
	if (rc)
		return rc;
	if (slot < g->n0 && g->p[slot].walked) {
		if (entry >= g->p[slot].nents)
			return 0;
		if (bit_get(g->p[slot].walked, entry))
			return REPO_WALK_SEEN;
		bit_set(g->p[slot].walked, entry);
		return 0;
	}
	rc = idset_add(&g->fresh, id);
	if (rc < 0)
		return rc;
	return rc ? 0 : REPO_WALK_SEEN;
}

static void mark_bad(void *arg, const char *object, const char *what)
{
	struct gc *g = arg;

	g->res->damaged = 1;
	log_error("gc", "%s: %s; gc deletes nothing until 'cairn check' passes", object, what);
}

static int mark(struct gc *g)
{
	struct repo_walk_cbs cb = { .ref = mark_ref, .bad = mark_bad, .arg = g };
	struct chunk_store cs;
	int rc;

	repo_chunk_store(g->r, &cs);
	rc = g->o.walker->walk(g->o.walker->ctx, &cs, &cb);
	/* objects deleted since gc_begin: until none is left, then close the stash */
	while (!rc) {
		struct stashed *s;

		pthread_mutex_lock(&g->slock);
		s = g->stash;
		g->stash = NULL;
		if (!s)
			g->stash_closed = 1;
		pthread_mutex_unlock(&g->slock);
		if (!s)
			break;
		while (s) {
			struct stashed *nx = s->next;

			if (!rc && g->o.walker->walk_object)
				rc = g->o.walker->walk_object(g->o.walker->ctx, &cs, s->key, s->data,
							      s->len, &cb);
			free(s->key);
			free(s->data);
			free(s);
			s = nx;
		}
	}
	pthread_mutex_lock(&g->slock);
	g->stash_closed = 1;
	if (!rc)
		rc = g->walk_err;
	pthread_mutex_unlock(&g->slock);
	progress(g, "mark", g->res->refs, g->res->refs);
	return rc;
}

/* ---- sweep helpers ---- */

static void cond_key(const uint8_t id[PACK_ID_LEN], uint64_t t, char out[COND_KEY_LEN + 1])
{
	char hex[2 * PACK_ID_LEN + 1];

	util_hex(id, PACK_ID_LEN, hex);
	snprintf(out, COND_KEY_LEN + 1, REPO_GC_CONDEMNED "%s.%016llx", hex, (unsigned long long)t);
}

/* Parse a condemn mark key: pack id and time. */
static int cond_parse(const char *key, uint8_t id[PACK_ID_LEN], uint64_t *t)
{
	const char *p = key + strlen(REPO_GC_CONDEMNED);
	char hex[2 * PACK_ID_LEN + 1], *end;

	if (strlen(key) != COND_KEY_LEN || p[2 * PACK_ID_LEN] != '.')
		return -EINVAL;
	memcpy(hex, p, 2 * PACK_ID_LEN);
	hex[2 * PACK_ID_LEN] = 0;
	if (util_unhex(hex, id, PACK_ID_LEN))
		return -EINVAL;
	*t = strtoull(p + 2 * PACK_ID_LEN + 1, &end, 16);
	return *end ? -EINVAL : 0;
}

/* The records of slot s: its index segment, else its trailer; must count nents. */
static int pack_ents(struct gc *g, uint32_t s, struct pack_entry **ents)
{
	char key[PACK_KEY_LEN];
	uint32_t n = 0;
	void *seg;
	size_t len;
	int rc;

	index_segment_key(g->p[s].id, key);
	rc = g->be->ops->get(g->be->ctx, key, &seg, &len);
	if (rc == 0) {
		rc = index_segment_decode(g->k, seg, len, g->p[s].id, ents, &n);
		free(seg);
	}
	if (rc) {
		pack_key(g->p[s].id, key);
		rc = pack_read_trailer(g->be, g->k, key, g->p[s].size, ents, &n);
	}
	if (rc)
		return rc;
	if (n != g->p[s].nents) {
		free(*ents);
		return -EBADMSG;
	}
	return 0;
}

static int is_live(struct gc *g, uint32_t s, uint32_t e)
{
	return bit_get(g->p[s].walked, e) || bit_get(g->p[s].reused, e);
}

struct busy_arg {
	struct gc *g;
	uint32_t slot;
	const uint64_t *moved;     /* NULL: any reuse makes it busy */
};

/* Under the repository lock: did a record that is not copied elsewhere come back? */
static int pack_busy(void *arg)
{
	struct busy_arg *b = arg;
	struct gpack *p = &b->g->p[b->slot];
	int busy = 0;

	pthread_mutex_lock(&b->g->tlock);
	for (uint32_t w = 0; w < (p->nents + 63) / 64 && !busy; w++)
		busy = (p->reused[w] & ~(b->moved ? b->moved[w] : 0)) != 0;
	pthread_mutex_unlock(&b->g->tlock);
	return busy;
}

/* Delete the marks of pack s (those listed in marks). */
static int drop_marks(struct gc *g, const uint8_t id[PACK_ID_LEN], const struct backend_keys *marks,
		      const char *what)
{
	char prefix[COND_KEY_LEN + 1];
	size_t pl;
	int rc;

	cond_key(id, 0, prefix);
	pl = strlen(REPO_GC_CONDEMNED) + 2 * PACK_ID_LEN;
	for (size_t i = backend_keys_lower(marks, prefix, pl);
	     i < marks->n && !strncmp(marks->keys[i], prefix, pl); i++) {
		step(g, what);
		rc = g->be->ops->del(g->be->ctx, marks->keys[i]);
		if (rc && rc != -ENOENT)
			return rc;
	}
	return 0;
}

/* Retire slot s and delete its objects: segment, pack, marks. -EBUSY: kept. */
static int delete_pack(struct gc *g, uint32_t s, const struct pack_entry *ents,
		       const uint64_t *moved, const struct backend_keys *marks)
{
	struct busy_arg b = { .g = g, .slot = s, .moved = moved };
	char key[PACK_KEY_LEN];
	int rc;

	rc = repo_pack_retire(g->r, s, ents, g->p[s].nents, pack_busy, &b);
	if (rc)
		return rc;
	index_segment_key(g->p[s].id, key);
	step(g, "delete-index");
	rc = g->be->ops->del(g->be->ctx, key);
	if (rc && rc != -ENOENT)
		return rc;
	pack_key(g->p[s].id, key);
	step(g, "delete-pack");
	rc = g->be->ops->del(g->be->ctx, key);
	if (rc && rc != -ENOENT)
		return rc;
	g->res->packs_deleted++;
	g->res->bytes_deleted += g->p[s].size;
	return drop_marks(g, g->p[s].id, marks, "delete-mark");
}

static int condemn(struct gc *g, uint32_t s)
{
	char key[COND_KEY_LEN + 1];
	uint8_t obj[MARK_LEN];

	cond_key(g->p[s].id, g->now, key);
	memcpy(obj, "CAIRNGC1", 8);
	le_put64(obj + 8, g->now);
	step(g, "condemn");
	g->res->packs_condemned++;
	g->res->bytes_condemned += g->p[s].size;
	if (!g->res->next_ns || g->res->next_ns > g->now + g->o.grace_ns)
		g->res->next_ns = g->now + g->o.grace_ns;
	return g->be->ops->put(g->be->ctx, key, obj, sizeof(obj), 0);
}

/* ---- repack ---- */

static void source_free(struct source *src)
{
	free(src->ents);
	free(src->moved);
	free(src);
}

/* Store the open new pack, point the index at it, then finish the sources whose every
 * live record is now in a stored pack: delete them (grace 0) or condemn them. */
static int out_flush(struct gc *g, const struct backend_keys *marks)
{
	struct source **pp, *src;
	char key[PACK_KEY_LEN];
	uint32_t slot;
	void *seg;
	size_t len, seg_len;
	int rc;

	if (g->out_ready && g->out.n) {
		rc = pack_builder_finish(&g->out, g->k, &len);
		if (rc)
			return rc;
		pack_key(g->out.id, key);
		step(g, "repack-pack");
		rc = g->be->ops->put(g->be->ctx, key, g->out.buf, len, BACKEND_PUT_EXCL);
		if (rc)
			return rc;
		rc = index_segment_encode(g->k, g->out.id, g->out.ents, g->out.n, &seg, &seg_len);
		if (rc)
			return rc;
		index_segment_key(g->out.id, key);
		step(g, "repack-index");
		rc = g->be->ops->put(g->be->ctx, key, seg, seg_len, BACKEND_PUT_EXCL);
		free(seg);
		if (rc)
			return rc;
		rc = repo_pack_adopt(g->r, g->out.id, g->out.ents, g->out.n, g->from_slot,
				     g->from_off, &slot);
		if (rc)
			return rc;
		g->res->packs_written++;
		g->res->bytes_written += len;
		g->res->chunks_moved += g->out.n;
		rc = pack_builder_reset(&g->out);
		if (rc)
			return rc;
	}
	for (pp = &g->sources; (src = *pp);) {
		if (!src->complete) {
			pp = &src->next;
			continue;
		}
		*pp = src->next;
		g->res->packs_repacked++;
		if (g->o.grace_ns) {
			rc = condemn(g, src->slot);
		} else {
			rc = delete_pack(g, src->slot, src->ents, src->moved, marks);
			if (rc == -EBUSY) {
				log_info("gc", "a repacked pack is referenced again; it is kept");
				rc = 0;
			}
		}
		source_free(src);
		if (rc)
			return rc;
	}
	return 0;
}

static int repack(struct gc *g, uint32_t s, struct pack_entry *ents, const struct backend_keys *marks)
{
	struct source *src;
	struct codec_hdr h;
	char key[PACK_KEY_LEN];
	uint8_t *obj = NULL;
	size_t len;
	int rc;

	if (!g->out_ready) {
		rc = pack_builder_init(&g->out);
		if (rc)
			return rc;
		g->out_ready = 1;
	}
	src = calloc(1, sizeof(*src));
	if (!src)
		return -ENOMEM;
	src->slot = s;
	src->ents = ents;
	src->n = g->p[s].nents;
	src->size = g->p[s].size;
	src->moved = bits_new(src->n);
	if (!src->moved) {
		src->ents = NULL;
		free(src);
		return -ENOMEM;
	}
	pack_key(g->p[s].id, key);
	rc = g->be->ops->get(g->be->ctx, key, (void **)&obj, &len);
	if (rc)
		goto out_free_src;
	/* verify first: a damaged record is not copied, and its pack is left as it is */
	pthread_mutex_lock(&g->tlock);
	for (uint32_t e = 0; e < src->n; e++)
		if (is_live(g, s, e))
			bit_set(src->moved, e);
	pthread_mutex_unlock(&g->tlock);
	for (uint32_t e = 0; e < src->n; e++) {
		if (!bit_get(src->moved, e))
			continue;
		if (ents[e].offset + ents[e].rec_len > len || ents[e].rec_len < CODEC_REC_HDR_LEN ||
		    chunk_codec_parse_hdr(obj + ents[e].offset, &h) ||
		    memcmp(h.id.b, ents[e].id.b, CHUNK_ID_LEN) ||
		    CODEC_REC_HDR_LEN + (uint64_t)h.stored_len != ents[e].rec_len) {
			log_error("gc", "pack %s: record of a live chunk at offset %llu is damaged; "
				  "the pack is not repacked ('cairn check --read-data')", key,
				  (unsigned long long)ents[e].offset);
			rc = 0;
			goto out_free_src;
		}
	}
	for (uint32_t e = 0; e < src->n; e++) {
		uint64_t off;

		if (!bit_get(src->moved, e))
			continue;
		if (!pack_builder_fits(&g->out, ents[e].rec_len)) {
			rc = out_flush(g, marks);
			if (rc)
				goto out_free_src;
		}
		g->from_slot[g->out.n] = s;
		g->from_off[g->out.n] = ents[e].offset;
		pack_builder_append(&g->out, obj + ents[e].offset, ents[e].rec_len, ents[e].kind,
				    &ents[e].id, ents[e].plain_len, &off);
	}
	free(obj);
	src->complete = 1;
	src->next = g->sources;
	g->sources = src;
	return 0;

out_free_src:
	free(obj);
	src->ents = NULL; /* the caller frees ents */
	source_free(src);
	return rc;
}

/* ---- marks (incomplete uploads and dead metadata) ---- */

/* Write the mark object key: "CAIRNGC1" and the run's time. */
static int mark_put(struct gc *g, const char *key)
{
	uint8_t obj[MARK_LEN];

	memcpy(obj, "CAIRNGC1", 8);
	le_put64(obj + 8, g->now);
	return g->be->ops->put(g->be->ctx, key, obj, sizeof(obj), 0);
}

/* Oldest time of the marks in the sorted list whose keys are prefix (pl bytes) followed
 * by "<016x time>" alone; 0 if none. */
static uint64_t oldest_mark(const struct backend_keys *marks, const char *prefix, size_t pl)
{
	uint64_t oldest = 0;

	for (size_t i = backend_keys_lower(marks, prefix, pl);
	     i < marks->n && !strncmp(marks->keys[i], prefix, pl); i++) {
		const char *h = marks->keys[i] + pl;
		char *end;
		uint64_t t;

		if (strlen(h) != 16)
			continue;
		t = strtoull(h, &end, 16);
		if (*end)
			continue;
		if (!oldest || t < oldest)
			oldest = t ? t : 1;
	}
	return oldest;
}

static void note_next(struct gc *g, uint64_t t)
{
	if (!g->res->next_ns || g->res->next_ns > t + g->o.grace_ns)
		g->res->next_ns = t + g->o.grace_ns;
}

/* ---- incomplete uploads (see the top of this file) ---- */

static int id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, PACK_ID_LEN);
}

/* The ids of the repository's stored packs now, sorted; *out malloc'd. */
static int stored_ids(struct gc *g, uint8_t (**out)[PACK_ID_LEN], uint32_t *n)
{
	uint32_t ns = repo_pack_slots(g->r), k = 0, nents;
	uint8_t (*v)[PACK_ID_LEN] = malloc((size_t)(ns ? ns : 1) * PACK_ID_LEN);

	if (!v)
		return -ENOMEM;
	for (uint32_t s = 0; s < ns; s++)
		if (!repo_pack_get(g->r, s, v[k], &nents))
			k++;
	qsort(v, k, PACK_ID_LEN, id_cmp);
	*out = v;
	*n = k;
	return 0;
}

static int known(uint8_t (*ids)[PACK_ID_LEN], uint32_t n, const uint8_t id[PACK_ID_LEN])
{
	return n && bsearch(id, ids, n, PACK_ID_LEN, id_cmp) != NULL;
}

/* Delete the incomplete pack key (its marks after it). */
static int delete_incomplete(struct gc *g, const uint8_t id[PACK_ID_LEN], const char *key,
			     const struct backend_keys *marks)
{
	char seg_key[PACK_KEY_LEN];
	uint64_t size;
	int rc;

	index_segment_key(id, seg_key);
	rc = g->be->ops->stat(g->be->ctx, seg_key, &size);
	if (rc != -ENOENT)
		return rc ? rc : -EBUSY; /* a segment appeared: not a cut upload */
	step(g, "delete-incomplete");
	rc = g->be->ops->del(g->be->ctx, key);
	if (rc && rc != -ENOENT)
		return rc;
	log_info("gc", "deleted %s: an upload cut short by a crash", key);
	return drop_marks(g, id, marks, "delete-mark");
}

static int sweep_incomplete(struct gc *g, const struct backend_keys *segs,
			    const struct backend_keys *packs, const struct backend_keys *marks)
{
	uint8_t (*ids)[PACK_ID_LEN] = NULL;
	uint32_t nids = 0;
	size_t *cand = NULL, nc = 0;
	int rc, kept = 0;

	rc = stored_ids(g, &ids, &nids);
	if (rc)
		return rc;
	cand = malloc(sizeof(*cand) * (packs->n ? packs->n : 1));
	if (!cand) {
		rc = -ENOMEM;
		goto out_free;
	}
	for (size_t i = 0; i < packs->n; i++) {
		char seg_key[PACK_KEY_LEN];
		struct pack_entry *ents = NULL;
		uint8_t id[PACK_ID_LEN];
		uint32_t n = 0;

		if (pack_id_from_key(packs->keys[i], id) || known(ids, nids, id))
			continue;
		index_segment_key(id, seg_key);
		if (backend_keys_find(segs, seg_key) >= 0)
			continue; /* damage if anything ('cairn check'), not a cut upload */
		rc = pack_read_trailer(g->be, g->k, packs->keys[i], packs->sizes[i], &ents, &n);
		free(ents);
		if (rc == -EBADMSG || rc == -ENODATA)
			cand[nc++] = i;
		else if (rc && rc != -ENOENT)
			log_error("gc", "cannot read pack %s (%s); it is left alone", packs->keys[i],
				  strerror(-rc));
		rc = 0;
	}
	if (!nc)
		goto out_free;
	/* every pack this process was storing at the listing is stored after this; a
	 * dry run waits too (storing what was written is no gc change), else it would
	 * count a pack being uploaded as a cut upload */
	rc = repo_flush(g->r);
	if (rc) {
		log_warn("gc", "the packs being written cannot be stored now (%s); incomplete "
			 "uploads are left for a later run", strerror(-rc));
		rc = 0;
		goto out_free;
	}
	free(ids);
	ids = NULL;
	rc = stored_ids(g, &ids, &nids);
	if (rc)
		goto out_free;
	for (size_t c = 0; c < nc; c++) {
		const char *key = packs->keys[cand[c]];
		uint64_t size = packs->sizes[cand[c]], t;
		char prefix[COND_KEY_LEN + 1];
		uint8_t id[PACK_ID_LEN];

		pack_id_from_key(key, id);
		if (known(ids, nids, id))
			continue; /* it was being stored */
		g->res->incomplete++;
		if (g->res->damaged || g->res->missing) {
			kept++;
			continue;
		}
		cond_key(id, 0, prefix);
		t = oldest_mark(marks, prefix, strlen(REPO_GC_CONDEMNED) + 2 * PACK_ID_LEN + 1);
		if (t ? g->now >= t + g->o.grace_ns : !g->o.grace_ns) {
			rc = g->o.dry_run ? 0 : delete_incomplete(g, id, key, marks);
			if (rc == -EBUSY) {
				rc = 0;
				continue;
			}
			if (rc)
				goto out_free;
			g->res->packs_deleted++;
			g->res->bytes_deleted += size;
			g->res->incomplete_deleted++;
		} else if (t) {
			g->res->packs_waiting++;
			g->res->bytes_waiting += size;
			note_next(g, t);
		} else {
			if (!g->o.dry_run) {
				cond_key(id, g->now, prefix);
				step(g, "condemn");
				rc = mark_put(g, prefix);
				if (rc)
					goto out_free;
			}
			g->res->packs_condemned++;
			g->res->bytes_condemned += size;
			note_next(g, g->now);
		}
	}
	if (kept)
		log_warn("gc", "%d incomplete upload(s) kept: %s", kept, g->res->damaged ?
			 "the repository is damaged ('cairn check')" :
			 "referenced chunks are missing and they might hold them ('cairn check')");
out_free:
	free(cand);
	free(ids);
	return rc;
}

/* ---- dead metadata (see the top of this file) ---- */

struct dgroup {
	char name[DEAD_GROUP_MAX + 1];
	size_t first, n;           /* its objects: obj[first .. first + n) */
	uint64_t bytes;
};

struct dobj {
	char *key;
	uint64_t size;
};

struct dead {
	struct dgroup *grp;
	size_t ngrp, capgrp;
	struct dobj *obj;
	size_t nobj, capobj;
};

static int group_valid(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > DEAD_GROUP_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

static int dead_cb(void *arg, const char *group, const char *key, uint64_t size)
{
	struct dead *d = arg;

	if (!group_valid(group) || !*key)
		return -EINVAL;
	if (!d->ngrp || strcmp(d->grp[d->ngrp - 1].name, group)) {
		if (d->ngrp == d->capgrp) {
			size_t cap = d->capgrp ? d->capgrp * 2 : 8;
			struct dgroup *v = realloc(d->grp, sizeof(*v) * cap);

			if (!v)
				return -ENOMEM;
			d->grp = v;
			d->capgrp = cap;
		}
		memset(&d->grp[d->ngrp], 0, sizeof(d->grp[0]));
		snprintf(d->grp[d->ngrp].name, sizeof(d->grp[0].name), "%s", group);
		d->grp[d->ngrp].first = d->nobj;
		d->ngrp++;
	}
	if (d->nobj == d->capobj) {
		size_t cap = d->capobj ? d->capobj * 2 : 64;
		struct dobj *v = realloc(d->obj, sizeof(*v) * cap);

		if (!v)
			return -ENOMEM;
		d->obj = v;
		d->capobj = cap;
	}
	d->obj[d->nobj].key = strdup(key);
	if (!d->obj[d->nobj].key)
		return -ENOMEM;
	d->obj[d->nobj].size = size;
	d->nobj++;
	d->grp[d->ngrp - 1].n++;
	d->grp[d->ngrp - 1].bytes += size;
	return 0;
}

/* "gc/dead/<group>." (no time) into out. */
static void dead_prefix(const char *group, char *out, size_t len)
{
	snprintf(out, len, DEAD_PREFIX "%s.", group);
}

/* Delete the group's objects, then its marks. */
static int delete_group(struct gc *g, const struct dead *d, const struct dgroup *gr,
			const struct backend_keys *marks)
{
	char prefix[sizeof(DEAD_PREFIX) + DEAD_GROUP_MAX + 2];
	size_t pl;
	int rc;

	for (size_t i = gr->first; i < gr->first + gr->n; i++) {
		step(g, "delete-meta");
		rc = repo_meta_del(g->r, d->obj[i].key);
		if (rc && rc != -ENOENT)
			return rc;
	}
	dead_prefix(gr->name, prefix, sizeof(prefix));
	pl = strlen(prefix);
	for (size_t i = backend_keys_lower(marks, prefix, pl);
	     i < marks->n && !strncmp(marks->keys[i], prefix, pl); i++) {
		step(g, "delete-mark");
		rc = g->be->ops->del(g->be->ctx, marks->keys[i]);
		if (rc && rc != -ENOENT)
			return rc;
	}
	return 0;
}

static int sweep_dead(struct gc *g)
{
	char prefix[sizeof(DEAD_PREFIX) + DEAD_GROUP_MAX + 2 + 16];
	struct backend_keys marks = { 0 };
	struct chunk_store cs;
	struct dead d = { 0 };
	int rc;

	if (!g->o.walker->dead)
		return 0;
	rc = backend_list_keys(g->be, DEAD_PREFIX, &marks);
	if (rc)
		goto out_free;
	repo_chunk_store(g->r, &cs);
	rc = g->o.walker->dead(g->o.walker->ctx, &cs, dead_cb, &d);
	if (rc)
		goto out_free;
	for (size_t i = 0; i < d.ngrp; i++) {
		const struct dgroup *gr = &d.grp[i];
		uint64_t t;

		g->res->dead_volumes++;
		dead_prefix(gr->name, prefix, sizeof(prefix));
		t = oldest_mark(&marks, prefix, strlen(prefix));
		if (!g->res->damaged && (t ? g->now >= t + g->o.grace_ns : !g->o.grace_ns)) {
			if (!g->o.dry_run) {
				rc = delete_group(g, &d, gr, &marks);
				if (rc)
					goto out_free;
			}
			g->res->meta_deleted += gr->n;
			g->res->meta_bytes_deleted += gr->bytes;
			continue;
		}
		if (!t && !g->res->damaged && !g->o.dry_run) {
			snprintf(prefix + strlen(prefix), sizeof(prefix) - strlen(prefix), "%016llx",
				 (unsigned long long)g->now);
			step(g, "condemn-meta");
			rc = mark_put(g, prefix);
			if (rc)
				goto out_free;
		}
		g->res->meta_waiting += gr->n;
		g->res->meta_bytes_waiting += gr->bytes;
		if (!g->res->damaged)
			note_next(g, t ? t : g->now);
	}
	/* marks of groups with nothing left */
	for (size_t i = 0; i < marks.n && !g->o.dry_run && !g->res->damaged; i++) {
		const char *name = marks.keys[i] + strlen(DEAD_PREFIX), *dot = strrchr(name, '.');
		size_t k;

		if (!dot)
			continue;
		for (k = 0; k < d.ngrp; k++)
			if (strlen(d.grp[k].name) == (size_t)(dot - name) &&
			    !strncmp(d.grp[k].name, name, (size_t)(dot - name)))
				break;
		if (k < d.ngrp)
			continue;
		step(g, "delete-orphan");
		rc = g->be->ops->del(g->be->ctx, marks.keys[i]);
		if (rc && rc != -ENOENT)
			goto out_free;
		g->res->orphans_deleted++;
	}
	rc = 0;
out_free:
	for (size_t i = 0; i < d.nobj; i++)
		free(d.obj[i].key);
	free(d.obj);
	free(d.grp);
	backend_keys_free(&marks);
	return rc;
}

/* ---- sweep ---- */

static int sweep(struct gc *g)
{
	struct backend_keys segs = { 0 }, packs = { 0 }, marks = { 0 };
	char key[PACK_KEY_LEN];
	int rc;

	/* index/ before packs/: see the top of this file */
	rc = backend_list_keys(g->be, "index/", &segs);
	if (!rc)
		rc = backend_list_keys(g->be, "packs/", &packs);
	if (!rc)
		rc = backend_list_keys(g->be, REPO_GC_CONDEMNED, &marks);
	if (rc)
		goto out_free;
	for (uint32_t s = 0; s < g->n0; s++) {
		char prefix[COND_KEY_LEN + 1];
		size_t pl = strlen(REPO_GC_CONDEMNED) + 2 * PACK_ID_LEN;
		long k;

		if (!g->p[s].walked)
			continue;
		cond_key(g->p[s].id, 0, prefix);
		for (size_t i = backend_keys_lower(&marks, prefix, pl);
		     i < marks.n && !strncmp(marks.keys[i], prefix, pl); i++) {
			uint8_t id[PACK_ID_LEN];
			uint64_t t;

			if (cond_parse(marks.keys[i], id, &t))
				continue;
			if (!g->p[s].condemned_ns || t < g->p[s].condemned_ns)
				g->p[s].condemned_ns = t ? t : 1;
		}
		pack_key(g->p[s].id, key);
		k = backend_keys_find(&packs, key);
		if (k >= 0) {
			g->p[s].size = packs.sizes[k];
			g->res->packs++;
			g->res->pack_bytes += packs.sizes[k];
		}
	}
	for (uint32_t s = 0; s < g->n0; s++) {
		struct gpack *p = &g->p[s];
		struct pack_entry *ents = NULL;
		uint64_t live_n = 0, live_b = 0, all_b = 0;

		progress(g, "sweep", s, g->n0);
		if (g->o.cancelled && g->o.cancelled(g->o.arg)) {
			rc = -ECANCELED;
			goto out_free;
		}
		if (!p->walked || !p->size)
			continue;
		rc = pack_ents(g, s, &ents);
		if (rc) {
			pack_key(p->id, key);
			log_error("gc", "cannot read the records of pack %s (%s); it is left alone",
				  key, strerror(-rc));
			rc = 0;
			continue;
		}
		pthread_mutex_lock(&g->tlock);
		for (uint32_t e = 0; e < p->nents; e++) {
			all_b += ents[e].rec_len;
			if (is_live(g, s, e)) {
				live_n++;
				live_b += ents[e].rec_len;
				g->res->reused_chunks += !bit_get(p->walked, e);
			}
		}
		pthread_mutex_unlock(&g->tlock);
		g->res->live_chunks += live_n;
		g->res->dead_chunks += p->nents - live_n;
		g->res->live_bytes += live_b;
		g->res->dead_bytes += all_b - live_b;
		if (g->res->damaged) {
			free(ents);
			continue;
		}
		if (live_n == 0) {
			if (p->condemned_ns && g->now >= p->condemned_ns + g->o.grace_ns) {
				rc = g->o.dry_run ? 0 : delete_pack(g, s, ents, NULL, &marks);
				if (rc == -EBUSY) {
					rc = 0; /* reused since the check above: next run */
				} else if (g->o.dry_run) {
					g->res->packs_deleted++;
					g->res->bytes_deleted += p->size;
				}
			} else if (p->condemned_ns) {
				g->res->packs_waiting++;
				g->res->bytes_waiting += p->size;
				if (!g->res->next_ns || g->res->next_ns > p->condemned_ns + g->o.grace_ns)
					g->res->next_ns = p->condemned_ns + g->o.grace_ns;
			} else if (!g->o.grace_ns) {
				rc = g->o.dry_run ? 0 : delete_pack(g, s, ents, NULL, &marks);
				if (rc == -EBUSY) {
					rc = 0;
				} else if (g->o.dry_run) {
					g->res->packs_deleted++;
					g->res->bytes_deleted += p->size;
				}
			} else if (g->o.dry_run) {
				g->res->packs_condemned++;
				g->res->bytes_condemned += p->size;
			} else {
				rc = condemn(g, s);
			}
			free(ents);
		} else {
			if (p->condemned_ns) {
				g->res->packs_revived++;
				if (!g->o.dry_run)
					rc = drop_marks(g, p->id, &marks, "revive");
			}
			if (!rc && live_b * 100 < all_b * g->o.repack_pct) {
				if (g->o.dry_run) {
					g->res->packs_repacked++;
					g->res->chunks_moved += live_n;
					if (g->o.grace_ns) {
						g->res->packs_condemned++;
						g->res->bytes_condemned += p->size;
					} else {
						g->res->packs_deleted++;
						g->res->bytes_deleted += p->size;
					}
					free(ents);
				} else {
					rc = repack(g, s, ents, &marks); /* takes ents on success */
					if (rc || !g->sources || g->sources->slot != s)
						free(ents);
				}
			} else {
				free(ents);
			}
		}
		if (rc)
			goto out_free;
	}
	rc = sweep_incomplete(g, &segs, &packs, &marks);
	if (!rc)
		rc = sweep_dead(g);
	if (rc)
		goto out_free;
	if (!g->o.dry_run && !g->res->damaged) {
		for (struct source *src = g->sources; src; src = src->next)
			src->complete = 1;
		rc = out_flush(g, &marks);
		if (rc)
			goto out_free;
		/* orphans: segments whose pack is gone, marks whose pack is gone */
		for (size_t i = 0; i < segs.n; i++) {
			uint8_t id[PACK_ID_LEN];

			if (strlen(segs.keys[i]) != 6 + 2 * PACK_ID_LEN ||
			    util_unhex(segs.keys[i] + 6, id, PACK_ID_LEN))
				continue;
			pack_key(id, key);
			if (backend_keys_find(&packs, key) >= 0)
				continue;
			step(g, "delete-orphan");
			rc = g->be->ops->del(g->be->ctx, segs.keys[i]);
			if (rc && rc != -ENOENT)
				goto out_free;
			g->res->orphans_deleted++;
		}
		for (size_t i = 0; i < marks.n; i++) {
			uint8_t id[PACK_ID_LEN];
			uint64_t t;

			if (cond_parse(marks.keys[i], id, &t))
				continue;
			pack_key(id, key);
			if (backend_keys_find(&packs, key) >= 0)
				continue;
			step(g, "delete-orphan");
			rc = g->be->ops->del(g->be->ctx, marks.keys[i]);
			if (rc && rc != -ENOENT)
				goto out_free;
			g->res->orphans_deleted++;
		}
	}
	progress(g, "sweep", g->n0, g->n0);
	rc = 0;
out_free:
	backend_keys_free(&segs);
	backend_keys_free(&packs);
	backend_keys_free(&marks);
	return rc;
}

/* ---- the run ---- */

int gc_begin(struct repo *r, const struct gc_opts *o, struct gc **out)
{
	struct repo_gc_hook h;
	struct gc *g;
	int rc = -ENOMEM;

	if (!o || !o->walker || !o->walker->walk || o->repack_pct > 100)
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->r = r;
	g->be = repo_backend(r);
	g->k = repo_aead_keys(r);
	g->o = *o;
	pthread_mutex_init(&g->tlock, NULL);
	pthread_mutex_init(&g->slock, NULL);
	g->n0 = repo_pack_slots(r);
	g->p = calloc(g->n0 ? g->n0 : 1, sizeof(*g->p));
	g->from_slot = malloc(sizeof(*g->from_slot) * PACK_MAX_ENTRIES);
	g->from_off = malloc(sizeof(*g->from_off) * PACK_MAX_ENTRIES);
	if (!g->p || !g->from_slot || !g->from_off)
		goto out_free;
	for (uint32_t s = 0; s < g->n0; s++) {
		struct gpack *p = &g->p[s];

		if (repo_pack_get(r, s, p->id, &p->nents))
			continue; /* open, being written, or retired: not a candidate */
		p->walked = bits_new(p->nents);
		p->reused = bits_new(p->nents);
		if (!p->walked || !p->reused)
			goto out_free;
	}
	h = (struct repo_gc_hook){ .reused = on_reused, .meta_replacing = on_meta_replacing, .arg = g };
	repo_gc_set_hook(r, &h);
	*out = g;
	return 0;

out_free:
	gc_end(g);
	return rc;
}

int gc_run(struct gc *g, struct gc_result *res)
{
	int rc;

	memset(res, 0, sizeof(*res));
	g->res = res;
	if (g->o.settle) {
		progress(g, "settle", 0, 1);
		rc = g->o.settle(g->o.arg);
		if (rc)
			return rc;
		progress(g, "settle", 1, 1);
	}
	rc = mark(g);
	if (rc)
		return rc;
	g->now = util_now_ns();
	return sweep(g);
}

void gc_end(struct gc *g)
{
	if (!g)
		return;
	repo_gc_set_hook(g->r, NULL);
	while (g->stash) {
		struct stashed *s = g->stash;

		g->stash = s->next;
		free(s->key);
		free(s->data);
		free(s);
	}
	while (g->sources) {
		struct source *s = g->sources;

		g->sources = s->next;
		source_free(s);
	}
	for (uint32_t s = 0; g->p && s < g->n0; s++) {
		free(g->p[s].walked);
		free(g->p[s].reused);
	}
	if (g->out_ready)
		pack_builder_free(&g->out);
	free(g->p);
	free(g->from_slot);
	free(g->from_off);
	idset_free(&g->fresh);
	idset_free(&g->missing);
	pthread_mutex_destroy(&g->tlock);
	pthread_mutex_destroy(&g->slock);
	free(g);
}

int gc_repo(struct repo *r, const struct gc_opts *o, struct gc_result *res)
{
	struct gc *g;
	int rc;

	rc = gc_begin(r, o, &g);
	if (rc)
		return rc;
	rc = gc_run(g, res);
	gc_end(g);
	return rc;
}
