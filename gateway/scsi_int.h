/* scsi_int.h - declarations shared by scsi.c (dispatch, sense), scsi_spc.c (SPC-4
 * primary commands) and scsi_sbc.c (SBC-3 block commands). Not a public contract.
 *
 * Handler contract: a handler runs one command against c and lun (lun is NULL only
 * for the commands the table marks unmapped_ok). It sets c->xfer_len to the bytes the
 * CDB asks to move and c->data_in_len to the data-in bytes placed in c->buf. It
 * returns 0 when c->status and sense are final (GOOD or a CHECK CONDITION it built),
 * or a negative errno from a lun op, which scsi_exec() maps to sense: -ERANGE to LBA
 * OUT OF RANGE, -EIO/-EBADMSG to MEDIUM ERROR (read or write flavour from the row),
 * -ENOSPC to SPACE ALLOCATION FAILED WRITE PROTECT, anything else to HARDWARE ERROR.
 */
#ifndef CAIRN_SCSI_INT_H
#define CAIRN_SCSI_INT_H

#include <stdint.h>

#include "scsi.h"

typedef int (*scsi_handler_fn)(struct scsi_cmd *c, struct lun *lun);

/* Reservation access class of a command (SPC-4 5.9.1 table); filled in now, enforced
 * once persistent reservations exist. */
enum scsi_resv_class {
	SCSI_RESV_NONE = 0,     /* not yet classified */
	SCSI_RESV_ALLOWED,      /* allowed under any reservation */
	SCSI_RESV_READ,         /* medium read: conflicts with exclusive access */
	SCSI_RESV_WRITE,        /* medium write: conflicts with write exclusive */
	SCSI_RESV_CONFLICT,     /* always conflicts when another nexus holds it */
};

/* One row of the opcode table. */
struct scsi_op {
	scsi_handler_fn fn;     /* NULL: opcode not supported */
	uint8_t dir;            /* enum scsi_dir the command implies */
	uint8_t ro_ok;          /* 1: allowed on a read-only LUN (does not modify the medium) */
	uint8_t unmapped_ok;    /* 1: runs with lun == NULL (INQUIRY, REPORT LUNS, REQUEST SENSE) */
	uint8_t resv;           /* enum scsi_resv_class */
	uint8_t cdb_len;        /* length of the CDB of this opcode */
};

/* The table: scsi.c. */
extern const struct scsi_op scsi_ops[256];

/* Sense helpers (scsi.c). */
/* INVALID FIELD IN CDB with the sense-key-specific field pointer at byte/bit. */
void scsi_invalid_field(struct scsi_cmd *c, unsigned byte, int bit);
/* INVALID FIELD IN PARAMETER LIST with the field pointer into the parameter data. */
void scsi_invalid_param(struct scsi_cmd *c, unsigned byte, int bit);
/* Set the INFORMATION field (VALID=1) of the fixed sense already built in c. */
void scsi_sense_info(struct scsi_cmd *c, uint32_t info);
/* Status GOOD, no sense. */
void scsi_good(struct scsi_cmd *c);
/* Copy len bytes of response data into c->buf, truncated to alloc (the allocation
 * length) and to edtl/buf_cap; sets xfer_len = min(len, alloc) and data_in_len. */
void scsi_put_data_in(struct scsi_cmd *c, const void *data, uint32_t len, uint32_t alloc);

/* Big-endian field access. */
static inline uint16_t get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get_be24(const uint8_t *p) { return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]; }
static inline uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t get_be64(const uint8_t *p) { return (uint64_t)get_be32(p) << 32 | get_be32(p + 4); }
static inline void put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void put_be64(uint8_t *p, uint64_t v) { put_be32(p, (uint32_t)(v >> 32)); put_be32(p + 4, (uint32_t)v); }

/* Additional sense codes (ASC << 8 | ASCQ) used by more than one file. */
#define ASC_INVALID_OPCODE 0x2000
#define ASC_LBA_OUT_OF_RANGE 0x2100
#define ASC_INVALID_FIELD_CDB 0x2400
#define ASC_LUN_NOT_SUPPORTED 0x2500
#define ASC_INVALID_FIELD_PARAM 0x2600
#define ASC_PARAM_LIST_LENGTH 0x1a00
#define ASC_WRITE_PROTECTED 0x2700
#define ASC_SAVING_PARAMS_UNSUP 0x3900
#define ASC_MISCOMPARE_VERIFY 0x1d00
#define ASC_INVALID_FIELD_IU 0x0e03
#define scsi_sense_asc(c, key, code) scsi_set_sense((c), (key), (uint8_t)((code) >> 8), (uint8_t)(code))

