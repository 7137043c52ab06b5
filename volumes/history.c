/* history.c - see history.h.
 *
 * Metadata objects, JSON, under "history/<volid>/" (volid: 32 hex chars):
 *   ckpt.<016x hi>.<016x time_ns>.<016x ckpt_seq>  (older ones lack the last field)
 *                      {"format":1, "root":"<64 hex>", "ckpt_seq":N, "hi":N, "time_ns":N}
 *                      exact when ckpt_seq == hi: the state at seq:hi with no journal
 *                      (retention rewrites the checkpoints it keeps past the window so)
 *   snap.<name>        {"format":1, "name":"...", "seq":N, "time_ns":N,
 *                       "root":"<64 hex>" (only once materialized)}
 *   mark.<016x seq>    {"format":1, "seq":N, "time_ns":N, "label":"..."}
 * "format" is this layout's version (a newer one is refused with -EPROTO). Checksum:
 * the repository stores metadata objects whole and verifies them; an object that does
 * not parse is -EBADMSG. Keys are written once (a snapshot is replaced only when it is
 * materialized, by a new put of the same content plus its root).
 */
#include "history.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "jstore.h"
#include "log.h"
#include "util.h"
#include "volume_head.h"

#define HIST_FORMAT 1
#define SUB0(a, b) ((a) > (b) ? (a) - (b) : 0)

int history_snap_name_valid(const char *name)
{
	size_t n;

	if (!name)
		return 0;
	n = strlen(name);
	if (!n || n > HISTORY_SNAP_MAX || !isalnum((unsigned char)name[0]) ||
	    !strncmp(name, "seq:", 4))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!isalnum(c) && c != '.' && c != '_' && c != '-' && c != ':')
			return 0;
	}
	return 1;
}

int history_label_valid(const char *label)
{
	size_t n = label ? strlen(label) : 0;

	if (!n || n > HISTORY_LABEL_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)label[i] < 0x20 || label[i] == 0x7f)
			return 0;
	return 1;
}

void history_journal_dir(const char *state_dir, const char *volid, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s/journal", state_dir, volid);
}

void history_view(const char *state_dir, const char *volid, struct history_jview *hv)
{
	memset(hv, 0, sizeof(*hv));
	history_journal_dir(state_dir ? state_dir : "/nonexistent", volid, hv->jdir,
			    sizeof(hv->jdir));
	hv->v.dir[0] = hv->jdir;
	if (state_dir) {
		jstore_cache_dir(state_dir, volid, hv->cdir, sizeof(hv->cdir));
		hv->v.dir[1] = hv->cdir;
	}
}

int history_parse_duration(const char *s, uint64_t *ns)
{
	static const struct {
		char c;
		uint64_t ns;
	} units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 604800 } };
	uint64_t v, mul = 1;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end) {
		unsigned i;

		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (*end == units[i].c)
				break;
		if (i == sizeof(units) / sizeof(units[0]) || end[1])
			return -EINVAL;
		mul = units[i].ns;
	}
	if (v > UINT64_MAX / 1000000000ull / mul)
		return -EINVAL;
	*ns = v * mul * 1000000000ull;
	return 0;
}

char *history_fmt_duration(uint64_t ns, char *buf, size_t len)
{
	static const struct {
		const char *u;
		uint64_t s;
	} units[] = { { "w", 604800 }, { "d", 86400 }, { "h", 3600 }, { "m", 60 }, { "s", 1 } };
	uint64_t sec = ns / 1000000000ull;

	if (!sec) {
		snprintf(buf, len, "0");
		return buf;
	}
	for (unsigned i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (sec % units[i].s == 0) {
			snprintf(buf, len, "%" PRIu64 "%s", sec / units[i].s, units[i].u);
			break;
		}
	return buf;
}

/* ---- JSON objects ---- */

static int obj_put(struct chunk_store *cs, const char *key, struct json_object *o, int excl)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	int ret = cs->ops->meta_put(cs->ctx, key, s, strlen(s), excl ? BACKEND_PUT_EXCL : 0);

	json_object_put(o);
	return ret;
}

