/* test_index.c - the bounded-RAM chunk index: insert, lookup, replace and remove against
 * a reference through many run files and background merges; misses; a damaged run page
 * gives -EIO, never a wrong location; an unwritable directory falls back to $TMPDIR; a
 * repository killed while its index merges reopens with every flushed chunk. The table
 * kept in the state directory: a reopen reads no index segment; dead slots read as
 * absent and are not counted; a pack deleted (or repacked) between opens is never
 * returned; a damaged or foreign manifest, or a damaged or missing run, falls back to
 * the rebuild with right answers; a read-only open beside the writer changes nothing. */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "helpers.h"
#include "index.h"
#include "pack.h"
#include "repo.h"

/* Uniform ids, as SHA-256 outputs are. */
static void mk_id(uint64_t n, struct chunk_id *id)
{
	uint64_t s = n * 0x9e3779b97f4a7c15ull + 0x1234567;

	for (int i = 0; i < 4; i++) {
		uint64_t v = rng_next(&s) * 0x2545f4914f6cdd1dull;

		memcpy(id->b + 8 * i, &v, 8);
	}
}

static struct index_loc mk_loc(uint64_t n, uint32_t gen)
{
	return (struct index_loc){ .pack = (uint32_t)(n % 1000) + gen, .offset = (uint32_t)n * 7,
				   .rec_len = 100 + (uint32_t)(n % 5000), .plain_len = (uint32_t)n % 65536 + 1,
				   .entry = (uint32_t)(n % 4096), .kind = (uint8_t)(n & 1) };
}

static int loc_eq(const struct index_loc *a, const struct index_loc *b)
{
	return a->pack == b->pack && a->offset == b->offset && a->rec_len == b->rec_len &&
	       a->plain_len == b->plain_len && a->entry == b->entry && a->kind == b->kind;
}

#define N 30000u

