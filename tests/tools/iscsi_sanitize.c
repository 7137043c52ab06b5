/* iscsi_sanitize.c - SANITIZE through a real initiator (libiscsi), one command per run,
 * for the tests.
 *
 *   iscsi_sanitize URL COMMAND [ARGS]
 *     overwrite BYTE [immed]   SANITIZE / OVERWRITE, OWCOUNT 1, an INITIALIZATION
 *                              PATTERN of one block of BYTE (0..255)
 *     block-erase [immed]      SANITIZE / BLOCK ERASE
 *     crypto-erase [immed]     SANITIZE / CRYPTO ERASE
 *     exit-failure             SANITIZE / EXIT FAILURE MODE
 *       each prints "sanitize GOOD", or "sanitize CHECK CONDITION <sense key> 0x<ASC ASCQ>"
 *     tur                      TEST UNIT READY: prints "ready", "sanitizing <percent>" (NOT
 *                              READY / SANITIZE IN PROGRESS with its progress indication),
 *                              or "check <sense key> 0x<ASC ASCQ>"
 *     wait SECONDS             TEST UNIT READY every 100 ms while it answers SANITIZE IN
 *                              PROGRESS, then prints the last answer as tur does; exit 1 if
 *                              it still answers so after SECONDS
 * Unit attentions pending for the session are cleared first (TEST UNIT READY). Exit 0
 * when the command got an answer it printed, 1 otherwise, 2 on usage or login errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

static struct iscsi_context *login(const char *url, int *lun)
{
	struct iscsi_context *iscsi = iscsi_create_context("iqn.2026-01.test:sanitize");
	struct iscsi_url *u;

	if (!iscsi)
		return NULL;
	u = iscsi_parse_full_url(iscsi, url);
	if (!u) {
		fprintf(stderr, "iscsi_sanitize: bad url %s: %s\n", url, iscsi_get_error(iscsi));
		goto out_destroy;
	}
	iscsi_set_session_type(iscsi, ISCSI_SESSION_NORMAL);
	iscsi_set_targetname(iscsi, u->target);
	if (iscsi_full_connect_sync(iscsi, u->portal, u->lun) != 0) {
		fprintf(stderr, "iscsi_sanitize: login to %s failed: %s\n", url,
			iscsi_get_error(iscsi));
		iscsi_destroy_url(u);
		goto out_destroy;
	}
	*lun = u->lun;
	iscsi_destroy_url(u);
	iscsi_set_timeout(iscsi, 60);
	return iscsi;
out_destroy:
	iscsi_destroy_context(iscsi);
	return NULL;
}

/* Print the answer of t as tur does; 1 if it is SANITIZE IN PROGRESS, -1 without one. */
static int print_tur(struct iscsi_context *iscsi, struct scsi_task *t)
{
	if (!t) {
		fprintf(stderr, "iscsi_sanitize: TEST UNIT READY failed: %s\n", iscsi_get_error(iscsi));
		return -1;
	}
	if (t->status == SCSI_STATUS_GOOD) {
		printf("ready\n");
		return 0;
	}
	if (t->status != SCSI_STATUS_CHECK_CONDITION) {
		printf("status 0x%02x\n", t->status);
		return 0;
	}
	if (t->sense.key == SCSI_SENSE_NOT_READY &&
	    t->sense.ascq == SCSI_SENSE_ASCQ_SANITIZE_IN_PROGRESS) {
		printf("sanitizing %u\n", t->sense.sense_specific ?
		       (unsigned)t->sense.field_pointer * 100u / 65536u : 0u);
		return 1;
	}
	printf("check %s 0x%04x\n", scsi_sense_key_str(t->sense.key), t->sense.ascq);
	return 0;
}

/* TEST UNIT READY until no unit attention is pending (at most a few). */
static int clear_ua(struct iscsi_context *iscsi, int lun)
{
	for (int i = 0; i < 10; i++) {
		struct scsi_task *t = iscsi_testunitready_sync(iscsi, lun);
		int ua;

		if (!t)
			return -1;
		ua = t->status == SCSI_STATUS_CHECK_CONDITION &&
		     t->sense.key == SCSI_SENSE_UNIT_ATTENTION;
		scsi_free_scsi_task(t);
		if (!ua)
			return 0;
	}
	return -1;
}

