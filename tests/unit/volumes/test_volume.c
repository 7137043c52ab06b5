/* Unit tests of the volume API (volumes/volume.c, volume_head.c) on a real local
 * repository: names, IO against an in-memory oracle, checkpoints, reopen. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "log.h"
#include "util.h"
#include "volume.h"
#include "vtest.h"

struct names {
	char n[8][VOLUME_NAME_MAX + 1];
	int count;
};

static int collect(void *arg, const struct volume_info *vi)
{
	struct names *ns = arg;

	if (ns->count < 8)
		strcpy(ns->n[ns->count], vi->name);
	ns->count++;
	return 0;
}

static void test_names(void)
{
	struct vt t;
	struct volume_info a, b, x;
	struct volume *v;
	struct names ns = { 0 };
	struct volume_open_opts oo = { 0 };

	CHECK_EQ(vt_init(&t), 0);
	CHECK_EQ(vt_open(&t), 0);
	oo.state_dir = t.state_dir;
	CHECK(volume_name_valid("db-01.img_x"));
	CHECK(!volume_name_valid("-x"));
	CHECK(!volume_name_valid("a/b"));
	CHECK(!volume_name_valid(""));
	CHECK_EQ(volume_create(&t.cs, "zeta", 1 << 20, 0, &a), 0);
	CHECK_EQ(a.chunk_size, CHUNK_SIZE_DEFAULT);
	CHECK_EQ(strlen(a.id), 32);
	CHECK_EQ(volume_create(&t.cs, "alpha", 10 << 20, 4096, &b), 0);
	CHECK_EQ(volume_create(&t.cs, "zeta", 1 << 20, 0, NULL), -EEXIST);
	CHECK_EQ(volume_create(&t.cs, "bad name", 1 << 20, 0, NULL), -EINVAL);
	CHECK_EQ(volume_create(&t.cs, "c", 0, 0, NULL), -EINVAL);
	CHECK_EQ(volume_create(&t.cs, "c", 1000, 0, NULL), -EINVAL);
	CHECK_EQ(volume_create(&t.cs, "c", 1 << 20, 3000, NULL), -EINVAL);
	CHECK_EQ(volume_create(&t.cs, "c", 1 << 20, 2048, NULL), -EINVAL);
	CHECK_EQ(volume_create(&t.cs, "c", 1 << 20, 2u << 20, NULL), -EINVAL);
	CHECK_EQ(volume_list(&t.cs, collect, &ns), 0);
	CHECK_EQ(ns.count, 2);
	CHECK(!strcmp(ns.n[0], "alpha") && !strcmp(ns.n[1], "zeta"));
	CHECK_EQ(volume_lookup(&t.cs, "alpha", &x), 0);
	CHECK(!strcmp(x.id, b.id));
	CHECK_EQ(x.size, 10 << 20);
	CHECK_EQ(x.chunk_size, 4096);
	CHECK_EQ(volume_lookup(&t.cs, "nope", &x), -ENOENT);
	CHECK_EQ(volume_open(&t.cs, "nope", &oo, &v), -ENOENT);

	CHECK_EQ(volume_open(&t.cs, "zeta", &oo, &v), 0);
	{
		struct volume *v2;

		CHECK_EQ(volume_open(&t.cs, "zeta", &oo, &v2), -EBUSY);
	}
	CHECK_EQ(volume_delete(&t.cs, "zeta"), -EBUSY);
	CHECK_EQ(volume_close(v), 0);
	CHECK_EQ(volume_delete(&t.cs, "zeta"), 0);
	CHECK_EQ(volume_lookup(&t.cs, "zeta", &x), -ENOENT);
	CHECK_EQ(volume_delete(&t.cs, "zeta"), -ENOENT);
	ns.count = 0;
	CHECK_EQ(volume_list(&t.cs, collect, &ns), 0);
	CHECK_EQ(ns.count, 1);
	/* the name is free again, with a new identity */
	CHECK_EQ(volume_create(&t.cs, "zeta", 2 << 20, 0, &x), 0);
	CHECK(strcmp(x.id, a.id) != 0);
	/* survives closing the repository */
	vt_close(&t);
	CHECK_EQ(vt_open(&t), 0);
	ns.count = 0;
	CHECK_EQ(volume_list(&t.cs, collect, &ns), 0);
	CHECK_EQ(ns.count, 2);
	CHECK_EQ(volume_lookup(&t.cs, "zeta", &x), 0);
	CHECK_EQ(x.size, 2 << 20);
	vt_fini(&t);
}