/* 1 when MODE SELECT set the control page's SWP on lun (scsi_ua.c). */
int scsi_lun_swp(struct lun *lun);

/* SPC-4 handlers (scsi_spc.c). */
int scsi_spc_test_unit_ready(struct scsi_cmd *c, struct lun *lun);
int scsi_spc_inquiry(struct scsi_cmd *c, struct lun *lun);
int scsi_spc_report_luns(struct scsi_cmd *c, struct lun *lun);
int scsi_spc_request_sense(struct scsi_cmd *c, struct lun *lun);
int scsi_spc_mode_sense(struct scsi_cmd *c, struct lun *lun);
int scsi_spc_mode_select(struct scsi_cmd *c, struct lun *lun);
int scsi_spc_report_opcodes(struct scsi_cmd *c, struct lun *lun);  /* MAINTENANCE IN 0xA3 */
int scsi_spc_start_stop(struct scsi_cmd *c, struct lun *lun);
int scsi_spc_prevent_allow(struct scsi_cmd *c, struct lun *lun);

/* SBC-3 handlers (scsi_sbc.c). */
int scsi_sbc_read_capacity10(struct scsi_cmd *c, struct lun *lun);
int scsi_sbc_service_action_in16(struct scsi_cmd *c, struct lun *lun);  /* 0x9E */
int scsi_sbc_read(struct scsi_cmd *c, struct lun *lun);                 /* READ 6/10/12/16 */
int scsi_sbc_write(struct scsi_cmd *c, struct lun *lun);                /* WRITE, WRITE AND VERIFY */
int scsi_sbc_sync_cache(struct scsi_cmd *c, struct lun *lun);
int scsi_sbc_verify(struct scsi_cmd *c, struct lun *lun);
int scsi_sbc_write_same(struct scsi_cmd *c, struct lun *lun);
int scsi_sbc_unmap(struct scsi_cmd *c, struct lun *lun);
int scsi_sbc_prefetch(struct scsi_cmd *c, struct lun *lun);
int scsi_sbc_compare_and_write(struct scsi_cmd *c, struct lun *lun);   /* 0x89 */
int scsi_sbc_orwrite(struct scsi_cmd *c, struct lun *lun);              /* 0x8B */
int scsi_sbc_write_atomic16(struct scsi_cmd *c, struct lun *lun);       /* 0x9C */
int scsi_sbc_sanitize(struct scsi_cmd *c, struct lun *lun);             /* 0x48: scsi_sanitize.c */
int scsi_sbc_read_defect(struct scsi_cmd *c, struct lun *lun);          /* 0x37, 0xB7 */
/* Medium writes under the LBA range lock: every writing handler uses these. */
int scsi_locked_write(struct lun *lun, uint64_t off, const void *buf, size_t len, int fua);
int scsi_locked_zero(struct lun *lun, uint64_t off, uint64_t len, int fua);
/* Largest WRITE ATOMIC (16) in bytes (VPD B0): SCSI_MAX_ATOMIC_BYTES. */
uint32_t scsi_max_atomic_bytes(const struct lun *lun);

/* EXTENDED COPY (LID1) and RECEIVE COPY RESULTS (scsi_xcopy.c). */
int scsi_xcopy_extended_copy(struct scsi_cmd *c, struct lun *lun);     /* 0x83 */
int scsi_xcopy_receive_results(struct scsi_cmd *c, struct lun *lun);   /* 0x84 */

/* SBC limits advertised in VPD B0 and enforced by the handlers. */
#define SCSI_MAX_UNMAP_DESC 256u                /* block descriptors per UNMAP */
#define SCSI_MAX_UNMAP_BLOCKS (1u << 20)        /* blocks per UNMAP command */
/* Bytes one WRITE SAME may cover (MAXIMUM WRITE SAME LENGTH = this / block size): the
 * same bound as a data transfer, so a range that can be written can be zeroed alike. */
#define SCSI_MAX_WRITE_SAME_BYTES SCSI_MAX_XFER
/* Bytes one COMPARE AND WRITE may compare (MAXIMUM COMPARE AND WRITE LENGTH). */
#define SCSI_MAX_CAW_BYTES (64u << 10)
/* Bytes one WRITE ATOMIC (16) may write: one lun write under the range lock. */
#define SCSI_MAX_ATOMIC_BYTES (1u << 20)

#endif
