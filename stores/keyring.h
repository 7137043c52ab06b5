/* keyring.h - key slots: the repository master key wrapped by each password.
 *
 * A key slot is the object "keys/<32 hex slot id>" (layout in keyring.c). It holds
 * the master key encrypted with AES-256-GCM under a key-encryption key (KEK): scrypt of
 * a password, or the 32 bytes of a raw key file. Any slot opens the repository; a
 * repository keeps at least one. Slots are independent objects, written once.
 */
#ifndef CAIRN_KEYRING_H
#define CAIRN_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "aead.h"
#include "repo.h"

#define KEYRING_SLOT_LEN 136u
#define KEYRING_PREFIX "keys/"
/* scrypt cost of new slots: N = 2^15, r = 8, p = 1 (about 32 MiB, ~0.1 s) */
#define KEYRING_LOG2_N 15
#define KEYRING_R 8
#define KEYRING_P 1

/* Make a slot object (KEYRING_SLOT_LEN bytes into out) wrapping master under the
 * secret, bound to repository repo_id_hex and slot id slot_hex (both 32 hex chars). */
int keyring_slot_make(const char *repo_id_hex, const char *slot_hex,
		      const uint8_t master[AEAD_KEY_LEN], const struct repo_secret *s,
		      uint8_t out[KEYRING_SLOT_LEN]);
/* Verify the slot's checksum (-EBADMSG when damaged) and fill *info. */
int keyring_slot_parse(const void *obj, size_t len, struct repo_key_info *info);
/* Unwrap the master key: -EBADMSG the object is damaged, -EKEYREJECTED the secret does
 * not open it (wrong password, or a password given for a key-file slot and so on). */
int keyring_slot_unwrap(const char *repo_id_hex, const char *slot_hex, const void *obj,
			size_t len, const struct repo_secret *s, uint8_t master[AEAD_KEY_LEN]);

#endif