static void test_errors(void)
{
	struct vt t;
	struct volume *v;
	struct volume_open_opts oo = { 0 };
	char buf[4096] = { 0 };

	CHECK_EQ(vt_init(&t), 0);
	CHECK_EQ(vt_open(&t), 0);
	oo.state_dir = t.state_dir;
	CHECK_EQ(volume_create(&t.cs, "e", 1 << 20, 4096, NULL), 0);
	CHECK_EQ(volume_open(&t.cs, "e", &oo, &v), 0);
	CHECK_EQ(volume_write(v, 100, buf, 512, 0), -EINVAL);
	CHECK_EQ(volume_write(v, 0, buf, 100, 0), -EINVAL);
	CHECK_EQ(volume_write(v, (1 << 20) - 512, buf, 1024, 0), -ERANGE);
	CHECK_EQ(volume_read(v, 1 << 20, buf, 512), -ERANGE);
	CHECK_EQ(volume_write_zeroes(v, 0, 2 << 20, 0), -ERANGE);
	CHECK_EQ(volume_write(v, (1 << 20) - 512, buf, 512, 1), 0);
	CHECK_EQ(volume_close(v), 0);
	vt_fini(&t);
}

/* The physical block size: kept in the head across a reopen of the repository (512
 * stored as the default), refused unless a power of two from 512 to the chunk size that
 * divides the size; the volume's IO is unchanged by it (512-byte logical blocks). */
static void test_phys_block(void)
{
	struct vt t;
	struct volume_info x;
	struct volume *v;
	struct volume_open_opts oo = { 0 };
	char buf[512] = { 7 };

	CHECK_EQ(vt_init(&t), 0);
	CHECK_EQ(vt_open(&t), 0);
	oo.state_dir = t.state_dir;
	CHECK_EQ(volume_create_keyed(&t.cs, "e4k", 1 << 20, 0, 4096, NULL, 0, 0, &x), 0);
	CHECK_EQ(x.phys_block, 4096);
	CHECK_EQ(volume_create_keyed(&t.cs, "n512", 1 << 20, 0, 512, NULL, 0, 0, &x), 0);
	CHECK_EQ(x.phys_block, 0);
	CHECK_EQ(volume_create_keyed(&t.cs, "c64", 1 << 20, 65536, 65536, NULL, 0, 0, NULL), 0);
	CHECK_EQ(volume_create_keyed(&t.cs, "x", 1 << 20, 0, 3000, NULL, 0, 0, NULL), -EINVAL);
	CHECK_EQ(volume_create_keyed(&t.cs, "x", 1 << 20, 0, 256, NULL, 0, 0, NULL), -EINVAL);
	CHECK_EQ(volume_create_keyed(&t.cs, "x", 1 << 20, 4096, 8192, NULL, 0, 0, NULL), -EINVAL);
	CHECK_EQ(volume_create_keyed(&t.cs, "x", (1 << 20) + 512, 0, 4096, NULL, 0, 0, NULL),
		 -EINVAL);
	CHECK_EQ(volume_lookup(&t.cs, "x", &x), -ENOENT);
	vt_close(&t);
	CHECK_EQ(vt_open(&t), 0);
	CHECK_EQ(volume_lookup(&t.cs, "e4k", &x), 0);
	CHECK_EQ(x.phys_block, 4096);
	CHECK_EQ(volume_lookup(&t.cs, "n512", &x), 0);
	CHECK_EQ(x.phys_block, 0);
	CHECK_EQ(volume_lookup(&t.cs, "c64", &x), 0);
	CHECK_EQ(x.phys_block, 65536);
	CHECK_EQ(volume_open(&t.cs, "e4k", &oo, &v), 0);
	CHECK_EQ(volume_write(v, 512, buf, 512, 1), 0);
	CHECK_EQ(volume_close(v), 0);
	/* a reopened head (written again by the close) keeps it */
	CHECK_EQ(volume_lookup(&t.cs, "e4k", &x), 0);
	CHECK_EQ(x.phys_block, 4096);
	vt_fini(&t);
}

