/* aead.c - AES-256-GCM, HMAC-SHA256 and HKDF through OpenSSL 3 (see aead.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "aead.h"
#include "util.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t cipher_key, mac_key;
static EVP_CIPHER *gcm;
static EVP_MAC *hmac;

static void cipher_ctx_free(void *p)
{
	EVP_CIPHER_CTX_free(p);
}

static void mac_ctx_free(void *p)
{
	EVP_MAC_CTX_free(p);
}

static void init_once(void)
{
	/* fetched once: implicit fetches take a global lock per call */
	gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	pthread_key_create(&cipher_key, cipher_ctx_free);
	pthread_key_create(&mac_key, mac_ctx_free);
}

static EVP_CIPHER_CTX *cipher_ctx(void)
{
	EVP_CIPHER_CTX *c;

	pthread_once(&once, init_once);
	if (!gcm)
		return NULL;
	c = pthread_getspecific(cipher_key);
	if (!c) {
		c = EVP_CIPHER_CTX_new();
		if (c && pthread_setspecific(cipher_key, c)) {
			EVP_CIPHER_CTX_free(c);
			c = NULL;
		}
	}
	return c;
}

int aead_seal(const uint8_t key[AEAD_KEY_LEN], const void *aad, size_t aad_len, const void *in,
	      size_t len, void *out, uint8_t nonce[AEAD_NONCE_LEN], uint8_t tag[AEAD_TAG_LEN])
{
	EVP_CIPHER_CTX *c = cipher_ctx();
	int n = 0, f = 0, rc;

	if (!c)
		return -ENOMEM;
	if (len > INT32_MAX || aad_len > INT32_MAX)
		return -EINVAL;
	rc = util_random(nonce, AEAD_NONCE_LEN);
	if (rc)
		return rc;
	if (EVP_EncryptInit_ex2(c, gcm, key, nonce, NULL) != 1 ||
	    (aad_len && EVP_EncryptUpdate(c, NULL, &n, aad, (int)aad_len) != 1) ||
	    (len && EVP_EncryptUpdate(c, out, &n, in, (int)len) != 1) ||
	    EVP_EncryptFinal_ex(c, (uint8_t *)out + (len ? n : 0), &f) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, AEAD_TAG_LEN, tag) != 1)
		return -EIO;
	return 0;
}

int aead_open(const uint8_t key[AEAD_KEY_LEN], const void *aad, size_t aad_len, const void *in,
	      size_t len, void *out, const uint8_t nonce[AEAD_NONCE_LEN],
	      const uint8_t tag[AEAD_TAG_LEN])
{
	EVP_CIPHER_CTX *c = cipher_ctx();
	uint8_t t[AEAD_TAG_LEN];
	int n = 0, f = 0;

	if (!c)
		return -ENOMEM;
	if (len > INT32_MAX || aad_len > INT32_MAX)
		return -EINVAL;
	memcpy(t, tag, sizeof(t));
	if (EVP_DecryptInit_ex2(c, gcm, key, nonce, NULL) != 1 ||
	    (aad_len && EVP_DecryptUpdate(c, NULL, &n, aad, (int)aad_len) != 1) ||
	    (len && EVP_DecryptUpdate(c, out, &n, in, (int)len) != 1) ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, AEAD_TAG_LEN, t) != 1)
		return -EIO;
	if (EVP_DecryptFinal_ex(c, (uint8_t *)out + (len ? n : 0), &f) != 1)
		return -EBADMSG;
	return 0;
}

int aead_hmac(const uint8_t key[AEAD_KEY_LEN], const void *data, size_t len, uint8_t out[32])
{
	OSSL_PARAM params[2];
	EVP_MAC_CTX *c;
	size_t n = 0;

	pthread_once(&once, init_once);
	if (!hmac)
		return -EIO;
	c = pthread_getspecific(mac_key);
	if (!c) {
		c = EVP_MAC_CTX_new(hmac);
		if (!c)
			return -ENOMEM;
		if (pthread_setspecific(mac_key, c)) {
			EVP_MAC_CTX_free(c);
			return -ENOMEM;
		}
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(c, key, AEAD_KEY_LEN, params) != 1 || EVP_MAC_update(c, data, len) != 1 ||
	    EVP_MAC_final(c, out, &n, 32) != 1 || n != 32)
		return -EIO;
	return 0;
}

static int hkdf(const uint8_t master[AEAD_KEY_LEN], const uint8_t salt[16], const char *info,
		uint8_t out[AEAD_KEY_LEN])
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *c;
	OSSL_PARAM p[5];
	int rc = -EIO;

	if (!kdf)
		return -EIO;
	c = EVP_KDF_CTX_new(kdf);
	if (!c)
		goto out_free_kdf;
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)master, AEAD_KEY_LEN);
	p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, 16);
	p[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
	p[4] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(c, out, AEAD_KEY_LEN, p) == 1)
		rc = 0;
	EVP_KDF_CTX_free(c);
out_free_kdf:
	EVP_KDF_free(kdf);
	return rc;
}

int aead_derive(const uint8_t master[AEAD_KEY_LEN], const uint8_t repo_id[16], struct aead_keys *k)
{
	int rc = hkdf(master, repo_id, "cairn id", k->id);

	if (!rc)
		rc = hkdf(master, repo_id, "cairn data", k->data);
	if (!rc)
		rc = hkdf(master, repo_id, "cairn meta", k->meta);
	return rc;
}

int aead_derive_volume(const uint8_t vkey[AEAD_KEY_LEN], const uint8_t repo_id[16],
		       struct aead_keys *k)
{
	int rc = hkdf(vkey, repo_id, "cairn volume id", k->id);

	if (!rc)
		rc = hkdf(vkey, repo_id, "cairn volume data", k->data);
	if (!rc)
		rc = hkdf(vkey, repo_id, "cairn volume meta", k->meta);
	return rc;
}

int aead_seal_object(const uint8_t key[AEAD_KEY_LEN], const char *aad, const void *in,
		     size_t len, void **out, size_t *out_len)
{
	uint8_t *b = malloc(len + AEAD_ENV_OVERHEAD);
	int rc;

	if (!b)
		return -ENOMEM;
	memcpy(b, AEAD_ENV_MAGIC, 8);
	rc = aead_seal(key, aad, strlen(aad), in, len, b + 8 + AEAD_NONCE_LEN, b + 8,
		       b + 8 + AEAD_NONCE_LEN + len);
	if (rc) {
		free(b);
		return rc;
	}
	*out = b;
	*out_len = len + AEAD_ENV_OVERHEAD;
	return 0;
}

int aead_open_object(const uint8_t key[AEAD_KEY_LEN], const char *aad, const void *in,
		     size_t len, void **out, size_t *out_len)
{
	const uint8_t *b = in;
	size_t n;
	uint8_t *p;
	int rc;

	if (len < AEAD_ENV_OVERHEAD || memcmp(b, AEAD_ENV_MAGIC, 8) != 0)
		return -EBADMSG;
	n = len - AEAD_ENV_OVERHEAD;
	p = malloc(n + 1);
	if (!p)
		return -ENOMEM;
	rc = aead_open(key, aad, strlen(aad), b + 8 + AEAD_NONCE_LEN, n, p, b + 8,
		       b + 8 + AEAD_NONCE_LEN + n);
	if (rc) {
		free(p);
		return rc;
	}
	p[n] = 0; /* callers may parse text */
	*out = p;
	*out_len = n;
	return 0;
}
