/* cmd_restore.c - `cairn restore VOLUME POINT`: roll the live volume back in place. The
 * restore is itself a record of the journal, so the writes it undoes stay in the
 * history and `cairn restore VOLUME VOLUME@seq:<the seq it prints>` undoes it. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "control.h"
#include "errmsg.h"
#include "history_cli.h"
#include "point.h"
#include "scsi.h"
#include "volume.h"

static const char usage[] =
	"usage: cairn restore VOLUME POINT\n"
	"  POINT: VOLUME@SNAPSHOT, VOLUME@<RFC 3339 time>, VOLUME@seq:N (or just SNAPSHOT,\n"
	"         TIME or seq:N of VOLUME)\n"
	"  --state-dir DIR  journal directory when no daemon runs (as given to cairn serve)\n"
	"Initiators attached to the volume see a unit attention and carry on.\n";

json_object *hist_restore(struct hist_ctx *h, json_object *req)
{
	const char *vol = daemon_req_str(req, "volume"), *point = daemon_req_str(req, "point");
	char pvol[VOLUME_NAME_MAX + 1], msg[400], undo[128];
	struct point_plan plan;
	struct chunk_id root;
	struct served *served;
	struct volume *v;
	struct point *p;
	const char *spec;
	uint64_t seq = 0;
	json_object *r;
	int opened, rc;

	if (!vol || !point)
		return control_reply_err(2, "restore needs a volume and a point");
	rc = history_parse_point(point, pvol, &spec);
	if (rc)
		return hist_err(point, vol, rc);
	if (strcmp(pvol, vol)) {
		int status = cli_msg_format(msg, sizeof(msg), MSG_RESTORE_OTHER, point, vol);
		return control_reply_err(status, msg);
	}
	rc = hist_volume(h, vol, &v, &opened, &served);
	if (rc)
		return hist_err(point, vol, rc);
	rc = hist_resolve(h, point, &plan);
	if (!rc)
		rc = point_open(h->cs, h->state_dir, &plan, &p);
	if (!rc) {
		rc = point_materialize(p, &root);
		point_close(p);
	}
	if (!rc)
		rc = volume_restore(v, &root, &seq);
	if (!rc && served)
		scsi_lun_changed(&served->lun, 0x2A, 0x09); /* CAPACITY DATA HAS CHANGED family */
	if (opened)
		volume_close(v);
	if (rc)
		return hist_err(point, vol, rc);
	r = control_reply_ok();
	json_object_object_add(r, "seq", json_object_new_uint64(seq));
	snprintf(undo, sizeof(undo), "%s@seq:%" PRIu64, vol, seq);
	json_object_object_add(r, "undo", json_object_new_string(undo));
	return r;
}

int cmd_restore(struct cli_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_GLOBAL_LONGOPTS,
		{ "state-dir", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	const char *state = NULL, *vol, *point;
	char full[300], pvol[VOLUME_NAME_MAX + 1];
	const char *spec;
	json_object *req, *resp = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': state = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default:
			if (cli_other_opt(g, c, optarg, usage))
				return 2;
			break;
		}
	}
	if (optind + 2 != argc)
		return cli_fail(MSG_USAGE, "restore takes a VOLUME and a POINT");
	vol = argv[optind];
	point = argv[optind + 1];
	if (!volume_name_valid(vol))
		return cli_fail(MSG_BAD_VOLUME_NAME, vol);
	if (!strchr(point, '@')) {
		snprintf(full, sizeof(full), "%s@%s", vol, point);
		point = full;
	}
	if (history_parse_point(point, pvol, &spec))
		return cli_fail(MSG_POINT_BAD, point);
	if (strcmp(pvol, vol))
		return cli_fail(MSG_RESTORE_OTHER, point, vol);
	req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string("restore"));
	json_object_object_add(req, "volume", json_object_new_string(vol));
	json_object_object_add(req, "point", json_object_new_string(point));
	rc = hist_run(g, CLI_OPEN_WRITE, state, hist_restore, req, &resp);
	if (!rc)
		printf("restored %s to %s; undo with: cairn restore %s %s\n", vol, point, vol,
		       json_object_get_string(json_object_object_get(resp, "undo")));
	json_object_put(req);
	if (resp)
		json_object_put(resp);
	return rc;
}