static int obj_get(struct chunk_store *cs, const char *key, struct json_object **out)
{
	struct json_object *o, *x;
	void *data;
	size_t len;
	int ret = cs->ops->meta_get(cs->ctx, key, &data, &len);

	if (ret)
		return ret;
	o = json_tokener_parse(data);
	free(data);
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return -EBADMSG;
	}
	if (!json_object_object_get_ex(o, "format", &x) || json_object_get_int(x) > HIST_FORMAT) {
		json_object_put(o);
		return -EPROTO;
	}
	*out = o;
	return 0;
}

static uint64_t jget_u64(struct json_object *o, const char *k, int *bad)
{
	struct json_object *x;

	if (!json_object_object_get_ex(o, k, &x) || !json_object_is_type(x, json_type_int)) {
		*bad = 1;
		return 0;
	}
	return json_object_get_uint64(x);
}

static int jget_root(struct json_object *o, struct chunk_id *root)
{
	struct json_object *x;

	if (!json_object_object_get_ex(o, "root", &x) || !json_object_is_type(x, json_type_string))
		return -ENOENT;
	return util_unhex(json_object_get_string(x), root->b, CHUNK_ID_LEN) ? -EBADMSG : 0;
}

static void jadd_root(struct json_object *o, const struct chunk_id *root)
{
	char hex[2 * CHUNK_ID_LEN + 1];

	util_hex(root->b, CHUNK_ID_LEN, hex);
	json_object_object_add(o, "root", json_object_new_string(hex));
}

/* ---- listing keys under history/<volid>/<kind>. ---- */

struct keys {
	char **v;
	unsigned n, cap;
	int err;
};

static int keys_cb(void *arg, const char *key, uint64_t size)
{
	struct keys *k = arg;

	(void)size;
	if (k->n == k->cap) {
		unsigned cap = k->cap ? k->cap * 2 : 32;
		char **v = realloc(k->v, cap * sizeof(*v));

		if (!v) {
			k->err = -ENOMEM;
			return 1;
		}
		k->v = v;
		k->cap = cap;
	}
	k->v[k->n] = strdup(key);
	if (!k->v[k->n]) {
		k->err = -ENOMEM;
		return 1;
	}
	k->n++;
	return 0;
}

static void keys_free(struct keys *k)
{
	for (unsigned i = 0; i < k->n; i++)
		free(k->v[i]);
	free(k->v);
}

static int list_keys(struct chunk_store *cs, const char *volid, const char *kind,
		     struct keys *k, size_t *plen)
{
	char prefix[96];
	int ret;

	memset(k, 0, sizeof(*k));
	snprintf(prefix, sizeof(prefix), "history/%s/%s.", volid, kind);
	*plen = strlen(prefix);
	ret = cs->ops->meta_list(cs->ctx, prefix, keys_cb, k);
	if (ret > 0)
		ret = 0;
	if (!ret)
		ret = k->err;
	if (ret)
		keys_free(k);
	return ret;
}

/* The 16 hex digits at s (followed by NUL or '.'), UINT64_MAX if not. */
static uint64_t key_hex(const char *s)
{
	char *end;
	uint64_t v;

	if (strlen(s) < 16 || (s[16] && s[16] != '.'))
		return UINT64_MAX;
	v = strtoull(s, &end, 16);
	return end != s + 16 ? UINT64_MAX : v;
}

/* ---- checkpoints ---- */

int history_ckpt_put(struct chunk_store *cs, const char *volid, const struct chunk_id *root,
		     uint64_t ckpt_seq, uint64_t hi, uint64_t time_ns)
{
	struct json_object *o = json_object_new_object();
	char key[160];
	int ret;

	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "format", json_object_new_int(HIST_FORMAT));
	jadd_root(o, root);
	json_object_object_add(o, "ckpt_seq", json_object_new_uint64(ckpt_seq));
	json_object_object_add(o, "hi", json_object_new_uint64(hi));
	json_object_object_add(o, "time_ns", json_object_new_uint64(time_ns));
	snprintf(key, sizeof(key), "history/%s/ckpt.%016" PRIx64 ".%016" PRIx64 ".%016" PRIx64,
		 volid, hi, time_ns, ckpt_seq);
	ret = obj_put(cs, key, o, 1);
	return ret == -EEXIST ? 0 : ret; /* the same map state, recorded already */
}

