/* test_iscsi_text - key=value parsing and the RFC 7143 negotiation rules. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "iscsi_pdu.h"
#include "iscsi_text.h"

/* Build "k=v\0k=v\0" from a '|'-separated string. */
static size_t mk(char *out, const char *s)
{
	size_t n = strlen(s);

	memcpy(out, s, n + 1);
	for (size_t i = 0; i < n; i++)
		if (out[i] == '|')
			out[i] = '\0';
	return n + 1;
}

static int has(const struct iscsi_textbuf *t, const char *kv)
{
	for (size_t i = 0; i < t->len; i += strlen(t->buf + i) + 1)
		if (!strcmp(t->buf + i, kv))
			return 1;
	return 0;
}

static void test_parse(void)
{
	char in[256];
	size_t n = mk(in, "A=1|B=|C=x=y"), pos = 0, kl, vl;
	const char *k, *v;
	char val[16];

	CHECK_EQ(iscsi_text_next(in, n, &pos, &k, &kl, &v, &vl), 1);
	CHECK(kl == 1 && k[0] == 'A' && vl == 1 && v[0] == '1');
	CHECK_EQ(iscsi_text_next(in, n, &pos, &k, &kl, &v, &vl), 1);
	CHECK(kl == 1 && vl == 0);
	CHECK_EQ(iscsi_text_next(in, n, &pos, &k, &kl, &v, &vl), 1);
	CHECK(vl == 3 && !memcmp(v, "x=y", 3));
	CHECK_EQ(iscsi_text_next(in, n, &pos, &k, &kl, &v, &vl), 0);
	CHECK_EQ(iscsi_text_get(in, n, "C", val, sizeof(val)), 0);
	CHECK(!strcmp(val, "x=y"));
	CHECK_EQ(iscsi_text_get(in, n, "D", val, sizeof(val)), -ENOENT);
	CHECK_EQ(iscsi_text_get(in, n, "C", val, 2), -ENAMETOOLONG);
	pos = 0;
	n = mk(in, "novalue");
	CHECK_EQ(iscsi_text_next(in, n, &pos, &k, &kl, &v, &vl), -EINVAL);
	pos = 0;
	n = mk(in, "=x");
	CHECK_EQ(iscsi_text_next(in, n, &pos, &k, &kl, &v, &vl), -EINVAL);
	/* unterminated last item is accepted */
	pos = 0;
	CHECK_EQ(iscsi_text_next("K=V", 3, &pos, &k, &kl, &v, &vl), 1);
	CHECK(vl == 1 && v[0] == 'V');
}

static void test_negotiate_normal(void)
{
	struct iscsi_textbuf out = { 0 };
	struct iscsi_neg n;
	char in[1024];
	size_t len;

	iscsi_neg_init(&n);
	len = mk(in, "InitiatorName=iqn.x:init|SessionType=Normal|TargetName=iqn.x:t|"
		 "HeaderDigest=CRC32C,None|DataDigest=None|MaxRecvDataSegmentLength=65536|"
		 "MaxBurstLength=262144|FirstBurstLength=65536|InitialR2T=No|ImmediateData=Yes|"
		 "MaxOutstandingR2T=16|MaxConnections=4|ErrorRecoveryLevel=2|"
		 "DefaultTime2Wait=0|DefaultTime2Retain=60|DataPDUInOrder=Yes|"
		 "DataSequenceInOrder=No|X-com.example.foo=1|IFMarker=No");
	CHECK_EQ(iscsi_text_negotiate(&n, in, len, &out), 0);
	CHECK(!strcmp(n.initiator_name, "iqn.x:init"));
	CHECK(!strcmp(n.target_name, "iqn.x:t"));
	CHECK_EQ(n.session_type, ISCSI_SESSION_NORMAL);
	CHECK(has(&out, "HeaderDigest=CRC32C"));
	CHECK_EQ(n.p.header_digest, 1);
	CHECK(has(&out, "DataDigest=None"));
	CHECK(has(&out, "MaxRecvDataSegmentLength=262144")); /* we declare ours */
	CHECK_EQ(n.p.max_send_dsl, 65536);                   /* theirs limits what we send */
	CHECK(has(&out, "MaxBurstLength=262144"));
	CHECK(has(&out, "FirstBurstLength=65536"));
	CHECK(has(&out, "InitialR2T=No"));        /* OR with our No */
	CHECK(has(&out, "ImmediateData=Yes"));    /* AND with our Yes */
	CHECK(has(&out, "MaxOutstandingR2T=8"));  /* min */
	CHECK(has(&out, "MaxConnections=1"));
	CHECK(has(&out, "ErrorRecoveryLevel=0"));
	CHECK(has(&out, "DefaultTime2Wait=2"));   /* max */
	CHECK(has(&out, "DefaultTime2Retain=20")); /* min */
	CHECK(has(&out, "DataSequenceInOrder=Yes")); /* OR with our Yes */
	CHECK(has(&out, "X-com.example.foo=NotUnderstood"));
	CHECK(has(&out, "IFMarker=No"));
	CHECK_EQ(n.p.initial_r2t, 0);
	CHECK_EQ(n.p.max_outstanding_r2t, 8);
	CHECK(!has(&out, "InitiatorName=iqn.x:init")); /* declaratives are not echoed */
	iscsi_textbuf_free(&out);
	CHECK_EQ(iscsi_text_finish(&n, &out), 0);
	CHECK_EQ(out.len, 0); /* MaxRecvDataSegmentLength already declared */
	iscsi_textbuf_free(&out);
}

