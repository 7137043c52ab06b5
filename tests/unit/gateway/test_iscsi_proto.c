/* test_iscsi_proto - the target over loopback with a raw-socket initiator: login
 * outcomes, SCSI read/write with immediate data and R2T, NOP, TMF, malformed PDUs,
 * SendTargets, logout, target removal, EADDRINUSE, clean stop. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "check.h"
#include "gateway.h"
#include "iscsi_pdu.h"
#include "scsi.h"

#define IQN "iqn.2026-11.org.cairn:t0"
#define DISK (1u << 20)

static uint8_t disk[DISK];
static int port;
static uint32_t cmdsn, itt = 1;

static int rd(void *c, uint64_t off, void *b, size_t n) { (void)c; memcpy(b, disk + off, n); return 0; }
static int wr(void *c, uint64_t off, const void *b, size_t n, int f) { (void)c; (void)f; memcpy(disk + off, b, n); return 0; }
static int wz(void *c, uint64_t off, uint64_t n, int f) { (void)c; (void)f; memset(disk + off, 0, n); return 0; }
static int fl(void *c) { (void)c; return 0; }
static const struct lun_ops ops = { .read = rd, .write = wr, .write_zeroes = wz, .flush = fl };
static struct lun lun0 = { .ops = &ops, .size = DISK, .block_size = 512, .opt_xfer = 65536,
			   .name = "t0", .serial = "0001" };

static int connect_gw(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static int send_pdu(int fd, uint8_t *bhs, const void *data, uint32_t dlen)
{
	uint8_t pad[4] = { 0 };

	iscsi_bhs_set_dlen(bhs, dlen);
	if (write(fd, bhs, 48) != 48)
		return -1;
	if (dlen && write(fd, data, dlen) != (ssize_t)dlen)
		return -1;
	if (iscsi_pad4(dlen) && write(fd, pad, iscsi_pad4(dlen)) != (ssize_t)iscsi_pad4(dlen))
		return -1;
	return 0;
}

static int read_full(int fd, void *b, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)b + got, n - got);

		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* Receive one PDU; data (up to cap) into data. Returns data length or -1 (EOF). */
static int recv_pdu(int fd, uint8_t *bhs, uint8_t *data, uint32_t cap)
{
	uint32_t dlen;
	uint8_t skip[4];

	if (read_full(fd, bhs, 48))
		return -1;
	dlen = iscsi_bhs_dlen(bhs);
	if (dlen > cap || (dlen && read_full(fd, data, dlen)))
		return -1;
	if (iscsi_pad4(dlen) && read_full(fd, skip, iscsi_pad4(dlen)))
		return -1;
	return (int)dlen;
}

static size_t keys(char *out, const char *s)
{
	size_t n = strlen(s);

	memcpy(out, s, n + 1);
	for (size_t i = 0; i < n; i++)
		if (out[i] == '|')
			out[i] = '\0';
	return n + 1;
}

/* One-PDU login straight to full feature phase. Returns the status. */
static int login(int fd, const char *kv, uint16_t *tsih, uint8_t *rsp_data, int *rsp_len)
{
	uint8_t h[48] = { 0 }, r[48], data[1024];
	char k[1024];
	size_t n = keys(k, kv);
	int len;

	h[0] = ISCSI_OP_IMMEDIATE | ISCSI_OP_LOGIN_REQ;
	h[1] = ISCSI_LOGIN_TRANSIT | (1 << 2) | 3; /* CSG operational, NSG full feature */
	h[8] = 0x40;
	h[13] = 0x01; /* ISID */
	iscsi_put32(h + 16, itt++);
	iscsi_put32(h + 24, cmdsn = 1);
	if (send_pdu(fd, h, k, (uint32_t)n))
		return -1;
	len = recv_pdu(fd, r, data, sizeof(data));
	if (len < 0 || iscsi_bhs_opcode(r) != ISCSI_OP_LOGIN_RSP)
		return -1;
	if (tsih)
		*tsih = iscsi_get16(r + 14);
	if (rsp_data)
		memcpy(rsp_data, data, (size_t)len);
	if (rsp_len)
		*rsp_len = len;
	return r[36] << 8 | r[37];
}

