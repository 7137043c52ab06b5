/* Unit tests of encryption and its parts: AES-256-GCM and the sealed envelope, HMAC
 * chunk ids, encrypted records, key slots (wrong secret vs damage), an encrypted
 * repository end to end (reopen, wrong password, key add/remove, damage detection),
 * the writer lease on a backend without locks, and the local object cache. */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aead.h"
#include "backend_cache.h"
#include "check.h"
#include "chunk_codec.h"
#include "helpers.h"
#include "keyring.h"
#include "lease.h"
#include "repo.h"

static uint8_t buf[CHUNK_SIZE_MAX], out[CHUNK_SIZE_MAX], rec[CODEC_REC_MAX];

static void test_aead(void)
{
	uint8_t key[32] = { 1 }, nonce[12], tag[16], ct[64], pt[64];
	void *env, *back;
	size_t env_len, back_len;

	memcpy(pt, "attack at dawn, attack at dawn, attack at dawn, attack at dawn!", 64);
	CHECK_EQ(aead_seal(key, "aad", 3, pt, 64, ct, nonce, tag), 0);
	CHECK(memcmp(ct, pt, 64) != 0);
	CHECK_EQ(aead_open(key, "aad", 3, ct, 64, out, nonce, tag), 0);
	CHECK_MEM(out, pt, 64);
	CHECK_EQ(aead_open(key, "aaD", 3, ct, 64, out, nonce, tag), -EBADMSG);
	ct[5] ^= 1;
	CHECK_EQ(aead_open(key, "aad", 3, ct, 64, out, nonce, tag), -EBADMSG);

	CHECK_EQ(aead_seal_object(key, "meta/x", pt, 64, &env, &env_len), 0);
	CHECK_EQ(env_len, 64 + AEAD_ENV_OVERHEAD);
	CHECK_EQ(aead_open_object(key, "meta/x", env, env_len, &back, &back_len), 0);
	CHECK_EQ(back_len, 64);
	CHECK_MEM(back, pt, 64);
	free(back);
	CHECK_EQ(aead_open_object(key, "meta/y", env, env_len, &back, &back_len), -EBADMSG);
	for (size_t i = 0; i < env_len; i += 7) {
		((uint8_t *)env)[i] ^= 0x10;
		CHECK_EQ(aead_open_object(key, "meta/x", env, env_len, &back, &back_len), -EBADMSG);
		((uint8_t *)env)[i] ^= 0x10;
	}
	free(env);
}

static void test_records(void)
{
	struct aead_keys k;
	uint8_t master[32] = { 7 }, rid[16] = { 3 };
	struct chunk_id id, plain_id;
	struct codec_hdr h;
	size_t rl, pl;

	CHECK_EQ(aead_derive(master, rid, &k), 0);
	CHECK(memcmp(k.id, k.data, 32) != 0 && memcmp(k.data, k.meta, 32) != 0);
	for (size_t i = 0; i < 65536; i++)
		buf[i] = (uint8_t)(i % 251 < 100 ? 'a' : i);
	CHECK_EQ(chunk_codec_id(&k, buf, 65536, &id), 0);
	CHECK_EQ(chunk_codec_id(NULL, buf, 65536, &plain_id), 0);
	CHECK(memcmp(id.b, plain_id.b, 32) != 0); /* keyed: the id does not confirm content */
	CHECK_EQ(chunk_codec_encode(&k, CHUNK_DATA, &id, buf, 65536, 0, rec, &rl), 0);
	CHECK_EQ(chunk_codec_parse_hdr(rec, &h), 0);
	CHECK_EQ(h.cipher, CODEC_CIPHER_AES256GCM);
	CHECK(rl < 65536); /* compressed before encryption */
	CHECK(memmem(rec, rl, "aaaaaaaaaa", 10) == NULL);
	uint8_t copy[CODEC_REC_MAX];
	memcpy(copy, rec, rl);
	CHECK_EQ(chunk_codec_decode(&k, copy, rl, &id, out, sizeof(out), &pl), 0);
	CHECK_EQ(pl, 65536);
	CHECK_MEM(out, buf, 65536);
	memcpy(copy, rec, rl);
	CHECK_EQ(chunk_codec_decode(NULL, copy, rl, &id, out, sizeof(out), &pl), -EBADMSG);
	/* a flipped bit anywhere, with the checksum fixed up by an attacker, still fails GCM */
	for (size_t off = 0; off < rl; off += 97) {
		memcpy(copy, rec, rl);
		copy[off] ^= 0x04;
		CHECK(chunk_codec_decode(&k, copy, rl, &id, out, sizeof(out), &pl) != 0);
	}
}

