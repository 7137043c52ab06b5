/* test_index.c - the bounded-RAM chunk index: insert, lookup, replace and remove against
 * a reference through many run files and merges; misses; a damaged run page gives
 * -EIO, never a wrong location; an unwritable directory falls back to $TMPDIR; and a
 * repository killed while its index merges reopens with every flushed chunk. */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "helpers.h"
#include "index.h"
#include "repo.h"

/* Uniform ids, as SHA-256 outputs are. */
static void mk_id(uint64_t n, struct chunk_id *id)
{
	uint64_t s = n * 0x9e3779b97f4a7c15ull + 0x1234567;

	for (int i = 0; i < 4; i++) {
		uint64_t v = rng_next(&s) * 0x2545f4914f6cdd1dull;

		memcpy(id->b + 8 * i, &v, 8);
	}
}

static struct index_loc mk_loc(uint64_t n, uint32_t gen)
{
	return (struct index_loc){ .pack = (uint32_t)(n % 1000) + gen, .offset = (uint32_t)n * 7,
				   .rec_len = 100 + (uint32_t)(n % 5000), .plain_len = (uint32_t)n % 65536 + 1,
				   .entry = (uint32_t)(n % 4096), .kind = (uint8_t)(n & 1) };
}

static int loc_eq(const struct index_loc *a, const struct index_loc *b)
{
	return a->pack == b->pack && a->offset == b->offset && a->rec_len == b->rec_len &&
	       a->plain_len == b->plain_len && a->entry == b->entry && a->kind == b->kind;
}

#define N 30000u

