/* index.c - the chunk index: a bounded-RAM table (in-memory filter, sorted runs in
 * local files, a small table of recent changes) and the index segments.
 *
 * ---- Index segment "index/<32 hex pack id>", written once after its pack is durable.
 * All integers little-endian:
 *   off len  field
 *     0   8  magic      "CAIRNIDX"
 *     8   4  version    1
 *    12   4  count      entries that follow
 *    16  16  pack_id    the pack this segment describes
 *    32      count entries of 56 bytes, encoded as in the pack trailer (pack.c):
 *            id[32], kind u8, reserved[3], rec_len u32, offset u64, plain_len u32, reserved u32
 *   end   8  checksum   XXH3_64bits of every byte before it
 *
 * Encrypted repository: the object is these bytes sealed under the meta key with the
 * segment's object key "index/<32 hex>" as aad (envelope in aead.h).
 * A missing or damaged segment is rebuilt from its pack's trailer at open (repo.c).
 *
 * ---- The table (RAM: a few bytes per chunk)
 * Two parts, newest first; a lookup stops at the first that knows the id:
 *  1. mem: an open-addressing hash table (linear probing, 56 bytes a slot) of at most
 *     mem_max (8192) recent inserts, replacements and removals (tombstones).
 *     When full it is written as a new run.
 *  2. runs: sorted files, newest first. After a run is added, the two newest are merged
 *     while the older is less than twice the newer (a binary counter: about log2(n/8192)
 *     runs, each record rewritten about log2(n/8192) times); a merge into the oldest
 *     run drops tombstones. RAM per run, built while the run is written:
 *     - a blocked Bloom filter of its records (tombstones included: they must shadow
 *       older runs): 512-bit blocks, 8 bits set per id, 10 bits per record (1.25 bytes;
 *       about 1% false positives). Ids are SHA-256/HMAC outputs: the block comes from
 *       id bytes 8..11 and the bits from bytes 16..31. "In no filter" answers a dedup
 *       miss without IO, and a hit reads about one page.
 *     - one 8-byte fence per 4 KiB page (0.11 byte per record).
 *
 * Run file (created in the directory given to index_open, unlinked at once: it lives
 * as long as its descriptor, and a crash leaves nothing behind; repo_open rebuilds the
 * table from the index segments). A sequence of 4096-byte pages, read with pread (the
 * page cache caches; nothing is mapped, so the process RSS stays small):
 *   off  len  field
 *     0  4032 72 records of 56 bytes, sorted by id across the whole file (unused
 *             records of the last page are zero)
 *  4032    56 zero
 *  4088     8 checksum  XXH3_64bits of bytes 0..4087 of the page
 * Record (little-endian):
 *     0   32 id
 *    32    4 pack       pack slot
 *    36    4 offset
 *    40    4 rec_len
 *    44    4 plain_len
 *    48    4 entry      ordinal in the pack's trailer
 *    52    1 kind
 *    53    1 flags      bit 0: tombstone (the id was removed; older runs are shadowed)
 *    54    2 zero
 * A page whose checksum fails makes the lookups that need it return -EIO: never a wrong
 * location.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "index.h"
#include "le.h"
#include "log.h"
#include "util.h"

static const uint8_t seg_magic[8] = { 'C', 'A', 'I', 'R', 'N', 'I', 'D', 'X' };
#define SEG_VERSION 1
#define SEG_HDR_LEN 32u

#define EMPTY UINT32_MAX        /* loc.pack of a free mem slot */
#define TOMB (UINT32_MAX - 1)   /* loc.pack of a removal in mem */
#define REC_LEN 56u
#define PAGE_LEN 4096u
#define PAGE_RECS 72u
#define PAGE_SUM_OFF (PAGE_LEN - 8u)
#define IO_PAGES 64u            /* pages per read or write while merging */
#define MAX_RUNS 40u
#define MEM_MAX_DEFAULT 8192u
#define MEM_CAP_DEFAULT 16384u  /* slots: MEM_MAX_DEFAULT at under 70% load */
#define FILTER_BITS 10u         /* filter bits per run record */
#define FLAG_TOMB 1u