/* state[i]: 0 absent, else present with generation state[i] - 1 */
static void check_all(struct index *ix, const uint32_t *state, uint64_t n)
{
	size_t present = 0, bad = 0;

	for (uint64_t i = 0; i < n; i++) {
		struct chunk_id id;
		struct index_loc loc, want;
		int rc;

		mk_id(i, &id);
		rc = index_lookup(ix, &id, &loc);
		if (!state[i]) {
			bad += rc != -ENOENT;
			continue;
		}
		present++;
		want = mk_loc(i, state[i] - 1);
		bad += rc != 0 || !loc_eq(&loc, &want);
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(index_count(ix), present);
}

static void ops_with(size_t mem_max)
{
	struct index *ix;
	uint32_t *state = calloc(N + N / 2, sizeof(*state));
	uint64_t s = 42;
	struct chunk_id id;
	struct index_loc loc;
	unsigned max_runs = 0;

	CHECK_EQ(index_open(NULL, &ix), 0);
	index_set_mem_max(ix, mem_max);
	for (uint64_t i = 0; i < N; i++) {
		mk_id(i, &id);
		loc = mk_loc(i, 0);
		CHECK_EQ(index_insert(ix, &id, &loc), 0);
		state[i] = 1;
		if (index_runs(ix) > max_runs)
			max_runs = index_runs(ix);
	}
	check_all(ix, state, N + N / 2);
	/* random replaces, removes, re-inserts, and their errors */
	for (int k = 0; k < 3 * (int)N; k++) {
		uint64_t i = rng_next(&s) % (N + N / 2);
		unsigned op = (unsigned)(rng_next(&s) % 3);

		mk_id(i, &id);
		if (op == 0) {
			loc = mk_loc(i, 0);
			CHECK_EQ(index_insert(ix, &id, &loc), state[i] ? -EEXIST : 0);
			if (!state[i])
				state[i] = 1;
		} else if (op == 1) {
			uint32_t gen = state[i] ? state[i] % 7 + 1 : 1;

			loc = mk_loc(i, gen);
			CHECK_EQ(index_replace(ix, &id, &loc), state[i] ? 0 : -ENOENT);
			if (state[i])
				state[i] = gen + 1;
		} else {
			CHECK_EQ(index_remove(ix, &id), state[i] ? 0 : -ENOENT);
			state[i] = 0;
		}
		if (index_runs(ix) > max_runs)
			max_runs = index_runs(ix);
	}
	check_all(ix, state, N + N / 2);
	if (mem_max < N) {
		CHECK(max_runs >= 1);
		CHECK(max_runs <= 49); /* the background merges lag by at most RUN_CAP runs */
		index_quiesce(ix);
		CHECK(index_runs(ix) <= 16); /* merges keep about log2(N / mem_max) runs */
		check_all(ix, state, N + N / 2);
	} else {
		CHECK_EQ(index_runs(ix), 0);
	}
	/* remove everything: the table empties */
	for (uint64_t i = 0; i < N + N / 2; i++) {
		mk_id(i, &id);
		if (state[i])
			CHECK_EQ(index_remove(ix, &id), 0);
		state[i] = 0;
	}
	check_all(ix, state, N + N / 2);
	index_destroy(ix);
	free(state);
}

static void ops_small_mem(void)
{
	ops_with(100);
}

static void ops_default(void)
{
	ops_with(8192);
}

static void ops_all_in_ram(void)
{
	ops_with(SIZE_MAX);
}

/* The run files are unlinked at once: the directory stays empty. */
static void runs_leave_nothing(void)
{
	char *dir = tmpdir_new();
	struct index *ix;
	struct chunk_id id;
	struct index_loc loc;
	DIR *d;
	struct dirent *e;
	int files = 0;

	CHECK_EQ(index_open(dir, &ix), 0);
	index_set_mem_max(ix, 500);
	for (uint64_t i = 0; i < 5000; i++) {
		mk_id(i, &id);
		loc = mk_loc(i, 0);
		CHECK_EQ(index_insert(ix, &id, &loc), 0);
	}
	CHECK(index_runs(ix) >= 1);
	d = opendir(dir);
	while ((e = readdir(d)) != NULL)
		files += e->d_name[0] != '.';
	closedir(d);
	CHECK_EQ(files, 0);
	index_destroy(ix);
	/* an unusable directory: $TMPDIR instead */
	CHECK_EQ(index_open("/nonexistent/cairn-index-test", &ix), 0);
	index_set_mem_max(ix, 100);
	for (uint64_t i = 0; i < 1000; i++) {
		mk_id(i, &id);
		loc = mk_loc(i, 0);
		CHECK_EQ(index_insert(ix, &id, &loc), 0);
	}
	CHECK(index_runs(ix) >= 1);
	for (uint64_t i = 0; i < 1000; i++) {
		mk_id(i, &id);
		CHECK_EQ(index_lookup(ix, &id, &loc), 0);
	}
	index_destroy(ix);
	rm_rf(dir);
	free(dir);
}

/* Flip a byte in every run file (found through /proc/self/fd): lookups answer right or
 * -EIO, never a wrong location, and the ids on the damaged page do give -EIO. */
static void damaged_page(void)
{
	struct index *ix;
	struct chunk_id id;
	struct index_loc loc, want;
	DIR *d;
	struct dirent *e;
	int damaged = 0;
	size_t ok = 0, eio = 0, wrong = 0;

	CHECK_EQ(index_open(NULL, &ix), 0);
	index_set_mem_max(ix, 4000);
	for (uint64_t i = 0; i < 4000; i++) { /* exactly one run, no mem */
		mk_id(i, &id);
		loc = mk_loc(i, 0);
		CHECK_EQ(index_insert(ix, &id, &loc), 0);
	}
	CHECK_EQ(index_runs(ix), 1);
	d = opendir("/proc/self/fd");
	while ((e = readdir(d)) != NULL) {
		char link[300], target[4096];
		ssize_t n;

		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (strstr(target, "/cairn-index.") && strstr(target, "(deleted)")) {
			int fd = open(link, O_RDWR);
			uint8_t b;

			CHECK(fd >= 0);
			CHECK_EQ(pread(fd, &b, 1, 4096 * 3 + 100), 1);
			b ^= 0x10;
			CHECK_EQ(pwrite(fd, &b, 1, 4096 * 3 + 100), 1);
			close(fd);
			damaged++;
		}
	}
	closedir(d);
	CHECK_EQ(damaged, 1);
	for (uint64_t i = 0; i < 4000; i++) {
		int rc;

		mk_id(i, &id);
		want = mk_loc(i, 0);
		rc = index_lookup(ix, &id, &loc);
		if (rc == 0)
			ok += loc_eq(&loc, &want), wrong += !loc_eq(&loc, &want);
		else if (rc == -EIO)
			eio++;
		else
			wrong++;
	}
	CHECK_EQ(wrong, 0);
	CHECK_EQ(eio, 72); /* one page of records */
	CHECK_EQ(ok, 4000 - 72);
	index_destroy(ix);
}

/* A repository whose writer is killed (SIGKILL) while its index writes and merges runs
 * (and, with ckpt, takes a checkpoint after every run) reopens with every chunk it had
 * flushed, in a state dir left empty of stray run files; its statistics equal those
 * of a rebuild from the segments. */
static void killed_with(int ckpt)
{
	char *dir = tmpdir_new(), *state = tmpdir_new(), repo_dir[4096];
	int pfd[2];
	pid_t pid;
	uint64_t flushed = 0, v;
	struct repo *r;
	struct repo_open_opts o = { .state_root = state };
	struct repo_stats st, st2;
	uint8_t buf[256], out[256];
	size_t len;

	snprintf(repo_dir, sizeof(repo_dir), "%s/repo", dir);
	CHECK_EQ(repo_create(repo_dir, NULL), 0);
	CHECK_EQ(pipe(pfd), 0);
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		if (ckpt)
			setenv("CAIRN_INDEX_CHECKPOINT_S", "0", 1);
		if (repo_open(repo_dir, &o, &r))
			_exit(3);
		for (uint64_t i = 0;; i++) {
			struct chunk_id id;

			fill_random(buf, sizeof(buf), i + 1);
			if (repo_chunk_put(r, CHUNK_DATA, buf, sizeof(buf), &id))
				_exit(4);
			if (i % 5000 == 4999) {
				if (repo_flush(r))
					_exit(5);
				v = i + 1;
				if (write(pfd[1], &v, sizeof(v)) != sizeof(v))
					_exit(6);
			}
		}
	}
	close(pfd[1]);
	while (flushed < 40000 && read(pfd[0], &v, sizeof(v)) == sizeof(v))
		flushed = v;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	while (read(pfd[0], &v, sizeof(v)) == sizeof(v))
		flushed = v;
	close(pfd[0]);
	CHECK(flushed >= 40000);
	CHECK_EQ(repo_open(repo_dir, &o, &r), 0);
	for (uint64_t i = 0; i < flushed; i++) {
		struct chunk_id id;
		int rc;

		fill_random(buf, sizeof(buf), i + 1);
		CHECK_EQ(repo_chunk_put(r, CHUNK_DATA, buf, sizeof(buf), &id), 0); /* dedup */
		rc = repo_chunk_get(r, &id, out, sizeof(out), &len);
		if (rc || len != sizeof(buf) || memcmp(out, buf, len)) {
			CHECK_EQ(rc, 0);
			break;
		}
	}
	CHECK(repo_chunk_stat(r, &(struct chunk_id){ { 1, 2, 3 } }, &(uint32_t){ 0 },
			      &(uint32_t){ 0 }) == -ENOENT);
	repo_get_stats(r, &st);
	if (ckpt)
		CHECK(st.index_packs_kept > 0);
	repo_close(r);
	CHECK_EQ(repo_open(repo_dir, NULL, &r), 0); /* the rebuild from the segments */
	repo_get_stats(r, &st2);
	CHECK_EQ(st2.index_packs_read, st2.packs);
	CHECK_EQ(st2.chunks, st.chunks);
	CHECK_EQ(st2.stored_bytes, st.stored_bytes);
	CHECK_EQ(st2.plain_bytes, st.plain_bytes);
	CHECK_EQ(st2.packs, st.packs);
	repo_close(r);
	{
		DIR *d = opendir(state);
		struct dirent *e;
		int stray = 0;

		while ((e = readdir(d)) != NULL)
			stray += strncmp(e->d_name, "cairn-index.", 12) == 0;
		closedir(d);
		CHECK_EQ(stray, 0);
	}
	rm_rf(dir);
	rm_rf(state);
	free(dir);
	free(state);
}