/* state[i]: 0 absent, else present with generation state[i] - 1 */
static void check_all(struct index *ix, const uint32_t *state, uint64_t n)
{
	size_t present = 0, bad = 0;

	for (uint64_t i = 0; i < n; i++) {
		struct chunk_id id;
		struct index_loc loc, want;
		int rc;

		mk_id(i, &id);
		rc = index_lookup(ix, &id, &loc);
		if (!state[i]) {
			bad += rc != -ENOENT;
			continue;
		}
		present++;
		want = mk_loc(i, state[i] - 1);
		bad += rc != 0 || !loc_eq(&loc, &want);
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(index_count(ix), present);
}

static void ops_with(size_t mem_max)
{
	struct index *ix;
	uint32_t *state = calloc(N + N / 2, sizeof(*state));
	uint64_t s = 42;
	struct chunk_id id;
	struct index_loc loc;
	unsigned max_runs = 0;

	CHECK_EQ(index_open(NULL, &ix), 0);
	index_set_mem_max(ix, mem_max);
	for (uint64_t i = 0; i < N; i++) {
		mk_id(i, &id);
		loc = mk_loc(i, 0);
		CHECK_EQ(index_insert(ix, &id, &loc), 0);
		state[i] = 1;
		if (index_runs(ix) > max_runs)
			max_runs = index_runs(ix);
	}
	check_all(ix, state, N + N / 2);
	/* random replaces, removes, re-inserts, and their errors */
	for (int k = 0; k < 3 * (int)N; k++) {
		uint64_t i = rng_next(&s) % (N + N / 2);
		unsigned op = (unsigned)(rng_next(&s) % 3);

		mk_id(i, &id);
		if (op == 0) {
			loc = mk_loc(i, 0);
			CHECK_EQ(index_insert(ix, &id, &loc), state[i] ? -EEXIST : 0);
			if (!state[i])
				state[i] = 1;
		} else if (op == 1) {
			uint32_t gen = state[i] ? state[i] % 7 + 1 : 1;

			loc = mk_loc(i, gen);
			CHECK_EQ(index_replace(ix, &id, &loc), state[i] ? 0 : -ENOENT);
			if (state[i])
				state[i] = gen + 1;
		} else {
			CHECK_EQ(index_remove(ix, &id), state[i] ? 0 : -ENOENT);
			state[i] = 0;
		}
		if (index_runs(ix) > max_runs)
			max_runs = index_runs(ix);
	}
	check_all(ix, state, N + N / 2);
	if (mem_max < N) {
		CHECK(max_runs >= 1);
		CHECK(max_runs <= 16); /* merges keep about log2(N / mem_max) runs */
	} else {
		CHECK_EQ(index_runs(ix), 0);
	}
	/* remove everything: the table empties */
	for (uint64_t i = 0; i < N + N / 2; i++) {
		mk_id(i, &id);
		if (state[i])
			CHECK_EQ(index_remove(ix, &id), 0);
		state[i] = 0;
	}
	check_all(ix, state, N + N / 2);
	index_destroy(ix);
	free(state);
}

static void ops_small_mem(void)
{
	ops_with(100);
}

static void ops_default(void)
{
	ops_with(8192);
}

static void ops_all_in_ram(void)
{
	ops_with(SIZE_MAX);
}

/* The run files are unlinked at once: the directory stays empty. */
static void runs_leave_nothing(void)
{
	char *dir = tmpdir_new();
	struct index *ix;
	struct chunk_id id;
	struct index_loc loc;
	DIR *d;
	struct dirent *e;
	int files = 0;

	CHECK_EQ(index_open(dir, &ix), 0);
	index_set_mem_max(ix, 500);
	for (uint64_t i = 0; i < 5000; i++) {
		mk_id(i, &id);
		loc = mk_loc(i, 0);
		CHECK_EQ(index_insert(ix, &id, &loc), 0);
	}
	CHECK(index_runs(ix) >= 1);
	d = opendir(dir);
	while ((e = readdir(d)) != NULL)
		files += e->d_name[0] != '.';
	closedir(d);
	CHECK_EQ(files, 0);
	index_destroy(ix);
	/* an unusable directory: $TMPDIR instead */
	CHECK_EQ(index_open("/nonexistent/cairn-index-test", &ix), 0);
	index_set_mem_max(ix, 100);
	for (uint64_t i = 0; i < 1000; i++) {
		mk_id(i, &id);
		loc = mk_loc(i, 0);
		CHECK_EQ(index_insert(ix, &id, &loc), 0);
	}
	CHECK(index_runs(ix) >= 1);
	for (uint64_t i = 0; i < 1000; i++) {
		mk_id(i, &id);
		CHECK_EQ(index_lookup(ix, &id, &loc), 0);
	}
	index_destroy(ix);
	rm_rf(dir);
	free(dir);
}

/* Flip a byte in every run file (found through /proc/self/fd): lookups answer right or
 * -EIO, never a wrong location, and the ids on the damaged page do give -EIO. */
static void damaged_page(void)
{
	struct index *ix;
	struct chunk_id id;
	struct index_loc loc, want;
	DIR *d;
	struct dirent *e;
	int damaged = 0;
	size_t ok = 0, eio = 0, wrong = 0;

	CHECK_EQ(index_open(NULL, &ix), 0);
	index_set_mem_max(ix, 4000);
	for (uint64_t i = 0; i < 4000; i++) { /* exactly one run, no mem */
		mk_id(i, &id);
		loc = mk_loc(i, 0);
		CHECK_EQ(index_insert(ix, &id, &loc), 0);
	}
	CHECK_EQ(index_runs(ix), 1);
	d = opendir("/proc/self/fd");
	while ((e = readdir(d)) != NULL) {
		char link[300], target[4096];
		ssize_t n;

		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (strstr(target, "/cairn-index.") && strstr(target, "(deleted)")) {
			int fd = open(link, O_RDWR);
			uint8_t b;

			CHECK(fd >= 0);
			CHECK_EQ(pread(fd, &b, 1, 4096 * 3 + 100), 1);
			b ^= 0x10;
			CHECK_EQ(pwrite(fd, &b, 1, 4096 * 3 + 100), 1);
			close(fd);
			damaged++;
		}
	}
	closedir(d);
	CHECK_EQ(damaged, 1);
	for (uint64_t i = 0; i < 4000; i++) {
		int rc;

		mk_id(i, &id);
		want = mk_loc(i, 0);
		rc = index_lookup(ix, &id, &loc);
		if (rc == 0)
			ok += loc_eq(&loc, &want), wrong += !loc_eq(&loc, &want);
		else if (rc == -EIO)
			eio++;
		else
			wrong++;
	}
	CHECK_EQ(wrong, 0);
	CHECK_EQ(eio, 72); /* one page of records */
	CHECK_EQ(ok, 4000 - 72);
	index_destroy(ix);
}

/* A repository whose writer is killed (SIGKILL) while its index writes and merges runs
 * reopens with every chunk it had flushed, in a state dir left empty of run files. */
static void killed_during_merges(void)
{
	char *dir = tmpdir_new(), *state = tmpdir_new(), repo_dir[4096];
	int pfd[2];
	pid_t pid;
	uint64_t flushed = 0, v;
	struct repo *r;
	struct repo_open_opts o = { .state_root = state };
	uint8_t buf[256], out[256];
	size_t len;

	snprintf(repo_dir, sizeof(repo_dir), "%s/repo", dir);
	CHECK_EQ(repo_create(repo_dir, NULL), 0);
	CHECK_EQ(pipe(pfd), 0);
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		if (repo_open(repo_dir, &o, &r))
			_exit(3);
		for (uint64_t i = 0;; i++) {
			struct chunk_id id;

			fill_random(buf, sizeof(buf), i + 1);
			if (repo_chunk_put(r, CHUNK_DATA, buf, sizeof(buf), &id))
				_exit(4);
			if (i % 5000 == 4999) {
				if (repo_flush(r))
					_exit(5);
				v = i + 1;
				if (write(pfd[1], &v, sizeof(v)) != sizeof(v))
					_exit(6);
			}
		}
	}
	close(pfd[1]);
	while (flushed < 40000 && read(pfd[0], &v, sizeof(v)) == sizeof(v))
		flushed = v;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	while (read(pfd[0], &v, sizeof(v)) == sizeof(v))
		flushed = v;
	close(pfd[0]);
	CHECK(flushed >= 40000);
	CHECK_EQ(repo_open(repo_dir, &o, &r), 0);
	for (uint64_t i = 0; i < flushed; i++) {
		struct chunk_id id;
		int rc;

		fill_random(buf, sizeof(buf), i + 1);
		CHECK_EQ(repo_chunk_put(r, CHUNK_DATA, buf, sizeof(buf), &id), 0); /* dedup */
		rc = repo_chunk_get(r, &id, out, sizeof(out), &len);
		if (rc || len != sizeof(buf) || memcmp(out, buf, len)) {
			CHECK_EQ(rc, 0);
			break;
		}
	}
	CHECK(repo_chunk_stat(r, &(struct chunk_id){ { 1, 2, 3 } }, &(uint32_t){ 0 },
			      &(uint32_t){ 0 }) == -ENOENT);
	repo_close(r);
	{
		DIR *d = opendir(state);
		struct dirent *e;
		int stray = 0;

		while ((e = readdir(d)) != NULL)
			stray += strncmp(e->d_name, "cairn-index.", 12) == 0;
		closedir(d);
		CHECK_EQ(stray, 0);
	}
	rm_rf(dir);
	rm_rf(state);
	free(dir);
	free(state);
}

int main(void)
{
	RUN(ops_small_mem);
	RUN(ops_default);
	RUN(ops_all_in_ram);
	RUN(runs_leave_nothing);
	RUN(damaged_page);
	RUN(killed_during_merges);
	return check_result();
}
