/* blockmap.c - see blockmap.h.
 *
 * Node: one CHUNK_TREE chunk of 8208 bytes, little-endian:
 *    0  u32  magic    0x4E4D4243 ("CBMN")
 *    4  u16  version  1
 *    6  u8   level    0 = leaf (ids are data chunks), n = ids are level n-1 nodes
 *    7  u8   reserved 0
 *    8  u32  fanout   256
 *   12  u32  reserved 0
 *   16  u8   ids[256][32]  entry i covers chunks [base + i*256^level, +256^level);
 *                          the null id (32 zero bytes) means all of them read as zeros
 * Checksum: the node is content-addressed; its id (SHA-256 / HMAC of these bytes) is
 * verified by the repository on every read, and the header is checked here.
 *
 * The root covers chunk numbers 0 .. 256^depth - 1; depth is the smallest >= 1 with
 * 256^depth >= nchunks. Entries at or past nchunks stay null.
 */
#include "blockmap.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define NODE_MAGIC 0x4E4D4243u
#define NODE_VERSION 1
#define NODE_HDR 16
#define NODE_BYTES (NODE_HDR + BLOCKMAP_FANOUT * CHUNK_ID_LEN)

struct bm_node {
	struct chunk_id id;     /* stored id (stale while dirty) */
	unsigned level;
	int dirty;
	struct chunk_id ids[BLOCKMAP_FANOUT];
	struct bm_node **kids;  /* interior only: loaded children */
};

struct blockmap {
	pthread_mutex_t lock;
	struct chunk_store *cs;
	uint64_t nchunks;
	unsigned depth;
	struct chunk_id root_id;
	struct bm_node *root;   /* NULL until loaded or created */
	uint8_t *nodebuf;       /* NODE_BYTES, for encode/decode under lock */
};

static const struct chunk_id null_id;

unsigned blockmap_depth_for(uint64_t nchunks)
{
	unsigned d = 1;
	uint64_t cover = BLOCKMAP_FANOUT;

	while (cover < nchunks && d < 8) {
		cover *= BLOCKMAP_FANOUT;
		d++;
	}
	return d;
}

static struct bm_node *node_new(unsigned level)
{
	struct bm_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->level = level;
	if (level) {
		n->kids = calloc(BLOCKMAP_FANOUT, sizeof(*n->kids));
		if (!n->kids) {
			free(n);
			return NULL;
		}
	}
	return n;
}

static void node_free(struct bm_node *n)
{
	if (!n)
		return;
	if (n->kids)
		for (unsigned i = 0; i < BLOCKMAP_FANOUT; i++)
			node_free(n->kids[i]);
	free(n->kids);
	free(n);
}

static int node_load(struct blockmap *bm, const struct chunk_id *id, unsigned level,
		     struct bm_node **out)
{
	struct bm_node *n;
	size_t len = 0;
	uint32_t magic, fanout;
	uint16_t version;
	int ret;

	ret = bm->cs->ops->get(bm->cs->ctx, id, bm->nodebuf, NODE_BYTES, &len);
	if (ret) {
		log_error("blockmap", "cannot read a map node: %s", strerror(-ret));
		return ret == -ENOBUFS ? -EBADMSG : ret;
	}
	memcpy(&magic, bm->nodebuf, 4);
	memcpy(&version, bm->nodebuf + 4, 2);
	memcpy(&fanout, bm->nodebuf + 8, 4);
	if (len != NODE_BYTES || le32toh(magic) != NODE_MAGIC || le16toh(version) != NODE_VERSION ||
	    bm->nodebuf[6] != level || le32toh(fanout) != BLOCKMAP_FANOUT) {
		log_error("blockmap", "a map node is not a level %u node", level);
		return -EBADMSG;
	}
	n = node_new(level);
	if (!n)
		return -ENOMEM;
	n->id = *id;
	memcpy(n->ids, bm->nodebuf + NODE_HDR, sizeof(n->ids));
	*out = n;
	return 0;
}

int blockmap_open(struct chunk_store *cs, uint64_t nchunks, const struct chunk_id *root,
		  struct blockmap **out)
{
	struct blockmap *bm = calloc(1, sizeof(*bm));

