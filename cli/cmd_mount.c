/* cmd_mount.c - `cairn mount MOUNTPOINT`: the read-only history view (fuse/view.h),
 * stacked here over the repository and the volumes/ read API.
 *
 * The repository is opened read-only (no lock), so a mount works beside a running
 * `cairn serve` and never blocks it. "current" is the newest checkpoint in the repository
 * (never unflushed writes); snapshots, times and seqs are points (volumes/point.h): a
 * history checkpoint plus the journal records up to the point, read from the state
 * directory (--state-dir, as given to `cairn serve`).
 *
 * The view reads through a chunk store of its own stacked on the repository's:
 *   - refresh: the read-only open loaded the index at mount time, while a serving
 *     daemon keeps storing packs that later points need. A get that misses the index
 *     calls repo_refresh() (at most once per REFRESH_MIN_NS; a miss that starts while
 *     one runs waits for it and retries, so a pack stored before the metadata that led
 *     to the miss is always found) and tries again.
 *   - in flight: chunks the read-ahead threads are fetching. A reader that wants one
 *     waits for it (then hits the repository's decoded-chunk cache) rather than
 *     decoding it a second time; a second read-ahead of it is dropped.
 * Read-ahead (src_prefetch) looks the chunks up in a block map of its own on the
 * image's base root and fetches them through that store, so decoded chunks land in the
 * repository's bounded cache, where the point's reads find them.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blockmap.h"
#include "cli.h"
#include "errmsg.h"
#include "history.h"
#include "history_cli.h"
#include "log.h"
#include "point.h"
#include "util.h"
#include "view.h"
#include "vkey.h"
#include "volume.h"
#include "volume_head.h"

static const char usage[] =
	"usage: cairn mount [-r REPO] MOUNTPOINT [--debug]\n"
	"Show every volume's history as read-only disk images under MOUNTPOINT:\n"
	"  <volume>/current/  snapshots/<name>/  at/<RFC 3339 time>/  seq/<N>/\n"
	"  --state-dir DIR  the journal directory (as given to cairn serve) for points in time\n"
	"each with disk.img, part<N>.img per partition, and info.json.\n"
	"Runs in the foreground; Ctrl-C, SIGTERM or 'fusermount3 -u MOUNTPOINT' unmounts.\n";

#define REFRESH_MIN_NS (500ULL * 1000000ULL)
#define INFLIGHT_MAX VIEW_PREFETCH_THREADS

struct msrc {
	struct repo *repo;
	struct chunk_store rcs;      /* the repository's */
	struct chunk_store cs;       /* the view's, on top of rcs (mount_cs_ops) */
	const char *state_dir;
	pthread_mutex_t rlock;       /* serialises refreshes */
	uint64_t refreshed_ns;       /* monotonic start of the last refresh (or the open) */
	pthread_mutex_t flock;       /* guards fl[] */
	pthread_cond_t fdone;        /* a fetch in flight finished */
	struct {
		struct chunk_id id;
		int busy;
	} fl[INFLIGHT_MAX];
	pthread_t kth;               /* the key watcher (key_watch) */
	pthread_mutex_t klock;
	pthread_cond_t kcond;
	int kstop;
};

/* The key watcher: a CRYPTO ERASE by the daemon destroys a volume key in the repository,
 * but this process loaded it at its own open. Every KEY_RECHECK_S seconds the loaded
 * keys are checked for a tombstone (vkey_recheck): a destroyed one is wiped here too,
 * with the decoded chunks, and src_read refuses the images of its volume, so the erased
 * data stops being readable through the mount (a read fails with EIO; what the kernel
 * cached of a file stays until it drops it). One metadata read per loaded own key per
 * period; none in a plain repository. */
#define KEY_RECHECK_S 2

static void *key_watch(void *arg)
{
	struct msrc *m = arg;

	pthread_mutex_lock(&m->klock);
	while (!m->kstop) {
		struct timespec ts;
		unsigned gone = 0;
		int rc;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += KEY_RECHECK_S;
		pthread_cond_timedwait(&m->kcond, &m->klock, &ts);
		if (m->kstop)
			break;
		pthread_mutex_unlock(&m->klock);
		rc = vkey_recheck(m->repo, &gone);
		if (rc)
			log_warn("mount", "cannot check the volume keys: %s", strerror(-rc));
		else if (gone)
			log_info("mount", "%u volume key(s) destroyed (CRYPTO ERASE or delete): "
				 "their data is no longer readable here", gone);
		pthread_mutex_lock(&m->klock);
	}
	pthread_mutex_unlock(&m->klock);
	return NULL;
}

