/* iscsi_conn.c - connection I/O and the full feature phase (RFC 7143 sections 4, 11):
 * receive, the full feature phase handlers and the connection's lifecycle. With it:
 * iscsi_task.c (task slots), iscsi_tx.c (send), iscsi_tmf.c (task management) and
 * iscsi_cmdsn.c (the session-wide CmdSN order), sharing iscsi_conn_int.h.
 *
 * Receive: a PDU is read in four steps (BHS, AHS + header digest, data segment, pad +
 * data digest) through a 64 KiB staging buffer; large data segments are read straight
 * into the task buffer at the PDU's BufferOffset (one copy from the socket).
 *
 * Connection loss at ErrorRecoveryLevel 0 (RFC 7143 6.3.6, 7.1.4.4): session failure is
 * the failure of the session's LAST connection. A connection that drops (or is logged
 * out, or reinstated) while others remain ends alone: its tasks are ended (ERL 0 has no
 * task reassignment: those in a worker finish and are discarded, the rest are freed, no
 * response is sent), its commands held or half-received count as received, and the
 * session goes on over its other connections. A command lost in the dropped TCP stream
 * before the target read it leaves a CmdSN gap the initiator closes as RFC 7143 11.5.1
 * provides: an ABORT TASK naming it by RefCmdSN makes the target count it as received
 * (or the initiator reinstates the session). When the last connection goes, the
 * session ends (all its state is dropped: ERL 0 keeps nothing for Time2Retain).
 */
#include "iscsi_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iscsi_conn_int.h"
#include "log.h"
#include "util.h"

#define READ_BUDGET (8u << 20)  /* bytes read from one socket per event */
#define DIRECT_READ_MIN 8192    /* data at least this long skips the staging buffer */

/* A closed connection with no task left: freed by iscsi_conn_reap(). */
void iscsi_conn_zombie(struct iscsi_conn *c)
{
	c->next = c->srv->zombies;
	c->srv->zombies = c;
}

/* ---- helpers ---- */

