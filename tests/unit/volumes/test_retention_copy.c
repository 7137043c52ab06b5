/* Unit test: CDP retention thinning of a history that holds COPY records (EXTENDED COPY
 * by chunk reference, within the volume and from another volume), UNMAP and WRITE SAME.
 *
 * Five days are simulated with an injected clock: util_now_ns() is wrapped at link time
 * (-Wl,--wrap=util_now_ns, tests/unit/volumes/meson.build) and jumped forward half an
 * hour per step, so the engine's own checkpoint thread, retention passes, journal
 * record times and history checkpoint times all see the simulated time; nothing sleeps
 * for hours. Policy: every write for 2 h, hourly points for 1 d, daily points for 4 d.
 * Each step writes a random mix to volume "a" (unaligned and overlapping writes, UNMAP,
 * WRITE SAME with and without data, copies within "a" and from a source volume, flushes)
 * and to the source; some steps are bursts of one-record operations during which the
 * engine's checkpoint thread records a history checkpoint on its own (usually not
 * exact, so retention makes it exact by replaying the journal, COPY records included);
 * named snapshots are taken on the way.
 *
 * gc (grace 0, repack threshold 100 %: every chunk no root references goes) and check
 * --read-data run through the real binary ($CAIRN_BIN): mid-way from a fresh state
 * directory (so only the journal segments stored in the repository name the COPY
 * chunks); at the end from that directory again (its fetched copies of segments that
 * retention dropped since are stale), then from the volumes' state directory. One step ("the X step")
 * copies fresh chunks from the source into "a" by reference, then overwrites both the
 * source range and the destination, and the source volume is deleted: those chunks are
 * then referenced by nothing but the COPY record in a's journal. While that point is
 * inside the window, gc must keep them and the point must equal the oracle; once the
 * window has passed it, the point must be refused (-ENODATA) and gc must free them.
 *
 * After each gc: every point of the window (each operation boundary, as seq:N and as a
 * wall-clock time), every retained checkpoint (hourly and daily points: exact) and every
 * snapshot equals the oracle kept by the test (images rebuilt by replaying the op log);
 * older operation boundaries are either refused with -ENODATA or equal the oracle, and
 * every one below the first retained journal record that is not a retained point is
 * refused; at the end, exactly one point per full hour of the hourly tier and per full
 * day of the daily tier (the oldest one), none older, every checkpoint of the window
 * kept, and everything again from a fresh state directory (the repository alone). */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "history.h"
#include "log.h"
#include "point.h"
#include "util.h"
#include "volume.h"
#include "vtest.h"

/* ---- the injected clock ---- */

uint64_t __real_util_now_ns(void);
uint64_t __wrap_util_now_ns(void);
static uint64_t skew_ns;

uint64_t __wrap_util_now_ns(void)
{
	return __real_util_now_ns() + __atomic_load_n(&skew_ns, __ATOMIC_ACQUIRE);
}

/* Jump the simulated clock forward to t (never backwards). */
static void clock_to(uint64_t t)
{
	uint64_t now = util_now_ns();

	if (t > now)
		__atomic_add_fetch(&skew_ns, t - now, __ATOMIC_ACQ_REL);
}

#define NS 1000000000ull
#define MIN_NS (60 * NS)
#define HOUR (3600 * NS)
#define DAY (24 * HOUR)

#define VSIZE (4ull << 20)
#define CHUNK 16384u
#define NCH (VSIZE / CHUNK)
#define STEP (30 * MIN_NS)
#define NSTEPS 241          /* day 0 00:10 .. day 5 00:10 */
#define XSTEP 159           /* day 3 07:40 */
#define GC1_STEP 160        /* the mid-way gc after this step */
#define RETAIN (2 * HOUR)
#define HOURLY (24 * HOUR)
#define DAILY (4 * DAY)
#define XCH 8               /* chunks of the X copy */
#define XSRC 40             /* ... from the source's chunk */
#define XDST 200            /* ... to a's chunk */

enum kind {
	A_WRITE, A_UNMAP, A_WSAME, A_WSAME0, A_COPY, A_XCOPY, A_FLUSH, /* on "a" */
	S_WRITE, S_NEW,                                                 /* on the source */
};

struct op {
	uint8_t kind;
	uint64_t off, src, len, seed;
	uint64_t before, after;  /* a's next seq around an op on "a" */
	uint64_t t0, t1;         /* simulated clock around it */
};

struct ck {
	uint64_t hi, time_ns;
	int exact;
};

struct snap {
	char name[32];
	uint64_t seq;
};

struct sim {
	struct vt t;
	struct volume *a, *s;
	char sname[16];
	int sgen;
	struct op *ops;
	size_t nops, cap;
	uint8_t *img_a, *img_s;  /* the live oracle */
	uint8_t *tmp, *rbuf;
	uint64_t T0;
	struct ck *created;      /* every history checkpoint seen (by hi) */
	size_t ncreated, ccap;
	struct snap snaps[8];
	int nsnaps;
	uint64_t xpoint;
	struct chunk_id xids[XCH];
	char cairn_log[128];
	unsigned bursts, burst_ckpts;
};