/* A checkpoint as its key names it. */
struct ckey {
	uint64_t hi, time_ns;
	uint64_t cseq;     /* UINT64_MAX: not in the key (an older key): read the object */
	const char *key;
};

/* Parse the keys of k (prefix length pl) into *out (malloc'd), ordered by hi, then by
 * cseq descending (an exact rewrite before the inexact original). */
static int cmp_ckey(const void *a, const void *b)
{
	const struct ckey *x = a, *y = b;

	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	if (x->cseq != y->cseq)
		return x->cseq == UINT64_MAX ? 1 : y->cseq == UINT64_MAX ? -1 : x->cseq > y->cseq ? -1 : 1;
	return x->time_ns < y->time_ns ? -1 : x->time_ns > y->time_ns;
}

static int ckeys(struct keys *k, size_t pl, struct ckey **out, unsigned *n_out)
{
	struct ckey *v = k->n ? calloc(k->n, sizeof(*v)) : NULL;
	unsigned n = 0;

	if (k->n && !v)
		return -ENOMEM;
	for (unsigned i = 0; i < k->n; i++) {
		const char *p = k->v[i] + pl;
		struct ckey c = { .key = k->v[i], .cseq = UINT64_MAX };

		c.hi = key_hex(p);
		if (c.hi == UINT64_MAX || strlen(p) < 33)
			continue;
		c.time_ns = key_hex(p + 17);
		if (c.time_ns == UINT64_MAX)
			continue;
		if (strlen(p) >= 50)
			c.cseq = key_hex(p + 34);
		v[n++] = c;
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_ckey);
	*out = v;
	*n_out = n;
	return 0;
}

static int ckpt_read(struct chunk_store *cs, const char *key, struct history_ckpt *out)
{
	struct json_object *o;
	int ret, bad = 0;

	ret = obj_get(cs, key, &o);
	if (ret)
		return ret;
	memset(out, 0, sizeof(*out));
	out->ckpt_seq = jget_u64(o, "ckpt_seq", &bad);
	out->hi = jget_u64(o, "hi", &bad);
	out->time_ns = jget_u64(o, "time_ns", &bad);
	if (jget_root(o, &out->root) || out->ckpt_seq > out->hi)
		bad = 1;
	json_object_put(o);
	return bad ? -EBADMSG : 0;
}

int history_ckpt_best(struct chunk_store *cs, const char *volid, uint64_t upto,
		      struct history_ckpt *out)
{
	struct ckey *c;
	struct keys k;
	unsigned n;
	size_t pl;
	int ret, best = -1;

	ret = list_keys(cs, volid, "ckpt", &k, &pl);
	if (ret)
		return ret;
	ret = ckeys(&k, pl, &c, &n);
	if (ret)
		goto out_keys;
	/* the largest hi <= upto; of equal ones, the first (the exact one, if any) */
	for (unsigned i = 0; i < n && c[i].hi <= upto; i++)
		if (best < 0 || c[i].hi != c[best].hi)
			best = (int)i;
	ret = best < 0 ? -ENOENT : ckpt_read(cs, c[best].key, out);
	free(c);
out_keys:
	keys_free(&k);
	return ret;
}

/* Index of the retention boundary among the sorted checkpoints c: the last one made
 * before before_ns (the first of a run of equal hi), or -1. */
static int boundary(const struct ckey *c, unsigned n, uint64_t before_ns)
{
	int best = -1;

	for (unsigned i = 0; i < n; i++)
		if (c[i].time_ns < before_ns && (best < 0 || c[i].hi != c[best].hi))
			best = (int)i;
	return best;
}

