/* test_scsi.c - the SCSI layer against a RAM-backed LUN: every command, sense codes,
 * residual lengths, read-only and unmapped LUNs, boundaries. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "scsi.h"

#define BS 512u
#define NBLOCKS 2048u

struct ram {
	uint8_t *data;
	uint64_t size;
	int fail_read, fail_write;   /* negative errno to return, 0 = work */
	int last_fua;
	unsigned flushes, zero_calls, writes;
	uint64_t zero_off[8], zero_len[8];
};

static int ram_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct ram *r = ctx;

	if (r->fail_read)
		return r->fail_read;
	if (off + len > r->size || off % BS || len % BS)
		return -ERANGE;
	memcpy(buf, r->data + off, len);
	return 0;
}

static int ram_write(void *ctx, uint64_t off, const void *buf, size_t len, int fua)
{
	struct ram *r = ctx;

	if (r->fail_write)
		return r->fail_write;
	if (off + len > r->size || off % BS || len % BS)
		return -ERANGE;
	memcpy(r->data + off, buf, len);
	r->last_fua = fua;
	r->writes++;
	return 0;
}

static int ram_zero(void *ctx, uint64_t off, uint64_t len, int fua)
{
	struct ram *r = ctx;

	(void)fua;
	if (r->fail_write)
		return r->fail_write;
	if (off + len > r->size)
		return -ERANGE;
	memset(r->data + off, 0, len);
	if (r->zero_calls < 8) {
		r->zero_off[r->zero_calls] = off;
		r->zero_len[r->zero_calls] = len;
	}
	r->zero_calls++;
	return 0;
}

static int ram_flush(void *ctx)
{
	struct ram *r = ctx;

	r->flushes++;
	return r->fail_write;
}

static const struct lun_ops ram_ops = { .read = ram_read, .write = ram_write, .write_zeroes = ram_zero, .flush = ram_flush };

static struct ram ram;
static struct lun lun0, lun2;
static struct lun *lun_tab[3];
static struct scsi_lun_map map = { lun_tab, 3 };
static uint8_t buf[1 << 20];

static struct scsi_cmd run(const uint8_t *cdb, unsigned len, uint64_t id, uint32_t edtl, uint32_t dout);

/* A fresh RAM LUN 0 (and LUN 2 on the same RAM), as after power on: the POWER ON unit
 * attention each LUN reports first is consumed here, so tests see plain behaviour. */
static void setup(int read_only)
{
	static const uint8_t tur[6] = { 0 };

	scsi_lun_release(&lun0);
	scsi_lun_release(&lun2);
	free(ram.data);
	memset(&ram, 0, sizeof(ram));
	ram.size = (uint64_t)NBLOCKS * BS;
	ram.data = calloc(1, ram.size);
	memset(&lun0, 0, sizeof(lun0));
	lun0.ops = &ram_ops;
	lun0.ctx = &ram;
	lun0.size = ram.size;
	lun0.block_size = BS;
	lun0.opt_xfer = 65536;
	lun0.read_only = read_only;
	strcpy(lun0.name, "vol0");
	strcpy(lun0.serial, "0123456789abcdef");
	lun0.naa[0] = 0x60;
	lun0.naa[15] = 0x01;
	lun2 = lun0;
	lun2.read_only = 0;
	lun_tab[0] = &lun0;
	lun_tab[1] = NULL;
	lun_tab[2] = &lun2;
	run(tur, 6, 0, 0, 0);
	run(tur, 6, 2, 0, 0);
}

/* Run a CDB on LUN id with edtl bytes expected; data-out of dout bytes from buf. */
static struct scsi_cmd run(const uint8_t *cdb, unsigned len, uint64_t id, uint32_t edtl, uint32_t dout)
{
	struct scsi_cmd c;

	memset(&c, 0, sizeof(c));
	memcpy(c.cdb, cdb, len);
	c.cdb_len = (uint8_t)len;
	c.lun_id = id;
	c.map = &map;
	c.buf = buf;
	c.buf_cap = sizeof(buf);
	c.edtl = edtl;
	c.data_out_len = dout;
	c.dir = dout ? SCSI_DIR_OUT : edtl ? SCSI_DIR_IN : SCSI_DIR_NONE;
	scsi_exec(&c);
	return c;
}

static int sense_is(const struct scsi_cmd *c, int key, int asc, int ascq)
{
	return c->status == SAM_STAT_CHECK_CONDITION && c->sense_len == 18 &&
	       (c->sense[0] & 0x7f) == 0x70 && c->sense[7] == 10 &&
	       (c->sense[2] & 0xf) == key && c->sense[12] == asc && c->sense[13] == ascq;
}

static void rw10(uint8_t *cdb, uint8_t op, uint32_t lba, uint16_t blocks)
{
	memset(cdb, 0, 16);
	cdb[0] = op;
	cdb[2] = (uint8_t)(lba >> 24); cdb[3] = (uint8_t)(lba >> 16);
	cdb[4] = (uint8_t)(lba >> 8); cdb[5] = (uint8_t)lba;
	cdb[7] = (uint8_t)(blocks >> 8); cdb[8] = (uint8_t)blocks;
}

