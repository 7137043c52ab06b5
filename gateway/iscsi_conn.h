/* iscsi_conn.h - one iSCSI connection: receive state machine, send queue, tasks and
 * the full feature phase (SCSI commands, R2T/Data-Out, Data-In, NOP, TMF, Text, Logout).
 * A connection belongs to one session (iscsi_session.h), with which it shares the CmdSN
 * window and order, the nexus and the task management scope; its tasks, StatSN, digests
 * and MaxRecvDataSegmentLength are its own.
 *
 * Everything here runs on the network thread, except that a task's scsi_cmd is handed
 * to a worker between submit and completion (state TASK_EXEC), when the network thread
 * does not touch it. A connection with tasks in a worker is freed only when the last
 * one comes back (busy == 0).
 *
 * Implemented by iscsi_conn.c (receive, full feature phase handlers, lifecycle),
 * iscsi_task.c, iscsi_tmf.c, iscsi_tx.c and iscsi_cmdsn.c (iscsi_conn_int.h).
 */
#ifndef CAIRN_ISCSI_CONN_H
#define CAIRN_ISCSI_CONN_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "iscsi_login.h"
#include "iscsi_pdu.h"
#include "iscsi_session.h"
#include "scsi.h"
#include "work_pool.h"

#define ISCSI_NTASKS (ISCSI_QUEUE_DEPTH + ISCSI_TASKS_EXTRA)
#define ISCSI_TX_SLOTS 32
#define ISCSI_RBUF (64u << 10)

/* An entry of a connection's send queue. */
enum tx_kind { TXI_CTRL, TXI_R2T, TXI_RESP };

struct tx_item {
	struct tx_item *next;
	uint8_t kind;
	uint8_t queued;
};

/* A control PDU built whole (login, text, NOP-In, TMF, logout, reject, busy status). */
struct tx_ctrl {
	struct tx_item it;
	uint8_t bhs[ISCSI_BHS_LEN]; /* StatSN/ExpCmdSN/MaxCmdSN are filled when sent */
	int adv_statsn;             /* takes a StatSN (else carries the current one) */
	int no_sn;                  /* login: bytes 24-35 are set by the builder */
	int close_after;            /* close the connection once this PDU is written */
	int pending;                /* TMF: aborted tasks still running */
	int start_digests;          /* final Login Response: digests apply after it */
	int reset;                  /* TMF: 1 LUN RESET, 2 TARGET RESET once drained */
	uint64_t reset_lun;
	/* a TMF or Logout Response waiting for tasks (pending > 0), possibly of other
	 * connections of the session: queued on owner when the last one returns, or freed
	 * when owner closed meanwhile */
	struct iscsi_conn *owner;   /* NULL once the owner closed */
	struct iscsi_session *sess; /* for the reset (outlives the tasks it waits for) */
	struct tx_ctrl *wait_next;  /* owner->ctrl_wait */
	uint32_t dlen;
	uint8_t data[];
};

enum task_state { TASK_FREE, TASK_RECV, TASK_EXEC, TASK_SEND };

struct iscsi_task {
	struct work_item work;
	struct iscsi_task *done_next;
	struct iscsi_conn *conn;
	struct tx_item txi;
	struct scsi_cmd cmd;
	int state;
	uint16_t idx, gen;
	uint8_t lun[8];
	uint32_t itt, cmdsn, edtl;
	int is_write, is_read;
	void *buf;
	struct bufpool *pool;
	/* Data-Out collection */
	uint32_t recv_bytes;
	uint32_t next_off;       /* BufferOffset the next Data-Out must carry (in order) */
	uint32_t exp_datasn;     /* DataSN the next Data-Out of the sequence must carry */
	int unsol_open;          /* unsolicited Data-Out still expected (F not seen) */
	int sol_started;
	uint32_t sol_off;        /* data solicited so far (planned R2Ts) */
	uint32_t r2t_emit_off;   /* offset of the next R2T to send */
	unsigned r2t_queued;     /* planned R2Ts not sent yet */
	unsigned r2t_open;       /* R2T sequences not finished */
	uint32_t r2tsn;
	int precomputed;         /* status set by the transport; no scsi_exec */
	/* Data-In / response */
	uint32_t tx_off;
	uint32_t datasn;
	uint8_t sense_buf[2 + SCSI_SENSE_MAX];
	/* Task management */
	int aborted;
	struct tx_ctrl *tmf;     /* TMF or Logout Response waiting for this task */
	/* CmdSN order */
	int immediate;           /* I bit: outside the CmdSN order */
	int cmd_in;              /* the command PDU (with its immediate data) is in */
	int waiting;             /* in the session's held list (above a CmdSN gap) */
	struct iscsi_held held;
};

/* A PDU ready to be written; iov points into hdr/trail and task or ctrl data. */
struct tx_pdu {
	uint8_t hdr[ISCSI_BHS_LEN + ISCSI_DIGEST_LEN];
	uint8_t trail[8];
	struct iovec iov[3];
	uint8_t niov, cur;
	struct tx_item *done;    /* finished when this PDU is written */
};

