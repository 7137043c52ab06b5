/* chunk_cache.h - decoded-chunk LRU cache, bounded in bytes.
 *
 * Maps chunk id -> plaintext. Split into lock stripes by id, each with its own LRU list
 * and an equal share of the byte budget; entry bytes count their bookkeeping too.
 * Thread-safe. Nothing is ever held locked across calls.
 */
#ifndef CAIRN_CHUNK_CACHE_H
#define CAIRN_CHUNK_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "repo.h"

struct chunk_cache;

/* A cache holding at most bytes; 0 gives a cache that holds nothing. */
int chunk_cache_create(size_t bytes, struct chunk_cache **out);
void chunk_cache_destroy(struct chunk_cache *c);
/* Hit: copy the chunk to buf, *len = its length, return 0 (and make it most recent).
 * -ENOENT on a miss, -ENOBUFS if cap is too small (counted as a hit). */
int chunk_cache_get(struct chunk_cache *c, const struct chunk_id *id, void *buf, size_t cap,
		    size_t *len);
/* Insert a copy of data (no-op if present or larger than a stripe's share). */
void chunk_cache_put(struct chunk_cache *c, const struct chunk_id *id, const void *data, size_t len);
/* Forget id, wiping its copy (gc retired the pack holding it; a SANITIZE's purge). */
void chunk_cache_del(struct chunk_cache *c, const struct chunk_id *id);
/* Forget every chunk, wiping the copies (a volume key destroyed: CRYPTO ERASE). */
void chunk_cache_clear(struct chunk_cache *c);
void chunk_cache_counters(struct chunk_cache *c, uint64_t *hits, uint64_t *misses);

#endif