int history_ckpt_boundary(struct chunk_store *cs, const char *volid, uint64_t before_ns,
			  struct history_ckpt *out)
{
	struct ckey *c;
	struct keys k;
	unsigned n;
	size_t pl;
	int ret, best;

	ret = list_keys(cs, volid, "ckpt", &k, &pl);
	if (ret)
		return ret;
	ret = ckeys(&k, pl, &c, &n);
	if (ret)
		goto out_keys;
	best = boundary(c, n, before_ns);
	ret = best < 0 ? -ENOENT : ckpt_read(cs, c[best].key, out);
	free(c);
out_keys:
	keys_free(&k);
	return ret;
}

int history_ckpt_list(struct chunk_store *cs, const char *volid,
		      int (*cb)(void *arg, const struct history_ckpt *c, int exact), void *arg)
{
	struct ckey *c;
	struct keys k;
	unsigned n;
	size_t pl;
	int ret;

	ret = list_keys(cs, volid, "ckpt", &k, &pl);
	if (ret)
		return ret;
	ret = ckeys(&k, pl, &c, &n);
	for (unsigned i = 0; !ret && i < n; i++) {
		struct history_ckpt h = { .hi = c[i].hi, .time_ns = c[i].time_ns,
					  .ckpt_seq = c[i].cseq == UINT64_MAX ? 0 : c[i].cseq };

		if (i && c[i - 1].hi == c[i].hi)
			continue;
		ret = cb(arg, &h, c[i].cseq == c[i].hi);
	}
	free(c);
	keys_free(&k);
	return ret;
}

/* c[i] is the oldest checkpoint of its period (time / every) among those not older
 * than since_ns (the tier's window). */
static int oldest_of_period(const struct ckey *c, unsigned n, unsigned i, uint64_t every,
			    uint64_t since_ns)
{
	uint64_t p = c[i].time_ns / every;

	for (unsigned k = 0; k < n; k++)
		if (k != i && c[k].time_ns >= since_ns && c[k].time_ns / every == p &&
		    (c[k].time_ns < c[i].time_ns || (c[k].time_ns == c[i].time_ns && k < i)))
			return 0;
	return 1;
}

int history_ckpt_thin(struct chunk_store *cs, const char *volid,
		      const struct volume_retention *r, uint64_t now, history_exact_fn exact,
		      void *arg, unsigned *kept, unsigned *deleted)
{
	uint64_t ws = SUB0(now, r->retain_ns);
	struct ckey *c;
	struct keys k;
	unsigned n;
	size_t pl;
	int ret, b;

	*kept = *deleted = 0;
	ret = list_keys(cs, volid, "ckpt", &k, &pl);
	if (ret)
		return ret;
	ret = ckeys(&k, pl, &c, &n);
	if (ret)
		goto out_keys;
	b = boundary(c, n, ws);
	for (unsigned i = 0; b >= 0 && i < n && !ret; i++) {
		uint64_t age = now - c[i].time_ns;
		int keep;

		if (c[i].time_ns >= ws || (int)i == b)
			continue;
		keep = (age < r->hourly_ns &&
			oldest_of_period(c, n, i, r->hourly_every_ns, SUB0(now, r->hourly_ns))) ||
		       (age < r->daily_ns &&
			oldest_of_period(c, n, i, r->daily_every_ns, SUB0(now, r->daily_ns)));
		if (keep && c[i].cseq == UINT64_MAX) {
			struct history_ckpt h;

			ret = ckpt_read(cs, c[i].key, &h);
			if (ret == -ENOENT) {
				ret = 0;
				continue;
			}
			if (ret)
				break;
			c[i].cseq = h.ckpt_seq;
		}
		if (keep && c[i].cseq != c[i].hi) {
			struct history_ckpt h = { .hi = c[i].hi, .time_ns = c[i].time_ns,
						  .ckpt_seq = c[i].cseq };
			struct chunk_id root;

			/* past the window its journal goes: store the point seq:hi itself */
			ret = exact(arg, &h, &root);
			if (!ret)
				ret = history_ckpt_put(cs, volid, &root, c[i].hi, c[i].hi,
						       c[i].time_ns);
			if (ret == -ENODATA || ret == -ERANGE) {
				log_warn("history", "%s: checkpoint at seq %" PRIu64 " cannot be made "
					 "exact (its journal is gone); dropping it", volid, c[i].hi);
				keep = 0;
				ret = 0;
			} else if (ret) {
				break;
			}
		} else if (keep) {
			(*kept)++;
			continue;
		}
		ret = cs->ops->meta_del(cs->ctx, c[i].key);
		if (ret == -ENOENT)
			ret = 0;
		if (keep)
			(*kept)++;
		else
			(*deleted)++;
	}
	free(c);
out_keys:
	keys_free(&k);
	return ret;
}