static void fill(uint64_t seed, uint8_t *p, uint64_t n)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 12345;

	for (uint64_t k = 0; k < n; k += 8) {
		uint64_t r = vt_rand(&s);

		memcpy(p + k, &r, MIN((uint64_t)8, n - k));
	}
}

static int is_a(uint8_t kind)
{
	return kind <= A_FLUSH;
}

static const struct volume_open_opts *opts(struct sim *S)
{
	static struct volume_open_opts oo;

	oo.state_dir = S->t.state_dir;
	oo.overlay_bytes = 1 << 20;
	oo.segment_bytes = 256 << 10;
	oo.journal_max = 4 << 20;
	/* keep four segments locally once stored: older points fetch theirs (journal_trim) */
	oo.journal_keep = 1 << 20;
	return &oo;
}

/* ---- ops: the volume and the oracle ---- */

static void apply(const struct op *o, uint8_t *a, uint8_t *s, uint8_t *tmp)
{
	switch (o->kind) {
	case A_WRITE:
		fill(o->seed, a + o->off, o->len);
		break;
	case A_UNMAP:
	case A_WSAME0:
		memset(a + o->off, 0, o->len);
		break;
	case A_WSAME:
		fill(o->seed, tmp, 512);
		for (uint64_t k = 0; k < o->len; k += 512)
			memcpy(a + o->off + k, tmp, 512);
		break;
	case A_COPY:
		memmove(a + o->off, a + o->src, o->len);
		break;
	case A_XCOPY:
		memcpy(a + o->off, s + o->src, o->len);
		break;
	case S_WRITE:
		fill(o->seed, s + o->off, o->len);
		break;
	case S_NEW:
		memset(s, 0, VSIZE);
		break;
	default:
		break;
	}
}

static int run_op(struct sim *S, struct op *o)
{
	struct volume_stats st;
	int ret = 0;

	o->t0 = util_now_ns();
	if (is_a(o->kind)) {
		volume_get_stats(S->a, &st);
		o->before = st.next_seq;
	}
	switch (o->kind) {
	case A_WRITE:
		fill(o->seed, S->tmp, o->len);
		ret = volume_write(S->a, o->off, S->tmp, o->len, o->seed % 5 == 0);
		break;
	case A_UNMAP:
	case A_WSAME0: /* WRITE SAME of zeros, as the gateway does it */
		ret = volume_write_zeroes(S->a, o->off, o->len, o->seed % 7 == 0);
		break;
	case A_WSAME: /* WRITE SAME with data: the block repeated (gateway/scsi_sbc.c) */
		fill(o->seed, S->tmp, 512);
		for (uint64_t k = 512; k < o->len; k += 512)
			memcpy(S->tmp + k, S->tmp, 512);
		ret = volume_write(S->a, o->off, S->tmp, o->len, 0);
		break;
	case A_COPY:
		ret = volume_copy(S->a, o->off, S->a, o->src, o->len, o->seed % 3 == 0);
		break;
	case A_XCOPY:
		ret = volume_copy(S->a, o->off, S->s, o->src, o->len, o->seed % 3 == 0);
		break;
	case A_FLUSH:
		ret = volume_flush(S->a);
		break;
	case S_WRITE:
		fill(o->seed, S->tmp, o->len);
		ret = volume_write(S->s, o->off, S->tmp, o->len, 0);
		break;
	default:
		break;
	}
	if (ret) {
		fprintf(stderr, "op %zu (kind %d off %" PRIu64 " src %" PRIu64 " len %" PRIu64
			"): %s\n", S->nops, o->kind, o->off, o->src, o->len, strerror(-ret));
		return ret;
	}
	if (is_a(o->kind)) {
		volume_get_stats(S->a, &st);
		o->after = st.next_seq;
	}
	o->t1 = util_now_ns();
	apply(o, S->img_a, S->img_s, S->tmp);
	if (S->nops == S->cap) {
		S->cap = S->cap ? S->cap * 2 : 1024;
		S->ops = realloc(S->ops, S->cap * sizeof(*S->ops));
	}
	S->ops[S->nops++] = *o;
	return 0;
}

static uint64_t sectors(uint64_t *r, uint64_t max_sectors)
{
	return (vt_rand(r) % max_sectors + 1) * 512;
}

static uint64_t place(uint64_t *r, uint64_t len, uint64_t align)
{
	return vt_rand(r) % ((VSIZE - len) / align + 1) * align;
}

/* A random op on "a". single: only kinds that append exactly one journal record (so
 * any checkpoint the engine takes on its own falls between two ops). */
