/* lun_volume.c - a volume seen as a LUN: the lun_ops adapter between gateway/ and
 * volumes/ (see lun_volume.h). */
#include <stdio.h>
#include <string.h>

#include "lun_volume.h"
#include "util.h"

/* lun ops over a volume */
static int lv_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	return volume_read(ctx, off, buf, len);
}

static int lv_write(void *ctx, uint64_t off, const void *buf, size_t len, int fua)
{
	return volume_write(ctx, off, buf, len, fua);
}

static int lv_zero(void *ctx, uint64_t off, uint64_t len, int fua)
{
	return volume_write_zeroes(ctx, off, len, fua);
}

static int lv_flush(void *ctx)
{
	return volume_flush(ctx);
}

static int lv_map_status(void *ctx, uint64_t off, uint64_t len, uint64_t *run, int *mapped)
{
	return volume_map_status(ctx, off, len, run, mapped);
}

/* The SCSI state (persistent reservations with APTPL) in the volume's blob "scsi-state". */
static int lv_state_save(void *ctx, const void *blob, size_t len)
{
	return volume_blob_put(ctx, "scsi-state", blob, len);
}

static int lv_state_load(void *ctx, void **blob, size_t *len)
{
	return volume_blob_get(ctx, "scsi-state", blob, len);
}

static const struct lun_ops volume_lun_ops = {
	.read = lv_read,
	.write = lv_write,
	.write_zeroes = lv_zero,
	.flush = lv_flush,
	.map_status = lv_map_status,
	.state_save = lv_state_save,
	.state_load = lv_state_load,
};

void lun_from_volume(struct lun *l, struct volume *v)
{
	const struct volume_info *vi = volume_get_info(v);
	uint8_t raw[16] = { 0 };

	memset(l, 0, sizeof(*l));
	l->ops = &volume_lun_ops;
	l->ctx = v;
	l->size = vi->size;
	l->block_size = VOLUME_SECTOR;
	l->opt_xfer = vi->chunk_size;
	snprintf(l->name, sizeof(l->name), "%s", vi->name);
	snprintf(l->serial, sizeof(l->serial), "%s", vi->id);
	util_unhex(vi->id, raw, 16);
	/* NAA 6 (IEEE registered extended); the rest is the volume's random id */
	l->naa[0] = 0x60 | (raw[0] & 0x0f);
	memcpy(l->naa + 1, raw + 1, 15);
}

