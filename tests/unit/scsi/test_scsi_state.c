/* test_scsi_state.c - the stateful part of the SCSI layer against RAM LUNs and several
 * I_T nexuses: unit attentions, SCSI-2 and persistent reservations (with the APTPL blob
 * saved and loaded through the lun ops), COMPARE AND WRITE (also under concurrent
 * writers), EXTENDED COPY and RECEIVE COPY RESULTS. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "scsi.h"
#include "scsi_int.h"

#define BS 512u
#define NBLOCKS 4096u

struct ram {
	uint8_t *data;
	void *blob;             /* saved state */
	size_t blob_len;
	unsigned saves;
};

static int ram_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct ram *r = ctx;

	memcpy(buf, r->data + off, len);
	return 0;
}

static int ram_write(void *ctx, uint64_t off, const void *buf, size_t len, int fua)
{
	struct ram *r = ctx;

	(void)fua;
	/* byte by byte, slowly enough that an unlocked racing write would interleave */
	for (size_t i = 0; i < len; i++)
		__atomic_store_n(&r->data[off + i], ((const uint8_t *)buf)[i], __ATOMIC_RELAXED);
	return 0;
}

/* While zero_hold is set, write_zeroes waits: a SANITIZE stays in progress. */
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cond = PTHREAD_COND_INITIALIZER;
static int zero_hold;

static void hold_zeroes(int on)
{
	pthread_mutex_lock(&hold_lock);
	zero_hold = on;
	pthread_cond_broadcast(&hold_cond);
	pthread_mutex_unlock(&hold_lock);
}

static int ram_zero(void *ctx, uint64_t off, uint64_t len, int fua)
{
	struct ram *r = ctx;

	(void)fua;
	pthread_mutex_lock(&hold_lock);
	while (zero_hold)
		pthread_cond_wait(&hold_cond, &hold_lock);
	pthread_mutex_unlock(&hold_lock);
	memset(r->data + off, 0, len);
	return 0;
}

/* Provisioning: a block is mapped when it holds a non-zero byte. */
static int block_mapped(const struct ram *r, uint64_t b)
{
	for (unsigned i = 0; i < BS; i++)
		if (r->data[b * BS + i])
			return 1;
	return 0;
}

static int ram_map_status(void *ctx, uint64_t off, uint64_t len, uint64_t *run, int *mapped)
{
	struct ram *r = ctx;
	uint64_t b = off / BS, n = 1;

	*mapped = block_mapped(r, b);
	while (n < len / BS && block_mapped(r, b + n) == *mapped)
		n++;
	*run = n * BS;
	return 0;
}

static int ram_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

static int ram_save(void *ctx, const void *blob, size_t len)
{
	struct ram *r = ctx;

	free(r->blob);
	r->blob = malloc(len);
	memcpy(r->blob, blob, len);
	r->blob_len = len;
	r->saves++;
	return 0;
}

static int ram_load(void *ctx, void **blob, size_t *len)
{
	struct ram *r = ctx;

	if (!r->blob)
		return -ENOENT;
	*blob = malloc(r->blob_len);
	memcpy(*blob, r->blob, r->blob_len);
	*len = r->blob_len;
	return 0;
}

static const struct lun_ops ram_ops = {
	.read = ram_read, .write = ram_write, .write_zeroes = ram_zero, .flush = ram_flush,
	.state_save = ram_save, .state_load = ram_load, .map_status = ram_map_status,
};

static struct ram ram;
static struct lun lun0;
static struct lun *lun_tab[1] = { &lun0 };
static struct scsi_lun_map map = { lun_tab, 1 };
static struct scsi_nexus nx[3];

static void setup(int keep_blob)
{
	scsi_lun_release(&lun0);
	if (!keep_blob) {
		free(ram.blob);
		ram.blob = NULL;
		ram.blob_len = 0;
	}
	if (!ram.data)
		ram.data = calloc(1, (size_t)NBLOCKS * BS);
	memset(&lun0, 0, sizeof(lun0));
	lun0.ops = &ram_ops;
	lun0.ctx = &ram;
	lun0.size = (uint64_t)NBLOCKS * BS;
	lun0.block_size = BS;
	lun0.opt_xfer = 65536;
	strcpy(lun0.name, "vol0");
	strcpy(lun0.serial, "0123456789abcdef");
	lun0.naa[0] = 0x60;
	lun0.naa[15] = 0x07;
	for (int i = 0; i < 3; i++) {
		memset(&nx[i], 0, sizeof(nx[i]));
		nx[i].id = (uint64_t)i + 1;
		snprintf(nx[i].initiator, sizeof(nx[i].initiator), "iqn.2026-01.test:init%d", i);
		nx[i].isid[5] = (uint8_t)i;
	}
}

