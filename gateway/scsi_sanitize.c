/* scsi_sanitize.c - SANITIZE (SBC-3 5.x, opcode 0x48) as a background operation of the
 * logical unit, and the gate that keeps every other command out while it runs.
 *
 * Service actions:
 *   OVERWRITE (01h)     the medium ends holding the INITIALIZATION PATTERN in every block
 *                       (each block starts with the pattern's first byte); an all-zero
 *                       final pattern deallocates instead (LBPRZ = 1: it reads the same).
 *                       On this storage a block is replaced, never rewritten in place, so
 *                       only the final pass is written: the earlier passes of OWCOUNT
 *                       guard against remanence on magnetic media and would only add
 *                       history. With INVERT the passes alternate so that the last one
 *                       writes the pattern itself (SBC-3), so the result is the same.
 *   BLOCK ERASE (02h)   every block is deallocated (reads as zeros: WABEREQ 01b).
 *   EXIT FAILURE MODE   leaves the failed state a failed sanitize left.
 *   CRYPTO ERASE (03h)  where the LUN's medium is encrypted under a key of its own
 *                       (lun->ops->crypto_erase: a volume created with --own-key in an
 *                       encrypted repository): that key is destroyed and replaced, so
 *                       every block reads zeros (WACEREQ 01b) and nothing written
 *                       before can be decrypted, anywhere; no block is written and no
 *                       purge runs. Elsewhere, and while another LU shares the key (a
 *                       clone), INVALID FIELD IN CDB; REPORT SUPPORTED OPERATION CODES
 *                       lists 03h exactly for the LUs where it runs.
 *
 * Overwrite parameter list: 0 INVERT (7) | TEST (6-5) | OWCOUNT (4-0), 1 reserved,
 * 2-3 INITIALIZATION PATTERN LENGTH (1 .. block size), 4- the pattern.
 *
 * Operation: the CDB and parameter list are validated, then a thread of the LU erases the
 * medium front to back in SAN_STEP pieces, each under the LBA range lock, and flushes.
 * IMMED = 1: GOOD once it started; IMMED = 0: status when it ends (an ABORT TASK or a
 * lost connection stops the wait, never the operation). While it runs, every command but
 * INQUIRY, REPORT LUNS and REQUEST SENSE gets CHECK CONDITION, NOT READY / LOGICAL UNIT
 * NOT READY, SANITIZE IN PROGRESS (04/1B), with the fraction done in the sense-key-
 * specific PROGRESS INDICATION; REQUEST SENSE returns that sense as its data. Unit
 * attentions stay pending meanwhile. Task management (ABORT TASK, LUN RESET, target
 * resets) and session loss do not stop it. If it fails, commands but those three and
 * SANITIZE get MEDIUM ERROR / SANITIZE COMMAND FAILED (31/03) until a sanitize succeeds
 * or EXIT FAILURE MODE.
 *
 * Sense-key-specific bytes for progress (fixed format bytes 15-17; descriptor format:
 * a sense key specific descriptor, type 02h, additional length 06h, bytes 4-6):
 *   byte 0  SKSV (7) = 1;  bytes 1-2  PROGRESS INDICATION, done / total * 65536
 *
 * Purge: on a store that keeps the medium's history (lun->ops->purge: the volume's CDP
 * log, history checkpoints, chunks shared by old states), overwriting every block is not
 * enough: once the erase is flushed, purge makes every earlier state unrecoverable
 * (cli/lun_volume.c: the volume's history up to the sanitize is dropped and a gc with
 * no grace period deletes every chunk no root references, rewriting the packs that
 * held one). The sanitize ends (GOOD, NOT READY lifted) only after the purge. Progress:
 * the erase counts for the size of the medium, the purge for an eighth of it more.
 *
 * Power loss (SBC-3 4.x: a sanitize goes on after power on): the operation is recorded
 * through lun->ops->sanitize_save before it starts, its erase position every
 * SAN_SAVE_STEPS steps (after a flush) and the start of its purge; the record is
 * dropped when it ends well, or by EXIT FAILURE MODE. scsi_sanitize_resume() (called
 * when a LUN is set up) finds it and starts the operation again where it was: the LUN
 * answers SANITIZE IN PROGRESS until it ends. A record that cannot be read leaves the
 * LUN in the failed mode (SANITIZE COMMAND FAILED) rather than serving a medium in an
 * unknown state. A failed operation keeps its record, so a restart tries it again.
 *
 * Record (the blob given to sanitize_save), big-endian:
 *   0-3    magic "CSAN"
 *   4-5    version = 1
 *   6      SERVICE ACTION: 01h OVERWRITE, 02h BLOCK ERASE or 03h CRYPTO ERASE
 *   7      phase: 1 erasing, 2 purging (the erase is complete and durable)
 *   8-15   bytes of the medium erased and flushed (phase 1: where a resume starts)
 *   16-17  pattern length P (0: deallocate, i.e. BLOCK ERASE or an all-zero pattern)
 *   18-    the INITIALIZATION PATTERN (P bytes, P <= block size)
 *   18+P   CRC32C (iSCSI polynomial) of bytes 0 .. 17+P, 4 bytes
 *
 * (SERVICE ACTION 03h, CRYPTO ERASE: P = 0, phase 1 until it ends; a resume runs
 * lun->ops->crypto_erase again, which is idempotent.)
 *
 * CRYPTO ERASE is refused for a volume without a key of its own: the repository's keys
 * are shared by every such volume, and their chunks are deduplicated across volumes
 * under one id key, so no key exists whose destruction erases that LU alone.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <isa-l/crc.h>

#include "log.h"
#include "scsi_int.h"
#include "scsi_ua.h"
#include "util.h"

#define SAN_STEP (16u << 20)      /* bytes erased per range-locked step */
#define SAN_BUF (64u << 10)       /* pattern buffer: whole blocks of the pattern */
#define SAN_SAVE_STEPS 8u         /* steps between two records of the erase position */
#define ASC_SANITIZE_IN_PROGRESS 0x041b
#define ASC_SANITIZE_FAILED 0x3103
#define REC_MAGIC "CSAN"
#define REC_VERSION 1
#define REC_HDR 18u
enum { SAN_ERASE = 1, SAN_PURGE = 2 };

