/* scsi_sbc.c - SBC-3 block commands: READ/WRITE 6/10/12/16, WRITE AND VERIFY, VERIFY,
 * READ CAPACITY 10/16, SYNCHRONIZE CACHE, WRITE SAME, UNMAP, PRE-FETCH.
 *
 * Wire layouts (all fields big-endian):
 *
 * READ CAPACITY (10) parameter data, 8 bytes:
 *   0-3  RETURNED LOGICAL BLOCK ADDRESS (last LBA; 0xFFFFFFFF when it does not fit)
 *   4-7  LOGICAL BLOCK LENGTH IN BYTES
 *
 * READ CAPACITY (16) parameter data, 32 bytes:
 *   0-7  RETURNED LOGICAL BLOCK ADDRESS (last LBA)
 *   8-11 LOGICAL BLOCK LENGTH IN BYTES
 *   12   P_TYPE (3-1), PROT_EN (0): 0, no protection information
 *   13   P_I_EXPONENT (7-4) = 0, LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT (3-0):
 *        lun->phys_exp (0; 3 for a "512e" volume of 4 KiB physical blocks)
 *   14   LBPME (7) = 1, LBPRZ (6) = 1 (unmapped blocks read as zeros),
 *        LOWEST ALIGNED LBA (5-0, high bits) = 0
 *   15   LOWEST ALIGNED LBA (low bits) = 0
 *   16-31 reserved
 *
 * GET LBA STATUS parameter data, 8 + 16 * n bytes:
 *   0-3  PARAMETER DATA LENGTH (4 + 16 * n: the bytes after this field), 4-7 reserved,
 *   then n LBA status descriptors, in LBA order, each covering the next run of blocks:
 *   0-7 STARTING LBA, 8-11 NUMBER OF LOGICAL BLOCKS, 12 PROVISIONING STATUS (3-0):
 *   0 mapped, 1 deallocated; 13-15 reserved
 *
 * UNMAP parameter list (data-out):
 *   0-1  UNMAP DATA LENGTH (n - 1, bytes following this field)
 *   2-3  UNMAP BLOCK DESCRIPTOR DATA LENGTH (16 * descriptors)
 *   4-7  reserved
 *   8-   block descriptors, 16 bytes each:
 *        0-7 UNMAP LOGICAL BLOCK ADDRESS, 8-11 NUMBER OF LOGICAL BLOCKS, 12-15 reserved
 *
 * Short data-out: when the initiator sends fewer bytes than the CDB's transfer length
 * (Expected Data Transfer Length below it), a write moves only the whole blocks it
 * received and answers GOOD (the transport reports the overflow residual); a data-out
 * that ends inside a block is refused whole with ILLEGAL REQUEST / INVALID FIELD IN
 * INFORMATION UNIT, so no partial block is ever written. A read returns
 * min(xfer_len, edtl) bytes, the last block partially when edtl ends inside it.
 * WRITE SAME (one block) and COMPARE AND WRITE (compare half, write half) take exactly
 * the data-out their CDB describes: any other Expected Data Transfer Length is refused
 * the same way, since which bytes the initiator meant as the pattern, or as compare
 * and write data, cannot be known (a longer one is not cut to fit).
 */
#include <errno.h>
#include <string.h>

#include "scsi_int.h"
#include "scsi_ua.h"
#include "util.h"

/* Scratch for partial-block reads, VERIFY compares and WRITE SAME patterns: one per
 * worker thread, never allocated per command. */
#define BOUNCE_SIZE (64u << 10)
static __thread uint8_t bounce[BOUNCE_SIZE] __attribute__((aligned(64)));

/* Medium writes, each under the LBA range lock (scsi_ua.h) so that COMPARE AND WRITE is
 * atomic against them. */
int scsi_locked_write(struct lun *lun, uint64_t off, const void *buf, size_t len, int fua)
{
	uint64_t m;
	int rc;

	scsi_range_lock(lun, off, len, &m);
	rc = lun->ops->write(lun->ctx, off, buf, len, fua);
	scsi_range_unlock(lun, m);
	return rc;
}

