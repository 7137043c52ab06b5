/* gc.h - garbage collection of a repository: mark every chunk reachable from the roots,
 * delete packs that hold no live chunk, and repack packs whose live share is low.
 * The protocol (two phases, grace period, safety against a writer in the same process
 * and against readers in other processes) is described at the top of gc.c.
 *
 * Two-step use, so that a daemon can start the run on the thread that serialises its
 * other commands and let it go on elsewhere:
 *   gc_begin()  start recording what the process's writers reuse (cheap, no IO);
 *   gc_run()    settle, mark, sweep and repack (long);
 *   gc_end()    stop recording and free.
 * A repository runs at most one gc at a time (the caller guarantees it; the one writer
 * lock or lease guarantees it across processes). All functions return 0 or -errno.
 */
#ifndef CAIRN_GC_H
#define CAIRN_GC_H

#include <stdint.h>

#include "repo.h"
#include "repo_check.h"

#define GC_REPACK_PCT_DEFAULT 50u
#define GC_GRACE_DEFAULT_NS (3600ull * 1000000000ull)  /* one hour */

struct gc_opts {
	/* The roots: every volume head, history object and retained journal record that
	 * references chunks (required; walk_object too, when writers run meanwhile). */
	const struct repo_tree_walker *walker;
	/* Repack a pack whose live record bytes are below this percentage of its record
	 * bytes (0: never repack; at most 100). */
	unsigned repack_pct;
	/* A pack condemned (found unneeded) is deleted only by a run at least this long
	 * after it was condemned; 0 deletes at once. */
	uint64_t grace_ns;
	int dry_run;               /* decide and report; change nothing */
	/* Called once recording has started and before the roots are read: make every chunk
	 * a writer of this process may still reference (put before the recording started)
	 * reachable from a root stored in the repository (a daemon checkpoints each open
	 * volume). NULL when no writer runs. */
	int (*settle)(void *arg);
	/* Non-zero asks the run to stop early (-ECANCELED), between two packs or while
	 * marking; what is done so far is consistent. NULL: never. */
	int (*cancelled)(void *arg);
	/* phase: "settle", "mark" (done: chunks marked, total 0), "sweep" (packs). */
	void (*progress)(void *arg, const char *phase, uint64_t done, uint64_t total);
	/* Test hook: called before every change to the repository, naming it
	 * ("repack-pack", "repack-index", "condemn", "revive", "delete-index",
	 * "delete-pack", "delete-mark", "delete-orphan", "delete-incomplete",
	 * "condemn-meta", "delete-meta"). */
	void (*step)(void *arg, const char *what);
	void *arg;
};

struct gc_result {
	uint64_t packs;            /* stored packs when the run began */
	uint64_t pack_bytes;       /* their object bytes */
	uint64_t refs;             /* chunk references the roots reported */
	uint64_t missing;          /* referenced chunks no pack holds ('cairn check') */
	uint64_t live_chunks, dead_chunks;  /* records of those packs */
	uint64_t live_bytes, dead_bytes;    /* their record bytes */
	uint64_t reused_chunks;    /* live only because a writer reused them during the run */
	uint64_t packs_deleted, bytes_deleted;   /* pack objects deleted */
	uint64_t packs_repacked;                 /* packs whose live chunks were moved */
	uint64_t packs_written, bytes_written;   /* new packs holding moved chunks */
	uint64_t chunks_moved;
	uint64_t packs_condemned, bytes_condemned; /* newly condemned (deleted later) */
	uint64_t packs_waiting, bytes_waiting;   /* condemned earlier, grace not over */
	uint64_t packs_revived;    /* condemned earlier but referenced again: kept */
	uint64_t orphans_deleted;  /* index segments and marks of packs that are gone */
	uint64_t next_ns;          /* wall clock from which a gc deletes the waiting and
				    * newly condemned packs (0: none) */
	int damaged;               /* a root or tree node could not be read: nothing was
				    * deleted or condemned ('cairn check' names it) */
	/* Incomplete uploads (gc.c, "INCOMPLETE UPLOADS"): pack objects cut short by a
	 * crash, found; of them, deleted (also counted in packs_deleted/bytes_deleted;
	 * those condemned or waiting in packs_condemned/packs_waiting). */
	uint64_t incomplete, incomplete_deleted;
	/* Deleted volumes (gc.c, "DEAD METADATA"): groups the walker reported, and their
	 * metadata objects deleted now, or condemned and waiting for the grace period. */
	uint64_t dead_volumes;
	uint64_t meta_deleted, meta_bytes_deleted;
	uint64_t meta_waiting, meta_bytes_waiting;
};

struct gc;

int gc_begin(struct repo *r, const struct gc_opts *o, struct gc **out);
/* res is filled as the run goes (a poller may read it after gc_run returns). */
int gc_run(struct gc *g, struct gc_result *res);
void gc_end(struct gc *g);
/* gc_begin, gc_run, gc_end. */
int gc_repo(struct repo *r, const struct gc_opts *o, struct gc_result *res);

#endif
