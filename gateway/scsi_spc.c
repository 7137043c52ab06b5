/* scsi_spc.c - SPC-4 primary commands for a disk (peripheral device type 0):
 * TEST UNIT READY, INQUIRY (standard and VPD 00/80/83/B0/B1/B2), REPORT LUNS, REQUEST
 * SENSE, MODE SENSE/SELECT 6 and 10, REPORT SUPPORTED OPERATION CODES, START STOP
 * UNIT, PREVENT ALLOW MEDIUM REMOVAL.
 *
 * Wire layouts (all multi-byte fields big-endian):
 *
 * Standard INQUIRY data, 96 bytes:
 *   0      PERIPHERAL QUALIFIER (7-5) | DEVICE TYPE (4-0): 0x00, or 0x7F for no LUN
 *   1      RMB (7) = 0
 *   2      VERSION = 0x06 (SPC-4)
 *   3      NORMACA (5) = 0, HISUP (4) = 1, RESPONSE DATA FORMAT (3-0) = 2
 *   4      ADDITIONAL LENGTH = 91
 *   5      SCCS, ACC, TPGS, 3PC, PROTECT = 0
 *   6      ENCSERV, MULTIP = 0
 *   7      CMDQUE (1) = 1
 *   8-15   T10 VENDOR IDENTIFICATION "CAIRN   "
 *   16-31  PRODUCT IDENTIFICATION: the LUN name, space padded, or "cairn volume"
 *   32-35  PRODUCT REVISION LEVEL "0001"
 *   36-57  vendor specific / reserved, 0
 *   58-73  VERSION DESCRIPTORS: SAM-5, SPC-4, SBC-3, iSCSI (0x00A0 0x0460 0x04C0 0x0960)
 *   74-95  reserved, 0
 *
 * VPD pages: 0 DEVICE TYPE, 1 PAGE CODE, 2-3 PAGE LENGTH (bytes after byte 3), then:
 *   0x00 supported pages: one byte per page code, ascending
 *   0x80 unit serial number: lun->serial, ASCII
 *   0x83 device identification, designators of 4-byte header
 *        (0: PROTOCOL IDENTIFIER (7-4) | CODE SET (3-0); 1: PIV (7) | ASSOCIATION (5-4) |
 *        DESIGNATOR TYPE (3-0); 3: LENGTH):
 *        NAA (type 3, binary, LU) lun->naa 16 bytes; T10 vendor id (type 1, ASCII, LU)
 *        "CAIRN   " + serial; relative target port (type 4, iSCSI, target port) = 1
 *   0xB0 block limits, page length 0x3C: 4 WSNZ (0) = 1; 6-7 OPTIMAL TRANSFER LENGTH
 *        GRANULARITY (blocks); 8-11 MAXIMUM TRANSFER LENGTH; 12-15 OPTIMAL TRANSFER
 *        LENGTH; 20-23 MAXIMUM UNMAP LBA COUNT; 24-27 MAXIMUM UNMAP BLOCK DESCRIPTOR
 *        COUNT; 28-31 OPTIMAL UNMAP GRANULARITY; 32-35 UGAVALID (31) | UNMAP
 *        GRANULARITY ALIGNMENT; 36-43 MAXIMUM WRITE SAME LENGTH
 *   0x86 extended INQUIRY data, page length 0x3C: 5 HEADSUP | ORDSUP | SIMPSUP = 7
 *   0xB0 additionally: 5 MAXIMUM COMPARE AND WRITE LENGTH; 44-47 MAXIMUM ATOMIC
 *        TRANSFER LENGTH; 48-51 ATOMIC ALIGNMENT = 1; 52-55 ATOMIC TRANSFER LENGTH
 *        GRANULARITY = 1
 *   0xB1 block device characteristics, page length 0x3C: 4-5 MEDIUM ROTATION RATE = 1;
 *        7 WABEREQ (7-6) = 01b (after a block erase, reads return zeros); WACEREQ
 *        (5-4) = 01b where CRYPTO ERASE is supported (after it, reads return zeros),
 *        else 00b (not specified: libiscsi's CryptoErase test checks both ways)
 *   0xB2 logical block provisioning, page length 4: 4 THRESHOLD EXPONENT = 0;
 *        5 LBPU (7), LBPWS (6), LBPWS10 (5), LBPRZ (2) = 1; 6 PROVISIONING TYPE (2-0) = 2
 *
 * REPORT LUNS data: 0-3 LUN LIST LENGTH (8 * n), 4-7 reserved, 8- LUNs of 8 bytes in
 * SAM single-level format: peripheral (0x00, lun) below 256, flat (0x40 | hi, lo) up to
 * 16383.
 *
 * Mode parameter header (6): 0 MODE DATA LENGTH (n - 1), 1 MEDIUM TYPE = 0,
 * 2 DEVICE-SPECIFIC (WP (7), DPOFUA (4) = 1), 3 BLOCK DESCRIPTOR LENGTH.
 * Mode parameter header (10): 0-1 MODE DATA LENGTH (n - 2), 2 MEDIUM TYPE, 3
 * DEVICE-SPECIFIC, 4 LONGLBA (0), 5 reserved, 6-7 BLOCK DESCRIPTOR LENGTH.
 * Short block descriptor (8): 0-3 NUMBER OF BLOCKS (0xFFFFFFFF if larger), 4 DENSITY
 * CODE = 0, 5-7 BLOCK LENGTH. Long (16): 0-7 NUMBER OF BLOCKS, 8-11 reserved,
 * 12-15 BLOCK LENGTH.
 * Pages: 0x08 caching (20 bytes, WCE = 1), 0x0A control (12 bytes, QUEUE ALGORITHM
 * MODIFIER = 1, SWP = read-only), 0x1C informational exceptions (12 bytes, all 0).
 * Only SWP (software write protect, control page byte 4 bit 3) is changeable: MODE
 * SELECT sets it per LUN (kept in memory), and medium writes then get DATA PROTECT /
 * WRITE PROTECTED BY SOFTWARE. No parameter can be saved.
 */