struct scsi_sanitize {
	struct lun *lun;
	struct scsi_lu *lu;
	pthread_t th;
	uint64_t gen;           /* lu->san_gen of this operation */
	uint8_t sa;             /* 01h OVERWRITE, 02h BLOCK ERASE, 03h CRYPTO ERASE */
	uint8_t phase;          /* SAN_ERASE or SAN_PURGE: where it starts */
	uint64_t start;         /* SAN_ERASE: first byte to erase (a resume) */
	int deallocate;         /* 1: write_zeroes; 0: write buf */
	uint8_t *buf;           /* SAN_BUF bytes of pattern (NULL when deallocating) */
	uint8_t *rec;           /* the record (layout above), rec_len bytes */
	size_t rec_len;
};

static uint16_t progress(const struct scsi_lu *lu)
{
	uint64_t done = __atomic_load_n(&lu->san_done, __ATOMIC_RELAXED);
	uint64_t total = lu->san_total;

	if (!total || done >= total)
		return 0xffff;
	return (uint16_t)(done * 65536 / total);
}

static uint32_t rec_crc(const uint8_t *p, size_t n)
{
	return crc32_iscsi((unsigned char *)p, (int)n, 0xffffffffu) ^ 0xffffffffu;
}

/* Build s->rec for the operation s (phase 1, nothing erased) with pattern pat[patlen]. */
static int rec_build(struct scsi_sanitize *s, const uint8_t *pat, uint32_t patlen)
{
	s->rec_len = REC_HDR + patlen + 4;
	s->rec = calloc(1, s->rec_len);
	if (!s->rec)
		return -ENOMEM;
	memcpy(s->rec, REC_MAGIC, 4);
	put_be16(s->rec + 4, REC_VERSION);
	s->rec[6] = s->sa;
	s->rec[7] = SAN_ERASE;
	put_be16(s->rec + 16, (uint16_t)patlen);
	if (patlen)
		memcpy(s->rec + REC_HDR, pat, patlen);
	return 0;
}

/* Record phase and erase position durably (no-op without sanitize_save). */
static int rec_save(struct scsi_sanitize *s, uint8_t phase, uint64_t done)
{
	struct lun *lun = s->lun;

	if (!lun->ops->sanitize_save)
		return 0;
	s->rec[7] = phase;
	put_be64(s->rec + 8, done);
	put_be32(s->rec + s->rec_len - 4, rec_crc(s->rec, s->rec_len - 4));
	return lun->ops->sanitize_save(lun->ctx, s->rec, s->rec_len);
}

static int rec_clear(struct lun *lun)
{
	return lun->ops->sanitize_save ? lun->ops->sanitize_save(lun->ctx, NULL, 0) : 0;
}