static void killed_during_merges(void)
{
	killed_with(0);
}

static void killed_after_checkpoints(void)
{
	killed_with(1);
}

/* ---- the kept table, index level ---- */

struct fake_owner {
	uint32_t nslots;
	uint8_t dead[1100];
};

static int fake_packs(void *arg, struct index_pack **out, uint32_t *n)
{
	struct fake_owner *fo = arg;
	struct index_pack *p = calloc(fo->nslots, sizeof(*p));

	for (uint32_t s = 0; s < fo->nslots; s++) {
		p[s].id[0] = (uint8_t)s;
		p[s].id[1] = (uint8_t)(s >> 8);
		p[s].nents = 7;
		p[s].state = fo->dead[s] ? INDEX_PACK_GONE : INDEX_PACK_STORED;
	}
	*out = p;
	*n = fo->nslots;
	return 0;
}

static int count_files(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += !strncmp(e->d_name, prefix, strlen(prefix));
	closedir(d);
	return n;
}

/* A writer's table survives destroy and open: same answers and totals, slots as the
 * owner said; a dead slot's entries read as absent and leave the totals; a second
 * writer in the same directory only reads it. */
static void kept_table(void)
{
	char *dir = tmpdir_new();
	struct fake_owner fo = { .nslots = 1000 };
	struct index_persist p = { .dir = dir, .writer = 1,
				   .owner = { .packs = fake_packs, .arg = &fo } };
	struct index *ix, *ix2;
	struct index_pack *packs;
	struct index_totals t0, t1;
	uint32_t np, *state = calloc(N, sizeof(*state));
	struct chunk_id id;
	struct index_loc loc;
	uint64_t s = 9;
	int loaded;

	memset(p.owner_id, 0xab, sizeof(p.owner_id));
	CHECK_EQ(index_open_persisted(&p, &ix, &packs, &np, &loaded), 0);
	CHECK_EQ(loaded, 0);
	index_set_mem_max(ix, 700);
	for (uint64_t i = 0; i < N; i++) {
		mk_id(i, &id);
		loc = mk_loc(i, 0);
		CHECK_EQ(index_insert(ix, &id, &loc), 0);
		state[i] = 1;
	}
	for (int k = 0; k < 3000; k++) { /* some removals and replacements */
		uint64_t i = rng_next(&s) % N;

		mk_id(i, &id);
		if (k % 2 && state[i]) {
			CHECK_EQ(index_remove(ix, &id), 0);
			state[i] = 0;
		} else if (state[i]) {
			loc = mk_loc(i, 3);
			CHECK_EQ(index_replace(ix, &id, &loc), 0);
			state[i] = 4;
		}
	}
	check_all(ix, state, N);
	index_get_totals(ix, &t0);
	CHECK_EQ(index_checkpoint(ix, 1), 0);
	CHECK_EQ(count_files(dir, "manifest"), 1);
	/* another writer in the same directory: a reader of the same table */
	CHECK_EQ(index_open_persisted(&p, &ix2, &packs, &np, &loaded), 0);
	CHECK_EQ(loaded, 1);
	CHECK_EQ(np, 1000);
	free(packs);
	check_all(ix2, state, N);
	index_destroy(ix2);
	index_destroy(ix);

	CHECK_EQ(index_open_persisted(&p, &ix, &packs, &np, &loaded), 0);
	CHECK_EQ(loaded, 1);
	CHECK_EQ(np, 1000);
	CHECK(np == 1000 && packs[5].state == INDEX_PACK_STORED && packs[5].id[0] == 5 &&
	      packs[5].nents == 7);
	free(packs);
	index_get_totals(ix, &t1);
	CHECK(!memcmp(&t0, &t1, sizeof(t0)));
	check_all(ix, state, N);
	/* slot 17 goes: its entries read as absent, and leave the totals at settle */
	index_set_dead(ix, 17);
	CHECK_EQ(index_settle(ix), 0);
	for (uint64_t i = 0; i < N; i++) {
		struct index_loc want;

		if (!state[i])
			continue;
		want = mk_loc(i, state[i] - 1);
		if (want.pack == 17)
			state[i] = 0;
	}
	check_all(ix, state, N);
	/* an entry of the dead slot can be inserted again, elsewhere */
	for (uint64_t i = 0; i < N; i++) {
		if (mk_loc(i, 0).pack != 17)
			continue;
		mk_id(i, &id);
		loc = mk_loc(i, 1);
		CHECK_EQ(index_insert(ix, &id, &loc), 0);
		state[i] = 2;
		break;
	}
	check_all(ix, state, N);
	fo.dead[17] = 1;
	CHECK_EQ(index_checkpoint(ix, 1), 0);
	index_quiesce(ix);
	index_destroy(ix);
	/* what the manifest names is all there is */
	CHECK_EQ(index_open_persisted(&p, &ix, &packs, &np, &loaded), 0);
	CHECK_EQ(loaded, 1);
	CHECK(np == 1000 && packs[17].state == INDEX_PACK_GONE);
	free(packs);
	check_all(ix, state, N);
	CHECK_EQ(count_files(dir, "run-"), (int)index_runs(ix));
	CHECK_EQ(count_files(dir, "cairn-index."), 0);
	index_destroy(ix);
	/* another repository's directory: unsound, and an empty table */
	p.owner_id[3] ^= 1;
	CHECK_EQ(index_open_persisted(&p, &ix, &packs, &np, &loaded), 0);
	CHECK_EQ(loaded, 0);
	CHECK_EQ(index_count(ix), 0);
	CHECK_EQ(count_files(dir, "manifest"), 0); /* a writer removes it first */
	index_destroy(ix);
	free(state);
	rm_rf(dir);
	free(dir);
}

