/* The repository's writer pool on S3: the real s3rver behind tests/s3/fault_proxy.py.
 *  - parallel_uploads_under_faults: four writer threads upload packs at once (the proxy
 *    sees several pack PUTs in flight) while 30% of requests get 503 SlowDown / 500,
 *    drops, resets, cut answers and stalls, and four threads read chunks back meanwhile
 *    (right bytes, from memory or S3); nothing is lost: a fresh read-only open
 *    reads back every chunk, and every pack has a sound index segment listing exactly
 *    its trailer's records.
 *  - segment_retry: while every index-segment PUT fails (packs still land), puts fail
 *    fast and flush reports the error; once S3 takes segments again, the writer pool
 *    stores every missing segment by itself (no flush, no reopen), and a fresh open finds
 *    every chunk.
 *  - parallel_downloads: reads from four threads of one read-only open are in flight at
 *    the same time (the proxy delays each request, and counts how many overlap). */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend_s3.h"
#include "check.h"
#include "index.h"
#include "log.h"
#include "pack.h"
#include "repo.h"
#include "s3_harness.h"
#include "util.h"

#define BUCKET "cairn-par"
#define URL "s3://" BUCKET "/r"
#define CHUNK (64u << 10)
#define N1 1536 /* 96 MiB of incompressible chunks: 7 packs */
#define N2 600  /* 3 packs */
#define NTHREADS 4

static struct child srv, proxy;
static char direct[64], viaproxy[64];
static struct chunk_id ids[N1 + N2];
static uint8_t refused_once[N1 + N2]; /* put refused by a no-retry pass; not stored yet */
static int nids;

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	uint64_t x = 0x9E3779B97F4A7C15ull * (seed + 1);

	for (size_t i = 0; i < n; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, MIN((size_t)8, n - i));
	}
}

static int proxy_set(const char *ep, const char *query)
{
	char url[256], out[4096];

	snprintf(url, sizeof(url), "%s/__fault_proxy_set?%s", ep, query);
	return http_fetch(url, out);
}

static long proxy_stat(const char *ep, const char *name)
{
	char url[128], out[4096];

	snprintf(url, sizeof(url), "%s/__fault_proxy_stats", ep);
	if (http_fetch(url, out))
		return -1;
	return stat_of(out, name);
}

static struct backend *direct_backend(void)
{
	struct backend_s3_opts o = { .bucket = BUCKET, .prefix = "r", .endpoint = direct,
				     .access_key = "S3RVER", .secret_key = "S3RVER" };
	struct backend *b = NULL;

	CHECK_EQ(backend_s3_open(&o, &b), 0);
	return b;
}

/* ---- putting chunks from several threads, retrying as the volume layer does ---- */

struct putter {
	struct repo *r;
	int t, first, count;
	int once;         /* one try per chunk: a refused one is marked in refused_once */
	int errors;
	unsigned refused; /* puts answered with an error (a failed pack pending), retried */
};

static void *put_main(void *arg)
{
	struct putter *p = arg;
	uint8_t *buf = malloc(CHUNK);

	for (int i = p->first + p->t; buf && i < p->first + p->count; i += NTHREADS) {
		int rc, tries = 0;

		if (p->once < 0 && !refused_once[i])
			continue;
		fill(buf, CHUNK, (uint32_t)i);
		while ((rc = repo_chunk_put(p->r, CHUNK_DATA, buf, CHUNK, &ids[i])) != 0 &&
		       p->once <= 0 && tries++ < 1200) {
			p->refused++;
			usleep(100000);
		}
		refused_once[i] = p->once > 0 && rc;
		if (refused_once[i]) {
			p->refused++;
			continue;
		}
		if (rc) {
			fprintf(stderr, "put %d: %s\n", i, strerror(-rc));
			p->errors++;
		}
	}
	free(buf);
	return NULL;
}

/* Put chunks first..first+count-1 from NTHREADS threads. once 0: retry each refused put
 * (up to 2 min); once 1: try each once, marking the refused ones; once -1: only those
 * marked, with retries. */