static void gen_a(struct sim *S, uint64_t *r, int single, struct op *o)
{
	unsigned k = (unsigned)(vt_rand(r) % 20);

	memset(o, 0, sizeof(*o));
	o->seed = vt_rand(r);
	if (k >= 15 && k <= 18 && !S->s)
		k = 0;
	if (k <= 5) {
		o->kind = A_WRITE;
		o->len = sectors(r, 256);
		o->off = place(r, o->len, 512);
	} else if (k <= 7) {
		o->kind = A_UNMAP;
		if (vt_rand(r) % 3 == 0) { /* whole chunks: deallocated in the map */
			o->len = (vt_rand(r) % 16 + 1) * CHUNK;
			o->off = place(r, o->len, CHUNK);
		} else {
			o->len = sectors(r, 512);
			o->off = place(r, o->len, 512);
		}
	} else if (k <= 9) {
		o->kind = A_WSAME;
		o->len = sectors(r, 256);
		o->off = place(r, o->len, 512);
	} else if (k == 10) {
		o->kind = A_WSAME0;
		o->len = sectors(r, 512);
		o->off = place(r, o->len, 512);
	} else if (k <= 18) {
		o->kind = k <= 14 ? A_COPY : A_XCOPY;
		if (single || vt_rand(r) % 2 == 0) { /* whole chunks, aligned: by reference */
			o->len = (vt_rand(r) % 32 + 1) * CHUNK;
			o->src = place(r, o->len, CHUNK);
			o->off = place(r, o->len, CHUNK);
			if (o->kind == A_COPY && vt_rand(r) % 3 == 0) { /* overlapping */
				uint64_t d = (vt_rand(r) % (o->len / CHUNK) + 1) * CHUNK;

				if (o->src + d + o->len <= VSIZE)
					o->off = o->src + d;
				else if (o->src >= d)
					o->off = o->src - d;
			}
		} else {
			o->len = sectors(r, 40 * CHUNK / 512);
			o->src = place(r, o->len, 512);
			if (vt_rand(r) % 2) /* congruent: head and tail written, middle shared */
				o->off = place(r, o->len, CHUNK) + o->src % CHUNK;
			else
				o->off = place(r, o->len, 512);
			if (o->off + o->len > VSIZE)
				o->off = o->src;
			if (o->kind == A_COPY && vt_rand(r) % 3 == 0) {
				uint64_t d = sectors(r, o->len / 512);

				if (o->src + d + o->len <= VSIZE)
					o->off = o->src + d;
				else if (o->src >= d)
					o->off = o->src - d;
			}
		}
	} else {
		o->kind = A_FLUSH;
	}
}

static void gen_s(uint64_t *r, struct op *o)
{
	memset(o, 0, sizeof(*o));
	o->kind = S_WRITE;
	o->seed = vt_rand(r);
	if (vt_rand(r) % 2) {
		o->len = (vt_rand(r) % 8 + 1) * CHUNK;
		o->off = place(r, o->len, CHUNK);
	} else {
		o->len = sectors(r, 256);
		o->off = place(r, o->len, 512);
	}
}

/* ---- history checkpoints seen ---- */

static int note_cb(void *arg, const struct history_ckpt *c, int exact)
{
	struct sim *S = arg;

	for (size_t i = 0; i < S->ncreated; i++)
		if (S->created[i].hi == c->hi) {
			if (c->time_ns < S->created[i].time_ns)
				S->created[i].time_ns = c->time_ns;
			return 0;
		}
	if (S->ncreated == S->ccap) {
		S->ccap = S->ccap ? S->ccap * 2 : 256;
		S->created = realloc(S->created, S->ccap * sizeof(*S->created));
	}
	S->created[S->ncreated++] = (struct ck){ .hi = c->hi, .time_ns = c->time_ns,
						 .exact = exact };
	return 0;
}

static void note_ckpts(struct sim *S)
{
	CHECK_EQ(history_ckpt_list(&S->t.cs, volume_get_info(S->a)->id, note_cb, S), 0);
}

struct cklist {
	struct ck *v;
	size_t n, cap;
};

static int list_cb(void *arg, const struct history_ckpt *c, int exact)
{
	struct cklist *l = arg;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = (struct ck){ .hi = c->hi, .time_ns = c->time_ns, .exact = exact };
	return 0;
}

static uint64_t max_hi(struct sim *S)
{
	struct cklist l = { 0 };
	uint64_t m = 0;

	history_ckpt_list(&S->t.cs, volume_get_info(S->a)->id, list_cb, &l);
	for (size_t i = 0; i < l.n; i++)
		m = MAX(m, l.v[i].hi);
	free(l.v);
	return m;
}

/* ---- the real binary ---- */

static int cairn(struct sim *S, const char *args)
{
	const char *bin = getenv("CAIRN_BIN");
	char cmd[2048];
	int rc;

	if (!bin) {
		fprintf(stderr, "CAIRN_BIN is not set (meson sets it to the cairn binary)\n");
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "'%s' %s -r '%s' >'%s' 2>&1", bin, args, S->t.repo_dir,
		 S->cairn_log);
	rc = system(cmd);
	if (rc) {
		snprintf(cmd, sizeof(cmd), "cat '%s' >&2", S->cairn_log);
		fprintf(stderr, "cairn %s: exit status %d\n", args, rc);
		if (system(cmd))
			fprintf(stderr, "cannot show %s\n", S->cairn_log);
	}
	return rc;
}

/* ---- verification ---- */

