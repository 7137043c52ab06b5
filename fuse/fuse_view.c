/* fuse_view.c - the history view over libfuse3's high-level API (see view.h).
 *
 * Open points are kept in a small cache keyed by their spec ("vol", "vol@snap",
 * "vol@2026-11-21T10:15:00Z", "vol@seq:N"), with their partition table parsed once. An
 * entry is held by every open file; idle entries are evicted LRU past VIEW_MAX_POINTS.
 * "current" entries expire after CURRENT_TTL_NS so a newer checkpoint shows up.
 * Reads go straight to the source (the repository's decoded-chunk cache is below it);
 * FUSE's max_read and readahead are raised so a sequential read moves 1 MiB at a time,
 * and the mount's bdi read_ahead_kb is raised to VIEW_READAHEAD (the kernel caps FUSE
 * read-ahead at 128 KiB otherwise). Each open file keeps a prefetch stream: sequential
 * reads queue the units ahead on the prefetch pool (prefetch.h), each job holding a
 * reference on its point until it ran.
 */
#define FUSE_USE_VERSION 31
#include "view.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "partition.h"
#include "prefetch.h"
#include "util.h"

#define VIEW_MAX_POINTS 32
#define CURRENT_TTL_NS (2ULL * 1000000000ULL)
#define VOLS_TTL_NS (2ULL * 1000000000ULL)
#define SPEC_MAX 256
#define NAME_MAX_V 128
#define SECTOR 512u
#define FUSE_SUPER_MAGIC 0x65735546 /* statfs f_type of a FUSE mount */

struct view;

struct pt {
	struct view *v;
	char spec[SPEC_MAX];
	struct view_image *img;
	struct view_point info;
	struct part parts[PART_MAX];
	unsigned nparts;
	unsigned refs;      /* open files and lookups in flight */
	uint64_t used;      /* LRU tick */
	uint64_t opened_ns; /* monotonic */
	struct pt *next;
};

struct view {
	const struct view_source *src;
	pthread_mutex_t lock;      /* guards pts, tick, vols */
	struct pt *pts;
	unsigned npts;
	uint64_t tick;
	uint64_t mount_ns;         /* wall clock, for directory times */
	char *vols;                /* cached volume names, NUL-separated, "" terminated */
	uint64_t vols_at;          /* monotonic time of the cache */
	struct prefetch *pf;       /* NULL: no read-ahead */
	struct fh *fhs;            /* open files: released at unmount if the kernel did not */
};

enum kind { K_ROOT, K_VOL, K_SUBDIR, K_POINT, K_FILE };

struct parsed {
	enum kind kind;
	char vol[NAME_MAX_V];
	char sub[16];              /* "snapshots", "at", "seq" for K_SUBDIR */
	char spec[SPEC_MAX];       /* K_POINT, K_FILE */
	char file[32];             /* K_FILE */
};

struct fh {
	struct pt *pt;
	uint64_t base, size;
	char *json;                /* info.json contents */
	struct prefetch_stream ps; /* guarded by the view's lock */
	struct fh *prev, *next;    /* in view.fhs, under the view's lock */
};

static struct view *view_of(void)
{
	return fuse_get_context()->private_data;
}

/* ---- volumes ---- */

struct vol_collect {
	char *buf;
	size_t len, cap;
};

static int collect_cb(void *arg, const char *name, uint64_t t, uint64_t s)
{
	struct vol_collect *c = arg;
	size_t n = strlen(name) + 1;

	(void)t;
	(void)s;
	if (c->len + n + 1 > c->cap) {
		size_t cap = (c->cap + n + 1) * 2;
		char *nb = realloc(c->buf, cap);
		if (!nb)
			return -ENOMEM;
		c->buf = nb;
		c->cap = cap;
	}
	memcpy(c->buf + c->len, name, n);
	c->len += n;
	c->buf[c->len] = 0;
	return 0;
}

