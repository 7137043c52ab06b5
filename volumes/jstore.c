/* jstore.c - see jstore.h.
 *
 * Object content (inside the metadata envelope of repo.c), little-endian. Current
 * format, a "thin" segment: the data a WRITE record carries in whole chunks of the
 * volume is the data the volume's folds store as chunks, so the object names those
 * chunks instead of holding the bytes a second time:
 *    0  4  magic "CJZ2"
 *    4  8  raw_len    bytes of the segment file
 *   12  4  nrefs      pieces of it held as chunk references
 *   16  8  skel_len   bytes of the skeleton: the segment file without those pieces
 *   24  ..  refs[nrefs], JZ_REF (44) bytes each, by pos, not overlapping:
 *           0  u64 pos   file offset of the piece in the segment file (always inside
 *                        the payload of a WRITE record, never a header)
 *           8  u32 len   its bytes (the volume's chunk size when stored)
 *          12  u8  id[32] the chunk holding exactly those bytes (the null id: zeros)
 *   24 + 44 * nrefs ..  the skeleton compressed as one LZ4 block
 * The chunks are durable (flushed) before the object is put, and gc keeps them while
 * the object exists (cmd_gc.c walks the refs of every stored segment, jstore_walk).
 * Older format, read as before:
 *    0  4  magic "CJZ1"
 *    4  8  raw_len
 *   12  ..  the whole segment file compressed as one LZ4 block
 * Either way the segment file inside keeps its own header and XXH3 record chain
 * (journal.c): fetch() rebuilds the file (splicing the chunks back in) and verifies
 * every record before a reader sees it, so the check stays end to end. */
#include "jstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lz4.h>
#include <xxhash.h>

#include "le.h"
#include "log.h"
#include "util.h"

#define JZ1_MAGIC "CJZ1"
#define JZ1_HDR 12u
#define JZ_MAGIC "CJZ2"
#define JZ_HDR 24u
#define JZ_REF 44u

/* A stored object taken apart: skel (malloc'd, decompressed) and the refs (pointing
 * into the object, which must outlive it). A CJZ1 object is a skeleton without refs. */
struct jz {
	uint64_t raw_len;
	uint8_t *skel;
	uint64_t skel_len;
	const uint8_t *refs;
	uint32_t nrefs;
};

static uint64_t ref_pos(const struct jz *z, uint32_t k)
{
	return le_get64(z->refs + (size_t)k * JZ_REF);
}

static uint32_t ref_len(const struct jz *z, uint32_t k)
{
	return le_get32(z->refs + (size_t)k * JZ_REF + 8);
}

static void ref_id(const struct jz *z, uint32_t k, struct chunk_id *id)
{
	memcpy(id->b, z->refs + (size_t)k * JZ_REF + 12, CHUNK_ID_LEN);
}

/* Parse and check an object, decompress its skeleton; -EBADMSG if damaged. */
static int jz_open(const void *obj, size_t len, struct jz *z)
{
	const uint8_t *p = obj, *lz;
	uint64_t end = JOURNAL_SEG_HDR, removed = 0;
	size_t lz_len;
	int n;

	memset(z, 0, sizeof(*z));
	if (len >= JZ1_HDR && !memcmp(p, JZ1_MAGIC, 4)) {
		z->raw_len = z->skel_len = le_get64(p + 4);
		lz = p + JZ1_HDR;
		lz_len = len - JZ1_HDR;
	} else if (len >= JZ_HDR && !memcmp(p, JZ_MAGIC, 4)) {
		z->raw_len = le_get64(p + 4);
		z->nrefs = le_get32(p + 12);
		z->skel_len = le_get64(p + 16);
		if ((len - JZ_HDR) / JZ_REF < z->nrefs)
			return -EBADMSG;
		z->refs = p + JZ_HDR;
		lz = z->refs + (size_t)z->nrefs * JZ_REF;
		lz_len = len - JZ_HDR - (size_t)z->nrefs * JZ_REF;
		for (uint32_t k = 0; k < z->nrefs; k++) {
			uint64_t pos = ref_pos(z, k), l = ref_len(z, k);

			if (pos < end || !l || l > CHUNK_SIZE_MAX || pos + l > z->raw_len)
				return -EBADMSG;
			end = pos + l;
			removed += l;
		}
		if (z->raw_len - removed != z->skel_len)
			return -EBADMSG;
	} else {
		return -EBADMSG;
	}
	if (z->raw_len > LZ4_MAX_INPUT_SIZE || z->skel_len < JOURNAL_SEG_HDR ||
	    lz_len > LZ4_MAX_INPUT_SIZE)
		return -EBADMSG;
	z->skel = malloc(z->skel_len);
	if (!z->skel)
		return -ENOMEM;
	n = LZ4_decompress_safe((const char *)lz, (char *)z->skel, (int)lz_len, (int)z->skel_len);
	if (n < 0 || (uint64_t)n != z->skel_len) {
		free(z->skel);
		z->skel = NULL;
		return -EBADMSG;
	}
	return 0;
}

