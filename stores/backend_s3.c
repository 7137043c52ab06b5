/* backend_s3.c - the S3 backend; see backend_s3.h for the semantics.
 *
 * Request path (one op = one call of s3_perform):
 *   for each attempt (at most max_attempts, none started after retry_total_ms):
 *     take a curl easy handle from the pool (blocking while all are in use),
 *     sign the request with the current time, perform it, give the handle back,
 *     classify the outcome: done (2xx), final error (mapped errno), or retry
 *     after a full-jitter backoff delay.
 *
 * Addressing, with base = scheme://host[:port] and bpath = the endpoint's own path:
 *   path style   base bpath "/" bucket "/" prefix key      Host: host[:port]
 *   vhost style  scheme://bucket.host[:port] bpath "/" prefix key
 * where prefix is "" or "<prefix>/". Bucket requests (list) use the same without key.
 */
#include "backend_s3.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "s3_sign.h"
#include "s3_xml.h"
#include "util.h"

#define SUB "s3"
#define ERR_BODY_MAX (64u << 10) /* error bodies kept for their Code/Message */

struct s3 {
	char *bucket;
	char *key_prefix;     /* "" or "<prefix>/" */
	char *region;
	char *access_key, *secret_key, *session_token;
	char *base;           /* scheme://host[:port] to send to */
	char *host_header;    /* host[:port] as sent and signed */
	char *path_base;      /* bpath (+ "/" bucket in path style), no trailing '/' */
	char *ca_bundle;      /* CA certificates for https, or NULL: libcurl's default */
	long connect_timeout_ms, request_timeout_ms, stall_s;
	unsigned max_attempts, retry_total_ms, backoff_base_ms, backoff_cap_ms;

	/* handle pool: free[0..nfree) are idle; all others are in some thread's hands */
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	CURL **all, **free;
	unsigned nhandles, nfree;

	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
};

/* One request and what came back. */
struct call {
	/* in */
	const char *method;           /* GET PUT DELETE HEAD */
	const char *key;              /* object key without prefix; NULL = bucket request */
	const struct s3_kv *query;
	size_t nquery;
	const void *body;             /* PUT body */
	size_t body_len;
	const char *payload_hash;     /* NULL = hash of the empty body */
	const char *range;            /* Range header value, or NULL */
	uint64_t range_off;           /* offset the range starts at (for a 200 answer) */
	int if_none_match;
	long quiet_status;            /* a final status the caller expects: not logged */
	void *fixed;                  /* exact-size sink: fixed_len bytes expected */
	size_t fixed_len;
	int want_body;                /* collect the 2xx body into body_out */
	/* out */
	long status;
	char *body_out;               /* malloc'd (want_body) */
	size_t body_len_out;
	int64_t content_length;       /* HEAD/GET Content-Length, -1 if none */
	unsigned attempts;
	char err_code[64];            /* S3 error Code of the final answer, or "" */
};

/* Per-attempt transfer state shared with the curl callbacks. */
struct xfer {
	struct call *c;
	CURL *h;
	size_t body_off;              /* request body bytes handed to curl */
	long status;                  /* status of the response being received */
	uint64_t skip;                /* 200 answer to a range request: bytes still to skip */
	size_t got;                   /* bytes stored into the sink */
	int full;                     /* fixed sink full; the rest was dropped on purpose */
	char *dyn;                    /* 2xx body (want_body) */
	size_t dyn_cap;
	char *err;                    /* non-2xx body, up to ERR_BODY_MAX */
	size_t err_len, err_cap;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	s3_xml_init();
}

