/* test_prefetch.c - the read-ahead pool and stream of the FUSE view (fuse/prefetch.h). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "prefetch.h"

static atomic_int ran, done_calls;
static atomic_ullong covered; /* sum of lengths run */
static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;

static void run_count(void *arg, uint64_t off, size_t len, void *scratch, size_t slen)
{
	(void)arg; (void)off;
	CHECK(scratch != NULL);
	CHECK_EQ(slen, 4096);
	memset(scratch, 0xab, slen); /* the worker's own buffer: writable, full size */
	atomic_fetch_add(&ran, 1);
	atomic_fetch_add(&covered, len);
}

static void run_blocked(void *arg, uint64_t off, size_t len, void *scratch, size_t slen)
{
	(void)arg; (void)off; (void)len; (void)scratch; (void)slen;
	pthread_mutex_lock(&gate);
	pthread_mutex_unlock(&gate);
	atomic_fetch_add(&ran, 1);
}

static void done_count(void *arg)
{
	(void)arg;
	atomic_fetch_add(&done_calls, 1);
}

static void test_pool_runs_every_job(void)
{
	struct prefetch *pf;
	struct prefetch_job j = { .run = run_count, .done = done_count, .len = 10 };
	int submitted = 0;

	ran = done_calls = 0;
	covered = 0;
	CHECK_EQ(prefetch_create(3, 8, 4096, &pf), 0);
	for (int i = 0; i < 100; i++) {
		j.off = (uint64_t)i * 10;
		while (prefetch_submit(pf, &j) == -EAGAIN)
			usleep(100);
		submitted++;
	}
	for (int i = 0; i < 2000 && ran < submitted; i++)
		usleep(1000);
	prefetch_destroy(pf);
	CHECK_EQ(ran, 100);
	CHECK_EQ(done_calls, 100);
	CHECK_EQ(covered, 1000);
}

/* A full ring refuses without blocking; destroy drops queued jobs (done only) and lets
 * running ones finish. */
static void test_full_ring_and_destroy(void)
{
	struct prefetch *pf;
	struct prefetch_job j = { .run = run_blocked, .done = done_count, .len = 1 };
	int accepted = 0, refused = 0;

	ran = done_calls = 0;
	pthread_mutex_lock(&gate);
	CHECK_EQ(prefetch_create(2, 4, 16, &pf), 0);
	for (int i = 0; i < 20; i++) {
		int rc = prefetch_submit(pf, &j);
		if (rc == 0)
			accepted++;
		else if (rc == -EAGAIN)
			refused++;
		if (i == 1)
			usleep(50000); /* let both workers take a job and block */
	}
	CHECK(accepted >= 4 && accepted <= 6); /* 4 queued + up to 2 running */
	CHECK_EQ(accepted + refused, 20);
	pthread_mutex_unlock(&gate);
	prefetch_destroy(pf);
	CHECK(ran <= accepted);
	CHECK_EQ(done_calls, accepted); /* every accepted job released exactly once */
}

static void test_bad_args(void)
{
	struct prefetch *pf;

	CHECK_EQ(prefetch_create(0, 8, 16, &pf), -EINVAL);
	CHECK_EQ(prefetch_create(2, 0, 16, &pf), -EINVAL);
	prefetch_destroy(NULL);
}

static void test_stream(void)
{
	const uint64_t W = 1 << 20, size = 100 << 20;
	const uint32_t U = 64 << 10;
	struct prefetch_stream s = { 0 };
	uint64_t from, to;

	/* the first read only starts a stream */
	prefetch_stream_next(&s, 0, 131072, size, W, U, &from, &to);
	CHECK_EQ(to - from, 0);
	/* the second sequential read queues from its end's unit up to a window past it */
	prefetch_stream_next(&s, 131072, 131072, size, W, U, &from, &to);
	CHECK_EQ(from, 262144);
	CHECK_EQ(to, 262144 + W);
	prefetch_stream_queued(&s, to);
	/* the next read queues only what is new */
	prefetch_stream_next(&s, 262144, 131072, size, W, U, &from, &to);
	CHECK_EQ(from, 262144 + W);
	CHECK_EQ(to, 393216 + W);
	prefetch_stream_queued(&s, from + U); /* a full ring took only one unit */
	prefetch_stream_next(&s, 393216, 131072, size, W, U, &from, &to);
	CHECK_EQ(from, 262144 + W + U);       /* the rest is asked again */
	CHECK_EQ(to, 524288 + W);
	prefetch_stream_queued(&s, to);
	/* out of order within the window still counts as sequential */
	prefetch_stream_next(&s, 262144, 131072, size, W, U, &from, &to);
	CHECK_EQ(to - from, 0);
	CHECK_EQ(s.hits, 2);
	/* a jump far away resets: two reads there before anything is queued */
	prefetch_stream_next(&s, 50 << 20, 4096, size, W, U, &from, &to);
	CHECK_EQ(to - from, 0);
	CHECK_EQ(s.hits, 0);
	prefetch_stream_next(&s, (50 << 20) + 4096, 4096, size, W, U, &from, &to);
	CHECK_EQ(to - from, 0);
	prefetch_stream_next(&s, (50 << 20) + 8192, 4096, size, W, U, &from, &to);
	CHECK_EQ(from, 50 << 20);             /* the unit holding the read's end */
	CHECK_EQ(to, (50 << 20) + W + U);
	/* clipped to the file's end, which need not be unit aligned */
	s = (struct prefetch_stream){ 0 };
	prefetch_stream_next(&s, size - 300000, 4096, size - 1000, W, U, &from, &to);
	prefetch_stream_next(&s, size - 295904, 4096, size - 1000, W, U, &from, &to);
	prefetch_stream_next(&s, size - 291808, 4096, size - 1000, W, U, &from, &to);
	CHECK_EQ(to, size - 1000);
	CHECK(from < to && from % U == 0);
	/* a unit that is not a power of two queues nothing */
	s = (struct prefetch_stream){ 0 };
	prefetch_stream_next(&s, 0, 4096, size, W, 3000, &from, &to);
	prefetch_stream_next(&s, 4096, 4096, size, W, 3000, &from, &to);
	CHECK_EQ(to - from, 0);
}

int main(void)
{
	RUN(test_pool_runs_every_job);
	RUN(test_full_ring_and_destroy);
	RUN(test_bad_args);
	RUN(test_stream);
	return check_result();
}
