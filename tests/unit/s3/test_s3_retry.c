/* The S3 backend through tests/s3/fault_proxy.py in front of the real s3rver: with 30%
 * of requests answered 503 SlowDown / 500, dropped, reset, cut mid-body, dropped after
 * the server acted, or stalled, every operation still succeeds with the right data.
 * Also: retries are bounded (-EIO / -ETIMEDOUT) and a 4xx is never retried. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend_s3.h"
#include "check.h"
#include "log.h"
#include "s3_harness.h"
#include "util.h"

#define BUCKET "cairn-retry"
#define NSMALL 1050
#define NBIG 24
#define BIG_SIZE (300u << 10)

static struct child srv, proxy;
static char direct[64], faulty[64];

static struct backend_s3_opts opts(const char *endpoint)
{
	return (struct backend_s3_opts){
		.bucket = BUCKET, .prefix = "r", .endpoint = endpoint, .access_key = "S3RVER",
		.secret_key = "S3RVER", .parallelism = 4, .request_timeout_ms = 1000,
		.connect_timeout_ms = 1000, .backoff_base_ms = 5, .backoff_cap_ms = 100,
		.max_attempts = 16,
	};
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

struct worker {
	struct backend *b;
	int t;
	int errors;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint8_t *big = malloc(BIG_SIZE), buf[100];
	char key[64], val[64];
	void *got;
	size_t len;
	uint64_t size;
	int rc;

	for (int i = w->t; i < NSMALL; i += 4) {
		snprintf(key, sizeof(key), "small/%05d", i);
		snprintf(val, sizeof(val), "v%d", i);
		rc = w->b->ops->put(w->b->ctx, key, val, strlen(val), BACKEND_PUT_EXCL);
		if (rc) {
			fprintf(stderr, "put %s: %d\n", key, rc);
			w->errors++;
		}
	}
	for (int i = w->t; i < NBIG; i += 4) {
		snprintf(key, sizeof(key), "big/%03d", i);
		fill(big, BIG_SIZE, (uint32_t)i);
		if ((rc = w->b->ops->put(w->b->ctx, key, big, BIG_SIZE, 0))) {
			fprintf(stderr, "put %s: %d\n", key, rc);
			w->errors++;
			continue;
		}
		got = NULL;
		rc = w->b->ops->get(w->b->ctx, key, &got, &len);
		if (rc || len != BIG_SIZE || memcmp(got, big, BIG_SIZE)) {
			fprintf(stderr, "get %s: %d len %zu\n", key, rc, len);
			w->errors++;
		}
		free(got);
		rc = w->b->ops->get_range(w->b->ctx, key, 777 * (uint64_t)i, buf, sizeof(buf));
		if (rc || memcmp(buf, big + 777 * i, sizeof(buf))) {
			fprintf(stderr, "get_range %s: %d\n", key, rc);
			w->errors++;
		}
		rc = w->b->ops->stat(w->b->ctx, key, &size);
		if (rc || size != BIG_SIZE) {
			fprintf(stderr, "stat %s: %d\n", key, rc);
			w->errors++;
		}
	}
	for (int i = w->t; i < NSMALL; i += 40) {
		snprintf(key, sizeof(key), "small/%05d", i);
		snprintf(val, sizeof(val), "v%d", i);
		got = NULL;
		rc = w->b->ops->get(w->b->ctx, key, &got, &len);
		if (rc || len != strlen(val) || memcmp(got, val, len)) {
			fprintf(stderr, "get %s: %d\n", key, rc);
			w->errors++;
		}
		free(got);
	}
	free(big);
	return NULL;
}

static int count(void *arg, const char *key, uint64_t size)
{
	(void)key;
	(void)size;
	++*(int *)arg;
	return 0;
}

static void test_faults(void)
{
	struct backend *b = NULL;
	struct backend_s3_opts o = opts(faulty);
	struct worker w[4];
	pthread_t th[4];
	char url[96], stats[4096];
	uint64_t t0 = util_mono_ns();
	int n = 0, rc;

	CHECK_EQ(backend_s3_open(&o, &b), 0);
	if (!b)
		return;
	for (int t = 0; t < 4; t++) {
		w[t] = (struct worker){ .b = b, .t = t };
		pthread_create(&th[t], NULL, worker_main, &w[t]);
	}
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		CHECK_EQ(w[t].errors, 0);
	}
	CHECK_EQ(b->ops->list(b->ctx, "small/", count, &n), 0);
	CHECK_EQ(n, NSMALL);
	n = 0;
	CHECK_EQ(b->ops->list(b->ctx, "", count, &n), 0);
	CHECK_EQ(n, NSMALL + NBIG);
	for (int i = 0; i < NBIG; i += 3) {
		char key[32];

		snprintf(key, sizeof(key), "big/%03d", i);
		CHECK_EQ(b->ops->del(b->ctx, key), 0);
		rc = b->ops->del(b->ctx, key);
		CHECK_EQ(rc, -ENOENT);
	}
	backend_close(b);

	snprintf(url, sizeof(url), "%s/__fault_proxy_stats", faulty);
	CHECK_EQ(http_fetch(url, stats), 0);
	fprintf(stderr, "fault proxy: %s (%.1f s)\n", stats,
		(double)(util_mono_ns() - t0) / 1e9);
	CHECK(stat_of(stats, "requests") > NSMALL + 4 * NBIG);
	static const char *modes[] = { "503", "500", "drop", "reset", "drop-after", "truncate",
				       "stall" };
	for (size_t i = 0; i < ARRAY_SIZE(modes); i++)
		CHECK(stat_of(stats, modes[i]) > 0);
}

/* Every answer 503 / every request stalled: bounded retries, then -EIO / -ETIMEDOUT. */
static void test_exhausted(void)
{
	struct child p;
	struct backend *b = NULL;
	struct backend_s3_opts o;
	char ep[64], url[96], stats[4096];
	void *got;
	size_t len;
	uint64_t t0;

	CHECK_EQ(proxy_start(srv.port, "1.0", "503", "5", &p), 0);
	if (p.pid < 0)
		return;
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", p.port);
	o = opts(ep);
	o.max_attempts = 5;
	CHECK_EQ(backend_s3_open(&o, &b), 0);
	if (b) {
		CHECK_EQ(b->ops->put(b->ctx, "x", "x", 1, 0), -EIO);
		backend_close(b);
	}
	snprintf(url, sizeof(url), "%s/__fault_proxy_stats", ep);
	CHECK_EQ(http_fetch(url, stats), 0);
	CHECK_EQ(stat_of(stats, "requests"), 5);
	child_stop(&p);

	CHECK_EQ(proxy_start(srv.port, "1.0", "stall", "3", &p), 0);
	if (p.pid < 0)
		return;
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", p.port);
	o = opts(ep);
	o.request_timeout_ms = 300;
	o.max_attempts = 100;
	o.retry_total_ms = 1500; /* the time bound stops it, not the attempt count */
	b = NULL;
	t0 = util_mono_ns();
	CHECK_EQ(backend_s3_open(&o, &b), 0);
	if (b) {
		CHECK_EQ(b->ops->get(b->ctx, "x", &got, &len), -ETIMEDOUT);
		CHECK((util_mono_ns() - t0) / 1000000 < 4000);
		backend_close(b);
	}
	child_stop(&p);

	/* nothing listens: connection refused, retried, then -EIO */
	o = opts("http://127.0.0.1:1");
	o.max_attempts = 3;
	b = NULL;
	CHECK_EQ(backend_s3_open(&o, &b), 0);
	if (b) {
		CHECK_EQ(b->ops->get(b->ctx, "x", &got, &len), -EIO);
		backend_close(b);
	}
}

