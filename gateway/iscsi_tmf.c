/* iscsi_tmf.c - task management (RFC 7143 11.5): aborting tasks, the TMF and Logout
 * Responses that wait for aborted tasks still in a worker (queued when the last one is
 * back, then the LUN or target reset they carry is done), and the Task Management
 * Function Request itself, which acts on the session's tasks on all its connections.
 */
#include "iscsi_conn_int.h"

#include <errno.h>
#include <stdlib.h>

#include "log.h"

static void tmf_reset(const struct tx_ctrl *x);

/* A TMF or Logout Response x of connection c waits for a task in a worker. */
void iscsi_tmf_task_wait(struct iscsi_task *t, struct tx_ctrl *x)
{
	if (t->state != TASK_EXEC || t->tmf || !x)
		return;
	t->tmf = x;
	x->pending++;
}

/* Abort one task for a TMF (x, or NULL): a task in a worker stops early and is
 * discarded when it returns (x waits for it); one still receiving is freed. */
void iscsi_tmf_task_abort(struct iscsi_task *t, struct tx_ctrl *x)
{
	switch (t->state) {
	case TASK_RECV:
		iscsi_task_free(t);
		break;
	case TASK_EXEC:
		t->aborted = 1;
		__atomic_store_n(&t->cmd.aborted, 1, __ATOMIC_RELAXED); /* a long wait stops */
		iscsi_tmf_task_wait(t, x);
		break;
	default: /* its response is already on its way */
		break;
	}
}

/* Queue x on its connection c now, or once the tasks it waits for are back. */
void iscsi_tmf_ctrl_send_when_done(struct iscsi_conn *c, struct tx_ctrl *x)
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
void iscsi_tmf_ctrl_put(struct tx_ctrl *x)
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
int iscsi_tmf_request(struct iscsi_conn *c, const uint8_t *h)
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

		t = iscsi_task_session_find_itt(s, iscsi_get32(h + 20));
		if (t) {
			iscsi_tmf_task_abort(t, x);
		} else if (!iscsi_sn_lt(ref, s->exp_cmdsn) && !iscsi_sn_lt(s->max_cmdsn, ref) &&
			   iscsi_sn_lt(ref, tsn)) {
			/* RFC 7143 11.5.1 b): not here (yet), within the window and sent before
			 * this request: the CmdSN counts as received, the task as aborted */
			iscsi_cmdsn_consume(s, ref);
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
					iscsi_tmf_task_abort(&o->tasks[i], x);
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
					iscsi_tmf_task_abort(&o->tasks[i], x);
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
	iscsi_tmf_ctrl_send_when_done(c, x);
	return 0;
}
