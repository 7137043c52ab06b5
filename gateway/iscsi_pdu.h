/* iscsi_pdu.h - iSCSI PDU layout (RFC 7143 section 11): the Basic Header Segment,
 * opcodes, field accessors and CRC32C digests.
 *
 * A PDU on the wire:
 *   BHS (48 bytes) | AHS (TotalAHSLength * 4 bytes) | HeaderDigest (4, if negotiated)
 *   | data segment (DataSegmentLength bytes) | pad to 4 bytes | DataDigest (4, if negotiated)
 * Multi-byte fields are big-endian. Digests are CRC32C (RFC 7143 13.1, RFC 3720 B.4)
 * over BHS+AHS, or over data+pad, sent as the little-endian bytes of the CRC value.
 * The BHS is handled as a byte array; iscsi_pdu.c documents every opcode's fields.
 */
#ifndef CAIRN_ISCSI_PDU_H
#define CAIRN_ISCSI_PDU_H

#include <stddef.h>
#include <stdint.h>

#define ISCSI_BHS_LEN 48
#define ISCSI_DIGEST_LEN 4
#define ISCSI_AHS_MAX (255 * 4)

/* initiator opcodes */
#define ISCSI_OP_NOP_OUT 0x00
#define ISCSI_OP_SCSI_CMD 0x01
#define ISCSI_OP_TMF_REQ 0x02
#define ISCSI_OP_LOGIN_REQ 0x03
#define ISCSI_OP_TEXT_REQ 0x04
#define ISCSI_OP_DATA_OUT 0x05
#define ISCSI_OP_LOGOUT_REQ 0x06
#define ISCSI_OP_SNACK 0x10
/* target opcodes */
#define ISCSI_OP_NOP_IN 0x20
#define ISCSI_OP_SCSI_RSP 0x21
#define ISCSI_OP_TMF_RSP 0x22
#define ISCSI_OP_LOGIN_RSP 0x23
#define ISCSI_OP_TEXT_RSP 0x24
#define ISCSI_OP_DATA_IN 0x25
#define ISCSI_OP_LOGOUT_RSP 0x26
#define ISCSI_OP_R2T 0x31
#define ISCSI_OP_ASYNC 0x32
#define ISCSI_OP_REJECT 0x3f

#define ISCSI_OP_MASK 0x3f
#define ISCSI_OP_IMMEDIATE 0x40  /* byte 0, I bit (initiator PDUs) */
#define ISCSI_FLAG_FINAL 0x80    /* byte 1, F bit */
#define ISCSI_FLAG_CONT 0x40     /* byte 1, C bit (login/text) */
#define ISCSI_LOGIN_TRANSIT 0x80 /* byte 1, T bit (login) */

/* SCSI Command byte 1 */
#define ISCSI_CMD_READ 0x40
#define ISCSI_CMD_WRITE 0x20
/* SCSI Response byte 1 residual flags */
#define ISCSI_RSP_OVERFLOW 0x04
#define ISCSI_RSP_UNDERFLOW 0x02
/* Data-In byte 1 */
#define ISCSI_DATAIN_ACK 0x40
#define ISCSI_DATAIN_STATUS 0x01

/* Reject reasons (RFC 7143 11.17.1) */
#define ISCSI_REJECT_DATA_DIGEST 0x02
#define ISCSI_REJECT_SNACK 0x03
#define ISCSI_REJECT_PROTOCOL 0x04
#define ISCSI_REJECT_CMD_NOT_SUPPORTED 0x05
#define ISCSI_REJECT_IMM_CMD 0x06
#define ISCSI_REJECT_TASK_IN_PROGRESS 0x07
#define ISCSI_REJECT_INVALID_FIELD 0x09

/* Task management functions and responses (RFC 7143 11.5, 11.6) */
#define ISCSI_TMF_ABORT_TASK 1
#define ISCSI_TMF_ABORT_TASK_SET 2
#define ISCSI_TMF_CLEAR_ACA 3
#define ISCSI_TMF_CLEAR_TASK_SET 4
#define ISCSI_TMF_LUN_RESET 5
#define ISCSI_TMF_TARGET_WARM_RESET 6
#define ISCSI_TMF_TARGET_COLD_RESET 7
#define ISCSI_TMF_TASK_REASSIGN 8
#define ISCSI_TMF_RSP_COMPLETE 0
#define ISCSI_TMF_RSP_NO_TASK 1
#define ISCSI_TMF_RSP_NO_LUN 2
#define ISCSI_TMF_RSP_NOT_SUPPORTED 5
#define ISCSI_TMF_RSP_REJECTED 255

