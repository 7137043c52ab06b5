/* test_iscsi_chap - the CHAP exchange (MD5 and SHA-256, one-way and mutual, wrong
 * secret, unknown user, reflected challenge, malformed values) and the ACL matcher
 * (IQN patterns, IPv4/IPv6 ranges, IPv4-mapped peers, first match, default). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "acl.h"
#include "check.h"
#include "iscsi_chap.h"
#include "iscsi_pdu.h"
#include "iscsi_text.h"

static const struct chap_cred acc[2] = { { "alice", "alice-secret-1" }, { "bob", "bob-secret-123" } };
static const struct chap_cred tgt = { "gw", "target-secret-9" };

static void hex(const uint8_t *b, size_t n, char *out)
{
	out += sprintf(out, "0x");
	for (size_t i = 0; i < n; i++)
		out += sprintf(out, "%02x", b[i]);
}

/* Run WAIT_A with algorithm list alist; returns the status and the challenge. */
static int start(struct chap_exchange *x, const struct chap_policy *p, const char *alist)
{
	struct iscsi_textbuf out = { 0 };
	char in[64];
	int n = snprintf(in, sizeof(in), "CHAP_A=%s", alist), st;

	memset(x, 0, sizeof(*x));
	x->state = CHAP_WAIT_A;
	st = chap_step(x, p, in, (size_t)n + 1, &out);
	iscsi_textbuf_free(&out);
	return st;
}

static int respond(struct chap_exchange *x, const struct chap_policy *p, const char *user,
		   const char *secret, const char *mutual_c, struct iscsi_textbuf *out)
{
	uint8_t d[32];
	size_t dl;
	char in[512], r[80];
	int n;

	CHECK_EQ(chap_digest(x->alg, x->id, secret, x->challenge, sizeof(x->challenge), d, &dl), 0);
	hex(d, dl, r);
	n = snprintf(in, sizeof(in), "CHAP_N=%s%cCHAP_R=%s%c%s", user, 0, r, 0, mutual_c ? mutual_c : "");
	return chap_step(x, p, in, (size_t)n + 1, out);
}

