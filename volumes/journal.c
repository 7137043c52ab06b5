/* journal.c - see journal.h.
 *
 * A journal is a directory of segment files "<016x first seq>.log". Every integer is
 * little-endian. A segment file is a 64-byte header followed by records, back to back:
 *
 * Segment header (64 bytes):
 *    0  u32  magic       0x4C4E4A43 ("CJNL")
 *    4  u16  version     1
 *    6  u16  header_len  64
 *    8  u8   volid[16]   the volume this log belongs to
 *   24  u64  first_seq   seq of the first record in this file (== the name)
 *   32  u64  prev_hash   hash of the record just before first_seq (0 at the start of
 *                        a chain), so a kept segment verifies on its own
 *   40  u64  created_ns  wall clock when the segment was started (<= the time of its
 *                        first record: retention and time lookups use it)
 *   48  u64  reserved    0
 *   56  u64  hash        XXH3_64bits(bytes 0..55)
 *
 * Record (56 + payload_len bytes):
 *    0  u32  magic       0x44524A43 ("CJRD")
 *    4  u16  version     1
 *    6  u16  type        enum journal_type
 *    8  u64  seq         consecutive within a segment; never reused
 *   16  u64  time_ns     wall clock at append
 *   24  u64  offset      bytes into the volume (CHECKPOINT: the ckpt seq)
 *   32  u32  length      bytes of the volume range
 *   36  u32  payload_len bytes of payload that follow (WRITE: == length)
 *   40  u64  prev        hash of the previous record (the segment's prev_hash for the
 *                        first record of a segment)
 *   48  u8   payload[payload_len]
 *   48+payload_len  u64  hash = XXH3_64bits_withSeed(bytes 0 .. 47+payload_len, prev)
 *
 * COPY payload (type 7; offset and length are whole chunks of the volume):
 *    0  u64  src_offset  bytes: where the source range began (informational)
 *    8  u32  chunk_size  the volume's chunk size
 *   12  u32  count       length / chunk_size
 *   16  u8   src_volid[16]  the volume copied from (the journal's own, or another
 *                        volume of the same repository)
 *   32  u8   ids[count][32]  the chunk id each chunk of the range takes, in order (the
 *                        null id: zeros); the state after the record has exactly these
 *                        chunks there, whatever the state before it was
 * Compatibility: type 7 was added inside record version 1 (types 1..6 are unchanged,
 * so older journals read as before). A binary that predates it takes a COPY record for
 * a torn tail and cuts the journal there: do not open a journal holding one with such
 * a binary (after a clean close the map holds every record, so only history is lost).
 * The ids are durable in the repository before the record is appended (volume.c), and
 * gc keeps them while the record is retained (cmd_gc.c walks COPY records).
 *
 * Chain rules checked at open: the first segment's prev_hash is taken as given; every
 * later segment's prev_hash equals the last record hash of the one before, and its
 * first_seq is greater than that record's seq (a gap is allowed only at a segment
 * boundary, when the volume's checkpoint knew of later seqs than the journal kept).
 * The first record that fails (short read, magic, version, type, seq, prev, size or
 * hash) and everything after it is cut: a torn tail after a crash.
 *
 * Index file "<016x first seq>.idx" beside each segment (a hint: never synced, every
 * entry is checked against the record it names before use; a missing or damaged one
 * only makes a scan start at the segment's first record). Header (32 bytes):
 *    0  u32  magic       0x58494A43 ("CJIX")
 *    4  u16  version     1
 *    6  u16  entry_len   40
 *    8  u64  first_seq   the segment's first seq
 *   16  u64  reserved    0
 *   24  u64  hash        XXH3_64bits(bytes 0..23)
 * then entries (40 bytes), one for the first record that starts in each IDX_STEP
 * (1 MiB) window of the segment file, in file order:
 *    0  u64  seq         the record's seq
 *    8  u64  pos         its file offset in the segment
 *   16  u64  prev        the hash of the record before it (its header's prev field)
 *   24  u64  time_ns     its wall-clock time
 *   32  u64  hash        XXH3_64bits(bytes 0..31)
 * So a scan from seq N, or a time lookup, reads at most IDX_STEP bytes before the record
 * it wants, never the segment from its start (points open in O(records replayed)).
 *
 * Durability: appends are pwritev without fsync. A segment is fdatasync'd before the
 * next one is started, and the directory fsync'd after a segment file is created, so
 * synced_next (the first seq not known durable) only ever covers whole prefixes.
 */
#include "journal.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "log.h"
#include "util.h"

#define SEG_MAGIC 0x4C4E4A43u
#define REC_MAGIC 0x44524A43u
#define JVERSION 1
#define SEG_HDR_LEN JOURNAL_SEG_HDR
#define REC_HDR_LEN JOURNAL_REC_HDR
#define REC_TAIL_LEN JOURNAL_REC_TAIL
#define MAX_PAYLOAD (16u << 20)
#define IDX_MAGIC 0x58494A43u
#define IDX_HDR_LEN 32
#define IDX_ENT_LEN 40
#define IDX_STEP (1u << 20)

struct segment {
	uint64_t first_seq;
	uint64_t next_seq;  /* one past the last record */
	uint64_t size;      /* bytes */
	uint64_t last_hash; /* hash of the last record (prev_hash if none) */
	uint64_t prev_hash;
	uint64_t created_ns; /* from the header */
	uint64_t last_pos;  /* file offset of the last record (0: none) */
	uint64_t idx_size;  /* bytes of its index file (active segment only) */
};

struct journal {
	pthread_mutex_t lock;
	pthread_cond_t sync_cond;
	char *dir;
	uint8_t volid[16];
	uint64_t segment_bytes;
	struct segment *segs; /* oldest first; the last one is active */
	unsigned nsegs, cap;
	int fd;               /* the active segment */
	int idx_fd;           /* its index file (-1: none, appends go on without it) */
	uint64_t total_bytes;
	uint64_t appended_bytes; /* record bytes appended since open (never decreases) */
	uint64_t next_seq;
	uint64_t synced_next; /* every seq below is durable */
	int syncing;
	int sync_err;
	XXH3_state_t *xs;
};

struct journal_iter {
	struct journal *j;
	struct segment *segs;
	unsigned nsegs, cur;
	uint64_t from, end_seq;
	int fd;
	uint64_t pos;
	uint64_t seq, hash;
	uint8_t *buf;
	size_t bufcap;
};