static void test_slots(void)
{
	uint8_t master[32] = { 9 }, got[32], slot[KEYRING_SLOT_LEN], raw[32] = { 5 };
	struct repo_secret pw = { .password = "pass", .password_len = 4 };
	struct repo_secret bad = { .password = "pasS", .password_len = 4 };
	struct repo_secret rk = { .raw_key = raw };
	struct repo_key_info ki;
	const char *rid = "00112233445566778899aabbccddeeff", *sid = "ffeeddccbbaa99887766554433221100";

	CHECK_EQ(keyring_slot_make(rid, sid, master, &pw, slot), 0);
	CHECK_EQ(keyring_slot_parse(slot, sizeof(slot), &ki), 0);
	CHECK_EQ(ki.scrypt_log2_n, 15);
	CHECK_EQ(keyring_slot_unwrap(rid, sid, slot, sizeof(slot), &pw, got), 0);
	CHECK_MEM(got, master, 32);
	CHECK_EQ(keyring_slot_unwrap(rid, sid, slot, sizeof(slot), &bad, got), -EKEYREJECTED);
	CHECK_EQ(keyring_slot_unwrap(rid, rid, slot, sizeof(slot), &pw, got), -EKEYREJECTED);
	CHECK_EQ(keyring_slot_unwrap(rid, sid, slot, sizeof(slot), &rk, got), -EKEYREJECTED);
	slot[90] ^= 1;
	CHECK_EQ(keyring_slot_unwrap(rid, sid, slot, sizeof(slot), &pw, got), -EBADMSG);
	CHECK_EQ(keyring_slot_make(rid, sid, master, &rk, slot), 0);
	CHECK_EQ(keyring_slot_unwrap(rid, sid, slot, sizeof(slot), &rk, got), 0);
	CHECK_MEM(got, master, 32);
}

static int count_cb(void *arg, const struct repo_key_info *ki)
{
	(void)ki;
	++*(int *)arg;
	return 0;
}

