/* scsi.c - SCSI command dispatch: the opcode table, LUN lookup, sense data.
 *
 * Fixed-format sense data built by scsi_set_sense() (SPC-4 4.5.3), 18 bytes:
 *   byte 0      VALID (bit 7: INFORMATION is valid) | RESPONSE CODE 0x70 (current)
 *   byte 1      obsolete, 0
 *   byte 2      FILEMARK, EOM, ILI (0) | SENSE KEY (bits 3-0)
 *   bytes 3-6   INFORMATION, big-endian (MISCOMPARE: offset of the first differing byte)
 *   byte 7      ADDITIONAL SENSE LENGTH = 10 (bytes 8-17 follow)
 *   bytes 8-11  COMMAND-SPECIFIC INFORMATION, 0
 *   byte 12     ADDITIONAL SENSE CODE (ASC)
 *   byte 13     ADDITIONAL SENSE CODE QUALIFIER (ASCQ)
 *   byte 14     FIELD REPLACEABLE UNIT CODE, 0
 *   bytes 15-17 SENSE KEY SPECIFIC: byte 15 = SKSV (bit 7) | C/D (bit 6: 1 = error in
 *               the CDB, 0 = in the parameter list) | BPV (bit 3) | BIT POINTER (2-0);
 *               bytes 16-17 FIELD POINTER, big-endian (byte of the CDB or parameter list)
 */
#include <errno.h>
#include <string.h>

#include "scsi_int.h"
#include "scsi_pr.h"
#include "scsi_ua.h"

#define ROW(f, d, ro, um, rc, len) { .fn = (f), .dir = (d), .ro_ok = (ro), .unmapped_ok = (um), \
	.resv = (rc), .cdb_len = (len) }

