/* fuzz_cdb - libFuzzer target: CDB dispatch through the SCSI layer (gateway/scsi.c's
 * opcode table and its SPC/SBC/PR/XCOPY handlers) against RAM LUNs, from three I_T
 * nexuses, so reservations, unit attentions, mode pages and read-only states build up
 * over a sequence of commands within one input.
 *
 * Input layout: byte 0 configuration (FZ_* of fuzz_env.h; FZ_ACL here makes nexus B
 * read-only as an ACL would), then commands until the input ends:
 *   sel     bits 0-1 nexus (A, B, C; 3 = A), bits 2-3 LUN id (0, 1 unmapped, 2, 0x3fff),
 *           bits 4-6 event: 0-3 a command; 4 LUN RESET, 5 TARGET RESET, 6 the nexus's
 *           session ends, 7 the medium changed (unit attention for all);
 *           bit 7: with a command, the LUN fails its operations (-EIO reads, -ENOSPC
 *           writes); with an event, instead the LUN restarts: its SCSI state is
 *           dropped and reloaded from the saved APTPL blob, first XORed with the 16
 *           cdb bytes at offset edtl (a damaged saved state)
 *   cdb     16 bytes
 *   xfer    bits 0-1 EDTL: 0 u16, 1 u16 * 8, 2 u16 * 512, 3 what the CDB implies;
 *           bits 2-3 direction: 0 none, 1 in, 2 out, 3 what the CDB implies
 *   edtl    u16 big-endian (as scaled by xfer)
 *   dout    u16 big-endian length, then that many data-out bytes (at most EDTL)
 * The data buffer is exactly EDTL bytes (buf_cap = edtl), so a handler that writes past
 * it is caught by ASan. After each command the scsi_cmd contract of scsi.h is checked.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_env.h"
#include "log.h"
#include "scsi.h"

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_cdb: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
	abort(); } } while (0)

static struct scsi_nexus nexus[3];
static int verbose; /* FUZZ_LOG=1: one line per command */
static const struct scsi_lun_map map = { fuzz_lun_tab, FUZZ_NLUNS };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	verbose = !!getenv("FUZZ_LOG");
	log_set_level(verbose ? LOG_DEBUG : (enum log_level)(LOG_ERROR + 1));
	fuzz_env_init(0);
	for (int i = 0; i < 3; i++) {
		struct scsi_nexus *n = &nexus[i];

		n->id = (uint64_t)i + 1;
		snprintf(n->initiator, sizeof(n->initiator), "iqn.2026-11.org.fuzz:init%c", 'a' + i);
		n->isid[0] = 0x40;
		n->isid[5] = (uint8_t)i;
		n->tpgt = 1;
		snprintf(n->target, sizeof(n->target), "%s", FUZZ_IQN);
	}
	return 0;
}

static void event(int ev, const struct scsi_nexus *n, uint64_t lun_id, int restart,
		  const uint8_t *cdb, uint32_t off)
{
	struct lun *l = lun_id < FUZZ_NLUNS ? fuzz_lun_tab[lun_id] : NULL;

	if (restart) {
		struct fuzz_ram *r;

		if (!l)
			return;
		r = l->ctx;
		for (unsigned k = 0; k < 16 && r->blob_len; k++)
			((uint8_t *)r->blob)[(off + k) % r->blob_len] ^= cdb[k];
		scsi_lun_release(l); /* the next command loads the saved state */
		return;
	}
	switch (ev) {
	case 4:
		if (l)
			scsi_lun_reset(l, n);
		break;
	case 5:
		scsi_target_reset(&map, n);
		break;
	case 6:
		scsi_nexus_lost(n, &map);
		break;
	case 7:
		if (l)
			scsi_lun_changed(l, 0x2a, 0x09); /* CAPACITY DATA HAS CHANGED */
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t lun_ids[4] = { 0, 1, 2, 0x3fff };
	struct fuzz_in in = { data, size };
	uint8_t cfg;

	if (!size)
		return 0;
	cfg = fz_u8(&in);
	fuzz_env_reset(cfg);
	nexus[1].read_only = !!(cfg & FZ_ACL);
	while (in.n >= 1 + 16) {
		uint8_t sel = fz_u8(&in), xfer;
		const struct scsi_nexus *n = &nexus[(sel & 3) == 3 ? 0 : sel & 3];
		uint64_t lun_id = lun_ids[(sel >> 2) & 3];
		int ev = (sel >> 4) & 7;
		struct scsi_cmd c;
		uint32_t edtl, natural, want;
		size_t got;
		const uint8_t *p;

		memset(&c, 0, sizeof(c));
		p = fz_take(&in, 16, &got);
		memcpy(c.cdb, p, got);
		xfer = fz_u8(&in);
		edtl = fz_u16(&in);
		if (ev >= 4) {
			event(ev, n, lun_id, sel & 0x80, c.cdb, edtl);
			continue;
		}
		for (int i = 0; i < FUZZ_NLUNS; i++) {
			fuzz_ram[i].fail_read = (sel & 0x80) ? -EIO : 0;
			fuzz_ram[i].fail_write = (sel & 0x80) ? -ENOSPC : 0;
		}
		natural = scsi_data_out_len(c.cdb, &map, lun_id);
		switch (xfer & 3) {
		case 1: edtl *= 8; break;
		case 2: edtl *= 512; break;
		case 3: edtl = natural; break;
		}
		if (edtl > SCSI_MAX_XFER) /* the transport refuses these before scsi_exec */
			edtl = SCSI_MAX_XFER;
		switch ((xfer >> 2) & 3) {
		case 0: c.dir = SCSI_DIR_NONE; break;
		case 1: c.dir = SCSI_DIR_IN; break;
		case 2: c.dir = SCSI_DIR_OUT; break;
		default: c.dir = natural ? SCSI_DIR_OUT : SCSI_DIR_IN; break;
		}
		c.nexus = n;
		c.cdb_len = 16;
		c.lun_id = lun_id;
		c.map = &map;
		c.edtl = edtl;
		c.buf_cap = edtl;
		/* zeroed, so a handler that reads past the data received stays deterministic
		 * (large callocs are fresh mappings: no cost for pages never touched) */
		c.buf = calloc(1, edtl ? edtl : 1);
		if (!c.buf)
			abort();
		want = fz_u16(&in);
		if (want > edtl)
			want = edtl;
		p = fz_take(&in, want, &got);
		memcpy(c.buf, p, got);
		c.data_out_len = c.dir == SCSI_DIR_OUT ? (uint32_t)got : 0;

		scsi_exec(&c);
		if (verbose)
			fprintf(stderr, "nexus %c lun %llu op 0x%02x edtl %u out %u: status 0x%02x "
				"sense %x/%02x/%02x xfer %u in %u\n", 'A' + (int)(n - nexus),
				(unsigned long long)lun_id, c.cdb[0], edtl, c.data_out_len, c.status,
				c.sense_len ? c.sense[2] & 15 : 0, c.sense_len ? c.sense[12] : 0,
				c.sense_len ? c.sense[13] : 0, c.xfer_len, c.data_in_len);

		CHECK(c.data_in_len <= c.edtl);
		CHECK(c.sense_len <= SCSI_SENSE_MAX);
		CHECK(c.status != SAM_STAT_CHECK_CONDITION || c.sense_len >= 8);
		free(c.buf);
	}
	for (int i = 0; i < FUZZ_NLUNS; i++)
		fuzz_ram[i].fail_read = fuzz_ram[i].fail_write = 0;
	fuzz_env_release();
	return 0;
}
