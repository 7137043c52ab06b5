/* Unit tests of the local-directory backend. */
#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "check.h"
#include "helpers.h"

static char *dir;
static struct backend *be;

struct seen {
	char keys[32][64];
	uint64_t sizes[32];
	int n;
};

static int collect(void *arg, const char *key, uint64_t size)
{
	struct seen *s = arg;

	if (s->n < 32) {
		snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", key);
		s->sizes[s->n] = size;
	}
	s->n++;
	return 0;
}

static void test_key_validation(void)
{
	static const char *bad[] = { "", "/a", "a//b", "a/", "..", "../x", "a/../b", "a/./b",
				     ".hidden", "a/.tmp", "/" };
	void *data;
	size_t len;
	uint64_t size;
	char b[4];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ(be->ops->put(be->ctx, bad[i], "x", 1, 0), -EINVAL);
		CHECK_EQ(be->ops->get(be->ctx, bad[i], &data, &len), -EINVAL);
		CHECK_EQ(be->ops->get_range(be->ctx, bad[i], 0, b, 1), -EINVAL);
		CHECK_EQ(be->ops->stat(be->ctx, bad[i], &size), -EINVAL);
		CHECK_EQ(be->ops->del(be->ctx, bad[i]), -EINVAL);
	}
	CHECK_EQ(be->ops->put(be->ctx, "ok/key.with.dots", "x", 1, 0), 0);
	CHECK_EQ(be->ops->del(be->ctx, "ok/key.with.dots"), 0);
}

static void test_put_get(void)
{
	char buf[16], path[4096];
	void *data;
	size_t len;
	uint64_t size;
	struct stat st;

	CHECK_EQ(be->ops->put(be->ctx, "deep/er/obj", "hello world", 11, 0), 0);
	snprintf(path, sizeof(path), "%s/deep/er/obj", dir);
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(be->ops->get(be->ctx, "deep/er/obj", &data, &len), 0);
	CHECK_EQ(len, 11);
	CHECK_MEM(data, "hello world", 11);
	free(data);
	CHECK_EQ(be->ops->stat(be->ctx, "deep/er/obj", &size), 0);
	CHECK_EQ(size, 11);
	CHECK_EQ(be->ops->get_range(be->ctx, "deep/er/obj", 6, buf, 5), 0);
	CHECK_MEM(buf, "world", 5);
	CHECK_EQ(be->ops->get_range(be->ctx, "deep/er/obj", 6, buf, 6), -ENODATA);
	CHECK_EQ(be->ops->get_range(be->ctx, "deep/er/obj", 0, buf, 0), -EINVAL);
	/* a directory is not an object */
	CHECK_EQ(be->ops->stat(be->ctx, "deep/er", &size), -ENOENT);
	CHECK_EQ(be->ops->get(be->ctx, "nope", &data, &len), -ENOENT);
	CHECK_EQ(be->ops->stat(be->ctx, "nope", &size), -ENOENT);
	/* empty object */
	CHECK_EQ(be->ops->put(be->ctx, "empty", "", 0, 0), 0);
	CHECK_EQ(be->ops->get(be->ctx, "empty", &data, &len), 0);
	CHECK_EQ(len, 0);
	free(data);
	CHECK_EQ(be->ops->del(be->ctx, "empty"), 0);
}

static void test_excl_and_overwrite(void)
{
	void *data;
	size_t len;

	CHECK_EQ(be->ops->put(be->ctx, "x/one", "first", 5, BACKEND_PUT_EXCL), 0);
	CHECK_EQ(be->ops->put(be->ctx, "x/one", "second", 6, BACKEND_PUT_EXCL), -EEXIST);
	CHECK_EQ(be->ops->get(be->ctx, "x/one", &data, &len), 0);
	CHECK_EQ(len, 5);
	CHECK_MEM(data, "first", 5);
	free(data);
	CHECK_EQ(be->ops->put(be->ctx, "x/one", "second", 6, 0), 0);
	CHECK_EQ(be->ops->get(be->ctx, "x/one", &data, &len), 0);
	CHECK_EQ(len, 6);
	CHECK_MEM(data, "second", 6);
	free(data);
	CHECK_EQ(be->ops->del(be->ctx, "x/one"), 0);
	CHECK_EQ(be->ops->del(be->ctx, "x/one"), -ENOENT);
}

static int stop_at_two(void *arg, const char *key, uint64_t size)
{
	int *n = arg;

	(void)key; (void)size;
	return ++*n == 2 ? 42 : 0;
}

