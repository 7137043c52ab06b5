/* repo_check.c - the repository check (see repo_check.h).
 *
 * References: the walker may reach one chunk from many roots (every checkpoint and
 * snapshot shares most of its tree with the others). Each stored chunk is checked
 * once: a bit per record of every stored pack (its slot and record ordinal, as gc
 * marks them), so the memory is one bit per stored chunk; a chunk no pack holds is
 * reported once (an idset of those). Both answer REPO_WALK_SEEN, so a shared subtree
 * is walked once and a missing tree node is not read. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk_codec.h"
#include "idset.h"
#include "index.h"
#include "keyring.h"
#include "pack.h"
#include "repo_check.h"
#include "util.h"
#include "vkey.h"

struct ctx {
	struct repo *r;
	struct backend *be;
	const struct aead_keys *k;
	const struct repo_check_opts *o;
	struct repo_check_result *res;
	uint8_t *rec;
	uint8_t *plain;
	uint32_t nslots;           /* pack slots when the walk began */
	uint64_t **seen;           /* per slot: a bit per record (NULL: not stored) */
	uint32_t *nents;
	struct idset other;        /* chunks not in those slots: missing ones, and any
				    * in a pack stored since */
};

static void damaged(struct ctx *c, const char *object, const char *what)
{
	c->res->damaged++;
	if (c->o->damaged)
		c->o->damaged(c->o->arg, object, what);
}

static void progress(struct ctx *c, const char *phase, uint64_t done, uint64_t total)
{
	if (c->o->progress)
		c->o->progress(c->o->arg, phase, done, total);
}

static int check_keys(struct ctx *c)
{
	struct backend_keys l = { 0 };
	struct repo_key_info ki;
	int rc;

	rc = backend_list_keys(c->be, KEYRING_PREFIX, &l);
	if (rc)
		goto out_free;
	if (repo_encrypted(c->r) && l.n == 0)
		damaged(c, KEYRING_PREFIX, "no key slot at all");
	for (size_t i = 0; i < l.n; i++) {
		void *obj;
		size_t len;

		rc = c->be->ops->get(c->be->ctx, l.keys[i], &obj, &len);
		if (rc == -ENOENT)
			continue; /* removed since the listing */
		if (rc)
			goto out_free;
		c->res->keys++;
		if (keyring_slot_parse(obj, len, &ki))
			damaged(c, l.keys[i], "key slot checksum or format is wrong");
		free(obj);
	}
	rc = 0;
out_free:
	backend_keys_free(&l);
	return rc;
}

static int check_meta(struct ctx *c)
{
	struct backend_keys l = { 0 };
	int rc;

	rc = backend_list_keys(c->be, "meta/", &l);
	if (rc)
		goto out_free;
	for (size_t i = 0; i < l.n; i++) {
		void *data;
		size_t len;

		progress(c, "metadata", i, l.n);
		rc = repo_meta_get(c->r, l.keys[i] + 5, &data, &len);
		if (rc == -ENOENT)
			continue; /* deleted since the listing (a daemon serves the repository) */
		c->res->meta++;
		if (rc == -EBADMSG) {
			damaged(c, l.keys[i], "checksum or authentication failed");
			continue;
		}
		if (rc)
			goto out_free;
		free(data);
	}
	rc = 0;
out_free:
	backend_keys_free(&l);
	return rc;
}

static int same_entries(const struct pack_entry *a, uint32_t na, const struct pack_entry *b,
			uint32_t nb)
{
	if (na != nb)
		return 0;
	for (uint32_t i = 0; i < na; i++)
		if (memcmp(a[i].id.b, b[i].id.b, CHUNK_ID_LEN) || a[i].kind != b[i].kind ||
		    a[i].rec_len != b[i].rec_len || a[i].offset != b[i].offset ||
		    a[i].plain_len != b[i].plain_len)
			return 0;
	return 1;
}

/* Every record of a pack: decode (under the keys its header names: the repository's or
 * a volume key's), then recompute the id from the plaintext. A record under a destroyed
 * volume key (CRYPTO ERASE) cannot be read by design: counted, not damage. */