static void fmt_ns(uint64_t ns, char *buf, size_t len)
{
	time_t sec = (time_t)(ns / NS);
	struct tm tm;

	gmtime_r(&sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%09" PRIu64 "Z", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (uint64_t)(ns % NS));
}

/* Index into the op log just past the last op on "a" whose records are all below seq
 * (the oracle image of a@seq:N is the log replayed up to it); -1 if seq falls inside
 * an op (a point the test cannot know). */
static long state_of_seq(struct sim *S, uint64_t seq)
{
	long L = 0;

	for (size_t i = 0; i < S->nops; i++) {
		const struct op *o = &S->ops[i];

		if (!is_a(o->kind))
			continue;
		if (o->after <= seq)
			L = (long)i + 1;
		else if (o->before < seq)
			return -1;
		else
			break;
	}
	return L;
}

struct query {
	long L;              /* oracle: the op log replayed up to here */
	char point[200];
	int may_refuse;      /* -ENODATA is an accepted answer */
	int must_refuse;     /* only -ENODATA is */
};

struct qlist {
	struct query *v;
	size_t n, cap;
};

static void q_add(struct qlist *q, long L, int may, int must, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void q_add(struct qlist *q, long L, int may, int must, const char *fmt, ...)
{
	va_list ap;

	if (q->n == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 256;
		q->v = realloc(q->v, q->cap * sizeof(*q->v));
	}
	q->v[q->n].L = L;
	q->v[q->n].may_refuse = may;
	q->v[q->n].must_refuse = must;
	va_start(ap, fmt);
	vsnprintf(q->v[q->n].point, sizeof(q->v[q->n].point), fmt, ap);
	va_end(ap);
	q->n++;
}

static int cmp_query(const void *a, const void *b)
{
	const struct query *x = a, *y = b;

	return x->L < y->L ? -1 : x->L > y->L;
}

struct vstats {
	unsigned equal, refused, points;
};

/* Open point and compare it with want; 0 equal, 1 different, or the errno of the open. */
static int point_cmp(struct sim *S, const char *state_dir, const char *name, const uint8_t *want)
{
	struct point *p;
	int ret = volume_open_point(&S->t.cs, state_dir, name, &p);

	if (ret)
		return ret;
	for (uint64_t off = 0; !ret && off < VSIZE; off += 1 << 20) {
		int r = point_read(p, off, S->rbuf, 1 << 20);

		if (r) {
			fprintf(stderr, "%s: read at %" PRIu64 ": %s\n", name, off, strerror(-r));
			ret = 1;
		} else if (memcmp(S->rbuf, want + off, 1 << 20)) {
			for (uint64_t k = 0; k < (1 << 20); k++)
				if (S->rbuf[k] != want[off + k]) {
					fprintf(stderr, "%s differs from the oracle at byte %" PRIu64
						"\n", name, off + k);
					break;
				}
			ret = 1;
		}
	}
	point_close(p);
	return ret;
}

static void run_queries(struct sim *S, const char *state_dir, struct qlist *q, struct vstats *vs)
{
	uint8_t *a = calloc(1, VSIZE), *s = calloc(1, VSIZE);
	long pos = 0;

	qsort(q->v, q->n, sizeof(*q->v), cmp_query);
	for (size_t i = 0; i < q->n; i++) {
		const struct query *x = &q->v[i];
		int ret;

		for (; pos < x->L; pos++)
			apply(&S->ops[pos], a, s, S->tmp);
		ret = point_cmp(S, state_dir, x->point, a);
		vs->points++;
		if (ret == 0 && !x->must_refuse) {
			vs->equal++;
			continue;
		}
		if (ret == -ENODATA && (x->may_refuse || x->must_refuse)) {
			vs->refused++;
			continue;
		}
		fprintf(stderr, "point %s: %s (%s)\n", x->point,
			ret == 0 ? "opens, but must be refused" : ret == 1 ? "differs" :
			strerror(-ret), x->must_refuse ? "must be refused" :
			x->may_refuse ? "may be refused" : "must equal the oracle");
		CHECK(0);
	}
	free(a);
	free(s);
}

static int listed(const struct cklist *l, uint64_t hi)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].hi == hi)
			return 1;
	return 0;
}

/* Every retained point of "a" against the oracle (see the top of the file). t_ret:
 * when the last retention pass ran at the earliest (its `now` is in [t_ret, now]). */
static void verify(struct sim *S, const char *state_dir, uint64_t t_ret, int final,
		   struct vstats *vs)
{
	const char *vol = "a";
	struct volume_info vi;
	struct history_span span;
	struct cklist l = { 0 };
	struct qlist q = { 0 };
	uint64_t now = util_now_ns(), ws_hi = now - RETAIN, ws_lo = t_ret - RETAIN;
	uint64_t bnd = 0, margin = 3 * MIN_NS;
	char tb[64];
	size_t prev_a = SIZE_MAX;

