/* repo_check.h - `cairn check`: verify every object of a repository.
 *
 * Walks, in this order: key slots (checksum), metadata objects (checksum or GCM), every
 * pack (header, footer, trailer checksum/GCM) against its index segment (sound, and
 * listing exactly the trailer's entries), index segments without a pack; with
 * read_data, every record of every pack read whole, decoded (checksum, GCM, LZ4) and
 * its id recomputed from the plaintext. Each damaged object is reported once per
 * problem through damaged(); nothing is repaired or changed.
 *
 * The chunks referenced by volumes live in block-map trees whose format belongs to
 * volumes/; stores cannot read them. A caller that can plugs a repo_tree_walker in,
 * and check then also reports every referenced chunk the index does not hold.
 */
#ifndef CAIRN_REPO_CHECK_H
#define CAIRN_REPO_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "repo.h"

/* What a tree walker reports to check. */
struct repo_walk_cbs {
	/* A chunk referenced by root (a name for messages, e.g. "volume disk"); the null id
	 * is never passed. Return < 0 to stop the walk (walk returns it), REPO_WALK_SEEN
	 * when id was reported before or is not stored (a tree node's children then need
	 * not be visited), 0 to go on. */
	int (*ref)(void *arg, const char *root, const struct chunk_id *id);
	/* A metadata object the walker could not use (damaged, or not its format). */
	void (*bad)(void *arg, const char *object, const char *what);
	void *arg;
};

/* Root provider / tree walker. Contract: walk() visits every root in the repository
 * (volume heads, snapshots, retained journal segments ...), reading their objects
 * through cs, and calls cb->ref() once or more for every chunk id reachable from them,
 * tree nodes included; it reads a tree node's children only after reporting the node.
 * It returns 0, or a negative errno when it could not go on (a tree node it cannot
 * read is reported with cb->bad() and skipped, not an error). */
#define REPO_WALK_SEEN 1
struct repo_tree_walker {
	int (*walk)(void *ctx, struct chunk_store *cs, const struct repo_walk_cbs *cb);
	/* Optional (gc): as walk, for the one metadata object key (without "meta/") whose
	 * content is data[len], deleted or replaced while gc ran; objects the walker does
	 * not know reference nothing. */
	int (*walk_object)(void *ctx, struct chunk_store *cs, const char *key, const void *data,
			   size_t len, const struct repo_walk_cbs *cb);
	/* The metadata key prefixes walk_object wants (NULL-terminated; NULL: none): gc
	 * reads such an object before it is deleted or replaced while gc runs. */
	const char *const *object_prefixes;
	/* Optional (gc): report every metadata object (key without "meta/", its size) that
	 * no root can need again, in groups whose objects go together (the objects of one
	 * deleted volume; group: its id, [0-9A-Za-z_-], at most 64 chars), one group's keys
	 * one after another, by calling cb. Never a root that walk() visits, and never an
	 * object whose absence would bring a deleted thing back (a volume's tombstone).
	 * Returns 0 or the first error (cb's included). */
	int (*dead)(void *ctx, struct chunk_store *cs,
		    int (*cb)(void *arg, const char *group, const char *key, uint64_t size),
		    void *arg);
	void *ctx;
};

struct repo_check_opts {
	int read_data;                            /* decode every chunk and verify its id */
	const struct repo_tree_walker *walker;    /* NULL: references are not checked */
	/* object: its key ("packs/ab/ab12..."); what: one phrase. */
	void (*damaged)(void *arg, const char *object, const char *what);
	/* phase: "keys", "metadata", "packs", "references"; done of total units. */
	void (*progress)(void *arg, const char *phase, uint64_t done, uint64_t total);
	void *arg;
};

struct repo_check_result {
	uint64_t keys, meta, packs, segments, chunks_read, refs;
	uint64_t damaged;                         /* problems reported */
	uint64_t incomplete;                      /* packs cut short by a crash (not damage) */
	uint64_t erased;                          /* read_data: records under a destroyed
						   * volume key (CRYPTO ERASE), unreadable by
						   * design until gc deletes them (not damage) */
};

/* 0 when the walk completed (look at res->damaged), or a negative errno when the
 * backend failed so that it could not. */
int repo_check(struct repo *r, const struct repo_check_opts *o, struct repo_check_result *res);

#endif
