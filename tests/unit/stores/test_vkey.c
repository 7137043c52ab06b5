/* Unit tests of volume keys (vkey.h): chunks stored under two volume keys and under the
 * repository's keys get different ids and never dedup across keys; every one reads
 * back through any store (the record names its key); check --read-data verifies them
 * all; destroying one volume key makes its chunks unreadable (-EKEYREVOKED), leaves the
 * others readable, removes the key object (a tombstone stays), is not damage to check,
 * survives a reopen; gc repacks keyed records verbatim and they stay readable; a plain
 * repository has no volume keys. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "check.h"
#include "chunk_codec.h"
#include "gc.h"
#include "helpers.h"
#include "repo.h"
#include "repo_check.h"
#include "vkey.h"

#define CS (64u << 10)
#define N 8

static uint8_t buf[CS], out[CS];
static const char *volid1 = "00112233445566778899aabbccddeeff";
static const char *volid2 = "ffeeddccbbaa99887766554433221100";

/* ---- a walker whose roots are a fixed list of ids ---- */
static struct chunk_id roots[4 * N];
static unsigned nroots;

static int walk(void *ctx, struct chunk_store *cs, const struct repo_walk_cbs *cb)
{
	(void)ctx; (void)cs;
	for (unsigned i = 0; i < nroots; i++) {
		int rc = cb->ref(cb->arg, "test", &roots[i]);

		if (rc < 0)
			return rc;
	}
	return 0;
}

static const struct repo_tree_walker walker = { .walk = walk };

static void on_damaged(void *arg, const char *object, const char *what)
{
	(void)arg;
	if (strncmp(what, "note: ", 6))
		fprintf(stderr, "  damaged: %s: %s\n", object, what);
}

static void check_repo(struct repo *r, uint64_t want_erased)
{
	struct repo_check_opts co = { .read_data = 1, .walker = &walker, .damaged = on_damaged };
	struct repo_check_result res;

	CHECK_EQ(repo_check(r, &co, &res), 0);
	CHECK_EQ(res.damaged, 0);
	CHECK_EQ(res.erased, want_erased);
}

static int reads_back(struct repo *r, const struct chunk_id *id, uint64_t seed)
{
	size_t len = 0;

	fill_text(buf, CS, seed);
	return repo_chunk_get(r, id, out, CS, &len) == 0 && len == CS && !memcmp(buf, out, CS);
}

static void test_records(void)
{
	static uint8_t rec[CODEC_REC_MAX], rec2[CODEC_REC_MAX];
	uint8_t master[32] = { 7 }, id16[16] = { 1 }, vk[32] = { 9 };
	struct aead_keys rk, vkk;
	struct chunk_id id;
	struct codec_hdr h;
	size_t rl, pl;

	CHECK_EQ(aead_derive(master, id16, &rk), 0);
	CHECK_EQ(aead_derive_volume(vk, id16, &vkk), 0);
	CHECK(memcmp(rk.id, vkk.id, 32) != 0 && memcmp(rk.data, vkk.data, 32) != 0);
	fill_text(buf, CS, 1);
	CHECK_EQ(chunk_codec_id(&vkk, buf, CS, &id), 0);
	CHECK_EQ(chunk_codec_encode_keyed(&vkk, 0x1234abcd, CHUNK_DATA, &id, buf, CS, 0, rec, &rl), 0);
	CHECK_EQ(chunk_codec_parse_hdr(rec, &h), 0);
	CHECK_EQ(h.key_ref, 0x1234abcd);
	CHECK_EQ(((uint8_t *)rec)[4], 2);
	memcpy(rec2, rec, rl);
	CHECK_EQ(chunk_codec_decode(&rk, rec2, rl, &id, out, CS, &pl), -EBADMSG);
	memcpy(rec2, rec, rl);
	CHECK_EQ(chunk_codec_decode(&vkk, rec2, rl, &id, out, CS, &pl), 0);
	CHECK_MEM(out, buf, CS);
	/* the key reference is covered by the checksum */
	rec[60] ^= 1;
	CHECK_EQ(chunk_codec_decode(&vkk, rec, rl, &id, out, CS, &pl), -EBADMSG);
	/* repository-key records stay version 1 with key 0 */
	CHECK_EQ(chunk_codec_encode(&rk, CHUNK_DATA, &id, buf, CS, 0, rec, &rl), 0);
	CHECK_EQ(chunk_codec_parse_hdr(rec, &h), 0);
	CHECK_EQ(h.key_ref, 0);
	CHECK_EQ(((uint8_t *)rec)[4], 1);
	CHECK_EQ(chunk_codec_encode_keyed(NULL, 5, CHUNK_DATA, &id, buf, CS, 0, rec, &rl), -EINVAL);
}

