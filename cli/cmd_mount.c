/* cmd_mount.c - `cairn mount MOUNTPOINT`: the read-only history view (fuse/view.h),
 * stacked here over the repository and the volumes/ read API.
 *
 * The repository is opened read-only (no lock), so a mount works beside a running
 * `cairn serve` and never blocks it. "current" is the newest checkpoint in the repository
 * (never unflushed writes); snapshots, times and seqs are points (volumes/point.h): a
 * history checkpoint plus the journal records up to the point, read from the state
 * directory (--state-dir, as given to `cairn serve`).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "errmsg.h"
#include "history.h"
#include "history_cli.h"
#include "point.h"
#include "util.h"
#include "view.h"
#include "volume.h"

static const char usage[] =
	"usage: cairn mount [-r REPO] MOUNTPOINT [--debug]\n"
	"Show every volume's history as read-only disk images under MOUNTPOINT:\n"
	"  <volume>/current/  snapshots/<name>/  at/<RFC 3339 time>/  seq/<N>/\n"
	"  --state-dir DIR  the journal directory (as given to cairn serve) for points in time\n"
	"each with disk.img, part<N>.img per partition, and info.json.\n"
	"Runs in the foreground; Ctrl-C, SIGTERM or 'fusermount3 -u MOUNTPOINT' unmounts.\n";

struct msrc {
	struct repo *repo;
	struct chunk_store cs;
	const char *state_dir;
};

/* "current" is the stored map (vol); any other point is a journal replay (pt) */
struct view_image {
	struct volume *vol;
	struct point *pt;
};

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

static int open_point(struct msrc *m, const char *spec, struct view_image *im,
		      struct view_point *info)
{
	const struct point_plan *plan;
	int rc = volume_open_point(&m->cs, m->state_dir, spec, &im->pt);

	if (rc)
		return rc == -ESRCH || rc == -ERANGE || rc == -ENODATA || rc == -EINVAL ? -ENOENT : rc;
	plan = point_get_plan(im->pt);
	info->size = plan->info.size;
	info->seq = plan->to_seq;
	info->time_ns = plan->time_ns;
	if (plan->snapshot[0])
		snprintf(info->source, sizeof(info->source), "snapshot %s (seq %llu)",
			 plan->snapshot, (unsigned long long)plan->to_seq);
	else
		snprintf(info->source, sizeof(info->source),
			 "journal replay of seq %llu..%llu on a history checkpoint",
			 (unsigned long long)plan->from_seq, (unsigned long long)plan->to_seq);
	return 0;
}

static int src_open(void *ctx, const char *spec, struct view_image **img, struct view_point *info)
{
	struct msrc *m = ctx;
	struct volume_open_opts o = { .read_only = 1 };
	const struct volume_info *vi;
	struct view_image *im;
	int rc;

	im = calloc(1, sizeof(*im));
	if (!im)
		return -ENOMEM;
	memset(info, 0, sizeof(*info));
	if (strchr(spec, '@')) {
		rc = open_point(m, spec, im, info);
		if (rc)
			free(im);
		else
			*img = im;
		return rc;
	}
	rc = volume_open(&m->cs, spec, &o, &im->vol);
	if (rc) {
		free(im);
		return rc;
	}
	vi = volume_get_info(im->vol);
	info->size = vi->size;
	info->seq = vi->ckpt_seq;
	info->time_ns = util_now_ns();
	snprintf(info->source, sizeof(info->source), "newest checkpoint (seq %llu)",
		 (unsigned long long)vi->ckpt_seq);
	*img = im;
	return 0;
}

static int src_read(void *ctx, struct view_image *img, uint64_t off, void *buf, size_t len)
{
	(void)ctx;
	return img->pt ? point_read(img->pt, off, buf, len) : volume_read(img->vol, off, buf, len);
}

static void src_close(void *ctx, struct view_image *img)
{
	(void)ctx;
	if (img->pt)
		point_close(img->pt);
	else
		volume_close(img->vol);
	free(img);
}

static const struct view_source_ops mount_ops = {
	.list_volumes = src_list_volumes,
	.list_snapshots = src_list_snapshots,
	.list_marks = src_list_marks,
	.open = src_open,
	.read = src_read,
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
	int c, rc, debug = 0;

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
	rc = cli_repo_open(g, &ro, &m.repo);
	if (rc)
		return rc;
	repo_chunk_store(m.repo, &m.cs);
	sess.repo = m.repo;
	m.state_dir = hist_state_dir(&sess, state_opt, sdir, sizeof(sdir));
	rc = view_mount(&src, argv[optind], debug);
	repo_close(m.repo);
	switch (rc) {
	case 0: return 0;
	case -ENOTCONN: return cli_fail(MSG_MOUNT_STALE, argv[optind], argv[optind]);
	case -EBUSY: return cli_fail(MSG_MOUNT_BUSY, argv[optind]);
	case -ENOENT:
	case -ENOTDIR: return cli_fail(MSG_MOUNT_NOT_DIR, argv[optind]);
	default: return cli_fail(MSG_MOUNT_FAILED, argv[optind], strerror(-rc));
	}
}