static void rw16(uint8_t *cdb, uint8_t op, uint64_t lba, uint32_t blocks)
{
	memset(cdb, 0, 16);
	cdb[0] = op;
	for (int i = 0; i < 8; i++)
		cdb[2 + i] = (uint8_t)(lba >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		cdb[10 + i] = (uint8_t)(blocks >> (24 - 8 * i));
}

static void gateway_scsi_test_unit_ready(void)
{
	uint8_t cdb[6] = { 0 };
	struct scsi_cmd c;

	setup(0);
	c = run(cdb, 6, 0, 0, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.sense_len, 0);
	c = run(cdb, 6, 1, 0, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x25, 0x00));
	c = run(cdb, 6, 7, 0, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x25, 0x00));
}

static void gateway_scsi_unknown_opcode(void)
{
	uint8_t cdb[10] = { 0xc7 };
	struct scsi_cmd c;

	setup(0);
	c = run(cdb, 10, 0, 0, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x20, 0x00));
	c = run(cdb, 10, 1, 0, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x25, 0x00));
}

static void gateway_scsi_inquiry_standard(void)
{
	uint8_t cdb[6] = { 0x12, 0, 0, 0, 255, 0 };
	struct scsi_cmd c;

	setup(0);
	c = run(cdb, 6, 0, 255, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, 96);
	CHECK_EQ(c.data_in_len, 96);
	CHECK_EQ(buf[0], 0x00);
	CHECK_EQ(buf[2], 0x06);
	CHECK_EQ(buf[3] & 0x0f, 2);
	CHECK_EQ(buf[4], 91);
	CHECK(buf[7] & 0x02);
	CHECK_MEM(buf + 8, "CAIRN   ", 8);
	CHECK_MEM(buf + 16, "vol0            ", 16);

	/* allocation length honoured */
	cdb[4] = 36;
	c = run(cdb, 6, 0, 255, 0);
	CHECK_EQ(c.xfer_len, 36);
	CHECK_EQ(c.data_in_len, 36);
	/* edtl below the allocation length: only edtl bytes, xfer_len still the CDB's */
	c = run(cdb, 6, 0, 20, 0);
	CHECK_EQ(c.xfer_len, 36);
	CHECK_EQ(c.data_in_len, 20);

	/* product default */
	lun0.name[0] = 0;
	cdb[4] = 96;
	c = run(cdb, 6, 0, 96, 0);
	CHECK_MEM(buf + 16, "cairn volume    ", 16);

	/* unmapped LUN: qualifier 011b, type 1Fh */
	c = run(cdb, 6, 1, 96, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(buf[0], 0x7f);

	/* page code without EVPD, CMDDT */
	cdb[2] = 0x80;
	c = run(cdb, 6, 0, 96, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x24, 0x00));
	CHECK_EQ(c.sense[15] & 0xc0, 0xc0);
	CHECK_EQ(c.sense[17], 2);
	cdb[2] = 0;
	cdb[1] = 0x02;
	c = run(cdb, 6, 0, 96, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x24, 0x00));
}

static struct scsi_cmd vpd(uint8_t page)
{
	uint8_t cdb[6] = { 0x12, 1, page, 1, 0, 0 };

	return run(cdb, 6, 0, 256, 0);
}

static void gateway_scsi_inquiry_vpd(void)
{
	struct scsi_cmd c;

	setup(0);
	c = vpd(0x00);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(buf[1], 0x00);
	CHECK_EQ(buf[3], 7);
	CHECK_MEM(buf + 4, "\x00\x80\x83\x86\xb0\xb1\xb2", 7);
	CHECK_EQ(c.xfer_len, 11);

	c = vpd(0x80);
	CHECK_EQ(buf[3], 16);
	CHECK_MEM(buf + 4, "0123456789abcdef", 16);

	c = vpd(0x83);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(buf[4], 0x01);
	CHECK_EQ(buf[5], 0x03);
	CHECK_EQ(buf[7], 16);
	CHECK_EQ(buf[8], 0x60);
	CHECK_EQ(buf[23], 0x01);
	CHECK_EQ(buf[24], 0x02);  /* T10 vendor id, ASCII */
	CHECK_EQ(buf[25], 0x01);
	CHECK_MEM(buf + 28, "CAIRN   0123456789abcdef", 24);
	CHECK_EQ((buf[2] << 8 | buf[3]) + 4, c.xfer_len);

	c = vpd(0xb0);
	CHECK_EQ(c.xfer_len, 64);
	CHECK_EQ(buf[3], 0x3c);
	CHECK_EQ(buf[4] & 1, 1);  /* WSNZ */
	CHECK_EQ(buf[6] << 8 | buf[7], 65536 / BS);
	CHECK_EQ((uint32_t)buf[8] << 24 | buf[9] << 16 | buf[10] << 8 | buf[11], SCSI_MAX_XFER / BS);
	CHECK(buf[20] | buf[21] | buf[22] | buf[23]);   /* max unmap LBA count */
	CHECK(buf[24] | buf[25] | buf[26] | buf[27]);   /* max unmap descriptors */
	CHECK(buf[40] | buf[41] | buf[42] | buf[43]);   /* max write same length */

	c = vpd(0xb1);
	CHECK_EQ(buf[4] << 8 | buf[5], 1);

	c = vpd(0xb2);
	CHECK_EQ(buf[5] & 0xe0, 0xe0);
	CHECK_EQ(buf[6] & 7, 2);

	c = vpd(0x55);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x24, 0x00));
}

