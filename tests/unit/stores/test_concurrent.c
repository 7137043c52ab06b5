/* Concurrent repo_chunk_put/get from several threads: every content stored once,
 * everything readable, during and after, and across reopen. */
#include <errno.h>
#include <pthread.h>

#include "backend.h"
#include "check.h"
#include "helpers.h"
#include "pack.h"
#include "repo.h"

#define THREADS 4
#define PER_THREAD 400
#define STRIDE 200                 /* thread t puts seeds t*STRIDE .. t*STRIDE+PER_THREAD-1 */
#define UNIQUE ((THREADS - 1) * STRIDE + PER_THREAD)
#define CS 65536

static struct repo *repo;
static struct chunk_id ids[UNIQUE];
static int ids_set[UNIQUE];
static pthread_mutex_t ids_lock = PTHREAD_MUTEX_INITIALIZER;

static void content(uint8_t *b, int seed)
{
	if (seed % 3 == 0)
		fill_random(b, CS, (uint64_t)seed + 11);
	else
		fill_text(b, CS, (uint64_t)seed + 11);
}

struct worker {
	int t, same_order, errors, mismatches;
};

static void *put_worker(void *arg)
{
	struct worker *w = arg;
	uint8_t *b = malloc(CS), *o = malloc(CS);

	for (int i = 0; i < PER_THREAD; i++) {
		int seed = w->same_order ? i : w->t * STRIDE + i;
		struct chunk_id id;
		size_t len;

		content(b, seed);
		if (repo_chunk_put(repo, CHUNK_DATA, b, CS, &id)) {
			w->errors++;
			continue;
		}
		pthread_mutex_lock(&ids_lock);
		if (ids_set[seed] && memcmp(ids[seed].b, id.b, CHUNK_ID_LEN))
			w->mismatches++;
		ids[seed] = id;
		ids_set[seed] = 1;
		pthread_mutex_unlock(&ids_lock);
		/* read back something put a little earlier (maybe by another thread) */
		if (i >= 5) {
			int s2 = seed - 5;
			struct chunk_id id2;

			pthread_mutex_lock(&ids_lock);
			int have = ids_set[s2];
			id2 = ids[s2];
			pthread_mutex_unlock(&ids_lock);
			if (have) {
				content(b, s2);
				if (repo_chunk_get(repo, &id2, o, CS, &len) || len != CS || memcmp(o, b, CS))
					w->errors++;
			}
		}
	}
	free(b);
	free(o);
	return NULL;
}

static int records_cb(void *arg, const char *key, uint64_t size)
{
	void **a = arg;
	struct backend *be = a[0];
	uint64_t *total = a[1];
	struct pack_entry *ents;
	uint32_t n;

	if (pack_read_trailer(be, NULL, key, size, &ents, &n) == 0) {
		*total += n;
		free(ents);
	}
	return 0;
}

/* Records in all packs on disk, counting duplicates. */
static uint64_t records_on_disk(const char *dir)
{
	struct backend *be;
	uint64_t total = 0;
	void *a[2];

	if (backend_local_open(dir, 0, &be))
		return 0;
	a[0] = be;
	a[1] = &total;
	be->ops->list(be->ctx, "packs/", records_cb, a);
	backend_close(be);
	return total;
}

static void run(int same_order, int expect_unique)
{
	char *dir = tmpdir_new();
	pthread_t th[THREADS];
	struct worker w[THREADS];
	struct repo_stats st;
	uint8_t *b = malloc(CS), *o = malloc(CS);
	int bad = 0;
	size_t len;

	memset(ids_set, 0, sizeof(ids_set));
	CHECK_EQ(repo_create(dir, NULL), 0);
	CHECK_EQ(repo_open(dir, NULL, &repo), 0);
	for (int t = 0; t < THREADS; t++) {
		w[t] = (struct worker){ .t = t, .same_order = same_order };
		pthread_create(&th[t], NULL, put_worker, &w[t]);
	}
	for (int t = 0; t < THREADS; t++) {
		pthread_join(th[t], NULL);
		CHECK_EQ(w[t].errors, 0);
		CHECK_EQ(w[t].mismatches, 0);
	}
	repo_get_stats(repo, &st);
	CHECK_EQ(st.chunks, expect_unique);
	CHECK_EQ(st.dedup_hits, THREADS * PER_THREAD - expect_unique);
	for (int s = 0; s < expect_unique; s++) {
		content(b, s);
		if (!ids_set[s] || repo_chunk_get(repo, &ids[s], o, CS, &len) || len != CS ||
		    memcmp(o, b, CS))
			bad++;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(repo_flush(repo), 0);
	repo_close(repo);
	CHECK_EQ(records_on_disk(dir), expect_unique);

	CHECK_EQ(repo_open(dir, NULL, &repo), 0);
	repo_get_stats(repo, &st);
	CHECK_EQ(st.chunks, expect_unique);
	bad = 0;
	for (int s = 0; s < expect_unique; s++) {
		content(b, s);
		if (repo_chunk_get(repo, &ids[s], o, CS, &len) || len != CS || memcmp(o, b, CS))
			bad++;
	}
	CHECK_EQ(bad, 0);
	repo_close(repo);
	rm_rf(dir);
	free(dir);
	free(b);
	free(o);
}

static void test_overlapping_puts(void)
{
	run(0, UNIQUE);
}

static void test_same_content_races(void)
{
	run(1, PER_THREAD);
}

int main(void)
{
	RUN(test_overlapping_puts);
	RUN(test_same_content_races);
	return check_result();
}
