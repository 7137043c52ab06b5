/* bench_index.c - the chunk index, bounded (filter + runs on disk, merged by a
 * background thread: the default) side by side with the former all-in-RAM hash table
 * (the same code with index_set_mem_max(SIZE_MAX)) and with the former inline merges
 * (index_set_inline_merges), for a synthetic load of uniform chunk ids; and the open
 * time of a repository of that many chunks, rebuilt from its index segments (the
 * former open) against reopened from the table kept in the state directory.
 * Not a test: bench_stores_index [MILLIONS...] [--open] [DIR]
 *   (default: 1 4; DIR: $TMPDIR; --open: the repository open bench instead)
 * Each (size, mode) runs in its own child process, so VmHWM is its own. Prints, per
 * million chunks: resident RAM after the load (VmRSS delta) and its peak (VmHWM delta);
 * then load rate and lookup rates (hits: random stored ids; misses: ids never stored),
 * the longest single insert (a run written and, inline, its merges; the all-in-RAM
 * table's doubling), and the ratios.
 * --open: a local repository of N chunks of 64 bytes in packs of 250 (N/250 packs and
 * index segments, as a repository of 64 KiB chunks has), then, each in its own process:
 * open without a state directory (every segment read), the first open with one (every
 * segment read, the table kept at close), and the reopen; time, packs read, peak RSS,
 * and the longest put while the repository was written.
 * --make-repo PATH: only write that repository (N million chunks, default 1) at PATH
 * and keep it (bench_index.sh times the cairn binary's commands on it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "index.h"
#include "repo.h"

#define LOOKUPS 1000000u

struct result {
	double rss_mib, hwm_mib, load_s, hit_s, miss_s, max_insert_s;
	int runs;
};

static void mk_id(uint64_t n, struct chunk_id *id)
{
	uint64_t s = n * 0x9e3779b97f4a7c15ull + 0x1234567;

	for (int i = 0; i < 4; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		uint64_t v = s * 0x2545f4914f6cdd1dull;
		memcpy(id->b + 8 * i, &v, 8);
	}
}

static long status_kib(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, strlen(field)) == 0)
			v = atol(line + strlen(field));
	fclose(f);
	return v;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int one(uint64_t n, int mode, const char *dir, struct result *res)
{
	long rss0 = status_kib("VmRSS:"), hwm0 = status_kib("VmHWM:");
	struct index *ix;
	struct chunk_id id;
	struct index_loc loc = { 0 };
	uint64_t s = 7, found = 0;
	double t, t1;
	int rc;

	rc = index_open(dir, &ix);
	if (rc)
		return rc;
	if (mode == 1)
		index_set_mem_max(ix, SIZE_MAX);
	if (mode == 2)
		index_set_inline_merges(ix, 1);
	t = now();
	for (uint64_t i = 0; i < n; i++) {
		mk_id(i, &id);
		loc.pack = (uint32_t)(i >> 12);
		loc.offset = (uint32_t)i;
		loc.entry = (uint32_t)(i & 4095);
		t1 = now();
		if ((rc = index_insert(ix, &id, &loc)) != 0)
			return rc;
		t1 = now() - t1;
		if (t1 > res->max_insert_s)
			res->max_insert_s = t1;
	}
	index_quiesce(ix); /* the load's merges are part of it */
	res->load_s = now() - t;
	res->rss_mib = (double)(status_kib("VmRSS:") - rss0) / 1024;
	res->runs = (int)index_runs(ix);
	t = now();
	for (uint32_t k = 0; k < LOOKUPS; k++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		mk_id(s % n, &id);
		found += index_lookup(ix, &id, &loc) == 0;
	}
	res->hit_s = now() - t;
	if (found != LOOKUPS)
		return -EIO;
	t = now();
	for (uint32_t k = 0; k < LOOKUPS; k++) {
		mk_id(n + 1 + k, &id);
		found += index_lookup(ix, &id, &loc) == 0;
	}
	res->miss_s = now() - t;
	if (found != LOOKUPS)
		return -EIO;
	res->hwm_mib = (double)(status_kib("VmHWM:") - hwm0) / 1024;
	index_destroy(ix);
	return 0;
}

