/* test_gc.c - garbage collection on a real local repository: live data kept, dead data
 * freed, repack, the grace period, reuse and root deletion while gc runs, and crashes
 * (a child killed before each change gc makes) leaving a repository check passes.
 *
 * Roots here are metadata objects "troots/<name>" holding the hex id of a tree node:
 * a CHUNK_TREE chunk "TNODE\0\0\0", u32 count, u32 flags (bit 0: the ids are nodes),
 * then count ids. The test's walker reports them like the volumes' walker does. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "gc.h"
#include "helpers.h"
#include "idset.h"
#include "index.h"
#include "le.h"
#include "repo.h"
#include "repo_check.h"
#include "util.h"

#define CS 16384u
#define PER 12 /* chunks per batch */

/* ---- tree nodes and roots ---- */

static int put_node(struct repo *r, const struct chunk_id *kids, uint32_t n, int nodes,
		    struct chunk_id *out)
{
	size_t len = 16 + (size_t)CHUNK_ID_LEN * n;
	uint8_t *b = calloc(1, len);
	int rc;

	memcpy(b, "TNODE\0\0\0", 8);
	le_put32(b + 8, n);
	le_put32(b + 12, nodes ? 1 : 0);
	for (uint32_t i = 0; i < n; i++)
		memcpy(b + 16 + CHUNK_ID_LEN * i, kids[i].b, CHUNK_ID_LEN);
	rc = repo_chunk_put(r, CHUNK_TREE, b, len, out);
	free(b);
	return rc;
}

static int put_root(struct repo *r, const char *name, const struct chunk_id *id)
{
	char key[64], hex[2 * CHUNK_ID_LEN + 1];

	snprintf(key, sizeof(key), "troots/%s", name);
	util_hex(id->b, CHUNK_ID_LEN, hex);
	return repo_meta_put(r, key, hex, 2 * CHUNK_ID_LEN, 0);
}

static int del_root(struct repo *r, const char *name)
{
	char key[64];

	snprintf(key, sizeof(key), "troots/%s", name);
	return repo_meta_del(r, key);
}

static int walk_tree(struct chunk_store *cs, const struct repo_walk_cbs *cb, const char *root,
		     const struct chunk_id *id, int node)
{
	uint8_t *b;
	size_t len;
	uint32_t n, flags;
	int rc = cb->ref(cb->arg, root, id);

	if (rc < 0)
		return rc;
	if (rc == REPO_WALK_SEEN || !node)
		return 0;
	b = malloc(CHUNK_SIZE_MAX);
	rc = cs->ops->get(cs->ctx, id, b, CHUNK_SIZE_MAX, &len);
	if (rc || len < 16 || memcmp(b, "TNODE", 5)) {
		cb->bad(cb->arg, root, "tree node unreadable");
		free(b);
		return 0;
	}
	n = le_get32(b + 8);
	flags = le_get32(b + 12);
	for (uint32_t i = 0; i < n && !rc; i++) {
		struct chunk_id kid;

		memcpy(kid.b, b + 16 + CHUNK_ID_LEN * i, CHUNK_ID_LEN);
		rc = walk_tree(cs, cb, root, &kid, flags & 1);
	}
	free(b);
	return rc;
}

static int walk_hex(struct chunk_store *cs, const struct repo_walk_cbs *cb, const char *key,
		    const void *data, size_t len)
{
	struct chunk_id id;
	char hex[2 * CHUNK_ID_LEN + 1];

	if (len != 2 * CHUNK_ID_LEN)
		return 0;
	memcpy(hex, data, len);
	hex[len] = 0;
	if (util_unhex(hex, id.b, CHUNK_ID_LEN))
		return 0;
	return walk_tree(cs, cb, key, &id, 1);
}

struct keys {
	char k[64][64];
	int n;
};

static int keys_cb(void *arg, const char *key, uint64_t size)
{
	struct keys *k = arg;

	(void)size;
	if (k->n < 64)
		snprintf(k->k[k->n++], 64, "%s", key);
	return 0;
}