int history_ckpt_purge(struct chunk_store *cs, const char *volid, uint64_t seq)
{
	struct keys k;
	size_t pl;
	int ret;

	ret = list_keys(cs, volid, "ckpt", &k, &pl);
	if (ret)
		return ret;
	for (unsigned i = 0; i < k.n && !ret; i++) {
		const char *p = k.v[i] + pl;
		uint64_t hi = key_hex(p);

		if (hi != UINT64_MAX && hi >= seq && strlen(p) >= 50 && key_hex(p + 34) == hi)
			continue; /* exact, at or after seq */
		ret = cs->ops->meta_del(cs->ctx, k.v[i]);
		if (ret == -ENOENT)
			ret = 0;
	}
	keys_free(&k);
	return ret;
}

int history_mark_expire(struct chunk_store *cs, const char *volid, uint64_t below)
{
	struct keys k;
	size_t pl;
	int ret;

	ret = list_keys(cs, volid, "mark", &k, &pl);
	if (ret)
		return ret;
	for (unsigned i = 0; i < k.n && !ret; i++) {
		if (key_hex(k.v[i] + pl) < below) {
			ret = cs->ops->meta_del(cs->ctx, k.v[i]);
			if (ret == -ENOENT)
				ret = 0;
		}
	}
	keys_free(&k);
	return ret;
}

/* ---- snapshots ---- */

int history_snap_put(struct chunk_store *cs, const char *volid, const struct history_snap *s,
		     int excl)
{
	struct json_object *o = json_object_new_object();
	char key[160];

	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "format", json_object_new_int(HIST_FORMAT));
	json_object_object_add(o, "name", json_object_new_string(s->name));
	json_object_object_add(o, "seq", json_object_new_uint64(s->seq));
	json_object_object_add(o, "time_ns", json_object_new_uint64(s->time_ns));
	if (s->materialized)
		jadd_root(o, &s->root);
	snprintf(key, sizeof(key), "history/%s/snap.%s", volid, s->name);
	return obj_put(cs, key, o, excl);
}

static int snap_parse(struct json_object *o, struct history_snap *s)
{
	struct json_object *x;
	int bad = 0, ret;

	memset(s, 0, sizeof(*s));
	if (!json_object_object_get_ex(o, "name", &x) ||
	    strlen(json_object_get_string(x)) > HISTORY_SNAP_MAX)
		return -EBADMSG;
	strcpy(s->name, json_object_get_string(x));
	s->seq = jget_u64(o, "seq", &bad);
	s->time_ns = jget_u64(o, "time_ns", &bad);
	ret = jget_root(o, &s->root);
	if (ret == -EBADMSG || bad)
		return -EBADMSG;
	s->materialized = ret == 0;
	return 0;
}

int history_snap_get(struct chunk_store *cs, const char *volid, const char *name,
		     struct history_snap *out)
{
	struct json_object *o;
	char key[160];
	int ret;

	if (!history_snap_name_valid(name))
		return -ENOENT;
	snprintf(key, sizeof(key), "history/%s/snap.%s", volid, name);
	ret = obj_get(cs, key, &o);
	if (ret)
		return ret;
	ret = snap_parse(o, out);
	json_object_put(o);
	return ret;
}

