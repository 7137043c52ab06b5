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
 * Chain rules checked at open: the first segment's prev_hash is taken as given; every
 * later segment's prev_hash equals the last record hash of the one before, and its
 * first_seq is greater than that record's seq (a gap is allowed only at a segment
 * boundary, when the volume's checkpoint knew of later seqs than the journal kept).
 * The first record that fails (short read, magic, version, type, seq, prev, size or
 * hash) and everything after it is cut: a torn tail after a crash.
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
#define SEG_HDR_LEN 64
#define REC_HDR_LEN 48
#define REC_TAIL_LEN 8
#define MAX_PAYLOAD (16u << 20)

struct segment {
	uint64_t first_seq;
	uint64_t next_seq;  /* one past the last record */
	uint64_t size;      /* bytes */
	uint64_t last_hash; /* hash of the last record (prev_hash if none) */
	uint64_t prev_hash;
	uint64_t created_ns; /* from the header */
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
	uint64_t total_bytes;
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

/* Check one record at pos of fd. buf must hold MAX_PAYLOAD + REC_TAIL_LEN.
 * Returns its total length, or -EBADMSG (bad or torn), 0 at a clean end of file. */
static long rec_read(int fd, uint64_t pos, uint64_t want_seq, uint64_t prev, uint8_t *hdr,
		     uint8_t *buf, uint64_t *hash_out)
{
	ssize_t n = pread(fd, hdr, REC_HDR_LEN, (off_t)pos);
	uint32_t plen;
	uint16_t type;
	XXH64_hash_t h;

	if (n == 0)
		return 0;
	if (n < 0)
		return -errno;
	if (n != REC_HDR_LEN || get32(hdr) != REC_MAGIC || get16(hdr + 4) != JVERSION)
		return -EBADMSG;
	type = get16(hdr + 6);
	plen = get32(hdr + 36);
	if (type < JOURNAL_WRITE || type > JOURNAL_RESTORE || plen > MAX_PAYLOAD ||
	    get64(hdr + 8) != want_seq || get64(hdr + 40) != prev)
		return -EBADMSG;
	if (type == JOURNAL_WRITE && plen != get32(hdr + 32))
		return -EBADMSG;
	n = pread(fd, buf, plen + REC_TAIL_LEN, (off_t)(pos + REC_HDR_LEN));
	if (n < 0)
		return -errno;
	if ((size_t)n != plen + REC_TAIL_LEN)
		return -EBADMSG;
	{
		XXH3_state_t st;

		XXH3_64bits_reset_withSeed(&st, prev);
		XXH3_64bits_update(&st, hdr, REC_HDR_LEN);
		XXH3_64bits_update(&st, buf, plen);
		h = XXH3_64bits_digest(&st);
	}
	if (get64(buf + plen) != h)
		return -EBADMSG;
	*hash_out = h;
	return REC_HDR_LEN + (long)plen + REC_TAIL_LEN;
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
			unlink(path);
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
		unlink(path);
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
	uint64_t rec_len = REC_HDR_LEN + (uint64_t)payload_len + REC_TAIL_LEN, pos, done;
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
	s->last_hash = get64(tail);
	s->size += rec_len;
	s->next_seq = ++j->next_seq;
	j->total_bytes += rec_len;
	if (seq_out)
		*seq_out = j->next_seq - 1;
out_unlock:
	pthread_mutex_unlock(&j->lock);
	return ret;
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

int journal_delete_before(struct journal *j, uint64_t seq)
{
	unsigned k = 0;
	char path[4096];
	int ret = 0;

	pthread_mutex_lock(&j->lock);
	while (k + 1 < j->nsegs && j->segs[k + 1].first_seq <= seq) {
		seg_path(j->dir, j->segs[k].first_seq, path, sizeof(path));
		if (unlink(path) && errno != ENOENT) {
			ret = -errno;
			break;
		}
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

int journal_delete_expired(struct journal *j, uint64_t seq, uint64_t before_ns)
{
	unsigned k = 0;
	char path[4096];
	int ret = 0;

	pthread_mutex_lock(&j->lock);
	/* the next segment's start time bounds every record time of this one */
	while (k + 1 < j->nsegs && j->segs[k + 1].first_seq <= seq &&
	       j->segs[k + 1].created_ns < before_ns) {
		seg_path(j->dir, j->segs[k].first_seq, path, sizeof(path));
		if (unlink(path) && errno != ENOENT) {
			ret = -errno;
			break;
		}
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

uint64_t journal_next_seq(struct journal *j)
{
	uint64_t v;

	pthread_mutex_lock(&j->lock);
	v = j->next_seq;
	pthread_mutex_unlock(&j->lock);
	return v;
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
	uint64_t v;

	pthread_mutex_lock(&j->lock);
	v = j->total_bytes;
	pthread_mutex_unlock(&j->lock);
	return v;
}

unsigned journal_segments(struct journal *j)
{
	unsigned v;

	pthread_mutex_lock(&j->lock);
	v = j->nsegs;
	pthread_mutex_unlock(&j->lock);
	return v;
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
		rec->type = get16(hdr + 6);
		rec->seq = it->seq - 1;
		rec->time_ns = get64(hdr + 16);
		rec->offset = get64(hdr + 24);
		rec->length = get32(hdr + 32);
		rec->payload_len = get32(hdr + 36);
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

struct rbuf {
	int fd;
	uint8_t *buf;
	uint64_t base;
	size_t len;
};

/* Pointer to need bytes at pos, refilling the window; NULL at end of file or on error. */
static const uint8_t *rb_get(struct rbuf *rb, uint64_t pos, size_t need)
{
	ssize_t n;

	if (pos >= rb->base && pos + need <= rb->base + rb->len)
		return rb->buf + (pos - rb->base);
	n = pread(rb->fd, rb->buf, SCAN_BUF, (off_t)pos);
	rb->base = pos;
	rb->len = n > 0 ? (size_t)n : 0;
	return rb->len >= need ? rb->buf : NULL;
}

int journal_segment_open(const char *dir, uint64_t seg_first)
{
	char path[4096];
	int fd;

	seg_path(dir, seg_first, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int journal_scan(const char *dir, uint64_t from, journal_scan_cb cb, void *arg,
		 uint64_t *end_out)
{
	struct rbuf rb = { .fd = -1 };
	uint64_t *firsts = NULL, end = 0, last_hash = 0;
	unsigned n = 0, lo, hi, i;
	int ret, stop = 0, more;

	ret = list_segments(dir, &firsts, &n);
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

		if (firsts[mid] <= from)
			lo = mid;
		else
			hi = mid;
	}
	rb.buf = malloc(SCAN_BUF);
	if (!rb.buf) {
		ret = -ENOMEM;
		goto out_free;
	}
	end = firsts[lo];
	for (i = lo; i < n && !stop; i++) {
		const uint8_t *h;
		uint64_t pos = SEG_HDR_LEN, seq = firsts[i], hash;

		rb.fd = journal_segment_open(dir, firsts[i]);
		if (rb.fd < 0)
			break; /* removed by retention meanwhile: the history ends here */
		rb.base = rb.len = 0;
		h = rb_get(&rb, 0, SEG_HDR_LEN);
		if (!h || seg_header_check(h, firsts[i]) ||
		    (i > lo && (get64(h + 32) != last_hash || firsts[i] < end))) {
			close(rb.fd);
			break;
		}
		hash = get64(h + 32);
		for (;;) {
			const uint8_t *r = rb_get(&rb, pos, REC_HDR_LEN);
			struct journal_rec rec;
			uint32_t plen;
			uint16_t type;
			XXH3_state_t st;

			if (!r || get32(r) != REC_MAGIC || get16(r + 4) != JVERSION)
				break;
			type = get16(r + 6);
			plen = get32(r + 36);
			if (type < JOURNAL_WRITE || type > JOURNAL_RESTORE || plen > MAX_PAYLOAD ||
			    get64(r + 8) != seq || get64(r + 40) != hash ||
			    (type == JOURNAL_WRITE && plen != get32(r + 32)))
				break;
			r = rb_get(&rb, pos, REC_HDR_LEN + (size_t)plen + REC_TAIL_LEN);
			if (!r)
				break;
			XXH3_64bits_reset_withSeed(&st, hash);
			XXH3_64bits_update(&st, r, REC_HDR_LEN + (size_t)plen);
			if (get64(r + REC_HDR_LEN + plen) != XXH3_64bits_digest(&st))
				break;
			hash = get64(r + REC_HDR_LEN + plen);
			if (seq >= from) {
				rec.type = type;
				rec.seq = seq;
				rec.time_ns = get64(r + 16);
				rec.offset = get64(r + 24);
				rec.length = get32(r + 32);
				rec.payload_len = plen;
				rec.payload = r + REC_HDR_LEN;
				ret = cb ? cb(arg, &rec, firsts[i], pos) : 0;
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
	free(firsts);
	return ret;
}

static int seg_created(const char *dir, uint64_t first, uint64_t *ns)
{
	uint8_t h[SEG_HDR_LEN];
	int fd = journal_segment_open(dir, first), ret = 0;

	if (fd < 0)
		return fd;
	if (pread(fd, h, SEG_HDR_LEN, 0) != SEG_HDR_LEN || seg_header_check(h, first))
		ret = -EBADMSG;
	else
		*ns = get64(h + 40);
	close(fd);
	return ret;
}

int journal_seek_time(const char *dir, uint64_t t_ns, uint64_t *seq_out)
{
	uint64_t *firsts = NULL, ns;
	unsigned n = 0, lo, hi;
	int ret;

	ret = list_segments(dir, &firsts, &n);
	if (ret)
		return ret;
	if (!n) {
		free(firsts);
		return -ENOENT;
	}
	lo = 0;
	hi = n;
	while (hi - lo > 1) {
		unsigned mid = (lo + hi) / 2;

		if (seg_created(dir, firsts[mid], &ns) == 0 && ns <= t_ns)
			lo = mid;
		else
			hi = mid;
	}
	*seq_out = firsts[lo];
	free(firsts);
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

int journal_span(const char *dir, struct journal_span *out)
{
	uint64_t *firsts = NULL;
	unsigned n = 0;
	char path[4096];
	int ret;

	memset(out, 0, sizeof(*out));
	ret = list_segments(dir, &firsts, &n);
	if (ret)
		return ret;
	if (!n) {
		free(firsts);
		return -ENOENT;
	}
	out->first_seq = firsts[0];
	out->segments = n;
	for (unsigned i = 0; i < n; i++) {
		seg_path(dir, firsts[i], path, sizeof(path));
		out->bytes += file_size(path);
	}
	free(firsts);
	return journal_scan(dir, out->first_seq, first_rec_cb, &out->first_time_ns, NULL);
}
