/* idset.h - a set of chunk ids in memory: open addressing, linear probing, grown by
 * doubling at 70 % load; 32 bytes per slot. The null id (all zero) marks a free slot,
 * so it is never a member (chunk ids of stored chunks are never null).
 *
 * For the walks that must visit each referenced chunk once (gc's chunks outside the
 * packs it examines, check's references no pack holds, stats' distinct references).
 * Not thread-safe: one walker owns a set. All functions return 0 or -errno unless
 * stated otherwise.
 */
#ifndef CAIRN_IDSET_H
#define CAIRN_IDSET_H

#include <stddef.h>

#include "repo.h"

struct idset {
	struct chunk_id *v;        /* mask + 1 slots, or NULL while empty */
	size_t mask, n;            /* n members */
};

/* A zeroed struct idset is an empty set. */
/* 1 when id was added, 0 when it was a member already, -EINVAL for the null id,
 * -ENOMEM (the set is unchanged). */
int idset_add(struct idset *s, const struct chunk_id *id);
/* 1 when id is a member, else 0. */
int idset_has(const struct idset *s, const struct chunk_id *id);
/* Free the slots; the set is empty again. */
void idset_free(struct idset *s);

#endif