struct slot {
	struct chunk_id id;
	struct index_loc loc; /* loc.pack == EMPTY: free slot; TOMB: removed */
};

struct run {
	int fd;
	uint64_t n;      /* records */
	uint64_t pages;
	uint64_t *fence; /* big-endian first 8 id bytes of the first record of each page */
	uint64_t *filter; /* fblocks blocks of 8 words */
	uint64_t fblocks;
};

struct index {
	char dir[PATH_MAX];
	struct slot *slots;       /* mem */
	size_t mask, used, mem_max;
	struct run runs[MAX_RUNS]; /* oldest first */
	unsigned nruns;
	size_t count;
	int warned;
};

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* ---- filter ---- */

static uint64_t *filter_block(uint64_t *f, uint64_t nb, const uint8_t *id)
{
	return f + 8 * (((uint64_t)le_get32(id + 8) * nb) >> 32);
}

static void filter_add(uint64_t *f, uint64_t nb, const uint8_t *id)
{
	uint64_t *blk = filter_block(f, nb, id);

	for (int k = 0; k < 8; k++) {
		unsigned v = le_get16(id + 16 + 2 * k) & 511u;

		blk[v >> 6] |= 1ull << (v & 63);
	}
}

static int filter_maybe(const struct run *r, const uint8_t *id)
{
	const uint64_t *blk = filter_block(r->filter, r->fblocks, id);

	for (int k = 0; k < 8; k++) {
		unsigned v = le_get16(id + 16 + 2 * k) & 511u;

		if (!(blk[v >> 6] & (1ull << (v & 63))))
			return 0;
	}
	return 1;
}

/* ---- mem ---- */

static size_t id_hash(const struct chunk_id *id)
{
	uint64_t h;

	memcpy(&h, id->b, sizeof(h));
	return (size_t)h;
}

static int mem_alloc(struct index *ix, size_t cap)
{
	struct slot *s = malloc(cap * sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++)
		s[i].loc.pack = EMPTY;
	ix->slots = s;
	ix->mask = cap - 1;
	return 0;
}

static struct slot *mem_find(const struct index *ix, const struct chunk_id *id)
{
	for (size_t i = id_hash(id) & ix->mask;; i = (i + 1) & ix->mask) {
		struct slot *s = &ix->slots[i];

		if (s->loc.pack == EMPTY || memcmp(s->id.b, id->b, CHUNK_ID_LEN) == 0)
			return s;
	}
}

static int mem_grow(struct index *ix)
{
	struct slot *old = ix->slots;
	size_t old_cap = ix->mask + 1;
	int rc;

	rc = mem_alloc(ix, old_cap * 2);
	if (rc)
		return rc;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].loc.pack != EMPTY)
			*mem_find(ix, &old[i].id) = old[i];
	free(old);
	return 0;
}

/* Set id's entry in mem (loc->pack may be TOMB). */
static int mem_put(struct index *ix, const struct chunk_id *id, const struct index_loc *loc)
{
	struct slot *s = mem_find(ix, id);
	int rc;

	if (s->loc.pack == EMPTY) {
		if ((ix->used + 1) * 10 > (ix->mask + 1) * 7) {
			rc = mem_grow(ix);
			if (rc)
				return rc;
			s = mem_find(ix, id);
		}
		ix->used++;
	}
	s->id = *id;
	s->loc = *loc;
	return 0;
}

/* ---- runs ---- */

static void rec_encode(uint8_t *p, const uint8_t *id, const struct index_loc *loc, int tomb)
{
	memcpy(p, id, CHUNK_ID_LEN);
	le_put32(p + 32, loc->pack);
	le_put32(p + 36, loc->offset);
	le_put32(p + 40, loc->rec_len);
	le_put32(p + 44, loc->plain_len);
	le_put32(p + 48, loc->entry);
	p[52] = loc->kind;
	p[53] = tomb ? FLAG_TOMB : 0;
	p[54] = p[55] = 0;
}