int scsi_locked_zero(struct lun *lun, uint64_t off, uint64_t len, int fua)
{
	uint64_t m;
	int rc;

	scsi_range_lock(lun, off, len, &m);
	rc = lun->ops->write_zeroes(lun->ctx, off, len, fua);
	scsi_range_unlock(lun, m);
	return rc;
}

static inline uint64_t lun_blocks(const struct lun *lun)
{
	return lun->size / lun->block_size;
}

/* 0 if [lba, lba + blocks) lies on the medium; LBA OUT OF RANGE sense otherwise. */
static int range_ok(struct scsi_cmd *c, const struct lun *lun, uint64_t lba, uint64_t blocks)
{
	uint64_t n = lun_blocks(lun);

	if (lba > n || blocks > n - lba) {
		scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return 0;
	}
	return 1;
}

/* LBA and transfer length of the READ/WRITE/VERIFY/WRITE AND VERIFY/PRE-FETCH/SYNC
 * CACHE/WRITE SAME families, by CDB size. */
static void decode_rw(const uint8_t *cdb, uint64_t *lba, uint32_t *blocks)
{
	switch (cdb[0] >> 5) {
	case 0: /* 6-byte */
		*lba = (uint64_t)(cdb[1] & 0x1f) << 16 | get_be16(cdb + 2);
		*blocks = cdb[4];
		break;
	case 1: case 2: /* 10-byte */
		*lba = get_be32(cdb + 2);
		*blocks = get_be16(cdb + 7);
		break;
	case 4: /* 16-byte */
		*lba = get_be64(cdb + 2);
		*blocks = get_be32(cdb + 10);
		break;
	default: /* 12-byte */
		*lba = get_be32(cdb + 2);
		*blocks = get_be32(cdb + 6);
		break;
	}
}

static inline uint32_t room(const struct scsi_cmd *c)
{
	return c->edtl < c->buf_cap ? c->edtl : c->buf_cap;
}

int scsi_sbc_read(struct scsi_cmd *c, struct lun *lun)
{
	uint32_t bs = lun->block_size, blocks, have, whole;
	uint64_t lba, len, off;
	int rc;

	decode_rw(c->cdb, &lba, &blocks);
	if (c->cdb[0] == 0x08) {
		if (blocks == 0)
			blocks = 256;
	} else if (c->cdb[1] & 0xe0) {
		scsi_invalid_field(c, 1, 7); /* RDPROTECT: no protection information */
		return 0;
	}
	len = (uint64_t)blocks * bs;
	c->xfer_len = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
	if (!range_ok(c, lun, lba, blocks))
		return 0;
	if (len > SCSI_MAX_XFER) {
		scsi_invalid_field(c, c->cdb[0] == 0x28 ? 7 : c->cdb[0] == 0xa8 ? 6 : 10, -1);
		return 0;
	}
	off = lba * bs;
	have = room(c);
	if (len <= have) {
		if (len) {
			rc = lun->ops->read(lun->ctx, off, c->buf, len);
			if (rc < 0)
				return rc;
		}
		c->data_in_len = (uint32_t)len;
		return 0;
	}
	/* edtl below the transfer length: send what fits, the last block partially. */
	whole = have / bs * bs;
	if (whole) {
		rc = lun->ops->read(lun->ctx, off, c->buf, whole);
		if (rc < 0)
			return rc;
	}
	if (have > whole) {
		if (bs > BOUNCE_SIZE)
			return -EINVAL;
		rc = lun->ops->read(lun->ctx, off + whole, bounce, bs);
		if (rc < 0)
			return rc;
		memcpy(c->buf + whole, bounce, have - whole);
	}
	c->data_in_len = have;
	return 0;
}

/* Bytes of data-out a write of len bytes may use, or -1 after setting sense when the
 * data-out ends inside a block. */