static int stop_asked(void *arg)
{
	struct scsi_lu *lu = arg;

	return __atomic_load_n(&lu->san_stop, __ATOMIC_RELAXED);
}

static void *san_main(void *arg)
{
	struct scsi_sanitize *s = arg;
	struct lun *lun = s->lun;
	struct scsi_lu *lu = s->lu;
	uint64_t off, m;
	unsigned steps = 0;
	int rc = 0;

	if (s->sa == 0x03) { /* CRYPTO ERASE: the key goes, nothing is written */
		log_info("scsi", "LUN %s: SANITIZE CRYPTO ERASE: destroying the medium's key",
			 lun->name);
		rc = lun->ops->crypto_erase(lun->ctx, 0);
		goto out_end;
	}
	for (off = s->start; s->phase == SAN_ERASE && off < lun->size && !rc; off += SAN_STEP) {
		uint64_t n = MIN((uint64_t)SAN_STEP, lun->size - off);

		if (stop_asked(lu)) {
			rc = -ECANCELED;
			break;
		}
		scsi_range_lock(lun, off, n, &m);
		if (s->deallocate) {
			rc = lun->ops->write_zeroes(lun->ctx, off, n, 0);
		} else {
			for (uint64_t k = 0; k < n && !rc; k += SAN_BUF)
				rc = lun->ops->write(lun->ctx, off + k, s->buf,
						     (size_t)MIN((uint64_t)SAN_BUF, n - k), 0);
		}
		scsi_range_unlock(lun, m);
		__atomic_store_n(&lu->san_done, off + n, __ATOMIC_RELAXED);
		if (!rc && ++steps % SAN_SAVE_STEPS == 0 && off + n < lun->size) {
			rc = lun->ops->flush(lun->ctx);
			if (!rc)
				rc = rec_save(s, SAN_ERASE, off + n);
		}
	}
	if (!rc && s->phase == SAN_ERASE)
		rc = lun->ops->flush(lun->ctx);
	if (!rc && s->phase == SAN_ERASE && lun->ops->purge)
		rc = rec_save(s, SAN_PURGE, lun->size);
	if (!rc && lun->ops->purge) {
		log_info("scsi", "LUN %s: SANITIZE erased the medium; purging its history",
			 lun->name);
		rc = lun->ops->purge(lun->ctx, stop_asked, lu);
	}
out_end:
	if (!rc)
		rc = rec_clear(lun);
	if (!rc)
		__atomic_store_n(&lu->san_done, lu->san_total, __ATOMIC_RELAXED);
	if (rc)
		log_error("scsi", "LUN %s: SANITIZE failed (%d)", lun->name, rc);
	else
		log_info("scsi", "LUN %s: SANITIZE done", lun->name);
	pthread_mutex_lock(&lu->lock);
	lu->san_state = rc ? LU_SAN_FAILED : LU_SAN_IDLE;
	lu->san_rc = rc;
	lu->san_fin_gen = s->gen;
	pthread_cond_broadcast(&lu->san_cond);
	pthread_mutex_unlock(&lu->lock);
	return NULL;
}

/* Join and free the finished operation of lu, if any. Caller holds no lock. */
static void reap(struct scsi_lu *lu)
{
	struct scsi_sanitize *s = lu->san;

	if (!s)
		return;
	pthread_join(s->th, NULL);
	free(s->buf);
	free(s->rec);
	free(s);
	lu->san = NULL;
}

void scsi_sanitize_stop(struct scsi_lu *lu)
{
	__atomic_store_n(&lu->san_stop, 1, __ATOMIC_RELAXED);
	reap(lu);
}

/* 1 if CRYPTO ERASE runs on lun (now: not refused because another LU shares the key;
 * now 0: ever, for the opcode report and VPD B1h). */
static int crypto_ok(const struct lun *lun, int now)
{
	int rc;

	if (!lun || !lun->ops->crypto_erase)
		return 0;
	rc = lun->ops->crypto_erase(lun->ctx, now ? 2 : 1);
	return rc == 0;
}

int scsi_sanitize_crypto_supported(const struct lun *lun)
{
	return crypto_ok(lun, 0);
}

/* Fill buf with whole blocks of the pattern; 1 if it is all zeros. */
static int fill_pattern(uint8_t *buf, uint32_t bs, const uint8_t *pat, uint32_t patlen)
{
	for (uint32_t i = 0; i < SAN_BUF; i++)
		buf[i] = pat[(i % bs) % patlen];
	return util_is_zero(buf, SAN_BUF);
}

