/* fuzz_login_text - libFuzzer target: text keys, login negotiation and CHAP.
 *
 * Input layout: byte 0 configuration (FZ_* of fuzz_env.h), byte 1 mode (low 2 bits):
 *   0  text: the rest is a key=value list given to iscsi_text_negotiate (login, then as a
 *      full-feature Text Request), iscsi_text_finish and iscsi_text_get; the answers must
 *      be well-formed key=value lists and the results within the RFC's ranges.
 *   1  CHAP: the rest is split at the first 0xff byte into the initiator's first and
 *      second CHAP steps, run through chap_step against the configured policy (a
 *      "CHAP_R=0x" + '?'s placeholder in the second gets the right response).
 *   2, 3  login: records [48-byte BHS][dlen: u16 big-endian][dlen bytes], each given to
 *      iscsi_login_handle on a connection without a socket, as the receive path gives
 *      a Login Request; the queued Login Responses are taken off after each.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "fuzz_env.h"
#include "iscsi_conn.h"
#include "iscsi_login.h"
#include "iscsi_text.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(getenv("FUZZ_LOG") ? LOG_DEBUG : (enum log_level)(LOG_ERROR + 1));
	fuzz_env_init(1);
	return 0;
}

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_login_text: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
	abort(); } } while (0)

/* Every item of an answer is key=value with a known-length key and NUL-terminated. */
static void check_answer(const struct iscsi_textbuf *t)
{
	const char *k, *v;
	size_t kl, vl, pos = 0;
	int r;

	if (!t->len)
		return;
	CHECK(t->buf[t->len - 1] == '\0');
	while ((r = iscsi_text_next(t->buf, t->len, &pos, &k, &kl, &v, &vl)) == 1)
		CHECK(kl > 0 && kl <= 63);
	CHECK(r == 0);
}

static void check_params(const struct iscsi_params *p)
{
	CHECK(p->max_send_dsl >= 512 && p->max_send_dsl <= 16777215);
	CHECK(p->max_burst >= 512 && p->max_burst <= 16777215);
	CHECK(p->first_burst >= 512 && p->first_burst <= 16777215);
	CHECK(p->max_outstanding_r2t >= 1 && p->max_outstanding_r2t <= 65535);
	CHECK(p->erl == 0);
	/* never more than the target offers (MaxConnections is a minimum) */
	CHECK(p->max_conns >= 1 && p->max_conns <= iscsi_server_max_conns(fuzz_srv()));
	CHECK(p->header_digest == 0 || p->header_digest == 1);
	CHECK(p->data_digest == 0 || p->data_digest == 1);
}

static void mode_text(uint8_t cfg, const uint8_t *d, size_t n)
{
	struct iscsi_textbuf out = { 0 };
	struct iscsi_neg neg;
	char val[ISCSI_NAME_MAX];
	int ret;

	iscsi_neg_init(&neg);
	ret = iscsi_text_negotiate(&neg, (const char *)d, n, &out);
	CHECK(ret == 0 || ret == -EPROTO);
	if (!ret) {
		CHECK(iscsi_text_finish(&neg, &out) == 0);
		check_params(&neg.p);
		CHECK(neg.p.first_burst <= neg.p.max_burst);
		CHECK(memchr(neg.initiator_name, '\0', sizeof(neg.initiator_name)));
		CHECK(memchr(neg.target_name, '\0', sizeof(neg.target_name)));
		CHECK(memchr(neg.initiator_alias, '\0', sizeof(neg.initiator_alias)));
	} else {
		CHECK(neg.status != 0);
	}
	check_answer(&out);
	iscsi_textbuf_free(&out);

	/* the same keys as a Text Request in full feature phase */
	iscsi_neg_init(&neg);
	neg.full_feature = 1;
	neg.session_type = cfg & 1 ? ISCSI_SESSION_DISCOVERY : ISCSI_SESSION_NORMAL;
	neg.declared_mrdsl = 1;
	ret = iscsi_text_negotiate(&neg, (const char *)d, n, &out);
	CHECK(ret == 0 || ret == -EPROTO);
	check_answer(&out);
	iscsi_textbuf_free(&out);

	static const char *const keys[] = { "SendTargets", "InitiatorName", "CHAP_A", "CHAP_C" };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		ret = iscsi_text_get((const char *)d, n, keys[i], val, sizeof(val));
		if (!ret)
			CHECK(strlen(val) < sizeof(val));
	}
}