static void test_keyed_store(void)
{
	struct repo_secret pw = { .password = "pw", .password_len = 2 };
	struct repo_create_opts co = { .encrypt = 1, .secret = &pw };
	struct repo_open_opts oo = { .secret = &pw };
	struct chunk_id base[N], k1[N], k2[N], again, t0, t1;
	struct chunk_store rcs, ks1, ks2, ks1b, tmp;
	struct vkey_info vi;
	struct gc_opts go = { .walker = &walker, .repack_pct = 100, .grace_ns = 0 };
	struct gc_result gr;
	uint32_t ref1, ref2, prev, none;
	uint64_t gen;
	char name[64];
	char *dir = tmpdir_new();
	struct repo *r;
	void *d;
	size_t len;

	CHECK_EQ(repo_create(dir, &co), 0);
	CHECK_EQ(repo_open(dir, &oo, &r), 0);
	repo_chunk_store(r, &rcs);
	CHECK_EQ(rcs.ops->key_new(rcs.ctx, volid1, 1, 0, &ref1), 0);
	CHECK_EQ(rcs.ops->key_new(rcs.ctx, volid2, 3, ref1, &ref2), 0);
	CHECK(ref1 && ref2 && ref1 != ref2);
	CHECK_EQ(vkey_info(r, ref2, &vi), 0);
	CHECK_EQ(vi.generation, 3);
	CHECK_EQ(vi.prev, ref1);
	CHECK(!strcmp(vi.volume, volid2));
	CHECK_EQ(rcs.ops->keyed(rcs.ctx, ref1, &ks1), 0);
	CHECK_EQ(rcs.ops->keyed(rcs.ctx, ref2, &ks2), 0);
	CHECK_EQ(rcs.ops->keyed(rcs.ctx, ref1, &ks1b), 0);
	CHECK(ks1.ops == ks1b.ops && ks1.ctx == ks1b.ctx); /* same key, same store */
	CHECK(ks1.ctx != ks2.ctx);
	none = 0x5a5a5a5a;
	while (none == ref1 || none == ref2)
		none++;
	CHECK_EQ(rcs.ops->keyed(rcs.ctx, none, &tmp), -ENOKEY);

	/* the same contents under three keys: three ids; again under one key: dedup */
	for (int i = 0; i < N; i++) {
		fill_text(buf, CS, 100 + (uint64_t)i);
		CHECK_EQ(rcs.ops->put(rcs.ctx, CHUNK_DATA, buf, CS, &base[i]), 0);
		CHECK_EQ(ks1.ops->put(ks1.ctx, CHUNK_DATA, buf, CS, &k1[i]), 0);
		CHECK_EQ(ks2.ops->put(ks2.ctx, (enum chunk_kind)(CHUNK_DATA | CHUNK_PUT_FAST), buf,
					CS, &k2[i]), 0);
		CHECK(memcmp(&base[i], &k1[i], sizeof(base[i])) != 0);
		CHECK(memcmp(&base[i], &k2[i], sizeof(base[i])) != 0);
		CHECK(memcmp(&k1[i], &k2[i], sizeof(k1[i])) != 0);
		CHECK_EQ(ks1b.ops->put(ks1b.ctx, CHUNK_DATA, buf, CS, &again), 0);
		CHECK_MEM(&again, &k1[i], sizeof(again));
	}
	/* tree chunks stay under the repository's keys: same id through every store */
	fill_text(buf, 4096, 999);
	CHECK_EQ(rcs.ops->put(rcs.ctx, CHUNK_TREE, buf, 4096, &t0), 0);
	CHECK_EQ(ks1.ops->put(ks1.ctx, CHUNK_TREE, buf, 4096, &t1), 0);
	CHECK_MEM(&t0, &t1, sizeof(t0));
	/* all zeros: the null id under every key */
	memset(buf, 0, CS);
	CHECK_EQ(ks1.ops->put(ks1.ctx, CHUNK_DATA, buf, CS, &again), 0);
	CHECK(chunk_id_is_null(&again));
	/* every chunk reads back through the plain store: records name their keys */
	for (int i = 0; i < N; i++) {
		CHECK(reads_back(r, &base[i], 100 + (uint64_t)i));
		CHECK(reads_back(r, &k1[i], 100 + (uint64_t)i));
		CHECK(reads_back(r, &k2[i], 100 + (uint64_t)i));
	}
	CHECK_EQ(repo_flush(r), 0);
	nroots = 0;
	for (int i = 0; i < N; i++) {
		roots[nroots++] = base[i];
		roots[nroots++] = k1[i];
		roots[nroots++] = k2[i];
	}
	check_repo(r, 0);

	/* destroy key 1: its chunks are unreadable at once (the cache dropped them too) */
	CHECK_EQ(rcs.ops->key_destroy(rcs.ctx, ref1), 0);
	CHECK_EQ(rcs.ops->key_destroy(rcs.ctx, ref1), 0); /* idempotent */
	for (int i = 0; i < N; i++) {
		CHECK_EQ(repo_chunk_get(r, &k1[i], out, CS, &len), -EKEYREVOKED);
		CHECK(reads_back(r, &base[i], 100 + (uint64_t)i));
		CHECK(reads_back(r, &k2[i], 100 + (uint64_t)i));
	}
	fill_text(buf, CS, 5000);
	CHECK_EQ(ks1.ops->put(ks1.ctx, CHUNK_DATA, buf, CS, &again), -EKEYREVOKED);
	CHECK_EQ(rcs.ops->keyed(rcs.ctx, ref1, &tmp), -EKEYREVOKED);
	CHECK_EQ(rcs.ops->key_info(rcs.ctx, ref1, &prev, &gen), -EKEYREVOKED);
	CHECK_EQ(rcs.ops->key_info(rcs.ctx, ref2, &prev, &gen), 0);
	CHECK_EQ(prev, ref1);
	snprintf(name, sizeof(name), VKEY_PREFIX "%08" PRIx32, ref1);
	CHECK_EQ(repo_meta_get(r, name, &d, &len), -ENOENT);
	snprintf(name, sizeof(name), VKEY_PREFIX "%08" PRIx32 VKEY_TOMB_SUFFIX, ref1);
	CHECK_EQ(repo_meta_get(r, name, &d, &len), 0);
	free(d);
	/* the erased chunks are no roots any more; check: not damage */
	nroots = 0;
	for (int i = 0; i < N; i++) {
		roots[nroots++] = base[i];
		roots[nroots++] = k2[i];
	}
	check_repo(r, N);
	repo_close(r);

	/* reopen: the tombstone keeps key 1 destroyed; the rest reads */
	CHECK_EQ(repo_open(dir, &oo, &r), 0);
	for (int i = 0; i < N; i++) {
		CHECK_EQ(repo_chunk_get(r, &k1[i], out, CS, &len), -EKEYREVOKED);
		CHECK(reads_back(r, &base[i], 100 + (uint64_t)i));
		CHECK(reads_back(r, &k2[i], 100 + (uint64_t)i));
	}
	check_repo(r, N);
	/* gc deletes the erased records and repacks the live keyed ones verbatim */
	CHECK_EQ(gc_repo(r, &go, &gr), 0);
	CHECK_EQ(gr.dead_chunks, N + 1); /* + the tree chunk, no root */
	CHECK(gr.packs_repacked + gr.packs_deleted >= 1);
	for (int i = 0; i < N; i++) {
		CHECK(reads_back(r, &base[i], 100 + (uint64_t)i));
		CHECK(reads_back(r, &k2[i], 100 + (uint64_t)i));
		CHECK(!repo_chunk_has(r, &k1[i]));
	}
	check_repo(r, 0);
	repo_close(r);
	CHECK_EQ(repo_open(dir, &oo, &r), 0);
	for (int i = 0; i < N; i++)
		CHECK(reads_back(r, &k2[i], 100 + (uint64_t)i));
	check_repo(r, 0);
	repo_close(r);
	rm_rf(dir);
	free(dir);
}

static void test_plain(void)
{
	char *dir = tmpdir_new();
	struct chunk_store rcs, tmp;
	struct chunk_id id;
	struct repo *r;
	uint32_t ref;

	CHECK_EQ(repo_create(dir, NULL), 0);
	CHECK_EQ(repo_open(dir, NULL, &r), 0);
	repo_chunk_store(r, &rcs);
	CHECK_EQ(rcs.ops->key_new(rcs.ctx, volid1, 1, 0, &ref), -EOPNOTSUPP);
	CHECK_EQ(rcs.ops->keyed(rcs.ctx, 1, &tmp), -EOPNOTSUPP);
	fill_text(buf, CS, 1);
	CHECK_EQ(repo_chunk_put_keyed(r, 1, CHUNK_DATA, buf, CS, &id), -EOPNOTSUPP);
	CHECK_EQ(repo_chunk_put_keyed(r, 0, CHUNK_DATA, buf, CS, &id), 0);
	repo_close(r);
	rm_rf(dir);
	free(dir);
}

int main(void)
{
	RUN(test_records);
	RUN(test_keyed_store);
	RUN(test_plain);
	return check_result();
}
