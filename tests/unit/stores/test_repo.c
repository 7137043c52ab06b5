/* Unit tests of the repository: round trips, dedup, zero chunks, compression,
 * durability across reopen, damage detection, index rebuild, locking, config, meta. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "check.h"
#include "chunk_codec.h"
#include "helpers.h"
#include "pack.h"
#include "repo.h"

static uint8_t buf[CHUNK_SIZE_MAX], out[CHUNK_SIZE_MAX];

static char *new_repo(void)
{
	char *dir = tmpdir_new();

	CHECK_EQ(repo_create(dir, NULL), 0);
	return dir;
}

static void drop_repo(char *dir)
{
	rm_rf(dir);
	free(dir);
}

static struct repo *open_rw(const char *dir)
{
	struct repo *r = NULL;
	int rc = repo_open(dir, NULL, &r);

	CHECK_EQ(rc, 0);
	if (rc) {
		fprintf(stderr, "repo_open(%s) failed: %d\n", dir, rc);
		exit(1);
	}
	return r;
}

/* Path of the only (or first) file under dir/sub/<2 hex>/, or under dir/sub/. */
static int first_file(const char *dir, const char *sub, char *path, size_t cap)
{
	char d[4096];
	struct dirent *de;
	DIR *dd;

	snprintf(d, sizeof(d), "%s/%s", dir, sub);
	dd = opendir(d);
	if (!dd)
		return -1;
	while ((de = readdir(dd))) {
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(path, cap, "%s/%s", d, de->d_name) >= cap)
			continue;
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			char sub2[4096];

			if ((size_t)snprintf(sub2, sizeof(sub2), "%s/%s", sub, de->d_name) >= sizeof(sub2))
				continue;
			closedir(dd);
			return first_file(dir, sub2, path, cap);
		}
		closedir(dd);
		return 0;
	}
	closedir(dd);
	return -1;
}

static int count_cb(void *arg, const char *key, uint64_t size)
{
	(void)key; (void)size;
	(*(int *)arg)++;
	return 0;
}

static int count_objects(const char *dir, const char *prefix)
{
	struct backend *be;
	int n = 0;

	if (backend_local_open(dir, 0, &be))
		return -1;
	be->ops->list(be->ctx, prefix, count_cb, &n);
	backend_close(be);
	return n;
}

static void test_roundtrip_sizes(void)
{
	char *dir = new_repo();
	struct repo *r = open_rw(dir);
	struct chunk_id ids[2][9];
	size_t len;
	int k = 0;

	for (size_t sz = CHUNK_SIZE_MIN; sz <= CHUNK_SIZE_MAX; sz *= 2, k++) {
		fill_random(buf, sz, sz);
		CHECK_EQ(repo_chunk_put(r, CHUNK_DATA, buf, sz, &ids[0][k]), 0);
		fill_text(buf, sz, sz);
		CHECK_EQ(repo_chunk_put(r, CHUNK_TREE, buf, sz, &ids[1][k]), 0);
	}
	/* readable at once, before any flush */
	for (int pass = 0; pass < 2; pass++) {
		k = 0;
		for (size_t sz = CHUNK_SIZE_MIN; sz <= CHUNK_SIZE_MAX; sz *= 2, k++) {
			fill_random(buf, sz, sz);
			CHECK_EQ(repo_chunk_get(r, &ids[0][k], out, sizeof(out), &len), 0);
			CHECK_EQ(len, sz);
			CHECK_MEM(out, buf, sz);
			fill_text(buf, sz, sz);
			CHECK_EQ(repo_chunk_get(r, &ids[1][k], out, sizeof(out), &len), 0);
			CHECK_EQ(len, sz);
			CHECK_MEM(out, buf, sz);
			CHECK_EQ(repo_chunk_has(r, &ids[1][k]), 1);
		}
		if (pass == 0)
			CHECK_EQ(repo_flush(r), 0);
	}
	CHECK_EQ(repo_chunk_get(r, &ids[1][8], out, 4096, &len), -ENOBUFS);
	struct chunk_id unknown = ids[0][0];
	unknown.b[5] ^= 0x40;
	CHECK_EQ(repo_chunk_get(r, &unknown, out, sizeof(out), &len), -ENOENT);
	CHECK_EQ(repo_chunk_has(r, &unknown), 0);
	CHECK_EQ(repo_chunk_put(r, CHUNK_DATA, buf, CHUNK_SIZE_MAX + 1, &unknown), -EINVAL);
	repo_close(r);
	drop_repo(dir);
}