static int login_normal(int fd)
{
	uint16_t tsih = 0;
	int st = login(fd, "InitiatorName=iqn.test:i|SessionType=Normal|TargetName=" IQN
		       "|ImmediateData=Yes|InitialR2T=Yes|MaxRecvDataSegmentLength=4096", &tsih,
		       NULL, NULL);

	return st == 0 && tsih ? 0 : -1;
}

static void scsi_cmd(uint8_t *h, uint8_t flags, uint32_t edtl, uint8_t op, uint32_t lba,
		     uint16_t blocks)
{
	memset(h, 0, 48);
	h[0] = ISCSI_OP_SCSI_CMD;
	h[1] = flags;
	iscsi_put32(h + 16, itt++);
	iscsi_put32(h + 20, edtl);
	iscsi_put32(h + 24, cmdsn++);
	h[32] = op;
	iscsi_put32(h + 34, lba);
	iscsi_put16(h + 39, blocks);
}

static void test_addr_in_use(void)
{
	struct gateway_opts o = { .listen = NULL, .workers = 2 };
	struct gateway *g2 = NULL;
	char addr[64];

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	o.listen = addr;
	CHECK_EQ(gateway_start(&o, &g2), -EADDRINUSE);
}

static void test_login_unknown_target(void)
{
	int fd = connect_gw();

	CHECK(fd >= 0);
	CHECK_EQ(login(fd, "InitiatorName=iqn.test:i|SessionType=Normal|"
		       "TargetName=iqn.2026-11.org.cairn:nope", NULL, NULL, NULL),
		 ISCSI_LOGIN_NOT_FOUND);
	close(fd);
	fd = connect_gw();
	CHECK_EQ(login(fd, "SessionType=Normal|TargetName=" IQN, NULL, NULL, NULL),
		 ISCSI_LOGIN_MISSING_PARAM);
	close(fd);
}

static void test_login_normal(void)
{
	uint8_t data[1024];
	int fd = connect_gw(), len = 0;

	CHECK_EQ(login(fd, "InitiatorName=iqn.test:i|SessionType=Normal|TargetName=" IQN,
		       NULL, data, &len), 0);
	CHECK(memmem(data, (size_t)len, "TargetPortalGroupTag=1", 22) != NULL);
	CHECK(memmem(data, (size_t)len, "MaxRecvDataSegmentLength=262144", 31) != NULL);
	close(fd);
}

