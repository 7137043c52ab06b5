/* iscsi_conn.c - connection I/O and the full feature phase (RFC 7143 sections 4, 11).
 *
 * Receive: a PDU is read in four steps (BHS, AHS + header digest, data segment, pad +
 * data digest) through a 64 KiB staging buffer; large data segments are read straight
 * into the task buffer at the PDU's BufferOffset (one copy from the socket).
 *
 * Send: items (control PDUs, a task's R2Ts, a task's Data-In + status) wait in a FIFO.
 * The sender turns them into at most ISCSI_TX_SLOTS prepared PDUs whose headers live in
 * the slot and whose data point into the task buffer, and writes them with one
 * sendmsg() per batch, keeping partial-write state across EPOLLOUT events.
 * StatSN, ExpCmdSN and MaxCmdSN are stamped when a PDU is prepared, so they go out
 * in order.
 *
 * Tasks: a fixed array per connection (CmdSN window + immediate reserve). A task's
 * Target Transfer Tag is gen << 16 | index, so a stale TTT is recognised. The CmdSN
 * window is the session's: at most ISCSI_QUEUE_DEPTH commands in all its connections.
 *
 * CmdSN order (RFC 7143 4.2.2.1), session-wide across connections: a non-immediate PDU
 * is classified when it is complete (a SCSI command with its immediate data). CmdSN ==
 * ExpCmdSN: taken now (ExpCmdSN + 1). Above it within the window: held (s->held) until
 * the gap below is filled from any connection; a held SCSI command keeps receiving its
 * unsolicited Data-Out on its own connection meanwhile. Below ExpCmdSN, above MaxCmdSN
 * or already held: dropped silently. After each PDU the held ones now in order are
 * delivered, each as if it came in then, on its own connection. A CmdSN whose PDU will
 * never be delivered (its connection closed, its task aborted, refused with TASK SET
 * FULL) is marked consumed, so the order moves past it.
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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bufpool.h"
#include "log.h"
#include "util.h"

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))
#define SUB "iscsi"
#define MIN_U32(a, b) ((uint32_t)((a) < (b) ? (a) : (b)))
#define READ_BUDGET (8u << 20)  /* bytes read from one socket per event */
#define DIRECT_READ_MIN 8192    /* data at least this long skips the staging buffer */

static int tx_flush(struct iscsi_conn *c);
static void tmf_reset(const struct tx_ctrl *x);

/* A closed connection with no task left: freed by iscsi_conn_reap(). */
static void zombie(struct iscsi_conn *c)
{
	c->next = c->srv->zombies;
	c->srv->zombies = c;
}

/* ---- helpers ---- */

