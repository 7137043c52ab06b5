/* iscsi_xcopy.c - EXTENDED COPY (LID1) through a real initiator (libiscsi), for the
 * tests and the bench: what ESXi's VAAI clone does, and a read-back comparison.
 *
 *   iscsi_xcopy URL copy SRC_LBA DST_LBA BLOCKS [DST_LUN] [--sync]
 *       EXTENDED COPY of BLOCKS 512-byte blocks from SRC_LBA of URL's LUN to DST_LBA of
 *       LUN DST_LUN of the same target (default: the same LUN), as block-to-block
 *       segments of at most SEG_BLOCKS blocks, at most MAX_SEGS segments per command
 *       (each LUN named by its NAA designator from VPD page 0x83). Each command is
 *       followed by RECEIVE COPY RESULTS (COPY STATUS), which must say "completed
 *       good" with every segment processed. --sync: SYNCHRONIZE CACHE on the
 *       destination at the end. Prints "copied N blocks in C commands".
 *   iscsi_xcopy URL cmp SRC_LBA DST_LBA BLOCKS [DST_LUN]
 *       READ (16) both ranges and compare: prints "equal", or "differ at block N" (the
 *       first differing block of the source range) and exits 1.
 * Exit 0 on success, 1 on a failed or differing command, 2 on usage or login errors.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#define BLOCK 512u
#define SEG_BLOCKS 32768u  /* 16 MiB per segment */
#define MAX_SEGS 16u       /* the target's MAXIMUM SEGMENT DESCRIPTOR COUNT */
#define CMP_BLOCKS 2048u   /* 1 MiB per READ */

static struct iscsi_context *login(const char *url, int *lun)
{
	struct iscsi_context *iscsi = iscsi_create_context("iqn.2026-11.org.cairn:xcopy-tool");
	struct iscsi_url *u;

	if (!iscsi)
		return NULL;
	u = iscsi_parse_full_url(iscsi, url);
	if (!u) {
		fprintf(stderr, "iscsi_xcopy: bad url %s: %s\n", url, iscsi_get_error(iscsi));
		goto out_destroy;
	}
	iscsi_set_session_type(iscsi, ISCSI_SESSION_NORMAL);
	iscsi_set_targetname(iscsi, u->target);
	if (iscsi_full_connect_sync(iscsi, u->portal, u->lun) != 0) {
		fprintf(stderr, "iscsi_xcopy: login to %s failed: %s\n", url, iscsi_get_error(iscsi));
		iscsi_destroy_url(u);
		goto out_destroy;
	}
	*lun = u->lun;
	iscsi_destroy_url(u);
	iscsi_set_timeout(iscsi, 600);
	return iscsi;
out_destroy:
	iscsi_destroy_context(iscsi);
	return NULL;
}

static int failed(const char *what, struct iscsi_context *iscsi, struct scsi_task *t)
{
	if (t && t->status == SCSI_STATUS_CHECK_CONDITION)
		fprintf(stderr, "iscsi_xcopy: %s: CHECK CONDITION %s (0x%02x) ascq 0x%04x\n", what,
			scsi_sense_key_str(t->sense.key), t->sense.key, t->sense.ascq);
	else
		fprintf(stderr, "iscsi_xcopy: %s failed: %s\n", what,
			t ? iscsi_get_error(iscsi) : "no task");
	if (t)
		scsi_free_scsi_task(t);
	return 1;
}

/* TEST UNIT READY until the unit attentions pending for lun (power on) are cleared. */
static void clear_ua(struct iscsi_context *iscsi, int lun)
{
	for (int i = 0; i < 10; i++) {
		struct scsi_task *t = iscsi_testunitready_sync(iscsi, lun);
		int good = t && t->status == SCSI_STATUS_GOOD;

		if (t)
			scsi_free_scsi_task(t);
		if (good)
			break;
	}
}