static struct scsi_cmd run_on(int n, const uint8_t *cdb, unsigned len, uint8_t *buf,
			      uint32_t edtl, uint32_t dout)
{
	struct scsi_cmd c;

	memset(&c, 0, sizeof(c));
	memcpy(c.cdb, cdb, len);
	c.cdb_len = (uint8_t)len;
	c.nexus = n >= 0 ? &nx[n] : NULL;
	c.map = &map;
	c.buf = buf;
	c.buf_cap = edtl;
	c.edtl = edtl;
	c.data_out_len = dout;
	scsi_exec(&c);
	return c;
}

static int sense_is(const struct scsi_cmd *c, int key, int asc, int ascq)
{
	return c->status == SAM_STAT_CHECK_CONDITION && (c->sense[2] & 0xf) == key &&
	       c->sense[12] == asc && c->sense[13] == ascq;
}

static const uint8_t tur[6] = { 0 };

static int tur_status(int n)
{
	return run_on(n, tur, 6, NULL, 0, 0).status;
}

static void clear_ua(int n)
{
	for (int i = 0; i < 10 && tur_status(n) != SAM_STAT_GOOD; i++)
		;
}

static void gateway_scsi_unit_attentions(void)
{
	uint8_t cdb[16] = { 0 }, buf[64];
	struct scsi_cmd c;

	setup(0);
	/* INQUIRY does not report or consume the power-on UA */
	cdb[0] = 0x12;
	cdb[4] = 36;
	c = run_on(0, cdb, 6, buf, 36, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	/* REQUEST SENSE returns it as data and clears it */
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = 0x03;
	cdb[4] = 18;
	c = run_on(0, cdb, 6, buf, 18, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(buf[2] & 0xf, SK_UNIT_ATTENTION);
	CHECK_EQ(buf[12], 0x29);
	CHECK_EQ(buf[13], 0x00);
	CHECK_EQ(tur_status(0), SAM_STAT_GOOD);
	/* the other nexus has its own */
	c = run_on(1, tur, 6, NULL, 0, 0);
	CHECK(sense_is(&c, SK_UNIT_ATTENTION, 0x29, 0x00));
	CHECK_EQ(tur_status(1), SAM_STAT_GOOD);
	/* LUN reset: every nexus, the resetting one too */
	scsi_lun_reset(&lun0, &nx[0]);
	c = run_on(0, tur, 6, NULL, 0, 0);
	CHECK(sense_is(&c, SK_UNIT_ATTENTION, 0x29, 0x03));
	c = run_on(1, tur, 6, NULL, 0, 0);
	CHECK(sense_is(&c, SK_UNIT_ATTENTION, 0x29, 0x03));
	CHECK_EQ(tur_status(1), SAM_STAT_GOOD);
	/* capacity change, for everyone */
	scsi_lun_changed(&lun0, 0x2a, 0x09);
	c = run_on(0, tur, 6, NULL, 0, 0);
	CHECK(sense_is(&c, SK_UNIT_ATTENTION, 0x2a, 0x09));
	/* nexus loss: the next session on that I_T nexus is told */
	scsi_nexus_lost(&nx[1], &map);
	nx[1].id = 77;
	c = run_on(1, tur, 6, NULL, 0, 0);
	CHECK(sense_is(&c, SK_UNIT_ATTENTION, 0x29, 0x07));
	CHECK_EQ(tur_status(1), SAM_STAT_GOOD);
	/* NULL nexus: one anonymous nexus */
	c = run_on(-1, tur, 6, NULL, 0, 0);
	CHECK(sense_is(&c, SK_UNIT_ATTENTION, 0x29, 0x00));
	CHECK_EQ(tur_status(-1), SAM_STAT_GOOD);
}

static void gateway_scsi_reserve6(void)
{
	uint8_t r6[6] = { 0x16 }, rel6[6] = { 0x17 }, buf[512], rd[10] = { 0x28 };
	struct scsi_cmd c;

	setup(0);
	clear_ua(0);
	clear_ua(1);
	CHECK_EQ(run_on(0, r6, 6, NULL, 0, 0).status, SAM_STAT_GOOD);
	CHECK_EQ(run_on(0, r6, 6, NULL, 0, 0).status, SAM_STAT_GOOD);
	CHECK_EQ(run_on(1, r6, 6, NULL, 0, 0).status, SAM_STAT_RESERVATION_CONFLICT);
	CHECK_EQ(run_on(1, rel6, 6, NULL, 0, 0).status, SAM_STAT_GOOD); /* no-op */
	rd[8] = 1;
	CHECK_EQ(run_on(1, rd, 10, buf, 512, 0).status, SAM_STAT_RESERVATION_CONFLICT);
	CHECK_EQ(run_on(0, rd, 10, buf, 512, 0).status, SAM_STAT_GOOD);
	/* a LUN reset releases it */
	scsi_lun_reset(&lun0, &nx[0]);
	clear_ua(0);
	clear_ua(1);
	CHECK_EQ(run_on(1, r6, 6, NULL, 0, 0).status, SAM_STAT_GOOD);
	/* and the loss of the holder's nexus too */
	scsi_nexus_lost(&nx[1], &map);
	c = run_on(0, r6, 6, NULL, 0, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(run_on(0, rel6, 6, NULL, 0, 0).status, SAM_STAT_GOOD);
}

static struct scsi_cmd prout(int n, unsigned sa, unsigned type, uint64_t key, uint64_t sark,
			     uint8_t flags)
{
	uint8_t cdb[10] = { 0x5f }, p[24] = { 0 };

	cdb[1] = (uint8_t)sa;
	cdb[2] = (uint8_t)type;
	cdb[8] = 24;
	for (int i = 0; i < 8; i++) {
		p[i] = (uint8_t)(key >> (56 - 8 * i));
		p[8 + i] = (uint8_t)(sark >> (56 - 8 * i));
	}
	p[20] = flags;
	return run_on(n, cdb, 10, p, 24, 24);
}

static struct scsi_cmd prin(int n, unsigned sa, uint8_t *buf)
{
	uint8_t cdb[10] = { 0x5e };

	cdb[1] = (uint8_t)sa;
	cdb[8] = 255;
	return run_on(n, cdb, 10, buf, 255, 0);
}

static int can_read(int n)
{
	uint8_t rd[10] = { 0x28 }, buf[512];

	rd[8] = 1;
	return run_on(n, rd, 10, buf, 512, 0).status == SAM_STAT_GOOD;
}

static int can_write(int n)
{
	uint8_t wr[10] = { 0x2a }, buf[512] = { 0 };

	wr[8] = 1;
	return run_on(n, wr, 10, buf, 512, 512).status == SAM_STAT_GOOD;
}

static void gateway_scsi_persistent_reservations(void)
{
	/* type, registered 2nd can read/write, unregistered 3rd can read/write */
	static const int access[][5] = {
		{ 1, 1, 0, 1, 0 }, { 3, 0, 0, 0, 0 }, { 5, 1, 1, 1, 0 },
		{ 6, 1, 1, 0, 0 }, { 7, 1, 1, 1, 0 }, { 8, 1, 1, 0, 0 },
	};
	uint8_t buf[256];
	struct scsi_cmd c;

	setup(0);
	for (int n = 0; n < 3; n++)
		clear_ua(n);
	for (unsigned t = 0; t < sizeof(access) / sizeof(access[0]); t++) {
		unsigned type = (unsigned)access[t][0];

		CHECK_EQ(prout(0, 6, 0, 0, 0xa1, 0).status, SAM_STAT_GOOD);
		CHECK_EQ(prout(1, 0, 0, 0, 0xb2, 0).status, SAM_STAT_GOOD);
		CHECK_EQ(prout(0, 1, type, 0xa1, 0, 0).status, SAM_STAT_GOOD);
		c = prin(0, 1, buf);
		CHECK_EQ(c.status, SAM_STAT_GOOD);
		CHECK_EQ(buf[7], 16);
		CHECK_EQ(buf[8 + 13], type);
		CHECK_EQ(buf[15], type >= 7 ? 0 : 0xa1);
		CHECK(can_read(0) && can_write(0));
		CHECK_EQ(can_read(1), access[t][1]);
		CHECK_EQ(can_write(1), access[t][2]);
		CHECK_EQ(can_read(2), access[t][3]);
		CHECK_EQ(can_write(2), access[t][4]);
		/* a second reservation by another registrant conflicts (but for AR types) */
		c = prout(1, 1, type, 0xb2, 0, 0);
		CHECK_EQ(c.status, type >= 7 ? SAM_STAT_GOOD : SAM_STAT_RESERVATION_CONFLICT);
		/* release with the wrong type: INVALID RELEASE OF PERSISTENT RESERVATION */
		c = prout(0, 2, type == 1 ? 3 : 1, 0xa1, 0, 0);
		CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x26, 0x04));
		CHECK_EQ(prout(0, 2, type, 0xa1, 0, 0).status, SAM_STAT_GOOD);
		if (type == 5 || type == 6 || type == 7 || type == 8) {
			c = run_on(1, tur, 6, NULL, 0, 0);
			CHECK(sense_is(&c, SK_UNIT_ATTENTION, 0x2a, 0x04)); /* RESERVATIONS RELEASED */
		}
		clear_ua(1);
		CHECK(can_write(2));
		CHECK_EQ(prout(0, 0, 0, 0xa1, 0, 0).status, SAM_STAT_GOOD);
		CHECK_EQ(prout(1, 0, 0, 0xb2, 0, 0).status, SAM_STAT_GOOD);
	}
	/* wrong key: conflict; READ KEYS lists the registered ones */
	CHECK_EQ(prout(0, 0, 0, 0, 0x11, 0).status, SAM_STAT_GOOD);
	CHECK_EQ(prout(0, 0, 0, 0x12, 0x13, 0).status, SAM_STAT_RESERVATION_CONFLICT);
	CHECK_EQ(prout(1, 0, 0, 0, 0x22, 0).status, SAM_STAT_GOOD);
	c = prin(2, 0, buf);
	CHECK_EQ(buf[7], 16);
	CHECK_EQ(buf[15], 0x11);
	CHECK_EQ(buf[23], 0x22);
	/* preempt: nexus 1 takes the reservation of nexus 0 and removes its registration */
	CHECK_EQ(prout(0, 1, 1, 0x11, 0, 0).status, SAM_STAT_GOOD);
	CHECK_EQ(prout(1, 4, 3, 0x22, 0x11, 0).status, SAM_STAT_GOOD);
	c = run_on(0, tur, 6, NULL, 0, 0);
	CHECK(sense_is(&c, SK_UNIT_ATTENTION, 0x2a, 0x05)); /* REGISTRATIONS PREEMPTED */
	c = prin(2, 1, buf);
	CHECK_EQ(buf[15], 0x22);
	CHECK_EQ(buf[21], 3);
	CHECK(!can_read(0));
	/* READ FULL STATUS: one registrant, the holder, with its TransportID */
	c = prin(2, 3, buf);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(buf[8 + 7], 0x22);
	CHECK_EQ(buf[8 + 12], 0x01);
	CHECK_EQ(buf[8 + 24], 0x45);
	CHECK(strstr((char *)buf + 8 + 28, "iqn.2026-01.test:init1,i,0x") != NULL);
	/* REPORT CAPABILITIES */
	c = prin(2, 2, buf);
	CHECK_EQ(buf[1], 8);
	CHECK_EQ(buf[4], 0xea);
	CHECK_EQ(buf[5], 0x01);
	/* CLEAR: everything goes, the others learn RESERVATIONS PREEMPTED */
	CHECK_EQ(prout(0, 0, 0, 0, 0x33, 0).status, SAM_STAT_GOOD);
	CHECK_EQ(prout(1, 3, 0, 0x22, 0, 0).status, SAM_STAT_GOOD);
	c = run_on(0, tur, 6, NULL, 0, 0);
	CHECK(sense_is(&c, SK_UNIT_ATTENTION, 0x2a, 0x03));
	c = prin(2, 0, buf);
	CHECK_EQ(buf[7], 0);
	/* RESERVE(6) conflicts with registrations */
	CHECK_EQ(prout(0, 0, 0, 0, 0x44, 0).status, SAM_STAT_GOOD);
	{
		uint8_t r6[6] = { 0x16 };

		CHECK_EQ(run_on(1, r6, 6, NULL, 0, 0).status, SAM_STAT_RESERVATION_CONFLICT);
	}
	CHECK_EQ(prout(0, 0, 0, 0x44, 0, 0).status, SAM_STAT_GOOD);
	/* bad parameter list length */
	{
		uint8_t cdb[10] = { 0x5f }, p[24] = { 0 };

		cdb[8] = 20;
		c = run_on(0, cdb, 10, p, 20, 20);
		CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x1a, 0x00));
	}
}

