/* iscsi_chap.c - target-side CHAP exchange (see iscsi_chap.h). */
#include "iscsi_chap.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "iscsi_pdu.h"
#include "log.h"

#define SUB "chap"
#define DIGEST_MAX 32

int chap_digest(int alg, uint8_t id, const char *secret, const uint8_t *chal, size_t clen,
		uint8_t *out, size_t *outlen)
{
	const EVP_MD *md = alg == CHAP_ALG_MD5 ? EVP_md5() : alg == CHAP_ALG_SHA256 ? EVP_sha256() : NULL;
	EVP_MD_CTX *ctx;
	unsigned int n = 0;
	int ok;

	if (!md)
		return -EINVAL;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	ok = EVP_DigestInit_ex(ctx, md, NULL) && EVP_DigestUpdate(ctx, &id, 1) &&
	     EVP_DigestUpdate(ctx, secret, strlen(secret)) && EVP_DigestUpdate(ctx, chal, clen) &&
	     EVP_DigestFinal_ex(ctx, out, &n);
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -EIO;
	*outlen = n;
	return 0;
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

int chap_decode(const char *v, uint8_t *out, size_t cap, size_t *n)
{
	size_t len = strlen(v);

	if (len > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
		const char *h = v + 2;
		size_t hl = len - 2, i = 0, o = 0;

		if ((hl + 1) / 2 > cap)
			return -EINVAL;
		if (hl % 2) { /* odd digit count: a leading 0 is implied */
			int lo = hexval(h[0]);
			if (lo < 0)
				return -EINVAL;
			out[o++] = (uint8_t)lo;
			i = 1;
		}
		for (; i < hl; i += 2) {
			int hi = hexval(h[i]), lo = hexval(h[i + 1]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			out[o++] = (uint8_t)(hi << 4 | lo);
		}
		*n = o;
		return 0;
	}
	if (len > 2 && v[0] == '0' && (v[1] == 'b' || v[1] == 'B')) {
		size_t bl = len - 2, pad = 0;
		uint8_t tmp[CHAP_BIN_MAX + 4];
		int got;

		if (bl % 4 || bl / 4 * 3 > sizeof(tmp))
			return -EINVAL;
		got = EVP_DecodeBlock(tmp, (const unsigned char *)v + 2, (int)bl);
		if (got < 0)
			return -EINVAL;
		if (v[len - 1] == '=')
			pad++;
		if (v[len - 2] == '=')
			pad++;
		if ((size_t)got < pad || (size_t)got - pad > cap)
			return -EINVAL;
		memcpy(out, tmp, (size_t)got - pad);
		*n = (size_t)got - pad;
		return 0;
	}
	return -EINVAL;
}

static int add_hex(struct iscsi_textbuf *out, const char *key, const uint8_t *b, size_t n)
{
	char hex[2 * CHAP_CHALLENGE_LEN + 3];
	static const char d[] = "0123456789abcdef";

	if (n > CHAP_CHALLENGE_LEN)
		return -EINVAL;
	hex[0] = '0';
	hex[1] = 'x';
	for (size_t i = 0; i < n; i++) {
		hex[2 + 2 * i] = d[b[i] >> 4];
		hex[3 + 2 * i] = d[b[i] & 15];
	}
	hex[2 + 2 * n] = '\0';
	return iscsi_text_addf(out, key, "%s", hex);
}

/* Pick the first algorithm of the initiator's list that we support; 0 if none. */
static int pick_alg(const char *list)
{
	const char *p = list;

	while (*p) {
		char *end;
		unsigned long a = strtoul(p, &end, 10);

		if (end != p && (*end == ',' || !*end) && (a == CHAP_ALG_MD5 || a == CHAP_ALG_SHA256))
			return (int)a;
		p = strchr(p, ',');
		if (!p)
			break;
		p++;
	}
	return 0;
}

static int step_a(struct chap_exchange *x, const char *in, size_t len, struct iscsi_textbuf *out)
{
	char alist[256];

	if (iscsi_text_get(in, len, "CHAP_A", alist, sizeof(alist)))
		return 0; /* not offered yet: wait for it */
	x->alg = pick_alg(alist);
	if (!x->alg) {
		iscsi_text_addf(out, "CHAP_A", "Reject");
		log_warn(SUB, "no CHAP algorithm in common (offered %s; we support 5 and 7)", alist);
		return ISCSI_LOGIN_AUTH_FAILED;
	}
	if (RAND_bytes(&x->id, 1) != 1 || RAND_bytes(x->challenge, sizeof(x->challenge)) != 1)
		return ISCSI_LOGIN_TARGET_ERR;
	if (iscsi_text_addf(out, "CHAP_A", "%d", x->alg) ||
	    iscsi_text_addf(out, "CHAP_I", "%u", x->id) ||
	    add_hex(out, "CHAP_C", x->challenge, sizeof(x->challenge)))
		return ISCSI_LOGIN_NO_RESOURCES;
	x->state = CHAP_WAIT_R;
	return 0;
}

static int step_r(struct chap_exchange *x, const struct chap_policy *p, const char *in,
		  size_t len, struct iscsi_textbuf *out)
{
	char name[CHAP_NAME_MAX], val[2 * CHAP_BIN_MAX + 8], ival[16];
	uint8_t resp[CHAP_BIN_MAX], want[DIGEST_MAX], c2[CHAP_BIN_MAX];
	size_t rlen, wlen = 0, c2len;
	int have_i, have_c, ok = 0;
	unsigned long id2;
	char *end;

	if (iscsi_text_get(in, len, "CHAP_N", name, sizeof(name)) ||
	    iscsi_text_get(in, len, "CHAP_R", val, sizeof(val))) {
		log_warn(SUB, "CHAP_N or CHAP_R missing");
		return ISCSI_LOGIN_AUTH_FAILED;
	}
	if (chap_decode(val, resp, sizeof(resp), &rlen))
		return ISCSI_LOGIN_INITIATOR_ERR;
	/* every account is tried, so the time does not tell which names exist */
	for (unsigned i = 0; i < p->naccounts; i++) {
		uint8_t d[DIGEST_MAX];
		size_t dl;

		if (chap_digest(x->alg, x->id, p->accounts[i].secret, x->challenge,
				sizeof(x->challenge), d, &dl))
			continue;
		if (!strcmp(p->accounts[i].user, name) && dl == rlen &&
		    CRYPTO_memcmp(d, resp, dl) == 0)
			ok = 1;
		OPENSSL_cleanse(d, sizeof(d));
	}
	if (!ok) {
		log_warn(SUB, "CHAP authentication of user '%s' failed", name);
		return ISCSI_LOGIN_AUTH_FAILED;
	}
	snprintf(x->user, sizeof(x->user), "%s", name);
	have_i = !iscsi_text_get(in, len, "CHAP_I", ival, sizeof(ival));
	have_c = !iscsi_text_get(in, len, "CHAP_C", val, sizeof(val));
	if (have_i != have_c)
		return ISCSI_LOGIN_INITIATOR_ERR;
	if (have_i) { /* mutual: the target proves itself */
		if (!p->mutual) {
			log_warn(SUB, "initiator asks for mutual CHAP but the target has no mutual secret");
			return ISCSI_LOGIN_AUTH_FAILED;
		}
		errno = 0;
		id2 = strtoul(ival, &end, 0);
		if (errno || *end || !ival[0] || id2 > 255)
			return ISCSI_LOGIN_INITIATOR_ERR;
		if (chap_decode(val, c2, sizeof(c2), &c2len) || !c2len)
			return ISCSI_LOGIN_INITIATOR_ERR;
		if (c2len == sizeof(x->challenge) && !memcmp(c2, x->challenge, c2len)) {
			log_warn(SUB, "initiator reflected our CHAP challenge: refused");
			return ISCSI_LOGIN_AUTH_FAILED;
		}
		if (chap_digest(x->alg, (uint8_t)id2, p->mutual->secret, c2, c2len, want, &wlen))
			return ISCSI_LOGIN_TARGET_ERR;
		if (iscsi_text_addf(out, "CHAP_N", "%s", p->mutual->user) ||
		    add_hex(out, "CHAP_R", want, wlen)) {
			OPENSSL_cleanse(want, sizeof(want));
			return ISCSI_LOGIN_NO_RESOURCES;
		}
		OPENSSL_cleanse(want, sizeof(want));
	}
	x->state = CHAP_DONE;
	return 0;
}

int chap_step(struct chap_exchange *x, const struct chap_policy *p, const char *in, size_t len,
	      struct iscsi_textbuf *out)
{
	switch (x->state) {
	case CHAP_WAIT_A:
		return step_a(x, in, len, out);
	case CHAP_WAIT_R:
		return step_r(x, p, in, len, out);
	default:
		return 0;
	}
}