static int t_walk(void *ctx, struct chunk_store *cs, const struct repo_walk_cbs *cb)
{
	struct keys k = { .n = 0 };
	int rc;

	(void)ctx;
	rc = cs->ops->meta_list(cs->ctx, "troots/", keys_cb, &k);
	for (int i = 0; !rc && i < k.n; i++) {
		void *data;
		size_t len;

		rc = cs->ops->meta_get(cs->ctx, k.k[i], &data, &len);
		if (rc == -ENOENT) {
			rc = 0;
			continue;
		}
		if (rc)
			break;
		rc = walk_hex(cs, cb, k.k[i], data, len);
		free(data);
	}
	return rc;
}

static int t_walk_object(void *ctx, struct chunk_store *cs, const char *key, const void *data,
			 size_t len, const struct repo_walk_cbs *cb)
{
	(void)ctx;
	if (strncmp(key, "troots/", 7))
		return 0;
	return walk_hex(cs, cb, key, data, len);
}

static const char *const prefixes[] = { "troots/", NULL };
static const struct repo_tree_walker walker = { .walk = t_walk, .walk_object = t_walk_object,
						.object_prefixes = prefixes };

/* ---- the scenario ---- */

struct batch {
	struct chunk_id id[PER];
	struct chunk_id node;
};

static void chunk_data(int b, int i, uint8_t *buf)
{
	fill_text(buf, CS, (uint64_t)b * 1000 + (uint64_t)i + 1);
}

/* A batch of PER chunks and a node over them, in a pack of its own. */
static void put_batch(struct repo *r, int b, struct batch *out)
{
	uint8_t *buf = malloc(CS);

	for (int i = 0; i < PER; i++) {
		chunk_data(b, i, buf);
		CHECK_EQ(repo_chunk_put(r, CHUNK_DATA, buf, CS, &out->id[i]), 0);
	}
	CHECK_EQ(put_node(r, out->id, PER, 0, &out->node), 0);
	CHECK_EQ(repo_flush(r), 0);
	free(buf);
}

static int verify_chunk(struct repo *r, int b, int i, const struct chunk_id *id)
{
	uint8_t *want = malloc(CS), *got = malloc(CS);
	size_t len = 0;
	int ok;

	chunk_data(b, i, want);
	ok = repo_chunk_get(r, id, got, CS, &len) == 0 && len == CS && !memcmp(want, got, CS);
	free(want);
	free(got);
	return ok;
}

struct count {
	uint64_t n, bytes;
};

static int count_cb(void *arg, const char *key, uint64_t size)
{
	struct count *c = arg;

	(void)key;
	c->n++;
	c->bytes += size;
	return 0;
}

static struct count count_objs(struct repo *r, const char *prefix)
{
	struct count c = { 0, 0 };
	struct backend *be = repo_backend(r);

	be->ops->list(be->ctx, prefix, count_cb, &c);
	return c;
}

static void on_damaged(void *arg, const char *object, const char *what)
{
	(void)arg;
	if (strncmp(what, "note: ", 6))
		fprintf(stderr, "  damaged: %s: %s\n", object, what);
}

static uint64_t check_repo(struct repo *r)
{
	struct repo_check_opts co = { .read_data = 1, .walker = &walker, .damaged = on_damaged };
	struct repo_check_result res;

	CHECK_EQ(repo_check(r, &co, &res), 0);
	return res.damaged;
}

/* Set by test_gc_encrypted: every repository of the test is then encrypted. */
static const struct repo_secret *secret;

static struct repo *open_repo(const char *dir)
{
	struct repo_open_opts ro = { .secret = secret };
	struct repo *r = NULL;
	int rc = repo_open(dir, &ro, &r);

	if (rc) {
		fprintf(stderr, "repo_open(%s): %s\n", dir, strerror(-rc));
		exit(2);
	}
	return r;
}

/* Batches 0..3 (one pack each): roots A -> batch 0, C -> batch 2 minus most of it,
 * batch 1's root deleted (dead pack), batch 3 holds C's new node only. */
struct scene {
	struct batch b[3];
	struct chunk_id c_small;   /* node over b[2].id[0..1] and b[0].id[0] */
};