static void put16(uint8_t *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }

static void seg_path(const char *dir, uint64_t first, char *out, size_t n)
{
	snprintf(out, n, "%s/%016" PRIx64 ".log", dir, first);
}

static void idx_path(const char *dir, uint64_t first, char *out, size_t n)
{
	snprintf(out, n, "%s/%016" PRIx64 ".idx", dir, first);
}

/* Remove segment first of dir and its index. */
static int seg_unlink(const char *dir, uint64_t first)
{
	char path[4096];
	int ret = 0;

	seg_path(dir, first, path, sizeof(path));
	if (unlink(path) && errno != ENOENT)
		ret = -errno;
	idx_path(dir, first, path, sizeof(path));
	unlink(path);
	return ret;
}

static int segs_push(struct journal *j, const struct segment *s)
{
	if (j->nsegs == j->cap) {
		unsigned cap = j->cap ? j->cap * 2 : 16;
		struct segment *n = realloc(j->segs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		j->segs = n;
		j->cap = cap;
	}
	j->segs[j->nsegs++] = *s;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorted first seqs of the segment files in dir. */
static int list_segments(const char *dir, uint64_t **out, unsigned *n_out)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t *v = NULL;
	unsigned n = 0, cap = 0;
	int ret = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char *end;
		uint64_t seq;

		if (strlen(de->d_name) != 20 || strcmp(de->d_name + 16, ".log"))
			continue;
		errno = 0;
		seq = strtoull(de->d_name, &end, 16);
		if (errno || end != de->d_name + 16)
			continue;
		if (n == cap) {
			uint64_t *nv;

			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				ret = -ENOMEM;
				goto out_free;
			}
			v = nv;
		}
		v[n++] = seq;
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_u64);
	*out = v;
	*n_out = n;
	closedir(d);
	return 0;

out_free:
	free(v);
	closedir(d);
	return ret;
}

static void seg_header_encode(uint8_t *h, const uint8_t volid[16], uint64_t first,
			      uint64_t prev_hash)
{
	memset(h, 0, SEG_HDR_LEN);
	put32(h, SEG_MAGIC);
	put16(h + 4, JVERSION);
	put16(h + 6, SEG_HDR_LEN);
	memcpy(h + 8, volid, 16);
	put64(h + 24, first);
	put64(h + 32, prev_hash);
	put64(h + 40, util_now_ns());
	put64(h + 56, XXH3_64bits(h, 56));
}

static int seg_header_check(const uint8_t *h, uint64_t first)
{
	if (get32(h) != SEG_MAGIC || get16(h + 4) != JVERSION || get16(h + 6) != SEG_HDR_LEN)
		return -EBADMSG;
	if (get64(h + 56) != XXH3_64bits(h, 56) || get64(h + 24) != first)
		return -EBADMSG;
	return 0;
}

/* ---- index files ---- */

static void idx_header_encode(uint8_t *h, uint64_t first)
{
	memset(h, 0, IDX_HDR_LEN);
	put32(h, IDX_MAGIC);
	put16(h + 4, JVERSION);
	put16(h + 6, IDX_ENT_LEN);
	put64(h + 8, first);
	put64(h + 24, XXH3_64bits(h, 24));
}

static int idx_header_check(const uint8_t *h, uint64_t first)
{
	if (get32(h) != IDX_MAGIC || get16(h + 4) != JVERSION || get16(h + 6) != IDX_ENT_LEN ||
	    get64(h + 8) != first || get64(h + 24) != XXH3_64bits(h, 24))
		return -EBADMSG;
	return 0;
}

struct idx_ent {
	uint64_t seq, pos, prev, time_ns;
};

static int idx_ent_decode(const uint8_t *e, struct idx_ent *out)
{
	if (get64(e + 32) != XXH3_64bits(e, 32))
		return -EBADMSG;
	out->seq = get64(e);
	out->pos = get64(e + 8);
	out->prev = get64(e + 16);
	out->time_ns = get64(e + 24);
	return 0;
}

/* The sound entries of segment first's index in dir (*out malloc'd, NULL if none). */
static int idx_load(const char *dir, uint64_t first, struct idx_ent **out, unsigned *n_out)
{
	char path[4096];
	void *data = NULL;
	size_t len = 0;
	struct idx_ent *v = NULL;
	unsigned n = 0, cap;

	*out = NULL;
	*n_out = 0;
	idx_path(dir, first, path, sizeof(path));
	if (util_read_file(path, &data, &len) || len < IDX_HDR_LEN ||
	    idx_header_check(data, first)) {
		free(data);
		return 0;
	}
	cap = (unsigned)((len - IDX_HDR_LEN) / IDX_ENT_LEN);
	if (cap) {
		v = malloc(cap * sizeof(*v));
		if (!v) {
			free(data);
			return -ENOMEM;
		}
	}
	for (unsigned i = 0; i < cap; i++) {
		if (idx_ent_decode((uint8_t *)data + IDX_HDR_LEN + (size_t)i * IDX_ENT_LEN, &v[n]) ||
		    (n && (v[n].seq <= v[n - 1].seq || v[n].pos <= v[n - 1].pos)))
			break;
		n++;
	}
	free(data);
	*out = v;
	*n_out = n;
	return 0;
}

/* Open (or start) the index of the active segment s, dropping entries at or past the
 * segment's end (a cut tail). Failure only leaves the segment without an index. */
