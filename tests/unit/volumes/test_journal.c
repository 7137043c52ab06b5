/* Unit tests of volumes/journal.c: round trip, torn tails, rotation, deletion,
 * group commit. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "journal.h"
#include "log.h"

static const uint8_t volid[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

static char *tmpdir(void)
{
	char *d = strdup("/tmp/cairn-jtest-XXXXXX");

	if (!mkdtemp(d))
		abort();
	return d;
}

static void rmtree(const char *d)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	if (system(cmd))
		fprintf(stderr, "rm failed\n");
}

/* Deterministic payload for record i. */
static uint32_t plen_of(uint64_t i) { return (uint32_t)((i * 7919) % 5 * 512); }
static void fill(uint8_t *p, uint32_t n, uint64_t i)
{
	for (uint32_t k = 0; k < n; k++)
		p[k] = (uint8_t)(i * 31 + k * 7);
}

static void append_n(struct journal *j, uint64_t first, uint64_t n)
{
	uint8_t buf[4096];

	for (uint64_t i = first; i < first + n; i++) {
		uint32_t pl = plen_of(i);
		uint64_t seq = 0;

		fill(buf, pl, i);
		CHECK_EQ(journal_append(j, pl ? JOURNAL_WRITE : JOURNAL_FLUSH, i * 512, pl, buf, pl,
					&seq), 0);
		CHECK_EQ(seq, i);
	}
}

/* Check records from..to-1 are exactly what append_n wrote and nothing follows. */
static void verify(struct journal *j, uint64_t from, uint64_t to)
{
	struct journal_iter *it;
	struct journal_rec r;
	uint8_t buf[4096];
	uint64_t want = from;
	int ret;

	CHECK_EQ(journal_iter_open(j, from, &it), 0);
	while ((ret = journal_iter_next(it, &r)) == 1) {
		uint32_t pl = plen_of(want);

		CHECK_EQ(r.seq, want);
		CHECK_EQ(r.payload_len, pl);
		CHECK_EQ(r.offset, want * 512);
		CHECK_EQ(r.type, pl ? JOURNAL_WRITE : JOURNAL_FLUSH);
		fill(buf, pl, want);
		if (r.payload_len == pl)
			CHECK_MEM(r.payload, buf, pl);
		want++;
	}
	CHECK_EQ(ret, 0);
	CHECK_EQ(want, to);
	journal_iter_close(it);
}

static void test_round_trip(void)
{
	char *d = tmpdir();
	struct journal *j;

	CHECK_EQ(journal_open(d, volid, 1, 0, &j), 0);
	CHECK_EQ(journal_next_seq(j), 1);
	append_n(j, 1, 100);
	verify(j, 1, 101);
	verify(j, 50, 101);
	journal_close(j);
	CHECK_EQ(journal_open(d, volid, 1, 0, &j), 0);
	CHECK_EQ(journal_next_seq(j), 101);
	verify(j, 1, 101);
	append_n(j, 101, 10);
	journal_close(j);
	CHECK_EQ(journal_open(d, volid, 1, 0, &j), 0);
	verify(j, 1, 111);
	journal_close(j);
	{
		uint8_t other[16] = { 9 };

		CHECK_EQ(journal_open(d, other, 1, 0, &j), -EBADMSG);
		CHECK_EQ(journal_open(d, volid, 1, 0, &j), 0);
		verify(j, 1, 111);
		journal_close(j);
	}
	rmtree(d);
	free(d);
}

static char *only_segment(const char *d)
{
	DIR *dd = opendir(d);
	struct dirent *de;
	char *p = NULL;

	while ((de = readdir(dd)))
		if (strstr(de->d_name, ".log")) {
			if (asprintf(&p, "%s/%s", d, de->d_name) < 0)
				abort();
			break;
		}
	closedir(dd);
	return p;
}

static off_t fsize(const char *p)
{
	struct stat st;

	return stat(p, &st) ? -1 : st.st_size;
}

/* Record i's end offset in a single segment written by append_n from 1. */
static off_t end_of(uint64_t i)
{
	off_t o = 64;

	for (uint64_t k = 1; k <= i; k++)
		o += 56 + plen_of(k);
	return o;
}

