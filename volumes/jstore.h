/* jstore.h - sealed journal segments kept in the repository, so that a copy of the
 * repository keeps the point-in-time history of its volumes, not only their snapshots.
 *
 * Metadata key "journal/<volid>/<016x first>.<016x next>.<016x created_ns>": the
 * segment holding records [first, next), started at created_ns (wall clock). The
 * content is the segment file, "thin": the whole chunks of data its WRITE records carry
 * are named by chunk id (the chunks the volume's folds store anyway, so history is not
 * stored twice), the rest compressed with LZ4 (layout at the top of jstore.c; the
 * file's own format, header with magic, version and XXH3 and records hash-chained with
 * XXH3, is at the top of journal.c), stored like every metadata object (checksummed,
 * and AES-256-GCM encrypted in an encrypted repository). gc keeps the chunks a stored
 * segment names (jstore_walk).
 * A segment is written once, after it is sealed, and deleted by retention. Its local
 * copy goes earlier once it is stored (volume.c keeps only the newest 256 MiB of stored
 * history in the state directory, journal_trim). Readers fetch the ones their state
 * directory lacks into a cache directory (journal_view's second directory) and read
 * them like local segments.
 *
 * All functions return 0 or a negative errno.
 */
#ifndef CAIRN_JSTORE_H
#define CAIRN_JSTORE_H

#include <stdint.h>

#include "journal.h"
#include "repo.h"

struct jstore_seg {
	uint64_t first, next;
	uint64_t created_ns;
	uint64_t bytes;
};

/* "<state_dir>/<volid>/jcache": where fetched segments are kept. */
void jstore_cache_dir(const char *state_dir, const char *volid, char *buf, size_t len);
/* The stored segments of volume volid, by first seq; *out malloc'd (NULL if none). */
int jstore_list(struct chunk_store *cs, const char *volid, struct jstore_seg **out,
		unsigned *n);
/* Chunk ids the volume's folds computed, a hint that spares hashing the data again:
 * lookup gives 1 with the id and the XXH3-64 of the content of chunk number chunk as
 * record seq wrote it whole, 0 when it does not know. A hint is used only when the
 * XXH3-64 of the record's bytes matches and cs->ops->ref finds the chunk stored (or it
 * is the null id and the bytes are zeros). Contract: a chunk the hint names is durable
 * in the store already (volume.c stores a segment only once a checkpoint, which flushes
 * the store, covers its records), so jstore_put flushes only for the chunks it puts. */
struct jstore_known {
	int (*lookup)(void *arg, uint64_t seq, uint64_t chunk, struct chunk_id *id,
		      uint64_t *xxh);
	void *arg;
};
/* Store sealed segment s of the journal directory jdir (no-op if stored already). The
 * whole chunk_size chunks of its WRITE data are put into cs (under the key cs puts
 * volume data with: the volume's own store) and flushed first, or referenced (ref)
 * when known names them; chunk_size 0 stores every byte in the object. known may be
 * NULL. */
int jstore_put(struct chunk_store *cs, const char *volid, const char *jdir,
	       const struct journal_seginfo *s, uint32_t chunk_size,
	       const struct jstore_known *known);
/* Walk stored segment s without fetching it: rec_cb gets every record (seg_first and
 * rec_pos as journal_scan gives them; payload NULL for a WRITE whose data is named by
 * chunk id: only COPY, RESTORE and the like are whole), ref_cb every chunk id it names
 * for its data. Records are not hash-checked (that needs the chunks: fetch does it);
 * the object itself is authenticated by the repository. A non-zero callback return
 * stops the walk and is returned; -EBADMSG if the object is damaged. */
int jstore_walk(struct chunk_store *cs, const char *volid, const struct jstore_seg *s,
		journal_scan_cb rec_cb, int (*ref_cb)(void *arg, const struct chunk_id *id),
		void *arg);
/* Read stored segment s: 0 when the object is intact, -EBADMSG when damaged (e.g. an
 * upload cut by a crash, on a store that keeps partial objects). Its chunks are not
 * read. */
int jstore_verify(struct chunk_store *cs, const char *volid, const struct jstore_seg *s);
/* Delete stored segment s. */
int jstore_del(struct chunk_store *cs, const char *volid, const struct jstore_seg *s);
/* Make the stored segments holding records in [from, to) readable through v: those no
 * directory of v has are fetched into v->dir[1] (written to a temporary name, checked,
 * renamed); copies there of segments the repository no longer holds are deleted, and the
 * least recently used others beyond JSTORE_CACHE_MAX (jstore_cache_trim). With by_time,
 * [from, to) is ignored and the segments that a time lookup of t_ns needs are fetched
 * instead (the newest started at or before t_ns, and the next). */
int jstore_prepare(struct chunk_store *cs, const char *volid, const struct journal_view *v,
		   uint64_t from, uint64_t to, int by_time, uint64_t t_ns);
/* Fetched copies a cache directory keeps: beyond this, jstore_prepare deletes the least
 * recently used ones it does not need itself. */
#define JSTORE_CACHE_MAX (1ull << 30)
/* Delete the least recently used (oldest mtime: a fetch writes it, jstore_prepare
 * touches what it uses) fetched copies in cache_dir, but none of the npinned segments
 * pinned, until the copies take at most max_bytes. A reader in another process that
 * listed a copy just deleted passes over its point again (point.c), fetching it. */
int jstore_cache_trim(const char *cache_dir, uint64_t max_bytes, const struct jstore_seg *pinned,
		      unsigned npinned);
/* Retention: delete the stored segments whose records all lie below below and whose
 * successor was started before before_ns, and their fetched copies in cache_dir (may
 * be NULL). The successor of the newest stored one is the live journal's segment
 * starting at tail_first (started at tail_created_ns), when it starts where it ends.
 * A segment whose successor is not stored goes on below alone (below is the base of
 * the oldest point retention keeps, so its records are older than the window).
 * *kept_first: the first seq of the oldest stored segment left (UINT64_MAX: none). */
int jstore_expire(struct chunk_store *cs, const char *volid, uint64_t below,
		  uint64_t before_ns, const char *cache_dir, uint64_t tail_first,
		  uint64_t tail_created_ns, uint64_t *kept_first);

#endif
