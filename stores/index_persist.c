/* index_persist.c - the index table's run files, their merges on a background thread,
 * and the table kept across opens in a local directory (index.h: index_open_persisted,
 * index_checkpoint). Shared state: index_int.h; run pages and records: index.c.
 *
 * ---- Run files (pages and records: index.c). Unpersisted runs ("cairn-index.XXXXXX")
 * are unlinked at creation. Persisted runs ("run-<016x seq>.idx") end with the filter
 * and fences, so an open needs no rebuild of them:
 *   pages*4096        fblocks*64 bytes: the filter's 64-bit words, little-endian
 *   + fblocks*64      pages*8 bytes: the fences (big-endian id prefix as a u64), LE
 *   end - 64     64   trailer:
 *                       0  8 magic "CAIRNIXR"      8 4 version 1     12 4 zero
 *                      16  8 n (records)          24 8 pages         32 8 fblocks
 *                      40  8 XXH3_64bits of the filter and fence bytes
 *                      48  8 zero                 56 8 XXH3_64bits of trailer bytes 0..55
 * A persisted run is written once under its name and never changed; at open every page
 * checksum is verified as well.
 *
 * ---- The persisted table: directory (the repository's state directory, "index/")
 *   manifest        the current table (below), replaced atomically: written to
 *                   manifest.tmp, fsync'd (the runs it names first), renamed, dir fsync'd
 *   run-<seq>.idx   runs; those the manifest does not name are removed by the writer
 *   lock            flock'd by the one process that updates the directory (the writer);
 *                   other processes (read-only opens beside it) load the manifest and
 *                   its runs read-only (a file the writer removes stays readable through
 *                   the open descriptor) and keep their own changes in unlinked runs
 * Manifest (little-endian):
 *   off len  field
 *     0   8  magic      "CAIRNIXM"
 *     8   4  version    1
 *    12   4  nruns
 *    16  16  owner      the repository id: a manifest of another repository is unsound
 *    32   8  generation incremented at every write
 *    40   8  next_seq   above every run's seq
 *    48   4  npacks     pack slots
 *    52   4  zero
 *    56  32  totals     chunks, tree_chunks, rec_bytes, plain_bytes (u64 each)
 *    88      nruns x 32: seq u64, n u64, pages u64, fblocks u64 (oldest first)
 *            npacks x 24 (slot number = position): pack_id[16], nents u32,
 *                       state u8 (0 gone, 1 stored, 2 pending: index.h), flags u8
 *                       (bit 0: holds shadowed copies), zero[2]
 *   end   8  checksum   XXH3_64bits of every byte before it
 * A checkpoint is taken only when every change is in the runs (mem just written), with
 * the pack slots as the repository has them at that moment: stored slots are covered
 * (each of their records is in the table), the open and unstored ones pending.
 * Encrypted repositories: runs and manifest hold chunk ids (HMACs, which reveal nothing
 * without the key), pack ids, offsets and lengths: no plaintext, as the local cache of
 * packs; they stay in the local state directory, like that cache.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "index_int.h"
#include "le.h"
#include "log.h"
#include "util.h"

static const uint8_t run_magic[8] = { 'C', 'A', 'I', 'R', 'N', 'I', 'X', 'R' };
static const uint8_t man_magic[8] = { 'C', 'A', 'I', 'R', 'N', 'I', 'X', 'M' };
#define RUN_VERSION 1
#define RUN_TRAILER_LEN 64u
#define MAN_VERSION 1
#define MAN_HDR_LEN 88u
#define MAN_RUN_LEN 32u
#define MAN_PACK_LEN 24u
#define MAN_MAX (1u << 30)

/* ---- run files ---- */

