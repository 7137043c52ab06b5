/* iscsi_session.h - the server context shared by the transport modules, exported
 * targets, and iSCSI sessions with one or more connections (Multiple Connections per
 * Session at ErrorRecoveryLevel 0, RFC 7143 sections 4.2.2, 6.3, 7.1, 11.14).
 *
 * A session is named by InitiatorName + ISID + target (the I_T nexus) and numbered by
 * its TSIH. The leading login creates it; a login carrying its TSIH (same InitiatorName,
 * ISID and target, the target's ACL and CHAP passed again on that connection) adds a
 * connection, up to the negotiated MaxConnections; one with the CID of a live connection
 * of the session reinstates that connection (the old one is closed first, its tasks
 * ended as at ERL 0).
 *
 * Session-wide: the operational parameters of the leading login (p), the I_T nexus,
 * the CmdSN window (ExpCmdSN/MaxCmdSN) and the delivery of non-immediate PDUs in CmdSN
 * order across connections (held list). Per connection: StatSN, digests,
 * MaxRecvDataSegmentLength, and every task (connection allegiance: a command's R2T,
 * Data-Out, Data-In and response stay on the connection it came in on).
 *
 * Lifetime: a session lives while it has a connection in full feature phase; when the
 * last one closes (logout, drop, reinstatement) it ends (unlinked, no longer listed or
 * joinable). Its memory - the nexus that running tasks still use - is freed when the
 * last connection that belonged to it is freed (refs).
 *
 * Threading: targets and the completion list are under srv->lock; the sessions list
 * links, a session's connection list and the fixed fields read by listings are changed
 * under srv->sess_lock by the network thread; everything else (CmdSN state, tasks)
 * belongs to the network thread alone.
 */
#ifndef CAIRN_ISCSI_SESSION_H
#define CAIRN_ISCSI_SESSION_H

#include <pthread.h>
#include <stdint.h>

#include <sys/socket.h>

#include "acl.h"
#include "iscsi_chap.h"
#include "iscsi_text.h"
#include "lun.h"
#include "scsi.h"

struct iscsi_conn;
struct iscsi_task;
struct work_pool;
struct bufpool;

#define ISCSI_QUEUE_DEPTH 64   /* CmdSN window: non-immediate commands in flight */
#define ISCSI_TASKS_EXTRA 8    /* task slots reserved for immediate commands */
#define ISCSI_NPOOLS 3
#define ISCSI_MAX_CONNS_DEFAULT 4 /* MaxConnections the target offers unless set */
#define ISCSI_MAX_CONNS_CAP 64    /* highest settable MaxConnections */

/* First member of every object registered with srv->epfd. */
enum iscsi_ep_tag { ISCSI_EP_LISTEN = 1, ISCSI_EP_EVENT = 2, ISCSI_EP_CONN = 3 };

/* The security policy of one target (or of discovery): immutable once built, one
 * allocation, shared by reference (refs under srv->lock); replaced whole when the
 * configuration changes. Secrets are wiped when it is freed. */
struct iscsi_secpol {
	int refs;
	struct chap_policy chap;     /* accounts/mutual point into this allocation */
	struct chap_cred mutual;
	const struct acl_rule *rules;
	unsigned nrules;
	int default_access;          /* enum acl_access */
};

struct iscsi_target {
	struct iscsi_target *next;
	struct iscsi_secpol *sec;   /* never NULL; replaced under srv->lock */
	char iqn[ISCSI_NAME_MAX];
	struct lun **luns;          /* copy of the caller's array */
	struct scsi_lun_map map;
	int refs;                   /* sessions and logins using it (under srv->lock) */
	int removed;                /* no new logins; its sessions are being dropped */
};

struct iscsi_server {
	pthread_mutex_t lock;       /* targets, refs, done list, removal */
	pthread_cond_t cond;        /* a removed target's refs reached 0 */
	struct iscsi_target *targets;
	struct iscsi_secpol *disc_sec; /* discovery sessions (never NULL) */
	int recheck_acl;            /* a policy changed: drop sessions it now denies */
	pthread_mutex_t sess_lock;  /* sessions list links and fixed fields (for listing) */
	int epfd;                   /* network thread's epoll */
	int evfd;                   /* eventfd waking the network thread */
	struct work_pool *pool;
	struct bufpool *pools[ISCSI_NPOOLS]; /* ascending buffer sizes */
	struct iscsi_task *done_head, *done_tail; /* completed by workers, under lock */
	int drop_removed;           /* a target was removed: drop its sessions */
	struct iscsi_conn *conns;   /* network thread only */
	struct iscsi_conn *zombies; /* closed, freed at the end of the event batch */
	struct iscsi_session *sessions;
	uint16_t next_tsih;
	uint32_t max_conns;         /* MaxConnections offered; 0 = ISCSI_MAX_CONNS_DEFAULT */
};

/* A non-immediate PDU that came in above ExpCmdSN, waiting for the gap below it to be
 * filled (from any connection of the session). Kept in s->held, sorted by CmdSN. A SCSI
 * command waits as its task (node embedded in the task, which keeps receiving its
 * unsolicited data meanwhile); any other PDU as a copy (struct iscsi_held_pdu). */