/* ---- handle pool and share ---- */

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *arg)
{
	struct s3 *s = arg;

	(void)h;
	(void)a;
	pthread_mutex_lock(&s->share_locks[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *arg)
{
	struct s3 *s = arg;

	(void)h;
	pthread_mutex_unlock(&s->share_locks[d]);
}

static CURL *pool_get(struct s3 *s)
{
	CURL *h;

	pthread_mutex_lock(&s->pool_lock);
	while (s->nfree == 0)
		pthread_cond_wait(&s->pool_cond, &s->pool_lock);
	h = s->free[--s->nfree];
	pthread_mutex_unlock(&s->pool_lock);
	return h;
}

static void pool_put(struct s3 *s, CURL *h)
{
	pthread_mutex_lock(&s->pool_lock);
	s->free[s->nfree++] = h;
	pthread_cond_signal(&s->pool_cond);
	pthread_mutex_unlock(&s->pool_lock);
}

/* ---- backoff ---- */

static _Thread_local uint64_t rng_state;

static uint64_t rng_next(void)
{
	if (!rng_state) {
		if (util_random(&rng_state, sizeof(rng_state)) || !rng_state)
			rng_state = util_mono_ns() | 1;
	}
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

/* Full jitter: uniform in [0, min(cap, base * 2^attempt)] ms. */
static unsigned backoff_ms(const struct s3 *s, unsigned attempt)
{
	uint64_t ceil = s->backoff_base_ms;

	for (unsigned i = 0; i < attempt && ceil < s->backoff_cap_ms; i++)
		ceil *= 2;
	ceil = MIN(ceil, (uint64_t)s->backoff_cap_ms);
	return (unsigned)(rng_next() % (ceil + 1));
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- curl callbacks ---- */

static size_t read_cb(char *buf, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t want = MIN(size * n, x->c->body_len - x->body_off);

	memcpy(buf, (const char *)x->c->body + x->body_off, want);
	x->body_off += want;
	return want;
}

static int seek_cb(void *arg, curl_off_t off, int origin)
{
	struct xfer *x = arg;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->c->body_len)
		return CURL_SEEKFUNC_FAIL;
	x->body_off = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

static int grow(char **p, size_t *cap, size_t need)
{
	size_t ncap = *cap ? *cap : 4096;
	char *n;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	n = realloc(*p, ncap);
	if (!n)
		return -ENOMEM;
	*p = n;
	*cap = ncap;
	return 0;
}

/* Returning less than size*n makes curl fail the transfer with CURLE_WRITE_ERROR. */
static size_t write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	struct call *c = x->c;
	size_t len = size * n;

	if (!x->status) {
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
		if (c->range && x->status == 200) /* Range ignored: the whole object comes */
			x->skip = c->range_off;
	}
	if (x->status < 200 || x->status > 299) {
		size_t keep = MIN(len, ERR_BODY_MAX - x->err_len);

		if (keep && grow(&x->err, &x->err_cap, x->err_len + keep + 1) == 0) {
			memcpy(x->err + x->err_len, data, keep);
			x->err_len += keep;
			x->err[x->err_len] = 0;
		}
		return len;
	}
	if (c->fixed) {
		size_t skip = (size_t)MIN((uint64_t)len, x->skip), take;

		x->skip -= skip;
		take = MIN(len - skip, c->fixed_len - x->got);
		memcpy((char *)c->fixed + x->got, data + skip, take);
		x->got += take;
		if (x->got == c->fixed_len && skip + take < len) {
			x->full = 1; /* more than asked for: stop this transfer */
			return 0;
		}
		return len;
	}
	if (c->want_body) {
		if (!x->dyn) {
			curl_off_t cl = -1;

			curl_easy_getinfo(x->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
			if (cl > 0 && (uint64_t)cl < SIZE_MAX / 2 && grow(&x->dyn, &x->dyn_cap, (size_t)cl + 1))
				return 0;
		}
		if (grow(&x->dyn, &x->dyn_cap, x->got + len + 1))
			return 0;
		memcpy(x->dyn + x->got, data, len);
		x->got += len;
		x->dyn[x->got] = 0;
	}
	return len;
}

/* ---- one attempt ---- */

enum outcome { OUT_DONE, OUT_FINAL, OUT_RETRY };

static int curl_retryable(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_WEIRD_SERVER_REPLY:
		return 1;
	default:
		return 0;
	}
}

/* Build the request path (unencoded): path_base "/" [prefix key]. */
static char *request_path(const struct s3 *s, const char *key)
{
	char *p;

	if (asprintf(&p, "%s/%s%s", s->path_base, key ? s->key_prefix : "", key ? key : "") < 0)
		return NULL;
	return p;
}

static int add_header(struct curl_slist **l, const char *name, const char *value)
{
	char line[2048];
	struct curl_slist *n;

	if ((size_t)snprintf(line, sizeof(line), "%s: %s", name, value) >= sizeof(line))
		return -EINVAL;
	if (!*value) /* "Name;" sends an empty header; "Name:" would remove it */
		snprintf(line, sizeof(line), "%s;", name);
	n = curl_slist_append(*l, line);
	if (!n)
		return -ENOMEM;
	*l = n;
	return 0;
}

/* Sign and set up the request on x->h; *hdrs gets the header list to free. */
static int setup(struct s3 *s, struct xfer *x, struct curl_slist **hdrs, char **url_out)
{
	struct call *c = x->c;
	struct s3_kv h[8];
	struct s3_sign_out so;
	struct s3_sign_req sr;
	char date[17], *path, *url = NULL;
	size_t nh = 0;
	int rc;

	path = request_path(s, c->key);
	if (!path)
		return -ENOMEM;
	s3_amz_date(time(NULL), date);
	h[nh++] = (struct s3_kv){ "host", s->host_header };
	h[nh++] = (struct s3_kv){ "x-amz-content-sha256", c->payload_hash ? c->payload_hash : S3_EMPTY_SHA256 };
	h[nh++] = (struct s3_kv){ "x-amz-date", date };
	if (c->range)
		h[nh++] = (struct s3_kv){ "range", c->range };
	if (c->if_none_match)
		h[nh++] = (struct s3_kv){ "if-none-match", "*" };
	if (s->session_token)
		h[nh++] = (struct s3_kv){ "x-amz-security-token", s->session_token };
	sr = (struct s3_sign_req){
		.method = c->method, .path = path, .query = c->query, .nquery = c->nquery,
		.headers = h, .nheaders = nh, .payload_hash = h[1].value, .amz_date = date,
		.region = s->region, .service = "s3", .access_key = s->access_key,
		.secret_key = s->secret_key,
	};
	rc = s3_sign(&sr, &so);
	free(path);
	if (rc)
		return rc;
	if (asprintf(&url, "%s%s%s%s", s->base, so.canonical_uri, so.canonical_query[0] ? "?" : "",
		     so.canonical_query) < 0) {
		url = NULL;
		rc = -ENOMEM;
		goto out_free_sign;
	}
	for (size_t i = 0; i < nh && !rc; i++)
		rc = add_header(hdrs, h[i].name, h[i].value);
	if (!rc)
		rc = add_header(hdrs, "Authorization", so.authorization);
	if (!rc) { /* "Expect:" removes curl's 100-continue wait */
		struct curl_slist *n = curl_slist_append(*hdrs, "Expect:");

		if (n)
			*hdrs = n;
		else
			rc = -ENOMEM;
	}
	if (rc)
		goto out_free_url;

	curl_easy_reset(x->h);
	curl_easy_setopt(x->h, CURLOPT_URL, url);
	curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, *hdrs);
	curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(x->h, CURLOPT_SHARE, s->share);
	if (s->ca_bundle)
		curl_easy_setopt(x->h, CURLOPT_CAINFO, s->ca_bundle);
	curl_easy_setopt(x->h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(x->h, CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
	curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, s->request_timeout_ms);
	curl_easy_setopt(x->h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(x->h, CURLOPT_LOW_SPEED_TIME, s->stall_s);
	curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
	if (!strcmp(c->method, "HEAD")) {
		curl_easy_setopt(x->h, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(c->method, "PUT")) {
		curl_easy_setopt(x->h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(x->h, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(x->h, CURLOPT_READDATA, x);
		curl_easy_setopt(x->h, CURLOPT_SEEKFUNCTION, seek_cb);
		curl_easy_setopt(x->h, CURLOPT_SEEKDATA, x);
		curl_easy_setopt(x->h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)c->body_len);
	} else if (strcmp(c->method, "GET")) {
		curl_easy_setopt(x->h, CURLOPT_CUSTOMREQUEST, c->method);
	}
	*url_out = url;
	url = NULL;
out_free_url:
	free(url);
out_free_sign:
	s3_sign_out_free(&so);
	return rc;
}

/* Map a final HTTP status to an errno, logging S3's explanation. */
static enum outcome classify_status(struct s3 *s, struct xfer *x, int *rc)
{
	struct call *c = x->c;
	char msg[256] = "";
	long st = x->status;

	if (x->err_len)
		s3_xml_error(x->err, x->err_len, c->err_code, sizeof(c->err_code), msg, sizeof(msg));
	if (st == 408 || st == 429 || st >= 500 ||
	    (st == 400 && !strcmp(c->err_code, "RequestTimeout"))) {
		log_debug(SUB, "%s s3://%s/%s%s: HTTP %ld %s %s, will retry", c->method, s->bucket,
			  c->key ? s->key_prefix : "", c->key ? c->key : "", st, c->err_code, msg);
		*rc = -EIO;
		return OUT_RETRY;
	}
	switch (st) {
	case 404:
		*rc = -ENOENT;
		return OUT_FINAL;
	case 412:
		*rc = -EEXIST;
		return OUT_FINAL;
	case 416:
		*rc = -ENODATA;
		return OUT_FINAL;
	case 403:
		*rc = -EACCES;
		break;
	default:
		*rc = -EIO;
		break;
	}
	if (st == c->quiet_status)
		return OUT_FINAL;
	log_error(SUB, "%s s3://%s/%s%s: HTTP %ld %s%s%s", c->method, s->bucket,
		  c->key ? s->key_prefix : "", c->key ? c->key : "", st,
		  c->err_code[0] ? c->err_code : "(no S3 error code)", msg[0] ? ": " : "", msg);
	return OUT_FINAL;
}

static enum outcome attempt(struct s3 *s, struct call *c, int *rc, int *timed_out)
{
	struct xfer x = { .c = c };
	struct curl_slist *hdrs = NULL;
	enum outcome out = OUT_FINAL;
	char *url = NULL;
	curl_off_t cl;
	CURLcode cc;

	*timed_out = 0;
	c->err_code[0] = 0;
	x.h = pool_get(s);
	*rc = setup(s, &x, &hdrs, &url);
	if (*rc)
		goto out_free;
	cc = curl_easy_perform(x.h);
	curl_easy_getinfo(x.h, CURLINFO_RESPONSE_CODE, &x.status);
	if (cc == CURLE_WRITE_ERROR && x.full) {
		cc = CURLE_OK;
	} else if (cc == CURLE_WRITE_ERROR && x.status >= 200 && x.status <= 299) {
		*rc = -ENOMEM; /* our sink could not grow */
		goto out_free;
	}
	if (cc != CURLE_OK) {
		*timed_out = cc == CURLE_OPERATION_TIMEDOUT;
		*rc = cc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EIO;
		if (curl_retryable(cc)) {
			log_debug(SUB, "%s %s: %s, will retry", c->method, c->key ? c->key : "(bucket)",
				  curl_easy_strerror(cc));
			out = OUT_RETRY;
		} else {
			log_error(SUB, "%s s3://%s/%s%s: %s", c->method, s->bucket,
				  c->key ? s->key_prefix : "", c->key ? c->key : "",
				  curl_easy_strerror(cc));
		}
		goto out_free;
	}
	c->status = x.status;
	if (x.status < 200 || x.status > 299) {
		out = classify_status(s, &x, rc);
		goto out_free;
	}
	cl = -1;
	curl_easy_getinfo(x.h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
	c->content_length = cl;
	if (c->fixed && x.got != c->fixed_len) {
		/* 206 (or 200 from a server ignoring Range): the object ends inside the range */
		*rc = x.status == 206 || x.status == 200 ? -ENODATA : -EIO;
		goto out_free;
	}
	if (c->want_body) {
		c->body_out = x.dyn ? x.dyn : malloc(1);
		if (!c->body_out) {
			*rc = -ENOMEM;
			goto out_free;
		}
		x.dyn = NULL;
		c->body_len_out = x.got;
	}
	*rc = 0;
	out = OUT_DONE;
out_free:
	free(x.dyn);
	free(x.err);
	free(url);
	curl_slist_free_all(hdrs);
	pool_put(s, x.h);
	return out;
}

/* Run c with retries; 0 for a 2xx answer, else a negative errno (see backend_s3.h). */
static int perform(struct s3 *s, struct call *c)
{
	uint64_t start = util_mono_ns();
	int rc = -EIO, timed_out = 0;

	for (c->attempts = 0;;) {
		unsigned delay;
		uint64_t elapsed_ms;

		c->attempts++;
		if (attempt(s, c, &rc, &timed_out) != OUT_RETRY)
			return rc;
		if (c->attempts >= s->max_attempts)
			break;
		delay = backoff_ms(s, c->attempts - 1);
		elapsed_ms = (util_mono_ns() - start) / 1000000;
		if (elapsed_ms + delay >= s->retry_total_ms)
			break;
		sleep_ms(delay);
	}
	log_error(SUB, "%s s3://%s/%s%s: giving up after %u attempts", c->method, s->bucket,
		  c->key ? s->key_prefix : "", c->key ? c->key : "", c->attempts);
	return timed_out ? -ETIMEDOUT : rc;
}

/* ---- backend ops ---- */


static int s3_get_range(void *ctx, const char *key, uint64_t off, void *buf, size_t len)
{
	char range[64];
	struct call c = { .method = "GET", .key = key, .fixed = buf, .fixed_len = len,
			  .range = range, .range_off = off };
	int rc = backend_key_check(key);

	if (rc)
		return rc;
	if (len == 0 || off + len < off)
		return -EINVAL;
	snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)off,
		 (unsigned long long)(off + len - 1));
	return perform(ctx, &c);
}

static int s3_get(void *ctx, const char *key, void **data, size_t *len)
{
	struct call c = { .method = "GET", .key = key, .want_body = 1 };
	int rc = backend_key_check(key);

	if (rc)
		return rc;
	rc = perform(ctx, &c);
	if (rc)
		return rc;
	if (c.content_length >= 0 && (uint64_t)c.content_length != c.body_len_out) {
		free(c.body_out);
		return -EIO;
	}
	*data = c.body_out;
	*len = c.body_len_out;
	return 0;
}

static int s3_put(void *ctx, const char *key, const void *data, size_t len, int flags)
{
	char hash[S3_SHA256_HEX_LEN + 1];
	struct call c = { .method = "PUT", .key = key, .body = data, .body_len = len,
			  .payload_hash = hash, .if_none_match = !!(flags & BACKEND_PUT_EXCL) };
	void *back = NULL;
	size_t back_len = 0;
	int rc = backend_key_check(key);

	if (rc)
		return rc;
	s3_sha256_hex(data, len, hash);
	rc = perform(ctx, &c);
	if (rc != -EEXIST || c.attempts < 2)
		return rc;
	/* An earlier attempt may have stored the object before its answer was lost. */
	if (s3_get(ctx, key, &back, &back_len) == 0 && back_len == len &&
	    (len == 0 || memcmp(back, data, len) == 0))
		rc = 0;
	free(back);
	return rc;
}

static int s3_stat(void *ctx, const char *key, uint64_t *size)
{
	struct call c = { .method = "HEAD", .key = key };
	int rc = backend_key_check(key);

	if (rc)
		return rc;
	rc = perform(ctx, &c);
	if (rc)
		return rc;
	if (c.content_length < 0)
		return -EIO;
	*size = (uint64_t)c.content_length;
	return 0;
}

static int s3_del(void *ctx, const char *key)
{
	struct call c = { .method = "DELETE", .key = key };
	uint64_t size;
	int rc;

	rc = s3_stat(ctx, key, &size);
	if (rc)
		return rc;
	return perform(ctx, &c);
}

static int s3_list(void *ctx, const char *prefix, backend_list_cb cb, void *arg)
{
	struct s3 *s = ctx;
	size_t plen = strlen(s->key_prefix);
	char *full = NULL, *token = NULL;
	int rc;

	if (asprintf(&full, "%s%s", s->key_prefix, prefix ? prefix : "") < 0)
		return -ENOMEM;
	do {
		struct s3_kv q[4] = {
			{ "list-type", "2" }, { "prefix", full }, { "encoding-type", "url" },
			{ "continuation-token", token },
		};
		struct call c = { .method = "GET", .query = q, .nquery = token ? 4 : 3,
				  .want_body = 1 };
		struct s3_list_page page;

		rc = perform(s, &c);
		if (rc)
			break;
		rc = s3_xml_list(c.body_out, c.body_len_out, &page);
		free(c.body_out);
		if (rc) {
			log_error(SUB, "list s3://%s/%s: malformed ListObjectsV2 answer", s->bucket, full);
			break;
		}
		for (size_t i = 0; i < page.n && !rc; i++) {
			if (strncmp(page.v[i].key, s->key_prefix, plen) != 0)
				continue;
			rc = cb(arg, page.v[i].key + plen, page.v[i].size);
		}
		free(token);
		token = NULL;
		if (!rc && page.truncated) {
			token = page.next_token;
			page.next_token = NULL;
		}
		s3_list_page_free(&page);
	} while (!rc && token);
	free(token);
	free(full);
	return rc;
}

static void s3_free(struct s3 *s)
{
	for (unsigned i = 0; i < s->nhandles; i++)
		curl_easy_cleanup(s->all[i]);
	if (s->share)
		curl_share_cleanup(s->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&s->share_locks[i]);
	pthread_mutex_destroy(&s->pool_lock);
	pthread_cond_destroy(&s->pool_cond);
	free(s->all);
	free(s->free);
	free(s->bucket);
	free(s->key_prefix);
	free(s->region);
	free(s->access_key);
	if (s->secret_key) {
		memset(s->secret_key, 0, strlen(s->secret_key));
		free(s->secret_key);
	}
	if (s->session_token) {
		memset(s->session_token, 0, strlen(s->session_token));
		free(s->session_token);
	}
	free(s->base);
	free(s->host_header);
	free(s->path_base);
	free(s->ca_bundle);
	free(s);
}

static void s3_close(void *ctx)
{
	s3_free(ctx);
}

static const struct backend_ops s3_ops = {
	.get_range = s3_get_range,
	.get = s3_get,
	.put = s3_put,
	.del = s3_del,
	.list = s3_list,
	.stat = s3_stat,
	.close = s3_close,
};

/* ---- open: configuration, credentials, addressing ---- */

/* S3 bucket naming rules: 3-63 of a-z 0-9 . -, starting and ending alphanumeric. */
static int bucket_ok(const char *b)
{
	size_t n = strlen(b);

	if (n < 3 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = b[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (!alnum && c != '.' && c != '-')
			return 0;
		if ((i == 0 || i == n - 1) && !alnum)
			return 0;
	}
	return 1;
}

int backend_s3_parse_url(const char *url, char *bucket, size_t bucket_cap, char *prefix,
			 size_t prefix_cap)
{
	const char *b, *slash, *p;
	size_t bn, pn;

	if (!url || strncmp(url, "s3://", 5) != 0)
		return -EINVAL;
	b = url + 5;
	slash = strchr(b, '/');
	bn = slash ? (size_t)(slash - b) : strlen(b);
	if (bn >= bucket_cap)
		return -ENAMETOOLONG;
	memcpy(bucket, b, bn);
	bucket[bn] = 0;
	if (!bucket_ok(bucket))
		return -EINVAL;
	p = slash ? slash : b + bn;
	while (*p == '/')
		p++;
	pn = strlen(p);
	while (pn && p[pn - 1] == '/')
		pn--;
	if (pn >= prefix_cap)
		return -ENAMETOOLONG;
	memcpy(prefix, p, pn);
	prefix[pn] = 0;
	if (pn && backend_key_check(prefix))
		return -EINVAL;
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = 0;
	return s;
}

static int set_str(char **dst, const char *v)
{
	char *n = strdup(v);

	if (!n)
		return -ENOMEM;
	free(*dst);
	*dst = n;
	return 0;
}

/* Read aws_access_key_id, aws_secret_access_key and aws_session_token of [profile] (or
 * [profile <name>]) from the shared credentials file. -ENOENT if the file or the profile's
 * keys are missing. */
static int creds_from_file(struct s3 *s, const char *profile)
{
	const char *env = getenv("AWS_SHARED_CREDENTIALS_FILE"), *home = getenv("HOME");
	char path[4096], *text = NULL, *line, *save = NULL;
	size_t len;
	int in = 0, rc;

	if (env && *env)
		snprintf(path, sizeof(path), "%s", env);
	else if (home && *home)
		snprintf(path, sizeof(path), "%s/.aws/credentials", home);
	else
		return -ENOENT;
	rc = util_read_file(path, (void **)&text, &len);
	if (rc)
		return rc;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *l = trim(line), *eq;

		if (*l == '#' || *l == ';' || !*l)
			continue;
		if (*l == '[') {
			char *end = strchr(l, ']'), *name;

			if (!end)
				continue;
			*end = 0;
			name = trim(l + 1);
			if (!strncmp(name, "profile ", 8))
				name = trim(name + 8);
			in = !strcmp(name, profile);
			continue;
		}
		eq = strchr(l, '=');
		if (!in || !eq)
			continue;
		*eq = 0;
		l = trim(l);
		eq = trim(eq + 1);
		if (!strcmp(l, "aws_access_key_id"))
			rc = set_str(&s->access_key, eq);
		else if (!strcmp(l, "aws_secret_access_key"))
			rc = set_str(&s->secret_key, eq);
		else if (!strcmp(l, "aws_session_token"))
			rc = set_str(&s->session_token, eq);
		if (rc)
			break;
	}
	memset(text, 0, len);
	free(text);
	if (!rc && (!s->access_key || !s->secret_key))
		rc = -ENOENT;
	return rc;
}

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);

	return v && *v ? v : dflt;
}

static int load_creds(struct s3 *s, const struct backend_s3_opts *o)
{
	const char *ak = o->access_key, *sk = o->secret_key, *tok = o->session_token;
	const char *profile;
	int rc;

	if (!ak || !sk) {
		ak = env_or("AWS_ACCESS_KEY_ID", NULL);
		sk = env_or("AWS_SECRET_ACCESS_KEY", NULL);
		tok = env_or("AWS_SESSION_TOKEN", NULL);
	}
	if (ak && sk) {
		s->access_key = strdup(ak);
		s->secret_key = strdup(sk);
		s->session_token = tok && *tok ? strdup(tok) : NULL;
		if (!s->access_key || !s->secret_key || (tok && *tok && !s->session_token))
			return -ENOMEM;
		return 0;
	}
	profile = o->profile && *o->profile ? o->profile : env_or("AWS_PROFILE", "default");
	rc = creds_from_file(s, profile);
	if (rc == -ENOENT || rc == -EACCES) {
		log_error(SUB, "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
			  "or profile [%s] in the AWS credentials file", profile);
		return -EACCES;
	}
	return rc;
}

/* Fill base, host_header and path_base from the endpoint and addressing style. */
static int load_endpoint(struct s3 *s, const struct backend_s3_opts *o)
{
	char *dflt = NULL, *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	const char *ep = o->endpoint;
	CURLU *u;
	int vhost, rc = -EINVAL;
	size_t pl;

	if (!ep || !*ep) {
		if (asprintf(&dflt, "https://s3.%s.amazonaws.com", s->region) < 0)
			return -ENOMEM;
		ep = dflt;
	}
	vhost = o->style == BACKEND_S3_STYLE_VHOST ||
		(o->style == BACKEND_S3_STYLE_AUTO && dflt && !strchr(s->bucket, '.'));
	u = curl_url();
	if (!u) {
		rc = -ENOMEM;
		goto out_free_default;
	}
	if (curl_url_set(u, CURLUPART_URL, ep, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") && strcmp(scheme, "https"))) {
		log_error(SUB, "bad S3 endpoint URL '%s': expected http(s)://host[:port]", ep);
		goto out_free_url;
	}
	curl_url_get(u, CURLUPART_PORT, &port, 0); /* only when given explicitly */
	if (asprintf(&s->host_header, "%s%s%s%s%s", vhost ? s->bucket : "", vhost ? "." : "",
		     host, port ? ":" : "", port ? port : "") < 0) {
		s->host_header = NULL;
		rc = -ENOMEM;
		goto out_free_url;
	}
	pl = strlen(path);
	while (pl && path[pl - 1] == '/')
		pl--;
	if (asprintf(&s->base, "%s://%s", scheme, s->host_header) < 0 ||
	    asprintf(&s->path_base, "%.*s%s%s", (int)pl, path, vhost ? "" : "/",
		     vhost ? "" : s->bucket) < 0) {
		s->base = NULL;
		s->path_base = NULL;
		rc = -ENOMEM;
		goto out_free_url;
	}
	rc = 0;
out_free_url:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
out_free_default:
	free(dflt);
	return rc;
}

static int make_pool(struct s3 *s, unsigned n)
{
	s->all = calloc(n, sizeof(*s->all));
	s->free = calloc(n, sizeof(*s->free));
	if (!s->all || !s->free)
		return -ENOMEM;
	for (; s->nhandles < n; s->nhandles++) {
		s->all[s->nhandles] = curl_easy_init();
		if (!s->all[s->nhandles])
			return -ENOMEM;
		s->free[s->nfree++] = s->all[s->nhandles];
	}
	s->share = curl_share_init();
	if (!s->share)
		return -ENOMEM;
	curl_share_setopt(s->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(s->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(s->share, CURLSHOPT_USERDATA, s);
	curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	return 0;
}

static unsigned or_default(unsigned v, unsigned dflt)
{
	return v ? v : dflt;
}

int backend_s3_open(const struct backend_s3_opts *o, struct backend **out)
{
	struct backend *b;
	struct s3 *s;
	char *prefix;
	size_t pl;
	int rc;

	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return -ENOMEM;
	if (!o || !o->bucket || !bucket_ok(o->bucket))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->pool_lock, NULL);
	pthread_cond_init(&s->pool_cond, NULL);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&s->share_locks[i], NULL);

	prefix = (char *)(o->prefix ? o->prefix : "");
	while (*prefix == '/')
		prefix++;
	pl = strlen(prefix);
	while (pl && prefix[pl - 1] == '/')
		pl--;
	s->bucket = strdup(o->bucket);
	if (o->ca_bundle ? *o->ca_bundle : !!env_or("AWS_CA_BUNDLE", NULL)) {
		s->ca_bundle = strdup(o->ca_bundle ? o->ca_bundle : env_or("AWS_CA_BUNDLE", NULL));
		if (!s->ca_bundle) {
			rc = -ENOMEM;
			goto out_free_s3;
		}
	}
	s->region = strdup(o->region && *o->region ? o->region :
			   env_or("AWS_REGION", env_or("AWS_DEFAULT_REGION", "us-east-1")));
	if (asprintf(&s->key_prefix, "%.*s%s", (int)pl, prefix, pl ? "/" : "") < 0)
		s->key_prefix = NULL;
	if (!s->bucket || !s->region || !s->key_prefix) {
		rc = -ENOMEM;
		goto out_free_s3;
	}
	s->connect_timeout_ms = or_default(o->connect_timeout_ms, 10000);
	s->request_timeout_ms = or_default(o->request_timeout_ms, 600000);
	s->stall_s = (or_default(o->stall_timeout_ms, 30000) + 999) / 1000;
	s->max_attempts = or_default(o->max_attempts, 8);
	s->retry_total_ms = or_default(o->retry_total_ms, 900000);
	s->backoff_base_ms = or_default(o->backoff_base_ms, 100);
	s->backoff_cap_ms = or_default(o->backoff_cap_ms, 20000);

	rc = load_creds(s, o);
	if (rc)
		goto out_free_s3;
	rc = load_endpoint(s, o);
	if (rc)
		goto out_free_s3;
	rc = make_pool(s, or_default(o->parallelism, 8));
	if (rc)
		goto out_free_s3;

	b = calloc(1, sizeof(*b));
	if (!b) {
		rc = -ENOMEM;
		goto out_free_s3;
	}
	if (asprintf(&b->url, "s3://%s/%.*s", s->bucket, (int)pl, prefix) < 0) {
		rc = -ENOMEM;
		goto out_free_backend;
	}
	b->ops = &s3_ops;
	b->ctx = s;
	*out = b;
	log_debug(SUB, "opened s3://%s/%s at %s%s (region %s)", s->bucket, s->key_prefix, s->base,
		  s->path_base, s->region);
	return 0;

out_free_backend:
	free(b);
out_free_s3:
	s3_free(s);
	return rc;
}

int backend_s3_create_bucket(struct backend *b)
{
	static const char fmt[] =
		"<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<LocationConstraint>%s</LocationConstraint></CreateBucketConfiguration>";
	char body[256] = "", hash[S3_SHA256_HEX_LEN + 1];
	struct call c = { .method = "PUT", .payload_hash = hash, .quiet_status = 409 };
	struct s3 *s;
	int rc;

	if (!b || b->ops != &s3_ops)
		return -EINVAL;
	s = b->ctx;
	if (strcmp(s->region, "us-east-1"))
		snprintf(body, sizeof(body), fmt, s->region);
	c.body = body;
	c.body_len = strlen(body);
	s3_sha256_hex(body, c.body_len, hash);
	rc = perform(s, &c);
	/* 409 BucketAlreadyOwnedByYou: ours. 409 BucketAlreadyExists: on AWS another
	 * account's bucket, but s3rver (and other S3 servers without owners) answer it for
	 * every existing bucket, including one this repository is to share with another
	 * prefix. Either way the bucket is there: go on, and let the requests that follow
	 * decide (a repository already at the prefix: EEXIST from repo_create; someone
	 * else's bucket: 403 AccessDenied, a clear error). Never EEXIST here, which the
	 * caller would report as a repository already existing at the prefix. */
	if (rc == -EIO && c.status == 409) {
		log_debug(SUB, "bucket %s exists (%s)", s->bucket, c.err_code);
		return 0;
	}
	return rc;
}
