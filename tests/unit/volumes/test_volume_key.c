/* Unit tests of own-key volumes (volume_create_keyed, volume_crypto_erase): an own-key
 * volume reads and writes across a reopen; a clone shares its key and its chunks; CRYPTO
 * ERASE is refused while the clone lives, then empties the volume (unfolded writes
 * included), drops its snapshots and history and destroys the old key, and the volume
 * takes new writes under the next generation; EXTENDED COPY between volumes under
 * different keys reads and writes (an erase of the source leaves the copy intact), and
 * within one key shares chunks; a plain repository refuses --own-key. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "history.h"
#include "point.h"
#include "volume.h"
#include "vtest.h"

#define CHUNK (64u << 10)
#define VSIZE (4u << 20)

static uint8_t a[VSIZE], b[VSIZE], zero[VSIZE];
static const struct repo_secret pw = { .password = "pw", .password_len = 2 };

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = vt_rand(&seed);

		memcpy(p + i, &v, 8);
	}
}

static int enc_open(struct vt *t)
{
	struct repo_open_opts oo = { .secret = &pw };
	int ret = repo_open(t->repo_dir, &oo, &t->r);

	if (!ret)
		repo_chunk_store(t->r, &t->cs);
	return ret;
}

static struct volume *vopen(struct vt *t, const char *name)
{
	struct volume_open_opts o = { .state_dir = t->state_dir };
	struct volume *v = NULL;

	CHECK_EQ(volume_open(&t->cs, name, &o, &v), 0);
	return v;
}

static int reads(struct volume *v, const uint8_t *want)
{
	static uint8_t got[VSIZE];

	return volume_read(v, 0, got, VSIZE) == 0 && !memcmp(got, want, VSIZE);
}

static void test_own_key(void)
{
	struct repo_create_opts co = { .encrypt = 1, .secret = &pw };
	struct volume_info vi, ci;
	struct history_snap sn = { .name = "s1" };
	struct point *pt;
	struct vt t;
	struct volume *v, *w, *c;
	uint64_t cut;
	uint32_t k1;
	struct repo_stats st0, st1;

	CHECK_EQ(vt_init(&t), 0);
	vt_rmtree(t.repo_dir);
	CHECK_EQ(repo_create(t.repo_dir, &co), 0);
	CHECK_EQ(enc_open(&t), 0);
	CHECK_EQ(volume_create_keyed(&t.cs, "v", VSIZE, CHUNK, 0, NULL, VOLUME_KEY_NEW, 0, &vi), 0);
	CHECK(vi.key_ref != 0);
	CHECK_EQ(vi.key_gen, 1);
	k1 = vi.key_ref;
	CHECK_EQ(volume_create(&t.cs, "w", VSIZE, CHUNK, &vi), 0);
	CHECK_EQ(vi.key_ref, 0);

	fill(a, VSIZE, 1);
	v = vopen(&t, "v");
	CHECK_EQ(volume_write(v, 0, a, VSIZE, 0), 0);
	CHECK_EQ(volume_close(v), 0);
	vt_close(&t);
	CHECK_EQ(enc_open(&t), 0);
	v = vopen(&t, "v");
	CHECK(reads(v, a));
	CHECK_EQ(volume_get_info(v)->key_ref, k1);

	/* a snapshot, then a clone of it sharing the key (and its chunks) */
	CHECK_EQ(volume_cut(v, &cut), 0);
	sn.seq = cut;
	CHECK_EQ(history_snap_put(&t.cs, volume_get_info(v)->id, &sn, 1), 0);
	CHECK_EQ(volume_checkpoint(v), 0);
	repo_get_stats(t.r, &st0);
	{
		struct point_plan plan;
		struct chunk_id root;

		CHECK_EQ(history_resolve(&t.cs, t.state_dir, "v@s1", 0, &plan), 0);
		CHECK_EQ(plan.info.key_ref, k1);
		CHECK_EQ(point_open(&t.cs, t.state_dir, &plan, &pt), 0);
		CHECK_EQ(point_materialize(pt, &root), 0);
		point_close(pt);
		CHECK_EQ(volume_create_keyed(&t.cs, "c", VSIZE, CHUNK, 0, &root, plan.info.key_ref,
					     plan.info.key_gen, &ci), 0);
	}
	CHECK_EQ(ci.key_ref, k1);
	c = vopen(&t, "c");
	CHECK(reads(c, a));
	repo_get_stats(t.r, &st1);
	CHECK_EQ(st1.chunks - st0.chunks <= 2, 1); /* tree nodes at most: data shared */

	/* copy within one key: by reference (no new data chunk) */
	fill(b, CHUNK, 7);
	CHECK_EQ(volume_copy(c, 0, v, 0, VSIZE, 1), 0);
	CHECK(reads(c, a));
	repo_get_stats(t.r, &st0);
	CHECK_EQ(volume_checkpoint(c), 0);
	repo_get_stats(t.r, &st1);
	CHECK_EQ(st1.chunks - st0.chunks <= 2, 1);

	/* refused while the clone lives */
	CHECK_EQ(volume_crypto_erase(v), -EBUSY);
	CHECK(reads(v, a));
	CHECK_EQ(volume_close(c), 0);
	CHECK_EQ(volume_delete(&t.cs, "c"), 0);

	/* copy into the ordinary volume w from v (other keys): read and written */
	w = vopen(&t, "w");
	CHECK_EQ(volume_copy(w, 0, v, 0, VSIZE, 1), 0);
	CHECK(reads(w, a));
	CHECK_EQ(volume_checkpoint(w), 0);

	/* an unfolded write, then the erase */
	fill(b, VSIZE, 2);
	CHECK_EQ(volume_write(v, 0, b, CHUNK * 3, 0), 0);
	CHECK_EQ(volume_crypto_erase_check(v, NULL), 0);
	CHECK_EQ(volume_crypto_erase(v), 0);
	CHECK(reads(v, zero));
	CHECK(volume_get_info(v)->key_ref != k1);
	CHECK_EQ(volume_get_info(v)->key_gen, 2);
	CHECK_EQ(history_snap_get(&t.cs, volume_get_info(v)->id, "s1", &sn), -ENOENT);
	CHECK_EQ(volume_open_point(&t.cs, t.state_dir, "v@s1", &pt), -ESRCH);
	CHECK(reads(w, a)); /* its copy is under the repository's keys */
	{
		struct chunk_store ks;

		CHECK_EQ(t.cs.ops->keyed(t.cs.ctx, k1, &ks), -EKEYREVOKED);
	}
	/* new writes under generation 2, across a reopen */
	CHECK_EQ(volume_write(v, CHUNK, b, VSIZE - CHUNK, 1), 0);
	CHECK_EQ(volume_close(v), 0);
	CHECK_EQ(volume_close(w), 0);
	vt_close(&t);
	CHECK_EQ(enc_open(&t), 0);
	v = vopen(&t, "v");
	memset(a, 0, CHUNK);
	memcpy(a + CHUNK, b, VSIZE - CHUNK);
	CHECK(reads(v, a));
	CHECK_EQ(volume_get_info(v)->key_gen, 2);
	/* a second erase */
	CHECK_EQ(volume_crypto_erase(v), 0);
	CHECK(reads(v, zero));
	CHECK_EQ(volume_get_info(v)->key_gen, 3);
	CHECK_EQ(volume_close(v), 0);
	vt_fini(&t);
}

static void test_plain(void)
{
	struct volume_info vi;
	struct volume *v;
	struct vt t;

	CHECK_EQ(vt_init(&t), 0);
	CHECK_EQ(vt_open(&t), 0);
	CHECK_EQ(volume_create_keyed(&t.cs, "v", VSIZE, CHUNK, 0, NULL, VOLUME_KEY_NEW, 0, &vi),
		 -EOPNOTSUPP);
	CHECK_EQ(volume_lookup(&t.cs, "v", &vi), -ENOENT);
	CHECK_EQ(volume_create(&t.cs, "v", VSIZE, CHUNK, &vi), 0);
	v = vopen(&t, "v");
	CHECK_EQ(volume_crypto_erase_check(v, NULL), -EOPNOTSUPP);
	CHECK_EQ(volume_crypto_erase(v), -EOPNOTSUPP);
	CHECK_EQ(volume_close(v), 0);
	vt_fini(&t);
}

int main(void)
{
	RUN(test_own_key);
	RUN(test_plain);
	return check_result();
}