/* ---- the kept table through the repository ---- */

#define CH 256u        /* chunk bytes */
#define PER_PACK 400u  /* chunks per pack (a flush seals one) */

struct corpus {
	uint64_t n;
	struct chunk_id *ids;
	uint8_t *absent;   /* 1: must read as absent */
};

static void open_st(const char *repo_dir, const char *state, int ro, struct repo **r)
{
	struct repo_open_opts o = { .state_root = state, .read_only = ro };
	int rc = repo_open(repo_dir, &o, r);

	CHECK_EQ(rc, 0);
	if (rc)
		exit(1);
}

static void put_range(struct repo *r, struct corpus *c, uint64_t from, uint64_t to)
{
	uint8_t buf[CH];

	for (uint64_t i = from; i < to; i++) {
		fill_random(buf, sizeof(buf), i + 1);
		CHECK_EQ(repo_chunk_put(r, CHUNK_DATA, buf, sizeof(buf), &c->ids[i]), 0);
		if (i % PER_PACK == PER_PACK - 1)
			CHECK_EQ(repo_flush(r), 0);
	}
	CHECK_EQ(repo_flush(r), 0);
	if (to > c->n)
		c->n = to;
}

/* Every chunk reads back right, or is absent (-ENOENT, never -EIO) where it must be. */
static void check_corpus(struct repo *r, const struct corpus *c)
{
	uint8_t buf[CH], out[CH];
	size_t len, bad = 0, present = 0;
	struct repo_stats st;

	for (uint64_t i = 0; i < c->n; i++) {
		int rc;

		fill_random(buf, sizeof(buf), i + 1);
		rc = repo_chunk_get(r, &c->ids[i], out, sizeof(out), &len);
		if (c->absent[i]) {
			bad += rc != -ENOENT || repo_chunk_has(r, &c->ids[i]) != 0;
			continue;
		}
		present++;
		bad += rc != 0 || len != CH || memcmp(buf, out, CH);
	}
	CHECK_EQ(bad, 0);
	repo_get_stats(r, &st);
	CHECK_EQ(st.chunks, present);
	CHECK_EQ(st.stored_bytes / present, st.stored_bytes / st.chunks);
}