static void test_dedup_and_zero(void)
{
	char *dir = new_repo();
	struct repo *r = open_rw(dir);
	struct repo_stats st;
	struct chunk_id a, b, z;
	size_t len;

	fill_random(buf, 65536, 1);
	CHECK_EQ(repo_chunk_put(r, CHUNK_DATA, buf, 65536, &a), 0);
	CHECK_EQ(repo_chunk_put(r, CHUNK_DATA, buf, 65536, &b), 0);
	CHECK_MEM(a.b, b.b, CHUNK_ID_LEN);
	repo_get_stats(r, &st);
	CHECK_EQ(st.chunks, 1);
	CHECK_EQ(st.dedup_hits, 1);
	CHECK_EQ(st.plain_bytes, 65536);

	memset(buf, 0, sizeof(buf));
	CHECK_EQ(repo_chunk_put(r, CHUNK_DATA, buf, 65536, &z), 0);
	CHECK(chunk_id_is_null(&z));
	CHECK_EQ(repo_chunk_get(r, &z, out, sizeof(out), &len), -EINVAL);
	repo_get_stats(r, &st);
	CHECK_EQ(st.chunks, 1);
	CHECK_EQ(repo_flush(r), 0);
	repo_close(r);
	CHECK_EQ(count_objects(dir, "packs/"), 1);

	/* a repository holding only zero chunks stores nothing */
	drop_repo(dir);
	dir = new_repo();
	r = open_rw(dir);
	CHECK_EQ(repo_chunk_put(r, CHUNK_DATA, buf, 4096, &z), 0);
	CHECK_EQ(repo_flush(r), 0);
	repo_get_stats(r, &st);
	CHECK_EQ(st.chunks, 0);
	CHECK_EQ(st.packs, 0);
	repo_close(r);
	CHECK_EQ(count_objects(dir, "packs/"), 0);
	drop_repo(dir);
}

static void test_compressed(void)
{
	char *dir = new_repo();
	struct repo *r = open_rw(dir);
	struct repo_stats st;
	struct chunk_id id;
	uint64_t size;
	struct backend *be;

	fill_text(buf, 65536, 5);
	CHECK_EQ(repo_chunk_put(r, CHUNK_DATA, buf, 65536, &id), 0);
	repo_get_stats(r, &st);
	CHECK(st.stored_bytes < st.plain_bytes / 2);
	CHECK_EQ(repo_flush(r), 0);
	repo_close(r);
	/* the pack object itself is small */
	CHECK_EQ(backend_local_open(dir, 0, &be), 0);
	char path[4096];
	CHECK_EQ(first_file(dir, "packs", path, sizeof(path)), 0);
	CHECK_EQ(be->ops->stat(be->ctx, path + strlen(dir) + 1, &size), 0);
	CHECK(size < 65536 / 2);
	backend_close(be);
	drop_repo(dir);
}

#define NREOPEN 600 /* 600 x 64 KiB random: more than two packs */

static void test_reopen(void)
{
	char *dir = new_repo();
	struct repo *r = open_rw(dir);
	static struct chunk_id ids[NREOPEN];
	struct repo_stats st;
	size_t len;
	int bad = 0;

	for (int i = 0; i < NREOPEN; i++) {
		if (i % 2)
			fill_random(buf, 65536, 1000 + i);
		else
			fill_text(buf, 65536, 1000 + i);
		CHECK_EQ(repo_chunk_put(r, CHUNK_DATA, buf, 65536, &ids[i]), 0);
	}
	CHECK_EQ(repo_flush(r), 0);
	repo_get_stats(r, &st);
	CHECK(st.packs >= 2);
	repo_close(r);

	r = open_rw(dir);
	repo_get_stats(r, &st);
	CHECK_EQ(st.chunks, NREOPEN);
	CHECK(st.packs >= 2);
	CHECK_EQ(count_objects(dir, "index/"), (int)st.packs);
	for (int i = 0; i < NREOPEN; i++) {
		if (i % 2)
			fill_random(buf, 65536, 1000 + i);
		else
			fill_text(buf, 65536, 1000 + i);
		if (repo_chunk_get(r, &ids[i], out, sizeof(out), &len) || len != 65536 ||
		    memcmp(out, buf, 65536))
			bad++;
	}
	CHECK_EQ(bad, 0);
	/* second reads come from the cache */
	CHECK_EQ(repo_chunk_get(r, &ids[7], out, sizeof(out), &len), 0);
	repo_get_stats(r, &st);
	CHECK(st.cache_hits >= 1);
	/* a put of known content after reopen is a dedup hit */
	fill_random(buf, 65536, 1000 + 7);
	CHECK_EQ(repo_chunk_put(r, CHUNK_DATA, buf, 65536, &ids[7]), 0);
	repo_get_stats(r, &st);
	CHECK_EQ(st.dedup_hits, 1);
	CHECK_EQ(st.chunks, NREOPEN);
	repo_close(r);
	drop_repo(dir);
}

