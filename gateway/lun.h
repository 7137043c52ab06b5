/* lun.h - a logical unit as the SCSI layer sees it.
 *
 * The gateway knows nothing of volumes or repositories: a LUN is this struct of
 * function pointers plus its geometry and identity. cli/serve.c stacks a volume
 * under it. Offsets and lengths are bytes, multiples of block_size. Every member
 * returns 0 or a negative errno: -EIO/-EBADMSG become MEDIUM ERROR (unrecovered read
 * error) or WRITE ERROR, -ENOSPC becomes SPACE ALLOCATION FAILED, -ERANGE becomes
 * LBA OUT OF RANGE.
 */
#ifndef CAIRN_LUN_H
#define CAIRN_LUN_H

#include <stddef.h>
#include <stdint.h>

struct lun;

struct lun_ops {
	/* Fill buf with len bytes from off. */
	int (*read)(void *ctx, uint64_t off, void *buf, size_t len);
	/* Write len bytes at off; with fua, durable before return. */
	int (*write)(void *ctx, uint64_t off, const void *buf, size_t len, int fua);
	/* Make the range read as zeros and release its space (UNMAP, WRITE SAME zeros). */
	int (*write_zeroes)(void *ctx, uint64_t off, uint64_t len, int fua);
	/* Make every acknowledged write durable (SYNCHRONIZE CACHE). */
	int (*flush)(void *ctx);
	/* Optional (NULL: not kept): save / load the LUN's SCSI state (persistent
	 * reservations with APTPL) durably, as one opaque blob; load gives -ENOENT if none. */
	int (*state_save)(void *ctx, const void *blob, size_t len);
	int (*state_load)(void *ctx, void **blob, size_t *len);
	/* Optional (NULL: the SCSI layer reads and writes): make [dst, dst+len) a copy of
	 * [src, src+len) of the same LUN, sharing data where the store can (EXTENDED COPY). */
	int (*copy_range)(void *ctx, uint64_t dst, uint64_t src, uint64_t len);
	/* Optional (NULL: copies between two LUNs read and write): as copy_range, from
	 * [src_off, src_off+len) of LUN src (another LUN of the map) into this one;
	 * -EOPNOTSUPP when the two cannot share data (the SCSI layer then reads and writes). */
	int (*copy_from)(void *ctx, uint64_t dst, const struct lun *src, uint64_t src_off,
			 uint64_t len);
	/* Optional (NULL: every block counts as mapped): provisioning of the range from off
	 * (len > 0 bytes): *mapped = 1 if the block at off holds data, 0 if it is deallocated
	 * (reads as zeros); *run = bytes from off (1 block .. len) that share that state. */
	int (*map_status)(void *ctx, uint64_t off, uint64_t len, uint64_t *run, int *mapped);
	/* SANITIZE (gateway/scsi_sanitize.c). Optional (NULL: a sanitize is not resumed after
	 * a restart): keep / load the LU's record of a sanitize in progress durably, as one
	 * opaque blob (save with len 0: none any more); load gives -ENOENT (or len 0) if
	 * there is none. */
	int (*sanitize_save)(void *ctx, const void *blob, size_t len);
	int (*sanitize_load)(void *ctx, void **blob, size_t *len);
	/* Optional (NULL: earlier states of the medium stay wherever the store keeps them):
	 * called once a sanitize has overwritten or deallocated every block and flushed:
	 * make every earlier state of the medium unrecoverable (history, storage that no
	 * longer holds a live block), keeping the current state. Long; cancelled(arg)
	 * non-zero asks it to stop early (-ECANCELED). Idempotent: a purge that stopped or
	 * crashed is simply run again. */
	int (*purge)(void *ctx, int (*cancelled)(void *arg), void *arg);
	/* Optional (NULL: SANITIZE CRYPTO ERASE is not supported). check 1 (cheap, no IO):
	 * 0 if this LU supports it, -EOPNOTSUPP if never (its medium has no key of its
	 * own: REPORT SUPPORTED OPERATION CODES leaves it out). check 2 (a SANITIZE
	 * command, may read metadata): also -EBUSY when it cannot run now (the key also
	 * encrypts another LU's medium; logged). check 0: destroy the key the
	 * medium is encrypted under and start a new one, so that every block reads zeros
	 * and no earlier state of the medium can be read anywhere. Fast (no block is
	 * written); idempotent: one cut short by a crash is simply run again. */
	int (*crypto_erase)(void *ctx, int check);
};

struct lun {
	const struct lun_ops *ops;
	void *ctx;
	uint64_t size;          /* bytes */
	uint32_t block_size;    /* 512 */
	uint8_t phys_exp;       /* physical block = block_size << phys_exp (READ CAPACITY 16) */
	uint32_t opt_xfer;      /* optimal transfer granularity in bytes (the chunk size) */
	int read_only;          /* write-protected: writes get DATA PROTECT */
	char name[65];          /* volume name, for product/log text */
	char serial[33];        /* unit serial number (VPD 0x80): the volume id hex */
	uint8_t naa[16];        /* NAA IEEE registered extended designator (VPD 0x83) */
	void *scsi_priv;        /* owned by the SCSI layer (reservations, unit attentions) */
};

#endif
