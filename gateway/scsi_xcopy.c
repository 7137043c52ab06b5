/* scsi_xcopy.c - EXTENDED COPY (LID1, SPC-4 6.4) and RECEIVE COPY RESULTS (6.24): block
 * to block copies between LUNs of the same map, identified by the designators of their
 * VPD page 0x83. Within one LUN, aligned ranges go through lun->ops->copy_range when the
 * LUN has it (chunks shared by reference, no data moved), and between two LUNs through
 * the destination's copy_from when it has one and it can share with the source;
 * otherwise the data is read and written through the per-thread bounce buffer.
 *
 * Parameter list (big-endian):
 *   0 LIST IDENTIFIER, 1 STR (5) | LIST ID USAGE (4-3) | PRIORITY (2-0),
 *   2-3 CSCD DESCRIPTOR LIST LENGTH (32 per descriptor), 4-7 reserved,
 *   8-11 SEGMENT DESCRIPTOR LIST LENGTH, 12-15 INLINE DATA LENGTH, 16- descriptors.
 * Identification CSCD descriptor (0xE4, 32 bytes): 0 type, 1 LU ID TYPE (7-6) |
 *   NUL (5) | PERIPHERAL DEVICE TYPE (4-0: 0), 2-3 RELATIVE INITIATOR PORT ID, 4-23 the
 *   designation descriptor (4-byte header as in VPD 0x83, then the designator), 24-27
 *   reserved, 28 PAD (2), 29-31 DISK BLOCK LENGTH. The LUN is found by the designator
 *   alone: the LU ID TYPE (LUN or proxy token) is not used for the lookup.
 * Block to block segment descriptor (0x02, 28 bytes): 0 type, 1 DC (1) | CAT (0),
 *   2-3 DESCRIPTOR LENGTH = 0x18, 4-5 SOURCE CSCD INDEX, 6-7 DESTINATION CSCD INDEX,
 *   8-9 reserved, 10-11 NUMBER OF BLOCKS, 12-19 SOURCE LBA, 20-27 DESTINATION LBA.
 *
 * RECEIVE COPY RESULTS, OPERATING PARAMETERS (SA 3): 0-3 AVAILABLE DATA, 4 SNLID = 0,
 *   8-9 MAXIMUM CSCD DESCRIPTOR COUNT, 10-11 MAXIMUM SEGMENT DESCRIPTOR COUNT,
 *   12-15 MAXIMUM DESCRIPTOR LIST LENGTH, 16-19 MAXIMUM SEGMENT LENGTH, 20-23 MAXIMUM
 *   INLINE DATA LENGTH = 0, 24-27 HELD DATA LIMIT = 0, 28-31 MAXIMUM STREAM DEVICE
 *   TRANSFER SIZE = 0, 34-35 TOTAL CONCURRENT COPIES = 1, 36 MAXIMUM CONCURRENT COPIES
 *   = 1, 37 DATA SEGMENT GRANULARITY (log2 bytes), 38 INLINE DATA GRANULARITY,
 *   39 HELD DATA GRANULARITY, 43 IMPLEMENTED DESCRIPTOR LIST LENGTH, 44- the codes.
 * COPY STATUS (SA 0): 0-3 AVAILABLE DATA = 8, 4 HDD (7) | COPY MANAGEMENT STATUS (6-0:
 *   1 completed good, 2 completed with error), 5-6 SEGMENTS PROCESSED, 7 TRANSFER COUNT
 *   UNITS (0xF1: KiB), 8-11 TRANSFER COUNT.
 */
#include <errno.h>
#include <string.h>

#include "scsi_int.h"
#include "scsi_ua.h"

#define XC_MAX_CSCD 4u
#define XC_MAX_SEG 16u
#define XC_MAX_LIST 1024u
#define XC_TGT_LEN 32u
#define XC_SEG_LEN 28u
#define XC_MAX_SEG_BYTES (32u << 20)
#define XC_BOUNCE (64u << 10)

#define SK_COPY_ABORTED 0x0a

static __thread uint8_t xbounce[XC_BOUNCE] __attribute__((aligned(64)));

/* The LUN of c->map whose VPD 0x83 designator matches the 20-byte descriptor d. */
static struct lun *find_lun(const struct scsi_cmd *c, const uint8_t *d)
{
	unsigned type = d[1] & 0x0f, len = d[3];

	for (uint32_t i = 0; c->map && i < c->map->count; i++) {
		struct lun *l = c->map->luns[i];
		size_t sl;

		if (!l)
			continue;
		if (type == 3 && len == 16 && !memcmp(d + 4, l->naa, 16))
			return l;
		sl = strnlen(l->serial, sizeof(l->serial));
		if (type == 1 && len == 8 + sl && len <= 16 && !memcmp(d + 4, "CAIRN   ", 8) &&
		    !memcmp(d + 12, l->serial, sl))
			return l;
	}
	return NULL;
}

