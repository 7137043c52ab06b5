/* scsi_ua.c - per-LUN SCSI state, unit attentions and range locks (see scsi_ua.h).
 *
 * REQUEST SENSE data returned for a pending UA: fixed format (0x70), 18 bytes, sense key
 * UNIT ATTENTION, ASC/ASCQ of the oldest UA; descriptor format (0x72) when DESC = 1,
 * 8 bytes: 0 response code, 1 sense key, 2 ASC, 3 ASCQ, 7 additional length 0.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_int.h"
#include "scsi_pr.h"
#include "scsi_ua.h"

/* Guards the lazy creation of lun->scsi_priv for every LUN. */
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;

struct scsi_lu *scsi_lu_get(struct lun *lun)
{
	struct scsi_lu *lu = __atomic_load_n(&lun->scsi_priv, __ATOMIC_ACQUIRE);

	if (lu)
		return lu;
	pthread_mutex_lock(&create_lock);
	lu = lun->scsi_priv;
	if (lu)
		goto out_unlock;
	lu = calloc(1, sizeof(*lu));
	if (!lu)
		goto out_unlock;
	pthread_mutex_init(&lu->lock, NULL);
	pthread_mutex_init(&lu->san_start, NULL);
	pthread_cond_init(&lu->san_cond, NULL);
	for (unsigned i = 0; i < LU_STRIPES; i++)
		pthread_mutex_init(&lu->stripe[i], NULL);
	lu->r2_holder = -1;
	lu->pr_holder = -1;
	scsi_pr_load(lu, lun);
	__atomic_store_n(&lun->scsi_priv, lu, __ATOMIC_RELEASE);
out_unlock:
	pthread_mutex_unlock(&create_lock);
	return lu;
}

void scsi_lu_tid(const struct scsi_nexus *n, char *out)
{
	if (!n) {
		out[0] = 0;
		return;
	}
	snprintf(out, LU_TID_MAX, "%.200s,i,0x%02x%02x%02x%02x%02x%02x", n->initiator,
		 n->isid[0], n->isid[1], n->isid[2], n->isid[3], n->isid[4], n->isid[5]);
}

