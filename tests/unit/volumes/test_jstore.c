/* Unit tests of volumes/jstore.c: journal segments stored in a real local repository.
 *
 * One sealed segment holds every record shape: WRITEs of whole aligned chunks, of a
 * partial chunk, unaligned across a chunk, of a zero chunk, the same data twice, and
 * COPY, RESTORE, ZERO and FLUSH records. Checked:
 *   - the stored object is thin: the whole chunks are chunk references, so the object
 *     is a fraction of the segment file; jstore_walk reports every record (whole
 *     payloads for COPY and RESTORE, none for a WRITE held by reference) and every
 *     reference, without reading a chunk;
 *   - a fetch rebuilds the segment file byte for byte;
 *   - an object in the older format (the whole file LZ4-compressed, "CJZ1") is still
 *     read;
 *   - the folds' hint (ids they computed) is used only when its hash matches the
 *     record's bytes and the chunk is stored (else the data is put);
 *   - the fetch cache is bounded: least recently used copies go first, pinned never;
 *   - bad input loses nothing and leaves no file behind: a chunk that reads back wrong
 *     (a fault-injecting store in front of the repository flips a byte) is caught by
 *     the record chain (-EBADMSG), a chunk that is gone gives -EIO, and a damaged
 *     object is refused by verify, walk and fetch alike (-EBADMSG). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lz4.h>
#include <xxhash.h>

#include "check.h"
#include "journal.h"
#include "jstore.h"
#include "le.h"
#include "log.h"
#include "util.h"
#include "vtest.h"

#define CS (64u << 10)

static const uint8_t volid[16] = { 0xa1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

/* ---- a fault-injecting store in front of the real one ---- */
enum fault { F_NONE, F_FLIP, F_GONE };
static struct chunk_store *real;
static enum fault fault;
static struct chunk_store_ops fops;

static int fault_get(void *ctx, const struct chunk_id *id, void *buf, size_t cap, size_t *len)
{
	int ret;

	(void)ctx;
	if (fault == F_GONE)
		return -ENOENT;
	ret = real->ops->get(real->ctx, id, buf, cap, len);
	if (!ret && fault == F_FLIP && *len)
		((uint8_t *)buf)[*len / 2] ^= 0x40;
	return ret;
}

static unsigned refs_ok, refs_missed;

static int count_ref(void *ctx, const struct chunk_id *id)
{
	int ret = real->ops->ref(ctx, id);

	if (ret)
		refs_missed++;
	else
		refs_ok++;
	return ret;
}

static void faulty(struct chunk_store *under, struct chunk_store *out)
{
	real = under;
	fops = *under->ops;
	fops.get = fault_get;
	fops.ref = count_ref;
	out->ops = &fops;
	out->ctx = under->ctx;
}

/* ---- helpers ---- */

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t r = vt_rand(&seed);

		memcpy(p + i, &r, MIN(8, n - i));
	}
}

static int file_eq(const char *a, const char *b)
{
	void *x, *y;
	size_t xl, yl;
	int eq;

	if (util_read_file(a, &x, &xl))
		return 0;
	if (util_read_file(b, &y, &yl)) {
		free(x);
		return 0;
	}
	eq = xl == yl && !memcmp(x, y, xl);
	free(x);
	free(y);
	return eq;
}

