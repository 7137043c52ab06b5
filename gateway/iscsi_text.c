/* iscsi_text.c - key=value lists and login key negotiation (RFC 7143 6.2, 13).
 *
 * Text data layout: "key=value\0key=value\0..."; keys are case-sensitive, at most 63
 * bytes; values at most 255 bytes except where a key allows more (we accept up to
 * ISCSI_TEXT_VALUE_MAX). Numbers are decimal or 0x-hex. The answer to a key we do not
 * know is key=NotUnderstood; to a session key in a discovery session, key=Irrelevant;
 * to a value out of range or a list with nothing we support, key=Reject. On a
 * connection added to an existing session (non-leading login) a Leading Only key
 * (RFC 7143 section 13: the session-wide operational keys) is answered key=Irrelevant
 * and the session keeps the value its leading login negotiated; only the connection's
 * own keys (digests, MaxRecvDataSegmentLength, AuthMethod) are negotiated there.
 */
#include "iscsi_text.h"

#include "iscsi_pdu.h"

#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void iscsi_textbuf_free(struct iscsi_textbuf *t)
{
	free(t->buf);
	t->buf = NULL;
	t->len = t->cap = 0;
}

int iscsi_textbuf_append(struct iscsi_textbuf *t, const void *p, size_t n)
{
	if (t->len + n > t->cap) {
		size_t cap = t->cap ? t->cap : 512;
		char *nb;

		while (cap < t->len + n)
			cap *= 2;
		nb = realloc(t->buf, cap);
		if (!nb)
			return -ENOMEM;
		t->buf = nb;
		t->cap = cap;
	}
	if (n)
		memcpy(t->buf + t->len, p, n);
	t->len += n;
	return 0;
}

int iscsi_text_addf(struct iscsi_textbuf *t, const char *key, const char *fmt, ...)
{
	char val[ISCSI_TEXT_VALUE_MAX];
	va_list ap;
	int n, ret;

	va_start(ap, fmt);
	n = vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(val))
		return -EINVAL;
	ret = iscsi_textbuf_append(t, key, strlen(key));
	if (!ret)
		ret = iscsi_textbuf_append(t, "=", 1);
	if (!ret)
		ret = iscsi_textbuf_append(t, val, (size_t)n + 1);
	return ret;
}

int iscsi_text_next(const char *data, size_t len, size_t *pos, const char **key, size_t *klen,
		    const char **val, size_t *vlen)
{
	size_t p = *pos, end, eq;

	while (p < len && data[p] == '\0') /* tolerate empty items / trailing padding */
		p++;
	if (p >= len) {
		*pos = p;
		return 0;
	}
	end = p;
	while (end < len && data[end] != '\0')
		end++;
	eq = p;
	while (eq < end && data[eq] != '=')
		eq++;
	if (eq == end || eq == p)
		return -EINVAL;
	*key = data + p;
	*klen = eq - p;
	*val = data + eq + 1;
	*vlen = end - eq - 1;
	*pos = end < len ? end + 1 : end;
	return 1;
}

int iscsi_text_get(const char *data, size_t len, const char *key, char *out, size_t outsz)
{
	const char *k, *v;
	size_t kl, vl, pos = 0;
	int r;

	while ((r = iscsi_text_next(data, len, &pos, &k, &kl, &v, &vl)) == 1) {
		if (kl != strlen(key) || memcmp(k, key, kl))
			continue;
		if (vl >= outsz)
			return -ENAMETOOLONG;
		memcpy(out, v, vl);
		out[vl] = '\0';
		return 0;
	}
	return r < 0 ? r : -ENOENT;
}

void iscsi_params_default(struct iscsi_params *p)
{
	memset(p, 0, sizeof(*p));
	p->max_send_dsl = 8192;
	p->max_recv_dsl = 8192;
	p->max_burst = 262144;
	p->first_burst = 65536;
	p->max_outstanding_r2t = 1;
	p->max_conns = 1;
	p->initial_r2t = 1;
	p->immediate_data = 1;
	p->data_pdu_in_order = 1;
	p->data_seq_in_order = 1;
	p->time2wait = 2;
	p->time2retain = 20;
	p->erl = 0;
}

void iscsi_neg_init(struct iscsi_neg *n)
{
	memset(n, 0, sizeof(*n));
	iscsi_params_default(&n->p);
}