/* A copy of the volume list (NUL-separated, "" terminated); caller frees. */
static char *volumes(struct view *v)
{
	uint64_t now = util_mono_ns();
	char *copy = NULL;

	pthread_mutex_lock(&v->lock);
	if (!v->vols || now - v->vols_at > VOLS_TTL_NS) {
		struct vol_collect c = { 0 };
		c.cap = 256;
		c.buf = calloc(1, c.cap);
		if (c.buf && v->src->ops->list_volumes(v->src->ctx, collect_cb, &c) == 0) {
			free(v->vols);
			v->vols = c.buf;
			v->vols_at = now;
		} else {
			free(c.buf);
		}
	}
	if (v->vols) {
		size_t n = 0;
		while (v->vols[n])
			n += strlen(v->vols + n) + 1;
		copy = malloc(n + 1);
		if (copy)
			memcpy(copy, v->vols, n + 1);
	}
	pthread_mutex_unlock(&v->lock);
	return copy;
}

static int volume_exists(struct view *v, const char *name)
{
	char *list = volumes(v);
	int found = 0;

	for (char *p = list; p && *p; p += strlen(p) + 1)
		if (!strcmp(p, name))
			found = 1;
	free(list);
	return found;
}

/* ---- paths ---- */

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

static int parse_path(struct view *v, const char *path, struct parsed *p)
{
	char tmp[1024], *comp[5], *save = NULL, *tok;
	int n = 0;

	memset(p, 0, sizeof(*p));
	if (strlen(path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	strcpy(tmp, path);
	for (tok = strtok_r(tmp, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (n == 5)
			return -ENOENT;
		comp[n++] = tok;
	}
	if (n == 0) {
		p->kind = K_ROOT;
		return 0;
	}
	if (strlen(comp[0]) >= sizeof(p->vol) || !volume_exists(v, comp[0]))
		return -ENOENT;
	strcpy(p->vol, comp[0]);
	if (n == 1) {
		p->kind = K_VOL;
		return 0;
	}
	if (!strcmp(comp[1], "current")) {
		snprintf(p->spec, sizeof(p->spec), "%s", comp[0]);
		if (n == 2) {
			p->kind = K_POINT;
			return 0;
		}
		if (n != 3 || strlen(comp[2]) >= sizeof(p->file))
			return -ENOENT;
		p->kind = K_FILE;
		strcpy(p->file, comp[2]);
		return 0;
	}
	if (strcmp(comp[1], "snapshots") && strcmp(comp[1], "at") && strcmp(comp[1], "seq"))
		return -ENOENT;
	strcpy(p->sub, comp[1]);
	if (n == 2) {
		p->kind = K_SUBDIR;
		return 0;
	}
	if (!strcmp(p->sub, "seq")) {
		if (!all_digits(comp[2]))
			return -ENOENT;
		snprintf(p->spec, sizeof(p->spec), "%s@seq:%s", comp[0], comp[2]);
	} else {
		uint64_t ns;
		if (!strcmp(p->sub, "at") && util_parse_time(comp[2], &ns))
			return -ENOENT;
		if ((size_t)snprintf(p->spec, sizeof(p->spec), "%s@%s", comp[0], comp[2]) >= sizeof(p->spec))
			return -ENAMETOOLONG;
	}
	if (n == 3) {
		p->kind = K_POINT;
		return 0;
	}
	if (n != 4 || strlen(comp[3]) >= sizeof(p->file))
		return -ENOENT;
	p->kind = K_FILE;
	strcpy(p->file, comp[3]);
	return 0;
}

/* ---- the point cache ---- */

static int pt_read(void *arg, uint64_t off, void *buf, size_t len)
{
	struct pt *pt = arg;
	struct view *v = view_of();
	return v->src->ops->read(v->src->ctx, pt->img, off, buf, len);
}

static void pt_free(struct view *v, struct pt *pt)
{
	v->src->ops->close(v->src->ctx, pt->img);
	free(pt);
}

/* Drop idle entries past the cap and stale "current" ones. Caller holds v->lock. */
static void evict(struct view *v)
{
	uint64_t now = util_mono_ns();

	for (;;) {
		struct pt **victim = NULL;

		for (struct pt **pp = &v->pts; *pp; pp = &(*pp)->next) {
			struct pt *p = *pp;
			if (p->refs)
				continue;
			if (!strchr(p->spec, '@') && now - p->opened_ns > CURRENT_TTL_NS) {
				victim = pp;
				break;
			}
			if (v->npts > VIEW_MAX_POINTS && (!victim || p->used < (*victim)->used))
				victim = pp;
		}
		if (!victim)
			return;
		{
			struct pt *p = *victim;
			*victim = p->next;
			v->npts--;
			pt_free(v, p);
		}
	}
}

/* Take a reference on the point spec, opening it if needed. */
static int pt_get(struct view *v, const char *spec, struct pt **out)
{
	struct pt *pt;
	int rc;

	pthread_mutex_lock(&v->lock);
	evict(v);
	for (pt = v->pts; pt; pt = pt->next) {
		if (!strcmp(pt->spec, spec)) {
			pt->refs++;
			pt->used = ++v->tick;
			pthread_mutex_unlock(&v->lock);
			*out = pt;
			return 0;
		}
	}
	pthread_mutex_unlock(&v->lock);

	pt = calloc(1, sizeof(*pt));
	if (!pt)
		return -ENOMEM;
	pt->v = v;
	snprintf(pt->spec, sizeof(pt->spec), "%s", spec);
	rc = v->src->ops->open(v->src->ctx, spec, &pt->img, &pt->info);
	if (rc)
		goto out_free;
	rc = part_scan(pt_read, pt, pt->info.size, pt->parts, &pt->nparts);
	if (rc) {
		log_warn("fuse", "%s: cannot read its partition table: %s", spec, strerror(-rc));
		pt->nparts = 0;
	}
	pt->opened_ns = util_mono_ns();
	pthread_mutex_lock(&v->lock);
	/* another thread may have opened the same point meanwhile: keep one */
	for (struct pt *o = v->pts; o; o = o->next) {
		if (!strcmp(o->spec, spec)) {
			o->refs++;
			o->used = ++v->tick;
			pthread_mutex_unlock(&v->lock);
			pt_free(v, pt);
			*out = o;
			return 0;
		}
	}
	pt->refs = 1;
	pt->used = ++v->tick;
	pt->next = v->pts;
	v->pts = pt;
	v->npts++;
	pthread_mutex_unlock(&v->lock);
	*out = pt;
	return 0;

out_free:
	free(pt);
	return rc;
}

static void pt_put(struct view *v, struct pt *pt)
{
	pthread_mutex_lock(&v->lock);
	pt->refs--;
	evict(v);
	pthread_mutex_unlock(&v->lock);
}

/* Which bytes of the point a file name stands for. -ENOENT if none. */
static int file_range(const struct pt *pt, const char *file, uint64_t *base, uint64_t *size)
{
	unsigned num;
	char tail;

	if (!strcmp(file, "disk.img")) {
		*base = 0;
		*size = pt->info.size;
		return 0;
	}
	if (sscanf(file, "part%u.im%c", &num, &tail) == 2 && tail == 'g') {
		char want[32];
		snprintf(want, sizeof(want), "part%u.img", num);
		if (strcmp(want, file))
			return -ENOENT;
		for (unsigned i = 0; i < pt->nparts; i++) {
			if (pt->parts[i].num == num) {
				*base = pt->parts[i].start;
				*size = pt->parts[i].size;
				return 0;
			}
		}
	}
	return -ENOENT;
}

static char *info_json(const struct pt *pt, const char *vol)
{
	char t[40], *s = NULL;

	if (asprintf(&s,
		     "{\n  \"volume\": \"%s\",\n  \"point\": \"%s\",\n  \"seq\": %llu,\n"
		     "  \"time\": \"%s\",\n  \"size\": %llu,\n  \"source\": \"%s\",\n"
		     "  \"partitions\": %u\n}\n",
		     vol, pt->spec, (unsigned long long)pt->info.seq,
		     util_fmt_time(pt->info.time_ns, t, sizeof(t)),
		     (unsigned long long)pt->info.size, pt->info.source, pt->nparts) < 0)
		return NULL;
	return s;
}

/* ---- FUSE operations ---- */

static void set_time(struct stat *st, uint64_t ns)
{
	st->st_mtim.tv_sec = st->st_atim.tv_sec = st->st_ctim.tv_sec = (time_t)(ns / 1000000000ULL);
	st->st_mtim.tv_nsec = st->st_atim.tv_nsec = st->st_ctim.tv_nsec = (long)(ns % 1000000000ULL);
}

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct view *v = view_of();
	struct parsed p;
	struct pt *pt;
	int rc;

	(void)fi;
	memset(st, 0, sizeof(*st));
	rc = parse_path(v, path, &p);
	if (rc)
		return rc;
	st->st_uid = getuid();
	st->st_gid = getgid();
	if (p.kind != K_POINT && p.kind != K_FILE) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		set_time(st, v->mount_ns);
		return 0;
	}
	rc = pt_get(v, p.spec, &pt);
	if (rc)
		return rc;
	set_time(st, pt->info.time_ns);
	if (p.kind == K_POINT) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
	} else if (!strcmp(p.file, "info.json")) {
		char *j = info_json(pt, p.vol);
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = j ? (off_t)strlen(j) : 0;
		free(j);
	} else {
		uint64_t base, size;
		rc = file_range(pt, p.file, &base, &size);
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)size;
		st->st_blksize = 1 << 20;
		st->st_blocks = (blkcnt_t)(size / 512);
	}
	pt_put(v, pt);
	return rc;
}

