/* s3_sign.c - AWS Signature Version 4; see s3_sign.h for what is signed and how. */
#include "s3_sign.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

/* Growing NUL-terminated string; err latches the first allocation failure. */
struct sbuf {
	char *p;
	size_t len, cap;
	int err;
};

static void sb_addn(struct sbuf *b, const char *s, size_t n)
{
	if (b->err)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->err = -ENOMEM;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void sb_add(struct sbuf *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

/* Hand the string over (never NULL unless err), or free it on error. */
static char *sb_take(struct sbuf *b)
{
	char *p;

	if (b->err) {
		free(b->p);
		return NULL;
	}
	if (!b->p)
		sb_addn(b, "", 0);
	p = b->p;
	b->p = NULL;
	return p;
}

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

char *s3_uri_encode(const char *in, size_t n, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(n * 3 + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		if (unreserved(c) || (keep_slash && c == '/')) {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = 0;
	return out;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int s3_uri_decode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s != '%') {
			*o++ = *s;
			continue;
		}
		int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		*o++ = (char)(hi << 4 | lo);
		s += 2;
	}
	*o = 0;
	return 0;
}

void s3_sha256_hex(const void *data, size_t len, char out[S3_SHA256_HEX_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t md[SHA256_DIGEST_LENGTH];

	SHA256(data, len, md);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[S3_SHA256_HEX_LEN] = 0;
}

void s3_amz_date(time_t t, char out[17])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static int amz_date_ok(const char *d)
{
	if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
		return 0;
	for (int i = 0; i < 15; i++)
		if (i != 8 && !isdigit((unsigned char)d[i]))
			return 0;
	return 1;
}

/* One canonical header: lower-case name and trimmed, space-collapsed value. */
struct chdr {
	char *name;
	char *value;
};

static int chdr_cmp(const void *a, const void *b)
{
	return strcmp(((const struct chdr *)a)->name, ((const struct chdr *)b)->name);
}

/* One canonical query parameter, both parts already encoded. */
struct cparam {
	char *name;
	char *value;
};

static int cparam_cmp(const void *a, const void *b)
{
	const struct cparam *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

static char *canon_header_value(const char *v)
{
	struct sbuf b = { 0 };
	const char *end;

	while (*v == ' ' || *v == '\t')
		v++;
	end = v + strlen(v);
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	for (const char *p = v; p < end; p++) {
		if ((*p == ' ' || *p == '\t') && p > v && (p[-1] == ' ' || p[-1] == '\t'))
			continue;
		sb_addn(&b, *p == '\t' ? " " : p, 1);
	}
	return sb_take(&b);
}

static int build_headers(const struct s3_sign_req *req, struct chdr *h)
{
	for (size_t i = 0; i < req->nheaders; i++) {
		const char *n = req->headers[i].name;

		if (!n || !*n || !req->headers[i].value)
			return -EINVAL;
		h[i].name = strdup(n);
		h[i].value = canon_header_value(req->headers[i].value);
		if (!h[i].name || !h[i].value)
			return -ENOMEM;
		for (char *p = h[i].name; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	qsort(h, req->nheaders, sizeof(*h), chdr_cmp);
	for (size_t i = 1; i < req->nheaders; i++)
		if (!strcmp(h[i - 1].name, h[i].name))
			return -EINVAL;
	return 0;
}

static int build_query(const struct s3_sign_req *req, struct cparam *q, char **out)
{
	struct sbuf b = { 0 };

	for (size_t i = 0; i < req->nquery; i++) {
		const char *n = req->query[i].name, *v = req->query[i].value;

		if (!n)
			return -EINVAL;
		v = v ? v : "";
		q[i].name = s3_uri_encode(n, strlen(n), 0);
		q[i].value = s3_uri_encode(v, strlen(v), 0);
		if (!q[i].name || !q[i].value)
			return -ENOMEM;
	}
	qsort(q, req->nquery, sizeof(*q), cparam_cmp);
	for (size_t i = 0; i < req->nquery; i++) {
		if (i)
			sb_add(&b, "&");
		sb_add(&b, q[i].name);
		sb_add(&b, "=");
		sb_add(&b, q[i].value);
	}
	*out = sb_take(&b);
	return *out ? 0 : -ENOMEM;
}

/* out = HMAC-SHA256(key, msg); out may alias key. */
static void hmac(const void *key, size_t klen, const char *msg, uint8_t out[32])
{
	uint8_t tmp[32];
	unsigned int olen = sizeof(tmp);

	HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), tmp, &olen);
	memcpy(out, tmp, sizeof(tmp));
	OPENSSL_cleanse(tmp, sizeof(tmp));
}

int s3_sign(const struct s3_sign_req *req, struct s3_sign_out *out)
{
	struct chdr *h = NULL;
	struct cparam *q = NULL;
	struct sbuf cr = { 0 }, sts = { 0 }, auth = { 0 }, signed_names = { 0 };
	char date[9], crhash[S3_SHA256_HEX_LEN + 1], scope[256];
	uint8_t k[32];
	char *secret = NULL;
	int has_host = 0, has_date = 0, rc;

	memset(out, 0, sizeof(*out));
	if (!req->method || !req->path || req->path[0] != '/' || !req->payload_hash ||
	    !amz_date_ok(req->amz_date) || !req->region || !req->service || !req->access_key ||
	    !req->secret_key)
		return -EINVAL;
	memcpy(date, req->amz_date, 8);
	date[8] = 0;
	if ((size_t)snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date, req->region,
			     req->service) >= sizeof(scope))
		return -EINVAL;

	h = calloc(req->nheaders + 1, sizeof(*h));
	q = calloc(req->nquery + 1, sizeof(*q));
	if (!h || !q) {
		rc = -ENOMEM;
		goto out_free_parts;
	}
	rc = build_headers(req, h);
	if (rc)
		goto out_free_parts;
	for (size_t i = 0; i < req->nheaders; i++) {
		has_host |= !strcmp(h[i].name, "host");
		has_date |= !strcmp(h[i].name, "x-amz-date");
	}
	if (!has_host || !has_date) {
		rc = -EINVAL;
		goto out_free_parts;
	}
	rc = build_query(req, q, &out->canonical_query);
	if (rc)
		goto out_free_parts;
	out->canonical_uri = s3_uri_encode(req->path, strlen(req->path), 1);
	if (!out->canonical_uri) {
		rc = -ENOMEM;
		goto out_free_parts;
	}

	for (size_t i = 0; i < req->nheaders; i++) {
		if (i)
			sb_add(&signed_names, ";");
		sb_add(&signed_names, h[i].name);
	}
	sb_add(&cr, req->method);
	sb_add(&cr, "\n");
	sb_add(&cr, out->canonical_uri);
	sb_add(&cr, "\n");
	sb_add(&cr, out->canonical_query);
	sb_add(&cr, "\n");
	for (size_t i = 0; i < req->nheaders; i++) {
		sb_add(&cr, h[i].name);
		sb_add(&cr, ":");
		sb_add(&cr, h[i].value);
		sb_add(&cr, "\n");
	}
	sb_add(&cr, "\n");
	sb_add(&cr, signed_names.p ? signed_names.p : "");
	sb_add(&cr, "\n");
	sb_add(&cr, req->payload_hash);
	out->canonical_request = sb_take(&cr);
	if (!out->canonical_request || signed_names.err) {
		rc = -ENOMEM;
		goto out_free_parts;
	}

	s3_sha256_hex(out->canonical_request, strlen(out->canonical_request), crhash);
	sb_add(&sts, "AWS4-HMAC-SHA256\n");
	sb_add(&sts, req->amz_date);
	sb_add(&sts, "\n");
	sb_add(&sts, scope);
	sb_add(&sts, "\n");
	sb_add(&sts, crhash);
	out->string_to_sign = sb_take(&sts);
	if (!out->string_to_sign) {
		rc = -ENOMEM;
		goto out_free_parts;
	}

	if (asprintf(&secret, "AWS4%s", req->secret_key) < 0) {
		secret = NULL;
		rc = -ENOMEM;
		goto out_free_parts;
	}
	hmac(secret, strlen(secret), date, k);
	hmac(k, sizeof(k), req->region, k);
	hmac(k, sizeof(k), req->service, k);
	hmac(k, sizeof(k), "aws4_request", k);
	hmac(k, sizeof(k), out->string_to_sign, k);
	for (int i = 0; i < 32; i++)
		snprintf(out->signature + 2 * i, 3, "%02x", k[i]);

	sb_add(&auth, "AWS4-HMAC-SHA256 Credential=");
	sb_add(&auth, req->access_key);
	sb_add(&auth, "/");
	sb_add(&auth, scope);
	sb_add(&auth, ",SignedHeaders=");
	sb_add(&auth, signed_names.p);
	sb_add(&auth, ",Signature=");
	sb_add(&auth, out->signature);
	out->authorization = sb_take(&auth);
	rc = out->authorization ? 0 : -ENOMEM;

out_free_parts:
	if (secret) {
		OPENSSL_cleanse(secret, strlen(secret));
		free(secret);
	}
	OPENSSL_cleanse(k, sizeof(k));
	free(signed_names.p);
	for (size_t i = 0; h && i < req->nheaders; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	for (size_t i = 0; q && i < req->nquery; i++) {
		free(q[i].name);
		free(q[i].value);
	}
	free(h);
	free(q);
	if (rc)
		s3_sign_out_free(out);
	return rc;
}

void s3_sign_out_free(struct s3_sign_out *out)
{
	free(out->canonical_uri);
	free(out->canonical_query);
	free(out->canonical_request);
	free(out->string_to_sign);
	free(out->authorization);
	memset(out, 0, sizeof(*out));
}
