/* jstore.c - see jstore.h.
 *
 * Object content (inside the metadata envelope of repo.c), little-endian:
 *   0  4  magic "CJZ1"
 *   4  8  raw length: bytes of the segment file
 *  12  .. the segment file compressed as one LZ4 block
 * The segment file inside keeps its own header and XXH3 record chain (journal.c), which
 * fetch() verifies after decompressing. */
#include "jstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lz4.h>

#include "le.h"
#include "log.h"
#include "util.h"

#define JZ_MAGIC "CJZ1"
#define JZ_HDR 12u

/* Compress a segment file's bytes into a new object buffer. */
static int jz_pack(const void *raw, size_t raw_len, void **out, size_t *out_len)
{
	int bound, n;
	uint8_t *o;

	if (raw_len > LZ4_MAX_INPUT_SIZE)
		return -EFBIG;
	bound = LZ4_compressBound((int)raw_len);
	o = malloc(JZ_HDR + (size_t)bound);
	if (!o)
		return -ENOMEM;
	memcpy(o, JZ_MAGIC, 4);
	le_put64(o + 4, raw_len);
	n = LZ4_compress_default(raw, (char *)o + JZ_HDR, (int)raw_len, bound);
	if (n <= 0) {
		free(o);
		return -EIO;
	}
	*out = o;
	*out_len = JZ_HDR + (size_t)n;
	return 0;
}

/* The segment file bytes of a stored object (malloc'd); -EBADMSG if it is damaged. */
static int jz_unpack(const void *obj, size_t len, void **out, size_t *out_len)
{
	const uint8_t *p = obj;
	uint64_t raw_len;
	void *raw;
	int n;

	if (len < JZ_HDR || memcmp(p, JZ_MAGIC, 4))
		return -EBADMSG;
	raw_len = le_get64(p + 4);
	if (raw_len > LZ4_MAX_INPUT_SIZE)
		return -EBADMSG;
	raw = malloc(raw_len ? raw_len : 1);
	if (!raw)
		return -ENOMEM;
	n = LZ4_decompress_safe((const char *)p + JZ_HDR, raw, (int)(len - JZ_HDR), (int)raw_len);
	if (n < 0 || (uint64_t)n != raw_len) {
		free(raw);
		return -EBADMSG;
	}
	*out = raw;
	*out_len = raw_len;
	return 0;
}

void jstore_cache_dir(const char *state_dir, const char *volid, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s/jcache", state_dir, volid);
}

static void seg_key(const char *volid, const struct jstore_seg *s, char *out, size_t n)
{
	snprintf(out, n, "journal/%s/%016" PRIx64 ".%016" PRIx64 ".%016" PRIx64, volid, s->first,
		 s->next, s->created_ns);
}

struct list_arg {
	struct jstore_seg *v;
	unsigned n, cap;
	size_t plen;
	int err;
};

static int list_cb(void *arg, const char *key, uint64_t size)
{
	struct list_arg *la = arg;
	const char *p = key + la->plen;
	struct jstore_seg s = { .bytes = size };
	char *end;

	if (strlen(p) != 50 || p[16] != '.' || p[33] != '.')
		return 0;
	s.first = strtoull(p, &end, 16);
	if (end != p + 16)
		return 0;
	s.next = strtoull(p + 17, &end, 16);
	if (end != p + 33)
		return 0;
	s.created_ns = strtoull(p + 34, &end, 16);
	if (*end || s.next < s.first)
		return 0;
	if (la->n == la->cap) {
		unsigned cap = la->cap ? la->cap * 2 : 64;
		struct jstore_seg *nv = realloc(la->v, cap * sizeof(*nv));

		if (!nv) {
			la->err = -ENOMEM;
			return 1;
		}
		la->v = nv;
		la->cap = cap;
	}
	la->v[la->n++] = s;
	return 0;
}