enum key_type {
	KT_DIGEST,   /* list: None, CRC32C; first we support */
	KT_NUM_MIN,  /* numerical, result = min(offer, ours) */
	KT_NUM_MAX,  /* numerical, result = max(offer, ours) */
	KT_BOOL_AND,
	KT_BOOL_OR,
	KT_MRDSL,    /* MaxRecvDataSegmentLength: declarative per direction */
	KT_DECL,     /* declarative names handled by the login */
	KT_AUTH,     /* AuthMethod list */
	KT_LOGIN_ONLY_IGNORED, /* target-declared keys an initiator must not send */
	KT_SKIP,     /* handled by the caller (SendTargets) */
	KT_CHAP,     /* CHAP_* keys: the login's security stage handles them */
};

/* One negotiable key: where its result lives, its range and our value. */
struct key_desc {
	const char *name;
	enum key_type type;
	size_t off;          /* offset of the int/uint32_t member in struct iscsi_params */
	uint32_t min, max;   /* valid range of an offered number */
	uint32_t ours;       /* our value (numbers; booleans 0/1) */
	int session_only;    /* Irrelevant in a discovery session */
	int lo;              /* Leading Only: Irrelevant on an added connection */
	int ours_is_limit;   /* ours is the server's n->max_conns_ours when that is set */
};

#define P(m) offsetof(struct iscsi_params, m)
#define NO_STORE ((size_t)-1)

static const struct key_desc keys[] = {
	{ "HeaderDigest", KT_DIGEST, P(header_digest), 0, 0, 0, 0, 0, 0 },
	{ "DataDigest", KT_DIGEST, P(data_digest), 0, 0, 0, 0, 0, 0 },
	{ "MaxRecvDataSegmentLength", KT_MRDSL, P(max_send_dsl), 512, 16777215, ISCSI_OUR_MRDSL, 0, 0, 0 },
	{ "MaxBurstLength", KT_NUM_MIN, P(max_burst), 512, 16777215, 16776192, 1, 1, 0 },
	{ "FirstBurstLength", KT_NUM_MIN, P(first_burst), 512, 16777215, 16776192, 1, 1, 0 },
	{ "MaxOutstandingR2T", KT_NUM_MIN, P(max_outstanding_r2t), 1, 65535, 8, 1, 1, 0 },
	{ "MaxConnections", KT_NUM_MIN, P(max_conns), 1, 65535, 1, 1, 1, 1 },
	{ "DefaultTime2Wait", KT_NUM_MAX, P(time2wait), 0, 3600, 2, 0, 1, 0 },
	{ "DefaultTime2Retain", KT_NUM_MIN, P(time2retain), 0, 3600, 20, 0, 1, 0 },
	{ "ErrorRecoveryLevel", KT_NUM_MIN, P(erl), 0, 2, 0, 0, 1, 0 },
	{ "InitialR2T", KT_BOOL_OR, P(initial_r2t), 0, 1, 0, 1, 1, 0 },
	{ "ImmediateData", KT_BOOL_AND, P(immediate_data), 0, 1, 1, 1, 1, 0 },
	{ "DataPDUInOrder", KT_BOOL_OR, P(data_pdu_in_order), 0, 1, 1, 1, 1, 0 },
	{ "DataSequenceInOrder", KT_BOOL_OR, P(data_seq_in_order), 0, 1, 1, 1, 1, 0 },
	{ "InitiatorName", KT_DECL, 0, 0, 0, 0, 0, 0, 0 },
	{ "InitiatorAlias", KT_DECL, 0, 0, 0, 0, 0, 0, 0 },
	{ "TargetName", KT_DECL, 0, 0, 0, 0, 0, 0, 0 },
	{ "SessionType", KT_DECL, 0, 0, 0, 0, 0, 0, 0 },
	{ "AuthMethod", KT_AUTH, 0, 0, 0, 0, 0, 0, 0 },
	{ "TargetAlias", KT_LOGIN_ONLY_IGNORED, 0, 0, 0, 0, 0, 0, 0 },
	{ "TargetAddress", KT_LOGIN_ONLY_IGNORED, 0, 0, 0, 0, 0, 0, 0 },
	{ "TargetPortalGroupTag", KT_LOGIN_ONLY_IGNORED, 0, 0, 0, 0, 0, 0, 0 },
	{ "SendTargets", KT_SKIP, NO_STORE, 0, 0, 0, 0, 0, 0 },
	{ "CHAP_A", KT_CHAP, NO_STORE, 0, 0, 0, 0, 0, 0 },
	{ "CHAP_I", KT_CHAP, NO_STORE, 0, 0, 0, 0, 0, 0 },
	{ "CHAP_C", KT_CHAP, NO_STORE, 0, 0, 0, 0, 0, 0 },
	{ "CHAP_N", KT_CHAP, NO_STORE, 0, 0, 0, 0, 0, 0 },
	{ "CHAP_R", KT_CHAP, NO_STORE, 0, 0, 0, 0, 0, 0 },
	{ "IFMarker", KT_BOOL_AND, NO_STORE, 0, 1, 0, 0, 0, 0 },  /* RFC 3720 keys: answered No */
	{ "OFMarker", KT_BOOL_AND, NO_STORE, 0, 1, 0, 0, 0, 0 },
};

