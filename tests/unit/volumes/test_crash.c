/* Crash test of the volume engine: a child writes (fua on some), reports every
 * acknowledged op on a pipe, and is killed with SIGKILL without closing anything. A
 * second child reopens (journal replay) and reads the whole volume, then dies without
 * closing too. Every acknowledged op must be there; the one op in flight at the kill
 * may be there entirely or not at all. Several rounds, then a clean close. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "log.h"
#include "util.h"
#include "volume.h"
#include "vtest.h"

#define VSIZE (8ull << 20)
#define CHUNK 16384u

struct op {
	int zero, fua, ckpt;
	uint64_t off, len;
};

/* Op number i, the same in every process. */
static void op_of(uint64_t i, struct op *o)
{
	uint64_t s = i * 0x9E3779B97F4A7C15ull + 12345;
	uint64_t r = vt_rand(&s);

	o->zero = r % 8 == 0;
	o->fua = r % 5 == 1;
	o->ckpt = i % 331 == 330;
	o->len = ((vt_rand(&s) % 4 == 0 ? vt_rand(&s) % 512 : vt_rand(&s) % 24) + 1) * 512;
	o->off = (vt_rand(&s) % ((VSIZE - o->len) / 512 + 1)) * 512;
}

static void data_of(uint64_t i, uint8_t *p, uint64_t n)
{
	uint64_t s = i + 777;

	for (uint64_t k = 0; k < n; k += 8) {
		uint64_t r = vt_rand(&s);

		memcpy(p + k, &r, 8);
	}
}

static void apply_op(uint8_t *img, uint64_t i, uint8_t *tmp)
{
	struct op o;

	op_of(i, &o);
	if (o.zero) {
		memset(img + o.off, 0, o.len);
	} else {
		data_of(i, tmp, o.len);
		memcpy(img + o.off, tmp, o.len);
	}
}

static const struct volume_open_opts *opts(struct vt *t)
{
	static struct volume_open_opts oo;

	oo.state_dir = t->state_dir;
	oo.overlay_bytes = 512 << 10;
	oo.segment_bytes = 256 << 10;
	oo.journal_max = 1 << 20;
	return &oo;
}

static void writer(struct vt *t, uint64_t start, int ackfd)
{
	struct volume *v;
	uint8_t *buf = malloc(256 << 10);

	if (vt_open(t) || volume_open(&t->cs, "c", opts(t), &v))
		_exit(3);
	for (uint64_t i = start;; i++) {
		struct op o;
		int ret;

		op_of(i, &o);
		if (o.zero) {
			ret = volume_write_zeroes(v, o.off, o.len, o.fua);
		} else {
			data_of(i, buf, o.len);
			ret = volume_write(v, o.off, buf, o.len, o.fua);
		}
		if (!ret && o.ckpt)
			ret = volume_checkpoint(v);
		if (ret)
			_exit(2);
		if (write(ackfd, &i, sizeof(i)) != sizeof(i))
			_exit(4);
	}
}

/* Open (replaying), read the whole volume into img, and die without closing. */
static int read_image(struct vt *t, uint8_t *img)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		struct volume *v;

		if (vt_open(t) || volume_open(&t->cs, "c", opts(t), &v))
			_exit(3);
		for (uint64_t off = 0; off < VSIZE; off += 1 << 20)
			if (volume_read(v, off, img + off, 1 << 20))
				_exit(2);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_kill9(void)
{
	struct vt t;
	uint8_t *oracle = calloc(1, VSIZE), *alt = malloc(VSIZE), *tmp = malloc(256 << 10);
	uint8_t *img = mmap(NULL, VSIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint64_t start = 0, seed = 4242;

	CHECK_EQ(vt_init(&t), 0);
	CHECK_EQ(vt_open(&t), 0);
	CHECK_EQ(volume_create(&t.cs, "c", VSIZE, CHUNK, NULL), 0);
	vt_close(&t);
	for (int round = 0; round < 6; round++) {
		uint64_t want = 100 + vt_rand(&seed) % 400, acks = 0, last = start - 1, i;
		int fds[2], st;
		pid_t pid;
		ssize_t n;

		CHECK_EQ(pipe(fds), 0);
		pid = fork();
		if (pid == 0) {
			close(fds[0]);
			writer(&t, start, fds[1]);
		}
		close(fds[1]);
		while (acks < want && (n = read(fds[0], &i, sizeof(i))) == sizeof(i)) {
			CHECK_EQ(i, last + 1);
			last = i;
			acks++;
		}
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		while (read(fds[0], &i, sizeof(i)) == sizeof(i)) {
			CHECK_EQ(i, last + 1);
			last = i;
			acks++;
		}
		close(fds[0]);
		CHECK(acks >= want);
		for (i = start; i != last + 1; i++)
			apply_op(oracle, i, tmp);
		memcpy(alt, oracle, VSIZE);
		apply_op(alt, last + 1, tmp);

		CHECK_EQ(read_image(&t, img), 0);
		if (!memcmp(img, oracle, VSIZE)) {
			start = last + 1;
		} else if (!memcmp(img, alt, VSIZE)) {
			memcpy(oracle, alt, VSIZE);
			start = last + 2;
		} else {
			for (uint64_t k = 0; k < VSIZE; k++)
				if (img[k] != oracle[k]) {
					fprintf(stderr, "round %d: acknowledged data lost at byte %llu "
						"(last ack %llu)\n", round, (unsigned long long)k,
						(unsigned long long)last);
					break;
				}
			CHECK(0);
			break;
		}
		fprintf(stderr, "round %d: %llu acknowledged ops verified\n", round,
			(unsigned long long)acks);
	}
	/* a clean open and close keeps it all */
	CHECK_EQ(vt_open(&t), 0);
	{
		struct volume *v;

		CHECK_EQ(volume_open(&t.cs, "c", opts(&t), &v), 0);
		CHECK_EQ(volume_close(v), 0);
		vt_close(&t);
		CHECK_EQ(read_image(&t, img), 0);
		CHECK(!memcmp(img, oracle, VSIZE));
	}
	vt_fini(&t);
	munmap(img, VSIZE);
	free(oracle);
	free(alt);
	free(tmp);
}

int main(void)
{
	log_init();
	RUN(test_kill9);
	return check_result();
}
