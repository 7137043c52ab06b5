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
	[MSG_BAD_PHYS_BLOCK] = { 2, "physical block size '%s' is invalid: use a power of two from 512 to the chunk size that divides the volume size (e.g. 4K)" },
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
	[MSG_POINT_BAD] = { 2, "point '%s' is invalid: use VOLUME, VOLUME@SNAPSHOT, VOLUME@<RFC 3339 time such as 2026-11-21T10:15:00.250Z> or VOLUME@seq:N" },
	[MSG_POINT_GONE] = { 1, "point '%s' is older than the retained history of volume '%s'; 'cairn cdp list %s' shows what is kept" },
	[MSG_POINT_FUTURE] = { 1, "point '%s' lies in the future; give a time up to now" },
	[MSG_POINT_PAST_END] = { 1, "point '%s' lies past the last write of volume '%s'; 'cairn cdp list' shows its last seq" },
	[MSG_SNAPSHOT_MISSING] = { 1, "volume '%s' has no snapshot named '%s' (and it is not a time); 'cairn snapshot list %s' shows them" },
	[MSG_SNAPSHOT_EXISTS] = { 1, "volume '%s' already has a snapshot named '%s'; pick another name or delete it first" },
	[MSG_SNAPSHOT_NAME] = { 2, "snapshot name '%s' is invalid: use up to 64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit (not 'seq:')" },
	[MSG_MARK_LABEL] = { 2, "label '%s' is invalid: use 1 to 200 characters with no control characters" },
	[MSG_HISTORY_IO] = { 1, "history of '%s': %s" },
	[MSG_EXPORT_FILE] = { 1, "cannot write the image to %s: %s; nothing was written there" },
	[MSG_IMPORT_FILE] = { 1, "cannot read the image %s: %s" },
	[MSG_IMPORT_TOO_BIG] = { 1, "image %s is larger than volume '%s' (%s); nothing was imported" },
	[MSG_IMPORT_UNALIGNED] = { 1, "image %s is not a multiple of 512 bytes long; nothing was imported" },
	[MSG_IMPORT_SERVED] = { 1, "volume '%s' is being served by 'cairn serve'; stop the daemon to import into it, or import while it is stopped" },
	[MSG_RESTORE_OTHER] = { 2, "point '%s' belongs to another volume than '%s'; restore takes a point of the same volume (VOLUME@SNAPSHOT, VOLUME@TIME or VOLUME@seq:N)" },
	[MSG_MOUNT_STALE] = { 1, "%s is a stale FUSE mount (its process is gone); unmount it with 'fusermount3 -u %s' and try again" },
	[MSG_MOUNT_BUSY] = { 1, "%s is already a FUSE mount point (another cairn mount?); unmount it first" },
	[MSG_MOUNT_NOT_DIR] = { 2, "mount point %s is not an existing directory; create it first" },
	[MSG_MOUNT_FAILED] = { 1, "cannot mount the history view on %s: %s" },
	[MSG_WRONG_PASSWORD] = { 1, "wrong password for repository %s; nothing was changed" },
	[MSG_NEED_PASSWORD] = { 1, "repository %s is encrypted: give its password with --password-file FILE (or CAIRN_PASSWORD_FILE), or its key with --key-file FILE" },
	[MSG_PASSWORD_FILE] = { 1, "cannot read password or key file %s: %s; nothing was changed" },
	[MSG_KEY_FILE_BAD] = { 1, "key file %s must hold exactly 32 bytes (e.g. made with 'head -c 32 /dev/urandom'); nothing was changed" },
	[MSG_KEYS_DAMAGED] = { 1, "every key slot of repository %s is damaged; run 'cairn check' and restore the keys/ objects from a copy" },
	[MSG_S3_ACCESS] = { 1, "S3 refused access to %s: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile in ~/.aws/credentials) with rights on the bucket" },
	[MSG_NOT_ENCRYPTED] = { 1, "repository %s is not encrypted, so it has no keys; create an encrypted one with 'cairn init --encrypt'" },
	[MSG_KEY_MISSING] = { 1, "no key %s in repository %s; 'cairn key list' shows the keys" },
	[MSG_KEY_LAST] = { 1, "key %s is the last one of this repository; add another with 'cairn key add' before removing it (nothing was changed)" },
	[MSG_NEW_PASSWORD] = { 2, "no new password given: pass --new-password-file FILE (or --new-key-file FILE)" },
	[MSG_CHECK_DAMAGED] = { 1, "%llu damaged object(s) in repository %s (listed above); restore them from a copy, or run 'cairn gc' once nothing references them" },
	[MSG_CONFIG] = { 1, "%s" },
	[MSG_CONFIG_NEEDED] = { 2, "no daemon serves this repository and no config file was given: pass --config FILE (or set CAIRN_CONFIG) to edit the file 'cairn serve --config FILE' reads" },
	[MSG_SESSIONS_NO_DAEMON] = { 1, "no daemon serves this repository, so there are no sessions; start one with 'cairn serve' (give -r REPO)" },
	[MSG_CHAP_SECRET_FILE] = { 2, "cannot use secret file %s: %s; put the secret (12 to 255 characters) on the first line of a file only you can read" },
	[MSG_GC_FAILED] = { 1, "gc of repository %s stopped: %s; nothing still referenced was deleted, and running 'cairn gc' again finishes the work" },
	[MSG_GC_DAMAGED] = { 1, "gc of repository %s found damaged roots or block-map nodes (logged above), so it deleted nothing; run 'cairn check' and repair first" },
	[MSG_GC_RUNNING] = { 1, "a gc is already running in the daemon; wait for it to finish and try again" },
	[MSG_GC_PERCENT] = { 2, "repack threshold '%s' is invalid: give a percentage from 0 to 100 (e.g. 50)" },
	[MSG_GC_DURATION] = { 2, "grace period '%s' is invalid: give 0 or a number with s, m, h, d or w (e.g. 90s, 15m, 1h, 2d, 1w)" },
	[MSG_BAD_DURATION] = { 2, "duration '%s' of %s is invalid: give a number with an optional unit s, m, h, d or w (e.g. 24h, 7d), or 0" },
	[MSG_IMPORT_STDIN_TOO_BIG] = { 1, "the image on standard input is larger than volume '%s' (%s, %llu bytes; %llu bytes or more were read); nothing was imported: the volume holds what it held before (give an image of at most the volume's size, or grow a new volume)" },
	[MSG_CONFIG_RETENTION] = { 1, "the volume's retention was changed, but saving it in the config file failed: %s; fix that and run the command again, or the file's setting takes over at the next 'cairn serve --config'" },
	[MSG_OWN_KEY_PLAIN] = { 1, "volume '%s' was not created: --own-key needs an encrypted repository (one made with 'cairn init --encrypt'); create it without --own-key, or in an encrypted repository" },
	[MSG_KEY_ERASED] = { 1, "%s cannot be read: its data was under a volume key that a SANITIZE CRYPTO ERASE destroyed; nothing written before that erase can be recovered" },
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