static void rec_decode(const uint8_t *p, struct index_loc *loc)
{
	memset(loc, 0, sizeof(*loc));
	loc->pack = le_get32(p + 32);
	loc->offset = le_get32(p + 36);
	loc->rec_len = le_get32(p + 40);
	loc->plain_len = le_get32(p + 44);
	loc->entry = le_get32(p + 48);
	loc->kind = p[52];
}

static void run_close(struct run *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->fence);
	free(r->filter);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

static unsigned page_recs(const struct run *r, uint64_t pg)
{
	return pg + 1 < r->pages ? PAGE_RECS : (unsigned)(r->n - PAGE_RECS * (r->pages - 1));
}

static int read_pages(const struct run *r, uint64_t pg, uint64_t cnt, uint8_t *buf)
{
	size_t len = (size_t)cnt * PAGE_LEN;
	ssize_t got = pread(r->fd, buf, len, (off_t)(pg * PAGE_LEN));

	if (got < 0)
		return -errno;
	if ((size_t)got != len)
		return -EIO;
	for (uint64_t i = 0; i < cnt; i++) {
		const uint8_t *p = buf + i * PAGE_LEN;

		if (XXH3_64bits(p, PAGE_SUM_OFF) != le_get64(p + PAGE_SUM_OFF)) {
			log_error("index", "index table page %llu damaged (checksum)",
				  (unsigned long long)(pg + i));
			return -EIO;
		}
	}
	return 0;
}

/* 0 and *loc, *tomb if r holds id; -ENOENT if not; -EIO if a page is damaged. */
static int run_find(const struct run *r, const struct chunk_id *id, struct index_loc *loc,
		    int *tomb)
{
	uint8_t page[PAGE_LEN];
	uint64_t p = be64(id->b), lo = 0, hi = r->pages, pg;
	int rc;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (r->fence[mid] <= p)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -ENOENT;
	for (pg = lo - 1;; pg--) {
		unsigned a = 0, b = page_recs(r, pg);

		rc = read_pages(r, pg, 1, page);
		if (rc)
			return rc;
		while (a < b) {
			unsigned m = (a + b) / 2;
			int c = memcmp(page + m * REC_LEN, id->b, CHUNK_ID_LEN);

			if (c == 0) {
				rec_decode(page + m * REC_LEN, loc);
				*tomb = (page[m * REC_LEN + 53] & FLAG_TOMB) != 0;
				return 0;
			}
			if (c < 0)
				a = m + 1;
			else
				b = m;
		}
		/* an id sharing its first 8 bytes with this page's first may be earlier */
		if (pg == 0 || r->fence[pg] != p || a != 0)
			return -ENOENT;
	}
}

struct run_writer {
	struct run run;
	uint8_t *buf;     /* IO_PAGES pages */
	unsigned in_buf;  /* records in buf */
	size_t fence_cap;
};