static const struct key_desc *find_key(const char *k, size_t kl)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strlen(keys[i].name) == kl && !memcmp(keys[i].name, k, kl))
			return &keys[i];
	return NULL;
}

static int parse_num(const char *v, size_t vl, uint32_t *out)
{
	char tmp[32], *end;
	unsigned long long x;

	if (!vl || vl >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, v, vl);
	tmp[vl] = '\0';
	if (tmp[0] == '-' || tmp[0] == '+' || tmp[0] == ' ')
		return -EINVAL;
	errno = 0;
	x = strtoull(tmp, &end, 0);
	if (errno || *end || x > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)x;
	return 0;
}

static int parse_bool(const char *v, size_t vl, int *out)
{
	if (vl == 3 && !memcmp(v, "Yes", 3))
		*out = 1;
	else if (vl == 2 && !memcmp(v, "No", 2))
		*out = 0;
	else
		return -EINVAL;
	return 0;
}

static int addkv(struct iscsi_textbuf *out, const char *k, size_t kl, const char *v)
{
	int ret = iscsi_textbuf_append(out, k, kl);

	if (!ret)
		ret = iscsi_textbuf_append(out, "=", 1);
	if (!ret)
		ret = iscsi_textbuf_append(out, v, strlen(v) + 1);
	return ret;
}

/* Return 1 if the comma list v contains item. */
static int list_has(const char *v, size_t vl, const char *item)
{
	size_t il = strlen(item), i = 0;

	while (i <= vl) {
		size_t j = i;

		while (j < vl && v[j] != ',')
			j++;
		if (j - i == il && !memcmp(v + i, item, il))
			return 1;
		i = j + 1;
	}
	return 0;
}

static int decl_copy(char *dst, size_t dsz, const char *v, size_t vl)
{
	if (!vl || vl >= dsz || memchr(v, '\0', vl))
		return -EINVAL;
	memcpy(dst, v, vl);
	dst[vl] = '\0';
	return 0;
}

/* A name the login already checked (ACL, target lookup) may be repeated, not changed. */
static int decl_same(const char *cur, const char *v, size_t vl)
{
	return strlen(cur) == vl && !memcmp(cur, v, vl) ? 0 : -EINVAL;
}

static int negotiate_decl(struct iscsi_neg *n, const char *k, size_t kl, const char *v, size_t vl)
{
	if (kl == 13 && !memcmp(k, "InitiatorName", 13))
		return n->names_locked ? decl_same(n->initiator_name, v, vl) :
			decl_copy(n->initiator_name, sizeof(n->initiator_name), v, vl);
	if (kl == 14 && !memcmp(k, "InitiatorAlias", 14))
		return vl ? decl_copy(n->initiator_alias, sizeof(n->initiator_alias), v, vl) : 0;
	if (kl == 10 && !memcmp(k, "TargetName", 10))
		return n->names_locked ? decl_same(n->target_name, v, vl) :
			decl_copy(n->target_name, sizeof(n->target_name), v, vl);
	/* SessionType was taken in the first pass */
	return 0;
}

static int negotiate_one(struct iscsi_neg *n, const char *k, size_t kl, const char *v, size_t vl,
			 struct iscsi_textbuf *out)
{
	const struct key_desc *d = find_key(k, kl);
	char num[16];
	uint32_t x;
	int b;

	if (!d)
		return addkv(out, k, kl, "NotUnderstood");
	if (d->type == KT_SKIP)
		return 0;
	if (n->full_feature && d->type != KT_MRDSL)
		return addkv(out, k, kl, "Reject");
	if (vl == 13 && !memcmp(v, "NotUnderstood", 13))
		return 0;
	if ((d->session_only && n->session_type == ISCSI_SESSION_DISCOVERY) ||
	    (d->lo && n->non_leading))
		return addkv(out, k, kl, "Irrelevant");