static void run_path(const struct index *ix, uint64_t seq, char *out, size_t len)
{
	snprintf(out, len, "%s/run-%016llx.idx", ix->pdir, (unsigned long long)seq);
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

struct run_writer {
	struct run run;
	uint8_t *buf;     /* IO_PAGES pages */
	unsigned in_buf;  /* records in buf */
	size_t fence_cap;
};

static int writer_finish(const struct index *ix, struct run_writer *w, int rc, struct run *out);

/* A writer of at most expect records: a persisted run seq (nonzero) or an unlinked one. */
static int writer_open(const struct index *ix, uint64_t expect, uint64_t seq,
		       struct run_writer *w)
{
	char path[PATH_MAX];
	int fd;

	memset(w, 0, sizeof(*w));
	w->run.fd = -1;
	if (seq) {
		run_path(ix, seq, path, sizeof(path));
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
	} else {
		if ((size_t)snprintf(path, sizeof(path), "%s/cairn-index.XXXXXX", ix->dir) >= sizeof(path))
			return -ENAMETOOLONG;
		fd = mkostemp(path, O_CLOEXEC);
		if (fd < 0)
			return -errno;
		unlink(path);
	}
	w->run.fd = fd;
	w->run.seq = seq;
	w->run.fblocks = (expect * FILTER_BITS + 511) / 512 + 1;
	w->run.filter = calloc(w->run.fblocks, 64);
	w->buf = calloc(IO_PAGES, PAGE_LEN);
	if (!w->buf || !w->run.filter) {
		struct run none;

		return writer_finish(ix, w, -ENOMEM, &none);
	}
	return 0;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	ssize_t put = pwrite(fd, buf, len, (off_t)off);

	if (put < 0)
		return -errno;
	return (size_t)put == len ? 0 : -ENOSPC;
}

static int writer_flush(struct run_writer *w)
{
	unsigned pages = (w->in_buf + PAGE_RECS - 1) / PAGE_RECS;
	int rc;

	for (unsigned i = 0; i < pages; i++) {
		uint8_t *p = w->buf + (size_t)i * PAGE_LEN;

		le_put64(p + PAGE_SUM_OFF, XXH3_64bits(p, PAGE_SUM_OFF));
	}
	rc = pwrite_all(w->run.fd, w->buf, (size_t)pages * PAGE_LEN, w->run.pages * PAGE_LEN);
	if (rc)
		return rc;
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
	index_filter_add(w->run.filter, w->run.fblocks, rec);
	w->run.n++;
	if (++w->in_buf == IO_PAGES * PAGE_RECS && (rc = writer_flush(w)) != 0)
		return rc;
	return 0;
}

/* Words as little-endian bytes through buf (IO_PAGES pages), written from *off on;
 * the bytes go into the checksum state too. */
static int write_words(int fd, const uint64_t *v, uint64_t n, uint8_t *buf, uint64_t *off,
		       XXH3_state_t *st)
{
	const uint64_t per = (uint64_t)IO_PAGES * PAGE_LEN / 8;

	for (uint64_t i = 0; i < n; i += per) {
		uint64_t k = n - i < per ? n - i : per;
		int rc;

		for (uint64_t j = 0; j < k; j++)
			le_put64(buf + 8 * j, v[i + j]);
		XXH3_64bits_update(st, buf, (size_t)k * 8);
		rc = pwrite_all(fd, buf, (size_t)k * 8, *off);
		if (rc)
			return rc;
		*off += k * 8;
	}
	return 0;
}

/* The filter, fences and trailer of a persisted run (format at the top). */
static int writer_footer(struct run_writer *w)
{
	struct run *r = &w->run;
	uint64_t off = r->pages * PAGE_LEN;
	uint8_t *t = w->buf;
	XXH3_state_t *st = XXH3_createState();
	int rc;

	if (!st)
		return -ENOMEM;
	XXH3_64bits_reset(st);
	rc = write_words(r->fd, r->filter, r->fblocks * 8, w->buf, &off, st);
	if (!rc)
		rc = write_words(r->fd, r->fence, r->pages, w->buf, &off, st);
	if (!rc) {
		memset(t, 0, RUN_TRAILER_LEN);
		memcpy(t, run_magic, 8);
		le_put32(t + 8, RUN_VERSION);
		le_put64(t + 16, r->n);
		le_put64(t + 24, r->pages);
		le_put64(t + 32, r->fblocks);
		le_put64(t + 40, XXH3_64bits_digest(st));
		le_put64(t + 56, XXH3_64bits(t, 56));
		rc = pwrite_all(r->fd, t, RUN_TRAILER_LEN, off);
	}
	XXH3_freeState(st);
	return rc;
}

/* Finish the run into *out; on error or when it is empty nothing is kept (out->fd -1),
 * a persisted file is removed. */
static int writer_finish(const struct index *ix, struct run_writer *w, int rc, struct run *out)
{
	char path[PATH_MAX];

	if (rc == 0 && w->in_buf)
		rc = writer_flush(w);
	if (rc == 0 && w->run.n && w->run.seq)
		rc = writer_footer(w);
	free(w->buf);
	if (rc == 0 && w->run.n == 0)
		rc = 1; /* nothing to keep */
	if (rc) {
		if (w->run.seq) {
			run_path(ix, w->run.seq, path, sizeof(path));
			unlink(path);
		}
		run_close(&w->run);
		*out = w->run;
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

		*rc = index_read_pages(it->r, pg, cnt, it->buf);
		if (*rc)
			return NULL;
		it->pg = pg;
		it->buf_pages = cnt;
	}
	return it->buf + (pg - it->pg) * PAGE_LEN + (it->pos++ % PAGE_RECS) * REC_LEN;
}

/* Open persisted run seq (n records, pages, fblocks as the manifest says): trailer,
 * filter and fences read and checked, every page verified. */
static int run_load(const struct index *ix, uint64_t seq, uint64_t n, uint64_t pages,
		    uint64_t fblocks, struct run *r, const char **why)
{
	char path[PATH_MAX];
	uint8_t *buf = NULL, t[RUN_TRAILER_LEN];
	uint64_t words = fblocks * 8 + pages, size, off;
	XXH3_state_t *st = NULL;
	struct stat sb;
	int rc;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	*why = "a run file is missing";
	run_path(ix, seq, path, sizeof(path));
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
		return -errno;
	*why = "a run file is damaged";
	rc = -EBADMSG;
	if (!n || !pages || !fblocks || pages != (n + PAGE_RECS - 1) / PAGE_RECS ||
	    fblocks > (1ull << 40) || pages > (1ull << 40))
		goto out_close;
	size = pages * PAGE_LEN + words * 8 + RUN_TRAILER_LEN;
	if (fstat(r->fd, &sb) < 0 || (uint64_t)sb.st_size != size)
		goto out_close;
	if (pread(r->fd, t, sizeof(t), (off_t)(size - RUN_TRAILER_LEN)) != (ssize_t)sizeof(t) ||
	    memcmp(t, run_magic, 8) || le_get32(t + 8) != RUN_VERSION ||
	    le_get64(t + 56) != XXH3_64bits(t, 56) || le_get64(t + 16) != n ||
	    le_get64(t + 24) != pages || le_get64(t + 32) != fblocks)
		goto out_close;
	r->n = n;
	r->pages = pages;
	r->fblocks = fblocks;
	r->seq = seq;
	r->filter = malloc(fblocks * 64);
	r->fence = malloc(pages * 8);
	buf = malloc((size_t)IO_PAGES * PAGE_LEN);
	st = XXH3_createState();
	if (!r->filter || !r->fence || !buf || !st) {
		rc = -ENOMEM;
		goto out_close;
	}
	XXH3_64bits_reset(st);
	off = pages * PAGE_LEN;
	for (uint64_t i = 0; i < words;) {
		uint64_t k = words - i < IO_PAGES * PAGE_LEN / 8 ? words - i : IO_PAGES * PAGE_LEN / 8;

		if (pread(r->fd, buf, k * 8, (off_t)off) != (ssize_t)(k * 8))
			goto out_close;
		XXH3_64bits_update(st, buf, k * 8);
		for (uint64_t j = 0; j < k; j++, i++) {
			uint64_t v = le_get64(buf + 8 * j);

			if (i < fblocks * 8)
				r->filter[i] = v;
			else
				r->fence[i - fblocks * 8] = v;
		}
		off += k * 8;
	}
	if (XXH3_64bits_digest(st) != le_get64(t + 40))
		goto out_close;
	for (uint64_t pg = 0; pg < pages; pg += IO_PAGES) {
		uint64_t cnt = pages - pg < IO_PAGES ? pages - pg : IO_PAGES;

		if (index_read_pages(r, pg, cnt, buf))
			goto out_close;
	}
	rc = 0;
	*why = NULL;
out_close:
	XXH3_freeState(st);
	free(buf);
	if (rc)
		run_close(r);
	return rc;
}

/* ---- retirement, merges and the background thread ---- */

static int seq_in(const uint64_t *v, unsigned n, uint64_t seq)
{
	for (unsigned i = 0; i < n; i++)
		if (v[i] == seq)
			return 1;
	return 0;
}

/* A manifest written or about to be names seq; caller holds mu. */
static int seq_named(const struct index *ix, uint64_t seq)
{
	return seq_in(ix->man_seqs, ix->man_n, seq) ||
	       (ix->pending && seq_in(ix->pending->seqs, ix->pending->nseqs, seq));
}

static void unlink_run(const struct index *ix, uint64_t seq)
{
	char path[PATH_MAX];

	run_path(ix, seq, path, sizeof(path));
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("index", "removing %s failed: %s", path, strerror(errno));
}

/* r is merged away or discarded; caller holds mu. 1: the caller removes its file
 * (after unlocking: closing and removing a large file is slow), else nothing to remove
 * or a manifest names it (removed after the next manifest is written). */
static int run_retire(struct index *ix, const struct run *r)
{
	if (ix->mode != MODE_WRITER || !r->seq)
		return 0;
	if (!seq_named(ix, r->seq))
		return 1;
	if (ix->ndoomed == ix->cap_doomed) {
		unsigned cap = ix->cap_doomed ? 2 * ix->cap_doomed : 16;
		uint64_t *d = realloc(ix->doomed, cap * sizeof(*d));

		if (d) {
			ix->doomed = d;
			ix->cap_doomed = cap;
		}
	}
	if (ix->ndoomed < ix->cap_doomed) /* else the next open removes it */
		ix->doomed[ix->ndoomed++] = r->seq;
	return 0;
}

/* Close a retired run (without mu), removing its file if run_retire() said so. */
static void run_bury(struct index *ix, struct run *r, int remove)
{
	uint64_t seq = r->seq;

	run_close(r);
	if (remove)
		unlink_run(ix, seq);
}

static void free_job(struct mjob *j)
{
	if (!j)
		return;
	free(j->buf);
	free(j->seqs);
	free(j);
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Write manifest job j durably: the runs it names, the file, rename, the directory.
 * Called by the background thread (or, when there is none, the caller's thread) with
 * ix->writing set; frees j. */
static void write_job(struct index *ix, struct mjob *j)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int fd, rc = 0, renamed = 0;

	for (unsigned i = 0; i < j->nseqs && !rc; i++) {
		run_path(ix, j->seqs[i], path, sizeof(path));
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fsync(fd) < 0)
			rc = -errno;
		if (fd >= 0)
			close(fd);
	}
	snprintf(tmp, sizeof(tmp), "%s/manifest.tmp", ix->pdir);
	snprintf(path, sizeof(path), "%s/manifest", ix->pdir);
	if (!rc) {
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0) {
			rc = -errno;
		} else {
			rc = pwrite_all(fd, j->buf, j->len, 0);
			if (!rc && fsync(fd) < 0)
				rc = -errno;
			close(fd);
		}
	}
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	renamed = !rc;
	if (!rc)
		rc = fsync_dir(ix->pdir);
	if (rc)
		log_warn("index", "writing the index manifest in %s failed: %s", ix->pdir,
			 strerror(-rc));
	pthread_mutex_lock(&ix->mu);
	if (renamed) {
		free(ix->man_seqs);
		ix->man_seqs = j->seqs;
		ix->man_n = j->nseqs;
		j->seqs = NULL;
		ix->written_gen = j->gen;
		/* j->seqs is free now: it takes the doomed runs to remove after unlocking */
		j->seqs = malloc((ix->ndoomed ? ix->ndoomed : 1) * sizeof(uint64_t));
		j->nseqs = 0;
		for (unsigned i = 0; j->seqs && i < ix->ndoomed;) {
			if (seq_named(ix, ix->doomed[i])) {
				i++;
				continue;
			}
			j->seqs[j->nseqs++] = ix->doomed[i];
			ix->doomed[i] = ix->doomed[--ix->ndoomed];
		}
	}
	ix->writing = 0;
	pthread_cond_broadcast(&ix->cond);
	pthread_mutex_unlock(&ix->mu);
	for (unsigned i = 0; renamed && j->seqs && i < j->nseqs; i++)
		unlink_run(ix, j->seqs[i]);
	free_job(j);
}

