/* volume_copy.c - EXTENDED COPY in the volume engine: volume_copy() (volume.h).
 *
 * The range is cut into pieces, done in an order that never reads what an earlier
 * piece wrote (ascending when the destination lies below the source, descending when
 * it lies above and overlaps), so overlapping ranges copy like memmove:
 *   - chunks whole and aligned on both sides (the offsets agree modulo the chunk size):
 *     the source's chunk ids (volume_locked_resolve: unfolded writes folded first, the
 *     ids durable in the store) go into one COPY journal record per volume_share_max()
 *     chunks, applied to the destination's map (volume_locked_share). No chunk is read,
 *     decoded or stored; the record is self-contained (ids, not a source range), so
 *     replay and every point in time see exactly the copied chunks whatever happened
 *     to the source afterwards;
 *   - the rest (an unaligned head and tail, or all of it when the offsets disagree):
 *     read from the source and appended as WRITE records, BOUNCE bytes at a time; so
 *     are whole chunks whose ids cannot be made durable now (the store failing a fold
 *     or a flush): the copy is then slower, never wrong or refused.
 * Two volumes whose data is under different keys (different chunk stores: an own-key
 * volume, vkey.h, and a volume not sharing its key) share nothing: all of the range is
 * read and written, so each volume's chunks stay under its own key.
 * Both volumes' write orders are held for the whole call (the lower address first, so
 * two copies in opposite directions cannot deadlock): no other write to either volume
 * is ordered inside the copy, and every piece reads the source as it was at the start.
 * Nothing here has an on-disk format of its own (the COPY record is in journal.c).
 */
#include "volume.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define BOUNCE (1u << 20)

struct copy_job {
	struct volume *v, *sv;
	uint64_t seq;          /* the last record appended */
	uint8_t *buf;          /* BOUNCE bytes, for read+write pieces */
	struct chunk_id *ids;  /* volume_share_max() ids */
	uint32_t cs;           /* chunk size */
	unsigned cshift;
	int backward;
};

/* Read and write [src, src+len) -> dst in BOUNCE pieces, in the job's direction. */
static int copy_bytes(struct copy_job *j, uint64_t dst, uint64_t src, uint64_t len)
{
	uint64_t done = 0;
	int ret = 0;

	while (!ret && done < len) {
		uint32_t n = (uint32_t)MIN(len - done, (uint64_t)BOUNCE);
		uint64_t at = j->backward ? len - done - n : done;

		ret = volume_read(j->sv, src + at, j->buf, n);
		if (!ret)
			ret = volume_locked_write(j->v, dst + at, j->buf, n, &j->seq);
		done += n;
	}
	return ret;
}

/* Share whole chunks: [src, src+len) -> dst, both chunk aligned, len whole chunks. */
static int copy_chunks(struct copy_job *j, uint64_t dst, uint64_t src, uint64_t len)
{
	uint64_t total = len >> j->cshift, done = 0;
	uint32_t max = volume_share_max(j->v);
	int ret = 0;

	while (!ret && done < total) {
		uint32_t n = (uint32_t)MIN(total - done, (uint64_t)max);
		uint64_t at = j->backward ? total - done - n : done;
		uint64_t sc = (src >> j->cshift) + at, dc = (dst >> j->cshift) + at;

		ret = volume_locked_resolve(j->sv, sc, n, j->ids);
		if (!ret)
			ret = volume_locked_share(j->v, dc, n, j->ids, j->sv, sc << j->cshift,
						  &j->seq);
		else if (ret != -ENOMEM) /* the store cannot fold or flush now (an outage):
					  * the data itself is still readable */
			ret = copy_bytes(j, dc << j->cshift, sc << j->cshift, (uint64_t)n << j->cshift);
		done += n;
	}
	return ret;
}

static int check_range(const struct volume_info *vi, uint64_t off, uint64_t len)
{
	if (off % VOLUME_SECTOR || len % VOLUME_SECTOR)
		return -EINVAL;
	if (off > vi->size || len > vi->size - off)
		return -ERANGE;
	return 0;
}

int volume_copy(struct volume *v, uint64_t dst, struct volume *sv, uint64_t src, uint64_t len,
		int fua)
{
	const struct volume_info *vi = volume_get_info(v), *si = volume_get_info(sv);
	struct volume_internals vin, sin;
	struct copy_job j = { .v = v, .sv = sv };
	struct volume *first = v, *second = NULL;
	uint64_t cmask, head = len, mid = 0, tail = 0;
	int ret, share;

	ret = check_range(vi, dst, len);
	if (!ret)
		ret = check_range(si, src, len);
	if (ret)
		return ret;
	if (!volume_state_dir(v))
		return -EROFS;
	volume_get_internals(v, &vin);
	volume_get_internals(sv, &sin);
	if (sv != v && vi->chunk_size != si->chunk_size)
		return -EXDEV;
	/* chunks are shared only within one store: volumes whose data is under different
	 * keys (an own-key volume, vkey.h) never hold each other's chunk ids, else a
	 * CRYPTO ERASE of one would not erase what it copied, or would erase another's */
	share = sv == v || (vin.cs->ops == sin.cs->ops && vin.cs->ctx == sin.cs->ctx);
	if (!len || (sv == v && dst == src))
		return 0;
	j.cs = vi->chunk_size;
	j.cshift = vin.cshift;
	cmask = j.cs - 1;
	j.backward = sv == v && dst > src && dst < src + len;
	if (share && !((dst ^ src) & cmask)) {
		head = MIN(len, (j.cs - (dst & cmask)) & cmask);
		mid = (len - head) & ~cmask;
		tail = len - head - mid;
	}
	j.buf = malloc(BOUNCE);
	j.ids = calloc(volume_share_max(v), sizeof(*j.ids));
	if (!j.buf || !j.ids) {
		ret = -ENOMEM;
		goto out_free;
	}
	if (sv != v) {
		first = (uintptr_t)v < (uintptr_t)sv ? v : sv;
		second = first == v ? sv : v;
	}
	volume_order_lock(first);
	if (second)
		volume_order_lock(second);
	if (!j.backward) {
		ret = copy_bytes(&j, dst, src, head);
		if (!ret && mid)
			ret = copy_chunks(&j, dst + head, src + head, mid);
		if (!ret && tail)
			ret = copy_bytes(&j, dst + head + mid, src + head + mid, tail);
	} else {
		if (tail)
			ret = copy_bytes(&j, dst + head + mid, src + head + mid, tail);
		if (!ret && mid)
			ret = copy_chunks(&j, dst + head, src + head, mid);
		if (!ret)
			ret = copy_bytes(&j, dst, src, head);
	}
	if (second)
		volume_order_unlock(second);
	volume_order_unlock(first);
	if (!ret && fua)
		ret = volume_sync_to(v, j.seq);
out_free:
	free(j.ids);
	free(j.buf);
	return ret;
}
