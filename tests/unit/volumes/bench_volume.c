/* bench_volume - throughput of the volume engine on a local repository (not a test).
 * usage: volumes_bench [DIR] [GiB]   (DIR default /tmp; a temp tree is made under it)
 * Prints MB/s for sequential 1 MiB writes (acknowledged, and including the final
 * fold + checkpoint), random 4 KiB writes, and reads of overlay and stored chunks. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"
#include "volume.h"
#include "repo.h"

static double secs(uint64_t ns) { return (double)ns / 1e9; }

int main(int argc, char **argv)
{
	const char *base = argc > 1 ? argv[1] : "/tmp";
	uint64_t gib = argc > 2 ? strtoull(argv[2], NULL, 0) : 2;
	uint64_t total = gib << 30, vsize = total + (1ull << 30);
	char dir[256], repo_dir[300], state[300], cmd[400];
	struct volume_open_opts oo = { 0 };
	struct chunk_store cs;
	struct repo *r;
	struct volume *v;
	uint8_t *pool, *buf;
	uint64_t t0, t1, t2, s = 88172645463325252ull, n;
	int ret;

	log_init();
	snprintf(dir, sizeof(dir), "%s/cairn-bench-XXXXXX", base);
	if (!mkdtemp(dir))
		return 1;
	snprintf(repo_dir, sizeof(repo_dir), "%s/repo", dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	pool = malloc(64u << 20);
	buf = malloc(1u << 20);
	for (size_t i = 0; i < (64u << 20) / 8; i++) {
		s ^= s << 13; s ^= s >> 7; s ^= s << 17;
		memcpy(pool + i * 8, &s, 8);
	}
	if ((ret = repo_create(repo_dir, NULL)) || (ret = repo_open(repo_dir, NULL, &r))) {
		fprintf(stderr, "repo: %s\n", strerror(-ret));
		return 1;
	}
	repo_chunk_store(r, &cs);
	oo.state_dir = state;
	if ((ret = volume_create(&cs, "bench", vsize, 0, NULL)) ||
	    (ret = volume_open(&cs, "bench", &oo, &v))) {
		fprintf(stderr, "volume: %s\n", strerror(-ret));
		return 1;
	}

	/* sequential 1 MiB writes of incompressible, unique data */
	t0 = util_mono_ns();
	for (uint64_t off = 0; off < total; off += 1 << 20) {
		uint8_t *src = pool + ((off >> 20) * 4096) % (63u << 20);

		memcpy(buf, src, 1 << 20);
		memcpy(buf, &off, 8);
		for (uint64_t k = 65536; k < (1 << 20); k += 65536)
			memcpy(buf + k, &k, 8), memcpy(buf + k + 8, &off, 8);
		if (volume_write(v, off, buf, 1 << 20, 0))
			return 1;
	}
	t1 = util_mono_ns();
	volume_checkpoint(v);
	t2 = util_mono_ns();
	printf("seq write 1 MiB: %.0f MB/s acknowledged, %.0f MB/s including fold+checkpoint "
	       "(%llu MiB)\n", total / 1e6 / secs(t1 - t0), total / 1e6 / secs(t2 - t0),
	       (unsigned long long)(total >> 20));

	/* sequential 1 MiB reads of stored chunks */
	t0 = util_mono_ns();
	for (uint64_t off = 0; off < total; off += 1 << 20)
		if (volume_read(v, off, buf, 1 << 20))
			return 1;
	t1 = util_mono_ns();
	printf("seq read 1 MiB (stored chunks): %.0f MB/s\n", total / 1e6 / secs(t1 - t0));

	/* random 4 KiB writes for 3 s, inside 1 GiB */
	n = 0;
	t0 = util_mono_ns();
	do {
		for (int k = 0; k < 256; k++, n++) {
			uint64_t off;

			s ^= s << 13; s ^= s >> 7; s ^= s << 17;
			off = (s % (1u << 18)) * 4096 + total;
			memcpy(buf, pool + (s % (60u << 20)), 4096);
			if (volume_write(v, off, buf, 4096, 0))
				return 1;
		}
		t1 = util_mono_ns();
	} while (t1 - t0 < 3000000000ull);
	printf("rand write 4 KiB QD1: %.0f IOPS (%.0f MB/s)\n", n / secs(t1 - t0),
	       n * 4096 / 1e6 / secs(t1 - t0));

	/* random 4 KiB reads for 3 s over the same area (overlay + stored) */
	n = 0;
	t0 = util_mono_ns();
	do {
		for (int k = 0; k < 256; k++, n++) {
			s ^= s << 13; s ^= s >> 7; s ^= s << 17;
			if (volume_read(v, (s % (1u << 18)) * 4096 + total, buf, 4096))
				return 1;
		}
		t1 = util_mono_ns();
	} while (t1 - t0 < 3000000000ull);
	printf("rand read 4 KiB QD1 (overlay+stored): %.0f IOPS\n", n / secs(t1 - t0));

	/* fua 4 KiB writes: one group commit each */
	n = 0;
	t0 = util_mono_ns();
	do {
		for (int k = 0; k < 16; k++, n++)
			if (volume_write(v, (n % 1000) * 4096, pool + n * 512, 4096, 1))
				return 1;
		t1 = util_mono_ns();
	} while (t1 - t0 < 2000000000ull);
	printf("fua write 4 KiB QD1: %.0f IOPS\n", n / secs(t1 - t0));

	t0 = util_mono_ns();
	volume_close(v);
	t1 = util_mono_ns();
	printf("close (fold + checkpoint): %.2f s\n", secs(t1 - t0));
	repo_close(r);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		return 1;
	free(pool);
	free(buf);
	return 0;
}
