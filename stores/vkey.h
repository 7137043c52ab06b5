/* vkey.h - volume keys: a key of its own for a volume of an encrypted repository
 * (`cairn volume create --own-key`), so that destroying it erases that volume alone
 * (SANITIZE CRYPTO ERASE).
 *
 * A volume key is a random 256-bit key stored as the metadata object
 * "meta/vkeys/<08x ref>" (sealed under the repository's meta key with the object name
 * as aad, like every metadata object: repo.c). ref is a random non-zero 32-bit
 * reference, never reused: a destroyed key leaves the tombstone
 * "meta/vkeys/<08x ref>.erased". HKDF gives its id and data subkeys
 * (aead_derive_volume): the volume's data chunks get ids HMAC'd under the id subkey
 * (so they never dedup with chunks of another key) and payloads encrypted under the
 * data subkey, in version 2 chunk records that name ref (chunk_codec.c). Block-map
 * nodes stay under the repository's keys: they hold only chunk ids, and check and gc
 * walk them without any volume key.
 *
 * Layouts, integers little-endian (the plaintext inside the sealed envelope):
 *   key object, VKEY_OBJ_LEN = 96 bytes
 *     off len  field
 *       0   8  magic       "CAIRNVK1"
 *       8   4  version     1
 *      12   4  ref         equal to the object's name
 *      16   8  generation  1 for a new volume, +1 at each CRYPTO ERASE of it
 *      24   8  created_ns  wall clock
 *      32  16  volume      id of the volume it was made for (its clones share it)
 *      48   4  prev        the key this one replaced (CRYPTO ERASE), 0 if none
 *      52   4  reserved    zero
 *      56  32  key         the volume key
 *      88   8  checksum    XXH3_64bits of bytes [0, 88) (the envelope's GCM tag
 *                          authenticates it too; this catches a wrong layout)
 *   tombstone, VKEY_TOMB_LEN = 32 bytes
 *       0   8  magic       "CAIRNVKX"
 *       8   4  version     1
 *      12   4  ref
 *      16   8  erased_ns   wall clock of the destruction
 *      24   8  checksum    XXH3_64bits of bytes [0, 24)
 * Destruction writes the tombstone first, then deletes the key object: a tombstone
 * wins over a key object left by a crash in between (and the next destroy deletes it).
 *
 * The repository keeps the keys it loaded in a table (never shrinking until close; a
 * destroyed one is wiped and marked), so a keyed chunk store and the subkeys it hands
 * out stay valid while the repository is open. All functions are thread-safe and
 * return 0 or a negative errno: -EOPNOTSUPP in a plain repository, -ENOKEY no such
 * key, -EKEYREVOKED the key was destroyed.
 */
#ifndef CAIRN_VKEY_H
#define CAIRN_VKEY_H

#include <stddef.h>
#include <stdint.h>

#include "aead.h"
#include "repo.h"

#define VKEY_PREFIX "vkeys/"          /* under "meta/" */
#define VKEY_OBJ_LEN 96u
#define VKEY_TOMB_LEN 32u
#define VKEY_TOMB_SUFFIX ".erased"

struct vkey_info {
	uint32_t ref;
	uint32_t prev;
	uint64_t generation;
	uint64_t created_ns;
	char volume[33];      /* hex */
};

/* A new random key for volume volid (32 hex), generation gen, replacing prev (0: none).
 * Durable on return; *ref gets its reference. */
int vkey_create(struct repo *r, const char *volid, uint64_t gen, uint32_t prev, uint32_t *ref);
/* Destroy key ref (tombstone, then the object), wipe its subkeys in memory and drop
 * every decoded chunk from the repository's cache. Idempotent: a destroyed key is 0. */
int vkey_destroy(struct repo *r, uint32_t ref);
/* The subkeys of ref (loaded on first use; valid until the repository is closed, wiped
 * if the key is destroyed meanwhile). */
int vkey_keys(struct repo *r, uint32_t ref, const struct aead_keys **k);
/* For a repository opened while another process may destroy keys (cairn mount beside
 * cairn serve): every loaded key whose tombstone now exists is wiped and marked
 * destroyed as vkey_destroy does, and the decoded-chunk cache dropped; *revoked gets
 * how many. Reads of their chunks fail with -EKEYREVOKED from then on. */
int vkey_recheck(struct repo *r, unsigned *revoked);
/* What the key object of ref says. */
int vkey_info(struct repo *r, uint32_t ref, struct vkey_info *out);
/* 1 if name (a metadata key without "meta/") is a key object or a tombstone. */
int vkey_is_object(const char *name);

/* The chunk store of volume key ref on r (chunk_store_ops.keyed). */
int vkey_chunk_store(struct repo *r, uint32_t ref, struct chunk_store *out);

/* ---- for repo.c ---- */
struct vkey_table;
int vkey_table_create(struct vkey_table **out);
/* Wipe every key and free. */
void vkey_table_destroy(struct vkey_table *t);
/* Defined in repo.c: the table of r (NULL in a plain repository), and the cache drop. */
struct vkey_table *repo_vkey_table(struct repo *r);
void repo_cache_clear(struct repo *r);
const uint8_t *repo_id_bytes(const struct repo *r);

#endif
