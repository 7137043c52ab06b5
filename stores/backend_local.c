/* backend_local.c - the local-directory backend.
 *
 * Layout: the object with key "a/b/c" is the regular file <root>/a/b/c. Directories
 * are created on demand by put and never removed.
 *
 * Keys: non-empty, '/'-separated, no leading or trailing '/', no empty component,
 * and no component starting with '.' (so "." and ".." are impossible, and the
 * hidden names below can never collide with a key). Anything else is -EINVAL.
 *
 * put: the data goes to a hidden temp file ".<name>.tmp.<pid>.<seq>" in the target's
 * directory, is fsync'd, then published with rename(2) (overwrite) or link(2)+unlink(2)
 * (BACKEND_PUT_EXCL: link fails with EEXIST if the key exists), and the directory is
 * fsync'd. A crash leaves either no object or the whole object, plus possibly a stray
 * hidden temp file that list() never reports. list() deletes the stray temp files it
 * walks past whose <pid> is no longer a process (kill(pid, 0) gives ESRCH): they may hold
 * data that was meant to be deleted (a SANITIZE's purge, gc), and nobody can publish
 * them any more. A temp file of a live process is left alone.
 *
 * list: walks the directory under the longest directory part of the prefix, collects
 * every matching regular file, and sorts the keys with strcmp (a depth-first walk alone
 * is not lexicographic: "a-c" sorts before "a/b").
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "util.h"

struct local {
	char root[PATH_MAX];
	size_t root_len;
	atomic_uint tmp_seq;
};


static int key_path(struct local *l, const char *key, char *out, size_t cap)
{
	int rc = backend_key_check(key);

	if (rc)
		return rc;
	if ((size_t)snprintf(out, cap, "%s/%s", l->root, key) >= cap)
		return -ENAMETOOLONG;
	return 0;
}

static int local_get_range(void *ctx, const char *key, uint64_t off, void *buf, size_t len)
{
	char path[PATH_MAX];
	int fd, rc;

	if (len == 0)
		return -EINVAL;
	rc = key_path(ctx, key, path, sizeof(path));
	if (rc)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = util_pread_all(fd, buf, len, off);
	close(fd);
	return rc;
}

static int local_get(void *ctx, const char *key, void **data, size_t *len)
{
	char path[PATH_MAX];
	struct stat st;
	void *buf;
	int fd, rc;

	rc = key_path(ctx, key, path, sizeof(path));
	if (rc)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out_close_fd;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -ENOENT;
		goto out_close_fd;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out_close_fd;
	}
	if (st.st_size) {
		rc = util_pread_all(fd, buf, (size_t)st.st_size, 0);
		if (rc) {
			free(buf);
			goto out_close_fd;
		}
	}
	*data = buf;
	*len = (size_t)st.st_size;
out_close_fd:
	close(fd);
	return rc;
}

/* mkdir -p of the directory part of path (which lies under the root), fsyncing each
 * parent whose entry was created so a new subdirectory survives a crash. */
static int make_parents(struct local *l, const char *path)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);
	int rc;

	memcpy(tmp, path, len + 1);
	for (char *p = tmp + l->root_len + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0755) == 0) {
			rc = util_fsync_dir_of(tmp);
			if (rc)
				return rc;
		} else if (errno != EEXIST) {
			return -errno;
		}
		*p = '/';
	}
	return 0;
}

static int local_put(void *ctx, const char *key, const void *data, size_t len, int flags)
{
	struct local *l = ctx;
	char path[PATH_MAX], tmp[PATH_MAX];
	const char *base;
	int fd, rc;

	rc = key_path(l, key, path, sizeof(path));
	if (rc)
		return rc;
	base = strrchr(path, '/') + 1;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%.*s.%s.tmp.%d.%u", (int)(base - path), path,
			     base, (int)getpid(), atomic_fetch_add(&l->tmp_seq, 1)) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 && errno == ENOENT) {
		rc = make_parents(l, path);
		if (rc)
			return rc;
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	}
	if (fd < 0)
		return -errno;
	rc = util_write_all(fd, data, len);
	if (rc)
		goto out_unlink_tmp;
	if (fsync(fd) < 0) {
		rc = -errno;
		goto out_unlink_tmp;
	}
	close(fd);
	fd = -1;
	if (flags & BACKEND_PUT_EXCL) {
		if (link(tmp, path) < 0) {
			rc = -errno;
			goto out_unlink_tmp;
		}
		unlink(tmp);
	} else if (rename(tmp, path) < 0) {
		rc = -errno;
		goto out_unlink_tmp;
	}
	return util_fsync_dir_of(path);

out_unlink_tmp:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return rc;
}

static int local_del(void *ctx, const char *key)
{
	char path[PATH_MAX];
	struct stat st;
	int rc;

	rc = key_path(ctx, key, path, sizeof(path));
	if (rc)
		return rc;
	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -ENOENT;
	if (unlink(path) < 0)
		return -errno;
	return util_fsync_dir_of(path);
}

static int local_stat(void *ctx, const char *key, uint64_t *size)
{
	char path[PATH_MAX];
	struct stat st;
	int rc;

	rc = key_path(ctx, key, path, sizeof(path));
	if (rc)
		return rc;
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -ENOENT;
	*size = (uint64_t)st.st_size;
	return 0;
}

struct list_item {
	char *key;
	uint64_t size;
};

struct list_acc {
	struct list_item *items;
	size_t n, cap;
	const char *prefix;
	size_t prefix_len;
};