static void gateway_scsi_aptpl(void)
{
	uint8_t buf[256];
	struct scsi_cmd c;

	setup(0);
	clear_ua(0);
	clear_ua(1);
	CHECK_EQ(prout(0, 6, 0, 0, 0x55, 0x01).status, SAM_STAT_GOOD); /* APTPL */
	CHECK_EQ(prout(1, 6, 0, 0, 0x66, 0x01).status, SAM_STAT_GOOD);
	CHECK_EQ(prout(0, 1, 5, 0x55, 0, 0).status, SAM_STAT_GOOD);
	CHECK(ram.saves >= 3);
	/* "power cycle": a fresh LUN state loads the blob */
	setup(1);
	c = prin(1, 1, buf);
	CHECK(sense_is(&c, SK_UNIT_ATTENTION, 0x29, 0x00));
	c = prin(1, 1, buf);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(buf[15], 0x55);
	CHECK_EQ(buf[21], 5);
	c = prin(1, 0, buf);
	CHECK_EQ(buf[7], 16);
	clear_ua(0);
	CHECK_EQ(prout(0, 2, 5, 0x55, 0, 0x01).status, SAM_STAT_GOOD);
	/* a damaged blob is ignored */
	((uint8_t *)ram.blob)[10] ^= 1;
	setup(1);
	clear_ua(0);
	c = prin(0, 0, buf);
	CHECK_EQ(buf[7], 0);
	/* APTPL cleared by a register without it: nothing survives */
	setup(0);
	clear_ua(0);
	CHECK_EQ(prout(0, 6, 0, 0, 0x55, 0x01).status, SAM_STAT_GOOD);
	CHECK_EQ(prout(0, 6, 0, 0, 0x56, 0).status, SAM_STAT_GOOD);
	setup(1);
	clear_ua(0);
	c = prin(0, 0, buf);
	CHECK_EQ(buf[7], 0);
}