#include <errno.h>
#include <string.h>

#include "scsi_int.h"
#include "scsi_ua.h"

#define VENDOR "CAIRN   "
#define PRODUCT_DEFAULT "cairn volume"
#define REVISION "0001"

int scsi_spc_test_unit_ready(struct scsi_cmd *c, struct lun *lun)
{
	(void)lun;
	scsi_good(c);
	return 0;
}

static void pad_ascii(uint8_t *dst, const char *src, size_t n)
{
	size_t i = 0;

	for (; i < n && src[i]; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? (uint8_t)src[i] : '_';
	for (; i < n; i++)
		dst[i] = ' ';
}

static uint32_t std_inquiry(uint8_t *d, const struct lun *lun)
{
	static const uint16_t versions[] = { 0x00a0, 0x0460, 0x04c0, 0x0960 };

	memset(d, 0, 96);
	d[0] = lun ? 0x00 : 0x7f;
	d[2] = 0x06;
	d[3] = 0x12;
	d[4] = 96 - 5;
	d[7] = 0x02;
	memcpy(d + 8, VENDOR, 8);
	pad_ascii(d + 16, lun && lun->name[0] ? lun->name : PRODUCT_DEFAULT, 16);
	memcpy(d + 32, REVISION, 4);
	for (unsigned i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		put_be16(d + 58 + 2 * i, versions[i]);
	return 96;
}

static const uint8_t vpd_pages[] = { 0x00, 0x80, 0x83, 0x86, 0xb0, 0xb1, 0xb2 };

/* Build VPD page into d (room for 256 bytes); returns its length or 0 if unknown. */
static uint32_t vpd_page(uint8_t *d, uint8_t page, const struct lun *lun)
{
	uint32_t bs = lun->block_size, n = 4;
	size_t sl;

	memset(d, 0, 256);
	d[1] = page;
	switch (page) {
	case 0x00:
		memcpy(d + 4, vpd_pages, sizeof(vpd_pages));
		n += sizeof(vpd_pages);
		break;
	case 0x80:
		sl = strnlen(lun->serial, sizeof(lun->serial));
		if (sl == 0) {
			d[4] = ' ';
			sl = 1;
		} else {
			pad_ascii(d + 4, lun->serial, sl);
		}
		n += (uint32_t)sl;
		break;
	case 0x83: {
		uint8_t *p = d + 4;

		p[0] = 0x01; p[1] = 0x03; p[3] = 16;          /* NAA, binary, LU */
		memcpy(p + 4, lun->naa, 16);
		p += 20;
		sl = strnlen(lun->serial, sizeof(lun->serial));
		p[0] = 0x02; p[1] = 0x01; p[3] = (uint8_t)(8 + sl); /* T10 vendor id, ASCII, LU */
		memcpy(p + 4, VENDOR, 8);
		pad_ascii(p + 12, lun->serial, sl);
		p += 12 + sl;
		p[0] = 0x51; p[1] = 0x94; p[3] = 4;           /* relative target port, iSCSI */
		put_be16(p + 6, 1);
		p += 8;
		n = (uint32_t)(p - d);
		break;
	}
	case 0xb0: {
		uint32_t opt = lun->opt_xfer / bs;

		d[4] = 0x01;                                   /* WSNZ */
		d[5] = (uint8_t)(SCSI_MAX_CAW_BYTES / bs > 255 ? 255 : SCSI_MAX_CAW_BYTES / bs);
		put_be16(d + 6, (uint16_t)(opt > 0xffff ? 0 : opt));
		put_be32(d + 8, SCSI_MAX_XFER / bs);
		put_be32(d + 12, opt > SCSI_MAX_XFER / bs ? SCSI_MAX_XFER / bs : opt);
		put_be32(d + 20, SCSI_MAX_UNMAP_BLOCKS);
		put_be32(d + 24, SCSI_MAX_UNMAP_DESC);
		put_be32(d + 28, opt ? opt : 1);
		put_be32(d + 32, 0x80000000u);                 /* UGAVALID, alignment 0 */
		put_be64(d + 36, SCSI_MAX_WRITE_SAME_BYTES / bs);
		put_be32(d + 44, scsi_max_atomic_bytes(lun) / bs); /* MAXIMUM ATOMIC TRANSFER LENGTH */
		put_be32(d + 48, 1);                           /* ATOMIC ALIGNMENT */
		put_be32(d + 52, 1);                           /* ATOMIC TRANSFER LENGTH GRANULARITY */
		n = 64;
		break;
	}
	case 0x86: /* extended INQUIRY data: HEADSUP (2) SIMPSUP (0) queueing, V_SUP (0) */
		d[5] = 0x07;                                   /* HEADSUP, ORDSUP, SIMPSUP */
		n = 64;
		break;
	case 0xb1:
		put_be16(d + 4, 1);                            /* non-rotating medium */
		d[7] = 0x40;                                   /* WABEREQ 01b: erased reads zeros */
		if (scsi_sanitize_crypto_supported(lun))
			d[7] |= 0x10;                          /* WACEREQ 01b: likewise */
		n = 64;
		break;
	case 0xb2:
		d[5] = 0x80 | 0x40 | 0x20 | 0x04;              /* LBPU, LBPWS, LBPWS10, LBPRZ */
		d[6] = 0x02;                                   /* thin provisioned */
		n = 8;
		break;
	default:
		return 0;
	}
	put_be16(d + 2, (uint16_t)(n - 4));
	return n;
}

int scsi_spc_inquiry(struct scsi_cmd *c, struct lun *lun)
{
	uint8_t d[256];
	uint32_t alloc = get_be16(c->cdb + 3), n;

	if (c->cdb[1] & 0xfe) {
		scsi_invalid_field(c, 1, c->cdb[1] & 0x02 ? 1 : 7); /* CMDDT, reserved */
		return 0;
	}
	if (!(c->cdb[1] & 1)) {
		if (c->cdb[2]) {
			scsi_invalid_field(c, 2, 7);
			return 0;
		}
		n = std_inquiry(d, lun);
	} else if (!lun) {
		memset(d, 0, 4);
		d[0] = 0x7f;
		d[1] = c->cdb[2];
		n = 4;
	} else {
		n = vpd_page(d, c->cdb[2], lun);
		if (!n) {
			scsi_invalid_field(c, 2, 7);
			return 0;
		}
	}
	scsi_put_data_in(c, d, n, alloc);
	return 0;
}

int scsi_spc_report_luns(struct scsi_cmd *c, struct lun *lun)
{
	uint32_t alloc = get_be32(c->cdb + 6), cap, nluns = 0, off;
	uint8_t sel = c->cdb[2];
	const struct scsi_lun_map *map = c->map;

	(void)lun;
	if (sel > 2) {
		scsi_invalid_field(c, 2, 7);
		return 0;
	}
	if (alloc < 16) {
		scsi_invalid_field(c, 6, -1);
		return 0;
	}
	if (sel != 1 && map) /* 1: well-known LUs only, of which there are none */
		for (uint32_t i = 0; i < map->count && i < 16384; i++)
			nluns += map->luns[i] != NULL;
	cap = c->edtl < c->buf_cap ? c->edtl : c->buf_cap;
	if (cap > alloc)
		cap = alloc;
	if (!c->buf)
		cap = 0;
	/* Written straight into buf, truncated to cap: the list can be long. */
	if (cap >= 8) {
		memset(c->buf, 0, 8);
		put_be32(c->buf, nluns * 8);
	} else if (cap) {
		uint8_t h[8] = { 0 };

		put_be32(h, nluns * 8);
		memcpy(c->buf, h, cap);
	}
	off = 8;
	if (sel != 1 && map) {
		for (uint32_t i = 0; i < map->count && i < 16384; i++) {
			uint8_t e[8] = { 0 };

			if (!map->luns[i])
				continue;
			if (i < 256) {
				e[1] = (uint8_t)i;
			} else {
				e[0] = (uint8_t)(0x40 | (i >> 8));
				e[1] = (uint8_t)i;
			}
			if (off < cap)
				memcpy(c->buf + off, e, cap - off < 8 ? cap - off : 8);
			off += 8;
		}
	}
	c->xfer_len = off < alloc ? off : alloc;
	c->data_in_len = c->xfer_len < cap ? c->xfer_len : cap;
	scsi_good(c);
	return 0;
}

int scsi_spc_request_sense(struct scsi_cmd *c, struct lun *lun)
{
	uint8_t d[18];
	uint8_t key = lun ? SK_NO_SENSE : SK_ILLEGAL_REQUEST;
	uint8_t asc = lun ? 0 : (uint8_t)(ASC_LUN_NOT_SUPPORTED >> 8);

	if (c->cdb[1] & 0xfe) {
		scsi_invalid_field(c, 1, 7);
		return 0;
	}
	memset(d, 0, sizeof(d));
	if (c->cdb[1] & 1) { /* DESC: descriptor format, no descriptors */
		d[0] = 0x72;
		d[1] = key;
		d[2] = asc;
		scsi_put_data_in(c, d, 8, c->cdb[4]);
	} else {
		d[0] = 0x70;
		d[2] = key;
		d[7] = 10;
		d[12] = asc;
		scsi_put_data_in(c, d, 18, c->cdb[4]);
	}
	return 0;
}

/* Mode page `page` for page control pc (0 current, 1 changeable, 2 default) into p;
 * returns its length or 0 if not supported. */
static uint32_t mode_page(uint8_t *p, uint8_t page, unsigned pc, const struct lun *lun)
{
	switch (page) {
	case 0x08:
		memset(p, 0, 20);
		p[0] = 0x08;
		p[1] = 0x12;
		if (pc != 1)
			p[2] = 0x04; /* WCE */
		return 20;
	case 0x0a:
		memset(p, 0, 12);
		p[0] = 0x0a;
		p[1] = 0x0a;
		if (pc != 1) {
			p[3] = 0x10; /* QUEUE ALGORITHM MODIFIER 1: unrestricted reordering */
			if (lun->read_only || (pc == 0 && scsi_lun_swp((struct lun *)lun)))
				p[4] = 0x08; /* SWP */
		} else {
			p[4] = 0x08; /* SWP is changeable (software write protect) */
		}
		return 12;
	case 0x1c:
		memset(p, 0, 12);
		p[0] = 0x1c;
		p[1] = 0x0a;
		return 12;
	default:
		return 0;
	}
}

static const uint8_t mode_pages[] = { 0x08, 0x0a, 0x1c };

int scsi_spc_mode_sense(struct scsi_cmd *c, struct lun *lun)
{
	uint8_t d[256];
	int ten = c->cdb[0] == 0x5a;
	unsigned pc = c->cdb[2] >> 6, page = c->cdb[2] & 0x3f, sub = c->cdb[3];
	int dbd = !!(c->cdb[1] & 0x08), llbaa = ten && (c->cdb[1] & 0x10);
	uint32_t alloc = ten ? get_be16(c->cdb + 7) : c->cdb[4];
	uint32_t hdr = ten ? 8 : 4, bdl = dbd ? 0 : llbaa ? 16 : 8, n, pl;
	uint64_t blocks = lun->size / lun->block_size;
	int wp = lun->read_only || (c->nexus && c->nexus->read_only) || scsi_lun_swp(lun);

	if (c->cdb[1] & (ten ? 0xe7 : 0xf7)) {
		scsi_invalid_field(c, 1, 7);
		return 0;
	}
	if (pc == 3) {
		scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_SAVING_PARAMS_UNSUP);
		return 0;
	}
	memset(d, 0, hdr + bdl);
	n = hdr + bdl;
	if (page == 0x3f) {
		if (sub != 0 && sub != 0xff) {
			scsi_invalid_field(c, 3, 7);
			return 0;
		}
		for (unsigned i = 0; i < sizeof(mode_pages); i++)
			n += mode_page(d + n, mode_pages[i], pc, lun);
	} else {
		if (sub != 0 && sub != 0xff) {
			scsi_invalid_field(c, 3, 7);
			return 0;
		}
		pl = mode_page(d + n, (uint8_t)page, pc, lun);
		if (!pl) {
			scsi_invalid_field(c, 2, 5);
			return 0;
		}
		n += pl;
	}
	if (bdl == 8) {
		put_be32(d + hdr, blocks > 0xffffffffu ? 0xffffffffu : (uint32_t)blocks);
		put_be32(d + hdr + 4, lun->block_size & 0xffffff); /* density 0 */
	} else if (bdl == 16) {
		put_be64(d + hdr, blocks);
		put_be32(d + hdr + 12, lun->block_size);
	}
	if (ten) {
		put_be16(d, (uint16_t)(n - 2));
		d[3] = (uint8_t)(0x10 | (wp ? 0x80 : 0));
		d[4] = bdl == 16 ? 1 : 0;
		put_be16(d + 6, (uint16_t)bdl);
	} else {
		d[0] = (uint8_t)(n - 1);
		d[2] = (uint8_t)(0x10 | (wp ? 0x80 : 0));
		d[3] = (uint8_t)bdl;
	}
	scsi_put_data_in(c, d, n, alloc);
	return 0;
}

/* MODE SELECT: the parameter list may restate the current values, nothing else. */
int scsi_spc_mode_select(struct scsi_cmd *c, struct lun *lun)
{
	int ten = c->cdb[0] == 0x55;
	uint32_t plen = ten ? get_be16(c->cdb + 7) : c->cdb[4];
	uint32_t hdr = ten ? 8 : 4, bdl, have, off;
	const uint8_t *p = c->buf;
	uint8_t cur[32];

	c->xfer_len = plen;
	if (c->cdb[1] & 0x01) { /* SP: saving is not supported */
		scsi_invalid_field(c, 1, 0);
		return 0;
	}
	if (c->cdb[1] & 0xee) {
		scsi_invalid_field(c, 1, 7);
		return 0;
	}
	if (plen == 0) {
		scsi_good(c);
		return 0;
	}
	if (!(c->cdb[1] & 0x10)) { /* PF = 0: vendor-specific pages, none defined */
		scsi_invalid_field(c, 1, 4);
		return 0;
	}
	have = c->data_out_len < plen ? c->data_out_len : plen;
	if (have < hdr) {
		scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return 0;
	}
	bdl = ten ? get_be16(p + 6) : p[3];
	if (bdl && bdl != (ten && (p[4] & 1) ? 16u : 8u)) {
		scsi_invalid_param(c, ten ? 6 : 3, -1);
		return 0;
	}
	if (hdr + bdl > have) {
		scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return 0;
	}
	if (bdl) {
		uint32_t blen = bdl == 16 ? get_be32(p + hdr + 12) : get_be24(p + hdr + 5);

		if (blen != lun->block_size) {
			scsi_invalid_param(c, hdr + (bdl == 16 ? 12 : 5), -1);
			return 0;
		}
	}
	for (off = hdr + bdl; off < have;) {
		uint32_t len, want;

		if (have - off < 2) {
			scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
			return 0;
		}
		if (p[off] & 0x40) { /* SPF: no subpages */
			scsi_invalid_param(c, off, 6);
			return 0;
		}
		want = mode_page(cur, p[off] & 0x3f, 0, lun);
		len = (uint32_t)p[off + 1] + 2;
		if (!want || len != want) {
			scsi_invalid_param(c, want ? off + 1 : off, want ? -1 : 5);
			return 0;
		}
		if (off + len > have) {
			scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
			return 0;
		}
		for (uint32_t i = 2; i < len; i++) {
			uint8_t diff = p[off + i] ^ cur[i];

			if ((p[off] & 0x3f) == 0x0a && i == 4 && !lun->read_only)
				diff &= (uint8_t)~0x08; /* SWP: the one changeable bit */
			if (diff) {
				scsi_invalid_param(c, off + i, -1);
				return 0;
			}
		}
		off += len;
	}
	/* Every page checked: apply the changeable bits. */
	for (off = hdr + bdl; off + 5 <= have; off += (uint32_t)p[off + 1] + 2) {
		struct scsi_lu *lu;

		if ((p[off] & 0x3f) != 0x0a || lun->read_only)
			continue;
		lu = scsi_lu_get(lun);
		if (lu)
			__atomic_store_n(&lu->swp, (uint8_t)!!(p[off + 4] & 0x08), __ATOMIC_RELAXED);
	}
	scsi_good(c);
	return 0;
}

/* Service actions listed by REPORT SUPPORTED OPERATION CODES besides plain opcodes. */
struct sa_entry {
	uint8_t opcode;
	uint16_t sa;
};
static const struct sa_entry sa_list[] = {
	{ 0x9e, 0x10 }, /* READ CAPACITY (16) */
	{ 0x9e, 0x12 }, /* GET LBA STATUS */
	{ 0xa3, 0x0c }, /* REPORT SUPPORTED OPERATION CODES */
	{ 0x48, 0x01 }, /* SANITIZE OVERWRITE */
	{ 0x48, 0x02 }, /* SANITIZE BLOCK ERASE */
	{ 0x48, 0x03 }, /* SANITIZE CRYPTO ERASE: only where the LUN supports it */
	{ 0x48, 0x1f }, /* SANITIZE EXIT FAILURE MODE */
	{ 0x5e, 0x00 }, /* PERSISTENT RESERVE IN: READ KEYS */
	{ 0x5e, 0x01 }, /* READ RESERVATION */
	{ 0x5e, 0x02 }, /* REPORT CAPABILITIES */
	{ 0x5e, 0x03 }, /* READ FULL STATUS */
	{ 0x5f, 0x00 }, /* PERSISTENT RESERVE OUT: REGISTER */
	{ 0x5f, 0x01 }, /* RESERVE */
	{ 0x5f, 0x02 }, /* RELEASE */
	{ 0x5f, 0x03 }, /* CLEAR */
	{ 0x5f, 0x04 }, /* PREEMPT */
	{ 0x5f, 0x05 }, /* PREEMPT AND ABORT */
	{ 0x5f, 0x06 }, /* REGISTER AND IGNORE EXISTING KEY */
	{ 0x5f, 0x07 }, /* REGISTER AND MOVE */
	{ 0x83, 0x00 }, /* EXTENDED COPY (LID1) */
	{ 0x84, 0x00 }, /* RECEIVE COPY RESULTS: COPY STATUS */
	{ 0x84, 0x03 }, /* OPERATING PARAMETERS */
};

static int has_service_actions(uint8_t op)
{
	return op == 0x9e || op == 0xa3 || op == 0x48 || op == 0x5e || op == 0x5f || op == 0x83 ||
	       op == 0x84;
}

/* Service actions that only some LUNs support. */
static int sa_of_lun(const struct lun *lun, uint8_t op, uint16_t sa)
{
	if (op == 0x48 && sa == 0x03)
		return scsi_sanitize_crypto_supported(lun);
	return 1;
}

static int sa_supported(const struct lun *lun, uint8_t op, uint16_t sa)
{
	if (!sa_of_lun(lun, op, sa))
		return 0;
	for (unsigned i = 0; i < sizeof(sa_list) / sizeof(sa_list[0]); i++)
		if (sa_list[i].opcode == op && sa_list[i].sa == sa)
			return 1;
	return 0;
}

/* CDB USAGE DATA: the opcode (and the service action where there is one), then the
 * bits the device server may look at. Reserved bits are not told apart from used ones:
 * every bit is marked but the CONTROL byte's vendor bits. */
static void cdb_usage(uint8_t *u, uint8_t op, uint16_t sa, unsigned len)
{
	u[0] = op;
	for (unsigned i = 1; i < len - 1; i++)
		u[i] = 0xff;
	u[len - 1] = 0x07; /* CONTROL: NACA, LINK, obsolete */
	if (has_service_actions(op))
		u[1] = (uint8_t)(sa & 0x1f); /* the service action value itself */
}

static uint8_t *put_timeouts(uint8_t *p)
{
	memset(p, 0, 12);
	put_be16(p, 0x0a);
	put_be32(p + 4, 30);  /* nominal, seconds */
	put_be32(p + 8, 60);  /* recommended */
	return p + 12;
}

static int report_opcodes(struct scsi_cmd *c, const struct lun *lun)
{
	uint8_t d[2048], *p;
	unsigned opts = c->cdb[2] & 0x07, rctd = !!(c->cdb[2] & 0x80);
	uint8_t rop = c->cdb[3];
	uint16_t rsa = get_be16(c->cdb + 4);
	uint32_t alloc = get_be32(c->cdb + 6);

	if (c->cdb[2] & 0x78) {
		scsi_invalid_field(c, 2, 6);
		return 0;
	}
	p = d + 4;
	switch (opts) {
	case 0:
		for (unsigned op = 0; op < 256; op++) {
			const struct scsi_op *o = &scsi_ops[op];

			if (!o->fn)
				continue;
			if (has_service_actions((uint8_t)op)) {
				for (unsigned i = 0; i < sizeof(sa_list) / sizeof(sa_list[0]); i++) {
					if (sa_list[i].opcode != op ||
					    !sa_of_lun(lun, sa_list[i].opcode, sa_list[i].sa))
						continue;
					memset(p, 0, 8);
					p[0] = (uint8_t)op;
					put_be16(p + 2, sa_list[i].sa);
					p[5] = (uint8_t)(0x01 | (rctd ? 0x02 : 0));
					put_be16(p + 6, o->cdb_len);
					p += 8;
					if (rctd)
						p = put_timeouts(p);
				}
				continue;
			}
			memset(p, 0, 8);
			p[0] = (uint8_t)op;
			p[5] = rctd ? 0x02 : 0;
			put_be16(p + 6, o->cdb_len);
			p += 8;
			if (rctd)
				p = put_timeouts(p);
		}
		put_be32(d, (uint32_t)(p - d - 4));
		break;
	case 1:
	case 2:
	case 3: {
		const struct scsi_op *o = &scsi_ops[rop];
		int sup;

		if (opts == 1 && has_service_actions(rop)) {
			scsi_invalid_field(c, 3, 7);
			return 0;
		}
		if (opts == 2 && o->fn && !has_service_actions(rop)) {
			scsi_invalid_field(c, 3, 7);
			return 0;
		}
		if (opts == 1)
			sup = o->fn != NULL;
		else if (opts == 2)
			sup = o->fn && sa_supported(lun, rop, rsa);
		else
			sup = o->fn && (has_service_actions(rop) ? sa_supported(lun, rop, rsa) : rsa == 0);
		p = d;
		memset(p, 0, 4);
		p[1] = (uint8_t)((rctd ? 0x80 : 0) | (sup ? 0x03 : 0x01));
		if (sup) {
			put_be16(p + 2, o->cdb_len);
			cdb_usage(p + 4, rop, rsa, o->cdb_len);
			p += 4 + o->cdb_len;
			if (rctd)
				p = put_timeouts(p);
		} else {
			p += 4;
		}
		break;
	}
	default:
		scsi_invalid_field(c, 2, 2);
		return 0;
	}
	scsi_put_data_in(c, d, (uint32_t)(p - d), alloc);
	return 0;
}

int scsi_spc_report_opcodes(struct scsi_cmd *c, struct lun *lun)
{
	switch (c->cdb[1] & 0x1f) {
	case 0x0c:
		return report_opcodes(c, lun);
	default:
		scsi_invalid_field(c, 1, 4);
		return 0;
	}
}

int scsi_spc_start_stop(struct scsi_cmd *c, struct lun *lun)
{
	/* A non-removable medium that is always ready: START/STOP and power conditions
	 * are accepted; a stop makes acknowledged writes durable first. */
	if (!(c->cdb[4] & 0x01) && !(c->cdb[4] & 0x04) && (c->cdb[4] >> 4) == 0)
		return lun->ops->flush(lun->ctx);
	scsi_good(c);
	return 0;
}

int scsi_spc_prevent_allow(struct scsi_cmd *c, struct lun *lun)
{
	(void)lun;
	if (c->cdb[4] & 0xfc) {
		scsi_invalid_field(c, 4, 7);
		return 0;
	}
	scsi_good(c);
	return 0;
}