static int run_child(uint64_t n, int mode, const char *dir, struct result *res)
{
	int pfd[2], st;
	pid_t pid;

	if (pipe(pfd))
		return -errno;
	pid = fork();
	if (pid == 0) {
		struct result r = { 0 };
		int rc = one(n, mode, dir, &r);

		if (rc)
			fprintf(stderr, "bench_index: %s\n", strerror(-rc));
		_exit(rc || write(pfd[1], &r, sizeof(r)) != sizeof(r) ? 1 : 0);
	}
	close(pfd[1]);
	if (read(pfd[0], res, sizeof(*res)) != sizeof(*res))
		res->load_s = -1;
	close(pfd[0]);
	waitpid(pid, &st, 0);
	return res->load_s < 0 || !WIFEXITED(st) || WEXITSTATUS(st) ? -EIO : 0;
}

/* ---- repository open ---- */

#define OPEN_CH 64u
#define OPEN_PER_PACK 250u

struct open_result {
	double s, put_max_s;
	uint64_t read, kept, chunks;
	long hwm_kib;
};

static void fill(uint8_t *b, uint64_t i)
{
	uint64_t s = i * 0x9e3779b97f4a7c15ull + 1;

	for (unsigned k = 0; k < OPEN_CH; k += 8) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		memcpy(b + k, &s, 8);
	}
}

/* what: 0 build, 1 open without state, 2 open with state (time the open only) */
static int open_one(const char *repo, const char *state, uint64_t n, int what,
		    struct open_result *res)
{
	struct repo_open_opts o = { .state_root = state };
	struct repo *r;
	struct repo_stats st;
	uint8_t b[OPEN_CH];
	double t = now();
	int rc;

	if (what == 0) {
		rc = repo_create(repo, NULL);
		if (rc)
			return rc;
	}
	rc = repo_open(repo, what == 2 ? &o : NULL, &r);
	if (rc)
		return rc;
	res->s = now() - t;
	for (uint64_t i = 0; what == 0 && i < n; i++) {
		struct chunk_id id;
		double t1;

		fill(b, i);
		t1 = now();
		rc = repo_chunk_put(r, CHUNK_DATA, b, sizeof(b), &id);
		t1 = now() - t1;
		if (t1 > res->put_max_s)
			res->put_max_s = t1;
		if (!rc && i % OPEN_PER_PACK == OPEN_PER_PACK - 1)
			rc = repo_flush(r);
		if (rc)
			return rc;
	}
	if (what == 0)
		res->s = now() - t;
	repo_get_stats(r, &st);
	res->read = st.index_packs_read;
	res->kept = st.index_packs_kept;
	res->chunks = st.chunks;
	res->hwm_kib = status_kib("VmHWM:");
	repo_close(r);
	return 0;
}

static int open_child(const char *repo, const char *state, uint64_t n, int what,
		      struct open_result *res)
{
	int pfd[2], st;
	pid_t pid;

	if (pipe(pfd))
		return -errno;
	pid = fork();
	if (pid == 0) {
		struct open_result r = { 0 };
		int rc = open_one(repo, state, n, what, &r);

		if (rc)
			fprintf(stderr, "bench_index: %s\n", strerror(-rc));
		_exit(rc || write(pfd[1], &r, sizeof(r)) != sizeof(r) ? 1 : 0);
	}
	close(pfd[1]);
	if (read(pfd[0], res, sizeof(*res)) != sizeof(*res))
		res->s = -1;
	close(pfd[0]);
	waitpid(pid, &st, 0);
	return res->s < 0 || !WIFEXITED(st) || WEXITSTATUS(st) ? -EIO : 0;
}

