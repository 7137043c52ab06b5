/* keyring.c - key slot objects "keys/<32 hex slot id>" (see keyring.h).
 *
 * Layout, KEYRING_SLOT_LEN = 136 bytes, integers little-endian:
 *   off len  field
 *     0   8  magic       "CAIRNKEY"
 *     8   4  version     1
 *    12   4  kdf         1 scrypt (password), 2 raw (32-byte key file used as the KEK)
 *    16   8  created     ns since the epoch
 *    24   1  log2_n      scrypt N = 2^log2_n (zero for raw)
 *    25   3  reserved    zero
 *    28   4  r           scrypt r
 *    32   4  p           scrypt p
 *    36  32  salt        random
 *    68  12  nonce       AES-256-GCM nonce
 *    80  32  wrapped     the master key, encrypted under the KEK
 *   112  16  tag         GCM tag; aad = "cairn-key:<repo id hex>:<slot id hex>"
 *   128   8  checksum    XXH3_64bits of bytes [0, 128): damage is told apart from a
 *                        wrong password
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <xxhash.h>

#include "keyring.h"
#include "le.h"
#include "util.h"

static const uint8_t slot_magic[8] = { 'C', 'A', 'I', 'R', 'N', 'K', 'E', 'Y' };
#define SLOT_VERSION 1
#define KDF_SCRYPT 1
#define KDF_RAW 2

static void slot_aad(const char *repo_id_hex, const char *slot_hex, char *out, size_t len)
{
	snprintf(out, len, "cairn-key:%s:%s", repo_id_hex, slot_hex);
}

static int kek_of(const struct repo_secret *s, uint32_t kdf, unsigned log2_n, uint32_t r,
		  uint32_t p, const uint8_t salt[32], uint8_t kek[AEAD_KEY_LEN])
{
	if (kdf == KDF_RAW) {
		if (!s->raw_key)
			return -EKEYREJECTED;
		memcpy(kek, s->raw_key, AEAD_KEY_LEN);
		return 0;
	}
	if (kdf != KDF_SCRYPT || !s->password || log2_n < 10 || log2_n > 24 || r == 0 ||
	    r > 64 || p == 0 || p > 16)
		return s->password ? -EBADMSG : -EKEYREJECTED;
	if (EVP_PBE_scrypt(s->password, s->password_len, salt, 32, (uint64_t)1 << log2_n, r, p,
			   (uint64_t)1 << 31, kek, AEAD_KEY_LEN) != 1)
		return -ENOMEM;
	return 0;
}

int keyring_slot_make(const char *repo_id_hex, const char *slot_hex,
		      const uint8_t master[AEAD_KEY_LEN], const struct repo_secret *s,
		      uint8_t out[KEYRING_SLOT_LEN])
{
	uint8_t kek[AEAD_KEY_LEN];
	uint32_t kdf = s->raw_key ? KDF_RAW : KDF_SCRYPT;
	char aad[100];
	int rc;

	if (!s->raw_key && !s->password)
		return -ENOKEY;
	memset(out, 0, KEYRING_SLOT_LEN);
	memcpy(out, slot_magic, 8);
	le_put32(out + 8, SLOT_VERSION);
	le_put32(out + 12, kdf);
	le_put64(out + 16, util_now_ns());
	if (kdf == KDF_SCRYPT) {
		out[24] = KEYRING_LOG2_N;
		le_put32(out + 28, KEYRING_R);
		le_put32(out + 32, KEYRING_P);
	}
	rc = util_random(out + 36, 32);
	if (rc)
		return rc;
	rc = kek_of(s, kdf, out[24], le_get32(out + 28), le_get32(out + 32), out + 36, kek);
	if (rc)
		goto out_wipe;
	slot_aad(repo_id_hex, slot_hex, aad, sizeof(aad));
	rc = aead_seal(kek, aad, strlen(aad), master, AEAD_KEY_LEN, out + 80, out + 68, out + 112);
	if (rc)
		goto out_wipe;
	le_put64(out + 128, XXH3_64bits(out, 128));
out_wipe:
	OPENSSL_cleanse(kek, sizeof(kek));
	return rc;
}

int keyring_slot_parse(const void *obj, size_t len, struct repo_key_info *info)
{
	const uint8_t *b = obj;

	if (len != KEYRING_SLOT_LEN || memcmp(b, slot_magic, 8) != 0 ||
	    le_get32(b + 8) != SLOT_VERSION || XXH3_64bits(b, 128) != le_get64(b + 128))
		return -EBADMSG;
	memset(info, 0, sizeof(*info));
	info->kind = le_get32(b + 12) == KDF_RAW ? "key-file" : "password";
	info->created_ns = le_get64(b + 16);
	info->scrypt_log2_n = b[24];
	info->scrypt_r = le_get32(b + 28);
	info->scrypt_p = le_get32(b + 32);
	return 0;
}

int keyring_slot_unwrap(const char *repo_id_hex, const char *slot_hex, const void *obj,
			size_t len, const struct repo_secret *s, uint8_t master[AEAD_KEY_LEN])
{
	const uint8_t *b = obj;
	struct repo_key_info info;
	uint8_t kek[AEAD_KEY_LEN];
	char aad[100];
	int rc;

	rc = keyring_slot_parse(obj, len, &info);
	if (rc)
		return rc;
	rc = kek_of(s, le_get32(b + 12), b[24], le_get32(b + 28), le_get32(b + 32), b + 36, kek);
	if (rc)
		goto out_wipe;
	slot_aad(repo_id_hex, slot_hex, aad, sizeof(aad));
	rc = aead_open(kek, aad, strlen(aad), b + 80, AEAD_KEY_LEN, master, b + 68, b + 112);
	if (rc == -EBADMSG)
		rc = -EKEYREJECTED; /* the checksum held: the bytes are sound, the secret is not */
out_wipe:
	OPENSSL_cleanse(kek, sizeof(kek));
	return rc;
}
