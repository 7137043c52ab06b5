/* backend_cache.h - a backend that keeps a local, size-bounded copy of another's
 * immutable objects (packs/ and index/), so reads of recent data do not go to S3.
 *
 * Write-through: put stores to the inner backend first, then copies the object into
 * the cache directory (a failed copy is only logged). get and get_range answer from the
 * copy when there is one, else from the inner backend: a whole-object get is copied in,
 * and a ranged read of a pack that misses queues the whole pack for a background copy
 * (fill on miss). del, list and stat always go to the inner backend (del drops the copy
 * too). When the copies exceed max_bytes the least recently used are dropped. Copies
 * are plain files (a local backend under dir); a damaged copy reads as damaged data,
 * which every reader detects (-EBADMSG), and `cairn check` opens without the cache.
 * Thread-safe.
 */
#ifndef CAIRN_BACKEND_CACHE_H
#define CAIRN_BACKEND_CACHE_H

#include <stdint.h>

#include "backend.h"

/* Wrap inner (owned from now on, closed with the cache even on failure) with a cache
 * in dir (created if missing). max_bytes 0 = 4 GiB. */
int backend_cache_open(struct backend *inner, const char *dir, uint64_t max_bytes,
		       struct backend **out);

#endif
