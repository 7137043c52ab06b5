/* point.h - a read-only image of a volume at one point of its history.
 *
 * Contract: an image is the block map of a plan's base root plus the journal records
 * [from_seq, to_seq) of the plan (history.h) applied in seq order; a RESTORE record
 * among them replaces everything before it by its root. Opening reads only the
 * records of that range (their headers are indexed in RAM: per chunk, the records
 * touching it), never the whole history; reads fetch base chunks from the chunk store
 * and patch them with record payloads read from the journal files. The image does not
 * change when the volume is written after it was opened. Used by export, clone,
 * restore and the FUSE view.
 *
 * Thread safety: point_read() and point_materialize() serialise on an internal lock;
 * one point may be shared by threads. All functions return 0 or a negative errno
 * (-ERANGE: the journal ends before to_seq, or a read past the end; -EIO/-EBADMSG: a
 * chunk or record could not be read intact).
 */
#ifndef CAIRN_POINT_H
#define CAIRN_POINT_H

#include <stddef.h>
#include <stdint.h>

#include "history.h"
#include "repo.h"

struct point;

/* Open the image of plan; the journal is read from <state_dir>/<volid>/journal. */
int point_open(struct chunk_store *cs, const char *state_dir, const struct point_plan *plan,
	       struct point **out);
/* Resolve "VOL[@SPEC]" (history_resolve, live_next 0) and open it. */
int volume_open_point(struct chunk_store *cs, const char *state_dir, const char *point,
		      struct point **out);
void point_close(struct point *p);

const struct point_plan *point_get_plan(const struct point *p);
/* Journal records replayed on top of the base (for figures and tests). */
uint64_t point_records(const struct point *p);

/* Read [off, off+len) of the image (multiples of 512). */
int point_read(struct point *p, uint64_t off, void *buf, size_t len);
/* 1 if chunk c of the image is certainly all zeros without reading data (a null base
 * id and no record touching it), else 0. */
int point_chunk_is_null(struct point *p, uint64_t c);
/* Store the image as a block map of its own (chunks the records changed are put;
 * everything else is shared with the base) and give its root. Needs a writable chunk
 * store; everything is durable (flushed) on return. O(records), not O(volume). */
int point_materialize(struct point *p, struct chunk_id *root_out);

#endif
