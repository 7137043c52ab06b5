/* iscsi_tx.c - the send side of a connection: its queue of items and the sender.
 *
 * Send: items (control PDUs, a task's R2Ts, a task's Data-In + status) wait in a FIFO.
 * The sender turns them into at most ISCSI_TX_SLOTS prepared PDUs whose headers live in
 * the slot and whose data point into the task buffer, and writes them with one
 * sendmsg() per batch, keeping partial-write state across EPOLLOUT events.
 * StatSN, ExpCmdSN and MaxCmdSN are stamped when a PDU is prepared, so they go out
 * in order.
 */
#include "iscsi_conn_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

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

void iscsi_tx_unlink(struct iscsi_conn *c, struct tx_item *it)
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
		iscsi_task_free(container_of(it, struct iscsi_task, txi));
	}
}

/* Write as much as the socket takes. 0, or negative: close the connection. */
int iscsi_tx_flush(struct iscsi_conn *c)
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
					iscsi_conn_ep_update(c);
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
		iscsi_conn_ep_update(c);
	}
	return c->close_after_tx ? -ECONNRESET : 0;
}

int iscsi_conn_on_write(struct iscsi_conn *c)
{
	return iscsi_tx_flush(c);
}