static void test_write_read(void)
{
	uint8_t h[48], r[48], buf[8192], in[8192];
	int fd = connect_gw(), len;
	uint32_t got = 0;

	CHECK_EQ(login_normal(fd), 0);
	/* a new I_T nexus first gets UNIT ATTENTION (POWER ON OR RESET): TEST UNIT READY
	 * takes it */
	scsi_cmd(h, ISCSI_FLAG_FINAL, 0, 0x00, 0, 0);
	CHECK_EQ(send_pdu(fd, h, NULL, 0), 0);
	len = recv_pdu(fd, r, in, sizeof(in));
	CHECK_EQ(iscsi_bhs_opcode(r), ISCSI_OP_SCSI_RSP);
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 13 + 1);
	/* WRITE(10) of 16 blocks: 512 bytes immediate, the rest solicited by R2T */
	scsi_cmd(h, ISCSI_FLAG_FINAL | ISCSI_CMD_WRITE, 8192, 0x2a, 8, 16);
	CHECK_EQ(send_pdu(fd, h, buf, 512), 0);
	uint32_t off = 512;
	while (off < 8192) {
		len = recv_pdu(fd, r, in, sizeof(in));
		CHECK_EQ(iscsi_bhs_opcode(r), ISCSI_OP_R2T);
		if (iscsi_bhs_opcode(r) != ISCSI_OP_R2T)
			break;
		uint32_t roff = iscsi_get32(r + 40), rlen = iscsi_get32(r + 44);
		CHECK_EQ(roff, off);
		for (uint32_t sn = 0, o = roff; o < roff + rlen; sn++) { /* 4 KiB Data-Outs */
			uint8_t d[48] = { 0 };
			uint32_t n = roff + rlen - o < 4096 ? roff + rlen - o : 4096;

			d[0] = ISCSI_OP_DATA_OUT;
			d[1] = o + n == roff + rlen ? ISCSI_FLAG_FINAL : 0;
			memcpy(d + 16, h + 16, 4);
			memcpy(d + 20, r + 20, 4);
			iscsi_put32(d + 36, sn);
			iscsi_put32(d + 40, o);
			CHECK_EQ(send_pdu(fd, d, buf + o, n), 0);
			o += n;
		}
		off = roff + rlen;
	}
	len = recv_pdu(fd, r, in, sizeof(in));
	CHECK_EQ(iscsi_bhs_opcode(r), ISCSI_OP_SCSI_RSP);
	CHECK_EQ(r[3], 0);
	CHECK_MEM(disk + 8 * 512, buf, 8192);

	/* READ(10) back: Data-In PDUs of at most 4096 bytes, status in the last */
	scsi_cmd(h, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, 8192, 0x28, 8, 16);
	CHECK_EQ(send_pdu(fd, h, NULL, 0), 0);
	for (;;) {
		len = recv_pdu(fd, r, in + got, sizeof(in) - got);
		if (len < 0 || iscsi_bhs_opcode(r) != ISCSI_OP_DATA_IN)
			break;
		CHECK(len <= 4096);
		CHECK_EQ(iscsi_get32(r + 40), got);
		got += (uint32_t)len;
		if (r[1] & ISCSI_DATAIN_STATUS)
			break;
	}
	CHECK_EQ(got, 8192);
	CHECK(r[1] & ISCSI_DATAIN_STATUS);
	CHECK_EQ(r[3], 0);
	CHECK_MEM(in, buf, 8192);

	/* underflow: EDTL 8192 for a 4-block read */
	scsi_cmd(h, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, 8192, 0x28, 8, 4);
	CHECK_EQ(send_pdu(fd, h, NULL, 0), 0);
	got = 0;
	do {
		len = recv_pdu(fd, r, in, sizeof(in));
		got += len > 0 ? (uint32_t)len : 0;
	} while (len >= 0 && !(r[1] & ISCSI_DATAIN_STATUS) && iscsi_bhs_opcode(r) == ISCSI_OP_DATA_IN);
	CHECK_EQ(got, 2048);
	CHECK(r[1] & ISCSI_RSP_UNDERFLOW);
	CHECK_EQ(iscsi_get32(r + 44), 6144);

	/* EDTL above SCSI_MAX_XFER: CHECK CONDITION, ILLEGAL REQUEST, INVALID FIELD IN CDB */
	scsi_cmd(h, ISCSI_FLAG_FINAL | ISCSI_CMD_READ, SCSI_MAX_XFER + 512, 0x28, 0, 0);
	CHECK_EQ(send_pdu(fd, h, NULL, 0), 0);
	len = recv_pdu(fd, r, in, sizeof(in));
	CHECK_EQ(iscsi_bhs_opcode(r), ISCSI_OP_SCSI_RSP);
	CHECK_EQ(r[3], SAM_STAT_CHECK_CONDITION);
	CHECK(len >= 2 + 14);
	CHECK_EQ(in[2 + 2] & 0x0f, SK_ILLEGAL_REQUEST);
	CHECK_EQ(in[2 + 12], 0x24);
	close(fd);
}

