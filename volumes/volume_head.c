/* volume_head.c - see volume_head.h; also volume_create/list/lookup/delete.
 *
 * Head object: meta key "volumes/<volid>/head.<016x version>", a JSON object:
 *   "format"      1, or 2 when "key" is present (this layout's version; a newer one is
 *                 refused with -EPROTO, so a binary that knows no volume keys never
 *                 opens an own-key volume)
 *   "name"        volume name ([A-Za-z0-9._-], <= 64, starting alphanumeric)
 *   "id"          32 hex chars: 16 random bytes, the volume's identity
 *   "size"        bytes (multiple of 512)
 *   "chunk_size"  bytes (power of two, 4 KiB .. 1 MiB)
 *   "physical_block_size"  bytes per physical block the LUN reports (power of two,
 *                 512 .. chunk_size); absent: 512 (one logical block per physical block)
 *   "created_ns"  wall clock of creation, ns since the epoch
 *   "root"        64 hex chars: block map root id (all zeros: an empty map)
 *   "ckpt_seq"    every journal record with seq < ckpt_seq is in the map
 *   "next_seq"    the first journal seq not used when this head was written
 *   "hi"          no record with seq >= hi is in the map (absent in old heads: next_seq)
 *   "version"     equal to the key's version
 *   "deleted"     true in a tombstone
 *   "retention"   {"retain_ns","hourly_ns","hourly_every_ns","daily_ns","daily_every_ns"}
 *                 (volume.h struct volume_retention; absent in old heads: the defaults)
 *   "key"         (format 2) 8 hex chars: the volume key reference (vkey.h) its data
 *                 chunks are under; absent: the repository's keys
 *   "key_generation" (format 2) 1 at creation, +1 at every CRYPTO ERASE
 * Checksum: the repository stores metadata objects whole and verifies them on read;
 * a head that does not parse is reported as -EBADMSG.
 */
#include "volume_head.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "log.h"
#include "util.h"

#define HEAD_FORMAT 2        /* newest known */
#define HEAD_FORMAT_PLAIN 1  /* written when the volume has no key of its own */
#define PREFIX "volumes/"

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;

struct reg {
	void *ctx;
	char volid[33];
	struct reg *next;
};
static struct reg *reg_head;

int volume_name_valid(const char *name)
{
	size_t n;

	if (!name)
		return 0;
	n = strlen(name);
	if (!n || n > VOLUME_NAME_MAX || !isalnum((unsigned char)name[0]))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return 0;
	}
	return 1;
}

void volume_retention_default(struct volume_retention *r)
{
	r->retain_ns = VOLUME_RETAIN_DEFAULT_NS;
	r->hourly_ns = 7 * 24 * 3600 * VOLUME_NS_PER_S;
	r->hourly_every_ns = 3600 * VOLUME_NS_PER_S;
	r->daily_ns = 30 * 24 * 3600 * VOLUME_NS_PER_S;
	r->daily_every_ns = 24 * 3600 * VOLUME_NS_PER_S;
}

int volume_retention_valid(const struct volume_retention *r)
{
	return r->hourly_every_ns && r->daily_every_ns;
}

static void head_key(const char *volid, uint64_t version, char *out, size_t n)
{
	snprintf(out, n, PREFIX "%s/head.%016" PRIx64, volid, version);
}