	CHECK_EQ(volume_lookup(&S->t.cs, vol, &vi), 0);
	CHECK_EQ(history_ckpt_list(&S->t.cs, vi.id, list_cb, &l), 0);
	CHECK_EQ(history_span(&S->t.cs, state_dir, &vi, &span), 0);
	/* the boundary: the newest checkpoint older than the window (kept as the base) */
	for (size_t i = 0; i < l.n; i++)
		if (l.v[i].time_ns < ws_lo - margin)
			bnd = MAX(bnd, l.v[i].hi);
	/* retained checkpoints: every one opens and equals the oracle; past the window
	 * (the boundary aside) every one is exact */
	for (size_t i = 0; i < l.n; i++) {
		long L = state_of_seq(S, l.v[i].hi);

		if (L < 0) {
			fprintf(stderr, "checkpoint at seq %" PRIu64 " falls inside an operation\n",
				l.v[i].hi);
			CHECK(0);
			continue;
		}
		if (l.v[i].time_ns < ws_lo - margin && l.v[i].hi != bnd && !l.v[i].exact) {
			fprintf(stderr, "checkpoint at seq %" PRIu64 " past the window is not exact\n",
				l.v[i].hi);
			CHECK(0);
		}
		q_add(&q, L, 0, 0, "%s@seq:%" PRIu64, vol, l.v[i].hi);
	}
	/* snapshots stay until deleted */
	for (int i = 0; i < S->nsnaps; i++)
		q_add(&q, state_of_seq(S, S->snaps[i].seq), 0, 0, "%s@%s", vol, S->snaps[i].name);
	/* operation boundaries (seq) and the gaps between operations (time) */
	for (size_t i = 0; i < S->nops; i++) {
		const struct op *o = &S->ops[i];
		int in_window = o->t0 >= ws_hi + margin, retained_ck = listed(&l, o->after);

		if (!is_a(o->kind))
			continue;
		if (in_window) {
			q_add(&q, (long)i + 1, 0, 0, "%s@seq:%" PRIu64, vol, o->after);
			if (prev_a != SIZE_MAX && o->t0 > S->ops[prev_a].t1 + 2000000) {
				fmt_ns(S->ops[prev_a].t1 + (o->t0 - S->ops[prev_a].t1) / 2, tb,
				       sizeof(tb));
				q_add(&q, (long)prev_a + 1, 0, 0, "%s@%s", vol, tb);
			}
		} else if (o->t1 < ws_lo - margin && !retained_ck) {
			/* older than the window: the journal below the first retained record is
			 * gone, so such a point is refused; later ones may still open (they
			 * must then be exact); a sample of them is read */
			int must = o->after < span.first_seq;

			if (must || i % 5 == 0)
				q_add(&q, (long)i + 1, 1, must, "%s@seq:%" PRIu64, vol, o->after);
			if (must && prev_a != SIZE_MAX && i % 9 == 0 &&
			    o->t0 > S->ops[prev_a].t1 + 2000000 &&
			    S->ops[prev_a].t1 < span.first_time_ns) {
				fmt_ns(S->ops[prev_a].t1 + (o->t0 - S->ops[prev_a].t1) / 2, tb,
				       sizeof(tb));
				q_add(&q, (long)prev_a + 1, 1, 1, "%s@%s", vol, tb);
			}
		}
		prev_a = i;
	}
	run_queries(S, state_dir, &q, vs);
	fprintf(stderr, "  %zu checkpoints listed (boundary seq %" PRIu64 "), first retained "
		"record %" PRIu64 "; %u points opened: %u equal the oracle, %u refused\n",
		l.n, bnd, span.first_seq, vs->points, vs->equal, vs->refused);

	if (final) {
		/* the tiers: exactly one point (the oldest) per full hour of the hourly tier
		 * and per full day of the daily tier, none older, every one of the window */
		uint64_t h_lo = now - HOURLY, d_lo = now - DAILY;
		unsigned hours = 0, days = 0, made_exact = 0;

		for (uint64_t H = (h_lo / HOUR + 1) * HOUR; H + HOUR <= ws_lo - margin; H += HOUR) {
			unsigned n = 0;
			uint64_t oldest = UINT64_MAX, got = 0;

			for (size_t i = 0; i < S->ncreated; i++)
				if (S->created[i].time_ns >= H && S->created[i].time_ns < H + HOUR)
					oldest = MIN(oldest, S->created[i].time_ns);
			for (size_t i = 0; i < l.n; i++)
				if (l.v[i].hi != bnd && l.v[i].time_ns >= H &&
				    l.v[i].time_ns < H + HOUR) {
					n++;
					got = l.v[i].time_ns;
				}
			if (oldest == UINT64_MAX)
				continue;
			hours++;
			if (n != 1 || got != oldest) {
				fmt_ns(H, tb, sizeof(tb));
				fprintf(stderr, "hour from %s: %u points kept, want 1 (the oldest)\n",
					tb, n);
				CHECK(0);
			}
		}
		for (uint64_t D = (d_lo / DAY + 1) * DAY; D + DAY <= h_lo - margin; D += DAY) {
			unsigned n = 0;
			uint64_t oldest = UINT64_MAX, got = 0;

			for (size_t i = 0; i < S->ncreated; i++)
				if (S->created[i].time_ns >= D && S->created[i].time_ns < D + DAY)
					oldest = MIN(oldest, S->created[i].time_ns);
			for (size_t i = 0; i < l.n; i++)
				if (l.v[i].time_ns >= D && l.v[i].time_ns < D + DAY) {
					n++;
					got = l.v[i].time_ns;
				}
			if (oldest == UINT64_MAX)
				continue;
			days++;
			if (n != 1 || got != oldest) {
				fmt_ns(D, tb, sizeof(tb));
				fprintf(stderr, "day from %s: %u points kept, want 1 (the oldest)\n",
					tb, n);
				CHECK(0);
			}
		}
		/* checkpoints the engine recorded inexact (journal replay needed), kept past
		 * the window: retention made them exact by replaying their records */
		for (size_t i = 0; i < S->ncreated; i++)
			if (!S->created[i].exact && S->created[i].time_ns < ws_lo - margin)
				for (size_t j = 0; j < l.n; j++)
					made_exact += l.v[j].hi == S->created[i].hi && l.v[j].exact;
		fprintf(stderr, "  tiers: %u full hours and %u full days checked; %u points kept "
			"were made exact by retention\n", hours, days, made_exact);
		CHECK(made_exact >= 1);
		CHECK(hours >= 18);
		CHECK(days >= 2);
		for (size_t i = 0; i < l.n; i++)
			if (l.v[i].time_ns < d_lo - margin) {
				fprintf(stderr, "checkpoint at seq %" PRIu64 " is older than every "
					"tier\n", l.v[i].hi);
				CHECK(0);
			}
		for (size_t i = 0; i < S->ncreated; i++)
			if (S->created[i].time_ns >= ws_hi + margin && !listed(&l, S->created[i].hi)) {
				fprintf(stderr, "checkpoint at seq %" PRIu64 " of the window was "
					"dropped\n", S->created[i].hi);
				CHECK(0);
			}
	}
	free(q.v);
	free(l.v);
}