static int64_t usable_out(struct scsi_cmd *c, uint32_t bs, uint64_t len)
{
	if (c->data_out_len >= len)
		return (int64_t)len;
	if (c->data_out_len % bs) {
		scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IU);
		return -1;
	}
	return c->data_out_len;
}

int scsi_sbc_write(struct scsi_cmd *c, struct lun *lun)
{
	uint32_t bs = lun->block_size, blocks;
	uint64_t lba, len;
	int64_t n;
	int fua = 0;

	decode_rw(c->cdb, &lba, &blocks);
	if (c->cdb[0] == 0x0a) {
		if (blocks == 0)
			blocks = 256;
	} else {
		if (c->cdb[1] & 0xe0) {
			scsi_invalid_field(c, 1, 7); /* WRPROTECT: no protection information */
			return 0;
		}
		/* WRITE: FUA bit; WRITE AND VERIFY: the verify reads the medium, so durable. */
		fua = (c->cdb[0] & 0x0f) == 0x0e ? 1 : !!(c->cdb[1] & 0x08);
	}
	len = (uint64_t)blocks * bs;
	c->xfer_len = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
	if (!range_ok(c, lun, lba, blocks))
		return 0;
	if (len > SCSI_MAX_XFER) {
		scsi_invalid_field(c, c->cdb[0] == 0x2a || c->cdb[0] == 0x2e ? 7 :
				   c->cdb[0] == 0x8a || c->cdb[0] == 0x8e ? 10 : 6, -1);
		return 0;
	}
	n = usable_out(c, bs, len);
	if (n < 0)
		return 0;
	if (n) {
		int rc = scsi_locked_write(lun, lba * bs, c->buf, (size_t)n, fua);

		if (rc < 0)
			return rc;
	}
	scsi_good(c);
	return 0;
}

int scsi_sbc_read_capacity10(struct scsi_cmd *c, struct lun *lun)
{
	uint8_t d[8];
	uint64_t last = lun_blocks(lun) - 1;

	if (c->cdb[1] & 0xfe) {
		scsi_invalid_field(c, 1, 7);
		return 0;
	}
	/* PMI = 0 requires LOGICAL BLOCK ADDRESS = 0 */
	if (!(c->cdb[8] & 1) && get_be32(c->cdb + 2)) {
		scsi_invalid_field(c, 2, -1);
		return 0;
	}
	put_be32(d, last > 0xffffffffu ? 0xffffffffu : (uint32_t)last);
	put_be32(d + 4, lun->block_size);
	scsi_put_data_in(c, d, sizeof(d), sizeof(d));
	return 0;
}

static int read_capacity16(struct scsi_cmd *c, struct lun *lun)
{
	uint8_t d[32];

	memset(d, 0, sizeof(d));
	put_be64(d, lun_blocks(lun) - 1);
	put_be32(d + 8, lun->block_size);
	d[13] = lun->phys_exp & 0x0f;
	d[14] = 0x80 | 0x40; /* LBPME, LBPRZ */
	scsi_put_data_in(c, d, sizeof(d), get_be32(c->cdb + 10));
	return 0;
}

/* GET LBA STATUS: descriptors from the requested LBA on, as many as the allocation length
 * holds (at least one, at most GLS_MAX_DESC), each a run of blocks of one provisioning
 * state from lun->ops->map_status (0 mapped, 1 deallocated); without that op, one mapped
 * descriptor to the end of the medium. */
