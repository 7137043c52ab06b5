/* backend_s3.h - the S3 backend (libcurl, SigV4).
 *
 * The object with key K lives at s3://<bucket>/<prefix>/K (just K with no prefix).
 * Requests are signed with SigV4 (s3_sign.c), x-amz-content-sha256 carries the real
 * payload hash, so S3 rejects a body damaged on the way.
 *
 * Semantics against the backend contract (backend.h):
 *   get_range  GET with Range; an object shorter than off+len is -ENODATA.
 *   get        GET of the whole object.
 *   put        PUT; BACKEND_PUT_EXCL adds "If-None-Match: *", which S3 honours (412 ->
 *              -EEXIST) but some servers (s3rver, older MinIO) ignore: EXCL is best
 *              effort on S3 and never the only guard of correctness (callers use
 *              unique keys). A 412 on a retried attempt is checked by reading the
 *              object back: if it holds our bytes, an earlier attempt won and put is 0.
 *   del        HEAD then DELETE (S3's DELETE does not report a missing key): -ENOENT
 *              when absent. Not atomic against a concurrent writer of the same key.
 *   list       ListObjectsV2 with continuation tokens, in S3's order (lexicographic
 *              by UTF-8 bytes on AWS); keys are reported without the backend prefix.
 *   stat       HEAD; size from Content-Length.
 * Errors: 404 -> -ENOENT, 412 -> -EEXIST, 403 -> -EACCES, 416 -> -ENODATA, other 4xx ->
 * -EIO (S3's Code and Message are logged). 5xx, 408, 429, resets and timeouts are
 * retried with exponential backoff and full jitter, bounded in attempts and total time;
 * when exhausted: -ETIMEDOUT if the last failure was a timeout, else -EIO.
 *
 * Thread safety: every op may be called from any number of threads at once; at most
 * `parallelism` requests are in flight, the others wait for a pooled curl handle. Each
 * pooled handle keeps its connections alive between requests.
 */
#ifndef CAIRN_BACKEND_S3_H
#define CAIRN_BACKEND_S3_H

#include <stddef.h>

#include "backend.h"

enum backend_s3_style {
	BACKEND_S3_STYLE_AUTO = 0,  /* path style when an endpoint is given (or the bucket
				     * name has a '.'), virtual-host style otherwise */
	BACKEND_S3_STYLE_PATH = 1,  /* <endpoint>/<bucket>/<key> */
	BACKEND_S3_STYLE_VHOST = 2, /* <scheme>://<bucket>.<endpoint host>/<key> */
};

/* Every field may be zero/NULL for its default. Strings are copied by open. */
struct backend_s3_opts {
	const char *bucket;          /* required */
	const char *prefix;          /* key prefix in the bucket; leading/trailing '/' dropped */
	const char *endpoint;        /* "http://127.0.0.1:9000"; NULL/"" = https://s3.<region>.amazonaws.com */
	const char *region;          /* NULL = $AWS_REGION, else "us-east-1" */
	const char *access_key;      /* NULL: $AWS_ACCESS_KEY_ID, then the credentials file */
	const char *secret_key;      /* NULL: $AWS_SECRET_ACCESS_KEY, then the credentials file */
	const char *session_token;   /* NULL: $AWS_SESSION_TOKEN, then the credentials file */
	const char *profile;         /* credentials file profile; NULL = $AWS_PROFILE or "default".
				      * File: $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials */
	enum backend_s3_style style;
	const char *ca_bundle;       /* PEM file of the CA certificates to trust for https;
				      * NULL = $AWS_CA_BUNDLE, else libcurl's default; "" = the
				      * default even when $AWS_CA_BUNDLE is set */
	unsigned parallelism;        /* concurrent requests (= pooled handles); 0 = 8 */
	unsigned connect_timeout_ms; /* per attempt; 0 = 10 s */
	unsigned request_timeout_ms; /* whole attempt; 0 = 10 min */
	unsigned stall_timeout_ms;   /* abort an attempt moving < 1 byte/s this long; 0 = 30 s
				      * (rounded up to whole seconds) */
	unsigned max_attempts;       /* 0 = 8 */
	unsigned retry_total_ms;     /* no new attempt after this much time; 0 = 15 min */
	unsigned backoff_base_ms;    /* 0 = 100 ms; delay of attempt n is random in
				      * [0, min(cap, base * 2^n)] (full jitter) */
	unsigned backoff_cap_ms;     /* 0 = 20 s */
};

/* Open an S3 backend; it does no network IO (a missing bucket shows on first use).
 * -EINVAL for a missing bucket name or bad endpoint URL, -EACCES when no credentials are
 * found, -ENOMEM. */
int backend_s3_open(const struct backend_s3_opts *o, struct backend **out);

/* Create the backend's bucket (b must come from backend_s3_open), in its region.
 * 0 if created or already there (409 BucketAlreadyOwnedByYou or BucketAlreadyExists:
 * servers without owners, such as s3rver, answer the latter for every bucket; a bucket
 * of someone else's then fails the requests that follow with 403 AccessDenied). */
int backend_s3_create_bucket(struct backend *b);

/* Split "s3://bucket/some/prefix" into bucket and prefix ("" when absent; leading and
 * trailing '/' dropped). -EINVAL when url is not of that form or the bucket name is not
 * a valid S3 bucket name (3-63 chars of a-z 0-9 . -), -ENAMETOOLONG when a part does
 * not fit its buffer. */
int backend_s3_parse_url(const char *url, char *bucket, size_t bucket_cap, char *prefix,
			 size_t prefix_cap);

#endif