static void test_list(void)
{
	struct seen s = { 0 };
	char path[4096];
	FILE *f;
	int n = 0;

	CHECK_EQ(be->ops->put(be->ctx, "l/a/b", "1", 1, 0), 0);
	CHECK_EQ(be->ops->put(be->ctx, "l/a-c", "22", 2, 0), 0);
	CHECK(be->ops->put(be->ctx, "l/a", "333", 3, 0) < 0); /* "l/a" is a directory */
	CHECK_EQ(be->ops->put(be->ctx, "l/b", "4444", 4, 0), 0);
	CHECK_EQ(be->ops->put(be->ctx, "l/0", "", 0, 0), 0);
	CHECK_EQ(be->ops->put(be->ctx, "lz", "z", 1, 0), 0);
	/* a stray temp file from a crashed put is never listed */
	snprintf(path, sizeof(path), "%s/l/.b.tmp.1.1", dir);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f)
		fclose(f);

	CHECK_EQ(be->ops->list(be->ctx, "l/", collect, &s), 0);
	CHECK_EQ(s.n, 4);
	CHECK(strcmp(s.keys[0], "l/0") == 0);
	CHECK(strcmp(s.keys[1], "l/a-c") == 0); /* '-' < '/' */
	CHECK(strcmp(s.keys[2], "l/a/b") == 0);
	CHECK(strcmp(s.keys[3], "l/b") == 0);
	CHECK_EQ(s.sizes[1], 2);
	CHECK_EQ(s.sizes[3], 4);

	memset(&s, 0, sizeof(s));
	CHECK_EQ(be->ops->list(be->ctx, "l/a", collect, &s), 0);
	CHECK_EQ(s.n, 2);
	memset(&s, 0, sizeof(s));
	CHECK_EQ(be->ops->list(be->ctx, "l", collect, &s), 0);
	CHECK_EQ(s.n, 5);
	CHECK(strcmp(s.keys[4], "lz") == 0);
	memset(&s, 0, sizeof(s));
	CHECK_EQ(be->ops->list(be->ctx, "nothing/", collect, &s), 0);
	CHECK_EQ(s.n, 0);
	CHECK_EQ(be->ops->list(be->ctx, "l/", stop_at_two, &n), 42);
	CHECK_EQ(n, 2);
}

static void touch(const char *path)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	if (f) {
		fputs("old data", f);
		fclose(f);
	}
}

/* A crashed put's temp file (its process is gone) is deleted when a list walks past it:
 * it may hold data meant to be deleted. Temp files of live processes stay. */
static void test_stray_tmp(void)
{
	struct seen s = { 0 };
	char dead[4096], live[4096], init[4096];
	struct stat st;
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	CHECK(pid > 0);
	waitpid(pid, NULL, 0);
	CHECK_EQ(be->ops->put(be->ctx, "st/x", "1", 1, 0), 0);
	snprintf(dead, sizeof(dead), "%s/st/.y.tmp.%d.7", dir, (int)pid);
	snprintf(live, sizeof(live), "%s/st/.z.tmp.%d.8", dir, (int)getpid());
	snprintf(init, sizeof(init), "%s/st/.w.tmp.1.9", dir);
	touch(dead);
	touch(live);
	touch(init);
	CHECK_EQ(be->ops->list(be->ctx, "st/", collect, &s), 0);
	CHECK_EQ(s.n, 1);
	CHECK_EQ(stat(dead, &st), -1);
	CHECK_EQ(stat(live, &st), 0);
	CHECK_EQ(stat(init, &st), 0);
	unlink(live);
	unlink(init);
}

static void test_open_missing(void)
{
	struct backend *b2;
	char path[4096];

	snprintf(path, sizeof(path), "%s/not/there", dir);
	CHECK_EQ(backend_local_open(path, 0, &b2), -ENOENT);
	CHECK_EQ(backend_local_open(path, 1, &b2), 0);
	backend_close(b2);
}

int main(void)
{
	dir = tmpdir_new();
	if (backend_local_open(dir, 0, &be)) {
		fprintf(stderr, "cannot open backend\n");
		return 1;
	}
	RUN(test_key_validation);
	RUN(test_put_get);
	RUN(test_excl_and_overwrite);
	RUN(test_list);
	RUN(test_stray_tmp);
	RUN(test_open_missing);
	backend_close(be);
	rm_rf(dir);
	free(dir);
	return check_result();
}