static int acc_add(struct list_acc *a, const char *key, uint64_t size)
{
	if (strncmp(key, a->prefix, a->prefix_len) != 0)
		return 0;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		struct list_item *n = realloc(a->items, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		a->items = n;
		a->cap = cap;
	}
	a->items[a->n].key = strdup(key);
	if (!a->items[a->n].key)
		return -ENOMEM;
	a->items[a->n].size = size;
	a->n++;
	return 0;
}

/* Collect every regular file under dirpath; rel is its key prefix ("" or "a/b/"). */
/* 1 if name is a put's temp file ".<name>.tmp.<pid>.<seq>" whose process is gone. */
static int stray_tmp(const char *name)
{
	const char *t = strstr(name, ".tmp."), *p;
	char *end;
	long pid;

	if (name[0] != '.' || !t)
		return 0;
	while ((p = strstr(t + 1, ".tmp.")) != NULL) /* the last ".tmp." */
		t = p;
	pid = strtol(t + 5, &end, 10);
	if (end == t + 5 || *end != '.' || pid <= 0 || pid == (long)getpid())
		return 0;
	strtoul(end + 1, &end, 10);
	if (*end)
		return 0;
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

static int walk(struct list_acc *a, const char *dirpath, const char *rel)
{
	char path[PATH_MAX], key[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int rc = 0;

	d = opendir(dirpath);
	if (!d)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.') {
			if (stray_tmp(de->d_name) &&
			    (size_t)snprintf(path, sizeof(path), "%s/%s", dirpath, de->d_name) < sizeof(path))
				unlink(path); /* best effort: a read-only repository keeps it */
			continue;
		}
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dirpath, de->d_name) >= sizeof(path) ||
		    (size_t)snprintf(key, sizeof(key), "%s%s", rel, de->d_name) >= sizeof(key)) {
			rc = -ENAMETOOLONG;
			goto out_closedir;
		}
		if (lstat(path, &st) < 0) {
			if (errno == ENOENT)
				continue;
			rc = -errno;
			goto out_closedir;
		}
		if (S_ISDIR(st.st_mode)) {
			size_t kl = strlen(key);
			size_t cmp = MIN(kl, a->prefix_len);

			/* descend only where keys can still match the prefix */
			if (strncmp(key, a->prefix, cmp) != 0)
				continue;
			if (kl + 2 > sizeof(key)) {
				rc = -ENAMETOOLONG;
				goto out_closedir;
			}
			key[kl] = '/';
			key[kl + 1] = 0;
			rc = walk(a, path, key);
		} else if (S_ISREG(st.st_mode)) {
			rc = acc_add(a, key, (uint64_t)st.st_size);
		}
		if (rc)
			goto out_closedir;
	}
out_closedir:
	closedir(d);
	return rc;
}

static int item_cmp(const void *x, const void *y)
{
	return strcmp(((const struct list_item *)x)->key, ((const struct list_item *)y)->key);
}

static int local_list(void *ctx, const char *prefix, backend_list_cb cb, void *arg)
{
	struct local *l = ctx;
	struct list_acc a = { .prefix = prefix ? prefix : "" };
	char dir[PATH_MAX], rel[PATH_MAX];
	const char *slash;
	size_t dl;
	int rc;

	a.prefix_len = strlen(a.prefix);
	slash = strrchr(a.prefix, '/');
	dl = slash ? (size_t)(slash - a.prefix) + 1 : 0;
	if (a.prefix[0] == '/' || strstr(a.prefix, "//") || strstr(a.prefix, "/.") ||
	    a.prefix[0] == '.')
		return -EINVAL;
	if ((size_t)snprintf(dir, sizeof(dir), "%s/%.*s", l->root, (int)dl, a.prefix) >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(rel, a.prefix, dl);
	rel[dl] = 0;
	rc = walk(&a, dir, rel);
	if (rc)
		goto out_free_items;
	if (a.n)
		qsort(a.items, a.n, sizeof(*a.items), item_cmp);
	for (size_t i = 0; i < a.n; i++) {
		rc = cb(arg, a.items[i].key, a.items[i].size);
		if (rc)
			break;
	}
out_free_items:
	for (size_t i = 0; i < a.n; i++)
		free(a.items[i].key);
	free(a.items);
	return rc;
}

static void local_close(void *ctx)
{
	free(ctx);
}

static const struct backend_ops local_ops = {
	.get_range = local_get_range,
	.get = local_get,
	.put = local_put,
	.del = local_del,
	.list = local_list,
	.stat = local_stat,
	.close = local_close,
};

int backend_local_open(const char *path, int create, struct backend **out)
{
	struct backend *b;
	struct local *l;
	struct stat st;
	int rc;

	if (!path || !*path)
		return -EINVAL;
	if (create) {
		rc = util_mkdirs(path, 0755);
		if (rc)
			return rc;
	}
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	if (!realpath(path, l->root)) {
		rc = -errno;
		goto out_free_local;
	}
	l->root_len = strlen(l->root);
	if (l->root_len == 1) /* "/" */
		l->root_len = 0, l->root[0] = 0;
	b = calloc(1, sizeof(*b));
	if (!b) {
		rc = -ENOMEM;
		goto out_free_local;
	}
	b->url = strdup(path);
	if (!b->url) {
		rc = -ENOMEM;
		goto out_free_backend;
	}
	b->ops = &local_ops;
	b->ctx = l;
	*out = b;
	return 0;

out_free_backend:
	free(b);
out_free_local:
	free(l);
	return rc;
}

void backend_close(struct backend *b)
{
	if (!b)
		return;
	b->ops->close(b->ctx);
	free(b->url);
	free(b);
}