static void copy_aborted(struct scsi_cmd *c, uint8_t asc, uint8_t ascq)
{
	scsi_set_sense(c, SK_COPY_ABORTED, asc, ascq);
}

/* Copy len bytes from src@soff to dst@doff. */
static int copy_data(struct lun *src, uint64_t soff, struct lun *dst, uint64_t doff, uint64_t len)
{
	uint64_t done, m;
	int rc = 0;

	if (src == dst && dst->ops->copy_range) {
		scsi_range_lock(dst, doff, len, &m);
		rc = dst->ops->copy_range(dst->ctx, doff, soff, len);
		scsi_range_unlock(dst, m);
		if (rc != -EOPNOTSUPP)
			return rc;
	}
	if (src != dst && dst->ops->copy_from) {
		scsi_range_lock(dst, doff, len, &m);
		rc = dst->ops->copy_from(dst->ctx, doff, src, soff, len);
		scsi_range_unlock(dst, m);
		if (rc != -EOPNOTSUPP)
			return rc;
	}
	for (done = 0; done < len; done += XC_BOUNCE) {
		size_t n = len - done < XC_BOUNCE ? (size_t)(len - done) : XC_BOUNCE;

		rc = src->ops->read(src->ctx, soff + done, xbounce, n);
		if (rc < 0)
			return rc;
		rc = scsi_locked_write(dst, doff + done, xbounce, n, 0);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int scsi_xcopy_extended_copy(struct scsi_cmd *c, struct lun *lun)
{
	uint32_t plen = get_be32(c->cdb + 10), tdl, sdl, idl, ntgt, nseg;
	const uint8_t *p = c->buf;
	struct lun *tgt[XC_MAX_CSCD];
	struct scsi_lu *lu = scsi_lu_get(lun);
	uint16_t segs = 0;
	uint64_t bytes = 0;
	int rc = 0;

	c->xfer_len = plen;
	if ((c->cdb[1] & 0x1f) != 0) { /* LID4 and other service actions */
		scsi_invalid_field(c, 1, 4);
		return 0;
	}
	if (plen == 0) {
		scsi_good(c);
		return 0;
	}
	if (plen < 16 || c->data_out_len < plen) {
		scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return 0;
	}
	tdl = get_be16(p + 2);
	sdl = get_be32(p + 8);
	idl = get_be32(p + 12);
	if ((uint64_t)16 + tdl + sdl + idl > plen) {
		scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return 0;
	}
	if ((uint64_t)tdl + sdl > XC_MAX_LIST) {
		scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return 0;
	}
	if (idl) {
		scsi_invalid_param(c, 12, -1);
		return 0;
	}
	if (tdl % XC_TGT_LEN) {
		scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return 0;
	}
	ntgt = tdl / XC_TGT_LEN;
	if (ntgt > XC_MAX_CSCD) {
		scsi_set_sense(c, SK_ILLEGAL_REQUEST, 0x26, 0x06); /* TOO MANY TARGET DESCRIPTORS */
		return 0;
	}
	/* Segments are variable length in general: count them by walking the headers. */
	nseg = 0;
	for (uint32_t off = 0; off < sdl; nseg++) {
		const uint8_t *s = p + 16 + tdl + off;

		if (sdl - off < 4) {
			scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
			return 0;
		}
		off += 4 + get_be16(s + 2);
	}
	if (nseg > XC_MAX_SEG) {
		scsi_set_sense(c, SK_ILLEGAL_REQUEST, 0x26, 0x08); /* TOO MANY SEGMENT DESCRIPTORS */
		return 0;
	}
	for (uint32_t i = 0; i < ntgt; i++) {
		const uint8_t *t = p + 16 + i * XC_TGT_LEN;

		if (t[0] != 0xe4) {
			scsi_set_sense(c, SK_ILLEGAL_REQUEST, 0x26, 0x07); /* UNSUPPORTED CSCD TYPE */
			return 0;
		}
		if ((t[1] & 0x1f) != 0) {
			scsi_invalid_param(c, 16 + i * XC_TGT_LEN + 1, 4); /* not a disk */
			return 0;
		}
		tgt[i] = (t[1] & 0x20) ? NULL : find_lun(c, t + 4);
		if (tgt[i] && get_be24(t + 29) && get_be24(t + 29) != tgt[i]->block_size) {
			scsi_invalid_param(c, 16 + i * XC_TGT_LEN + 29, -1);
			return 0;
		}
	}
	for (uint32_t off = 0, k = 0; off < sdl; k++) {
		const uint8_t *s = p + 16 + tdl + off;
		uint32_t dlen = get_be16(s + 2), si, di, blocks;
		uint64_t slba, dlba;
		struct lun *src, *dst;

		if (s[0] != 0x02) {
			scsi_set_sense(c, SK_ILLEGAL_REQUEST, 0x26, 0x09); /* UNSUPPORTED SEGMENT TYPE */
			goto out_status;
		}
		if (dlen != XC_SEG_LEN - 4 || sdl - off < XC_SEG_LEN) {
			scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
			goto out_status;
		}
		si = get_be16(s + 4);
		di = get_be16(s + 6);
		blocks = get_be16(s + 10);
		slba = get_be64(s + 12);
		dlba = get_be64(s + 20);
		src = si < ntgt ? tgt[si] : NULL;
		dst = di < ntgt ? tgt[di] : NULL;
		if (!src || !dst) {
			copy_aborted(c, 0x0d, 0x02); /* COPY TARGET DEVICE NOT REACHABLE */
			goto out_status;
		}
		if (dst->read_only || (c->nexus && c->nexus->read_only)) {
			scsi_sense_asc(c, SK_DATA_PROTECT, ASC_WRITE_PROTECTED);
			goto out_status;
		}
		if (slba > src->size / src->block_size ||
		    blocks > src->size / src->block_size - slba ||
		    dlba > dst->size / dst->block_size ||
		    blocks > dst->size / dst->block_size - dlba) {
			copy_aborted(c, 0x00, 0x00);
			goto out_status;
		}
		if ((uint64_t)blocks * src->block_size > XC_MAX_SEG_BYTES) {
			scsi_invalid_param(c, 16 + tdl + off + 10, -1);
			goto out_status;
		}
		if (src->block_size != dst->block_size) {
			copy_aborted(c, 0x0d, 0x02);
			goto out_status;
		}
		rc = copy_data(src, slba * src->block_size, dst, dlba * dst->block_size,
			       (uint64_t)blocks * src->block_size);
		if (rc < 0)
			goto out_status;
		bytes += (uint64_t)blocks * src->block_size;
		segs++;
		off += XC_SEG_LEN;
	}
	scsi_good(c);
out_status:
	if (lu) {
		pthread_mutex_lock(&lu->lock);
		lu->xc_valid = 1;
		lu->xc_list_id = p[0];
		lu->xc_status = (rc == 0 && c->status == SAM_STAT_GOOD) ? 1 : 2;
		lu->xc_segs = segs;
		lu->xc_bytes = bytes;
		lu->xc_nexus = scsi_lu_nexus(lu, c->nexus);
		pthread_mutex_unlock(&lu->lock);
	}
	return rc;
}

int scsi_xcopy_receive_results(struct scsi_cmd *c, struct lun *lun)
{
	uint32_t alloc = get_be32(c->cdb + 10);
	uint8_t d[48];
	struct scsi_lu *lu;

	memset(d, 0, sizeof(d));
	switch (c->cdb[1] & 0x1f) {
	case 0x03: /* OPERATING PARAMETERS */
		put_be32(d, 44 + 2 - 4);
		put_be16(d + 8, XC_MAX_CSCD);
		put_be16(d + 10, XC_MAX_SEG);
		put_be32(d + 12, XC_MAX_LIST);
		put_be32(d + 16, XC_MAX_SEG_BYTES);
		put_be16(d + 34, 1);
		d[36] = 1;
		d[37] = 9; /* 512-byte segments */
		d[43] = 2;
		d[44] = 0x02;
		d[45] = 0xe4;
		scsi_put_data_in(c, d, 46, alloc);
		return 0;
	case 0x00: /* COPY STATUS */
		lu = scsi_lu_get(lun);
		if (!lu)
			return -ENOMEM;
		pthread_mutex_lock(&lu->lock);
		if (!lu->xc_valid || lu->xc_list_id != c->cdb[2] ||
		    lu->xc_nexus != scsi_lu_nexus(lu, c->nexus)) {
			pthread_mutex_unlock(&lu->lock);
			scsi_invalid_field(c, 2, -1);
			return 0;
		}
		put_be32(d, 8);
		d[4] = lu->xc_status;
		put_be16(d + 5, lu->xc_segs);
		d[7] = 0xf1; /* KiB */
		put_be32(d + 8, (uint32_t)(lu->xc_bytes >> 10));
		pthread_mutex_unlock(&lu->lock);
		scsi_put_data_in(c, d, 12, alloc);
		return 0;
	default:
		scsi_invalid_field(c, 1, 4);
		return 0;
	}
}