static void test_repo(void)
{
	char *dir = tmpdir_new();
	struct repo_secret pw = { .password = "one", .password_len = 3 };
	struct repo_secret pw2 = { .password = "two", .password_len = 3 };
	struct repo_secret bad = { .password = "bad", .password_len = 3 };
	struct repo_create_opts co = { .encrypt = 1, .secret = &pw };
	struct repo_open_opts oo = { .secret = &pw };
	struct repo *r;
	struct chunk_id id;
	char kid[33], first[33];
	void *data;
	size_t len;
	int n = 0;

	CHECK_EQ(repo_create(dir, &(struct repo_create_opts){ .encrypt = 1 }), -ENOKEY);
	CHECK_EQ(repo_create(dir, &co), 0);
	CHECK_EQ(repo_open(dir, NULL, &r), -ENOKEY);
	CHECK_EQ(repo_open(dir, &(struct repo_open_opts){ .secret = &bad }, &r), -EKEYREJECTED);
	CHECK_EQ(repo_open(dir, &oo, &r), 0);
	CHECK(repo_encrypted(r));
	snprintf(first, sizeof(first), "%s", repo_key_current(r));
	memset(buf, 'x', 4096);
	CHECK_EQ(repo_chunk_put(r, CHUNK_DATA, buf, 4096, &id), 0);
	CHECK_EQ(repo_meta_put(r, "volumes/v/head.1", "{\"name\":\"secret\"}", 17, 1), 0);
	CHECK_EQ(repo_key_add(r, &pw2, kid), 0);
	CHECK_EQ(repo_key_list(r, count_cb, &n), 0);
	CHECK_EQ(n, 2);
	CHECK_EQ(repo_key_remove(r, "0123456789abcdef0123456789abcdef"), -ENOENT);
	repo_close(r);

	CHECK_EQ(repo_open(dir, &(struct repo_open_opts){ .secret = &pw2 }, &r), 0);
	CHECK_EQ(repo_chunk_get(r, &id, out, sizeof(out), &len), 0);
	CHECK_EQ(len, 4096);
	CHECK_MEM(out, buf, 4096);
	CHECK_EQ(repo_meta_get(r, "volumes/v/head.1", &data, &len), 0);
	CHECK_EQ(len, 17);
	CHECK_MEM(data, "{\"name\":\"secret\"}", 17);
	free(data);
	CHECK_EQ(repo_key_remove(r, first), 0);
	CHECK_EQ(repo_key_remove(r, kid), -EBUSY); /* never the last */
	repo_close(r);
	CHECK_EQ(repo_open(dir, &oo, &r), -EKEYREJECTED);

	/* a damaged metadata object reads as -EBADMSG */
	char path[4096];
	FILE *f;
	snprintf(path, sizeof(path), "%s/meta/volumes/v/head.1", dir);
	f = fopen(path, "r+b");
	CHECK(f != NULL);
	if (f) {
		fseek(f, 25, SEEK_SET);
		fputc('!', f);
		fclose(f);
	}
	CHECK_EQ(repo_open(dir, &(struct repo_open_opts){ .secret = &pw2 }, &r), 0);
	CHECK_EQ(repo_meta_get(r, "volumes/v/head.1", &data, &len), -EBADMSG);
	repo_close(r);
	rm_rf(dir);
	free(dir);
}

static void test_lease(void)
{
	char *dir = tmpdir_new();
	struct backend *b;
	struct lease *l1, *l2;

	CHECK_EQ(backend_local_open(dir, 1, &b), 0);
	CHECK_EQ(lease_acquire(b, 30, &l1), 0);
	CHECK(lease_held(l1));
	CHECK_EQ(lease_acquire(b, 30, &l2), -EBUSY);
	lease_release(l1);
	CHECK_EQ(lease_acquire(b, 30, &l2), 0);
	lease_release(l2);
	/* a fresh lease of a dead process on this host is stale */
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	char obj[512];
	int n = snprintf(obj, sizeof(obj), "{\"owner\":\"x\",\"host\":\"%s\",\"pid\":%d,\"expires_ns\":%llu}",
			 host, 999999999, 9000000000000000000ull);
	CHECK_EQ(b->ops->put(b->ctx, "lease/0123456789abcdef0123456789abcdef", obj, (size_t)n, 0), 0);
	CHECK_EQ(lease_acquire(b, 30, &l1), 0);
	lease_release(l1);
	/* ... but not one of another host */
	n = snprintf(obj, sizeof(obj), "{\"owner\":\"x\",\"host\":\"elsewhere\",\"pid\":1,\"expires_ns\":%llu}",
		     9000000000000000000ull);
	CHECK_EQ(b->ops->put(b->ctx, "lease/0123456789abcdef0123456789abcdef", obj, (size_t)n, 0), 0);
	CHECK_EQ(lease_acquire(b, 30, &l1), -EBUSY);
	backend_close(b);
	rm_rf(dir);
	free(dir);
}

