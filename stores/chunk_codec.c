/* chunk_codec.c - chunk ids (SHA-256 / HMAC-SHA256) and chunk records (LZ4, then
 * AES-256-GCM when encrypted, + XXH3-64).
 *
 * Record layout (all integers little-endian), CODEC_REC_HDR_LEN = 72 bytes of header:
 *
 *   off len  field
 *     0   4  magic       "CHNK"
 *     4   1  version     1: under the repository's keys; 2: under a volume key (below)
 *     5   1  kind        enum chunk_kind: 1 data, 2 tree
 *     6   1  codec       0 raw, 1 LZ4 block (written by LZ4HC or LZ4 fast; one decoder)
 *     7   1  cipher      0 none; 1 AES-256-GCM (nonce below, 16-byte tag ends payload)
 *     8  32  id          chunk id (SHA-256 of the plaintext, or HMAC-SHA256 under the
 *                        id key when encrypted)
 *    40   4  plain_len   plaintext bytes, 1..CHUNK_SIZE_MAX
 *    44   4  stored_len  payload bytes that follow the header, <= plain_len (+16 when
 *                        encrypted: the GCM tag)
 *    48  12  nonce       fresh random per record when encrypted; zero otherwise
 *    60   4  key         version 1: reserved, zero. Version 2: the reference (vkey.h,
 *                        non-zero) of the volume key whose subkeys made the id (HMAC
 *                        under its id key) and the payload (AES-256-GCM under its data
 *                        key); cipher must be 1. Readers pick the keys by it, so check
 *                        and gc need no volume context, and a record copied verbatim
 *                        (gc repack) stays readable. Covered by the checksum; a wrong
 *                        reference fails authentication (-EBADMSG), never decodes.
 *    64   8  checksum    XXH3_64bits_withSeed(payload, stored_len, XXH3_64bits(header[0..64)))
 *    72   stored_len     payload
 *
 * The checksum covers the header and the payload, so any flipped bit in a record is
 * -EBADMSG on every read. Encrypted: the payload is the LZ4 (or raw) bytes encrypted
 * with AES-256-GCM under the data key, with header bytes [0, 48) - magic to
 * stored_len, so the chunk id too - as associated data, then the tag. The payload is LZ4 only when that saves at least 1/16 of the
 * plaintext; otherwise it is the raw plaintext.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <lz4hc.h>
#include <openssl/evp.h>
#include <xxhash.h>

#include "chunk_codec.h"
#include "le.h"
#include "util.h"

static const uint8_t rec_magic[4] = { 'C', 'H', 'N', 'K' };
#define REC_VERSION 1        /* repository keys */
#define REC_VERSION_KEYED 2  /* a volume key: the key reference at offset 60 */

static pthread_once_t sha_once = PTHREAD_ONCE_INIT;
static pthread_key_t sha_key;
static EVP_MD *sha256_md;

static void sha_ctx_free(void *p)
{
	EVP_MD_CTX_free(p);
}

static void sha_init(void)
{
	/* fetched once: implicit fetches (EVP_sha256()) take a global lock per call */
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	pthread_key_create(&sha_key, sha_ctx_free);
}

int chunk_codec_id(const struct aead_keys *k, const void *data, size_t len, struct chunk_id *id)
{
	EVP_MD_CTX *ctx;
	unsigned int n = 0;

	if (util_is_zero(data, len)) {
		memset(id, 0, sizeof(*id));
		return 0;
	}
	if (k)
		return aead_hmac(k->id, data, len, id->b);
	pthread_once(&sha_once, sha_init);
	if (!sha256_md)
		return -EIO;
	ctx = pthread_getspecific(sha_key);
	if (!ctx) {
		ctx = EVP_MD_CTX_new();
		if (!ctx)
			return -ENOMEM;
		if (pthread_setspecific(sha_key, ctx)) {
			EVP_MD_CTX_free(ctx);
			return -ENOMEM;
		}
	}
	if (EVP_DigestInit_ex2(ctx, sha256_md, NULL) != 1 ||
	    EVP_DigestUpdate(ctx, data, len) != 1 ||
	    EVP_DigestFinal_ex(ctx, id->b, &n) != 1 || n != CHUNK_ID_LEN)
		return -EIO;
	return 0;
}