static int aborted(const struct scsi_cmd *c)
{
	return __atomic_load_n(&c->aborted, __ATOMIC_RELAXED);
}

static void san_free(struct scsi_sanitize *s)
{
	if (!s)
		return;
	free(s->buf);
	free(s->rec);
	free(s);
}

/* A new operation sa on lun with the overwrite pattern pat[patlen] (patlen 0: BLOCK
 * ERASE): the pattern buffer and the record. */
static int san_new(struct lun *lun, struct scsi_lu *lu, uint8_t sa, const uint8_t *pat,
		   uint32_t patlen, struct scsi_sanitize **out)
{
	uint32_t bs = lun->block_size;
	struct scsi_sanitize *s = calloc(1, sizeof(*s));
	int rc = -ENOMEM;

	if (!s)
		return -ENOMEM;
	s->lun = lun;
	s->lu = lu;
	s->sa = sa;
	s->phase = SAN_ERASE;
	s->deallocate = 1;
	if (patlen) {
		if (bs > SAN_BUF || SAN_BUF % bs || patlen > bs) {
			rc = -EINVAL;
			goto out_free;
		}
		s->buf = malloc(SAN_BUF);
		if (!s->buf)
			goto out_free;
		/* INVERT alternates the passes so that the last one writes the pattern itself. */
		s->deallocate = fill_pattern(s->buf, bs, pat, patlen);
		if (s->deallocate) {
			free(s->buf);
			s->buf = NULL;
		}
	}
	rc = rec_build(s, pat, s->deallocate ? 0 : patlen);
	if (rc)
		goto out_free;
	*out = s;
	return 0;

out_free:
	san_free(s);
	return rc;
}

/* Start operation s on its LU: -EBUSY if one runs. With save, it is recorded first (a
 * resumed one is recorded already). On success the caller holds lu->lock and *gen_out
 * is the operation's generation; s belongs to the LU. */
static int san_begin(struct scsi_sanitize *s, int save, uint64_t *gen_out)
{
	struct scsi_lu *lu = s->lu;
	struct lun *lun = s->lun;
	int rc;

	pthread_mutex_lock(&lu->san_start);
	pthread_mutex_lock(&lu->lock);
	if (lu->san_state == LU_SAN_RUNNING) { /* another SANITIZE got past the gate first */
		pthread_mutex_unlock(&lu->lock);
		pthread_mutex_unlock(&lu->san_start);
		return -EBUSY;
	}
	pthread_mutex_unlock(&lu->lock);
	reap(lu); /* the previous operation has ended */
	if (save) {
		rc = rec_save(s, SAN_ERASE, 0);
		if (rc) {
			pthread_mutex_unlock(&lu->san_start);
			log_error("scsi", "LUN %s: cannot record the SANITIZE (%d)", lun->name, rc);
			return rc;
		}
	}
	pthread_mutex_lock(&lu->lock);
	*gen_out = s->gen = ++lu->san_gen;
	lu->san_total = lun->size + (lun->ops->purge ? MAX(lun->size / 8, 1) : 0);
	lu->san_done = s->phase == SAN_ERASE ? s->start : lun->size;
	lu->san_stop = 0;
	lu->san_state = LU_SAN_RUNNING;
	lu->san = s;
	rc = pthread_create(&s->th, NULL, san_main, s);
	if (rc) {
		lu->san = NULL;
		lu->san_state = LU_SAN_IDLE;
		pthread_mutex_unlock(&lu->lock);
		if (save)
			rec_clear(lun);
		pthread_mutex_unlock(&lu->san_start);
		return -rc;
	}
	pthread_mutex_unlock(&lu->san_start);
	return 0;
}