static void test_cache(void)
{
	char *dir = tmpdir_new(), inner_dir[2048], cache_dir[2048], p[4200];
	struct backend *in, *c;
	struct stat st;
	void *data;
	size_t len;

	snprintf(inner_dir, sizeof(inner_dir), "%s/inner", dir);
	snprintf(cache_dir, sizeof(cache_dir), "%s/cache", dir);
	CHECK_EQ(backend_local_open(inner_dir, 1, &in), 0);
	CHECK_EQ(backend_cache_open(in, cache_dir, 10000, &c), 0);
	memset(buf, 'p', 6000);
	CHECK_EQ(c->ops->put(c->ctx, "packs/aa/one", buf, 6000, 0), 0);
	CHECK_EQ(c->ops->put(c->ctx, "meta/x", buf, 10, 0), 0);
	snprintf(p, sizeof(p), "%s/packs/aa/one", cache_dir);
	CHECK_EQ(stat(p, &st), 0);
	snprintf(p, sizeof(p), "%s/meta/x", cache_dir);
	CHECK(stat(p, &st) != 0); /* mutable keys are never cached */
	/* served from the copy even when the inner object is gone */
	snprintf(p, sizeof(p), "%s/packs/aa/one", inner_dir);
	unlink(p);
	CHECK_EQ(c->ops->get_range(c->ctx, "packs/aa/one", 100, out, 50), 0);
	CHECK_EQ(c->ops->get(c->ctx, "packs/aa/one", &data, &len), 0);
	CHECK_EQ(len, 6000);
	free(data);
	/* the bound: a second 6000-byte copy pushes the first out */
	CHECK_EQ(c->ops->put(c->ctx, "packs/bb/two", buf, 6000, 0), 0);
	CHECK_EQ(c->ops->get_range(c->ctx, "packs/aa/one", 100, out, 50), -ENOENT);
	backend_close(c);
	rm_rf(dir);
	free(dir);
}

/* LRU order (a hit keeps a copy) and fill on miss (a ranged read of a pack that misses
 * brings the whole pack in, in the background). */
static void test_cache_lru_fill(void)
{
	char *dir = tmpdir_new(), inner_dir[2048], cache_dir[2048], p[4200];
	struct backend *in, *side, *c;
	struct stat st;
	int i;

	snprintf(inner_dir, sizeof(inner_dir), "%s/inner", dir);
	snprintf(cache_dir, sizeof(cache_dir), "%s/cache", dir);
	CHECK_EQ(backend_local_open(inner_dir, 1, &in), 0);
	CHECK_EQ(backend_local_open(inner_dir, 0, &side), 0);
	CHECK_EQ(backend_cache_open(in, cache_dir, 80000, &c), 0);
	memset(buf, 'q', 30000);
	CHECK_EQ(c->ops->put(c->ctx, "packs/aa/one", buf, 30000, 0), 0);
	CHECK_EQ(c->ops->put(c->ctx, "packs/bb/two", buf, 30000, 0), 0);
	CHECK_EQ(c->ops->get_range(c->ctx, "packs/aa/one", 0, out, 10), 0); /* one is hot */
	CHECK_EQ(c->ops->put(c->ctx, "packs/cc/three", buf, 30000, 0), 0);
	snprintf(p, sizeof(p), "%s/packs/aa/one", cache_dir);
	CHECK_EQ(stat(p, &st), 0);
	snprintf(p, sizeof(p), "%s/packs/bb/two", cache_dir);
	CHECK(stat(p, &st) != 0); /* the least recently used went */

	/* a pack written by someone else: the first ranged read goes to the inner backend
	 * and fills the copy behind it */
	memset(buf, 'r', 9000);
	CHECK_EQ(side->ops->put(side->ctx, "packs/dd/four", buf, 9000, 0), 0);
	CHECK_EQ(c->ops->get_range(c->ctx, "packs/dd/four", 8000, out, 100), 0);
	CHECK_EQ(out[0], 'r');
	snprintf(p, sizeof(p), "%s/packs/dd/four", cache_dir);
	for (i = 0; i < 200 && stat(p, &st) != 0; i++)
		usleep(10000);
	CHECK_EQ(stat(p, &st), 0);
	CHECK_EQ(st.st_size, 9000);
	/* deleting through the cache drops the copy and its accounting */
	CHECK_EQ(c->ops->del(c->ctx, "packs/dd/four"), 0);
	CHECK(stat(p, &st) != 0);
	CHECK_EQ(c->ops->get_range(c->ctx, "packs/dd/four", 0, out, 10), -ENOENT);
	backend_close(c);
	backend_close(side);
	rm_rf(dir);
	free(dir);
}

int main(void)
{
	RUN(test_aead);
	RUN(test_records);
	RUN(test_slots);
	RUN(test_repo);
	RUN(test_lease);
	RUN(test_cache);
	RUN(test_cache_lru_fill);
	return check_result();
}