static void ep_update(struct iscsi_conn *c)
{
	struct epoll_event ev = { .data.ptr = c };

	if (c->dead)
		return;
	ev.events = (c->halt_rx ? 0 : EPOLLIN) | (c->want_out ? EPOLLOUT : 0);
	epoll_ctl(c->srv->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Stamp StatSN (taking a new one if adv), ExpCmdSN and MaxCmdSN at bytes 24..35. */
static void stamp_sn(struct iscsi_conn *c, uint8_t *bhs, int adv)
{
	struct iscsi_session *s = c->sess;

	iscsi_put32(bhs + 24, adv ? c->statsn++ : c->statsn);
	if (s) {
		iscsi_session_update_window(s);
		iscsi_put32(bhs + 28, s->exp_cmdsn);
		iscsi_put32(bhs + 32, s->max_cmdsn);
	} else {
		iscsi_put32(bhs + 28, c->login.cmdsn);
		iscsi_put32(bhs + 32, c->login.cmdsn);
	}
}

struct tx_ctrl *iscsi_conn_ctrl_new(uint32_t dlen)
{
	struct tx_ctrl *x = calloc(1, sizeof(*x) + dlen + 1);

	if (!x)
		return NULL;
	x->it.kind = TXI_CTRL;
	x->dlen = dlen;
	return x;
}

void iscsi_conn_queue(struct iscsi_conn *c, struct tx_item *it)
{
	if (it->queued)
		return;
	it->next = NULL;
	it->queued = 1;
	if (c->txq_tail)
		c->txq_tail->next = it;
	else
		c->txq_head = it;
	c->txq_tail = it;
}

static void txq_unlink(struct iscsi_conn *c, struct tx_item *it)
{
	struct tx_item *prev = NULL;

	if (!it->queued)
		return;
	for (struct tx_item *p = c->txq_head; p; prev = p, p = p->next) {
		if (p != it)
			continue;
		if (prev)
			prev->next = p->next;
		else
			c->txq_head = p->next;
		if (c->txq_tail == p)
			c->txq_tail = prev;
		break;
	}
	it->queued = 0;
	it->next = NULL;
}

static void halt(struct iscsi_conn *c)
{
	c->halt_rx = 1;
	ep_update(c);
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

/* ---- CmdSN order (session-wide) ---- */

/* Bit of CmdSN sn in s->consumed: 0..63 for ExpCmdSN..ExpCmdSN+63, else -1. */
static int sn_bit(const struct iscsi_session *s, uint32_t sn)
{
	uint32_t d = sn - s->exp_cmdsn;

	return d < 64 ? (int)d : -1;
}

/* ExpCmdSN moves past one CmdSN. */
static void sn_take(struct iscsi_session *s)
{
	s->exp_cmdsn++;
	s->consumed >>= 1;
}

/* sn counts as received with nothing to deliver (if still ahead, within the window). */
static void sn_consume(struct iscsi_session *s, uint32_t sn)
{
	int b = sn_bit(s, sn);

	if (b >= 0 && !iscsi_sn_lt(s->max_cmdsn, sn))
		s->consumed |= 1ull << b;
}

static int held_has(const struct iscsi_session *s, uint32_t sn)
{
	for (const struct iscsi_held *h = s->held; h; h = h->next)
		if (h->cmdsn == sn)
			return 1;
	return 0;
}

static void held_insert(struct iscsi_session *s, struct iscsi_held *n)
{
	struct iscsi_held **pp = &s->held;

	while (*pp && iscsi_sn_lt((*pp)->cmdsn, n->cmdsn))
		pp = &(*pp)->next;
	n->next = *pp;
	*pp = n;
}

static void held_unlink(struct iscsi_session *s, struct iscsi_held *n)
{
	for (struct iscsi_held **pp = &s->held; *pp; pp = &(*pp)->next)
		if (*pp == n) {
			*pp = n->next;
			break;
		}
	n->next = NULL;
}

enum { SN_NOW, SN_HOLD, SN_DROP };

/* Where a complete non-immediate PDU with CmdSN sn goes; SN_NOW takes the CmdSN. */
static int sn_classify(struct iscsi_session *s, uint32_t sn)
{
	int b;

	if (sn == s->exp_cmdsn && !(s->consumed & 1)) {
		sn_take(s);
		return SN_NOW;
	}
	b = sn_bit(s, sn);
	if (b > 0 && !iscsi_sn_lt(s->max_cmdsn, sn) && !(s->consumed >> b & 1) &&
	    !held_has(s, sn))
		return SN_HOLD;
	return SN_DROP;
}

/* 1 if a SCSI command header with CmdSN sn may be received (SN_NOW or SN_HOLD). */
static int sn_acceptable(const struct iscsi_session *s, uint32_t sn)
{
	int b = sn_bit(s, sn);

	return b >= 0 && !iscsi_sn_lt(s->max_cmdsn, sn) && !(s->consumed >> b & 1) &&
	       !held_has(s, sn);
}

/* ---- tasks ---- */

static struct iscsi_task *task_alloc(struct iscsi_conn *c)
{
	struct iscsi_task *t;
	uint16_t idx, gen;

	if (!c->nfree)
		return NULL;
	idx = c->free_idx[--c->nfree];
	t = &c->tasks[idx];
	gen = (uint16_t)(t->gen + 1);
	memset(t, 0, sizeof(*t));
	t->idx = idx;
	t->gen = gen;
	t->conn = c;
	t->txi.kind = TXI_RESP;
	t->state = TASK_RECV;
	t->held.task = t;
	t->held.conn = c;
	if (c->sess)
		c->sess->ntasks++;
	return t;
}

static void task_free(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;
	struct iscsi_session *s = c->sess;

	if (s) {
		s->ntasks--;
		if (t->waiting) { /* never delivered: its CmdSN counts as received */
			held_unlink(s, &t->held);
			t->waiting = 0;
			sn_consume(s, t->cmdsn);
		} else if (t->state == TASK_RECV && !t->cmd_in && !t->immediate) {
			sn_consume(s, t->cmdsn); /* freed before its PDU was complete */
		}
	}
	if (c->rx_task == t) {
		/* the PDU being received belongs to it (a TMF or Logout from another
		 * connection ended it): the rest of that PDU is read and discarded */
		c->rx_task = NULL;
		c->rx_drop = 1;
		if (c->rx_state == RX_DATA && c->rx_data)
			c->rx_ptr = NULL;
		c->rx_data = NULL;
	}
	txq_unlink(c, &t->txi);
	if (t->buf)
		bufpool_put(t->pool, t->buf);
	t->buf = NULL;
	t->state = TASK_FREE;
	c->free_idx[c->nfree++] = t->idx;
}

static int task_get_buf(struct iscsi_conn *c, struct iscsi_task *t, uint32_t need)
{
	for (int i = 0; i < ISCSI_NPOOLS; i++) {
		struct bufpool *p = c->srv->pools[i];

		if (!p || bufpool_bufsize(p) < need)
			continue;
		t->buf = bufpool_tryget(p);
		if (t->buf) {
			t->pool = p;
			return 0;
		}
	}
	return -EBUSY;
}

/* The transport decides the outcome itself (no scsi_exec). */
static void task_precompute(struct iscsi_task *t, uint8_t key, uint8_t asc, uint8_t ascq)
{
	t->precomputed = 1;
	if (key)
		scsi_set_sense(&t->cmd, key, asc, ascq);
	t->cmd.xfer_len = 0;
	t->cmd.data_in_len = 0;
}

static void task_respond(struct iscsi_task *t)
{
	struct scsi_cmd *cmd = &t->cmd;
	struct iscsi_conn *c = t->conn;
	struct iscsi_session *s = c->sess;

	t->state = TASK_SEND;
	t->tx_off = 0;
	if (!t->is_read || !t->buf)
		cmd->data_in_len = 0;
	if (cmd->data_in_len > t->edtl)
		cmd->data_in_len = t->edtl;
	if (s) {
		__atomic_fetch_add(&s->n_cmds, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&s->bytes_read, cmd->data_in_len, __ATOMIC_RELAXED);
		if (t->is_write && cmd->status == SAM_STAT_GOOD)
			__atomic_fetch_add(&s->bytes_written, cmd->data_out_len, __ATOMIC_RELAXED);
	}
	__atomic_fetch_add(&c->n_cmds, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&c->bytes_read, cmd->data_in_len, __ATOMIC_RELAXED);
	if (t->is_write && cmd->status == SAM_STAT_GOOD)
		__atomic_fetch_add(&c->bytes_written, cmd->data_out_len, __ATOMIC_RELAXED);
	t->txi.kind = TXI_RESP;
	iscsi_conn_queue(t->conn, &t->txi);
}

static void worker_fn(struct work_item *w)
{
	struct iscsi_task *t = container_of(w, struct iscsi_task, work);

	scsi_exec(&t->cmd);
	iscsi_server_complete(t->conn->srv, t);
}

static void task_exec(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;

	if (t->precomputed) {
		task_respond(t);
		return;
	}
	t->cmd.buf = t->buf;
	t->cmd.buf_cap = (uint32_t)bufpool_bufsize(t->pool);
	t->cmd.data_out_len = t->is_write ? MIN_U32(t->recv_bytes, t->edtl) : 0;
	t->state = TASK_EXEC;
	t->work.fn = worker_fn;
	c->busy++;
	if (work_pool_submit(c->srv->pool, &t->work)) {
		c->busy--;
		t->cmd.status = SAM_STAT_BUSY;
		t->cmd.sense_len = 0;
		t->cmd.xfer_len = 0;
		task_respond(t);
	}
}

/* Advance a write: solicit what is missing with R2Ts, or execute once all is in. */
static void task_progress(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;
	const struct iscsi_params *p = &c->sess->p;

	if (t->unsol_open || t->waiting || !t->cmd_in)
		return;
	if (t->is_write && !t->precomputed) {
		if (!t->sol_started) {
			t->sol_started = 1;
			t->sol_off = MIN_U32(t->recv_bytes, t->edtl);
			t->r2t_emit_off = t->sol_off;
		}
		while (t->sol_off < t->edtl && t->r2t_open < p->max_outstanding_r2t) {
			t->sol_off += MIN_U32(p->max_burst, t->edtl - t->sol_off);
			t->r2t_open++;
			t->r2t_queued++;
		}
		if (t->r2t_queued) {
			t->txi.kind = TXI_R2T;
			iscsi_conn_queue(c, &t->txi);
		}
		if (t->r2t_open)
			return;
	}
	task_exec(t);
}

/* A TMF or Logout Response x of connection c waits for a task in a worker. */
static void task_wait(struct iscsi_task *t, struct tx_ctrl *x)
{
	if (t->state != TASK_EXEC || t->tmf || !x)
		return;
	t->tmf = x;
	x->pending++;
}

/* Abort one task for a TMF (x, or NULL): a task in a worker stops early and is
 * discarded when it returns (x waits for it); one still receiving is freed. */
static void task_abort(struct iscsi_task *t, struct tx_ctrl *x)
{
	switch (t->state) {
	case TASK_RECV:
		task_free(t);
		break;
	case TASK_EXEC:
		t->aborted = 1;
		__atomic_store_n(&t->cmd.aborted, 1, __ATOMIC_RELAXED); /* a long wait stops */
		task_wait(t, x);
		break;
	default: /* its response is already on its way */
		break;
	}
}

/* Queue x on its connection c now, or once the tasks it waits for are back. */
static void ctrl_send_when_done(struct iscsi_conn *c, struct tx_ctrl *x)
{
	x->owner = c;
	x->sess = c->sess;
	if (!x->pending) {
		tmf_reset(x);
		iscsi_conn_queue(c, &x->it);
		return;
	}
	x->wait_next = c->ctrl_wait;
	c->ctrl_wait = x;
}

/* A task x waited for is back. */
static void ctrl_put(struct tx_ctrl *x)
{
	struct iscsi_conn *c;

	if (--x->pending)
		return;
	c = x->owner;
	tmf_reset(x);
	if (!c) { /* its connection closed meanwhile */
		free(x);
		return;
	}
	for (struct tx_ctrl **pp = &c->ctrl_wait; *pp; pp = &(*pp)->wait_next)
		if (*pp == x) {
			*pp = x->wait_next;
			break;
		}
	x->wait_next = NULL;
	iscsi_conn_queue(c, &x->it);
}

void iscsi_conn_task_done(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;
	struct tx_ctrl *x = t->tmf;

	c->busy--;
	t->tmf = NULL;
	if (c->dead) {
		task_free(t);
		if (x)
			ctrl_put(x);
		if (!c->busy)
			zombie(c);
		return;
	}
	if (t->aborted)
		task_free(t);
	else
		task_respond(t);
	if (x)
		ctrl_put(x);
}

/* ---- send ---- */

static void slot_finish_hdr(struct iscsi_conn *c, struct tx_pdu *s, const void *data, uint32_t dlen)
{
	uint32_t pad = iscsi_pad4(dlen);

	iscsi_bhs_set_dlen(s->hdr, dlen);
	s->iov[0].iov_base = s->hdr;
	s->iov[0].iov_len = ISCSI_BHS_LEN;
	if (c->tx_hd) {
		iscsi_put_digest(s->hdr + ISCSI_BHS_LEN, iscsi_crc32c(s->hdr, ISCSI_BHS_LEN));
		s->iov[0].iov_len += ISCSI_DIGEST_LEN;
	}
	s->niov = 1;
	s->cur = 0;
	if (!dlen)
		return;
	s->iov[1].iov_base = (void *)data;
	s->iov[1].iov_len = dlen;
	s->niov = 2;
	memset(s->trail, 0, sizeof(s->trail));
	if (c->tx_dd)
		iscsi_put_digest(s->trail + pad, iscsi_data_digest(data, dlen));
	if (pad + (c->tx_dd ? ISCSI_DIGEST_LEN : 0)) {
		s->iov[2].iov_base = s->trail;
		s->iov[2].iov_len = pad + (c->tx_dd ? ISCSI_DIGEST_LEN : 0);
		s->niov = 3;
	}
}

static void residual(const struct iscsi_task *t, uint8_t *flags, uint32_t *count)
{
	uint32_t x = t->cmd.xfer_len;

	if (x > t->edtl) {
		*flags |= ISCSI_RSP_OVERFLOW;
		*count = x - t->edtl;
	} else if (x < t->edtl) {
		*flags |= ISCSI_RSP_UNDERFLOW;
		*count = t->edtl - x;
	} else {
		*count = 0;
	}
}

/* Prepare the next PDU of item it into slot s. Returns 1 when it has no more. */
static int emit(struct iscsi_conn *c, struct tx_item *it, struct tx_pdu *s)
{
	const struct iscsi_params *p = c->sess ? &c->sess->p : NULL;
	uint8_t *h = s->hdr;
	struct iscsi_task *t;
	uint32_t len, res;
	uint8_t fl = 0;

	memset(h, 0, ISCSI_BHS_LEN);
	s->done = NULL;
	if (it->kind == TXI_CTRL) {
		struct tx_ctrl *x = (struct tx_ctrl *)it;

		memcpy(h, x->bhs, ISCSI_BHS_LEN);
		if (!x->no_sn)
			stamp_sn(c, h, x->adv_statsn);
		slot_finish_hdr(c, s, x->data, x->dlen);
		if (x->start_digests && c->sess) { /* digests start after the last Login Response */
			c->tx_hd = c->neg_hd;
			c->tx_dd = c->neg_dd;
		}
		s->done = it;
		return 1;
	}
	t = container_of(it, struct iscsi_task, txi);
	if (it->kind == TXI_R2T) {
		len = MIN_U32(p->max_burst, t->edtl - t->r2t_emit_off);
		h[0] = ISCSI_OP_R2T;
		h[1] = 0x80;
		memcpy(h + 8, t->lun, 8);
		iscsi_put32(h + 16, t->itt);
		iscsi_put32(h + 20, (uint32_t)t->gen << 16 | t->idx);
		stamp_sn(c, h, 0);
		iscsi_put32(h + 36, t->r2tsn++);
		iscsi_put32(h + 40, t->r2t_emit_off);
		iscsi_put32(h + 44, len);
		t->r2t_emit_off += len;
		slot_finish_hdr(c, s, NULL, 0);
		return --t->r2t_queued == 0;
	}
	/* TXI_RESP: Data-In PDUs, then status (in the last Data-In when GOOD) */
	if (t->tx_off < t->cmd.data_in_len) {
		uint32_t left = t->cmd.data_in_len - t->tx_off;
		uint32_t seq_left = p->max_burst - t->tx_off % p->max_burst;
		int last, collapse = t->cmd.status == SAM_STAT_GOOD && !t->cmd.sense_len;

		len = MIN_U32(MIN_U32(left, c->max_send_dsl), seq_left);
		last = len == left;
		h[0] = ISCSI_OP_DATA_IN;
		if (last || len == seq_left)
			fl |= ISCSI_FLAG_FINAL;
		memcpy(h + 8, t->lun, 8);
		iscsi_put32(h + 16, t->itt);
		iscsi_put32(h + 20, ISCSI_RSVD_TAG);
		iscsi_put32(h + 36, t->datasn++);
		iscsi_put32(h + 40, t->tx_off);
		if (last && collapse) {
			fl |= ISCSI_DATAIN_STATUS;
			residual(t, &fl, &res);
			iscsi_put32(h + 44, res);
			h[3] = t->cmd.status;
			stamp_sn(c, h, 1);
			s->done = it;
		} else {
			stamp_sn(c, h, 0);
			iscsi_put32(h + 24, 0); /* StatSN is reserved without the S bit */
		}
		h[1] = fl;
		slot_finish_hdr(c, s, (uint8_t *)t->buf + t->tx_off, len);
		t->tx_off += len;
		return last && collapse;
	}
	h[0] = ISCSI_OP_SCSI_RSP;
	fl = 0x80;
	residual(t, &fl, &res);
	h[1] = fl;
	h[2] = 0;
	h[3] = t->cmd.status;
	iscsi_put32(h + 16, t->itt);
	stamp_sn(c, h, 1);
	iscsi_put32(h + 36, t->is_read ? t->datasn : t->r2tsn);
	iscsi_put32(h + 44, res);
	len = 0;
	if (t->cmd.sense_len) {
		len = 2u + t->cmd.sense_len;
		iscsi_put16(t->sense_buf, t->cmd.sense_len);
		memcpy(t->sense_buf + 2, t->cmd.sense, t->cmd.sense_len);
	}
	slot_finish_hdr(c, s, t->sense_buf, len);
	s->done = it;
	return 1;
}

static void slot_done(struct iscsi_conn *c, struct tx_pdu *s)
{
	struct tx_item *it = s->done;

	s->done = NULL;
	if (!it)
		return;
	if (it->kind == TXI_CTRL) {
		struct tx_ctrl *x = (struct tx_ctrl *)it;

		if (x->close_after)
			c->close_after_tx = 1;
		free(x);
	} else {
		task_free(container_of(it, struct iscsi_task, txi));
	}
}

/* Write as much as the socket takes. 0, or negative: close the connection. */
static int tx_flush(struct iscsi_conn *c)
{
	struct iovec iov[64];
	struct msghdr msg = { .msg_iov = iov };

	if (c->dead)
		return 0;
	for (;;) {
		unsigned n = 0, i;
		ssize_t w;

		while (c->tx_count < ISCSI_TX_SLOTS && c->txq_head) {
			struct tx_item *it = c->txq_head;
			struct tx_pdu *s = &c->txr[(c->tx_head + c->tx_count) % ISCSI_TX_SLOTS];

			c->tx_count++;
			if (emit(c, it, s)) {
				c->txq_head = it->next;
				if (!c->txq_head)
					c->txq_tail = NULL;
				it->queued = 0;
				it->next = NULL;
			}
		}
		if (!c->tx_count)
			break;
		for (i = 0; i < c->tx_count && n + 3 <= 64; i++) {
			struct tx_pdu *s = &c->txr[(c->tx_head + i) % ISCSI_TX_SLOTS];

			for (unsigned j = s->cur; j < s->niov; j++)
				iov[n++] = s->iov[j];
		}
		msg.msg_iovlen = n;
		w = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (!c->want_out) {
					c->want_out = 1;
					ep_update(c);
				}
				return 0;
			}
			return -errno;
		}
		while (c->tx_count) {
			struct tx_pdu *s = &c->txr[c->tx_head];

			while (s->cur < s->niov) {
				struct iovec *v = &s->iov[s->cur];

				if ((size_t)w < v->iov_len) {
					v->iov_base = (char *)v->iov_base + w;
					v->iov_len -= (size_t)w;
					w = 0;
					break;
				}
				w -= (ssize_t)v->iov_len;
				s->cur++;
			}
			if (s->cur < s->niov)
				break;
			c->tx_head = (c->tx_head + 1) % ISCSI_TX_SLOTS;
			c->tx_count--;
			slot_done(c, s);
		}
	}
	if (c->want_out) {
		c->want_out = 0;
		ep_update(c);
	}
	return c->close_after_tx ? -ECONNRESET : 0;
}

int iscsi_conn_on_write(struct iscsi_conn *c)
{
	return tx_flush(c);
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
	if (!imm && !sn_acceptable(s, sn)) {
		log_debug(SUB, "%s: CmdSN %u outside window (expected %u..%u) or repeated: dropped",
			  c->peer, sn, s->exp_cmdsn, s->max_cmdsn);
		c->rx_drop = 1;
		return 0;
	}
	t = task_alloc(c);
	if (!t) {
		c->rx_drop = 1;
		if (!imm) { /* answered: its CmdSN counts as received */
			sn_consume(s, sn);
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
		task_precompute(t, SK_ILLEGAL_REQUEST, 0x24, 0x00); /* INVALID FIELD IN CDB */
	else if (task_get_buf(c, t, t->edtl ? t->edtl : 1)) {
		task_precompute(t, 0, 0, 0);
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
		switch (sn_classify(s, t->cmdsn)) {
		case SN_HOLD:
			t->waiting = 1;
			held_insert(s, &t->held);
			return 0;
		case SN_DROP: /* the order moved past it while its data came in */
			log_debug(SUB, "%s: CmdSN %u is no longer expected: dropped", c->peer,
				  t->cmdsn);
			task_free(t);
			return 0;
		default:
			break;
		}
	}
	task_progress(t);
	return 0;
}

static struct iscsi_task *find_task_itt(struct iscsi_conn *c, uint32_t itt)
{
	for (unsigned i = 0; i < ISCSI_NTASKS; i++)
		if (c->tasks[i].state != TASK_FREE && c->tasks[i].itt == itt)
			return &c->tasks[i];
	return NULL;
}

/* A task of the session by its Initiator Task Tag (unique in the session), on any of
 * its connections. */
static struct iscsi_task *session_find_itt(struct iscsi_session *s, uint32_t itt)
{
	for (struct iscsi_conn *o = s->conns; o; o = o->sess_next) {
		struct iscsi_task *t = find_task_itt(o, itt);

		if (t)
			return t;
	}
	return NULL;
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
		t = find_task_itt(c, itt);
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
		task_precompute(t, SK_ABORTED_COMMAND, 0x4b, off != t->next_off ? 0x05 : 0x00);
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
	task_progress(t);
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

static int lun_mapped(const struct iscsi_session *s, uint64_t lun)
{
	const struct scsi_lun_map *m = &s->target->map;

	return lun < m->count && m->luns[lun];
}

/* The tasks a reset TMF aborted are drained: let the SCSI layer reset its state. */
static void tmf_reset(const struct tx_ctrl *x)
{
	const struct iscsi_session *s = x->sess;
	const struct scsi_lun_map *m;

	if (!x->reset || !s || !s->target)
		return;
	m = &s->target->map;
	if (x->reset == 1 && x->reset_lun < m->count && m->luns[x->reset_lun])
		scsi_lun_reset(m->luns[x->reset_lun], &s->nexus);
	else if (x->reset == 2)
		scsi_target_reset(m, &s->nexus);
}

/* Task management acts on the session's tasks, on all its connections. */
static int tmf(struct iscsi_conn *c, const uint8_t *h)
{
	uint8_t fn = h[1] & 0x7f, rsp = ISCSI_TMF_RSP_COMPLETE;
	uint64_t lun = iscsi_lun_decode(h + 8);
	struct iscsi_session *s = c->sess;
	struct tx_ctrl *x;
	struct iscsi_task *t;

	x = iscsi_conn_ctrl_new(0);
	if (!x)
		return -ENOMEM;
	x->bhs[0] = ISCSI_OP_TMF_RSP;
	x->bhs[1] = 0x80;
	iscsi_put32(x->bhs + 16, iscsi_bhs_itt(h));
	x->adv_statsn = 1;

	switch (fn) {
	case ISCSI_TMF_ABORT_TASK: {
		uint32_t ref = iscsi_get32(h + 32), tsn = iscsi_get32(h + 24);

		t = session_find_itt(s, iscsi_get32(h + 20));
		if (t) {
			task_abort(t, x);
		} else if (!iscsi_sn_lt(ref, s->exp_cmdsn) && !iscsi_sn_lt(s->max_cmdsn, ref) &&
			   iscsi_sn_lt(ref, tsn)) {
			/* RFC 7143 11.5.1 b): not here (yet), within the window and sent before
			 * this request: the CmdSN counts as received, the task as aborted */
			sn_consume(s, ref);
		} else {
			rsp = ISCSI_TMF_RSP_NO_TASK;
		}
		break;
	}
	case ISCSI_TMF_ABORT_TASK_SET:
	case ISCSI_TMF_CLEAR_TASK_SET:
	case ISCSI_TMF_LUN_RESET:
		if (!lun_mapped(s, lun)) {
			rsp = ISCSI_TMF_RSP_NO_LUN;
			break;
		}
		for (struct iscsi_conn *o = s->conns; o; o = o->sess_next)
			for (unsigned i = 0; i < ISCSI_NTASKS; i++)
				if (o->tasks[i].state != TASK_FREE && o->tasks[i].cmd.lun_id == lun)
					task_abort(&o->tasks[i], x);
		if (fn == ISCSI_TMF_LUN_RESET) {
			x->reset = 1;
			x->reset_lun = lun;
		}
		break;
	case ISCSI_TMF_TARGET_WARM_RESET:
	case ISCSI_TMF_TARGET_COLD_RESET:
		for (struct iscsi_conn *o = s->conns; o; o = o->sess_next)
			for (unsigned i = 0; i < ISCSI_NTASKS; i++)
				if (o->tasks[i].state != TASK_FREE)
					task_abort(&o->tasks[i], x);
		x->reset = 2;
		break;
	case ISCSI_TMF_TASK_REASSIGN:
		rsp = 4; /* task allegiance reassignment not supported (ERL 0) */
		break;
	default:
		rsp = ISCSI_TMF_RSP_NOT_SUPPORTED;
		break;
	}
	log_info(SUB, "%s: task management function %u: response %u", c->peer, fn, rsp);
	x->bhs[2] = rsp;
	ctrl_send_when_done(c, x);
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

/* Drop the PDU copies of c waiting in the session's CmdSN order: their CmdSNs count as
 * received (c closes or logs out). Its waiting tasks go with the tasks. */
static void held_drop_conn(struct iscsi_session *s, struct iscsi_conn *c)
{
	struct iscsi_held **pp = &s->held;

	while (*pp) {
		struct iscsi_held *h = *pp;

		if (h->conn != c || h->task) {
			pp = &h->next;
			continue;
		}
		*pp = h->next;
		s->ntasks--;
		sn_consume(s, h->cmdsn);
		free(container_of(h, struct iscsi_held_pdu, node));
	}
}

/* c reads nothing more: the commands it was still receiving are dropped. */
static void conn_stop_rx(struct iscsi_conn *c)
{
	c->phase = CONN_LOGOUT;
	for (unsigned i = 0; i < ISCSI_NTASKS; i++)
		if (c->tasks[i].state == TASK_RECV)
			task_free(&c->tasks[i]);
	held_drop_conn(c->sess, c);
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
				task_abort(&o->tasks[i], x);
			iscsi_conn_close(o);
			ctrl_send_when_done(c, x);
			return 0;
		}
	}
	log_info(SUB, "%s: logout (%s)", c->peer, reason == 0 ? "session" : "connection");
	x->close_after = 1;
	conn_stop_rx(c);
	for (unsigned i = 0; i < ISCSI_NTASKS; i++)
		task_wait(&c->tasks[i], x);
	if (reason == 0) {
		s->closing = 1;
		for (o = s->conns; o; o = o->sess_next) {
			if (o == c)
				continue;
			conn_stop_rx(o);
			o->drain_close = 1;
			for (unsigned i = 0; i < ISCSI_NTASKS; i++)
				task_wait(&o->tasks[i], x);
		}
	}
	ctrl_send_when_done(c, x);
	return 0;
}

/* Take a complete NOP-Out, TMF, Text or Logout Request in CmdSN order. */
static int ordered_ctrl(struct iscsi_conn *c)
{
	const uint8_t *h = c->rx_hdr;
	struct iscsi_session *s = c->sess;
	struct iscsi_held_pdu *hp;

	if (!iscsi_bhs_immediate(h)) {
		switch (sn_classify(s, iscsi_get32(h + 24))) {
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
			held_insert(s, &hp->node);
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
	case ISCSI_OP_TMF_REQ: return tmf(c, h);
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
			sn_take(s);
			continue;
		}
		if (!h || iscsi_sn_lt(s->exp_cmdsn, h->cmdsn))
			return;
		s->held = h->next;
		h->next = NULL;
		if (h->task) {
			h->task->waiting = 0;
			if (h->cmdsn != s->exp_cmdsn) { /* a repeated CmdSN went first */
				task_free(h->task);
				continue;
			}
			sn_take(s);
			task_progress(h->task);
			continue;
		}
		hp = container_of(h, struct iscsi_held_pdu, node);
		c = h->conn;
		s->ntasks--;
		if (h->cmdsn == s->exp_cmdsn) {
			sn_take(s);
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
	return tx_flush(c);
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
		held_drop_conn(c->sess, c);
	for (unsigned i = 0; i < ISCSI_NTASKS; i++) {
		struct iscsi_task *t = &c->tasks[i];

		if (t->state == TASK_RECV || t->state == TASK_SEND)
			task_free(t);
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
		zombie(c);
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
		if ((c->txq_head || c->tx_count) && !c->want_out && tx_flush(c) < 0) {
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