static void gateway_scsi_report_luns(void)
{
	uint8_t cdb[12] = { 0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0 };
	struct scsi_cmd c;

	setup(0);
	c = run(cdb, 12, 0, 256, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, 24);
	CHECK_EQ(buf[3], 16);
	CHECK_EQ(buf[8], 0); CHECK_EQ(buf[9], 0);
	CHECK_EQ(buf[16], 0); CHECK_EQ(buf[17], 2);

	/* works on an unmapped LUN too */
	c = run(cdb, 12, 1, 256, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, 24);

	/* truncated by allocation length: list length still says the whole */
	cdb[9] = 16;
	cdb[8] = 0;
	c = run(cdb, 12, 0, 256, 0);
	CHECK_EQ(c.xfer_len, 16);
	CHECK_EQ(buf[3], 16);

	cdb[9] = 15;
	c = run(cdb, 12, 0, 256, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x24, 0x00));

	cdb[9] = 0; cdb[8] = 1;
	cdb[2] = 1;  /* well-known LUs only: none */
	c = run(cdb, 12, 0, 256, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, 8);
	CHECK_EQ(buf[3], 0);
	cdb[2] = 2;
	c = run(cdb, 12, 0, 256, 0);
	CHECK_EQ(c.xfer_len, 24);
	cdb[2] = 3;
	c = run(cdb, 12, 0, 256, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x24, 0x00));
}

static void gateway_scsi_request_sense(void)
{
	uint8_t cdb[6] = { 0x03, 0, 0, 0, 252, 0 };
	struct scsi_cmd c;

	setup(0);
	c = run(cdb, 6, 0, 252, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, 18);
	CHECK_EQ(buf[0], 0x70);
	CHECK_EQ(buf[2] & 0xf, SK_NO_SENSE);
	CHECK_EQ(buf[12], 0);

	cdb[1] = 1;
	c = run(cdb, 6, 0, 252, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, 8);
	CHECK_EQ(buf[0], 0x72);

	/* unmapped LUN: the sense data tells why */
	cdb[1] = 0;
	c = run(cdb, 6, 1, 252, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(buf[2] & 0xf, SK_ILLEGAL_REQUEST);
	CHECK_EQ(buf[12], 0x25);
}

static void gateway_scsi_read_capacity(void)
{
	uint8_t cdb10[10] = { 0x25 };
	uint8_t cdb16[16] = { 0x9e, 0x10 };
	struct scsi_cmd c;

	setup(0);
	c = run(cdb10, 10, 0, 8, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, 8);
	CHECK_EQ((uint32_t)buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3], NBLOCKS - 1);
	CHECK_EQ(buf[6] << 8 | buf[7], BS);

	cdb10[5] = 1; /* LBA without PMI */
	c = run(cdb10, 10, 0, 8, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x24, 0x00));

	/* more than 2^32 blocks: 0xFFFFFFFF */
	lun0.size = (6ull << 30) * BS;
	cdb10[5] = 0;
	c = run(cdb10, 10, 0, 8, 0);
	CHECK_EQ((uint32_t)buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3], 0xffffffffu);

	cdb16[13] = 32;
	c = run(cdb16, 16, 0, 32, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, 32);
	CHECK_EQ(buf[3], 1);  /* (6 << 30) - 1 = 0x1_7FFF_FFFF */
	CHECK_EQ(buf[4], 0x7f);
	CHECK_EQ(buf[10] << 8 | buf[11], BS);
	CHECK_EQ(buf[14] & 0xc0, 0xc0);  /* LBPME, LBPRZ */

	cdb16[13] = 12;
	c = run(cdb16, 16, 0, 32, 0);
	CHECK_EQ(c.xfer_len, 12);
	CHECK_EQ(c.data_in_len, 12);

	/* GET LBA STATUS */
	setup(0);
	memset(cdb16, 0, 16);
	cdb16[0] = 0x9e;
	cdb16[1] = 0x12;
	cdb16[9] = 10;
	cdb16[13] = 24;
	c = run(cdb16, 16, 0, 24, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, 24);
	CHECK_EQ(buf[3], 20);
	CHECK_EQ(buf[15], 10);
	CHECK_EQ(buf[18] << 8 | buf[19], NBLOCKS - 10);
	cdb16[8] = (uint8_t)(NBLOCKS >> 8);
	cdb16[9] = (uint8_t)NBLOCKS;
	c = run(cdb16, 16, 0, 24, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x21, 0x00));

	cdb16[1] = 0x11;
	c = run(cdb16, 16, 0, 32, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x24, 0x00));
}

