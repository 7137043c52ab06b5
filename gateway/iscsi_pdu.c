/* iscsi_pdu.c - PDU helpers: opcode table, CRC32C digests, LUN encoding.
 *
 * Wire layouts handled by the transport (RFC 7143 section 11; offsets into the 48-byte
 * BHS; every PDU has byte 0 = [.|I|opcode(6)], byte 4 = TotalAHSLength (4-byte words),
 * bytes 5-7 = DataSegmentLength, bytes 16-19 = Initiator Task Tag (ITT)):
 *
 *   NOP-Out 0x00     1:F  8:LUN  16:ITT  20:TTT  24:CmdSN  28:ExpStatSN; data = ping data
 *   SCSI Cmd 0x01    1:F|R|W|ATTR  8:LUN  16:ITT  20:EDTL  24:CmdSN  28:ExpStatSN
 *                    32-47:CDB; data = immediate data
 *   TMF Req 0x02     1:F|function  8:LUN  16:ITT  20:RefTaskTag  24:CmdSN  28:ExpStatSN
 *                    32:RefCmdSN  36:ExpDataSN
 *   Login Req 0x03   1:T|C|CSG(2)|NSG(2)  2:VersionMax  3:VersionMin  8-13:ISID
 *                    14:TSIH  16:ITT  20:CID  24:CmdSN  28:ExpStatSN; data = key=value\0...
 *   Text Req 0x04    1:F|C  8:LUN  16:ITT  20:TTT  24:CmdSN  28:ExpStatSN; data = keys
 *   Data-Out 0x05    1:F  8:LUN  16:ITT  20:TTT  28:ExpStatSN  36:DataSN  40:BufferOffset
 *   Logout Req 0x06  1:F|reason  16:ITT  20:CID  24:CmdSN  28:ExpStatSN
 *   SNACK 0x10       (not supported at ErrorRecoveryLevel 0: rejected)
 *
 *   NOP-In 0x20      1:F  8:LUN  16:ITT  20:TTT  24:StatSN  28:ExpCmdSN  32:MaxCmdSN
 *   SCSI Rsp 0x21    1:F|o|u|O|U  2:Response  3:Status  16:ITT  24:StatSN  28:ExpCmdSN
 *                    32:MaxCmdSN  36:ExpDataSN  40:BidiResidual  44:ResidualCount;
 *                    data = SenseLength(2) + sense bytes
 *   TMF Rsp 0x22     1:F  2:Response  16:ITT  24:StatSN  28:ExpCmdSN  32:MaxCmdSN
 *   Login Rsp 0x23   1:T|C|CSG|NSG  2:VersionMax  3:VersionActive  8-13:ISID  14:TSIH
 *                    16:ITT  24:StatSN  28:ExpCmdSN  32:MaxCmdSN  36:StatusClass
 *                    37:StatusDetail; data = keys
 *   Text Rsp 0x24    1:F|C  16:ITT  20:TTT  24:StatSN  28:ExpCmdSN  32:MaxCmdSN
 *   Data-In 0x25     1:F|A|O|U|S  3:Status(if S)  8:LUN  16:ITT  20:TTT(ffffffff)
 *                    24:StatSN(if S)  28:ExpCmdSN  32:MaxCmdSN  36:DataSN
 *                    40:BufferOffset  44:ResidualCount
 *   Logout Rsp 0x26  1:F  2:Response  16:ITT  24:StatSN  28:ExpCmdSN  32:MaxCmdSN
 *                    40:Time2Wait(2)  42:Time2Retain(2)
 *   R2T 0x31         1:F  8:LUN  16:ITT  20:TTT  24:StatSN  28:ExpCmdSN  32:MaxCmdSN
 *                    36:R2TSN  40:BufferOffset  44:DesiredDataTransferLength
 *   Reject 0x3f      1:F  2:Reason  16:ffffffff  24:StatSN  28:ExpCmdSN  32:MaxCmdSN
 *                    36:DataSN/R2TSN; data = the rejected PDU's BHS
 *
 * There is no magic or version in the BHS beyond the login Version fields (0x00); the
 * integrity check is the optional CRC32C header and data digest (polynomial 0x1EDC6F41,
 * reflected, initial value and final xor 0xffffffff).
 */