/* The segment file z holds (malloc'd, raw_len bytes): the skeleton with each ref's
 * chunk read from cs back in place. Not verified here (fetch() does it). */
static int jz_splice(struct chunk_store *cs, const struct jz *z, uint8_t **out)
{
	uint64_t rpos = 0, spos = 0;
	uint8_t *raw = malloc(z->raw_len);
	int ret = 0;

	if (!raw)
		return -ENOMEM;
	for (uint32_t k = 0; k < z->nrefs && !ret; k++) {
		uint64_t pos = ref_pos(z, k);
		uint32_t l = ref_len(z, k);
		struct chunk_id id;
		size_t got = 0;

		memcpy(raw + rpos, z->skel + spos, pos - rpos);
		spos += pos - rpos;
		rpos = pos + l;
		ref_id(z, k, &id);
		if (chunk_id_is_null(&id)) {
			memset(raw + pos, 0, l);
			continue;
		}
		ret = cs->ops->get(cs->ctx, &id, raw + pos, l, &got);
		if (!ret && got != l)
			ret = -EBADMSG;
		if (ret == -ENOENT)
			ret = -EIO; /* a chunk the segment needs is gone: 'cairn check' names it */
	}
	if (!ret)
		memcpy(raw + rpos, z->skel + spos, z->raw_len - rpos);
	if (ret) {
		free(raw);
		return ret;
	}
	*out = raw;
	return 0;
}

/* Walk the records of z without reading its refs' chunks: rec_cb gets each record
 * (payload NULL when pieces of it are refs; seg_first first, rec_pos its offset in the
 * segment file), ref_cb each ref's chunk id, before the record that holds it. A
 * non-zero return from either stops the walk (returned). -EBADMSG if the skeleton and
 * the refs do not fit together. */
static int jz_walk(const struct jz *z, uint64_t first, journal_scan_cb rec_cb,
		   int (*ref_cb)(void *arg, const struct chunk_id *id), void *arg)
{
	uint64_t rpos = JOURNAL_SEG_HDR, spos = JOURNAL_SEG_HDR, seq = first;
	uint32_t k = 0;
	int ret;

	while (spos < z->skel_len) {
		struct journal_rec rec;
		uint64_t pend, removed = 0, span;

		if (!journal_rec_peek(z->skel + spos, z->skel_len - spos, seq, &rec))
			return -EBADMSG;
		pend = rpos + JOURNAL_REC_HDR + rec.payload_len;
		for (; k < z->nrefs && ref_pos(z, k) < pend; k++) {
			struct chunk_id id;

			if (rec.type != JOURNAL_WRITE || ref_pos(z, k) < rpos + JOURNAL_REC_HDR ||
			    ref_pos(z, k) + ref_len(z, k) > pend)
				return -EBADMSG;
			removed += ref_len(z, k);
			ref_id(z, k, &id);
			if (ref_cb && (ret = ref_cb(arg, &id)))
				return ret;
		}
		span = JOURNAL_REC_HDR + rec.payload_len - removed + JOURNAL_REC_TAIL;
		if (z->skel_len - spos < span)
			return -EBADMSG;
		rec.payload = removed ? NULL : z->skel + spos + JOURNAL_REC_HDR;
		if (rec_cb && (ret = rec_cb(arg, &rec, first, rpos)))
			return ret;
		rpos += JOURNAL_REC_HDR + rec.payload_len + JOURNAL_REC_TAIL;
		spos += span;
		seq++;
	}
	return k == z->nrefs && rpos == z->raw_len ? 0 : -EBADMSG;
}