static int cmp_seg(const void *a, const void *b)
{
	const struct jstore_seg *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

int jstore_list(struct chunk_store *cs, const char *volid, struct jstore_seg **out,
		unsigned *n)
{
	struct list_arg la = { 0 };
	char prefix[64];
	int ret;

	snprintf(prefix, sizeof(prefix), "journal/%s/", volid);
	la.plen = strlen(prefix);
	ret = cs->ops->meta_list(cs->ctx, prefix, list_cb, &la);
	if (ret > 0)
		ret = 0;
	if (!ret)
		ret = la.err;
	if (ret) {
		free(la.v);
		return ret;
	}
	if (la.n)
		qsort(la.v, la.n, sizeof(*la.v), cmp_seg);
	*out = la.v;
	*n = la.n;
	return 0;
}

int jstore_put(struct chunk_store *cs, const char *volid, const char *jdir,
	       const struct journal_seginfo *si)
{
	struct jstore_seg s = { si->first, si->next, si->created_ns, si->bytes };
	char path[4096], key[128];
	void *data;
	size_t len;
	int ret;

	snprintf(path, sizeof(path), "%s/%016" PRIx64 ".log", jdir, si->first);
	void *obj;
	size_t obj_len;

	ret = util_read_file(path, &data, &len);
	if (ret)
		return ret;
	ret = jz_pack(data, len, &obj, &obj_len);
	free(data);
	if (ret)
		return ret;
	seg_key(volid, &s, key, sizeof(key));
	ret = cs->ops->meta_put(cs->ctx, key, obj, obj_len, BACKEND_PUT_EXCL);
	free(obj);
	return ret == -EEXIST ? 0 : ret;
}

int jstore_verify(struct chunk_store *cs, const char *volid, const struct jstore_seg *s)
{
	char key[128];
	void *data;
	size_t len;
	int ret;

	seg_key(volid, s, key, sizeof(key));
	void *raw;
	size_t raw_len;

	ret = cs->ops->meta_get(cs->ctx, key, &data, &len);
	if (ret)
		return ret;
	ret = jz_unpack(data, len, &raw, &raw_len);
	free(data);
	if (ret)
		return ret;
	if (raw_len < 64)
		ret = -EBADMSG;
	free(raw);
	return ret;
}

int jstore_del(struct chunk_store *cs, const char *volid, const struct jstore_seg *s)
{
	char key[128];
	int ret;

	seg_key(volid, s, key, sizeof(key));
	ret = cs->ops->meta_del(cs->ctx, key);
	return ret == -ENOENT ? 0 : ret;
}

static int fetch(struct chunk_store *cs, const char *volid, const struct jstore_seg *s,
		 const char *dir)
{
	char key[128], path[4096], tmp[4200];
	uint8_t vid[16];
	void *data;
	size_t len;
	int ret, fd;

	if (util_unhex(volid, vid, sizeof(vid)))
		return -EINVAL;
	ret = util_mkdirs(dir, 0700);
	if (ret)
		return ret;
	seg_key(volid, s, key, sizeof(key));
	ret = cs->ops->meta_get(cs->ctx, key, &data, &len);
	if (ret)
		return ret;
	{
		void *obj = data;
		size_t obj_len = len;

		ret = jz_unpack(obj, obj_len, &data, &len);
		free(obj);
		if (ret) {
			log_warn("jstore", "journal segment %s is damaged", key);
			return ret;
		}
	}
	snprintf(path, sizeof(path), "%s/%016" PRIx64 ".log", dir, s->first);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out_free;
	}
	ret = util_write_all(fd, data, len);
	close(fd);
	if (!ret)
		ret = journal_segment_verify(tmp, s->first, vid);
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret) {
		unlink(tmp);
		log_warn("jstore", "cannot fetch journal segment %s: %s", key, strerror(-ret));
	}
out_free:
	free(data);
	return ret;
}

