/* main.c - the cairn binary: global options and subcommand dispatch. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "errmsg.h"
#include "gc_cli.h"
#include "history_cli.h"
#include "log.h"

static const char usage[] =
	"usage: cairn [-r REPO] [--password-file F] [--s3-endpoint URL] COMMAND [ARGS]\n"
	"\n"
	"Commands:\n"
	"  init [--chunk-size 64K] [--encrypt]     create a repository\n"
	"  volume create NAME --size S [--chunk-size S] [--own-key]\n"
	"  volume list [--json]                    list volumes\n"
	"  volume delete NAME                      delete a volume (space returns with gc)\n"
	"  volume clone POINT NEW                  a writable volume from any point\n"
	"  volume set NAME [--retain 24h] [--hourly 7d] [--daily 30d]\n"
	"                                          what a volume's history keeps\n"
	"  snapshot create VOLUME [--name N] | list VOLUME [--json] | delete VOLUME N\n"
	"  cdp list VOLUME [--json] | mark VOLUME LABEL   the write-level history\n"
	"  export POINT FILE|-                     raw image of a point (VOLUME, VOLUME@SNAP,\n"
	"                                          VOLUME@<RFC 3339 time>, VOLUME@seq:N)\n"
	"  import VOLUME FILE|-                    raw image into a volume\n"
	"  restore VOLUME POINT                    roll a volume back in place (undoable)\n"
	"  serve [--listen ADDR:PORT] [--state-dir DIR]\n"
	"                                          run the iSCSI gateway daemon\n"
	"  target add|remove|list, lun add|remove, acl add|remove|list|default,\n"
	"  chap add|remove|list, portal add|remove|list\n"
	"                                          targets, LUNs, ACLs, CHAP: live and persisted\n"
	"  session list [--json]                   sessions of the running daemon\n"
	"  key add|list|remove ID|passwd           passwords of an encrypted repository\n"
	"  check [--read-data]                     verify the repository, name damaged objects\n"
	"  stats [--json]                          sizes, dedup and compression ratios\n"
	"  gc [--dry-run] [--json] [--repack-threshold PCT] [--grace DURATION]\n"
	"                                          free the space nothing references\n"
	"  mount MOUNTPOINT                        browse history as read-only disk images\n"
	"\n"
	"The repository is a directory or s3://bucket/prefix (-r/--repo or CAIRN_REPO; S3\n"
	"endpoint from --s3-endpoint or CAIRN_S3_ENDPOINT). While 'cairn serve' runs,\n"
	"the other commands go through its control socket. 'cairn COMMAND --help' shows more.\n";

static const struct {
	const char *name;
	int (*fn)(struct cli_globals *g, int argc, char **argv);
} commands[] = {
	{ "init", cmd_init },
	{ "volume", cmd_volume },
	{ "serve", cmd_serve },
	{ "snapshot", cmd_snapshot },
	{ "cdp", cmd_cdp },
	{ "export", cmd_export },
	{ "import", cmd_import },
	{ "restore", cmd_restore },
	{ "key", cmd_key },
	{ "check", cmd_check },
	{ "stats", cmd_stats },
	{ "gc", cmd_gc },
	{ "mount", cmd_mount },
	{ "target", cmd_target },
	{ "lun", cmd_lun },
	{ "acl", cmd_acl },
	{ "chap", cmd_chap },
	{ "portal", cmd_portal },
	{ "session", cmd_session },
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_GLOBAL_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0, 0, 0, 0 },
	};
	struct cli_globals g = {
		.repo = getenv("CAIRN_REPO"),
		.password_file = getenv("CAIRN_PASSWORD_FILE"),
		.s3_endpoint = getenv("CAIRN_S3_ENDPOINT"),
		.key_file = getenv("CAIRN_KEY_FILE"),
	};
	int c;

	log_init();
	/* '+': stop at the first non-option, the subcommand; it parses the rest. Global
	 * options after the subcommand are accepted by each subcommand too. */
	while ((c = getopt_long(argc, argv, "+r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(usage, stdout); return 0;
		case 'V': puts("cairn 0.1.0"); return 0;
		default:
			if (cli_global_opt(&g, c, optarg) == 0)
				break;
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fputs(usage, stderr);
		return 2;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (!strcmp(argv[optind], commands[i].name)) {
			char **sub = argv + optind;
			int subc = argc - optind;
			optind = 0; /* glibc: 0 fully resets getopt for the subcommand */
			return commands[i].fn(&g, subc, sub);
		}
	}
	{
		char detail[160];
		snprintf(detail, sizeof(detail), "unknown command '%s'", argv[optind]);
		return cli_fail(MSG_USAGE, detail);
	}
}
