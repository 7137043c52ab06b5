/* daemon_cmds.c - the control requests a running daemon answers (see daemon.h).
 * One line per request; the handler lives beside its subcommand. */
#include <stddef.h>

#include "daemon.h"
#include "history_cli.h"
#include "config.h"
#include "gc_cli.h"

const struct daemon_cmd daemon_cmds[] = {
	{ "hello", daemon_hello },
	{ "volume.list", daemon_volume_list },
	{ "volume.create", daemon_volume_create },
	{ "volume.delete", daemon_volume_delete },
	{ "volume.clone", daemon_volume_clone },
	{ "volume.set", daemon_volume_set },
	{ "snapshot.create", daemon_snapshot_create },
	{ "snapshot.list", daemon_snapshot_list },
	{ "snapshot.delete", daemon_snapshot_delete },
	{ "point.resolve", daemon_point_resolve },
	{ "cdp.list", daemon_cdp_list },
	{ "cdp.mark", daemon_cdp_mark },
	{ "restore", daemon_restore },
	{ "config.edit", daemon_config_edit },
	{ "config.show", daemon_config_show },
	{ "session.list", daemon_session_list },
	{ "gc.start", daemon_gc_start },
	{ "gc.status", daemon_gc_status },
	{ NULL, NULL },
};
