/* volume.c - the volume engine: open/close, the IO path, folding and checkpoints.
 * Heads and create/list/lookup/delete are in volume_head.c.
 *
 * State under the locks (lock order: wlock -> gate -> olock -> blockmap's own lock):
 *   wlock   write order: a record is appended to the journal and applied to the overlay
 *           (or the map, for whole zeroed chunks) before the next record is appended.
 *   gate    rwlock: folds and zero-range map updates hold it shared while they change
 *           the map; a checkpoint holds it exclusive while it picks its ckpt seq and
 *           stores the map, so the stored root is exactly "every record < ckpt seq".
 *   olock   the overlay, applied_next, force_below, fold/ckpt flags, and every map
 *           change made together with an overlay change.
 *
 * Invariants (under olock):
 *   - every record with seq < applied_next is in the overlay or the map;
 *   - for a chunk with an overlay entry e, the map holds every record touching the
 *     chunk with seq < e->first_seq; without an entry the map holds all of them;
 *   - only one fold of a chunk runs at a time (e->folding), and only a fold or a
 *     whole-chunk zero changes the map entry of a chunk, under olock.
 * Hence the checkpoint seq S = min(first_seq over entries, applied_next), and a read
 * that finds the same map id before and after fetching the base chunk saw a
 * consistent base. A checkpoint also records hi = applied_next (under the gate, so no
 * fold changes the map meanwhile): the stored map holds no record >= hi, which makes
 * it the base of every point in time >= hi (history.h).
 *
 * History: the journal is the CDP log. Checkpoints are also kept as history
 * checkpoints (every hist_every_ns() or HIST_EVERY_RECS records, and at every cut), and
 * journal segments are kept until they are older than the retention window (and below
 * the newest history checkpoint older than it). Sealed segments are stored in the
 * repository (jstore.h) by the checkpoint thread and at close (which seals the active
 * one), unless the window is 0; once stored and below the durable checkpoint, the
 * local copies beyond the newest journal_keep bytes are deleted (the repository's is
 * then the history, fetched by readers when needed). Retention (volume.h struct volume_retention)
 * thins the checkpoints past the window to hourly and daily exact points
 * (history_ckpt_thin), then drops the journal below the boundary, locally and in the
 * repository. A restore (paused folds,
 * under wlock, gate and olock) appends a RESTORE record and resets the overlay and the
 * map to the restored root; replay does the same when it meets one.
 */
#include "volume.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "blockmap.h"
#include "bufpool.h"
#include "history.h"
#include "journal.h"
#include "jstore.h"
#include "log.h"
#include "overlay.h"
#include "point.h"
#include "util.h"
#include "volume_head.h"

#define NFOLDERS 2
#define READ_BUFS 16
#define FOLD_AGE_NS (250ull * 1000 * 1000)
#define CKPT_INTERVAL_MS 2000
#define OVERLAY_DEFAULT (256ull << 20)
#define JOURNAL_MAX_DEFAULT (1ull << 30)
#define JOURNAL_KEEP_DEFAULT (256ull << 20)
#define PICK_SCAN 64
#define HIST_EVERY_NS (30ull * 1000 * 1000 * 1000)
#define HIST_EVERY_RECS 20000ull
#define HIST_EVERY_BYTES (128ull << 20)
#define SEAL_AGE_MAX_NS (15ull * 60 * 1000 * 1000 * 1000)
#define RETAIN_CHECK_NS (10ull * 1000 * 1000 * 1000)

struct folder {
	struct volume *v;
	pthread_t th;
	int started;
	void *copy;   /* chunk_size: the overlay buffer as it was at pick time */
	void *base;   /* chunk_size: the base chunk to merge onto */
	uint64_t bitmap[OVERLAY_BITMAP_WORDS];
};

/* The ids the folds computed for chunks that one record wrote whole (jstore_known), so
 * that storing the record's segment (upload_sealed) need not hash that data again: a
 * 4-way set-associative table by (seq, chunk); a new entry replaces the oldest of its
 * set.
 * A chunk folded with last_seq == seq holds exactly what record seq wrote when that
 * record covered it whole (every record applied to an entry sets its last_seq), which
 * is the only case the upload asks about. The upload waits for a checkpoint to cover
 * a segment, so its chunks are folded by then: 16384 slots, 1 GiB of 64 KiB chunks,
 * cover the segments sealed while it catches up with a burst. */
#define FOLD_IDS 16384u
#define FOLD_WAYS 4u
struct fold_id {
	uint64_t seq, chunk;
	uint64_t xxh;          /* XXH3-64 of the chunk's content */
	struct chunk_id id;
	int used;
};

struct volume {
	struct chunk_store *cs;      /* its data's store: base_cs, or &kcs (own key) */
	struct chunk_store *base_cs; /* as opened (the open-claim registry's key) */
	struct chunk_store kcs;      /* an own-key volume's store (vkey.h): the keyed
				    * store of info.key_ref; replaced by a rekey only with
				    * writers, folds and checkpoints held off */
	struct volume_head head;  /* as last written; under ckpt_lock */
	struct volume_info info;
	uint64_t nchunks;
	uint32_t chunk_size;
	unsigned cshift;
	int read_only;
	int claimed;                 /* holds the process-wide open claim (read-write) */
	uint64_t journal_max;
	uint64_t journal_keep;       /* local bytes of stored history kept (journal_trim) */
	struct journal *j;
	struct overlay *ov;
	struct blockmap *bm;
	struct bufpool *rpool;

	pthread_mutex_t wlock;
	pthread_rwlock_t gate;
	pthread_mutex_t olock;
	pthread_cond_t space_cond;   /* overlay entry freed, journal space freed */
	pthread_cond_t fold_cond;    /* work for folders */
	pthread_cond_t folded_cond;  /* a fold finished */
	pthread_cond_t ckpt_cond;    /* wake the checkpoint thread */
	pthread_mutex_t ckpt_lock;   /* one checkpoint at a time */

	uint64_t applied_next;
	uint64_t force_below;
	unsigned space_waiters;
	unsigned forcing;            /* checkpoints waiting for forced folds */
	int journal_full;
	int stop;
	int fold_err;
	uint64_t folds_at_ckpt;
	uint64_t durable_folds;      /* folds counted below it are durable in the store
				    * (atomic; copies by reference rely on it) */
	unsigned paused;             /* folds may not start (restore) */
	unsigned folding_now;        /* folds in progress */
	uint64_t hist_ns, hist_hi;   /* the last history checkpoint (ckpt_lock) */
	struct volume_retention ret; /* the policy in force (ckpt_lock to change) */
	uint64_t retain_override;    /* volume_open_opts.retain_ns */
	uint64_t retain_checked_ns;  /* last retention pass (ckpt_lock) */
	uint64_t hist_jbytes;        /* journal_appended() at the last history checkpoint */
	pthread_mutex_t fid_lock;    /* guards fids */
	struct fold_id *fids;        /* FOLD_IDS slots, or NULL when no history is kept */
	pthread_mutex_t up_lock;     /* one upload at a time: guards up_next, up_known */
	uint64_t up_next;            /* sealed segments below this seq are stored */
	int up_known;                /* up_next was read from the repository */
	char state_dir[4096];

	uint64_t writes, reads, flushes, folds; /* atomics */

	struct folder folders[NFOLDERS];
	pthread_t ckpt_th;
	int ckpt_started;
};

