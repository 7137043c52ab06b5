/* history.h - a volume's past: history checkpoints, snapshots, marks, and the
 * resolution of a POINT ("VOL", "VOL@SNAPSHOT", "VOL@<RFC 3339 time>", "VOL@seq:N")
 * into a plan: a base map root plus the journal records to replay on top of it.
 *
 * Metadata objects (JSON, layouts at the top of history.c), all under
 * "history/<volid>/" in the repository's metadata:
 *   ckpt.<016x hi>.<016x time>  a history checkpoint: a map root holding every record with
 *                    seq < ckpt_seq and none with seq >= hi (ckpt_seq <= hi). It serves
 *                    every point N >= hi: replay records [ckpt_seq, N) on top.
 *   snap.<name>      a snapshot: the point seq (and, once materialized, its own root)
 *   mark.<016x seq>  a CDP mark (the label of a JOURNAL_MARK record)
 * The journal itself stays in <state_dir>/<volid>/journal (journal.h).
 *
 * All functions return 0 or a negative errno.
 */
#ifndef CAIRN_HISTORY_H
#define CAIRN_HISTORY_H

#include <stddef.h>
#include <stdint.h>

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

int history_ckpt_put(struct chunk_store *cs, const char *volid, const struct chunk_id *root,
		     uint64_t ckpt_seq, uint64_t hi, uint64_t time_ns);
/* The checkpoint with the largest hi <= upto. -ENOENT if none. */
int history_ckpt_best(struct chunk_store *cs, const char *volid, uint64_t upto,
		      struct history_ckpt *out);
/* Retention: *boundary gets the newest checkpoint written before before_ns, and every
 * older one is deleted (the journal before boundary->ckpt_seq may then go). -ENOENT
 * (nothing deleted) if no checkpoint is that old. */
int history_ckpt_expire(struct chunk_store *cs, const char *volid, uint64_t before_ns,
			struct history_ckpt *boundary);
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

#endif