struct iscsi_held {
	struct iscsi_held *next;
	struct iscsi_conn *conn;       /* the connection it came in on */
	struct iscsi_task *task;       /* SCSI command; NULL: an iscsi_held_pdu */
	uint32_t cmdsn;
};

struct iscsi_held_pdu {
	struct iscsi_held node;
	uint32_t dlen;
	uint8_t bhs[48];
	uint8_t data[];
};

struct iscsi_session {
	struct iscsi_session *next;
	struct iscsi_server *srv;
	struct iscsi_target *target;   /* NULL for a discovery session (holds a ref until
					* the session is freed) */
	struct iscsi_conn *conns;      /* connections in full feature phase (c->sess_next),
					* changed under srv->sess_lock */
	unsigned nconns;
	unsigned refs;                 /* connections not yet freed that belong to it */
	int ended;                     /* no connection left: unlinked from srv->sessions */
	int closing;                   /* a Logout closes the session: no new connection */
	struct scsi_nexus nexus;       /* the I_T nexus, for every connection's tasks */
	struct iscsi_held *held;       /* PDUs waiting for a CmdSN gap, ascending CmdSN */
	uint64_t consumed;             /* bit i: CmdSN ExpCmdSN + i counts as received with
					* nothing left to do (its connection closed, or an
					* ABORT TASK named it before it came) */
	unsigned ntasks;               /* tasks and held PDUs of all its connections (the
					* CmdSN window: MaxCmdSN = ExpCmdSN - 1 + free) */
	int type;                      /* enum iscsi_session_type */
	uint8_t isid[6];
	uint16_t tsih;
	char initiator_name[ISCSI_NAME_MAX];
	struct iscsi_params p;
	uint32_t exp_cmdsn;
	uint32_t max_cmdsn;
	char target_iqn[ISCSI_NAME_MAX]; /* "" for discovery (stays after target is cleared) */
	char peer[64];                 /* initiator address "ip:port" of the leading login */
	char chap_user[CHAP_NAME_MAX]; /* CHAP user that logged in ("" without CHAP) */
	int read_only;                 /* ACL gave read-only access */
	/* counters: written by the network thread, read by listings (relaxed atomics) */
	uint64_t n_cmds, bytes_read, bytes_written;
};

/* Look a live target up and take a reference; NULL if unknown or removed. */
struct iscsi_target *iscsi_server_get_target(struct iscsi_server *srv, const char *iqn);
void iscsi_server_put_target(struct iscsi_server *srv, struct iscsi_target *t);
/* Append TargetName=..., TargetAddress=addr,1 for every live target (or only for
 * `only` when non-NULL) that the ACL lets initiator (from peer) see. */
int iscsi_server_send_targets(struct iscsi_server *srv, const char *only, const char *addr,
			      const char *initiator, const struct sockaddr *peer,
			      struct iscsi_textbuf *out);
/* Take a reference on the policy of t (NULL: discovery); put drops it. */
struct iscsi_secpol *iscsi_secpol_get(struct iscsi_server *srv, struct iscsi_target *t);
void iscsi_secpol_put(struct iscsi_server *srv, struct iscsi_secpol *p);
/* Free a policy whose refs reached 0 (caller holds no lock). */
void iscsi_secpol_free(struct iscsi_secpol *p);

/* Worker side: hand a finished task back to the network thread. */
void iscsi_server_complete(struct iscsi_server *srv, struct iscsi_task *t);
/* Network thread: take the list of completed tasks (linked by done_next). */
struct iscsi_task *iscsi_server_take_done(struct iscsi_server *srv);
/* Wake the network thread. */
void iscsi_server_wake(struct iscsi_server *srv);

/* Create a session for a finished leading login (takes over the target reference);
 * it has no connection until iscsi_conn_enter_ffp(). */
int iscsi_session_create(struct iscsi_server *srv, const struct iscsi_neg *neg,
			 const uint8_t isid[6], uint32_t cmdsn, struct iscsi_target *t,
			 struct iscsi_session **out);
/* The live session of this initiator name + ISID on target t (NULL: discovery), for
 * reinstatement; NULL if none. */
struct iscsi_session *iscsi_session_find(struct iscsi_server *srv, const char *initiator,
					 const uint8_t isid[6], const struct iscsi_target *t);
/* The live session numbered tsih; NULL if none. */
struct iscsi_session *iscsi_session_by_tsih(struct iscsi_server *srv, uint16_t tsih);
/* The MaxConnections this server offers. */
uint32_t iscsi_server_max_conns(const struct iscsi_server *srv);
/* Unlink from the sessions list (no connection left); idempotent. */
void iscsi_session_end(struct iscsi_session *s);
/* A connection that belonged to s is freed: the last one frees s (the nexus is lost
 * for the SCSI layer, the target reference dropped). */
void iscsi_session_put(struct iscsi_session *s);
/* End and free now, whatever refers to it (a harness that owns its only connection). */
void iscsi_session_destroy(struct iscsi_session *s);
/* Raise MaxCmdSN to ExpCmdSN - 1 + (free command slots of the session) (never lowers). */
void iscsi_session_update_window(struct iscsi_session *s);

#endif