/* 1 and *id when the folds' hint names the chunk of data (len bytes, chunk number chunk
 * as record seq wrote it) and it is stored (referenced again: a running gc keeps it). */
static int known_ref(struct chunk_store *cs, const struct jstore_known *kn, uint64_t seq,
		     uint64_t chunk, const void *data, size_t len, struct chunk_id *id)
{
	uint64_t xxh;

	if (!kn || !kn->lookup(kn->arg, seq, chunk, id, &xxh) || XXH3_64bits(data, len) != xxh)
		return 0;
	if (chunk_id_is_null(id)) /* zeros: nothing stored, nothing to reference */
		return util_is_zero(data, len);
	return cs->ops->ref && cs->ops->ref(cs->ctx, id) == 0;
}

/* Build the object of segment file raw (raw_len bytes; first seq first): each whole
 * chunk (chunk_size, aligned in the volume) of a WRITE record's data is put into cs
 * (a dedup hit when a fold stored it already), or referenced when the folds' hint kn
 * (may be NULL) names it, and becomes a ref; the rest is the skeleton. The chunks put
 * are flushed before this returns (the hinted ones are durable already). chunk_size 0:
 * no refs. */
static int jz_build(struct chunk_store *cs, uint32_t chunk_size, const struct jstore_known *kn,
		    const uint8_t *raw, size_t raw_len, uint64_t first, void **out, size_t *out_len)
{
	uint8_t *refs = NULL, *skel = NULL, *o = NULL;
	uint64_t pos = JOURNAL_SEG_HDR, seq = first, sl = 0, rp = 0;
	uint32_t nrefs = 0, cap = 0, puts = 0;
	int ret = 0, bound, n;

	if (raw_len > LZ4_MAX_INPUT_SIZE || raw_len < JOURNAL_SEG_HDR)
		return -EFBIG;
	while (chunk_size && pos < raw_len) {
		struct journal_rec rec;
		uint64_t a, end;

		if (!journal_rec_peek(raw + pos, raw_len - pos, seq, &rec) ||
		    raw_len - pos - JOURNAL_REC_HDR - JOURNAL_REC_TAIL < rec.payload_len)
			break; /* cannot happen in a sealed segment; the rest stays inline */
		a = (rec.offset + chunk_size - 1) / chunk_size * chunk_size;
		end = rec.offset + (rec.type == JOURNAL_WRITE ? rec.payload_len : 0);
		for (; a + chunk_size <= end; a += chunk_size) {
			uint64_t ppos = pos + JOURNAL_REC_HDR + (a - rec.offset);
			struct chunk_id id;

			if (nrefs == cap) {
				uint8_t *nr = realloc(refs, (size_t)(cap = cap ? cap * 2 : 256) * JZ_REF);

				if (!nr) {
					ret = -ENOMEM;
					goto out;
				}
				refs = nr;
			}
			if (!known_ref(cs, kn, rec.seq, a / chunk_size, raw + ppos, chunk_size, &id)) {
				puts++;
				ret = cs->ops->put(cs->ctx,
						   (enum chunk_kind)(CHUNK_DATA | CHUNK_PUT_FAST),
						   raw + ppos, chunk_size, &id);
				if (ret)
					goto out;
			}
			le_put64(refs + (size_t)nrefs * JZ_REF, ppos);
			le_put32(refs + (size_t)nrefs * JZ_REF + 8, chunk_size);
			memcpy(refs + (size_t)nrefs * JZ_REF + 12, id.b, CHUNK_ID_LEN);
			nrefs++;
		}
		pos += JOURNAL_REC_HDR + (uint64_t)rec.payload_len + JOURNAL_REC_TAIL;
		seq++;
	}
	/* what the hint named is durable already (jstore_known); what was put is made so */
	if (puts && (ret = cs->ops->flush(cs->ctx)))
		goto out;
	if (nrefs) {
		skel = malloc(raw_len - (uint64_t)nrefs * chunk_size);
		if (!skel) {
			ret = -ENOMEM;
			goto out;
		}
		for (uint32_t k = 0; k < nrefs; k++) {
			uint64_t p = le_get64(refs + (size_t)k * JZ_REF);

			memcpy(skel + sl, raw + rp, p - rp);
			sl += p - rp;
			rp = p + chunk_size;
		}
		memcpy(skel + sl, raw + rp, raw_len - rp);
		sl += raw_len - rp;
	} else {
		sl = raw_len; /* no refs (small random writes): the file is the skeleton */
	}
	bound = LZ4_compressBound((int)sl);
	o = malloc(JZ_HDR + (size_t)nrefs * JZ_REF + (size_t)bound);
	if (!o) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(o, JZ_MAGIC, 4);
	le_put64(o + 4, raw_len);
	le_put32(o + 12, nrefs);
	le_put64(o + 16, sl);
	if (nrefs)
		memcpy(o + JZ_HDR, refs, (size_t)nrefs * JZ_REF);
	n = LZ4_compress_default(skel ? (const char *)skel : (const char *)raw,
				 (char *)o + JZ_HDR + (size_t)nrefs * JZ_REF, (int)sl, bound);
	if (n <= 0) {
		ret = -EIO;
		goto out;
	}
	*out = o;
	*out_len = JZ_HDR + (size_t)nrefs * JZ_REF + (size_t)n;
	o = NULL;
out:
	free(o);
	free(skel);
	free(refs);
	return ret;
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
	       const struct journal_seginfo *si, uint32_t chunk_size,
	       const struct jstore_known *known)
{
	struct jstore_seg s = { si->first, si->next, si->created_ns, si->bytes };
	char path[4096], key[128];
	void *data, *obj;
	size_t len, obj_len;
	struct stat st;
	int ret, fd;

	snprintf(path, sizeof(path), "%s/%016" PRIx64 ".log", jdir, si->first);
	/* mapped, not read: a sealed segment never changes, and a 64 MiB read would be
	 * copied and its buffer's pages zeroed for every upload */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	len = (size_t)st.st_size;
	data = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
	ret = data == MAP_FAILED ? (len ? -errno : -EBADMSG) : 0;
	close(fd);
	if (ret)
		return ret;
	madvise(data, len, MADV_SEQUENTIAL);
	ret = jz_build(cs, chunk_size, known, data, len, si->first, &obj, &obj_len);
	munmap(data, len);
	if (ret)
		return ret;
	seg_key(volid, &s, key, sizeof(key));
	ret = cs->ops->meta_put(cs->ctx, key, obj, obj_len, BACKEND_PUT_EXCL);
	free(obj);
	return ret == -EEXIST ? 0 : ret;
}