static void test_nop_tmf_malformed(void)
{
	uint8_t h[48] = { 0 }, r[48], in[8192];
	int fd = connect_gw(), fd2, len;

	CHECK_EQ(login_normal(fd), 0);
	/* NOP-Out ping with data is echoed */
	h[0] = ISCSI_OP_IMMEDIATE | ISCSI_OP_NOP_OUT;
	h[1] = 0x80;
	iscsi_put32(h + 16, 0x777);
	iscsi_put32(h + 20, ISCSI_RSVD_TAG);
	iscsi_put32(h + 24, cmdsn);
	CHECK_EQ(send_pdu(fd, h, "hello", 5), 0);
	len = recv_pdu(fd, r, in, sizeof(in));
	CHECK_EQ(iscsi_bhs_opcode(r), ISCSI_OP_NOP_IN);
	CHECK_EQ(iscsi_bhs_itt(r), 0x777);
	CHECK(len == 5 && !memcmp(in, "hello", 5));

	/* TMF: abort of an unknown task, LUN reset, unsupported function */
	static const struct { uint8_t fn; uint8_t want; } cases[] = {
		{ ISCSI_TMF_ABORT_TASK, ISCSI_TMF_RSP_NO_TASK },
		{ ISCSI_TMF_LUN_RESET, ISCSI_TMF_RSP_COMPLETE },
		{ ISCSI_TMF_TARGET_WARM_RESET, ISCSI_TMF_RSP_COMPLETE },
		{ 14, ISCSI_TMF_RSP_NOT_SUPPORTED },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(h, 0, 48);
		h[0] = ISCSI_OP_IMMEDIATE | ISCSI_OP_TMF_REQ;
		h[1] = 0x80 | cases[i].fn;
		iscsi_put32(h + 16, itt++);
		iscsi_put32(h + 20, 0x12345);
		iscsi_put32(h + 24, cmdsn);
		CHECK_EQ(send_pdu(fd, h, NULL, 0), 0);
		recv_pdu(fd, r, in, sizeof(in));
		CHECK_EQ(iscsi_bhs_opcode(r), ISCSI_OP_TMF_RSP);
		CHECK_EQ(r[2], cases[i].want);
	}

	/* an opcode no initiator may send: Reject, and the connection goes on */
	memset(h, 0, 48);
	h[0] = 0x1c;
	iscsi_put32(h + 16, itt++);
	CHECK_EQ(send_pdu(fd, h, "abcd", 4), 0);
	recv_pdu(fd, r, in, sizeof(in));
	CHECK_EQ(iscsi_bhs_opcode(r), ISCSI_OP_REJECT);
	CHECK_EQ(r[2], ISCSI_REJECT_CMD_NOT_SUPPORTED);
	CHECK_EQ(in[0], 0x1c);
	memset(h, 0, 48);
	h[0] = ISCSI_OP_IMMEDIATE | ISCSI_OP_NOP_OUT;
	h[1] = 0x80;
	iscsi_put32(h + 16, 0x778);
	iscsi_put32(h + 20, ISCSI_RSVD_TAG);
	CHECK_EQ(send_pdu(fd, h, NULL, 0), 0);
	recv_pdu(fd, r, in, sizeof(in));
	CHECK_EQ(iscsi_bhs_opcode(r), ISCSI_OP_NOP_IN);

	/* a data segment beyond our MaxRecvDataSegmentLength: Reject, then close */
	memset(h, 0, 48);
	h[0] = ISCSI_OP_IMMEDIATE | ISCSI_OP_NOP_OUT;
	h[1] = 0x80;
	iscsi_put32(h + 16, 0x779);
	iscsi_bhs_set_dlen(h, 0xffffff);
	CHECK_EQ(write(fd, h, 48), 48);
	len = recv_pdu(fd, r, in, sizeof(in));
	CHECK_EQ(iscsi_bhs_opcode(r), ISCSI_OP_REJECT);
	CHECK_EQ(recv_pdu(fd, r, in, sizeof(in)), -1); /* closed */
	close(fd);

	/* garbage during login: connection dropped, the daemon still serves */
	fd = connect_gw();
	memset(h, 0xee, 48);
	h[5] = h[6] = h[7] = 0;
	CHECK_EQ(write(fd, h, 48), 48);
	CHECK_EQ(recv_pdu(fd, r, in, sizeof(in)), -1);
	close(fd);
	fd2 = connect_gw();
	CHECK_EQ(login_normal(fd2), 0);
	close(fd2);
}