#define GLS_MAX_DESC 64u
static int get_lba_status(struct scsi_cmd *c, struct lun *lun)
{
	uint8_t d[8 + 16 * GLS_MAX_DESC];
	uint64_t lba = get_be64(c->cdb + 2), n = lun_blocks(lun);
	uint32_t alloc = get_be32(c->cdb + 10), bs = lun->block_size, want, nd = 0;

	if (lba >= n) {
		scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return 0;
	}
	want = alloc > 24 ? (alloc - 8) / 16 : 1;
	if (want > GLS_MAX_DESC)
		want = GLS_MAX_DESC;
	memset(d, 0, sizeof(d));
	while (nd < want && lba < n) {
		uint8_t *p = d + 8 + 16 * nd;
		uint64_t blocks = n - lba > 0xffffffffu ? 0xffffffffu : n - lba, run = blocks * bs;
		int mapped = 1;

		if (lun->ops->map_status) {
			int rc = lun->ops->map_status(lun->ctx, lba * bs, blocks * bs, &run, &mapped);

			if (rc < 0)
				return rc;
			if (run < bs || run % bs || run > blocks * bs)
				return -EIO;
		}
		put_be64(p, lba);
		put_be32(p + 8, (uint32_t)(run / bs));
		p[12] = mapped ? 0 : 1;
		lba += run / bs;
		nd++;
	}
	put_be32(d, 4 + 16 * nd);
	scsi_put_data_in(c, d, 8 + 16 * nd, alloc);
	return 0;
}

int scsi_sbc_service_action_in16(struct scsi_cmd *c, struct lun *lun)
{
	switch (c->cdb[1] & 0x1f) {
	case 0x10:
		return read_capacity16(c, lun);
	case 0x12:
		return get_lba_status(c, lun);
	default:
		scsi_invalid_field(c, 1, 4);
		return 0;
	}
}

int scsi_sbc_sync_cache(struct scsi_cmd *c, struct lun *lun)
{
	uint64_t lba;
	uint32_t blocks;

	decode_rw(c->cdb, &lba, &blocks);
	if (!range_ok(c, lun, lba, blocks))
		return 0;
	return lun->ops->flush(lun->ctx);
}

int scsi_sbc_prefetch(struct scsi_cmd *c, struct lun *lun)
{
	uint64_t lba;
	uint32_t blocks;

	decode_rw(c->cdb, &lba, &blocks);
	if (!range_ok(c, lun, lba, blocks))
		return 0;
	scsi_good(c);
	return 0;
}

/* Compare [off, off + len) of the medium with data (stride 0: data is len bytes;
 * stride = bs: the one block in data is compared with every block). Returns 0 and
 * GOOD, 0 and MISCOMPARE sense with the data-out offset in INFORMATION, or a lun
 * error. */
static int compare_medium(struct scsi_cmd *c, struct lun *lun, uint64_t off, uint64_t len,
			  const uint8_t *data, uint32_t stride)
{
	uint32_t bs = lun->block_size, chunk = BOUNCE_SIZE / bs * bs;
	uint64_t done = 0;

	if (!chunk)
		return -EINVAL;
	while (done < len) {
		uint32_t n = len - done < chunk ? (uint32_t)(len - done) : chunk;
		int rc = lun->ops->read(lun->ctx, off + done, bounce, n);

		if (rc < 0)
			return rc;
		if (data) {
			for (uint32_t i = 0; i < n; i += bs) {
				const uint8_t *want = stride ? data : data + done + i;
				const uint8_t *got = bounce + i;

				if (memcmp(want, got, bs)) {
					uint32_t j = 0;

					while (want[j] == got[j])
						j++;
					scsi_sense_asc(c, SK_MISCOMPARE, ASC_MISCOMPARE_VERIFY);
					scsi_sense_info(c, stride ? j : (uint32_t)(done + i + j));
					return 0;
				}
			}
		}
		done += n;
	}
	scsi_good(c);
	return 0;
}