/* Get stored segment s and take it apart (*data: the object, which z points into). */
static int get_open(struct chunk_store *cs, const char *volid, const struct jstore_seg *s,
		    void **data, struct jz *z)
{
	char key[128];
	size_t len;
	int ret;

	seg_key(volid, s, key, sizeof(key));
	ret = cs->ops->meta_get(cs->ctx, key, data, &len);
	if (ret)
		return ret;
	ret = jz_open(*data, len, z);
	if (ret) {
		if (ret == -EBADMSG)
			log_warn("jstore", "journal segment %s is damaged", key);
		free(*data);
	}
	return ret;
}

int jstore_verify(struct chunk_store *cs, const char *volid, const struct jstore_seg *s)
{
	struct jz z;
	void *data;
	int ret = get_open(cs, volid, s, &data, &z);

	if (ret)
		return ret;
	ret = jz_walk(&z, s->first, NULL, NULL, NULL);
	free(z.skel);
	free(data);
	return ret;
}

int jstore_walk(struct chunk_store *cs, const char *volid, const struct jstore_seg *s,
		journal_scan_cb rec_cb, int (*ref_cb)(void *arg, const struct chunk_id *id),
		void *arg)
{
	struct jz z;
	void *data;
	int ret = get_open(cs, volid, s, &data, &z);

	if (ret)
		return ret;
	ret = jz_walk(&z, s->first, rec_cb, ref_cb, arg);
	free(z.skel);
	free(data);
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
	char path[4096], tmp[4200];
	uint8_t vid[16], *raw = NULL;
	struct jz z;
	void *data;
	int ret, fd;

	if (util_unhex(volid, vid, sizeof(vid)))
		return -EINVAL;
	ret = util_mkdirs(dir, 0700);
	if (ret)
		return ret;
	ret = get_open(cs, volid, s, &data, &z);
	if (ret)
		return ret;
	ret = jz_splice(cs, &z, &raw);
	free(z.skel);
	free(data);
	/* every record, with the chunks spliced back in, against its XXH3 chain */
	if (!ret && journal_segment_check_buf(raw, z.raw_len, s->first, vid))
		ret = -EBADMSG;
	if (ret) {
		log_warn("jstore", "cannot rebuild journal segment %" PRIu64 " of volume %s "
			 "from the repository: %s", s->first, volid, strerror(-ret));
		goto out_free;
	}
	snprintf(path, sizeof(path), "%s/%016" PRIx64 ".log", dir, s->first);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out_free;
	}
	ret = util_write_all(fd, raw, z.raw_len);
	close(fd);
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret) {
		unlink(tmp);
		log_warn("jstore", "cannot fetch journal segment %s: %s", path, strerror(-ret));
	}