/* Chunks written without repo_flush are readable after close (close flushes). */
static void test_close_flushes(void)
{
	char *dir = new_repo();
	struct repo *r = open_rw(dir);
	struct chunk_id id;
	size_t len;

	fill_random(buf, 8192, 77);
	CHECK_EQ(repo_chunk_put(r, CHUNK_DATA, buf, 8192, &id), 0);
	repo_close(r);
	r = open_rw(dir);
	CHECK_EQ(repo_chunk_get(r, &id, out, sizeof(out), &len), 0);
	CHECK_EQ(len, 8192);
	CHECK_MEM(out, buf, 8192);
	repo_close(r);
	drop_repo(dir);
}

static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t c;

	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, &c, 1, off), 1);
	c ^= 0x10;
	CHECK_EQ(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

/* A flipped byte in a stored record gives -EBADMSG for that chunk, never wrong data. */
static void test_flipped_byte(void)
{
	/* where to flip: inside the first record's payload, and inside its header */
	static const off_t where[] = { PACK_HDR_LEN + CODEC_REC_HDR_LEN + 100, PACK_HDR_LEN + 41 };

	for (size_t w = 0; w < 2; w++) {
		for (int compressible = 0; compressible < 2; compressible++) {
			char *dir = new_repo();
			struct repo *r = open_rw(dir);
			struct chunk_id ids[8];
			char path[4096];
			size_t len;
			int badmsg = 0, wrong = 0, rc;

			for (int i = 0; i < 8; i++) {
				if (compressible)
					fill_text(buf, 16384, 50 + i);
				else
					fill_random(buf, 16384, 50 + i);
				CHECK_EQ(repo_chunk_put(r, CHUNK_DATA, buf, 16384, &ids[i]), 0);
			}
			repo_close(r);
			CHECK_EQ(first_file(dir, "packs", path, sizeof(path)), 0);
			flip_byte(path, where[w]);
			r = open_rw(dir);
			for (int i = 0; i < 8; i++) {
				if (compressible)
					fill_text(buf, 16384, 50 + i);
				else
					fill_random(buf, 16384, 50 + i);
				memset(out, 0, 16384);
				rc = repo_chunk_get(r, &ids[i], out, sizeof(out), &len);
				if (rc == -EBADMSG)
					badmsg++;
				else if (rc != 0 || len != 16384 || memcmp(out, buf, 16384))
					wrong++;
			}
			CHECK_EQ(badmsg, 1);
			CHECK_EQ(wrong, 0);
			repo_close(r);
			drop_repo(dir);
		}
	}
}

static void test_index_rebuild(void)
{
	char *dir = new_repo();
	struct repo *r = open_rw(dir);
	struct chunk_id ids[20];
	struct repo_stats st;
	char path[4096];
	struct stat sb;
	size_t len;

	for (int i = 0; i < 20; i++) {
		fill_text(buf, 32768, 300 + i);
		CHECK_EQ(repo_chunk_put(r, CHUNK_DATA, buf, 32768, &ids[i]), 0);
	}
	repo_close(r);
	CHECK_EQ(first_file(dir, "index", path, sizeof(path)), 0);
	CHECK_EQ(unlink(path), 0);
	CHECK_EQ(count_objects(dir, "index/"), 0);

	/* read-only open rebuilds in memory but writes nothing */
	struct repo_open_opts ro = { .read_only = 1 };
	CHECK_EQ(repo_open(dir, &ro, &r), 0);
	repo_get_stats(r, &st);
	CHECK_EQ(st.chunks, 20);
	CHECK_EQ(repo_chunk_put(r, CHUNK_DATA, buf, 32768, &ids[0]), -EROFS);
	repo_close(r);
	CHECK_EQ(count_objects(dir, "index/"), 0);

	r = open_rw(dir);
	CHECK_EQ(stat(path, &sb), 0); /* the segment is back */
	repo_get_stats(r, &st);
	CHECK_EQ(st.chunks, 20);
	for (int i = 0; i < 20; i++) {
		fill_text(buf, 32768, 300 + i);
		CHECK_EQ(repo_chunk_get(r, &ids[i], out, sizeof(out), &len), 0);
		CHECK_MEM(out, buf, 32768);
	}
	repo_close(r);

	/* a damaged segment is rebuilt too */
	flip_byte(path, 40);
	r = open_rw(dir);
	repo_get_stats(r, &st);
	CHECK_EQ(st.chunks, 20);
	fill_text(buf, 32768, 319);
	CHECK_EQ(repo_chunk_get(r, &ids[19], out, sizeof(out), &len), 0);
	CHECK_MEM(out, buf, 32768);
	repo_close(r);
	drop_repo(dir);
}

static void test_lock(void)
{
	char *dir = new_repo();
	struct repo *r = open_rw(dir), *r2 = NULL, *ro = NULL;
	struct repo_open_opts roo = { .read_only = 1 };

	CHECK_EQ(repo_open(dir, NULL, &r2), -EBUSY);
	CHECK_EQ(repo_open(dir, &roo, &ro), 0);
	if (ro) {
		CHECK_EQ(repo_meta_put(ro, "x", "1", 1, 0), -EROFS);
		repo_close(ro);
	}
	repo_close(r);
	CHECK_EQ(repo_open(dir, NULL, &r2), 0);
	if (r2)
		repo_close(r2);
	drop_repo(dir);
}

static void write_config(const char *dir, const char *text)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/config", dir);
	f = fopen(path, "w");
	CHECK(f != NULL);
	fputs(text, f);
	fclose(f);
}

