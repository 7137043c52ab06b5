/* index.c - the chunk index: a bounded-RAM table (in-memory filter, sorted runs in
 * local files, a small table of recent changes), its lookups and changes, and the
 * index segments. Run files, merges and the table kept across opens in a local
 * directory: index_persist.c (shared state: index_int.h).
 *
 * ---- Index segment "index/<32 hex pack id>", written once after its pack is durable.
 * All integers little-endian:
 *   off len  field
 *     0   8  magic      "CAIRNIDX"
 *     8   4  version    1
 *    12   4  count      entries that follow
 *    16  16  pack_id    the pack this segment describes
 *    32      count entries of 56 bytes, encoded as in the pack trailer (pack.c):
 *            id[32], kind u8, reserved[3], rec_len u32, offset u64, plain_len u32, reserved u32
 *   end   8  checksum   XXH3_64bits of every byte before it
 *
 * Encrypted repository: the object is these bytes sealed under the meta key with the
 * segment's object key "index/<32 hex>" as aad (envelope in aead.h).
 * A missing or damaged segment is rebuilt from its pack's trailer at open (repo.c).
 *
 * ---- The table (RAM: a few bytes per chunk)
 * Two parts, newest first; a lookup stops at the first that knows the id:
 *  1. mem: an open-addressing hash table (linear probing, 56 bytes a slot) of at most
 *     mem_max (8192) recent inserts, replacements and removals (tombstones).
 *     When full it is written as a new run (in the changing call: a sort and ~0.5 MB
 *     written; it waits only if RUN_CAP runs are waiting for merges).
 *  2. runs: sorted files, newest first. A background thread merges adjacent runs: the
 *     newest pair whose older run holds less than twice the newer (a binary counter:
 *     about log2(n/8192) runs, each record rewritten about log2(n/8192) times). While it
 *     merges large runs it interleaves the merges of newer small ones (so small runs
 *     never pile up behind a large merge), and it swaps a finished merge in under the
 *     table's mutex. A merge into the oldest run drops tombstones and the records of dead
 *     pack slots. RAM per run, built while the run is written:
 *     - a blocked Bloom filter of its records (tombstones included: they must shadow
 *       older runs): 512-bit blocks, 8 bits set per id, 10 bits per record (1.25 bytes;
 *       about 1% false positives). Ids are SHA-256/HMAC outputs: the block comes from
 *       id bytes 8..11 and the bits from bytes 16..31. "In no filter" answers a dedup
 *       miss without IO, and a hit reads about one page.
 *     - one 8-byte fence per 4 KiB page (0.11 byte per record).
 *  Dead pack slots (a byte of flags per slot): an entry naming one reads as absent.
 *  Totals (chunks, tree chunks, record and plain bytes of the live entries) are kept
 *  with every change, so the repository's statistics need no scan.
 *
 * Run file. A sequence of 4096-byte pages, read with pread (the page cache caches;
 * nothing is mapped, so the process RSS stays small):
 *   off  len  field
 *     0  4032 72 records of 56 bytes, sorted by id across the whole file (unused
 *             records of the last page are zero)
 *  4032    56 zero
 *  4088     8 checksum  XXH3_64bits of bytes 0..4087 of the page
 * Record (little-endian):
 *     0   32 id
 *    32    4 pack       pack slot
 *    36    4 offset
 *    40    4 rec_len
 *    44    4 plain_len
 *    48    4 entry      ordinal in the pack's trailer
 *    52    1 kind
 *    53    1 flags      bit 0: tombstone (the id was removed; older runs are shadowed)
 *    54    2 zero
 * A page whose checksum fails makes the lookups that need it return -EIO: never a wrong
 * location. Unpersisted runs ("cairn-index.XXXXXX") are unlinked at creation; persisted
 * runs add a footer (index_persist.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "index_int.h"
#include "le.h"
#include "log.h"
#include "util.h"

static const uint8_t seg_magic[8] = { 'C', 'A', 'I', 'R', 'N', 'I', 'D', 'X' };
#define SEG_VERSION 1
#define SEG_HDR_LEN 32u

/* ---- filter ---- */

static uint64_t *filter_block(uint64_t *f, uint64_t nb, const uint8_t *id)
{
	return f + 8 * (((uint64_t)le_get32(id + 8) * nb) >> 32);
}

