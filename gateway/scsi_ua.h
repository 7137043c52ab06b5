/* scsi_ua.h - per-LUN SCSI state (lun->scsi_priv): the I_T nexuses seen, their unit
 * attention queues and persistent-reservation registrations, the SCSI-2 and persistent
 * reservation, and the striped LBA range locks that make COMPARE AND WRITE atomic.
 *
 * Lifetime: created on the first command that reaches the LUN (scsi_lu_get), freed by
 * scsi_lun_release(). All fields below `lock` are guarded by it, except the range
 * stripes, which have their own mutexes.
 *
 * I_T nexus identity: an iSCSI initiator port is "<InitiatorName>,i,0x<ISID hex>" (the
 * TransportID of SPC-4 7.6.4.6); a command without nexus (nexus == NULL) belongs to one
 * anonymous nexus "" . Entries are kept for the life of the LUN: a registration outlives
 * its session (and, with APTPL, the daemon), and a session that logs in again with the
 * same name and ISID is the same I_T nexus.
 *
 * Unit attention rules (SAM-5 5.14, SPC-4 5.12):
 *   - a nexus's first command after the LUN state is created (power on) or after it was
 *     first seen gets POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (29/00);
 *   - LUN RESET / TARGET RESET queue BUS DEVICE RESET FUNCTION OCCURRED (29/03) for every
 *     nexus; reservation changes queue 2A/03, 2A/04, 2A/05 for the nexuses they touch;
 *     scsi_lun_changed() queues its asc/ascq for every nexus; a 29/xx UA replaces the
 *     UAs pending before it (a reset subsumes them), so one TEST UNIT READY clears it;
 *   - any command but INQUIRY, REPORT LUNS and REQUEST SENSE reports the oldest pending
 *     UA as CHECK CONDITION and clears it; REQUEST SENSE returns it as its data and clears
 *     it; INQUIRY and REPORT LUNS run without touching the queue.
 */
#ifndef CAIRN_SCSI_UA_H
#define CAIRN_SCSI_UA_H

#include <pthread.h>
#include <stdint.h>

#include "scsi.h"

#define LU_UA_MAX 8
#define LU_TID_MAX 256          /* "<iqn>,i,0x<12 hex>" plus NUL */
#define LU_STRIPES 64           /* range lock stripes per LUN */
#define LU_STRIPE_SHIFT 20      /* 1 MiB of LBA space per stripe granule */

enum { LU_SAN_IDLE = 0, LU_SAN_RUNNING = 1, LU_SAN_FAILED = 2 };
struct scsi_sanitize;

struct lu_nexus {
	char tid[LU_TID_MAX];   /* initiator port name, see above; "" anonymous */
	uint64_t sess_id;       /* nexus->id of the latest session seen, 0 none */
	uint8_t ua[LU_UA_MAX][2]; /* pending (asc, ascq), oldest first */
	uint8_t nua;
	uint8_t seen;           /* a command arrived on it since power on */
	uint8_t registered;     /* holds a persistent reservation registration */
	uint8_t all_tg_pt;      /* registered with ALL_TG_PT */
	uint64_t key;           /* its reservation key when registered */
};

struct scsi_lu {
	pthread_mutex_t lock;
	struct lu_nexus *nx;    /* array of nnx entries (capacity cap) */
	uint32_t nnx, cap;
	/* SCSI-2 RESERVE(6)/(10): index in nx of the holder, -1 none */
	int r2_holder;
	/* Persistent reservation (SPC-4 5.9) */
	uint32_t pr_gen;        /* PRgeneration: bumped by every registration change */
	uint8_t pr_type;        /* 0 none, else the TYPE code (1, 3, 5, 6, 7, 8) */
	int pr_holder;          /* index in nx of the holder (all-registrants: the reserver) */
	uint8_t aptpl;          /* persist through power loss (lun->ops->state_save) */
	uint8_t swp;            /* control mode page SWP set by MODE SELECT: medium writes
	                         * get DATA PROTECT / WRITE PROTECTED BY SOFTWARE (27/02) */
	/* Status of the last EXTENDED COPY (RECEIVE COPY RESULTS, COPY STATUS) */
	uint8_t xc_valid, xc_list_id, xc_status;
	uint16_t xc_segs;       /* segments processed */
	uint64_t xc_bytes;      /* bytes copied */
	int xc_nexus;           /* index in nx of the nexus that sent it */
	/* SANITIZE (scsi_sanitize.c): san_state is read without the lock by the gate */
	uint8_t san_state;      /* LU_SAN_IDLE / RUNNING / FAILED */
	uint8_t san_stop;       /* ask the running operation to stop (LUN release) */
	int san_rc;             /* result of the operation that ended last */
	uint64_t san_gen;       /* operations started */
	uint64_t san_fin_gen;   /* the last operation that ended */
	uint64_t san_done, san_total; /* progress in bytes (san_done atomic) */
	struct scsi_sanitize *san; /* the running or last ended operation, NULL none */
	pthread_cond_t san_cond; /* an operation ended (with lock) */
	pthread_mutex_t san_start; /* serialises starting an operation */
	/* Range locks: stripe i guards the 1 MiB granules g with g % LU_STRIPES == i. */
	pthread_mutex_t stripe[LU_STRIPES];
};

/* The state of lun, created (and the saved PR state loaded) on first use; NULL only
 * when out of memory. */
struct scsi_lu *scsi_lu_get(struct lun *lun);
/* Index in lu->nx of nexus n (NULL: anonymous), adding it (with a POWER ON UA) if new.
 * Caller holds lu->lock. Returns -ENOMEM on failure. */
int scsi_lu_nexus(struct scsi_lu *lu, const struct scsi_nexus *n);
/* Index of the entry with TransportID text tid, adding one if add (no UA); -ENOENT or
 * -ENOMEM. Caller holds lu->lock. */
int scsi_lu_find_tid(struct scsi_lu *lu, const char *tid, int add);
/* Queue UA asc/ascq for entry i (duplicates are kept once). Caller holds lu->lock. */
void scsi_lu_ua_add(struct scsi_lu *lu, uint32_t i, uint8_t asc, uint8_t ascq);
/* The TransportID text of n into out (LU_TID_MAX bytes). */
void scsi_lu_tid(const struct scsi_nexus *n, char *out);

/* Unit attention gate run by scsi_exec() before a command on lun: 1 when the command
 * was answered with a UA (c is final), 0 when it may run. Handles REQUEST SENSE. */
int scsi_ua_check(struct scsi_cmd *c, struct lun *lun);

/* SANITIZE gate run by scsi_exec() before the unit attention gate: 1 when the command
 * was answered (SANITIZE IN PROGRESS, or SANITIZE FAILED mode), 0 when it may run. */
int scsi_sanitize_gate(struct scsi_cmd *c, struct lun *lun);
/* 1 if SANITIZE CRYPTO ERASE is supported on lun (for REPORT SUPPORTED OPERATION
 * CODES and WACEREQ in VPD B1h), even while it is refused for a shared key. */
int scsi_sanitize_crypto_supported(const struct lun *lun);
/* Stop a running SANITIZE of lu and wait for its thread (scsi_lun_release). */
void scsi_sanitize_stop(struct scsi_lu *lu);

/* Range lock over bytes [off, off + len) of lun: every medium-writing path takes it
 * around its lun op, COMPARE AND WRITE around read-compare-write. Stripes are taken in
 * ascending order, so two holders never deadlock. mask receives the set taken. */
void scsi_range_lock(struct lun *lun, uint64_t off, uint64_t len, uint64_t *mask);
void scsi_range_unlock(struct lun *lun, uint64_t mask);

#endif