static void put_all(struct repo *r, int first, int count, int once, unsigned *refused)
{
	struct putter p[NTHREADS];
	pthread_t th[NTHREADS];

	for (int t = 0; t < NTHREADS; t++) {
		p[t] = (struct putter){ .r = r, .t = t, .first = first, .count = count, .once = once };
		pthread_create(&th[t], NULL, put_main, &p[t]);
	}
	for (int t = 0; t < NTHREADS; t++) {
		pthread_join(th[t], NULL);
		CHECK_EQ(p[t].errors, 0);
		if (refused)
			*refused += p[t].refused;
	}
	if (first + count > nids)
		nids = first + count;
}

/* ---- what is in the bucket ---- */

struct keys {
	char **k;
	uint64_t *size;
	int n;
};

static int keys_cb(void *arg, const char *key, uint64_t size)
{
	struct keys *ks = arg;

	ks->k = realloc(ks->k, sizeof(*ks->k) * (size_t)(ks->n + 1));
	ks->size = realloc(ks->size, sizeof(*ks->size) * (size_t)(ks->n + 1));
	ks->k[ks->n] = strdup(key);
	ks->size[ks->n++] = size;
	return 0;
}

static void keys_free(struct keys *ks)
{
	for (int i = 0; i < ks->n; i++)
		free(ks->k[i]);
	free(ks->k);
	free(ks->size);
	memset(ks, 0, sizeof(*ks));
}

static int has_key(const struct keys *ks, const char *key)
{
	for (int i = 0; i < ks->n; i++)
		if (!strcmp(ks->k[i], key))
			return 1;
	return 0;
}

/* Packs in the bucket whose index segment is missing; -1 if the listing failed. */
static int segments_missing(struct backend *b, int *npacks)
{
	struct keys packs = { 0 }, segs = { 0 };
	int missing = 0;

	if (b->ops->list(b->ctx, "packs/", keys_cb, &packs) ||
	    b->ops->list(b->ctx, "index/", keys_cb, &segs)) {
		missing = -1;
		goto out_free;
	}
	for (int i = 0; i < packs.n; i++) {
		uint8_t id[PACK_ID_LEN];
		char seg[PACK_KEY_LEN];

		if (pack_id_from_key(packs.k[i], id))
			continue;
		index_segment_key(id, seg);
		missing += !has_key(&segs, seg);
	}
	if (npacks)
		*npacks = packs.n;
out_free:
	keys_free(&packs);
	keys_free(&segs);
	return missing;
}

/* Every pack has a segment that decodes and lists exactly the records of its trailer;
 * no segment is without its pack. */
static void check_segments(struct backend *b)
{
	struct keys packs = { 0 }, segs = { 0 };

	CHECK_EQ(b->ops->list(b->ctx, "packs/", keys_cb, &packs), 0);
	CHECK_EQ(b->ops->list(b->ctx, "index/", keys_cb, &segs), 0);
	CHECK_EQ(segs.n, packs.n);
	for (int i = 0; i < packs.n; i++) {
		struct pack_entry *te = NULL, *se = NULL;
		uint32_t tn = 0, sn = 0;
		uint8_t id[PACK_ID_LEN];
		char seg[PACK_KEY_LEN];
		void *buf = NULL;
		size_t len;

		CHECK_EQ(pack_id_from_key(packs.k[i], id), 0);
		index_segment_key(id, seg);
		CHECK_EQ(pack_read_trailer(b, NULL, packs.k[i], packs.size[i], &te, &tn), 0);
		CHECK_EQ(b->ops->get(b->ctx, seg, &buf, &len), 0);
		if (buf)
			CHECK_EQ(index_segment_decode(NULL, buf, len, id, &se, &sn), 0);
		CHECK_EQ(sn, tn);
		if (se && te && sn == tn) {
			for (uint32_t e = 0; e < tn; e++)
				CHECK(!memcmp(&se[e].id, &te[e].id, sizeof(te[e].id)) &&
				      se[e].offset == te[e].offset && se[e].rec_len == te[e].rec_len);
		}
		free(buf);
		free(te);
		free(se);
	}
	keys_free(&packs);
	keys_free(&segs);
}

/* A fresh read-only open (its own backend, straight to s3rver) reads every chunk put
 * so far with the right bytes. */