int history_snap_del(struct chunk_store *cs, const char *volid, const char *name)
{
	char key[160];

	if (!history_snap_name_valid(name))
		return -ENOENT;
	snprintf(key, sizeof(key), "history/%s/snap.%s", volid, name);
	return cs->ops->meta_del(cs->ctx, key);
}

static int cmp_snap(const void *a, const void *b)
{
	const struct history_snap *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return strcmp(x->name, y->name);
}

int history_snap_list(struct chunk_store *cs, const char *volid,
		      int (*cb)(void *arg, const struct history_snap *s), void *arg)
{
	struct history_snap *v = NULL;
	struct keys k;
	unsigned n = 0;
	size_t pl;
	int ret;

	ret = list_keys(cs, volid, "snap", &k, &pl);
	if (ret)
		return ret;
	if (k.n) {
		v = calloc(k.n, sizeof(*v));
		if (!v) {
			ret = -ENOMEM;
			goto out_keys;
		}
	}
	for (unsigned i = 0; i < k.n; i++) {
		ret = history_snap_get(cs, volid, k.v[i] + pl, &v[n]);
		if (ret == -ENOENT)
			continue; /* deleted meanwhile */
		if (ret)
			goto out_free;
		n++;
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_snap);
	for (unsigned i = 0; i < n && !ret; i++)
		ret = cb(arg, &v[i]);
out_free:
	free(v);
out_keys:
	keys_free(&k);
	return ret;
}

/* ---- marks ---- */

int history_mark_put(struct chunk_store *cs, const char *volid, const struct history_mark *m)
{
	struct json_object *o = json_object_new_object();
	char key[128];

	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "format", json_object_new_int(HIST_FORMAT));
	json_object_object_add(o, "seq", json_object_new_uint64(m->seq));
	json_object_object_add(o, "time_ns", json_object_new_uint64(m->time_ns));
	json_object_object_add(o, "label", json_object_new_string(m->label));
	snprintf(key, sizeof(key), "history/%s/mark.%016" PRIx64, volid, m->seq);
	return obj_put(cs, key, o, 1);
}

int history_mark_list(struct chunk_store *cs, const char *volid, uint64_t from,
		      int (*cb)(void *arg, const struct history_mark *m), void *arg)
{
	struct keys k;
	size_t pl;
	int ret;

	ret = list_keys(cs, volid, "mark", &k, &pl);
	if (ret)
		return ret;
	for (unsigned i = 0; i < k.n && !ret; i++) {
		struct history_mark m = { 0 };
		struct json_object *o, *x;
		int bad = 0;

		if (key_hex(k.v[i] + pl) < from)
			continue;
		ret = obj_get(cs, k.v[i], &o);
		if (ret == -ENOENT) {
			ret = 0;
			continue;
		}
		if (ret)
			break;
		m.seq = jget_u64(o, "seq", &bad);
		m.time_ns = jget_u64(o, "time_ns", &bad);
		if (json_object_object_get_ex(o, "label", &x))
			snprintf(m.label, sizeof(m.label), "%s", json_object_get_string(x));
		json_object_put(o);
		ret = bad ? -EBADMSG : cb(arg, &m);
	}
	keys_free(&k);
	return ret;
}

/* ---- points ---- */

int history_parse_point(const char *point, char vol[VOLUME_NAME_MAX + 1], const char **spec)
{
	const char *at = strchr(point, '@');
	size_t n = at ? (size_t)(at - point) : strlen(point);

	if (!n || n > VOLUME_NAME_MAX)
		return -EINVAL;
	memcpy(vol, point, n);
	vol[n] = 0;
	if (!volume_name_valid(vol))
		return -EINVAL;
	*spec = at ? at + 1 : NULL;
	if (at && !at[1])
		return -EINVAL;
	return 0;
}

struct last_find {
	uint64_t seq, time_ns;
	int any;
};

