/* errmsg.h - every message the CLI shows a user on failure, in one table.
 *
 * Contract: cli_fail() prints "cairn: <sentence>" on stderr, one line that names what
 * was wrong and what to do, and returns the exit status to use (1, or 2 for usage).
 */
#ifndef CAIRN_ERRMSG_H
#define CAIRN_ERRMSG_H

#include <stddef.h>

enum cli_msg {
	MSG_USAGE,              /* %s: detail */
	MSG_NO_REPO_ARG,
	MSG_REPO_MISSING,       /* %s url */
	MSG_REPO_LOCKED,        /* %s url */
	MSG_REPO_FOREIGN,       /* %s url */
	MSG_REPO_EXISTS,        /* %s url */
	MSG_REPO_S3_LATER,      /* %s url */
	MSG_REPO_IO,            /* %s url, %s strerror */
	MSG_BAD_SIZE,           /* %s text */
	MSG_BAD_CHUNK_SIZE,     /* %s text */
	MSG_BAD_VOLUME_NAME,    /* %s name */
	MSG_VOLUME_EXISTS,      /* %s name */
	MSG_VOLUME_MISSING,     /* %s name */
	MSG_VOLUME_BUSY,        /* %s name */
	MSG_VOLUME_IO,          /* %s name, %s strerror */
	MSG_LISTEN_BAD,         /* %s addr */
	MSG_LISTEN_IN_USE,      /* %s addr */
	MSG_LISTEN_FAILED,      /* %s addr, %s strerror */
	MSG_STATE_DIR,          /* %s dir, %s strerror */
	MSG_DAEMON,             /* %s message from the daemon */
	MSG_CONTROL,            /* %s socket path, %s strerror */
	MSG_COUNT
};

int cli_fail(enum cli_msg id, ...);
/* The same sentence into buf (for replies the daemon sends); returns the exit status. */
int cli_msg_format(char *buf, size_t len, enum cli_msg id, ...);

#endif