static void gateway_scsi_read_write10(void)
{
	uint8_t cdb[16];
	struct scsi_cmd c;

	setup(0);
	memset(buf, 0xab, 4 * BS);
	rw10(cdb, 0x2a, 10, 4);
	c = run(cdb, 10, 0, 4 * BS, 4 * BS);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, 4 * BS);
	CHECK_EQ(ram.last_fua, 0);
	CHECK_EQ(ram.data[10 * BS], 0xab);
	CHECK_EQ(ram.data[14 * BS - 1], 0xab);
	CHECK_EQ(ram.data[14 * BS], 0);

	cdb[1] = 0x08; /* FUA */
	c = run(cdb, 10, 0, 4 * BS, 4 * BS);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(ram.last_fua, 1);

	memset(buf, 0, 4 * BS);
	rw10(cdb, 0x28, 9, 2);
	cdb[1] = 0x18; /* DPO + FUA accepted on reads */
	c = run(cdb, 10, 0, 2 * BS, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, 2 * BS);
	CHECK_EQ(c.data_in_len, 2 * BS);
	CHECK_EQ(buf[0], 0);
	CHECK_EQ(buf[BS], 0xab);

	cdb[1] = 0x20; /* RDPROTECT */
	c = run(cdb, 10, 0, 2 * BS, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x24, 0x00));
	CHECK_EQ(c.data_in_len, 0);
	rw10(cdb, 0x2a, 0, 1);
	cdb[1] = 0x40; /* WRPROTECT */
	c = run(cdb, 10, 0, BS, BS);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x24, 0x00));
	CHECK_EQ(ram.writes, 2);
}

static void gateway_scsi_boundaries(void)
{
	uint8_t cdb[16];
	struct scsi_cmd c;

	setup(0);
	memset(buf, 0x5a, 2 * BS);
	/* the last LBA */
	rw10(cdb, 0x2a, NBLOCKS - 1, 1);
	c = run(cdb, 10, 0, BS, BS);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(ram.data[ram.size - 1], 0x5a);
	/* one past: nothing moves */
	rw10(cdb, 0x2a, NBLOCKS - 1, 2);
	c = run(cdb, 10, 0, 2 * BS, 2 * BS);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x21, 0x00));
	CHECK_EQ(ram.writes, 1);
	rw10(cdb, 0x28, NBLOCKS, 1);
	c = run(cdb, 10, 0, BS, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x21, 0x00));
	CHECK_EQ(c.data_in_len, 0);
	rw16(cdb, 0x88, UINT64_MAX, 1);
	c = run(cdb, 16, 0, BS, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x21, 0x00));
	rw16(cdb, 0x8a, 0x80000000ull, 1);
	c = run(cdb, 16, 0, BS, BS);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x21, 0x00));
	rw16(cdb, 0x88, NBLOCKS - 2, 2);
	c = run(cdb, 16, 0, 2 * BS, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(buf[2 * BS - 1], 0x5a);

	/* transfer length 0: GOOD, nothing moves, even at the end of the medium */
	rw10(cdb, 0x28, NBLOCKS, 0);
	c = run(cdb, 10, 0, 0, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, 0);
	rw16(cdb, 0x8a, 5, 0);
	c = run(cdb, 16, 0, 0, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, 0);
	CHECK_EQ(ram.writes, 1);
	rw10(cdb, 0x28, NBLOCKS + 1, 0);
	c = run(cdb, 10, 0, 0, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x21, 0x00));

	/* READ 6 / WRITE 6: 0 means 256 blocks */
	memset(cdb, 0, 16);
	cdb[0] = 0x08;
	c = run(cdb, 6, 0, 256 * BS, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, 256 * BS);
	memset(buf, 0x11, 256 * BS);
	cdb[0] = 0x0a;
	cdb[1] = 0x00; cdb[2] = 0x01; cdb[3] = 0x00;  /* LBA 256 */
	cdb[4] = 0;
	c = run(cdb, 6, 0, 256 * BS, 256 * BS);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(ram.data[256 * BS], 0x11);
	CHECK_EQ(ram.data[512 * BS - 1], 0x11);
	CHECK_EQ(ram.data[512 * BS], 0);

	/* READ 12 / WRITE 12 */
	memset(cdb, 0, 16);
	cdb[0] = 0xa8;
	cdb[5] = 1;
	cdb[9] = 1;
	c = run(cdb, 12, 0, BS, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, BS);

	/* too long for one command */
	rw16(cdb, 0x88, 0, SCSI_MAX_XFER / BS + 1);
	lun0.size = 1ull << 40;
	c = run(cdb, 16, 0, BS, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x24, 0x00));
}

static void gateway_scsi_residuals(void)
{
	uint8_t cdb[16];
	struct scsi_cmd c;

	setup(0);
	memset(ram.data, 'a', 4 * BS);
	memset(buf, 'b', 4 * BS);
	/* EDTL one block, CDB two: the first block is written, the second untouched */
	rw10(cdb, 0x2a, 0, 2);
	c = run(cdb, 10, 0, BS, BS);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, 2 * BS);
	CHECK_EQ(ram.data[0], 'b');
	CHECK_EQ(ram.data[BS - 1], 'b');
	CHECK_EQ(ram.data[BS], 'a');

	/* EDTL two blocks, CDB one: only one block */
	memset(ram.data, 'a', 4 * BS);
	rw10(cdb, 0x2a, 0, 1);
	c = run(cdb, 10, 0, 2 * BS, 2 * BS);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, BS);
	CHECK_EQ(ram.data[BS], 'a');

	/* EDTL 0: nothing written, GOOD, overflow of one block */
	memset(ram.data, 'a', 4 * BS);
	c = run(cdb, 10, 0, 0, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, BS);
	CHECK_EQ(ram.data[0], 'a');

	/* EDTL 200: ends inside a block; refused, nothing written */
	c = run(cdb, 10, 0, 200, 200);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x0e, 0x03));
	CHECK_EQ(c.xfer_len, BS);
	CHECK_EQ(ram.data[0], 'a');

	/* reads: EDTL 200 returns 200 bytes of the block */
	rw10(cdb, 0x28, 0, 1);
	memset(buf, 0, BS);
	c = run(cdb, 10, 0, 200, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, BS);
	CHECK_EQ(c.data_in_len, 200);
	CHECK_EQ(buf[199], 'a');
	CHECK_EQ(buf[200], 0);
	/* EDTL 10000 for one block: one block */
	c = run(cdb, 10, 0, 10000, 0);
	CHECK_EQ(c.xfer_len, BS);
	CHECK_EQ(c.data_in_len, BS);
	/* EDTL 0 */
	c = run(cdb, 10, 0, 0, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, BS);
	CHECK_EQ(c.data_in_len, 0);
	/* two blocks, EDTL one */
	rw10(cdb, 0x28, 0, 2);
	c = run(cdb, 10, 0, BS, 0);
	CHECK_EQ(c.xfer_len, 2 * BS);
	CHECK_EQ(c.data_in_len, BS);
}