static struct scsi_cmd caw(int n, uint32_t lba, uint8_t blocks, uint8_t *data)
{
	uint8_t cdb[16] = { 0x89 };

	cdb[5] = (uint8_t)(lba >> 24);
	cdb[6] = (uint8_t)(lba >> 16);
	cdb[7] = (uint8_t)(lba >> 8);
	cdb[9] = (uint8_t)lba;
	cdb[13] = blocks;
	return run_on(n, cdb, 16, data, 2u * blocks * BS, 2u * blocks * BS);
}

struct racer {
	int id;
	unsigned wins;
};

/* Each racer increments a counter in block 100 with COMPARE AND WRITE, retrying on
 * miscompare, while a writer rewrites the rest of the block's neighbourhood. */
static void *caw_racer(void *arg)
{
	struct racer *r = arg;
	uint8_t d[2 * BS];

	for (unsigned i = 0; i < 200;) {
		struct scsi_cmd c;
		uint32_t v;

		memcpy(d, ram.data + 100 * BS, BS); /* a racy snapshot: CAW decides */
		memcpy(&v, d, 4);
		memcpy(d + BS, d, BS);
		v++;
		memcpy(d + BS, &v, 4);
		memset(d + BS + 4, (uint8_t)v, BS - 4);
		c = caw(r->id, 100, 1, d);
		if (c.status == SAM_STAT_GOOD) {
			i++;
			r->wins++;
		}
	}
	return NULL;
}