	if (!bm)
		return -ENOMEM;
	bm->nodebuf = malloc(NODE_BYTES);
	if (!bm->nodebuf) {
		free(bm);
		return -ENOMEM;
	}
	bm->cs = cs;
	bm->nchunks = nchunks;
	bm->depth = blockmap_depth_for(nchunks);
	if (root)
		bm->root_id = *root;
	pthread_mutex_init(&bm->lock, NULL);
	*out = bm;
	return 0;
}

void blockmap_close(struct blockmap *bm)
{
	if (!bm)
		return;
	node_free(bm->root);
	pthread_mutex_destroy(&bm->lock);
	free(bm->nodebuf);
	free(bm);
}

static unsigned idx_at(uint64_t chunk, unsigned level)
{
	return (unsigned)((chunk >> (8 * level)) & (BLOCKMAP_FANOUT - 1));
}

/* The root node, loaded or created (create: an empty root when the id is null). */
static int get_root(struct blockmap *bm, int may_load, int create, struct bm_node **out)
{
	int ret;

	if (!bm->root) {
		if (chunk_id_is_null(&bm->root_id)) {
			if (!create) {
				*out = NULL;
				return 0;
			}
			bm->root = node_new(bm->depth - 1);
			if (!bm->root)
				return -ENOMEM;
		} else {
			if (!may_load)
				return -EAGAIN;
			ret = node_load(bm, &bm->root_id, bm->depth - 1, &bm->root);
			if (ret)
				return ret;
		}
	}
	*out = bm->root;
	return 0;
}

/* Child idx of n, loaded or created (same rules as get_root). */
static int get_kid(struct blockmap *bm, struct bm_node *n, unsigned idx, int may_load,
		   int create, struct bm_node **out)
{
	int ret;

	if (!n->kids[idx]) {
		if (chunk_id_is_null(&n->ids[idx])) {
			if (!create) {
				*out = NULL;
				return 0;
			}
			n->kids[idx] = node_new(n->level - 1);
			if (!n->kids[idx])
				return -ENOMEM;
		} else {
			if (!may_load)
				return -EAGAIN;
			ret = node_load(bm, &n->ids[idx], n->level - 1, &n->kids[idx]);
			if (ret)
				return ret;
		}
	}
	*out = n->kids[idx];
	return 0;
}

int blockmap_lookup(struct blockmap *bm, uint64_t chunk, int may_load, struct chunk_id *out)
{
	struct bm_node *n;
	int ret;

	if (chunk >= bm->nchunks)
		return -ERANGE;
	pthread_mutex_lock(&bm->lock);
	ret = get_root(bm, may_load, 0, &n);
	while (!ret && n && n->level)
		ret = get_kid(bm, n, idx_at(chunk, n->level), may_load, 0, &n);
	if (!ret)
		*out = n ? n->ids[idx_at(chunk, 0)] : null_id;
	pthread_mutex_unlock(&bm->lock);
	return ret;
}

int blockmap_set(struct blockmap *bm, uint64_t chunk, const struct chunk_id *id)
{
	struct bm_node *path[8], *n;
	unsigned np = 0;
	int ret;

	if (chunk >= bm->nchunks)
		return -ERANGE;
	pthread_mutex_lock(&bm->lock);
	ret = get_root(bm, 1, 1, &n);
	while (!ret) {
		path[np++] = n;
		if (!n->level)
			break;
		ret = get_kid(bm, n, idx_at(chunk, n->level), 1, 1, &n);
	}
	if (!ret && memcmp(&n->ids[idx_at(chunk, 0)], id, sizeof(*id))) {
		n->ids[idx_at(chunk, 0)] = *id;
		for (unsigned i = 0; i < np; i++)
			path[i]->dirty = 1;
	}
	pthread_mutex_unlock(&bm->lock);
	return ret;
}

static uint64_t span_of(unsigned level)
{
	return 1ull << (8 * level);
}