static void idx_open_active(struct journal *j, struct segment *s, int create)
{
	uint8_t h[IDX_HDR_LEN], e[IDX_ENT_LEN];
	char path[4096];
	uint64_t size = IDX_HDR_LEN;
	struct stat st;
	int fd;

	idx_path(j->dir, s->first_seq, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | (create ? O_TRUNC : 0) | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (!create && fstat(fd, &st) == 0 && st.st_size >= IDX_HDR_LEN &&
	    pread(fd, h, IDX_HDR_LEN, 0) == IDX_HDR_LEN && !idx_header_check(h, s->first_seq)) {
		struct idx_ent ent;

		while (size + IDX_ENT_LEN <= (uint64_t)st.st_size &&
		       pread(fd, e, IDX_ENT_LEN, (off_t)size) == IDX_ENT_LEN &&
		       !idx_ent_decode(e, &ent) && ent.pos < s->size)
			size += IDX_ENT_LEN;
	} else {
		idx_header_encode(h, s->first_seq);
		if (util_pwrite_all(fd, h, IDX_HDR_LEN, 0)) {
			close(fd);
			return;
		}
	}
	if (ftruncate(fd, (off_t)size)) {
		close(fd);
		return;
	}
	s->idx_size = size;
	if (j->idx_fd >= 0)
		close(j->idx_fd);
	j->idx_fd = fd;
}

/* Index the record just appended at pos if it is the first to start in its window. */
static void idx_note(struct journal *j, struct segment *s, uint64_t seq, uint64_t pos,
		     uint64_t prev, uint64_t time_ns)
{
	uint8_t e[IDX_ENT_LEN];

	if (j->idx_fd < 0 || pos / IDX_STEP <= s->last_pos / IDX_STEP)
		return;
	put64(e, seq);
	put64(e + 8, pos);
	put64(e + 16, prev);
	put64(e + 24, time_ns);
	put64(e + 32, XXH3_64bits(e, 32));
	if (util_pwrite_all(j->idx_fd, e, IDX_ENT_LEN, s->idx_size) == 0)
		s->idx_size += IDX_ENT_LEN;
}

/* The checks of a record header that need no payload: magic, version, type, seq
 * (want_seq), prev hash (prev) and payload size. Its payload length, or -1. */
static long rec_hdr_check(const uint8_t *hdr, uint64_t want_seq, uint64_t prev)
{
	uint16_t type = get16(hdr + 6);
	uint32_t plen = get32(hdr + 36);

	if (get32(hdr) != REC_MAGIC || get16(hdr + 4) != JVERSION || type < JOURNAL_WRITE ||
	    type > JOURNAL_TYPE_LAST || plen > MAX_PAYLOAD || get64(hdr + 8) != want_seq ||
	    get64(hdr + 40) != prev || (type == JOURNAL_WRITE && plen != get32(hdr + 32)))
		return -1;
	return plen;
}

/* A record's hash: over its header and payload, seeded with the previous hash. */
static uint64_t rec_hash(uint64_t prev, const uint8_t *hdr, const void *payload, uint32_t plen)
{
	XXH3_state_t st;

	XXH3_64bits_reset_withSeed(&st, prev);
	XXH3_64bits_update(&st, hdr, REC_HDR_LEN);
	XXH3_64bits_update(&st, payload, plen);
	return XXH3_64bits_digest(&st);
}

/* rec from a checked record header; payload left to the caller. */
static void rec_decode(const uint8_t *hdr, struct journal_rec *rec)
{
	rec->type = get16(hdr + 6);
	rec->seq = get64(hdr + 8);
	rec->time_ns = get64(hdr + 16);
	rec->offset = get64(hdr + 24);
	rec->length = get32(hdr + 32);
	rec->payload_len = get32(hdr + 36);
	rec->payload = NULL;
}

/* Check one record at pos of fd. buf must hold MAX_PAYLOAD + REC_TAIL_LEN.
 * Returns its total length, or -EBADMSG (bad or torn), 0 at a clean end of file. */
static long rec_read(int fd, uint64_t pos, uint64_t want_seq, uint64_t prev, uint8_t *hdr,
		     uint8_t *buf, uint64_t *hash_out)
{
	ssize_t n = pread(fd, hdr, REC_HDR_LEN, (off_t)pos);
	long plen;
	XXH64_hash_t h;

	if (n == 0)
		return 0;
	if (n < 0)
		return -errno;
	if (n != REC_HDR_LEN || (plen = rec_hdr_check(hdr, want_seq, prev)) < 0)
		return -EBADMSG;
	n = pread(fd, buf, (size_t)plen + REC_TAIL_LEN, (off_t)(pos + REC_HDR_LEN));
	if (n < 0)
		return -errno;
	if ((size_t)n != (size_t)plen + REC_TAIL_LEN)
		return -EBADMSG;
	h = rec_hash(prev, hdr, buf, (uint32_t)plen);
	if (get64(buf + plen) != h)
		return -EBADMSG;
	*hash_out = h;
	return REC_HDR_LEN + plen + REC_TAIL_LEN;
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (uint64_t)st.st_size;
}

/* Scan and verify every segment; cut the tail at the first bad record. */
static int scan(struct journal *j)
{
	uint64_t *firsts = NULL;
	unsigned n = 0, i;
	uint8_t hdr[SEG_HDR_LEN], rh[REC_HDR_LEN];
	uint8_t *buf;
	char path[4096];
	int ret;

	ret = list_segments(j->dir, &firsts, &n);
	if (ret)
		return ret;
	buf = malloc(MAX_PAYLOAD + REC_TAIL_LEN);
	if (!buf) {
		ret = -ENOMEM;
		goto out_free_list;
	}
	for (i = 0; i < n; i++) {
		struct segment s = { .first_seq = firsts[i] };
		uint64_t pos = SEG_HDR_LEN, hash, seq, fsize;
		int fd, cut = 0;
		long r = 0;

		seg_path(j->dir, firsts[i], path, sizeof(path));
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			ret = -errno;
			goto out_free_buf;
		}
		fsize = file_size(path);
		if (pread(fd, hdr, SEG_HDR_LEN, 0) != SEG_HDR_LEN ||
		    seg_header_check(hdr, firsts[i]) ||
		    (j->nsegs && (get64(hdr + 32) != j->segs[j->nsegs - 1].last_hash ||
				  firsts[i] < j->segs[j->nsegs - 1].next_seq))) {
			close(fd);
			log_warn("journal", "%s: bad segment header; cutting %" PRIu64 " bytes",
				 path, fsize);
			seg_unlink(j->dir, firsts[i]);
			break;
		}
		if (memcmp(hdr + 8, j->volid, 16)) {
			close(fd);
			log_error("journal", "%s belongs to another volume; not opening it", path);
			ret = -EBADMSG;
			goto out_free_buf;
		}
		s.prev_hash = hash = get64(hdr + 32);
		s.created_ns = get64(hdr + 40);
		seq = firsts[i];
		for (;;) {
			uint64_t h = 0;

			r = rec_read(fd, pos, seq, hash, rh, buf, &h);
			if (r == 0)
				break;
			if (r < 0) {
				cut = 1;
				break;
			}
			s.last_pos = pos;
			pos += (uint64_t)r;
			hash = h;
			seq++;
		}
		if (cut && r != -EBADMSG) {
			close(fd);
			ret = (int)r;
			goto out_free_buf;
		}
		if (cut) {
			log_warn("journal", "%s: torn tail at seq %" PRIu64 "; cutting %" PRIu64
				 " bytes", path, seq, fsize - pos);
			if (ftruncate(fd, (off_t)pos) || fdatasync(fd)) {
				ret = -errno;
				close(fd);
				goto out_free_buf;
			}
		}
		close(fd);
		s.next_seq = seq;
		s.size = pos;
		s.last_hash = hash;
		ret = segs_push(j, &s);
		if (ret)
			goto out_free_buf;
		j->total_bytes += pos;
		if (cut)
			break;
	}
	for (i++; i < n; i++) {
		seg_path(j->dir, firsts[i], path, sizeof(path));
		log_warn("journal", "%s: after a torn tail; cutting %" PRIu64 " bytes", path,
			 file_size(path));
		seg_unlink(j->dir, firsts[i]);
	}
	ret = 0;
out_free_buf:
	free(buf);
out_free_list:
	free(firsts);
	return ret;
}

