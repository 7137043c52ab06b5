/* iscsi_chap.h - the target side of CHAP (RFC 1994, RFC 7143 section 12.1.3), one-way
 * and mutual, with MD5 (CHAP_A=5) and SHA-256 (CHAP_A=7).
 *
 * Exchange, driven by the security stage of the login:
 *   I->T  AuthMethod=CHAP,...            T->I  AuthMethod=CHAP      (iscsi_login.c)
 *   I->T  CHAP_A=<list>                  T->I  CHAP_A=a CHAP_I=id CHAP_C=0x<challenge>
 *   I->T  CHAP_N=user CHAP_R=0x<resp> [CHAP_I=id2 CHAP_C=0x<c2>]
 *                                        T->I  [CHAP_N=tuser CHAP_R=0x<resp2>]
 * resp = H(id || secret || challenge), H = MD5 or SHA-256 as negotiated (the first
 * algorithm of the initiator's list that we support). Challenges are CHAP_CHALLENGE_LEN
 * bytes from OpenSSL's RAND_bytes; responses are compared with CRYPTO_memcmp. Binary
 * values are accepted in hex (0x) or base64 (0b) and sent in hex. Secrets are never
 * logged or sent.
 */
#ifndef CAIRN_ISCSI_CHAP_H
#define CAIRN_ISCSI_CHAP_H

#include <stddef.h>
#include <stdint.h>

#include "iscsi_text.h"

#define CHAP_NAME_MAX 256       /* user name, with NUL */
#define CHAP_SECRET_MIN 12      /* shortest secret we accept (configuration) */
#define CHAP_SECRET_MAX 256     /* with NUL */
#define CHAP_CHALLENGE_LEN 32
#define CHAP_BIN_MAX 1024       /* longest binary value (initiator's challenge) */
#define CHAP_ALG_MD5 5
#define CHAP_ALG_SHA256 7

/* A CHAP account: a user name and its secret. */
struct chap_cred {
	char user[CHAP_NAME_MAX];
	char secret[CHAP_SECRET_MAX];
};

/* What one target (or discovery) accepts. */
struct chap_policy {
	const struct chap_cred *accounts; /* who may log in */
	unsigned naccounts;
	const struct chap_cred *mutual;   /* the target's own credentials, or NULL */
};

enum chap_state { CHAP_OFF = 0, CHAP_WAIT_A, CHAP_WAIT_R, CHAP_DONE };

struct chap_exchange {
	int state;                        /* enum chap_state */
	int alg;                          /* CHAP_ALG_* once chosen */
	uint8_t id;
	uint8_t challenge[CHAP_CHALLENGE_LEN];
	char user[CHAP_NAME_MAX];         /* the authenticated user (CHAP_DONE) */
};

/* Run the next step on the keys of one login request in[0..len), appending the
 * target's keys to out. Returns 0 (x->state tells where the exchange is), or a login
 * status: ISCSI_LOGIN_AUTH_FAILED (wrong secret, unknown user, no common algorithm,
 * mutual CHAP asked for but not configured, reflected challenge),
 * ISCSI_LOGIN_INITIATOR_ERR (malformed value), ISCSI_LOGIN_NO_RESOURCES. */
int chap_step(struct chap_exchange *x, const struct chap_policy *p, const char *in, size_t len,
	      struct iscsi_textbuf *out);
/* out = H(id || secret || chal) for alg; *outlen its length. -EINVAL unknown alg. */
int chap_digest(int alg, uint8_t id, const char *secret, const uint8_t *chal, size_t clen,
		uint8_t *out, size_t *outlen);
/* Decode a binary value "0x<hex>" or "0b<base64>" into out. -EINVAL if malformed or
 * longer than cap. */
int chap_decode(const char *v, uint8_t *out, size_t cap, size_t *n);

#endif
