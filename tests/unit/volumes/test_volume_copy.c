/* Unit test of volume_copy (EXTENDED COPY by chunk reference) on a real local
 * repository: aligned copies share chunks (stored bytes do not grow), unaligned heads and
 * tails, misaligned offsets and overlapping ranges copy like memmove (checked against an
 * in-memory oracle through random mixes of writes, zeroes, copies and checkpoints),
 * points in time (seq:N) before and after copies are exact even once the source is
 * overwritten, a copy between two volumes, and crash replay of acknowledged copies (a
 * child process dies without closing anything; its journal is replayed at reopen). */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "log.h"
#include "point.h"
#include "util.h"
#include "volume.h"
#include "vtest.h"

#define VSIZE (8ull << 20)
#define CHUNK 16384u

static const struct volume_open_opts *opts(struct vt *t)
{
	static struct volume_open_opts oo;

	oo.state_dir = t->state_dir;
	oo.overlay_bytes = 1 << 20;
	oo.segment_bytes = 256 << 10;
	oo.journal_max = 4 << 20;
	return &oo;
}

static void fill(uint64_t *seed, uint8_t *p, size_t n)
{
	for (size_t k = 0; k < n; k += 8) {
		uint64_t r = vt_rand(seed);

		memcpy(p + k, &r, MIN((size_t)8, n - k));
	}
}

/* The image of point "<vol>@seq:<seq>" equals want. */
static int point_equals(struct vt *t, const char *vol, uint64_t seq, const uint8_t *want,
			uint64_t size)
{
	char name[128];
	struct point *p;
	uint8_t *buf = malloc(1 << 20);
	int ret, same = 1;

	snprintf(name, sizeof(name), "%s@seq:%" PRIu64, vol, seq);
	ret = volume_open_point(&t->cs, t->state_dir, name, &p);
	if (ret) {
		fprintf(stderr, "cannot open %s: %s\n", name, strerror(-ret));
		free(buf);
		return 0;
	}
	for (uint64_t off = 0; same && off < size; off += 1 << 20) {
		ret = point_read(p, off, buf, 1 << 20);
		if (ret || memcmp(buf, want + off, 1 << 20)) {
			fprintf(stderr, "%s differs in [%" PRIu64 ", +1 MiB) (%d)\n", name, off, ret);
			same = 0;
		}
	}
	point_close(p);
	free(buf);
	return same;
}

static int image_equals(struct volume *v, const uint8_t *want, uint64_t size)
{
	uint8_t *buf = malloc(1 << 20);
	int same = 1;

	for (uint64_t off = 0; same && off < size; off += 1 << 20) {
		if (volume_read(v, off, buf, 1 << 20) || memcmp(buf, want + off, 1 << 20)) {
			for (uint64_t k = 0; k < (1 << 20); k++)
				if (buf[k] != want[off + k]) {
					fprintf(stderr, "image differs at byte %" PRIu64 "\n", off + k);
					break;
				}
			same = 0;
		}
	}
	free(buf);
	return same;
}

/* Aligned copies share chunks: the copy stores (almost) nothing; the point before it
 * shows the old destination; after the source is overwritten and folded, the
 * destination and the point after the copy keep the copied data. */
