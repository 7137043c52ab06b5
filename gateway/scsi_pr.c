/* scsi_pr.c - SCSI-2 and persistent reservations (see scsi_pr.h).
 *
 * Reservation types (PERSISTENT RESERVE OUT TYPE field): 1 WRITE EXCLUSIVE (WE),
 * 3 EXCLUSIVE ACCESS (EA), 5 WE REGISTRANTS ONLY, 6 EA REGISTRANTS ONLY, 7 WE ALL
 * REGISTRANTS, 8 EA ALL REGISTRANTS. Scope is always LU_SCOPE (0). There is one target
 * port, so ALL_TG_PT is accepted and recorded. SPEC_I_PT is not supported (SIP_C = 0).
 *
 * Access under a persistent reservation (SPC-4 5.9.1 table), by the row's class: for an
 * RO/AR type every registered I_T nexus has the holder's access, for WE/EA only the
 * holder. Others: WE types let READ-class commands run and conflict WRITE- and
 * CONFLICT-class ones; EA types conflict all three. ALLOWED-class commands always run.
 * Under a SCSI-2 reservation the other nexuses get RESERVATION CONFLICT for everything
 * but INQUIRY, REPORT LUNS, REQUEST SENSE, RELEASE (a no-op for them) and PR IN.
 *
 * PERSISTENT RESERVE OUT parameter list (24 bytes, big-endian):
 *   0-7 RESERVATION KEY, 8-15 SERVICE ACTION RESERVATION KEY, 16-19 obsolete,
 *   20 SPEC_I_PT (3) | ALL_TG_PT (2) | APTPL (0), 21 reserved, 22-23 obsolete.
 * REGISTER AND MOVE: 0-7, 8-15 as above, 16 reserved, 17 UNREG (1) | APTPL (0),
 *   18-19 RELATIVE TARGET PORT IDENTIFIER, 20-23 TRANSPORTID PARAMETER DATA LENGTH,
 *   24- TransportID.
 * iSCSI TransportID (SPC-4 7.6.4.6): 0 FORMAT CODE (7-6: 0 name only, 1 name + ISID) |
 *   PROTOCOL IDENTIFIER (3-0) = 5; 2-3 ADDITIONAL LENGTH (multiple of 4); 4- the
 *   initiator port name "<name>,i,0x<ISID>" (format 1) or "<name>", NUL terminated and
 *   padded with NULs.
 *
 * PERSISTENT RESERVE IN data: 0-3 PRGENERATION, 4-7 ADDITIONAL LENGTH, then
 *   READ KEYS: 8-byte keys; READ RESERVATION: 0-7 key (0 for all-registrants types),
 *   8-11 obsolete, 12 reserved, 13 SCOPE (7-4) | TYPE (3-0), 14-15 obsolete;
 *   READ FULL STATUS: per registrant 0-7 key, 8-11 reserved, 12 ALL_TG_PT (1) |
 *   R_HOLDER (0), 13 SCOPE | TYPE, 14-17 reserved, 18-19 RELATIVE TARGET PORT ID = 1,
 *   20-23 ADDITIONAL DESCRIPTOR LENGTH, 24- TransportID (format 1).
 *   REPORT CAPABILITIES: 0-1 LENGTH = 8, 2 CRH (4) | SIP_C (3) | ATP_C (2) | PTPL_C (0),
 *   3 TMV (7) | ALLOW COMMANDS (6-4) | PTPL_A (0), 4-5 PERSISTENT RESERVATION TYPE MASK,
 *   6-7 reserved.
 *
 * Saved state (the APTPL blob given to lun->ops->state_save), big-endian:
 *   0-3   magic "CPRS"
 *   4-5   version = 1
 *   6     TYPE of the reservation (0: none)
 *   7     APTPL (1)
 *   8-11  PRGENERATION
 *   12-15 index of the holder among the entries (0xFFFFFFFF: none)
 *   16-19 entry count n
 *   20-   n entries: 0-7 key, 8 flags (bit 0 ALL_TG_PT), 9-10 TransportID text length
 *         L, 11- the text (no NUL)
 *   last 4 bytes: CRC32C (iSCSI polynomial) of everything before it
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/crc.h>

#include "log.h"
#include "scsi_int.h"
#include "scsi_pr.h"
#include "scsi_ua.h"

#define PR_MAGIC "CPRS"
#define PR_VERSION 1

enum {
	PR_WE = 1, PR_EA = 3, PR_WE_RO = 5, PR_EA_RO = 6, PR_WE_AR = 7, PR_EA_AR = 8,
};

static int type_valid(unsigned t)
{
	return t == PR_WE || t == PR_EA || t == PR_WE_RO || t == PR_EA_RO || t == PR_WE_AR ||
	       t == PR_EA_AR;
}

static int type_all_reg(unsigned t) { return t == PR_WE_AR || t == PR_EA_AR; }
static int type_reg_access(unsigned t) { return t >= PR_WE_RO; }
static int type_excl_access(unsigned t) { return t == PR_EA || t == PR_EA_RO || t == PR_EA_AR; }

static int is_holder(const struct scsi_lu *lu, int i)
{
	if (!lu->pr_type || i < 0)
		return 0;
	if (type_all_reg(lu->pr_type))
		return lu->nx[i].registered;
	return lu->pr_holder == i;
}

static int any_registered(const struct scsi_lu *lu)
{
	for (uint32_t i = 0; i < lu->nnx; i++)
		if (lu->nx[i].registered)
			return 1;
	return 0;
}

static void conflict(struct scsi_cmd *c)
{
	c->status = SAM_STAT_RESERVATION_CONFLICT;
	c->sense_len = 0;
	c->data_in_len = 0;
}

/* ---- saved state ---- */

