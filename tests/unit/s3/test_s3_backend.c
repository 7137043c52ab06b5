/* The S3 backend against a real S3 server (the pinned s3rver on 127.0.0.1): every op,
 * error mapping, continuation of long listings, credentials sources, addressing styles
 * and parallel puts. Fails (never skips) when s3rver cannot be started. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend_s3.h"
#include "check.h"
#include "log.h"
#include "s3_harness.h"

#define BUCKET "cairn-test"

static struct child srv;
static char endpoint[64];
static struct backend *be;

static struct backend_s3_opts opts(const char *prefix)
{
	return (struct backend_s3_opts){
		.bucket = BUCKET, .prefix = prefix, .endpoint = endpoint, .region = "us-east-1",
		.access_key = "S3RVER", .secret_key = "S3RVER", .parallelism = 4,
		.backoff_base_ms = 10, .backoff_cap_ms = 200, .max_attempts = 4,
	};
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static void test_put_get_stat_del(void)
{
	size_t big = (1u << 20) + 17;
	uint8_t *data = malloc(big), buf[64];
	void *got = NULL;
	size_t len = 0;
	uint64_t size = 0;

	fill(data, big, 1);
	CHECK_EQ(be->ops->put(be->ctx, "packs/ab/obj1", data, big, 0), 0);
	CHECK_EQ(be->ops->stat(be->ctx, "packs/ab/obj1", &size), 0);
	CHECK_EQ(size, big);
	CHECK_EQ(be->ops->get(be->ctx, "packs/ab/obj1", &got, &len), 0);
	CHECK_EQ(len, big);
	if (got && len == big)
		CHECK_MEM(got, data, big);
	free(got);
	CHECK_EQ(be->ops->get_range(be->ctx, "packs/ab/obj1", 1000, buf, sizeof(buf)), 0);
	CHECK_MEM(buf, data + 1000, sizeof(buf));
	CHECK_EQ(be->ops->get_range(be->ctx, "packs/ab/obj1", big - 5, buf, 5), 0);
	CHECK_MEM(buf, data + big - 5, 5);
	CHECK_EQ(be->ops->get_range(be->ctx, "packs/ab/obj1", big - 5, buf, 6), -ENODATA);
	CHECK_EQ(be->ops->get_range(be->ctx, "packs/ab/obj1", big + 10, buf, 6), -ENODATA);
	CHECK_EQ(be->ops->get_range(be->ctx, "packs/ab/obj1", 0, buf, 0), -EINVAL);

	/* overwrite, empty object, odd characters in a key */
	CHECK_EQ(be->ops->put(be->ctx, "packs/ab/obj1", "short", 5, 0), 0);
	CHECK_EQ(be->ops->get(be->ctx, "packs/ab/obj1", &got, &len), 0);
	CHECK(len == 5 && got && !memcmp(got, "short", 5));
	free(got);
	CHECK_EQ(be->ops->put(be->ctx, "meta/empty", "", 0, 0), 0);
	CHECK_EQ(be->ops->stat(be->ctx, "meta/empty", &size), 0);
	CHECK_EQ(size, 0);
	got = NULL;
	CHECK_EQ(be->ops->get(be->ctx, "meta/empty", &got, &len), 0);
	CHECK_EQ(len, 0);
	free(got);
	CHECK_EQ(be->ops->put(be->ctx, "meta/a b+c=d&e~f,g", "odd", 3, BACKEND_PUT_EXCL), 0);
	CHECK_EQ(be->ops->get(be->ctx, "meta/a b+c=d&e~f,g", &got, &len), 0);
	CHECK(len == 3 && got && !memcmp(got, "odd", 3));
	free(got);

	/* errors */
	CHECK_EQ(be->ops->get(be->ctx, "nope/x", &got, &len), -ENOENT);
	CHECK_EQ(be->ops->get_range(be->ctx, "nope/x", 0, buf, 1), -ENOENT);
	CHECK_EQ(be->ops->stat(be->ctx, "nope/x", &size), -ENOENT);
	CHECK_EQ(be->ops->del(be->ctx, "nope/x"), -ENOENT);
	CHECK_EQ(be->ops->put(be->ctx, "/abs", "x", 1, 0), -EINVAL);
	CHECK_EQ(be->ops->put(be->ctx, "a/../b", "x", 1, 0), -EINVAL);
	CHECK_EQ(be->ops->get(be->ctx, "", &got, &len), -EINVAL);

	CHECK_EQ(be->ops->del(be->ctx, "packs/ab/obj1"), 0);
	CHECK_EQ(be->ops->stat(be->ctx, "packs/ab/obj1", &size), -ENOENT);
	CHECK_EQ(be->ops->del(be->ctx, "packs/ab/obj1"), -ENOENT);
	CHECK_EQ(be->ops->del(be->ctx, "meta/empty"), 0);
	CHECK_EQ(be->ops->del(be->ctx, "meta/a b+c=d&e~f,g"), 0);
	free(data);
}