static void abs_deadline(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static int range_ok(const struct volume *v, uint64_t off, uint64_t len)
{
	if (off % VOLUME_SECTOR || len % VOLUME_SECTOR)
		return -EINVAL;
	if (off > v->info.size || len > v->info.size - off)
		return -ERANGE;
	return 0;
}

/* ---- applying records (caller holds wlock) ---- */

static void apply_write(struct volume *v, uint64_t off, const void *data, uint64_t len,
			uint64_t seq)
{
	const char *p = data;

	while (len) {
		uint64_t c = off >> v->cshift;
		uint32_t co = (uint32_t)(off & (v->chunk_size - 1));
		uint32_t n = (uint32_t)MIN(len, (uint64_t)(v->chunk_size - co));
		struct overlay_entry *e;

		pthread_mutex_lock(&v->olock);
		while (!(e = overlay_get(v->ov, c, seq))) {
			v->space_waiters++;
			pthread_cond_broadcast(&v->fold_cond);
			pthread_cond_wait(&v->space_cond, &v->olock);
			v->space_waiters--;
		}
		overlay_apply(v->ov, e, co, n, p, seq);
		pthread_cond_signal(&v->fold_cond);
		pthread_mutex_unlock(&v->olock);
		off += n;
		len -= n;
		if (p)
			p += n;
	}
}

static int apply_zero(struct volume *v, uint64_t off, uint64_t len, uint64_t seq)
{
	uint64_t cmask = v->chunk_size - 1, c0, c1;
	int ret;

	if (off & cmask) {
		uint64_t n = MIN(len, v->chunk_size - (off & cmask));

		apply_write(v, off, NULL, n, seq);
		off += n;
		len -= n;
	}
	if (len & cmask) {
		uint64_t n = len & cmask;

		apply_write(v, off + len - n, NULL, n, seq);
		len -= n;
	}
	if (!len)
		return 0;
	c0 = off >> v->cshift;
	c1 = (off + len) >> v->cshift;
	pthread_rwlock_rdlock(&v->gate);
	pthread_mutex_lock(&v->olock);
	if (c1 - c0 <= overlay_count(v->ov)) {
		for (uint64_t c = c0; c < c1; c++) {
			struct overlay_entry *e = overlay_find(v->ov, c);

			if (!e)
				continue;
			if (e->folding)
				overlay_apply(v->ov, e, 0, v->chunk_size, NULL, seq);
			else
				overlay_remove(v->ov, e);
		}
	} else {
		struct overlay_entry *e = overlay_oldest(v->ov), *nx;

		for (; e; e = nx) {
			nx = overlay_younger(e);
			if (e->chunk < c0 || e->chunk >= c1)
				continue;
			if (e->folding)
				overlay_apply(v->ov, e, 0, v->chunk_size, NULL, seq);
			else
				overlay_remove(v->ov, e);
		}
	}
	ret = blockmap_zero_range(v->bm, c0, c1 - c0);
	pthread_cond_broadcast(&v->space_cond);
	pthread_mutex_unlock(&v->olock);
	pthread_rwlock_unlock(&v->gate);
	if (ret)
		log_error("volume", "%s: cannot clear map range: %s", v->info.name, strerror(-ret));
	return ret;
}

/* Make chunks [c0, c0+n) the ids (a COPY record; caller holds wlock): their overlay
 * entries are dropped and the map set. A chunk being folded is waited for first (its
 * fold would set the older content over the copy). */
static int copy_busy(struct volume *v, uint64_t c0, uint64_t n)
{
	if (n <= overlay_count(v->ov)) {
		for (uint64_t c = c0; c < c0 + n; c++) {
			struct overlay_entry *e = overlay_find(v->ov, c);

			if (e && e->folding)
				return 1;
		}
		return 0;
	}
	for (struct overlay_entry *e = overlay_oldest(v->ov); e; e = overlay_younger(e))
		if (e->folding && e->chunk >= c0 && e->chunk < c0 + n)
			return 1;
	return 0;
}

static int apply_copy(struct volume *v, uint64_t c0, uint32_t n, const uint8_t *ids)
{
	struct chunk_id id;
	int ret = 0;

	if (c0 > v->nchunks || n > v->nchunks - c0)
		return -ERANGE;
	for (uint32_t i = 0; i < n; i++) { /* load the map paths: no IO under olock */
		ret = blockmap_lookup(v->bm, c0 + i, 1, &id);
		if (ret)
			return ret;
	}
	for (;;) {
		pthread_rwlock_rdlock(&v->gate);
		pthread_mutex_lock(&v->olock);
		if (!copy_busy(v, c0, n))
			break;
		pthread_rwlock_unlock(&v->gate);
		while (copy_busy(v, c0, n))
			pthread_cond_wait(&v->folded_cond, &v->olock);
		pthread_mutex_unlock(&v->olock);
	}
	for (uint32_t i = 0; i < n; i++) {
		struct overlay_entry *e = overlay_find(v->ov, c0 + i);

		if (e)
			overlay_remove(v->ov, e);
		memcpy(id.b, ids + (size_t)i * CHUNK_ID_LEN, CHUNK_ID_LEN);
		if (!ret)
			ret = blockmap_set(v->bm, c0 + i, &id);
	}
	pthread_cond_broadcast(&v->space_cond);
	pthread_mutex_unlock(&v->olock);
	pthread_rwlock_unlock(&v->gate);
	if (ret)
		log_error("volume", "%s: cannot set the map of a copy: %s", v->info.name,
			  strerror(-ret));
	return ret;
}

/* Every fold counted up to folds is durable (the store was flushed after them). */
static void note_durable(struct volume *v, uint64_t folds)
{
	uint64_t cur = __atomic_load_n(&v->durable_folds, __ATOMIC_RELAXED);

	while (cur < folds && !__atomic_compare_exchange_n(&v->durable_folds, &cur, folds, 0,
							   __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

static void set_applied(struct volume *v, uint64_t seq)
{
	pthread_mutex_lock(&v->olock);
	v->applied_next = seq + 1;
	pthread_mutex_unlock(&v->olock);
}

/* Writers wait while the journal holds more than journal_max and could shrink. */
static uint64_t unfolded_bytes(struct volume *v)
{
	return journal_bytes_since(v->j, __atomic_load_n(&v->info.ckpt_seq, __ATOMIC_RELAXED));
}

static void wait_journal_space(struct volume *v)
{
	if (unfolded_bytes(v) <= v->journal_max)
		return;
	pthread_mutex_lock(&v->olock);
	while (!v->stop && unfolded_bytes(v) > v->journal_max && journal_segments(v->j) > 1) {
		struct timespec ts;

		v->journal_full = 1;
		pthread_cond_signal(&v->ckpt_cond);
		abs_deadline(&ts, 100);
		pthread_cond_timedwait(&v->space_cond, &v->olock, &ts);
	}
	pthread_mutex_unlock(&v->olock);
}

/* ---- folding ---- */

static struct overlay_entry *pick(struct volume *v)
{
	int pressure = v->space_waiters || v->journal_full ||
		       overlay_count(v->ov) * 2 >= overlay_capacity(v->ov);
	uint64_t now = util_mono_ns();
	unsigned scanned = 0;

	if (v->paused)
		return NULL;
	for (struct overlay_entry *e = overlay_oldest(v->ov); e; e = overlay_younger(e)) {
		if (e->folding)
			continue;
		if (pressure || e->first_seq < v->force_below || overlay_full(v->ov, e) ||
		    now - e->born_ns >= FOLD_AGE_NS)
			return e;
		if (++scanned >= PICK_SCAN && !v->forcing)
			break;
	}
	return NULL;
}

/* Build the new content of chunk c from the folder's copy and store it. */
static int fold_chunk(struct volume *v, struct folder *f, uint64_t c, int full,
		      struct chunk_id *id)
{
	const void *data = f->copy;
	struct chunk_id base;
	int ret;

	/* Also loads the map path, so that blockmap_set() later does no IO under olock. */
	ret = blockmap_lookup(v->bm, c, 1, &base);
	if (ret)
		return ret;
	if (!full) {
		size_t len = 0;

		if (chunk_id_is_null(&base)) {
			memset(f->base, 0, v->chunk_size);
		} else {
			ret = v->cs->ops->get(v->cs->ctx, &base, f->base, v->chunk_size, &len);
			if (ret)
				return ret == -ENOENT ? -EIO : ret;
			if (len != v->chunk_size)
				return -EBADMSG;
		}
		overlay_merge(v->ov, f->copy, f->bitmap, f->base);
		data = f->base;
	}
	/* a whole-chunk write is cold, sequential data: compress it hard; a partial
	 * chunk (random IO) will likely be rewritten: compress it fast */
	return v->cs->ops->put(v->cs->ctx, full ? CHUNK_DATA : (enum chunk_kind)(CHUNK_DATA | CHUNK_PUT_FAST),
			       data, v->chunk_size, id);
}

static uint64_t retain_window(const struct volume *v);

/* The first slot of the FOLD_WAYS-slot set (seq, chunk) lives in. */
static size_t fold_id_set(uint64_t seq, uint64_t chunk)
{
	return (size_t)(((seq * 0x9E3779B97F4A7C15ull) ^ chunk) % (FOLD_IDS / FOLD_WAYS)) *
	       FOLD_WAYS;
}

/* A fold stored chunk c (data: its whole content, last_seq seq) as id. */
static void fold_id_note(struct volume *v, uint64_t seq, uint64_t c, const void *data,
			 const struct chunk_id *id)
{
	struct fold_id f = { .seq = seq, .chunk = c, .id = *id, .used = 1 };

	if (!v->fids || !retain_window(v))
		return;
	f.xxh = XXH3_64bits(data, v->chunk_size);
	pthread_mutex_lock(&v->fid_lock);
	{
		struct fold_id *set = &v->fids[fold_id_set(seq, c)], *victim = set;

		/* a free slot, else the oldest record's (uploaded first) */
		for (unsigned w = 0; w < FOLD_WAYS && victim->used; w++)
			if (!set[w].used || set[w].seq < victim->seq)
				victim = &set[w];
		*victim = f;
	}
	pthread_mutex_unlock(&v->fid_lock);
}

/* jstore_known.lookup */
static int fold_id_lookup(void *arg, uint64_t seq, uint64_t chunk, struct chunk_id *id,
			  uint64_t *xxh)
{
	struct volume *v = arg;
	struct fold_id *f;
	int hit = 0;

	pthread_mutex_lock(&v->fid_lock);
	f = &v->fids[fold_id_set(seq, chunk)];
	for (unsigned w = 0; w < FOLD_WAYS; w++, f++) {
		hit = f->used && f->seq == seq && f->chunk == chunk;
		if (hit) {
			*id = f->id;
			*xxh = f->xxh;
			f->used = 0; /* asked once: its segment is being stored */
			break;
		}
	}
	pthread_mutex_unlock(&v->fid_lock);
	return hit;
}

static void *fold_main(void *arg)
{
	struct folder *f = arg;
	struct volume *v = f->v;

	pthread_mutex_lock(&v->olock);
	while (!v->stop) {
		struct overlay_entry *e = pick(v);
		struct chunk_id id;
		uint64_t c, last;
		int full, ret;

		if (!e) {
			struct timespec ts;

			abs_deadline(&ts, 50);
			pthread_cond_timedwait(&v->fold_cond, &v->olock, &ts);
			continue;
		}
		e->folding = 1;
		v->folding_now++;
		c = e->chunk;
		last = e->last_seq;
		full = overlay_full(v->ov, e);
		memcpy(f->copy, e->buf, v->chunk_size);
		memcpy(f->bitmap, e->bitmap, sizeof(f->bitmap));
		pthread_mutex_unlock(&v->olock);

		ret = fold_chunk(v, f, c, full, &id);
		if (!ret && full) /* outside the locks: it hashes the chunk */
			fold_id_note(v, last, c, f->copy, &id);

		pthread_rwlock_rdlock(&v->gate);
		pthread_mutex_lock(&v->olock);
		e = overlay_find(v->ov, c);
		if (!ret)
			ret = blockmap_set(v->bm, c, &id);
		v->folding_now--;
		if (ret) {
			struct timespec ts;

			e->folding = 0;
			if (v->fold_err != ret)
				log_error("volume", "%s: fold of chunk %" PRIu64 " failed: %s",
					  v->info.name, c, strerror(-ret));
			v->fold_err = ret;
			pthread_rwlock_unlock(&v->gate);
			pthread_cond_broadcast(&v->folded_cond);
			abs_deadline(&ts, 200);
			pthread_cond_timedwait(&v->fold_cond, &v->olock, &ts);
			continue;
		}
		v->fold_err = 0;
		if (e->last_seq == last) {
			overlay_remove(v->ov, e);
			pthread_cond_broadcast(&v->space_cond);
		} else {
			e->first_seq = last + 1;
			e->folding = 0;
			overlay_touch(v->ov, e, util_mono_ns());
		}
		__atomic_add_fetch(&v->folds, 1, __ATOMIC_RELAXED);
		pthread_cond_broadcast(&v->folded_cond);
		pthread_rwlock_unlock(&v->gate);
	}
	pthread_mutex_unlock(&v->olock);
	return NULL;
}

/* ---- checkpoints ---- */

/* Write v->head twice more (version + 1, then + 2): after a reset (history purge or
 * rekey) the two newest heads both name the new state, so the older ones, which name
 * the state before it, can all be deleted (volume_purge.c). Caller holds ckpt_lock. */
static int put_two_heads(struct volume *v)
{
	int ret = 0;

	for (int i = 0; !ret && i < 2; i++) {
		struct volume_head h = v->head;

		h.version++;
		ret = volume_head_put(v->cs, &h);
		if (!ret)
			v->head = h;
	}
	return ret;
}

/* Record the current head as a history checkpoint. Caller holds ckpt_lock. */
static int hist_record(struct volume *v)
{
	uint64_t now = util_now_ns();
	int ret;

	if (v->hist_hi == v->head.hi && v->hist_ns)
		return 0;
	ret = history_ckpt_put(v->cs, v->info.id, &v->head.root, v->head.info.ckpt_seq,
			       v->head.hi, now);
	if (ret) {
		log_warn("volume", "%s: cannot record a history checkpoint: %s", v->info.name,
			 strerror(-ret));
		return ret;
	}
	v->hist_ns = now;
	v->hist_hi = v->head.hi;
	v->hist_jbytes = journal_appended(v->j);
	return 0;
}

/* The retention window in force. */
static uint64_t retain_window(const struct volume *v)
{
	return v->retain_override ? v->retain_override : v->ret.retain_ns;
}

/* History checkpoints are written at least this often while the volume changes: dense
 * enough that the window's edge and every hourly period find one. */
static uint64_t hist_every_ns(const struct volume *v)
{
	uint64_t w = MIN(retain_window(v), v->ret.hourly_every_ns) / 2;

	return MIN(HIST_EVERY_NS, MAX(w, VOLUME_NS_PER_S));
}

static uint64_t retain_check_ns(const struct volume *v)
{
	uint64_t w = MIN(retain_window(v), v->ret.hourly_every_ns) / 2;

	return MIN(RETAIN_CHECK_NS, MAX(w, VOLUME_NS_PER_S));
}

/* Store the sealed journal segments not stored yet in the repository, oldest first.
 * Runs outside ckpt_lock (a 64 MiB upload must not hold up a snapshot); up_lock makes
 * it one at a time. */
static int upload_sealed(struct volume *v)
{
	struct jstore_known known = { fold_id_lookup, v };
	struct journal_seginfo *segs = NULL;
	char jdir[4096];
	unsigned n = 0;
	int ret = 0;

	if (!retain_window(v))
		return 0;
	pthread_mutex_lock(&v->up_lock);
	if (!v->up_known) {
		struct jstore_seg *rs;
		unsigned rn;

		ret = jstore_list(v->cs, v->info.id, &rs, &rn);
		if (ret)
			goto out_unlock;
		/* the newest may be an upload a crash cut short: store it again */
		if (rn && jstore_verify(v->cs, v->info.id, &rs[rn - 1]) == -EBADMSG) {
			log_warn("volume", "%s: stored journal segment %" PRIu64 " is damaged; "
				 "storing it again", v->info.name, rs[rn - 1].first);
			ret = jstore_del(v->cs, v->info.id, &rs[rn - 1]);
			rn--;
		}
		v->up_next = rn ? rs[rn - 1].next : 0;
		free(rs);
		if (ret)
			goto out_unlock;
		v->up_known = 1;
	}
	ret = journal_sealed(v->j, &segs, &n);
	if (ret)
		goto out_unlock;
	history_journal_dir(v->state_dir, v->info.id, jdir, sizeof(jdir));
	for (unsigned i = 0; i < n; i++) {
		if (segs[i].next <= v->up_next || segs[i].next == segs[i].first)
			continue;
		/* once a checkpoint covers it: its chunks are folded, their ids noted */
		if (segs[i].next > __atomic_load_n(&v->info.ckpt_seq, __ATOMIC_RELAXED))
			break;
		ret = jstore_put(v->cs, v->info.id, jdir, &segs[i], v->chunk_size,
				 v->fids ? &known : NULL);
		if (ret == -ENOENT) { /* expired meanwhile */
			ret = 0;
			continue;
		}
		if (ret) {
			log_warn("volume", "%s: cannot store journal segment %" PRIu64 " in the "
				 "repository: %s", v->info.name, segs[i].first, strerror(-ret));
			break;
		}
		v->up_next = segs[i].next;
	}
	/* What is stored and below the durable checkpoint is needed locally neither for
	 * replay nor as the only copy: keep the newest journal_keep bytes of it (points in
	 * time near now open without a fetch) and let the rest go, so that the state
	 * directory stays bounded however long the window (a reader fetches what it lacks,
	 * jstore_prepare) */
	if (!ret)
		ret = journal_trim(v->j, MIN(v->up_next, __atomic_load_n(&v->info.ckpt_seq,
								     __ATOMIC_RELAXED)),
				   v->journal_keep);
	free(segs);
out_unlock:
	pthread_mutex_unlock(&v->up_lock);
	return ret;
}

static int materialize_cb(void *arg, const struct history_snap *sn)
{
	struct volume *v = ((void **)arg)[0];
	uint64_t below = *(uint64_t *)((void **)arg)[1];
	struct history_snap m = *sn;
	struct point *p;
	int ret;

	if (sn->materialized || sn->seq >= below)
		return 0;
	{
		char point[VOLUME_NAME_MAX + HISTORY_SNAP_MAX + 2];
		struct point_plan plan;

		snprintf(point, sizeof(point), "%s@%s", v->info.name, sn->name);
		ret = history_resolve(v->cs, v->state_dir, point, 0, &plan);
		if (!ret)
			ret = point_open(v->cs, v->state_dir, &plan, &p);
	}
	if (!ret) {
		ret = point_materialize(p, &m.root);
		point_close(p);
	}
	if (!ret) {
		m.materialized = 1;
		ret = history_snap_put(v->cs, v->info.id, &m, 0);
	}
	if (ret)
		log_warn("volume", "%s: cannot materialize snapshot %s: %s", v->info.name,
			 sn->name, strerror(-ret));
	return ret;
}

/* history_exact_fn: the point seq:c->hi as a root of its own. */
static int exact_cb(void *arg, const struct history_ckpt *c, struct chunk_id *root)
{
	struct volume *v = arg;
	char point[VOLUME_NAME_MAX + 32];
	struct point_plan plan;
	struct point *p;
	int ret;

	snprintf(point, sizeof(point), "%s@seq:%" PRIu64, v->info.name, c->hi);
	ret = history_resolve(v->cs, v->state_dir, point, 0, &plan);
	if (!ret)
		ret = point_open(v->cs, v->state_dir, &plan, &p);
	if (ret)
		return ret;
	ret = point_materialize(p, root);
	point_close(p);
	return ret;
}

/* Retention (struct volume_retention): past the window, lazy snapshots are
 * materialized and checkpoints thinned to hourly and daily exact points; then the
 * journal below the boundary (the newest checkpoint older than the window) is dropped,
 * locally and in the repository. Caller holds ckpt_lock. */
static int retention(struct volume *v)
{
	struct history_ckpt b;
	struct volume_retention pol = v->ret;
	uint64_t now = util_now_ns(), ws, below, snap_below, tail_first, tail_created;
	uint64_t stored_first;
	unsigned kept, deleted;
	char cdir[4096];
	void *arg[2];
	int ret;

	pol.retain_ns = retain_window(v);
	if (now - v->retain_checked_ns < retain_check_ns(v) || now < pol.retain_ns)
		return 0;
	v->retain_checked_ns = now;
	ws = now - pol.retain_ns;
	ret = history_ckpt_boundary(v->cs, v->info.id, ws, &b);
	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	below = MIN(b.ckpt_seq, v->head.info.ckpt_seq);
	/* A lazy snapshot at or above below but under b.hi has no exact base in b (its
	 * root may hold records above the snapshot), so it resolves through an older
	 * checkpoint, which the thinning below may drop: materialize it now too. */
	snap_below = MAX(below, b.hi);
	arg[0] = v;
	arg[1] = &snap_below;
	ret = history_snap_list(v->cs, v->info.id, materialize_cb, arg);
	if (ret)
		return ret;
	ret = history_ckpt_thin(v->cs, v->info.id, &pol, now, exact_cb, v, &kept, &deleted);
	if (ret)
		return ret;
	if (deleted)
		log_info("volume", "%s: retention kept %u points past the window, dropped %u",
			 v->info.name, kept, deleted);
	ret = journal_delete_expired(v->j, below, ws);
	if (ret)
		return ret;
	jstore_cache_dir(v->state_dir, v->info.id, cdir, sizeof(cdir));
	journal_active(v->j, &tail_first, &tail_created);
	ret = jstore_expire(v->cs, v->info.id, below, ws, cdir, tail_first, tail_created,
			    &stored_first);
	/* a mark goes with the last copy of its record: the local journal may be trimmed
	 * further than the stored one (journal_trim) */
	if (!ret)
		ret = history_mark_expire(v->cs, v->info.id,
					  MIN(journal_first_seq(v->j), stored_first));
	return ret;
}

/* The history work of a checkpoint pass: seal a segment that has been active for a
 * quarter of the window (at most SEAL_AGE_MAX_NS), so that a slow volume's journal also
 * reaches the repository and expires; retention. Caller holds ckpt_lock. (The
 * checkpoint thread stores sealed segments after the pass, without the lock.) */
static int history_pass(struct volume *v)
{
	uint64_t win = retain_window(v);
	int ret = 0;

	if (win) {
		uint64_t age = MIN(SEAL_AGE_MAX_NS, MAX(win / 4, VOLUME_NS_PER_S));

		ret = journal_seal_older(v->j, util_now_ns() - age);
	}
	return ret ? ret : retention(v);
}

/* Fold every record applied so far (when force), store the map, write a head, and
 * drop the journal segments it makes unnecessary. */
static int checkpoint(struct volume *v, int force)
{
	struct chunk_id root;
	uint64_t s, next, folds, hi;
	int ret = 0;

	pthread_mutex_lock(&v->ckpt_lock);
	if (force) {
		uint64_t target;

		pthread_mutex_lock(&v->olock);
		target = v->applied_next;
		if (v->force_below < target)
			v->force_below = target;
		v->forcing++;
		pthread_cond_broadcast(&v->fold_cond);
		while (overlay_min_first_seq(v->ov, UINT64_MAX) < target) {
			struct timespec ts;
			uint64_t before = v->folds;

			abs_deadline(&ts, 1000);
			pthread_cond_timedwait(&v->folded_cond, &v->olock, &ts);
			if (v->fold_err && v->folds == before) {
				ret = v->fold_err;
				break;
			}
		}
		v->forcing--;
		pthread_mutex_unlock(&v->olock);
		if (ret)
			goto out_unlock;
	}
	pthread_rwlock_wrlock(&v->gate);
	pthread_mutex_lock(&v->olock);
	s = overlay_min_first_seq(v->ov, v->applied_next);
	if (s > v->applied_next)
		s = v->applied_next;
	hi = v->applied_next;
	folds = v->folds;
	pthread_mutex_unlock(&v->olock);
	next = journal_next_seq(v->j);
	ret = blockmap_flush(v->bm, &root);
	pthread_rwlock_unlock(&v->gate);
	if (ret)
		goto out_unlock;
	if (!memcmp(&root, &v->head.root, sizeof(root)) && s == v->head.info.ckpt_seq &&
	    next == v->head.next_seq) {
		ret = history_pass(v);
		goto out_unlock;
	}
	ret = v->cs->ops->flush(v->cs->ctx);
	if (ret)
		goto out_unlock;
	v->head.version++;
	v->head.root = root;
	v->head.info.ckpt_seq = s;
	v->head.next_seq = next;
	v->head.hi = hi;
	ret = volume_head_put(v->cs, &v->head);
	if (ret) {
		log_error("volume", "%s: cannot write a checkpoint head: %s", v->info.name,
			  strerror(-ret));
		goto out_unlock;
	}
	__atomic_store_n(&v->info.ckpt_seq, s, __ATOMIC_RELAXED);
	v->folds_at_ckpt = folds;
	note_durable(v, folds);
	if (util_now_ns() - v->hist_ns >= hist_every_ns(v) || hi - v->hist_hi >= HIST_EVERY_RECS ||
	    journal_appended(v->j) >= v->hist_jbytes + HIST_EVERY_BYTES)
		ret = hist_record(v);
	if (!ret)
		ret = history_pass(v);
	pthread_mutex_lock(&v->olock);
	v->journal_full = 0;
	pthread_cond_broadcast(&v->space_cond);
	pthread_mutex_unlock(&v->olock);
out_unlock:
	pthread_mutex_unlock(&v->ckpt_lock);
	return ret;
}

static void *ckpt_main(void *arg)
{
	struct volume *v = arg;

	pthread_mutex_lock(&v->olock);
	while (!v->stop) {
		struct timespec ts;
		int full, due;

		abs_deadline(&ts, CKPT_INTERVAL_MS);
		pthread_cond_timedwait(&v->ckpt_cond, &v->olock, &ts);
		if (v->stop)
			break;
		full = v->journal_full || unfolded_bytes(v) > v->journal_max / 2;
		due = full || __atomic_load_n(&v->folds, __ATOMIC_RELAXED) != v->folds_at_ckpt ||
		      util_now_ns() - __atomic_load_n(&v->retain_checked_ns, __ATOMIC_RELAXED) >=
			      retain_check_ns(v); /* retention goes on while idle */
		pthread_mutex_unlock(&v->olock);
		if (due) {
			int ret = checkpoint(v, full);

			if (ret)
				log_warn("volume", "%s: checkpoint failed: %s", v->info.name,
					 strerror(-ret));
			upload_sealed(v);
		}
		pthread_mutex_lock(&v->olock);
	}
	pthread_mutex_unlock(&v->olock);
	return NULL;
}

/* ---- open / close ---- */

static void stop_threads(struct volume *v)
{
	pthread_mutex_lock(&v->olock);
	v->stop = 1;
	pthread_cond_broadcast(&v->fold_cond);
	pthread_cond_broadcast(&v->ckpt_cond);
	pthread_cond_broadcast(&v->space_cond);
	pthread_mutex_unlock(&v->olock);
	for (int i = 0; i < NFOLDERS; i++)
		if (v->folders[i].started)
			pthread_join(v->folders[i].th, NULL);
	if (v->ckpt_started)
		pthread_join(v->ckpt_th, NULL);
	for (int i = 0; i < NFOLDERS; i++) {
		v->folders[i].started = 0;
		free(v->folders[i].copy);
		free(v->folders[i].base);
		v->folders[i].copy = v->folders[i].base = NULL;
	}
	v->ckpt_started = 0;
}

static void destroy(struct volume *v)
{
	journal_close(v->j);
	overlay_destroy(v->ov);
	blockmap_close(v->bm);
	bufpool_destroy(v->rpool);
	pthread_mutex_destroy(&v->wlock);
	pthread_rwlock_destroy(&v->gate);
	pthread_mutex_destroy(&v->olock);
	pthread_cond_destroy(&v->space_cond);
	pthread_cond_destroy(&v->fold_cond);
	pthread_cond_destroy(&v->folded_cond);
	pthread_cond_destroy(&v->ckpt_cond);
	pthread_mutex_destroy(&v->ckpt_lock);
	pthread_mutex_destroy(&v->up_lock);
	pthread_mutex_destroy(&v->fid_lock);
	free(v->fids);
	if (v->claimed)
		volume_head_release(v->base_cs, v->info.id);
	free(v);
}

/* Make the volume's state exactly the map root (a restore): drop every overlay entry
 * and reset the map. Folds are paused and drained first. Caller holds wlock. */
static int reset_to(struct volume *v, const struct chunk_id *root, uint64_t seq)
{
	struct overlay_entry *e, *nx;

	pthread_mutex_lock(&v->olock);
	v->paused++;
	while (v->folding_now)
		pthread_cond_wait(&v->folded_cond, &v->olock);
	pthread_mutex_unlock(&v->olock);
	pthread_rwlock_wrlock(&v->gate);
	pthread_mutex_lock(&v->olock);
	for (e = overlay_oldest(v->ov); e; e = nx) {
		nx = overlay_younger(e);
		overlay_remove(v->ov, e);
	}
	blockmap_reset(v->bm, root);
	v->applied_next = seq + 1;
	v->paused--;
	pthread_cond_broadcast(&v->space_cond);
	pthread_mutex_unlock(&v->olock);
	pthread_rwlock_unlock(&v->gate);
	return 0;
}

static int replay(struct volume *v)
{
	struct journal_iter *it;
	struct journal_rec r;
	uint64_t from = v->head.info.ckpt_seq, n = 0, first = 0;
	int ret;

	ret = journal_iter_open(v->j, from, &it);
	if (ret)
		return ret;
	pthread_mutex_lock(&v->wlock);
	while ((ret = journal_iter_next(it, &r)) == 1) {
		if (!first)
			first = r.seq;
		if (r.offset > v->info.size || r.length > v->info.size - r.offset) {
			if (r.type == JOURNAL_WRITE || r.type == JOURNAL_ZERO ||
			    r.type == JOURNAL_COPY) {
				log_error("volume", "%s: journal record %" PRIu64
					  " lies beyond the end; skipped", v->info.name, r.seq);
				continue;
			}
		}
		if (r.type == JOURNAL_WRITE)
			apply_write(v, r.offset, r.payload, r.length, r.seq);
		else if (r.type == JOURNAL_ZERO)
			apply_zero(v, r.offset, r.length, r.seq);
		else if (r.type == JOURNAL_COPY) {
			struct journal_copy jc;

			if (journal_copy_parse(&r, &jc) || jc.chunk_size != v->chunk_size)
				log_error("volume", "%s: journal record %" PRIu64 " is a malformed "
					  "copy; skipped", v->info.name, r.seq);
			else
				apply_copy(v, r.offset >> v->cshift, jc.count, jc.ids);
		} else if (r.type == JOURNAL_RESTORE && r.payload_len == CHUNK_ID_LEN) {
			struct chunk_id root;

			memcpy(root.b, r.payload, CHUNK_ID_LEN);
			reset_to(v, &root, r.seq);
		}
		set_applied(v, r.seq);
		n++;
	}
	pthread_mutex_unlock(&v->wlock);
	journal_iter_close(it);
	if (ret < 0)
		return ret;
	if (first > from && from < v->head.next_seq)
		log_error("volume", "%s: journal records %" PRIu64 "..%" PRIu64
			  " are missing; their writes are lost", v->info.name, from,
			  MIN(first ? first : v->head.next_seq, v->head.next_seq) - 1);
	if (n)
		log_info("volume", "%s: replayed %" PRIu64 " journal records from seq %" PRIu64,
			 v->info.name, n, from);
	return 0;
}

int volume_open(struct chunk_store *cs, const char *name, const struct volume_open_opts *o,
		struct volume **out)
{
	struct volume *v;
	pthread_rwlockattr_t ra;
	char dir[4096];
	uint8_t volid[16];
	uint64_t ovb, seg;
	unsigned nbufs;
	int ret;

	if (!o || (!o->state_dir && !o->read_only))
		return -EINVAL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->cs = v->base_cs = cs;
	ret = volume_head_find(cs, name, &v->head);
	if (ret)
		goto out_free;
	if (v->head.info.key_ref && cs->ops->keyed) {
		/* its data chunks under its own key (reads of any key need no such store) */
		ret = cs->ops->keyed(cs->ctx, v->head.info.key_ref, &v->kcs);
		if (ret && !o->read_only)
			goto out_free;
		if (!ret)
			v->cs = &v->kcs;
	} else if (v->head.info.key_ref && !o->read_only) {
		ret = -EOPNOTSUPP;
		goto out_free;
	}
	v->info = v->head.info;
	if (v->info.chunk_size < CHUNK_SIZE_MIN || v->info.chunk_size > CHUNK_SIZE_MAX ||
	    (v->info.chunk_size & (v->info.chunk_size - 1)) || !v->info.size ||
	    util_unhex(v->info.id, volid, sizeof(volid))) {
		ret = -EBADMSG;
		goto out_free;
	}
	if (!o->read_only) {
		ret = volume_head_claim(cs, v->info.id);
		if (ret)
			goto out_free;
		v->claimed = 1;
	}
	v->chunk_size = v->info.chunk_size;
	v->cshift = (unsigned)__builtin_ctz(v->chunk_size);
	v->nchunks = (v->info.size + v->chunk_size - 1) >> v->cshift;
	v->read_only = o->read_only;
	pthread_mutex_init(&v->wlock, NULL);
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&v->gate, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&v->olock, NULL);
	pthread_cond_init(&v->space_cond, NULL);
	pthread_cond_init(&v->fold_cond, NULL);
	pthread_cond_init(&v->folded_cond, NULL);
	pthread_cond_init(&v->ckpt_cond, NULL);
	pthread_mutex_init(&v->ckpt_lock, NULL);
	pthread_mutex_init(&v->up_lock, NULL);
	pthread_mutex_init(&v->fid_lock, NULL);
	ret = blockmap_open(cs, v->nchunks, &v->head.root, &v->bm);
	if (ret)
		goto out_destroy;
	v->rpool = bufpool_create(v->chunk_size, READ_BUFS);
	if (!v->rpool) {
		ret = -ENOMEM;
		goto out_destroy;
	}
	/* calloc'd pages are touched only once folds note ids (CDP history kept) */
	if (!v->read_only && !(v->fids = calloc(FOLD_IDS, sizeof(*v->fids)))) {
		ret = -ENOMEM;
		goto out_destroy;
	}
	if (v->read_only) {
		*out = v;
		return 0;
	}
	ovb = o->overlay_bytes ? o->overlay_bytes : OVERLAY_DEFAULT;
	nbufs = (unsigned)MIN(ovb / v->chunk_size, (uint64_t)1 << 24);
	if (nbufs < 2 * NFOLDERS + 2)
		nbufs = 2 * NFOLDERS + 2;
	ret = overlay_create(v->chunk_size, nbufs, &v->ov);
	if (ret)
		goto out_destroy;
	seg = o->segment_bytes ? o->segment_bytes : JOURNAL_SEGMENT_DEFAULT;
	v->journal_max = o->journal_max ? o->journal_max : JOURNAL_MAX_DEFAULT;
	v->journal_keep = o->journal_keep ? o->journal_keep : JOURNAL_KEEP_DEFAULT;
	if (v->journal_max < 2 * seg)
		v->journal_max = 2 * seg;
	snprintf(dir, sizeof(dir), "%s/%s/journal", o->state_dir, v->info.id);
	ret = journal_open(dir, volid, v->head.next_seq, seg, &v->j);
	if (ret)
		goto out_destroy;
	v->applied_next = v->head.info.ckpt_seq;
	v->force_below = 0;
	snprintf(v->state_dir, sizeof(v->state_dir), "%s", o->state_dir);
	v->ret = v->head.info.retention;
	v->retain_override = o->retain_ns;
	for (int i = 0; i < NFOLDERS; i++) {
		struct folder *f = &v->folders[i];

		f->v = v;
		f->copy = malloc(v->chunk_size);
		f->base = malloc(v->chunk_size);
		if (!f->copy || !f->base) {
			ret = -ENOMEM;
			goto out_stop;
		}
		ret = -pthread_create(&f->th, NULL, fold_main, f);
		if (ret)
			goto out_stop;
		f->started = 1;
	}
	ret = replay(v);
	if (ret)
		goto out_stop;
	set_applied(v, journal_next_seq(v->j) - 1);
	ret = -pthread_create(&v->ckpt_th, NULL, ckpt_main, v);
	if (ret)
		goto out_stop;
	v->ckpt_started = 1;
	*out = v;
	return 0;

out_stop:
	stop_threads(v);
out_destroy:
	destroy(v);
	return ret;
out_free:
	free(v);
	return ret;
}

int volume_close(struct volume *v)
{
	int ret = 0;

	if (!v)
		return 0;
	if (!v->read_only) {
		/* Retry packs whose write failed (a store outage) at once, not at the
		 * writer's next retry: the folds below need the store to take puts. */
		(void)v->cs->ops->flush(v->cs->ctx);
		ret = checkpoint(v, 1);
		if (ret)
			log_error("volume", "%s: final checkpoint failed: %s; the journal keeps "
				  "the unfolded writes", v->info.name, strerror(-ret));
		pthread_mutex_lock(&v->ckpt_lock);
		if (!ret)
			ret = hist_record(v);
		/* a copy of the repository keeps the history up to here */
		if (!ret && retain_window(v)) {
			ret = journal_seal(v->j);
			if (!ret)
				ret = upload_sealed(v);
			if (ret)
				log_error("volume", "%s: cannot store the journal in the repository: "
					  "%s; the state directory keeps it", v->info.name,
					  strerror(-ret));
			ret = 0;
		}
		pthread_mutex_unlock(&v->ckpt_lock);
		stop_threads(v);
	}
	destroy(v);
	return ret;
}

const struct volume_info *volume_get_info(const struct volume *v)
{
	return &v->info;
}

/* ---- IO ---- */

static int fetch(struct volume *v, const struct chunk_id *id, uint32_t co, uint32_t n, char *dst)
{
	size_t len = 0;
	char *tmp;
	int ret;

	if (chunk_id_is_null(id)) {
		memset(dst, 0, n);
		return 0;
	}
	if (n == v->chunk_size) {
		ret = v->cs->ops->get(v->cs->ctx, id, dst, n, &len);
	} else {
		tmp = bufpool_get(v->rpool);
		ret = v->cs->ops->get(v->cs->ctx, id, tmp, v->chunk_size, &len);
		if (!ret && len == v->chunk_size)
			memcpy(dst, tmp + co, n);
		bufpool_put(v->rpool, tmp);
	}
	if (ret == -ENOENT || ret == -ENOBUFS)
		ret = -EIO;
	if (!ret && len != v->chunk_size)
		ret = -EBADMSG;
	return ret;
}

static int read_chunk(struct volume *v, uint64_t c, uint32_t co, uint32_t n, char *dst)
{
	struct chunk_id id, id2;
	struct overlay_entry *e;
	int ret;

	if (!v->ov) {
		ret = blockmap_lookup(v->bm, c, 1, &id);
		return ret ? ret : fetch(v, &id, co, n, dst);
	}
	for (;;) {
		pthread_mutex_lock(&v->olock);
		e = overlay_find(v->ov, c);
		if (e && overlay_covers(v->ov, e, co, n)) {
			memcpy(dst, (char *)e->buf + co, n);
			pthread_mutex_unlock(&v->olock);
			return 0;
		}
		ret = blockmap_lookup(v->bm, c, 0, &id);
		pthread_mutex_unlock(&v->olock);
		if (ret == -EAGAIN) {
			ret = blockmap_lookup(v->bm, c, 1, &id);
			if (ret)
				return ret;
			continue;
		}
		if (ret)
			return ret;
		ret = fetch(v, &id, co, n, dst);
		if (ret)
			return ret;
		pthread_mutex_lock(&v->olock);
		ret = blockmap_lookup(v->bm, c, 0, &id2);
		if (ret || memcmp(&id, &id2, sizeof(id))) {
			pthread_mutex_unlock(&v->olock);
			if (ret && ret != -EAGAIN)
				return ret;
			continue;
		}
		e = overlay_find(v->ov, c);
		if (e)
			overlay_copy_valid(v->ov, e, co, n, dst);
		pthread_mutex_unlock(&v->olock);
		return 0;
	}
}

int volume_read(struct volume *v, uint64_t off, void *buf, size_t len)
{
	char *p = buf;
	int ret = range_ok(v, off, len);

	if (ret)
		return ret;
	while (len) {
		uint64_t c = off >> v->cshift;
		uint32_t co = (uint32_t)(off & (v->chunk_size - 1));
		uint32_t n = (uint32_t)MIN((uint64_t)len, (uint64_t)(v->chunk_size - co));

		ret = read_chunk(v, c, co, n, p);
		if (ret)
			return ret;
		off += n;
		len -= n;
		p += n;
	}
	__atomic_add_fetch(&v->reads, 1, __ATOMIC_RELAXED);
	return 0;
}

int volume_write(struct volume *v, uint64_t off, const void *buf, size_t len, int fua)
{
	const char *p = buf;
	uint64_t seq = 0;
	uint32_t maxp;
	int ret = range_ok(v, off, len);

	if (ret)
		return ret;
	if (v->read_only)
		return -EROFS;
	if (!len)
		return 0;
	maxp = journal_max_payload(v->j) & ~(VOLUME_SECTOR - 1);
	wait_journal_space(v);
	pthread_mutex_lock(&v->wlock);
	while (len) {
		uint32_t n = (uint32_t)MIN((uint64_t)len, (uint64_t)maxp);

		ret = journal_append(v->j, JOURNAL_WRITE, off, n, p, n, &seq);
		if (ret)
			break;
		apply_write(v, off, p, n, seq);
		set_applied(v, seq);
		off += n;
		len -= n;
		p += n;
	}
	pthread_mutex_unlock(&v->wlock);
	if (ret)
		return ret;
	__atomic_add_fetch(&v->writes, 1, __ATOMIC_RELAXED);
	return fua ? journal_sync(v->j, seq) : 0;
}

int volume_write_zeroes(struct volume *v, uint64_t off, uint64_t len, int fua)
{
	const uint64_t maxz = 1ull << 31; /* fits the record's u32 length, sector aligned */
	uint64_t seq = 0;
	int ret = range_ok(v, off, len);

	if (ret)
		return ret;
	if (v->read_only)
		return -EROFS;
	if (!len)
		return 0;
	wait_journal_space(v);
	pthread_mutex_lock(&v->wlock);
	while (len) {
		uint64_t n = MIN(len, maxz);

		ret = journal_append(v->j, JOURNAL_ZERO, off, (uint32_t)n, NULL, 0, &seq);
		if (ret)
			break;
		ret = apply_zero(v, off, n, seq);
		set_applied(v, seq);
		if (ret)
			break;
		off += n;
		len -= n;
	}
	pthread_mutex_unlock(&v->wlock);
	if (ret)
		return ret;
	__atomic_add_fetch(&v->writes, 1, __ATOMIC_RELAXED);
	return fua ? journal_sync(v->j, seq) : 0;
}

int volume_flush(struct volume *v)
{
	uint64_t seq;
	int ret;

	if (v->read_only)
		return 0;
	pthread_mutex_lock(&v->wlock);
	ret = journal_append(v->j, JOURNAL_FLUSH, 0, 0, NULL, 0, &seq);
	if (!ret)
		set_applied(v, seq);
	pthread_mutex_unlock(&v->wlock);
	if (ret)
		return ret;
	__atomic_add_fetch(&v->flushes, 1, __ATOMIC_RELAXED);
	return journal_sync(v->j, seq);
}

int volume_checkpoint(struct volume *v)
{
	int ret;

	if (v->read_only)
		return 0;
	ret = checkpoint(v, 1);
	/* a segment upload in flight may have put (reused) the chunks it names before a
	 * gc began recording reuse: gc settles through here, so it reads the stored
	 * segments only once that upload has stored its object */
	pthread_mutex_lock(&v->up_lock);
	pthread_mutex_unlock(&v->up_lock);
	return ret;
}

void volume_get_stats(struct volume *v, struct volume_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->ckpt_seq = __atomic_load_n(&v->info.ckpt_seq, __ATOMIC_RELAXED);
	if (!v->read_only) {
		st->next_seq = journal_next_seq(v->j);
		st->journal_bytes = journal_bytes(v->j);
		st->unfolded_bytes = unfolded_bytes(v);
		pthread_mutex_lock(&v->olock);
		st->overlay_chunks = overlay_count(v->ov);
		pthread_mutex_unlock(&v->olock);
	}
	st->writes = __atomic_load_n(&v->writes, __ATOMIC_RELAXED);
	st->reads = __atomic_load_n(&v->reads, __ATOMIC_RELAXED);
	st->flushes = __atomic_load_n(&v->flushes, __ATOMIC_RELAXED);
	st->folds = __atomic_load_n(&v->folds, __ATOMIC_RELAXED);
}

/* ---- history ---- */

int volume_cut(struct volume *v, uint64_t *seq_out)
{
	uint64_t next;
	int ret;

	if (v->read_only)
		return -EROFS;
	pthread_mutex_lock(&v->wlock);
	next = journal_next_seq(v->j);
	pthread_mutex_unlock(&v->wlock);
	ret = next > 1 ? journal_sync(v->j, next - 1) : 0;
	if (ret)
		return ret;
	/* the current head (written before the cut, so its hi <= next) becomes a base */
	pthread_mutex_lock(&v->ckpt_lock);
	ret = hist_record(v);
	pthread_mutex_unlock(&v->ckpt_lock);
	if (!ret)
		*seq_out = next;
	return ret;
}

int volume_mark(struct volume *v, const char *label, uint64_t *seq_out)
{
	struct history_mark m = { 0 };
	uint64_t seq;
	int ret;

	if (v->read_only)
		return -EROFS;
	if (!history_label_valid(label))
		return -EINVAL;
	pthread_mutex_lock(&v->wlock);
	ret = journal_append(v->j, JOURNAL_MARK, 0, 0, label, (uint32_t)strlen(label), &seq);
	if (!ret)
		set_applied(v, seq);
	pthread_mutex_unlock(&v->wlock);
	if (!ret)
		ret = journal_sync(v->j, seq);
	if (ret)
		return ret;
	m.seq = seq;
	m.time_ns = util_now_ns();
	snprintf(m.label, sizeof(m.label), "%s", label);
	ret = history_mark_put(v->cs, v->info.id, &m);
	if (!ret && seq_out)
		*seq_out = seq;
	return ret;
}

int volume_restore(struct volume *v, const struct chunk_id *root, uint64_t *seq_out)
{
	uint64_t seq;
	int ret;

	if (v->read_only)
		return -EROFS;
	pthread_mutex_lock(&v->wlock);
	ret = journal_append(v->j, JOURNAL_RESTORE, 0, 0, root, CHUNK_ID_LEN, &seq);
	if (!ret)
		ret = journal_sync(v->j, seq);
	if (!ret)
		ret = reset_to(v, root, seq);
	pthread_mutex_unlock(&v->wlock);
	/* the restored state is a point of its own (and its root stays referenced) */
	if (!ret)
		ret = history_ckpt_put(v->cs, v->info.id, root, seq + 1, seq + 1, util_now_ns());
	if (ret)
		return ret;
	ret = checkpoint(v, 0);
	if (!ret && seq_out)
		*seq_out = seq;
	return ret;
}

const char *volume_state_dir(const struct volume *v)
{
	return v->state_dir[0] ? v->state_dir : NULL;
}

int volume_set_retention(struct chunk_store *cs, struct volume *v, const char *name,
			 const struct volume_retention *r)
{
	struct volume_head h;
	int ret;

	if (!volume_retention_valid(r))
		return -EINVAL;
	if (v && !v->read_only) {
		pthread_mutex_lock(&v->ckpt_lock);
		h = v->head;
		h.info.retention = *r;
		h.version++;
		ret = volume_head_put(cs, &h);
		if (!ret) {
			v->head = h;
			v->ret = *r;
			v->info.retention = *r;
			v->retain_checked_ns = 0;
		}
		pthread_mutex_unlock(&v->ckpt_lock);
		return ret;
	}
	ret = volume_head_find(cs, name, &h);
	if (ret)
		return ret;
	ret = volume_head_claim(cs, h.info.id);
	if (ret)
		return ret;
	ret = volume_head_get(cs, h.info.id, &h);
	if (!ret && h.deleted)
		ret = -ENOENT;
	if (!ret) {
		h.info.retention = *r;
		h.version++;
		ret = volume_head_put(cs, &h);
	}
	volume_head_release(cs, h.info.id);
	return ret;
}

/* ---- history purge (volume.h volume_history_reset; the rest in volume_purge.c) ---- */

int volume_history_reset(struct volume *v, volume_reset_fn fn, void *arg, uint64_t *seq_out)
{
	uint64_t seq;
	int ret;

	if (v->read_only)
		return -EROFS;
	pthread_mutex_lock(&v->wlock);
	ret = checkpoint(v, 1);
	if (ret)
		goto out_wunlock;
	pthread_mutex_lock(&v->ckpt_lock);
	pthread_mutex_lock(&v->up_lock);
	seq = journal_next_seq(v->j);
	if (v->head.info.ckpt_seq != seq || v->head.hi != seq) {
		log_error("volume", "%s: the checkpoint before a purge does not hold every write "
			  "(%" PRIu64 "/%" PRIu64 " of %" PRIu64 ")", v->info.name,
			  v->head.info.ckpt_seq, v->head.hi, seq);
		ret = -EAGAIN;
		goto out_unlock;
	}
	ret = fn(arg, seq, VOLUME_RESET_KEEP, 0);
	if (!ret)
		ret = journal_seal(v->j);
	if (!ret)
		ret = journal_delete_before(v->j, seq);
	if (ret)
		goto out_unlock;
	v->hist_ns = 0;
	ret = hist_record(v);
	if (!ret)
		ret = put_two_heads(v);
	if (!ret)
		ret = fn(arg, seq, VOLUME_RESET_DROP, v->head.version);
	if (ret)
		goto out_unlock;
	v->up_next = seq;
	v->up_known = 1;
	v->hist_jbytes = journal_appended(v->j);
	if (seq_out)
		*seq_out = seq;
out_unlock:
	pthread_mutex_unlock(&v->up_lock);
	pthread_mutex_unlock(&v->ckpt_lock);
out_wunlock:
	pthread_mutex_unlock(&v->wlock);
	return ret;
}

/* ---- CRYPTO ERASE (volume.h volume_rekey_reset; the rest in volume_purge.c) ---- */

int volume_rekey_reset(struct volume *v, const struct chunk_store *ncs, uint32_t nref,
		       uint64_t ngen, volume_rekey_fn fn, void *arg, uint64_t *seq_out)
{
	struct overlay_entry *e, *nx;
	struct chunk_id null;
	uint64_t seq;
	int ret;

	if (v->read_only)
		return -EROFS;
	if (v->cs != &v->kcs || !nref)
		return -EINVAL; /* not an own-key volume */
	memset(&null, 0, sizeof(null));
	pthread_mutex_lock(&v->wlock);
	pthread_mutex_lock(&v->ckpt_lock);
	pthread_mutex_lock(&v->up_lock);
	pthread_mutex_lock(&v->olock);
	v->paused++;
	while (v->folding_now)
		pthread_cond_wait(&v->folded_cond, &v->olock);
	pthread_mutex_unlock(&v->olock);
	ret = journal_seal(v->j);
	if (ret)
		goto out_unpause;
	seq = journal_next_seq(v->j);
	/* every unfolded write dropped, never folded; the map empty; the new key */
	pthread_rwlock_wrlock(&v->gate);
	pthread_mutex_lock(&v->olock);
	for (e = overlay_oldest(v->ov); e; e = nx) {
		nx = overlay_younger(e);
		explicit_bzero(e->buf, v->chunk_size);
		overlay_remove(v->ov, e);
	}
	blockmap_reset(v->bm, &null);
	v->kcs = *ncs;
	if (v->fids) { /* ids of erased data under the old key */
		pthread_mutex_lock(&v->fid_lock);
		memset(v->fids, 0, FOLD_IDS * sizeof(*v->fids));
		pthread_mutex_unlock(&v->fid_lock);
	}
	v->applied_next = seq;
	v->force_below = 0;
	v->fold_err = 0;
	v->journal_full = 0;
	v->info.key_ref = v->head.info.key_ref = nref;
	v->info.key_gen = v->head.info.key_gen = ngen;
	pthread_cond_broadcast(&v->space_cond);
	pthread_mutex_unlock(&v->olock);
	pthread_rwlock_unlock(&v->gate);
	ret = journal_delete_before(v->j, seq);
	if (ret)
		goto out_unpause;
	v->head.root = null;
	v->head.info.ckpt_seq = seq;
	v->head.next_seq = seq;
	v->head.hi = seq;
	__atomic_store_n(&v->info.ckpt_seq, seq, __ATOMIC_RELAXED);
	if (!ret)
		ret = put_two_heads(v);
	if (!ret)
		ret = fn(arg, seq, v->head.version);
	/* after fn, which deletes every checkpoint: a run cut short by a crash may have
	 * left one at this seq (the journal restarts at the stored head's next_seq) */
	v->hist_ns = 0;
	if (!ret)
		ret = hist_record(v);
	if (ret)
		goto out_unpause;
	v->folds_at_ckpt = __atomic_load_n(&v->folds, __ATOMIC_RELAXED);
	v->up_next = seq;
	v->up_known = 1;
	v->hist_jbytes = journal_appended(v->j);
	if (seq_out)
		*seq_out = seq;
out_unpause:
	pthread_mutex_lock(&v->olock);
	v->paused--;
	pthread_cond_broadcast(&v->fold_cond);
	pthread_mutex_unlock(&v->olock);
	pthread_mutex_unlock(&v->up_lock);
	pthread_mutex_unlock(&v->ckpt_lock);
	pthread_mutex_unlock(&v->wlock);
	return ret;
}

/* ---- internals for volume_map.c (volume.h) ---- */

void volume_get_internals(struct volume *v, struct volume_internals *out)
{
	out->cs = v->cs;
	out->ov = v->ov;
	out->bm = v->bm;
	out->olock = &v->olock;
	out->cshift = v->cshift;
	out->nchunks = v->nchunks;
}

/* ---- the write order for volume_copy.c (volume.h) ---- */

void volume_order_lock(struct volume *v)
{
	if (!v->read_only)
		wait_journal_space(v);
	pthread_mutex_lock(&v->wlock);
}

void volume_order_unlock(struct volume *v)
{
	pthread_mutex_unlock(&v->wlock);
}

int volume_locked_write(struct volume *v, uint64_t off, const void *buf, uint32_t len,
			uint64_t *seq)
{
	int ret = journal_append(v->j, JOURNAL_WRITE, off, len, buf, len, seq);

	if (ret)
		return ret;
	apply_write(v, off, buf, len, *seq);
	set_applied(v, *seq);
	__atomic_add_fetch(&v->writes, 1, __ATOMIC_RELAXED);
	return 0;
}

/* The newest unfolded record (+1) among chunks [c, c+n), 0 when none has an entry. */
static uint64_t range_unfolded(struct volume *v, uint64_t c, uint64_t n)
{
	uint64_t need = 0;

	if (n <= overlay_count(v->ov)) {
		for (uint64_t k = c; k < c + n; k++) {
			struct overlay_entry *e = overlay_find(v->ov, k);

			if (e && e->last_seq + 1 > need)
				need = e->last_seq + 1;
		}
		return need;
	}
	for (struct overlay_entry *e = overlay_oldest(v->ov); e; e = overlay_younger(e))
		if (e->chunk >= c && e->chunk < c + n && e->last_seq + 1 > need)
			need = e->last_seq + 1;
	return need;
}

int volume_locked_resolve(struct volume *v, uint64_t c, uint32_t n, struct chunk_id *ids)
{
	uint64_t folds = 0, need;
	int ret = 0;

	if (c > v->nchunks || n > v->nchunks - c)
		return -ERANGE;
	if (v->ov) {
		/* fold what the range has unfolded: no entry left means the map is the
		 * state, and stays it while wlock keeps new records out */
		pthread_mutex_lock(&v->olock);
		while ((need = range_unfolded(v, c, n))) {
			uint64_t before = v->folds;
			struct timespec ts;

			if (v->force_below < need)
				v->force_below = need;
			v->forcing++;
			pthread_cond_broadcast(&v->fold_cond);
			abs_deadline(&ts, 1000);
			pthread_cond_timedwait(&v->folded_cond, &v->olock, &ts);
			v->forcing--;
			if (v->fold_err && v->folds == before) {
				ret = v->fold_err;
				break;
			}
		}
		folds = v->folds;
		pthread_mutex_unlock(&v->olock);
	}
	for (uint32_t i = 0; !ret && i < n; i++)
		ret = blockmap_lookup(v->bm, c + i, 1, &ids[i]);
	if (ret)
		return ret;
	/* a fold since the last flush may have put one of the ids in an open pack: the
	 * COPY record must never name a chunk a crash can lose */
	if (folds != __atomic_load_n(&v->durable_folds, __ATOMIC_RELAXED)) {
		ret = v->cs->ops->flush(v->cs->ctx);
		if (ret)
			return ret;
		note_durable(v, folds);
	}
	return 0;
}

uint32_t volume_share_max(struct volume *v)
{
	uint64_t n = (journal_max_payload(v->j) - JOURNAL_COPY_HDR) / JOURNAL_COPY_ID;

	n = MIN(n, (1ull << 31) >> v->cshift);
	return (uint32_t)MIN(n, 8192ull);
}

int volume_locked_share(struct volume *v, uint64_t c, uint32_t n, const struct chunk_id *ids,
			const struct volume *sv, uint64_t src_off, uint64_t *seq)
{
	struct journal_copy jc = { .src_offset = src_off, .chunk_size = v->chunk_size, .count = n };
	size_t plen = JOURNAL_COPY_HDR + (size_t)n * JOURNAL_COPY_ID;
	uint8_t *payload;
	int ret;

	if (!n || n > volume_share_max(v) || c > v->nchunks || n > v->nchunks - c ||
	    ((c + n) << v->cshift) > v->info.size)
		return -EINVAL;
	payload = malloc(plen);
	if (!payload)
		return -ENOMEM;
	util_unhex(sv->info.id, jc.src_volid, sizeof(jc.src_volid));
	journal_copy_encode(payload, &jc);
	for (uint32_t i = 0; i < n; i++)
		memcpy(payload + JOURNAL_COPY_HDR + (size_t)i * JOURNAL_COPY_ID, ids[i].b,
		       JOURNAL_COPY_ID);
	ret = journal_append(v->j, JOURNAL_COPY, c << v->cshift, n << v->cshift, payload,
			     (uint32_t)plen, seq);
	if (!ret) {
		ret = apply_copy(v, c, n, payload + JOURNAL_COPY_HDR);
		set_applied(v, *seq);
	}
	free(payload);
	if (!ret)
		__atomic_add_fetch(&v->writes, 1, __ATOMIC_RELAXED);
	return ret;
}

int volume_sync_to(struct volume *v, uint64_t seq)
{
	return seq ? journal_sync(v->j, seq) : 0;
}
