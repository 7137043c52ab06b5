/* volume_purge.c - volume_purge_history() (volume.h): the volume's side of a SANITIZE.
 *
 * What a volume's past is made of, and what happens to each (volume_history_reset() in
 * volume.c holds writers, checkpoints and uploads off while this runs):
 *   journal segments in <state_dir>/<volid>/journal   deleted below the purge seq
 *                                                     (volume.c, journal_delete_before)
 *   "journal/<volid>/..." segments in the repository  deleted (jstore_del)
 *   <state_dir>/<volid>/jcache/<016x first>.log[.tmp.*]  fetched copies: unlinked
 *   "history/<volid>/ckpt.*" checkpoints               deleted, but the new exact one at
 *                                                     the purge seq (history_ckpt_purge)
 *   "history/<volid>/mark.*" marks                     deleted below the purge seq
 *   "history/<volid>/snap.*" named snapshots           kept, materialized first (their
 *                                                     own map root), since they are the
 *                                                     user's own objects, as clones are
 *   "volumes/<volid>/head.<016x version>" heads        all deleted but the two written
 *                                                     after the purge
 * The chunks that only these objects referenced are then garbage; the caller runs a gc
 * (no grace period, every pack with a dead record rewritten) to delete them. Each step
 * is idempotent, so a purge cut short by a crash is simply run again.
 *
 * volume_crypto_erase() (CRYPTO ERASE of an own-key volume, vkey.h) needs no gc: the
 * volume key its data was under is destroyed, so what is stored under it is unreadable
 * wherever it lies. Its steps, each idempotent (a crash anywhere: run it again):
 *   1. a key the current one replaced (prev in its key object) that is not destroyed:
 *      an earlier run stopped after its reset; destroy it now;
 *   2. a new key, generation + 1, prev = the current one (key object, durable);
 *   3. volume_rekey_reset() (volume.c): the unfolded writes dropped unfolded and wiped,
 *      the local journal deleted, the map empty under the new key, two new heads;
 *      then, as the purge above but for every seq, the stored journal segments,
 *      fetched copies, checkpoints, marks and old heads are deleted, and so is every
 *      snapshot (under the old key it could not be read); then an exact history
 *      checkpoint of the empty map;
 *   4. the old key destroyed (tombstone, object deleted, subkeys wiped, chunk cache
 *      dropped).
 * A crash between 2 and 3 leaves a key object nothing names yet: the next run finds it
 * (prev and generation) and uses it. Step 3 drops every history object whatever its
 * seq: a run cut short after deleting the local journal restarts the journal at the
 * stored head's next_seq.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "history.h"
#include "jstore.h"
#include "log.h"
#include "point.h"
#include "util.h"
#include "volume.h"

struct purge {
	struct volume *v;
	struct chunk_store *cs;
	const struct volume_info *vi;
	const char *state_dir;
	unsigned snaps, segs, files, heads;
};

/* Materialize snapshot sn (history_snap_list callback). */
static int keep_snap(void *arg, const struct history_snap *sn)
{
	struct purge *p = arg;
	char point[VOLUME_NAME_MAX + HISTORY_SNAP_MAX + 2];
	struct history_snap m = *sn;
	struct point_plan plan;
	struct point *pt;
	int ret;

	if (sn->materialized)
		return 0;
	snprintf(point, sizeof(point), "%s@%s", p->vi->name, sn->name);
	ret = history_resolve(p->cs, p->state_dir, point, 0, &plan);
	if (!ret)
		ret = point_open(p->cs, p->state_dir, &plan, &pt);
	if (!ret) {
		ret = point_materialize(pt, &m.root);
		point_close(pt);
	}
	if (!ret) {
		m.materialized = 1;
		ret = history_snap_put(p->cs, p->vi->id, &m, 0);
	}
	if (ret == -ENODATA || ret == -ERANGE) { /* its history was gone already */
		log_warn("volume", "%s: snapshot %s cannot be read (%s); it stays as it is",
			 p->vi->name, sn->name, strerror(-ret));
		return 0;
	}
	if (ret)
		log_error("volume", "%s: cannot keep snapshot %s through the purge: %s",
			  p->vi->name, sn->name, strerror(-ret));
	else
		p->snaps++;
	return ret;
}