static void stats_of(struct repo *r, struct repo_stats *st)
{
	repo_get_stats(r, st);
}

/* The pack holding chunk i: its key. */
static void pack_of(struct repo *r, const struct corpus *c, uint64_t i, char key[PACK_KEY_LEN])
{
	uint32_t slot, entry, nents;
	uint8_t pid[PACK_ID_LEN];

	CHECK_EQ(repo_chunk_locate(r, &c->ids[i], &slot, &entry), 0);
	CHECK_EQ(repo_pack_get(r, slot, pid, &nents), 0);
	pack_key(pid, key);
}

/* Delete pack key and its segment (as gc does, from another process); the chunks it
 * held that are nowhere else go absent in c (only_there: all of them). */
static void delete_pack(struct repo *r, struct corpus *c, const char *key, int only_there)
{
	struct backend *be = repo_backend(r);
	struct pack_entry *ents;
	uint8_t pid[PACK_ID_LEN];
	char seg[PACK_KEY_LEN];
	uint32_t n;
	void *obj;
	size_t len;

	CHECK_EQ(be->ops->get(be->ctx, key, &obj, &len), 0);
	CHECK_EQ(pack_read_trailer(be, NULL, key, len, &ents, &n), 0);
	free(obj);
	for (uint32_t e = 0; only_there && e < n; e++)
		for (uint64_t i = 0; i < c->n; i++)
			if (!memcmp(&c->ids[i], &ents[e].id, CHUNK_ID_LEN))
				c->absent[i] = 1;
	free(ents);
	CHECK_EQ(pack_id_from_key(key, pid), 0);
	index_segment_key(pid, seg);
	CHECK_EQ(be->ops->del(be->ctx, seg), 0);
	CHECK_EQ(be->ops->del(be->ctx, key), 0);
}