static int last_cb(void *arg, const struct journal_rec *rec, uint64_t seg_first, uint64_t pos)
{
	struct last_find *l = arg;

	(void)seg_first;
	(void)pos;
	l->seq = rec->seq;
	l->time_ns = rec->time_ns;
	l->any = 1;
	return 0;
}

struct time_find {
	uint64_t t;
	uint64_t seq;  /* first record newer than t */
	int found;
	int any;       /* a record not newer than t was seen */
};

static int time_cb(void *arg, const struct journal_rec *rec, uint64_t seg_first, uint64_t pos)
{
	struct time_find *tf = arg;

	(void)seg_first;
	(void)pos;
	if (rec->time_ns > tf->t) {
		tf->seq = rec->seq;
		tf->found = 1;
		return 1;
	}
	tf->any = 1;
	return 0;
}

static int parse_seq(const char *s, uint64_t *out)
{
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || *end || !*out ? -EINVAL : 0;
}

/* The first seq retained anywhere: in the local journal, or in the repository's
 * segments (the fetched copies only mirror those: one the repository no longer holds
 * is stale, its history dropped, and the chain breaks after it). */
static int first_retained(struct chunk_store *cs, const char *volid,
			  const struct history_jview *hv, int *have, uint64_t *first)
{
	struct journal_view local = { .dir = { hv->v.dir[0] } };
	struct journal_span span;
	struct jstore_seg *segs = NULL;
	unsigned n = 0;
	int ret;

	*have = 0;
	ret = journal_span(&local, &span);
	if (ret && ret != -ENOENT)
		return ret;
	if (!ret) {
		*have = 1;
		*first = span.first_seq;
	}
	ret = jstore_list(cs, volid, &segs, &n);
	if (ret)
		return ret;
	if (n && (!*have || segs[0].first < *first)) {
		*have = 1;
		*first = segs[0].first;
	}
	free(segs);
	return 0;
}

int history_resolve(struct chunk_store *cs, const char *state_dir, const char *point,
		    uint64_t live_next, struct point_plan *out)
{
	struct volume_head h;
	struct history_ckpt best;
	struct history_jview hv;
	char vol[VOLUME_NAME_MAX + 1];
	const char *spec;
	uint64_t to, t, first = 0;
	int ret, have_journal, have_best;

	ret = history_parse_point(point, vol, &spec);
	if (ret)
		return ret;
	ret = volume_head_find(cs, vol, &h);
	if (ret)
		return ret;
	memset(out, 0, sizeof(*out));
	out->info = h.info;
	history_view(state_dir, h.info.id, &hv);
	out->time_ns = util_now_ns();

	if (!spec) {
		to = live_next;
		if (!to) {
			to = h.info.ckpt_seq;
			ret = journal_scan(&hv.v, h.info.ckpt_seq, NULL, NULL, &to);
			if (ret && ret != -ENOENT)
				return ret;
			if (to < h.info.ckpt_seq)
				to = h.info.ckpt_seq;
		}
	} else if (!strncmp(spec, "seq:", 4)) {
		if (parse_seq(spec + 4, &to))
			return -EINVAL;
	} else {
		struct history_snap s;

		ret = history_snap_get(cs, h.info.id, spec, &s);
		if (ret && ret != -ENOENT)
			return ret;
		if (!ret) {
			snprintf(out->snapshot, sizeof(out->snapshot), "%s", s.name);
			out->time_ns = s.time_ns;
			if (s.materialized) {
				out->root = s.root;
				out->from_seq = out->to_seq = s.seq;
				return 0;
			}
			to = s.seq;
		} else if (util_parse_time(spec, &t) == 0) {
			struct time_find tf = { .t = t };
			uint64_t from, end;

			if (t > util_now_ns() + 1000000000ull)
				return -ERANGE;
			if (t < h.info.created_ns)
				return -ENODATA;
			out->time_ns = t;
			ret = jstore_prepare(cs, h.info.id, &hv.v, 0, 0, 1, t);
			if (ret)
				return ret;
			ret = first_retained(cs, h.info.id, &hv, &have_journal, &first);
			if (ret)
				return ret;
			ret = journal_seek_time(&hv.v, t, &from);
			if (ret == -ENOENT) {
				to = h.info.ckpt_seq;
			} else {
				if (!ret)
					ret = journal_scan(&hv.v, from, time_cb, &tf, &end);
				if (ret)
					return ret;
				to = tf.found ? tf.seq : end;
				if (tf.found && to == first && first > 1)
					return -ENODATA; /* before the first retained record */
			}
			/* no record at or before t is kept: the state at t is known only when
			 * t is inside the window (every record after it is kept) */
			if (!tf.any && (!tf.found || to == first) &&
			    t < util_now_ns() - MIN(util_now_ns(), h.info.retention.retain_ns) &&
			    to > 1)
				return -ENODATA;
		} else {
			return -ESRCH;
		}
	}
	out->to_seq = to;

	/* the base: the newest map state that holds nothing at or past the point */
	ret = history_ckpt_best(cs, h.info.id, to, &best);
	if (ret && ret != -ENOENT)
		return ret;
	have_best = ret == 0;
	if (h.hi <= to && (!have_best || h.hi >= best.hi)) {
		out->root = h.root;
		out->from_seq = h.info.ckpt_seq;
	} else if (have_best) {
		out->root = best.root;
		out->from_seq = best.ckpt_seq;
	} else {
		return -ENODATA;
	}
	if (out->from_seq < out->to_seq) {
		ret = first_retained(cs, h.info.id, &hv, &have_journal, &first);
		if (ret)
			return ret;
		if (!have_journal || first > out->from_seq)
			return -ENODATA;
		/* a copy of the repository: fetch the stored segments the replay needs */
		ret = jstore_prepare(cs, h.info.id, &hv.v, out->from_seq, out->to_seq, 0, 0);
		if (ret)
			return ret;
	}
	return 0;
}