static void gateway_scsi_data_out_len(void)
{
	uint8_t cdb[16];

	setup(0);
	rw10(cdb, 0x2a, 0, 3);
	CHECK_EQ(scsi_data_out_len(cdb, &map, 0), 3 * BS);
	CHECK_EQ(scsi_data_out_len(cdb, &map, 1), 0);
	rw10(cdb, 0x28, 0, 3);
	CHECK_EQ(scsi_data_out_len(cdb, &map, 0), 0);
	rw16(cdb, 0x8a, 0, 8);
	CHECK_EQ(scsi_data_out_len(cdb, &map, 0), 8 * BS);
	rw16(cdb, 0x93, 0, 100);
	CHECK_EQ(scsi_data_out_len(cdb, &map, 0), BS);
	cdb[1] = 1; /* NDOB */
	CHECK_EQ(scsi_data_out_len(cdb, &map, 0), 0);
	memset(cdb, 0, 16);
	cdb[0] = 0x0a;
	CHECK_EQ(scsi_data_out_len(cdb, &map, 0), 256 * BS);
	memset(cdb, 0, 16);
	cdb[0] = 0x42; cdb[8] = 24;
	CHECK_EQ(scsi_data_out_len(cdb, &map, 0), 24);
	memset(cdb, 0, 16);
	cdb[0] = 0x15; cdb[4] = 28;
	CHECK_EQ(scsi_data_out_len(cdb, &map, 0), 28);
	rw10(cdb, 0x2f, 0, 4);
	CHECK_EQ(scsi_data_out_len(cdb, &map, 0), 0);
	cdb[1] = 0x02;
	CHECK_EQ(scsi_data_out_len(cdb, &map, 0), 4 * BS);
}

