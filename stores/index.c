/* index.c - the chunk index: an in-memory hash table and the index segments.
 *
 * Index segment "index/<32 hex pack id>", written once after its pack is durable.
 * All integers little-endian:
 *   off len  field
 *     0   8  magic      "CAIRNIDX"
 *     8   4  version    1
 *    12   4  count      entries that follow
 *    16  16  pack_id    the pack this segment describes
 *    32      count entries of 56 bytes, encoded as in the pack trailer (pack.c):
 *            id[32], kind u8, reserved[3], rec_len u32, offset u64, plain_len u32, reserved u32
 *   end   8  checksum   XXH3_64bits of every byte before it
 *
 * Encrypted repository: the object is these bytes sealed under the meta key with the
 * segment's object key "index/<32 hex>" as aad (envelope in aead.h).
 * A missing or damaged segment is rebuilt from its pack's trailer at open (repo.c).
 *
 * Hash table: open addressing with linear probing over a power-of-two array, grown
 * at 70% load. Chunk ids are SHA-256 outputs, so their first 8 bytes are the hash.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "index.h"
#include "le.h"
#include "util.h"

static const uint8_t seg_magic[8] = { 'C', 'A', 'I', 'R', 'N', 'I', 'D', 'X' };
#define SEG_VERSION 1
#define SEG_HDR_LEN 32u
#define EMPTY UINT32_MAX

struct slot {
	struct chunk_id id;
	struct index_loc loc; /* loc.pack == EMPTY: free slot */
};

struct index {
	struct slot *slots;
	size_t mask, count;
};

static size_t id_hash(const struct chunk_id *id)
{
	uint64_t h;

	memcpy(&h, id->b, sizeof(h));
	return (size_t)h;
}

static int table_alloc(struct index *ix, size_t cap)
{
	struct slot *s = malloc(cap * sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++)
		s[i].loc.pack = EMPTY;
	ix->slots = s;
	ix->mask = cap - 1;
	return 0;
}

int index_create(size_t expect, struct index **out)
{
	struct index *ix = calloc(1, sizeof(*ix));
	size_t cap = 1024;
	int rc;

	if (!ix)
		return -ENOMEM;
	while (cap * 7 / 10 < expect)
		cap *= 2;
	rc = table_alloc(ix, cap);
	if (rc) {
		free(ix);
		return rc;
	}
	*out = ix;
	return 0;
}

void index_destroy(struct index *ix)
{
	if (!ix)
		return;
	free(ix->slots);
	free(ix);
}

static struct slot *find(const struct index *ix, const struct chunk_id *id)
{
	for (size_t i = id_hash(id) & ix->mask;; i = (i + 1) & ix->mask) {
		struct slot *s = &ix->slots[i];

		if (s->loc.pack == EMPTY || memcmp(s->id.b, id->b, CHUNK_ID_LEN) == 0)
			return s;
	}
}

int index_lookup(const struct index *ix, const struct chunk_id *id, struct index_loc *loc)
{
	struct slot *s = find(ix, id);

	if (s->loc.pack == EMPTY)
		return -ENOENT;
	*loc = s->loc;
	return 0;
}

static int grow(struct index *ix)
{
	struct slot *old = ix->slots;
	size_t old_cap = ix->mask + 1;
	int rc;

	rc = table_alloc(ix, old_cap * 2);
	if (rc)
		return rc;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].loc.pack != EMPTY)
			*find(ix, &old[i].id) = old[i];
	free(old);
	return 0;
}

int index_insert(struct index *ix, const struct chunk_id *id, const struct index_loc *loc)
{
	struct slot *s;
	int rc;

	if (loc->pack == EMPTY)
		return -EINVAL;
	s = find(ix, id);
	if (s->loc.pack != EMPTY)
		return -EEXIST;
	if ((ix->count + 1) * 10 > (ix->mask + 1) * 7) {
		rc = grow(ix);
		if (rc)
			return rc;
		s = find(ix, id);
	}
	s->id = *id;
	s->loc = *loc;
	ix->count++;
	return 0;
}

size_t index_count(const struct index *ix)
{
	return ix->count;
}

void index_segment_key(const uint8_t pack_id[PACK_ID_LEN], char out[PACK_KEY_LEN])
{
	memcpy(out, "index/", 6);
	util_hex(pack_id, PACK_ID_LEN, out + 6);
}

static int seal(const struct aead_keys *k, const uint8_t pack_id[PACK_ID_LEN], void **buf,
		size_t *len)
{
	char key[PACK_KEY_LEN];
	void *out;
	size_t out_len;
	int rc;

	index_segment_key(pack_id, key);
	rc = aead_seal_object(k->meta, key, *buf, *len, &out, &out_len);
	free(*buf);
	*buf = NULL;
	if (rc)
		return rc;
	*buf = out;
	*len = out_len;
	return 0;
}

int index_segment_encode(const struct aead_keys *k, const uint8_t pack_id[PACK_ID_LEN],
			 const struct pack_entry *ents, uint32_t n, void **buf_out, size_t *len_out)
{
	size_t len = SEG_HDR_LEN + (size_t)PACK_ENTRY_LEN * n + 8;
	uint8_t *b = malloc(len);

	if (!b)
		return -ENOMEM;
	memcpy(b, seg_magic, 8);
	le_put32(b + 8, SEG_VERSION);
	le_put32(b + 12, n);
	memcpy(b + 16, pack_id, PACK_ID_LEN);
	for (uint32_t i = 0; i < n; i++)
		pack_entry_encode(b + SEG_HDR_LEN + PACK_ENTRY_LEN * i, &ents[i]);
	le_put64(b + len - 8, XXH3_64bits(b, len - 8));
	*buf_out = b;
	*len_out = len;
	return k ? seal(k, pack_id, buf_out, len_out) : 0;
}

static int decode_plain(const void *buf, size_t len, const uint8_t pack_id[PACK_ID_LEN],
			struct pack_entry **ents_out, uint32_t *n_out)
{
	const uint8_t *b = buf;
	struct pack_entry *ents;
	uint32_t n;

	if (len < SEG_HDR_LEN + 8 || memcmp(b, seg_magic, 8) != 0 || le_get32(b + 8) != SEG_VERSION ||
	    memcmp(b + 16, pack_id, PACK_ID_LEN) != 0)
		return -EBADMSG;
	n = le_get32(b + 12);
	if (n > PACK_MAX_ENTRIES || len != SEG_HDR_LEN + (size_t)PACK_ENTRY_LEN * n + 8 ||
	    XXH3_64bits(b, len - 8) != le_get64(b + len - 8))
		return -EBADMSG;
	ents = malloc(sizeof(*ents) * (n ? n : 1));
	if (!ents)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		pack_entry_decode(b + SEG_HDR_LEN + PACK_ENTRY_LEN * i, &ents[i]);
	*ents_out = ents;
	*n_out = n;
	return 0;
}

int index_segment_decode(const struct aead_keys *k, const void *buf, size_t len,
			 const uint8_t pack_id[PACK_ID_LEN], struct pack_entry **ents,
			 uint32_t *n)
{
	char key[PACK_KEY_LEN];
	void *plain;
	size_t plain_len;
	int rc;

	if (!k)
		return decode_plain(buf, len, pack_id, ents, n);
	index_segment_key(pack_id, key);
	rc = aead_open_object(k->meta, key, buf, len, &plain, &plain_len);
	if (rc)
		return rc;
	rc = decode_plain(plain, plain_len, pack_id, ents, n);
	free(plain);
	return rc;
}