int scsi_sbc_sanitize(struct scsi_cmd *c, struct lun *lun)
{
	unsigned sa = c->cdb[1] & 0x1f;
	int immed = !!(c->cdb[1] & 0x80);
	uint32_t plen = get_be16(c->cdb + 7), bs = lun->block_size, patlen = 0;
	struct scsi_lu *lu = scsi_lu_get(lun);
	struct scsi_sanitize *s = NULL;
	const uint8_t *pat = NULL;
	uint64_t gen;
	int rc;

	c->xfer_len = plen;
	if (!lu)
		return -ENOMEM;
	if ((c->cdb[1] & 0x40) || c->cdb[2] || c->cdb[3] || c->cdb[4] || c->cdb[5] || c->cdb[6]) {
		scsi_invalid_field(c, (c->cdb[1] & 0x40) ? 1 : 2, (c->cdb[1] & 0x40) ? 6 : -1);
		return 0;
	}
	if ((sa != 0x01 && sa != 0x02 && sa != 0x03 && sa != 0x1f) ||
	    (sa == 0x03 && !crypto_ok(lun, 1))) {
		scsi_invalid_field(c, 1, 4);
		return 0;
	}
	if (sa != 0x01 && plen) {
		scsi_invalid_field(c, 7, -1);
		return 0;
	}
	if (sa == 0x1f) { /* EXIT FAILURE MODE: the failed operation is given up */
		pthread_mutex_lock(&lu->san_start);
		pthread_mutex_lock(&lu->lock);
		rc = lu->san_state == LU_SAN_FAILED;
		pthread_mutex_unlock(&lu->lock);
		if (rc) {
			rc = rec_clear(lun);
			pthread_mutex_lock(&lu->lock);
			if (!rc && lu->san_state == LU_SAN_FAILED)
				lu->san_state = LU_SAN_IDLE;
			pthread_mutex_unlock(&lu->lock);
		}
		pthread_mutex_unlock(&lu->san_start);
		if (rc)
			return rc;
		scsi_good(c);
		return 0;
	}
	if (sa == 0x01) { /* OVERWRITE */
		const uint8_t *p = c->buf;
		uint32_t owcount;

		if (plen < 5 || plen > bs + 4) {
			scsi_invalid_field(c, 7, -1);
			return 0;
		}
		if (c->data_out_len < plen) {
			scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
			return 0;
		}
		patlen = get_be16(p + 2);
		owcount = p[0] & 0x1f;
		if (p[0] & 0x60) {
			scsi_invalid_param(c, 0, 6); /* TEST */
			return 0;
		}
		if (owcount == 0) {
			scsi_invalid_param(c, 0, 4);
			return 0;
		}
		if (patlen == 0 || patlen > bs || patlen + 4 != plen) {
			scsi_invalid_param(c, 2, -1);
			return 0;
		}
		pat = p + 4;
	}
	rc = san_new(lun, lu, (uint8_t)sa, pat, patlen, &s);
	if (rc)
		return rc;
	rc = san_begin(s, 1, &gen);
	if (rc == -EBUSY) {
		san_free(s);
		scsi_sense_asc(c, SK_NOT_READY, ASC_SANITIZE_IN_PROGRESS);
		return 0;
	}
	if (rc) {
		san_free(s);
		return rc;
	}
	log_info("scsi", "LUN %s: SANITIZE %s started%s", lun->name,
		 sa == 0x01 ? "OVERWRITE" : sa == 0x02 ? "BLOCK ERASE" : "CRYPTO ERASE",
		 immed ? " (IMMED)" : "");
	if (immed) {
		pthread_mutex_unlock(&lu->lock);
		scsi_good(c);
		return 0;
	}
	while (lu->san_fin_gen < gen && !aborted(c)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&lu->san_cond, &lu->lock, &ts);
	}
	rc = lu->san_fin_gen >= gen ? lu->san_rc : 0;
	pthread_mutex_unlock(&lu->lock);
	if (rc == -ECANCELED)
		rc = -EIO;
	if (rc == 0)
		scsi_good(c);
	return rc;
}

/* Enter the failed mode (a record that cannot be trusted). */
static void san_fail(struct scsi_lu *lu, int rc)
{
	pthread_mutex_lock(&lu->lock);
	lu->san_state = LU_SAN_FAILED;
	lu->san_rc = rc;
	pthread_mutex_unlock(&lu->lock);
}

