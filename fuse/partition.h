/* partition.h - find the partitions of a disk image (MBR and GPT), so the FUSE view can
 * show part1.img, part2.img, ... that loop-mount with no offset arithmetic.
 *
 * The caller supplies a read function; everything is bounds-checked against the image
 * size, and a malformed table yields fewer partitions, never an out-of-range one.
 */
#ifndef CAIRN_PARTITION_H
#define CAIRN_PARTITION_H

#include <stddef.h>
#include <stdint.h>

#define PART_MAX 128

struct part {
	unsigned num;    /* partition number as Linux gives it (sdX<num>): MBR primary slot+1,
			  * logical from 5, GPT entry index+1 */
	uint64_t start;  /* bytes from the start of the disk */
	uint64_t size;   /* bytes */
};

/* Read len bytes at off of the image. 0 or a negative errno. */
typedef int (*part_read_fn)(void *arg, uint64_t off, void *buf, size_t len);

/* Fill parts[0..*n) in table order. Returns 0 (possibly with *n = 0
 * when the image has no MBR or GPT) or a negative errno if reading failed. */
int part_scan(part_read_fn rd, void *arg, uint64_t disk_size, struct part *parts, unsigned *n);

#endif
