/* lun_volume.c - a volume seen as a LUN: the lun_ops adapter between gateway/ and
 * volumes/ (see lun_volume.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "cli.h"
#include "control.h"
#include "log.h"
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

/* ---- SANITIZE (gateway/scsi_sanitize.c): its record, and the purge ----
 * The record of a sanitize in progress is the volume's blob "sanitize" (in the
 * repository: it outlives a crash of the daemon; an empty blob: none). The purge drops
 * the volume's history up to the sanitize (volume_purge_history: named snapshots and
 * clones stay, as the user's own objects), then has the daemon run its gc (the same
 * gc.start as `cairn gc --grace 0 --repack-threshold 100`, so it starts on the control
 * thread like any gc): every chunk no root references is deleted at once, and every
 * pack that held one is rewritten without it, so no copy of the old data stays in the
 * repository, nor in the local caches (the S3 pack cache drops what gc deletes; the
 * decoded-chunk cache forgets the chunks of a retired pack). Chunks other volumes or
 * snapshots share (dedup) are live and stay. */
static char purge_sock[256];

void lun_volume_purge_setup(const char *repo_id)
{
	if (cli_control_path(repo_id, purge_sock, sizeof(purge_sock)))
		purge_sock[0] = 0;
}

static int lv_san_save(void *ctx, const void *blob, size_t len)
{
	return volume_blob_put(ctx, "sanitize", blob, len);
}

static int lv_san_load(void *ctx, void **blob, size_t *len)
{
	return volume_blob_get(ctx, "sanitize", blob, len);
}

/* One request to the daemon; 1 with *resp when it answered ok, 0 when it answered an
 * error (*resp kept for the message), or a negative errno (not reachable). */
static int purge_call(const char *cmd, json_object *args, json_object **resp)
{
	json_object *req = args ? args : json_object_new_object(), *v;
	int rc;

	*resp = NULL;
	json_object_object_add(req, "cmd", json_object_new_string(cmd));
	rc = control_call(purge_sock, req, resp);
	json_object_put(req);
	if (rc)
		return rc;
	return json_object_object_get_ex(*resp, "ok", &v) && json_object_get_boolean(v);
}

