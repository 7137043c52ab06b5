/* cmd_mount.c - `cairn mount MOUNTPOINT`: the read-only history view (fuse/view.h),
 * stacked here over the repository and the volumes/ read API.
 *
 * The repository is opened read-only (no lock), so a mount works beside a running
 * `cairn serve` and never blocks it; what it shows is what is checkpointed in the
 * repository ("current" is the newest checkpoint, never unflushed writes).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "errmsg.h"
#include "util.h"
#include "view.h"
#include "volume.h"

static const char usage[] =
	"usage: cairn mount [-r REPO] MOUNTPOINT [--debug]\n"
	"Show every volume's history as read-only disk images under MOUNTPOINT:\n"
	"  <volume>/current/  snapshots/<name>/  at/<RFC 3339 time>/  seq/<N>/\n"
	"each with disk.img, part<N>.img per partition, and info.json.\n"
	"Runs in the foreground; Ctrl-C, SIGTERM or 'fusermount3 -u MOUNTPOINT' unmounts.\n";

struct msrc {
	struct repo *repo;
	struct chunk_store cs;
};

struct view_image {
	struct volume *vol;
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

static int src_list_snapshots(void *ctx, const char *vol, view_name_cb cb, void *arg)
{
	(void)ctx; (void)vol; (void)cb; (void)arg;
	return -ENOTSUP; /* snapshots arrive with the history work (issue 5) */
}

static int src_open(void *ctx, const char *spec, struct view_image **img, struct view_point *info)
{
	struct msrc *m = ctx;
	struct volume_open_opts o = { .read_only = 1 };
	const struct volume_info *vi;
	struct view_image *im;
	int rc;

	if (strchr(spec, '@'))
		return -ENOENT; /* points in time arrive with the history work (issue 5) */
	im = calloc(1, sizeof(*im));
	if (!im)
		return -ENOMEM;
	rc = volume_open(&m->cs, spec, &o, &im->vol);
	if (rc) {
		free(im);
		return rc;
	}
	vi = volume_get_info(im->vol);
	memset(info, 0, sizeof(*info));
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
	return volume_read(img->vol, off, buf, len);
}

static void src_close(void *ctx, struct view_image *img)
{
	(void)ctx;
	volume_close(img->vol);
	free(img);
}

static const struct view_source_ops mount_ops = {
	.list_volumes = src_list_volumes,
	.list_snapshots = src_list_snapshots,
	.list_marks = NULL,
	.open = src_open,
	.read = src_read,
	.close = src_close,
};

int cmd_mount(struct cli_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_GLOBAL_LONGOPTS,
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct repo_open_opts ro = { .read_only = 1 };
	struct msrc m = { 0 };
	struct view_source src = { &mount_ops, &m };
	int c, rc, debug = 0;

	while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': debug = 1; break;
		case 'h': fputs(usage, stdout); return 0;
		default:
			if (cli_other_opt(g, c, optarg, usage))
				return 2;
			break;
		}
	}
	if (optind + 1 != argc)
		return cli_fail(MSG_USAGE, "mount takes one MOUNTPOINT");
	if (!g->repo || !*g->repo)
		return cli_fail(MSG_NO_REPO_ARG);
	rc = repo_open(g->repo, &ro, &m.repo);
	if (rc)
		return cli_repo_fail(g->repo, rc);
	repo_chunk_store(m.repo, &m.cs);
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