static void test_aligned_shares(void)
{
	struct vt t;
	struct volume *v;
	struct repo_stats s0, s1;
	uint8_t *img = calloc(1, VSIZE), *before, *after;
	uint64_t seed = 99, cut0, cut1, seq;
	const uint64_t half = VSIZE / 2;

	CHECK_EQ(vt_init(&t), 0);
	CHECK_EQ(vt_open(&t), 0);
	CHECK_EQ(volume_create(&t.cs, "a", VSIZE, CHUNK, NULL), 0);
	CHECK_EQ(volume_open(&t.cs, "a", opts(&t), &v), 0);
	/* the first half: folded, then partly rewritten and left unfolded */
	fill(&seed, img, half);
	CHECK_EQ(volume_write(v, 0, img, half, 0), 0);
	CHECK_EQ(volume_checkpoint(v), 0);
	fill(&seed, img + CHUNK * 3, CHUNK * 2);
	CHECK_EQ(volume_write(v, CHUNK * 3, img + CHUNK * 3, CHUNK * 2, 0), 0);
	CHECK_EQ(volume_cut(v, &cut0), 0);
	before = malloc(VSIZE);
	memcpy(before, img, VSIZE);
	CHECK_EQ(volume_checkpoint(v), 0);
	repo_get_stats(t.r, &s0);

	CHECK_EQ(volume_copy(v, half, v, 0, half, 1), 0);
	memcpy(img + half, img, half);
	CHECK(image_equals(v, img, VSIZE));
	CHECK_EQ(volume_cut(v, &cut1), 0);
	after = malloc(VSIZE);
	memcpy(after, img, VSIZE);
	CHECK_EQ(volume_checkpoint(v), 0);
	repo_get_stats(t.r, &s1);
	/* only block-map nodes are new: far below 1% of the 4 MiB copied */
	fprintf(stderr, "aligned copy of %" PRIu64 " bytes stored %" PRIu64 " bytes\n", half,
		s1.stored_bytes - s0.stored_bytes);
	CHECK(s1.stored_bytes - s0.stored_bytes < half / 100);
	CHECK_EQ(s1.chunks - s0.chunks - (s1.tree_chunks - s0.tree_chunks), 0);

	/* overwrite the source, fold it: the copy keeps its chunks */
	fill(&seed, img, half);
	CHECK_EQ(volume_write(v, 0, img, half, 0), 0);
	CHECK_EQ(volume_checkpoint(v), 0);
	CHECK(image_equals(v, img, VSIZE));
	CHECK(point_equals(&t, "a", cut0, before, VSIZE));
	CHECK(point_equals(&t, "a", cut1, after, VSIZE));
	/* and after a reopen */
	CHECK_EQ(volume_close(v), 0);
	CHECK_EQ(volume_open(&t.cs, "a", opts(&t), &v), 0);
	CHECK(image_equals(v, img, VSIZE));
	CHECK(point_equals(&t, "a", cut0, before, VSIZE));
	CHECK(point_equals(&t, "a", cut1, after, VSIZE));
	CHECK_EQ(volume_cut(v, &seq), 0);
	CHECK(point_equals(&t, "a", seq, img, VSIZE));
	/* bad ranges */
	CHECK_EQ(volume_copy(v, 0, v, 100, 512, 0), -EINVAL);
	CHECK_EQ(volume_copy(v, VSIZE - 512, v, 0, 1024, 0), -ERANGE);
	CHECK_EQ(volume_copy(v, 0, v, VSIZE, 512, 0), -ERANGE);
	CHECK_EQ(volume_copy(v, 0, v, 0, 0, 0), 0);
	CHECK_EQ(volume_close(v), 0);
	free(before);
	free(after);
	free(img);
	vt_fini(&t);
}

struct op {
	int kind; /* 0 write, 1 zero, 2 copy, 3 checkpoint */
	int fua;
	uint64_t off, src, len;
};

/* Op i of a random mix, the same in every process: copies are aligned, unaligned,
 * misaligned and overlapping in both directions. */
static void op_of(uint64_t i, struct op *o)
{
	uint64_t s = i * 0x9E3779B97F4A7C15ull + 7;
	uint64_t r = vt_rand(&s) % 16, k = vt_rand(&s) % 4;

	memset(o, 0, sizeof(*o));
	o->fua = vt_rand(&s) % 4 == 0;
	if (r < 6) {
		o->kind = 0;
		o->len = (vt_rand(&s) % 96 + 1) * 512;
		o->off = (vt_rand(&s) % ((VSIZE - o->len) / 512 + 1)) * 512;
	} else if (r < 7) {
		o->kind = 1;
		o->len = (vt_rand(&s) % 200 + 1) * 512;
		o->off = (vt_rand(&s) % ((VSIZE - o->len) / 512 + 1)) * 512;
	} else if (r < 15) {
		o->kind = 2;
		if (k == 0) { /* whole chunks, aligned */
			o->len = (vt_rand(&s) % 64 + 1) * CHUNK;
			o->src = (vt_rand(&s) % ((VSIZE - o->len) / CHUNK + 1)) * CHUNK;
			o->off = (vt_rand(&s) % ((VSIZE - o->len) / CHUNK + 1)) * CHUNK;
		} else { /* any sectors: congruent or not, heads and tails */
			o->len = (vt_rand(&s) % (80 * CHUNK / 512) + 1) * 512;
			o->src = (vt_rand(&s) % ((VSIZE - o->len) / 512 + 1)) * 512;
			if (k == 1) /* congruent: the middle is shared */
				o->off = (vt_rand(&s) % ((VSIZE - o->len) / CHUNK + 1)) * CHUNK +
					 (o->src % CHUNK);
			else
				o->off = (vt_rand(&s) % ((VSIZE - o->len) / 512 + 1)) * 512;
			if (o->off + o->len > VSIZE)
				o->off = o->src;
		}
		if (vt_rand(&s) % 3 == 0) { /* overlapping, either way */
			uint64_t d = (vt_rand(&s) % (o->len / 512) + 1) * 512;

			if (vt_rand(&s) & 1)
				d = (vt_rand(&s) % (o->len / CHUNK + 1) + 1) * CHUNK;
			if (vt_rand(&s) & 1 && o->src + d + o->len <= VSIZE)
				o->off = o->src + d;
			else if (o->src >= d)
				o->off = o->src - d;
		}
	} else {
		o->kind = 3;
	}
}

