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
 *   CRYPTO ERASE (03h)  refused (INVALID FIELD IN CDB): the LUN does not know that its
 *                       repository is encrypted.
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
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "scsi_int.h"
#include "scsi_ua.h"
#include "util.h"

#define SAN_STEP (16u << 20)      /* bytes erased per range-locked step */
#define SAN_BUF (64u << 10)       /* pattern buffer: whole blocks of the pattern */
#define ASC_SANITIZE_IN_PROGRESS 0x041b
#define ASC_SANITIZE_FAILED 0x3103

struct scsi_sanitize {
	struct lun *lun;
	struct scsi_lu *lu;
	pthread_t th;
	uint64_t gen;           /* lu->san_gen of this operation */
	int deallocate;         /* 1: write_zeroes; 0: write buf */
	uint8_t *buf;           /* SAN_BUF bytes of pattern (NULL when deallocating) */
};

static uint16_t progress(const struct scsi_lu *lu)
{
	uint64_t done = __atomic_load_n(&lu->san_done, __ATOMIC_RELAXED);
	uint64_t total = lu->san_total;

	if (!total || done >= total)
		return 0xffff;
	return (uint16_t)(done * 65536 / total);
}

static void *san_main(void *arg)
{
	struct scsi_sanitize *s = arg;
	struct lun *lun = s->lun;
	struct scsi_lu *lu = s->lu;
	uint64_t off, m;
	int rc = 0;

	for (off = 0; off < lun->size && !rc; off += SAN_STEP) {
		uint64_t n = MIN((uint64_t)SAN_STEP, lun->size - off);

		if (__atomic_load_n(&lu->san_stop, __ATOMIC_RELAXED)) {
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
	}
	if (!rc)
		rc = lun->ops->flush(lun->ctx);
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
	free(s);
	lu->san = NULL;
}

void scsi_sanitize_stop(struct scsi_lu *lu)
{
	__atomic_store_n(&lu->san_stop, 1, __ATOMIC_RELAXED);
	reap(lu);
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

int scsi_sbc_sanitize(struct scsi_cmd *c, struct lun *lun)
{
	unsigned sa = c->cdb[1] & 0x1f;
	int immed = !!(c->cdb[1] & 0x80);
	uint32_t plen = get_be16(c->cdb + 7), bs = lun->block_size;
	struct scsi_lu *lu = scsi_lu_get(lun);
	struct scsi_sanitize *s;
	uint64_t gen;
	int rc;

	c->xfer_len = plen;
	if (!lu)
		return -ENOMEM;
	if ((c->cdb[1] & 0x40) || c->cdb[2] || c->cdb[3] || c->cdb[4] || c->cdb[5] || c->cdb[6]) {
		scsi_invalid_field(c, (c->cdb[1] & 0x40) ? 1 : 2, (c->cdb[1] & 0x40) ? 6 : -1);
		return 0;
	}
	if (sa != 0x01 && sa != 0x02 && sa != 0x1f) { /* CRYPTO ERASE (3) and the rest */
		scsi_invalid_field(c, 1, 4);
		return 0;
	}
	if (sa != 0x01 && plen) {
		scsi_invalid_field(c, 7, -1);
		return 0;
	}
	if (sa == 0x1f) { /* EXIT FAILURE MODE */
		pthread_mutex_lock(&lu->lock);
		if (lu->san_state == LU_SAN_FAILED)
			lu->san_state = LU_SAN_IDLE;
		pthread_mutex_unlock(&lu->lock);
		scsi_good(c);
		return 0;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->lun = lun;
	s->lu = lu;
	s->deallocate = 1;
	if (sa == 0x01) { /* OVERWRITE */
		const uint8_t *p = c->buf;
		uint32_t patlen, owcount;

		if (plen < 5 || plen > bs + 4) {
			scsi_invalid_field(c, 7, -1);
			goto out_free;
		}
		if (c->data_out_len < plen) {
			scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
			goto out_free;
		}
		patlen = get_be16(p + 2);
		owcount = p[0] & 0x1f;
		if (p[0] & 0x60) {
			scsi_invalid_param(c, 0, 6); /* TEST */
			goto out_free;
		}
		if (owcount == 0) {
			scsi_invalid_param(c, 0, 4);
			goto out_free;
		}
		if (patlen == 0 || patlen > bs || patlen + 4 != plen) {
			scsi_invalid_param(c, 2, -1);
			goto out_free;
		}
		if (bs > SAN_BUF || SAN_BUF % bs) {
			rc = -EINVAL;
			goto out_free_rc;
		}
		s->buf = malloc(SAN_BUF);
		if (!s->buf) {
			rc = -ENOMEM;
			goto out_free_rc;
		}
		/* INVERT alternates the passes so that the last one writes the pattern itself. */
		s->deallocate = fill_pattern(s->buf, bs, p + 4, patlen);
		if (s->deallocate) {
			free(s->buf);
			s->buf = NULL;
		}
	}
	pthread_mutex_lock(&lu->san_start);
	pthread_mutex_lock(&lu->lock);
	if (lu->san_state == LU_SAN_RUNNING) { /* another SANITIZE got past the gate first */
		pthread_mutex_unlock(&lu->lock);
		pthread_mutex_unlock(&lu->san_start);
		scsi_sense_asc(c, SK_NOT_READY, ASC_SANITIZE_IN_PROGRESS);
		goto out_free;
	}
	pthread_mutex_unlock(&lu->lock);
	reap(lu); /* the previous operation has ended */
	pthread_mutex_lock(&lu->lock);
	gen = ++lu->san_gen;
	s->gen = gen;
	lu->san_done = 0;
	lu->san_total = lun->size;
	lu->san_stop = 0;
	lu->san_state = LU_SAN_RUNNING;
	lu->san = s;
	rc = pthread_create(&s->th, NULL, san_main, s);
	if (rc) {
		lu->san = NULL;
		lu->san_state = LU_SAN_IDLE;
		pthread_mutex_unlock(&lu->lock);
		pthread_mutex_unlock(&lu->san_start);
		rc = -rc;
		goto out_free_rc;
	}
	pthread_mutex_unlock(&lu->san_start);
	log_info("scsi", "LUN %s: SANITIZE %s started%s", lun->name,
		 sa == 0x01 ? "OVERWRITE" : "BLOCK ERASE", immed ? " (IMMED)" : "");
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

out_free:
	rc = 0;
out_free_rc:
	free(s->buf);
	free(s);
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
