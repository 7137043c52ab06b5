/* pack.c - pack objects "packs/<2 hex>/<32 hex pack id>".
 *
 * A pack is written once, whole, by one backend put. All integers little-endian.
 *
 * Header, PACK_HDR_LEN = 32 bytes at offset 0:
 *   off len  field
 *     0   8  magic       "CAIRNPAK"
 *     8   4  version     1
 *    12   4  flags       bit 0: the trailer is encrypted (encrypted repository)
 *    16  16  pack_id     random; its hex is the object's name
 *
 * Records, from offset 32, back to back: each a chunk record as laid out in
 * chunk_codec.c (72-byte header with magic "CHNK", version, kind, codec, cipher, id,
 * plain_len, stored_len, nonce, the key reference - version 2 records: the volume key,
 * vkey.h, whose subkeys encrypted it; version 1: the repository's keys - and an XXH3-64
 * over header and payload; then the payload). A record is self-describing: gc copies
 * it verbatim, check picks its keys from its header; the trailer needs no key field.
 * Header and records together are at most PACK_DATA_MAX (16 MiB) bytes.
 *
 * Trailer, at trailer_off (= end of the last record):
 *     0   4  count       number of records, <= PACK_MAX_ENTRIES
 *     4   4  reserved    zero
 *     8   count entries of PACK_ENTRY_LEN = 56 bytes, in record order:
 *           0  32  id         chunk id
 *          32   1  kind       enum chunk_kind
 *          33   3  reserved   zero
 *          36   4  rec_len    record bytes (72-byte header + payload)
 *          40   8  offset     of the record from the start of the pack
 *          48   4  plain_len  plaintext bytes
 *          52   4  reserved   zero
 *   trailer_len = 8 + 56 * count.
 * Encrypted (flags bit 0), the trailer is instead nonce[12], then the 8 + 56 * count
 * bytes above encrypted with AES-256-GCM under the meta key (aad: the pack's object
 * key "packs/xx/<32 hex>"), then the 16-byte tag: trailer_len = 36 + 56 * count.
 *
 * Footer, the last PACK_FOOTER_LEN = 32 bytes:
 *     0   8  trailer_off
 *     8   4  trailer_len
 *    12   4  version     1
 *    16   8  checksum    XXH3_64bits_withSeed(trailer, trailer_len, XXH3_64bits(footer[0..16)))
 *    24   8  magic       "CAIRNEND"
 *
 * The trailer makes every pack self-describing: the index can always be rebuilt from
 * the packs alone. Entries use the same 56-byte encoding in index segments (index.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "aead.h"
#include "chunk_codec.h"
#include "le.h"
#include "pack.h"
#include "util.h"

static const uint8_t pack_magic[8] = { 'C', 'A', 'I', 'R', 'N', 'P', 'A', 'K' };
static const uint8_t end_magic[8] = { 'C', 'A', 'I', 'R', 'N', 'E', 'N', 'D' };
#define PACK_VERSION 1
#define TRAILER_HDR_LEN 8u
#define FLAG_ENCRYPTED 1u
#define ENC_OVERHEAD (AEAD_NONCE_LEN + AEAD_TAG_LEN)
#define BUF_CAP (PACK_DATA_MAX + TRAILER_HDR_LEN + PACK_ENTRY_LEN * PACK_MAX_ENTRIES + \
		 ENC_OVERHEAD + PACK_FOOTER_LEN)

void pack_entry_encode(uint8_t *p, const struct pack_entry *e)
{
	memcpy(p, e->id.b, CHUNK_ID_LEN);
	p[32] = e->kind;
	p[33] = p[34] = p[35] = 0;
	le_put32(p + 36, e->rec_len);
	le_put64(p + 40, e->offset);
	le_put32(p + 48, e->plain_len);
	le_put32(p + 52, 0);
}

void pack_entry_decode(const uint8_t *p, struct pack_entry *e)
{
	memcpy(e->id.b, p, CHUNK_ID_LEN);
	e->kind = p[32];
	e->rec_len = le_get32(p + 36);
	e->offset = le_get64(p + 40);
	e->plain_len = le_get32(p + 48);
}

int pack_builder_reset(struct pack_builder *pb)
{
	int rc = util_random(pb->id, PACK_ID_LEN);

	if (rc)
		return rc;
	memcpy(pb->buf, pack_magic, 8);
	le_put32(pb->buf + 8, PACK_VERSION);
	le_put32(pb->buf + 12, 0);
	memcpy(pb->buf + 16, pb->id, PACK_ID_LEN);
	pb->used = PACK_HDR_LEN;
	pb->n = 0;
	return 0;
}

int pack_builder_init(struct pack_builder *pb)
{
	int rc;

	memset(pb, 0, sizeof(*pb));
	pb->buf = malloc(BUF_CAP);
	if (!pb->buf)
		return -ENOMEM;
	pb->ents = malloc(sizeof(*pb->ents) * PACK_MAX_ENTRIES);
	if (!pb->ents) {
		free(pb->buf);
		pb->buf = NULL;
		return -ENOMEM;
	}
	rc = pack_builder_reset(pb);
	if (rc)
		pack_builder_free(pb);
	return rc;
}

void pack_builder_free(struct pack_builder *pb)
{
	free(pb->buf);
	free(pb->ents);
	pb->buf = NULL;
	pb->ents = NULL;
}

int pack_builder_fits(const struct pack_builder *pb, size_t rec_len)
{
	if (pb->n == 0)
		return 1;
	return pb->n < PACK_MAX_ENTRIES && pb->used + rec_len <= PACK_DATA_MAX;
}

void pack_builder_append(struct pack_builder *pb, const void *rec, size_t rec_len,
			 uint8_t kind, const struct chunk_id *id, uint32_t plain_len, uint64_t *offset)
{
	struct pack_entry *e = &pb->ents[pb->n++];

	memcpy(pb->buf + pb->used, rec, rec_len);
	e->id = *id;
	e->kind = kind;
	e->rec_len = (uint32_t)rec_len;
	e->offset = pb->used;
	e->plain_len = plain_len;
	*offset = pb->used;
	pb->used += rec_len;
}

int pack_builder_finish(struct pack_builder *pb, const struct aead_keys *k, size_t *len)
{
	uint8_t *t = pb->buf + pb->used, *f, *body = k ? t + AEAD_NONCE_LEN : t;
	uint32_t blen = TRAILER_HDR_LEN + PACK_ENTRY_LEN * pb->n;
	uint32_t tlen = blen + (k ? ENC_OVERHEAD : 0);
	char key[PACK_KEY_LEN];
	int rc;

	le_put32(pb->buf + 12, k ? FLAG_ENCRYPTED : 0);
	le_put32(body, pb->n);
	le_put32(body + 4, 0);
	for (uint32_t i = 0; i < pb->n; i++)
		pack_entry_encode(body + TRAILER_HDR_LEN + PACK_ENTRY_LEN * i, &pb->ents[i]);
	if (k) {
		pack_key(pb->id, key);
		rc = aead_seal(k->meta, key, strlen(key), body, blen, body, t, body + blen);
		if (rc)
			return rc;
	}
	f = t + tlen;
	le_put64(f, pb->used);
	le_put32(f + 8, tlen);
	le_put32(f + 12, PACK_VERSION);
	le_put64(f + 16, XXH3_64bits_withSeed(t, tlen, XXH3_64bits(f, 16)));
	memcpy(f + 24, end_magic, 8);
	*len = pb->used + tlen + PACK_FOOTER_LEN;
	return 0;
}

void pack_key(const uint8_t id[PACK_ID_LEN], char out[PACK_KEY_LEN])
{
	char hex[2 * PACK_ID_LEN + 1];

	util_hex(id, PACK_ID_LEN, hex);
	memcpy(out, "packs/", 6);
	out[6] = hex[0];
	out[7] = hex[1];
	out[8] = '/';
	memcpy(out + 9, hex, 2 * PACK_ID_LEN + 1);
}

int pack_id_from_key(const char *key, uint8_t id[PACK_ID_LEN])
{
	if (strlen(key) != PACK_KEY_LEN - 1 || strncmp(key, "packs/", 6) != 0 || key[8] != '/' ||
	    key[6] != key[9] || key[7] != key[10])
		return -EINVAL;
	return util_unhex(key + 9, id, PACK_ID_LEN);
}

int pack_read_trailer(struct backend *b, const struct aead_keys *k, const char *key,
		      uint64_t size, struct pack_entry **ents_out, uint32_t *n_out)
{
	uint8_t f[PACK_FOOTER_LEN], hdr[PACK_HDR_LEN], id[PACK_ID_LEN];
	struct pack_entry *ents = NULL;
	uint8_t *t = NULL, *body;
	uint64_t toff;
	uint32_t tlen, blen, n, over = k ? ENC_OVERHEAD : 0;
	int rc;

	if (size < PACK_HDR_LEN + TRAILER_HDR_LEN + PACK_FOOTER_LEN)
		return -EBADMSG;
	rc = b->ops->get_range(b->ctx, key, 0, hdr, sizeof(hdr));
	if (rc)
		return rc;
	rc = b->ops->get_range(b->ctx, key, size - PACK_FOOTER_LEN, f, sizeof(f));
	if (rc)
		return rc;
	toff = le_get64(f);
	tlen = le_get32(f + 8);
	if (memcmp(hdr, pack_magic, 8) != 0 || le_get32(hdr + 8) != PACK_VERSION ||
	    memcmp(f + 24, end_magic, 8) != 0 || le_get32(f + 12) != PACK_VERSION ||
	    toff < PACK_HDR_LEN || toff + tlen + PACK_FOOTER_LEN != size ||
	    tlen < TRAILER_HDR_LEN + over || (tlen - over - TRAILER_HDR_LEN) % PACK_ENTRY_LEN != 0 ||
	    (le_get32(hdr + 12) & FLAG_ENCRYPTED) != (k ? FLAG_ENCRYPTED : 0))
		return -EBADMSG;
	blen = tlen - over;
	if (pack_id_from_key(key, id) == 0 && memcmp(id, hdr + 16, PACK_ID_LEN) != 0)
		return -EBADMSG;
	t = malloc(tlen);
	if (!t)
		return -ENOMEM;
	rc = b->ops->get_range(b->ctx, key, toff, t, tlen);
	if (rc)
		goto out_free_trailer;
	if (XXH3_64bits_withSeed(t, tlen, XXH3_64bits(f, 16)) != le_get64(f + 16)) {
		rc = -EBADMSG;
		goto out_free_trailer;
	}
	body = k ? t + AEAD_NONCE_LEN : t;
	if (k) {
		rc = aead_open(k->meta, key, strlen(key), body, blen, body, t, body + blen);
		if (rc)
			goto out_free_trailer;
	}
	n = le_get32(body);
	if (n != (blen - TRAILER_HDR_LEN) / PACK_ENTRY_LEN || n > PACK_MAX_ENTRIES) {
		rc = -EBADMSG;
		goto out_free_trailer;
	}
	ents = malloc(sizeof(*ents) * (n ? n : 1));
	if (!ents) {
		rc = -ENOMEM;
		goto out_free_trailer;
	}
	for (uint32_t i = 0; i < n; i++) {
		pack_entry_decode(body + TRAILER_HDR_LEN + PACK_ENTRY_LEN * i, &ents[i]);
		if (ents[i].offset < PACK_HDR_LEN || ents[i].rec_len > CODEC_REC_MAX ||
		    ents[i].offset + ents[i].rec_len > toff) {
			rc = -EBADMSG;
			free(ents);
			goto out_free_trailer;
		}
	}
	*ents_out = ents;
	*n_out = n;
out_free_trailer:
	free(t);
	return rc;
}