struct fill_ctx {
	void *buf;
	fuse_fill_dir_t fill;
	const char *sub;
};

static int fill_name(void *arg, const char *name, uint64_t time_ns, uint64_t seq)
{
	struct fill_ctx *f = arg;
	char n[64];

	if (!strcmp(f->sub, "at"))
		name = util_fmt_time(time_ns, n, sizeof(n));
	else if (!strcmp(f->sub, "seq"))
		snprintf(n, sizeof(n), "%llu", (unsigned long long)seq), name = n;
	f->fill(f->buf, name, NULL, 0, 0);
	return 0;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct view *v = view_of();
	struct parsed p;
	int rc;

	(void)off;
	(void)fi;
	(void)flags;
	rc = parse_path(v, path, &p);
	if (rc)
		return rc;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	switch (p.kind) {
	case K_ROOT: {
		char *list = volumes(v);
		for (char *n = list; n && *n; n += strlen(n) + 1)
			fill(buf, n, NULL, 0, 0);
		free(list);
		return 0;
	}
	case K_VOL:
		fill(buf, "current", NULL, 0, 0);
		fill(buf, "snapshots", NULL, 0, 0);
		fill(buf, "at", NULL, 0, 0);
		fill(buf, "seq", NULL, 0, 0);
		return 0;
	case K_SUBDIR: {
		struct fill_ctx f = { .buf = buf, .fill = fill, .sub = p.sub };
		const struct view_source_ops *ops = v->src->ops;
		rc = ops->list_snapshots(v->src->ctx, p.vol, fill_name, &f);
		if (!rc && strcmp(p.sub, "snapshots") && ops->list_marks)
			rc = ops->list_marks(v->src->ctx, p.vol, fill_name, &f);
		return rc == -ENOTSUP ? 0 : rc;
	}
	case K_POINT: {
		struct pt *pt;
		rc = pt_get(v, p.spec, &pt);
		if (rc)
			return rc;
		fill(buf, "disk.img", NULL, 0, 0);
		for (unsigned i = 0; i < pt->nparts; i++) {
			char n[32];
			snprintf(n, sizeof(n), "part%u.img", pt->parts[i].num);
			fill(buf, n, NULL, 0, 0);
		}
		fill(buf, "info.json", NULL, 0, 0);
		pt_put(v, pt);
		return 0;
	}
	default:
		return -ENOTDIR;
	}
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
	struct view *v = view_of();
	struct parsed p;
	struct fh *h;
	int rc;

	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	rc = parse_path(v, path, &p);
	if (rc)
		return rc;
	if (p.kind != K_FILE)
		return -EISDIR;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	rc = pt_get(v, p.spec, &h->pt);
	if (rc)
		goto out_free;
	if (!strcmp(p.file, "info.json")) {
		h->json = info_json(h->pt, p.vol);
		if (!h->json) {
			rc = -ENOMEM;
			goto out_put;
		}
		h->size = strlen(h->json);
	} else {
		rc = file_range(h->pt, p.file, &h->base, &h->size);
		if (rc)
			goto out_put;
	}
	/* a point other than "current" never changes: let the kernel keep its pages */
	fi->keep_cache = strchr(p.spec, '@') != NULL;
	fi->fh = (uintptr_t)h;
	pthread_mutex_lock(&v->lock);
	h->next = v->fhs;
	if (v->fhs)
		v->fhs->prev = h;
	v->fhs = h;
	pthread_mutex_unlock(&v->lock);
	return 0;

out_put:
	pt_put(v, h->pt);
out_free:
	free(h);
	return rc;
}