void index_filter_add(uint64_t *f, uint64_t nb, const uint8_t *id)
{
	uint64_t *blk = filter_block(f, nb, id);

	for (int k = 0; k < 8; k++) {
		unsigned v = le_get16(id + 16 + 2 * k) & 511u;

		blk[v >> 6] |= 1ull << (v & 63);
	}
}

static int filter_maybe(const struct run *r, const uint8_t *id)
{
	const uint64_t *blk = filter_block(r->filter, r->fblocks, id);

	for (int k = 0; k < 8; k++) {
		unsigned v = le_get16(id + 16 + 2 * k) & 511u;

		if (!(blk[v >> 6] & (1ull << (v & 63))))
			return 0;
	}
	return 1;
}

/* ---- mem ---- */

static size_t id_hash(const struct chunk_id *id)
{
	uint64_t h;

	memcpy(&h, id->b, sizeof(h));
	return (size_t)h;
}

static int mem_alloc(struct index *ix, size_t cap)
{
	struct slot *s = malloc(cap * sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++)
		s[i].loc.pack = EMPTY;
	ix->slots = s;
	ix->mask = cap - 1;
	return 0;
}

static struct slot *mem_find(const struct index *ix, const struct chunk_id *id)
{
	for (size_t i = id_hash(id) & ix->mask;; i = (i + 1) & ix->mask) {
		struct slot *s = &ix->slots[i];

		if (s->loc.pack == EMPTY || memcmp(s->id.b, id->b, CHUNK_ID_LEN) == 0)
			return s;
	}
}

static int mem_grow(struct index *ix)
{
	struct slot *old = ix->slots;
	size_t old_cap = ix->mask + 1;
	int rc;

	rc = mem_alloc(ix, old_cap * 2);
	if (rc)
		return rc;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].loc.pack != EMPTY)
			*mem_find(ix, &old[i].id) = old[i];
	free(old);
	return 0;
}

/* Set id's entry in mem (loc->pack may be TOMB). */
static int mem_put(struct index *ix, const struct chunk_id *id, const struct index_loc *loc)
{
	struct slot *s = mem_find(ix, id);
	int rc;

	if (s->loc.pack == EMPTY) {
		if ((ix->used + 1) * 10 > (ix->mask + 1) * 7) {
			rc = mem_grow(ix);
			if (rc)
				return rc;
			s = mem_find(ix, id);
		}
		ix->used++;
	}
	s->id = *id;
	s->loc = *loc;
	return 0;
}

/* ---- slot flags and totals ---- */

/* Set flag f of slot s (caller's thread). */
static void slot_flag(struct index *ix, uint32_t s, uint8_t f)
{
	if (s >= ix->nsflags) {
		uint32_t n = ix->nsflags ? ix->nsflags : 64;
		uint8_t *p;

		while (n <= s)
			n *= 2;
		pthread_mutex_lock(&ix->mu);
		p = realloc(ix->sflags, n);
		if (p) {
			memset(p + ix->nsflags, 0, n - ix->nsflags);
			ix->sflags = p;
			ix->nsflags = n;
		}
		pthread_mutex_unlock(&ix->mu);
		if (!p) {
			log_warn("index", "no memory for the flags of pack slot %u", s);
			return;
		}
	}
	ix->sflags[s] |= f; /* a byte store; the thread reads its copies under mu */
}

void index_tot_add(struct index_totals *t, const struct index_loc *l, int sign)
{
	t->chunks += (uint64_t)(int64_t)sign;
	t->tree_chunks += l->kind == CHUNK_TREE ? (uint64_t)(int64_t)sign : 0;
	t->rec_bytes += (uint64_t)((int64_t)sign * l->rec_len);
	t->plain_bytes += (uint64_t)((int64_t)sign * l->plain_len);
}

/* ---- run records and lookups ---- */

void index_rec_encode(uint8_t *p, const uint8_t *id, const struct index_loc *loc, int tomb)
{
	memcpy(p, id, CHUNK_ID_LEN);
	le_put32(p + 32, loc->pack);
	le_put32(p + 36, loc->offset);
	le_put32(p + 40, loc->rec_len);
	le_put32(p + 44, loc->plain_len);
	le_put32(p + 48, loc->entry);
	p[52] = loc->kind;
	p[53] = tomb ? FLAG_TOMB : 0;
	p[54] = p[55] = 0;
}

void index_rec_decode(const uint8_t *p, struct index_loc *loc)
{
	memset(loc, 0, sizeof(*loc));
	loc->pack = le_get32(p + 32);
	loc->offset = le_get32(p + 36);
	loc->rec_len = le_get32(p + 40);
	loc->plain_len = le_get32(p + 44);
	loc->entry = le_get32(p + 48);
	loc->kind = p[52];
}