/* The newest pair (k, k + 1), k >= lo, to merge now (see the top), or -1; caller holds
 * mu. */
static int pick(const struct index *ix, unsigned lo)
{
	if (ix->merge_err || ix->paused || ix->stop || ix->nruns < 2)
		return -1;
	for (unsigned k = ix->nruns - 1; k-- > lo;)
		if (ix->runs[k].n < 2 * ix->runs[k + 1].n ||
		    (ix->nruns > RUN_FORCE && k == ix->nruns - 2))
			return (int)k;
	return -1;
}

static int service(struct index *ix, unsigned lo);

static int rec_dead(const uint8_t *dead, uint32_t n, const uint8_t *rec)
{
	uint32_t s = le_get32(rec + 32);

	return s < n && (dead[s] & SF_DEAD);
}

/* Merge runs[j] (older) and runs[j + 1] into runs[j]; a merge into the oldest drops
 * tombstones and records of dead slots. Background thread, without mu: only it removes
 * runs, and runs beyond j + 1 are all it may change meanwhile (service(j + 2) between
 * batches: newer pairs, and manifest writes). */
static int merge_pair(struct index *ix, unsigned j)
{
	struct run *ra = &ix->runs[j], *rb = &ix->runs[j + 1];
	struct run_iter a, b;
	struct run_writer w;
	struct run out;
	const uint8_t *xa = NULL, *xb = NULL;
	uint8_t *dead = NULL;
	uint32_t ndead = 0;
	uint64_t seq = 0, since = 0;
	int rc, drop = j == 0;

	pthread_mutex_lock(&ix->mu);
	if (ix->mode == MODE_WRITER)
		seq = ix->next_seq++;
	if (drop && ix->nsflags && (dead = malloc(ix->nsflags)) != NULL) {
		memcpy(dead, ix->sflags, ix->nsflags);
		ndead = ix->nsflags;
	}
	pthread_mutex_unlock(&ix->mu);
	rc = iter_open(ra, &a);
	if (rc)
		goto out_free_dead;
	rc = iter_open(rb, &b);
	if (rc)
		goto out_free_a;
	rc = writer_open(ix, ra->n + rb->n, seq, &w);
	if (rc)
		goto out_free_b;
	xa = iter_next(&a, &rc);
	if (!rc)
		xb = iter_next(&b, &rc);
	while (!rc && (xa || xb)) {
		int c = !xa ? 1 : !xb ? -1 : memcmp(xa, xb, CHUNK_ID_LEN);
		const uint8_t *take = c < 0 ? xa : xb;

		if (!(drop && ((take[53] & FLAG_TOMB) || rec_dead(dead, ndead, take))))
			rc = writer_add(&w, take);
		if (rc)
			break;
		if (c <= 0)
			xa = iter_next(&a, &rc);
		if (!rc && c >= 0)
			xb = iter_next(&b, &rc);
		if (!rc && ++since == (uint64_t)IO_PAGES * PAGE_RECS) {
			since = 0;
			rc = service(ix, j + 2);
		}
	}
	rc = writer_finish(ix, &w, rc, &out);
	if (rc == 0) {
		struct run old_a, old_b;
		int rm_a, rm_b;

		pthread_mutex_lock(&ix->mu);
		old_a = *ra;
		old_b = *rb;
		rm_a = run_retire(ix, ra);
		rm_b = run_retire(ix, rb);
		*ra = out;
		memmove(&ix->runs[j + 1], &ix->runs[j + 2], (ix->nruns - j - 2) * sizeof(struct run));
		ix->nruns--;
		if (ra->fd < 0) { /* everything was removed */
			memmove(&ix->runs[j], &ix->runs[j + 1], (ix->nruns - j - 1) * sizeof(struct run));
			ix->nruns--;
		}
		pthread_cond_broadcast(&ix->cond);
		pthread_mutex_unlock(&ix->mu);
		run_bury(ix, &old_a, rm_a);
		run_bury(ix, &old_b, rm_b);
	}
out_free_b:
	free(b.buf);
out_free_a:
	free(a.buf);
out_free_dead:
	free(dead);
	return rc;
}

