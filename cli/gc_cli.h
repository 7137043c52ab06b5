/* gc_cli.h - `cairn gc` (cmd_gc.c): the command, its daemon requests, and the root
 * walker that gc plugs into stores/.
 *
 * Daemon requests (control.h):
 *   {"cmd":"gc.start","dry_run":B,"repack_pct":N,"grace_ns":N}
 *        starts a gc on a thread of the daemon; reuse recording begins before the reply
 *        (on the control thread, so no other command is half done). Error if one runs.
 *   {"cmd":"gc.status"} -> {"ok":true,"running":B,"phase":S,"done":N,"total":N} and,
 *        once the last run ended, "finished":true,"status":N (0 or exit status),
 *        "error":S (when it failed) and "result":{...} (gc_result, as `gc --json`).
 */
#ifndef CAIRN_GC_CLI_H
#define CAIRN_GC_CLI_H

#include <json-c/json.h>

#include "cli.h"
#include "daemon.h"
#include "repo_check.h"

int cmd_gc(struct cli_globals *g, int argc, char **argv);
json_object *daemon_gc_start(struct daemon *d, json_object *req);
json_object *daemon_gc_status(struct daemon *d, json_object *req);
/* Wait for a running gc to stop (asks it to stop early); the daemon calls it before it
 * closes its volumes and the repository. */
void daemon_gc_wait(void);

/* Every root of the repository, for gc: each version of each live volume's head, each
 * of its history objects that names a map root (checkpoints, materialized snapshots),
 * and the RESTORE records of its journal in state_dir; deleted volumes are no roots.
 * Tree nodes are reported before their children and not descended again when the ref
 * callback answers REPO_WALK_SEEN. Its dead() reports, per deleted volume, the history
 * objects, stored journal segments, blobs and head versions but the tombstone. `cairn
 * check` walks the same roots. */
struct cli_root_walker {
	struct repo_tree_walker w;
	const char *state_dir;     /* journals live in <state_dir>/<volid>/journal; NULL: none */
};
void cli_root_walker_init(struct cli_root_walker *rw, const char *state_dir);

#endif