static unsigned page_recs(const struct run *r, uint64_t pg)
{
	return pg + 1 < r->pages ? PAGE_RECS : (unsigned)(r->n - PAGE_RECS * (r->pages - 1));
}

int index_read_pages(const struct run *r, uint64_t pg, uint64_t cnt, uint8_t *buf)
{
	size_t len = (size_t)cnt * PAGE_LEN;
	ssize_t got = pread(r->fd, buf, len, (off_t)(pg * PAGE_LEN));

	if (got < 0)
		return -errno;
	if ((size_t)got != len)
		return -EIO;
	for (uint64_t i = 0; i < cnt; i++) {
		const uint8_t *p = buf + i * PAGE_LEN;

		if (XXH3_64bits(p, PAGE_SUM_OFF) != le_get64(p + PAGE_SUM_OFF)) {
			log_error("index", "index table page %llu damaged (checksum)",
				  (unsigned long long)(pg + i));
			return -EIO;
		}
	}
	return 0;
}

/* 0 and *loc, *tomb if r holds id; -ENOENT if not; -EIO if a page is damaged. */
static int run_find(const struct run *r, const struct chunk_id *id, struct index_loc *loc,
		    int *tomb)
{
	uint8_t page[PAGE_LEN];
	uint64_t p = be64(id->b), lo = 0, hi = r->pages, pg;
	int rc;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (r->fence[mid] <= p)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -ENOENT;
	for (pg = lo - 1;; pg--) {
		unsigned a = 0, b = page_recs(r, pg);

		rc = index_read_pages(r, pg, 1, page);
		if (rc)
			return rc;
		while (a < b) {
			unsigned m = (a + b) / 2;
			int c = memcmp(page + m * REC_LEN, id->b, CHUNK_ID_LEN);

			if (c == 0) {
				index_rec_decode(page + m * REC_LEN, loc);
				*tomb = (page[m * REC_LEN + 53] & FLAG_TOMB) != 0;
				return 0;
			}
			if (c < 0)
				a = m + 1;
			else
				b = m;
		}
		/* an id sharing its first 8 bytes with this page's first may be earlier */
		if (pg == 0 || r->fence[pg] != p || a != 0)
			return -ENOENT;
	}
}

/* ---- interface ---- */

/* 1 if a run file can be created in dir. */
static int dir_writable(const char *dir)
{
	char path[PATH_MAX];
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/cairn-index.XXXXXX", dir) >= sizeof(path))
		return 0;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return 0;
	unlink(path);
	close(fd);
	return 1;
}

const char *index_tmp_dir(void)
{
	const char *tmp = getenv("TMPDIR");

	return tmp && *tmp ? tmp : "/tmp";
}

int index_alloc(struct index **out)
{
	struct index *ix = calloc(1, sizeof(*ix));
	int rc;

	if (!ix)
		return -ENOMEM;
	ix->lock_fd = -1;
	ix->mem_max = MEM_MAX_DEFAULT;
	ix->ckpt_interval = getenv("CAIRN_INDEX_CHECKPOINT_S") ?
			    (unsigned)atoi(getenv("CAIRN_INDEX_CHECKPOINT_S")) : CKPT_INTERVAL_S;
	ix->next_seq = 1;
	rc = mem_alloc(ix, MEM_CAP_DEFAULT); /* its full size: growing would leave garbage */
	if (rc) {
		free(ix);
		return rc;
	}
	pthread_mutex_init(&ix->mu, NULL);
	pthread_cond_init(&ix->cond, NULL);
	*out = ix;
	return 0;
}

int index_open(const char *dir, struct index **out)
{
	struct index *ix;
	int rc;

	rc = index_alloc(&ix);
	if (rc)
		return rc;
	if (!dir || !*dir || !dir_writable(dir))
		dir = index_tmp_dir();
	if ((size_t)snprintf(ix->dir, sizeof(ix->dir), "%s", dir) >= sizeof(ix->dir)) {
		index_destroy(ix);
		return -ENAMETOOLONG;
	}
	index_bg_start(ix);
	*out = ix;
	return 0;
}

int index_create(size_t expect, struct index **out)
{
	(void)expect;
	return index_open(NULL, out);
}

