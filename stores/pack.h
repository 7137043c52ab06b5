/* pack.h - pack objects: many chunk records, then a trailer listing them.
 *
 * A pack_builder is the open, in-memory pack: records are appended with
 * pack_builder_append() until pack_builder_fits() says no, then pack_builder_finish()
 * lays the trailer and footer after them and the whole buffer is put as one object.
 * Layout in pack.c. A builder is not locked: its owner serialises access.
 */
#ifndef CAIRN_PACK_H
#define CAIRN_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "aead.h"
#include "backend.h"
#include "repo.h"

#define PACK_ID_LEN 16
#define PACK_HDR_LEN 32u
#define PACK_FOOTER_LEN 32u
#define PACK_ENTRY_LEN 56u
#define PACK_DATA_MAX (16u << 20)   /* header + records of one pack, at most */
#define PACK_MAX_ENTRIES 65536u
/* "packs/" + 2 hex + "/" + 32 hex + NUL */
#define PACK_KEY_LEN (6 + 2 + 1 + 2 * PACK_ID_LEN + 1)

/* One record of a pack, as listed by its trailer and by index segments. */
struct pack_entry {
	struct chunk_id id;
	uint8_t kind;
	uint32_t rec_len;   /* record bytes: header + payload */
	uint64_t offset;    /* of the record from the start of the pack */
	uint32_t plain_len;
};

void pack_entry_encode(uint8_t *p, const struct pack_entry *e);
void pack_entry_decode(const uint8_t *p, struct pack_entry *e);

struct pack_builder {
	uint8_t id[PACK_ID_LEN];
	uint8_t *buf;               /* header, records, then room for trailer and footer */
	size_t used;                /* bytes of header + records */
	struct pack_entry *ents;
	uint32_t n;
};

/* Allocate a builder with a fresh random pack id. */
int pack_builder_init(struct pack_builder *pb);
void pack_builder_free(struct pack_builder *pb);
/* Empty the builder for reuse under a fresh random pack id (no allocation). */
int pack_builder_reset(struct pack_builder *pb);
/* 1 if a record of rec_len bytes can still be appended. An empty builder takes any record. */
int pack_builder_fits(const struct pack_builder *pb, size_t rec_len);
/* Append an encoded record (pack_builder_fits() must have said yes). *offset gets its place. */
void pack_builder_append(struct pack_builder *pb, const void *rec, size_t rec_len,
			 uint8_t kind, const struct chunk_id *id, uint32_t plain_len, uint64_t *offset);
/* Lay trailer (encrypted under k->meta unless k is NULL) and footer after the records;
 * *len gets the object's length (buf holds it). */
int pack_builder_finish(struct pack_builder *pb, const struct aead_keys *k, size_t *len);

/* "packs/<2 hex>/<32 hex>" of a pack id. */
void pack_key(const uint8_t id[PACK_ID_LEN], char out[PACK_KEY_LEN]);
/* Parse a key made by pack_key(); -EINVAL if it is not one. */
int pack_id_from_key(const char *key, uint8_t id[PACK_ID_LEN]);

/* Read and verify (and decrypt, k not NULL) the trailer of the pack object key of size
 * bytes, and return its entries (malloc'd). -EBADMSG if the header, footer or trailer
 * is damaged, or its encryption flag is not the repository's. */
int pack_read_trailer(struct backend *b, const struct aead_keys *k, const char *key,
		      uint64_t size, struct pack_entry **ents, uint32_t *n);

#endif