static uint64_t rec_checksum(const uint8_t *hdr, const uint8_t *payload, size_t stored_len)
{
	return XXH3_64bits_withSeed(payload, stored_len, XXH3_64bits(hdr, 64));
}

/* Compression effort: 0 = LZ4 fast, 3..12 = LZ4HC level. LZ4HC at level 3 stores a
 * filesystem image ~11% smaller than LZ4 fast on 64 KiB chunks (each chunk starts with
 * an empty window, which costs LZ4 fast most), at ~1/3 of its speed. */
static pthread_key_t hc_key;   /* LZ4HC state, one per thread, freed at thread exit */
static pthread_once_t hc_once = PTHREAD_ONCE_INIT;

static void hc_key_init(void)
{
	pthread_key_create(&hc_key, free);
}

/* LZ4 fast first: it is cheap, and it tells whether LZ4HC can pay. A chunk it cannot
 * shrink by 1/16 is stored raw, one it shrinks by less than 1/8 keeps the fast result
 * (already-compressed data: LZ4HC gains little there and costs most); the rest is
 * compressed again with LZ4HC. */
static int compress(const void *data, void *dst, int len, int max_c, int level)
{
	int c = LZ4_compress_default(data, dst, len, max_c);
	void *hc_state;
	int h;

	if (level < LZ4HC_CLEVEL_MIN || c <= 0 || c > len - len / 8)
		return c;
	pthread_once(&hc_once, hc_key_init);
	hc_state = pthread_getspecific(hc_key);
	if (!hc_state) {
		hc_state = malloc((size_t)LZ4_sizeofStateHC());
		if (!hc_state || pthread_setspecific(hc_key, hc_state)) {
			free(hc_state);
			return LZ4_compress_default(data, dst, len, max_c);
		}
	}
	h = LZ4_compress_HC_extStateHC(hc_state, data, dst, len, c, level);
	/* h == 0: LZ4HC did not fit in the fast result's size; redo the fast one */
	return h > 0 ? h : LZ4_compress_default(data, dst, len, max_c);
}

int chunk_codec_encode(const struct aead_keys *k, enum chunk_kind kind, const struct chunk_id *id,
		       const void *data, size_t len, int level, void *out, size_t *rec_len)
{
	return chunk_codec_encode_keyed(k, 0, kind, id, data, len, level, out, rec_len);
}

int chunk_codec_encode_keyed(const struct aead_keys *k, uint32_t key_ref, enum chunk_kind kind,
			     const struct chunk_id *id, const void *data, size_t len, int level,
			     void *out, size_t *rec_len)
{
	uint8_t *h = out, *payload = h + CODEC_REC_HDR_LEN;
	int max_c, c, rc;
	uint8_t codec = CODEC_RAW;
	size_t stored = len;

	if (len == 0 || len > CHUNK_SIZE_MAX || (kind != CHUNK_DATA && kind != CHUNK_TREE) ||
	    (key_ref && !k))
		return -EINVAL;
	max_c = (int)(len - len / 16);
	c = compress(data, payload, (int)len, max_c, level);
	if (c > 0 && c <= max_c) {
		codec = CODEC_LZ4;
		stored = (size_t)c;
	} else {
		memcpy(payload, data, len);
	}
	memcpy(h, rec_magic, 4);
	h[4] = key_ref ? REC_VERSION_KEYED : REC_VERSION;
	h[5] = (uint8_t)kind;
	h[6] = codec;
	h[7] = k ? CODEC_CIPHER_AES256GCM : CODEC_CIPHER_NONE;
	memcpy(h + 8, id->b, CHUNK_ID_LEN);
	le_put32(h + 40, (uint32_t)len);
	le_put32(h + 44, (uint32_t)(stored + (k ? AEAD_TAG_LEN : 0)));
	memset(h + 48, 0, 16);
	le_put32(h + 60, key_ref);
	if (k) {
		rc = aead_seal(k->data, h, 48, payload, stored, payload, h + 48, payload + stored);
		if (rc)
			return rc;
		stored += AEAD_TAG_LEN;
	}
	le_put64(h + 64, rec_checksum(h, payload, stored));
	*rec_len = CODEC_REC_HDR_LEN + stored;
	return 0;
}