static void torn(int how)
{
	char *d = tmpdir(), *seg;
	struct journal *j;
	int fd;

	CHECK_EQ(journal_open(d, volid, 1, 0, &j), 0);
	append_n(j, 1, 20);
	journal_close(j);
	seg = only_segment(d);
	CHECK_EQ(fsize(seg), end_of(20));
	fd = open(seg, O_RDWR);
	if (how == 0) {         /* truncated mid-record 20 */
		CHECK_EQ(ftruncate(fd, end_of(19) + 30), 0);
	} else if (how == 1) {  /* a byte flipped in the last record */
		uint8_t b;
		off_t at = end_of(20) - 9;

		CHECK_EQ(pread(fd, &b, 1, at), 1);
		b ^= 0x40;
		CHECK_EQ(pwrite(fd, &b, 1, at), 1);
	} else if (how == 2) {  /* garbage after the last record */
		char junk[300];

		memset(junk, 0xA5, sizeof(junk));
		CHECK_EQ(pwrite(fd, junk, sizeof(junk), end_of(20)), (ssize_t)sizeof(junk));
	} else {                /* a byte flipped in record 8: 8..20 are cut */
		uint8_t b;
		off_t at = end_of(7) + 20;

		CHECK_EQ(pread(fd, &b, 1, at), 1);
		b ^= 1;
		CHECK_EQ(pwrite(fd, &b, 1, at), 1);
	}
	close(fd);
	CHECK_EQ(journal_open(d, volid, 1, 0, &j), 0);
	{
		uint64_t keep = how == 2 ? 21 : how == 3 ? 8 : 20;

		CHECK_EQ(journal_next_seq(j), keep);
		verify(j, 1, keep);
		CHECK_EQ(fsize(seg), end_of(keep - 1));
		/* appending continues the chain and survives a reopen */
		append_n(j, keep, 5);
		journal_close(j);
		CHECK_EQ(journal_open(d, volid, 1, 0, &j), 0);
		verify(j, 1, keep + 5);
		journal_close(j);
	}
	free(seg);
	rmtree(d);
	free(d);
}

static void test_torn_truncated(void) { torn(0); }
static void test_torn_flipped(void) { torn(1); }
static void test_torn_garbage(void) { torn(2); }
static void test_torn_middle(void) { torn(3); }

static unsigned count_segments(const char *d)
{
	DIR *dd = opendir(d);
	struct dirent *de;
	unsigned n = 0;

	while ((de = readdir(dd)))
		n += strstr(de->d_name, ".log") != NULL;
	closedir(dd);
	return n;
}

static void test_rotation_and_delete(void)
{
	char *d = tmpdir();
	struct journal *j;
	unsigned nseg;
	uint64_t bytes;

	CHECK_EQ(journal_open(d, volid, 1, 64 << 10, &j), 0);
	append_n(j, 1, 400); /* ~400 KiB: several 64 KiB segments */
	nseg = count_segments(d);
	CHECK(nseg >= 5);
	CHECK_EQ(journal_segments(j), nseg);
	verify(j, 1, 401);
	journal_close(j);

	CHECK_EQ(journal_open(d, volid, 1, 64 << 10, &j), 0);
	CHECK_EQ(journal_next_seq(j), 401);
	verify(j, 1, 401);
	verify(j, 333, 401);
	bytes = journal_bytes(j);
	CHECK_EQ(journal_delete_before(j, 200), 0);
	CHECK(count_segments(d) < nseg);
	CHECK(journal_bytes(j) < bytes);
	CHECK(journal_first_seq(j) <= 200);
	CHECK(journal_first_seq(j) > 1);
	verify(j, 200, 401);
	/* deleting everything keeps the active segment */
	CHECK_EQ(journal_delete_before(j, 1000), 0);
	CHECK_EQ(count_segments(d), 1);
	append_n(j, 401, 3);
	journal_close(j);
	CHECK_EQ(journal_open(d, volid, 1, 64 << 10, &j), 0);
	CHECK_EQ(journal_next_seq(j), 404);
	verify(j, journal_first_seq(j), 404);
	journal_close(j);
	rmtree(d);
	free(d);
}