/* A 403 or 404 is answered once: no retry. */
static void test_no_retry_on_4xx(void)
{
	struct child p;
	struct backend *b = NULL;
	struct backend_s3_opts o;
	char ep[64], url[96], stats[4096];
	void *got;
	size_t len;

	CHECK_EQ(proxy_start(srv.port, "0", "503", "5", &p), 0);
	if (p.pid < 0)
		return;
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", p.port);
	o = opts(ep);
	o.access_key = "WRONGKEY";
	CHECK_EQ(backend_s3_open(&o, &b), 0);
	if (b) {
		CHECK_EQ(b->ops->get(b->ctx, "x", &got, &len), -EACCES);
		backend_close(b);
	}
	o = opts(ep);
	b = NULL;
	CHECK_EQ(backend_s3_open(&o, &b), 0);
	if (b) {
		CHECK_EQ(b->ops->get(b->ctx, "nope", &got, &len), -ENOENT);
		backend_close(b);
	}
	snprintf(url, sizeof(url), "%s/__fault_proxy_stats", ep);
	CHECK_EQ(http_fetch(url, stats), 0);
	CHECK_EQ(stat_of(stats, "requests"), 2);
	child_stop(&p);
}

int main(void)
{
	struct backend *b = NULL;
	struct backend_s3_opts o;

	log_init();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (s3rver_start(&srv))
		return 1;
	snprintf(direct, sizeof(direct), "http://127.0.0.1:%d", srv.port);
	o = opts(direct);
	CHECK_EQ(backend_s3_open(&o, &b), 0);
	if (b) {
		CHECK_EQ(backend_s3_create_bucket(b), 0);
		backend_close(b);
	}
	if (proxy_start(srv.port, "0.3", "503,500,drop,reset,drop-after,truncate,stall", "2",
			&proxy) == 0) {
		snprintf(faulty, sizeof(faulty), "http://127.0.0.1:%d", proxy.port);
		RUN(test_faults);
		child_stop(&proxy);
	} else {
		check_failures++;
	}
	RUN(test_exhausted);
	RUN(test_no_retry_on_4xx);
	child_stop(&srv);
	curl_global_cleanup();
	return check_result();
}