static void pf_run(void *arg, uint64_t off, size_t len, void *scratch, size_t scratch_len)
{
	struct pt *pt = arg;
	const struct view_source *src = pt->v->src;

	src->ops->prefetch(src->ctx, pt->img, off, len, scratch, scratch_len);
}

static void pf_done(void *arg)
{
	struct pt *pt = arg;

	pt_put(pt->v, pt);
}

/* A read of [o, o+len) of the image through h: queue the units ahead of a sequential
 * reader, one job per unit, each holding a reference on the point. */
static void read_ahead(struct view *v, struct fh *h, uint64_t o, size_t len)
{
	struct pt *pt = h->pt;
	uint32_t unit = pt->info.unit;
	uint64_t from, to, at;

	if (!v->pf || !unit || !v->src->ops->prefetch || unit > VIEW_PREFETCH_SCRATCH)
		return;
	pthread_mutex_lock(&v->lock);
	prefetch_stream_next(&h->ps, o, len, h->base + h->size, VIEW_PREFETCH_WINDOW, unit,
			     &from, &to);
	for (at = from; at < to; at += unit) {
		struct prefetch_job j = { .run = pf_run, .done = pf_done, .arg = pt, .off = at,
					  .len = (size_t)MIN((uint64_t)unit, to - at) };

		pt->refs++;
		if (prefetch_submit(v->pf, &j)) {
			pt->refs--;
			break;
		}
	}
	if (at > from)
		prefetch_stream_queued(&h->ps, at);
	pthread_mutex_unlock(&v->lock);
}