int scsi_sanitize_resume(struct lun *lun)
{
	struct scsi_sanitize *s = NULL;
	struct scsi_lu *lu;
	uint8_t *b = NULL;
	void *blob = NULL;
	size_t len = 0;
	uint32_t patlen;
	uint64_t gen;
	int rc;

	if (!lun->ops->sanitize_load)
		return 0;
	rc = lun->ops->sanitize_load(lun->ctx, &blob, &len);
	if (rc == -ENOENT || (!rc && !len)) {
		free(blob);
		return 0;
	}
	lu = scsi_lu_get(lun);
	if (!lu) {
		free(blob);
		return -ENOMEM;
	}
	if (rc) {
		log_error("scsi", "LUN %s: the record of a SANITIZE in progress cannot be read "
			  "(%d); the LUN stays in the sanitize failed mode", lun->name, rc);
		san_fail(lu, rc);
		return rc;
	}
	b = blob;
	rc = -EBADMSG;
	if (len < REC_HDR + 4 || memcmp(b, REC_MAGIC, 4) || get_be16(b + 4) != REC_VERSION)
		goto out_bad;
	patlen = get_be16(b + 16);
	if (len != REC_HDR + patlen + 4 || get_be32(b + len - 4) != rec_crc(b, len - 4) ||
	    (b[6] != 0x01 && b[6] != 0x02 && (b[6] != 0x03 || !lun->ops->crypto_erase)) ||
	    (b[7] != SAN_ERASE && b[7] != SAN_PURGE) ||
	    get_be64(b + 8) > lun->size || get_be64(b + 8) % lun->block_size)
		goto out_bad;
	rc = san_new(lun, lu, b[6], b + REC_HDR, patlen, &s);
	if (rc)
		goto out_bad;
	s->phase = b[7];
	s->start = get_be64(b + 8);
	rc = san_begin(s, 0, &gen);
	if (rc)
		goto out_bad;
	pthread_mutex_unlock(&lu->lock);
	log_info("scsi", "LUN %s: resuming the SANITIZE %s that was in progress (%s at byte "
		 "%llu)", lun->name, b[6] == 0x01 ? "OVERWRITE" : b[6] == 0x02 ? "BLOCK ERASE" :
		 "CRYPTO ERASE",
		 b[7] == SAN_ERASE ? "erasing" : "purging", (unsigned long long)get_be64(b + 8));
	free(blob);
	return 0;

out_bad:
	log_error("scsi", "LUN %s: the record of a SANITIZE in progress is not valid (%d); "
		  "the LUN stays in the sanitize failed mode", lun->name, rc);
	san_free(s);
	san_fail(lu, rc);
	free(blob);
	return rc;
}

/* Sense-key-specific progress into 3 bytes. */
static void put_progress(uint8_t *p, uint16_t prog)
{
	p[0] = 0x80;
	put_be16(p + 1, prog);
}

int scsi_sanitize_gate(struct scsi_cmd *c, struct lun *lun)
{
	struct scsi_lu *lu = __atomic_load_n(&lun->scsi_priv, __ATOMIC_ACQUIRE);
	uint8_t op = c->cdb[0], state, d[18];
	uint16_t prog;

	if (!lu)
		return 0;
	state = __atomic_load_n(&lu->san_state, __ATOMIC_ACQUIRE);
	if (state == LU_SAN_IDLE || op == 0x12 || op == 0xa0)
		return 0;
	if (state == LU_SAN_FAILED) {
		if (op == 0x03 || op == 0x48)
			return 0;
		scsi_sense_asc(c, SK_MEDIUM_ERROR, ASC_SANITIZE_FAILED);
		c->xfer_len = scsi_data_out_len(c->cdb, c->map, c->lun_id);
		return 1;
	}
	prog = progress(lu);
	if (op == 0x03) {
		if (c->cdb[1] & 0xfe)
			return 0; /* its own CDB error */
		memset(d, 0, sizeof(d));
		if (c->cdb[1] & 1) { /* descriptor format + sense key specific descriptor */
			d[0] = 0x72;
			d[1] = SK_NOT_READY;
			d[2] = (uint8_t)(ASC_SANITIZE_IN_PROGRESS >> 8);
			d[3] = (uint8_t)ASC_SANITIZE_IN_PROGRESS;
			d[7] = 8;
			d[8] = 0x02;
			d[9] = 0x06;
			put_progress(d + 12, prog);
			scsi_put_data_in(c, d, 16, c->cdb[4]);
		} else {
			d[0] = 0x70;
			d[2] = SK_NOT_READY;
			d[7] = 10;
			d[12] = (uint8_t)(ASC_SANITIZE_IN_PROGRESS >> 8);
			d[13] = (uint8_t)ASC_SANITIZE_IN_PROGRESS;
			put_progress(d + 15, prog);
			scsi_put_data_in(c, d, 18, c->cdb[4]);
		}
		return 1;
	}
	scsi_sense_asc(c, SK_NOT_READY, ASC_SANITIZE_IN_PROGRESS);
	put_progress(c->sense + 15, prog);
	c->xfer_len = scsi_data_out_len(c->cdb, c->map, c->lun_id);
	return 1;
}