/* Unlink the fetched journal segments (and temporary files of fetches) below seq. */
static int drop_jcache(struct purge *p, uint64_t seq)
{
	char dir[4096], path[4400];
	struct dirent *de;
	DIR *d;
	int ret = 0;

	jstore_cache_dir(p->state_dir, p->vi->id, dir, sizeof(dir));
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		char hex[17], *end;
		uint64_t first;

		if (strlen(de->d_name) < 20 || strncmp(de->d_name + 16, ".log", 4))
			continue;
		memcpy(hex, de->d_name, 16);
		hex[16] = 0;
		first = strtoull(hex, &end, 16);
		if (*end || first >= seq)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) && errno != ENOENT) {
			ret = -errno;
			break;
		}
		p->files++;
	}
	closedir(d);
	return ret;
}

/* The journal segments stored in the repository below seq. */
static int drop_jstore(struct purge *p, uint64_t seq)
{
	struct jstore_seg *segs = NULL;
	unsigned n = 0;
	int ret;

	ret = jstore_list(p->cs, p->vi->id, &segs, &n);
	for (unsigned i = 0; !ret && i < n; i++) {
		if (segs[i].first >= seq)
			continue;
		ret = jstore_del(p->cs, p->vi->id, &segs[i]);
		if (!ret)
			p->segs++;
	}
	free(segs);
	return ret;
}

struct head_keys {
	char prefix[96];
	uint64_t keep_from;   /* versions below this go */
	char **del;
	unsigned n, cap;
	int err;
};

static int head_cb(void *arg, const char *key, uint64_t size)
{
	struct head_keys *h = arg;
	const char *p = key + strlen(h->prefix);
	char *end;
	uint64_t ver;

	(void)size;
	ver = strtoull(p, &end, 16);
	if (strlen(p) != 16 || *end || ver >= h->keep_from)
		return 0;
	if (h->n == h->cap) {
		unsigned cap = h->cap ? 2 * h->cap : 8;
		char **v = realloc(h->del, cap * sizeof(*v));

		if (!v) {
			h->err = -ENOMEM;
			return 1;
		}
		h->del = v;
		h->cap = cap;
	}
	if (!(h->del[h->n] = strdup(key))) {
		h->err = -ENOMEM;
		return 1;
	}
	h->n++;
	return 0;
}

/* Every head version below the last two (newest: version). */
static int drop_heads(struct purge *p, uint64_t version)
{
	struct head_keys h = { .keep_from = version - 1 };
	int ret;

	snprintf(h.prefix, sizeof(h.prefix), "volumes/%s/head.", p->vi->id);
	ret = p->cs->ops->meta_list(p->cs->ctx, h.prefix, head_cb, &h);
	if (ret > 0)
		ret = 0;
	if (!ret)
		ret = h.err;
	for (unsigned i = 0; i < h.n; i++) {
		int r = ret ? 0 : p->cs->ops->meta_del(p->cs->ctx, h.del[i]);

		if (r && r != -ENOENT)
			ret = r;
		else if (!ret)
			p->heads++;
		free(h.del[i]);
	}
	free(h.del);
	return ret;
}

static int reset_cb(void *arg, uint64_t seq, int stage, uint64_t head_version)
{
	struct purge *p = arg;
	int ret;

	if (stage == VOLUME_RESET_KEEP)
		return history_snap_list(p->cs, p->vi->id, keep_snap, p);
	ret = drop_jstore(p, seq);
	if (!ret)
		ret = drop_jcache(p, seq);
	if (!ret)
		ret = history_ckpt_purge(p->cs, p->vi->id, seq);
	if (!ret)
		ret = history_mark_expire(p->cs, p->vi->id, seq);
	if (!ret)
		ret = drop_heads(p, head_version);
	return ret;
}

/* ---- CRYPTO ERASE ---- */

