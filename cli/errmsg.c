/* errmsg.c - the table of user-facing failure messages (see errmsg.h). */
#include "errmsg.h"

#include <stdarg.h>
#include <stdio.h>

static const struct {
	int status;
	const char *fmt;
} msgs[MSG_COUNT] = {
	[MSG_USAGE] = { 2, "%s; see 'cairn --help'" },
	[MSG_NO_REPO_ARG] = { 2, "no repository given: pass -r/--repo PATH or set CAIRN_REPO" },
	[MSG_REPO_MISSING] = { 1, "no cairn repository at %s: create one with 'cairn init -r %s'" },
	[MSG_REPO_LOCKED] = { 1, "repository %s is in use by another cairn process; stop it, or run this command while 'cairn serve' is up so it goes through the daemon" },
	[MSG_REPO_FOREIGN] = { 1, "%s is not a cairn repository this version can read (unknown format or newer version)" },
	[MSG_REPO_EXISTS] = { 1, "a cairn repository already exists at %s; nothing was changed" },
	[MSG_REPO_S3_LATER] = { 1, "S3 repositories (%s) are not supported by this build yet; use a local directory" },
	[MSG_REPO_IO] = { 1, "cannot use repository %s: %s" },
	[MSG_BAD_SIZE] = { 2, "size '%s' is not a size: give a number with an optional unit K, M, G or T (e.g. 10G), a multiple of 512 bytes" },
	[MSG_BAD_CHUNK_SIZE] = { 2, "chunk size '%s' is invalid: use a power of two from 4K to 1M (e.g. 64K)" },
	[MSG_BAD_VOLUME_NAME] = { 2, "volume name '%s' is invalid: use up to 64 letters, digits, '.', '_' or '-', starting with a letter or digit" },
	[MSG_VOLUME_EXISTS] = { 1, "a volume named '%s' already exists; pick another name or delete it first" },
	[MSG_VOLUME_MISSING] = { 1, "no volume named '%s' in this repository; 'cairn volume list' shows the volumes" },
	[MSG_VOLUME_BUSY] = { 1, "volume '%s' is in use; try again when it is not being served" },
	[MSG_VOLUME_IO] = { 1, "volume '%s': %s" },
	[MSG_LISTEN_BAD] = { 2, "listen address '%s' is invalid: use ADDR:PORT such as 127.0.0.1:3260 or [::1]:3260" },
	[MSG_LISTEN_IN_USE] = { 1, "cannot listen on %s: the port is already in use (another target running?); choose another with --listen ADDR:PORT" },
	[MSG_LISTEN_FAILED] = { 1, "cannot listen on %s: %s" },
	[MSG_STATE_DIR] = { 1, "cannot use state directory %s: %s; pass --state-dir DIR with a writable directory" },
	[MSG_DAEMON] = { 1, "%s" },
	[MSG_CONTROL] = { 1, "cannot talk to the cairn daemon on %s: %s" },
};

int cli_fail(enum cli_msg id, ...)
{
	va_list ap;

	fputs("cairn: ", stderr);
	va_start(ap, id);
	vfprintf(stderr, msgs[id].fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return msgs[id].status;
}

int cli_msg_format(char *buf, size_t len, enum cli_msg id, ...)
{
	va_list ap;

	va_start(ap, id);
	vsnprintf(buf, len, msgs[id].fmt, ap);
	va_end(ap);
	return msgs[id].status;
}