out_free:
	free(raw);
	return ret;
}

/* 1 and *first when name is a segment file's, "<016x first seq>.log"; else 0. */
static int seg_file_first(const char *name, uint64_t *first)
{
	char *end;

	if (strlen(name) != 20 || strcmp(name + 16, ".log"))
		return 0;
	*first = strtoull(name, &end, 16);
	return end == name + 16;
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

		if (!seg_file_first(de->d_name, &first))
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

struct cfile {
	uint64_t first, size;
	struct timespec mtime;
};

static int cmp_cfile(const void *a, const void *b)
{
	const struct cfile *x = a, *y = b;

	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : x->mtime.tv_nsec > y->mtime.tv_nsec;
}

int jstore_cache_trim(const char *cache_dir, uint64_t max_bytes, const struct jstore_seg *pinned,
		      unsigned npinned)
{
	struct cfile *f = NULL;
	unsigned n = 0, cap = 0;
	uint64_t total = 0;
	char path[4096];
	struct dirent *de;
	DIR *d = opendir(cache_dir);
	int ret = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		struct stat st;
		uint64_t first;

		if (!seg_file_first(de->d_name, &first))
			continue;
		snprintf(path, sizeof(path), "%s/%s", cache_dir, de->d_name);
		if (stat(path, &st))
			continue; /* gone meanwhile */
		if (n == cap) {
			struct cfile *nf = realloc(f, (cap = cap ? cap * 2 : 64) * sizeof(*f));

			if (!nf) {
				ret = -ENOMEM;
				goto out;
			}
			f = nf;
		}
		f[n++] = (struct cfile){ first, (uint64_t)st.st_size, st.st_mtim };
		total += (uint64_t)st.st_size;
	}
	if (total <= max_bytes)
		goto out;
	qsort(f, n, sizeof(*f), cmp_cfile);
	for (unsigned i = 0; i < n && total > max_bytes; i++) {
		unsigned k = 0;

		while (k < npinned && pinned[k].first != f[i].first)
			k++;
		if (k < npinned)
			continue;
		snprintf(path, sizeof(path), "%s/%016" PRIx64 ".log", cache_dir, f[i].first);
		if (!unlink(path))
			total -= f[i].size;
	}
out:
	closedir(d);
	free(f);
	return ret;
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
	for (unsigned i = lo; i < hi && !ret; i++) {
		char path[4096];

		/* a fetched copy in use is recently used (the trim below goes by mtime) */
		snprintf(path, sizeof(path), "%s/%016" PRIx64 ".log", v->dir[1], segs[i].first);
		if (!present(v, segs[i].first))
			ret = fetch(cs, volid, &segs[i], v->dir[1]);
		else
			(void)utimensat(AT_FDCWD, path, NULL, 0);
	}
	if (!ret)
		ret = jstore_cache_trim(v->dir[1], JSTORE_CACHE_MAX, segs + lo, hi - lo);
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