/* Background work from runs[lo] on: pending manifests first, then merges, until none is
 * due. -ECANCELED when the table stops or pauses. */
static int service(struct index *ix, unsigned lo)
{
	for (;;) {
		struct mjob *job;
		int k, rc;

		pthread_mutex_lock(&ix->mu);
		if (ix->stop || ix->paused) {
			pthread_mutex_unlock(&ix->mu);
			return -ECANCELED;
		}
		job = ix->pending;
		ix->pending = NULL;
		if (job)
			ix->writing = 1;
		k = job ? -1 : pick(ix, lo);
		pthread_mutex_unlock(&ix->mu);
		if (job) {
			write_job(ix, job);
			continue;
		}
		if (k < 0)
			return 0;
		rc = merge_pair(ix, (unsigned)k);
		if (rc)
			return rc;
	}
}

static void *bg_main(void *arg)
{
	struct index *ix = arg;

	pthread_mutex_lock(&ix->mu);
	while (!ix->stop) {
		int rc;

		if (ix->paused || (!ix->pending && pick(ix, 0) < 0)) {
			ix->busy = 0;
			pthread_cond_broadcast(&ix->cond);
			pthread_cond_wait(&ix->cond, &ix->mu);
			continue;
		}
		ix->busy = 1;
		pthread_mutex_unlock(&ix->mu);
		rc = service(ix, 0);
		malloc_trim(0); /* the merges' buffers and filters go back to the system */
		pthread_mutex_lock(&ix->mu);
		if (rc && rc != -ECANCELED) {
			/* the runs are intact; try again after the next run is written */
			log_warn("index", "merging index runs in %s failed: %s", ix->dir, strerror(-rc));
			ix->merge_err = 1;
		}
	}
	ix->busy = 0;
	pthread_cond_broadcast(&ix->cond);
	pthread_mutex_unlock(&ix->mu);
	return NULL;
}