static void mode_chap(uint8_t cfg, const uint8_t *d, size_t n)
{
	static const struct chap_cred acc[2] = {
		{ "other", "other-secret-99" }, { FUZZ_CHAP_USER, FUZZ_CHAP_SECRET },
	};
	static const struct chap_cred mutual = { FUZZ_MUTUAL_USER, FUZZ_MUTUAL_SECRET };
	struct chap_policy p = { acc, 2, (cfg & FZ_MUTUAL) ? &mutual : NULL };
	const uint8_t *sep = memchr(d, 0xff, n);
	size_t n1 = sep ? (size_t)(sep - d) : n, n2 = sep ? n - n1 - 1 : 0;
	struct iscsi_textbuf out = { 0 };
	struct chap_exchange x;
	uint8_t *second = malloc(n2 ? n2 : 1), bin[CHAP_BIN_MAX];
	char *str;
	size_t bl;
	int st;

	if (!second)
		abort();
	memset(&x, 0, sizeof(x));
	x.state = CHAP_WAIT_A;
	st = chap_step(&x, &p, (const char *)d, n1, &out);
	check_answer(&out);
	if (!st && x.state == CHAP_WAIT_R) {
		if (n2)
			memcpy(second, sep + 1, n2);
		fuzz_chap_fill(second, n2, out.buf, out.len);
		iscsi_textbuf_free(&out);
		st = chap_step(&x, &p, (const char *)second, n2, &out);
		check_answer(&out);
		if (!st)
			CHECK(x.state == CHAP_DONE && !strcmp(x.user, FUZZ_CHAP_USER));
	}
	iscsi_textbuf_free(&out);
	free(second);
	/* the binary value decoder on the whole input as one string */
	str = malloc(n + 1);
	if (!str)
		abort();
	memcpy(str, d, n);
	str[n] = '\0';
	if (!chap_decode(str, bin, sizeof(bin), &bl))
		CHECK(bl <= sizeof(bin));
	free(str);
}

static void mode_login(const uint8_t *d, size_t n)
{
	struct iscsi_server *srv = fuzz_srv();
	struct fuzz_in in = { d, n };
	struct iscsi_conn *c = calloc(1, sizeof(*c));
	struct sockaddr_in *sin;
	static char resp[ISCSI_TEXT_MAX + 1024];
	size_t resp_len = 0;
	static uint8_t data[65536];

	if (!c)
		abort();
	c->srv = srv;
	c->fd = -1;
	sin = (struct sockaddr_in *)&c->peer_ss;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	snprintf(c->peer, sizeof(c->peer), "127.0.0.1:40000");
	iscsi_neg_init(&c->login.neg);
	while (in.n >= ISCSI_BHS_LEN && c->phase == CONN_LOGIN) {
		size_t got, dlen;
		const uint8_t *p = fz_take(&in, ISCSI_BHS_LEN, &got);
		int ret, closing = 0;

		memcpy(c->rx_hdr, p, ISCSI_BHS_LEN);
		dlen = fz_u16(&in);
		p = fz_take(&in, dlen, &got);
		if (got > ISCSI_LOGIN_MRDSL) /* the receive path's limit on a login's data */
			got = ISCSI_LOGIN_MRDSL;
		memcpy(data, p, got);
		fuzz_chap_fill(data, got, resp, resp_len);
		c->rx_dlen = (uint32_t)got;
		iscsi_bhs_set_dlen(c->rx_hdr, (uint32_t)got);
		ret = iscsi_login_handle(c, data, (uint32_t)got);
		/* take the responses off the send queue, keeping the last one's text */
		while (c->txq_head) {
			struct tx_ctrl *x = (struct tx_ctrl *)c->txq_head;

			c->txq_head = x->it.next;
			CHECK(x->it.kind == TXI_CTRL && iscsi_bhs_opcode(x->bhs) == ISCSI_OP_LOGIN_RSP);
			/* RFC 7143 13.12: nothing longer than the initiator's MaxRecvDataSegmentLength,
			 * 8192 during login */
			CHECK(x->dlen <= ISCSI_LOGIN_MRDSL);
			memcpy(resp, x->data, x->dlen);
			resp_len = x->dlen;
			if (x->bhs[36]) /* a failed login's response carries no keys */
				CHECK(x->dlen == 0);
			closing |= x->close_after;
			free(x);
		}
		c->txq_tail = NULL;
		if (ret < 0 || closing)
			break;
	}
	if (c->sess) {
		CHECK(c->phase == CONN_FULL);
		check_params(&c->sess->p);
		/* a normal session has its target; a discovery one has none */
		CHECK((c->sess->type == ISCSI_SESSION_NORMAL) == (c->sess->target != NULL));
		iscsi_session_destroy(c->sess);
	}
	iscsi_login_cleanup(&c->login, srv);
	free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t cfg, mode;

	if (size < 2)
		return 0;
	cfg = data[0];
	mode = data[1] & 3;
	fuzz_env_reset(cfg);
	if (mode == 0)
		mode_text(cfg, data + 2, size - 2);
	else if (mode == 1)
		mode_chap(cfg, data + 2, size - 2);
	else
		mode_login(data + 2, size - 2);
	fuzz_env_release();
	return 0;
}