/* ---- the simulation ---- */

static void open_source(struct sim *S)
{
	struct op o = { .kind = S_NEW };

	S->sgen++;
	snprintf(S->sname, sizeof(S->sname), "src%d", S->sgen);
	CHECK_EQ(volume_create(&S->t.cs, S->sname, VSIZE, CHUNK, NULL), 0);
	CHECK_EQ(volume_open(&S->t.cs, S->sname, opts(S), &S->s), 0);
	CHECK_EQ(run_op(S, &o), 0);
}

static void close_source(struct sim *S, int del)
{
	CHECK_EQ(volume_close(S->s), 0);
	S->s = NULL;
	if (del)
		CHECK_EQ(volume_delete(&S->t.cs, S->sname), 0);
}

static void snapshot(struct sim *S, const char *name)
{
	struct history_snap sn = { 0 };

	/* as `cairn snapshot create`: a cut (after a checkpoint, so the base the cut records
	 * is this very point) */
	CHECK_EQ(volume_checkpoint(S->a), 0);
	snprintf(sn.name, sizeof(sn.name), "%s", name);
	sn.time_ns = util_now_ns();
	CHECK_EQ(volume_cut(S->a, &sn.seq), 0);
	CHECK_EQ(history_snap_put(&S->t.cs, volume_get_info(S->a)->id, &sn, 1), 0);
	snprintf(S->snaps[S->nsnaps].name, sizeof(S->snaps[0].name), "%s", name);
	S->snaps[S->nsnaps++].seq = sn.seq;
}

static void chunk_sha(const uint8_t *p, struct chunk_id *id)
{
	unsigned n = 0;

	CHECK_EQ(EVP_Digest(p, CHUNK, id->b, &n, EVP_sha256(), NULL), 1);
}

static unsigned x_present(struct sim *S)
{
	unsigned n = 0;

	for (int i = 0; i < XCH; i++)
		n += repo_chunk_has(S->t.r, &S->xids[i]) == 1;
	return n;
}

/* Fresh chunks copied by reference from the source, then overwritten on both sides, and
 * the source deleted: only the COPY record of a's journal names them. */
static void x_scenario(struct sim *S, uint64_t *r)
{
	struct op o = { .kind = S_WRITE, .off = XSRC * CHUNK, .len = XCH * CHUNK };

	o.seed = vt_rand(r);
	CHECK_EQ(run_op(S, &o), 0);
	for (int i = 0; i < XCH; i++)
		chunk_sha(S->img_s + (XSRC + i) * CHUNK, &S->xids[i]);
	o = (struct op){ .kind = A_XCOPY, .off = XDST * CHUNK, .src = XSRC * CHUNK,
			 .len = XCH * CHUNK, .seed = 1 };
	CHECK_EQ(run_op(S, &o), 0);
	S->xpoint = o.after;
	CHECK_EQ(x_present(S), XCH);
	o = (struct op){ .kind = S_WRITE, .off = XSRC * CHUNK, .len = XCH * CHUNK,
			 .seed = vt_rand(r) };
	CHECK_EQ(run_op(S, &o), 0);
	CHECK_EQ(volume_checkpoint(S->s), 0);
	o = (struct op){ .kind = A_WRITE, .off = XDST * CHUNK, .len = XCH * CHUNK,
			 .seed = vt_rand(r) | 1 };
	CHECK_EQ(run_op(S, &o), 0);
	/* two more heads of "a", so that no head version still holds them */
	for (int i = 0; i < 2; i++) {
		o = (struct op){ .kind = A_WRITE, .off = (uint64_t)i * 4096, .len = 4096,
				 .seed = vt_rand(r) | 1 };
		CHECK_EQ(run_op(S, &o), 0);
		CHECK_EQ(volume_checkpoint(S->a), 0);
	}
	close_source(S, 1);
}

/* One step at T: a first write and a checkpoint (its history checkpoint falls between
 * two ops), or a burst of one-record ops until the engine records one on its own; then a
 * mix of everything, one simulated second apart. */