static void build_scene(const char *dir, struct scene *s)
{
	struct repo *r;
	struct chunk_id kids[3];

	CHECK_EQ(repo_create(dir, &(struct repo_create_opts){ .chunk_size = CS, .encrypt = secret != NULL,
							      .secret = secret }), 0);
	r = open_repo(dir);
	for (int b = 0; b < 3; b++)
		put_batch(r, b, &s->b[b]);
	CHECK_EQ(put_root(r, "A", &s->b[0].node), 0);
	CHECK_EQ(put_root(r, "B", &s->b[1].node), 0);
	CHECK_EQ(put_root(r, "C", &s->b[2].node), 0);
	kids[0] = s->b[2].id[0];
	kids[1] = s->b[2].id[1];
	kids[2] = s->b[0].id[0];
	CHECK_EQ(put_node(r, kids, 3, 0, &s->c_small), 0);
	CHECK_EQ(repo_flush(r), 0);
	CHECK_EQ(put_root(r, "C", &s->c_small), 0);
	CHECK_EQ(del_root(r, "B"), 0);
	repo_close(r);
}

/* What must survive any gc of the scene: A whole, C's two chunks. */
static void verify_live(struct repo *r, const struct scene *s)
{
	for (int i = 0; i < PER; i++)
		CHECK(verify_chunk(r, 0, i, &s->b[0].id[i]));
	CHECK(verify_chunk(r, 2, 0, &s->b[2].id[0]));
	CHECK(verify_chunk(r, 2, 1, &s->b[2].id[1]));
	CHECK(repo_chunk_has(r, &s->b[0].node));
	CHECK(repo_chunk_has(r, &s->c_small));
}

static struct gc_opts opts(uint64_t grace_ns)
{
	return (struct gc_opts){ .walker = &walker, .repack_pct = 50, .grace_ns = grace_ns };
}

static void test_index_remove(void)
{
	struct index *ix;
	struct chunk_id id;
	struct index_loc loc = { .rec_len = 100 }, got;
	enum { N = 5000 };

	CHECK_EQ(index_create(0, &ix), 0);
	for (int i = 0; i < N; i++) {
		fill_random(id.b, CHUNK_ID_LEN, (uint64_t)i + 1);
		id.b[0] = (uint8_t)(i & 3); /* crowd the low hash bits: long probe runs */
		loc.pack = (uint32_t)i;
		CHECK_EQ(index_insert(ix, &id, &loc), 0);
	}
	for (int i = 0; i < N; i += 2) {
		fill_random(id.b, CHUNK_ID_LEN, (uint64_t)i + 1);
		id.b[0] = (uint8_t)(i & 3);
		CHECK_EQ(index_remove(ix, &id), 0);
		CHECK_EQ(index_remove(ix, &id), -ENOENT);
	}
	CHECK_EQ(index_count(ix), N / 2);
	for (int i = 0; i < N; i++) {
		fill_random(id.b, CHUNK_ID_LEN, (uint64_t)i + 1);
		id.b[0] = (uint8_t)(i & 3);
		if (i % 2) {
			CHECK_EQ(index_lookup(ix, &id, &got), 0);
			CHECK_EQ(got.pack, i);
			loc.pack = (uint32_t)i + 1000000;
			CHECK_EQ(index_replace(ix, &id, &loc), 0);
			CHECK_EQ(index_lookup(ix, &id, &got), 0);
			CHECK_EQ(got.pack, i + 1000000);
		} else {
			CHECK_EQ(index_lookup(ix, &id, &got), -ENOENT);
			CHECK_EQ(index_replace(ix, &id, &loc), -ENOENT);
		}
	}
	index_destroy(ix);
}