const struct scsi_op scsi_ops[256] = {
	[0x00] = ROW(scsi_spc_test_unit_ready, SCSI_DIR_NONE, 1, 0, SCSI_RESV_ALLOWED, 6),
	[0x03] = ROW(scsi_spc_request_sense, SCSI_DIR_IN, 1, 1, SCSI_RESV_ALLOWED, 6),
	[0x08] = ROW(scsi_sbc_read, SCSI_DIR_IN, 1, 0, SCSI_RESV_READ, 6),
	[0x0a] = ROW(scsi_sbc_write, SCSI_DIR_OUT, 0, 0, SCSI_RESV_WRITE, 6),
	[0x12] = ROW(scsi_spc_inquiry, SCSI_DIR_IN, 1, 1, SCSI_RESV_ALLOWED, 6),
	[0x15] = ROW(scsi_spc_mode_select, SCSI_DIR_OUT, 1, 0, SCSI_RESV_CONFLICT, 6),
	[0x16] = ROW(scsi_pr_reserve, SCSI_DIR_NONE, 1, 0, SCSI_RESV_ALLOWED, 6),
	[0x17] = ROW(scsi_pr_release, SCSI_DIR_NONE, 1, 0, SCSI_RESV_ALLOWED, 6),
	[0x1a] = ROW(scsi_spc_mode_sense, SCSI_DIR_IN, 1, 0, SCSI_RESV_READ, 6),
	[0x1b] = ROW(scsi_spc_start_stop, SCSI_DIR_NONE, 1, 0, SCSI_RESV_CONFLICT, 6),
	[0x1e] = ROW(scsi_spc_prevent_allow, SCSI_DIR_NONE, 1, 0, SCSI_RESV_CONFLICT, 6),
	[0x25] = ROW(scsi_sbc_read_capacity10, SCSI_DIR_IN, 1, 0, SCSI_RESV_ALLOWED, 10),
	[0x28] = ROW(scsi_sbc_read, SCSI_DIR_IN, 1, 0, SCSI_RESV_READ, 10),
	[0x2a] = ROW(scsi_sbc_write, SCSI_DIR_OUT, 0, 0, SCSI_RESV_WRITE, 10),
	[0x2e] = ROW(scsi_sbc_write, SCSI_DIR_OUT, 0, 0, SCSI_RESV_WRITE, 10),
	[0x2f] = ROW(scsi_sbc_verify, SCSI_DIR_OUT, 1, 0, SCSI_RESV_READ, 10),
	[0x34] = ROW(scsi_sbc_prefetch, SCSI_DIR_NONE, 1, 0, SCSI_RESV_READ, 10),
	[0x35] = ROW(scsi_sbc_sync_cache, SCSI_DIR_NONE, 1, 0, SCSI_RESV_WRITE, 10),
	[0x37] = ROW(scsi_sbc_read_defect, SCSI_DIR_IN, 1, 0, SCSI_RESV_READ, 10),
	[0x41] = ROW(scsi_sbc_write_same, SCSI_DIR_OUT, 0, 0, SCSI_RESV_WRITE, 10),
	[0x42] = ROW(scsi_sbc_unmap, SCSI_DIR_OUT, 0, 0, SCSI_RESV_WRITE, 10),
	[0x48] = ROW(scsi_sbc_sanitize, SCSI_DIR_OUT, 0, 0, SCSI_RESV_WRITE, 10),
	[0x55] = ROW(scsi_spc_mode_select, SCSI_DIR_OUT, 1, 0, SCSI_RESV_CONFLICT, 10),
	[0x56] = ROW(scsi_pr_reserve, SCSI_DIR_NONE, 1, 0, SCSI_RESV_ALLOWED, 10),
	[0x57] = ROW(scsi_pr_release, SCSI_DIR_NONE, 1, 0, SCSI_RESV_ALLOWED, 10),
	[0x5a] = ROW(scsi_spc_mode_sense, SCSI_DIR_IN, 1, 0, SCSI_RESV_READ, 10),
	[0x5e] = ROW(scsi_pr_in, SCSI_DIR_IN, 1, 0, SCSI_RESV_ALLOWED, 10),
	[0x5f] = ROW(scsi_pr_out, SCSI_DIR_OUT, 1, 0, SCSI_RESV_ALLOWED, 10),
	[0x83] = ROW(scsi_xcopy_extended_copy, SCSI_DIR_OUT, 0, 0, SCSI_RESV_WRITE, 16),
	[0x84] = ROW(scsi_xcopy_receive_results, SCSI_DIR_IN, 1, 0, SCSI_RESV_ALLOWED, 16),
	[0x88] = ROW(scsi_sbc_read, SCSI_DIR_IN, 1, 0, SCSI_RESV_READ, 16),
	[0x89] = ROW(scsi_sbc_compare_and_write, SCSI_DIR_OUT, 0, 0, SCSI_RESV_WRITE, 16),
	[0x8a] = ROW(scsi_sbc_write, SCSI_DIR_OUT, 0, 0, SCSI_RESV_WRITE, 16),
	[0x8b] = ROW(scsi_sbc_orwrite, SCSI_DIR_OUT, 0, 0, SCSI_RESV_WRITE, 16),
	[0x8e] = ROW(scsi_sbc_write, SCSI_DIR_OUT, 0, 0, SCSI_RESV_WRITE, 16),
	[0x8f] = ROW(scsi_sbc_verify, SCSI_DIR_OUT, 1, 0, SCSI_RESV_READ, 16),
	[0x90] = ROW(scsi_sbc_prefetch, SCSI_DIR_NONE, 1, 0, SCSI_RESV_READ, 16),
	[0x91] = ROW(scsi_sbc_sync_cache, SCSI_DIR_NONE, 1, 0, SCSI_RESV_WRITE, 16),
	[0x93] = ROW(scsi_sbc_write_same, SCSI_DIR_OUT, 0, 0, SCSI_RESV_WRITE, 16),
	[0x9c] = ROW(scsi_sbc_write_atomic16, SCSI_DIR_OUT, 0, 0, SCSI_RESV_WRITE, 16),
	[0x9e] = ROW(scsi_sbc_service_action_in16, SCSI_DIR_IN, 1, 0, SCSI_RESV_ALLOWED, 16),
	[0xa0] = ROW(scsi_spc_report_luns, SCSI_DIR_IN, 1, 1, SCSI_RESV_ALLOWED, 12),
	[0xa3] = ROW(scsi_spc_report_opcodes, SCSI_DIR_IN, 1, 0, SCSI_RESV_ALLOWED, 12),
	[0xa8] = ROW(scsi_sbc_read, SCSI_DIR_IN, 1, 0, SCSI_RESV_READ, 12),
	[0xaa] = ROW(scsi_sbc_write, SCSI_DIR_OUT, 0, 0, SCSI_RESV_WRITE, 12),
	[0xae] = ROW(scsi_sbc_write, SCSI_DIR_OUT, 0, 0, SCSI_RESV_WRITE, 12),
	[0xaf] = ROW(scsi_sbc_verify, SCSI_DIR_OUT, 1, 0, SCSI_RESV_READ, 12),
	[0xb7] = ROW(scsi_sbc_read_defect, SCSI_DIR_IN, 1, 0, SCSI_RESV_READ, 12),
};