/* Stop (and wait out) background work; nests. */
static void bg_pause(struct index *ix)
{
	pthread_mutex_lock(&ix->mu);
	ix->paused++;
	pthread_cond_broadcast(&ix->cond);
	while (ix->busy)
		pthread_cond_wait(&ix->cond, &ix->mu);
	pthread_mutex_unlock(&ix->mu);
}

static void bg_resume(struct index *ix)
{
	pthread_mutex_lock(&ix->mu);
	ix->paused--;
	pthread_cond_broadcast(&ix->cond);
	pthread_mutex_unlock(&ix->mu);
}

static int slot_cmp(const void *x, const void *y)
{
	return memcmp((*(const struct slot *const *)x)->id.b, (*(const struct slot *const *)y)->id.b,
		      CHUNK_ID_LEN);
}

/* Write mem as the newest run and empty it. Waits while RUN_CAP runs wait for merges. */
int index_mem_flush(struct index *ix)
{
	struct slot **v;
	struct run_writer w;
	struct run out;
	uint8_t rec[REC_LEN];
	uint64_t seq = 0;
	size_t n = 0;
	int rc, older;

	pthread_mutex_lock(&ix->mu);
	while (ix->nruns >= RUN_CAP && ix->bg_running && !ix->merge_err && !ix->paused)
		pthread_cond_wait(&ix->cond, &ix->mu);
	if (ix->nruns >= MAX_RUNS) {
		pthread_mutex_unlock(&ix->mu);
		return -ENOSPC; /* merges keep failing */
	}
	if (ix->mode == MODE_WRITER)
		seq = ix->next_seq++;
	older = ix->nruns > 0; /* only this thread adds runs */
	pthread_mutex_unlock(&ix->mu);
	v = malloc((ix->used ? ix->used : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i <= ix->mask; i++)
		if (ix->slots[i].loc.pack != EMPTY)
			v[n++] = &ix->slots[i];
	qsort(v, n, sizeof(*v), slot_cmp);
	rc = writer_open(ix, n, seq, &w);
	if (rc)
		goto out_free;
	for (size_t i = 0; i < n && !rc; i++) {
		int tomb = v[i]->loc.pack == TOMB;

		if (tomb && !older)
			continue; /* nothing older to shadow */
		index_rec_encode(rec, v[i]->id.b, &v[i]->loc, tomb);
		rc = writer_add(&w, rec);
	}
	rc = writer_finish(ix, &w, rc, &out);
	if (rc)
		goto out_free;
	pthread_mutex_lock(&ix->mu);
	if (out.fd >= 0)
		ix->runs[ix->nruns++] = out;
	ix->merge_err = 0;
	pthread_cond_broadcast(&ix->cond);
	while (ix->inline_merges && ix->bg_running && (ix->busy || pick(ix, 0) >= 0))
		pthread_cond_wait(&ix->cond, &ix->mu);
	pthread_mutex_unlock(&ix->mu);
	for (size_t i = 0; i <= ix->mask; i++)
		ix->slots[i].loc.pack = EMPTY;
	ix->used = 0;
out_free:
	free(v);
	return rc;
}

/* ---- manifest ---- */

/* Build the manifest of the table now (mem must be empty) and queue it; sync: wait
 * until it is written. */
int index_checkpoint_take(struct index *ix, int sync)
{
	struct index_pack *packs = NULL;
	struct mjob *job;
	uint32_t np = 0;
	uint64_t gen;
	uint8_t *p;
	int rc;

	if (ix->used && (rc = index_mem_flush(ix)) != 0)
		return rc;
	rc = ix->owner.packs(ix->owner.arg, &packs, &np);
	if (rc)
		return sync ? rc : 0;
	ix->last_ckpt = now_s();
	job = calloc(1, sizeof(*job));
	if (!job) {
		free(packs);
		return -ENOMEM;
	}
	pthread_mutex_lock(&ix->mu);
	job->nseqs = ix->nruns;
	job->len = MAN_HDR_LEN + (size_t)ix->nruns * MAN_RUN_LEN + (size_t)np * MAN_PACK_LEN + 8;
	job->buf = calloc(1, job->len);
	job->seqs = calloc(ix->nruns ? ix->nruns : 1, sizeof(uint64_t));
	if (!job->buf || !job->seqs) {
		pthread_mutex_unlock(&ix->mu);
		free_job(job);
		free(packs);
		return -ENOMEM;
	}
	p = job->buf;
	memcpy(p, man_magic, 8);
	le_put32(p + 8, MAN_VERSION);
	le_put32(p + 12, ix->nruns);
	memcpy(p + 16, ix->owner_id, 16);
	job->gen = ++ix->gen;
	le_put64(p + 32, job->gen);
	le_put64(p + 40, ix->next_seq);
	le_put32(p + 48, np);
	le_put64(p + 56, ix->tot.chunks);
	le_put64(p + 64, ix->tot.tree_chunks);
	le_put64(p + 72, ix->tot.rec_bytes);
	le_put64(p + 80, ix->tot.plain_bytes);
	p += MAN_HDR_LEN;
	for (unsigned i = 0; i < ix->nruns; i++, p += MAN_RUN_LEN) {
		job->seqs[i] = ix->runs[i].seq;
		le_put64(p, ix->runs[i].seq);
		le_put64(p + 8, ix->runs[i].n);
		le_put64(p + 16, ix->runs[i].pages);
		le_put64(p + 24, ix->runs[i].fblocks);
	}
	pthread_mutex_unlock(&ix->mu);
	for (uint32_t s = 0; s < np; s++, p += MAN_PACK_LEN) {
		uint8_t st = packs[s].state;

		if (slot_dead(ix, s) || st > INDEX_PACK_PENDING)
			st = INDEX_PACK_GONE;
		memcpy(p, packs[s].id, PACK_ID_LEN);
		le_put32(p + 16, packs[s].nents);
		p[20] = st;
		p[21] = s < ix->nsflags && (ix->sflags[s] & SF_SHADOW) ? INDEX_PACK_SHADOW : 0;
	}
	free(packs);
	le_put64(p, XXH3_64bits(job->buf, job->len - 8));

	gen = job->gen;
	pthread_mutex_lock(&ix->mu);
	if (!ix->bg_running) { /* write it here */
		while (ix->writing)
			pthread_cond_wait(&ix->cond, &ix->mu);
		ix->writing = 1;
		pthread_mutex_unlock(&ix->mu);
		write_job(ix, job);
		pthread_mutex_lock(&ix->mu);
	} else {
		free_job(ix->pending);
		ix->pending = job;
		pthread_cond_broadcast(&ix->cond);
		while (sync && (ix->pending == job || ix->writing) && ix->bg_running)
			pthread_cond_wait(&ix->cond, &ix->mu);
	}
	rc = !sync || ix->written_gen >= gen ? 0 : -EIO;
	pthread_mutex_unlock(&ix->mu);
	return rc;
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
	struct stat sb;
	uint8_t *b;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0) {
		rc = -errno;
		goto out_close;
	}
	if (sb.st_size < 0 || (uint64_t)sb.st_size > MAN_MAX) {
		rc = -EFBIG;
		goto out_close;
	}
	b = malloc(sb.st_size ? (size_t)sb.st_size : 1);
	if (!b) {
		rc = -ENOMEM;
		goto out_close;
	}
	if (pread(fd, b, (size_t)sb.st_size, 0) != (ssize_t)sb.st_size) {
		free(b);
		rc = -EIO;
		goto out_close;
	}
	*out = b;
	*len = (size_t)sb.st_size;
out_close:
	close(fd);
	return rc;
}