int history_span(struct chunk_store *cs, const char *state_dir, const struct volume_info *vi,
		 struct history_span *out)
{
	struct history_jview hv;
	struct journal_span span;
	struct jstore_seg *segs = NULL;
	struct last_find l = { 0 };
	unsigned n = 0;
	int ret;

	memset(out, 0, sizeof(*out));
	history_view(state_dir, vi->id, &hv);
	ret = journal_span(&hv.v, &span);
	if (ret && ret != -ENOENT)
		return ret;
	if (!ret) {
		out->first_seq = span.first_seq;
		out->first_time_ns = span.first_time_ns;
		out->local_bytes = span.bytes;
		out->local_segments = span.segments;
		ret = journal_scan(&hv.v, span.last_first, last_cb, &l, &out->next_seq);
		if (!ret && !l.any) /* a segment just sealed: the last record is before it */
			ret = journal_scan(&hv.v, span.prev_first, last_cb, &l, &out->next_seq);
		if (ret)
			return ret;
		if (out->next_seq < vi->ckpt_seq)
			out->next_seq = vi->ckpt_seq;
		out->have_records = l.any;
		out->last_seq = l.seq;
		out->last_time_ns = l.time_ns;
	} else {
		out->first_seq = out->next_seq = vi->ckpt_seq;
	}
	ret = jstore_list(cs, vi->id, &segs, &n);
	if (ret)
		return ret;
	for (unsigned i = 0; i < n; i++)
		out->repo_bytes += segs[i].bytes;
	out->repo_segments = n;
	if (n) {
		out->repo_first_seq = segs[0].first;
		out->repo_next_seq = segs[n - 1].next;
		if (segs[0].first < out->first_seq || !out->local_segments) {
			out->first_seq = segs[0].first;
			out->first_time_ns = segs[0].created_ns;
		}
		if (segs[n - 1].next > out->next_seq)
			out->next_seq = segs[n - 1].next;
		if (!out->have_records && segs[n - 1].next > segs[n - 1].first) {
			out->have_records = 1; /* its time is in the stored segment only */
			out->last_seq = segs[n - 1].next - 1;
			out->last_time_ns = 0;
		}
	}
	free(segs);
	return 0;
}