static void test_config(void)
{
	char *dir = new_repo();
	struct repo *r = NULL;
	char path[4096];

	CHECK_EQ(repo_create(dir, NULL), -EEXIST);
	r = open_rw(dir);
	CHECK_EQ(strlen(repo_id_hex(r)), 32);
	CHECK_EQ(repo_default_chunk_size(r), 65536);
	repo_close(r);

	write_config(dir, "{\"magic\":\"cairn-repository\",\"version\":99,"
			  "\"id\":\"00112233445566778899aabbccddeeff\",\"chunk_size\":65536,"
			  "\"encryption\":\"none\"}");
	CHECK_EQ(repo_open(dir, NULL, &r), -EPROTO);
	write_config(dir, "{\"magic\":\"restic\",\"version\":1}");
	CHECK_EQ(repo_open(dir, NULL, &r), -EPROTO);
	write_config(dir, "\x01\x02garbage{{");
	CHECK_EQ(repo_open(dir, NULL, &r), -EPROTO);
	write_config(dir, "{\"magic\":\"cairn-repository\",\"version\":1,"
			  "\"id\":\"00112233445566778899aabbccddeeff\",\"chunk_size\":4096,"
			  "\"encryption\":\"none\"}");
	CHECK_EQ(repo_open(dir, NULL, &r), 0);
	if (r) {
		CHECK(strcmp(repo_id_hex(r), "00112233445566778899aabbccddeeff") == 0);
		CHECK_EQ(repo_default_chunk_size(r), 4096);
		repo_close(r);
	}
	drop_repo(dir);

	dir = tmpdir_new();
	CHECK_EQ(repo_open(dir, NULL, &r), -ENOENT);
	snprintf(path, sizeof(path), "%s/sub/repo", dir);
	struct repo_create_opts co = { .chunk_size = 1000 };
	CHECK_EQ(repo_create(path, &co), -EINVAL);
	co.chunk_size = 1u << 20;
	CHECK_EQ(repo_create(path, &co), 0);
	r = open_rw(path);
	CHECK_EQ(repo_default_chunk_size(r), 1u << 20);
	repo_close(r);
	/* s3:// goes to the S3 backend: with no credentials anywhere, -EACCES */
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_PROFILE");
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	CHECK_EQ(repo_create("s3://bucket/prefix", NULL), -EACCES);
	CHECK_EQ(repo_open("s3://bucket/prefix", NULL, &r), -EACCES);
	CHECK_EQ(repo_open("s3://", NULL, &r), -EINVAL);
	drop_repo(dir);
}