/* A torn record in a middle segment removes every later segment. */
static void test_torn_middle_segment(void)
{
	char *d = tmpdir(), path[512];
	struct journal *j;
	uint64_t cut_seq;
	int fd;

	CHECK_EQ(journal_open(d, volid, 1, 64 << 10, &j), 0);
	append_n(j, 1, 400);
	journal_close(j);
	{
		DIR *dd = opendir(d);
		struct dirent *de;
		uint64_t firsts[64];
		unsigned n = 0;

		while ((de = readdir(dd)))
			if (strstr(de->d_name, ".log") && n < 64)
				firsts[n++] = strtoull(de->d_name, NULL, 16);
		closedir(dd);
		for (unsigned a = 0; a < n; a++)
			for (unsigned b = a + 1; b < n; b++)
				if (firsts[b] < firsts[a]) {
					uint64_t t = firsts[a];
					firsts[a] = firsts[b];
					firsts[b] = t;
				}
		CHECK(n >= 4);
		cut_seq = firsts[2] + 1; /* flip a byte in the 2nd record of segment 3 */
		snprintf(path, sizeof(path), "%s/%016" PRIx64 ".log", d, firsts[2]);
	}
	fd = open(path, O_RDWR);
	{
		uint8_t b;
		off_t at = 64 + 56 + plen_of(cut_seq - 1) + 10;

		CHECK_EQ(pread(fd, &b, 1, at), 1);
		b ^= 0xff;
		CHECK_EQ(pwrite(fd, &b, 1, at), 1);
	}
	close(fd);
	CHECK_EQ(journal_open(d, volid, 1, 64 << 10, &j), 0);
	CHECK_EQ(journal_next_seq(j), cut_seq);
	CHECK_EQ(count_segments(d), 3);
	verify(j, 1, cut_seq);
	journal_close(j);
	rmtree(d);
	free(d);
}

/* min_next_seq above the journal's end: seqs are never reused and the chain holds. */
static void test_min_next_seq(void)
{
	char *d = tmpdir();
	struct journal *j;
	uint64_t seq;

	CHECK_EQ(journal_open(d, volid, 1, 0, &j), 0);
	append_n(j, 1, 5);
	journal_close(j);
	CHECK_EQ(journal_open(d, volid, 50, 0, &j), 0);
	CHECK_EQ(journal_next_seq(j), 50);
	CHECK_EQ(journal_append(j, JOURNAL_MARK, 0, 0, "x", 1, &seq), 0);
	CHECK_EQ(seq, 50);
	journal_close(j);
	CHECK_EQ(journal_open(d, volid, 1, 0, &j), 0);
	CHECK_EQ(journal_next_seq(j), 51);
	CHECK_EQ(journal_segments(j), 2);
	{
		struct journal_iter *it;
		struct journal_rec r;
		uint64_t want[] = { 4, 5, 50 };

		CHECK_EQ(journal_iter_open(j, 4, &it), 0);
		for (int i = 0; i < 3; i++) {
			CHECK_EQ(journal_iter_next(it, &r), 1);
			CHECK_EQ(r.seq, want[i]);
		}
		CHECK_EQ(r.type, JOURNAL_MARK);
		CHECK_EQ(journal_iter_next(it, &r), 0);
		journal_iter_close(it);
	}
	journal_close(j);
	rmtree(d);
	free(d);
}

struct gc_arg {
	struct journal *j;
	int errs;
};

static void *gc_thread(void *p)
{
	struct gc_arg *a = p;
	uint8_t buf[4096] = { 0 };

	for (int i = 0; i < 200; i++) {
		uint64_t seq;

		if (journal_append(a->j, JOURNAL_WRITE, 0, 4096, buf, 4096, &seq) ||
		    journal_sync(a->j, seq))
			a->errs++;
	}
	return NULL;
}