/* Load the manifest and its runs into the (empty) table: 0, or -ENOENT when there is
 * none (*why NULL), or an error with *why saying what was unsound. */
static int manifest_load(struct index *ix, struct index_pack **packs_out, uint32_t *np_out,
			 const char **why)
{
	char path[PATH_MAX];
	struct index_pack *packs = NULL;
	uint8_t *b = NULL;
	const uint8_t *p;
	uint32_t nr, np;
	uint64_t next_seq;
	size_t len = 0;
	int rc;

	*why = NULL;
	snprintf(path, sizeof(path), "%s/manifest", ix->pdir);
	rc = read_file(path, &b, &len);
	if (rc == -ENOENT)
		return rc;
	*why = "the manifest is unreadable";
	if (rc)
		return rc;
	rc = -EBADMSG;
	*why = "the manifest is damaged";
	if (len < MAN_HDR_LEN + 8 || memcmp(b, man_magic, 8) ||
	    XXH3_64bits(b, len - 8) != le_get64(b + len - 8))
		goto out_free;
	*why = "the manifest has an unknown version";
	if (le_get32(b + 8) != MAN_VERSION)
		goto out_free;
	*why = "the manifest is damaged";
	nr = le_get32(b + 12);
	np = le_get32(b + 48);
	if (nr > MAX_RUNS || len != MAN_HDR_LEN + (size_t)nr * MAN_RUN_LEN + (size_t)np * MAN_PACK_LEN + 8)
		goto out_free;
	*why = "the manifest is of another repository";
	if (memcmp(b + 16, ix->owner_id, 16))
		goto out_free;
	next_seq = le_get64(b + 40);
	p = b + MAN_HDR_LEN;
	for (uint32_t i = 0; i < nr; i++, p += MAN_RUN_LEN) {
		uint64_t seq = le_get64(p);

		rc = -EBADMSG;
		*why = "the manifest is damaged";
		if (!seq || seq >= next_seq)
			goto out_close_runs;
		rc = run_load(ix, seq, le_get64(p + 8), le_get64(p + 16), le_get64(p + 24),
			      &ix->runs[i], why);
		if (rc)
			goto out_close_runs;
		ix->nruns = i + 1;
	}
	if (np) {
		packs = calloc(np, sizeof(*packs));
		ix->sflags = calloc(np, 1);
		if (!packs || !ix->sflags) {
			rc = -ENOMEM;
			goto out_close_runs;
		}
		ix->nsflags = np;
	}
	for (uint32_t s = 0; s < np; s++, p += MAN_PACK_LEN) {
		memcpy(packs[s].id, p, PACK_ID_LEN);
		packs[s].nents = le_get32(p + 16);
		packs[s].state = p[20] <= INDEX_PACK_PENDING ? p[20] : INDEX_PACK_GONE;
		packs[s].flags = p[21] & INDEX_PACK_SHADOW;
		if (packs[s].state != INDEX_PACK_STORED)
			ix->sflags[s] |= SF_DEAD;
		if (packs[s].state == INDEX_PACK_PENDING)
			ix->need_recount = 1; /* its entries are counted in the totals */
		if (packs[s].flags)
			ix->sflags[s] |= SF_SHADOW;
	}
	ix->gen = le_get64(b + 32);
	ix->next_seq = next_seq;
	ix->tot.chunks = le_get64(b + 56);
	ix->tot.tree_chunks = le_get64(b + 64);
	ix->tot.rec_bytes = le_get64(b + 72);
	ix->tot.plain_bytes = le_get64(b + 80);
	ix->man_seqs = calloc(nr ? nr : 1, sizeof(uint64_t));
	if (!ix->man_seqs) {
		rc = -ENOMEM;
		goto out_close_runs;
	}
	for (uint32_t i = 0; i < nr; i++)
		ix->man_seqs[i] = ix->runs[i].seq;
	ix->man_n = nr;
	*packs_out = packs;
	*np_out = np;
	*why = NULL;
	free(b);
	return 0;

out_close_runs:
	for (unsigned i = 0; i < ix->nruns; i++)
		run_close(&ix->runs[i]);
	ix->nruns = 0;
	free(ix->sflags);
	ix->sflags = NULL;
	ix->nsflags = 0;
	ix->need_recount = 0;
	free(packs);
out_free:
	free(b);
	return rc;
}