/* Null every entry of n (covering [base, base + 256*span)) that lies in [first, end). */
static int zero_node(struct blockmap *bm, struct bm_node *n, uint64_t base, uint64_t first,
		     uint64_t end)
{
	uint64_t span = span_of(n->level);

	for (unsigned i = 0; i < BLOCKMAP_FANOUT; i++) {
		uint64_t cb = base + i * span, ce = cb + span;
		struct bm_node *kid;
		int ret;

		if (ce <= first || cb >= end)
			continue;
		if (cb >= first && ce <= end) {
			int had = n->level && n->kids[i];

			if (had) {
				node_free(n->kids[i]);
				n->kids[i] = NULL;
			}
			if (!chunk_id_is_null(&n->ids[i]) || had) {
				n->ids[i] = null_id;
				n->dirty = 1;
			}
			continue;
		}
		/* partial: only interior nodes get here */
		ret = get_kid(bm, n, i, 1, 0, &kid);
		if (ret)
			return ret;
		if (!kid)
			continue;
		ret = zero_node(bm, kid, cb, first, end);
		if (ret)
			return ret;
		if (kid->dirty)
			n->dirty = 1;
	}
	return 0;
}

int blockmap_zero_range(struct blockmap *bm, uint64_t first, uint64_t count)
{
	struct bm_node *root;
	int ret;

	if (first > bm->nchunks || count > bm->nchunks - first)
		return -ERANGE;
	if (!count)
		return 0;
	pthread_mutex_lock(&bm->lock);
	ret = get_root(bm, 1, 0, &root);
	if (!ret && root)
		ret = zero_node(bm, root, 0, first, first + count);
	pthread_mutex_unlock(&bm->lock);
	return ret;
}

static int flush_node(struct blockmap *bm, struct bm_node *n)
{
	uint32_t v32;
	uint16_t v16;
	int ret, empty = 1;

	if (!n->dirty)
		return 0;
	if (n->level) {
		for (unsigned i = 0; i < BLOCKMAP_FANOUT; i++) {
			struct bm_node *k = n->kids[i];

			if (!k || !k->dirty)
				continue;
			ret = flush_node(bm, k);
			if (ret)
				return ret;
			n->ids[i] = k->id;
		}
	}
	for (unsigned i = 0; i < BLOCKMAP_FANOUT && empty; i++)
		if (!chunk_id_is_null(&n->ids[i]))
			empty = 0;
	if (empty) {
		n->id = null_id;
	} else {
		memset(bm->nodebuf, 0, NODE_HDR);
		v32 = htole32(NODE_MAGIC);
		memcpy(bm->nodebuf, &v32, 4);
		v16 = htole16(NODE_VERSION);
		memcpy(bm->nodebuf + 4, &v16, 2);
		bm->nodebuf[6] = (uint8_t)n->level;
		v32 = htole32(BLOCKMAP_FANOUT);
		memcpy(bm->nodebuf + 8, &v32, 4);
		memcpy(bm->nodebuf + NODE_HDR, n->ids, sizeof(n->ids));
		ret = bm->cs->ops->put(bm->cs->ctx, CHUNK_TREE, bm->nodebuf, NODE_BYTES, &n->id);
		if (ret)
			return ret;
	}
	n->dirty = 0;
	return 0;
}

int blockmap_flush(struct blockmap *bm, struct chunk_id *root_out)
{
	int ret = 0;

	pthread_mutex_lock(&bm->lock);
	if (bm->root && bm->root->dirty) {
		ret = flush_node(bm, bm->root);
		if (!ret)
			bm->root_id = bm->root->id;
	}
	if (!ret)
		*root_out = bm->root_id;
	pthread_mutex_unlock(&bm->lock);
	return ret;
}

void blockmap_reset(struct blockmap *bm, const struct chunk_id *root)
{
	pthread_mutex_lock(&bm->lock);
	node_free(bm->root);
	bm->root = NULL;
	bm->root_id = *root;
	pthread_mutex_unlock(&bm->lock);
}

int blockmap_dirty(struct blockmap *bm)
{
	int d;

	pthread_mutex_lock(&bm->lock);
	d = bm->root && bm->root->dirty;
	pthread_mutex_unlock(&bm->lock);
	return d;
}