int scsi_sbc_verify(struct scsi_cmd *c, struct lun *lun)
{
	uint32_t bs = lun->block_size, blocks;
	unsigned bytchk = (c->cdb[1] >> 1) & 3;
	uint64_t lba, len, need;

	decode_rw(c->cdb, &lba, &blocks);
	if (c->cdb[1] & 0xe0) {
		scsi_invalid_field(c, 1, 7); /* VRPROTECT */
		return 0;
	}
	if (bytchk == 2) {
		scsi_invalid_field(c, 1, 2);
		return 0;
	}
	len = (uint64_t)blocks * bs;
	need = bytchk == 1 ? len : bytchk == 3 ? (blocks ? bs : 0) : 0;
	c->xfer_len = (uint32_t)(need > UINT32_MAX ? UINT32_MAX : need);
	if (!range_ok(c, lun, lba, blocks))
		return 0;
	if (len > SCSI_MAX_XFER) {
		scsi_invalid_field(c, c->cdb[0] == 0x2f ? 7 : c->cdb[0] == 0xaf ? 6 : 10, -1);
		return 0;
	}
	if (need && c->data_out_len < need) {
		/* Nothing to compare the missing bytes against: refuse rather than guess. */
		scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IU);
		return 0;
	}
	return compare_medium(c, lun, lba * bs, len, need ? c->buf : NULL, bytchk == 3 ? bs : 0);
}

int scsi_sbc_write_same(struct scsi_cmd *c, struct lun *lun)
{
	uint32_t bs = lun->block_size, blocks;
	uint8_t flags = c->cdb[1];
	int ndob = c->cdb[0] == 0x93 && (flags & 1);
	uint64_t lba, off, len, done;
	int rc;

	decode_rw(c->cdb, &lba, &blocks);
	c->xfer_len = ndob ? 0 : bs;
	if (flags & 0xe0) {
		scsi_invalid_field(c, 1, 7); /* WRPROTECT */
		return 0;
	}
	if (flags & 0x10) {
		scsi_invalid_field(c, 1, 4); /* ANCHOR: ANC_SUP = 0 */
		return 0;
	}
	if (flags & 0x06) {
		scsi_invalid_field(c, 1, 2); /* PBDATA / LBDATA: unsupported */
		return 0;
	}
	if (c->cdb[0] == 0x41 && (flags & 1)) {
		scsi_invalid_field(c, 1, 0);
		return 0;
	}
	if (!range_ok(c, lun, lba, blocks))
		return 0;
	if (blocks == 0 || blocks > SCSI_MAX_WRITE_SAME_BYTES / bs) {
		/* WSNZ = 1 in VPD B0 */
		scsi_invalid_field(c, c->cdb[0] == 0x41 ? 7 : 10, -1);
		return 0;
	}
	if (!ndob && (c->data_out_len < bs || c->edtl != bs)) {
		scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IU);
		return 0;
	}
	off = lba * bs;
	len = (uint64_t)blocks * bs;
	/* Zeros (with or without UNMAP) deallocate; with LBPRZ = 1 they read back the same.
	 * UNMAP with other data must still store that data. */
	if (ndob || util_is_zero(c->buf, bs)) {
		rc = scsi_locked_zero(lun, off, len, 0);
		if (rc < 0)
			return rc;
		scsi_good(c);
		return 0;
	}
	if (bs > BOUNCE_SIZE)
		return -EINVAL;
	for (uint32_t i = 0; i + bs <= BOUNCE_SIZE; i += bs)
		memcpy(bounce + i, c->buf, bs);
	for (done = 0; done < len;) {
		uint64_t n = len - done;

		if (n > BOUNCE_SIZE / bs * bs)
			n = BOUNCE_SIZE / bs * bs;
		rc = scsi_locked_write(lun, off + done, bounce, (size_t)n, 0);
		if (rc < 0)
			return rc;
		done += n;
	}
	scsi_good(c);
	return 0;
}