#include "iscsi_pdu.h"

#include <isa-l/crc.h>

int iscsi_pdu_initiator_op(uint8_t op)
{
	switch (op) {
	case ISCSI_OP_NOP_OUT:
	case ISCSI_OP_SCSI_CMD:
	case ISCSI_OP_TMF_REQ:
	case ISCSI_OP_LOGIN_REQ:
	case ISCSI_OP_TEXT_REQ:
	case ISCSI_OP_DATA_OUT:
	case ISCSI_OP_LOGOUT_REQ:
	case ISCSI_OP_SNACK:
		return 1;
	default:
		return 0;
	}
}

const char *iscsi_pdu_opname(uint8_t op)
{
	switch (op) {
	case ISCSI_OP_NOP_OUT: return "NOP-Out";
	case ISCSI_OP_SCSI_CMD: return "SCSI-Command";
	case ISCSI_OP_TMF_REQ: return "TMF-Request";
	case ISCSI_OP_LOGIN_REQ: return "Login-Request";
	case ISCSI_OP_TEXT_REQ: return "Text-Request";
	case ISCSI_OP_DATA_OUT: return "Data-Out";
	case ISCSI_OP_LOGOUT_REQ: return "Logout-Request";
	case ISCSI_OP_SNACK: return "SNACK";
	case ISCSI_OP_NOP_IN: return "NOP-In";
	case ISCSI_OP_SCSI_RSP: return "SCSI-Response";
	case ISCSI_OP_TMF_RSP: return "TMF-Response";
	case ISCSI_OP_LOGIN_RSP: return "Login-Response";
	case ISCSI_OP_TEXT_RSP: return "Text-Response";
	case ISCSI_OP_DATA_IN: return "Data-In";
	case ISCSI_OP_LOGOUT_RSP: return "Logout-Response";
	case ISCSI_OP_R2T: return "R2T";
	case ISCSI_OP_ASYNC: return "Async-Message";
	case ISCSI_OP_REJECT: return "Reject";
	default: return "unknown";
	}
}

uint32_t iscsi_crc32c_update(uint32_t state, const void *buf, size_t len)
{
	if (!len)
		return state;
	return crc32_iscsi((unsigned char *)buf, (int)len, state);
}

uint32_t iscsi_crc32c(const void *buf, size_t len)
{
	return iscsi_crc32c_final(iscsi_crc32c_update(iscsi_crc32c_init(), buf, len));
}

uint32_t iscsi_data_digest(const void *data, uint32_t len)
{
	static const uint8_t zero[4];
	uint32_t s = iscsi_crc32c_update(iscsi_crc32c_init(), data, len);

	s = iscsi_crc32c_update(s, zero, iscsi_pad4(len));
	return iscsi_crc32c_final(s);
}

uint64_t iscsi_lun_decode(const uint8_t *lun)
{
	switch (lun[0] >> 6) {
	case 0: /* peripheral device addressing: bus 0 only */
		return lun[0] ? UINT64_MAX : lun[1];
	case 1: /* flat space addressing */
		return (uint64_t)(lun[0] & 0x3f) << 8 | lun[1];
	default:
		return UINT64_MAX;
	}
}

void iscsi_lun_encode(uint64_t n, uint8_t *lun)
{
	for (int i = 0; i < 8; i++)
		lun[i] = 0;
	if (n < 256) {
		lun[1] = (uint8_t)n;
	} else {
		lun[0] = 0x40 | ((n >> 8) & 0x3f);
		lun[1] = (uint8_t)n;
	}
}
