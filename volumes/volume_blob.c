/* volume_blob.c - small named blobs kept per volume in the repository's metadata
 * (volume_blob_put/get, volume.h): the LUN's SCSI state (persistent reservations with
 * APTPL) that must outlive the daemon.
 *
 * Key: "volblob/<volid>/<name>.<016x version>"; the highest version wins. A put writes
 * version newest+1 with the exclusive flag (retrying with the next version if another
 * writer got there first), never overwriting a key, then drops the versions older than
 * the one before it, so a crash at any point leaves the newest complete version or the
 * one before it. Metadata objects are encrypted in an encrypted repository.
 *
 * Object layout, little-endian:
 *   0   u8[4]  magic "CVBL"
 *   4   u16    format 1 (a newer one is refused with -EPROTO)
 *   6   u16    reserved 0
 *   8   u64    version (equal to the key's)
 *   16  u32    payload length n
 *   20  u8[n]  payload (opaque)
 *   20+n u64   XXH3_64bits of bytes 0 .. 19+n
 * A blob that fails these checks is -EBADMSG.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "volume.h"

#define BLOB_MAGIC "CVBL"
#define BLOB_FORMAT 1
#define BLOB_HDR 20
#define BLOB_MAX (1u << 20)

struct scan {
	size_t plen;          /* length of the key prefix "volblob/<volid>/<name>." */
	uint64_t newest;
	int found;
	uint64_t versions[64]; /* every version seen (bounded: old ones are dropped) */
	unsigned n;
};

static int name_valid(const char *name)
{
	size_t n = strlen(name);

	if (!n || n > 32)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
		      name[i] == '-'))
			return 0;
	return 1;
}

static int scan_cb(void *arg, const char *key, uint64_t size)
{
	struct scan *sc = arg;
	const char *h = key + sc->plen;
	char *end;
	uint64_t v;

	(void)size;
	if (strlen(h) != 16)
		return 0;
	v = strtoull(h, &end, 16);
	if (*end)
		return 0;
	if (!sc->found || v > sc->newest)
		sc->newest = v;
	sc->found = 1;
	if (sc->n < sizeof(sc->versions) / sizeof(sc->versions[0]))
		sc->versions[sc->n++] = v;
	return 0;
}

static int blob_scan(struct chunk_store *cs, const char *prefix, struct scan *sc)
{
	int ret;

	memset(sc, 0, sizeof(*sc));
	sc->plen = strlen(prefix);
	ret = cs->ops->meta_list(cs->ctx, prefix, scan_cb, sc);
	return ret > 0 ? 0 : ret;
}

static int blob_prefix(struct volume *v, const char *name, char *out, size_t cap)
{
	if (!name_valid(name))
		return -EINVAL;
	snprintf(out, cap, "volblob/%s/%s.", volume_get_info(v)->id, name);
	return 0;
}

int volume_blob_put(struct volume *v, const char *name, const void *data, size_t len)
{
	struct volume_internals vi;
	struct scan sc;
	char prefix[128], key[160];
	uint64_t ver, h;
	uint32_t n32;
	uint16_t f16;
	uint8_t *b;
	int ret;

	if (len > BLOB_MAX)
		return -EINVAL;
	ret = blob_prefix(v, name, prefix, sizeof(prefix));
	if (ret)
		return ret;
	volume_get_internals(v, &vi);
	ret = blob_scan(vi.cs, prefix, &sc);
	if (ret)
		return ret;
	b = malloc(BLOB_HDR + len + 8);
	if (!b)
		return -ENOMEM;
	ver = sc.found ? sc.newest + 1 : 1;
	for (int tries = 0; tries < 8; tries++, ver++) {
		memcpy(b, BLOB_MAGIC, 4);
		f16 = htole16(BLOB_FORMAT);
		memcpy(b + 4, &f16, 2);
		memset(b + 6, 0, 2);
		h = htole64(ver);
		memcpy(b + 8, &h, 8);
		n32 = htole32((uint32_t)len);
		memcpy(b + 16, &n32, 4);
		if (len)
			memcpy(b + BLOB_HDR, data, len);
		h = htole64(XXH3_64bits(b, BLOB_HDR + len));
		memcpy(b + BLOB_HDR + len, &h, 8);
		snprintf(key, sizeof(key), "%s%016" PRIx64, prefix, ver);
		ret = vi.cs->ops->meta_put(vi.cs->ctx, key, b, BLOB_HDR + len + 8, 1);
		if (ret != -EEXIST)
			break;
	}
	free(b);
	if (ret)
		return ret;
	/* keep this version and the one before it */
	for (unsigned i = 0; i < sc.n; i++)
		if (sc.versions[i] + 1 < ver) {
			snprintf(key, sizeof(key), "%s%016" PRIx64, prefix, sc.versions[i]);
			vi.cs->ops->meta_del(vi.cs->ctx, key);
		}
	return 0;
}

int volume_blob_get(struct volume *v, const char *name, void **data, size_t *len)
{
	struct volume_internals vi;
	struct scan sc;
	char prefix[128], key[160];
	uint64_t h, ver;
	uint32_t n32;
	uint16_t f16;
	uint8_t *b = NULL;
	size_t blen = 0;
	void *out;
	int ret;

	ret = blob_prefix(v, name, prefix, sizeof(prefix));
	if (ret)
		return ret;
	volume_get_internals(v, &vi);
	ret = blob_scan(vi.cs, prefix, &sc);
	if (ret)
		return ret;
	if (!sc.found)
		return -ENOENT;
	snprintf(key, sizeof(key), "%s%016" PRIx64, prefix, sc.newest);
	ret = vi.cs->ops->meta_get(vi.cs->ctx, key, (void **)&b, &blen);
	if (ret)
		return ret;
	ret = -EBADMSG;
	if (blen < BLOB_HDR + 8 || memcmp(b, BLOB_MAGIC, 4))
		goto out_free;
	memcpy(&f16, b + 4, 2);
	if (le16toh(f16) != BLOB_FORMAT) {
		ret = -EPROTO;
		goto out_free;
	}
	memcpy(&h, b + 8, 8);
	ver = le64toh(h);
	memcpy(&n32, b + 16, 4);
	if (ver != sc.newest || le32toh(n32) != blen - BLOB_HDR - 8)
		goto out_free;
	memcpy(&h, b + blen - 8, 8);
	if (le64toh(h) != XXH3_64bits(b, blen - 8))
		goto out_free;
	out = malloc(blen - BLOB_HDR - 8 + 1);
	if (!out) {
		ret = -ENOMEM;
		goto out_free;
	}
	memcpy(out, b + BLOB_HDR, blen - BLOB_HDR - 8);
	*data = out;
	*len = blen - BLOB_HDR - 8;
	ret = 0;
out_free:
	free(b);
	return ret;
}