static void gateway_scsi_compare_and_write(void)
{
	uint8_t d[4 * BS];
	struct scsi_cmd c;
	pthread_t th[2];
	struct racer rc[2] = { { 0, 0 }, { 1, 0 } };
	uint32_t v;

	setup(0);
	clear_ua(0);
	clear_ua(1);
	memset(ram.data, 0, (size_t)NBLOCKS * BS);
	memset(d, 0, 2 * BS);
	memset(d + 2 * BS, 0x5a, 2 * BS);
	c = caw(0, 10, 2, d);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(ram.data[10 * BS], 0x5a);
	CHECK_EQ(ram.data[12 * BS - 1], 0x5a);
	/* miscompare: the offset of the first differing byte, nothing written */
	memset(d, 0x5a, 2 * BS);
	d[BS + 7] = 0;
	memset(d + 2 * BS, 0x77, 2 * BS);
	c = caw(0, 10, 2, d);
	CHECK(sense_is(&c, SK_MISCOMPARE, 0x1d, 0x00));
	CHECK_EQ(c.sense[0] & 0x80, 0x80);
	CHECK_EQ(c.sense[6], (BS + 7) & 0xff);
	CHECK_EQ(c.sense[5], (BS + 7) >> 8);
	CHECK_EQ(ram.data[10 * BS], 0x5a);
	/* beyond the end, too long */
	c = caw(0, NBLOCKS - 1, 2, d);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x21, 0x00));
	/* atomic against the other: the counter ends at exactly 400 */
	memset(ram.data + 100 * BS, 0, BS);
	pthread_create(&th[0], NULL, caw_racer, &rc[0]);
	pthread_create(&th[1], NULL, caw_racer, &rc[1]);
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	memcpy(&v, ram.data + 100 * BS, 4);
	CHECK_EQ(v, 400);
	CHECK_EQ(rc[0].wins + rc[1].wins, 400);
}

