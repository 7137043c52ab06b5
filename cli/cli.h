/* cli.h - shared state of the cairn subcommands.
 *
 * A subcommand gets the global options and its own argv (argv[0] = its name). It
 * reaches the repository through cli_open(): over the daemon's control socket when a
 * `cairn serve` holds the repository, else directly under the repository lock.
 * Subcommands return the process exit status.
 */
#ifndef CAIRN_CLI_H
#define CAIRN_CLI_H

#include <json-c/json.h>

#include "repo.h"
#include "repo_check.h"

struct cli_globals {
	const char *repo;          /* -r/--repo or CAIRN_REPO */
	const char *password_file; /* --password-file or CAIRN_PASSWORD_FILE */
	const char *s3_endpoint;   /* --s3-endpoint or CAIRN_S3_ENDPOINT */
	const char *key_file;      /* --key-file or CAIRN_KEY_FILE: a raw 32-byte key */
	/* the subcommand's --state-dir, set by it before it opens the repository (NULL:
	 * the default): a direct open keeps the index table there (cli_repo_open) */
	const char *state_dir;
};

struct cli_session {
	struct repo *repo;         /* NULL when via_daemon */
	struct chunk_store cs;
	int via_daemon;
	char sock[256];            /* control socket path of this repository */
};

enum cli_open_mode {
	CLI_OPEN_READ,   /* read-only access is enough */
	CLI_OPEN_WRITE,  /* must change the repository: daemon, or the repository lock */
};

/* Global options also accepted after the subcommand: add CLI_GLOBAL_LONGOPTS to a
 * subcommand's option table, "r:" to its short options, and call cli_global_opt() from
 * its default case (returns 0 if it consumed the option, -1 if not). */
#define CLI_OPT_PASSWORD_FILE 0x1001
#define CLI_OPT_S3_ENDPOINT 0x1002
#define CLI_OPT_KEY_FILE 0x1003
#define CLI_GLOBAL_LONGOPTS \
	{ "repo", required_argument, NULL, 'r' }, \
	{ "password-file", required_argument, NULL, CLI_OPT_PASSWORD_FILE }, \
	{ "s3-endpoint", required_argument, NULL, CLI_OPT_S3_ENDPOINT }, \
	{ "key-file", required_argument, NULL, CLI_OPT_KEY_FILE }
int cli_global_opt(struct cli_globals *g, int c, char *arg);
/* The default branch of a subcommand's option switch: take a global option, or print
 * usage on stderr for an unknown one and return non-zero (the caller returns 2). */
int cli_other_opt(struct cli_globals *g, int c, char *arg, const char *usage);
/* Parse a chunk size (power of two, CHUNK_SIZE_MIN..CHUNK_SIZE_MAX, e.g. "64K"); prints
 * the error and returns its exit status on bad input, else 0. */
int cli_parse_chunk_size(const char *arg, uint32_t *out);

/* Open the repository named by g for a subcommand. On failure prints the message and
 * returns the exit status (> 0); 0 on success. */
int cli_open(struct cli_globals *g, enum cli_open_mode mode, struct cli_session *s);
void cli_close(struct cli_session *s);
/* Fill the password / key file, S3 endpoint of g into o (other fields untouched). On a
 * failure (unreadable password file, ...) prints the message and returns the exit
 * status; 0 on success. The secret lives until the process exits. */
int cli_repo_opts(struct cli_globals *g, struct repo_open_opts *o);
/* Open the repository named by g directly (no daemon) with o plus the password and S3
 * options of g. Prints the message and returns the exit status on failure; 0 on success.
 * Unless o names a state_root or cache_dir, the index table is the one `cairn serve`
 * keeps for the same state directory (g->state_dir, else the default): a writable open
 * (it holds the repository's lock) uses and updates it, a read-only one only reads it
 * (see session.c); no disk cache is opened (o->transient). */
int cli_repo_open(struct cli_globals *g, struct repo_open_opts *o, struct repo **r);
/* The state directory (journal, S3 cache) of repository repo_id when no --state-dir is
 * given: $CAIRN_STATE_DIR, else /var/lib/cairn/<id> as root, else
 * ~/.local/state/cairn/<id>, else /tmp/cairn-state-<uid>/<id>. `cairn serve` and every
 * command that reads the journal use this one rule. */
const char *cli_default_state_dir(const char *repo_id, char *buf, size_t len);
/* Read a password file (one trailing newline dropped) or, raw, a 32-byte key file into
 * *s (buffers malloc'd, kept until exit). Prints the message, returns the exit status. */
int cli_read_secret(const char *password_file, const char *key_file, struct repo_secret *s);
/* Print the message for a repository open error and return the exit status. */
int cli_repo_fail(const char *url, int err);
/* Send one request to the daemon; on success *resp is the reply object (caller puts it).
 * A reply {"ok":false,"error":...} is printed and returns its exit status. */
int cli_daemon_call(struct cli_session *s, json_object *req, json_object **resp);

/* Control socket path for a repository id: $CAIRN_RUN_DIR, else /run/cairn as root,
 * else $XDG_RUNTIME_DIR/cairn or /tmp/cairn-<uid>; file "<repo id>.sock". */
int cli_control_path(const char *repo_id, char *buf, size_t len);
/* The canonical form of a repository argument: a local path made absolute (realpath),
 * an s3:// URL as given; no trailing '/'. What daemon "hello" answers as "repo". */
void cli_repo_canon(const char *url, char *buf, size_t len);

struct volume_info;
/* {"name","id","size","chunk_size","created"} for volume list output and daemon replies. */
json_object *cli_volume_json(const struct volume_info *vi);
/* Map a volume_* error for volume name to the user's message; returns exit status.
 * With buf, the sentence goes there instead of stderr. */
int cli_volume_fail(const char *name, int err, char *buf, size_t len);

int cmd_init(struct cli_globals *g, int argc, char **argv);
int cmd_volume(struct cli_globals *g, int argc, char **argv);
int cmd_serve(struct cli_globals *g, int argc, char **argv);
/* Walks every live volume's stored block map for check and stats (cmd_check.c). */
extern const struct repo_tree_walker cli_volume_walker;
int cmd_key(struct cli_globals *g, int argc, char **argv);
int cmd_check(struct cli_globals *g, int argc, char **argv);
int cmd_stats(struct cli_globals *g, int argc, char **argv);
int cmd_mount(struct cli_globals *g, int argc, char **argv);
int cmd_target(struct cli_globals *g, int argc, char **argv);
int cmd_lun(struct cli_globals *g, int argc, char **argv);
int cmd_acl(struct cli_globals *g, int argc, char **argv);
int cmd_chap(struct cli_globals *g, int argc, char **argv);
int cmd_portal(struct cli_globals *g, int argc, char **argv);
int cmd_session(struct cli_globals *g, int argc, char **argv);

#endif