static int read_data(struct ctx *c, const char *key, const struct pack_entry *e, uint32_t n)
{
	char what[160], hex[2 * CHUNK_ID_LEN + 1];
	const struct aead_keys *k;
	struct codec_hdr h;
	struct chunk_id id;
	void *obj;
	size_t len, plain;
	int rc;

	rc = c->be->ops->get(c->be->ctx, key, &obj, &len);
	if (rc == -ENOENT)
		return 0; /* deleted since the listing (gc) */
	if (rc)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		c->res->chunks_read++;
		util_hex(e[i].id.b, 8, hex);
		if (e[i].offset + e[i].rec_len > len || e[i].rec_len > CODEC_REC_MAX) {
			snprintf(what, sizeof(what), "record of chunk %s... lies outside the pack", hex);
			damaged(c, key, what);
			continue;
		}
		memcpy(c->rec, (uint8_t *)obj + e[i].offset, e[i].rec_len);
		k = c->k;
		if (e[i].rec_len >= CODEC_REC_HDR_LEN && chunk_codec_parse_hdr(c->rec, &h) == 0 &&
		    h.key_ref) {
			rc = vkey_keys(c->r, h.key_ref, &k);
			if (rc == -EKEYREVOKED) { /* erased: garbage until gc, not damage */
				c->res->erased++;
				continue;
			}
			if (rc == -ENOKEY || rc == -EOPNOTSUPP || rc == -EBADMSG) {
				snprintf(what, sizeof(what), "chunk %s... at offset %llu is under volume "
					 "key %08x, which %s", hex, (unsigned long long)e[i].offset,
					 h.key_ref, rc == -EBADMSG ? "is damaged" : "does not exist");
				damaged(c, key, what);
				continue;
			}
			if (rc) {
				free(obj);
				return rc;
			}
		}
		rc = chunk_codec_decode(k, c->rec, e[i].rec_len, &e[i].id, c->plain,
					CHUNK_SIZE_MAX, &plain);
		if (rc == 0)
			rc = chunk_codec_id(k, c->plain, plain, &id);
		if (rc == 0 && memcmp(id.b, e[i].id.b, CHUNK_ID_LEN) != 0)
			rc = -EBADMSG;
		if (rc) {
			snprintf(what, sizeof(what), "chunk %s... at offset %llu does not decode to its id (%s)",
				 hex, (unsigned long long)e[i].offset, strerror(-rc));
			damaged(c, key, what);
		}
	}
	free(obj);
	return 0;
}

static int check_packs(struct ctx *c)
{
	struct backend_keys packs = { 0 }, segs = { 0 };
	uint8_t id[PACK_ID_LEN];
	char seg_key[PACK_KEY_LEN], pk[PACK_KEY_LEN];
	int rc;

	/* index/ before packs/: a segment is written after its pack, so a pack a writer
	 * stores meanwhile is not taken for missing */
	rc = backend_list_keys(c->be, "index/", &segs);
	if (!rc)
		rc = backend_list_keys(c->be, "packs/", &packs);
	if (rc)
		goto out_free;
	for (size_t i = 0; i < packs.n; i++) {
		struct pack_entry *te = NULL, *se = NULL;
		uint32_t tn = 0, sn = 0;
		const char *key = packs.keys[i];

		progress(c, "packs", i, packs.n);
		if (pack_id_from_key(key, id)) {
			damaged(c, key, "stray object under packs/ (not a pack name)");
			continue;
		}
		rc = pack_read_trailer(c->be, c->k, key, packs.sizes[i], &te, &tn);
		if (rc == -ENOENT)
			continue; /* deleted since the listing (gc) */
		c->res->packs++;
		index_segment_key(id, seg_key);
		if ((rc == -EBADMSG || rc == -ENODATA) && !(backend_keys_find(&segs, seg_key) >= 0)) {
			/* Written pack first, segment second: a pack with neither a sound
			 * trailer nor a segment is an upload a crash cut short, on a store
			 * that keeps partial objects (s3rver; real S3 never shows one).
			 * Nothing can reference its chunks (roots are written after both);
			 * a reference to a chunk no pack holds is reported below. */
			c->res->incomplete++;
			if (c->o->damaged)
				c->o->damaged(c->o->arg, key, "note: incomplete upload (cut by a crash); "
					      "nothing references it");
			continue;
		}
		if (rc == -EBADMSG || rc == -ENODATA) {
			damaged(c, key, "pack header, footer or trailer is damaged");
		} else if (rc) {
			goto out_free;
		}
		if ((backend_keys_find(&segs, seg_key) >= 0)) {
			void *seg;
			size_t len;

			c->res->segments++;
			rc = c->be->ops->get(c->be->ctx, seg_key, &seg, &len);
			if (rc == -ENOENT) { /* deleted since the listing (gc) */
				free(te);
				continue;
			}
			if (rc) {
				free(te);
				goto out_free;
			}
			rc = index_segment_decode(c->k, seg, len, id, &se, &sn);
			free(seg);
			if (rc == -EBADMSG)
				damaged(c, seg_key, "index segment is damaged");
			else if (rc) {
				free(te);
				goto out_free;
			} else if (te && !same_entries(te, tn, se, sn))
				damaged(c, seg_key, "index segment does not match its pack's trailer");
		} else if (te) {
			/* not damage: the writer crashed between the two, open rebuilds it */
			if (c->o->damaged)
				c->o->damaged(c->o->arg, seg_key, "note: missing, rebuilt from the pack at the next open");
		}
		rc = 0;
		if (c->o->read_data && (te || se))
			rc = read_data(c, key, te ? te : se, te ? tn : sn);
		free(te);
		free(se);
		if (rc)
			goto out_free;
	}
	progress(c, "packs", packs.n, packs.n);
	for (size_t i = 0; i < segs.n; i++) {
		if (strlen(segs.keys[i]) != 6 + 2 * PACK_ID_LEN ||
		    util_unhex(segs.keys[i] + 6, id, PACK_ID_LEN)) {
			damaged(c, segs.keys[i], "stray object under index/");
			continue;
		}
		pack_key(id, pk);
		if (!(backend_keys_find(&packs, pk) >= 0)) {
			uint64_t size;

			/* gc deletes a segment, then its pack: gone since the listing? */
			if (c->be->ops->stat(c->be->ctx, segs.keys[i], &size) == -ENOENT)
				continue;
			damaged(c, segs.keys[i], "index segment of a pack that does not exist");
		}
	}
	rc = 0;
out_free:
	backend_keys_free(&packs);
	backend_keys_free(&segs);
	return rc;
}