static void test_chap(void)
{
	struct chap_policy p = { acc, 2, NULL };
	struct chap_exchange x;
	struct iscsi_textbuf out = { 0 };
	uint8_t c2[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 }, d[32], bin[64];
	char mc[128], want[80], c2hex[40];
	size_t dl, n;

	/* the first supported algorithm of the initiator's list wins */
	CHECK_EQ(start(&x, &p, "7,5"), 0);
	CHECK_EQ(x.alg, CHAP_ALG_SHA256);
	CHECK_EQ(x.state, CHAP_WAIT_R);
	CHECK_EQ(respond(&x, &p, "bob", "bob-secret-123", NULL, &out), 0);
	CHECK_EQ(x.state, CHAP_DONE);
	CHECK(!strcmp(x.user, "bob"));
	CHECK_EQ(out.len, 0u); /* one-way: the target says nothing */
	iscsi_textbuf_free(&out);

	CHECK_EQ(start(&x, &p, "5"), 0);
	CHECK_EQ(x.alg, CHAP_ALG_MD5);
	CHECK_EQ(respond(&x, &p, "alice", "alice-secret-1", NULL, &out), 0);
	iscsi_textbuf_free(&out);
	/* wrong secret, unknown user, another user's secret */
	CHECK_EQ(start(&x, &p, "5"), 0);
	CHECK_EQ(respond(&x, &p, "alice", "alice-secret-2", NULL, &out), ISCSI_LOGIN_AUTH_FAILED);
	iscsi_textbuf_free(&out);
	CHECK_EQ(start(&x, &p, "5"), 0);
	CHECK_EQ(respond(&x, &p, "carol", "alice-secret-1", NULL, &out), ISCSI_LOGIN_AUTH_FAILED);
	iscsi_textbuf_free(&out);
	CHECK_EQ(start(&x, &p, "5"), 0);
	CHECK_EQ(respond(&x, &p, "alice", "bob-secret-123", NULL, &out), ISCSI_LOGIN_AUTH_FAILED);
	iscsi_textbuf_free(&out);
	/* no common algorithm */
	CHECK_EQ(start(&x, &p, "6,99"), ISCSI_LOGIN_AUTH_FAILED);

	/* mutual: refused without a target secret, answered with one */
	hex(c2, sizeof(c2), c2hex);
	snprintf(mc, sizeof(mc), "CHAP_I=77%cCHAP_C=%s", 0, c2hex);
	CHECK_EQ(start(&x, &p, "5"), 0);
	{
		/* the mutual keys follow CHAP_R: build by hand with the embedded NUL */
		uint8_t dd[32];
		size_t ddl;
		char in[512], r[80];
		int len;

		CHECK_EQ(chap_digest(x.alg, x.id, "alice-secret-1", x.challenge, sizeof(x.challenge), dd, &ddl), 0);
		hex(dd, ddl, r);
		len = snprintf(in, sizeof(in), "CHAP_N=alice%cCHAP_R=%s%cCHAP_I=77%cCHAP_C=%s", 0, r, 0, 0, c2hex);
		CHECK_EQ(chap_step(&x, &p, in, (size_t)len + 1, &out), ISCSI_LOGIN_AUTH_FAILED);
		iscsi_textbuf_free(&out);
		p.mutual = &tgt;
		CHECK_EQ(start(&x, &p, "5"), 0);
		CHECK_EQ(chap_digest(x.alg, x.id, "alice-secret-1", x.challenge, sizeof(x.challenge), dd, &ddl), 0);
		hex(dd, ddl, r);
		len = snprintf(in, sizeof(in), "CHAP_N=alice%cCHAP_R=%s%cCHAP_I=77%cCHAP_C=%s", 0, r, 0, 0, c2hex);
		CHECK_EQ(chap_step(&x, &p, in, (size_t)len + 1, &out), 0);
		CHECK_EQ(x.state, CHAP_DONE);
		CHECK_EQ(chap_digest(CHAP_ALG_MD5, 77, tgt.secret, c2, sizeof(c2), d, &dl), 0);
		hex(d, dl, want);
		CHECK(iscsi_text_get(out.buf, out.len, "CHAP_R", mc, sizeof(mc)) == 0 && !strcmp(mc, want));
		CHECK(iscsi_text_get(out.buf, out.len, "CHAP_N", mc, sizeof(mc)) == 0 && !strcmp(mc, "gw"));
		iscsi_textbuf_free(&out);
		/* our own challenge reflected back is refused */
		CHECK_EQ(start(&x, &p, "5"), 0);
		CHECK_EQ(chap_digest(x.alg, x.id, "alice-secret-1", x.challenge, sizeof(x.challenge), dd, &ddl), 0);
		hex(dd, ddl, r);
		hex(x.challenge, sizeof(x.challenge), want);
		len = snprintf(in, sizeof(in), "CHAP_N=alice%cCHAP_R=%s%cCHAP_I=1%cCHAP_C=%s", 0, r, 0, 0, want);
		CHECK_EQ(chap_step(&x, &p, in, (size_t)len + 1, &out), ISCSI_LOGIN_AUTH_FAILED);
		iscsi_textbuf_free(&out);
	}
	/* binary decoding: hex (odd length too) and base64; garbage refused */
	CHECK_EQ(chap_decode("0x0102ff", bin, sizeof(bin), &n), 0);
	CHECK(n == 3 && bin[2] == 0xff);
	CHECK_EQ(chap_decode("0x102", bin, sizeof(bin), &n), 0);
	CHECK(n == 2 && bin[0] == 1 && bin[1] == 2);
	CHECK_EQ(chap_decode("0bAQID", bin, sizeof(bin), &n), 0);
	CHECK(n == 3 && bin[0] == 1 && bin[2] == 3);
	CHECK_EQ(chap_decode("0bAQI=", bin, sizeof(bin), &n), 0);
	CHECK_EQ(n, 2u);
	CHECK_EQ(chap_decode("0xzz", bin, sizeof(bin), &n), -EINVAL);
	CHECK_EQ(chap_decode("1234", bin, sizeof(bin), &n), -EINVAL);
	CHECK_EQ(chap_decode("0x0102", bin, 1, &n), -EINVAL);
	/* a malformed response value */
	CHECK_EQ(start(&x, &p, "5"), 0);
	{
		char in[64];
		int len = snprintf(in, sizeof(in), "CHAP_N=alice%cCHAP_R=nothex", 0);
		CHECK_EQ(chap_step(&x, &p, in, (size_t)len + 1, &out), ISCSI_LOGIN_INITIATOR_ERR);
		iscsi_textbuf_free(&out);
	}
}