void scsi_set_sense(struct scsi_cmd *c, uint8_t key, uint8_t asc, uint8_t ascq)
{
	memset(c->sense, 0, 18);
	c->sense[0] = 0x70;
	c->sense[2] = key & 0x0f;
	c->sense[7] = 10;
	c->sense[12] = asc;
	c->sense[13] = ascq;
	c->sense_len = 18;
	c->status = SAM_STAT_CHECK_CONDITION;
	c->data_in_len = 0;
}

static void field_pointer(struct scsi_cmd *c, int in_cdb, unsigned byte, int bit)
{
	c->sense[15] = (uint8_t)(0x80 | (in_cdb ? 0x40 : 0) | (bit >= 0 ? 0x08 | (bit & 7) : 0));
	put_be16(c->sense + 16, (uint16_t)byte);
}

void scsi_invalid_field(struct scsi_cmd *c, unsigned byte, int bit)
{
	scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_CDB);
	field_pointer(c, 1, byte, bit);
}

void scsi_invalid_param(struct scsi_cmd *c, unsigned byte, int bit)
{
	scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_INVALID_FIELD_PARAM);
	field_pointer(c, 0, byte, bit);
}

void scsi_sense_info(struct scsi_cmd *c, uint32_t info)
{
	c->sense[0] |= 0x80;
	put_be32(c->sense + 3, info);
}

void scsi_good(struct scsi_cmd *c)
{
	c->status = SAM_STAT_GOOD;
	c->sense_len = 0;
}

void scsi_put_data_in(struct scsi_cmd *c, const void *data, uint32_t len, uint32_t alloc)
{
	uint32_t n = len < alloc ? len : alloc;
	uint32_t room = c->edtl < c->buf_cap ? c->edtl : c->buf_cap;

	c->xfer_len = n;
	if (n > room)
		n = room;
	if (n && c->buf)
		memcpy(c->buf, data, n);
	c->data_in_len = c->buf ? n : 0;
	scsi_good(c);
}

static struct lun *lookup(const struct scsi_lun_map *map, uint64_t lun_id)
{
	if (!map || lun_id >= map->count)
		return NULL;
	return map->luns[lun_id];
}