/* dry run changes nothing; grace condemns; grace 0 deletes; repack keeps live data */
static void test_gc_phases(void)
{
	char *dir = tmpdir_new();
	struct scene s;
	struct repo *r;
	struct gc_result res;
	struct gc_opts o;
	struct count before, after;
	struct repo_stats st0, st1;

	build_scene(dir, &s);
	r = open_repo(dir);
	before = count_objs(r, "packs/");
	CHECK_EQ(before.n, 4);

	o = opts(0);
	o.dry_run = 1;
	CHECK_EQ(gc_repo(r, &o, &res), 0);
	CHECK_EQ(res.packs, 4);
	CHECK_EQ(res.packs_deleted, 2);   /* batch 1 dead; batch 2 repacked (grace 0) */
	CHECK_EQ(res.packs_repacked, 1);
	CHECK_EQ(res.chunks_moved, 2);
	CHECK_EQ(res.damaged, 0);
	CHECK_EQ(count_objs(r, "packs/").n, 4);
	CHECK_EQ(count_objs(r, "gc/").n, 0);

	/* with a grace period: condemn, repack, delete nothing */
	o = opts(3600ull * 1000000000ull);
	CHECK_EQ(gc_repo(r, &o, &res), 0);
	CHECK_EQ(res.packs_deleted, 0);
	CHECK_EQ(res.packs_condemned, 2);  /* the dead pack, and the repacked one */
	CHECK_EQ(res.packs_repacked, 1);
	CHECK_EQ(res.packs_written, 1);
	CHECK_EQ(res.live_chunks, PER + 1 + 2 + 1); /* A and its node, C's two chunks and node */
	CHECK(res.next_ns > util_now_ns());
	CHECK_EQ(count_objs(r, "packs/").n, 5);
	CHECK_EQ(count_objs(r, "gc/condemned/").n, 2);
	verify_live(r, &s);
	CHECK_EQ(check_repo(r), 0);

	/* a second run inside the grace period: the condemned packs wait */
	CHECK_EQ(gc_repo(r, &o, &res), 0);
	CHECK_EQ(res.packs_waiting, 2);
	CHECK_EQ(res.packs_deleted, 0);
	CHECK_EQ(res.packs_repacked, 0);
	CHECK_EQ(count_objs(r, "packs/").n, 5);

	/* reopen: the moved chunks are found in their new pack, the old one is loaded last */
	repo_close(r);
	r = open_repo(dir);
	verify_live(r, &s);
	repo_get_stats(r, &st0);

	/* grace over (0): the condemned packs go, nothing else */
	o = opts(0);
	CHECK_EQ(gc_repo(r, &o, &res), 0);
	CHECK_EQ(res.packs_deleted, 2);
	CHECK_EQ(res.packs_repacked, 0);
	after = count_objs(r, "packs/");
	CHECK_EQ(after.n, 3);
	CHECK(after.bytes < before.bytes);
	CHECK_EQ(count_objs(r, "gc/").n, 0);
	CHECK_EQ(count_objs(r, "index/").n, 3);
	repo_get_stats(r, &st1);
	CHECK(st1.stored_bytes < st0.stored_bytes);
	CHECK_EQ(st1.packs, 3);
	verify_live(r, &s);
	for (int i = 0; i < PER; i++)
		CHECK(!repo_chunk_has(r, &s.b[1].id[i]));
	for (int i = 2; i < PER; i++)
		CHECK(!repo_chunk_has(r, &s.b[2].id[i]));
	CHECK_EQ(check_repo(r), 0);

	/* nothing left to do */
	CHECK_EQ(gc_repo(r, &o, &res), 0);
	CHECK_EQ(res.packs_deleted + res.packs_repacked + res.packs_condemned, 0);
	CHECK_EQ(res.dead_chunks, 0);
	repo_close(r);
	r = open_repo(dir);
	verify_live(r, &s);
	CHECK_EQ(check_repo(r), 0);
	repo_close(r);
	rm_rf(dir);
	free(dir);
}

/* Reuse of a dead chunk after the mark, and a root deleted while gc runs. */
struct during {
	struct repo *r;
	struct scene *s;
	int reused;
};

static int settle_delete_root(void *arg)
{
	struct during *d = arg;

	/* a root deleted after gc_begin: what it referenced is kept by this run */
	return del_root(d->r, "A");
}