/* Start a new active segment at first (caller holds lock or is single-threaded). */
static int start_segment(struct journal *j, uint64_t first, uint64_t prev_hash)
{
	struct segment s = { .first_seq = first, .next_seq = first, .size = SEG_HDR_LEN,
			     .last_hash = prev_hash, .prev_hash = prev_hash };
	uint8_t hdr[SEG_HDR_LEN];
	char path[4096];
	int fd, ret;

	seg_path(j->dir, first, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	seg_header_encode(hdr, j->volid, first, prev_hash);
	s.created_ns = get64(hdr + 40);
	ret = util_pwrite_all(fd, hdr, SEG_HDR_LEN, 0);
	if (ret)
		goto out_unlink;
	ret = util_fsync_dir_of(path);
	if (ret)
		goto out_unlink;
	ret = segs_push(j, &s);
	if (ret)
		goto out_unlink;
	if (j->fd >= 0)
		close(j->fd);
	j->fd = fd;
	j->total_bytes += SEG_HDR_LEN;
	idx_open_active(j, &j->segs[j->nsegs - 1], 1);
	return 0;

out_unlink:
	unlink(path);
	close(fd);
	return ret;
}

int journal_open(const char *dir, const uint8_t volid[16], uint64_t min_next_seq,
		 uint64_t segment_bytes, struct journal **out)
{
	struct journal *j = calloc(1, sizeof(*j));
	int ret;

	if (!j)
		return -ENOMEM;
	j->fd = -1;
	j->idx_fd = -1;
	memcpy(j->volid, volid, 16);
	j->segment_bytes = segment_bytes ? segment_bytes : JOURNAL_SEGMENT_DEFAULT;
	if (j->segment_bytes < JOURNAL_SEGMENT_MIN)
		j->segment_bytes = JOURNAL_SEGMENT_MIN;
	j->dir = strdup(dir);
	j->xs = XXH3_createState();
	if (!j->dir || !j->xs) {
		ret = -ENOMEM;
		goto out_free;
	}
	ret = util_mkdirs(dir, 0700);
	if (ret)
		goto out_free;
	ret = scan(j);
	if (ret)
		goto out_free;
	if (min_next_seq == 0)
		min_next_seq = 1;
	if (!j->nsegs) {
		ret = start_segment(j, min_next_seq, 0);
	} else {
		struct segment *last = &j->segs[j->nsegs - 1];

		if (last->next_seq < min_next_seq) {
			log_warn("journal", "%s: journal ends at seq %" PRIu64
				 " but seq %" PRIu64 " was already used; continuing after it",
				 dir, last->next_seq, min_next_seq);
			ret = start_segment(j, min_next_seq, last->last_hash);
		} else {
			char path[4096];

			seg_path(dir, last->first_seq, path, sizeof(path));
			j->fd = open(path, O_RDWR | O_CLOEXEC);
			ret = j->fd < 0 ? -errno : 0;
			if (!ret)
				idx_open_active(j, last, 0);
		}
	}
	if (ret)
		goto out_free;
	j->next_seq = j->segs[j->nsegs - 1].next_seq;
	j->synced_next = j->next_seq; /* what the scan read back is what we build on */
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->sync_cond, NULL);
	*out = j;
	return 0;

out_free:
	if (j->fd >= 0)
		close(j->fd);
	if (j->idx_fd >= 0)
		close(j->idx_fd);
	if (j->xs)
		XXH3_freeState(j->xs);
	free(j->segs);
	free(j->dir);
	free(j);
	return ret;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0) {
		if (fdatasync(j->fd))
			log_warn("journal", "%s: fdatasync: %s", j->dir, strerror(errno));
		close(j->fd);
	}
	if (j->idx_fd >= 0)
		close(j->idx_fd);
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->sync_cond);
	XXH3_freeState(j->xs);
	free(j->segs);
	free(j->dir);
	free(j);
}

/* Seal the active segment (durable) and start the next one. Caller holds lock. */
static int rotate(struct journal *j)
{
	struct segment *last = &j->segs[j->nsegs - 1];
	uint64_t next = last->next_seq, h = last->last_hash;
	int ret;

	if (fdatasync(j->fd))
		return -errno;
	if (j->synced_next < next)
		j->synced_next = next;
	ret = start_segment(j, next, h);
	if (ret)
		return ret;
	pthread_cond_broadcast(&j->sync_cond);
	return 0;
}

