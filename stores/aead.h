/* aead.h - the repository's cryptography: AES-256-GCM, HMAC-SHA256 chunk ids, HKDF
 * subkeys, and the sealed-object envelope.
 *
 * Keys: a random 256-bit master key (wrapped by key slots, keyring.c) gives three
 * subkeys by HKDF-SHA256 (salt = the repository id, info = "cairn id" / "cairn data" /
 * "cairn meta"): ids (HMAC key of chunk ids), data (chunk payloads), meta (pack
 * trailers, index segments, metadata objects). A volume with a key of its own (vkey.h)
 * has its data chunks' ids and payloads under subkeys of that key instead.
 *
 * Every function is thread-safe; the cipher and MAC contexts are per thread (no
 * allocation per call once a thread has made its own). All return 0 or a negative
 * errno; -EBADMSG when authentication fails.
 */
#ifndef CAIRN_AEAD_H
#define CAIRN_AEAD_H

#include <stddef.h>
#include <stdint.h>

#define AEAD_KEY_LEN 32
#define AEAD_NONCE_LEN 12
#define AEAD_TAG_LEN 16
/* Sealed-object envelope: magic, nonce, ciphertext, tag. */
#define AEAD_ENV_MAGIC "CAIRNENC"
#define AEAD_ENV_OVERHEAD (8 + AEAD_NONCE_LEN + AEAD_TAG_LEN)

struct aead_keys {
	uint8_t id[AEAD_KEY_LEN];   /* HMAC-SHA256 key of chunk ids */
	uint8_t data[AEAD_KEY_LEN]; /* AES-256-GCM key of chunk payloads */
	uint8_t meta[AEAD_KEY_LEN]; /* AES-256-GCM key of trailers, index segments, meta objects */
};

/* Subkeys of master for the repository whose 16-byte id is repo_id. */
int aead_derive(const uint8_t master[AEAD_KEY_LEN], const uint8_t repo_id[16], struct aead_keys *k);
/* Subkeys of a volume key (an own-key volume, vkey.h): HKDF-SHA256 of vkey, salt = the
 * repository id, info = "cairn volume id" / "cairn volume data" / "cairn volume meta"
 * (meta: reserved, unused). */
int aead_derive_volume(const uint8_t vkey[AEAD_KEY_LEN], const uint8_t repo_id[16],
		       struct aead_keys *k);
/* Encrypt len bytes of in to out (out may equal in) under key with a fresh random
 * nonce (written to nonce) and aad authenticated; the tag goes to tag. */
int aead_seal(const uint8_t key[AEAD_KEY_LEN], const void *aad, size_t aad_len, const void *in,
	      size_t len, void *out, uint8_t nonce[AEAD_NONCE_LEN], uint8_t tag[AEAD_TAG_LEN]);
/* Decrypt and verify (out may equal in); -EBADMSG when anything was changed. */
int aead_open(const uint8_t key[AEAD_KEY_LEN], const void *aad, size_t aad_len, const void *in,
	      size_t len, void *out, const uint8_t nonce[AEAD_NONCE_LEN],
	      const uint8_t tag[AEAD_TAG_LEN]);
/* HMAC-SHA256 of data under key. */
int aead_hmac(const uint8_t key[AEAD_KEY_LEN], const void *data, size_t len, uint8_t out[32]);

/* Sealed object (index segments, metadata objects, key-slot-independent blobs):
 *   off len  field
 *     0   8  magic   "CAIRNENC"
 *     8  12  nonce
 *    20   n  ciphertext of the n-byte plaintext
 *  20+n  16  GCM tag (the aad - the object's key name - is authenticated, not stored)
 * Both return a malloc'd buffer. */
int aead_seal_object(const uint8_t key[AEAD_KEY_LEN], const char *aad, const void *in,
		     size_t len, void **out, size_t *out_len);
int aead_open_object(const uint8_t key[AEAD_KEY_LEN], const char *aad, const void *in,
		     size_t len, void **out, size_t *out_len);

#endif