static void test_acl(void)
{
	struct acl_rule r[4];
	struct sockaddr_in a4 = { .sin_family = AF_INET };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };

	CHECK_EQ(acl_rule_set_initiator(&r[0], "iqn.2026-01.test:bad*"), 0);
	r[0].access = ACL_DENY;
	CHECK_EQ(acl_rule_set_net(&r[1], "10.1.0.0/16"), 0);
	r[1].access = ACL_READ_ONLY;
	CHECK_EQ(acl_rule_set_net(&r[2], "[fd00::]/8"), 0);
	r[2].access = ACL_DENY;
	CHECK_EQ(acl_rule_set_net(&r[3], "192.168.1.7"), 0);
	r[3].access = ACL_FULL;
	CHECK_EQ(r[3].prefix, 32u);

	inet_pton(AF_INET, "10.1.200.3", &a4.sin_addr);
	CHECK_EQ(acl_check(r, 4, ACL_DENY, "iqn.x:good", (struct sockaddr *)&a4), ACL_READ_ONLY);
	CHECK_EQ(acl_check(r, 4, ACL_DENY, "iqn.2026-01.test:bad7", (struct sockaddr *)&a4), ACL_DENY);
	inet_pton(AF_INET, "10.2.0.1", &a4.sin_addr);
	CHECK_EQ(acl_check(r, 4, ACL_DENY, "iqn.x:good", (struct sockaddr *)&a4), ACL_DENY); /* default */
	CHECK_EQ(acl_check(r, 4, ACL_FULL, "iqn.x:good", (struct sockaddr *)&a4), ACL_FULL);
	inet_pton(AF_INET6, "fd12::1", &a6.sin6_addr);
	CHECK_EQ(acl_check(r, 4, ACL_FULL, "iqn.x:good", (struct sockaddr *)&a6), ACL_DENY);
	inet_pton(AF_INET6, "::ffff:10.1.0.9", &a6.sin6_addr); /* IPv4-mapped */
	CHECK_EQ(acl_check(r, 4, ACL_FULL, "iqn.x:good", (struct sockaddr *)&a6), ACL_READ_ONLY);
	CHECK_EQ(acl_check(r, 4, ACL_FULL, "iqn.x:good", NULL), ACL_FULL);

	CHECK_EQ(acl_rule_set_net(&r[0], "10.0.0.0/33"), -EINVAL);
	CHECK_EQ(acl_rule_set_net(&r[0], "300.0.0.1"), -EINVAL);
	CHECK_EQ(acl_rule_set_net(&r[0], "10.0.0.0/"), -EINVAL);
	CHECK_EQ(acl_rule_set_net(&r[0], "::1/129"), -EINVAL);
	CHECK_EQ(acl_rule_set_net(&r[0], "10.0.0.0/-1"), -EINVAL);
	CHECK_EQ(acl_rule_set_initiator(&r[0], ""), -EINVAL);
	CHECK_EQ(acl_access_parse("read-only"), ACL_READ_ONLY);
	CHECK_EQ(acl_access_parse("readonly"), -EINVAL);
}

int main(void)
{
	RUN(test_chap);
	RUN(test_acl);
	return check_result();
}
