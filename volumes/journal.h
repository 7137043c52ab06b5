/* journal.h - a volume's append-only, hash-chained record log (the future CDP log).
 *
 * The journal lives in one directory as segment files named "<016x first seq>.log"
 * (format at the top of journal.c). Records get consecutive seqs that are never
 * reused. journal_append() writes one record with one writev and no fsync;
 * journal_sync() makes records durable with a group commit (one fdatasync covers every
 * waiting thread). journal_open() verifies every segment and cuts a torn tail at the
 * first bad record.
 *
 * Thread safety: every function may be called concurrently, except that an iterator
 * is used by one thread at a time. All functions return 0 or a negative errno.
 */
#ifndef CAIRN_JOURNAL_H
#define CAIRN_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

enum journal_type {
	JOURNAL_WRITE = 1,      /* offset, length; payload = the data (length bytes) */
	JOURNAL_ZERO = 2,       /* offset, length; no payload: the range reads as zeros */
	JOURNAL_FLUSH = 3,      /* no range, no payload: a SYNCHRONIZE CACHE was asked */
	JOURNAL_MARK = 4,       /* payload = a user label (UTF-8, no NUL) */
	JOURNAL_CHECKPOINT = 5, /* offset = ckpt seq; payload = the 32-byte map root id */
	JOURNAL_RESTORE = 6,    /* no range; payload = the 32-byte map root id the volume was
				 * rolled back to: the state after it is that map, exactly */
	JOURNAL_COPY = 7,       /* offset, length: whole chunks; payload = struct journal_copy
				 * (layout in journal.c): each chunk of the range becomes the
				 * chunk id given for it (EXTENDED COPY by reference) */
};
#define JOURNAL_TYPE_LAST JOURNAL_COPY

/* A COPY record's payload: a 32-byte header, then count chunk ids of 32 bytes. */
#define JOURNAL_COPY_HDR 32u
#define JOURNAL_COPY_ID 32u
struct journal_copy {
	uint64_t src_offset;     /* bytes: where the source range began (in src_volid) */
	uint32_t chunk_size;     /* the volume's chunk size: offset, length are multiples */
	uint32_t count;          /* chunk ids: length / chunk_size */
	uint8_t src_volid[16];   /* the source volume (the journal's own for a copy within) */
	const uint8_t *ids;      /* count * JOURNAL_COPY_ID bytes, inside the record */
};

/* Bytes of a record before its payload (the payload of the record at file offset pos
 * starts at pos + JOURNAL_REC_HDR). */
#define JOURNAL_REC_HDR 48

/* Bytes after it (the record's hash), and of a segment file's header. */
#define JOURNAL_REC_TAIL 8
#define JOURNAL_SEG_HDR 64

#define JOURNAL_SEGMENT_DEFAULT (64ull << 20)
#define JOURNAL_SEGMENT_MIN (64ull << 10)

struct journal_rec {
	uint16_t type;
	uint64_t seq;
	uint64_t time_ns;      /* wall clock at append */
	uint64_t offset;       /* bytes */
	uint32_t length;       /* bytes */
	uint32_t payload_len;
	const void *payload;   /* valid until the next journal_iter_next() */
};

struct journal;
struct journal_iter;

/* Fill hdr (JOURNAL_COPY_HDR bytes) with c's header fields (c->ids is not used). */
void journal_copy_encode(uint8_t hdr[JOURNAL_COPY_HDR], const struct journal_copy *c);
/* Decode and check a COPY record (sizes, chunk-aligned range); -EBADMSG if malformed. */
int journal_copy_parse(const struct journal_rec *r, struct journal_copy *out);

/* Open (creating dir if needed) the journal in dir. volid (16 bytes) is stamped into
 * new segment headers. Existing segments are scanned and verified; the first bad record
 * cuts the tail (the file is truncated there, later segments deleted; logged at warn).
 * -EBADMSG (and nothing touched) if a segment header names another volume.
 * min_next_seq: the next record gets a seq >= this (a checkpoint may know of seqs the
 * journal lost). segment_bytes: rotate to a new segment past this size (0 = default). */
int journal_open(const char *dir, const uint8_t volid[16], uint64_t min_next_seq,
		 uint64_t segment_bytes, struct journal **out);
/* Sync and close. */
void journal_close(struct journal *j);

/* Append one record. payload_len may be 0 (payload NULL). *seq_out gets its seq.
 * The record is in the page cache on return, durable after journal_sync(seq). */
int journal_append(struct journal *j, uint16_t type, uint64_t offset, uint32_t length,
		   const void *payload, uint32_t payload_len, uint64_t *seq_out);
/* Every record with seq <= upto is durable on return (group commit). */
int journal_sync(struct journal *j, uint64_t upto);
/* Seal the active segment now (durable) and start a new one, when it holds records. */
int journal_seal(struct journal *j);
/* The same, only if the active segment was started before before_ns. */
int journal_seal_older(struct journal *j, uint64_t before_ns);

/* A sealed segment: its records are [first, next); it never changes again. */
struct journal_seginfo {
	uint64_t first, next;
	uint64_t created_ns;  /* from its header */
	uint64_t bytes;
};
/* First seq and start time of the active segment. */
void journal_active(struct journal *j, uint64_t *first, uint64_t *created_ns);
/* The sealed segments (every one but the active), oldest first; *out malloc'd. */
int journal_sealed(struct journal *j, struct journal_seginfo **out, unsigned *n);

/* Delete whole segments whose records all have seq < seq (never the active one). */
int journal_delete_before(struct journal *j, uint64_t seq);
/* Retention: delete whole segments whose records all have seq < seq and were all
 * appended before before_ns (wall clock), never the active one. */