static void gateway_scsi_read_only(void)
{
	uint8_t cdb[16];
	struct scsi_cmd c;

	setup(1);
	rw10(cdb, 0x2a, 0, 1);
	c = run(cdb, 10, 0, BS, BS);
	CHECK(sense_is(&c, SK_DATA_PROTECT, 0x27, 0x00));
	CHECK_EQ(ram.writes, 0);
	rw16(cdb, 0x93, 0, 1);
	c = run(cdb, 16, 0, BS, BS);
	CHECK(sense_is(&c, SK_DATA_PROTECT, 0x27, 0x00));
	memset(cdb, 0, 16);
	cdb[0] = 0x42; cdb[8] = 24;
	c = run(cdb, 10, 0, 24, 24);
	CHECK(sense_is(&c, SK_DATA_PROTECT, 0x27, 0x00));
	CHECK_EQ(ram.zero_calls, 0);
	rw10(cdb, 0x28, 0, 1);
	c = run(cdb, 10, 0, BS, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	/* MODE SENSE shows WP */
	memset(cdb, 0, 16);
	cdb[0] = 0x1a; cdb[2] = 0x3f; cdb[4] = 255;
	c = run(cdb, 6, 0, 255, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(buf[2] & 0x80, 0x80);
	/* a writable LUN on the same nexus */
	rw10(cdb, 0x2a, 0, 1);
	c = run(cdb, 10, 2, BS, BS);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	memset(cdb, 0, 16);
	cdb[0] = 0x1a; cdb[2] = 0x3f; cdb[4] = 255;
	c = run(cdb, 6, 2, 255, 0);
	CHECK_EQ(buf[2] & 0x80, 0);
}

static void gateway_scsi_lun_errors(void)
{
	uint8_t cdb[16];
	struct scsi_cmd c;

	setup(0);
	rw10(cdb, 0x28, 0, 1);
	ram.fail_read = -EIO;
	c = run(cdb, 10, 0, BS, 0);
	CHECK(sense_is(&c, SK_MEDIUM_ERROR, 0x11, 0x00));
	CHECK_EQ(c.data_in_len, 0);
	ram.fail_read = -EBADMSG;
	c = run(cdb, 10, 0, BS, 0);
	CHECK(sense_is(&c, SK_MEDIUM_ERROR, 0x11, 0x00));
	ram.fail_read = -ERANGE;
	c = run(cdb, 10, 0, BS, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x21, 0x00));
	ram.fail_read = -ENOMEM;
	c = run(cdb, 10, 0, BS, 0);
	CHECK(sense_is(&c, SK_HARDWARE_ERROR, 0x44, 0x00));
	ram.fail_read = 0;

	rw10(cdb, 0x2a, 0, 1);
	ram.fail_write = -EIO;
	c = run(cdb, 10, 0, BS, BS);
	CHECK(sense_is(&c, SK_MEDIUM_ERROR, 0x0c, 0x00));
	ram.fail_write = -ENOSPC;
	c = run(cdb, 10, 0, BS, BS);
	CHECK(sense_is(&c, SK_DATA_PROTECT, 0x27, 0x07));
	ram.fail_write = -EPERM;
	c = run(cdb, 10, 0, BS, BS);
	CHECK(sense_is(&c, SK_HARDWARE_ERROR, 0x44, 0x00));
	ram.fail_write = 0;
}

static void gateway_scsi_sync_prefetch(void)
{
	uint8_t cdb[16];
	struct scsi_cmd c;

	setup(0);
	rw10(cdb, 0x35, 0, 0);
	c = run(cdb, 10, 0, 0, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(ram.flushes, 1);
	rw16(cdb, 0x91, NBLOCKS - 1, 1);
	c = run(cdb, 16, 0, 0, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(ram.flushes, 2);
	rw16(cdb, 0x91, NBLOCKS, 1);
	c = run(cdb, 16, 0, 0, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x21, 0x00));

	rw10(cdb, 0x34, 0, 16);
	c = run(cdb, 10, 0, 0, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	rw16(cdb, 0x90, NBLOCKS - 1, 2);
	c = run(cdb, 16, 0, 0, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x21, 0x00));
}

static void gateway_scsi_verify(void)
{
	uint8_t cdb[16];
	struct scsi_cmd c;

	setup(0);
	memset(ram.data + 4 * BS, 0x33, 2 * BS);
	/* BYTCHK 0: medium check only */
	rw10(cdb, 0x2f, 4, 2);
	c = run(cdb, 10, 0, 0, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	ram.fail_read = -EIO;
	c = run(cdb, 10, 0, 0, 0);
	CHECK(sense_is(&c, SK_MEDIUM_ERROR, 0x11, 0x00));
	ram.fail_read = 0;
	/* BYTCHK 1: equal */
	cdb[1] = 0x02;
	memset(buf, 0x33, 2 * BS);
	c = run(cdb, 10, 0, 2 * BS, 2 * BS);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, 2 * BS);
	/* BYTCHK 1: differs at byte BS + 7 of the data-out */
	buf[BS + 7] = 0;
	c = run(cdb, 10, 0, 2 * BS, 2 * BS);
	CHECK(sense_is(&c, SK_MISCOMPARE, 0x1d, 0x00));
	CHECK_EQ(c.sense[0] & 0x80, 0x80);
	CHECK_EQ((uint32_t)c.sense[3] << 24 | c.sense[4] << 16 | c.sense[5] << 8 | c.sense[6], BS + 7);
	/* VERIFY 16 beyond the end */
	rw16(cdb, 0x8f, NBLOCKS - 1, 2);
	c = run(cdb, 16, 0, 0, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x21, 0x00));
	/* VRPROTECT */
	rw16(cdb, 0x8f, 0, 1);
	cdb[1] = 0x20;
	c = run(cdb, 16, 0, 0, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x24, 0x00));
	/* VERIFY 12, BYTCHK 0 */
	memset(cdb, 0, 16);
	cdb[0] = 0xaf;
	cdb[9] = 4;
	c = run(cdb, 12, 0, 0, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
}

static void gateway_scsi_write_same(void)
{
	uint8_t cdb[16];
	struct scsi_cmd c;

	setup(0);
	/* replicate a pattern block over 300 blocks (crosses the scratch size) */
	for (unsigned i = 0; i < BS; i++)
		buf[i] = (uint8_t)i;
	rw16(cdb, 0x93, 100, 300);
	c = run(cdb, 16, 0, BS, BS);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, BS);
	CHECK_EQ(ram.data[100 * BS + 5], 5);
	CHECK_EQ(ram.data[399 * BS + 511], 255);
	CHECK_EQ(ram.data[400 * BS + 5], 0);
	CHECK_EQ(ram.zero_calls, 0);

	/* UNMAP bit with non-zero data: the data is stored */
	cdb[1] = 0x08;
	rw16(cdb, 0x93, 500, 2);
	cdb[1] = 0x08;
	c = run(cdb, 16, 0, BS, BS);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(ram.zero_calls, 0);
	CHECK_EQ(ram.data[501 * BS + 9], 9);

	/* UNMAP bit with zero data: write_zeroes */
	memset(buf, 0, BS);
	rw16(cdb, 0x93, 100, 300);
	cdb[1] = 0x08;
	c = run(cdb, 16, 0, BS, BS);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(ram.zero_calls, 1);
	CHECK_EQ(ram.zero_off[0], 100 * BS);
	CHECK_EQ(ram.zero_len[0], 300 * BS);
	CHECK_EQ(ram.data[100 * BS + 5], 0);

	/* zero data without UNMAP: write_zeroes as well */
	memset(buf, 0, BS);
	rw10(cdb, 0x41, 7, 3);
	c = run(cdb, 10, 0, BS, BS);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(ram.zero_calls, 2);

	/* longer than MAXIMUM WRITE SAME LENGTH */
	memset(buf, 0x42, BS);
	lun0.size = 1ull << 40;
	rw16(cdb, 0x93, 0, SCSI_MAX_XFER / BS + 1);
	c = run(cdb, 16, 0, BS, BS);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x24, 0x00));
	lun0.size = ram.size;

	/* 0 blocks: WSNZ */
	rw10(cdb, 0x41, 0, 0);
	c = run(cdb, 10, 0, BS, BS);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x24, 0x00));
	/* 0 blocks beyond the end: LBA OUT OF RANGE first */
	rw10(cdb, 0x41, NBLOCKS + 1, 0);
	c = run(cdb, 10, 0, BS, BS);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x21, 0x00));
	rw16(cdb, 0x93, NBLOCKS - 1, 2);
	c = run(cdb, 16, 0, BS, BS);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x21, 0x00));
	/* WRPROTECT, ANCHOR */
	rw10(cdb, 0x41, 0, 1);
	cdb[1] = 0x20;
	c = run(cdb, 10, 0, BS, BS);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x24, 0x00));
	cdb[1] = 0x10;
	c = run(cdb, 10, 0, BS, BS);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x24, 0x00));
}

