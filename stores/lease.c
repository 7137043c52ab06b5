/* lease.c - the S3 writer lease (see lease.h).
 *
 * Lease object "lease/<32 hex owner id>", JSON (json-c), rewritten by its holder only:
 *   { "owner": "<32 hex>",     random per acquisition, also the key's name
 *     "host": "<hostname>",    gethostname() of the holder
 *     "pid": 1234,             holder's process id
 *     "expires_ns": N }        wall clock, ns since the epoch, after which it is stale
 * No checksum: a lease that does not parse is treated as stale and removed.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "lease.h"
#include "log.h"
#include "util.h"

struct lease {
	struct backend *be;
	char key[64];
	char owner[33];
	char host[HOST_NAME_MAX + 1];
	unsigned ttl_s;
	atomic_uint_fast64_t renewed_mono; /* util_mono_ns() of the last good write */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
};

static int write_lease(struct lease *l)
{
	char buf[512];
	uint64_t start = util_mono_ns();
	int n, rc;

	n = snprintf(buf, sizeof(buf),
		     "{\"owner\":\"%s\",\"host\":\"%s\",\"pid\":%ld,\"expires_ns\":%llu}\n",
		     l->owner, l->host, (long)getpid(),
		     (unsigned long long)(util_now_ns() + (uint64_t)l->ttl_s * 1000000000ull));
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -ENAMETOOLONG;
	rc = l->be->ops->put(l->be->ctx, l->key, buf, (size_t)n, 0);
	if (rc == 0)
		atomic_store(&l->renewed_mono, start);
	return rc;
}

/* 1 if the lease object key is fresh and not ours (a live writer), 0 if stale or ours. */
static int other_is_fresh(struct lease *l, const char *key)
{
	json_tokener *tok;
	json_object *o, *v;
	void *data;
	size_t len;
	const char *host = "";
	long pid = 0;
	uint64_t exp = 0;
	int fresh = 0, rc;

	if (!strcmp(key, l->key))
		return 0;
	rc = l->be->ops->get(l->be->ctx, key, &data, &len);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	tok = json_tokener_new();
	o = tok && len < INT_MAX ? json_tokener_parse_ex(tok, data, (int)len) : NULL;
	if (tok)
		json_tokener_free(tok);
	free(data);
	if (o) {
		if (json_object_object_get_ex(o, "host", &v))
			host = json_object_get_string(v);
		if (json_object_object_get_ex(o, "pid", &v))
			pid = (long)json_object_get_int64(v);
		if (json_object_object_get_ex(o, "expires_ns", &v))
			exp = (uint64_t)json_object_get_int64(v);
		fresh = exp > util_now_ns();
		if (fresh && !strcmp(host, l->host) && pid > 0 && kill((pid_t)pid, 0) < 0 &&
		    errno == ESRCH) {
			log_info("lease", "lease %s of dead process %ld on this host is stale", key, pid);
			fresh = 0;
		}
		json_object_put(o);
	}
	if (!fresh) {
		log_info("lease", "removing stale writer lease %s", key);
		l->be->ops->del(l->be->ctx, key);
	}
	return fresh;
}

struct scan {
	struct lease *l;
	int busy;
	int err;
};

static int scan_cb(void *arg, const char *key, uint64_t size)
{
	struct scan *s = arg;
	int rc = other_is_fresh(s->l, key);

	(void)size;
	if (rc < 0)
		s->err = rc;
	else if (rc > 0)
		s->busy = 1;
	return 0;
}

static int scan(struct lease *l)
{
	struct scan s = { .l = l };
	int rc = l->be->ops->list(l->be->ctx, LEASE_PREFIX, scan_cb, &s);

	if (rc)
		return rc;
	if (s.err)
		return s.err;
	return s.busy ? -EBUSY : 0;
}

static void *renew_main(void *arg)
{
	struct lease *l = arg;
	struct timespec ts;

	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += l->ttl_s / 3 ? l->ttl_s / 3 : 1;
		pthread_cond_timedwait(&l->cv, &l->mu, &ts);
		if (l->stop)
			break;
		pthread_mutex_unlock(&l->mu);
		int rc = write_lease(l);
		if (rc)
			log_error("lease", "renewing writer lease %s failed: %s", l->key, strerror(-rc));
		pthread_mutex_lock(&l->mu);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

int lease_acquire(struct backend *b, unsigned ttl_s, struct lease **out)
{
	struct lease *l = calloc(1, sizeof(*l));
	uint8_t rnd[16];
	int rc;

	if (!l)
		return -ENOMEM;
	l->be = b;
	l->ttl_s = ttl_s ? ttl_s : 60;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	if (gethostname(l->host, sizeof(l->host) - 1) < 0)
		snprintf(l->host, sizeof(l->host), "unknown");
	rc = util_random(rnd, sizeof(rnd));
	if (rc)
		goto out_free;
	util_hex(rnd, sizeof(rnd), l->owner);
	snprintf(l->key, sizeof(l->key), LEASE_PREFIX "%s", l->owner);
	rc = scan(l);
	if (rc)
		goto out_free;
	rc = write_lease(l);
	if (rc)
		goto out_free;
	rc = scan(l); /* a writer that raced us: both step back */
	if (rc)
		goto out_delete;
	rc = -pthread_create(&l->thread, NULL, renew_main, l);
	if (rc)
		goto out_delete;
	*out = l;
	return 0;

out_delete:
	b->ops->del(b->ctx, l->key);
out_free:
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l);
	return rc;
}

int lease_held(struct lease *l)
{
	return util_mono_ns() - atomic_load(&l->renewed_mono) < (uint64_t)l->ttl_s * 1000000000ull;
}

void lease_release(struct lease *l)
{
	int rc;

	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->stop = 1;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->thread, NULL);
	rc = l->be->ops->del(l->be->ctx, l->key);
	if (rc)
		log_warn("lease", "removing writer lease %s failed: %s", l->key, strerror(-rc));
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l);
}