/* Copy every record of pack key into a new pack with its segment (a repack by gc in
 * another process); the new key goes to out. */
static void copy_pack(struct repo *r, const char *key, char out[PACK_KEY_LEN])
{
	struct backend *be = repo_backend(r);
	struct pack_builder pb;
	struct pack_entry *ents;
	char seg[PACK_KEY_LEN];
	uint32_t n;
	uint8_t *obj;
	void *sbuf;
	size_t len, slen;

	CHECK_EQ(be->ops->get(be->ctx, key, (void **)&obj, &len), 0);
	CHECK_EQ(pack_read_trailer(be, NULL, key, len, &ents, &n), 0);
	CHECK_EQ(pack_builder_init(&pb), 0);
	for (uint32_t e = 0; e < n; e++) {
		uint64_t off;

		pack_builder_append(&pb, obj + ents[e].offset, ents[e].rec_len, ents[e].kind,
				    &ents[e].id, ents[e].plain_len, &off);
	}
	CHECK_EQ(pack_builder_finish(&pb, NULL, &len), 0);
	pack_key(pb.id, out);
	CHECK_EQ(be->ops->put(be->ctx, out, pb.buf, len, 0), 0);
	CHECK_EQ(index_segment_encode(NULL, pb.id, pb.ents, pb.n, &sbuf, &slen), 0);
	index_segment_key(pb.id, seg);
	CHECK_EQ(be->ops->put(be->ctx, seg, sbuf, slen, 0), 0);
	free(sbuf);
	free(ents);
	free(obj);
	pack_builder_free(&pb);
}

struct scene {
	char *dir, *state, repo_dir[4096], ixdir[4200];
	struct corpus c;
};

static void scene_new(struct scene *s, uint64_t n)
{
	struct repo *r;

	memset(s, 0, sizeof(*s));
	s->dir = tmpdir_new();
	s->state = tmpdir_new();
	snprintf(s->repo_dir, sizeof(s->repo_dir), "%s/repo", s->dir);
	CHECK_EQ(repo_create(s->repo_dir, NULL), 0);
	s->c.ids = calloc(4 * n, sizeof(*s->c.ids));
	s->c.absent = calloc(4 * n, 1);
	open_st(s->repo_dir, s->state, 0, &r);
	snprintf(s->ixdir, sizeof(s->ixdir), "%s/%s/index", s->state, repo_id_hex(r));
	put_range(r, &s->c, 0, n);
	repo_close(r);
}

static void scene_free(struct scene *s)
{
	rm_rf(s->dir);
	rm_rf(s->state);
	free(s->dir);
	free(s->state);
	free(s->c.ids);
	free(s->c.absent);
}

/* A reopen reads no segment; chunks put since are kept at the next. */
static void reopen_kept(void)
{
	struct scene s;
	struct repo *r;
	struct repo_stats st;

	scene_new(&s, 20 * PER_PACK);
	open_st(s.repo_dir, s.state, 0, &r);
	stats_of(r, &st);
	CHECK_EQ(st.index_packs_read, 0);
	CHECK_EQ(st.index_packs_kept, 20);
	CHECK_EQ(st.packs, 20);
	check_corpus(r, &s.c);
	put_range(r, &s.c, s.c.n, s.c.n + 3 * PER_PACK);
	repo_close(r);
	open_st(s.repo_dir, s.state, 0, &r);
	stats_of(r, &st);
	CHECK_EQ(st.index_packs_read, 0);
	CHECK_EQ(st.index_packs_kept, 23);
	check_corpus(r, &s.c);
	repo_close(r);
	/* no state directory: the rebuild, as before */
	CHECK_EQ(repo_open(s.repo_dir, NULL, &r), 0);
	stats_of(r, &st);
	CHECK_EQ(st.index_packs_read, 23);
	check_corpus(r, &s.c);
	repo_close(r);
	scene_free(&s);
}