static void check_all_chunks(void)
{
	struct repo_open_opts ro = { .read_only = 1, .s3_endpoint = direct };
	struct repo_stats st;
	struct repo *r = NULL;
	uint8_t *want = malloc(CHUNK), *got = malloc(CHUNK);
	int bad = 0;

	CHECK_EQ(repo_open(URL, &ro, &r), 0);
	if (!r)
		goto out_free;
	repo_get_stats(r, &st);
	CHECK_EQ(st.chunks, (uint64_t)nids);
	for (int i = 0; i < nids; i++) {
		size_t len = 0;

		fill(want, CHUNK, (uint32_t)i);
		if (repo_chunk_get(r, &ids[i], got, CHUNK, &len) || len != CHUNK ||
		    memcmp(want, got, CHUNK))
			bad++;
	}
	CHECK_EQ(bad, 0);
	repo_close(r);
out_free:
	free(want);
	free(got);
}

/* ---- reading chunks from several threads ---- */

struct getter {
	struct repo *r;
	int t, n, stride, errors;
};

/* Thread t reads chunks (k * NTHREADS + t) * stride % N1 for k < n and compares them. */
static void *get_main(void *arg)
{
	struct getter *g = arg;
	uint8_t *want = malloc(CHUNK), *got = malloc(CHUNK);

	for (int k = 0; want && got && k < g->n; k++) {
		int i = (k * NTHREADS + g->t) * g->stride % N1;
		size_t len = 0;
		int rc;

		fill(want, CHUNK, (uint32_t)i);
		rc = repo_chunk_get(g->r, &ids[i], got, CHUNK, &len);
		if (rc || len != CHUNK || memcmp(want, got, CHUNK)) {
			fprintf(stderr, "get %d: %s\n", i, rc ? strerror(-rc) : "wrong data");
			g->errors++;
		}
	}
	free(want);
	free(got);
	return NULL;
}

static void get_all(struct repo *r, int n, int stride)
{
	struct getter g[NTHREADS];
	pthread_t th[NTHREADS];

	for (int t = 0; t < NTHREADS; t++) {
		g[t] = (struct getter){ .r = r, .t = t, .n = n, .stride = stride };
		pthread_create(&th[t], NULL, get_main, &g[t]);
	}
	for (int t = 0; t < NTHREADS; t++) {
		pthread_join(th[t], NULL);
		CHECK_EQ(g[t].errors, 0);
	}
}

static void parallel_uploads_under_faults(void)
{
	struct repo_open_opts o = { .s3_endpoint = viaproxy, .uploads = 4 };
	struct backend *b = direct_backend();
	struct repo *r = NULL;
	unsigned refused = 0;
	int rc, tries = 0;

	CHECK_EQ(proxy_set(viaproxy, "rate=0.3&modes=503,500,drop,reset,drop-after,truncate,stall"
			   "&delay=0.1&track=/packs/"), 0);
	CHECK_EQ(repo_open(URL, &o, &r), 0);
	if (!r || !b)
		goto out_close;
	put_all(r, 0, N1, 0, &refused);
	/* reads while the last packs upload: from memory or from S3, through the faults */
	CHECK_EQ(proxy_set(viaproxy, "rate=0.3&modes=503,500,drop,reset,drop-after,truncate,stall"
			   "&delay=0"), 0);
	get_all(r, N1 / 4 / NTHREADS, 4);
	while ((rc = repo_flush(r)) != 0 && tries++ < 20)
		fprintf(stderr, "flush under faults: %s; again\n", strerror(-rc));
	CHECK_EQ(rc, 0);
	repo_close(r);
	fprintf(stderr, "uploads: %ld requests, at most %ld pack PUTs at once, faults 503 %ld 500 %ld "
		"drop %ld reset %ld drop-after %ld truncate %ld stall %ld; %u puts refused\n",
		proxy_stat(viaproxy, "requests"), proxy_stat(viaproxy, "max_inflight_PUT_track"),
		proxy_stat(viaproxy, "503"), proxy_stat(viaproxy, "500"),
		proxy_stat(viaproxy, "drop"), proxy_stat(viaproxy, "reset"),
		proxy_stat(viaproxy, "drop-after"), proxy_stat(viaproxy, "truncate"),
		proxy_stat(viaproxy, "stall"), refused);
	CHECK(proxy_stat(viaproxy, "max_inflight_PUT_track") >= 2);
	static const char *modes[] = { "503", "500", "drop", "reset", "drop-after", "truncate",
				       "stall" };
	for (size_t i = 0; i < ARRAY_SIZE(modes); i++)
		CHECK(proxy_stat(viaproxy, modes[i]) > 0);
	CHECK_EQ(proxy_set(viaproxy, "rate=0&delay=0"), 0);
	check_segments(b);
	check_all_chunks();
out_close:
	if (b)
		backend_close(b);
}

