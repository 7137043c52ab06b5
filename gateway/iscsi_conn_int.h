/* iscsi_conn_int.h - declarations shared by the files of one iSCSI connection. Not a
 * public contract: iscsi_conn.h is.
 *
 *   iscsi_conn.c   receive, the full feature phase handlers, lifecycle
 *   iscsi_task.c   a connection's task slots: allocation, buffers, execution, response
 *   iscsi_tmf.c    aborting tasks, responses waiting for them, task management
 *   iscsi_tx.c     the send queue and the sender
 *   iscsi_cmdsn.c  the session-wide CmdSN order
 *
 * Everything here runs on the network thread (iscsi_conn.h).
 */
#ifndef CAIRN_ISCSI_CONN_INT_H
#define CAIRN_ISCSI_CONN_INT_H

#include <stddef.h>
#include <stdint.h>

#include "iscsi_conn.h"

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))
#define SUB "iscsi"
#define MIN_U32(a, b) ((uint32_t)((a) < (b) ? (a) : (b)))

/* ---- iscsi_conn.c ---- */

/* A closed connection with no task left: freed by iscsi_conn_reap(). */
void iscsi_conn_zombie(struct iscsi_conn *c);
/* Register c's epoll interest: EPOLLIN unless halt_rx, EPOLLOUT if want_out (nothing
 * once the socket is closed). */
void iscsi_conn_ep_update(struct iscsi_conn *c);

/* ---- iscsi_cmdsn.c: CmdSN order (session-wide) ---- */

enum { SN_NOW, SN_HOLD, SN_DROP };

/* ExpCmdSN moves past one CmdSN. */
void iscsi_cmdsn_take(struct iscsi_session *s);
/* sn counts as received with nothing to deliver (if still ahead, within the window). */
void iscsi_cmdsn_consume(struct iscsi_session *s, uint32_t sn);
/* Insert n into s->held, kept in ascending CmdSN order. */
void iscsi_cmdsn_held_insert(struct iscsi_session *s, struct iscsi_held *n);
/* Remove n from s->held (nothing if it is not there). */
void iscsi_cmdsn_held_unlink(struct iscsi_session *s, struct iscsi_held *n);
/* Where a complete non-immediate PDU with CmdSN sn goes; SN_NOW takes the CmdSN. */
int iscsi_cmdsn_classify(struct iscsi_session *s, uint32_t sn);
/* 1 if a SCSI command header with CmdSN sn may be received (SN_NOW or SN_HOLD). */
int iscsi_cmdsn_acceptable(const struct iscsi_session *s, uint32_t sn);
/* Drop the PDU copies of c waiting in the session's CmdSN order: their CmdSNs count as
 * received (c closes or logs out). Its waiting tasks go with the tasks. */
void iscsi_cmdsn_held_drop_conn(struct iscsi_session *s, struct iscsi_conn *c);

/* ---- iscsi_task.c: tasks ---- */

/* A free task slot of c in state TASK_RECV (next generation, counted in the session's
 * tasks), or NULL when all are in use. */
struct iscsi_task *iscsi_task_alloc(struct iscsi_conn *c);
/* Return t's slot and buffer; unqueue it. A CmdSN it held back or had not completed
 * counts as received; a PDU of it still being received is read and discarded. */
void iscsi_task_free(struct iscsi_task *t);
/* Give t a buffer of at least need bytes from the first pool of c->srv->pools that is
 * large enough and has one free: 0, or -EBUSY when none has. */
int iscsi_task_get_buf(struct iscsi_conn *c, struct iscsi_task *t, uint32_t need);
/* The transport decides the outcome itself (no scsi_exec). */
void iscsi_task_precompute(struct iscsi_task *t, uint8_t key, uint8_t asc, uint8_t ascq);
/* Advance a write: solicit what is missing with R2Ts, or execute once all is in. */
void iscsi_task_progress(struct iscsi_task *t);
/* The task of c with Initiator Task Tag itt, or NULL. */
struct iscsi_task *iscsi_task_find_itt(struct iscsi_conn *c, uint32_t itt);
/* A task of the session by its Initiator Task Tag (unique in the session), on any of
 * its connections. */
struct iscsi_task *iscsi_task_session_find_itt(struct iscsi_session *s, uint32_t itt);

/* ---- iscsi_tmf.c: task management ---- */

/* A TMF or Logout Response x of connection c waits for a task in a worker. */
void iscsi_tmf_task_wait(struct iscsi_task *t, struct tx_ctrl *x);
/* Abort one task for a TMF (x, or NULL): a task in a worker stops early and is
 * discarded when it returns (x waits for it); one still receiving is freed. */
void iscsi_tmf_task_abort(struct iscsi_task *t, struct tx_ctrl *x);
/* Queue x on its connection c now, or once the tasks it waits for are back. */
void iscsi_tmf_ctrl_send_when_done(struct iscsi_conn *c, struct tx_ctrl *x);
/* A task x waited for is back. */
void iscsi_tmf_ctrl_put(struct tx_ctrl *x);
/* A Task Management Function Request with header h (complete, in CmdSN order): acts
 * on the session's tasks, on all its connections; queues the response. 0 or -ENOMEM. */
int iscsi_tmf_request(struct iscsi_conn *c, const uint8_t *h);

/* ---- iscsi_tx.c: send ---- */

/* Take it out of c's send queue (nothing if it is not queued). */
void iscsi_tx_unlink(struct iscsi_conn *c, struct tx_item *it);
/* Write as much as the socket takes. 0, or negative: close the connection. */
int iscsi_tx_flush(struct iscsi_conn *c);

#endif