static void test_negotiate_rejects(void)
{
	struct iscsi_textbuf out = { 0 };
	struct iscsi_neg n;
	char in[512];
	size_t len;

	iscsi_neg_init(&n);
	len = mk(in, "HeaderDigest=MD5|MaxBurstLength=100|FirstBurstLength=abc|"
		 "InitialR2T=Maybe|MaxRecvDataSegmentLength=99999999|AuthMethod=CHAP|"
		 "TargetAddress=1.2.3.4");
	CHECK_EQ(iscsi_text_negotiate(&n, in, len, &out), 0);
	CHECK(has(&out, "HeaderDigest=Reject"));
	CHECK(has(&out, "MaxBurstLength=Reject"));
	CHECK(has(&out, "FirstBurstLength=Reject"));
	CHECK(has(&out, "InitialR2T=Reject"));
	CHECK(has(&out, "MaxRecvDataSegmentLength=Reject"));
	CHECK(!has(&out, "AuthMethod=")); /* answered by the login, which knows the policy */
	CHECK(has(&out, "TargetAddress=Irrelevant"));
	CHECK(n.auth_offered && !n.auth_none);
	CHECK_EQ(n.p.max_burst, 262144); /* defaults kept */
	iscsi_textbuf_free(&out);

	iscsi_neg_init(&n);
	len = mk(in, "AuthMethod=CHAP,None|CHAP_A=5");
	CHECK_EQ(iscsi_text_negotiate(&n, in, len, &out), 0);
	CHECK(n.auth_offered && n.auth_offer_chap && n.auth_offer_none);
	CHECK(!has(&out, "CHAP_A=")); /* CHAP keys belong to the security stage */
	iscsi_textbuf_free(&out);

	iscsi_neg_init(&n);
	len = mk(in, "SessionType=Bogus");
	CHECK_EQ(iscsi_text_negotiate(&n, in, len, &out), -EPROTO);
	CHECK_EQ(n.status, ISCSI_LOGIN_SESSION_TYPE);
	iscsi_textbuf_free(&out);

	iscsi_neg_init(&n);
	len = mk(in, "InitiatorName=");
	CHECK_EQ(iscsi_text_negotiate(&n, in, len, &out), -EPROTO);
	CHECK_EQ(n.status, ISCSI_LOGIN_INITIATOR_ERR);
	iscsi_textbuf_free(&out);

	iscsi_neg_init(&n);
	CHECK_EQ(iscsi_text_negotiate(&n, "garbage", 7, &out), -EPROTO);
	iscsi_textbuf_free(&out);
}

static void test_negotiate_discovery(void)
{
	struct iscsi_textbuf out = { 0 };
	struct iscsi_neg n;
	char in[512];
	size_t len;

	iscsi_neg_init(&n);
	/* SessionType after the session keys still decides their relevance */
	len = mk(in, "InitiatorName=iqn.x:i|MaxBurstLength=262144|InitialR2T=No|"
		 "HeaderDigest=None|SessionType=Discovery");
	CHECK_EQ(iscsi_text_negotiate(&n, in, len, &out), 0);
	CHECK_EQ(n.session_type, ISCSI_SESSION_DISCOVERY);
	CHECK(has(&out, "MaxBurstLength=Irrelevant"));
	CHECK(has(&out, "InitialR2T=Irrelevant"));
	CHECK(has(&out, "HeaderDigest=None"));
	iscsi_textbuf_free(&out);
	CHECK_EQ(iscsi_text_finish(&n, &out), 0);
	CHECK(has(&out, "MaxRecvDataSegmentLength=262144"));
	iscsi_textbuf_free(&out);
}

