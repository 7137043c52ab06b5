/* history_cli.h - shared parts of the history subcommands (snapshot, cdp, export,
 * import, restore, volume clone): one request handler per operation that runs either
 * in the daemon (control socket, the volume is live) or in the CLI itself (no daemon:
 * the volume is opened under the repository lock), so both paths give the same
 * results and the same messages.
 *
 * Requests and replies are control.h JSON objects. Handlers are implemented in
 * cmd_snapshot.c (snapshot.*, point.resolve), cmd_cdp.c (cdp.*), cmd_restore.c
 * (restore) and cmd_volume.c (volume.clone).
 */
#ifndef CAIRN_HISTORY_CLI_H
#define CAIRN_HISTORY_CLI_H

#include <json-c/json.h>

#include "cli.h"
#include "daemon.h"
#include "history.h"

/* Where a handler runs: d set in the daemon (cs/state_dir are the daemon's), else the
 * CLI's own session. */
struct hist_ctx {
	struct daemon *d;
	struct chunk_store *cs;
	const char *state_dir;
};

typedef json_object *(*hist_handler)(struct hist_ctx *h, json_object *req);

/* State directory for a CLI without a daemon: opt (--state-dir), else
 * $CAIRN_STATE_DIR, else the default of `cairn serve`. */
const char *hist_state_dir(const struct cli_session *s, const char *opt, char *buf,
			   size_t len);
/* Run req: through the daemon when one serves the repository, else locally with fn.
 * Prints the error and returns the exit status on failure; 0 and *resp on success. */
int hist_run(struct cli_globals *g, enum cli_open_mode mode, const char *state_opt,
	     hist_handler fn, json_object *req, json_object **resp);
/* The error reply for err on point or volume what. */
json_object *hist_err(const char *what, const char *vol, int err);
/* A volume to act on: the served one in the daemon, else opened here (*opened set:
 * close it with volume_close). */
int hist_volume(struct hist_ctx *h, const char *name, struct volume **v, int *opened,
		struct served **served);
/* Resolve point (with the live cut for "VOL" when the volume is served). */
int hist_resolve(struct hist_ctx *h, const char *point, struct point_plan *plan);
/* plan <-> JSON */
json_object *hist_plan_json(const struct point_plan *p);
int hist_plan_parse(json_object *o, struct point_plan *p);

json_object *hist_snapshot_create(struct hist_ctx *h, json_object *req);
json_object *hist_snapshot_list(struct hist_ctx *h, json_object *req);
json_object *hist_snapshot_delete(struct hist_ctx *h, json_object *req);
json_object *hist_point_resolve(struct hist_ctx *h, json_object *req);
json_object *hist_cdp_list(struct hist_ctx *h, json_object *req);
json_object *hist_cdp_mark(struct hist_ctx *h, json_object *req);
json_object *hist_restore(struct hist_ctx *h, json_object *req);
json_object *hist_volume_clone(struct hist_ctx *h, json_object *req);
/* volume.set: {"volume", and any of "retain_ns", "hourly_ns", "hourly_every_ns",
 * "daily_ns", "daily_every_ns"} (cmd_volume.c) */
json_object *hist_volume_set(struct hist_ctx *h, json_object *req);
/* A volume's retention as JSON: durations as text ("24h") and in seconds (cmd_cdp.c). */
json_object *cli_retention_json(const struct volume_retention *r);

/* Daemon handlers (registered in daemon_cmds.c): wrap the hist_* ones. */
json_object *daemon_snapshot_create(struct daemon *d, json_object *req);
json_object *daemon_snapshot_list(struct daemon *d, json_object *req);
json_object *daemon_snapshot_delete(struct daemon *d, json_object *req);
json_object *daemon_point_resolve(struct daemon *d, json_object *req);
json_object *daemon_cdp_list(struct daemon *d, json_object *req);
json_object *daemon_cdp_mark(struct daemon *d, json_object *req);
json_object *daemon_restore(struct daemon *d, json_object *req);
json_object *daemon_volume_clone(struct daemon *d, json_object *req);
json_object *daemon_volume_set(struct daemon *d, json_object *req);

int cmd_snapshot(struct cli_globals *g, int argc, char **argv);
int cmd_cdp(struct cli_globals *g, int argc, char **argv);
int cmd_export(struct cli_globals *g, int argc, char **argv);
int cmd_import(struct cli_globals *g, int argc, char **argv);
int cmd_restore(struct cli_globals *g, int argc, char **argv);
/* `cairn volume clone POINT NEW` (called from cmd_volume.c) */
int cmd_volume_clone(struct cli_globals *g, const char *point, const char *name,
		     const char *state_opt);

#endif
