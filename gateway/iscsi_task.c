/* iscsi_task.c - the task slots of a connection: allocation and release, buffers,
 * execution in a worker, the response queued once it is back, lookups by Initiator
 * Task Tag.
 *
 * Tasks: a fixed array per connection (CmdSN window + immediate reserve). A task's
 * Target Transfer Tag is gen << 16 | index, so a stale TTT is recognised. The CmdSN
 * window is the session's: at most ISCSI_QUEUE_DEPTH commands in all its connections.
 */
#include "iscsi_conn_int.h"

#include <errno.h>
#include <string.h>

#include "bufpool.h"

struct iscsi_task *iscsi_task_alloc(struct iscsi_conn *c)
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

void iscsi_task_free(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;
	struct iscsi_session *s = c->sess;

	if (s) {
		s->ntasks--;
		if (t->waiting) { /* never delivered: its CmdSN counts as received */
			iscsi_cmdsn_held_unlink(s, &t->held);
			t->waiting = 0;
			iscsi_cmdsn_consume(s, t->cmdsn);
		} else if (t->state == TASK_RECV && !t->cmd_in && !t->immediate) {
			iscsi_cmdsn_consume(s, t->cmdsn); /* freed before its PDU was complete */
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
	iscsi_tx_unlink(c, &t->txi);
	if (t->buf)
		bufpool_put(t->pool, t->buf);
	t->buf = NULL;
	t->state = TASK_FREE;
	c->free_idx[c->nfree++] = t->idx;
}

int iscsi_task_get_buf(struct iscsi_conn *c, struct iscsi_task *t, uint32_t need)
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
void iscsi_task_precompute(struct iscsi_task *t, uint8_t key, uint8_t asc, uint8_t ascq)
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
void iscsi_task_progress(struct iscsi_task *t)
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

struct iscsi_task *iscsi_task_find_itt(struct iscsi_conn *c, uint32_t itt)
{
	for (unsigned i = 0; i < ISCSI_NTASKS; i++)
		if (c->tasks[i].state != TASK_FREE && c->tasks[i].itt == itt)
			return &c->tasks[i];
	return NULL;
}

/* A task of the session by its Initiator Task Tag (unique in the session), on any of
 * its connections. */
struct iscsi_task *iscsi_task_session_find_itt(struct iscsi_session *s, uint32_t itt)
{
	for (struct iscsi_conn *o = s->conns; o; o = o->sess_next) {
		struct iscsi_task *t = iscsi_task_find_itt(o, itt);

		if (t)
			return t;
	}
	return NULL;
}

void iscsi_conn_task_done(struct iscsi_task *t)
{
	struct iscsi_conn *c = t->conn;
	struct tx_ctrl *x = t->tmf;

	c->busy--;
	t->tmf = NULL;
	if (c->dead) {
		iscsi_task_free(t);
		if (x)
			iscsi_tmf_ctrl_put(x);
		if (!c->busy)
			iscsi_conn_zombie(c);
		return;
	}
	if (t->aborted)
		iscsi_task_free(t);
	else
		task_respond(t);
	if (x)
		iscsi_tmf_ctrl_put(x);
}
