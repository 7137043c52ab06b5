/* history.c - see history.h.
 *
 * Metadata objects, JSON, under "history/<volid>/" (volid: 32 hex chars):
 *   ckpt.<016x hi>.<016x time_ns>
 *                      {"format":1, "root":"<64 hex>", "ckpt_seq":N, "hi":N, "time_ns":N}
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
#include "log.h"
#include "util.h"
#include "volume_head.h"

#define HIST_FORMAT 1

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
	char key[128];
	int ret;

	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "format", json_object_new_int(HIST_FORMAT));
	jadd_root(o, root);
	json_object_object_add(o, "ckpt_seq", json_object_new_uint64(ckpt_seq));
	json_object_object_add(o, "hi", json_object_new_uint64(hi));
	json_object_object_add(o, "time_ns", json_object_new_uint64(time_ns));
	snprintf(key, sizeof(key), "history/%s/ckpt.%016" PRIx64 ".%016" PRIx64, volid, hi,
		 time_ns);
	ret = obj_put(cs, key, o, 1);
	return ret == -EEXIST ? 0 : ret; /* the same map state, recorded already */
}

int history_ckpt_best(struct chunk_store *cs, const char *volid, uint64_t upto,
		      struct history_ckpt *out)
{
	struct json_object *o;
	struct keys k;
	uint64_t best = UINT64_MAX;
	size_t pl;
	char key[160] = "";
	int ret, bad = 0;

	ret = list_keys(cs, volid, "ckpt", &k, &pl);
	if (ret)
		return ret;
	for (unsigned i = 0; i < k.n; i++) {
		uint64_t hi = key_hex(k.v[i] + pl);

		if (hi != UINT64_MAX && hi <= upto && (best == UINT64_MAX || hi > best)) {
			best = hi;
			snprintf(key, sizeof(key), "%s", k.v[i]);
		}
	}
	keys_free(&k);
	if (best == UINT64_MAX)
		return -ENOENT;
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

int history_ckpt_expire(struct chunk_store *cs, const char *volid, uint64_t before_ns,
			struct history_ckpt *boundary)
{
	struct keys k;
	uint64_t keep = 0;
	size_t pl;
	char key[160] = "";
	int ret, found = 0;

	ret = list_keys(cs, volid, "ckpt", &k, &pl);
	if (ret)
		return ret;
	for (unsigned i = 0; i < k.n; i++) {
		uint64_t hi = key_hex(k.v[i] + pl);
		uint64_t t = strlen(k.v[i] + pl) > 17 ? key_hex(k.v[i] + pl + 17) : UINT64_MAX;

		if (hi != UINT64_MAX && t < before_ns && hi >= keep) {
			keep = hi;
			found = 1;
			snprintf(key, sizeof(key), "%s", k.v[i]);
		}
	}
	if (!found) {
		ret = -ENOENT;
		goto out_keys;
	}
	ret = history_ckpt_best(cs, volid, keep, boundary);
	for (unsigned i = 0; i < k.n && !ret; i++) {
		uint64_t hi = key_hex(k.v[i] + pl);

		if (hi < keep) {
			ret = cs->ops->meta_del(cs->ctx, k.v[i]);
			if (ret == -ENOENT)
				ret = 0;
		}
	}
out_keys:
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

struct time_find {
	uint64_t t;
	uint64_t seq;  /* first record newer than t */
	int found;
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

int history_resolve(struct chunk_store *cs, const char *state_dir, const char *point,
		    uint64_t live_next, struct point_plan *out)
{
	struct volume_head h;
	struct history_ckpt best;
	struct journal_span span;
	char vol[VOLUME_NAME_MAX + 1], jdir[4096];
	const char *spec;
	uint64_t to, t;
	int ret, have_journal, have_best;

	ret = history_parse_point(point, vol, &spec);
	if (ret)
		return ret;
	ret = volume_head_find(cs, vol, &h);
	if (ret)
		return ret;
	memset(out, 0, sizeof(*out));
	out->info = h.info;
	history_journal_dir(state_dir ? state_dir : "/nonexistent", h.info.id, jdir, sizeof(jdir));
	ret = journal_span(jdir, &span);
	if (ret && ret != -ENOENT)
		return ret;
	have_journal = ret == 0;
	out->time_ns = util_now_ns();

	if (!spec) {
		to = live_next;
		if (!to) {
			to = h.info.ckpt_seq;
			if (have_journal) {
				ret = journal_scan(jdir, h.info.ckpt_seq, NULL, NULL, &to);
				if (ret)
					return ret;
				if (to < h.info.ckpt_seq)
					to = h.info.ckpt_seq;
			}
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
			if (!have_journal) {
				to = h.info.ckpt_seq;
			} else {
				ret = journal_seek_time(jdir, t, &from);
				if (!ret)
					ret = journal_scan(jdir, from, time_cb, &tf, &end);
				if (ret)
					return ret;
				to = tf.found ? tf.seq : end;
				if (tf.found && to == span.first_seq && span.first_seq > 1)
					return -ENODATA; /* before the first retained record */
			}
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
	if (out->from_seq < out->to_seq && (!have_journal || span.first_seq > out->from_seq))
		return -ENODATA;
	return 0;
}
