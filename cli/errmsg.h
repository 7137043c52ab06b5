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
	MSG_BAD_PHYS_BLOCK,     /* %s text */
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
	MSG_MOUNT_STALE,        /* %s mountpoint, %s mountpoint */
	MSG_MOUNT_NOT_DIR,      /* %s mountpoint */
	MSG_MOUNT_BUSY,         /* %s mountpoint */
	MSG_MOUNT_FAILED,       /* %s mountpoint, %s strerror */
	MSG_WRONG_PASSWORD,     /* %s url */
	MSG_NEED_PASSWORD,      /* %s url */
	MSG_PASSWORD_FILE,      /* %s path, %s strerror */
	MSG_KEY_FILE_BAD,       /* %s path */
	MSG_KEYS_DAMAGED,       /* %s url */
	MSG_S3_ACCESS,          /* %s url */
	MSG_NOT_ENCRYPTED,      /* %s url */
	MSG_KEY_MISSING,        /* %s key id, %s url */
	MSG_KEY_LAST,           /* %s key id */
	MSG_NEW_PASSWORD,       /* (none) */
	MSG_CHECK_DAMAGED,      /* %llu count, %s url */
	MSG_POINT_BAD,          /* %s point */
	MSG_POINT_GONE,         /* %s point, %s volume */
	MSG_POINT_FUTURE,       /* %s point */
	MSG_POINT_PAST_END,     /* %s point, %s volume */
	MSG_SNAPSHOT_MISSING,   /* %s volume, %s name, %s volume */
	MSG_SNAPSHOT_EXISTS,    /* %s volume, %s name */
	MSG_SNAPSHOT_NAME,      /* %s name */
	MSG_MARK_LABEL,         /* %s label */
	MSG_HISTORY_IO,         /* %s volume or point, %s strerror */
	MSG_EXPORT_FILE,        /* %s file, %s strerror */
	MSG_IMPORT_FILE,        /* %s file, %s strerror */
	MSG_IMPORT_TOO_BIG,     /* %s file, %s volume, %s size */
	MSG_IMPORT_UNALIGNED,   /* %s file */
	MSG_IMPORT_SERVED,      /* %s volume */
	MSG_RESTORE_OTHER,      /* %s point, %s volume */
	MSG_CONFIG,             /* %s sentence naming file, line and fix */
	MSG_CONFIG_NEEDED,      /* (none) */
	MSG_CHAP_SECRET_FILE,   /* %s path, %s reason */
	MSG_SESSIONS_NO_DAEMON, /* (none) */
	MSG_GC_FAILED,          /* %s url, %s strerror */
	MSG_GC_DAMAGED,         /* %s url */
	MSG_GC_RUNNING,         /* (none) */
	MSG_GC_PERCENT,         /* %s text */
	MSG_GC_DURATION,        /* %s text */
	MSG_BAD_DURATION,       /* %s text, %s option */
	MSG_IMPORT_STDIN_TOO_BIG, /* %s volume, %s size, %llu size, %llu bytes read */
	MSG_CONFIG_RETENTION,   /* %s sentence naming the file and what failed */
	MSG_OWN_KEY_PLAIN,      /* %s volume */
	MSG_KEY_ERASED,         /* %s volume or point */
	MSG_COUNT
};

int cli_fail(enum cli_msg id, ...);
/* The same sentence into buf (for replies the daemon sends); returns the exit status. */
int cli_msg_format(char *buf, size_t len, enum cli_msg id, ...);

#endif