/* Packs deleted between opens are never returned; a repacked chunk is found in its new
 * pack; a kept pack with the other copy of a gone pack's chunk is read again. */
static void packs_gone(void)
{
	struct scene s;
	struct repo *r;
	struct repo_stats st;
	char gone[PACK_KEY_LEN], moved[PACK_KEY_LEN], copy[PACK_KEY_LEN], copy2[PACK_KEY_LEN];
	char kept[PACK_KEY_LEN];

	scene_new(&s, 10 * PER_PACK);
	open_st(s.repo_dir, s.state, 0, &r);
	pack_of(r, &s.c, 3 * PER_PACK, gone);
	pack_of(r, &s.c, 5 * PER_PACK, moved);
	pack_of(r, &s.c, 7 * PER_PACK, kept);
	repo_close(r);
	/* another process's gc: one pack deleted, one repacked then deleted */
	open_st(s.repo_dir, s.state, 1, &r); /* a reader: for the backend only */
	delete_pack(r, &s.c, gone, 1);
	copy_pack(r, moved, copy);
	delete_pack(r, &s.c, moved, 0);
	repo_close(r);
	open_st(s.repo_dir, s.state, 0, &r);
	stats_of(r, &st);
	CHECK_EQ(st.index_packs_kept, 8);
	CHECK_EQ(st.index_packs_read, 1); /* the copy */
	CHECK_EQ(st.packs, 9);
	check_corpus(r, &s.c);
	/* a copy of a kept pack: the index moves to the newer copy */
	repo_close(r);
	open_st(s.repo_dir, s.state, 1, &r);
	copy_pack(r, kept, copy2);
	repo_close(r);
	open_st(s.repo_dir, s.state, 0, &r);
	stats_of(r, &st);
	CHECK_EQ(st.index_packs_read, 1);
	check_corpus(r, &s.c);
	repo_close(r);
	/* the copy goes: the original (flagged as holding shadowed copies) is read again */
	open_st(s.repo_dir, s.state, 1, &r);
	delete_pack(r, &s.c, copy2, 0);
	repo_close(r);
	open_st(s.repo_dir, s.state, 0, &r);
	stats_of(r, &st);
	CHECK_EQ(st.index_packs_read, 1);
	CHECK_EQ(st.index_packs_kept, 9);
	check_corpus(r, &s.c);
	/* and puts of absent chunks store them again */
	for (uint64_t i = 0; i < s.c.n; i++) {
		uint8_t buf[CH];

		if (!s.c.absent[i])
			continue;
		fill_random(buf, sizeof(buf), i + 1);
		CHECK_EQ(repo_chunk_put(r, CHUNK_DATA, buf, sizeof(buf), &s.c.ids[i]), 0);
		s.c.absent[i] = 0;
	}
	repo_close(r);
	open_st(s.repo_dir, s.state, 0, &r);
	stats_of(r, &st);
	CHECK_EQ(st.index_packs_read, 0);
	check_corpus(r, &s.c);
	repo_close(r);
	scene_free(&s);
}