void index_set_dead(struct index *ix, uint32_t slot)
{
	if (slot_dead(ix, slot))
		return;
	slot_flag(ix, slot, SF_DEAD);
	ix->need_recount = 1;
}

void index_set_mem_max(struct index *ix, size_t n)
{
	ix->mem_max = n ? n : 1;
}

unsigned index_runs(const struct index *cix)
{
	struct index *ix = (struct index *)cix; /* for mu */
	unsigned n;

	pthread_mutex_lock(&ix->mu);
	n = ix->nruns;
	pthread_mutex_unlock(&ix->mu);
	return n;
}

void index_set_inline_merges(struct index *ix, int on)
{
	ix->inline_merges = on;
}

void index_set_checkpoint_interval(struct index *ix, unsigned seconds)
{
	ix->ckpt_interval = seconds;
}

/* 0 and *loc (whose slot may be dead), -ENOENT, or -EIO. */
static int find(const struct index *cix, const struct chunk_id *id, struct index_loc *loc)
{
	struct index *ix = (struct index *)cix; /* for mu */
	const struct slot *s;
	int rc = -ENOENT, tomb = 0;

	s = mem_find(ix, id);
	if (s->loc.pack != EMPTY) {
		if (s->loc.pack == TOMB)
			return -ENOENT;
		*loc = s->loc;
		return 0;
	}
	pthread_mutex_lock(&ix->mu);
	for (unsigned r = ix->nruns; r-- > 0;) {
		if (!filter_maybe(&ix->runs[r], id->b))
			continue;
		rc = run_find(&ix->runs[r], id, loc, &tomb);
		if (rc == 0) {
			rc = tomb ? -ENOENT : 0;
			break;
		}
		if (rc != -ENOENT)
			break;
	}
	pthread_mutex_unlock(&ix->mu);
	return rc;
}

int index_lookup(const struct index *ix, const struct chunk_id *id, struct index_loc *loc)
{
	int rc = find(ix, id, loc);

	return rc == 0 && slot_dead(ix, loc->pack) ? -ENOENT : rc;
}

/* After a change to mem: write it out when full (a failure keeps mem, which grows), and
 * take a checkpoint when one is due. */
static void after_change(struct index *ix)
{
	int rc;

	if (ix->used < ix->mem_max)
		return;
	rc = index_mem_flush(ix);
	malloc_trim(0); /* the sort's and writer's buffers go back to the system */
	if (rc)
		ix->mem_max = ix->used * 2; /* do not retry at every change */
	if (rc && !ix->warned) {
		ix->warned = 1;
		log_warn("index", "writing an index table in %s failed: %s; keeping it in RAM",
			 ix->dir, strerror(-rc));
	}
	if (!rc && ix->ckpt_on && now_s() - ix->last_ckpt >= ix->ckpt_interval) {
		rc = index_checkpoint_take(ix, 0);
		if (rc)
			log_warn("index", "index checkpoint failed: %s", strerror(-rc));
	}
}

int index_insert(struct index *ix, const struct chunk_id *id, const struct index_loc *loc)
{
	struct index_loc old;
	int rc;

	if (loc->pack >= TOMB)
		return -EINVAL;
	rc = index_lookup(ix, id, &old);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	rc = mem_put(ix, id, loc);
	if (rc)
		return rc;
	index_tot_add(&ix->tot, loc, 1);
	after_change(ix);
	return 0;
}

int index_load(struct index *ix, const struct chunk_id *id, const struct index_loc *loc,
	       int newer)
{
	struct index_loc old;
	int rc, found;

	if (loc->pack >= TOMB)
		return -EINVAL;
	rc = index_lookup(ix, id, &old);
	if (rc && rc != -ENOENT)
		return rc;
	found = rc == 0;
	if (found && old.pack == loc->pack && old.offset == loc->offset)
		return 0; /* this very record */
	if (found && !newer) {
		slot_flag(ix, loc->pack, SF_SHADOW);
		return 0;
	}
	rc = mem_put(ix, id, loc);
	if (rc)
		return rc;
	if (found) {
		slot_flag(ix, old.pack, SF_SHADOW);
		index_tot_add(&ix->tot, &old, -1);
	}
	index_tot_add(&ix->tot, loc, 1);
	after_change(ix);
	return 0;
}

