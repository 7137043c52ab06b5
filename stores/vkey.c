/* vkey.c - volume keys (layouts and contracts in vkey.h). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <xxhash.h>

#include "le.h"
#include "log.h"
#include "util.h"
#include "vkey.h"

static const uint8_t obj_magic[8] = { 'C', 'A', 'I', 'R', 'N', 'V', 'K', '1' };
static const uint8_t tomb_magic[8] = { 'C', 'A', 'I', 'R', 'N', 'V', 'K', 'X' };
#define VKEY_VERSION 1
#define NAME_LEN (sizeof(VKEY_PREFIX) + 8 + sizeof(VKEY_TOMB_SUFFIX))
#define CREATE_TRIES 16

/* One key the repository knows: the ctx of its chunk store, so never freed before the
 * table. */
struct vkey_ent {
	struct repo *r;
	uint32_t ref;
	int revoked;               /* destroyed: k is wiped */
	struct aead_keys k;
};

struct vkey_table {
	pthread_mutex_t lock;
	struct vkey_ent **e;
	unsigned n, cap;
};

int vkey_table_create(struct vkey_table **out)
{
	struct vkey_table *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	*out = t;
	return 0;
}

void vkey_table_destroy(struct vkey_table *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < t->n; i++) {
		OPENSSL_cleanse(&t->e[i]->k, sizeof(t->e[i]->k));
		free(t->e[i]);
	}
	free(t->e);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static void obj_name(uint32_t ref, int tomb, char out[NAME_LEN])
{
	snprintf(out, NAME_LEN, VKEY_PREFIX "%08" PRIx32 "%s", ref, tomb ? VKEY_TOMB_SUFFIX : "");
}