/* An open image: every one is a point (point.h); "current" is the plan of the newest
 * volume head, with no journal to replay. bm: a block map of the plan's root, for
 * read-ahead (NULL: none). */
struct view_image {
	struct point *pt;
	struct blockmap *bm;
	uint64_t nchunks;
	unsigned cshift;
};

/* ---- the view's chunk store ---- */

/* Get from the repository; on an index miss, refresh (rate-limited) and retry. */
static int get_refreshing(struct msrc *m, const struct chunk_id *id, void *buf, size_t cap,
			  size_t *len)
{
	uint64_t t0 = util_mono_ns();
	int rc = repo_chunk_get(m->repo, id, buf, cap, len);

	if (rc != -ENOENT)
		return rc;
	pthread_mutex_lock(&m->rlock);
	if (m->refreshed_ns < t0) { /* no refresh began after this miss did */
		uint64_t now = util_mono_ns();
		unsigned added = 0;
		int rrc;

		if (now < m->refreshed_ns + REFRESH_MIN_NS) {
			uint64_t ns = m->refreshed_ns + REFRESH_MIN_NS - now;
			struct timespec ts = { (time_t)(ns / 1000000000ULL), (long)(ns % 1000000000ULL) };
			nanosleep(&ts, NULL);
		}
		m->refreshed_ns = util_mono_ns();
		rrc = repo_refresh(m->repo, &added);
		if (rrc)
			log_warn("mount", "reloading the repository index failed: %s", strerror(-rrc));
		else if (added)
			log_info("mount", "%u new pack(s) added to the index", added);
	}
	pthread_mutex_unlock(&m->rlock);
	return repo_chunk_get(m->repo, id, buf, cap, len);
}

static int inflight_find(const struct msrc *m, const struct chunk_id *id)
{
	for (int i = 0; i < INFLIGHT_MAX; i++)
		if (m->fl[i].busy && !memcmp(&m->fl[i].id, id, sizeof(*id)))
			return i;
	return -1;
}

static int mcs_get(void *ctx, const struct chunk_id *id, void *buf, size_t cap, size_t *len)
{
	struct msrc *m = ctx;

	pthread_mutex_lock(&m->flock);
	while (inflight_find(m, id) >= 0)
		pthread_cond_wait(&m->fdone, &m->flock);
	pthread_mutex_unlock(&m->flock);
	return get_refreshing(m, id, buf, cap, len);
}

/* Read-ahead of one chunk into the repository's cache (buf is scratch): skipped when
 * another thread fetches it already, or no slot is free. */
static void prefetch_chunk(struct msrc *m, const struct chunk_id *id, void *buf, size_t cap)
{
	size_t len;
	int slot = -1;

	pthread_mutex_lock(&m->flock);
	if (inflight_find(m, id) < 0) {
		for (int i = 0; i < INFLIGHT_MAX && slot < 0; i++)
			if (!m->fl[i].busy)
				slot = i;
		if (slot >= 0) {
			m->fl[slot].id = *id;
			m->fl[slot].busy = 1;
		}
	}
	pthread_mutex_unlock(&m->flock);
	if (slot < 0)
		return;
	get_refreshing(m, id, buf, cap, &len);
	pthread_mutex_lock(&m->flock);
	m->fl[slot].busy = 0;
	pthread_cond_broadcast(&m->fdone);
	pthread_mutex_unlock(&m->flock);
}

static int mcs_put(void *ctx, enum chunk_kind kind, const void *data, size_t len,
		   struct chunk_id *id)
{
	(void)ctx; (void)kind; (void)data; (void)len; (void)id;
	return -EROFS;
}

static int mcs_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

static int mcs_meta_put(void *ctx, const char *key, const void *data, size_t len, int excl)
{
	(void)ctx; (void)key; (void)data; (void)len; (void)excl;
	return -EROFS;
}

static int mcs_meta_get(void *ctx, const char *key, void **data, size_t *len)
{
	struct msrc *m = ctx;
	return m->rcs.ops->meta_get(m->rcs.ctx, key, data, len);
}

static int mcs_meta_del(void *ctx, const char *key)
{
	(void)ctx; (void)key;
	return -EROFS;
}

static int mcs_meta_list(void *ctx, const char *prefix, backend_list_cb cb, void *arg)
{
	struct msrc *m = ctx;
	return m->rcs.ops->meta_list(m->rcs.ctx, prefix, cb, arg);
}