int scsi_sbc_unmap(struct scsi_cmd *c, struct lun *lun)
{
	uint32_t plen = get_be16(c->cdb + 7), bs = lun->block_size;
	uint32_t have, dlen, ndesc;
	uint64_t total = 0;
	const uint8_t *p = c->buf;

	c->xfer_len = plen;
	if (c->cdb[1] & 0x01) {
		scsi_invalid_field(c, 1, 0); /* ANCHOR */
		return 0;
	}
	if (plen == 0) {
		scsi_good(c);
		return 0;
	}
	have = c->data_out_len < plen ? c->data_out_len : plen;
	if (plen < 8 || have < 8) {
		scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return 0;
	}
	dlen = get_be16(p + 2);
	if (dlen > have - 8)
		dlen = (have - 8) / 16 * 16;
	if (dlen % 16) {
		scsi_invalid_param(c, 2, -1);
		return 0;
	}
	ndesc = dlen / 16;
	if (ndesc > SCSI_MAX_UNMAP_DESC) {
		scsi_invalid_param(c, 2, -1);
		return 0;
	}
	for (uint32_t i = 0; i < ndesc; i++) {
		const uint8_t *d = p + 8 + 16 * i;
		uint64_t lba = get_be64(d);
		uint32_t n = get_be32(d + 8);

		if (!range_ok(c, lun, lba, n))
			return 0;
		total += n;
	}
	if (total > SCSI_MAX_UNMAP_BLOCKS) {
		scsi_invalid_param(c, 8 + 8, -1);
		return 0;
	}
	for (uint32_t i = 0; i < ndesc; i++) {
		const uint8_t *d = p + 8 + 16 * i;
		uint32_t n = get_be32(d + 8);
		int rc;

		if (!n)
			continue;
		rc = scsi_locked_zero(lun, get_be64(d) * bs, (uint64_t)n * bs, 0);
		if (rc < 0)
			return rc;
	}
	scsi_good(c);
	return 0;
}

/* COMPARE AND WRITE: the NUMBER OF LOGICAL BLOCKS (byte 13) blocks at the LBA are read
 * and compared with the first half of the data-out, and written with the second half
 * only when equal; the range lock is held from the read to the write. Miscompare:
 * MISCOMPARE / MISCOMPARE DURING VERIFY OPERATION, INFORMATION = offset of the first
 * differing byte in the data-out. */
int scsi_sbc_compare_and_write(struct scsi_cmd *c, struct lun *lun)
{
	uint32_t bs = lun->block_size, blocks = c->cdb[13];
	uint64_t lba = get_be64(c->cdb + 2), off, len, m;
	int rc;

	len = (uint64_t)blocks * bs;
	c->xfer_len = (uint32_t)(2 * len);
	if (c->cdb[1] & 0xe0) {
		scsi_invalid_field(c, 1, 7); /* WRPROTECT */
		return 0;
	}
	if (!range_ok(c, lun, lba, blocks))
		return 0;
	if (blocks == 0) {
		/* No blocks, yet data sent: the count was truncated (256 is not 0) */
		if (c->data_out_len || c->edtl)
			scsi_invalid_field(c, 13, -1);
		else
			scsi_good(c);
		return 0;
	}
	if (len > SCSI_MAX_CAW_BYTES || len > BOUNCE_SIZE) {
		scsi_invalid_field(c, 13, -1);
		return 0;
	}
	if (c->data_out_len < 2 * len || c->edtl != 2 * len) {
		scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IU);
		return 0;
	}
	off = lba * bs;
	scsi_range_lock(lun, off, len, &m);
	rc = lun->ops->read(lun->ctx, off, bounce, len);
	if (rc < 0)
		goto out_unlock;
	if (memcmp(bounce, c->buf, len)) {
		uint32_t j = 0;

		while (bounce[j] == c->buf[j])
			j++;
		scsi_sense_asc(c, SK_MISCOMPARE, ASC_MISCOMPARE_VERIFY);
		scsi_sense_info(c, j);
		goto out_unlock;
	}
	rc = lun->ops->write(lun->ctx, off, c->buf + len, len, !!(c->cdb[1] & 0x08));
	if (rc == 0)
		scsi_good(c);
out_unlock:
	scsi_range_unlock(lun, m);
	return rc;
}