int scsi_lu_find_tid(struct scsi_lu *lu, const char *tid, int add)
{
	struct lu_nexus *e;

	for (uint32_t i = 0; i < lu->nnx; i++)
		if (!strcasecmp(lu->nx[i].tid, tid))
			return (int)i;
	if (!add)
		return -ENOENT;
	if (lu->nnx == lu->cap) {
		uint32_t cap = lu->cap ? lu->cap * 2 : 8;

		e = realloc(lu->nx, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		lu->nx = e;
		lu->cap = cap;
	}
	e = &lu->nx[lu->nnx];
	memset(e, 0, sizeof(*e));
	snprintf(e->tid, sizeof(e->tid), "%s", tid);
	return (int)lu->nnx++;
}

int scsi_lu_nexus(struct scsi_lu *lu, const struct scsi_nexus *n)
{
	char tid[LU_TID_MAX];
	uint64_t id = n ? n->id : 0;
	int i;

	/* Fast path: the session seen last on each entry. */
	for (uint32_t k = 0; k < lu->nnx; k++)
		if (lu->nx[k].sess_id == id && (id || !lu->nx[k].tid[0]))
			return (int)k;
	scsi_lu_tid(n, tid);
	i = scsi_lu_find_tid(lu, tid, 1);
	if (i < 0)
		return i;
	if (!lu->nx[i].seen) {
		/* First command of this I_T nexus since power on. */
		lu->nx[i].seen = 1;
		scsi_lu_ua_add(lu, (uint32_t)i, 0x29, 0x00);
	}
	lu->nx[i].sess_id = id;
	return i;
}

void scsi_lu_ua_add(struct scsi_lu *lu, uint32_t i, uint8_t asc, uint8_t ascq)
{
	struct lu_nexus *e = &lu->nx[i];

	/* A power-on/reset class UA (29/xx) tells of everything older: it replaces them. */
	if (asc == 0x29)
		e->nua = 0;
	for (unsigned k = 0; k < e->nua; k++)
		if (e->ua[k][0] == asc && e->ua[k][1] == ascq)
			return;
	if (e->nua == LU_UA_MAX) {
		/* Full: the newest is replaced, so the initiator still learns something changed. */
		e->nua--;
	}
	e->ua[e->nua][0] = asc;
	e->ua[e->nua][1] = ascq;
	e->nua++;
}

static void ua_pop(struct lu_nexus *e, uint8_t *asc, uint8_t *ascq)
{
	*asc = e->ua[0][0];
	*ascq = e->ua[0][1];
	memmove(e->ua[0], e->ua[1], (size_t)(e->nua - 1) * 2);
	e->nua--;
}

int scsi_ua_check(struct scsi_cmd *c, struct lun *lun)
{
	struct scsi_lu *lu = scsi_lu_get(lun);
	uint8_t op = c->cdb[0], asc, ascq;
	int i;

	if (!lu)
		return 0;
	if (op == 0x12 || op == 0xa0) /* INQUIRY, REPORT LUNS */
		return 0;
	pthread_mutex_lock(&lu->lock);
	i = scsi_lu_nexus(lu, c->nexus);
	if (i < 0 || !lu->nx[i].nua) {
		pthread_mutex_unlock(&lu->lock);
		return 0;
	}
	if (op == 0x03 && (c->cdb[1] & 0xfe)) { /* REQUEST SENSE with bad CDB: its own error */
		pthread_mutex_unlock(&lu->lock);
		return 0;
	}
	ua_pop(&lu->nx[i], &asc, &ascq);
	pthread_mutex_unlock(&lu->lock);
	if (op == 0x03) {
		uint8_t d[18];

		memset(d, 0, sizeof(d));
		if (c->cdb[1] & 1) {
			d[0] = 0x72;
			d[1] = SK_UNIT_ATTENTION;
			d[2] = asc;
			d[3] = ascq;
			scsi_put_data_in(c, d, 8, c->cdb[4]);
		} else {
			d[0] = 0x70;
			d[2] = SK_UNIT_ATTENTION;
			d[7] = 10;
			d[12] = asc;
			d[13] = ascq;
			scsi_put_data_in(c, d, 18, c->cdb[4]);
		}
		return 1;
	}
	scsi_set_sense(c, SK_UNIT_ATTENTION, asc, ascq);
	return 1;
}

static uint64_t stripe_mask(uint64_t off, uint64_t len)
{
	uint64_t first, last, mask = 0;

	if (!len)
		return 0;
	first = off >> LU_STRIPE_SHIFT;
	last = (off + len - 1) >> LU_STRIPE_SHIFT;
	if (last - first >= LU_STRIPES - 1)
		return ~0ull;
	for (uint64_t g = first; g <= last; g++)
		mask |= 1ull << (g % LU_STRIPES);
	return mask;
}

void scsi_range_lock(struct lun *lun, uint64_t off, uint64_t len, uint64_t *mask)
{
	struct scsi_lu *lu = scsi_lu_get(lun);
	uint64_t m = lu ? stripe_mask(off, len) : 0;

	for (unsigned i = 0; i < LU_STRIPES; i++)
		if (m & (1ull << i))
			pthread_mutex_lock(&lu->stripe[i]);
	*mask = m;
}

void scsi_range_unlock(struct lun *lun, uint64_t mask)
{
	struct scsi_lu *lu = lun->scsi_priv;

	for (unsigned i = LU_STRIPES; i-- > 0;)
		if (mask & (1ull << i))
			pthread_mutex_unlock(&lu->stripe[i]);
}

/* Transport events (scsi.h). */
void scsi_nexus_lost(const struct scsi_nexus *n, const struct scsi_lun_map *map)
{
	char tid[LU_TID_MAX];

	scsi_lu_tid(n, tid);
	for (uint32_t k = 0; map && k < map->count; k++) {
		struct lun *l = map->luns[k];
		struct scsi_lu *lu = l ? __atomic_load_n(&l->scsi_priv, __ATOMIC_ACQUIRE) : NULL;
		int i;

		if (!lu)
			continue;
		pthread_mutex_lock(&lu->lock);
		i = scsi_lu_find_tid(lu, tid, 0);
		if (i >= 0) {
			if (lu->r2_holder == i)
				lu->r2_holder = -1;
			if (lu->nx[i].sess_id == (n ? n->id : 0)) {
				/* The next session on this I_T nexus learns of the loss. */
				lu->nx[i].sess_id = 0;
				lu->nx[i].nua = 0;
				scsi_lu_ua_add(lu, (uint32_t)i, 0x29, 0x07);
			}
		}
		pthread_mutex_unlock(&lu->lock);
	}
}

void scsi_lun_reset(struct lun *l, const struct scsi_nexus *n)
{
	struct scsi_lu *lu = scsi_lu_get(l);
	(void)n;
	if (!lu)
		return;
	pthread_mutex_lock(&lu->lock);
	/* SAM-5 6.3.3: a LUN reset releases SCSI-2 reservations, keeps persistent ones, and
	 * establishes BUS DEVICE RESET FUNCTION OCCURRED for every I_T nexus, the one
	 * that asked included (libiscsi's MultipathIO.Reset checks that path too). */
	lu->r2_holder = -1;
	for (uint32_t i = 0; i < lu->nnx; i++)
		scsi_lu_ua_add(lu, i, 0x29, 0x03);
	pthread_mutex_unlock(&lu->lock);
}

void scsi_target_reset(const struct scsi_lun_map *map, const struct scsi_nexus *n)
{
	for (uint32_t i = 0; map && i < map->count; i++)
		if (map->luns[i])
			scsi_lun_reset(map->luns[i], n);
}

void scsi_lun_changed(struct lun *l, uint8_t asc, uint8_t ascq)
{
	struct scsi_lu *lu = scsi_lu_get(l);

	if (!lu)
		return;
	pthread_mutex_lock(&lu->lock);
	for (uint32_t i = 0; i < lu->nnx; i++)
		scsi_lu_ua_add(lu, i, asc, ascq);
	pthread_mutex_unlock(&lu->lock);
}

void scsi_lun_release(struct lun *l)
{
	struct scsi_lu *lu = l->scsi_priv;

	l->scsi_priv = NULL;
	if (!lu)
		return;
	scsi_sanitize_stop(lu);
	for (unsigned i = 0; i < LU_STRIPES; i++)
		pthread_mutex_destroy(&lu->stripe[i]);
	pthread_cond_destroy(&lu->san_cond);
	pthread_mutex_destroy(&lu->san_start);
	pthread_mutex_destroy(&lu->lock);
	free(lu->nx);
	free(lu);
}

int scsi_lun_swp(struct lun *lun)
{
	struct scsi_lu *lu = __atomic_load_n(&lun->scsi_priv, __ATOMIC_ACQUIRE);

	return lu ? __atomic_load_n(&lu->swp, __ATOMIC_RELAXED) : 0;
}