int volume_head_put(struct chunk_store *cs, const struct volume_head *h)
{
	struct json_object *o = json_object_new_object();
	char root[2 * CHUNK_ID_LEN + 1], key[128];
	const char *s;
	int ret;

	if (!o)
		return -ENOMEM;
	util_hex(h->root.b, CHUNK_ID_LEN, root);
	json_object_object_add(o, "format", json_object_new_int(h->info.key_ref ? HEAD_FORMAT :
							       HEAD_FORMAT_PLAIN));
	json_object_object_add(o, "name", json_object_new_string(h->info.name));
	json_object_object_add(o, "id", json_object_new_string(h->info.id));
	json_object_object_add(o, "size", json_object_new_uint64(h->info.size));
	json_object_object_add(o, "chunk_size", json_object_new_uint64(h->info.chunk_size));
	if (h->info.phys_block)
		json_object_object_add(o, "physical_block_size",
				       json_object_new_uint64(h->info.phys_block));
	json_object_object_add(o, "created_ns", json_object_new_uint64(h->info.created_ns));
	json_object_object_add(o, "root", json_object_new_string(root));
	json_object_object_add(o, "ckpt_seq", json_object_new_uint64(h->info.ckpt_seq));
	json_object_object_add(o, "next_seq", json_object_new_uint64(h->next_seq));
	json_object_object_add(o, "hi", json_object_new_uint64(h->hi ? h->hi : h->next_seq));
	json_object_object_add(o, "version", json_object_new_uint64(h->version));
	json_object_object_add(o, "deleted", json_object_new_boolean(h->deleted));
	{
		const struct volume_retention *r = &h->info.retention;
		struct json_object *ro = json_object_new_object();

		json_object_object_add(ro, "retain_ns", json_object_new_uint64(r->retain_ns));
		json_object_object_add(ro, "hourly_ns", json_object_new_uint64(r->hourly_ns));
		json_object_object_add(ro, "hourly_every_ns", json_object_new_uint64(r->hourly_every_ns));
		json_object_object_add(ro, "daily_ns", json_object_new_uint64(r->daily_ns));
		json_object_object_add(ro, "daily_every_ns", json_object_new_uint64(r->daily_every_ns));
		json_object_object_add(o, "retention", ro);
	}
	if (h->info.key_ref) {
		char kr[9];

		snprintf(kr, sizeof(kr), "%08" PRIx32, h->info.key_ref);
		json_object_object_add(o, "key", json_object_new_string(kr));
		json_object_object_add(o, "key_generation", json_object_new_uint64(h->info.key_gen));
	}
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
	head_key(h->info.id, h->version, key, sizeof(key));
	ret = cs->ops->meta_put(cs->ctx, key, s, strlen(s), BACKEND_PUT_EXCL);
	json_object_put(o);
	if (ret)
		return ret;
	if (h->version >= 2) {
		head_key(h->info.id, h->version - 2, key, sizeof(key));
		ret = cs->ops->meta_del(cs->ctx, key);
		if (ret && ret != -ENOENT)
			log_warn("volume", "cannot drop an old head of %s: %s", h->info.id,
				 strerror(-ret));
	}
	return 0;
}

static int get_u64(struct json_object *o, const char *k, uint64_t *v)
{
	struct json_object *x;

	if (!json_object_object_get_ex(o, k, &x) || !json_object_is_type(x, json_type_int))
		return -EBADMSG;
	*v = json_object_get_uint64(x);
	return 0;
}

static int get_str(struct json_object *o, const char *k, char *out, size_t cap)
{
	struct json_object *x;
	const char *s;

	if (!json_object_object_get_ex(o, k, &x) || !json_object_is_type(x, json_type_string))
		return -EBADMSG;
	s = json_object_get_string(x);
	if (strlen(s) >= cap)
		return -EBADMSG;
	strcpy(out, s);
	return 0;
}

static int head_parse(const void *data, size_t len, struct volume_head *h)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o, *x;
	char root[2 * CHUNK_ID_LEN + 1];
	uint64_t fmt, cs;
	int ret = -EBADMSG;

	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, data, (int)len);
	json_tokener_free(tok);
	if (!o || !json_object_is_type(o, json_type_object))
		goto out_put;
	memset(h, 0, sizeof(*h));
	if (get_u64(o, "format", &fmt))
		goto out_put;
	if (fmt > HEAD_FORMAT) {
		ret = -EPROTO;
		goto out_put;
	}
	if (get_str(o, "name", h->info.name, sizeof(h->info.name)) ||
	    get_str(o, "id", h->info.id, sizeof(h->info.id)) ||
	    get_str(o, "root", root, sizeof(root)) ||
	    util_unhex(root, h->root.b, CHUNK_ID_LEN) ||
	    get_u64(o, "size", &h->info.size) || get_u64(o, "chunk_size", &cs) ||
	    get_u64(o, "created_ns", &h->info.created_ns) ||
	    get_u64(o, "ckpt_seq", &h->info.ckpt_seq) || get_u64(o, "next_seq", &h->next_seq) ||
	    get_u64(o, "version", &h->version))
		goto out_put;
	h->info.chunk_size = (uint32_t)cs;
	if (json_object_object_get_ex(o, "physical_block_size", &x)) {
		uint64_t pb;

		if (get_u64(o, "physical_block_size", &pb) || pb > cs ||
		    !volume_phys_block_valid((uint32_t)pb, (uint32_t)cs))
			goto out_put;
		h->info.phys_block = pb == VOLUME_SECTOR ? 0 : (uint32_t)pb;
	}
	if (get_u64(o, "hi", &h->hi) || h->hi < h->info.ckpt_seq)
		h->hi = h->next_seq;
	if (json_object_object_get_ex(o, "deleted", &x))
		h->deleted = json_object_get_boolean(x);
	volume_retention_default(&h->info.retention);
	if (json_object_object_get_ex(o, "retention", &x) && json_object_is_type(x, json_type_object)) {
		struct volume_retention r = h->info.retention;

		get_u64(x, "retain_ns", &r.retain_ns);
		get_u64(x, "hourly_ns", &r.hourly_ns);
		get_u64(x, "hourly_every_ns", &r.hourly_every_ns);
		get_u64(x, "daily_ns", &r.daily_ns);
		get_u64(x, "daily_every_ns", &r.daily_every_ns);
		if (volume_retention_valid(&r))
			h->info.retention = r;
	}
	if (fmt >= 2 && json_object_object_get_ex(o, "key", &x)) {
		char kr[9], *end;

		if (get_str(o, "key", kr, sizeof(kr)) || strlen(kr) != 8 ||
		    get_u64(o, "key_generation", &h->info.key_gen))
			goto out_put;
		h->info.key_ref = (uint32_t)strtoul(kr, &end, 16);
		if (*end || !h->info.key_ref)
			goto out_put;
	}
	ret = 0;