static void unmap_param(uint8_t *p, unsigned ndesc)
{
	memset(p, 0, 8 + 16 * ndesc);
	p[1] = (uint8_t)(6 + 16 * ndesc);
	p[3] = (uint8_t)(16 * ndesc);
}

static void unmap_desc(uint8_t *p, unsigned i, uint64_t lba, uint32_t n)
{
	uint8_t *d = p + 8 + 16 * i;

	for (int k = 0; k < 8; k++)
		d[k] = (uint8_t)(lba >> (56 - 8 * k));
	for (int k = 0; k < 4; k++)
		d[8 + k] = (uint8_t)(n >> (24 - 8 * k));
}

static void gateway_scsi_unmap(void)
{
	uint8_t cdb[10] = { 0x42 };
	struct scsi_cmd c;

	setup(0);
	memset(ram.data, 0x77, ram.size);
	unmap_param(buf, 2);
	unmap_desc(buf, 0, 0, 8);
	unmap_desc(buf, 1, NBLOCKS - 1, 1);
	cdb[8] = 40;
	c = run(cdb, 10, 0, 40, 40);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(ram.zero_calls, 2);
	CHECK_EQ(ram.zero_len[0], 8 * BS);
	CHECK_EQ(ram.zero_off[1], (uint64_t)(NBLOCKS - 1) * BS);
	CHECK_EQ(ram.data[0], 0);
	CHECK_EQ(ram.data[8 * BS], 0x77);
	CHECK_EQ(ram.data[ram.size - 1], 0);

	/* one bad descriptor: nothing is unmapped */
	unmap_param(buf, 2);
	unmap_desc(buf, 0, 100, 8);
	unmap_desc(buf, 1, NBLOCKS - 1, 2);
	c = run(cdb, 10, 0, 40, 40);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x21, 0x00));
	CHECK_EQ(ram.zero_calls, 2);

	/* no descriptors, parameter list length 0 */
	unmap_param(buf, 0);
	cdb[8] = 8;
	c = run(cdb, 10, 0, 8, 8);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	cdb[8] = 0;
	c = run(cdb, 10, 0, 0, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	/* too short a parameter list */
	cdb[8] = 4;
	c = run(cdb, 10, 0, 4, 4);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x1a, 0x00));
	/* ANCHOR */
	cdb[8] = 24;
	cdb[1] = 1;
	c = run(cdb, 10, 0, 24, 24);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x24, 0x00));
	CHECK_EQ(ram.zero_calls, 2);
}

static void gateway_scsi_mode_sense(void)
{
	uint8_t cdb[10] = { 0x1a, 0, 0x08, 0, 255 };
	struct scsi_cmd c;

	setup(0);
	c = run(cdb, 6, 0, 255, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, 4 + 8 + 20);
	CHECK_EQ(buf[0], 4 + 8 + 20 - 1);
	CHECK_EQ(buf[2] & 0x80, 0);
	CHECK_EQ(buf[3], 8);
	CHECK_EQ((uint32_t)buf[4] << 24 | buf[5] << 16 | buf[6] << 8 | buf[7], NBLOCKS);
	CHECK_EQ(buf[10] << 8 | buf[11], BS);
	CHECK_EQ(buf[12], 0x08);
	CHECK_EQ(buf[13], 0x12);
	CHECK_EQ(buf[14] & 0x04, 0x04);  /* WCE */

	/* DBD, all pages */
	cdb[1] = 0x08;
	cdb[2] = 0x3f;
	c = run(cdb, 6, 0, 255, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(buf[3], 0);
	CHECK_EQ(c.xfer_len, 4 + 20 + 12 + 12);
	CHECK_EQ(buf[4], 0x08);
	CHECK_EQ(buf[24], 0x0a);
	CHECK_EQ(buf[36], 0x1c);
	/* allocation length */
	cdb[4] = 10;
	c = run(cdb, 6, 0, 255, 0);
	CHECK_EQ(c.xfer_len, 10);
	CHECK_EQ(buf[0], 4 + 20 + 12 + 12 - 1);
	cdb[4] = 255;
	/* changeable: WCE not changeable */
	cdb[2] = 0x48;
	c = run(cdb, 6, 0, 255, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(buf[6] & 0x04, 0);
	/* saved values */
	cdb[2] = 0xc8;
	c = run(cdb, 6, 0, 255, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x39, 0x00));
	/* unknown page */
	cdb[2] = 0x19;
	c = run(cdb, 6, 0, 255, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x24, 0x00));

	/* MODE SENSE 10 with LLBAA: long block descriptor */
	memset(cdb, 0, 10);
	cdb[0] = 0x5a;
	cdb[1] = 0x10;
	cdb[2] = 0x0a;
	cdb[8] = 255;
	c = run(cdb, 10, 0, 255, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.xfer_len, 8 + 16 + 12);
	CHECK_EQ(buf[1], 8 + 16 + 12 - 2);
	CHECK_EQ(buf[4] & 1, 1);
	CHECK_EQ(buf[7], 16);
	CHECK_EQ(buf[14] << 8 | buf[15], NBLOCKS);
	CHECK_EQ(buf[22] << 8 | buf[23], BS);
	CHECK_EQ(buf[24], 0x0a);
	cdb[1] = 0;
	c = run(cdb, 10, 0, 255, 0);
	CHECK_EQ(buf[7], 8);
	CHECK_EQ(c.xfer_len, 8 + 8 + 12);
}