void iscsi_conn_ep_update(struct iscsi_conn *c)
{
	struct epoll_event ev = { .data.ptr = c };

	if (c->dead)
		return;
	ev.events = (c->halt_rx ? 0 : EPOLLIN) | (c->want_out ? EPOLLOUT : 0);
	epoll_ctl(c->srv->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void halt(struct iscsi_conn *c)
{
	c->halt_rx = 1;
	iscsi_conn_ep_update(c);
}

/* Queue a Reject of the PDU whose header is h. */
static int reject_hdr(struct iscsi_conn *c, const uint8_t *h, uint8_t reason)
{
	struct tx_ctrl *x = iscsi_conn_ctrl_new(ISCSI_BHS_LEN);

	if (!x)
		return -ENOMEM;
	log_warn(SUB, "%s: reject %s (reason 0x%02x)", c->peer,
		 iscsi_pdu_opname(iscsi_bhs_opcode(h)), reason);
	x->bhs[0] = ISCSI_OP_REJECT;
	x->bhs[1] = 0x80;
	x->bhs[2] = reason;
	iscsi_put32(x->bhs + 16, ISCSI_RSVD_TAG);
	x->adv_statsn = 1;
	memcpy(x->data, h, ISCSI_BHS_LEN);
	iscsi_conn_queue(c, &x->it);
	return 0;
}

int iscsi_conn_reject(struct iscsi_conn *c, uint8_t reason)
{
	return reject_hdr(c, c->rx_hdr, reason);
}

/* Reject the PDU whose header is h and close once the Reject is written. */
static int reject_hdr_and_close(struct iscsi_conn *c, const uint8_t *h, uint8_t reason)
{
	int ret = reject_hdr(c, h, reason);

	if (ret)
		return ret;
	((struct tx_ctrl *)c->txq_tail)->close_after = 1;
	halt(c);
	return 0;
}

/* Reject the current PDU and close once the Reject is written. */
static int reject_and_close(struct iscsi_conn *c, uint8_t reason)
{
	return reject_hdr_and_close(c, c->rx_hdr, reason);
}

/* ---- full feature phase handlers ---- */

static int busy_status(struct iscsi_conn *c, uint8_t status)
{
	struct tx_ctrl *x = iscsi_conn_ctrl_new(0);

	if (!x)
		return -ENOMEM;
	x->bhs[0] = ISCSI_OP_SCSI_RSP;
	x->bhs[1] = 0x80;
	x->bhs[3] = status;
	iscsi_put32(x->bhs + 16, iscsi_bhs_itt(c->rx_hdr));
	x->adv_statsn = 1;
	iscsi_conn_queue(c, &x->it);
	return 0;
}

static void session_advance(struct iscsi_session *s);
static int ctrl_pdu(struct iscsi_conn *c, const uint8_t *h, const uint8_t *data, uint32_t dlen);

static int cmd_header(struct iscsi_conn *c)
{
	const uint8_t *h = c->rx_hdr;
	uint32_t dlen = iscsi_bhs_dlen(h), sn = iscsi_get32(h + 24);
	int imm = iscsi_bhs_immediate(h);
	struct iscsi_session *s = c->sess;
	struct iscsi_task *t;

	if (s->type != ISCSI_SESSION_NORMAL)
		return reject_and_close(c, ISCSI_REJECT_PROTOCOL);
	if (!imm && !iscsi_cmdsn_acceptable(s, sn)) {
		log_debug(SUB, "%s: CmdSN %u outside window (expected %u..%u) or repeated: dropped",
			  c->peer, sn, s->exp_cmdsn, s->max_cmdsn);
		c->rx_drop = 1;
		return 0;
	}
	t = iscsi_task_alloc(c);
	if (!t) {
		c->rx_drop = 1;
		if (!imm) { /* answered: its CmdSN counts as received */
			iscsi_cmdsn_consume(s, sn);
			session_advance(s);
		}
		return busy_status(c, SAM_STAT_TASK_SET_FULL);
	}
	t->itt = iscsi_bhs_itt(h);
	t->edtl = iscsi_get32(h + 20);
	t->cmdsn = sn;
	t->held.cmdsn = sn;
	t->immediate = imm;
	memcpy(t->lun, h + 8, 8);
	t->is_read = !!(h[1] & ISCSI_CMD_READ);
	t->is_write = !!(h[1] & ISCSI_CMD_WRITE);
	t->unsol_open = t->is_write && !(h[1] & ISCSI_FLAG_FINAL);
	memcpy(t->cmd.cdb, h + 32, 16);
	t->cmd.cdb_len = 16;
	t->cmd.lun_id = iscsi_lun_decode(h + 8);
	t->cmd.map = &s->target->map;
	t->cmd.nexus = &s->nexus;
	t->cmd.edtl = t->edtl;
	t->cmd.dir = t->is_write ? SCSI_DIR_OUT : t->is_read ? SCSI_DIR_IN : SCSI_DIR_NONE;
	t->cmd.aborted = 0;
	c->rx_task = t;

	if ((t->is_read && t->is_write) || iscsi_bhs_ahslen(h) || t->edtl > SCSI_MAX_XFER)
		iscsi_task_precompute(t, SK_ILLEGAL_REQUEST, 0x24, 0x00); /* INVALID FIELD IN CDB */
	else if (iscsi_task_get_buf(c, t, t->edtl ? t->edtl : 1)) {
		iscsi_task_precompute(t, 0, 0, 0);
		t->cmd.status = SAM_STAT_TASK_SET_FULL;
	}
	if (dlen && !t->precomputed && t->is_write && dlen <= t->edtl)
		c->rx_data = t->buf;
	return 0;
}

/* The command PDU (and its immediate data) is in: take it in CmdSN order. */
static int cmd_done(struct iscsi_conn *c)
{
	struct iscsi_task *t = c->rx_task;
	struct iscsi_session *s = c->sess;

	if (c->rx_data)
		t->recv_bytes = t->next_off = c->rx_dlen;
	t->cmd_in = 1;
	if (!t->immediate) {
		switch (iscsi_cmdsn_classify(s, t->cmdsn)) {
		case SN_HOLD:
			t->waiting = 1;
			iscsi_cmdsn_held_insert(s, &t->held);
			return 0;
		case SN_DROP: /* the order moved past it while its data came in */
			log_debug(SUB, "%s: CmdSN %u is no longer expected: dropped", c->peer,
				  t->cmdsn);
			iscsi_task_free(t);
			return 0;
		default:
			break;
		}
	}
	iscsi_task_progress(t);
	return 0;
}

static int dataout_header(struct iscsi_conn *c)
{
	const uint8_t *h = c->rx_hdr;
	uint32_t itt = iscsi_bhs_itt(h), ttt = iscsi_get32(h + 20);
	uint32_t off = iscsi_get32(h + 40), dlen = iscsi_bhs_dlen(h);
	struct iscsi_task *t = NULL;

	if (c->sess->type != ISCSI_SESSION_NORMAL)
		return reject_and_close(c, ISCSI_REJECT_PROTOCOL);
	/* connection allegiance: only the tasks of this connection take its Data-Out */
	if (ttt != ISCSI_RSVD_TAG) {
		uint32_t idx = ttt & 0xffff;

		if (idx < ISCSI_NTASKS && c->tasks[idx].state == TASK_RECV &&
		    c->tasks[idx].gen == ttt >> 16 && c->tasks[idx].itt == itt)
			t = &c->tasks[idx];
	} else {
		t = iscsi_task_find_itt(c, itt);
		if (t && (t->state != TASK_RECV || !t->unsol_open))
			t = NULL;
	}
	if (!t) { /* aborted or unknown task: the data is discarded */
		log_debug(SUB, "%s: Data-Out for unknown task itt 0x%x ttt 0x%x", c->peer, itt, ttt);
		c->rx_drop = 1;
		return 0;
	}
	c->rx_task = t;
	if (t->precomputed)
		return 0;
	if (iscsi_get32(h + 36) != t->exp_datasn || off != t->next_off) {
		/* the command fails with ABORTED COMMAND, DATA PHASE ERROR / DATA-OFFSET ERROR;
		 * the rest of its data is discarded and the session goes on */
		log_warn(SUB, "%s: Data-Out out of order (DataSN %u, offset %u; expected %u, %u)",
			 c->peer, iscsi_get32(h + 36), off, t->exp_datasn, t->next_off);
		iscsi_task_precompute(t, SK_ABORTED_COMMAND, 0x4b, off != t->next_off ? 0x05 : 0x00);
		return 0;
	}
	if ((uint64_t)off + dlen > t->edtl) {
		log_warn(SUB, "%s: Data-Out beyond EDTL (offset %u + %u > %u)", c->peer, off, dlen,
			 t->edtl);
		return reject_and_close(c, ISCSI_REJECT_PROTOCOL);
	}
	c->rx_data = (uint8_t *)t->buf + off;
	return 0;
}

static int dataout_done(struct iscsi_conn *c)
{
	struct iscsi_task *t = c->rx_task;
	const uint8_t *h = c->rx_hdr;

	if (c->rx_data) {
		t->recv_bytes += c->rx_dlen;
		t->next_off += c->rx_dlen;
	}
	t->exp_datasn++;
	if (!(h[1] & ISCSI_FLAG_FINAL))
		return 0;
	t->exp_datasn = 0; /* DataSN restarts with each sequence */
	if (iscsi_get32(h + 20) == ISCSI_RSVD_TAG)
		t->unsol_open = 0;
	else if (t->r2t_open)
		t->r2t_open--;
	iscsi_task_progress(t);
	return 0;
}

static int nop_out(struct iscsi_conn *c, const uint8_t *h, const uint8_t *data, uint32_t dlen)
{
	struct tx_ctrl *x;

	dlen = MIN_U32(dlen, c->max_send_dsl);
	x = iscsi_conn_ctrl_new(dlen);
	if (!x)
		return -ENOMEM;
	x->bhs[0] = ISCSI_OP_NOP_IN;
	x->bhs[1] = 0x80;
	memcpy(x->bhs + 8, h + 8, 8);
	iscsi_put32(x->bhs + 16, iscsi_bhs_itt(h));
	iscsi_put32(x->bhs + 20, ISCSI_RSVD_TAG);
	x->adv_statsn = 1;
	if (dlen)
		memcpy(x->data, data, dlen);
	iscsi_conn_queue(c, &x->it);
	return 0;
}

/* Queue the next piece of a text response (C bit while more remain). */
static int text_send(struct iscsi_conn *c, uint32_t itt)
{
	size_t left = c->text_out.len - c->text_off;
	uint32_t n = (uint32_t)MIN_U32(left, c->max_send_dsl);
	struct tx_ctrl *x = iscsi_conn_ctrl_new(n);

	if (!x)
		return -ENOMEM;
	x->bhs[0] = ISCSI_OP_TEXT_RSP;
	iscsi_put32(x->bhs + 16, itt);
	if (n < left) {
		x->bhs[1] = ISCSI_FLAG_CONT;
		c->text_ttt = (c->text_ttt + 1) & 0x7fffffff;
		iscsi_put32(x->bhs + 20, c->text_ttt);
	} else {
		x->bhs[1] = ISCSI_FLAG_FINAL;
		iscsi_put32(x->bhs + 20, ISCSI_RSVD_TAG);
	}
	x->adv_statsn = 1;
	if (n)
		memcpy(x->data, c->text_out.buf + c->text_off, n);
	c->text_off += n;
	if (c->text_off >= c->text_out.len) {
		iscsi_textbuf_free(&c->text_out);
		c->text_off = 0;
	}
	iscsi_conn_queue(c, &x->it);
	return 0;
}

static int text_req(struct iscsi_conn *c, const uint8_t *h, const uint8_t *data, uint32_t dlen)
{
	uint32_t itt = iscsi_bhs_itt(h), ttt = iscsi_get32(h + 20);
	struct iscsi_session *s = c->sess;
	char val[ISCSI_NAME_MAX];
	struct iscsi_neg neg;
	int ret;

	if (ttt != ISCSI_RSVD_TAG && c->text_out.len && ttt == c->text_ttt)
		return text_send(c, itt);
	iscsi_textbuf_free(&c->text_out);
	c->text_off = 0;
	if (c->text_in.len + dlen > ISCSI_TEXT_MAX)
		return reject_hdr_and_close(c, h, ISCSI_REJECT_PROTOCOL);
	ret = iscsi_textbuf_append(&c->text_in, data, dlen);
	if (ret)
		return ret;
	if (h[1] & ISCSI_FLAG_CONT) /* more keys follow: answer empty */
		return text_send(c, itt);

	iscsi_neg_init(&neg);
	neg.full_feature = 1;
	neg.session_type = s->type;
	neg.p = s->p;
	neg.p.max_send_dsl = c->max_send_dsl;
	neg.declared_mrdsl = 1;
	ret = iscsi_text_negotiate(&neg, c->text_in.buf, c->text_in.len, &c->text_out);
	if (ret == -ENOMEM)
		return ret;
	c->max_send_dsl = neg.p.max_send_dsl; /* a per-connection key */
	ret = iscsi_text_get(c->text_in.buf, c->text_in.len, "SendTargets", val, sizeof(val));
	if (!ret) {
		const char *only = NULL;

		if (s->type == ISCSI_SESSION_NORMAL)
			only = s->target->iqn;
		else if (strcmp(val, "All"))
			only = val;
		ret = iscsi_server_send_targets(c->srv, only, c->local, s->initiator_name,
						(const struct sockaddr *)&c->peer_ss, &c->text_out);
		if (ret)
			return ret;
	}
	iscsi_textbuf_free(&c->text_in);
	return text_send(c, itt);
}

/* c reads nothing more: the commands it was still receiving are dropped. */
static void conn_stop_rx(struct iscsi_conn *c)
{
	c->phase = CONN_LOGOUT;
	for (unsigned i = 0; i < ISCSI_NTASKS; i++)
		if (c->tasks[i].state == TASK_RECV)
			iscsi_task_free(&c->tasks[i]);
	iscsi_cmdsn_held_drop_conn(c->sess, c);
	halt(c);
}

/* Logout (RFC 7143 11.14): reason 0 closes the session (every connection, after the
 * responses of the commands in a worker), 1 closes the connection named by CID (this
 * one after those responses; another one at once, its tasks ended as at ERL 0), 2
 * (remove for recovery) is answered "connection recovery is not supported" (ERL 0). */
static int logout_req(struct iscsi_conn *c, const uint8_t *h)
{
	uint8_t reason = h[1] & 0x7f;
	uint16_t cid = iscsi_get16(h + 20);
	struct iscsi_session *s = c->sess;
	struct iscsi_conn *o;
	struct tx_ctrl *x;

	x = iscsi_conn_ctrl_new(0);
	if (!x)
		return -ENOMEM;
	x->bhs[0] = ISCSI_OP_LOGOUT_RSP;
	x->bhs[1] = 0x80;
	iscsi_put32(x->bhs + 16, iscsi_bhs_itt(h));
	x->adv_statsn = 1;
	if (reason == 2) { /* remove the connection for recovery: not at ERL 0 */
		x->bhs[2] = 2;
		iscsi_conn_queue(c, &x->it);
		return 0;
	}
	if (reason == 1) {
		for (o = s->conns; o && o->cid != cid; o = o->sess_next)
			;
		if (!o) {
			log_info(SUB, "%s: logout of CID %u: not a connection of the session",
				 c->peer, cid);
			x->bhs[2] = 1; /* CID not found */
			iscsi_conn_queue(c, &x->it);
			return 0;
		}
		if (o != c) {
			log_info(SUB, "%s: logout of CID %u (%s) of the session", c->peer, cid,
				 o->peer);
			for (unsigned i = 0; i < ISCSI_NTASKS; i++)
				iscsi_tmf_task_abort(&o->tasks[i], x);
			iscsi_conn_close(o);
			iscsi_tmf_ctrl_send_when_done(c, x);
			return 0;
		}
	}
	log_info(SUB, "%s: logout (%s)", c->peer, reason == 0 ? "session" : "connection");
	x->close_after = 1;
	conn_stop_rx(c);
	for (unsigned i = 0; i < ISCSI_NTASKS; i++)
		iscsi_tmf_task_wait(&c->tasks[i], x);
	if (reason == 0) {
		s->closing = 1;
		for (o = s->conns; o; o = o->sess_next) {
			if (o == c)
				continue;
			conn_stop_rx(o);
			o->drain_close = 1;
			for (unsigned i = 0; i < ISCSI_NTASKS; i++)
				iscsi_tmf_task_wait(&o->tasks[i], x);
		}
	}
	iscsi_tmf_ctrl_send_when_done(c, x);
	return 0;
}

/* Take a complete NOP-Out, TMF, Text or Logout Request in CmdSN order. */
static int ordered_ctrl(struct iscsi_conn *c)
{
	const uint8_t *h = c->rx_hdr;
	struct iscsi_session *s = c->sess;
	struct iscsi_held_pdu *hp;

	if (!iscsi_bhs_immediate(h)) {
		switch (iscsi_cmdsn_classify(s, iscsi_get32(h + 24))) {
		case SN_DROP:
			log_debug(SUB, "%s: %s CmdSN %u outside window (expected %u..%u): dropped",
				  c->peer, iscsi_pdu_opname(iscsi_bhs_opcode(h)),
				  iscsi_get32(h + 24), s->exp_cmdsn, s->max_cmdsn);
			return 0;
		case SN_HOLD:
			hp = malloc(sizeof(*hp) + c->rx_dlen);
			if (!hp)
				return -ENOMEM;
			hp->node.conn = c;
			hp->node.task = NULL;
			hp->node.cmdsn = iscsi_get32(h + 24);
			hp->dlen = c->rx_dlen;
			memcpy(hp->bhs, h, ISCSI_BHS_LEN);
			if (c->rx_dlen)
				memcpy(hp->data, c->scratch, c->rx_dlen);
			s->ntasks++;
			iscsi_cmdsn_held_insert(s, &hp->node);
			return 0;
		default:
			break;
		}
	}
	return ctrl_pdu(c, h, c->scratch, c->rx_dlen);
}

static int ctrl_pdu(struct iscsi_conn *c, const uint8_t *h, const uint8_t *data, uint32_t dlen)
{
	switch (iscsi_bhs_opcode(h)) {
	case ISCSI_OP_NOP_OUT: return nop_out(c, h, data, dlen);
	case ISCSI_OP_TMF_REQ: return iscsi_tmf_request(c, h);
	case ISCSI_OP_TEXT_REQ: return text_req(c, h, data, dlen);
	case ISCSI_OP_LOGOUT_REQ: return logout_req(c, h);
	default: return 0;
	}
}

/* Deliver the held PDUs that are now in CmdSN order, each on its own connection. */
static void session_advance(struct iscsi_session *s)
{
	for (;;) {
		struct iscsi_held *h = s->held;
		struct iscsi_held_pdu *hp;
		struct iscsi_conn *c;

		if (s->consumed & 1) {
			iscsi_cmdsn_take(s);
			continue;
		}
		if (!h || iscsi_sn_lt(s->exp_cmdsn, h->cmdsn))
			return;
		s->held = h->next;
		h->next = NULL;
		if (h->task) {
			h->task->waiting = 0;
			if (h->cmdsn != s->exp_cmdsn) { /* a repeated CmdSN went first */
				iscsi_task_free(h->task);
				continue;
			}
			iscsi_cmdsn_take(s);
			iscsi_task_progress(h->task);
			continue;
		}
		hp = container_of(h, struct iscsi_held_pdu, node);
		c = h->conn;
		s->ntasks--;
		if (h->cmdsn == s->exp_cmdsn) {
			iscsi_cmdsn_take(s);
			if (ctrl_pdu(c, hp->bhs, hp->data, hp->dlen) < 0)
				iscsi_conn_close(c);
		}
		free(hp);
	}
}

/* ---- receive ---- */

/* The BHS (and AHS) of a PDU is in: decide where its data segment goes. */
static int pdu_header(struct iscsi_conn *c)
{
	const uint8_t *h = c->rx_hdr;
	uint8_t op = iscsi_bhs_opcode(h);
	uint32_t dlen = iscsi_bhs_dlen(h);

	c->rx_task = NULL;
	c->rx_drop = 0;
	c->rx_data = NULL;
	c->rx_dlen = dlen;
	if (dlen > ISCSI_OUR_MRDSL) {
		log_warn(SUB, "%s: %s data segment of %u bytes exceeds %u", c->peer,
			 iscsi_pdu_opname(op), dlen, ISCSI_OUR_MRDSL);
		return reject_and_close(c, ISCSI_REJECT_PROTOCOL);
	}
	if (c->phase == CONN_LOGIN) {
		if (op != ISCSI_OP_LOGIN_REQ) {
			log_warn(SUB, "%s: %s during login", c->peer, iscsi_pdu_opname(op));
			return -EPROTO;
		}
		c->rx_data = c->scratch;
		return 0;
	}
	if (c->phase == CONN_LOGOUT) {
		c->rx_drop = 1;
		return 0;
	}
	switch (op) {
	case ISCSI_OP_SCSI_CMD:
		return cmd_header(c);
	case ISCSI_OP_DATA_OUT:
		return dataout_header(c);
	case ISCSI_OP_NOP_OUT:
	case ISCSI_OP_TMF_REQ:
	case ISCSI_OP_TEXT_REQ:
	case ISCSI_OP_LOGOUT_REQ:
		c->rx_data = c->scratch;
		return 0;
	case ISCSI_OP_LOGIN_REQ:
	case ISCSI_OP_SNACK:
		c->rx_drop = 1;
		return iscsi_conn_reject(c, ISCSI_REJECT_PROTOCOL);
	default:
		c->rx_drop = 1;
		return iscsi_conn_reject(c, ISCSI_REJECT_CMD_NOT_SUPPORTED);
	}
}

/* The whole PDU is in. */
static int pdu_done(struct iscsi_conn *c)
{
	const uint8_t *h = c->rx_hdr;
	int ret;

	if (c->rx_drop || c->halt_rx)
		return 0;
	if (c->phase == CONN_LOGIN) {
		if (iscsi_login_handle(c, c->scratch, c->rx_dlen) < 0)
			halt(c); /* close after the failed Login Response is written */
		return 0;
	}
	switch (iscsi_bhs_opcode(h)) {
	case ISCSI_OP_SCSI_CMD:
		ret = cmd_done(c);
		break;
	case ISCSI_OP_DATA_OUT:
		return dataout_done(c);
	case ISCSI_OP_NOP_OUT:
		if (iscsi_bhs_itt(h) == ISCSI_RSVD_TAG) /* answer to a NOP-In of ours */
			return 0;
		ret = ordered_ctrl(c);
		break;
	case ISCSI_OP_TMF_REQ:
		if (c->sess->type != ISCSI_SESSION_NORMAL)
			return reject_and_close(c, ISCSI_REJECT_PROTOCOL);
		ret = ordered_ctrl(c);
		break;
	case ISCSI_OP_TEXT_REQ:
	case ISCSI_OP_LOGOUT_REQ:
		ret = ordered_ctrl(c);
		break;
	default:
		return 0;
	}
	if (ret >= 0)
		session_advance(c->sess);
	return ret;
}

static void rx_expect(struct iscsi_conn *c, int state, uint8_t *ptr, uint32_t n)
{
	c->rx_state = state;
	c->rx_ptr = ptr;
	c->rx_left = n;
}

/* Advance the receive state machine once the pending bytes are in. */
static int rx_step(struct iscsi_conn *c)
{
	uint32_t ahs = iscsi_bhs_ahslen(c->rx_hdr), pad, extra;
	int ret;

	switch (c->rx_state) {
	case RX_BHS:
		/* Before login completes only Login Requests of sane size are welcome:
		 * anything else is dropped at once, before its AHS or data is awaited. */
		if (c->phase == CONN_LOGIN && (iscsi_bhs_opcode(c->rx_hdr) != ISCSI_OP_LOGIN_REQ ||
					      iscsi_bhs_dlen(c->rx_hdr) > ISCSI_OUR_MRDSL)) {
			log_warn(SUB, "%s: %s of %u data bytes before login: closing", c->peer,
				 iscsi_pdu_opname(iscsi_bhs_opcode(c->rx_hdr)), iscsi_bhs_dlen(c->rx_hdr));
			return -EPROTO;
		}
		extra = ahs + (c->hd ? ISCSI_DIGEST_LEN : 0);
		if (extra) {
			rx_expect(c, RX_AHS, c->rx_hdr + ISCSI_BHS_LEN, extra);
			return 0;
		}
		/* fall through */
	case RX_AHS:
		if (c->hd) {
			uint32_t want = iscsi_get_digest(c->rx_hdr + ISCSI_BHS_LEN + ahs);

			if (iscsi_crc32c(c->rx_hdr, ISCSI_BHS_LEN + ahs) != want) {
				log_warn(SUB, "%s: header digest error: closing", c->peer);
				return -EBADMSG;
			}
		}
		ret = pdu_header(c);
		if (ret < 0)
			return ret;
		if (c->rx_dlen) {
			rx_expect(c, RX_DATA, c->rx_data, c->rx_dlen);
			return 0;
		}
		break;
	case RX_DATA:
		pad = iscsi_pad4(c->rx_dlen);
		extra = pad + (c->dd ? ISCSI_DIGEST_LEN : 0);
		if (extra) {
			rx_expect(c, RX_TRAIL, c->rx_trail, extra);
			return 0;
		}
		break;
	case RX_TRAIL:
		pad = iscsi_pad4(c->rx_dlen);
		if (c->dd && c->rx_data && !c->rx_drop) {
			uint32_t s = iscsi_crc32c_update(iscsi_crc32c_init(), c->rx_data, c->rx_dlen);

			s = iscsi_crc32c_final(iscsi_crc32c_update(s, c->rx_trail, pad));
			if (s != iscsi_get_digest(c->rx_trail + pad)) {
				log_warn(SUB, "%s: data digest error: rejecting and closing", c->peer);
				c->rx_drop = 1;
				ret = reject_and_close(c, ISCSI_REJECT_DATA_DIGEST);
				if (ret)
					return ret;
			}
		}
		break;
	}
	ret = pdu_done(c);
	rx_expect(c, RX_BHS, c->rx_hdr, ISCSI_BHS_LEN);
	return ret;
}

/* Move pending bytes in. 1: progress, 0: nothing more now, negative: close. */
static int rx_read(struct iscsi_conn *c, uint32_t *budget)
{
	uint32_t n;
	ssize_t r;

	if (c->rpos < c->rlen) {
		n = MIN_U32(c->rlen - c->rpos, c->rx_left);
		if (c->rx_ptr) {
			memcpy(c->rx_ptr, c->rbuf + c->rpos, n);
			c->rx_ptr += n;
		}
		c->rpos += n;
		c->rx_left -= n;
		return 1;
	}
	if (!*budget)
		return 0;
	if (c->rx_ptr && c->rx_left >= DIRECT_READ_MIN) {
		r = read(c->fd, c->rx_ptr, c->rx_left);
		if (r > 0) {
			c->rx_ptr += r;
			c->rx_left -= (uint32_t)r;
		}
	} else {
		r = read(c->fd, c->rbuf, ISCSI_RBUF);
		if (r > 0) {
			c->rpos = 0;
			c->rlen = (uint32_t)r;
		}
	}
	if (r == 0)
		return -ECONNRESET;
	if (r < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -errno;
	*budget = (uint32_t)r >= *budget ? 0 : *budget - (uint32_t)r;
	return 1;
}

int iscsi_conn_on_read(struct iscsi_conn *c)
{
	uint32_t budget = READ_BUDGET;
	int ret;

	while (!c->halt_rx && !c->dead) {
		if (c->rx_left) {
			ret = rx_read(c, &budget);
			if (ret < 0)
				return ret;
			if (!ret)
				break;
			continue;
		}
		ret = rx_step(c);
		if (ret < 0)
			return ret;
	}
	return iscsi_tx_flush(c);
}

/* ---- lifecycle ---- */

static void addr_str(const struct sockaddr_storage *ss, char *out, size_t n)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		snprintf(out, n, "[%s]:%u", ip, ntohs(a->sin6_port));
	} else {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		snprintf(out, n, "%s:%u", ip, ntohs(a->sin_port));
	}
}

int iscsi_conn_create(struct iscsi_server *srv, int fd, struct iscsi_conn **out)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct iscsi_conn *c;
	int ret = -ENOMEM;

	c = calloc(1, sizeof(*c));
	if (!c)
		goto out_close_fd;
	c->scratch = malloc(ISCSI_OUR_MRDSL);
	c->rbuf = malloc(ISCSI_RBUF);
	if (!c->scratch || !c->rbuf)
		goto out_free_conn;
	c->ep_tag = ISCSI_EP_CONN;
	c->born_ns = util_mono_ns();
	c->srv = srv;
	c->fd = fd;
	if (!getpeername(fd, (struct sockaddr *)&ss, &sl)) {
		addr_str(&ss, c->peer, sizeof(c->peer));
		c->peer_ss = ss;
	}
	sl = sizeof(ss);
	if (!getsockname(fd, (struct sockaddr *)&ss, &sl))
		addr_str(&ss, c->local, sizeof(c->local));
	for (unsigned i = 0; i < ISCSI_NTASKS; i++) {
		c->tasks[i].idx = (uint16_t)i;
		c->free_idx[i] = (uint16_t)(ISCSI_NTASKS - 1 - i);
	}
	c->nfree = ISCSI_NTASKS;
	iscsi_neg_init(&c->login.neg);
	rx_expect(c, RX_BHS, c->rx_hdr, ISCSI_BHS_LEN);
	ev.data.ptr = c;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		ret = -errno;
		goto out_free_conn;
	}
	c->next = srv->conns;
	srv->conns = c;
	log_debug(SUB, "%s: connected", c->peer);
	*out = c;
	return 0;