static void segment_retry(void)
{
	struct repo_open_opts o = { .s3_endpoint = viaproxy, .uploads = 4 };
	struct backend *b = direct_backend();
	struct repo *r = NULL;
	uint8_t *buf = malloc(CHUNK);
	struct chunk_id id;
	unsigned refused = 0;
	int packs0 = 0, packs = 0, missing = -1, rc;

	if (!b || !buf)
		goto out_free;
	CHECK_EQ(segments_missing(b, &packs0), 0);
	CHECK_EQ(repo_open(URL, &o, &r), 0);
	if (!r)
		goto out_free;
	/* every index-segment PUT fails; packs still land. Puts are refused (fail fast)
	 * once a segment has failed, as after a failed pack: those are put again later */
	CHECK_EQ(proxy_set(viaproxy, "rate=1&modes=503&match=/index/"), 0);
	put_all(r, N1, N2, 1, &refused);
	rc = repo_flush(r);
	CHECK(rc != 0);
	missing = segments_missing(b, &packs);
	fprintf(stderr, "segment outage: %d new packs, %d without a segment, %u puts refused\n",
		packs - packs0, missing, refused);
	CHECK(packs > packs0);
	CHECK_EQ(missing, packs - packs0);
	fill(buf, CHUNK, 0);
	CHECK(repo_chunk_put(r, CHUNK_DATA, buf, CHUNK, &id) == 0); /* a dedup hit is fine */
	fill(buf, CHUNK, N1 + N2);
	CHECK(repo_chunk_put(r, CHUNK_DATA, buf, CHUNK, &id) != 0); /* a new chunk fails fast */

	/* S3 takes segments again: the writers store them by themselves (no flush) */
	CHECK_EQ(proxy_set(viaproxy, "rate=0"), 0);
	for (int i = 0; i < 600 && missing != 0; i++) {
		usleep(100000);
		missing = segments_missing(b, NULL);
	}
	CHECK_EQ(missing, 0);
	put_all(r, N1, N2, -1, NULL);
	nids = N1 + N2;
	CHECK_EQ(repo_flush(r), 0);
	repo_close(r);
	CHECK_EQ(segments_missing(b, &packs), 0);
	check_segments(b);
	check_all_chunks();
out_free:
	free(buf);
	if (b)
		backend_close(b);
}

static void parallel_downloads(void)
{
	struct repo_open_opts ro = { .read_only = 1 };
	struct child p;
	char ep[64];
	struct repo *r = NULL;

	CHECK_EQ(proxy_start(srv.port, "0", "503", "1", &p), 0);
	if (p.pid < 0)
		return;
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", p.port);
	ro.s3_endpoint = ep;
	CHECK_EQ(repo_open(URL, &ro, &r), 0);
	if (!r)
		goto out_stop;
	CHECK_EQ(proxy_set(ep, "rate=0&delay=0.3"), 0);
	get_all(r, 4, 97); /* chunks of different packs (255 to a pack) */
	repo_close(r);
	fprintf(stderr, "downloads: at most %ld GETs at once from %d threads\n",
		proxy_stat(ep, "max_inflight_GET"), NTHREADS);
	CHECK(proxy_stat(ep, "max_inflight_GET") >= 3);
out_stop:
	child_stop(&p);
}

int main(void)
{
	struct repo_create_opts co = { 0 };

	log_init();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
	setenv("AWS_REGION", "us-east-1", 1);
	if (s3rver_start(&srv))
		return 1;
	snprintf(direct, sizeof(direct), "http://127.0.0.1:%d", srv.port);
	co.s3_endpoint = direct;
	CHECK_EQ(repo_create(URL, &co), 0);
	if (proxy_start(srv.port, "0", "503", "2", &proxy) == 0) {
		snprintf(viaproxy, sizeof(viaproxy), "http://127.0.0.1:%d", proxy.port);
		RUN(parallel_uploads_under_faults);
		RUN(segment_retry);
		child_stop(&proxy);
	} else {
		check_failures++;
	}
	if (nids)
		RUN(parallel_downloads);
	child_stop(&srv);
	curl_global_cleanup();
	return check_result();
}
