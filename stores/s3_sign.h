/* s3_sign.h - AWS Signature Version 4 for S3 requests (Authorization header form).
 *
 * Layout of what is signed (AWS "Signature Calculations for the Authorization Header:
 * Transferring Payload in a Single Chunk"):
 *
 *   canonical request = METHOD '\n' canonical URI '\n' canonical query '\n'
 *                       (lower(name) ':' trimmed value '\n')* for each signed header,
 *                       sorted by name '\n'
 *                       signed headers (lower names joined by ';') '\n'
 *                       hex SHA-256 of the payload
 *   string to sign    = "AWS4-HMAC-SHA256" '\n' amz date '\n'
 *                       scope = YYYYMMDD '/' region '/' service '/' "aws4_request" '\n'
 *                       hex SHA-256 of the canonical request
 *   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4" secret, YYYYMMDD), region), service),
 *                            "aws4_request")
 *   signature         = hex HMAC(signing key, string to sign)
 *
 * Canonical URI: every byte of the unencoded path is URI-encoded except the unreserved
 * set A-Z a-z 0-9 '-' '.' '_' '~' and '/', hex digits upper case. S3 does not normalize
 * the path ("a//b" and "./" stay as they are). Canonical query: names and values encoded
 * the same way ('/' encoded too), sorted by encoded name then value, "name=value" joined
 * by '&'; a parameter without value is "name=". The same strings must be sent on the
 * wire, so callers build their URL from s3_sign_out.canonical_uri/canonical_query.
 *
 * All functions return 0 or a negative errno. Nothing here logs; secrets stay in memory.
 */
#ifndef CAIRN_S3_SIGN_H
#define CAIRN_S3_SIGN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define S3_SHA256_HEX_LEN 64
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* A header or query parameter. For headers, names may be in any case; values are
 * trimmed and inner runs of spaces collapsed when canonicalized. For query parameters,
 * name and value are unencoded; value may be "" or NULL (both give "name="). */
struct s3_kv {
	const char *name;
	const char *value;
};

struct s3_sign_req {
	const char *method;          /* "GET", "PUT", ... */
	const char *path;            /* unencoded absolute path, "/bucket/key" or "/key" */
	const struct s3_kv *query;   /* nquery parameters, any order */
	size_t nquery;
	const struct s3_kv *headers; /* every header to sign: must include host and x-amz-date */
	size_t nheaders;
	const char *payload_hash;    /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
	const char *amz_date;        /* "YYYYMMDDTHHMMSSZ" */
	const char *region;          /* "us-east-1" */
	const char *service;         /* "s3" */
	const char *access_key;
	const char *secret_key;
};

/* Everything computed while signing, all malloc'd and NUL-terminated. */
struct s3_sign_out {
	char *canonical_uri;      /* encoded path, to send as is */
	char *canonical_query;    /* encoded query, to send after '?' when non-empty */
	char *canonical_request;
	char *string_to_sign;
	char *authorization;      /* value of the Authorization header */
	char signature[S3_SHA256_HEX_LEN + 1];
};

/* Sign req. On success the caller frees out with s3_sign_out_free(). -EINVAL when a
 * required field is missing or amz_date is malformed, -ENOMEM. */
int s3_sign(const struct s3_sign_req *req, struct s3_sign_out *out);
void s3_sign_out_free(struct s3_sign_out *out);

/* URI-encode n bytes of in per the S3 rules above; keep_slash keeps '/' as is.
 * Returns a malloc'd string, or NULL on allocation failure. */
char *s3_uri_encode(const char *in, size_t n, int keep_slash);
/* Decode %XX escapes (and nothing else) in place; -EINVAL on a malformed escape. */
int s3_uri_decode(char *s);
/* Lower-case hex SHA-256 of len bytes into out (65 bytes). */
void s3_sha256_hex(const void *data, size_t len, char out[S3_SHA256_HEX_LEN + 1]);
/* Format t (UTC) as "YYYYMMDDTHHMMSSZ" into out (17 bytes). */
void s3_amz_date(time_t t, char out[17]);

#endif