/* ---- random IO against an oracle ---- */

static void fill_pattern(uint8_t *p, size_t n, uint64_t tag)
{
	uint64_t s = tag * 0x9E3779B97F4A7C15ull + 1;

	for (size_t i = 0; i < n; i += 8) {
		uint64_t r = vt_rand(&s);

		memcpy(p + i, &r, MIN((size_t)8, n - i));
	}
}

static int compare_all(struct volume *v, const uint8_t *oracle, uint64_t size)
{
	uint8_t *buf = malloc(1 << 20);
	int bad = 0;

	for (uint64_t off = 0; off < size && !bad; off += 1 << 20) {
		size_t n = (size_t)MIN((uint64_t)1 << 20, size - off);

		CHECK_EQ(volume_read(v, off, buf, n), 0);
		if (memcmp(buf, oracle + off, n)) {
			for (size_t i = 0; i < n; i++)
				if (buf[i] != oracle[off + i]) {
					fprintf(stderr, "mismatch at byte %llu\n",
						(unsigned long long)(off + i));
					break;
				}
			bad = 1;
		}
	}
	free(buf);
	CHECK(!bad);
	return bad;
}

static void oracle_case(uint32_t chunk_size, uint64_t seed)
{
	const uint64_t size = (24ull << 20) + 1536;
	struct vt t;
	struct volume *v;
	struct volume_open_opts oo = { 0 };
	struct volume_stats st;
	uint8_t *oracle = calloc(1, size), *wbuf = malloc(1 << 20), *rbuf = malloc(4 << 20);
	uint64_t s = seed;
	int bad = 0;

	CHECK_EQ(vt_init(&t), 0);
	CHECK_EQ(vt_open(&t), 0);
	oo.state_dir = t.state_dir;
	oo.overlay_bytes = 8ull * chunk_size > (2u << 20) ? 8ull * chunk_size : (2u << 20);
	oo.segment_bytes = 256 << 10;
	oo.journal_max = 2 << 20;
	CHECK_EQ(volume_create(&t.cs, "o", size, chunk_size, NULL), 0);
	CHECK_EQ(volume_open(&t.cs, "o", &oo, &v), 0);
	CHECK_EQ(compare_all(v, oracle, size), 0);
	for (int op = 0; op < 240 && !bad; op++) {
		uint64_t kind = vt_rand(&s) % 10;
		uint64_t maxsec = size / 512;
		uint64_t len = ((vt_rand(&s) % 3 == 0) ? vt_rand(&s) % 2048 : vt_rand(&s) % 16) + 1;
		uint64_t off;

		len *= 512;
		if (len > size)
			len = size;
		off = (vt_rand(&s) % (maxsec - len / 512 + 1)) * 512;
		if (kind < 6) {
			fill_pattern(wbuf, len, seed * 1000 + (uint64_t)op);
			CHECK_EQ(volume_write(v, off, wbuf, len, kind == 0), 0);
			memcpy(oracle + off, wbuf, len);
		} else if (kind < 8) {
			len = MIN(len * 3, size - off);
			CHECK_EQ(volume_write_zeroes(v, off, len, 0), 0);
			memset(oracle + off, 0, len);
		} else {
			len = MIN(len * 2, size - off);
			CHECK_EQ(volume_read(v, off, rbuf, len), 0);
			if (memcmp(rbuf, oracle + off, len)) {
				fprintf(stderr, "read mismatch op %d off %llu len %llu\n", op,
					(unsigned long long)off, (unsigned long long)len);
				CHECK(0);
				bad = 1;
			}
		}
		if (op % 60 == 59) {
			CHECK_EQ(volume_checkpoint(v), 0);
			volume_get_stats(v, &st);
			CHECK_EQ(st.overlay_chunks, 0);
			CHECK_EQ(st.ckpt_seq, st.next_seq);
			bad |= compare_all(v, oracle, size);
		}
		if (op == 100) {
			CHECK_EQ(volume_flush(v), 0);
			/* every write so far is in the overlay, the map, or both */
			bad |= compare_all(v, oracle, size);
		}
	}
	bad |= compare_all(v, oracle, size);
	volume_get_stats(v, &st);
	CHECK(st.writes > 0 && st.folds > 0);
	/* backpressure bounds the unfolded journal; the rest is retained CDP history */
	CHECK(st.unfolded_bytes <= oo.journal_max + (oo.segment_bytes << 1) + (1 << 20));
	CHECK(st.journal_bytes >= st.unfolded_bytes);
	CHECK_EQ(volume_close(v), 0);

	/* reopen: everything from the stored map */
	CHECK_EQ(volume_open(&t.cs, "o", &oo, &v), 0);
	volume_get_stats(v, &st);
	CHECK_EQ(st.overlay_chunks, 0);
	bad |= compare_all(v, oracle, size);
	/* more writes, then close the repository too and reopen both */
	for (int op = 0; op < 20; op++) {
		uint64_t len = (vt_rand(&s) % 300 + 1) * 512;
		uint64_t off = (vt_rand(&s) % ((size - len) / 512 + 1)) * 512;

		fill_pattern(wbuf, len, seed * 7777 + (uint64_t)op);
		CHECK_EQ(volume_write(v, off, wbuf, len, 0), 0);
		memcpy(oracle + off, wbuf, len);
	}
	CHECK_EQ(volume_close(v), 0);
	vt_close(&t);
	CHECK_EQ(vt_open(&t), 0);
	CHECK_EQ(volume_open(&t.cs, "o", &oo, &v), 0);
	bad |= compare_all(v, oracle, size);
	CHECK_EQ(volume_close(v), 0);
	/* read-only open sees the stored map */
	oo.read_only = 1;
	CHECK_EQ(volume_open(&t.cs, "o", &oo, &v), 0);
	bad |= compare_all(v, oracle, size);
	CHECK_EQ(volume_write(v, 0, wbuf, 512, 0), -EROFS);
	CHECK_EQ(volume_close(v), 0);
	vt_fini(&t);
	free(oracle);
	free(wbuf);
	free(rbuf);
}