/* Files in dir (0 if it does not exist). */
static unsigned files_in(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

struct walked {
	unsigned recs, writes_thin, writes_whole, refs, nulls, copies, restores;
	uint8_t restore_root[32];
};

static int rec_cb(void *arg, const struct journal_rec *r, uint64_t seg_first, uint64_t pos)
{
	struct walked *w = arg;

	(void)seg_first;
	(void)pos;
	w->recs++;
	if (r->type == JOURNAL_WRITE) {
		if (r->payload)
			w->writes_whole++;
		else
			w->writes_thin++;
	} else if (r->type == JOURNAL_COPY) {
		struct journal_copy jc;

		if (r->payload && !journal_copy_parse(r, &jc) && jc.count == 1)
			w->copies++;
	} else if (r->type == JOURNAL_RESTORE && r->payload && r->payload_len == 32) {
		memcpy(w->restore_root, r->payload, 32);
		w->restores++;
	}
	return 0;
}

static int ref_cb(void *arg, const struct chunk_id *id)
{
	struct walked *w = arg;

	w->refs++;
	w->nulls += chunk_id_is_null(id);
	return 0;
}

/* The common setup: a repository (t), the volume id in hex (vid), the journal directory
 * (jdir, opened as *j) and a view (v) of an empty live directory and the fetch cache
 * (cdir); the strings are 160-byte buffers. */
static void setup(struct vt *t, char vid[33], char *jdir, char *empty, char *cdir,
		  struct journal_view *v, struct journal **j)
{
	CHECK_EQ(vt_init(t), 0);
	CHECK_EQ(vt_open(t), 0);
	util_hex(volid, 16, vid);
	snprintf(jdir, 160, "%s/journal", t->dir);
	snprintf(empty, 160, "%s/empty", t->dir);
	snprintf(cdir, 160, "%s/jcache", t->dir);
	mkdir(empty, 0700);
	v->dir[0] = empty;
	v->dir[1] = cdir;
	CHECK_EQ(journal_open(jdir, volid, 1, 0, j), 0);
}

/* Seal the journal: its one sealed segment in *si (malloc'd), the path of its file in
 * src and of its fetched copy in dst (200-byte buffers). 0, or -1 (checked) if there is
 * not exactly one. */
static int seal_one(struct journal *j, const char *jdir, const char *cdir,
		    struct journal_seginfo **si, char *src, char *dst)
{
	unsigned n = 0;

	CHECK_EQ(journal_seal(j), 0);
	CHECK_EQ(journal_sealed(j, si, &n), 0);
	CHECK_EQ(n, 1);
	if (n != 1)
		return -1;
	snprintf(src, 200, "%s/%016" PRIx64 ".log", jdir, (*si)[0].first);
	snprintf(dst, 200, "%s/%016" PRIx64 ".log", cdir, (*si)[0].first);
	return 0;
}

static void test_thin_round_trip(void)
{
	struct vt t;
	struct journal *j;
	struct journal_seginfo *si = NULL;
	struct jstore_seg *segs = NULL;
	struct chunk_store bad;
	struct journal_view v = { { NULL, NULL } };
	char vid[33], jdir[160], empty[160], cdir[160], src[200], dst[200], key[160];
	uint8_t *d = malloc(4 * CS), copy[JOURNAL_COPY_HDR + 32], root[32];
	struct journal_copy jc = { .src_offset = 0, .chunk_size = CS, .count = 1 };
	struct walked w = { 0 };
	unsigned n = 0;
	uint64_t seq;
	void *obj = NULL;
	size_t obj_len = 0;

	setup(&t, vid, jdir, empty, cdir, &v, &j);
	fill(d, 4 * CS, 7);
	/* two whole chunks */
	CHECK_EQ(journal_append(j, JOURNAL_WRITE, 0, 2 * CS, d, 2 * CS, &seq), 0);
	/* part of a chunk: inline */
	CHECK_EQ(journal_append(j, JOURNAL_WRITE, 4096, 4096, d + CS, 4096, &seq), 0);
	/* unaligned, two chunks long: one whole chunk inside */
	CHECK_EQ(journal_append(j, JOURNAL_WRITE, 3 * CS + 512, 2 * CS, d + CS, 2 * CS, &seq), 0);
	/* a whole chunk of zeros: the null id */
	memset(d + 3 * CS, 0, CS);
	CHECK_EQ(journal_append(j, JOURNAL_WRITE, 6 * CS, CS, d + 3 * CS, CS, &seq), 0);
	/* the first chunk again (a dedup hit) */
	CHECK_EQ(journal_append(j, JOURNAL_WRITE, 8 * CS, CS, d, CS, &seq), 0);
	memcpy(jc.src_volid, volid, 16);
	journal_copy_encode(copy, &jc);
	fill(copy + JOURNAL_COPY_HDR, 32, 9);
	CHECK_EQ(journal_append(j, JOURNAL_COPY, 10 * CS, CS, copy, sizeof(copy), &seq), 0);
	fill(root, 32, 11);
	CHECK_EQ(journal_append(j, JOURNAL_RESTORE, 0, 0, root, 32, &seq), 0);
	CHECK_EQ(journal_append(j, JOURNAL_ZERO, 0, CS, NULL, 0, &seq), 0);
	CHECK_EQ(journal_append(j, JOURNAL_FLUSH, 0, 0, NULL, 0, &seq), 0);
	if (seal_one(j, jdir, cdir, &si, src, dst))
		goto out;

	CHECK_EQ(jstore_put(&t.cs, vid, jdir, &si[0], CS, NULL), 0);
	CHECK_EQ(jstore_put(&t.cs, vid, jdir, &si[0], CS, NULL), 0); /* stored: a no-op */
	CHECK_EQ(jstore_list(&t.cs, vid, &segs, &n), 0);
	CHECK_EQ(n, 1);
	if (n != 1)
		goto out;
	fprintf(stderr, "  segment file %" PRIu64 " bytes, stored object %" PRIu64 " bytes\n",
		si[0].bytes, segs[0].bytes);
	/* the inline data left: 4 KiB + 64 KiB of random bytes, and the headers */
	CHECK(segs[0].bytes < si[0].bytes / 4);
	CHECK_EQ(jstore_verify(&t.cs, vid, &segs[0]), 0);

	CHECK_EQ(jstore_walk(&t.cs, vid, &segs[0], rec_cb, ref_cb, &w), 0);
	CHECK_EQ(w.recs, 9);
	CHECK_EQ(w.writes_thin, 4);
	CHECK_EQ(w.writes_whole, 1);
	CHECK_EQ(w.refs, 5);
	CHECK_EQ(w.nulls, 1);
	CHECK_EQ(w.copies, 1);
	CHECK_EQ(w.restores, 1);
	CHECK_MEM(w.restore_root, root, 32);

	/* fetch: byte for byte */
	CHECK_EQ(jstore_prepare(&t.cs, vid, &v, 0, UINT64_MAX, 0, 0), 0);
	CHECK(file_eq(src, dst));

	/* a chunk that reads back wrong, a chunk that is gone: refused, nothing left */
	faulty(&t.cs, &bad);
	fault = F_FLIP;
	unlink(dst);
	CHECK_EQ(jstore_prepare(&bad, vid, &v, 0, UINT64_MAX, 0, 0), -EBADMSG);
	CHECK_EQ(files_in(cdir), 0);
	fault = F_GONE;
	CHECK_EQ(jstore_prepare(&bad, vid, &v, 0, UINT64_MAX, 0, 0), -EIO);
	CHECK_EQ(files_in(cdir), 0);
	fault = F_NONE;
	CHECK_EQ(jstore_prepare(&bad, vid, &v, 0, UINT64_MAX, 0, 0), 0);
	CHECK(file_eq(src, dst));

	/* a damaged object: the tail of its skeleton cut off */
	snprintf(key, sizeof(key), "journal/%s/%016" PRIx64 ".%016" PRIx64 ".%016" PRIx64, vid,
		 si[0].first, si[0].next, si[0].created_ns);
	CHECK_EQ(t.cs.ops->meta_get(t.cs.ctx, key, &obj, &obj_len), 0);
	CHECK_EQ(jstore_del(&t.cs, vid, &segs[0]), 0);
	CHECK_EQ(t.cs.ops->meta_put(t.cs.ctx, key, obj, obj_len - 40, BACKEND_PUT_EXCL), 0);
	unlink(dst);
	CHECK_EQ(jstore_verify(&t.cs, vid, &segs[0]), -EBADMSG);
	CHECK_EQ(jstore_walk(&t.cs, vid, &segs[0], rec_cb, ref_cb, &w), -EBADMSG);
	CHECK_EQ(jstore_prepare(&t.cs, vid, &v, 0, UINT64_MAX, 0, 0), -EBADMSG);
	CHECK_EQ(files_in(cdir), 0);
	/* a reference moved into a record header */
	le_put64((uint8_t *)obj + 24, 64);
	CHECK_EQ(jstore_del(&t.cs, vid, &segs[0]), 0);
	CHECK_EQ(t.cs.ops->meta_put(t.cs.ctx, key, obj, obj_len, BACKEND_PUT_EXCL), 0);
	CHECK_EQ(jstore_verify(&t.cs, vid, &segs[0]), -EBADMSG);
	CHECK_EQ(jstore_prepare(&t.cs, vid, &v, 0, UINT64_MAX, 0, 0), -EBADMSG);
	CHECK_EQ(files_in(cdir), 0);

	/* the older format: the whole file as one LZ4 block */
	{
		void *raw;
		size_t raw_len;
		uint8_t *o;
		int bound, c;

		CHECK_EQ(util_read_file(src, &raw, &raw_len), 0);
		bound = LZ4_compressBound((int)raw_len);
		o = malloc(12 + (size_t)bound);
		memcpy(o, "CJZ1", 4);
		le_put64(o + 4, raw_len);
		c = LZ4_compress_default(raw, (char *)o + 12, (int)raw_len, bound);
		CHECK(c > 0);
		CHECK_EQ(jstore_del(&t.cs, vid, &segs[0]), 0);
		CHECK_EQ(t.cs.ops->meta_put(t.cs.ctx, key, o, 12 + (size_t)c, BACKEND_PUT_EXCL), 0);
		memset(&w, 0, sizeof(w));
		CHECK_EQ(jstore_walk(&t.cs, vid, &segs[0], rec_cb, ref_cb, &w), 0);
		CHECK_EQ(w.recs, 9);
		CHECK_EQ(w.writes_whole, 5);
		CHECK_EQ(w.refs, 0);
		CHECK_EQ(w.restores, 1);
		CHECK_EQ(jstore_prepare(&t.cs, vid, &v, 0, UINT64_MAX, 0, 0), 0);
		CHECK(file_eq(src, dst));
		free(o);
		free(raw);
	}
out:
	free(obj);
	free(segs);
	free(si);
	journal_close(j);
	free(d);
	vt_fini(&t);
}

/* ---- the folds' hint (jstore_known) ---- */
struct hint {
	uint64_t seq, chunk, xxh;
	struct chunk_id id;
	unsigned asked;
};

static int hint_lookup(void *arg, uint64_t seq, uint64_t chunk, struct chunk_id *id,
		       uint64_t *xxh)
{
	struct hint *h = arg;

	h->asked++;
	if (seq != h->seq || chunk != h->chunk)
		return 0;
	*id = h->id;
	*xxh = h->xxh;
	return 1;
}

/* A hint is used only when its hash matches the record's bytes and the chunk is stored;
 * else the data is put: the segment rebuilds byte for byte every time. */
static void test_hint(void)
{
	struct vt t;
	struct journal *j;
	struct journal_seginfo *si = NULL;
	struct jstore_seg *segs = NULL;
	struct chunk_store cs;
	struct journal_view v = { { NULL, NULL } };
	struct hint h = { 0 };
	struct jstore_known kn = { hint_lookup, &h };
	char vid[33], jdir[160], empty[160], cdir[160], src[200], dst[200];
	uint8_t *d = malloc(2 * CS);
	unsigned n = 0;
	uint64_t seq;

	setup(&t, vid, jdir, empty, cdir, &v, &j);
	faulty(&t.cs, &cs);
	fault = F_NONE;
	fill(d, 2 * CS, 21);
	CHECK_EQ(journal_append(j, JOURNAL_WRITE, 5 * CS, 2 * CS, d, 2 * CS, &seq), 0);
	if (seal_one(j, jdir, cdir, &si, src, dst))
		goto out;

	for (int round = 0; round < 4; round++) {
		/* 0: a right hint for chunk 6 (the record's second chunk), stored: used;
		 * 1: the same id, but a hash of other bytes: ignored, the data put;
		 * 2: a hash that matches, an id no pack holds: ref misses, the data put;
		 * 3: the null id (zeros) for bytes that are not zeros: the data put */
		h.seq = seq;
		h.chunk = 6;
		h.xxh = XXH3_64bits(d + CS, CS);
		CHECK_EQ(t.cs.ops->put(t.cs.ctx, CHUNK_DATA, d + CS, CS, &h.id), 0);
		if (round == 1)
			h.xxh ^= 1;
		if (round == 2)
			fill(h.id.b, CHUNK_ID_LEN, 99);
		if (round == 3)
			memset(h.id.b, 0, CHUNK_ID_LEN);
		refs_ok = refs_missed = h.asked = 0;
		CHECK_EQ(jstore_put(&cs, vid, jdir, &si[0], CS, &kn), 0);
		CHECK_EQ(h.asked, 2);
		CHECK_EQ(refs_ok, round == 0 ? 1 : 0);
		CHECK_EQ(refs_missed, round == 2 ? 1 : 0);
		unlink(dst);
		CHECK_EQ(jstore_prepare(&t.cs, vid, &v, 0, UINT64_MAX, 0, 0), 0);
		CHECK(file_eq(src, dst));
		CHECK_EQ(jstore_list(&t.cs, vid, &segs, &n), 0);
		CHECK_EQ(n, 1);
		if (n == 1)
			CHECK_EQ(jstore_del(&t.cs, vid, &segs[0]), 0);
		free(segs);
		segs = NULL;
	}
out:
	free(si);
	journal_close(j);
	free(d);
	vt_fini(&t);
}

/* A segment of small writes only: no whole chunk, no ref; the file is the skeleton. */
static void test_no_refs(void)
{
	struct vt t;
	struct journal *j;
	struct journal_seginfo *si = NULL;
	struct jstore_seg *segs = NULL;
	struct journal_view v = { { NULL, NULL } };
	struct walked w = { 0 };
	char vid[33], jdir[160], empty[160], cdir[160], src[200], dst[200];
	uint8_t d[4096];
	unsigned n = 0;
	uint64_t seq;

	setup(&t, vid, jdir, empty, cdir, &v, &j);
	for (int i = 0; i < 16; i++) {
		fill(d, sizeof(d), 40 + (uint64_t)i);
		CHECK_EQ(journal_append(j, JOURNAL_WRITE, (uint64_t)i * 3 * 4096, 4096, d, 4096, &seq), 0);
	}
	if (seal_one(j, jdir, cdir, &si, src, dst))
		goto out;
	CHECK_EQ(jstore_put(&t.cs, vid, jdir, &si[0], CS, NULL), 0);
	CHECK_EQ(jstore_list(&t.cs, vid, &segs, &n), 0);
	CHECK_EQ(n, 1);
	if (n != 1)
		goto out;
	CHECK_EQ(jstore_walk(&t.cs, vid, &segs[0], rec_cb, ref_cb, &w), 0);
	CHECK_EQ(w.recs, 16);
	CHECK_EQ(w.writes_whole, 16);
	CHECK_EQ(w.refs, 0);
	CHECK_EQ(jstore_prepare(&t.cs, vid, &v, 0, UINT64_MAX, 0, 0), 0);
	CHECK(file_eq(src, dst));
out:
	free(segs);
	free(si);
	journal_close(j);
	vt_fini(&t);
}

/* The fetch cache stays bounded: least recently used copies go first, pinned ones never;
 * jstore_prepare keeps what it needs and trims the rest to JSTORE_CACHE_MAX. */
static void test_cache_trim(void)
{
	char dir[] = "/tmp/cairn-jcache-XXXXXX", path[128];
	struct jstore_seg pin[1] = { { .first = 0x30 } };
	unsigned i;

	CHECK(mkdtemp(dir) != NULL);
	/* five 1000-byte copies, first seqs 0x10..0x50, used in that order (0x10 oldest) */
	for (i = 1; i <= 5; i++) {
		struct timespec ts[2] = { { 1000 + i, 0 }, { 1000 + i, 0 } };
		FILE *fp;

		snprintf(path, sizeof(path), "%s/%016x.log", dir, i * 0x10);
		fp = fopen(path, "w");
		for (int k = 0; fp && k < 1000; k++)
			fputc('x', fp);
		if (fp)
			fclose(fp);
		CHECK_EQ(utimensat(AT_FDCWD, path, ts, 0), 0);
	}
	snprintf(path, sizeof(path), "%s/other.txt", dir); /* not a copy: left alone */
	fclose(fopen(path, "w"));
	CHECK_EQ(jstore_cache_trim(dir, 5000, NULL, 0), 0);
	CHECK_EQ(files_in(dir), 6);
	/* 2500 bytes: 0x10, 0x20 go (oldest); 0x30 is pinned; 0x40 goes; 0x50 stays */
	CHECK_EQ(jstore_cache_trim(dir, 2500, pin, 1), 0);
	CHECK_EQ(files_in(dir), 3);
	for (i = 1; i <= 5; i++) {
		snprintf(path, sizeof(path), "%s/%016x.log", dir, i * 0x10);
		CHECK_EQ(access(path, F_OK) == 0, i == 3 || i == 5);
	}
	/* nothing unpinned left to delete: over the bound, but the pinned copy stays */
	CHECK_EQ(jstore_cache_trim(dir, 0, pin, 1), 0);
	snprintf(path, sizeof(path), "%s/%016x.log", dir, 0x30);
	CHECK_EQ(access(path, F_OK), 0);
	CHECK_EQ(files_in(dir), 2);
	CHECK_EQ(jstore_cache_trim("/tmp/cairn-jcache-does-not-exist", 0, NULL, 0), 0);
	vt_rmtree(dir);
}

int main(void)
{
	log_init();
	RUN(test_thin_round_trip);
	RUN(test_hint);
	RUN(test_no_refs);
	RUN(test_cache_trim);
	return check_result();
}
