/* iscsi_oracle.c - a real initiator (libiscsi) that writes and verifies a LUN against
 * an oracle log, for crash and durability tests.
 *
 *   iscsi_oracle write URL --oracle F --seed S [--start LBA] [--blocks N] [--count C]
 *                    [--mix] [--pace-ms M]   (M: pause after each write)
 *   iscsi_oracle verify URL --oracle F [--strict]
 *   iscsi_oracle check-image IMG --oracle F (--writes K | --seq-base B --seq N |
 *                                          --writes-range LO HI)
 *   iscsi_oracle pick-times --oracle F [--count C]
 *
 * Sector content (512 bytes) written by write number idx at lba:
 *   0   8  magic "CRNORCL1"
 *   8   4  seed (le)
 *   12  4  idx (le)
 *   16  8  lba (le)
 *   24 488 xorshift64 stream seeded from (seed, idx, lba)
 * A sector holding all zeros was never written.
 *
 * Oracle log (text, one line per event, appended and fsync'd before the next IO):
 *   S seed start blocks      header
 *   I idx lba n fua t kind   write idx is about to be sent (t: wall clock ns; kind 0 =
 *                            WRITE, 1 = UNMAP, 2 = WRITE SAME of a zero block: the
 *                            range reads as zeros; with --mix about 1 op in 5 is 1 or 2)
 *   A idx t                  write idx was acknowledged (GOOD) at wall clock t (ns)
 *   F idx                    SYNCHRONIZE CACHE acknowledged after write idx: every
 *                            write acknowledged so far is durable
 * A FUA write is durable on its own once acknowledged.
 *
 * verify: every sector must hold the newest DURABLE write covering it or a newer one
 * that was issued (acknowledged or in flight at the crash); with --strict (kill -9 with
 * no torn journal, where nothing acknowledged may be lost) the newest ACKNOWLEDGED
 * write covering it or the one in flight. Exit 0 when all sectors match, 1 on a
 * mismatch (printed), 3 when the target went away during `write` (expected in crash
 * loops), 2 on usage or setup errors.
 *
 * check-image: IMG (a raw image of the whole LUN, e.g. `cairn export`) must hold
 * exactly the first K writes of the log (--writes K), or exactly the writes whose
 * journal seq is below N when the journal records of this run start at seq B
 * (--seq-base B --seq N: each acknowledged write, then each F line, is one record, in
 * log order); with --writes-range, exactly the first K writes for some K in [LO, HI]
 * (a snapshot taken while writes were in flight). pick-times prints C lines "TIME K": an RFC 3339 time between the
 * acknowledgement of write K-1 and the issue of write K, at which exactly K writes
 * were done.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#define SECTOR 512u
#define MAX_BLOCKS 256u

struct wrec {
	uint64_t lba;
	uint32_t n;
	int fua, acked, durable, kind;
	uint64_t t_issue, t_ack;
	uint64_t seq_rank;  /* journal order of its record among A and F lines */
};

static int util_zero(const uint8_t *p)
{
	for (unsigned i = 0; i < SECTOR; i++)
		if (p[i])
			return 0;
	return 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xs_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void fill_sector(uint8_t *p, uint32_t seed, uint32_t idx, uint64_t lba)
{
	uint64_t st = ((uint64_t)seed * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t)idx << 24) ^ (lba * 0xD6E8FEB86659FD93ULL) ^ 1;
	memcpy(p, "CRNORCL1", 8);
	memcpy(p + 8, &seed, 4);
	memcpy(p + 12, &idx, 4);
	memcpy(p + 16, &lba, 8);
	for (unsigned i = 24; i < SECTOR; i += 8) {
		uint64_t v = xs_next(&st);
		memcpy(p + i, &v, SECTOR - i < 8 ? SECTOR - i : 8);
	}
}

static struct iscsi_context *connect_url(const char *url, int *lun)
{
	struct iscsi_context *iscsi = iscsi_create_context("iqn.2026-11.org.cairn:oracle");
	struct iscsi_url *u;