static uint32_t crc32c(const void *p, size_t n)
{
	return crc32_iscsi((unsigned char *)p, (int)n, 0xffffffffu) ^ 0xffffffffu;
}

/* Serialize lu (caller holds lu->lock) and hand it to state_save. */
static int pr_save(struct scsi_lu *lu, struct lun *lun)
{
	size_t cap = 24, n = 20;
	uint32_t cnt = 0, holder = 0xffffffffu;
	uint8_t *b;
	int rc;

	if (!lun->ops->state_save)
		return 0;
	for (uint32_t i = 0; i < lu->nnx; i++)
		if (lu->nx[i].registered)
			cap += 11 + strlen(lu->nx[i].tid);
	b = malloc(cap);
	if (!b)
		return -ENOMEM;
	for (uint32_t i = 0; i < lu->nnx && lu->aptpl; i++) {
		const struct lu_nexus *e = &lu->nx[i];
		size_t l = strlen(e->tid);

		if (!e->registered)
			continue;
		if ((int)i == lu->pr_holder && lu->pr_type)
			holder = cnt;
		put_be64(b + n, e->key);
		b[n + 8] = e->all_tg_pt;
		put_be16(b + n + 9, (uint16_t)l);
		memcpy(b + n + 11, e->tid, l);
		n += 11 + l;
		cnt++;
	}
	memcpy(b, PR_MAGIC, 4);
	put_be16(b + 4, PR_VERSION);
	b[6] = lu->aptpl ? lu->pr_type : 0;
	b[7] = lu->aptpl;
	put_be32(b + 8, lu->pr_gen);
	put_be32(b + 12, holder);
	put_be32(b + 16, cnt);
	put_be32(b + n, crc32c(b, n));
	rc = lun->ops->state_save(lun->ctx, b, n + 4);
	free(b);
	return rc;
}

