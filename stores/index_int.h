/* index_int.h - the table's state and the calls shared by index.c (the in-memory
 * filter and table of recent changes, lookups and changes, the unpersisted open, the
 * index segments) and index_persist.c (run files, merges on the background thread, the
 * kept table: manifest, load, checkpoints, close). Not a public contract: index.h is.
 * Formats: run pages and records in index.c, persisted runs and the manifest in
 * index_persist.c.
 *
 * Concurrency: the owner serialises the calls (index.h). mem, the totals and the slot
 * flags belong to the calling thread; the runs array is shared with the background
 * thread under mu (lookups hold it while they read runs; the thread holds it only to
 * pick work and to swap a finished merge in). Only the background thread removes runs,
 * and a change only appends them, so the two runs a merge reads stay in place.
 */
#ifndef CAIRN_INDEX_INT_H
#define CAIRN_INDEX_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "index.h"

#define EMPTY UINT32_MAX        /* loc.pack of a free mem slot */
#define TOMB (UINT32_MAX - 1)   /* loc.pack of a removal in mem */
#define REC_LEN 56u
#define PAGE_LEN 4096u
#define PAGE_RECS 72u
#define PAGE_SUM_OFF (PAGE_LEN - 8u)
#define IO_PAGES 64u            /* pages per read or write while merging */
#define MAX_RUNS 64u
#define RUN_CAP 48u             /* a change that would add a run beyond waits for merges */
#define RUN_FORCE 24u           /* beyond: merge the newest pair whatever the sizes */
#define MEM_MAX_DEFAULT 8192u
#define MEM_CAP_DEFAULT 16384u  /* slots: MEM_MAX_DEFAULT at under 70% load */
#define FILTER_BITS 10u         /* filter bits per run record */
#define FLAG_TOMB 1u
#define CKPT_INTERVAL_S 30u

#define SF_DEAD 1u              /* slot flags */
#define SF_SHADOW 2u

enum mode { MODE_TEMP, MODE_READER, MODE_WRITER };

struct slot {
	struct chunk_id id;
	struct index_loc loc; /* loc.pack == EMPTY: free slot; TOMB: removed */
};

struct run {
	int fd;
	uint64_t n;      /* records */
	uint64_t pages;
	uint64_t *fence; /* big-endian first 8 id bytes of the first record of each page */
	uint64_t *filter; /* fblocks blocks of 8 words */
	uint64_t fblocks;
	uint64_t seq;    /* persisted as run-<seq>.idx; 0: unlinked */
};

/* A manifest to write (built by a checkpoint, written by the background thread). */
struct mjob {
	uint8_t *buf;
	size_t len;
	uint64_t gen;
	uint64_t *seqs;  /* the runs it names */
	unsigned nseqs;
};

struct index {
	enum mode mode;
	char dir[PATH_MAX];       /* where new run files go */
	char pdir[PATH_MAX - 64]; /* the persisted directory (READER, WRITER) */
	int lock_fd;
	uint8_t owner_id[16];
	struct index_owner owner;

	/* the calling thread's */
	struct slot *slots;       /* mem */
	size_t mask, used, mem_max;
	size_t count;
	struct index_totals tot;
	int warned, need_recount, ckpt_on;
	unsigned ckpt_interval;
	double last_ckpt;

	/* shared with the background thread, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cond;      /* broadcast at every change of the fields below */
	pthread_t bg;
	int bg_running, stop, busy, paused, merge_err;
	int inline_merges;        /* bench: a change that writes a run waits for its merges */
	struct run runs[MAX_RUNS]; /* oldest first */
	unsigned nruns;
	uint64_t next_seq;
	uint8_t *sflags;          /* per pack slot: SF_* (written by the caller under mu) */
	uint32_t nsflags;
	struct mjob *pending;     /* the manifest to write next */
	int writing;              /* the thread writes a manifest now */
	uint64_t gen, written_gen;
	uint64_t *man_seqs;       /* runs the last manifest written names */
	unsigned man_n;
	uint64_t *doomed;         /* merged-away runs still named by a manifest */
	unsigned ndoomed, cap_doomed;
};

static inline uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline int slot_dead(const struct index *ix, uint32_t s)
{
	return s < ix->nsflags && (ix->sflags[s] & SF_DEAD);
}

/* ---- index.c ---- */

/* An empty table (mem allocated, no runs, mode MODE_TEMP, no thread yet). */
int index_alloc(struct index **out);
/* $TMPDIR, else /tmp. */
const char *index_tmp_dir(void);
/* Add id to the filter f of nb blocks. */
void index_filter_add(uint64_t *f, uint64_t nb, const uint8_t *id);
/* Add (sign 1) or take away (sign -1) l's entry in the totals t. */
void index_tot_add(struct index_totals *t, const struct index_loc *l, int sign);
/* A run record (format in index.c) from id, loc and the tombstone flag, and back. */
void index_rec_encode(uint8_t *p, const uint8_t *id, const struct index_loc *loc, int tomb);
void index_rec_decode(const uint8_t *p, struct index_loc *loc);
/* Read cnt pages of r from page pg into buf, every page checksum verified (-EIO). */
int index_read_pages(const struct run *r, uint64_t pg, uint64_t cnt, uint8_t *buf);

/* ---- index_persist.c ---- */

/* Start the background thread (merges, manifest writes); a failure is logged. */
void index_bg_start(struct index *ix);
/* Write mem as the newest run and empty it. Waits while RUN_CAP runs wait for merges. */
int index_mem_flush(struct index *ix);
/* Build the manifest of the table now (mem written first) and queue it; sync: wait
 * until it is written. Writer only. */
int index_checkpoint_take(struct index *ix, int sync);

#endif