/* A writer of at most expect records. */
static int writer_open(const struct index *ix, uint64_t expect, struct run_writer *w)
{
	char path[PATH_MAX];
	int fd;

	memset(w, 0, sizeof(*w));
	w->run.fd = -1;
	if ((size_t)snprintf(path, sizeof(path), "%s/cairn-index.XXXXXX", ix->dir) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	w->run.fd = fd;
	w->run.fblocks = (expect * FILTER_BITS + 511) / 512 + 1;
	w->run.filter = calloc(w->run.fblocks, 64);
	w->buf = calloc(IO_PAGES, PAGE_LEN);
	if (!w->buf || !w->run.filter) {
		free(w->buf);
		run_close(&w->run);
		return -ENOMEM;
	}
	return 0;
}

static int writer_flush(struct run_writer *w)
{
	unsigned pages = (w->in_buf + PAGE_RECS - 1) / PAGE_RECS;
	size_t len = (size_t)pages * PAGE_LEN;
	ssize_t put;

	for (unsigned i = 0; i < pages; i++) {
		uint8_t *p = w->buf + (size_t)i * PAGE_LEN;

		le_put64(p + PAGE_SUM_OFF, XXH3_64bits(p, PAGE_SUM_OFF));
	}
	put = pwrite(w->run.fd, w->buf, len, (off_t)(w->run.pages * PAGE_LEN));
	if (put < 0)
		return -errno;
	if ((size_t)put != len)
		return -ENOSPC;
	w->run.pages += pages;
	memset(w->buf, 0, (size_t)IO_PAGES * PAGE_LEN);
	w->in_buf = 0;
	return 0;
}

static int writer_add(struct run_writer *w, const uint8_t *rec)
{
	unsigned pg = w->in_buf / PAGE_RECS, i = w->in_buf % PAGE_RECS;
	int rc;

	if (i == 0) {
		uint64_t k = w->run.pages + pg;

		if (k >= w->fence_cap) {
			size_t cap = w->fence_cap ? w->fence_cap * 2 : 64;
			uint64_t *f = realloc(w->run.fence, cap * sizeof(*f));

			if (!f)
				return -ENOMEM;
			w->run.fence = f;
			w->fence_cap = cap;
		}
		w->run.fence[k] = be64(rec);
	}
	memcpy(w->buf + (size_t)pg * PAGE_LEN + i * REC_LEN, rec, REC_LEN);
	filter_add(w->run.filter, w->run.fblocks, rec);
	w->run.n++;
	if (++w->in_buf == IO_PAGES * PAGE_RECS && (rc = writer_flush(w)) != 0)
		return rc;
	return 0;
}

/* Finish the run into *out (which must be closed or empty); on error nothing leaks. */
static int writer_finish(struct run_writer *w, int rc, struct run *out)
{
	if (rc == 0 && w->in_buf)
		rc = writer_flush(w);
	free(w->buf);
	if (rc == 0 && w->run.n == 0)
		rc = 1; /* nothing to keep */
	if (rc) {
		run_close(&w->run);
		return rc < 0 ? rc : 0;
	}
	if (w->fence_cap > w->run.pages) { /* shrink the fences to fit */
		uint64_t *f = realloc(w->run.fence, w->run.pages * sizeof(*f));

		if (f)
			w->run.fence = f;
	}
	*out = w->run;
	return 0;
}

struct run_iter {
	const struct run *r;
	uint8_t *buf;
	uint64_t pg, buf_pages, pos; /* buf holds pages pg..pg+buf_pages-1; pos: record */
};

static int iter_open(const struct run *r, struct run_iter *it)
{
	memset(it, 0, sizeof(*it));
	it->r = r;
	it->buf = malloc((size_t)IO_PAGES * PAGE_LEN);
	return it->buf ? 0 : -ENOMEM;
}

/* The next record (or NULL at the end, *rc 0; or on error, *rc < 0). */
static const uint8_t *iter_next(struct run_iter *it, int *rc)
{
	uint64_t pg = it->pos / PAGE_RECS;

	*rc = 0;
	if (it->pos >= it->r->n)
		return NULL;
	if (pg >= it->pg + it->buf_pages || it->buf_pages == 0) {
		uint64_t cnt = it->r->pages - pg < IO_PAGES ? it->r->pages - pg : IO_PAGES;

		*rc = read_pages(it->r, pg, cnt, it->buf);
		if (*rc)
			return NULL;
		it->pg = pg;
		it->buf_pages = cnt;
	}
	return it->buf + (pg - it->pg) * PAGE_LEN + (it->pos++ % PAGE_RECS) * REC_LEN;
}

/* Merge runs[i] (older) and runs[i + 1] into runs[i]; tombstones are dropped when
 * runs[i] is the oldest. */
static int merge_two(struct index *ix, unsigned i)
{
	struct run_iter a, b;
	struct run_writer w;
	struct run out;
	const uint8_t *ra, *rb;
	int rc, drop = i == 0;

	rc = iter_open(&ix->runs[i], &a);
	if (rc)
		return rc;
	rc = iter_open(&ix->runs[i + 1], &b);
	if (rc)
		goto out_free_a;
	rc = writer_open(ix, ix->runs[i].n + ix->runs[i + 1].n, &w);
	if (rc)
		goto out_free_b;
	ra = iter_next(&a, &rc);
	if (!rc)
		rb = iter_next(&b, &rc);
	while (!rc && (ra || rb)) {
		int c = !ra ? 1 : !rb ? -1 : memcmp(ra, rb, CHUNK_ID_LEN);
		const uint8_t *take = c < 0 ? ra : rb;

		if (!(drop && (take[53] & FLAG_TOMB)))
			rc = writer_add(&w, take);
		if (rc)
			break;
		if (c <= 0)
			ra = iter_next(&a, &rc);
		if (!rc && c >= 0)
			rb = iter_next(&b, &rc);
	}
	memset(&out, 0, sizeof(out));
	out.fd = -1;
	rc = writer_finish(&w, rc, &out);
	if (rc == 0) {
		run_close(&ix->runs[i]);
		run_close(&ix->runs[i + 1]);
		ix->runs[i] = out;
		memmove(&ix->runs[i + 1], &ix->runs[i + 2], (ix->nruns - i - 2) * sizeof(struct run));
		ix->nruns--;
		if (out.n == 0) { /* everything was removed */
			memmove(&ix->runs[i], &ix->runs[i + 1], (ix->nruns - i - 1) * sizeof(struct run));
			ix->nruns--;
		}
	}
out_free_b:
	free(b.buf);
out_free_a:
	free(a.buf);
	return rc;
}

static int slot_cmp(const void *x, const void *y)
{
	return memcmp((*(const struct slot *const *)x)->id.b, (*(const struct slot *const *)y)->id.b,
		      CHUNK_ID_LEN);
}

/* Write mem as the newest run, empty mem, then merge runs (see the top). */
static int mem_flush(struct index *ix)
{
	struct slot **v;
	struct run_writer w;
	uint8_t rec[REC_LEN];
	size_t n = 0;
	int rc;

	if (ix->nruns == MAX_RUNS)
		return -ENOSPC; /* cannot happen: merges keep nruns near log2 */
	v = malloc((ix->used ? ix->used : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i <= ix->mask; i++)
		if (ix->slots[i].loc.pack != EMPTY)
			v[n++] = &ix->slots[i];
	qsort(v, n, sizeof(*v), slot_cmp);
	rc = writer_open(ix, n, &w);
	if (rc)
		goto out_free;
	for (size_t i = 0; i < n && !rc; i++) {
		int tomb = v[i]->loc.pack == TOMB;

		if (tomb && ix->nruns == 0)
			continue;
		rec_encode(rec, v[i]->id.b, &v[i]->loc, tomb);
		rc = writer_add(&w, rec);
	}
	memset(&ix->runs[ix->nruns], 0, sizeof(struct run));
	ix->runs[ix->nruns].fd = -1;
	rc = writer_finish(&w, rc, &ix->runs[ix->nruns]);
	if (rc)
		goto out_free;
	if (ix->runs[ix->nruns].fd >= 0)
		ix->nruns++;
	for (size_t i = 0; i <= ix->mask; i++)
		ix->slots[i].loc.pack = EMPTY;
	ix->used = 0;
	while (ix->nruns >= 2 && (ix->runs[ix->nruns - 2].n < 2 * ix->runs[ix->nruns - 1].n ||
				  ix->nruns > MAX_RUNS - 2)) {
		rc = merge_two(ix, ix->nruns - 2);
		if (rc) {
			log_warn("index", "merging index tables failed: %s", strerror(-rc));
			rc = 0; /* the runs are intact; try again at the next flush */
			break;
		}
	}
out_free:
	free(v);
	return rc;
}

/* ---- interface ---- */

/* 1 if a run file can be created in dir. */
static int dir_writable(const char *dir)
{
	char path[PATH_MAX];
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/cairn-index.XXXXXX", dir) >= sizeof(path))
		return 0;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return 0;
	unlink(path);
	close(fd);
	return 1;
}

int index_open(const char *dir, struct index **out)
{
	struct index *ix = calloc(1, sizeof(*ix));
	const char *tmp = getenv("TMPDIR");
	int rc;

	if (!ix)
		return -ENOMEM;
	if (!tmp || !*tmp)
		tmp = "/tmp";
	if (!dir || !*dir || !dir_writable(dir))
		dir = tmp;
	if ((size_t)snprintf(ix->dir, sizeof(ix->dir), "%s", dir) >= sizeof(ix->dir)) {
		rc = -ENAMETOOLONG;
		goto out_free_ix;
	}
	ix->mem_max = MEM_MAX_DEFAULT;
	rc = mem_alloc(ix, MEM_CAP_DEFAULT); /* its full size: growing would leave garbage */
	if (rc)
		goto out_free_ix;
	*out = ix;
	return 0;

out_free_ix:
	free(ix);
	return rc;
}

int index_create(size_t expect, struct index **out)
{
	(void)expect;
	return index_open(NULL, out);
}

void index_set_mem_max(struct index *ix, size_t n)
{
	ix->mem_max = n ? n : 1;
}

unsigned index_runs(const struct index *ix)
{
	return ix->nruns;
}

void index_destroy(struct index *ix)
{
	if (!ix)
		return;
	for (unsigned r = 0; r < ix->nruns; r++)
		run_close(&ix->runs[r]);
	free(ix->slots);
	free(ix);
}

int index_lookup(const struct index *ix, const struct chunk_id *id, struct index_loc *loc)
{
	const struct slot *s;
	int rc, tomb = 0;

	s = mem_find(ix, id);
	if (s->loc.pack != EMPTY) {
		if (s->loc.pack == TOMB)
			return -ENOENT;
		*loc = s->loc;
		return 0;
	}
	for (unsigned r = ix->nruns; r-- > 0;) {
		if (!filter_maybe(&ix->runs[r], id->b))
			continue;
		rc = run_find(&ix->runs[r], id, loc, &tomb);
		if (rc == 0)
			return tomb ? -ENOENT : 0;
		if (rc != -ENOENT)
			return rc;
	}
	return -ENOENT;
}

/* After a change to mem: write it out when full (a failure keeps mem, which grows). */
static void after_change(struct index *ix)
{
	int rc;

	if (ix->used < ix->mem_max)
		return;
	rc = mem_flush(ix);
	malloc_trim(0); /* the sort's, merges' and writers' buffers go back to the system */
	if (rc)
		ix->mem_max = ix->used * 2; /* do not retry at every change */
	if (rc && !ix->warned) {
		ix->warned = 1;
		log_warn("index", "writing an index table in %s failed: %s; keeping it in RAM",
			 ix->dir, strerror(-rc));
	}
}

int index_insert(struct index *ix, const struct chunk_id *id, const struct index_loc *loc)
{
	struct index_loc old;
	int rc;

	if (loc->pack >= TOMB)
		return -EINVAL;
	rc = index_lookup(ix, id, &old);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	rc = mem_put(ix, id, loc);
	if (rc)
		return rc;
	ix->count++;
	after_change(ix);
	return 0;
}

int index_replace(struct index *ix, const struct chunk_id *id, const struct index_loc *loc)
{
	struct index_loc old;
	int rc;

	if (loc->pack >= TOMB)
		return -EINVAL;
	rc = index_lookup(ix, id, &old);
	if (rc)
		return rc;
	rc = mem_put(ix, id, loc);
	if (rc)
		return rc;
	after_change(ix);
	return 0;
}

int index_remove(struct index *ix, const struct chunk_id *id)
{
	struct index_loc old, tomb = { .pack = TOMB };
	int rc;

	rc = index_lookup(ix, id, &old);
	if (rc)
		return rc;
	rc = mem_put(ix, id, &tomb);
	if (rc)
		return rc;
	ix->count--;
	after_change(ix);
	return 0;
}

size_t index_count(const struct index *ix)
{
	return ix->count;
}

void index_segment_key(const uint8_t pack_id[PACK_ID_LEN], char out[PACK_KEY_LEN])
{
	memcpy(out, "index/", 6);
	util_hex(pack_id, PACK_ID_LEN, out + 6);
}

static int seal(const struct aead_keys *k, const uint8_t pack_id[PACK_ID_LEN], void **buf,
		size_t *len)
{
	char key[PACK_KEY_LEN];
	void *out;
	size_t out_len;
	int rc;

	index_segment_key(pack_id, key);
	rc = aead_seal_object(k->meta, key, *buf, *len, &out, &out_len);
	free(*buf);
	*buf = NULL;
	if (rc)
		return rc;
	*buf = out;
	*len = out_len;
	return 0;
}

int index_segment_encode(const struct aead_keys *k, const uint8_t pack_id[PACK_ID_LEN],
			 const struct pack_entry *ents, uint32_t n, void **buf_out, size_t *len_out)
{
	size_t len = SEG_HDR_LEN + (size_t)PACK_ENTRY_LEN * n + 8;
	uint8_t *b = malloc(len);

	if (!b)
		return -ENOMEM;
	memcpy(b, seg_magic, 8);
	le_put32(b + 8, SEG_VERSION);
	le_put32(b + 12, n);
	memcpy(b + 16, pack_id, PACK_ID_LEN);
	for (uint32_t i = 0; i < n; i++)
		pack_entry_encode(b + SEG_HDR_LEN + PACK_ENTRY_LEN * i, &ents[i]);
	le_put64(b + len - 8, XXH3_64bits(b, len - 8));
	*buf_out = b;
	*len_out = len;
	return k ? seal(k, pack_id, buf_out, len_out) : 0;
}

static int decode_plain(const void *buf, size_t len, const uint8_t pack_id[PACK_ID_LEN],
			struct pack_entry **ents_out, uint32_t *n_out)
{
	const uint8_t *b = buf;
	struct pack_entry *ents;
	uint32_t n;

	if (len < SEG_HDR_LEN + 8 || memcmp(b, seg_magic, 8) != 0 || le_get32(b + 8) != SEG_VERSION ||
	    memcmp(b + 16, pack_id, PACK_ID_LEN) != 0)
		return -EBADMSG;
	n = le_get32(b + 12);
	if (n > PACK_MAX_ENTRIES || len != SEG_HDR_LEN + (size_t)PACK_ENTRY_LEN * n + 8 ||
	    XXH3_64bits(b, len - 8) != le_get64(b + len - 8))
		return -EBADMSG;
	ents = malloc(sizeof(*ents) * (n ? n : 1));
	if (!ents)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		pack_entry_decode(b + SEG_HDR_LEN + PACK_ENTRY_LEN * i, &ents[i]);
	*ents_out = ents;
	*n_out = n;
	return 0;
}

int index_segment_decode(const struct aead_keys *k, const void *buf, size_t len,
			 const uint8_t pack_id[PACK_ID_LEN], struct pack_entry **ents,
			 uint32_t *n)
{
	char key[PACK_KEY_LEN];
	void *plain;
	size_t plain_len;
	int rc;

	if (!k)
		return decode_plain(buf, len, pack_id, ents, n);
	index_segment_key(pack_id, key);
	rc = aead_open_object(k->meta, key, buf, len, &plain, &plain_len);
	if (rc)
		return rc;
	rc = decode_plain(plain, plain_len, pack_id, ents, n);
	free(plain);
	return rc;
}