static void progress_reuse(void *arg, const char *phase, uint64_t done, uint64_t total)
{
	struct during *d = arg;
	uint8_t *buf;
	struct chunk_id id, node;

	(void)total;
	if (strcmp(phase, "sweep") || done != 0 || d->reused)
		return;
	/* after the mark: a writer stores content equal to a dead chunk (dedup) and a
	 * root naming it */
	d->reused = 1;
	buf = malloc(CS);
	chunk_data(1, 5, buf);
	CHECK_EQ(repo_chunk_put(d->r, CHUNK_DATA, buf, CS, &id), 0);
	CHECK(!memcmp(id.b, d->s->b[1].id[5].b, CHUNK_ID_LEN));
	CHECK_EQ(put_node(d->r, &id, 1, 0, &node), 0);
	CHECK_EQ(repo_flush(d->r), 0);
	CHECK_EQ(put_root(d->r, "late", &node), 0);
	free(buf);
}

static void test_gc_concurrent_reuse(void)
{
	char *dir = tmpdir_new();
	struct scene s;
	struct during d = { 0 };
	struct gc_result res;
	struct gc_opts o = opts(0);

	build_scene(dir, &s);
	d.r = open_repo(dir);
	d.s = &s;
	o.settle = settle_delete_root;
	o.progress = progress_reuse;
	o.arg = &d;
	CHECK_EQ(gc_repo(d.r, &o, &res), 0);
	CHECK(d.reused);
	/* batch 1's pack was reused: kept; batch 0 (root deleted meanwhile): kept */
	CHECK(verify_chunk(d.r, 1, 5, &s.b[1].id[5]));
	for (int i = 0; i < PER; i++)
		CHECK(verify_chunk(d.r, 0, i, &s.b[0].id[i]));
	CHECK_EQ(check_repo(d.r), 0);

	/* the next run: A is gone for good, batch 1 keeps only chunk 5 (repacked) */
	o = opts(0);
	CHECK_EQ(gc_repo(d.r, &o, &res), 0);
	CHECK(verify_chunk(d.r, 1, 5, &s.b[1].id[5]));
	CHECK(verify_chunk(d.r, 2, 0, &s.b[2].id[0]));
	CHECK(verify_chunk(d.r, 0, 0, &s.b[0].id[0])); /* C's node names it */
	CHECK(!repo_chunk_has(d.r, &s.b[0].id[1]));
	CHECK(!repo_chunk_has(d.r, &s.b[1].id[4]));
	CHECK_EQ(check_repo(d.r), 0);
	repo_close(d.r);
	d.r = open_repo(dir);
	CHECK(verify_chunk(d.r, 1, 5, &s.b[1].id[5]));
	CHECK_EQ(check_repo(d.r), 0);
	repo_close(d.r);
	rm_rf(dir);
	free(dir);
}

/* A child runs gc (grace 0) and dies before its k-th change; the repository must pass
 * check with all live data, and a complete gc afterwards must finish the job. */
static int crash_at;
static int crash_steps;

static void crash_step(void *arg, const char *what)
{
	(void)arg;
	(void)what;
	if (++crash_steps == crash_at)
		_exit(0);
}

static void crash_rounds(uint64_t grace_ns)
{
	int k, finished = 0;

	for (k = 1; k < 40 && !finished; k++) {
		char *dir = tmpdir_new();
		struct scene s;
		struct repo *r;
		struct gc_result res;
		struct gc_opts o = opts(grace_ns);
		pid_t pid;
		int st;

		build_scene(dir, &s);
		pid = fork();
		if (pid == 0) {
			struct repo *cr = open_repo(dir);

			crash_at = k;
			o.step = crash_step;
			gc_repo(cr, &o, &res);
			repo_close(cr);
			_exit(3); /* finished without reaching step k */
		}
		CHECK(pid > 0);
		CHECK_EQ(waitpid(pid, &st, 0), pid);
		CHECK(WIFEXITED(st));
		finished = WEXITSTATUS(st) == 3;
		r = open_repo(dir);
		verify_live(r, &s);
		if (check_repo(r)) {
			fprintf(stderr, "  crash before change %d leaves damage\n", k);
			check_failures++;
		}
		o = opts(0);
		CHECK_EQ(gc_repo(r, &o, &res), 0);
		verify_live(r, &s);
		CHECK_EQ(check_repo(r), 0);
		CHECK_EQ(count_objs(r, "packs/").n, 3);
		CHECK_EQ(count_objs(r, "gc/").n, 0);
		repo_close(r);
		rm_rf(dir);
		free(dir);
	}
	CHECK(finished);
	fprintf(stderr, "  grace %llus: crash points tried: %d\n",
		(unsigned long long)(grace_ns / 1000000000ull), k - 1);
}