static const struct chunk_store_ops mount_cs_ops = {
	.put = mcs_put,
	.get = mcs_get,
	.flush = mcs_flush,
	.meta_put = mcs_meta_put,
	.meta_get = mcs_meta_get,
	.meta_del = mcs_meta_del,
	.meta_list = mcs_meta_list,
};

/* ---- the view source ---- */

struct list_ctx {
	view_name_cb cb;
	void *arg;
};

static int vol_cb(void *arg, const struct volume_info *vi)
{
	struct list_ctx *l = arg;
	return l->cb(l->arg, vi->name, vi->created_ns, 0);
}

static int src_list_volumes(void *ctx, view_name_cb cb, void *arg)
{
	struct msrc *m = ctx;
	struct list_ctx l = { cb, arg };
	return volume_list(&m->cs, vol_cb, &l);
}

static int snap_cb(void *arg, const struct history_snap *s)
{
	struct list_ctx *l = arg;
	return l->cb(l->arg, s->name, s->time_ns, s->seq);
}

static int mark_cb(void *arg, const struct history_mark *m)
{
	struct list_ctx *l = arg;
	return l->cb(l->arg, m->label, m->time_ns, m->seq);
}

static int src_list_snapshots(void *ctx, const char *vol, view_name_cb cb, void *arg)
{
	struct msrc *m = ctx;
	struct list_ctx l = { cb, arg };
	struct volume_info vi;
	int rc = volume_lookup(&m->cs, vol, &vi);

	return rc ? rc : history_snap_list(&m->cs, vi.id, snap_cb, &l);
}

static int src_list_marks(void *ctx, const char *vol, view_name_cb cb, void *arg)
{
	struct msrc *m = ctx;
	struct list_ctx l = { cb, arg };
	struct volume_info vi;
	int rc = volume_lookup(&m->cs, vol, &vi);

	return rc ? rc : history_mark_list(&m->cs, vi.id, 0, mark_cb, &l);
}

/* The plan of "current": the newest head's map, the records it holds (seq < ckpt_seq). */
static int current_plan(struct msrc *m, const char *vol, struct point_plan *plan)
{
	struct volume_head h;
	int rc = volume_head_find(&m->cs, vol, &h);

	if (rc)
		return rc;
	memset(plan, 0, sizeof(*plan));
	plan->info = h.info;
	plan->root = h.root;
	plan->from_seq = plan->to_seq = h.info.ckpt_seq;
	plan->time_ns = util_now_ns();
	return 0;
}

static int src_open(void *ctx, const char *spec, struct view_image **img, struct view_point *info)
{
	struct msrc *m = ctx;
	const struct point_plan *plan;
	struct point_plan cur;
	struct view_image *im;
	int rc;

	memset(info, 0, sizeof(*info));
	im = calloc(1, sizeof(*im));
	if (!im)
		return -ENOMEM;
	if (strchr(spec, '@')) {
		rc = volume_open_point(&m->cs, m->state_dir, spec, &im->pt);
		if (rc == -ESRCH || rc == -ERANGE || rc == -ENODATA || rc == -EINVAL)
			rc = -ENOENT;
	} else {
		rc = current_plan(m, spec, &cur);
		if (!rc)
			rc = point_open(&m->cs, m->state_dir, &cur, &im->pt);
	}
	if (rc)
		goto out_free;
	plan = point_get_plan(im->pt);
	im->cshift = (unsigned)__builtin_ctz(plan->info.chunk_size);
	im->nchunks = (plan->info.size + plan->info.chunk_size - 1) >> im->cshift;
	if (blockmap_open(&m->cs, im->nchunks, &plan->root, &im->bm) == 0)
		info->unit = plan->info.chunk_size;
	else
		im->bm = NULL;
	info->size = plan->info.size;
	info->seq = plan->to_seq;
	info->time_ns = plan->time_ns;
	if (!strchr(spec, '@'))
		snprintf(info->source, sizeof(info->source), "newest checkpoint (seq %llu)",
			 (unsigned long long)plan->to_seq);
	else if (plan->snapshot[0])
		snprintf(info->source, sizeof(info->source), "snapshot %s (seq %llu)",
			 plan->snapshot, (unsigned long long)plan->to_seq);
	else
		snprintf(info->source, sizeof(info->source),
			 "journal replay of seq %llu..%llu on a history checkpoint",
			 (unsigned long long)plan->from_seq, (unsigned long long)plan->to_seq);
	*img = im;
	return 0;

out_free:
	free(im);
	return rc;
}

