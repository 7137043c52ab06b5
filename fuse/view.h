/* view.h - the read-only history view: every point of every volume as a disk image.
 *
 * Layout under the mount point (DESIGN.md, CLI contract):
 *   <volume>/current/            the newest checkpoint (never the unflushed present)
 *   <volume>/snapshots/<name>/   each snapshot
 *   <volume>/at/<RFC 3339 time>/ any time in the retained history, resolved on lookup;
 *                                readdir lists the snapshots' and marks' times as examples
 *   <volume>/seq/<N>/            the state before write N, resolved on lookup
 * and each point directory holds disk.img, part<N>.img for every MBR/GPT partition
 * (numbered as Linux numbers them) and info.json (volume, point, seq, time, size, source).
 * Files are read-only (writes: EROFS); file times are the point's time.
 *
 * Speed: FUSE reads of up to 1 MiB and a kernel read-ahead of VIEW_READAHEAD bytes (the
 * mount's bdi read_ahead_kb is raised when the process may); and on a sequential read of
 * an image, a pool of VIEW_PREFETCH_THREADS threads asks the source to prefetch the
 * units ahead of it (VIEW_PREFETCH_WINDOW bytes), in parallel, into its cache.
 *
 * The view reads through a view_source, so it knows nothing of repositories: cli/cmd_mount.c
 * stacks one over the volumes/ read API. Every member returns 0 or a negative errno.
 */
#ifndef CAIRN_VIEW_H
#define CAIRN_VIEW_H

#include <stddef.h>
#include <stdint.h>

#define VIEW_READAHEAD (8u << 20)
#define VIEW_PREFETCH_THREADS 4
#define VIEW_PREFETCH_WINDOW (16u << 20)
#define VIEW_PREFETCH_QUEUE 1024
#define VIEW_PREFETCH_SCRATCH (1u << 20) /* >= the largest unit (CHUNK_SIZE_MAX) */

struct view_point {
	uint64_t size;        /* bytes */
	uint64_t time_ns;     /* wall-clock time of the point */
	uint64_t seq;         /* journal seq of the point (writes below it are in), 0 if unknown */
	char source[160];     /* how the point resolved, e.g. "snapshot nightly", "checkpoint" */
	uint32_t unit;        /* the source's read granule (its chunk size, a power of two):
			       * read-ahead is queued in whole units; 0: no read-ahead */
};

struct view_image; /* an open point, owned by the source */

typedef int (*view_name_cb)(void *arg, const char *name, uint64_t time_ns, uint64_t seq);

struct view_source_ops {
	/* Call cb for every volume (time_ns and seq 0), in name order. */
	int (*list_volumes)(void *ctx, view_name_cb cb, void *arg);
	/* Call cb for every snapshot of vol: name, time, seq. */
	int (*list_snapshots)(void *ctx, const char *vol, view_name_cb cb, void *arg);
	/* Call cb for every CDP mark of vol: label, time, seq. May be NULL. */
	int (*list_marks)(void *ctx, const char *vol, view_name_cb cb, void *arg);
	/* Open a point: "VOL" (current), "VOL@SNAPSHOT", "VOL@<RFC 3339>", "VOL@seq:N".
	 * -ENOENT when there is no such volume, snapshot or retained point. */
	int (*open)(void *ctx, const char *spec, struct view_image **img, struct view_point *info);
	/* Read len bytes at off (within info.size). -EIO/-EBADMSG for damaged data. */
	int (*read)(void *ctx, struct view_image *img, uint64_t off, void *buf, size_t len);
	/* Bring [off, off+len) (within info.size) into the source's cache of decoded data,
	 * so that a read of it soon is fast; the result is not returned. Called from the
	 * view's read-ahead threads, several at once, on an image that stays open meanwhile;
	 * scratch (scratch_len bytes) is the calling thread's own. May be NULL. */
	void (*prefetch)(void *ctx, struct view_image *img, uint64_t off, size_t len,
			 void *scratch, size_t scratch_len);
	/* Release an open point. */
	void (*close)(void *ctx, struct view_image *img);
};

struct view_source {
	const struct view_source_ops *ops;
	void *ctx;
};

/* Mount the view at mountpoint and serve it until it is unmounted (fusermount3 -u) or the
 * process gets SIGINT/SIGTERM. -ENOTCONN: mountpoint is a stale FUSE mount; -EBUSY: a live
 * FUSE mount is there already; -ENOTDIR / -ENOENT: not a directory. */
int view_mount(const struct view_source *src, const char *mountpoint, int debug);

#endif