static void test_gc_crash(void)
{
	crash_rounds(0);
	crash_rounds(3600ull * 1000000000ull);
}

/* The same in an encrypted repository: records move sealed, trailers are sealed anew. */
static void test_gc_encrypted(void)
{
	static const struct repo_secret pw = { .password = "gc pass", .password_len = 7 };

	secret = &pw;
	test_gc_phases();
	test_gc_concurrent_reuse();
	secret = NULL;
}

/* ---- incomplete uploads and dead metadata (gc.c) ---- */

/* idset.c: members, growth, the null id */
static void test_idset(void)
{
	struct idset set = { 0 };
	struct chunk_id id, null = { { 0 } };
	enum { N = 20000 };

	CHECK_EQ(idset_has(&set, &null), 0);
	CHECK_EQ(idset_add(&set, &null), -EINVAL);
	for (int i = 0; i < N; i++) {
		fill_random(id.b, CHUNK_ID_LEN, (uint64_t)i + 1);
		id.b[0] = (uint8_t)(i & 1); /* crowd the low hash bits: long probe runs */
		CHECK_EQ(idset_add(&set, &id), 1);
	}
	CHECK_EQ(set.n, N);
	for (int i = 0; i < N; i++) {
		fill_random(id.b, CHUNK_ID_LEN, (uint64_t)i + 1);
		id.b[0] = (uint8_t)(i & 1);
		CHECK_EQ(idset_add(&set, &id), 0);
		CHECK_EQ(idset_has(&set, &id), 1);
	}
	fill_random(id.b, CHUNK_ID_LEN, N + 5);
	CHECK_EQ(idset_has(&set, &id), 0);
	CHECK_EQ(set.n, N);
	idset_free(&set);
	CHECK_EQ(set.n, 0);
	CHECK_EQ(idset_has(&set, &id), 0);
}

/* Store the first 1/div of the pack src under a fresh pack key: an upload a crash cut
 * short. Its key goes to key_out. */
static void put_cut_pack(struct repo *r, const char *src, size_t div, char key_out[PACK_KEY_LEN])
{
	struct backend *be = repo_backend(r);
	uint8_t id[PACK_ID_LEN];
	void *data;
	size_t n;

	CHECK_EQ(be->ops->get(be->ctx, src, &data, &n), 0);
	fill_random(id, sizeof(id), 4242 + div);
	pack_key(id, key_out);
	CHECK_EQ(be->ops->put(be->ctx, key_out, data, n / div, 0), 0);
	free(data);
}

static int first_key_cb(void *arg, const char *key, uint64_t size)
{
	(void)size;
	if (!*(char *)arg)
		snprintf(arg, PACK_KEY_LEN, "%s", key);
	return 0;
}