struct other_scan {
	const char *self;      /* volume id */
	uint32_t ref;
	char name[VOLUME_NAME_MAX + 1];
	int found;
};

static int other_cb(void *arg, const struct volume_info *vi)
{
	struct other_scan *o = arg;

	if (vi->key_ref != o->ref || !strcmp(vi->id, o->self))
		return 0;
	snprintf(o->name, sizeof(o->name), "%s", vi->name);
	o->found = 1;
	return 1;
}

int volume_key_shared(struct chunk_store *cs, uint32_t ref, const char *self_id,
		      char other[VOLUME_NAME_MAX + 1])
{
	struct other_scan o = { .self = self_id, .ref = ref };
	int ret = volume_list(cs, other_cb, &o);

	if (ret < 0)
		return ret;
	if (o.found && other)
		snprintf(other, VOLUME_NAME_MAX + 1, "%s", o.name);
	return o.found;
}

int volume_crypto_erase_check(struct volume *v, char other[VOLUME_NAME_MAX + 1])
{
	const struct volume_info *vi = volume_get_info(v);
	struct volume_internals in;
	int ret;

	volume_get_internals(v, &in);
	if (!vi->key_ref || !in.cs->ops->keyed || !in.cs->ops->key_new ||
	    !in.cs->ops->key_destroy || !in.cs->ops->key_info)
		return -EOPNOTSUPP;
	ret = volume_key_shared(in.cs, vi->key_ref, vi->id, other);
	if (ret < 0)
		return ret;
	return ret ? -EBUSY : 0;
}

/* Delete snapshot sn (history_snap_list callback): it was under the erased key. */
static int drop_snap(void *arg, const struct history_snap *sn)
{
	struct purge *p = arg;
	int ret = history_snap_del(p->cs, p->vi->id, sn->name);

	if (ret && ret != -ENOENT) {
		log_error("volume", "%s: cannot delete snapshot %s: %s", p->vi->name, sn->name,
			  strerror(-ret));
		return ret;
	}
	log_info("volume", "%s: snapshot %s deleted by the CRYPTO ERASE: it was under the "
		 "erased key", p->vi->name, sn->name);
	p->snaps++;
	return 0;
}

/* Everything of the history goes, whatever its seq: after a crash in the middle of an
 * earlier run the journal restarts at the stored head's next_seq, below seqs that run
 * had used (their records deleted with it), so a seq bound would keep some. */
static int rekey_cb(void *arg, uint64_t seq, uint64_t head_version)
{
	struct purge *p = arg;
	int ret;

	(void)seq;
	ret = history_snap_list(p->cs, p->vi->id, drop_snap, p);
	if (!ret)
		ret = drop_jstore(p, UINT64_MAX);
	if (!ret)
		ret = drop_jcache(p, UINT64_MAX);
	if (!ret)
		ret = history_ckpt_purge(p->cs, p->vi->id, UINT64_MAX);
	if (!ret)
		ret = history_mark_expire(p->cs, p->vi->id, UINT64_MAX);
	if (!ret)
		ret = drop_heads(p, head_version);
	return ret;
}

/* The key an earlier run of this erase made (prev old, generation gen) and did not put
 * in use before a crash: used again rather than left behind (0: none). */
struct succ_scan {
	struct chunk_store *cs;
	uint32_t old, found;
	uint64_t gen;
};

static int succ_cb(void *arg, const char *key, uint64_t size)
{
	struct succ_scan *s = arg;
	const char *h = key + strlen("vkeys/");
	uint32_t ref, prev;
	uint64_t gen;
	char *end;

	(void)size;
	if (strncmp(key, "vkeys/", 6) || strlen(h) != 8)
		return 0; /* a tombstone */
	ref = (uint32_t)strtoul(h, &end, 16);
	if (*end || !ref || ref == s->old)
		return 0;
	if (s->cs->ops->key_info(s->cs->ctx, ref, &prev, &gen) == 0 && prev == s->old &&
	    gen == s->gen) {
		s->found = ref;
		return 1;
	}
	return 0;
}