/* The 20-byte designation descriptor (4-byte header + 16-byte NAA) of lun. */
static int designator(struct iscsi_context *iscsi, int lun, unsigned char out[20])
{
	struct scsi_task *t;
	int rc = 1;

	t = iscsi_inquiry_sync(iscsi, lun, 1, 0x83, 255);
	if (!t || t->status != SCSI_STATUS_GOOD)
		return failed("INQUIRY VPD 0x83", iscsi, t);
	for (int pos = 4; pos + 4 <= t->datain.size;) {
		const unsigned char *d = t->datain.data + pos;

		if ((d[1] & 0x0f) == 3 && (d[1] & 0x30) == 0 && d[3] == 16 &&
		    pos + 20 <= t->datain.size) {
			memcpy(out, d, 20);
			rc = 0;
			break;
		}
		pos += 4 + d[3];
	}
	if (rc)
		fprintf(stderr, "iscsi_xcopy: LUN %d has no 16-byte NAA designator\n", lun);
	scsi_free_scsi_task(t);
	return rc;
}

static void put16(unsigned char *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static void put32(unsigned char *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v & 0xffff); }
static void put64(unsigned char *p, uint64_t v) { put32(p, v >> 32); put32(p + 4, v & 0xffffffff); }

static void cscd(unsigned char *p, const unsigned char desig[20])
{
	memset(p, 0, 32);
	p[0] = 0xe4;        /* identification descriptor */
	p[1] = 0x00;        /* LU ID TYPE: LUN; peripheral device type 0 (disk) */
	memcpy(p + 4, desig, 20);
	p[29] = 0; p[30] = BLOCK >> 8; p[31] = BLOCK & 0xff;
}

static int do_copy(struct iscsi_context *iscsi, int lun, int dlun, uint64_t slba, uint64_t dlba,
		   uint64_t blocks, int sync)
{
	unsigned char sd[20], dd[20], list[16 + 64 + MAX_SEGS * 28];
	uint64_t done = 0, cmds = 0;
	uint8_t list_id = 0;

	if (designator(iscsi, lun, sd) || designator(iscsi, dlun, dd))
		return 1;
	while (done < blocks) {
		struct iscsi_data data;
		struct scsi_task *t;
		struct scsi_copy_results_copy_status *cs;
		unsigned nseg = 0;
		uint64_t in_cmd = 0;

		memset(list, 0, sizeof(list));
		list[0] = ++list_id;
		list[1] = 0;          /* LIST ID USAGE 0: hold the results for RECEIVE COPY RESULTS */
		put16(list + 2, 64);  /* two CSCD descriptors */
		cscd(list + 16, sd);
		cscd(list + 48, dd);
		while (nseg < MAX_SEGS && done + in_cmd < blocks) {
			unsigned char *s = list + 80 + nseg * 28;
			uint64_t n = blocks - done - in_cmd;

			if (n > SEG_BLOCKS)
				n = SEG_BLOCKS;
			s[0] = 0x02;  /* block to block */
			put16(s + 2, 0x18);
			put16(s + 4, 0);
			put16(s + 6, 1);
			put16(s + 10, (uint16_t)n);
			put64(s + 12, slba + done + in_cmd);
			put64(s + 20, dlba + done + in_cmd);
			in_cmd += n;
			nseg++;
		}
		put32(list + 8, nseg * 28);
		data.data = list;
		data.size = 80 + nseg * 28;
		t = iscsi_extended_copy_sync(iscsi, lun, &data);
		if (!t || t->status != SCSI_STATUS_GOOD)
			return failed("EXTENDED COPY", iscsi, t);
		scsi_free_scsi_task(t);
		t = iscsi_receive_copy_results_sync(iscsi, lun, SCSI_COPY_RESULTS_COPY_STATUS,
						    list_id, 64);
		if (!t || t->status != SCSI_STATUS_GOOD || !(cs = scsi_datain_unmarshall(t)))
			return failed("RECEIVE COPY RESULTS", iscsi, t);
		if (cs->copy_manager_status != 1 || cs->segments_processed != nseg) {
			fprintf(stderr, "iscsi_xcopy: copy status %u, %u of %u segments\n",
				cs->copy_manager_status, cs->segments_processed, nseg);
			scsi_free_scsi_task(t);
			return 1;
		}
		scsi_free_scsi_task(t);
		done += in_cmd;
		cmds++;
	}
	if (sync) {
		struct scsi_task *t = iscsi_synchronizecache10_sync(iscsi, dlun, 0, 0, 0, 0);

		if (!t || t->status != SCSI_STATUS_GOOD)
			return failed("SYNCHRONIZE CACHE", iscsi, t);
		scsi_free_scsi_task(t);
	}
	printf("copied %" PRIu64 " blocks in %" PRIu64 " commands\n", blocks, cmds);
	return 0;
}