int vkey_is_object(const char *name)
{
	size_t pl = strlen(VKEY_PREFIX);
	const char *p = name + pl;

	if (strncmp(name, VKEY_PREFIX, pl))
		return 0;
	for (int i = 0; i < 8; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return 0;
	return !p[8] || !strcmp(p + 8, VKEY_TOMB_SUFFIX);
}

/* Caller holds t->lock. */
static struct vkey_ent *find(struct vkey_table *t, uint32_t ref)
{
	for (unsigned i = 0; i < t->n; i++)
		if (t->e[i]->ref == ref)
			return t->e[i];
	return NULL;
}

/* The entry of ref, added (with keys k, or revoked when k is NULL) unless there is one
 * already. Caller holds t->lock. */
static int add(struct vkey_table *t, struct repo *r, uint32_t ref, const struct aead_keys *k,
	       struct vkey_ent **out)
{
	struct vkey_ent *e = find(t, ref);

	if (e) {
		*out = e;
		return 0;
	}
	if (t->n == t->cap) {
		unsigned cap = t->cap ? 2 * t->cap : 8;
		struct vkey_ent **n = realloc(t->e, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->e = n;
		t->cap = cap;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->r = r;
	e->ref = ref;
	if (k)
		e->k = *k;
	else
		e->revoked = 1;
	t->e[t->n++] = e;
	*out = e;
	return 0;
}

/* 0 if the tombstone of ref exists, -ENOENT if not. */
static int tomb_exists(struct repo *r, uint32_t ref)
{
	char name[NAME_LEN];
	void *d;
	size_t len;
	int rc;

	obj_name(ref, 1, name);
	rc = repo_meta_get(r, name, &d, &len);
	if (rc == 0)
		free(d);
	return rc == -EBADMSG ? 0 : rc; /* a damaged tombstone still says destroyed */
}

/* Read and check the key object of ref: its info and (key not NULL) the key. */
static int load(struct repo *r, uint32_t ref, struct vkey_info *info, uint8_t key[AEAD_KEY_LEN])
{
	char name[NAME_LEN];
	uint8_t *b = NULL;
	size_t len;
	void *d;
	int rc;

	rc = tomb_exists(r, ref);
	if (rc == 0)
		return -EKEYREVOKED;
	if (rc != -ENOENT)
		return rc;
	obj_name(ref, 0, name);
	rc = repo_meta_get(r, name, &d, &len);
	if (rc == -ENOENT)
		return -ENOKEY;
	if (rc)
		return rc;
	b = d;
	if (len != VKEY_OBJ_LEN || memcmp(b, obj_magic, 8) || le_get32(b + 8) != VKEY_VERSION ||
	    le_get32(b + 12) != ref || le_get64(b + 88) != XXH3_64bits(b, 88)) {
		log_error("repo", "volume key object %s is damaged", name);
		rc = -EBADMSG;
		goto out_wipe;
	}
	if (info) {
		info->ref = ref;
		info->generation = le_get64(b + 16);
		info->created_ns = le_get64(b + 24);
		util_hex(b + 32, 16, info->volume);
		info->prev = le_get32(b + 48);
	}
	if (key)
		memcpy(key, b + 56, AEAD_KEY_LEN);
out_wipe:
	OPENSSL_cleanse(b, len);
	free(b);
	return rc;
}

/* The table entry of ref, loading the key if needed (a revoked one too). */
static int get_ent(struct repo *r, uint32_t ref, struct vkey_ent **out)
{
	struct vkey_table *t = repo_vkey_table(r);
	uint8_t key[AEAD_KEY_LEN];
	struct aead_keys k;
	struct vkey_ent *e;
	int rc;

	if (!t)
		return -EOPNOTSUPP;
	if (!ref)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	e = find(t, ref);
	pthread_mutex_unlock(&t->lock);
	if (e) {
		*out = e;
		return 0;
	}
	rc = load(r, ref, NULL, key);
	if (rc == 0)
		rc = aead_derive_volume(key, repo_id_bytes(r), &k);
	OPENSSL_cleanse(key, sizeof(key));
	if (rc && rc != -EKEYREVOKED)
		goto out_wipe;
	pthread_mutex_lock(&t->lock);
	rc = add(t, r, ref, rc ? NULL : &k, out);
	pthread_mutex_unlock(&t->lock);
out_wipe:
	OPENSSL_cleanse(&k, sizeof(k));
	return rc;
}

int vkey_keys(struct repo *r, uint32_t ref, const struct aead_keys **k)
{
	struct vkey_ent *e;
	int rc = get_ent(r, ref, &e);

	if (rc)
		return rc;
	if (__atomic_load_n(&e->revoked, __ATOMIC_ACQUIRE))
		return -EKEYREVOKED;
	*k = &e->k;
	return 0;
}

int vkey_info(struct repo *r, uint32_t ref, struct vkey_info *out)
{
	if (!repo_vkey_table(r))
		return -EOPNOTSUPP;
	if (!ref)
		return -EINVAL;
	return load(r, ref, out, NULL);
}

int vkey_create(struct repo *r, const char *volid, uint64_t gen, uint32_t prev, uint32_t *ref_out)
{
	struct vkey_table *t = repo_vkey_table(r);
	uint8_t b[VKEY_OBJ_LEN];
	struct aead_keys k;
	struct vkey_ent *e;
	char name[NAME_LEN];
	uint32_t ref = 0;
	int rc, tries;

	if (!t)
		return -EOPNOTSUPP;
	memset(b, 0, sizeof(b));
	memcpy(b, obj_magic, 8);
	le_put32(b + 8, VKEY_VERSION);
	le_put64(b + 16, gen);
	le_put64(b + 24, util_now_ns());
	if (strlen(volid) != 32 || util_unhex(volid, b + 32, 16))
		return -EINVAL;
	le_put32(b + 48, prev);
	rc = util_random(b + 56, AEAD_KEY_LEN);
	if (!rc)
		rc = aead_derive_volume(b + 56, repo_id_bytes(r), &k);
	if (rc)
		goto out_wipe;
	for (tries = 0; tries < CREATE_TRIES; tries++) {
		rc = util_random(&ref, sizeof(ref));
		if (rc)
			goto out_wipe;
		if (!ref)
			continue;
		rc = tomb_exists(r, ref); /* references are never reused */
		if (rc == 0)
			continue;
		if (rc != -ENOENT)
			goto out_wipe;
		le_put32(b + 12, ref);
		le_put64(b + 88, XXH3_64bits(b, 88));
		obj_name(ref, 0, name);
		rc = repo_meta_put(r, name, b, sizeof(b), 1);
		if (rc != -EEXIST)
			break;
	}
	if (!rc && tries == CREATE_TRIES)
		rc = -EEXIST;
	if (rc)
		goto out_wipe;
	pthread_mutex_lock(&t->lock);
	rc = add(t, r, ref, &k, &e);
	pthread_mutex_unlock(&t->lock);
	if (!rc)
		*ref_out = ref;
out_wipe:
	OPENSSL_cleanse(b, sizeof(b));
	OPENSSL_cleanse(&k, sizeof(k));
	return rc;
}

int vkey_destroy(struct repo *r, uint32_t ref)
{
	struct vkey_table *t = repo_vkey_table(r);
	uint8_t b[VKEY_TOMB_LEN];
	char name[NAME_LEN];
	struct vkey_ent *e;
	int rc;

	if (!t)
		return -EOPNOTSUPP;
	if (!ref)
		return -EINVAL;
	memset(b, 0, sizeof(b));
	memcpy(b, tomb_magic, 8);
	le_put32(b + 8, VKEY_VERSION);
	le_put32(b + 12, ref);
	le_put64(b + 16, util_now_ns());
	le_put64(b + 24, XXH3_64bits(b, 24));
	obj_name(ref, 1, name);
	rc = repo_meta_put(r, name, b, sizeof(b), 1);
	if (rc && rc != -EEXIST)
		return rc;
	obj_name(ref, 0, name);
	rc = repo_meta_del(r, name);
	if (rc && rc != -ENOENT)
		return rc;
	pthread_mutex_lock(&t->lock);
	rc = add(t, r, ref, NULL, &e);
	if (!rc) {
		__atomic_store_n(&e->revoked, 1, __ATOMIC_RELEASE);
		OPENSSL_cleanse(&e->k, sizeof(e->k));
	}
	pthread_mutex_unlock(&t->lock);
	repo_cache_clear(r); /* no plaintext of its chunks stays in RAM */
	return rc;
}

int vkey_recheck(struct repo *r, unsigned *revoked)
{
	struct vkey_table *t = repo_vkey_table(r);
	uint32_t *refs = NULL;
	unsigned n = 0, gone = 0;
	int rc = 0;

	*revoked = 0;
	if (!t)
		return 0;
	pthread_mutex_lock(&t->lock);
	if (t->n && !(refs = malloc(t->n * sizeof(*refs))))
		rc = -ENOMEM;
	for (unsigned i = 0; !rc && i < t->n; i++)
		if (!__atomic_load_n(&t->e[i]->revoked, __ATOMIC_ACQUIRE))
			refs[n++] = t->e[i]->ref;
	pthread_mutex_unlock(&t->lock);
	for (unsigned i = 0; !rc && i < n; i++) {
		struct vkey_ent *e;
		int trc = tomb_exists(r, refs[i]);

		if (trc == -ENOENT)
			continue;
		if (trc) {
			rc = trc;
			break;
		}
		pthread_mutex_lock(&t->lock);
		e = find(t, refs[i]);
		if (e && !e->revoked) {
			__atomic_store_n(&e->revoked, 1, __ATOMIC_RELEASE);
			OPENSSL_cleanse(&e->k, sizeof(e->k));
			gone++;
		}
		pthread_mutex_unlock(&t->lock);
	}
	free(refs);
	if (gone)
		repo_cache_clear(r); /* no plaintext of their chunks stays in RAM */
	*revoked = gone;
	return rc;
}

/* ---- the chunk store of one key (chunk_store_ops) ---- */

static int ks_put(void *ctx, enum chunk_kind kind, const void *data, size_t len, struct chunk_id *id)
{
	struct vkey_ent *e = ctx;

	return repo_chunk_put_keyed(e->r, e->ref, kind, data, len, id);
}

static int ks_get(void *ctx, const struct chunk_id *id, void *buf, size_t cap, size_t *len)
{
	return repo_chunk_get(((struct vkey_ent *)ctx)->r, id, buf, cap, len);
}

static int ks_ref(void *ctx, const struct chunk_id *id)
{
	return repo_chunk_ref(((struct vkey_ent *)ctx)->r, id);
}

static int ks_flush(void *ctx)
{
	return repo_flush(((struct vkey_ent *)ctx)->r);
}

static int ks_meta_put(void *ctx, const char *key, const void *data, size_t len, int excl)
{
	return repo_meta_put(((struct vkey_ent *)ctx)->r, key, data, len, excl);
}

static int ks_meta_get(void *ctx, const char *key, void **data, size_t *len)
{
	return repo_meta_get(((struct vkey_ent *)ctx)->r, key, data, len);
}

static int ks_meta_del(void *ctx, const char *key)
{
	return repo_meta_del(((struct vkey_ent *)ctx)->r, key);
}

static int ks_meta_list(void *ctx, const char *prefix, backend_list_cb cb, void *arg)
{
	return repo_meta_list(((struct vkey_ent *)ctx)->r, prefix, cb, arg);
}

static int ks_keyed(void *ctx, uint32_t ref, struct chunk_store *out)
{
	return vkey_chunk_store(((struct vkey_ent *)ctx)->r, ref, out);
}

static int ks_key_new(void *ctx, const char *volid, uint64_t gen, uint32_t prev, uint32_t *ref)
{
	return vkey_create(((struct vkey_ent *)ctx)->r, volid, gen, prev, ref);
}

static int ks_key_destroy(void *ctx, uint32_t ref)
{
	return vkey_destroy(((struct vkey_ent *)ctx)->r, ref);
}

static int ks_key_info(void *ctx, uint32_t ref, uint32_t *prev, uint64_t *gen)
{
	struct vkey_info vi;
	int rc = vkey_info(((struct vkey_ent *)ctx)->r, ref, &vi);

	if (!rc) {
		*prev = vi.prev;
		*gen = vi.generation;
	}
	return rc;
}

static const struct chunk_store_ops keyed_ops = {
	.put = ks_put,
	.get = ks_get,
	.ref = ks_ref,
	.flush = ks_flush,
	.meta_put = ks_meta_put,
	.meta_get = ks_meta_get,
	.meta_del = ks_meta_del,
	.meta_list = ks_meta_list,
	.keyed = ks_keyed,
	.key_new = ks_key_new,
	.key_destroy = ks_key_destroy,
	.key_info = ks_key_info,
};

int vkey_chunk_store(struct repo *r, uint32_t ref, struct chunk_store *out)
{
	struct vkey_ent *e;
	int rc = get_ent(r, ref, &e);

	if (rc)
		return rc;
	if (__atomic_load_n(&e->revoked, __ATOMIC_ACQUIRE))
		return -EKEYREVOKED;
	out->ops = &keyed_ops;
	out->ctx = e;
	return 0;
}