out_free_conn:
	free(c->scratch);
	free(c->rbuf);
	free(c);
out_close_fd:
	close(fd);
	return ret;
}

void iscsi_nexus_fill(struct iscsi_session *s)
{
	static uint64_t next_id;
	struct scsi_nexus *n = &s->nexus;

	memset(n, 0, sizeof(*n));
	n->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
	snprintf(n->initiator, sizeof(n->initiator), "%s", s->initiator_name);
	memcpy(n->isid, s->isid, 6);
	n->tpgt = 1;
	if (s->target)
		snprintf(n->target, sizeof(n->target), "%s", s->target->iqn);
	n->read_only = s->read_only;
}

void iscsi_conn_enter_ffp(struct iscsi_conn *c, struct iscsi_session *s)
{
	struct iscsi_conn **pp;

	c->sess = s;
	c->phase = CONN_FULL;
	s->refs++;
	pthread_mutex_lock(&c->srv->sess_lock);
	for (pp = &s->conns; *pp; pp = &(*pp)->sess_next) /* listed in login order */
		;
	c->sess_next = NULL;
	*pp = c;
	s->nconns++;
	pthread_mutex_unlock(&c->srv->sess_lock);
}

void iscsi_session_close_conns(struct iscsi_session *s)
{
	s->closing = 1;
	while (s->conns)
		iscsi_conn_close(s->conns);
}