void scsi_pr_load(struct scsi_lu *lu, struct lun *lun)
{
	void *blob = NULL;
	const uint8_t *b;
	size_t len = 0, n = 20;
	uint32_t cnt, holder;
	int rc;

	if (!lun->ops->state_load)
		return;
	rc = lun->ops->state_load(lun->ctx, &blob, &len);
	if (rc < 0) {
		if (rc != -ENOENT)
			log_warn("scsi", "LUN %s: cannot load the reservation state (%d)", lun->name, rc);
		return;
	}
	b = blob;
	if (len < 24 || memcmp(b, PR_MAGIC, 4) || get_be16(b + 4) != PR_VERSION ||
	    get_be32(b + len - 4) != crc32c(b, len - 4))
		goto out_damaged;
	cnt = get_be32(b + 16);
	holder = get_be32(b + 12);
	for (uint32_t k = 0; k < cnt; k++) {
		char tid[LU_TID_MAX];
		size_t l;
		int i;

		if (n + 11 > len - 4)
			goto out_damaged;
		l = get_be16(b + n + 9);
		if (l >= LU_TID_MAX || n + 11 + l > len - 4)
			goto out_damaged;
		memcpy(tid, b + n + 11, l);
		tid[l] = 0;
		i = scsi_lu_find_tid(lu, tid, 1);
		if (i < 0)
			goto out_free;
		lu->nx[i].registered = 1;
		lu->nx[i].key = get_be64(b + n);
		lu->nx[i].all_tg_pt = b[n + 8] & 1;
		if (k == holder)
			lu->pr_holder = i;
		n += 11 + l;
	}
	lu->pr_gen = get_be32(b + 8);
	lu->aptpl = b[7] & 1;
	lu->pr_type = type_valid(b[6]) && (lu->pr_holder >= 0 || type_all_reg(b[6])) ? b[6] : 0;
	goto out_free;
out_damaged:
	log_warn("scsi", "LUN %s: the saved reservation state is damaged; starting without it",
		 lun->name);
	for (uint32_t i = 0; i < lu->nnx; i++)
		lu->nx[i].registered = 0;
	lu->pr_holder = -1;
out_free:
	free(blob);
}

/* ---- the gate ---- */

int scsi_pr_check(struct scsi_cmd *c, struct lun *lun, unsigned resv)
{
	struct scsi_lu *lu = scsi_lu_get(lun);
	uint8_t op = c->cdb[0];
	int i, bad = 0;

	if (!lu)
		return 0;
	pthread_mutex_lock(&lu->lock);
	if (lu->r2_holder < 0 && !lu->pr_type) {
		pthread_mutex_unlock(&lu->lock);
		return 0;
	}
	i = scsi_lu_nexus(lu, c->nexus);
	if (lu->r2_holder >= 0 && lu->r2_holder != i) {
		bad = !(op == 0x12 || op == 0xa0 || op == 0x03 || op == 0x17 || op == 0x57 ||
			op == 0x5e);
	} else if (lu->pr_type && op != 0x5e && op != 0x5f) {
		int priv = i >= 0 && (type_reg_access(lu->pr_type) ? lu->nx[i].registered :
				      lu->pr_holder == i);

		if (!priv) {
			switch (resv) {
			case SCSI_RESV_READ:
				bad = type_excl_access(lu->pr_type);
				break;
			case SCSI_RESV_WRITE:
			case SCSI_RESV_CONFLICT:
				bad = 1;
				break;
			default:
				break;
			}
		}
	}
	pthread_mutex_unlock(&lu->lock);
	if (bad)
		conflict(c);
	return bad;
}

/* ---- SCSI-2 ---- */