int journal_delete_expired(struct journal *j, uint64_t seq, uint64_t before_ns);
/* The local journal as a bounded cache of the history stored in the repository: delete
 * the oldest whole segments whose records all have seq < seq while the journal holds
 * more than keep_bytes, never the active one. */
int journal_trim(struct journal *j, uint64_t seq, uint64_t keep_bytes);
/* Bytes of the segments holding records with seq >= seq (the unfolded tail). */
uint64_t journal_bytes_since(struct journal *j, uint64_t seq);

uint64_t journal_next_seq(struct journal *j);
/* Seq of the oldest record kept (== next seq when there is none). */
uint64_t journal_first_seq(struct journal *j);
uint64_t journal_bytes(struct journal *j);
/* Record bytes appended since the journal was opened (deletions do not lower it). */
uint64_t journal_appended(struct journal *j);
/* Segment files (>= 1; the last one is active). */
unsigned journal_segments(struct journal *j);
/* Largest payload a record may carry with this journal's segment size. */
uint32_t journal_max_payload(struct journal *j);

/* Iterate records with seq >= from, in order, up to the last record appended when the
 * iterator was opened. Records are re-verified (-EBADMSG on damage). */
int journal_iter_open(struct journal *j, uint64_t from, struct journal_iter **out);
/* 1 and *rec filled, 0 at the end, or a negative errno. */
int journal_iter_next(struct journal_iter *it, struct journal_rec *rec);
void journal_iter_close(struct journal_iter *it);

/* ---- read-only access to a journal (points in time) ----
 * A view is the union of the segment files of up to JOURNAL_VIEW_DIRS directories (the
 * volume's live journal, and a cache of sealed segments fetched from the repository);
 * a first seq present in several is read from the first directory that has it. These
 * functions never modify a directory and may run in any process while a writer
 * appends: a record that is being appended (or torn) simply ends the scan. */
#define JOURNAL_VIEW_DIRS 2
struct journal_view {
	const char *dir[JOURNAL_VIEW_DIRS]; /* NULL: unused */
};

/* Call cb for every record with seq >= from, in order, each verified (magic, seq,
 * chain, XXH3), starting at the segment that holds from (found by its name) and, in
 * it, at the indexed record nearest before from (at most 1 MiB of records read before
 * from, never the history before it). A later segment must continue the chain (its
 * prev hash is the last record's, or 0 for a journal started afresh) at or after the
 * seq where the previous one ended. cb gets the record (payload valid during the
 * call), the first seq of its segment and the record's file offset; a non-zero return
 * stops the scan. *end_out (may be NULL) gets the seq after the last record read.
 * -ENOENT if the view holds no segment. */
typedef int (*journal_scan_cb)(void *arg, const struct journal_rec *rec, uint64_t seg_first,
			       uint64_t rec_pos);
int journal_scan(const struct journal_view *v, uint64_t from, journal_scan_cb cb, void *arg,
		 uint64_t *end_out);
/* Call cb for every record of every segment of the view, each segment scanned on its
 * own from its first record to its end (or its first bad record), whatever lies between
 * segments: seq gaps, a chain that does not continue (journal_scan ends there), a
 * stale fetched copy of a segment retention has dropped. For walks that must see every
 * record kept anywhere (gc roots, check); a point's replay uses journal_scan. A
 * non-zero return from cb stops the walk. -ENOENT if the view holds no segment. */
int journal_scan_all(const struct journal_view *v, journal_scan_cb cb, void *arg);
/* A seq to scan from to find the first record newer than t_ns: in the newest segment
 * started at or before t_ns (the oldest segment when none was), the last indexed record
 * not newer than t_ns (else the segment's first seq). */
int journal_seek_time(const struct journal_view *v, uint64_t t_ns, uint64_t *seq_out);
/* What a view holds: first seq kept, its time, segments, bytes. */
struct journal_span {
	uint64_t first_seq;
	uint64_t first_time_ns;  /* of the first record (0 if none) */
	uint64_t last_first;     /* first seq of the newest segment */
	uint64_t prev_first;     /* of the one before it (== last_first if none) */
	unsigned segments;
	uint64_t bytes;
};
int journal_span(const struct journal_view *v, struct journal_span *out);
/* Open segment seg_first of the view read-only; returns an fd or a negative errno. */
int journal_segment_open(const struct journal_view *v, uint64_t seg_first);
/* Check that the segment file at path has a sound header for first seq first (and,
 * when volid is given, belongs to that volume). -EBADMSG if not. */
int journal_segment_verify(const char *path, uint64_t first, const uint8_t volid[16]);

/* ---- segment file images in memory (jstore.c stores and rebuilds them) ---- */
/* Decode the record header at p (avail bytes of a segment file image from there),
 * expected to carry seq seq: 1 and *rec filled (payload NULL: it follows the header,
 * payload_len bytes, then JOURNAL_REC_TAIL), 0 if it is no sound header. Checks what
 * needs no payload (magic, version, type, seq, sizes); not the hash. */
int journal_rec_peek(const void *p, size_t avail, uint64_t seq, struct journal_rec *rec);
/* Verify a whole segment file image of len bytes: its header (first seq first, and the
 * volume volid when given), then records back to back up to exactly len, each checked
 * as journal_scan does (magic, seq, chain, size, XXH3). 0, or -EBADMSG. */
int journal_segment_check_buf(const void *buf, size_t len, uint64_t first,
			      const uint8_t volid[16]);

#endif