static int print_sanitize(struct iscsi_context *iscsi, struct scsi_task *t)
{
	if (!t) {
		fprintf(stderr, "iscsi_sanitize: SANITIZE failed: %s\n", iscsi_get_error(iscsi));
		return 1;
	}
	if (t->status == SCSI_STATUS_GOOD)
		printf("sanitize GOOD\n");
	else if (t->status == SCSI_STATUS_CHECK_CONDITION)
		printf("sanitize CHECK CONDITION %s 0x%04x\n", scsi_sense_key_str(t->sense.key),
		       t->sense.ascq);
	else
		printf("sanitize status 0x%02x\n", t->status);
	scsi_free_scsi_task(t);
	return 0;
}

int main(int argc, char **argv)
{
	struct iscsi_context *iscsi;
	const char *cmd;
	int lun, rc = 1, immed;

	if (argc < 3) {
		fprintf(stderr, "usage: iscsi_sanitize URL overwrite BYTE [immed] | block-erase "
				"[immed] | crypto-erase [immed] | exit-failure | tur | wait SECONDS\n");
		return 2;
	}
	cmd = argv[2];
	immed = argc > 3 && !strcmp(argv[argc - 1], "immed");
	iscsi = login(argv[1], &lun);
	if (!iscsi)
		return 2;
	if (clear_ua(iscsi, lun)) {
		fprintf(stderr, "iscsi_sanitize: unit attentions do not clear: %s\n",
			iscsi_get_error(iscsi));
		goto out_logout;
	}
	if (!strcmp(cmd, "overwrite") && argc >= 4) {
		unsigned char p[4 + 512];
		struct iscsi_data d = { .size = sizeof(p), .data = p };

		p[0] = 1; /* OWCOUNT 1, no INVERT, TEST 0 */
		p[1] = 0;
		p[2] = 512 >> 8;
		p[3] = 512 & 0xff;
		memset(p + 4, atoi(argv[3]), 512);
		rc = print_sanitize(iscsi, iscsi_sanitize_sync(iscsi, lun, immed, 0,
				    SCSI_SANITIZE_OVERWRITE, (int)sizeof(p), &d));
	} else if (!strcmp(cmd, "block-erase")) {
		rc = print_sanitize(iscsi, iscsi_sanitize_block_erase_sync(iscsi, lun, immed, 0));
	} else if (!strcmp(cmd, "crypto-erase")) {
		rc = print_sanitize(iscsi, iscsi_sanitize_crypto_erase_sync(iscsi, lun, immed, 0));
	} else if (!strcmp(cmd, "exit-failure")) {
		rc = print_sanitize(iscsi, iscsi_sanitize_exit_failure_mode_sync(iscsi, lun, 0, 0));
	} else if (!strcmp(cmd, "tur")) {
		struct scsi_task *t = iscsi_testunitready_sync(iscsi, lun);

		rc = print_tur(iscsi, t) < 0;
		if (t)
			scsi_free_scsi_task(t);
	} else if (!strcmp(cmd, "wait") && argc == 4) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		long polls = atol(argv[3]) * 10;

		for (long i = 0;; i++) {
			struct scsi_task *t = iscsi_testunitready_sync(iscsi, lun);
			int busy = 0;

			if (!t || t->status != SCSI_STATUS_CHECK_CONDITION ||
			    t->sense.key != SCSI_SENSE_NOT_READY ||
			    t->sense.ascq != SCSI_SENSE_ASCQ_SANITIZE_IN_PROGRESS || i >= polls) {
				busy = print_tur(iscsi, t);
				rc = busy != 0;
				if (t)
					scsi_free_scsi_task(t);
				break;
			}
			scsi_free_scsi_task(t);
			nanosleep(&ts, NULL);
		}
	} else {
		fprintf(stderr, "iscsi_sanitize: unknown command %s\n", cmd);
		rc = 2;
	}
out_logout:
	iscsi_logout_sync(iscsi);
	iscsi_destroy_context(iscsi);
	return rc;
}