static void test_first_burst_clamped(void)
{
	struct iscsi_textbuf out = { 0 };
	struct iscsi_neg n;
	char in[256];
	size_t len;

	iscsi_neg_init(&n);
	len = mk(in, "MaxBurstLength=16384|FirstBurstLength=65536");
	CHECK_EQ(iscsi_text_negotiate(&n, in, len, &out), 0);
	CHECK_EQ(iscsi_text_finish(&n, &out), 0);
	CHECK_EQ(n.p.first_burst, 16384);
	iscsi_textbuf_free(&out);
}

static void test_full_feature_text(void)
{
	struct iscsi_textbuf out = { 0 };
	struct iscsi_neg n;
	char in[256];
	size_t len;

	iscsi_neg_init(&n);
	n.full_feature = 1;
	n.declared_mrdsl = 1;
	len = mk(in, "SendTargets=All|MaxRecvDataSegmentLength=16384|MaxBurstLength=512");
	CHECK_EQ(iscsi_text_negotiate(&n, in, len, &out), 0);
	CHECK(!has(&out, "SendTargets=NotUnderstood"));
	CHECK(has(&out, "MaxBurstLength=Reject")); /* login-only key */
	CHECK_EQ(n.p.max_send_dsl, 16384);
	iscsi_textbuf_free(&out);
}

/* Once the login checked the names (first request), later requests may repeat
 * SessionType, InitiatorName and TargetName but not change them. */
static void test_names_locked(void)
{
	struct iscsi_textbuf out = { 0 };
	struct iscsi_neg n;
	char in[256];
	size_t len;

	iscsi_neg_init(&n);
	len = mk(in, "InitiatorName=iqn.test:a|SessionType=Discovery");
	CHECK_EQ(iscsi_text_negotiate(&n, in, len, &out), 0);
	n.names_locked = 1;
	len = mk(in, "InitiatorName=iqn.test:a|SessionType=Discovery|InitiatorAlias=x");
	CHECK_EQ(iscsi_text_negotiate(&n, in, len, &out), 0);
	len = mk(in, "SessionType=Normal|TargetName=iqn.test:t");
	CHECK_EQ(iscsi_text_negotiate(&n, in, len, &out), -EPROTO);
	CHECK_EQ(n.status, ISCSI_LOGIN_INITIATOR_ERR);
	CHECK_EQ(n.session_type, ISCSI_SESSION_DISCOVERY);
	n.status = 0;
	len = mk(in, "InitiatorName=iqn.test:b");
	CHECK_EQ(iscsi_text_negotiate(&n, in, len, &out), -EPROTO);
	CHECK_EQ(n.status, ISCSI_LOGIN_INITIATOR_ERR);
	CHECK(!strcmp(n.initiator_name, "iqn.test:a"));
	iscsi_textbuf_free(&out);

	iscsi_neg_init(&n);
	len = mk(in, "InitiatorName=iqn.test:a|SessionType=Normal|TargetName=iqn.test:t");
	CHECK_EQ(iscsi_text_negotiate(&n, in, len, &out), 0);
	n.names_locked = 1;
	len = mk(in, "TargetName=iqn.test:t");
	CHECK_EQ(iscsi_text_negotiate(&n, in, len, &out), 0);
	len = mk(in, "TargetName=iqn.test:other");
	CHECK_EQ(iscsi_text_negotiate(&n, in, len, &out), -EPROTO);
	CHECK(!strcmp(n.target_name, "iqn.test:t"));
	iscsi_textbuf_free(&out);
}

int main(void)
{
	RUN(test_parse);
	RUN(test_negotiate_normal);
	RUN(test_negotiate_rejects);
	RUN(test_negotiate_discovery);
	RUN(test_first_burst_clamped);
	RUN(test_full_feature_text);
	RUN(test_names_locked);
	return check_result();
}