static int op_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct view *v = view_of();
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	uint64_t o = (uint64_t)off, start, end;
	char *bounce;
	int rc;

	(void)path;
	if (o >= h->size)
		return 0;
	if (size > h->size - o)
		size = (size_t)(h->size - o);
	if (h->json) {
		memcpy(buf, h->json + o, size);
		return (int)size;
	}
	o += h->base;
	read_ahead(v, h, o, size);
	if (!(o % SECTOR) && !(size % SECTOR)) {
		rc = v->src->ops->read(v->src->ctx, h->pt->img, o, buf, size);
	} else {
		/* unaligned (direct IO with odd sizes): read whole sectors around it */
		start = o / SECTOR * SECTOR;
		end = (o + size + SECTOR - 1) / SECTOR * SECTOR;
		bounce = malloc(end - start);
		if (!bounce)
			return -ENOMEM;
		rc = v->src->ops->read(v->src->ctx, h->pt->img, start, bounce, end - start);
		if (!rc)
			memcpy(buf, bounce + (o - start), size);
		free(bounce);
	}
	if (rc) {
		log_error("fuse", "%s: read of %zu bytes at %llu failed: %s", h->pt->spec, size,
			  (unsigned long long)o, strerror(-rc));
		return rc == -EBADMSG ? -EIO : rc;
	}
	return (int)size;
}

static void fh_free(struct view *v, struct fh *h)
{
	pt_put(v, h->pt);
	free(h->json);
	free(h);
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	struct view *v = view_of();

	(void)path;
	pthread_mutex_lock(&v->lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		v->fhs = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&v->lock);
	fh_free(v, h);
	return 0;
}

static int op_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)path; (void)buf; (void)size; (void)off; (void)fi;
	return -EROFS;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	conn->max_readahead = VIEW_READAHEAD;
	conn->max_read = 1u << 20;
	conn->max_background = 32;
	cfg->entry_timeout = 1.0;
	cfg->attr_timeout = 1.0;
	cfg->negative_timeout = 0;
	return fuse_get_context()->private_data;
}

static void op_destroy(void *data)
{
	struct view *v = data;

	/* an unmount does not wait for the RELEASE of files closed just before it */
	while (v->fhs) {
		struct fh *h = v->fhs;
		v->fhs = h->next;
		fh_free(v, h);
	}
	while (v->pts) {
		struct pt *p = v->pts;
		v->pts = p->next;
		pt_free(v, p);
	}
	free(v->vols);
	v->vols = NULL;
}