int journal_append(struct journal *j, uint16_t type, uint64_t offset, uint32_t length,
		   const void *payload, uint32_t payload_len, uint64_t *seq_out)
{
	uint8_t hdr[REC_HDR_LEN], tail[REC_TAIL_LEN];
	struct iovec iov[3];
	struct segment *s;
	uint64_t rec_len = REC_HDR_LEN + (uint64_t)payload_len + REC_TAIL_LEN, pos, done, prev;
	int ret = 0;

	if (payload_len > MAX_PAYLOAD || (type == JOURNAL_WRITE && payload_len != length))
		return -EINVAL;
	pthread_mutex_lock(&j->lock);
	s = &j->segs[j->nsegs - 1];
	if (s->size > SEG_HDR_LEN && s->size + rec_len > j->segment_bytes) {
		ret = rotate(j);
		if (ret)
			goto out_unlock;
		s = &j->segs[j->nsegs - 1];
	}
	put32(hdr, REC_MAGIC);
	put16(hdr + 4, JVERSION);
	put16(hdr + 6, type);
	put64(hdr + 8, j->next_seq);
	put64(hdr + 16, util_now_ns());
	prev = s->last_hash;
	put64(hdr + 24, offset);
	put32(hdr + 32, length);
	put32(hdr + 36, payload_len);
	put64(hdr + 40, s->last_hash);
	XXH3_64bits_reset_withSeed(j->xs, s->last_hash);
	XXH3_64bits_update(j->xs, hdr, REC_HDR_LEN);
	if (payload_len)
		XXH3_64bits_update(j->xs, payload, payload_len);
	put64(tail, XXH3_64bits_digest(j->xs));

	iov[0] = (struct iovec){ hdr, REC_HDR_LEN };
	iov[1] = (struct iovec){ (void *)payload, payload_len };
	iov[2] = (struct iovec){ tail, REC_TAIL_LEN };
	pos = s->size;
	done = 0;
	while (done < rec_len) {
		struct iovec v[3];
		int nv = 0;
		uint64_t skip = done;
		ssize_t n;

		for (int i = 0; i < 3; i++) {
			if (skip >= iov[i].iov_len) {
				skip -= iov[i].iov_len;
				continue;
			}
			v[nv].iov_base = (char *)iov[i].iov_base + skip;
			v[nv].iov_len = iov[i].iov_len - skip;
			skip = 0;
			nv++;
		}
		n = pwritev(j->fd, v, nv, (off_t)(pos + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			if (ftruncate(j->fd, (off_t)pos))
				log_error("journal", "%s: cannot cut a failed append: %s", j->dir,
					  strerror(errno));
			goto out_unlock;
		}
		done += (uint64_t)n;
	}
	idx_note(j, s, j->next_seq, pos, prev, get64(hdr + 16));
	s->last_pos = pos;
	s->last_hash = get64(tail);
	s->size += rec_len;
	s->next_seq = ++j->next_seq;
	j->total_bytes += rec_len;
	j->appended_bytes += rec_len;
	if (seq_out)
		*seq_out = j->next_seq - 1;
out_unlock:
	pthread_mutex_unlock(&j->lock);
	return ret;
}

int journal_seal(struct journal *j)
{
	int ret = 0;

	pthread_mutex_lock(&j->lock);
	if (j->segs[j->nsegs - 1].size > SEG_HDR_LEN)
		ret = rotate(j);
	pthread_mutex_unlock(&j->lock);
	return ret;
}

int journal_seal_older(struct journal *j, uint64_t before_ns)
{
	struct segment *s;
	int ret = 0;

	pthread_mutex_lock(&j->lock);
	s = &j->segs[j->nsegs - 1];
	if (s->size > SEG_HDR_LEN && s->created_ns < before_ns)
		ret = rotate(j);
	pthread_mutex_unlock(&j->lock);
	return ret;
}

void journal_active(struct journal *j, uint64_t *first, uint64_t *created_ns)
{
	pthread_mutex_lock(&j->lock);
	*first = j->segs[j->nsegs - 1].first_seq;
	*created_ns = j->segs[j->nsegs - 1].created_ns;
	pthread_mutex_unlock(&j->lock);
}

int journal_sealed(struct journal *j, struct journal_seginfo **out, unsigned *n_out)
{
	struct journal_seginfo *v = NULL;
	unsigned n;

	pthread_mutex_lock(&j->lock);
	n = j->nsegs - 1;
	if (n) {
		v = malloc(n * sizeof(*v));
		for (unsigned i = 0; v && i < n; i++)
			v[i] = (struct journal_seginfo){ j->segs[i].first_seq, j->segs[i].next_seq,
							 j->segs[i].created_ns, j->segs[i].size };
	}
	pthread_mutex_unlock(&j->lock);
	if (n && !v)
		return -ENOMEM;
	*out = v;
	*n_out = n;
	return 0;
}

int journal_sync(struct journal *j, uint64_t upto)
{
	int ret = 0;

	pthread_mutex_lock(&j->lock);
	if (upto >= j->next_seq)
		upto = j->next_seq - 1;
	while (j->synced_next <= upto) {
		uint64_t target;
		int fd;

		if (j->syncing) {
			pthread_cond_wait(&j->sync_cond, &j->lock);
			continue;
		}
		j->syncing = 1;
		target = j->next_seq;
		fd = dup(j->fd);
		pthread_mutex_unlock(&j->lock);
		if (fd < 0) {
			ret = -errno;
		} else {
			if (fdatasync(fd))
				ret = -errno;
			close(fd);
		}
		pthread_mutex_lock(&j->lock);
		j->syncing = 0;
		if (!ret && j->synced_next < target)
			j->synced_next = target;
		pthread_cond_broadcast(&j->sync_cond);
		if (ret)
			break;
	}
	pthread_mutex_unlock(&j->lock);
	return ret;
}

/* Delete the oldest segments, front to back, while the next one starts at or below seq
 * (so every record of the deleted one is below it), was started before before_ns and
 * the journal holds more than keep bytes. Never the active segment. */
static int drop_front(struct journal *j, uint64_t seq, uint64_t before_ns, uint64_t keep)
{
	unsigned k = 0;
	int ret = 0;

	pthread_mutex_lock(&j->lock);
	/* the next segment's start time bounds every record time of this one */
	while (k + 1 < j->nsegs && j->segs[k + 1].first_seq <= seq &&
	       j->segs[k + 1].created_ns < before_ns && j->total_bytes > keep) {
		ret = seg_unlink(j->dir, j->segs[k].first_seq);
		if (ret)
			break;
		j->total_bytes -= j->segs[k].size;
		k++;
	}
	if (k) {
		memmove(j->segs, j->segs + k, (j->nsegs - k) * sizeof(*j->segs));
		j->nsegs -= k;
	}
	pthread_mutex_unlock(&j->lock);
	return ret;
}

int journal_delete_before(struct journal *j, uint64_t seq)
{
	return drop_front(j, seq, UINT64_MAX, 0);
}

int journal_delete_expired(struct journal *j, uint64_t seq, uint64_t before_ns)
{
	return drop_front(j, seq, before_ns, 0);
}

int journal_trim(struct journal *j, uint64_t seq, uint64_t keep_bytes)
{
	return drop_front(j, seq, UINT64_MAX, keep_bytes);
}

uint64_t journal_bytes_since(struct journal *j, uint64_t seq)
{
	uint64_t v = 0;

	pthread_mutex_lock(&j->lock);
	for (unsigned k = j->nsegs; k-- > 0;) {
		v += j->segs[k].size;
		if (j->segs[k].first_seq <= seq)
			break;
	}
	pthread_mutex_unlock(&j->lock);
	return v;
}

/* *field of j, read under its lock. */
static uint64_t get_locked(struct journal *j, const uint64_t *field)
{
	uint64_t v;

	pthread_mutex_lock(&j->lock);
	v = *field;
	pthread_mutex_unlock(&j->lock);
	return v;
}

uint64_t journal_next_seq(struct journal *j)
{
	return get_locked(j, &j->next_seq);
}

uint64_t journal_first_seq(struct journal *j)
{
	uint64_t v;

	pthread_mutex_lock(&j->lock);
	v = j->segs[0].first_seq;
	if (j->segs[0].next_seq == v && j->nsegs == 1)
		v = j->next_seq;
	pthread_mutex_unlock(&j->lock);
	return v;
}

uint64_t journal_bytes(struct journal *j)
{
	return get_locked(j, &j->total_bytes);
}

uint64_t journal_appended(struct journal *j)
{
	return get_locked(j, &j->appended_bytes);
}

unsigned journal_segments(struct journal *j)
{
	unsigned v;

	pthread_mutex_lock(&j->lock);
	v = j->nsegs;
	pthread_mutex_unlock(&j->lock);
	return v;
}

void journal_copy_encode(uint8_t hdr[JOURNAL_COPY_HDR], const struct journal_copy *c)
{
	put64(hdr, c->src_offset);
	put32(hdr + 8, c->chunk_size);
	put32(hdr + 12, c->count);
	memcpy(hdr + 16, c->src_volid, 16);
}

int journal_copy_parse(const struct journal_rec *r, struct journal_copy *out)
{
	const uint8_t *p = r->payload;

	if (r->type != JOURNAL_COPY || r->payload_len < JOURNAL_COPY_HDR)
		return -EBADMSG;
	out->src_offset = get64(p);
	out->chunk_size = get32(p + 8);
	out->count = get32(p + 12);
	memcpy(out->src_volid, p + 16, 16);
	out->ids = p + JOURNAL_COPY_HDR;
	if (!out->chunk_size || (out->chunk_size & (out->chunk_size - 1)) ||
	    (uint64_t)out->count * out->chunk_size != r->length ||
	    (uint64_t)r->payload_len != JOURNAL_COPY_HDR + (uint64_t)out->count * JOURNAL_COPY_ID ||
	    r->offset % out->chunk_size)
		return -EBADMSG;
	return 0;
}

uint32_t journal_max_payload(struct journal *j)
{
	(void)j;
	return MAX_PAYLOAD;
}

int journal_iter_open(struct journal *j, uint64_t from, struct journal_iter **out)
{
	struct journal_iter *it = calloc(1, sizeof(*it));

	if (!it)
		return -ENOMEM;
	pthread_mutex_lock(&j->lock);
	it->segs = malloc(j->nsegs * sizeof(*it->segs));
	if (it->segs) {
		memcpy(it->segs, j->segs, j->nsegs * sizeof(*it->segs));
		it->nsegs = j->nsegs;
		it->end_seq = j->next_seq;
	}
	pthread_mutex_unlock(&j->lock);
	if (!it->segs) {
		free(it);
		return -ENOMEM;
	}
	it->j = j;
	it->from = from;
	it->fd = -1;
	/* Skip segments that end before from. */
	while (it->cur + 1 < it->nsegs && it->segs[it->cur].next_seq <= from)
		it->cur++;
	*out = it;
	return 0;
}

int journal_iter_next(struct journal_iter *it, struct journal_rec *rec)
{
	uint8_t hdr[REC_HDR_LEN];

	for (;;) {
		struct segment *s;
		uint64_t h = 0;
		long r;

		if (it->cur >= it->nsegs)
			return 0;
		s = &it->segs[it->cur];
		if (it->fd < 0) {
			char path[4096];

			seg_path(it->j->dir, s->first_seq, path, sizeof(path));
			it->fd = open(path, O_RDONLY | O_CLOEXEC);
			if (it->fd < 0)
				return -errno;
			it->pos = SEG_HDR_LEN;
			it->seq = s->first_seq;
			it->hash = s->prev_hash;
		}
		if (it->seq >= s->next_seq || it->seq >= it->end_seq) {
			close(it->fd);
			it->fd = -1;
			it->cur++;
			if (it->seq >= it->end_seq)
				it->cur = it->nsegs;
			continue;
		}
		if (!it->buf) {
			it->bufcap = MAX_PAYLOAD + REC_TAIL_LEN;
			it->buf = malloc(it->bufcap);
			if (!it->buf)
				return -ENOMEM;
		}
		r = rec_read(it->fd, it->pos, it->seq, it->hash, hdr, it->buf, &h);
		if (r <= 0)
			return r == 0 || r == -EBADMSG ? -EBADMSG : (int)r;
		it->pos += (uint64_t)r;
		it->hash = h;
		it->seq++;
		if (it->seq - 1 < it->from)
			continue;
		rec_decode(hdr, rec);
		rec->payload = it->buf;
		return 1;
	}
}

void journal_iter_close(struct journal_iter *it)
{
	if (!it)
		return;
	if (it->fd >= 0)
		close(it->fd);
	free(it->buf);
	free(it->segs);
	free(it);
}

/* ---- read-only access ---- */

#define SCAN_BUF (MAX_PAYLOAD + REC_HDR_LEN + REC_TAIL_LEN + (1u << 20))
#define SCAN_READ (1u << 20)

struct rbuf {
	int fd;
	uint8_t *buf;
	uint64_t base;
	size_t len;
};

/* Pointer to need bytes at pos (need <= SCAN_BUF), refilling the window with reads of
 * at least SCAN_READ; NULL at end of file or on error. */
static const uint8_t *rb_get(struct rbuf *rb, uint64_t pos, size_t need)
{
	ssize_t n;

	if (pos >= rb->base && pos + need <= rb->base + rb->len)
		return rb->buf + (pos - rb->base);
	n = pread(rb->fd, rb->buf, need > SCAN_READ ? need : SCAN_READ, (off_t)pos);
	rb->base = pos;
	rb->len = n > 0 ? (size_t)n : 0;
	return rb->len >= need ? rb->buf : NULL;
}

struct vseg {
	uint64_t first;
	unsigned d;     /* index into the view's dirs */
};

static int cmp_vseg(const void *a, const void *b)
{
	const struct vseg *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return x->d < y->d ? -1 : x->d > y->d;
}

/* The segments of every directory of v, sorted by first seq, one per first seq (the
 * lowest directory index wins). *out malloc'd (NULL when none). */
static int view_list(const struct journal_view *v, struct vseg **out, unsigned *n_out)
{
	struct vseg *all = NULL;
	unsigned n = 0, k = 0;
	int ret = 0;

	for (unsigned d = 0; d < JOURNAL_VIEW_DIRS; d++) {
		uint64_t *f = NULL;
		unsigned m = 0;
		struct vseg *na;

		if (!v->dir[d])
			continue;
		ret = list_segments(v->dir[d], &f, &m);
		if (ret == -ENOENT || ret == -ENOTDIR) {
			ret = 0;
			continue;
		}
		if (ret)
			goto out_free;
		if (m) {
			na = realloc(all, (n + m) * sizeof(*all));
			if (!na) {
				free(f);
				ret = -ENOMEM;
				goto out_free;
			}
			all = na;
			for (unsigned i = 0; i < m; i++)
				all[n++] = (struct vseg){ f[i], d };
		}
		free(f);
	}
	if (n)
		qsort(all, n, sizeof(*all), cmp_vseg);
	for (unsigned i = 0; i < n; i++)
		if (!k || all[k - 1].first != all[i].first)
			all[k++] = all[i];
	*out = all;
	*n_out = k;
	return 0;

out_free:
	free(all);
	return ret;
}

static int vseg_open(const struct journal_view *v, const struct vseg *s)
{
	char path[4096];
	int fd;

	seg_path(v->dir[s->d], s->first, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int journal_segment_open(const struct journal_view *v, uint64_t seg_first)
{
	for (unsigned d = 0; d < JOURNAL_VIEW_DIRS; d++) {
		struct vseg s = { seg_first, d };
		int fd;

		if (!v->dir[d])
			continue;
		fd = vseg_open(v, &s);
		if (fd != -ENOENT && fd != -ENOTDIR)
			return fd;
	}
	return -ENOENT;
}

/* The last index entry of segment s with key <= want (by seq, or by time when
 * by_time), checked against the record it names; 0 and *e on success. */
static int idx_seek(const struct journal_view *v, const struct vseg *s, struct rbuf *rb,
		    uint64_t want, int by_time, struct idx_ent *e)
{
	struct idx_ent *ents;
	unsigned n, lo = 0, hi;
	const uint8_t *r;
	int ret;

	ret = idx_load(v->dir[s->d], s->first, &ents, &n);
	if (ret || !n) {
		free(ents);
		return ret ? ret : -ENOENT;
	}
	hi = n;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if ((by_time ? ents[mid].time_ns : ents[mid].seq) <= want)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo) {
		free(ents);
		return -ENOENT;
	}
	*e = ents[lo - 1];
	free(ents);
	if (!rb)
		return 0;
	r = rb_get(rb, e->pos, REC_HDR_LEN);
	if (!r || get32(r) != REC_MAGIC || get16(r + 4) != JVERSION || get64(r + 8) != e->seq ||
	    get64(r + 40) != e->prev)
		return -EBADMSG;
	return 0;
}

int journal_scan(const struct journal_view *v, uint64_t from, journal_scan_cb cb, void *arg,
		 uint64_t *end_out)
{
	struct rbuf rb = { .fd = -1 };
	struct vseg *segs = NULL;
	uint64_t end = 0, last_hash = 0;
	unsigned n = 0, lo, hi, i;
	int ret, stop = 0, more;

	ret = view_list(v, &segs, &n);
	if (ret)
		return ret;
	if (!n) {
		ret = -ENOENT;
		goto out_free;
	}
	/* the last segment whose first seq is <= from */
	lo = 0;
	hi = n;
	while (hi - lo > 1) {
		unsigned mid = (lo + hi) / 2;

		if (segs[mid].first <= from)
			lo = mid;
		else
			hi = mid;
	}
	rb.buf = malloc(SCAN_BUF);
	if (!rb.buf) {
		ret = -ENOMEM;
		goto out_free;
	}
	end = segs[lo].first;
	for (i = lo; i < n && !stop; i++) {
		const uint8_t *h;
		uint64_t pos = SEG_HDR_LEN, seq = segs[i].first, hash, prev;
		struct idx_ent e;

		rb.fd = vseg_open(v, &segs[i]);
		if (rb.fd < 0)
			break; /* removed by retention meanwhile: the history ends here */
		rb.base = rb.len = 0;
		h = rb_get(&rb, 0, SEG_HDR_LEN);
		if (!h || seg_header_check(h, segs[i].first)) {
			close(rb.fd);
			break;
		}
		prev = get64(h + 32);
		/* a later segment continues the chain (a gap in seqs is allowed: records the
		 * volume lost in a crash), or starts a new one (prev 0: a fresh journal) */
		if (i > lo && (segs[i].first < end || (prev != last_hash && prev != 0))) {
			close(rb.fd);
			break;
		}
		hash = prev;
		if (i == lo && from > seq && idx_seek(v, &segs[i], &rb, from, 0, &e) == 0) {
			pos = e.pos;
			seq = e.seq;
			hash = e.prev;
		}
		for (;;) {
			const uint8_t *r = rb_get(&rb, pos, REC_HDR_LEN);
			struct journal_rec rec;
			long plen;

			if (!r || (plen = rec_hdr_check(r, seq, hash)) < 0)
				break;
			r = rb_get(&rb, pos, REC_HDR_LEN + (size_t)plen + REC_TAIL_LEN);
			if (!r)
				break;
			if (get64(r + REC_HDR_LEN + plen) != rec_hash(hash, r, r + REC_HDR_LEN,
								      (uint32_t)plen))
				break;
			hash = get64(r + REC_HDR_LEN + plen);
			if (seq >= from) {
				rec_decode(r, &rec);
				rec.payload = r + REC_HDR_LEN;
				ret = cb ? cb(arg, &rec, segs[i].first, pos) : 0;
				if (ret) {
					stop = 1;
					end = seq;
					break;
				}
			}
			pos += REC_HDR_LEN + (uint64_t)plen + REC_TAIL_LEN;
			seq++;
		}
		more = !stop && rb_get(&rb, pos, 1) != NULL;
		close(rb.fd);
		if (stop)
			break;
		end = seq;
		last_hash = hash;
		if (more)
			break; /* a bad record inside: a torn tail, nothing after it counts */
	}
	ret = 0;
	if (end_out)
		*end_out = end;
	free(rb.buf);
out_free:
	free(segs);
	return ret;
}

/* journal_scan_all: one segment at a time (a callback that stops at the next one). */
struct scan_one {
	uint64_t first;
	journal_scan_cb cb;
	void *arg;
	int ret;       /* the caller's callback stopped the walk */
};

static int scan_one_cb(void *arg, const struct journal_rec *rec, uint64_t seg_first,
		       uint64_t rec_pos)
{
	struct scan_one *s = arg;

	if (seg_first != s->first)
		return 1; /* the next segment: it has a scan of its own */
	s->ret = s->cb(s->arg, rec, seg_first, rec_pos);
	return s->ret;
}

int journal_scan_all(const struct journal_view *v, journal_scan_cb cb, void *arg)
{
	struct vseg *segs = NULL;
	unsigned n = 0;
	int ret;

	ret = view_list(v, &segs, &n);
	if (!ret && !n)
		ret = -ENOENT;
	for (unsigned i = 0; !ret && i < n; i++) {
		struct scan_one s = { .first = segs[i].first, .cb = cb, .arg = arg };

		ret = journal_scan(v, segs[i].first, scan_one_cb, &s, NULL);
		if (!ret && s.ret)
			break;
	}
	free(segs);
	return ret;
}

static int seg_created(const struct journal_view *v, const struct vseg *s, uint64_t *ns)
{
	uint8_t h[SEG_HDR_LEN];
	int fd = vseg_open(v, s), ret = 0;

	if (fd < 0)
		return fd;
	if (pread(fd, h, SEG_HDR_LEN, 0) != SEG_HDR_LEN || seg_header_check(h, s->first))
		ret = -EBADMSG;
	else
		*ns = get64(h + 40);
	close(fd);
	return ret;
}

int journal_seek_time(const struct journal_view *v, uint64_t t_ns, uint64_t *seq_out)
{
	struct vseg *segs = NULL;
	struct idx_ent e;
	uint64_t ns;
	unsigned n = 0, lo, hi;
	int ret;

	ret = view_list(v, &segs, &n);
	if (ret)
		return ret;
	if (!n) {
		free(segs);
		return -ENOENT;
	}
	lo = 0;
	hi = n;
	while (hi - lo > 1) {
		unsigned mid = (lo + hi) / 2;

		if (seg_created(v, &segs[mid], &ns) == 0 && ns <= t_ns)
			lo = mid;
		else
			hi = mid;
	}
	*seq_out = segs[lo].first;
	/* within the segment: the last indexed record not newer than t */
	if (idx_seek(v, &segs[lo], NULL, t_ns, 1, &e) == 0)
		*seq_out = e.seq;
	free(segs);
	return 0;
}

static int first_rec_cb(void *arg, const struct journal_rec *rec, uint64_t seg_first,
			uint64_t rec_pos)
{
	(void)seg_first;
	(void)rec_pos;
	*(uint64_t *)arg = rec->time_ns;
	return 1;
}

int journal_span(const struct journal_view *v, struct journal_span *out)
{
	struct vseg *segs = NULL;
	unsigned n = 0;
	char path[4096];
	int ret;

	memset(out, 0, sizeof(*out));
	ret = view_list(v, &segs, &n);
	if (ret)
		return ret;
	if (!n) {
		free(segs);
		return -ENOENT;
	}
	out->first_seq = segs[0].first;
	out->last_first = segs[n - 1].first;
	out->prev_first = segs[n > 1 ? n - 2 : 0].first;
	out->segments = n;
	for (unsigned i = 0; i < n; i++) {
		seg_path(v->dir[segs[i].d], segs[i].first, path, sizeof(path));
		out->bytes += file_size(path);
	}
	free(segs);
	return journal_scan(v, out->first_seq, first_rec_cb, &out->first_time_ns, NULL);
}

int journal_segment_verify(const char *path, uint64_t first, const uint8_t volid[16])
{
	uint8_t h[SEG_HDR_LEN];
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (pread(fd, h, SEG_HDR_LEN, 0) != SEG_HDR_LEN || seg_header_check(h, first) ||
	    (volid && memcmp(h + 8, volid, 16)))
		ret = -EBADMSG;
	close(fd);
	return ret;
}

/* ---- segment file images in memory (jstore.c) ---- */

int journal_rec_peek(const void *p, size_t avail, uint64_t seq, struct journal_rec *rec)
{
	const uint8_t *h = p;
	long plen;

	if (avail < REC_HDR_LEN || (plen = rec_hdr_check(h, seq, get64(h + 40))) < 0)
		return 0;
	rec_decode(h, rec);
	return 1;
}

int journal_segment_check_buf(const void *buf, size_t len, uint64_t first,
			      const uint8_t volid[16])
{
	const uint8_t *b = buf;
	uint64_t pos = SEG_HDR_LEN, seq = first, hash;

	if (len < SEG_HDR_LEN || seg_header_check(b, first) || (volid && memcmp(b + 8, volid, 16)))
		return -EBADMSG;
	hash = get64(b + 32);
	while (pos < len) {
		const uint8_t *r = b + pos;
		long plen;

		if (len - pos < REC_HDR_LEN + REC_TAIL_LEN ||
		    (plen = rec_hdr_check(r, seq, hash)) < 0 ||
		    len - pos - REC_HDR_LEN - REC_TAIL_LEN < (uint64_t)plen)
			return -EBADMSG;
		hash = rec_hash(hash, r, r + REC_HDR_LEN, (uint32_t)plen);
		if (get64(r + REC_HDR_LEN + plen) != hash)
			return -EBADMSG;
		pos += REC_HDR_LEN + (uint64_t)plen + REC_TAIL_LEN;
		seq++;
	}
	return 0;
}