/* ORWRITE (16): each data-out byte is ORed into the medium, under the range lock. */
int scsi_sbc_orwrite(struct scsi_cmd *c, struct lun *lun)
{
	uint32_t bs = lun->block_size, blocks = get_be32(c->cdb + 10), step;
	uint64_t lba = get_be64(c->cdb + 2), off, len, m, done;
	int64_t n;
	int rc = 0;

	len = (uint64_t)blocks * bs;
	c->xfer_len = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
	if (c->cdb[1] & 0xe0) {
		scsi_invalid_field(c, 1, 7); /* ORPROTECT */
		return 0;
	}
	if (!range_ok(c, lun, lba, blocks))
		return 0;
	if (len > SCSI_MAX_XFER) {
		scsi_invalid_field(c, 10, -1);
		return 0;
	}
	n = usable_out(c, bs, len);
	if (n < 0)
		return 0;
	step = BOUNCE_SIZE / bs * bs;
	if (!step)
		return -EINVAL;
	off = lba * bs;
	scsi_range_lock(lun, off, (uint64_t)n, &m);
	for (done = 0; done < (uint64_t)n; done += step) {
		uint32_t k = (uint64_t)n - done < step ? (uint32_t)((uint64_t)n - done) : step;

		rc = lun->ops->read(lun->ctx, off + done, bounce, k);
		if (rc < 0)
			break;
		for (uint32_t i = 0; i < k; i++)
			bounce[i] |= c->buf[done + i];
		rc = lun->ops->write(lun->ctx, off + done, bounce, k, !!(c->cdb[1] & 0x08));
		if (rc < 0)
			break;
	}
	scsi_range_unlock(lun, m);
	if (rc == 0)
		scsi_good(c);
	return rc;
}

/* WRITE ATOMIC (16): LBA in bytes 2-9, NUMBER OF LOGICAL BLOCKS in 12-13. One lun write
 * under the range lock: no other write interleaves, and the volume journals it as one
 * record, so a crash keeps all of it or none. Limits: VPD B0 (SCSI_MAX_ATOMIC_BYTES). */
int scsi_sbc_write_atomic16(struct scsi_cmd *c, struct lun *lun)
{
	uint32_t bs = lun->block_size, blocks = get_be16(c->cdb + 12);
	uint64_t lba = get_be64(c->cdb + 2), len = (uint64_t)blocks * bs;
	int64_t n;

	c->xfer_len = (uint32_t)len;
	if (c->cdb[1] & 0xe0) {
		scsi_invalid_field(c, 1, 7);
		return 0;
	}
	if (!range_ok(c, lun, lba, blocks))
		return 0;
	if (len > scsi_max_atomic_bytes(lun)) {
		scsi_invalid_field(c, 12, -1);
		return 0;
	}
	n = usable_out(c, bs, len);
	if (n < 0)
		return 0;
	if (n) {
		int rc = scsi_locked_write(lun, lba * bs, c->buf, (size_t)n, !!(c->cdb[1] & 0x08));

		if (rc < 0)
			return rc;
	}
	scsi_good(c);
	return 0;
}

uint32_t scsi_max_atomic_bytes(const struct lun *lun)
{
	(void)lun;
	return SCSI_MAX_ATOMIC_BYTES;
}

/* READ DEFECT DATA (10)/(12): there are no defects. (10): 0 reserved, 1 PLISTV (4) |
 * GLISTV (3) | FORMAT (2-0), 2-3 DEFECT LIST LENGTH = 0. (12): 0 reserved, 1 as above,
 * 2-3 GENERATION = 0, 4-7 DEFECT LIST LENGTH = 0. */
int scsi_sbc_read_defect(struct scsi_cmd *c, struct lun *lun)
{
	uint8_t d[8] = { 0 };
	int twelve = c->cdb[0] == 0xb7;
	uint8_t fl = twelve ? c->cdb[1] : c->cdb[2];
	uint32_t alloc = twelve ? get_be32(c->cdb + 6) : get_be16(c->cdb + 7);

	(void)lun;
	d[1] = fl & 0x1f;
	scsi_put_data_in(c, d, twelve ? 8 : 4, alloc);
	return 0;
}