/* One Login Request with the given byte 1 (T|C|CSG|NSG). Returns the status. */
static int login_step(int fd, uint8_t flags, const char *kv)
{
	uint8_t h[48] = { 0 }, r[48], data[1024];
	char k[1024];
	size_t n = keys(k, kv);

	h[0] = ISCSI_OP_IMMEDIATE | ISCSI_OP_LOGIN_REQ;
	h[1] = flags;
	h[8] = 0x40;
	h[13] = 0x02;
	iscsi_put32(h + 16, itt++);
	iscsi_put32(h + 24, cmdsn = 1);
	if (send_pdu(fd, h, k, (uint32_t)n) ||
	    recv_pdu(fd, r, data, sizeof(data)) < 0 || iscsi_bhs_opcode(r) != ISCSI_OP_LOGIN_RSP)
		return -1;
	return r[36] << 8 | r[37];
}

/* The names the first Login Request declared are checked then (target, ACL): a later
 * request of the same login that changes them is refused. A discovery login turned
 * normal once made a normal session without a target, and its first command crashed
 * the daemon (found while writing the fuzz harness; its input is
 * tests/fuzz/corpus/fuzz_pdu/regress-session-type-switch). */
static void test_login_names_fixed(void)
{
	uint8_t r[48], in[64];
	int fd = connect_gw();

	CHECK_EQ(login_step(fd, 0x00, "InitiatorName=iqn.test:s|SessionType=Discovery|"
			    "AuthMethod=None"), 0);
	CHECK_EQ(login_step(fd, ISCSI_LOGIN_TRANSIT | 3, "SessionType=Normal|TargetName=" IQN),
		 ISCSI_LOGIN_INITIATOR_ERR);
	CHECK_EQ(recv_pdu(fd, r, in, sizeof(in)), -1); /* closed */
	close(fd);
	fd = connect_gw();
	CHECK_EQ(login_step(fd, 0x00, "InitiatorName=iqn.test:s|SessionType=Normal|"
			    "TargetName=" IQN "|AuthMethod=None"), 0);
	CHECK_EQ(login_step(fd, ISCSI_LOGIN_TRANSIT | 3, "InitiatorName=iqn.test:other"),
		 ISCSI_LOGIN_INITIATOR_ERR);
	close(fd);
	fd = connect_gw();
	CHECK_EQ(login_step(fd, 0x00, "InitiatorName=iqn.test:s|SessionType=Normal|"
			    "TargetName=" IQN "|AuthMethod=None"), 0);
	CHECK_EQ(login_step(fd, ISCSI_LOGIN_TRANSIT | 3, "TargetName=" IQN), 0);
	close(fd);
}

/* A login step whose answer would not fit one login PDU (8192 bytes, RFC 7143 13.12) is
 * refused: 700 unknown keys would be answered by 700 "key=NotUnderstood" in one PDU
 * (fuzz_login_text's check on answer sizes; its input is
 * tests/fuzz/corpus/fuzz_login_text/regress-login-answer-too-long). */
static void test_login_answer_too_long(void)
{
	static const char head[] = "InitiatorName=iqn.test:big\0SessionType=Normal\0TargetName=" IQN;
	uint8_t h[48] = { 0 }, r[48], in[64];
	static char k[4096];
	int fd = connect_gw();
	size_t n = sizeof(head);

	memcpy(k, head, sizeof(head));
	for (int i = 0; i < 700; i++) {
		memcpy(k + n, "X=1", 4);
		n += 4;
	}
	h[0] = ISCSI_OP_IMMEDIATE | ISCSI_OP_LOGIN_REQ;
	h[1] = ISCSI_LOGIN_TRANSIT | (1 << 2) | 3;
	h[8] = 0x40;
	iscsi_put32(h + 16, itt++);
	CHECK_EQ(send_pdu(fd, h, k, (uint32_t)n), 0);
	CHECK_EQ(recv_pdu(fd, r, in, sizeof(in)), 0);
	CHECK_EQ(iscsi_bhs_opcode(r), ISCSI_OP_LOGIN_RSP);
	CHECK_EQ(r[36] << 8 | r[37], ISCSI_LOGIN_INITIATOR_ERR);
	close(fd);
}