out_put:
	json_object_put(o);
	return ret;
}

/* Newest key per volume id under "volumes/". */
struct scan {
	char (*ids)[33];
	uint64_t *versions;
	unsigned n, cap;
	int err;
};

static int scan_cb(void *arg, const char *key, uint64_t size)
{
	struct scan *sc = arg;
	const char *p = key + strlen(PREFIX), *h;
	uint64_t ver;
	char *end;

	(void)size;
	h = strchr(p, '/');
	if (!h || h - p != 32 || strncmp(h, "/head.", 6) || strlen(h + 6) != 16)
		return 0;
	ver = strtoull(h + 6, &end, 16);
	if (*end)
		return 0;
	if (sc->n && !strncmp(sc->ids[sc->n - 1], p, 32)) {
		if (ver > sc->versions[sc->n - 1])
			sc->versions[sc->n - 1] = ver;
		return 0;
	}
	if (sc->n == sc->cap) {
		unsigned cap = sc->cap ? sc->cap * 2 : 16;
		void *a = realloc(sc->ids, cap * sizeof(*sc->ids));

		if (!a) {
			sc->err = -ENOMEM;
			return 1;
		}
		sc->ids = a;
		a = realloc(sc->versions, cap * sizeof(*sc->versions));
		if (!a) {
			sc->err = -ENOMEM;
			return 1;
		}
		sc->versions = a;
		sc->cap = cap;
	}
	memcpy(sc->ids[sc->n], p, 32);
	sc->ids[sc->n][32] = 0;
	sc->versions[sc->n++] = ver;
	return 0;
}

static int read_head(struct chunk_store *cs, const char *volid, uint64_t ver,
		     struct volume_head *out)
{
	char key[128];
	void *data;
	size_t len;
	int ret;

	head_key(volid, ver, key, sizeof(key));
	ret = cs->ops->meta_get(cs->ctx, key, &data, &len);
	if (ret)
		return ret;
	ret = head_parse(data, len, out);
	free(data);
	if (!ret && strcmp(out->info.id, volid))
		ret = -EBADMSG;
	return ret;
}

/* Every volume's newest head (deleted ones too); *out malloc'd. */
static int load_all(struct chunk_store *cs, struct volume_head **out, unsigned *n_out)
{
	struct scan sc = { 0 };
	struct volume_head *hs = NULL;
	unsigned n = 0;
	int ret;

	ret = cs->ops->meta_list(cs->ctx, PREFIX, scan_cb, &sc);
	if (ret > 0)
		ret = 0;
	if (!ret)
		ret = sc.err;
	if (ret)
		goto out_free_scan;
	if (sc.n) {
		hs = calloc(sc.n, sizeof(*hs));
		if (!hs) {
			ret = -ENOMEM;
			goto out_free_scan;
		}
	}
	for (unsigned i = 0; i < sc.n; i++) {
		ret = read_head(cs, sc.ids[i], sc.versions[i], &hs[n]);
		if (ret == -ENOENT)
			continue; /* raced with a newer head replacing it */
		if (ret) {
			log_error("volume", "head %s/%016" PRIx64 " is unreadable: %s", sc.ids[i],
				  sc.versions[i], strerror(-ret));
			free(hs);
			goto out_free_scan;
		}
		n++;
	}
	*out = hs;
	*n_out = n;
	ret = 0;
out_free_scan:
	free(sc.ids);
	free(sc.versions);
	return ret;
}

