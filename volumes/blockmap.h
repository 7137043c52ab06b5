/* blockmap.h - a volume's block map: chunk number -> chunk id.
 *
 * A radix tree of CHUNK_TREE chunks (node layout at the top of blockmap.c), 256 ids per
 * node, as deep as the volume's chunk count needs (1 level up to 256 chunks, 2 up to
 * 64 Ki, ...). A subtree whose ids are all null is the null id and is not stored.
 * Nodes are loaded lazily and kept; changed nodes are stored bottom-up by
 * blockmap_flush(), which yields the new root id. Unchanged subtrees keep their ids, so
 * two roots share everything they have in common.
 *
 * Thread safety: all calls are serialised by an internal lock. Returns 0 or a negative
 * errno (-EBADMSG: a node is damaged or is not a node of the expected level).
 */
#ifndef CAIRN_BLOCKMAP_H
#define CAIRN_BLOCKMAP_H

#include <stdint.h>

#include "repo.h"

#define BLOCKMAP_FANOUT 256

struct blockmap;

/* A map of nchunks entries rooted at root (the null id: every chunk is null). */
int blockmap_open(struct chunk_store *cs, uint64_t nchunks, const struct chunk_id *root,
		  struct blockmap **out);
void blockmap_close(struct blockmap *bm);
/* Tree depth (levels) for nchunks entries. */
unsigned blockmap_depth_for(uint64_t nchunks);

/* The id of chunk. Without may_load, -EAGAIN when a node on the path is not in memory
 * (the caller retries with may_load outside its own locks). */
int blockmap_lookup(struct blockmap *bm, uint64_t chunk, int may_load, struct chunk_id *out);
/* Set the id of chunk (loading the path if needed; in memory once looked up). */
int blockmap_set(struct blockmap *bm, uint64_t chunk, const struct chunk_id *id);
/* Set count chunks from first to the null id; whole subtrees are dropped unread. */
int blockmap_zero_range(struct blockmap *bm, uint64_t first, uint64_t count);
/* Store every changed node, children first, and return the root id. */
int blockmap_flush(struct blockmap *bm, struct chunk_id *root_out);
/* Forget every node and changes: the map is now exactly root (a restore). */
void blockmap_reset(struct blockmap *bm, const struct chunk_id *root);
/* 1 if there are changes not yet flushed. */
int blockmap_dirty(struct blockmap *bm);
/* The id of chunk, as blockmap_lookup, and in *span how many chunks from chunk on (at
 * least 1) share its state: for a null id, the run of null entries (a whole null
 * subtree is one run, read without loading anything below it); else 1. */
int blockmap_lookup_span(struct blockmap *bm, uint64_t chunk, int may_load, struct chunk_id *out,
			 uint64_t *span);

/* Visit every chunk of the tree under root (the null id: none), nodes included, a node
 * before its children: cb(arg, id, is_node) returns < 0 to stop (blockmap_walk returns
 * it), 1 to skip that node's children (already visited), 0 to go on. A node that cannot
 * be read, or is not a node of the level its parent implies, goes to bad(arg, id, err)
 * and its subtree is skipped. Needs no volume geometry: levels come from the nodes.
 * For gc and check; reads through cs, holds no lock. */
typedef int (*blockmap_walk_cb)(void *arg, const struct chunk_id *id, int is_node);
int blockmap_walk(struct chunk_store *cs, const struct chunk_id *root, blockmap_walk_cb cb,
		  void (*bad)(void *arg, const struct chunk_id *id, int err), void *arg);

#endif