struct putter {
	struct backend *b;
	int first, n;
	int errors;
};

static void *put_thread(void *arg)
{
	struct putter *p = arg;
	char key[64], val[64];

	for (int i = p->first; i < p->first + p->n; i++) {
		snprintf(key, sizeof(key), "many/%05d", i);
		snprintf(val, sizeof(val), "value-%d", i);
		if (p->b->ops->put(p->b->ctx, key, val, strlen(val), 0))
			p->errors++;
	}
	return NULL;
}

struct seen {
	int n, unordered, stop_at;
	char last[256];
	uint64_t bytes;
};

static int collect(void *arg, const char *key, uint64_t size)
{
	struct seen *s = arg;

	if (s->n && strcmp(s->last, key) >= 0)
		s->unordered++;
	snprintf(s->last, sizeof(s->last), "%s", key);
	s->n++;
	s->bytes += size;
	return s->stop_at && s->n == s->stop_at ? 42 : 0;
}

#define NKEYS 1100

static void test_parallel_put_and_list(void)
{
	pthread_t th[4];
	struct putter p[4];
	struct seen s = { 0 };
	struct backend *other = NULL;
	struct backend_s3_opts o = opts("other-repo");
	uint64_t want_bytes = 0;
	char v[64];

	for (int t = 0; t < 4; t++) {
		p[t] = (struct putter){ .b = be, .first = t * (NKEYS / 4), .n = NKEYS / 4 };
		pthread_create(&th[t], NULL, put_thread, &p[t]);
	}
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		CHECK_EQ(p[t].errors, 0);
	}
	for (int i = 0; i < NKEYS; i++)
		want_bytes += (uint64_t)snprintf(v, sizeof(v), "value-%d", i);

	/* a key outside this backend's prefix must not show */
	CHECK_EQ(backend_s3_open(&o, &other), 0);
	if (other) {
		CHECK_EQ(other->ops->put(other->ctx, "many/zzz", "x", 1, 0), 0);
		CHECK_EQ(other->ops->list(other->ctx, "", collect, &s), 0);
		CHECK_EQ(s.n, 1);
		CHECK(!strcmp(s.last, "many/zzz"));
		CHECK_EQ(other->ops->del(other->ctx, "many/zzz"), 0);
		backend_close(other);
	}

	memset(&s, 0, sizeof(s));
	CHECK_EQ(be->ops->list(be->ctx, "many/", collect, &s), 0);
	CHECK_EQ(s.n, NKEYS);
	CHECK_EQ(s.unordered, 0);
	CHECK_EQ(s.bytes, want_bytes);
	CHECK(!strcmp(s.last, "many/01099"));

	memset(&s, 0, sizeof(s));
	s.stop_at = 1050; /* stop on the second page */
	CHECK_EQ(be->ops->list(be->ctx, "many/", collect, &s), 42);
	CHECK_EQ(s.n, 1050);

	memset(&s, 0, sizeof(s));
	CHECK_EQ(be->ops->list(be->ctx, "many/0100", collect, &s), 0);
	CHECK_EQ(s.n, 10);
	memset(&s, 0, sizeof(s));
	CHECK_EQ(be->ops->list(be->ctx, "none/", collect, &s), 0);
	CHECK_EQ(s.n, 0);
}

static void test_error_mapping(void)
{
	struct backend *b = NULL;
	struct backend_s3_opts o = opts("x");
	void *got;
	size_t len;
	struct seen s = { 0 };

	/* unknown access key: 403 InvalidAccessKeyId */
	o.access_key = "NOSUCHKEY";
	CHECK_EQ(backend_s3_open(&o, &b), 0);
	if (b) {
		CHECK_EQ(b->ops->put(b->ctx, "k", "x", 1, 0), -EACCES);
		CHECK_EQ(b->ops->get(b->ctx, "k", &got, &len), -EACCES);
		backend_close(b);
		b = NULL;
	}
	/* missing bucket: 404 NoSuchBucket */
	o = opts("");
	o.bucket = "no-such-bucket";
	CHECK_EQ(backend_s3_open(&o, &b), 0);
	if (b) {
		CHECK_EQ(b->ops->get(b->ctx, "k", &got, &len), -ENOENT);
		CHECK_EQ(b->ops->list(b->ctx, "", collect, &s), -ENOENT);
		backend_close(b);
		b = NULL;
	}
	/* bad options */
	o = opts("");
	o.bucket = "Bad_Bucket";
	CHECK_EQ(backend_s3_open(&o, &b), -EINVAL);
	o = opts("");
	o.endpoint = "ftp://127.0.0.1:1";
	CHECK_EQ(backend_s3_open(&o, &b), -EINVAL);
	o.endpoint = "not a url";
	CHECK_EQ(backend_s3_open(&o, &b), -EINVAL);
}