int volume_head_get(struct chunk_store *cs, const char *volid, struct volume_head *out)
{
	struct scan sc = { 0 };
	char prefix[64];
	int ret;

	snprintf(prefix, sizeof(prefix), PREFIX "%s/", volid);
	ret = cs->ops->meta_list(cs->ctx, prefix, scan_cb, &sc);
	if (ret > 0)
		ret = 0;
	if (!ret)
		ret = sc.err;
	if (!ret)
		ret = sc.n ? read_head(cs, sc.ids[0], sc.versions[0], out) : -ENOENT;
	free(sc.ids);
	free(sc.versions);
	return ret;
}

int volume_head_find(struct chunk_store *cs, const char *name, struct volume_head *out)
{
	struct volume_head *hs;
	unsigned n;
	int ret = load_all(cs, &hs, &n);

	if (ret)
		return ret;
	ret = -ENOENT;
	for (unsigned i = 0; i < n; i++) {
		if (!hs[i].deleted && !strcmp(hs[i].info.name, name)) {
			*out = hs[i];
			ret = 0;
			break;
		}
	}
	free(hs);
	return ret;
}

int volume_head_claim(struct chunk_store *cs, const char *volid)
{
	struct reg *r;
	int ret = 0;

	pthread_mutex_lock(&reg_lock);
	for (r = reg_head; r; r = r->next)
		if (r->ctx == cs->ctx && !strcmp(r->volid, volid))
			break;
	if (r) {
		ret = -EBUSY;
	} else {
		r = calloc(1, sizeof(*r));
		if (!r) {
			ret = -ENOMEM;
		} else {
			r->ctx = cs->ctx;
			snprintf(r->volid, sizeof(r->volid), "%s", volid);
			r->next = reg_head;
			reg_head = r;
		}
	}
	pthread_mutex_unlock(&reg_lock);
	return ret;
}

void volume_head_release(struct chunk_store *cs, const char *volid)
{
	struct reg **pp;

	pthread_mutex_lock(&reg_lock);
	for (pp = &reg_head; *pp; pp = &(*pp)->next) {
		if ((*pp)->ctx == cs->ctx && !strcmp((*pp)->volid, volid)) {
			struct reg *r = *pp;

			*pp = r->next;
			free(r);
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
}

int volume_create(struct chunk_store *cs, const char *name, uint64_t size, uint32_t chunk_size,
		  struct volume_info *info_out)
{
	return volume_create_from(cs, name, size, chunk_size, NULL, info_out);
}

int volume_create_from(struct chunk_store *cs, const char *name, uint64_t size,
		       uint32_t chunk_size, const struct chunk_id *root,
		       struct volume_info *info_out)
{
	return volume_create_keyed(cs, name, size, chunk_size, 0, root, 0, 0, info_out);
}

int volume_phys_block_valid(uint32_t phys_block, uint32_t chunk_size)
{
	return !phys_block || (phys_block >= VOLUME_SECTOR && phys_block <= chunk_size &&
			       !(phys_block & (phys_block - 1)));
}

int volume_create_keyed(struct chunk_store *cs, const char *name, uint64_t size,
			uint32_t chunk_size, uint32_t phys_block, const struct chunk_id *root,
			uint32_t own_key, uint64_t key_gen, struct volume_info *info_out)
{
	struct volume_head h = { 0 }, other;
	uint8_t rnd[16];
	int ret;

	if (!chunk_size)
		chunk_size = CHUNK_SIZE_DEFAULT;
	if (!volume_name_valid(name) || !size || size % VOLUME_SECTOR ||
	    chunk_size < CHUNK_SIZE_MIN || chunk_size > CHUNK_SIZE_MAX ||
	    (chunk_size & (chunk_size - 1)) || !volume_phys_block_valid(phys_block, chunk_size) ||
	    size % (phys_block ? phys_block : VOLUME_SECTOR))
		return -EINVAL;
	ret = util_random(rnd, sizeof(rnd));
	if (ret)
		return ret;
	pthread_mutex_lock(&create_lock);
	ret = volume_head_find(cs, name, &other);
	if (!ret) {
		ret = -EEXIST;
		goto out_unlock;
	}
	if (ret != -ENOENT)
		goto out_unlock;
	snprintf(h.info.name, sizeof(h.info.name), "%s", name);
	util_hex(rnd, sizeof(rnd), h.info.id);
	h.info.size = size;
	h.info.chunk_size = chunk_size;
	h.info.phys_block = phys_block == VOLUME_SECTOR ? 0 : phys_block;
	h.info.created_ns = util_now_ns();
	h.info.ckpt_seq = 1;
	volume_retention_default(&h.info.retention);
	h.next_seq = 1;
	h.hi = 1;
	h.version = 1;
	if (root)
		h.root = *root;
	if (own_key == VOLUME_KEY_NEW) {
		/* the key first: a head never names a key that is not there */
		if (!cs->ops->key_new) {
			ret = -EOPNOTSUPP;
			goto out_unlock;
		}
		ret = cs->ops->key_new(cs->ctx, h.info.id, 1, 0, &h.info.key_ref);
		if (ret)
			goto out_unlock;
		h.info.key_gen = 1;
	} else if (own_key) {
		uint32_t prev;
		uint64_t gen;

		/* a clone shares its source's key: it must still be there (a delete of the
		 * source, under this lock, or a CRYPTO ERASE may have destroyed it since the
		 * point was resolved) */
		if (cs->ops->key_info && (ret = cs->ops->key_info(cs->ctx, own_key, &prev, &gen)))
			goto out_unlock;
		h.info.key_ref = own_key;
		h.info.key_gen = key_gen ? key_gen : 1;
	}
	/* the first point of its history: the empty map (or the clone's source) at seq 1 */
	ret = history_ckpt_put(cs, h.info.id, &h.root, 1, 1, h.info.created_ns);
	if (!ret)
		ret = volume_head_put(cs, &h);
	if (!ret && info_out)
		*info_out = h.info;
out_unlock:
	pthread_mutex_unlock(&create_lock);
	return ret;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct volume_head *)a)->info.name,
		      ((const struct volume_head *)b)->info.name);
}