int chunk_codec_parse_hdr(const void *rec, struct codec_hdr *hd)
{
	const uint8_t *h = rec;

	if (memcmp(h, rec_magic, 4) != 0 || (h[4] != REC_VERSION && h[4] != REC_VERSION_KEYED))
		return -EBADMSG;
	hd->key_ref = h[4] == REC_VERSION_KEYED ? le_get32(h + 60) : 0;
	if (h[4] == REC_VERSION_KEYED && (!hd->key_ref || h[7] != CODEC_CIPHER_AES256GCM))
		return -EBADMSG;
	memcpy(hd->id.b, h + 8, CHUNK_ID_LEN);
	hd->kind = h[5];
	hd->codec = h[6];
	hd->cipher = h[7];
	hd->plain_len = le_get32(h + 40);
	hd->stored_len = le_get32(h + 44);
	uint32_t tag = hd->cipher == CODEC_CIPHER_AES256GCM ? AEAD_TAG_LEN : 0;
	if (hd->plain_len == 0 || hd->plain_len > CHUNK_SIZE_MAX ||
	    hd->stored_len > hd->plain_len + tag || hd->stored_len < tag ||
	    hd->cipher > CODEC_CIPHER_AES256GCM ||
	    (hd->codec == CODEC_RAW && hd->stored_len != hd->plain_len + tag) ||
	    (hd->kind != CHUNK_DATA && hd->kind != CHUNK_TREE))
		return -EBADMSG;
	return 0;
}

int chunk_codec_decode(const struct aead_keys *k, void *rec, size_t rec_len,
		       const struct chunk_id *expect, void *out, size_t cap, size_t *plain_len)
{
	uint8_t *h = rec, *payload = h + CODEC_REC_HDR_LEN;
	struct codec_hdr hd;
	uint32_t body;
	int rc, d;

	if (rec_len < CODEC_REC_HDR_LEN)
		return -EBADMSG;
	rc = chunk_codec_parse_hdr(rec, &hd);
	if (rc)
		return rc;
	if (rec_len != CODEC_REC_HDR_LEN + hd.stored_len ||
	    le_get64(h + 64) != rec_checksum(h, payload, hd.stored_len) ||
	    memcmp(hd.id.b, expect->b, CHUNK_ID_LEN) != 0)
		return -EBADMSG;
	if ((hd.cipher == CODEC_CIPHER_AES256GCM) != (k != NULL))
		return -EBADMSG;
	if (cap < hd.plain_len)
		return -ENOBUFS;
	body = hd.stored_len;
	if (k) {
		body -= AEAD_TAG_LEN;
		rc = aead_open(k->data, h, 48, payload, body, payload, h + 48, payload + body);
		if (rc)
			return rc;
	}
	switch (hd.codec) {
	case CODEC_RAW:
		memcpy(out, payload, hd.plain_len);
		break;
	case CODEC_LZ4:
		d = LZ4_decompress_safe((const char *)payload, out, (int)body, (int)hd.plain_len);
		if (d < 0 || (uint32_t)d != hd.plain_len)
			return -EBADMSG;
		break;
	default:
		return -EBADMSG;
	}
	*plain_len = hd.plain_len;
	return 0;
}