static void test_credentials(void)
{
	struct backend *b = NULL;
	struct backend_s3_opts o = opts("creds");
	char path[] = "/tmp/cairn-s3-creds-XXXXXX";
	uint64_t size;
	FILE *f;
	int fd;

	o.access_key = o.secret_key = NULL;
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	CHECK_EQ(backend_s3_open(&o, &b), -EACCES);

	setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
	CHECK_EQ(backend_s3_open(&o, &b), 0);
	if (b) {
		CHECK_EQ(b->ops->put(b->ctx, "env", "e", 1, 0), 0);
		backend_close(b);
		b = NULL;
	}
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");

	fd = mkstemp(path);
	CHECK(fd >= 0);
	f = fdopen(fd, "w");
	fprintf(f, "[default]\naws_access_key_id = WRONG\naws_secret_access_key = WRONG\n\n"
		   "# comment\n[cairn]\r\naws_access_key_id=S3RVER\r\n aws_secret_access_key = S3RVER \n"
		   "aws_session_token = tok\n");
	fclose(f);
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	setenv("AWS_PROFILE", "cairn", 1);
	CHECK_EQ(backend_s3_open(&o, &b), 0);
	if (b) {
		CHECK_EQ(b->ops->stat(b->ctx, "env", &size), 0);
		CHECK_EQ(b->ops->del(b->ctx, "env"), 0);
		backend_close(b);
		b = NULL;
	}
	o.profile = "missing";
	CHECK_EQ(backend_s3_open(&o, &b), -EACCES);
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	unlink(path);
}

/* Virtual-host style: s3rver maps Host <bucket>.s3.localhost when started with
 * --service-endpoint localhost; curl resolves *.localhost to the loopback. */
static void test_vhost_style(void)
{
	struct child v;
	struct backend *b = NULL;
	struct backend_s3_opts o = opts("vh");
	const char *script = getenv("CAIRN_S3RVER_START");
	char *argv[] = { (char *)(script ? script : "tests/s3/start-s3rver.sh"), "",
			 "--service-endpoint", "localhost", NULL };
	char dir[] = "/tmp/cairn-s3-vhost-XXXXXX", ep[64];
	void *got = NULL;
	size_t len = 0;
	struct seen s = { 0 };

	CHECK(mkdtemp(dir) != NULL);
	argv[1] = dir;
	CHECK_EQ(child_start(argv, 600, &v), 0);
	if (v.pid < 0)
		return;
	snprintf(ep, sizeof(ep), "http://s3.localhost:%d", v.port);
	o.endpoint = ep;
	o.style = BACKEND_S3_STYLE_VHOST;
	CHECK_EQ(backend_s3_open(&o, &b), 0);
	if (b) {
		CHECK_EQ(backend_s3_create_bucket(b), 0);
		CHECK_EQ(b->ops->put(b->ctx, "k/1", "vhost", 5, 0), 0);
		CHECK_EQ(b->ops->get(b->ctx, "k/1", &got, &len), 0);
		CHECK(len == 5 && got && !memcmp(got, "vhost", 5));
		free(got);
		CHECK_EQ(b->ops->list(b->ctx, "k/", collect, &s), 0);
		CHECK_EQ(s.n, 1);
		backend_close(b);
	}
	/* the object really is in bucket BUCKET under the prefix */
	{
		char path[256];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s/vh/k/1._S3rver_object", dir, BUCKET);
		CHECK_EQ(stat(path, &st), 0);
	}
	child_stop(&v);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		CHECK_EQ(system(cmd), 0);
	}
}

int main(void)
{
	struct backend_s3_opts o;
	int rc;

	log_init();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (s3rver_start(&srv))
		return 1;
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", srv.port);
	o = opts("repo1/");
	rc = backend_s3_open(&o, &be);
	CHECK_EQ(rc, 0);
	if (!rc) {
		CHECK(!strcmp(be->url, "s3://" BUCKET "/repo1"));
		CHECK_EQ(backend_s3_create_bucket(be), 0);
		rc = backend_s3_create_bucket(be); /* already there: 0 (s3rver says BucketAlreadyExists) */
		CHECK_EQ(rc, 0);
		RUN(test_put_get_stat_del);
		RUN(test_parallel_put_and_list);
		RUN(test_error_mapping);
		RUN(test_credentials);
		RUN(test_vhost_style);
		backend_close(be);
	}
	child_stop(&srv);
	curl_global_cleanup();
	return check_result();
}