static int open_bench(int millions, const char *dir)
{
	char base[4096], repo[4200], state[4200], cmd[8600];
	uint64_t n = (uint64_t)millions * 1000000u;
	struct open_result b = { 0 }, r[3] = { { 0 } };
	static const char *names[3] = { "no state directory (the former open)",
					 "first open with a state directory",
					 "reopen (the kept table)" };

	snprintf(base, sizeof(base), "%s/cairn-bench-open.XXXXXX", dir ? dir :
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(base))
		return -errno;
	snprintf(repo, sizeof(repo), "%s/repo", base);
	snprintf(state, sizeof(state), "%s/state", base);
	if (open_child(repo, state, n, 0, &b))
		return -EIO;
	printf("repository: %llu chunks of %u bytes in %llu packs, written in %.1f s; longest put %.1f ms\n",
	       (unsigned long long)b.chunks, OPEN_CH, (unsigned long long)(n / OPEN_PER_PACK), b.s,
	       b.put_max_s * 1e3);
	printf("%-40s %10s %11s %11s %14s\n", "open", "time s", "packs read", "packs kept",
	       "peak RSS MiB");
	for (int w = 0; w < 3; w++) {
		if (open_child(repo, state, n, w == 0 ? 1 : 2, &r[w]))
			return -EIO;
		printf("%-40s %10.3f %11llu %11llu %14.1f\n", names[w], r[w].s,
		       (unsigned long long)r[w].read, (unsigned long long)r[w].kept,
		       r[w].hwm_kib / 1024.0);
	}
	printf("ratio reopen/former open: time %.3f (%.0fx faster), packs read %llu of %llu\n",
	       r[2].s / r[0].s, r[0].s / r[2].s, (unsigned long long)r[2].read,
	       (unsigned long long)r[0].read);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	return system(cmd) ? -EIO : 0;
}

int main(int argc, char **argv)
{
	static const char *mode_name[3] = { "bounded", "all-RAM", "inline" };
	const char *dir = NULL, *make = NULL;
	int sizes[8], ns = 0, open_mode = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--open"))
			open_mode = 1;
		else if (!strcmp(argv[i], "--make-repo") && i + 1 < argc)
			make = argv[++i];
		else if (atoi(argv[i]) > 0 && ns < 8)
			sizes[ns++] = atoi(argv[i]);
		else
			dir = argv[i];
	}
	if (!ns) {
		sizes[0] = 1;
		sizes[1] = 4;
		ns = open_mode || make ? 1 : 2;
	}
	if (make) {
		struct open_result b = { 0 };
		uint64_t n = (uint64_t)sizes[0] * 1000000u;

		if (open_child(make, NULL, n, 0, &b)) {
			fprintf(stderr, "bench_index: writing the repository %s failed\n", make);
			return 1;
		}
		printf("repository %s: %llu chunks of %u bytes in %llu packs, written in %.1f s\n",
		       make, (unsigned long long)b.chunks, OPEN_CH,
		       (unsigned long long)(n / OPEN_PER_PACK), b.s);
		return 0;
	}
	if (open_mode) {
		for (int i = 0; i < ns; i++)
			if (open_bench(sizes[i], dir)) {
				fprintf(stderr, "bench_index: the open bench failed\n");
				return 1;
			}
		return 0;
	}
	printf("%-9s %-9s %12s %12s %6s %10s %12s %12s %14s\n", "chunks", "index", "RSS MiB/M",
	       "HWM MiB/M", "runs", "load k/s", "hit k/s", "miss k/s", "max insert ms");
	for (int i = 0; i < ns; i++) {
		uint64_t n = (uint64_t)sizes[i] * 1000000u;
		struct result r[3];
		double m = sizes[i];

		for (int mode = 0; mode < 3; mode++) {
			memset(&r[mode], 0, sizeof(r[mode]));
			if (run_child(n, mode, dir, &r[mode])) {
				fprintf(stderr, "bench_index: %d M %s failed\n", sizes[i], mode_name[mode]);
				return 1;
			}
			printf("%-9llu %-9s %12.2f %12.2f %6d %10.0f %12.0f %12.0f %14.1f\n",
			       (unsigned long long)n, mode_name[mode], r[mode].rss_mib / m,
			       r[mode].hwm_mib / m, r[mode].runs, n / r[mode].load_s / 1e3,
			       LOOKUPS / r[mode].hit_s / 1e3, LOOKUPS / r[mode].miss_s / 1e3,
			       r[mode].max_insert_s * 1e3);
		}
		printf("%-9llu ratio bounded/all-RAM: RSS %.3f, HWM %.3f, load %.2f, hit %.2f, miss %.2f\n",
		       (unsigned long long)n, r[0].rss_mib / r[1].rss_mib, r[0].hwm_mib / r[1].hwm_mib,
		       r[1].load_s / r[0].load_s, r[1].hit_s / r[0].hit_s, r[1].miss_s / r[0].miss_s);
		printf("%-9llu ratio background/inline merges: longest insert %.3f, load %.2f, RSS %.2f\n",
		       (unsigned long long)n, r[0].max_insert_s / r[2].max_insert_s,
		       r[2].load_s / r[0].load_s, r[0].rss_mib / r[2].rss_mib);
	}
	return 0;
}