int volume_crypto_erase(struct volume *v)
{
	struct volume_internals in;
	struct purge p = { .v = v };
	struct chunk_store ncs;
	char other[VOLUME_NAME_MAX + 1] = "";
	uint32_t old, prev = 0, nref = 0;
	uint64_t gen, g, seq = 0;
	int ret;

	p.vi = volume_get_info(v);
	p.state_dir = volume_state_dir(v);
	if (!p.state_dir)
		return -EROFS;
	ret = volume_crypto_erase_check(v, other);
	if (ret == -EBUSY)
		log_error("volume", "%s: CRYPTO ERASE refused: volume %s shares its key (a clone); "
			  "erasing the key would erase it too (delete it first)", p.vi->name, other);
	if (ret)
		return ret;
	volume_get_internals(v, &in);
	p.cs = in.cs;
	old = p.vi->key_ref;
	gen = p.vi->key_gen;
	/* 1. a key an earlier run replaced but did not destroy */
	ret = in.cs->ops->key_info(in.cs->ctx, old, &prev, &g);
	if (ret)
		goto out_fail;
	if (prev && in.cs->ops->key_info(in.cs->ctx, prev, &nref, &g) == 0) {
		log_info("volume", "%s: destroying key %08x, which an interrupted CRYPTO ERASE "
			 "replaced", p.vi->name, prev);
		ret = in.cs->ops->key_destroy(in.cs->ctx, prev);
		if (ret)
			goto out_fail;
	}
	/* 2. the next key (one an interrupted run made, or a new one) */
	{
		struct succ_scan sc = { .cs = in.cs, .old = old, .gen = gen + 1 };

		ret = in.cs->ops->meta_list(in.cs->ctx, "vkeys/", succ_cb, &sc);
		if (ret < 0)
			goto out_fail;
		nref = sc.found;
		ret = 0;
	}
	if (!nref)
		ret = in.cs->ops->key_new(in.cs->ctx, p.vi->id, gen + 1, old, &nref);
	if (!ret)
		ret = in.cs->ops->keyed(in.cs->ctx, nref, &ncs);
	if (ret)
		goto out_fail;
	/* 3. the volume empty under it, its history and snapshots gone */
	ret = volume_rekey_reset(v, &ncs, nref, gen + 1, rekey_cb, &p, &seq);
	if (ret)
		goto out_fail;
	/* 4. the old key */
	volume_get_internals(v, &in);
	ret = in.cs->ops->key_destroy(in.cs->ctx, old);
	if (ret)
		goto out_fail;
	log_info("volume", "%s: CRYPTO ERASE done: key %08x (generation %llu) destroyed, key "
		 "%08x (generation %llu) in use; history before seq %llu dropped (%u snapshots, "
		 "%u stored journal segments, %u fetched copies, %u old heads)", p.vi->name, old,
		 (unsigned long long)gen, nref, (unsigned long long)(gen + 1),
		 (unsigned long long)seq, p.snaps, p.segs, p.files, p.heads);
	return 0;

out_fail:
	log_error("volume", "%s: CRYPTO ERASE failed: %s", p.vi->name, strerror(-ret));
	return ret;
}

int volume_purge_history(struct volume *v, uint64_t *seq_out)
{
	struct volume_internals in;
	struct purge p = { .v = v };
	uint64_t seq = 0;
	int ret;

	volume_get_internals(v, &in);
	p.cs = in.cs;
	p.vi = volume_get_info(v);
	p.state_dir = volume_state_dir(v);
	if (!p.state_dir)
		return -EROFS;
	ret = volume_history_reset(v, reset_cb, &p, &seq);
	if (ret) {
		log_error("volume", "%s: purging the history failed: %s", p.vi->name,
			  strerror(-ret));
		return ret;
	}
	log_info("volume", "%s: history before seq %" PRIu64 " purged (%u stored journal "
		 "segments, %u fetched copies, %u old heads; %u snapshots kept, materialized)",
		 p.vi->name, seq, p.segs, p.files, p.heads, p.snaps);
	if (seq_out)
		*seq_out = seq;
	return 0;
}