static void test_oracle_4k(void) { oracle_case(4096, 11); }
static void test_oracle_64k(void) { oracle_case(65536, 22); }
static void test_oracle_1m(void) { oracle_case(1u << 20, 33); }

/* A write straddling a chunk boundary and a zeroed sector survive close and reopen. */
static void test_unaligned_zero_reopen(void)
{
	struct vt t;
	struct volume *v;
	struct volume_open_opts oo = { 0 };
	uint8_t a[8192], b[8192];

	CHECK_EQ(vt_init(&t), 0);
	CHECK_EQ(vt_open(&t), 0);
	oo.state_dir = t.state_dir;
	CHECK_EQ(volume_create(&t.cs, "r", 4 << 20, 65536, NULL), 0);
	CHECK_EQ(volume_open(&t.cs, "r", &oo, &v), 0);
	fill_pattern(a, sizeof(a), 5);
	CHECK_EQ(volume_write(v, 65536 - 4096, a, sizeof(a), 0), 0);
	CHECK_EQ(volume_write_zeroes(v, 65536, 512, 0), 0);
	memset(a + 4096, 0, 512);
	CHECK_EQ(volume_read(v, 65536 - 4096, b, sizeof(b)), 0);
	CHECK_MEM(a, b, sizeof(b));
	CHECK_EQ(volume_close(v), 0);
	CHECK_EQ(volume_open(&t.cs, "r", &oo, &v), 0);
	CHECK_EQ(volume_read(v, 65536 - 4096, b, sizeof(b)), 0);
	CHECK_MEM(a, b, sizeof(b));
	CHECK_EQ(volume_close(v), 0);
	vt_fini(&t);
}