static void data_of(uint64_t i, uint8_t *p, uint64_t n)
{
	uint64_t s = i + 31337;

	fill(&s, p, n);
}

static void oracle_apply(uint8_t *img, uint64_t i, uint8_t *tmp)
{
	struct op o;

	op_of(i, &o);
	if (o.kind == 0) {
		data_of(i, tmp, o.len);
		memcpy(img + o.off, tmp, o.len);
	} else if (o.kind == 1) {
		memset(img + o.off, 0, o.len);
	} else if (o.kind == 2) {
		memmove(img + o.off, img + o.src, o.len);
	}
}

static int volume_apply(struct volume *v, uint64_t i, uint8_t *tmp)
{
	struct op o;

	op_of(i, &o);
	switch (o.kind) {
	case 0:
		data_of(i, tmp, o.len);
		return volume_write(v, o.off, tmp, o.len, o.fua);
	case 1:
		return volume_write_zeroes(v, o.off, o.len, o.fua);
	case 2:
		return volume_copy(v, o.off, v, o.src, o.len, o.fua);
	default:
		return volume_checkpoint(v);
	}
}

#define NOPS 400
#define NCUTS 5

/* The random mix against the oracle, with points cut along the way. */
static void test_mix(void)
{
	struct vt t;
	struct volume *v;
	uint8_t *img = calloc(1, VSIZE), *tmp = malloc(1 << 20), *cuts[NCUTS];
	uint64_t cutseq[NCUTS];
	int nc = 0;

	CHECK_EQ(vt_init(&t), 0);
	CHECK_EQ(vt_open(&t), 0);
	CHECK_EQ(volume_create(&t.cs, "m", VSIZE, CHUNK, NULL), 0);
	CHECK_EQ(volume_open(&t.cs, "m", opts(&t), &v), 0);
	for (uint64_t i = 0; i < NOPS; i++) {
		int ret = volume_apply(v, i, tmp);

		if (ret) {
			struct op o;

			op_of(i, &o);
			fprintf(stderr, "op %" PRIu64 " (kind %d off %" PRIu64 " src %" PRIu64
				" len %" PRIu64 "): %s\n", i, o.kind, o.off, o.src, o.len,
				strerror(-ret));
			CHECK(0);
			break;
		}
		oracle_apply(img, i, tmp);
		if (i % (NOPS / NCUTS) == NOPS / NCUTS / 2 && nc < NCUTS) {
			CHECK_EQ(volume_cut(v, &cutseq[nc]), 0);
			cuts[nc] = malloc(VSIZE);
			memcpy(cuts[nc], img, VSIZE);
			nc++;
		}
		if (i % 100 == 99)
			CHECK(image_equals(v, img, VSIZE));
	}
	CHECK(image_equals(v, img, VSIZE));
	for (int k = 0; k < nc; k++)
		CHECK(point_equals(&t, "m", cutseq[k], cuts[k], VSIZE));
	CHECK_EQ(volume_close(v), 0);
	CHECK_EQ(volume_open(&t.cs, "m", opts(&t), &v), 0);
	CHECK(image_equals(v, img, VSIZE));
	CHECK_EQ(volume_close(v), 0);
	for (int k = 0; k < nc; k++) {
		CHECK(point_equals(&t, "m", cutseq[k], cuts[k], VSIZE));
		free(cuts[k]);
	}
	free(img);
	free(tmp);
	vt_fini(&t);
}

