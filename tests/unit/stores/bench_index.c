/* bench_index.c - RAM and lookup speed of the chunk index, bounded (filter + runs on
 * disk, the default) side by side with the former all-in-RAM hash table (the same code
 * with index_set_mem_max(SIZE_MAX)), for a synthetic load of uniform chunk ids.
 * Not a test: bench_stores_index [MILLIONS...] [DIR]   (default: 1 4, DIR $TMPDIR)
 * Each (size, mode) runs in its own child process, so VmHWM is its own. Prints, per
 * million chunks: resident RAM after the load (VmRSS delta) and its peak (VmHWM delta);
 * then load rate and lookup rates (hits: random stored ids; misses: ids never stored),
 * the longest single insert (a merge, or the table doubling), and the ratios
 * bounded/RAM. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "index.h"

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

static int one(uint64_t n, int all_ram, const char *dir, struct result *res)
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
	if (all_ram)
		index_set_mem_max(ix, SIZE_MAX);
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

static int run_child(uint64_t n, int all_ram, const char *dir, struct result *res)
{
	int pfd[2], st;
	pid_t pid;

	if (pipe(pfd))
		return -errno;
	pid = fork();
	if (pid == 0) {
		struct result r = { 0 };
		int rc = one(n, all_ram, dir, &r);

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

int main(int argc, char **argv)
{
	const char *dir = NULL;
	int sizes[8], ns = 0;

	for (int i = 1; i < argc; i++) {
		if (atoi(argv[i]) > 0 && ns < 8)
			sizes[ns++] = atoi(argv[i]);
		else
			dir = argv[i];
	}
	if (!ns) {
		sizes[0] = 1;
		sizes[1] = 4;
		ns = 2;
	}
	printf("%-9s %-9s %12s %12s %6s %10s %12s %12s %14s\n", "chunks", "index", "RSS MiB/M",
	       "HWM MiB/M", "runs", "load k/s", "hit k/s", "miss k/s", "max insert ms");
	for (int i = 0; i < ns; i++) {
		uint64_t n = (uint64_t)sizes[i] * 1000000u;
		struct result r[2];
		double m = sizes[i];

		for (int mode = 0; mode < 2; mode++) {
			if (run_child(n, mode, dir, &r[mode])) {
				fprintf(stderr, "bench_index: %d M %s failed\n", sizes[i],
					mode ? "all-in-RAM" : "bounded");
				return 1;
			}
			printf("%-9llu %-9s %12.2f %12.2f %6d %10.0f %12.0f %12.0f %14.1f\n",
			       (unsigned long long)n, mode ? "all-RAM" : "bounded", r[mode].rss_mib / m,
			       r[mode].hwm_mib / m, r[mode].runs, n / r[mode].load_s / 1e3,
			       LOOKUPS / r[mode].hit_s / 1e3, LOOKUPS / r[mode].miss_s / 1e3,
			       r[mode].max_insert_s * 1e3);
		}
		printf("%-9llu ratio bounded/all-RAM: RSS %.3f, HWM %.3f, load %.2f, hit %.2f, miss %.2f\n",
		       (unsigned long long)n, r[0].rss_mib / r[1].rss_mib, r[0].hwm_mib / r[1].hwm_mib,
		       r[1].load_s / r[0].load_s, r[1].hit_s / r[0].hit_s, r[1].miss_s / r[0].miss_s);
	}
	return 0;
}