static void test_sparse_tib(void)
{
	const uint64_t size = 1ull << 40;
	struct vt t;
	struct volume *v;
	struct volume_open_opts oo = { 0 };
	uint64_t offs[] = { 0, (512ull << 30) + 4096, size - 4096, (3ull << 38) + 65536 * 3 - 512 };
	uint8_t w[4096], r[4096], z[4096] = { 0 };

	CHECK_EQ(vt_init(&t), 0);
	CHECK_EQ(vt_open(&t), 0);
	oo.state_dir = t.state_dir;
	CHECK_EQ(volume_create(&t.cs, "big", size, 0, NULL), 0);
	CHECK_EQ(volume_open(&t.cs, "big", &oo, &v), 0);
	for (unsigned i = 0; i < 4; i++) {
		fill_pattern(w, sizeof(w), i);
		CHECK_EQ(volume_write(v, offs[i], w, offs[i] + 4096 > size ? 4096 : 4096, 0), 0);
	}
	CHECK_EQ(volume_checkpoint(v), 0);
	CHECK_EQ(volume_close(v), 0);
	CHECK_EQ(volume_open(&t.cs, "big", &oo, &v), 0);
	for (unsigned i = 0; i < 4; i++) {
		fill_pattern(w, sizeof(w), i);
		CHECK_EQ(volume_read(v, offs[i], r, sizeof(r)), 0);
		CHECK_MEM(w, r, sizeof(r));
	}
	CHECK_EQ(volume_read(v, 1ull << 39, r, sizeof(r)), 0);
	CHECK_MEM(r, z, sizeof(r));
	/* UNMAP of the whole disk */
	CHECK_EQ(volume_write_zeroes(v, 0, size, 0), 0);
	for (unsigned i = 0; i < 4; i++) {
		CHECK_EQ(volume_read(v, offs[i], r, sizeof(r)), 0);
		CHECK_MEM(r, z, sizeof(r));
	}
	CHECK_EQ(volume_close(v), 0);
	CHECK_EQ(volume_open(&t.cs, "big", &oo, &v), 0);
	for (unsigned i = 0; i < 4; i++) {
		CHECK_EQ(volume_read(v, offs[i], r, sizeof(r)), 0);
		CHECK_MEM(r, z, sizeof(r));
	}
	CHECK_EQ(volume_close(v), 0);
	vt_fini(&t);
}

/* Threads write and read back disjoint regions while folds and checkpoints run. */
struct thr {
	struct volume *v;
	int idx;
	int bad;
};

static void *io_thread(void *p)
{
	struct thr *a = p;
	uint8_t w[16384], r[16384];
	uint64_t s = (uint64_t)a->idx + 99;
	uint64_t base = (uint64_t)a->idx * (4 << 20);

	for (int i = 0; i < 300; i++) {
		uint64_t len = (vt_rand(&s) % 32 + 1) * 512;
		uint64_t off = base + (vt_rand(&s) % ((4 << 20) / 512 - 32)) * 512;

		fill_pattern(w, len, (uint64_t)a->idx * 100000 + (uint64_t)i);
		if (volume_write(a->v, off, w, len, i % 7 == 0) ||
		    volume_read(a->v, off, r, len) || memcmp(w, r, len))
			a->bad++;
		if (i % 100 == 50 && a->idx == 0 && volume_checkpoint(a->v))
			a->bad++;
	}
	return NULL;
}

static void test_threads(void)
{
	struct vt t;
	struct volume *v;
	struct volume_open_opts oo = { 0 };
	pthread_t th[4];
	struct thr a[4];

	CHECK_EQ(vt_init(&t), 0);
	CHECK_EQ(vt_open(&t), 0);
	oo.state_dir = t.state_dir;
	oo.overlay_bytes = 1 << 20;
	CHECK_EQ(volume_create(&t.cs, "t", 16 << 20, 16384, NULL), 0);
	CHECK_EQ(volume_open(&t.cs, "t", &oo, &v), 0);
	for (int i = 0; i < 4; i++) {
		a[i] = (struct thr){ v, i, 0 };
		pthread_create(&th[i], NULL, io_thread, &a[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(a[i].bad, 0);
	}
	CHECK_EQ(volume_close(v), 0);
	vt_fini(&t);
}

int main(void)
{
	log_init();
	RUN(test_names);
	RUN(test_errors);
	RUN(test_phys_block);
	RUN(test_unaligned_zero_reopen);
	RUN(test_oracle_4k);
	RUN(test_oracle_64k);
	RUN(test_oracle_1m);
	RUN(test_sparse_tib);
	RUN(test_threads);
	return check_result();
}
