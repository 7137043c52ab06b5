/* iscsi_pr.c - persistent reservations through a real initiator (libiscsi), one command
 * per run, for the tests: a registration made by one run must be seen by the next, on a
 * new session (and across a target restart, with APTPL).
 *
 *   iscsi_pr URL INITIATOR ISID COMMAND [ARGS]
 *     register KEY APTPL     PERSISTENT RESERVE OUT / REGISTER AND IGNORE EXISTING KEY:
 *                            this I_T nexus gets KEY (0: unregister); APTPL 0 or 1
 *     reserve KEY TYPE       PR OUT / RESERVE, scope LU, TYPE 1 write exclusive, 3
 *                            exclusive access, 5/6 registrants only, 7/8 all registrants
 *     keys                   PR IN / READ KEYS: prints "generation N", then "key 0x..."
 *                            per registered key, in the order returned
 *     reservation            PR IN / READ RESERVATION: "reservation 0x<key> type T" or
 *                            "reservation none"
 *     write LBA              WRITE (16) of one block of 0x5A at LBA: prints "write GOOD" or
 *                            "write RESERVATION CONFLICT"
 * INITIATOR is the iSCSI InitiatorName and ISID the random qualifier of the session id
 * (an I_T nexus is the pair: the same pair on a new session is the same nexus). Unit
 * attentions pending for the nexus (power on after a target restart, reservation
 * changes) are cleared with TEST UNIT READY first. Exit 0 when the command got an
 * answer it printed, 1 on any other status, 2 on usage or login errors.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

static struct iscsi_context *login(const char *url, const char *initiator, uint32_t isid,
				   int *lun)
{
	struct iscsi_context *iscsi = iscsi_create_context(initiator);
	struct iscsi_url *u;

	if (!iscsi)
		return NULL;
	iscsi_set_isid_random(iscsi, isid, 0);
	u = iscsi_parse_full_url(iscsi, url);
	if (!u) {
		fprintf(stderr, "iscsi_pr: bad url %s: %s\n", url, iscsi_get_error(iscsi));
		goto out_destroy;
	}
	iscsi_set_session_type(iscsi, ISCSI_SESSION_NORMAL);
	iscsi_set_targetname(iscsi, u->target);
	if (iscsi_full_connect_sync(iscsi, u->portal, u->lun) != 0) {
		fprintf(stderr, "iscsi_pr: login to %s failed: %s\n", url, iscsi_get_error(iscsi));
		iscsi_destroy_url(u);
		goto out_destroy;
	}
	*lun = u->lun;
	iscsi_destroy_url(u);
	iscsi_set_timeout(iscsi, 30);
	return iscsi;
out_destroy:
	iscsi_destroy_context(iscsi);
	return NULL;
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

static int bad_status(const char *what, struct iscsi_context *iscsi, struct scsi_task *t)
{
	fprintf(stderr, "iscsi_pr: %s failed: %s\n", what,
		t ? iscsi_get_error(iscsi) : "no task");
	if (t)
		scsi_free_scsi_task(t);
	return 1;
}

int main(int argc, char **argv)
{
	struct iscsi_context *iscsi;
	struct scsi_task *t = NULL;
	const char *cmd;
	int lun, rc = 1;

	if (argc < 5) {
		fprintf(stderr, "usage: iscsi_pr URL INITIATOR ISID register KEY APTPL | "
				"reserve KEY TYPE | keys | reservation | write LBA\n");
		return 2;
	}
	cmd = argv[4];
	iscsi = login(argv[1], argv[2], (uint32_t)strtoul(argv[3], NULL, 0), &lun);
	if (!iscsi)
		return 2;
	if (clear_ua(iscsi, lun)) {
		fprintf(stderr, "iscsi_pr: unit attentions do not clear: %s\n", iscsi_get_error(iscsi));
		goto out_logout;
	}
	if (!strcmp(cmd, "register") && argc == 7) {
		struct scsi_persistent_reserve_out_basic b = { 0 };

		b.service_action_reservation_key = strtoull(argv[5], NULL, 0);
		b.aptpl = (uint8_t)atoi(argv[6]);
		t = iscsi_persistent_reserve_out_sync(iscsi, lun,
			SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY,
			SCSI_PERSISTENT_RESERVE_SCOPE_LU, 0, &b);
		if (!t || t->status != SCSI_STATUS_GOOD) {
			rc = bad_status("register", iscsi, t);
			goto out_logout;
		}
		printf("registered 0x%" PRIx64 " aptpl %u\n", b.service_action_reservation_key, b.aptpl);
	} else if (!strcmp(cmd, "reserve") && argc == 7) {
		struct scsi_persistent_reserve_out_basic b = { 0 };

		b.reservation_key = strtoull(argv[5], NULL, 0);
		t = iscsi_persistent_reserve_out_sync(iscsi, lun, SCSI_PERSISTENT_RESERVE_RESERVE,
			SCSI_PERSISTENT_RESERVE_SCOPE_LU, atoi(argv[6]), &b);
		if (!t || t->status != SCSI_STATUS_GOOD) {
			rc = bad_status("reserve", iscsi, t);
			goto out_logout;
		}
		printf("reserved 0x%" PRIx64 " type %d\n", b.reservation_key, atoi(argv[6]));
	} else if (!strcmp(cmd, "keys") && argc == 5) {
		struct scsi_persistent_reserve_in_read_keys *k;

		t = iscsi_persistent_reserve_in_sync(iscsi, lun, SCSI_PERSISTENT_RESERVE_READ_KEYS,
						     4096);
		if (!t || t->status != SCSI_STATUS_GOOD || !(k = scsi_datain_unmarshall(t))) {
			rc = bad_status("read keys", iscsi, t);
			goto out_logout;
		}
		printf("generation %" PRIu32 "\n", k->prgeneration);
		for (int i = 0; i < k->num_keys; i++)
			printf("key 0x%" PRIx64 "\n", k->keys[i]);
	} else if (!strcmp(cmd, "reservation") && argc == 5) {
		struct scsi_persistent_reserve_in_read_reservation *r;

		t = iscsi_persistent_reserve_in_sync(iscsi, lun,
						     SCSI_PERSISTENT_RESERVE_READ_RESERVATION, 4096);
		if (!t || t->status != SCSI_STATUS_GOOD || !(r = scsi_datain_unmarshall(t))) {
			rc = bad_status("read reservation", iscsi, t);
			goto out_logout;
		}
		if (r->reserved)
			printf("reservation 0x%" PRIx64 " type %u\n", r->reservation_key, r->pr_type);
		else
			printf("reservation none\n");
	} else if (!strcmp(cmd, "write") && argc == 6) {
		unsigned char buf[512];

		memset(buf, 0x5a, sizeof(buf));
		t = iscsi_write16_sync(iscsi, lun, strtoull(argv[5], NULL, 0), buf, sizeof(buf), 512,
				       0, 0, 0, 0, 0);
		if (t && t->status == SCSI_STATUS_GOOD) {
			printf("write GOOD\n");
		} else if (t && t->status == SCSI_STATUS_RESERVATION_CONFLICT) {
			printf("write RESERVATION CONFLICT\n");
		} else {
			rc = bad_status("write", iscsi, t);
			goto out_logout;
		}
	} else {
		fprintf(stderr, "iscsi_pr: unknown command or wrong arguments: %s\n", cmd);
		rc = 2;
		goto out_logout;
	}
	rc = 0;
	scsi_free_scsi_task(t);
out_logout:
	iscsi_logout_sync(iscsi);
	iscsi_destroy_context(iscsi);
	return rc;
}