static void step(struct sim *S, unsigned k, uint64_t T)
{
	uint64_t r = k * 7919ull + 17;
	struct op o;
	unsigned n;

	int recorded = 0;

	clock_to(T);
	if (k % 24 == 0 || k % 24 == 14) { /* 00:10, 07:10, 12:10, 19:10: oldest of the hour */
		uint64_t before = max_hi(S), t_end = util_mono_ns() + 15 * NS;
		unsigned ops = 0;

		S->bursts++;
		while (!check_failures && util_mono_ns() < t_end) {
			struct timespec ts = { 0, 40 * 1000 * 1000 };

			gen_a(S, &r, 1, &o);
			CHECK_EQ(run_op(S, &o), 0);
			if (++ops % 4 == 0 && max_hi(S) > before)
				break;
			nanosleep(&ts, NULL);
		}
		recorded = max_hi(S) > before;
		S->burst_ckpts += recorded;
	}
	if (!recorded) {
		o = (struct op){ .kind = A_WRITE, .len = 512 * (1 + vt_rand(&r) % 8),
				 .seed = vt_rand(&r) };
		o.off = place(&r, o.len, 512);
		CHECK_EQ(run_op(S, &o), 0);
		CHECK_EQ(volume_checkpoint(S->a), 0);
	}
	note_ckpts(S);
	n = 3 + (unsigned)(vt_rand(&r) % 6);
	for (unsigned i = 0; i < n && !check_failures; i++) {
		clock_to(util_now_ns() + NS);
		if (S->s && vt_rand(&r) % 3 == 0) {
			gen_s(&r, &o);
			CHECK_EQ(run_op(S, &o), 0);
		}
		gen_a(S, &r, 0, &o);
		CHECK_EQ(run_op(S, &o), 0);
	}
	if (k == XSTEP)
		x_scenario(S, &r);
	if (k == 20 || k == 100 || k == 200 || k == NSTEPS - 2) {
		char name[32];

		snprintf(name, sizeof(name), "snap-%u", k);
		snapshot(S, name);
	}
}

static int image_equals(struct volume *v, const uint8_t *want, uint8_t *buf)
{
	for (uint64_t off = 0; off < VSIZE; off += 1 << 20)
		if (volume_read(v, off, buf, 1 << 20) || memcmp(buf, want + off, 1 << 20))
			return 0;
	return 1;
}

/* Bytes of the segment files in volume name's local journal directory. */
static uint64_t local_journal_bytes(struct sim *S, const char *name)
{
	struct volume_info vi;
	char dir[512], path[1024];
	struct dirent *de;
	uint64_t sum = 0;
	DIR *d;

	CHECK_EQ(volume_lookup(&S->t.cs, name, &vi), 0);
	snprintf(dir, sizeof(dir), "%s/%s/journal", S->t.state_dir, vi.id);
	d = opendir(dir);
	CHECK(d != NULL);
	while (d && (de = readdir(d))) {
		struct stat st;
		size_t l = strlen(de->d_name);

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (l > 4 && !strcmp(de->d_name + l - 4, ".log") && !stat(path, &st))
			sum += (uint64_t)st.st_size;
	}
	if (d)
		closedir(d);
	return sum;
}

static void close_all(struct sim *S)
{
	CHECK_EQ(volume_close(S->a), 0);
	S->a = NULL;
	if (S->s) {
		CHECK_EQ(volume_close(S->s), 0);
		S->s = NULL;
	}
	vt_close(&S->t);
}