int volume_list(struct chunk_store *cs, int (*cb)(void *arg, const struct volume_info *vi),
		void *arg)
{
	struct volume_head *hs;
	unsigned n;
	int ret = load_all(cs, &hs, &n);

	if (ret)
		return ret;
	if (n)
		qsort(hs, n, sizeof(*hs), cmp_name);
	for (unsigned i = 0; i < n && !ret; i++)
		if (!hs[i].deleted)
			ret = cb(arg, &hs[i].info);
	free(hs);
	return ret;
}

int volume_lookup(struct chunk_store *cs, const char *name, struct volume_info *out)
{
	struct volume_head h;
	int ret;

	if (!volume_name_valid(name))
		return -ENOENT;
	ret = volume_head_find(cs, name, &h);
	if (!ret)
		*out = h.info;
	return ret;
}

/* After the tombstone of an own-key volume (vi): destroy its key unless a live clone
 * shares it, so that the deleted data is unreadable at once, as after a CRYPTO ERASE
 * (gc returns the space later). A failure is logged: the delete stands, and the key
 * then stays until a CRYPTO ERASE or delete of the last volume using it. */
static void destroy_own_key(struct chunk_store *cs, const struct volume_info *vi)
{
	char other[VOLUME_NAME_MAX + 1];
	int ret = volume_key_shared(cs, vi->key_ref, vi->id, other);

	if (ret > 0) {
		log_info("volume", "%s: deleted; its key %08x stays: volume %s shares it",
			 vi->name, vi->key_ref, other);
		return;
	}
	if (!ret)
		ret = cs->ops->key_destroy(cs->ctx, vi->key_ref);
	if (ret)
		log_warn("volume", "%s: deleted, but its key %08x could not be destroyed: %s",
			 vi->name, vi->key_ref, strerror(-ret));
	else
		log_info("volume", "%s: deleted and its key %08x destroyed: its data cannot be "
			 "read any more", vi->name, vi->key_ref);
}

int volume_delete(struct chunk_store *cs, const char *name)
{
	struct volume_head h;
	int ret;

	if (!volume_name_valid(name))
		return -ENOENT;
	pthread_mutex_lock(&create_lock);
	ret = volume_head_find(cs, name, &h);
	if (ret)
		goto out_unlock;
	ret = volume_head_claim(cs, h.info.id);
	if (ret)
		goto out_unlock;
	h.deleted = 1;
	h.version++;
	ret = volume_head_put(cs, &h);
	volume_head_release(cs, h.info.id);
	if (!ret && h.info.key_ref && cs->ops->key_destroy)
		destroy_own_key(cs, &h.info);
out_unlock:
	pthread_mutex_unlock(&create_lock);
	return ret;
}