uint32_t scsi_data_out_len(const uint8_t *cdb, const struct scsi_lun_map *map, uint64_t lun_id)
{
	struct lun *lun = lookup(map, lun_id);
	uint64_t blocks = 0;
	uint32_t bs;

	switch (cdb[0]) {
	case 0x15: /* MODE SELECT 6 */
		return cdb[4];
	case 0x55: /* MODE SELECT 10 */
	case 0x42: /* UNMAP */
	case 0x48: /* SANITIZE */
		return get_be16(cdb + 7);
	case 0x5f: /* PERSISTENT RESERVE OUT */
		return get_be32(cdb + 5);
	case 0x83: /* EXTENDED COPY */
		return get_be32(cdb + 10);
	default:
		break;
	}
	if (!lun)
		return 0;
	bs = lun->block_size;
	switch (cdb[0]) {
	case 0x0a: /* WRITE 6 */
		blocks = cdb[4] ? cdb[4] : 256;
		break;
	case 0x2a: case 0x2e: /* WRITE 10, WRITE AND VERIFY 10 */
		blocks = get_be16(cdb + 7);
		break;
	case 0xaa: case 0xae: /* WRITE 12, WRITE AND VERIFY 12 */
		blocks = get_be32(cdb + 6);
		break;
	case 0x8a: case 0x8e: case 0x8b: /* WRITE 16, WRITE AND VERIFY 16, ORWRITE 16 */
		blocks = get_be32(cdb + 10);
		break;
	case 0x89: /* COMPARE AND WRITE: compare data then write data */
		blocks = 2u * cdb[13];
		break;
	case 0x9c: /* WRITE ATOMIC 16 */
		blocks = get_be16(cdb + 12);
		break;
	case 0x2f: case 0xaf: case 0x8f: { /* VERIFY 10/12/16 */
		unsigned bytchk = (cdb[1] >> 1) & 3;

		if (bytchk == 1)
			blocks = cdb[0] == 0x2f ? get_be16(cdb + 7) :
				 cdb[0] == 0xaf ? get_be32(cdb + 6) : get_be32(cdb + 10);
		else if (bytchk == 3)
			blocks = 1;
		break;
	}
	case 0x41: /* WRITE SAME 10 */
		blocks = 1;
		break;
	case 0x93: /* WRITE SAME 16; NDOB carries no data */
		blocks = (cdb[1] & 1) ? 0 : 1;
		break;
	default:
		return 0;
	}
	blocks *= bs;
	return blocks > UINT32_MAX ? UINT32_MAX : (uint32_t)blocks;
}

static void map_error(struct scsi_cmd *c, int rc, int writes)
{
	switch (rc) {
	case -ERANGE:
		scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		break;
	case -EIO:
	case -EBADMSG:
		if (writes)
			scsi_set_sense(c, SK_MEDIUM_ERROR, 0x0c, 0x00);
		else
			scsi_set_sense(c, SK_MEDIUM_ERROR, 0x11, 0x00);
		break;
	case -ENOSPC:
		scsi_set_sense(c, SK_DATA_PROTECT, 0x27, 0x07);
		break;
	case -EROFS:
		scsi_sense_asc(c, SK_DATA_PROTECT, ASC_WRITE_PROTECTED);
		break;
	default: /* INTERNAL TARGET FAILURE */
		scsi_set_sense(c, SK_HARDWARE_ERROR, 0x44, 0x00);
		break;
	}
}

void scsi_exec(struct scsi_cmd *c)
{
	const struct scsi_op *op = &scsi_ops[c->cdb[0]];
	struct lun *lun = lookup(c->map, c->lun_id);
	int rc;

	c->status = SAM_STAT_GOOD;
	c->sense_len = 0;
	c->xfer_len = 0;
	c->data_in_len = 0;

	if (!lun && !op->unmapped_ok) {
		scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_LUN_NOT_SUPPORTED);
		return;
	}
	if (lun && scsi_sanitize_gate(c, lun))
		return;
	if (lun && scsi_ua_check(c, lun)) {
		if (c->cdb[0] != 0x03)
			c->xfer_len = scsi_data_out_len(c->cdb, c->map, c->lun_id);
		return;
	}
	if (!op->fn) {
		scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		field_pointer(c, 1, 0, 7);
		return;
	}
	if (lun && scsi_pr_check(c, lun, op->resv))
		return;
	if (lun && !op->ro_ok && (lun->read_only || (c->nexus && c->nexus->read_only) ||
				  scsi_lun_swp(lun))) {
		c->xfer_len = scsi_data_out_len(c->cdb, c->map, c->lun_id);
		if (lun->read_only || (c->nexus && c->nexus->read_only))
			scsi_sense_asc(c, SK_DATA_PROTECT, ASC_WRITE_PROTECTED);
		else
			scsi_set_sense(c, SK_DATA_PROTECT, 0x27, 0x02); /* BY SOFTWARE */
		return;
	}
	rc = op->fn(c, lun);
	if (rc < 0)
		map_error(c, rc, !op->ro_ok);
}

/* Transport events, scsi_lun_changed and scsi_lun_release: scsi_ua.c. */