	if (!iscsi)
		return NULL;
	u = iscsi_parse_full_url(iscsi, url);
	if (!u) {
		fprintf(stderr, "oracle: bad url %s: %s\n", url, iscsi_get_error(iscsi));
		goto out_destroy;
	}
	iscsi_set_session_type(iscsi, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(iscsi, ISCSI_HEADER_DIGEST_NONE_CRC32C);
	iscsi_set_targetname(iscsi, u->target);
	if (iscsi_full_connect_sync(iscsi, u->portal, u->lun) != 0) {
		fprintf(stderr, "oracle: login to %s failed: %s\n", url, iscsi_get_error(iscsi));
		iscsi_destroy_url(u);
		goto out_destroy;
	}
	*lun = u->lun;
	iscsi_destroy_url(u);
	/* a crash of the target must end this run, not start a reconnect loop */
	iscsi_set_noautoreconnect(iscsi, 1);
	iscsi_set_timeout(iscsi, 30);
	return iscsi;
out_destroy:
	iscsi_destroy_context(iscsi);
	return NULL;
}

static void logf_sync(int fd, const char *fmt, ...)
{
	char line[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (write(fd, line, (size_t)n) != n || fdatasync(fd) < 0) {
		perror("oracle: log");
		exit(2);
	}
}

static int do_write(const char *url, const char *oracle, uint32_t seed, uint64_t start,
		    uint64_t blocks, uint64_t count, int mix, unsigned pace_ms)
{
	static uint8_t zero[SECTOR];
	uint8_t *buf = malloc(MAX_BLOCKS * SECTOR);
	uint64_t rng = seed * 2654435761ULL + 7;
	struct iscsi_context *iscsi;
	int lun, fd;

	fd = open(oracle, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0 || !buf) {
		perror("oracle: open log");
		return 2;
	}
	iscsi = connect_url(url, &lun);
	if (!iscsi)
		return 3;
	logf_sync(fd, "S %u %" PRIu64 " %" PRIu64 "\n", seed, start, blocks);
	for (uint64_t idx = 0; idx < count; idx++) {
		uint32_t n = 1 + (uint32_t)(xs_next(&rng) % (xs_next(&rng) % 4 ? 16 : MAX_BLOCKS));
		uint64_t lba = start + xs_next(&rng) % (blocks - n + 1);
		int fua = xs_next(&rng) % 8 == 0;
		int kind = 0;
		struct scsi_task *t;

		if (xs_next(&rng) % 4 == 0) /* chunk-aligned starts are common in real IO */
			lba = start + ((lba - start) & ~127ULL);
		if (lba + n > start + blocks)
			n = (uint32_t)(start + blocks - lba);
		for (uint32_t i = 0; i < n; i++)
			fill_sector(buf + (size_t)i * SECTOR, seed, (uint32_t)idx, lba + i);
		if (mix) {
			uint64_t r = xs_next(&rng) % 10;

			kind = r == 0 ? 1 : r == 1 ? 2 : 0;
		}
		logf_sync(fd, "I %" PRIu64 " %" PRIu64 " %u %d %" PRIu64 " %d\n", idx, lba, n, fua,
			  now_ns(), kind);
		if (kind == 1) {
			struct unmap_list ul = { .lba = lba, .num = n };

			t = iscsi_unmap_sync(iscsi, lun, 0, 0, &ul, 1);
		} else if (kind == 2) {
			t = iscsi_writesame16_sync(iscsi, lun, lba, zero, SECTOR, n, 0, 0, 0, 0);
		} else {
			t = iscsi_write16_sync(iscsi, lun, lba, buf, n * SECTOR, SECTOR, 0, 0, fua, 0, 0);
		}
		if (!t || t->status != SCSI_STATUS_GOOD) {
			fprintf(stderr, "oracle: write %" PRIu64 " failed: %s\n", idx, iscsi_get_error(iscsi));
			if (t)
				scsi_free_scsi_task(t);
			goto out_gone;
		}
		scsi_free_scsi_task(t);
		logf_sync(fd, "A %" PRIu64 " %" PRIu64 "\n", idx, now_ns());
		if (pace_ms)
			usleep(pace_ms * 1000u);
		if (xs_next(&rng) % 16 == 0) {
			t = iscsi_synchronizecache10_sync(iscsi, lun, 0, 0, 0, 0);
			if (!t || t->status != SCSI_STATUS_GOOD) {
				fprintf(stderr, "oracle: sync cache failed: %s\n", iscsi_get_error(iscsi));
				if (t)
					scsi_free_scsi_task(t);
				goto out_gone;
			}
			scsi_free_scsi_task(t);
			logf_sync(fd, "F %" PRIu64 "\n", idx);
		}
	}
	iscsi_logout_sync(iscsi);
	iscsi_destroy_context(iscsi);
	close(fd);
	free(buf);
	printf("oracle: %" PRIu64 " writes done\n", count);
	return 0;
out_gone:
	iscsi_destroy_context(iscsi);
	close(fd);
	free(buf);
	return 3;
}

static int do_verify(const char *url, const char *oracle, int strict)
{
	FILE *f = fopen(oracle, "r");
	struct wrec *w = NULL;
	size_t nw = 0, capw = 0;
	uint32_t seed = 0;
	uint64_t start = 0, blocks = 0;
	int64_t *acked_at, *durable_at, *zero_at, inflight = -1;
	char line[160];
	struct iscsi_context *iscsi;
	uint8_t *buf, expect[SECTOR];
	uint64_t bad = 0, checked = 0;
	int lun;

	if (!f) {
		perror("oracle: open log");
		return 2;
	}
	while (fgets(line, sizeof(line), f)) {
		uint64_t a, b, t;
		unsigned n;
		int fua, kind = 0;
		if (sscanf(line, "S %u %" SCNu64 " %" SCNu64, &seed, &start, &blocks) == 3)
			continue;
		if (sscanf(line, "I %" SCNu64 " %" SCNu64 " %u %d %" SCNu64 " %d", &a, &b, &n, &fua,
			   &t, &kind) >= 4) {
			if (nw == capw) {
				capw = capw ? capw * 2 : 1024;
				w = realloc(w, capw * sizeof(*w));
			}
			w[nw++] = (struct wrec){ .lba = b, .n = n, .fua = fua, .kind = kind };
			inflight = (int64_t)a;
		} else if (sscanf(line, "A %" SCNu64, &a) == 1 && a < nw) {
			w[a].acked = 1;
			w[a].durable = w[a].fua;
			inflight = -1;
		} else if (sscanf(line, "F %" SCNu64, &a) == 1) {
			for (size_t i = 0; i <= a && i < nw; i++)
				if (w[i].acked)
					w[i].durable = 1;
		}
	}
	fclose(f);
	if (!blocks) {
		fprintf(stderr, "oracle: %s has no header\n", oracle);
		return 2;
	}
	acked_at = malloc(blocks * sizeof(int64_t));
	durable_at = malloc(blocks * sizeof(int64_t));
	zero_at = malloc(blocks * sizeof(int64_t));
	for (uint64_t s = 0; s < blocks; s++)
		acked_at[s] = durable_at[s] = zero_at[s] = -1;
	for (size_t i = 0; i < nw; i++) {
		for (uint32_t k = 0; k < w[i].n; k++) {
			uint64_t s = w[i].lba + k - start;
			if (w[i].acked)
				acked_at[s] = (int64_t)i;
			if (w[i].durable)
				durable_at[s] = (int64_t)i;
			if (w[i].kind) /* UNMAP / WRITE SAME of zeros, issued */
				zero_at[s] = (int64_t)i;
		}
	}
	iscsi = connect_url(url, &lun);
	if (!iscsi)
		return 2;
	buf = malloc(2048 * SECTOR);
	for (uint64_t off = 0; off < blocks; off += 2048) {
		uint32_t n = (uint32_t)(blocks - off < 2048 ? blocks - off : 2048);
		struct scsi_task *t = iscsi_read16_sync(iscsi, lun, start + off, n * SECTOR, SECTOR, 0, 0, 0, 0, 0);
		if (!t || t->status != SCSI_STATUS_GOOD || t->datain.size < (int)(n * SECTOR)) {
			fprintf(stderr, "oracle: read at %" PRIu64 " failed: %s\n", start + off, iscsi_get_error(iscsi));
			return 1;
		}
		memcpy(buf, t->datain.data, n * SECTOR);
		scsi_free_scsi_task(t);
		for (uint32_t k = 0; k < n; k++) {
			uint64_t s = off + k, lba = start + s;
			uint8_t *p = buf + (size_t)k * SECTOR;
			int64_t x = -1, need = strict ? acked_at[s] : durable_at[s];
			int ok;
			uint32_t idx;

			checked++;
			if (memcmp(p, "CRNORCL1", 8) == 0) {
				memcpy(&idx, p + 12, 4);
				x = idx;
			} else {
				for (unsigned i = 0; i < SECTOR; i++)
					if (p[i]) {
						x = -2; /* garbage */
						break;
					}
			}
			if (x == -2) {
				ok = 0;
			} else if (x == -1) {
				/* zeros: nothing needed, or a zeroing op at or after the needed
				 * one (strict: the needed one, or the one in flight) */
				ok = need == -1 || (strict ? zero_at[s] == need ||
						    (zero_at[s] >= 0 && zero_at[s] == inflight) :
						    zero_at[s] >= need);
			} else {
				fill_sector(expect, seed, (uint32_t)x, lba);
				ok = (size_t)x < nw && w[x].lba <= lba && lba < w[x].lba + w[x].n &&
				     memcmp(p, expect, SECTOR) == 0 && x >= need;
				if (ok && strict && x != need)
					ok = x == inflight; /* newer than the last ack: only the one in flight */
			}
			if (!ok && bad++ < 10)
				fprintf(stderr, "oracle: lba %" PRIu64 ": found write %" PRId64 ", need %s write >= %" PRId64 "\n",
					lba, x, strict ? "acknowledged" : "durable", need);
		}
	}
	iscsi_logout_sync(iscsi);
	iscsi_destroy_context(iscsi);
	printf("oracle: %" PRIu64 " sectors checked against %zu writes, %" PRIu64 " bad\n", checked, nw, bad);
	free(buf);
	free(acked_at);
	free(zero_at);
	free(durable_at);
	free(w);
	return bad ? 1 : 0;
}

/* Parse a log for check-image / pick-times. */
static int load_log(const char *oracle, struct wrec **out, size_t *n_out, uint32_t *seed,
		    uint64_t *start, uint64_t *blocks)
{
	FILE *f = fopen(oracle, "r");
	struct wrec *w = NULL;
	size_t nw = 0, capw = 0;
	uint64_t rank = 0;
	char line[200];

	if (!f) {
		perror("oracle: open log");
		return 2;
	}
	while (fgets(line, sizeof(line), f)) {
		uint64_t a, b, t = 0;
		unsigned n;
		int fua, kind = 0;

		if (sscanf(line, "S %u %" SCNu64 " %" SCNu64, seed, start, blocks) == 3)
			continue;
		if (sscanf(line, "I %" SCNu64 " %" SCNu64 " %u %d %" SCNu64 " %d", &a, &b, &n, &fua,
			   &t, &kind) >= 4) {
			if (nw == capw) {
				capw = capw ? capw * 2 : 1024;
				w = realloc(w, capw * sizeof(*w));
			}
			w[nw++] = (struct wrec){ .lba = b, .n = n, .fua = fua, .kind = kind, .t_issue = t };
		} else if (line[0] == 'A' && sscanf(line, "A %" SCNu64 " %" SCNu64, &a, &t) >= 1 && a < nw) {
			w[a].acked = 1;
			w[a].t_ack = t;
			w[a].seq_rank = rank++;
		} else if (line[0] == 'F') {
			rank++;
		}
	}
	fclose(f);
	*out = w;
	*n_out = nw;
	return 0;
}

static int do_check_image(const char *img, const char *oracle, int64_t writes, uint64_t seq_base,
			  uint64_t seq)
{
	struct wrec *w;
	size_t nw;
	uint32_t seed = 0;
	uint64_t start = 0, blocks = 0, bad = 0, included = 0;
	int64_t *last;
	uint8_t p[SECTOR], expect[SECTOR];
	FILE *f;

	if (load_log(oracle, &w, &nw, &seed, &start, &blocks))
		return 2;
	last = malloc(blocks * sizeof(*last));
	for (uint64_t s = 0; s < blocks; s++)
		last[s] = -1;
	for (size_t i = 0; i < nw; i++) {
		int in = writes >= 0 ? (int64_t)i < writes
				     : w[i].acked && seq_base + w[i].seq_rank < seq;
		if (!in)
			continue;
		included++;
		for (uint32_t k = 0; k < w[i].n; k++)
			last[w[i].lba + k - start] = (int64_t)i;
	}
	f = fopen(img, "rb");
	if (!f) {
		perror("oracle: open image");
		return 2;
	}
	for (uint64_t s = 0; s < blocks; s++) {
		uint64_t lba = start + s;
		int64_t x = last[s];

		if (fseeko(f, (off_t)(lba * SECTOR), SEEK_SET) || fread(p, 1, SECTOR, f) != SECTOR) {
			fprintf(stderr, "oracle: image too short at lba %" PRIu64 "\n", lba);
			return 1;
		}
		if (x < 0 || w[x].kind)
			memset(expect, 0, SECTOR);
		else
			fill_sector(expect, seed, (uint32_t)x, lba);
		if (memcmp(p, expect, SECTOR) && bad++ < 10) {
			uint32_t idx = 0;

			if (!memcmp(p, "CRNORCL1", 8))
				memcpy(&idx, p + 12, 4);
			fprintf(stderr, "oracle: lba %" PRIu64 ": want %s of op %" PRId64 ", found %s %u\n",
				lba, x < 0 || w[x].kind ? "zeros" : "data", x,
				memcmp(p, "CRNORCL1", 8) ? "other" : "data of op", idx);
		}
	}
	fclose(f);
	printf("oracle: image %s: %" PRIu64 " sectors against %" PRIu64 " of %zu ops, %" PRIu64 " bad\n",
	       img, blocks, included, nw, bad);
	free(last);
	free(w);
	return bad ? 1 : 0;
}

/* --writes-range: IMG holds exactly the first K writes for some K in [lo, hi]. Each
 * sector is decoded once (the write whose data it holds, zeros, or garbage); then K
 * grows from 0 with a running count of sectors that differ from "the state after K". */
static int do_check_range(const char *img, const char *oracle, int64_t lo, int64_t hi)
{
	struct wrec *w;
	size_t nw;
	uint32_t seed = 0;
	uint64_t start = 0, blocks = 0, bad;
	int64_t *last, *found, match = -1;
	uint8_t p[SECTOR], expect[SECTOR];
	FILE *f;

	if (load_log(oracle, &w, &nw, &seed, &start, &blocks))
		return 2;
	if (hi > (int64_t)nw)
		hi = (int64_t)nw;
	last = malloc(blocks * sizeof(*last));
	found = malloc(blocks * sizeof(*found));
	f = fopen(img, "rb");
	if (!f || !last || !found) {
		perror("oracle: open image");
		return 2;
	}
	for (uint64_t s = 0; s < blocks; s++) {
		uint64_t lba = start + s;
		uint32_t idx;

		last[s] = -1;
		if (fseeko(f, (off_t)(lba * SECTOR), SEEK_SET) || fread(p, 1, SECTOR, f) != SECTOR) {
			fprintf(stderr, "oracle: image too short at lba %" PRIu64 "\n", lba);
			return 1;
		}
		found[s] = -2; /* garbage */
		if (util_zero(p)) {
			found[s] = -1;
		} else if (!memcmp(p, "CRNORCL1", 8)) {
			memcpy(&idx, p + 12, 4);
			fill_sector(expect, seed, idx, lba);
			if (!memcmp(p, expect, SECTOR))
				found[s] = idx;
		}
	}
	fclose(f);
	/* a sector whose expected op is zeros (kind != 0 or none) matches found -1 */
	bad = 0;
	for (uint64_t s = 0; s < blocks; s++)
		bad += found[s] != -1;
	for (int64_t k = 0; k <= hi; k++) {
		if (k >= lo && !bad) {
			match = k;
			break;
		}
		if (k == hi)
			break;
		for (uint32_t i = 0; i < w[k].n; i++) {
			uint64_t s = w[k].lba + i - start;
			int64_t before = last[s] < 0 || w[last[s]].kind ? -1 : last[s];
			int64_t after = w[k].kind ? -1 : k;

			bad -= found[s] != before;
			last[s] = k;
			bad += found[s] != after;
		}
	}
	printf("oracle: image %s: %s (writes %" PRId64 "..%" PRId64 " of %zu)\n", img,
	       match >= 0 ? "matches" : "matches no", lo, hi, nw);
	if (match >= 0)
		printf("oracle: it holds exactly the first %" PRId64 " writes\n", match);
	free(last);
	free(found);
	free(w);
	return match >= 0 ? 0 : 1;
}

static int do_pick_times(const char *oracle, uint64_t count)
{
	struct wrec *w;
	size_t nw, cands = 0;
	uint32_t seed;
	uint64_t start, blocks;

	if (load_log(oracle, &w, &nw, &seed, &start, &blocks))
		return 2;
	for (size_t k = 1; k < nw; k++)
		if (w[k - 1].acked && w[k].t_issue > w[k - 1].t_ack + 2000)
			cands++;
	for (uint64_t i = 0; i < count && cands; i++) {
		size_t want = (size_t)((i * 7919 + 13) % cands), seen = 0;

		for (size_t k = 1; k < nw; k++) {
			if (!(w[k - 1].acked && w[k].t_issue > w[k - 1].t_ack + 2000))
				continue;
			if (seen++ == want) {
				uint64_t t = w[k - 1].t_ack + (w[k].t_issue - w[k - 1].t_ack) / 2;
				time_t sec = (time_t)(t / 1000000000ull);
				struct tm tm;
				char b[64];

				gmtime_r(&sec, &tm);
				strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
				printf("%s.%09" PRIu64 "Z %zu\n", b, (uint64_t)(t % 1000000000u), k);
				break;
			}
		}
	}
	free(w);
	return 0;
}

int main(int argc, char **argv)
{
	const char *oracle = NULL;
	uint32_t seed = 1;
	uint64_t start = 0, blocks = 65536, count = 1000, seq_base = 0, seq = 0;
	int64_t writes = -1, range_lo = -1, range_hi = -1;
	int strict = 0, mix = 0;
	unsigned pace_ms = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: iscsi_oracle write|verify URL --oracle F [--seed S] [--start LBA] [--blocks N] [--count C] [--strict]\n");
		return 2;
	}
	if (!strcmp(argv[1], "pick-times") && !strcmp(argv[2], "--oracle") && argc >= 4)
		return do_pick_times(argv[3], argc >= 6 && !strcmp(argv[4], "--count") ? strtoull(argv[5], NULL, 0) : 12);
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--oracle") && i + 1 < argc) oracle = argv[++i];
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = (uint32_t)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--start") && i + 1 < argc) start = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--blocks") && i + 1 < argc) blocks = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--count") && i + 1 < argc) count = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--strict")) strict = 1;
		else if (!strcmp(argv[i], "--mix")) mix = 1;
		else if (!strcmp(argv[i], "--pace-ms") && i + 1 < argc) pace_ms = (unsigned)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--writes") && i + 1 < argc) writes = strtoll(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--writes-range") && i + 2 < argc) {
			range_lo = strtoll(argv[++i], NULL, 0);
			range_hi = strtoll(argv[++i], NULL, 0);
		}
		else if (!strcmp(argv[i], "--seq-base") && i + 1 < argc) seq_base = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--seq") && i + 1 < argc) seq = strtoull(argv[++i], NULL, 0);
		else {
			fprintf(stderr, "oracle: unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	if (!oracle || blocks < MAX_BLOCKS)
		return 2;
	if (!strcmp(argv[1], "check-image") && range_lo >= 0)
		return do_check_range(argv[2], oracle, range_lo, range_hi);
	if (!strcmp(argv[1], "check-image"))
		return do_check_image(argv[2], oracle, writes, seq_base, seq);
	if (!strcmp(argv[1], "write"))
		return do_write(argv[2], oracle, seed, start, blocks, count, mix, pace_ms);
	if (!strcmp(argv[1], "verify"))
		return do_verify(argv[2], oracle, strict);
	return 2;
}