	switch (d->type) {
	case KT_DIGEST: {
		size_t i = 0;
		int *res = (int *)((char *)&n->p + d->off);

		while (i <= vl) { /* first item of the offer that we support */
			size_t j = i;

			while (j < vl && v[j] != ',')
				j++;
			if (j - i == 4 && !memcmp(v + i, "None", 4)) {
				*res = 0;
				return addkv(out, k, kl, "None");
			}
			if (j - i == 6 && !memcmp(v + i, "CRC32C", 6)) {
				*res = 1;
				return addkv(out, k, kl, "CRC32C");
			}
			i = j + 1;
		}
		return addkv(out, k, kl, "Reject");
	}
	case KT_MRDSL:
		if (parse_num(v, vl, &x) || x < d->min || x > d->max)
			return addkv(out, k, kl, "Reject");
		n->p.max_send_dsl = x;
		if (n->declared_mrdsl)
			return 0;
		n->declared_mrdsl = 1;
		n->p.max_recv_dsl = d->ours;
		snprintf(num, sizeof(num), "%u", d->ours);
		return addkv(out, k, kl, num);
	case KT_NUM_MIN:
	case KT_NUM_MAX: {
		uint32_t *res = (uint32_t *)((char *)&n->p + d->off);
		uint32_t ours = d->ours_is_limit && n->max_conns_ours ? n->max_conns_ours : d->ours;

		if (parse_num(v, vl, &x) || x < d->min || x > d->max)
			return addkv(out, k, kl, "Reject");
		if (d->type == KT_NUM_MIN)
			x = x < ours ? x : ours;
		else
			x = x > ours ? x : ours;
		*res = x;
		snprintf(num, sizeof(num), "%u", x);
		return addkv(out, k, kl, num);
	}
	case KT_BOOL_AND:
	case KT_BOOL_OR:
		if (parse_bool(v, vl, &b))
			return addkv(out, k, kl, "Reject");
		b = d->type == KT_BOOL_AND ? (b && d->ours) : (b || d->ours);
		if (d->off != NO_STORE)
			*(int *)((char *)&n->p + d->off) = b;
		return addkv(out, k, kl, b ? "Yes" : "No");
	case KT_AUTH:
		/* recorded only: the login answers once it knows the target's policy */
		n->auth_offered = 1;
		n->auth_offer_none = list_has(v, vl, "None");
		n->auth_offer_chap = list_has(v, vl, "CHAP");
		return 0;
	case KT_DECL:
		if (negotiate_decl(n, k, kl, v, vl)) {
			n->status = ISCSI_LOGIN_INITIATOR_ERR;
			return -EPROTO;
		}
		return 0;
	case KT_LOGIN_ONLY_IGNORED:
		return addkv(out, k, kl, "Irrelevant");
	case KT_SKIP:
	case KT_CHAP:
		return 0;
	}
	return 0;
}

int iscsi_text_negotiate(struct iscsi_neg *n, const char *in, size_t len,
			 struct iscsi_textbuf *out)
{
	const char *k, *v;
	size_t kl, vl, pos = 0;
	int r, ret;

	/* pass 1: SessionType decides which keys are relevant */
	while ((r = iscsi_text_next(in, len, &pos, &k, &kl, &v, &vl)) == 1) {
		int type;

		if (kl != 11 || memcmp(k, "SessionType", 11))
			continue;
		if (vl == 9 && !memcmp(v, "Discovery", 9)) {
			type = ISCSI_SESSION_DISCOVERY;
		} else if (vl == 6 && !memcmp(v, "Normal", 6)) {
			type = ISCSI_SESSION_NORMAL;
		} else {
			n->status = ISCSI_LOGIN_SESSION_TYPE;
			return -EPROTO;
		}
		if (n->names_locked && type != n->session_type) {
			/* the login was checked as the other type (a discovery login turned
			 * normal would be a normal session without a target) */
			n->status = ISCSI_LOGIN_INITIATOR_ERR;
			return -EPROTO;
		}
		n->session_type = type;
	}
	if (r < 0) {
		n->status = ISCSI_LOGIN_INITIATOR_ERR;
		return -EPROTO;
	}
	pos = 0;
	while ((r = iscsi_text_next(in, len, &pos, &k, &kl, &v, &vl)) == 1) {
		if (kl > 63 || vl > ISCSI_TEXT_VALUE_MAX) {
			n->status = ISCSI_LOGIN_INITIATOR_ERR;
			return -EPROTO;
		}
		ret = negotiate_one(n, k, kl, v, vl, out);
		if (ret)
			return ret;
	}
	return 0;
}

int iscsi_text_finish(struct iscsi_neg *n, struct iscsi_textbuf *out)
{
	int ret = 0;

	if (!n->declared_mrdsl) {
		n->declared_mrdsl = 1;
		n->p.max_recv_dsl = ISCSI_OUR_MRDSL;
		ret = iscsi_text_addf(out, "MaxRecvDataSegmentLength", "%u", ISCSI_OUR_MRDSL);
	}
	if (n->p.first_burst > n->p.max_burst)
		n->p.first_burst = n->p.max_burst;
	return ret;
}
