/* partition.c - MBR and GPT parsing (see partition.h).
 *
 * MBR (sector 0, 512 bytes): bytes 446..509 hold 4 entries of 16 bytes
 *   +0 status, +1 CHS first, +4 type, +5 CHS last, +8 LBA first (le32), +12 sectors (le32);
 *   bytes 510..511 = 0x55 0xAA. Type 0xEE = protective MBR of a GPT disk. Types 0x05, 0x0F
 *   and 0x85 are extended partitions: a chain of EBRs, each an MBR whose entry 0 is a
 *   logical partition (LBA relative to that EBR) and entry 1 links to the next EBR
 *   (LBA relative to the start of the extended partition). Numbers follow Linux: primary
 *   slot i is partition i+1, logical partitions count from 5.
 * GPT (sector 1): "EFI PART" signature, +72 partition entry array LBA (le64), +80 number
 *   of entries (le32), +84 entry size (le32, >= 128). Entry: +0 type GUID (16 bytes, all
 *   zero = unused), +32 first LBA (le64), +40 last LBA inclusive (le64).
 * Sectors are 512 bytes (the LUN block size).
 */
#include "partition.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SECTOR 512u
#define EBR_MAX 64 /* logical partitions followed at most */

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void add(struct part *parts, unsigned *n, unsigned num, uint64_t start, uint64_t size,
		uint64_t disk)
{
	if (*n >= PART_MAX || size == 0 || start >= disk || size > disk - start)
		return;
	parts[*n].num = num;
	parts[*n].start = start;
	parts[*n].size = size;
	(*n)++;
}

static int scan_gpt(part_read_fn rd, void *arg, uint64_t disk, struct part *parts, unsigned *n)
{
	uint8_t hdr[SECTOR], *ents = NULL;
	uint64_t arr_lba;
	uint32_t count, esize;
	size_t bytes;
	int rc;

	rc = rd(arg, SECTOR, hdr, SECTOR);
	if (rc)
		return rc;
	if (memcmp(hdr, "EFI PART", 8))
		return -ENOENT;
	arr_lba = le64(hdr + 72);
	count = le32(hdr + 80);
	esize = le32(hdr + 84);
	if (esize < 128 || esize > 4096 || count == 0 || count > 1024)
		return -ENOENT;
	bytes = (size_t)count * esize;
	if (arr_lba >= disk / SECTOR || bytes > disk - arr_lba * SECTOR)
		return -ENOENT;
	ents = malloc(bytes);
	if (!ents)
		return -ENOMEM;
	rc = rd(arg, arr_lba * SECTOR, ents, bytes);
	if (rc)
		goto out_free;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *e = ents + (size_t)i * esize;
		uint64_t first = le64(e + 32), last = le64(e + 40);
		static const uint8_t zero[16];

		if (!memcmp(e, zero, 16) || last < first)
			continue;
		add(parts, n, i + 1, first * SECTOR, (last - first + 1) * SECTOR, disk);
	}
out_free:
	free(ents);
	return rc;
}

static int is_extended(uint8_t type)
{
	return type == 0x05 || type == 0x0f || type == 0x85;
}

static int scan_logical(part_read_fn rd, void *arg, uint64_t disk, uint64_t ext_lba,
			struct part *parts, unsigned *n)
{
	uint64_t ebr = ext_lba;
	unsigned num = 5;

	for (int i = 0; i < EBR_MAX && ebr && ebr < disk / SECTOR; i++) {
		uint8_t s[SECTOR];
		const uint8_t *e0 = s + 446, *e1 = s + 462;
		int rc = rd(arg, ebr * SECTOR, s, SECTOR);

		if (rc)
			return rc;
		if (s[510] != 0x55 || s[511] != 0xaa)
			break;
		if (e0[4])
			add(parts, n, num++, (ebr + le32(e0 + 8)) * SECTOR, (uint64_t)le32(e0 + 12) * SECTOR, disk);
		if (!is_extended(e1[4]) || !le32(e1 + 8))
			break;
		ebr = ext_lba + le32(e1 + 8);
	}
	return 0;
}

int part_scan(part_read_fn rd, void *arg, uint64_t disk, struct part *parts, unsigned *n)
{
	uint8_t mbr[SECTOR];
	uint64_t ext = 0;
	int rc;

	*n = 0;
	if (disk < 2 * SECTOR)
		return 0;
	rc = rd(arg, 0, mbr, SECTOR);
	if (rc)
		return rc;
	if (mbr[510] != 0x55 || mbr[511] != 0xaa)
		return 0;
	for (int i = 0; i < 4; i++)
		if (mbr[446 + 16 * i + 4] == 0xee) {
			rc = scan_gpt(rd, arg, disk, parts, n);
			return rc == -ENOENT ? 0 : rc;
		}
	for (int i = 0; i < 4; i++) {
		const uint8_t *e = mbr + 446 + 16 * i;

		if (!e[4])
			continue;
		if (is_extended(e[4])) {
			ext = le32(e + 8);
			continue;
		}
		add(parts, n, (unsigned)i + 1, (uint64_t)le32(e + 8) * SECTOR, (uint64_t)le32(e + 12) * SECTOR, disk);
	}
	return ext ? scan_logical(rd, arg, disk, ext, parts, n) : 0;
}