static void test_retention_copy(void)
{
	struct sim S0, *S = &S0;
	struct volume_retention pol = { .retain_ns = RETAIN, .hourly_ns = HOURLY,
					.hourly_every_ns = HOUR, .daily_ns = DAILY,
					.daily_every_ns = DAY };
	struct vstats vs = { 0 };
	char args[1400], fresh[160];
	uint64_t t_ret;
	unsigned k;

	memset(S, 0, sizeof(*S));
	CHECK_EQ(vt_init(&S->t), 0);
	CHECK_EQ(vt_open(&S->t), 0);
	snprintf(S->cairn_log, sizeof(S->cairn_log), "%s/cairn.log", S->t.dir);
	S->img_a = calloc(1, VSIZE);
	S->img_s = calloc(1, VSIZE);
	S->tmp = malloc(2 * VSIZE);
	S->rbuf = malloc(1 << 20);
	/* day 0 starts at the next UTC midnight; steps at :10 and :40 */
	S->T0 = (util_now_ns() / DAY + 1) * DAY + 10 * MIN_NS;
	CHECK_EQ(volume_create(&S->t.cs, "a", VSIZE, CHUNK, NULL), 0);
	CHECK_EQ(volume_set_retention(&S->t.cs, NULL, "a", &pol), 0);
	CHECK_EQ(volume_open(&S->t.cs, "a", opts(S), &S->a), 0);
	open_source(S);

	for (k = 0; k < NSTEPS && !check_failures; k++) {
		if (k == XSTEP + 1)
			open_source(S);
		step(S, k, S->T0 + k * STEP);
		if (k % 40 == 39) {
			CHECK(image_equals(S->a, S->img_a, S->rbuf));
			fprintf(stderr, "step %u: %zu ops, %zu checkpoints seen\n", k, S->nops,
				S->ncreated);
		}
		if (k != GC1_STEP)
			continue;
		/* mid-way: the X point is inside the window; gc from a fresh state directory
		 * (the repository's stored journal segments alone name the COPY chunks) */
		fprintf(stderr, "gc and check at step %u (X point seq:%" PRIu64 ")\n", k,
			S->xpoint);
		t_ret = util_now_ns();
		close_all(S);
		snprintf(fresh, sizeof(fresh), "%s/fresh1", S->t.dir);
		snprintf(args, sizeof(args), "gc --grace 0 --repack-threshold 100 --state-dir '%s'",
			 fresh);
		CHECK_EQ(cairn(S, args), 0);
		snprintf(args, sizeof(args), "check --read-data --state-dir '%s'", fresh);
		CHECK_EQ(cairn(S, args), 0);
		CHECK_EQ(vt_open(&S->t), 0);
		CHECK_EQ(x_present(S), XCH);
		verify(S, S->t.state_dir, t_ret, 0, &vs);
		{
			long L = state_of_seq(S, S->xpoint);
			uint8_t *a = calloc(1, VSIZE), *s = calloc(1, VSIZE);
			char name[64];

			for (long i = 0; i < L; i++)
				apply(&S->ops[i], a, s, S->tmp);
			snprintf(name, sizeof(name), "a@seq:%" PRIu64, S->xpoint);
			CHECK_EQ(point_cmp(S, S->t.state_dir, name, a), 0);
			free(a);
			free(s);
		}
		CHECK_EQ(volume_open(&S->t.cs, "a", opts(S), &S->a), 0);
		CHECK_EQ(volume_open(&S->t.cs, S->sname, opts(S), &S->s), 0);
	}

	/* the end: a last pass 15 minutes on, the source deleted, gc from the state dir */
	if (!check_failures) {
		struct op o = { .kind = A_WRITE, .off = 0, .len = 4096, .seed = 99 };

		clock_to(S->T0 + (NSTEPS - 1) * STEP + 15 * MIN_NS);
		t_ret = util_now_ns();
		CHECK_EQ(run_op(S, &o), 0);
		CHECK_EQ(volume_checkpoint(S->a), 0);
		note_ckpts(S);
		CHECK(image_equals(S->a, S->img_a, S->rbuf));
		close_source(S, 1);
		close_all(S);
		/* the state directory of the mid-way gc again: its fetched copies of the
		 * segments retention has dropped since are stale (the chain breaks after them) */
		snprintf(fresh, sizeof(fresh), "%s/fresh1", S->t.dir);
		snprintf(args, sizeof(args), "gc --grace 0 --repack-threshold 100 --state-dir '%s'",
			 fresh);
		CHECK_EQ(cairn(S, args), 0);
		snprintf(args, sizeof(args), "check --read-data --state-dir '%s'", fresh);
		CHECK_EQ(cairn(S, args), 0);
		snprintf(args, sizeof(args), "gc --grace 0 --repack-threshold 100 --state-dir '%s'",
			 S->t.state_dir);
		CHECK_EQ(cairn(S, args), 0);
		snprintf(args, sizeof(args), "check --read-data --state-dir '%s'", S->t.state_dir);
		CHECK_EQ(cairn(S, args), 0);
		CHECK_EQ(vt_open(&S->t), 0);
		/* the local journal is a bounded cache of the stored history: journal_keep
		 * bytes, the active segment and one sealed since the last upload at most (the
		 * window holds several times more; the points above fetched the rest) */
		{
			uint64_t lb = local_journal_bytes(S, "a");

			fprintf(stderr, "local journal of a: %" PRIu64 " KiB\n", lb >> 10);
			CHECK(lb <= opts(S)->journal_keep + 2 * opts(S)->segment_bytes + (64 << 10));
		}
		fprintf(stderr, "final: %zu ops, %zu checkpoints seen, %u bursts (%u recorded a "
			"checkpoint on the engine's own)\n", S->nops, S->ncreated, S->bursts,
			S->burst_ckpts);
		CHECK(S->burst_ckpts >= S->bursts / 2);
		memset(&vs, 0, sizeof(vs));
		verify(S, S->t.state_dir, t_ret, 1, &vs);
		/* the X point has left the window: refused, and its chunks freed */
		{
			struct point_plan plan;
			char name[64];

			snprintf(name, sizeof(name), "a@seq:%" PRIu64, S->xpoint);
			CHECK_EQ(history_resolve(&S->t.cs, S->t.state_dir, name, 0, &plan), -ENODATA);
		}
		CHECK_EQ(x_present(S), 0);
		/* a copy of the repository: a fresh state directory */
		snprintf(fresh, sizeof(fresh), "%s/fresh2", S->t.dir);
		memset(&vs, 0, sizeof(vs));
		fprintf(stderr, "from a fresh state directory:\n");
		verify(S, fresh, t_ret, 1, &vs);
	}
	vt_close(&S->t);
	free(S->ops);
	free(S->created);
	free(S->img_a);
	free(S->img_s);
	free(S->tmp);
	free(S->rbuf);
	vt_fini(&S->t);
}

int main(void)
{
	log_init();
	RUN(test_retention_copy);
	return check_result();
}
