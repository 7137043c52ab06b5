/* volume_map.c - provisioning queries of an open volume (volume_map_status, volume.h):
 * which chunks hold data and which are deallocated, for SCSI GET LBA STATUS.
 *
 * A chunk is deallocated when nothing is stored for it: its block-map id is null (a null
 * subtree covers a whole run at once) and its unfolded writes in the overlay, if any,
 * are all zeros (UNMAP, WRITE SAME of zeros, or zero data, which folding stores as the
 * null id too); or when the overlay covers the whole chunk with zeros, whatever the map
 * holds (the next fold stores the null id). Every other chunk is mapped. So a
 * deallocated chunk always reads as zeros (LBPRZ = 1), and the answer is exact at chunk
 * granularity: a chunk is the unit the repository stores or does not store.
 *
 * Locking: the overlay and the map are read together under the volume's overlay lock
 * (a fold changes both under it); map nodes that are not in memory are loaded outside
 * it and the step is retried, as volume_read does.
 */
#include <errno.h>

#include "blockmap.h"
#include "overlay.h"
#include "util.h"
#include "volume.h"

/* Chunks examined by one query before it answers with the run found so far. */
#define SCAN_MAX 16384u

/* 1 if the valid sectors of e hold a non-zero byte. */
static int entry_has_data(const struct overlay *ov, const struct overlay_entry *e)
{
	unsigned sectors = overlay_chunk_size(ov) / OVERLAY_SECTOR;

	for (unsigned s = 0; s < sectors; s++)
		if ((e->bitmap[s / 64] >> (s % 64)) & 1)
			if (!util_is_zero((const char *)e->buf + (size_t)s * OVERLAY_SECTOR,
					  OVERLAY_SECTOR))
				return 1;
	return 0;
}

/* State of chunk c and how many chunks from c (1..limit) are known to share it.
 * Caller holds *olock when there is an overlay. -EAGAIN: a map node must be loaded. */
static int chunk_state(const struct volume_internals *vi, uint64_t c, uint64_t limit,
		       int *mapped, uint64_t *n)
{
	struct overlay_entry *e = vi->ov ? overlay_find(vi->ov, c) : NULL;
	struct chunk_id id;
	uint64_t span, first;
	int ret;

	ret = blockmap_lookup_span(vi->bm, c, 0, &id, &span);
	if (ret)
		return ret;
	*n = 1;
	if (e && overlay_full(vi->ov, e)) {
		*mapped = entry_has_data(vi->ov, e);
		return 0;
	}
	if (!chunk_id_is_null(&id)) {
		*mapped = 1;
		return 0;
	}
	if (e && entry_has_data(vi->ov, e)) {
		*mapped = 1;
		return 0;
	}
	*mapped = 0;
	if (span > limit)
		span = limit;
	if (span <= 1 || !vi->ov)
		goto out_span;
	/* The run of null map entries ends early at the first chunk with unfolded data. */
	first = c + span;
	if (span <= overlay_count(vi->ov)) {
		for (uint64_t k = c + 1; k < c + span; k++) {
			e = overlay_find(vi->ov, k);
			if (e && entry_has_data(vi->ov, e)) {
				first = k;
				break;
			}
		}
	} else {
		for (e = overlay_oldest(vi->ov); e; e = overlay_younger(e))
			if (e->chunk > c && e->chunk < first && entry_has_data(vi->ov, e))
				first = e->chunk;
	}
	span = first - c;
out_span:
	*n = span;
	return 0;
}

int volume_map_status(struct volume *v, uint64_t off, uint64_t len, uint64_t *run, int *mapped)
{
	const struct volume_info *info = volume_get_info(v);
	struct volume_internals vi;
	uint64_t c, c_end, scanned = 0, end;
	int state = -1;

	if (!len || off % VOLUME_SECTOR || len % VOLUME_SECTOR)
		return -EINVAL;
	if (off >= info->size || len > info->size - off)
		return -ERANGE;
	volume_get_internals(v, &vi);
	end = off + len;
	c = off >> vi.cshift;
	c_end = ((end - 1) >> vi.cshift) + 1;
	while (c < c_end && scanned < SCAN_MAX) {
		struct chunk_id id;
		uint64_t n, span;
		int m, ret;

		if (vi.ov)
			pthread_mutex_lock(vi.olock);
		ret = chunk_state(&vi, c, c_end - c, &m, &n);
		if (vi.ov)
			pthread_mutex_unlock(vi.olock);
		if (ret == -EAGAIN) {
			ret = blockmap_lookup_span(vi.bm, c, 1, &id, &span);
			if (ret)
				return ret;
			continue;
		}
		if (ret)
			return ret;
		if (state < 0)
			state = m;
		else if (m != state)
			break;
		c += n;
		scanned += n > 1 ? 1 : n;
	}
	*mapped = state;
	end = MIN(end, c << vi.cshift);
	*run = end - off;
	return 0;
}
