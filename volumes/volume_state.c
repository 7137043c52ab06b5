/* volume_state.c - volume_delete_local() and volume_state_sweep() (volume.h): the local
 * state a deleted volume leaves in the gateway's state directory.
 *
 * A volume's local state is the directory <state_dir>/<volid> (<volid>: its 32 hex id):
 *   journal/   the journal (the CDP log), history.h
 *   jcache/    fetched copies of journal segments stored in the repository, jstore.h
 * Deletion order: the tombstone head first (stored durably by volume_delete), then the
 * directory. A crash between the two leaves the directory of a volume whose newest head
 * is a tombstone: volume_state_sweep() removes it (at the daemon's start and at a gc).
 * Nothing else reads it meanwhile: a deleted volume is never opened, listed, resolved
 * as a point or walked as a gc root, and a deleted volume never comes back (a new one
 * gets a new id).
 *
 * The state directory may hold more than volumes: the index table and the S3 cache
 * (index/, cache/, or <repo id>/ under $CAIRN_STATE_DIR), and, when several
 * repositories share $CAIRN_STATE_DIR, the volumes of the others. So only a directory
 * whose volume this repository knows as deleted is ever removed.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "volume.h"
#include "volume_head.h"

#define VOLID_HEX 32

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
		return errno;
	return 0;
}

/* Remove <state_dir>/<volid> and everything under it (symlinks not followed). */
static int remove_tree(const char *state_dir, const char *volid)
{
	char dir[4096];
	int rc;

	if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", state_dir, volid) >= sizeof(dir))
		return -ENAMETOOLONG;
	rc = nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (rc < 0)
		return errno == ENOENT ? 0 : -errno;
	if (rc > 0)
		return -rc;
	util_fsync_dir_of(dir);
	return 0;
}

/* 1 if volid's newest head in cs is a tombstone, 0 if it is live or unknown (*known
 * says which), or -errno when the repository cannot tell. */
static int is_deleted(struct chunk_store *cs, const char *volid, int *known)
{
	struct volume_head h;
	int rc = volume_head_get(cs, volid, &h);

	*known = rc == 0;
	if (rc == -ENOENT)
		return 0;
	return rc ? rc : h.deleted;
}

int volume_delete_local(struct chunk_store *cs, const char *name, const char *state_dir)
{
	struct volume_info vi;
	int rc, known;

	rc = volume_lookup(cs, name, &vi);
	if (rc)
		return rc;
	rc = volume_delete(cs, name);
	if (rc || !state_dir || !*state_dir)
		return rc;
	/* the tombstone is stored; the state of vi.id goes only if it is this one's (a
	 * volume of the same name deleted and created meanwhile keeps its own) */
	if (is_deleted(cs, vi.id, &known) == 1) {
		rc = remove_tree(state_dir, vi.id);
		if (rc)
			log_warn("volume", "%s: removing its local state %s/%s failed (%s); a later "
				 "start or gc removes it", name, state_dir, vi.id, strerror(-rc));
	}
	return 0;
}

static int is_volid(const char *s)
{
	size_t n = strlen(s);

	if (n != VOLID_HEX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* 1 if <state_dir>/<name> looks like a volume's local state (a journal/ or jcache/). */
static int holds_volume_state(const char *state_dir, const char *name)
{
	static const char *const subs[] = { "journal", "jcache" };
	char path[4096];
	struct stat sb;

	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s/%s", state_dir, name, subs[i]) >=
		    sizeof(path))
			return 0;
		if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
			return 1;
	}
	return 0;
}

int volume_state_sweep(struct chunk_store *cs, const char *state_dir, unsigned *removed)
{
	struct dirent *e;
	unsigned n = 0;
	DIR *d;
	int rc = 0;

	if (removed)
		*removed = 0;
	if (!state_dir || !*state_dir)
		return 0;
	d = opendir(state_dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d)) != NULL) {
		int known, del, r;

		if (!is_volid(e->d_name) || !holds_volume_state(state_dir, e->d_name))
			continue;
		del = is_deleted(cs, e->d_name, &known);
		if (del < 0) {
			rc = del; /* the repository cannot tell now: nothing is removed */
			break;
		}
		if (!known) {
			log_info("volume", "%s/%s: the local state of a volume this repository does "
				 "not know (another repository's?); left alone", state_dir, e->d_name);
			continue;
		}
		if (!del)
			continue;
		r = remove_tree(state_dir, e->d_name);
		if (r) {
			log_warn("volume", "removing %s/%s, the local state of a deleted volume, "
				 "failed: %s", state_dir, e->d_name, strerror(-r));
			continue;
		}
		log_info("volume", "removed %s/%s, the local state of a deleted volume", state_dir,
			 e->d_name);
		n++;
	}
	closedir(d);
	if (removed)
		*removed = n;
	return rc;
}