static const struct fuse_operations view_ops = {
	.getattr = op_getattr,
	.readdir = op_readdir,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.release = op_release,
	.init = op_init,
	.destroy = op_destroy,
};

/* Raise the kernel read-ahead of the FUSE mount at dir (its canonical path) to
 * VIEW_READAHEAD: the bdi is named by the mount's device number, found in mountinfo
 * (the newest mount on dir). Best effort: without the right to write it (not root),
 * reads stay 128 KiB apart. Must run before the mount serves (FUSE_INIT keeps the
 * smaller of this and conn->max_readahead). */
static void raise_readahead(const char *dir)
{
	char line[4096], want[PATH_MAX], bdi[64], dev[32] = "";
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int fd;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char mp[PATH_MAX], *d = mp, devf[32];
		const char *p;

		/* "<id> <parent> <maj:min> <root> <mount point> ..." */
		if (sscanf(line, "%*s %*s %31s %*s %4095s", devf, want) != 2)
			continue;
		for (p = want; *p && d < mp + sizeof(mp) - 1; p++) {
			if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] && p[3]) {
				*d++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
				p += 3;
			} else {
				*d++ = *p;
			}
		}
		*d = 0;
		if (!strcmp(mp, dir))
			snprintf(dev, sizeof(dev), "%s", devf);
	}
	fclose(f);
	if (!*dev)
		return;
	snprintf(bdi, sizeof(bdi), "/sys/class/bdi/%s/read_ahead_kb", dev);
	fd = open(bdi, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || dprintf(fd, "%u\n", VIEW_READAHEAD >> 10) < 0)
		log_info("fuse", "kernel read-ahead stays at its default (%s: %s)", bdi,
			 strerror(errno));
	if (fd >= 0)
		close(fd);
}

int view_mount(const struct view_source *src, const char *mountpoint, int debug)
{
	struct view v = { .src = src, .mount_ns = util_now_ns() };
	char *argv[] = { "cairn-mount", "-o", "ro,fsname=cairn,subtype=cairn,max_read=1048576",
			 debug ? "-d" : NULL, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(debug ? 4 : 3, argv);
	struct fuse *f;
	char canon[PATH_MAX];
	struct statfs sfs;
	struct stat st;
	int rc;

	/* statfs always reaches a FUSE mount's daemon (stat may be answered from the
	 * kernel's attribute cache): ENOTCONN means its process is gone */
	if (statfs(mountpoint, &sfs) < 0)
		return -errno;
	if (sfs.f_type == FUSE_SUPER_MAGIC)
		return -EBUSY;
	if (stat(mountpoint, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (!realpath(mountpoint, canon))
		return -errno;
	pthread_mutex_init(&v.lock, NULL);
	f = fuse_new(&args, &view_ops, sizeof(view_ops), &v);
	if (!f) {
		rc = -EINVAL;
		goto out_args;
	}
	if (fuse_mount(f, mountpoint)) {
		rc = -EIO;
		goto out_destroy;
	}
	raise_readahead(canon);
	if (fuse_set_signal_handlers(fuse_get_session(f))) {
		rc = -EIO;
		goto out_unmount;
	}
	rc = prefetch_create(VIEW_PREFETCH_THREADS, VIEW_PREFETCH_QUEUE, VIEW_PREFETCH_SCRATCH,
			     &v.pf);
	if (rc) {
		log_warn("fuse", "no read-ahead threads: %s", strerror(-rc));
		v.pf = NULL;
	}
	/* 0 when unmounted from outside (fusermount3 -u), the signal number after SIGINT,
	 * SIGTERM or SIGHUP: both are a clean stop; negative is an error */
	rc = fuse_loop_mt(f, 0);
	rc = rc < 0 ? rc : 0;
	prefetch_destroy(v.pf); /* drops its references on points before op_destroy */
	v.pf = NULL;
	fuse_remove_signal_handlers(fuse_get_session(f));
out_unmount:
	fuse_unmount(f);
out_destroy:
	fuse_destroy(f);
out_args:
	fuse_opt_free_args(&args);
	pthread_mutex_destroy(&v.lock);
	return rc;
}