static int seen_init(struct ctx *c)
{
	c->nslots = repo_pack_slots(c->r);
	c->seen = calloc(c->nslots ? c->nslots : 1, sizeof(*c->seen));
	c->nents = calloc(c->nslots ? c->nslots : 1, sizeof(*c->nents));
	if (!c->seen || !c->nents)
		return -ENOMEM;
	for (uint32_t s = 0; s < c->nslots; s++) {
		uint8_t id[PACK_ID_LEN];

		if (repo_pack_get(c->r, s, id, &c->nents[s]))
			continue;
		c->seen[s] = calloc((c->nents[s] + 63) / 64 + 1, sizeof(uint64_t));
		if (!c->seen[s])
			return -ENOMEM;
	}
	return 0;
}

static void seen_free(struct ctx *c)
{
	for (uint32_t s = 0; c->seen && s < c->nslots; s++)
		free(c->seen[s]);
	free(c->seen);
	free(c->nents);
	idset_free(&c->other);
}

static int ref_cb(void *arg, const char *root, const struct chunk_id *id)
{
	struct ctx *c = arg;
	char what[160], hex[2 * CHUNK_ID_LEN + 1];
	uint32_t slot, entry;
	int rc;

	c->res->refs++;
	rc = repo_chunk_locate(c->r, id, &slot, &entry);
	if (rc && rc != -ENOENT)
		return rc;
	if (!rc && slot < c->nslots && c->seen[slot] && entry < c->nents[slot]) {
		uint64_t *w = &c->seen[slot][entry / 64], bit = 1ull << (entry % 64);

		if (*w & bit)
			return REPO_WALK_SEEN;
		*w |= bit;
		return 0;
	}
	rc = idset_add(&c->other, id);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return REPO_WALK_SEEN;
	if (!repo_chunk_has(c->r, id)) {
		util_hex(id->b, CHUNK_ID_LEN, hex);
		snprintf(what, sizeof(what), "references chunk %s, which no pack holds", hex);
		damaged(c, root, what);
		return REPO_WALK_SEEN; /* a tree node that is not stored has no children to read */
	}
	return 0;
}

static void bad_cb(void *arg, const char *object, const char *what)
{
	damaged(arg, object, what);
}

int repo_check(struct repo *r, const struct repo_check_opts *o, struct repo_check_result *res)
{
	struct ctx c = { .r = r, .be = repo_backend(r), .k = repo_aead_keys(r), .o = o, .res = res };
	int rc;

	memset(res, 0, sizeof(*res));
	c.rec = malloc(CODEC_REC_MAX);
	c.plain = malloc(CHUNK_SIZE_MAX);
	if (!c.rec || !c.plain) {
		rc = -ENOMEM;
		goto out_free;
	}
	rc = check_keys(&c);
	if (!rc)
		rc = check_meta(&c);
	if (!rc)
		rc = check_packs(&c);
	if (!rc && o->walker) {
		struct repo_walk_cbs cb = { .ref = ref_cb, .bad = bad_cb, .arg = &c };
		struct chunk_store cs;

		progress(&c, "references", 0, 1);
		repo_chunk_store(r, &cs);
		rc = seen_init(&c);
		if (!rc)
			rc = o->walker->walk(o->walker->ctx, &cs, &cb);
		progress(&c, "references", 1, 1);
	}
out_free:
	seen_free(&c);
	free(c.rec);
	free(c.plain);
	return rc;
}