static struct scsi_task *read16(struct iscsi_context *iscsi, int lun, uint64_t lba, uint32_t n)
{
	return iscsi_read16_sync(iscsi, lun, lba, n * BLOCK, BLOCK, 0, 0, 0, 0, 0);
}

static int do_cmp(struct iscsi_context *iscsi, int lun, int dlun, uint64_t slba, uint64_t dlba,
		  uint64_t blocks)
{
	for (uint64_t done = 0; done < blocks;) {
		uint32_t n = blocks - done > CMP_BLOCKS ? CMP_BLOCKS : (uint32_t)(blocks - done);
		struct scsi_task *a = read16(iscsi, lun, slba + done, n), *b;

		if (!a || a->status != SCSI_STATUS_GOOD || a->datain.size != (int)(n * BLOCK))
			return failed("READ (16) of the source", iscsi, a);
		b = read16(iscsi, dlun, dlba + done, n);
		if (!b || b->status != SCSI_STATUS_GOOD || b->datain.size != (int)(n * BLOCK)) {
			scsi_free_scsi_task(a);
			return failed("READ (16) of the destination", iscsi, b);
		}
		if (memcmp(a->datain.data, b->datain.data, n * BLOCK)) {
			for (uint32_t k = 0; k < n; k++)
				if (memcmp(a->datain.data + k * BLOCK, b->datain.data + k * BLOCK, BLOCK)) {
					printf("differ at block %" PRIu64 "\n", slba + done + k);
					break;
				}
			scsi_free_scsi_task(a);
			scsi_free_scsi_task(b);
			return 1;
		}
		scsi_free_scsi_task(a);
		scsi_free_scsi_task(b);
		done += n;
	}
	printf("equal\n");
	return 0;
}

int main(int argc, char **argv)
{
	struct iscsi_context *iscsi;
	int lun, dlun, sync = 0, rc;

	if (argc > 1 && !strcmp(argv[argc - 1], "--sync")) {
		sync = 1;
		argc--;
	}
	if ((argc != 6 && argc != 7) || (strcmp(argv[2], "copy") && strcmp(argv[2], "cmp"))) {
		fprintf(stderr, "usage: iscsi_xcopy URL copy SRC_LBA DST_LBA BLOCKS [DST_LUN] [--sync]\n"
				"       iscsi_xcopy URL cmp SRC_LBA DST_LBA BLOCKS [DST_LUN]\n");
		return 2;
	}
	iscsi = login(argv[1], &lun);
	if (!iscsi)
		return 2;
	dlun = argc == 7 ? atoi(argv[6]) : lun;
	clear_ua(iscsi, lun);
	if (dlun != lun)
		clear_ua(iscsi, dlun);
	if (!strcmp(argv[2], "copy"))
		rc = do_copy(iscsi, lun, dlun, strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0),
			     strtoull(argv[5], NULL, 0), sync);
	else
		rc = do_cmp(iscsi, lun, dlun, strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0),
			    strtoull(argv[5], NULL, 0));
	iscsi_logout_sync(iscsi);
	iscsi_destroy_context(iscsi);
	return rc;
}