static void test_discovery_and_logout(void)
{
	uint8_t h[48] = { 0 }, r[48], in[4096];
	int fd = connect_gw(), len;

	CHECK_EQ(login(fd, "InitiatorName=iqn.test:d|SessionType=Discovery", NULL, NULL, NULL), 0);
	h[0] = ISCSI_OP_IMMEDIATE | ISCSI_OP_TEXT_REQ;
	h[1] = ISCSI_FLAG_FINAL;
	iscsi_put32(h + 16, itt++);
	iscsi_put32(h + 20, ISCSI_RSVD_TAG);
	iscsi_put32(h + 24, cmdsn);
	CHECK_EQ(send_pdu(fd, h, "SendTargets=All", 16), 0);
	len = recv_pdu(fd, r, in, sizeof(in));
	CHECK_EQ(iscsi_bhs_opcode(r), ISCSI_OP_TEXT_RSP);
	CHECK(r[1] & ISCSI_FLAG_FINAL);
	CHECK(len > 0 && memmem(in, (size_t)len, "TargetName=" IQN, strlen("TargetName=" IQN)));
	CHECK(len > 0 && memmem(in, (size_t)len, "TargetAddress=127.0.0.1:", 24));

	memset(h, 0, 48);
	h[0] = ISCSI_OP_IMMEDIATE | ISCSI_OP_LOGOUT_REQ;
	h[1] = 0x80;
	iscsi_put32(h + 16, itt++);
	iscsi_put32(h + 24, cmdsn);
	CHECK_EQ(send_pdu(fd, h, NULL, 0), 0);
	recv_pdu(fd, r, in, sizeof(in));
	CHECK_EQ(iscsi_bhs_opcode(r), ISCSI_OP_LOGOUT_RSP);
	CHECK_EQ(r[2], 0);
	CHECK_EQ(recv_pdu(fd, r, in, sizeof(in)), -1);
	close(fd);
}

static void test_remove_target(struct gateway *g)
{
	uint8_t r[48], in[64];
	int fd = connect_gw();
	struct lun *l = &lun0;

	CHECK_EQ(login_normal(fd), 0);
	CHECK_EQ(gateway_add_target(g, IQN, &l, 1), -EEXIST);
	CHECK_EQ(gateway_remove_target(g, IQN), 0);
	CHECK_EQ(recv_pdu(fd, r, in, sizeof(in)), -1); /* session dropped */
	close(fd);
	CHECK_EQ(gateway_remove_target(g, IQN), -ENOENT);
	fd = connect_gw();
	CHECK_EQ(login(fd, "InitiatorName=iqn.test:i|SessionType=Normal|TargetName=" IQN,
		       NULL, NULL, NULL), ISCSI_LOGIN_NOT_FOUND);
	close(fd);
}

#define RUN_G(fn, arg) do { int _b = check_failures; fn(arg); \
	fprintf(stderr, "%s %s\n", check_failures == _b ? "ok  " : "FAIL", #fn); } while (0)

int main(void)
{
	struct gateway_opts o = { .listen = "127.0.0.1:0", .workers = 2 };
	struct gateway *g = NULL;
	struct lun *l = &lun0;

	if (gateway_start(&o, &g)) {
		fprintf(stderr, "gateway_start failed\n");
		return 1;
	}
	port = gateway_port(g);
	CHECK(port > 0);
	CHECK_EQ(gateway_add_target(g, IQN, &l, 1), 0);
	RUN(test_addr_in_use);
	RUN(test_login_unknown_target);
	RUN(test_login_normal);
	RUN(test_write_read);
	RUN(test_nop_tmf_malformed);
	RUN(test_discovery_and_logout);
	RUN(test_login_names_fixed);
	RUN(test_login_answer_too_long);
	RUN_G(test_remove_target, g);
	gateway_stop(g);
	return check_result();
}