int scsi_pr_reserve(struct scsi_cmd *c, struct lun *lun)
{
	struct scsi_lu *lu = scsi_lu_get(lun);
	int i;

	if (!lu)
		return -ENOMEM;
	if (c->cdb[0] == 0x56 && (c->cdb[1] & 0x03)) { /* 3RDPTY, LONGID */
		scsi_invalid_field(c, 1, c->cdb[1] & 0x02 ? 1 : 0);
		return 0;
	}
	if (c->cdb[0] == 0x16 && (c->cdb[1] & 0x01)) { /* obsolete EXTENT */
		scsi_invalid_field(c, 1, 0);
		return 0;
	}
	pthread_mutex_lock(&lu->lock);
	i = scsi_lu_nexus(lu, c->nexus);
	if (i < 0 || (lu->r2_holder >= 0 && lu->r2_holder != i) || any_registered(lu)) {
		pthread_mutex_unlock(&lu->lock);
		conflict(c);
		return 0;
	}
	lu->r2_holder = i;
	pthread_mutex_unlock(&lu->lock);
	scsi_good(c);
	return 0;
}

int scsi_pr_release(struct scsi_cmd *c, struct lun *lun)
{
	struct scsi_lu *lu = scsi_lu_get(lun);
	int i;

	if (!lu)
		return -ENOMEM;
	if (c->cdb[0] == 0x57 && (c->cdb[1] & 0x03)) {
		scsi_invalid_field(c, 1, c->cdb[1] & 0x02 ? 1 : 0);
		return 0;
	}
	pthread_mutex_lock(&lu->lock);
	i = scsi_lu_nexus(lu, c->nexus);
	if (i >= 0 && lu->r2_holder == i)
		lu->r2_holder = -1;
	pthread_mutex_unlock(&lu->lock);
	scsi_good(c);
	return 0;
}

/* ---- PERSISTENT RESERVE IN ---- */

/* iSCSI TransportID (format 1) of tid into p; returns its length (multiple of 4). */
static uint32_t put_tid(uint8_t *p, const char *tid)
{
	uint32_t l = (uint32_t)strlen(tid) + 1, pad = (l + 3) & ~3u;

	if (pad < 20)
		pad = 20;
	memset(p, 0, 4 + pad);
	p[0] = 0x45;
	put_be16(p + 2, (uint16_t)pad);
	memcpy(p + 4, tid, l - 1);
	return 4 + pad;
}