static void test_gc_incomplete(void)
{
	char *dir = tmpdir_new(), src[PACK_KEY_LEN] = "", cut[PACK_KEY_LEN];
	struct scene s;
	struct repo *r;
	struct backend *be;
	struct gc_result res;
	struct gc_opts o;
	struct chunk_id ghost;
	uint64_t size;

	build_scene(dir, &s);
	r = open_repo(dir);
	be = repo_backend(r);
	be->ops->list(be->ctx, "packs/", first_key_cb, src);
	put_cut_pack(r, src, 2, cut);
	repo_close(r);
	r = open_repo(dir); /* the cut pack fails to load, as after the crash */
	be = repo_backend(r);
	CHECK_EQ(count_objs(r, "packs/").n, 5);

	/* a referenced chunk is missing: the cut pack might hold it, so it is kept */
	fill_random(ghost.b, CHUNK_ID_LEN, 77);
	CHECK_EQ(put_root(r, "ghost", &ghost), 0);
	CHECK_EQ(gc_repo(r, &(struct gc_opts){ .walker = &walker, .repack_pct = 0 }, &res), 0);
	CHECK_EQ(res.missing, 1);
	CHECK_EQ(res.incomplete, 1);
	CHECK_EQ(res.incomplete_deleted, 0);
	CHECK_EQ(be->ops->stat(be->ctx, cut, &size), 0);
	CHECK_EQ(del_root(r, "ghost"), 0);

	/* inside the grace period: condemned, then waiting; the object stays */
	o = opts(3600ull * 1000000000ull);
	o.repack_pct = 0;
	CHECK_EQ(gc_repo(r, &o, &res), 0);
	CHECK_EQ(res.incomplete, 1);
	CHECK_EQ(res.incomplete_deleted, 0);
	CHECK_EQ(res.packs_condemned, 2); /* batch 1 (dead) and the cut upload */
	CHECK_EQ(be->ops->stat(be->ctx, cut, &size), 0);
	CHECK_EQ(gc_repo(r, &o, &res), 0);
	CHECK_EQ(res.packs_waiting, 2);
	CHECK_EQ(res.packs_condemned, 0);
	CHECK_EQ(be->ops->stat(be->ctx, cut, &size), 0);
	CHECK_EQ(count_objs(r, "gc/condemned/").n, 2);

	/* grace over: deleted with its mark; every live chunk is still there */
	o = opts(0);
	o.repack_pct = 0;
	CHECK_EQ(gc_repo(r, &o, &res), 0);
	CHECK_EQ(res.incomplete, 1);
	CHECK_EQ(res.incomplete_deleted, 1);
	CHECK_EQ(res.packs_deleted, 2);
	CHECK_EQ(be->ops->stat(be->ctx, cut, &size), -ENOENT);
	CHECK_EQ(count_objs(r, "gc/").n, 0);
	CHECK_EQ(count_objs(r, "packs/").n, 3);
	verify_live(r, &s);
	CHECK_EQ(check_repo(r), 0);

	/* grace 0 deletes a fresh one at once; a pack with an index segment is damage, kept.
	 * The pack copied from must be one that is still there: src may have been the dead
	 * one just deleted (pack keys are random, and so is the listing order). */
	src[0] = 0;
	be->ops->list(be->ctx, "packs/", first_key_cb, src);
	put_cut_pack(r, src, 3, cut);
	CHECK_EQ(gc_repo(r, &o, &res), 0);
	CHECK_EQ(res.incomplete_deleted, 1);
	CHECK_EQ(be->ops->stat(be->ctx, cut, &size), -ENOENT);
	{
		char seg[PACK_KEY_LEN];
		uint8_t id[PACK_ID_LEN];

		put_cut_pack(r, src, 3, cut);
		CHECK_EQ(pack_id_from_key(cut, id), 0);
		index_segment_key(id, seg);
		CHECK_EQ(be->ops->put(be->ctx, seg, "x", 1, 0), 0);
		CHECK_EQ(gc_repo(r, &o, &res), 0);
		CHECK_EQ(res.incomplete, 0);
		CHECK_EQ(be->ops->stat(be->ctx, cut, &size), 0);
		CHECK_EQ(be->ops->del(be->ctx, seg), 0);
		CHECK_EQ(be->ops->del(be->ctx, cut), 0);
	}
	repo_close(r);
	rm_rf(dir);
	free(dir);
}

/* The walker's dead objects: "tdead/<group>/<name>". */
static int t_dead_list_cb(void *arg, const char *key, uint64_t size)
{
	void **a = arg;
	int (*cb)(void *, const char *, const char *, uint64_t) =
		(int (*)(void *, const char *, const char *, uint64_t))a[0];
	char group[64];
	const char *p = key + 6, *slash = strchr(p, '/');

	if (!slash || slash - p >= (long)sizeof(group))
		return 0;
	snprintf(group, sizeof(group), "%.*s", (int)(slash - p), p);
	return cb(a[1], group, key, size);
}