static int src_read(void *ctx, struct view_image *img, uint64_t off, void *buf, size_t len)
{
	struct msrc *m = ctx;
	uint32_t ref = point_get_plan(img->pt)->info.key_ref;
	const struct aead_keys *k;

	/* an erased volume (its key destroyed: key_watch) reads nothing more, not even
	 * what a point replays from journal segments it holds open */
	if (ref && vkey_keys(m->repo, ref, &k) == -EKEYREVOKED)
		return -EIO;
	return point_read(img->pt, off, buf, len);
}

static void src_prefetch(void *ctx, struct view_image *img, uint64_t off, size_t len,
			 void *scratch, size_t scratch_len)
{
	struct msrc *m = ctx;
	struct chunk_id id;

	if (!img->bm || !len || scratch_len < (1u << img->cshift))
		return;
	for (uint64_t c = off >> img->cshift; c <= (off + len - 1) >> img->cshift && c < img->nchunks; c++) {
		if (blockmap_lookup(img->bm, c, 1, &id))
			return;
		if (!chunk_id_is_null(&id))
			prefetch_chunk(m, &id, scratch, scratch_len);
	}
}

static void src_close(void *ctx, struct view_image *img)
{
	(void)ctx;
	blockmap_close(img->bm);
	point_close(img->pt);
	free(img);
}

static const struct view_source_ops mount_ops = {
	.list_volumes = src_list_volumes,
	.list_snapshots = src_list_snapshots,
	.list_marks = src_list_marks,
	.open = src_open,
	.read = src_read,
	.prefetch = src_prefetch,
	.close = src_close,
};

int cmd_mount(struct cli_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_GLOBAL_LONGOPTS,
		{ "debug", no_argument, NULL, 'd' },
		{ "state-dir", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct repo_open_opts ro = { .read_only = 1 };
	struct msrc m = { 0 };
	struct view_source src = { &mount_ops, &m };
	struct cli_session sess = { 0 };
	const char *state_opt = NULL;
	char sdir[512];
	int c, rc, debug = 0, kstarted;

	while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': debug = 1; break;
		case 'S': state_opt = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default:
			if (cli_other_opt(g, c, optarg, usage))
				return 2;
			break;
		}
	}
	if (optind + 1 != argc)
		return cli_fail(MSG_USAGE, "mount takes one MOUNTPOINT");
	m.refreshed_ns = util_mono_ns(); /* the open lists every pack stored before this */
	g->state_dir = state_opt; /* cli_repo_open reads the index table kept there */
	rc = cli_repo_open(g, &ro, &m.repo);
	if (rc)
		return rc;
	repo_chunk_store(m.repo, &m.rcs);
	m.cs.ops = &mount_cs_ops;
	m.cs.ctx = &m;
	pthread_mutex_init(&m.rlock, NULL);
	pthread_mutex_init(&m.flock, NULL);
	pthread_cond_init(&m.fdone, NULL);
	sess.repo = m.repo;
	m.state_dir = hist_state_dir(&sess, state_opt, sdir, sizeof(sdir));
	pthread_mutex_init(&m.klock, NULL);
	pthread_cond_init(&m.kcond, NULL);
	kstarted = pthread_create(&m.kth, NULL, key_watch, &m) == 0;
	if (!kstarted)
		log_warn("mount", "no key watcher: a CRYPTO ERASE elsewhere is seen here only "
			 "at the next mount");
	rc = view_mount(&src, argv[optind], debug);
	if (kstarted) {
		pthread_mutex_lock(&m.klock);
		m.kstop = 1;
		pthread_cond_signal(&m.kcond);
		pthread_mutex_unlock(&m.klock);
		pthread_join(m.kth, NULL);
	}
	pthread_cond_destroy(&m.kcond);
	pthread_mutex_destroy(&m.klock);
	repo_close(m.repo);
	pthread_cond_destroy(&m.fdone);
	pthread_mutex_destroy(&m.flock);
	pthread_mutex_destroy(&m.rlock);
	switch (rc) {
	case 0: return 0;
	case -ENOTCONN: return cli_fail(MSG_MOUNT_STALE, argv[optind], argv[optind]);
	case -EBUSY: return cli_fail(MSG_MOUNT_BUSY, argv[optind]);
	case -ENOENT:
	case -ENOTDIR: return cli_fail(MSG_MOUNT_NOT_DIR, argv[optind]);
	default: return cli_fail(MSG_MOUNT_FAILED, argv[optind], strerror(-rc));
	}
}