static void gateway_scsi_mode_select(void)
{
	uint8_t sense6[6] = { 0x1a, 0x08, 0x08, 0, 255, 0 };
	uint8_t cdb[6] = { 0x15, 0x10, 0, 0, 24, 0 };
	uint8_t page[32];
	struct scsi_cmd c;

	setup(0);
	c = run(sense6, 6, 0, 255, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	memcpy(page, buf, 24);
	/* restating the current values is accepted */
	memcpy(buf, page, 24);
	buf[0] = 0;
	c = run(cdb, 6, 0, 24, 24);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	/* turning the write cache off is refused */
	memcpy(buf, page, 24);
	buf[0] = 0;
	buf[6] &= (uint8_t)~0x04;
	c = run(cdb, 6, 0, 24, 24);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x26, 0x00));
	CHECK_EQ(c.sense[17], 6);
	/* SP */
	cdb[1] = 0x11;
	c = run(cdb, 6, 0, 24, 24);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x24, 0x00));
	/* header only */
	cdb[1] = 0x10;
	cdb[4] = 4;
	memset(buf, 0, 4);
	c = run(cdb, 6, 0, 4, 4);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	/* truncated header */
	cdb[4] = 2;
	c = run(cdb, 6, 0, 2, 2);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x1a, 0x00));
}

static void gateway_scsi_report_opcodes(void)
{
	uint8_t cdb[12] = { 0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0 };
	struct scsi_cmd c;
	uint32_t len;
	int found = 0;

	setup(0);
	c = run(cdb, 12, 0, 4096, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	len = (uint32_t)buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3];
	CHECK_EQ(len % 8, 0);
	CHECK_EQ(c.xfer_len, len + 4);
	for (uint32_t o = 4; o < len + 4; o += 8)
		if (buf[o] == 0x28 && (buf[o + 6] << 8 | buf[o + 7]) == 10)
			found = 1;
	CHECK(found);

	/* one command: READ 16 supported, opcode 0xc7 not */
	cdb[2] = 1;
	cdb[3] = 0x88;
	c = run(cdb, 12, 0, 4096, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(buf[1] & 7, 3);
	CHECK_EQ(buf[3], 16);
	CHECK_EQ(buf[4], 0x88);
	cdb[3] = 0xc7;
	c = run(cdb, 12, 0, 4096, 0);
	CHECK_EQ(buf[1] & 7, 1);
	/* READ CAPACITY 16 by service action */
	cdb[2] = 2;
	cdb[3] = 0x9e;
	cdb[5] = 0x10;
	c = run(cdb, 12, 0, 4096, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(buf[1] & 7, 3);
	cdb[2] = 1;
	c = run(cdb, 12, 0, 4096, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x24, 0x00));
}

int main(void)
{
	RUN(gateway_scsi_test_unit_ready);
	RUN(gateway_scsi_unknown_opcode);
	RUN(gateway_scsi_inquiry_standard);
	RUN(gateway_scsi_inquiry_vpd);
	RUN(gateway_scsi_report_luns);
	RUN(gateway_scsi_request_sense);
	RUN(gateway_scsi_read_capacity);
	RUN(gateway_scsi_read_write10);
	RUN(gateway_scsi_boundaries);
	RUN(gateway_scsi_residuals);
	RUN(gateway_scsi_data_out_len);
	RUN(gateway_scsi_read_only);
	RUN(gateway_scsi_lun_errors);
	RUN(gateway_scsi_sync_prefetch);
	RUN(gateway_scsi_verify);
	RUN(gateway_scsi_write_same);
	RUN(gateway_scsi_unmap);
	RUN(gateway_scsi_mode_sense);
	RUN(gateway_scsi_mode_select);
	RUN(gateway_scsi_report_opcodes);
	scsi_lun_release(&lun0);
	scsi_lun_release(&lun2);
	free(ram.data);
	return check_result();
}
