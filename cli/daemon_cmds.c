/* daemon_cmds.c - the control requests a running daemon answers (see daemon.h).
 * One line per request; the handler lives beside its subcommand. */
#include <stddef.h>

#include "daemon.h"

const struct daemon_cmd daemon_cmds[] = {
	{ "volume.list", daemon_volume_list },
	{ "volume.create", daemon_volume_create },
	{ "volume.delete", daemon_volume_delete },
	{ NULL, NULL },
};