int index_replace(struct index *ix, const struct chunk_id *id, const struct index_loc *loc)
{
	struct index_loc old;
	int rc;

	if (loc->pack >= TOMB)
		return -EINVAL;
	rc = index_lookup(ix, id, &old);
	if (rc)
		return rc;
	rc = mem_put(ix, id, loc);
	if (rc)
		return rc;
	if (old.pack != loc->pack)
		slot_flag(ix, old.pack, SF_SHADOW);
	index_tot_add(&ix->tot, &old, -1);
	index_tot_add(&ix->tot, loc, 1);
	after_change(ix);
	return 0;
}

int index_remove(struct index *ix, const struct chunk_id *id)
{
	struct index_loc old, tomb = { .pack = TOMB };
	int rc;

	rc = index_lookup(ix, id, &old);
	if (rc)
		return rc;
	rc = mem_put(ix, id, &tomb);
	if (rc)
		return rc;
	index_tot_add(&ix->tot, &old, -1);
	after_change(ix);
	return 0;
}

size_t index_count(const struct index *ix)
{
	return (size_t)ix->tot.chunks;
}

void index_get_totals(const struct index *ix, struct index_totals *t)
{
	*t = ix->tot;
}

void index_segment_key(const uint8_t pack_id[PACK_ID_LEN], char out[PACK_KEY_LEN])
{
	memcpy(out, "index/", 6);
	util_hex(pack_id, PACK_ID_LEN, out + 6);
}

static int seal(const struct aead_keys *k, const uint8_t pack_id[PACK_ID_LEN], void **buf,
		size_t *len)
{
	char key[PACK_KEY_LEN];
	void *out;
	size_t out_len;
	int rc;

	index_segment_key(pack_id, key);
	rc = aead_seal_object(k->meta, key, *buf, *len, &out, &out_len);
	free(*buf);
	*buf = NULL;
	if (rc)
		return rc;
	*buf = out;
	*len = out_len;
	return 0;
}

int index_segment_encode(const struct aead_keys *k, const uint8_t pack_id[PACK_ID_LEN],
			 const struct pack_entry *ents, uint32_t n, void **buf_out, size_t *len_out)
{
	size_t len = SEG_HDR_LEN + (size_t)PACK_ENTRY_LEN * n + 8;
	uint8_t *b = malloc(len);

	if (!b)
		return -ENOMEM;
	memcpy(b, seg_magic, 8);
	le_put32(b + 8, SEG_VERSION);
	le_put32(b + 12, n);
	memcpy(b + 16, pack_id, PACK_ID_LEN);
	for (uint32_t i = 0; i < n; i++)
		pack_entry_encode(b + SEG_HDR_LEN + PACK_ENTRY_LEN * i, &ents[i]);
	le_put64(b + len - 8, XXH3_64bits(b, len - 8));
	*buf_out = b;
	*len_out = len;
	return k ? seal(k, pack_id, buf_out, len_out) : 0;
}

static int decode_plain(const void *buf, size_t len, const uint8_t pack_id[PACK_ID_LEN],
			struct pack_entry **ents_out, uint32_t *n_out)
{
	const uint8_t *b = buf;
	struct pack_entry *ents;
	uint32_t n;

	if (len < SEG_HDR_LEN + 8 || memcmp(b, seg_magic, 8) != 0 || le_get32(b + 8) != SEG_VERSION ||
	    memcmp(b + 16, pack_id, PACK_ID_LEN) != 0)
		return -EBADMSG;
	n = le_get32(b + 12);
	if (n > PACK_MAX_ENTRIES || len != SEG_HDR_LEN + (size_t)PACK_ENTRY_LEN * n + 8 ||
	    XXH3_64bits(b, len - 8) != le_get64(b + len - 8))
		return -EBADMSG;
	ents = malloc(sizeof(*ents) * (n ? n : 1));
	if (!ents)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		pack_entry_decode(b + SEG_HDR_LEN + PACK_ENTRY_LEN * i, &ents[i]);
	*ents_out = ents;
	*n_out = n;
	return 0;
}

int index_segment_decode(const struct aead_keys *k, const void *buf, size_t len,
			 const uint8_t pack_id[PACK_ID_LEN], struct pack_entry **ents,
			 uint32_t *n)
{
	char key[PACK_KEY_LEN];
	void *plain;
	size_t plain_len;
	int rc;

	if (!k)
		return decode_plain(buf, len, pack_id, ents, n);
	index_segment_key(pack_id, key);
	rc = aead_open_object(k->meta, key, buf, len, &plain, &plain_len);
	if (rc)
		return rc;
	rc = decode_plain(plain, plain_len, pack_id, ents, n);
	free(plain);
	return rc;
}
