/* bench_put - throughput of repo_chunk_put / repo_chunk_get (not a test).
 *
 * usage: bench_stores_put [DIR] [THREADS] [CHUNKS]
 * Puts CHUNKS distinct compressible 64 KiB chunks from THREADS threads, flushes, then
 * reads them all twice (uncached, then cached). The peer in the same run is the bare
 * work a put cannot avoid: SHA-256 + LZ4 of the same chunks on the same threads, with
 * no repository; the ratio shows what the repository machinery costs on top.
 */
#include <pthread.h>

#include "chunk_codec.h"
#include "helpers.h"
#include "repo.h"
#include "util.h"

#define CS 65536

static uint8_t *data;
static struct chunk_id *ids;
static struct repo *repo;
static int nthreads, nchunks;
static int mode; /* 0 put, 1 get, 2 bare sha+lz4 */

static void *worker(void *arg)
{
	int t = (int)(intptr_t)arg;
	uint8_t *out = malloc(CODEC_REC_MAX);
	size_t len;

	for (int i = t; i < nchunks; i += nthreads) {
		const uint8_t *c = data + (size_t)i * CS;
		int rc = 0;

		if (mode == 0) {
			rc = repo_chunk_put(repo, CHUNK_DATA, c, CS, &ids[i]);
		} else if (mode == 1) {
			rc = repo_chunk_get(repo, &ids[i], out, CS, &len);
		} else {
			struct chunk_id id;

			rc = chunk_codec_id(NULL, c, CS, &id);
			if (!rc)
				rc = chunk_codec_encode(NULL, CHUNK_DATA, &id, c, CS, CODEC_LEVEL_DEFAULT, out, &len);
		}
		if (rc) {
			fprintf(stderr, "op %d failed on chunk %d: %d\n", mode, i, rc);
			exit(1);
		}
	}
	free(out);
	return NULL;
}

static double run(int m)
{
	pthread_t th[64];
	uint64_t t0 = util_mono_ns();

	mode = m;
	for (int t = 0; t < nthreads; t++)
		pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
	for (int t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	return (double)(util_mono_ns() - t0) / 1e9;
}

int main(int argc, char **argv)
{
	char *dir = argc > 1 && argv[1][0] ? strdup(argv[1]) : tmpdir_new();
	double mb, t_bare, t_put, t_flush, t_get, t_hot;
	struct repo_open_opts oo = { .cache_bytes = 1u << 30 };
	struct repo_stats st;

	nthreads = argc > 2 ? atoi(argv[2]) : 4;
	nchunks = argc > 3 ? atoi(argv[3]) : 2048;
	if (nthreads < 1 || nthreads > 64 || nchunks < 1)
		return 2;
	data = malloc((size_t)nchunks * CS);
	ids = calloc((size_t)nchunks, sizeof(*ids));
	for (int i = 0; i < nchunks; i++)
		fill_text(data + (size_t)i * CS, CS, (uint64_t)i + 1);
	mb = (double)nchunks * CS / 1e6;

	if (repo_create(dir, NULL) || repo_open(dir, &oo, &repo)) {
		fprintf(stderr, "cannot create/open %s\n", dir);
		return 1;
	}
	t_bare = run(2);
	t_put = run(0);
	uint64_t t0 = util_mono_ns();
	if (repo_flush(repo))
		return 1;
	t_flush = (double)(util_mono_ns() - t0) / 1e9;
	repo_close(repo);
	if (repo_open(dir, &oo, &repo))
		return 1;
	t_get = run(1);
	t_hot = run(1);
	repo_get_stats(repo, &st);
	repo_close(repo);

	printf("threads %d, %d distinct compressible 64 KiB chunks (%.0f MB), stored %.0f MB in %llu packs\n",
	       nthreads, nchunks, mb, (double)st.stored_bytes / 1e6, (unsigned long long)st.packs);
	printf("bare sha256+lz4 (peer)   %8.0f MB/s\n", mb / t_bare);
	printf("repo_chunk_put           %8.0f MB/s   (%.2f x peer)\n", mb / t_put, t_bare / t_put);
	printf("put + flush (durable)    %8.0f MB/s\n", mb / (t_put + t_flush));
	printf("repo_chunk_get cold      %8.0f MB/s\n", mb / t_get);
	printf("repo_chunk_get cached    %8.0f MB/s   (%.1f us/chunk/thread)\n", mb / t_hot,
	       t_hot * 1e6 * nthreads / nchunks);
	if (argc <= 1 || !argv[1][0])
		rm_rf(dir);
	free(dir);
	free(data);
	free(ids);
	return 0;
}