/* A copy from another volume of the same repository; -EXDEV across chunk sizes. */
static void test_cross(void)
{
	struct vt t;
	struct volume *a, *b, *c;
	struct repo_stats s0, s1;
	uint8_t *img = malloc(VSIZE), *buf = malloc(VSIZE);
	uint64_t seed = 5;

	CHECK_EQ(vt_init(&t), 0);
	CHECK_EQ(vt_open(&t), 0);
	CHECK_EQ(volume_create(&t.cs, "src", VSIZE, CHUNK, NULL), 0);
	CHECK_EQ(volume_create(&t.cs, "dst", VSIZE * 2, CHUNK, NULL), 0);
	CHECK_EQ(volume_create(&t.cs, "other", VSIZE, CHUNK * 2, NULL), 0);
	CHECK_EQ(volume_open(&t.cs, "src", opts(&t), &a), 0);
	CHECK_EQ(volume_open(&t.cs, "dst", opts(&t), &b), 0);
	CHECK_EQ(volume_open(&t.cs, "other", opts(&t), &c), 0);
	fill(&seed, img, VSIZE);
	CHECK_EQ(volume_write(a, 0, img, VSIZE, 0), 0);
	CHECK_EQ(volume_checkpoint(a), 0);
	repo_get_stats(t.r, &s0);
	CHECK_EQ(volume_copy(b, VSIZE, a, 0, VSIZE, 0), 0);
	CHECK_EQ(volume_copy(b, 512, a, 1024, 3 * CHUNK, 0), 0);
	CHECK_EQ(volume_flush(b), 0);
	CHECK_EQ(volume_read(b, VSIZE, buf, VSIZE), 0);
	CHECK_MEM(buf, img, VSIZE);
	CHECK_EQ(volume_read(b, 512, buf, 3 * CHUNK), 0);
	CHECK_MEM(buf, img + 1024, 3 * CHUNK);
	CHECK_EQ(volume_checkpoint(b), 0);
	repo_get_stats(t.r, &s1);
	CHECK(s1.stored_bytes - s0.stored_bytes < VSIZE / 50);
	CHECK_EQ(volume_copy(c, 0, a, 0, CHUNK * 2, 0), -EXDEV);
	/* the source changes; the copy does not */
	fill(&seed, buf, VSIZE);
	CHECK_EQ(volume_write(a, 0, buf, VSIZE, 0), 0);
	CHECK_EQ(volume_close(a), 0);
	CHECK_EQ(volume_close(b), 0);
	CHECK_EQ(volume_close(c), 0);
	CHECK_EQ(volume_open(&t.cs, "dst", opts(&t), &b), 0);
	CHECK_EQ(volume_read(b, VSIZE, buf, VSIZE), 0);
	CHECK_MEM(buf, img, VSIZE);
	CHECK_EQ(volume_close(b), 0);
	free(img);
	free(buf);
	vt_fini(&t);
}

/* Run ops [from, to) in a child that then dies without closing (after a flush: every
 * op acknowledged is durable), so the next open replays the journal. */
static int crash_child(struct vt *t, uint64_t from, uint64_t to)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		struct volume *v;
		uint8_t *tmp = malloc(1 << 20);

		if (vt_open(t) || volume_open(&t->cs, "c", opts(t), &v))
			_exit(3);
		for (uint64_t i = from; i < to; i++)
			if (volume_apply(v, i, tmp))
				_exit(2);
		if (volume_flush(v))
			_exit(4);
		_exit(0); /* no close, no final checkpoint */
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Open (replaying) in a child, compare with want, die without closing. */
static int crash_verify(struct vt *t, const uint8_t *want)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		struct volume *v;

		if (vt_open(t) || volume_open(&t->cs, "c", opts(t), &v))
			_exit(3);
		_exit(image_equals(v, want, VSIZE) ? 0 : 1);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Rounds of ops, each ended by a crash; the journal keeps growing with COPY records that
 * are replayed at every open (on top of checkpoints some ops took). */
static void test_crash_replay(void)
{
	struct vt t;
	struct volume *v;
	uint8_t *img = calloc(1, VSIZE), *tmp = malloc(1 << 20);
	uint64_t done = 0;

	CHECK_EQ(vt_init(&t), 0);
	CHECK_EQ(vt_open(&t), 0);
	CHECK_EQ(volume_create(&t.cs, "c", VSIZE, CHUNK, NULL), 0);
	vt_close(&t);
	for (int round = 0; round < 4 && !check_failures; round++) {
		uint64_t to = done + 90;

		CHECK_EQ(crash_child(&t, done, to), 0);
		for (uint64_t i = done; i < to; i++)
			oracle_apply(img, i, tmp);
		done = to;
		CHECK_EQ(crash_verify(&t, img), 0);
	}
	CHECK_EQ(vt_open(&t), 0);
	CHECK_EQ(volume_open(&t.cs, "c", opts(&t), &v), 0);
	CHECK(image_equals(v, img, VSIZE));
	CHECK_EQ(volume_close(v), 0);
	CHECK_EQ(volume_open(&t.cs, "c", opts(&t), &v), 0);
	CHECK(image_equals(v, img, VSIZE));
	CHECK_EQ(volume_close(v), 0);
	free(img);
	free(tmp);
	vt_fini(&t);
}

int main(void)
{
	log_init();
	RUN(test_aligned_shares);
	RUN(test_mix);
	RUN(test_cross);
	RUN(test_crash_replay);
	return check_result();
}
