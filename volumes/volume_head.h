/* volume_head.h - volume head objects in the repository's metadata.
 *
 * Key "volumes/<volid>/head.<016x version>"; the highest version wins. The JSON
 * layout is documented at the top of volume_head.c. Heads are written with the
 * exclusive flag and never overwritten; a tombstone (deleted) head ends a volume.
 * All functions return 0 or a negative errno.
 */
#ifndef CAIRN_VOLUME_HEAD_H
#define CAIRN_VOLUME_HEAD_H

#include <stdint.h>

#include "repo.h"
#include "volume.h"

struct volume_head {
	struct volume_info info;
	struct chunk_id root;  /* block map root */
	uint64_t next_seq;     /* first journal seq not yet used when written */
	uint64_t hi;           /* the map holds no record with seq >= hi (ckpt_seq <= hi) */
	uint64_t version;
	int deleted;
};

/* Write h as version h->version (exclusive), then drop versions older than the one
 * before it. */
int volume_head_put(struct chunk_store *cs, const struct volume_head *h);
/* Newest head of volume volid (deleted ones too). -ENOENT if none. */
int volume_head_get(struct chunk_store *cs, const char *volid, struct volume_head *out);
/* Newest live head with this name. -ENOENT if none. */
int volume_head_find(struct chunk_store *cs, const char *name, struct volume_head *out);

/* Process-wide registry of open volumes: -EBUSY if volid is open already. */
int volume_head_claim(struct chunk_store *cs, const char *volid);
void volume_head_release(struct chunk_store *cs, const char *volid);

#endif