/* Flip one byte of file path at off (from the end when negative). */
static void flip(const char *path, long off)
{
	int fd = open(path, O_RDWR);
	struct stat sb;
	uint8_t b;

	CHECK(fd >= 0);
	CHECK_EQ(fstat(fd, &sb), 0);
	if (off < 0)
		off += sb.st_size;
	CHECK_EQ(pread(fd, &b, 1, off), 1);
	b ^= 0x20;
	CHECK_EQ(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void first_run(const char *dir, char *out, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	*out = 0;
	while (d && (e = readdir(d)) != NULL)
		if (!strncmp(e->d_name, "run-", 4) && !*out)
			snprintf(out, len, "%s/%s", dir, e->d_name);
	if (d)
		closedir(d);
	CHECK(*out != 0);
}

/* Reopen after damage: the rebuild (every pack read), right answers; then kept again. */
static void reopen_rebuilds(struct scene *s, unsigned npacks)
{
	struct repo *r;
	struct repo_stats st;

	open_st(s->repo_dir, s->state, 0, &r);
	stats_of(r, &st);
	CHECK_EQ(st.index_packs_read, npacks);
	CHECK_EQ(st.index_packs_kept, 0);
	check_corpus(r, &s->c);
	repo_close(r);
	open_st(s->repo_dir, s->state, 0, &r);
	stats_of(r, &st);
	CHECK_EQ(st.index_packs_read, 0);
	check_corpus(r, &s->c);
	repo_close(r);
}

static void damage_falls_back(void)
{
	struct scene s, other;
	char path[4400], cmd[20000];

	scene_new(&s, 12 * PER_PACK);
	/* the manifest */
	snprintf(path, sizeof(path), "%s/manifest", s.ixdir);
	flip(path, 100);
	reopen_rebuilds(&s, 12);
	flip(path, -3); /* its checksum */
	reopen_rebuilds(&s, 12);
	/* a run's page, its trailer, a run cut short, a run missing */
	first_run(s.ixdir, path, sizeof(path));
	flip(path, 5000);
	reopen_rebuilds(&s, 12);
	first_run(s.ixdir, path, sizeof(path));
	flip(path, -10);
	reopen_rebuilds(&s, 12);
	first_run(s.ixdir, path, sizeof(path));
	CHECK_EQ(truncate(path, 4096), 0);
	reopen_rebuilds(&s, 12);
	first_run(s.ixdir, path, sizeof(path));
	CHECK_EQ(unlink(path), 0);
	reopen_rebuilds(&s, 12);
	/* another repository's table in this one's place */
	scene_new(&other, 2 * PER_PACK);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'", s.ixdir, other.ixdir, s.ixdir);
	CHECK_EQ(system(cmd), 0);
	reopen_rebuilds(&s, 12);
	scene_free(&other);
	scene_free(&s);
}

/* A read-only open beside the writer uses the kept table and changes nothing in its
 * directory; a reader's refresh still finds what the writer stores. */
static void reader_beside_writer(void)
{
	struct scene s;
	struct repo *w, *rd;
	struct repo_stats st;
	char cmd[32000], before[4400], after[4400];
	uint64_t n0;
	unsigned added;

	scene_new(&s, 6 * PER_PACK);
	open_st(s.repo_dir, s.state, 0, &w);
	put_range(w, &s.c, s.c.n, s.c.n + PER_PACK); /* not in the kept table yet */
	snprintf(before, sizeof(before), "%s/before", s.dir);
	snprintf(after, sizeof(after), "%s/after", s.dir);
	snprintf(cmd, sizeof(cmd), "cd '%s' && ls -l --time-style=full-iso > '%s' && md5sum manifest >> '%s'",
		 s.ixdir, before, before);
	CHECK_EQ(system(cmd), 0);
	open_st(s.repo_dir, s.state, 1, &rd);
	stats_of(rd, &st);
	CHECK_EQ(st.index_packs_kept, 6);
	CHECK_EQ(st.index_packs_read, 1);
	check_corpus(rd, &s.c);
	n0 = s.c.n;
	put_range(w, &s.c, s.c.n, s.c.n + 2 * PER_PACK);
	CHECK_EQ(repo_refresh(rd, &added), 0);
	CHECK_EQ(added, 2);
	check_corpus(rd, &s.c);
	repo_close(rd);
	snprintf(cmd, sizeof(cmd), "cd '%s' && ls -l --time-style=full-iso > '%s' && md5sum manifest >> '%s' && cmp -s '%s' '%s'",
		 s.ixdir, after, after, before, after);
	CHECK_EQ(system(cmd), 0);
	CHECK(n0 < s.c.n);
	repo_close(w);
	open_st(s.repo_dir, s.state, 0, &w);
	stats_of(w, &st);
	CHECK_EQ(st.index_packs_kept, 9);
	CHECK_EQ(st.index_packs_read, 0);
	check_corpus(w, &s.c);
	repo_close(w);
	scene_free(&s);
}

int main(void)
{
	RUN(ops_small_mem);
	RUN(ops_default);
	RUN(ops_all_in_ram);
	RUN(runs_leave_nothing);
	RUN(damaged_page);
	RUN(killed_during_merges);
	RUN(killed_after_checkpoints);
	RUN(kept_table);
	RUN(reopen_kept);
	RUN(packs_gone);
	RUN(damage_falls_back);
	RUN(reader_beside_writer);
	return check_result();
}