static void gateway_scsi_extended_copy(void)
{
	uint8_t p[16 + 32 + 28], cdb[16] = { 0x83 }, buf[64];
	struct scsi_cmd c;

	setup(0);
	clear_ua(0);
	for (unsigned i = 0; i < 8 * BS; i++)
		ram.data[i] = (uint8_t)(i * 7);
	memset(ram.data + 1000 * BS, 0, 8 * BS);
	memset(p, 0, sizeof(p));
	p[0] = 9;                       /* list id */
	p[3] = 32;                      /* one CSCD descriptor */
	p[11] = 28;                     /* one segment */
	p[16] = 0xe4;
	p[16 + 4] = 0x01;
	p[16 + 5] = 0x03;
	p[16 + 7] = 16;
	memcpy(p + 16 + 8, lun0.naa, 16);
	p[16 + 30] = BS >> 8;
	p[48] = 0x02;
	p[48 + 3] = 0x18;
	p[48 + 11] = 8;                 /* blocks */
	p[48 + 27] = 0xe8;              /* dst LBA 1000 = 0x3e8 */
	p[48 + 26] = 0x03;
	cdb[13] = sizeof(p);
	c = run_on(0, cdb, 16, p, sizeof(p), sizeof(p));
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_MEM(ram.data + 1000 * BS, ram.data, 8 * BS);
	/* COPY STATUS of list 9 */
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = 0x84;
	cdb[1] = 0x00;
	cdb[2] = 9;
	cdb[13] = 64;
	c = run_on(0, cdb, 16, buf, 64, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(buf[4], 1);
	CHECK_EQ(buf[6], 1);
	CHECK_EQ(buf[11], 4);           /* 4 KiB */
	/* OPERATING PARAMETERS */
	cdb[1] = 0x03;
	c = run_on(0, cdb, 16, buf, 64, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(buf[43], 2);
	/* unknown designator: COPY ABORTED; beyond the end: COPY ABORTED */
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = 0x83;
	cdb[13] = sizeof(p);
	p[16 + 8] ^= 0xff;
	c = run_on(0, cdb, 16, p, sizeof(p), sizeof(p));
	CHECK(sense_is(&c, 0x0a, 0x0d, 0x02));
	p[16 + 8] ^= 0xff;
	p[48 + 20] = 0xff;
	c = run_on(0, cdb, 16, p, sizeof(p), sizeof(p));
	CHECK_EQ(c.sense[2] & 0xf, 0x0a);
	/* truncated list */
	cdb[13] = sizeof(p) - 1;
	c = run_on(0, cdb, 16, p, sizeof(p) - 1, sizeof(p) - 1);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x1a, 0x00));
}