struct keys {
	char k[8][32];
	int n;
};

static int keys_cb(void *arg, const char *key, uint64_t size)
{
	struct keys *k = arg;

	(void)size;
	if (k->n < 8)
		snprintf(k->k[k->n], 32, "%s", key);
	k->n++;
	return 0;
}

static void test_meta(void)
{
	char *dir = new_repo();
	struct repo *r = open_rw(dir);
	struct chunk_store cs;
	struct keys k = { 0 };
	void *data;
	size_t len;

	CHECK_EQ(repo_meta_put(r, "vol/a/head.1", "one", 3, 1), 0);
	CHECK_EQ(repo_meta_put(r, "vol/a/head.1", "uno", 3, 1), -EEXIST);
	CHECK_EQ(repo_meta_put(r, "vol/a/head.2", "two", 3, 1), 0);
	CHECK_EQ(repo_meta_put(r, "vol/b/head.1", "bee", 3, 0), 0);
	CHECK_EQ(repo_meta_put(r, "vol/b/head.1", "BEE", 3, 0), 0);
	CHECK_EQ(repo_meta_put(r, "../escape", "x", 1, 0), -EINVAL);
	CHECK_EQ(repo_meta_put(r, "", "x", 1, 0), -EINVAL);
	CHECK_EQ(repo_meta_get(r, "vol/a/head.1", &data, &len), 0);
	CHECK_EQ(len, 3);
	CHECK_MEM(data, "one", 3);
	free(data);
	CHECK_EQ(repo_meta_get(r, "vol/b/head.1", &data, &len), 0);
	CHECK_MEM(data, "BEE", 3);
	free(data);
	CHECK_EQ(repo_meta_get(r, "vol/c", &data, &len), -ENOENT);
	CHECK_EQ(repo_meta_list(r, "vol/a/", keys_cb, &k), 0);
	CHECK_EQ(k.n, 2);
	CHECK(strcmp(k.k[0], "vol/a/head.1") == 0);
	CHECK(strcmp(k.k[1], "vol/a/head.2") == 0);
	memset(&k, 0, sizeof(k));
	CHECK_EQ(repo_meta_list(r, "", keys_cb, &k), 0);
	CHECK_EQ(k.n, 3);
	CHECK_EQ(repo_meta_del(r, "vol/a/head.1"), 0);
	CHECK_EQ(repo_meta_del(r, "vol/a/head.1"), -ENOENT);

	/* the same through the chunk_store ops */
	repo_chunk_store(r, &cs);
	CHECK_EQ(cs.ops->meta_put(cs.ctx, "via/ops", "z", 1, 1), 0);
	CHECK_EQ(cs.ops->meta_get(cs.ctx, "via/ops", &data, &len), 0);
	CHECK_EQ(len, 1);
	free(data);
	struct chunk_id id;
	fill_random(buf, 4096, 4);
	CHECK_EQ(cs.ops->put(cs.ctx, CHUNK_DATA, buf, 4096, &id), 0);
	CHECK_EQ(cs.ops->flush(cs.ctx), 0);
	CHECK_EQ(cs.ops->get(cs.ctx, &id, out, sizeof(out), &len), 0);
	CHECK_MEM(out, buf, 4096);
	repo_close(r);
	/* meta objects do not show up as packs, and survive reopen */
	r = open_rw(dir);
	CHECK_EQ(repo_meta_get(r, "vol/a/head.2", &data, &len), 0);
	free(data);
	repo_close(r);
	drop_repo(dir);
}

int main(void)
{
	RUN(test_roundtrip_sizes);
	RUN(test_dedup_and_zero);
	RUN(test_compressed);
	RUN(test_reopen);
	RUN(test_close_flushes);
	RUN(test_flipped_byte);
	RUN(test_index_rebuild);
	RUN(test_lock);
	RUN(test_config);
	RUN(test_meta);
	return check_result();
}