enum conn_phase { CONN_LOGIN, CONN_FULL, CONN_LOGOUT };

/* A connection that has not finished login this long after accept is dropped. */
#define ISCSI_LOGIN_TIMEOUT_NS (15ULL * 1000000000ULL)
enum rx_state { RX_BHS, RX_AHS, RX_DATA, RX_TRAIL };

struct iscsi_conn {
	int ep_tag;                  /* must be first: epoll dispatch tag */
	struct iscsi_conn *next;     /* srv->conns */
	struct iscsi_server *srv;
	int fd;
	char peer[64];               /* "ip:port" for logs */
	struct sockaddr_storage peer_ss; /* the initiator's address (ACLs) */
	char local[64];              /* portal address for TargetAddress */
	int phase;
	uint64_t born_ns;             /* monotonic time of accept (login timeout) */
	int closing;                 /* stop I/O; free when busy == 0 */
	int dead;                    /* socket closed, unlinked */
	int close_after_tx;
	int halt_rx;                 /* read nothing more (closing after a reply) */
	int want_out;                /* EPOLLOUT registered */
	unsigned busy;               /* tasks in a worker */
	int drain_close;             /* close once busy == 0 and all is sent (the
				      * session is logged out from another connection) */
	struct iscsi_session *sess;  /* set at login; kept (a reference) until freed */
	struct iscsi_conn *sess_next; /* sess->conns, while in full feature phase */
	struct iscsi_login login;
	int hd, dd;                  /* digests in force on received PDUs */
	int tx_hd, tx_dd;            /* digests in force on sent PDUs */
	int neg_hd, neg_dd;          /* negotiated digests (sent PDUs start after login) */
	uint32_t max_send_dsl;       /* the initiator's MaxRecvDataSegmentLength here */
	uint32_t statsn;
	uint16_t cid;
	/* counters: written by the network thread, read by listings (relaxed atomics) */
	uint64_t n_cmds, bytes_read, bytes_written;

	/* receive */
	int rx_state;
	uint8_t rx_hdr[ISCSI_BHS_LEN + ISCSI_AHS_MAX + ISCSI_DIGEST_LEN];
	uint8_t *rx_ptr;             /* where the pending bytes go (NULL = discard) */
	uint32_t rx_left;
	uint8_t *rx_data;            /* data segment destination of the current PDU */
	uint32_t rx_dlen;
	uint8_t rx_trail[8];
	struct iscsi_task *rx_task;  /* SCSI command / Data-Out being received */
	int rx_drop;                 /* current PDU is dropped after its data */
	uint8_t *scratch;            /* data of non-SCSI PDUs, ISCSI_OUR_MRDSL bytes */
	uint8_t *rbuf;               /* read staging, ISCSI_RBUF bytes */
	uint32_t rpos, rlen;

	/* send */
	struct tx_item *txq_head, *txq_tail;
	struct tx_pdu txr[ISCSI_TX_SLOTS];
	unsigned tx_head, tx_count;

	/* tasks */
	struct iscsi_task tasks[ISCSI_NTASKS];
	uint16_t free_idx[ISCSI_NTASKS];
	unsigned nfree;
	struct tx_ctrl *ctrl_wait;   /* its TMF/Logout Responses waiting for tasks */

	/* text exchange in full feature phase */
	struct iscsi_textbuf text_in, text_out;
	size_t text_off;
	uint32_t text_ttt;
};

/* Create a connection on an accepted non-blocking socket (owned from now on) and
 * register it with srv->epfd. */
int iscsi_conn_create(struct iscsi_server *srv, int fd, struct iscsi_conn **out);
/* Readable / writable events. A negative return means: close the connection. */
int iscsi_conn_on_read(struct iscsi_conn *c);
int iscsi_conn_on_write(struct iscsi_conn *c);
/* Close the socket and drop all work; frees c now or when its last task returns. */
void iscsi_conn_close(struct iscsi_conn *c);
/* A task came back from a worker. */
void iscsi_conn_task_done(struct iscsi_task *t);
/* Called after each event batch: close connections marked closing (or whose target
 * was removed), flush output, free closed connections. */
void iscsi_conn_reap(struct iscsi_server *srv);

/* For iscsi_login.c: allocate a control PDU with dlen bytes of data (zeroed BHS). */
struct tx_ctrl *iscsi_conn_ctrl_new(uint32_t dlen);
void iscsi_conn_queue(struct iscsi_conn *c, struct tx_item *it);
/* Queue a Reject of the current PDU's header. */
int iscsi_conn_reject(struct iscsi_conn *c, uint8_t reason);
/* Fill the I_T nexus of a new session. */
void iscsi_nexus_fill(struct iscsi_session *s);
/* Enter the full feature phase as a connection of session s (new or joined). */
void iscsi_conn_enter_ffp(struct iscsi_conn *c, struct iscsi_session *s);
/* Close every connection of s (session reinstatement). */
void iscsi_session_close_conns(struct iscsi_session *s);

#endif