static void gateway_scsi_software_write_protect(void)
{
	uint8_t ms[6] = { 0x1a, 0x08, 0x0a, 0, 64, 0 }, sel[6] = { 0x15, 0x10, 0, 0, 16, 0 };
	uint8_t buf[64], p[16];
	struct scsi_cmd c;

	setup(0);
	clear_ua(0);
	ms[2] = 0x4a; /* changeable values of the control page */
	c = run_on(0, ms, 6, buf, 64, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(buf[4 + 4], 0x08);
	ms[2] = 0x0a;
	c = run_on(0, ms, 6, buf, 64, 0);
	memset(p, 0, sizeof(p));
	memcpy(p + 4, buf + 4, 12);
	p[4 + 4] |= 0x08;
	c = run_on(0, sel, 6, p, 16, 16);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK(!can_write(1));
	{
		uint8_t wr[10] = { 0x2a }, b[512] = { 0 };

		wr[8] = 1;
		clear_ua(1);
		c = run_on(1, wr, 10, b, 512, 512);
		CHECK(sense_is(&c, SK_DATA_PROTECT, 0x27, 0x02));
	}
	c = run_on(0, ms, 6, buf, 64, 0);
	CHECK_EQ(buf[2] & 0x80, 0x80); /* WP */
	p[4 + 4] &= (uint8_t)~0x08;
	c = run_on(0, sel, 6, p, 16, 16);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK(can_write(1));
}

/* GET LBA STATUS: runs of mapped and deallocated blocks from map_status, as many
 * descriptors as the allocation length holds. */
static void gateway_scsi_get_lba_status(void)
{
	uint8_t cdb[16] = { 0x9e, 0x12 }, buf[8 + 16 * 4], blk[BS];
	struct scsi_cmd c;

	setup(0);
	clear_ua(0);
	memset(ram.data, 0, (size_t)NBLOCKS * BS);
	memset(blk, 0x77, sizeof(blk));
	for (unsigned b = 8; b < 16; b++)
		memcpy(ram.data + b * BS, blk, BS);
	put_be32(cdb + 10, sizeof(buf));
	c = run_on(0, cdb, 16, buf, sizeof(buf), 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.data_in_len, 8 + 16 * 3);
	CHECK_EQ(get_be32(buf), 4 + 16 * 3);
	CHECK_EQ(get_be64(buf + 8), 0);          /* 0-7 deallocated */
	CHECK_EQ(get_be32(buf + 16), 8);
	CHECK_EQ(buf[20] & 0xf, 1);
	CHECK_EQ(get_be64(buf + 24), 8);         /* 8-15 mapped */
	CHECK_EQ(get_be32(buf + 32), 8);
	CHECK_EQ(buf[36] & 0xf, 0);
	CHECK_EQ(get_be64(buf + 40), 16);        /* the rest deallocated */
	CHECK_EQ(get_be32(buf + 48), NBLOCKS - 16);
	CHECK_EQ(buf[52] & 0xf, 1);
	/* allocation length for one descriptor, starting inside the mapped run */
	put_be64(cdb + 2, 12);
	put_be32(cdb + 10, 24);
	c = run_on(0, cdb, 16, buf, 24, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(c.data_in_len, 24);
	CHECK_EQ(get_be64(buf + 8), 12);
	CHECK_EQ(get_be32(buf + 16), 4);
	CHECK_EQ(buf[20] & 0xf, 0);
	/* beyond the end */
	put_be64(cdb + 2, NBLOCKS);
	c = run_on(0, cdb, 16, buf, 24, 0);
	CHECK(sense_is(&c, SK_ILLEGAL_REQUEST, 0x21, 0x00));
}

struct bg_cmd {
	struct scsi_cmd c;
	int done;
};

static void *bg_exec(void *arg)
{
	struct bg_cmd *b = arg;

	scsi_exec(&b->c);
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int wait_sanitize_end(int n)
{
	for (int i = 0; i < 500; i++) {
		struct scsi_cmd c = run_on(n, tur, 6, NULL, 0, 0);
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		if (!sense_is(&c, SK_NOT_READY, 0x04, 0x1b))
			return 1;
		nanosleep(&ts, NULL);
	}
	return 0;
}

/* SANITIZE runs in the background: NOT READY / SANITIZE IN PROGRESS with progress for
 * other commands, REQUEST SENSE reports it, INQUIRY runs, a LUN reset does not stop it
 * and its unit attention waits; IMMED = 0 waits for the end unless the task is
 * aborted, which stops the wait, not the operation. */
static void gateway_scsi_sanitize_background(void)
{
	uint8_t san[10] = { 0x48, 0x80 | 0x02 }, rs[6] = { 0x03, 0, 0, 0, 18 }, inq[6] = { 0x12, 0, 0, 0, 36 };
	uint8_t buf[64];
	struct bg_cmd bg;
	pthread_t th;
	struct scsi_cmd c;

	setup(0);
	clear_ua(0);
	clear_ua(1);
	memset(ram.data, 0x33, (size_t)NBLOCKS * BS);
	hold_zeroes(1);
	c = run_on(0, san, 10, NULL, 0, 0);   /* BLOCK ERASE, IMMED */
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	c = run_on(1, tur, 6, NULL, 0, 0);
	CHECK(sense_is(&c, SK_NOT_READY, 0x04, 0x1b));
	CHECK_EQ(c.sense[15] & 0x80, 0x80);  /* SKSV: progress indication follows */
	CHECK(get_be16(c.sense + 16) < 0xffff);
	c = run_on(1, rs, 6, buf, 18, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(buf[2] & 0xf, SK_NOT_READY);
	CHECK_EQ(buf[12], 0x04);
	CHECK_EQ(buf[13], 0x1b);
	CHECK_EQ(buf[15] & 0x80, 0x80);
	c = run_on(1, inq, 6, buf, 36, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	c = run_on(0, san, 10, NULL, 0, 0);   /* a second SANITIZE meanwhile */
	CHECK(sense_is(&c, SK_NOT_READY, 0x04, 0x1b));
	scsi_lun_reset(&lun0, &nx[0]);
	c = run_on(0, tur, 6, NULL, 0, 0);
	CHECK(sense_is(&c, SK_NOT_READY, 0x04, 0x1b));
	hold_zeroes(0);
	CHECK(wait_sanitize_end(0));
	c = run_on(1, tur, 6, NULL, 0, 0);   /* the reset's UA waited for the end */
	CHECK(sense_is(&c, SK_UNIT_ATTENTION, 0x29, 0x03));
	clear_ua(0);
	clear_ua(1);
	for (unsigned i = 0; i < NBLOCKS * BS; i += 4096)
		CHECK_EQ(ram.data[i], 0);

	/* IMMED = 0: the task waits; an abort ends the wait, the operation goes on */
	memset(ram.data, 0x44, (size_t)NBLOCKS * BS);
	hold_zeroes(1);
	memset(&bg, 0, sizeof(bg));
	bg.c.cdb[0] = 0x48;
	bg.c.cdb[1] = 0x02;
	bg.c.cdb_len = 10;
	bg.c.nexus = &nx[0];
	bg.c.map = &map;
	pthread_create(&th, NULL, bg_exec, &bg);
	for (int i = 0; i < 200 && tur_status(1) == SAM_STAT_GOOD; i++) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	c = run_on(1, tur, 6, NULL, 0, 0);
	CHECK(sense_is(&c, SK_NOT_READY, 0x04, 0x1b));
	CHECK_EQ(__atomic_load_n(&bg.done, __ATOMIC_ACQUIRE), 0);
	__atomic_store_n(&bg.c.aborted, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	c = run_on(1, tur, 6, NULL, 0, 0);
	CHECK(sense_is(&c, SK_NOT_READY, 0x04, 0x1b));
	hold_zeroes(0);
	CHECK(wait_sanitize_end(1));
	CHECK_EQ(ram.data[0], 0);
	/* and without an abort it answers when the erase is done */
	memset(ram.data, 0x55, (size_t)NBLOCKS * BS);
	clear_ua(0);
	c = run_on(0, (const uint8_t[10]){ 0x48, 0x02 }, 10, NULL, 0, 0);
	CHECK_EQ(c.status, SAM_STAT_GOOD);
	CHECK_EQ(ram.data[NBLOCKS * BS - 1], 0);
	CHECK_EQ(tur_status(1), SAM_STAT_GOOD);
}

int main(void)
{
	RUN(gateway_scsi_unit_attentions);
	RUN(gateway_scsi_reserve6);
	RUN(gateway_scsi_persistent_reservations);
	RUN(gateway_scsi_aptpl);
	RUN(gateway_scsi_compare_and_write);
	RUN(gateway_scsi_extended_copy);
	RUN(gateway_scsi_software_write_protect);
	RUN(gateway_scsi_get_lba_status);
	RUN(gateway_scsi_sanitize_background);
	scsi_lun_release(&lun0);
	free(ram.data);
	free(ram.blob);
	return check_result();
}
