/* chunk_codec.h - chunk ids and the self-checking chunk record.
 *
 * A record is what a pack holds for one chunk: a fixed 72-byte header followed by the
 * stored payload (LZ4 or raw, then AES-256-GCM in an encrypted repository). Layout in
 * chunk_codec.c. Every function takes the repository's keys: NULL in a plain one.
 *
 * Contract: chunk_codec_decode() either returns exactly the plaintext that was encoded
 * under that id, or -EBADMSG; it never returns damaged data. Every function is
 * thread-safe and does no locking.
 */
#ifndef CAIRN_CHUNK_CODEC_H
#define CAIRN_CHUNK_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "aead.h"
#include "repo.h"

#define CODEC_REC_HDR_LEN 72u
/* Largest record: payloads are never larger than the plaintext (plus the GCM tag). */
#define CODEC_REC_MAX (CODEC_REC_HDR_LEN + CHUNK_SIZE_MAX + AEAD_TAG_LEN)

enum codec_kind { CODEC_RAW = 0, CODEC_LZ4 = 1 };
enum codec_cipher { CODEC_CIPHER_NONE = 0, CODEC_CIPHER_AES256GCM = 1 };

/* The id of len bytes of plaintext: SHA-256 (k NULL) or HMAC-SHA256 under k->id, or
 * the null id when all bytes are zero. */
int chunk_codec_id(const struct aead_keys *k, const void *data, size_t len, struct chunk_id *id);

/* Encode data (len <= CHUNK_SIZE_MAX) as a record into out (at least
 * CODEC_REC_HDR_LEN + len bytes). *rec_len gets the record length. */
/* Compression effort given to chunk_codec_encode: 0 = LZ4 fast, 3..12 = LZ4HC level.
 * The stored format is the same LZ4 block either way. */
#define CODEC_LEVEL_DEFAULT 3
int chunk_codec_encode(const struct aead_keys *k, enum chunk_kind kind, const struct chunk_id *id, const void *data,
		       size_t len, int level, void *out, size_t *rec_len);
/* As chunk_codec_encode, under the subkeys k of the volume key key_ref (vkey.h;
 * non-zero: a version 2 record naming it; 0: as chunk_codec_encode). */
int chunk_codec_encode_keyed(const struct aead_keys *k, uint32_t key_ref, enum chunk_kind kind,
			     const struct chunk_id *id, const void *data, size_t len, int level,
			     void *out, size_t *rec_len);

/* Parsed header of a record. */
struct codec_hdr {
	struct chunk_id id;
	uint8_t kind, codec, cipher;
	uint32_t plain_len, stored_len;
	uint32_t key_ref;   /* 0: the repository's keys; else a volume key (vkey.h) */
};

/* Check the header (magic, version, lengths) of rec, which has at least
 * CODEC_REC_HDR_LEN bytes. -EBADMSG if damaged. Does not check the payload. */
int chunk_codec_parse_hdr(const void *rec, struct codec_hdr *h);

/* Verify and decode a record of rec_len bytes whose id must be *expect. Writes the
 * plaintext to out (cap bytes) and its length to *plain_len. rec is scratch: an
 * encrypted payload is decrypted in place. A record whose cipher does not match the
 * repository's (k NULL or not) is -EBADMSG. k must be the keys the record's key_ref
 * names (chunk_codec_parse_hdr): the repository's, or a volume key's subkeys.
 * -EBADMSG: damaged or not that chunk. -ENOBUFS: cap too small. */
int chunk_codec_decode(const struct aead_keys *k, void *rec, size_t rec_len,
		       const struct chunk_id *expect, void *out, size_t cap, size_t *plain_len);

#endif
