/* history.h - a volume's past: history checkpoints, snapshots, marks, and the
 * resolution of a POINT ("VOL", "VOL@SNAPSHOT", "VOL@<RFC 3339 time>", "VOL@seq:N")
 * into a plan: a base map root plus the journal records to replay on top of it.
 *
 * Metadata objects (JSON, layouts at the top of history.c), all under
 * "history/<volid>/" in the repository's metadata:
 *   ckpt.<016x hi>.<016x time>.<016x ckpt_seq>  a history checkpoint: a map root
 *                    holding every record with seq < ckpt_seq and none with seq >= hi
 *                    (ckpt_seq <= hi). It serves every point N >= hi: replay records
 *                    [ckpt_seq, N) on top. Past the retention window the hourly and
 *                    daily ones kept are exact (ckpt_seq == hi: seq:hi needs no journal).
 *   snap.<name>      a snapshot: the point seq (and, once materialized, its own root)
 *   mark.<016x seq>  a CDP mark (the label of a JOURNAL_MARK record)
 * The journal itself stays in <state_dir>/<volid>/journal (journal.h); its sealed
 * segments are also stored in the repository (jstore.h) and fetched into
 * <state_dir>/<volid>/jcache when the state directory lacks them.
 *
 * All functions return 0 or a negative errno.
 */
#ifndef CAIRN_HISTORY_H
#define CAIRN_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "journal.h"
#include "repo.h"
#include "volume.h"

#define HISTORY_SNAP_MAX 64    /* [A-Za-z0-9._:-], starting alphanumeric, not "seq:..." */
#define HISTORY_LABEL_MAX 200  /* printable UTF-8, no control characters */

struct history_ckpt {
	struct chunk_id root;
	uint64_t ckpt_seq;  /* every record < ckpt_seq is in root */
	uint64_t hi;        /* no record >= hi is in root */
	uint64_t time_ns;   /* wall clock when written */
};

struct history_snap {
	char name[HISTORY_SNAP_MAX + 1];
	uint64_t seq;          /* the snapshot holds exactly the records with seq < seq */
	uint64_t time_ns;      /* wall clock when it was taken */
	int materialized;      /* root is set: the map at seq, needing no journal */
	struct chunk_id root;
};

struct history_mark {
	uint64_t seq;          /* seq of the MARK record */
	uint64_t time_ns;
	char label[HISTORY_LABEL_MAX + 1];
};

int history_snap_name_valid(const char *name);
int history_label_valid(const char *label);
/* "<state_dir>/<volid>/journal" */
void history_journal_dir(const char *state_dir, const char *volid, char *buf, size_t len);
/* The journal view of a volume: its live journal, then the cache of segments fetched
 * from the repository (none when state_dir is NULL). */
struct history_jview {
	struct journal_view v;
	char jdir[4096], cdir[4096];
};
void history_view(const char *state_dir, const char *volid, struct history_jview *hv);
/* "90s", "15m", "24h", "7d", "2w" or a plain number of seconds ("0": none). */
int history_parse_duration(const char *s, uint64_t *ns);
/* The shortest such text for ns (whole seconds). */
char *history_fmt_duration(uint64_t ns, char *buf, size_t len);

int history_ckpt_put(struct chunk_store *cs, const char *volid, const struct chunk_id *root,
		     uint64_t ckpt_seq, uint64_t hi, uint64_t time_ns);
/* The checkpoint with the largest hi <= upto. -ENOENT if none. */
int history_ckpt_best(struct chunk_store *cs, const char *volid, uint64_t upto,
		      struct history_ckpt *out);
/* The newest checkpoint written before before_ns (the base of the oldest points kept
 * in a retention window starting there). -ENOENT if none is that old. */
int history_ckpt_boundary(struct chunk_store *cs, const char *volid, uint64_t before_ns,
			  struct history_ckpt *out);
/* Every checkpoint (one per hi; ckpt_seq 0 when unknown without reading it), by hi;
 * exact: ckpt_seq == hi. Non-zero from cb stops. */
int history_ckpt_list(struct chunk_store *cs, const char *volid,
		      int (*cb)(void *arg, const struct history_ckpt *c, int exact), void *arg);