/* ---- provisioning queries (volume_map.c) ---- */

int blockmap_lookup_span(struct blockmap *bm, uint64_t chunk, int may_load, struct chunk_id *out,
			 uint64_t *span)
{
	struct bm_node *n;
	uint64_t base = 0, end;
	int ret;

	if (chunk >= bm->nchunks)
		return -ERANGE;
	pthread_mutex_lock(&bm->lock);
	ret = get_root(bm, may_load, 0, &n);
	end = bm->nchunks;
	while (!ret && n && n->level) {
		unsigned i = idx_at(chunk, n->level);

		base += (uint64_t)i * span_of(n->level);
		end = base + span_of(n->level);
		ret = get_kid(bm, n, i, may_load, 0, &n);
	}
	if (!ret) {
		if (end > bm->nchunks)
			end = bm->nchunks;
		if (!n) {
			/* a null subtree (or an empty map): null up to its end */
			*out = null_id;
			*span = end - chunk;
		} else {
			unsigned i = idx_at(chunk, 0), k = i + 1;

			*out = n->ids[i];
			if (chunk_id_is_null(&n->ids[i]))
				while (k < BLOCKMAP_FANOUT && chunk_id_is_null(&n->ids[k]))
					k++;
			*span = k - i;
			if (*span > bm->nchunks - chunk)
				*span = bm->nchunks - chunk;
		}
	}
	pthread_mutex_unlock(&bm->lock);
	return ret;
}

/* ---- tree walk for gc and check (blockmap_walk, blockmap.h) ---- */

struct walk {
	struct chunk_store *cs;
	blockmap_walk_cb cb;
	void (*bad)(void *arg, const struct chunk_id *id, int err);
	void *arg;
	uint8_t *bufs;          /* NODE_BYTES per level 0..7, then the root's */
};

static int walk_node(struct walk *w, const struct chunk_id *id, int level)
{
	uint8_t *b = w->bufs + (size_t)(level < 0 ? 8 : level) * NODE_BYTES;
	uint32_t magic, fanout;
	uint16_t version;
	size_t len = 0;
	int ret;

	ret = w->cs->ops->get(w->cs->ctx, id, b, NODE_BYTES, &len);
	if (!ret) {
		memcpy(&magic, b, 4);
		memcpy(&version, b + 4, 2);
		memcpy(&fanout, b + 8, 4);
		if (len != NODE_BYTES || le32toh(magic) != NODE_MAGIC ||
		    le16toh(version) != NODE_VERSION || le32toh(fanout) != BLOCKMAP_FANOUT ||
		    b[6] >= 8 || (level >= 0 && b[6] != level))
			ret = -EBADMSG;
	}
	if (ret == -ENOBUFS)
		ret = -EBADMSG;
	if (ret) {
		if (w->bad)
			w->bad(w->arg, id, ret);
		return ret == -ENOMEM ? ret : 0;
	}
	level = b[6];
	for (unsigned i = 0; i < BLOCKMAP_FANOUT; i++) {
		struct chunk_id kid;

		memcpy(kid.b, b + NODE_HDR + (size_t)i * CHUNK_ID_LEN, CHUNK_ID_LEN);
		if (chunk_id_is_null(&kid))
			continue;
		ret = w->cb(w->arg, &kid, level > 0);
		if (ret < 0)
			return ret;
		if (ret == 0 && level > 0) {
			ret = walk_node(w, &kid, level - 1);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

int blockmap_walk(struct chunk_store *cs, const struct chunk_id *root, blockmap_walk_cb cb,
		  void (*bad)(void *arg, const struct chunk_id *id, int err), void *arg)
{
	struct walk w = { .cs = cs, .cb = cb, .bad = bad, .arg = arg };
	int ret;

	if (chunk_id_is_null(root))
		return 0;
	ret = cb(arg, root, 1);
	if (ret)
		return ret < 0 ? ret : 0;
	w.bufs = malloc((size_t)9 * NODE_BYTES);
	if (!w.bufs)
		return -ENOMEM;
	ret = walk_node(&w, root, -1);
	free(w.bufs);
	return ret;
}