/* Login status (class << 8 | detail), RFC 7143 11.13.5 */
#define ISCSI_LOGIN_OK 0x0000
#define ISCSI_LOGIN_INITIATOR_ERR 0x0200
#define ISCSI_LOGIN_AUTH_FAILED 0x0201
#define ISCSI_LOGIN_FORBIDDEN 0x0202
#define ISCSI_LOGIN_NOT_FOUND 0x0203
#define ISCSI_LOGIN_TARGET_REMOVED 0x0204
#define ISCSI_LOGIN_UNSUPPORTED_VERSION 0x0205
#define ISCSI_LOGIN_TOO_MANY_CONNS 0x0206
#define ISCSI_LOGIN_MISSING_PARAM 0x0207
#define ISCSI_LOGIN_CANT_INCLUDE 0x0208
#define ISCSI_LOGIN_SESSION_TYPE 0x0209
#define ISCSI_LOGIN_NO_SESSION 0x020a
#define ISCSI_LOGIN_INVALID_REQUEST 0x020b
#define ISCSI_LOGIN_TARGET_ERR 0x0300
#define ISCSI_LOGIN_UNAVAILABLE 0x0301
#define ISCSI_LOGIN_NO_RESOURCES 0x0302

#define ISCSI_RSVD_TAG 0xffffffffu

static inline uint32_t iscsi_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint16_t iscsi_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline void iscsi_put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}
static inline void iscsi_put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v; }

static inline uint8_t iscsi_bhs_opcode(const uint8_t *bhs) { return bhs[0] & ISCSI_OP_MASK; }
static inline int iscsi_bhs_immediate(const uint8_t *bhs) { return !!(bhs[0] & ISCSI_OP_IMMEDIATE); }
static inline uint32_t iscsi_bhs_ahslen(const uint8_t *bhs) { return (uint32_t)bhs[4] * 4; }
static inline uint32_t iscsi_bhs_dlen(const uint8_t *bhs)
{
	return (uint32_t)bhs[5] << 16 | (uint32_t)bhs[6] << 8 | bhs[7];
}
static inline void iscsi_bhs_set_dlen(uint8_t *bhs, uint32_t n)
{
	bhs[4] = 0; bhs[5] = n >> 16; bhs[6] = n >> 8; bhs[7] = n;
}
static inline uint32_t iscsi_bhs_itt(const uint8_t *bhs) { return iscsi_get32(bhs + 16); }
static inline uint32_t iscsi_pad4(uint32_t n) { return (4 - (n & 3)) & 3; }

/* Serial number arithmetic (RFC 1982, 32 bits): a < b. */
static inline int iscsi_sn_lt(uint32_t a, uint32_t b) { return a != b && (int32_t)(a - b) < 0; }

/* 1 if op is an opcode an initiator may send (valid in some phase). */
int iscsi_pdu_initiator_op(uint8_t op);
/* Printable opcode name for logs. */
const char *iscsi_pdu_opname(uint8_t op);

/* CRC32C: start with crc = iscsi_crc32c_init(), feed with _update, finish with _final. */
static inline uint32_t iscsi_crc32c_init(void) { return 0xffffffffu; }
uint32_t iscsi_crc32c_update(uint32_t state, const void *buf, size_t len);
static inline uint32_t iscsi_crc32c_final(uint32_t state) { return state ^ 0xffffffffu; }
/* One-shot CRC32C of buf. */
uint32_t iscsi_crc32c(const void *buf, size_t len);
/* Digest of data plus its zero pad to 4 bytes. */
uint32_t iscsi_data_digest(const void *data, uint32_t len);
/* Store/load a digest in wire order (little-endian). */
static inline void iscsi_put_digest(uint8_t *p, uint32_t crc)
{
	p[0] = crc; p[1] = crc >> 8; p[2] = crc >> 16; p[3] = crc >> 24;
}
static inline uint32_t iscsi_get_digest(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Decode an 8-byte LUN field (SAM-5 single-level: peripheral or flat addressing). */
uint64_t iscsi_lun_decode(const uint8_t *lun);
/* Encode LUN number n into 8 bytes (peripheral for n < 256, flat otherwise). */
void iscsi_lun_encode(uint64_t n, uint8_t *lun);

#endif
