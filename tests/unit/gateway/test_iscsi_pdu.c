/* test_iscsi_pdu - CRC32C digests (RFC 3720 B.4 vectors), BHS accessors, LUN coding. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "iscsi_pdu.h"

static void test_crc32c_vectors(void)
{
	uint8_t b[48];

	memset(b, 0, 32);
	CHECK_EQ(iscsi_crc32c(b, 32), 0x8a9136aa);
	memset(b, 0xff, 32);
	CHECK_EQ(iscsi_crc32c(b, 32), 0x62a8ab43);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	CHECK_EQ(iscsi_crc32c(b, 32), 0x46dd794e);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	CHECK_EQ(iscsi_crc32c(b, 32), 0x113fdb5c);
	/* an iSCSI Read (10) command PDU (RFC 3720 B.4) */
	static const uint8_t rd[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
		0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };
	CHECK_EQ(iscsi_crc32c(rd, 48), 0xd9963a56);
}

static void test_crc32c_incremental(void)
{
	uint8_t b[100];
	uint32_t s;

	for (int i = 0; i < 100; i++)
		b[i] = (uint8_t)(i * 7 + 3);
	s = iscsi_crc32c_update(iscsi_crc32c_init(), b, 37);
	s = iscsi_crc32c_update(s, b + 37, 63);
	CHECK_EQ(iscsi_crc32c_final(s), iscsi_crc32c(b, 100));
	/* data digest covers the zero pad */
	uint8_t p[8] = { 1, 2, 3, 4, 5, 0, 0, 0 };
	CHECK_EQ(iscsi_data_digest(p, 5), iscsi_crc32c(p, 8));
	CHECK_EQ(iscsi_data_digest(p, 4), iscsi_crc32c(p, 4));
}

static void test_digest_wire_order(void)
{
	uint8_t w[4];

	iscsi_put_digest(w, 0x8a9136aa);
	CHECK(w[0] == 0xaa && w[1] == 0x36 && w[2] == 0x91 && w[3] == 0x8a);
	CHECK_EQ(iscsi_get_digest(w), 0x8a9136aa);
}

static void test_bhs_fields(void)
{
	uint8_t h[48] = { 0 };

	h[0] = ISCSI_OP_IMMEDIATE | ISCSI_OP_SCSI_CMD;
	iscsi_bhs_set_dlen(h, 0x123456);
	h[4] = 3;
	iscsi_put32(h + 16, 0xdeadbeef);
	CHECK_EQ(iscsi_bhs_opcode(h), ISCSI_OP_SCSI_CMD);
	CHECK(iscsi_bhs_immediate(h));
	CHECK_EQ(iscsi_bhs_dlen(h), 0x123456);
	CHECK_EQ(iscsi_bhs_ahslen(h), 12);
	CHECK_EQ(iscsi_bhs_itt(h), 0xdeadbeef);
	CHECK_EQ(iscsi_pad4(0), 0);
	CHECK_EQ(iscsi_pad4(1), 3);
	CHECK_EQ(iscsi_pad4(6), 2);
	CHECK_EQ(iscsi_pad4(8), 0);
	iscsi_put16(h + 30, 0xabcd);
	CHECK_EQ(iscsi_get16(h + 30), 0xabcd);
}

static void test_opcodes(void)
{
	CHECK(iscsi_pdu_initiator_op(ISCSI_OP_NOP_OUT));
	CHECK(iscsi_pdu_initiator_op(ISCSI_OP_DATA_OUT));
	CHECK(!iscsi_pdu_initiator_op(ISCSI_OP_NOP_IN));
	CHECK(!iscsi_pdu_initiator_op(0x1c));
	CHECK(!strcmp(iscsi_pdu_opname(ISCSI_OP_R2T), "R2T"));
	CHECK(!strcmp(iscsi_pdu_opname(0x2f), "unknown"));
}

static void test_serial_numbers(void)
{
	CHECK(iscsi_sn_lt(1, 2));
	CHECK(!iscsi_sn_lt(2, 2));
	CHECK(iscsi_sn_lt(0xfffffff0u, 5)); /* wraps */
	CHECK(!iscsi_sn_lt(5, 0xfffffff0u));
}

static void test_lun_coding(void)
{
	uint8_t l[8];

	iscsi_lun_encode(0, l);
	CHECK_EQ(iscsi_lun_decode(l), 0);
	iscsi_lun_encode(5, l);
	CHECK(l[0] == 0 && l[1] == 5);
	CHECK_EQ(iscsi_lun_decode(l), 5);
	iscsi_lun_encode(300, l);
	CHECK_EQ(l[0] >> 6, 1);
	CHECK_EQ(iscsi_lun_decode(l), 300);
	memset(l, 0, 8);
	l[0] = 0x80; /* logical unit addressing: not supported */
	CHECK(iscsi_lun_decode(l) == UINT64_MAX);
}

int main(void)
{
	RUN(test_crc32c_vectors);
	RUN(test_crc32c_incremental);
	RUN(test_digest_wire_order);
	RUN(test_bhs_fields);
	RUN(test_opcodes);
	RUN(test_serial_numbers);
	RUN(test_lun_coding);
	return check_result();
}