static void purge_nap(void)
{
	struct timespec ts = { 0, 200 * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

static int64_t jnum(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

/* gc.start with no grace and every pack holding a dead record repacked, then wait for
 * it to finish. A gc already running (or a control socket not up yet, at start) is
 * waited for. */
static int purge_gc(const char *name, int (*cancelled)(void *arg), void *arg)
{
	json_object *resp = NULL, *v, *res;
	int rc, said = 0;

	if (!purge_sock[0])
		return -ENOTSUP;
	for (;;) {
		json_object *a = json_object_new_object();

		if (cancelled(arg))
			return -ECANCELED;
		json_object_object_add(a, "dry_run", json_object_new_boolean(0));
		json_object_object_add(a, "repack_pct", json_object_new_int(100));
		json_object_object_add(a, "grace_ns", json_object_new_int64(0));
		rc = purge_call("gc.start", a, &resp);
		if (rc == 1)
			break;
		if (!said++)
			log_info("sanitize", "%s: waiting to start the purge gc (%s)", name,
				 rc < 0 ? strerror(-rc) : resp && json_object_object_get_ex(resp,
				 "error", &v) ? json_object_get_string(v) : "refused");
		if (resp)
			json_object_put(resp);
		purge_nap();
	}
	json_object_put(resp);
	for (;;) {
		purge_nap();
		if (cancelled(arg))
			return -ECANCELED;
		rc = purge_call("gc.status", NULL, &resp);
		if (rc == 1 && json_object_object_get_ex(resp, "finished", &v) &&
		    json_object_get_boolean(v) &&
		    !(json_object_object_get_ex(resp, "running", &v) && json_object_get_boolean(v)))
			break;
		if (resp)
			json_object_put(resp);
	}
	rc = 0;
	if (json_object_object_get_ex(resp, "error", &v)) {
		log_error("sanitize", "%s: the purge gc failed: %s", name, json_object_get_string(v));
		rc = -EIO;
	} else if (json_object_object_get_ex(resp, "result", &res)) {
		log_info("sanitize", "%s: purge gc: %lld dead chunks; %lld packs deleted, %lld "
			 "repacked (%lld live chunks moved)", name, (long long)jnum(res, "dead_chunks"),
			 (long long)jnum(res, "packs_deleted"), (long long)jnum(res, "packs_repacked"),
			 (long long)jnum(res, "chunks_moved"));
	}
	json_object_put(resp);
	return rc;
}

static int lv_purge(void *ctx, int (*cancelled)(void *arg), void *arg)
{
	struct volume *v = ctx;
	struct volume_internals in;
	int rc;

	rc = volume_purge_history(v, NULL);
	if (rc)
		return rc;
	/* the pack a gc finds open is no candidate: seal it (it may hold old chunks) */
	volume_get_internals(v, &in);
	rc = in.cs->ops->flush(in.cs->ctx);
	if (rc)
		return rc;
	return purge_gc(volume_get_info(v)->name, cancelled, arg);
}

/* ---- SANITIZE CRYPTO ERASE: the volume's own key destroyed (volume_crypto_erase) ----
 * Only for a volume with a key of its own (`volume create --own-key`); refused (-EBUSY,
 * logged) while a clone shares that key. No gc: what was stored under the old key is
 * unreadable wherever it lies; an ordinary gc reclaims the space later. */
static int lv_crypto_erase(void *ctx, int check)
{
	struct volume *v = ctx;
	char other[VOLUME_NAME_MAX + 1] = "";
	int rc;

	if (!check)
		return volume_crypto_erase(v);
	if (check == 1)
		return volume_get_info(v)->key_ref ? 0 : -EOPNOTSUPP;
	rc = volume_crypto_erase_check(v, other);
	if (rc == -EBUSY)
		log_warn("sanitize", "%s: CRYPTO ERASE refused: volume %s shares its key (a "
			 "clone); erasing the key would erase it too (delete it first)",
			 volume_get_info(v)->name, other);
	return rc;
}

/* ---- EXTENDED COPY: chunks shared by reference (volume_copy) ---- */
static const struct lun_ops volume_lun_ops;

static int lv_copy(void *ctx, uint64_t dst, uint64_t src, uint64_t len)
{
	return volume_copy(ctx, dst, ctx, src, len, 0);
}

/* From another LUN: a volume of the same repository (the daemon serves one). */
static int lv_copy_from(void *ctx, uint64_t dst, const struct lun *src, uint64_t src_off,
			uint64_t len)
{
	int rc;

	if (src->ops != &volume_lun_ops)
		return -EOPNOTSUPP;
	rc = volume_copy(ctx, dst, src->ctx, src_off, len, 0);
	return rc == -EXDEV ? -EOPNOTSUPP : rc;
}

static const struct lun_ops volume_lun_ops = {
	.read = lv_read,
	.write = lv_write,
	.write_zeroes = lv_zero,
	.flush = lv_flush,
	.map_status = lv_map_status,
	.state_save = lv_state_save,
	.state_load = lv_state_load,
	.copy_range = lv_copy,
	.copy_from = lv_copy_from,
	.sanitize_save = lv_san_save,
	.sanitize_load = lv_san_load,
	.purge = lv_purge,
	.crypto_erase = lv_crypto_erase,
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
	while (vi->phys_block && (VOLUME_SECTOR << l->phys_exp) < vi->phys_block)
		l->phys_exp++;
	l->opt_xfer = vi->chunk_size;
	snprintf(l->name, sizeof(l->name), "%s", vi->name);
	snprintf(l->serial, sizeof(l->serial), "%s", vi->id);
	util_unhex(vi->id, raw, 16);
	/* NAA 6 (IEEE registered extended); the rest is the volume's random id */
	l->naa[0] = 0x60 | (raw[0] & 0x0f);
	memcpy(l->naa + 1, raw + 1, 15);
}