/* c leaves its session's connections; the session ends with its last one. */
static void session_leave(struct iscsi_conn *c)
{
	struct iscsi_session *s = c->sess;
	struct iscsi_conn **pp;
	int last;

	pthread_mutex_lock(&c->srv->sess_lock);
	for (pp = &s->conns; *pp; pp = &(*pp)->sess_next)
		if (*pp == c) {
			*pp = c->sess_next;
			s->nconns--;
			break;
		}
	c->sess_next = NULL;
	last = !s->nconns;
	pthread_mutex_unlock(&c->srv->sess_lock);
	if (last) {
		iscsi_session_end(s);
		log_info(SUB, "%s: session tsih %u of '%s' ended with its last connection", c->peer,
			 s->tsih, s->initiator_name);
	} else {
		log_info(SUB, "%s: connection CID %u left session tsih %u (%u left); its tasks "
			 "are ended (ERL 0)", c->peer, c->cid, s->tsih, s->nconns);
	}
}

void iscsi_conn_close(struct iscsi_conn *c)
{
	struct iscsi_conn **pp;
	struct tx_item *it, *next;

	if (c->dead)
		return;
	log_debug(SUB, "%s: closing", c->peer);
	if (c->fd >= 0) {
		epoll_ctl(c->srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->dead = 1;
	for (pp = &c->srv->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	/* prepared PDUs: control ones are freed here, tasks below */
	for (unsigned i = 0; i < c->tx_count; i++) {
		struct tx_pdu *s = &c->txr[(c->tx_head + i) % ISCSI_TX_SLOTS];

		if (s->done && s->done->kind == TXI_CTRL)
			free(s->done);
		s->done = NULL;
	}
	c->tx_count = 0;
	for (it = c->txq_head; it; it = next) {
		next = it->next;
		it->queued = 0;
		if (it->kind == TXI_CTRL)
			free(it);
	}
	c->txq_head = c->txq_tail = NULL;
	/* responses waiting for tasks: freed by the last of those tasks */
	while (c->ctrl_wait) {
		struct tx_ctrl *x = c->ctrl_wait;

		c->ctrl_wait = x->wait_next;
		x->wait_next = NULL;
		x->owner = NULL;
	}
	if (c->sess)
		iscsi_cmdsn_held_drop_conn(c->sess, c);
	for (unsigned i = 0; i < ISCSI_NTASKS; i++) {
		struct iscsi_task *t = &c->tasks[i];

		if (t->state == TASK_RECV || t->state == TASK_SEND)
			iscsi_task_free(t);
		else if (t->state == TASK_EXEC) /* a long wait (SANITIZE) stops */
			__atomic_store_n(&t->cmd.aborted, 1, __ATOMIC_RELAXED);
	}
	iscsi_textbuf_free(&c->text_in);
	iscsi_textbuf_free(&c->text_out);
	iscsi_login_cleanup(&c->login, c->srv);
	if (c->sess) {
		session_leave(c);
		/* CmdSNs it leaves behind count as received: what waited on them goes on */
		if (c->sess->nconns && !c->sess->closing)
			session_advance(c->sess);
	}
	if (!c->busy)
		iscsi_conn_zombie(c);
}

void iscsi_conn_reap(struct iscsi_server *srv)
{
	struct iscsi_conn *c, *next;

	pthread_mutex_lock(&srv->lock);
	if (srv->drop_removed) {
		srv->drop_removed = 0;
		for (c = srv->conns; c; c = c->next)
			if ((c->sess && c->sess->target && c->sess->target->removed) ||
			    (c->login.target && c->login.target->removed))
				c->closing = 1;
	}
	if (srv->recheck_acl) { /* an ACL changed: connections it now denies are dropped */
		srv->recheck_acl = 0;
		for (c = srv->conns; c; c = c->next) {
			const struct iscsi_secpol *p;

			if (!c->sess || !c->sess->target)
				continue;
			p = c->sess->target->sec;
			if (acl_check(p->rules, p->nrules, p->default_access,
				      c->sess->initiator_name,
				      (const struct sockaddr *)&c->peer_ss) == ACL_DENY) {
				log_info(SUB, "%s: '%s' is now denied by the ACL of %s: closing",
					 c->peer, c->sess->initiator_name, c->sess->target->iqn);
				c->closing = 1;
			}
		}
	}
	pthread_mutex_unlock(&srv->lock);
	for (c = srv->conns; c; c = next) {
		next = c->next;
		if (c->closing) {
			iscsi_conn_close(c);
			continue;
		}
		if ((c->txq_head || c->tx_count) && !c->want_out && iscsi_tx_flush(c) < 0) {
			iscsi_conn_close(c);
			continue;
		}
		if (c->drain_close && !c->busy && !c->txq_head && !c->tx_count)
			iscsi_conn_close(c); /* its session was logged out from another one */
	}
	while ((c = srv->zombies)) {
		srv->zombies = c->next;
		if (c->sess)
			iscsi_session_put(c->sess);
		free(c->scratch);
		free(c->rbuf);
		free(c);
	}
}