/* Writer: remove what the loaded manifest does not name (runs of a crashed writer,
 * temporary files). */
static void clean_dir(struct index *ix)
{
	DIR *d = opendir(ix->pdir);
	struct dirent *e;
	char path[PATH_MAX];

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		unsigned long long seq;
		char tail[8];
		int stray = 0;

		if (sscanf(e->d_name, "run-%16llx%7s", &seq, tail) == 2 && !strcmp(tail, ".idx"))
			stray = !seq_in(ix->man_seqs, ix->man_n, seq);
		else
			stray = !strcmp(e->d_name, "manifest.tmp") ||
				!strncmp(e->d_name, "cairn-index.", 12);
		if (stray && (size_t)snprintf(path, sizeof(path), "%s/%s", ix->pdir, e->d_name) < sizeof(path))
			unlink(path);
	}
	closedir(d);
}

/* ---- interface ---- */

void index_bg_start(struct index *ix)
{
	if (pthread_create(&ix->bg, NULL, bg_main, ix) == 0)
		ix->bg_running = 1;
	else
		log_warn("index", "no background merge thread: runs are not merged");
}

/* Settle ix->mode, ix->pdir and ix->dir for p. */
static void setup_dir(struct index *ix, const struct index_persist *p)
{
	char path[PATH_MAX];
	int rc;

	snprintf(ix->dir, sizeof(ix->dir), "%s", index_tmp_dir());
	if (!p || !p->dir || !*p->dir)
		return;
	if ((size_t)snprintf(ix->pdir, sizeof(ix->pdir), "%s", p->dir) >= sizeof(ix->pdir)) {
		log_warn("index", "index directory path too long; the index is not kept across opens");
		return;
	}
	/* A reader (a read-only open, e.g. a command beside a running daemon) never
	 * creates or changes anything in the directory: it loads what is there, or
	 * nothing when there is none, and its own runs go to $TMPDIR. Reading is safe
	 * while the writer merges and checkpoints: runs are written once and fsync'd
	 * before a manifest names them, the manifest is replaced by rename, a run stays
	 * until a newer manifest no longer names it (and an open descriptor keeps it
	 * readable after that), every page is verified at load, and a run removed between
	 * the reader's manifest read and its open makes it read the manifest again. */
	if (!p->writer || !p->owner.packs) {
		struct stat sb;

		if (stat(ix->pdir, &sb) < 0 || !S_ISDIR(sb.st_mode))
			return;
		rc = 0;
	} else {
		rc = util_mkdirs(ix->pdir, 0700);
	}
	if (rc) {
		log_warn("index", "index directory %s unusable (%s); the index is not kept across "
			 "opens", ix->pdir, strerror(-rc));
		return;
	}
	memcpy(ix->owner_id, p->owner_id, 16);
	ix->mode = MODE_READER;
	if (p->writer && p->owner.packs) {
		snprintf(path, sizeof(path), "%s/lock", ix->pdir);
		ix->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (ix->lock_fd >= 0 && flock(ix->lock_fd, LOCK_EX | LOCK_NB) == 0) {
			ix->mode = MODE_WRITER;
			ix->owner = p->owner;
		} else {
			log_warn("index", "index directory %s is in use by another process: this one "
				 "only reads it", ix->pdir);
			if (ix->lock_fd >= 0)
				close(ix->lock_fd);
			ix->lock_fd = -1;
		}
	}
	if (ix->mode == MODE_WRITER)
		snprintf(ix->dir, sizeof(ix->dir), "%s", ix->pdir);
}

static void unlink_manifest(struct index *ix)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/manifest", ix->pdir);
	if (unlink(path) == 0)
		fsync_dir(ix->pdir);
}

int index_open_persisted(const struct index_persist *p, struct index **out,
			 struct index_pack **packs, uint32_t *npacks, int *loaded)
{
	struct index *ix;
	const char *why = NULL;
	int rc;