/* Store the point seq:c->hi as a map root of its own (its journal is still there). */
typedef int (*history_exact_fn)(void *arg, const struct history_ckpt *c, struct chunk_id *root);
/* Retention of checkpoints at time now (struct volume_retention): every one younger
 * than the window stays, and so does the newest older one (the boundary:
 * history_ckpt_boundary). Of the others, the oldest of each hourly period younger than
 * hourly_ns and of each daily period younger than daily_ns stay, made exact first with
 * exact() (one that cannot be, its journal gone, is dropped); the rest are deleted
 * (gc then reclaims what only they referenced). Call it before the journal below the
 * boundary is deleted. *kept / *deleted count the checkpoints past the window. */
int history_ckpt_thin(struct chunk_store *cs, const char *volid,
		      const struct volume_retention *r, uint64_t now, history_exact_fn exact,
		      void *arg, unsigned *kept, unsigned *deleted);
/* Purge (SANITIZE, volume_purge.c): delete every checkpoint but the exact ones
 * (ckpt_seq == hi) at hi >= seq. */
int history_ckpt_purge(struct chunk_store *cs, const char *volid, uint64_t seq);
/* Delete the marks with seq < below. */
int history_mark_expire(struct chunk_store *cs, const char *volid, uint64_t below);

/* -EEXIST if the name is taken. */
int history_snap_put(struct chunk_store *cs, const char *volid, const struct history_snap *s,
		     int excl);
/* -ENOENT if there is none. */
int history_snap_get(struct chunk_store *cs, const char *volid, const char *name,
		     struct history_snap *out);
int history_snap_del(struct chunk_store *cs, const char *volid, const char *name);
/* Every snapshot, ordered by seq; non-zero from cb stops. */
int history_snap_list(struct chunk_store *cs, const char *volid,
		      int (*cb)(void *arg, const struct history_snap *s), void *arg);

int history_mark_put(struct chunk_store *cs, const char *volid, const struct history_mark *m);
/* Marks with seq >= from, ordered by seq. */
int history_mark_list(struct chunk_store *cs, const char *volid, uint64_t from,
		      int (*cb)(void *arg, const struct history_mark *m), void *arg);

/* A point resolved: open it with point_open() (point.h). */
struct point_plan {
	struct volume_info info;   /* the volume: name, id, size, chunk size */
	struct chunk_id root;      /* base map: every record < from_seq, none >= to_seq */
	uint64_t from_seq;         /* replay the journal records [from_seq, to_seq) */
	uint64_t to_seq;           /* the point: every record with seq < to_seq */
	uint64_t time_ns;          /* wall clock of the point (snapshot time, asked time) */
	char snapshot[HISTORY_SNAP_MAX + 1]; /* set when the point is a snapshot */
};

/* Split "VOL[@SPEC]": vol gets the name; *spec points into point (NULL without '@').
 * -EINVAL on a bad volume name or an empty spec. */
int history_parse_point(const char *point, char vol[VOLUME_NAME_MAX + 1], const char **spec);
/* Resolve point into a plan, reading only metadata and the journal index (never a
 * scan of the whole history). live_next: when the volume is open for writing, the
 * seq of its next record as cut by volume_cut() (the "now" of a live volume); 0 to
 * find the end from the journal. Errors: -EINVAL bad syntax; -ENOENT no such volume;
 * -ESRCH no snapshot of that name (and not a time); -ERANGE a time in the future or
 * a seq past the end; -ENODATA the point is older than the retained history. */
int history_resolve(struct chunk_store *cs, const char *state_dir, const char *point,
		    uint64_t live_next, struct point_plan *out);

/* The retained CDP history of a volume (`cdp list`): the local journal (and fetched
 * segments) plus the segments stored in the repository. */
struct history_span {
	uint64_t first_seq;       /* oldest record kept anywhere */
	uint64_t first_time_ns;   /* its time (a stored segment's start time when only the
				   * repository holds it); 0 if unknown */
	uint64_t next_seq;        /* one past the newest record */
	int have_records;         /* last_* are set */
	uint64_t last_seq, last_time_ns;
	uint64_t local_bytes;
	unsigned local_segments;
	uint64_t repo_first_seq, repo_next_seq, repo_bytes;
	unsigned repo_segments;
};
int history_span(struct chunk_store *cs, const char *state_dir, const struct volume_info *vi,
		 struct history_span *out);

#endif