static int present(const struct journal_view *v, uint64_t first)
{
	int fd = journal_segment_open(v, first);

	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

/* Delete the fetched copies in cache_dir of segments the repository no longer holds
 * (n stored, by first seq): retention or a purge dropped them there, and a stale copy
 * would keep that history (and the chunks its COPY records name) alive in this state
 * directory, before a gap in the chain. */
static void prune_cache(const char *cache_dir, const struct jstore_seg *segs, unsigned n)
{
	char path[4096];
	struct dirent *de;
	DIR *d = opendir(cache_dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		uint64_t first;
		unsigned lo = 0, hi = n;
		char *end;

		if (strlen(de->d_name) != 20 || strcmp(de->d_name + 16, ".log"))
			continue;
		first = strtoull(de->d_name, &end, 16);
		if (end != de->d_name + 16)
			continue;
		while (lo < hi) { /* segs are sorted by first seq */
			unsigned mid = (lo + hi) / 2;

			if (segs[mid].first < first)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < n && segs[lo].first == first)
			continue;
		snprintf(path, sizeof(path), "%s/%s", cache_dir, de->d_name);
		if (!unlink(path))
			log_info("jstore", "dropped %s: the repository no longer holds it", path);
	}
	closedir(d);
}

int jstore_prepare(struct chunk_store *cs, const char *volid, const struct journal_view *v,
		   uint64_t from, uint64_t to, int by_time, uint64_t t_ns)
{
	struct jstore_seg *segs;
	unsigned n, lo = 0, hi = 0;
	int ret;

	if (!v->dir[1])
		return 0;
	ret = jstore_list(cs, volid, &segs, &n);
	if (!ret)
		prune_cache(v->dir[1], segs, n);
	if (ret || !n) {
		free(segs);
		return ret;
	}
	if (by_time) {
		while (lo + 1 < n && segs[lo + 1].created_ns <= t_ns)
			lo++;
		hi = MIN(lo + 2, n);
	} else {
		while (lo < n && segs[lo].next <= from)
			lo++;
		hi = lo;
		while (hi < n && segs[hi].first < to)
			hi++;
	}
	for (unsigned i = lo; i < hi && !ret; i++)
		if (!present(v, segs[i].first))
			ret = fetch(cs, volid, &segs[i], v->dir[1]);
	free(segs);
	return ret;
}

int jstore_expire(struct chunk_store *cs, const char *volid, uint64_t below,
		  uint64_t before_ns, const char *cache_dir, uint64_t tail_first,
		  uint64_t tail_created_ns, uint64_t *kept_first)
{
	struct jstore_seg *segs;
	char key[128], path[4096];
	unsigned n, i;
	int ret;

	*kept_first = UINT64_MAX;
	ret = jstore_list(cs, volid, &segs, &n);
	if (ret || !n) {
		free(segs);
		return ret;
	}
	for (i = 0; i < n && !ret; i++) {
		/* the successor's start time bounds every record time of this segment; when
		 * the segment after it is not stored (the uploads lagged behind the window
		 * and it expired locally first, or it is not stored yet), its records are
		 * older than the window anyway, being below below (the seq the retention
		 * boundary's base holds): keeping it would leave a stale segment before a
		 * gap in the stored history */
		uint64_t succ = i + 1 < n ? (segs[i + 1].first == segs[i].next ?
					     segs[i + 1].created_ns : 0) :
				segs[i].next == tail_first ? tail_created_ns : 0;

		if (segs[i].next > below || succ >= before_ns)
			break;
		seg_key(volid, &segs[i], key, sizeof(key));
		ret = cs->ops->meta_del(cs->ctx, key);
		if (ret == -ENOENT)
			ret = 0;
		if (cache_dir) {
			snprintf(path, sizeof(path), "%s/%016" PRIx64 ".log", cache_dir, segs[i].first);
			unlink(path);
		}
	}
	if (!ret && i < n)
		*kept_first = segs[i].first;
	free(segs);
	return ret;
}
