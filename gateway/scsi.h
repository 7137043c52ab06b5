/* scsi.h - the SCSI layer (SPC-4 / SBC-3) between the iSCSI transport and a LUN.
 *
 * The transport fills a struct scsi_cmd, collects all Data-Out first for writes, then
 * calls scsi_exec() on a worker thread. scsi_exec() looks the opcode up in one table
 * (handler, data direction, allowed on a read-only LUN), runs it synchronously against
 * the LUN's ops, and fills status, sense and the data-in bytes. It never blocks on the
 * network and never allocates per command.
 *
 * Residuals: the handler sets xfer_len to the bytes the CDB itself asks to move
 * (blocks * block_size, or the data available up to the allocation length). The
 * transport compares it with the initiator's Expected Data Transfer Length (edtl):
 * xfer_len > edtl is an overflow, xfer_len < edtl an underflow, per RFC 7143 11.4.5.
 * For reads only min(xfer_len, edtl) bytes are placed in buf.
 */
#ifndef CAIRN_SCSI_H
#define CAIRN_SCSI_H

#include <stddef.h>
#include <stdint.h>

#include "lun.h"

#define SCSI_SENSE_MAX 32  /* fixed-format sense data, 18 bytes used */

/* SAM status codes */
#define SAM_STAT_GOOD 0x00
#define SAM_STAT_CHECK_CONDITION 0x02
#define SAM_STAT_CONDITION_MET 0x04
#define SAM_STAT_BUSY 0x08
#define SAM_STAT_RESERVATION_CONFLICT 0x18
#define SAM_STAT_TASK_SET_FULL 0x28

enum scsi_dir {
	SCSI_DIR_NONE = 0,
	SCSI_DIR_IN = 1,  /* target to initiator (READ) */
	SCSI_DIR_OUT = 2, /* initiator to target (WRITE) */
};

/* The LUNs reachable on one I_T nexus (for REPORT LUNS and LUN lookup). */
struct scsi_lun_map {
	struct lun **luns;  /* luns[i] is LUN i; NULL where none is mapped */
	uint32_t count;
};

/* The I_T nexus a command arrives on. Filled by the transport when the session logs in,
 * stable until it closes; the SCSI layer keys reservations and unit attentions by it. */
struct scsi_nexus {
	uint64_t id;                /* unique per I_T nexus for the life of the daemon */
	char initiator[224];        /* iSCSI InitiatorName */
	uint8_t isid[6];            /* iSCSI session id */
	uint16_t tpgt;              /* target portal group tag */
	char target[224];           /* target name (iSCSI TargetName) */
	int read_only;              /* ACL: this nexus may only read (writes: DATA PROTECT) */
};

struct scsi_cmd {
	/* in: set by the transport */
	const struct scsi_nexus *nexus; /* never NULL for commands from a session */
	uint8_t cdb[16];
	uint8_t cdb_len;
	uint64_t lun_id;                /* decoded LUN number */
	const struct scsi_lun_map *map;
	uint8_t *buf;                   /* data-out bytes received, or room for data-in */
	uint32_t buf_cap;               /* bytes usable in buf (>= edtl) */
	uint32_t edtl;                  /* Expected Data Transfer Length from the initiator */
	uint32_t data_out_len;          /* bytes of data-out actually received (<= edtl) */
	enum scsi_dir dir;              /* direction flagged by the initiator (R/W bits) */
	int aborted;                    /* set (atomically) by the transport when the task is
					 * aborted or its connection lost while it executes: a
					 * handler that waits long (SANITIZE) stops waiting */

	/* out: set by scsi_exec */
	uint8_t status;                 /* SAM_STAT_* */
	uint8_t sense[SCSI_SENSE_MAX];
	uint8_t sense_len;
	uint32_t xfer_len;              /* bytes the CDB asks to move (see Residuals) */
	uint32_t data_in_len;           /* bytes of data-in placed in buf (<= edtl) */
};

/* Largest transfer a single command may carry, in bytes (VPD B0 MAXIMUM TRANSFER LENGTH). */
#define SCSI_MAX_XFER (8u << 20)

/* Data direction and data-out length the CDB implies, before any data moves: the
 * transport uses it to size the buffer and to decide how much Data-Out to solicit.
 * Returns the expected data-out bytes (0 for non-writes). */
uint32_t scsi_data_out_len(const uint8_t *cdb, const struct scsi_lun_map *map, uint64_t lun_id);

/* Execute one command. Always completes: errors become CHECK CONDITION with sense. */
void scsi_exec(struct scsi_cmd *c);

/* Events the transport reports, so the SCSI layer can keep SPC semantics:
 *   scsi_nexus_lost     the session of n ended (SCSI-2 reservations it held are released;
 *                       persistent reservations stay)
 *   scsi_lun_reset      LUN RESET of l by n (tasks already drained): reservations per SPC,
 *                       unit attention BUS DEVICE RESET FUNCTION OCCURRED for other nexuses
 *   scsi_target_reset   TARGET WARM/COLD RESET: scsi_lun_reset on every LUN of map
 * and the owner of a struct lun calls scsi_lun_release() before freeing it. */
void scsi_nexus_lost(const struct scsi_nexus *n, const struct scsi_lun_map *map);
void scsi_lun_reset(struct lun *l, const struct scsi_nexus *n);
void scsi_target_reset(const struct scsi_lun_map *map, const struct scsi_nexus *n);
void scsi_lun_release(struct lun *l);
/* Once a LUN is set up (before it is exported): resume the SANITIZE that was in
 * progress on it when the daemon stopped or crashed (lun->ops->sanitize_load), so it
 * answers SANITIZE IN PROGRESS until that ends (scsi_sanitize.c). 0 when none was. */
int scsi_sanitize_resume(struct lun *l);
/* The medium of l changed under every initiator (restore, resize): queue the unit
 * attention asc/ascq (e.g. 0x2A/0x09 CAPACITY DATA HAS CHANGED, 0x3F/0x03 INQUIRY DATA
 * HAS CHANGED) for every nexus. */
void scsi_lun_changed(struct lun *l, uint8_t asc, uint8_t ascq);

/* Build fixed-format sense (response code 0x70, current) into c: status CHECK CONDITION. */
void scsi_set_sense(struct scsi_cmd *c, uint8_t key, uint8_t asc, uint8_t ascq);

/* Sense keys used across the layer */
#define SK_NO_SENSE 0x0
#define SK_RECOVERED_ERROR 0x1
#define SK_NOT_READY 0x2
#define SK_MEDIUM_ERROR 0x3
#define SK_HARDWARE_ERROR 0x4
#define SK_ILLEGAL_REQUEST 0x5
#define SK_UNIT_ATTENTION 0x6
#define SK_DATA_PROTECT 0x7
#define SK_ABORTED_COMMAND 0xb
#define SK_MISCOMPARE 0xe

#endif
