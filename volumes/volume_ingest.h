/* volume_ingest.h - bulk ingest of whole chunks into a volume (cairn import).
 *
 * An import does not go through the write path: its data never enters the journal or
 * the overlay. Worker threads hash, compress and encrypt whole chunks into the chunk
 * store in parallel (the volume's store: its keys, its dedup); every segment of
 * INGEST_SEGMENT_BYTES the store is flushed, and only then are the segment's chunk ids
 * appended to the volume's journal as COPY records (volume_locked_share), so a record
 * never names a chunk that a crash could lose. The history stays exact: a point in time
 * inside an import sees the segments committed before it, and a COPY record replays
 * like any other. A crash during an ingest leaves the volume as of the last committed
 * segment; the chunks of an uncommitted one are garbage for gc.
 *
 * Use (one producer thread):
 *   volume_ingest_open -> for each chunk: volume_ingest_buffer, fill it whole,
 *   volume_ingest_submit (chunk numbers strictly increasing; a gap commits the segment
 *   so far) -> volume_ingest_finish (commits, stops the workers, frees; its return is
 *   the first error of any step). A buffer taken and not submitted goes back with
 *   volume_ingest_release. Chunks must lie wholly inside the volume. Writes to the
 *   volume from elsewhere while an ingest runs are ordered as the records fall.
 * All functions return 0 or a negative errno; after an error every call returns it.
 */
#ifndef CAIRN_VOLUME_INGEST_H
#define CAIRN_VOLUME_INGEST_H

#include <stdint.h>

#include "volume.h"

#define INGEST_SEGMENT_BYTES (256ull << 20)

struct volume_ingest;

/* Start an ingest into v (open for IO, writable) with threads workers (0: one per
 * online CPU, at most 8). */
int volume_ingest_open(struct volume *v, unsigned threads, struct volume_ingest **out);
/* A buffer of the volume's chunk size to fill; waits while all are in use. NULL only
 * after an error (volume_ingest_finish then returns it). */
uint8_t *volume_ingest_buffer(struct volume_ingest *g);
/* Queue chunk c (chunk number) held whole in buf (from volume_ingest_buffer; it goes
 * back to the pool once stored). All-zero chunks are unmapped, not stored. */
int volume_ingest_submit(struct volume_ingest *g, uint64_t c, uint8_t *buf);
/* Give back a buffer that was not submitted. */
void volume_ingest_release(struct volume_ingest *g, uint8_t *buf);
/* Commit what was submitted (flush, COPY records), stop and free. *stored and *zero
 * (may be NULL) get the chunks stored (new or deduplicated) and the all-zero ones. */
int volume_ingest_finish(struct volume_ingest *g, uint64_t *stored, uint64_t *zero);

#endif