	*packs = NULL;
	*npacks = 0;
	*loaded = 0;
	rc = index_alloc(&ix);
	if (rc)
		return rc;
	setup_dir(ix, p);
	if (ix->mode != MODE_TEMP) {
		/* a reader may meet a run the writer just merged away: read the manifest again */
		for (int tries = 0; tries < 3; tries++) {
			rc = manifest_load(ix, packs, npacks, &why);
			if (rc != -ENOENT || !why)
				break;
		}
		if (rc == 0) {
			*loaded = 1;
		} else {
			if (why)
				log_warn("index", "the index table kept in %s is unsound (%s): rebuilding "
					 "it from the repository's index segments", ix->pdir, why);
			if (ix->mode == MODE_WRITER)
				unlink_manifest(ix);
		}
		if (ix->mode == MODE_WRITER)
			clean_dir(ix);
	}
	index_bg_start(ix);
	*out = ix;
	return 0;
}

void index_discard(struct index *ix)
{
	bg_pause(ix);
	if (ix->mode == MODE_WRITER)
		unlink_manifest(ix);
	pthread_mutex_lock(&ix->mu);
	free(ix->man_seqs);
	ix->man_seqs = NULL;
	ix->man_n = 0;
	for (unsigned i = 0; i < ix->nruns; i++)
		run_bury(ix, &ix->runs[i], run_retire(ix, &ix->runs[i]));
	ix->nruns = 0;
	if (ix->nsflags)
		memset(ix->sflags, 0, ix->nsflags);
	pthread_mutex_unlock(&ix->mu);
	for (size_t i = 0; i <= ix->mask; i++)
		ix->slots[i].loc.pack = EMPTY;
	ix->used = 0;
	memset(&ix->tot, 0, sizeof(ix->tot));
	ix->need_recount = 0;
	bg_resume(ix);
}

/* The totals from the runs (mem empty, background paused): the newest record of each
 * id counts unless it is a tombstone or names a dead slot. */
static int recount(struct index *ix)
{
	struct run_iter *it = calloc(ix->nruns ? ix->nruns : 1, sizeof(*it));
	const uint8_t **head = calloc(ix->nruns ? ix->nruns : 1, sizeof(*head));
	struct index_totals t = { 0 };
	uint8_t cur[CHUNK_ID_LEN];
	unsigned opened = 0;
	int rc = 0;

	if (!it || !head) {
		rc = -ENOMEM;
		goto out_free;
	}
	for (; opened < ix->nruns && !rc; opened++) {
		rc = iter_open(&ix->runs[opened], &it[opened]);
		if (!rc)
			head[opened] = iter_next(&it[opened], &rc);
	}
	while (!rc) {
		int best = -1;

		for (unsigned r = 0; r < ix->nruns; r++)
			if (head[r] && (best < 0 || memcmp(head[r], head[best], CHUNK_ID_LEN) <= 0))
				best = (int)r; /* the newest of equal ids */
		if (best < 0)
			break;
		if (!(head[best][53] & FLAG_TOMB) && !slot_dead(ix, le_get32(head[best] + 32))) {
			struct index_loc l;

			index_rec_decode(head[best], &l);
			index_tot_add(&t, &l, 1);
		}
		memcpy(cur, head[best], CHUNK_ID_LEN);
		for (unsigned r = 0; r < ix->nruns && !rc; r++)
			if (head[r] && !memcmp(head[r], cur, CHUNK_ID_LEN))
				head[r] = iter_next(&it[r], &rc);
	}
	if (!rc)
		ix->tot = t;
out_free:
	for (unsigned r = 0; it && r < opened; r++)
		free(it[r].buf);
	free(it);
	free(head);
	return rc;
}

int index_settle(struct index *ix)
{
	int rc;

	if (!ix->need_recount)
		return 0;
	if (ix->used && (rc = index_mem_flush(ix)) != 0)
		return rc;
	bg_pause(ix);
	rc = recount(ix);
	bg_resume(ix);
	if (rc == 0)
		ix->need_recount = 0;
	return rc;
}

int index_checkpoint(struct index *ix, int sync)
{
	if (!ix || ix->mode != MODE_WRITER)
		return 0;
	ix->ckpt_on = 1;
	return index_checkpoint_take(ix, sync);
}

void index_quiesce(struct index *ix)
{
	pthread_mutex_lock(&ix->mu);
	while (ix->bg_running && (ix->busy || ix->pending || ix->writing || pick(ix, 0) >= 0))
		pthread_cond_wait(&ix->cond, &ix->mu);
	pthread_mutex_unlock(&ix->mu);
}

void index_destroy(struct index *ix)
{
	struct mjob *job;

	if (!ix)
		return;
	pthread_mutex_lock(&ix->mu);
	ix->stop = 1;
	pthread_cond_broadcast(&ix->cond);
	pthread_mutex_unlock(&ix->mu);
	if (ix->bg_running)
		pthread_join(ix->bg, NULL);
	ix->bg_running = 0;
	job = ix->pending;
	ix->pending = NULL;
	if (job) {
		ix->writing = 1;
		write_job(ix, job);
	}
	for (unsigned i = 0; i < ix->nruns; i++) {
		/* a writer's runs no manifest names would be strays at the next open */
		if (ix->mode == MODE_WRITER && ix->runs[i].seq &&
		    !seq_in(ix->man_seqs, ix->man_n, ix->runs[i].seq))
			unlink_run(ix, ix->runs[i].seq);
		run_close(&ix->runs[i]);
	}
	for (unsigned i = 0; i < ix->ndoomed; i++)
		if (!seq_in(ix->man_seqs, ix->man_n, ix->doomed[i]))
			unlink_run(ix, ix->doomed[i]);
	if (ix->lock_fd >= 0)
		close(ix->lock_fd);
	pthread_cond_destroy(&ix->cond);
	pthread_mutex_destroy(&ix->mu);
	free(ix->doomed);
	free(ix->man_seqs);
	free(ix->sflags);
	free(ix->slots);
	free(ix);
}