static int t_dead(void *ctx, struct chunk_store *cs,
		  int (*cb)(void *arg, const char *group, const char *key, uint64_t size), void *arg)
{
	void *a[2] = { (void *)cb, arg };

	(void)ctx;
	return cs->ops->meta_list(cs->ctx, "tdead/", t_dead_list_cb, a);
}

static void test_gc_dead_meta(void)
{
	static const struct repo_tree_walker dwalker = { .walk = t_walk, .walk_object = t_walk_object,
							 .object_prefixes = prefixes, .dead = t_dead };
	char *dir = tmpdir_new();
	struct backend *be;
	struct scene s;
	struct repo *r;
	struct gc_result res;
	struct gc_opts o = { .walker = &dwalker, .grace_ns = 3600ull * 1000000000ull };
	void *data;
	size_t len;
	uint64_t bytes;

	build_scene(dir, &s);
	r = open_repo(dir);
	be = repo_backend(r);
	CHECK_EQ(repo_meta_put(r, "tdead/g1/a", "aaaa", 4, 0), 0);
	CHECK_EQ(repo_meta_put(r, "tdead/g1/b", "bbbbbb", 6, 0), 0);
	CHECK_EQ(repo_meta_put(r, "tdead/g2/c", "c", 1, 0), 0);
	CHECK_EQ(be->ops->put(be->ctx, "gc/dead/g9.0000000000000001", "CAIRNGC1\0\0\0\0\0\0\0\0", 16, 0), 0);

	o.dry_run = 1;
	CHECK_EQ(gc_repo(r, &o, &res), 0);
	CHECK_EQ(res.dead_volumes, 2);
	CHECK_EQ(res.meta_waiting, 3);
	CHECK_EQ(count_objs(r, "gc/dead/").n, 1);
	o.dry_run = 0;

	/* condemned: every object stays; the orphan mark goes */
	CHECK_EQ(gc_repo(r, &o, &res), 0);
	CHECK_EQ(res.dead_volumes, 2);
	CHECK_EQ(res.meta_waiting, 3);
	CHECK_EQ(res.meta_deleted, 0);
	CHECK(res.next_ns > util_now_ns());
	CHECK_EQ(count_objs(r, "gc/dead/").n, 2);
	CHECK_EQ(count_objs(r, "meta/tdead/").n, 3);
	CHECK_EQ(res.orphans_deleted, 1);
	CHECK_EQ(gc_repo(r, &o, &res), 0);
	CHECK_EQ(res.meta_waiting, 3);
	CHECK_EQ(count_objs(r, "gc/dead/").n, 2);

	/* grace over: objects and marks deleted; the roots' data untouched */
	o.grace_ns = 0;
	bytes = count_objs(r, "meta/tdead/").bytes;
	CHECK_EQ(gc_repo(r, &o, &res), 0);
	CHECK_EQ(res.meta_deleted, 3);
	CHECK_EQ(res.meta_bytes_deleted, bytes);
	CHECK_EQ(count_objs(r, "meta/tdead/").n, 0);
	CHECK_EQ(count_objs(r, "gc/").n, 0);
	CHECK_EQ(repo_meta_get(r, "tdead/g1/a", &data, &len), -ENOENT);
	verify_live(r, &s);
	CHECK_EQ(check_repo(r), 0);
	CHECK_EQ(gc_repo(r, &o, &res), 0);
	CHECK_EQ(res.dead_volumes, 0);
	repo_close(r);
	rm_rf(dir);
	free(dir);
}

int main(void)
{
	RUN(test_index_remove);
	RUN(test_gc_phases);
	RUN(test_gc_concurrent_reuse);
	RUN(test_gc_encrypted);
	RUN(test_idset);
	RUN(test_gc_incomplete);
	RUN(test_gc_dead_meta);
	RUN(test_gc_crash);
	return check_result();
}