int scsi_pr_in(struct scsi_cmd *c, struct lun *lun)
{
	struct scsi_lu *lu = scsi_lu_get(lun);
	uint32_t alloc = get_be16(c->cdb + 7), n = 8, cap;
	unsigned sa = c->cdb[1] & 0x1f;
	uint8_t *d;
	int rc = 0;

	if (!lu)
		return -ENOMEM;
	if (sa > 3) {
		scsi_invalid_field(c, 1, 4);
		return 0;
	}
	pthread_mutex_lock(&lu->lock);
	cap = 8 + lu->nnx * (24 + 4 + LU_TID_MAX + 4);
	d = malloc(cap);
	if (!d) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	memset(d, 0, 8);
	put_be32(d, lu->pr_gen);
	switch (sa) {
	case 0: /* READ KEYS */
		for (uint32_t i = 0; i < lu->nnx; i++) {
			if (!lu->nx[i].registered)
				continue;
			put_be64(d + n, lu->nx[i].key);
			n += 8;
		}
		break;
	case 1: /* READ RESERVATION */
		if (lu->pr_type) {
			memset(d + 8, 0, 16);
			if (!type_all_reg(lu->pr_type))
				put_be64(d + 8, lu->nx[lu->pr_holder].key);
			d[8 + 13] = lu->pr_type;
			n += 16;
		}
		break;
	case 2: /* REPORT CAPABILITIES */
		memset(d, 0, 8);
		put_be16(d, 8);
		d[2] = 0x10 | 0x04 | (lun->ops->state_save ? 0x01 : 0); /* CRH, ATP_C, PTPL_C */
		d[3] = 0x80 | 0x10 | (lu->aptpl ? 0x01 : 0);          /* TMV, ALLOW CMDS 1 */
		d[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02;              /* WE_AR EA_RO WE_RO EA WE */
		d[5] = 0x01;                                          /* EA_AR */
		n = 8;
		scsi_put_data_in(c, d, n, alloc);
		goto out_free;
	case 3: /* READ FULL STATUS */
		for (uint32_t i = 0; i < lu->nnx; i++) {
			uint8_t *p = d + n;
			uint32_t tl;

			if (!lu->nx[i].registered)
				continue;
			memset(p, 0, 24);
			put_be64(p, lu->nx[i].key);
			p[12] = (uint8_t)((lu->nx[i].all_tg_pt ? 0x02 : 0) |
					  (is_holder(lu, (int)i) ? 0x01 : 0));
			p[13] = is_holder(lu, (int)i) ? lu->pr_type : 0;
			put_be16(p + 18, 1);
			tl = put_tid(p + 24, lu->nx[i].tid);
			put_be32(p + 20, tl);
			n += 24 + tl;
		}
		break;
	}
	put_be32(d + 4, n - 8);
	scsi_put_data_in(c, d, n, alloc);
out_free:
	free(d);
out_unlock:
	pthread_mutex_unlock(&lu->lock);
	return rc;
}

/* ---- PERSISTENT RESERVE OUT ---- */

/* Drop the registration of entry i; a reservation it held goes with it (for an
 * all-registrants type only with the last registrant). RO types: the registrants left
 * learn RESERVATIONS RELEASED. */
static void unregister(struct scsi_lu *lu, int i)
{
	lu->nx[i].registered = 0;
	lu->nx[i].key = 0;
	if (!lu->pr_type)
		return;
	if (type_all_reg(lu->pr_type)) {
		if (!any_registered(lu)) {
			lu->pr_type = 0;
			lu->pr_holder = -1;
		} else if (lu->pr_holder == i) {
			for (uint32_t k = 0; k < lu->nnx; k++)
				if (lu->nx[k].registered)
					lu->pr_holder = (int)k;
		}
		return;
	}
	if (lu->pr_holder != i)
		return;
	if (lu->pr_type == PR_WE_RO || lu->pr_type == PR_EA_RO)
		for (uint32_t k = 0; k < lu->nnx; k++)
			if (lu->nx[k].registered)
				scsi_lu_ua_add(lu, k, 0x2a, 0x04);
	lu->pr_type = 0;
	lu->pr_holder = -1;
}

/* Entry index named by the TransportID at p (len bytes), adding one if needed; -EINVAL
 * when it is not an iSCSI TransportID. */
static int tid_entry(struct scsi_lu *lu, const uint8_t *p, uint32_t len)
{
	char name[LU_TID_MAX];
	uint32_t l;

	if (len < 4 || (p[0] & 0x0f) != 5 || (p[0] >> 6) > 1)
		return -EINVAL;
	l = get_be16(p + 2);
	if (l > len - 4 || l == 0)
		return -EINVAL;
	if (l >= LU_TID_MAX)
		l = LU_TID_MAX - 1;
	memcpy(name, p + 4, l);
	name[l] = 0;
	if (!name[0])
		return -EINVAL;
	if ((p[0] >> 6) == 0) { /* name only: the one I_T nexus of that initiator we know */
		size_t nl = strlen(name);

		for (uint32_t i = 0; i < lu->nnx; i++)
			if (!strncasecmp(lu->nx[i].tid, name, nl) && !strncmp(lu->nx[i].tid + nl, ",i,", 3))
				return (int)i;
		return -EINVAL;
	}
	return scsi_lu_find_tid(lu, name, 1);
}

/* PREEMPT and PREEMPT AND ABORT. Tasks run to completion one at a time per command, so
 * there is nothing left to abort when this runs. */
static void preempt(struct scsi_cmd *c, struct scsi_lu *lu, int me, uint64_t sark, unsigned type)
{
	int removed = 0;

	if (!lu->pr_type || (type_all_reg(lu->pr_type) && sark != 0) ||
	    (!type_all_reg(lu->pr_type) && lu->nx[lu->pr_holder].key != sark)) {
		/* Only registrations go. */
		if (sark == 0) {
			scsi_invalid_param(c, 8, -1);
			return;
		}
		for (uint32_t k = 0; k < lu->nnx; k++) {
			if (!lu->nx[k].registered || lu->nx[k].key != sark || (int)k == me)
				continue;
			unregister(lu, (int)k);
			scsi_lu_ua_add(lu, k, 0x2a, 0x05);
			removed = 1;
		}
		if (!removed && !(lu->nx[me].key == sark)) {
			conflict(c);
			return;
		}
		lu->pr_gen++;
		scsi_good(c);
		return;
	}
	/* The reservation is preempted: remove the registrations named (all others for an
	 * all-registrants type with key 0), then reserve for the preemptor. */
	for (uint32_t k = 0; k < lu->nnx; k++) {
		if (!lu->nx[k].registered || (int)k == me)
			continue;
		if (type_all_reg(lu->pr_type) || lu->nx[k].key == sark) {
			lu->nx[k].registered = 0;
			lu->nx[k].key = 0;
			scsi_lu_ua_add(lu, k, 0x2a, 0x05);
		} else if (lu->pr_type != type) {
			scsi_lu_ua_add(lu, k, 0x2a, 0x03);
		}
	}
	lu->pr_type = (uint8_t)type;
	lu->pr_holder = me;
	lu->pr_gen++;
	scsi_good(c);
}

int scsi_pr_out(struct scsi_cmd *c, struct lun *lun)
{
	struct scsi_lu *lu = scsi_lu_get(lun);
	unsigned sa = c->cdb[1] & 0x1f, scope = c->cdb[2] >> 4, type = c->cdb[2] & 0x0f;
	uint32_t plen = get_be32(c->cdb + 5);
	const uint8_t *p = c->buf;
	uint64_t key, sark;
	int i, rc = 0, changed = 0, aptpl_off = 0;

	c->xfer_len = plen;
	if (!lu)
		return -ENOMEM;
	if (sa > 7) {
		scsi_invalid_field(c, 1, 4);
		return 0;
	}
	if (sa == 7 ? plen < 24 : plen != 24) {
		scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return 0;
	}
	if (c->data_out_len < plen) {
		scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
		return 0;
	}
	if ((sa == 1 || sa == 2 || sa == 4 || sa == 5 || sa == 7) && (scope != 0 || !type_valid(type))) {
		if (scope != 0)
			scsi_invalid_field(c, 2, 7);
		else
			scsi_invalid_field(c, 2, 3);
		return 0;
	}
	key = get_be64(p);
	sark = get_be64(p + 8);
	if (sa != 7 && (p[20] & 0x08)) { /* SPEC_I_PT: SIP_C = 0 */
		scsi_invalid_param(c, 20, 3);
		return 0;
	}
	if (sa != 7 && (p[20] & 0x01) && !lun->ops->state_save) {
		scsi_invalid_param(c, 20, 0); /* APTPL without a place to keep it */
		return 0;
	}
	pthread_mutex_lock(&lu->lock);
	i = scsi_lu_nexus(lu, c->nexus);
	if (i < 0) {
		rc = i;
		goto out_unlock;
	}
	if (lu->r2_holder >= 0 && lu->r2_holder != i) {
		conflict(c);
		goto out_unlock;
	}
	if (sa == 0 || sa == 6) { /* REGISTER, REGISTER AND IGNORE EXISTING KEY */
		struct lu_nexus *e = &lu->nx[i];

		if (sa == 0 && (e->registered ? key != e->key : key != 0)) {
			conflict(c);
			goto out_unlock;
		}
		if (sark == 0) {
			if (e->registered) {
				unregister(lu, i);
				lu->pr_gen++;
				changed = 1;
			}
		} else {
			e->registered = 1;
			e->key = sark;
			e->all_tg_pt = !!(p[20] & 0x04);
			lu->pr_gen++;
			changed = 1;
		}
		if (changed) {
			aptpl_off = lu->aptpl && !(p[20] & 0x01);
			lu->aptpl = !!(p[20] & 0x01);
		}
		scsi_good(c);
		goto out_save;
	}
	/* Every other service action needs a registration under the key given. */
	if (!lu->nx[i].registered || lu->nx[i].key != key) {
		conflict(c);
		goto out_unlock;
	}
	switch (sa) {
	case 1: /* RESERVE */
		if (lu->pr_type && !is_holder(lu, i)) {
			conflict(c);
			goto out_unlock;
		}
		if (lu->pr_type && lu->pr_type != type) {
			conflict(c);
			goto out_unlock;
		}
		if (!lu->pr_type) {
			lu->pr_type = (uint8_t)type;
			lu->pr_holder = i;
			changed = 1;
		}
		scsi_good(c);
		break;
	case 2: /* RELEASE */
		if (!lu->pr_type || !is_holder(lu, i)) {
			scsi_good(c);
			break;
		}
		if (lu->pr_type != type) {
			scsi_set_sense(c, SK_ILLEGAL_REQUEST, 0x26, 0x04); /* INVALID RELEASE OF PR */
			break;
		}
		if (type_reg_access(lu->pr_type))
			for (uint32_t k = 0; k < lu->nnx; k++)
				if (lu->nx[k].registered && (int)k != i)
					scsi_lu_ua_add(lu, k, 0x2a, 0x04);
		lu->pr_type = 0;
		lu->pr_holder = -1;
		changed = 1;
		scsi_good(c);
		break;
	case 3: /* CLEAR */
		for (uint32_t k = 0; k < lu->nnx; k++) {
			if (lu->nx[k].registered && (int)k != i)
				scsi_lu_ua_add(lu, k, 0x2a, 0x03);
			lu->nx[k].registered = 0;
			lu->nx[k].key = 0;
		}
		lu->pr_type = 0;
		lu->pr_holder = -1;
		lu->pr_gen++;
		changed = 1;
		scsi_good(c);
		break;
	case 4: /* PREEMPT */
	case 5: /* PREEMPT AND ABORT */
		preempt(c, lu, i, sark, type);
		changed = c->status == SAM_STAT_GOOD;
		break;
	case 7: { /* REGISTER AND MOVE */
		uint32_t tlen = get_be32(p + 20);
		int d;

		if (!lu->pr_type || !is_holder(lu, i)) {
			conflict(c);
			goto out_unlock;
		}
		if (type_all_reg(lu->pr_type)) {
			conflict(c);
			goto out_unlock;
		}
		if (sark == 0) {
			scsi_invalid_param(c, 8, -1);
			goto out_unlock;
		}
		if (24 + (uint64_t)tlen > plen) {
			scsi_sense_asc(c, SK_ILLEGAL_REQUEST, ASC_PARAM_LIST_LENGTH);
			goto out_unlock;
		}
		d = tid_entry(lu, p + 24, tlen);
		if (d < 0 || d == i) {
			if (d == -ENOMEM)
				rc = d;
			else
				scsi_invalid_param(c, 24, -1);
			goto out_unlock;
		}
		lu->nx[d].registered = 1;
		lu->nx[d].key = sark;
		lu->pr_holder = d;
		lu->pr_type = (uint8_t)type;
		if (p[17] & 0x02) {
			lu->nx[i].registered = 0;
			lu->nx[i].key = 0;
		}
		aptpl_off = lu->aptpl && !(p[17] & 0x01);
		lu->aptpl = p[17] & 0x01;
		lu->pr_gen++;
		changed = 1;
		scsi_good(c);
		break;
	}
	default:
		scsi_invalid_field(c, 1, 4);
		break;
	}
out_save:
	if (changed && (lu->aptpl || aptpl_off))
		rc = pr_save(lu, lun);
out_unlock:
	pthread_mutex_unlock(&lu->lock);
	return rc;
}