static void test_group_commit(void)
{
	char *d = tmpdir();
	struct journal *j;
	pthread_t th[4];
	struct gc_arg a[4];

	CHECK_EQ(journal_open(d, volid, 1, 256 << 10, &j), 0);
	for (int i = 0; i < 4; i++) {
		a[i] = (struct gc_arg){ j, 0 };
		pthread_create(&th[i], NULL, gc_thread, &a[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(a[i].errs, 0);
	}
	CHECK_EQ(journal_next_seq(j), 801);
	CHECK_EQ(journal_sync(j, 800), 0);
	CHECK_EQ(journal_sync(j, 100000), 0); /* beyond the end: covers everything */
	journal_close(j);
	CHECK_EQ(journal_open(d, volid, 1, 256 << 10, &j), 0);
	CHECK_EQ(journal_next_seq(j), 801);
	journal_close(j);
	rmtree(d);
	free(d);
}

struct scan_arg {
	uint64_t first, n, next;
	int bad;
};

static int scan_cb(void *arg, const struct journal_rec *rec, uint64_t seg_first, uint64_t pos)
{
	struct scan_arg *a = arg;
	uint8_t want[4096];

	(void)seg_first;
	(void)pos;
	if (!a->n)
		a->first = rec->seq;
	else if (rec->seq != a->next)
		a->bad = 1;
	fill(want, rec->payload_len, rec->seq);
	if (rec->payload_len && memcmp(want, rec->payload, rec->payload_len))
		a->bad = 1;
	a->next = rec->seq + 1;
	a->n++;
	return 0;
}

/* The index beside a segment lets a scan and a time lookup start near the record they
 * want; a damaged index only makes them start earlier, never wrong. Two directories
 * make one view (the second holding an older segment, as fetched from a repository). */
static void test_index_and_view(void)
{
	char *d = tmpdir(), *d2 = tmpdir(), path[512];
	struct journal_view v = { { d, NULL } };
	struct scan_arg a = { 0 };
	struct journal *j;
	uint64_t seq, end = 0, n = 4000; /* ~5 MiB of records: several index entries */
	FILE *f;

	CHECK_EQ(journal_open(d, volid, 1, 0, &j), 0);
	append_n(j, 1, n);
	journal_close(j);
	CHECK_EQ(journal_scan(&v, 2500, scan_cb, &a, &end), 0);
	CHECK_EQ(a.first, 2500);
	CHECK_EQ(a.n, n + 1 - 2500);
	CHECK_EQ(end, n + 1);
	CHECK(!a.bad);
	CHECK_EQ(journal_seek_time(&v, UINT64_MAX, &seq), 0);
	CHECK(seq > 1 && seq <= n); /* an indexed record, not the segment start */
	/* damage the index: the scan is the same */
	snprintf(path, sizeof(path), "%s/%016x.idx", d, 1);
	f = fopen(path, "r+b");
	CHECK(f != NULL);
	fseek(f, 40, SEEK_SET);
	fputs("garbage garbage garbage garbage garbage garbage", f);
	fclose(f);
	memset(&a, 0, sizeof(a));
	CHECK_EQ(journal_scan(&v, 2500, scan_cb, &a, &end), 0);
	CHECK_EQ(a.first, 2500);
	CHECK_EQ(a.n, n + 1 - 2500);
	CHECK(!a.bad);
	/* reopen and go on: a new segment; the old one moves to the second directory */
	CHECK_EQ(journal_open(d, volid, 1, 0, &j), 0);
	CHECK_EQ(journal_seal(j), 0);
	append_n(j, n + 1, 100);
	journal_close(j);
	{
		char from[512], to[512];

		snprintf(from, sizeof(from), "%s/%016x.log", d, 1);
		snprintf(to, sizeof(to), "%s/%016x.log", d2, 1);
		CHECK_EQ(rename(from, to), 0);
	}
	v.dir[1] = d2;
	memset(&a, 0, sizeof(a));
	CHECK_EQ(journal_scan(&v, 10, scan_cb, &a, &end), 0);
	CHECK_EQ(a.first, 10);
	CHECK_EQ(a.n, n + 100 + 1 - 10);
	CHECK_EQ(end, n + 101);
	CHECK(!a.bad);
	rmtree(d);
	rmtree(d2);
	free(d);
	free(d2);
}

int main(void)
{
	log_init();
	RUN(test_round_trip);
	RUN(test_torn_truncated);
	RUN(test_torn_flipped);
	RUN(test_torn_garbage);
	RUN(test_torn_middle);
	RUN(test_rotation_and_delete);
	RUN(test_torn_middle_segment);
	RUN(test_min_next_seq);
	RUN(test_group_commit);
	RUN(test_index_and_view);
	return check_result();
}
