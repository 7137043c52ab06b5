/* gateway.h - the iSCSI target daemon core: portals, targets, sessions.
 *
 * One network thread runs an epoll loop over the listening sockets and every
 * connection (non-blocking). Complete SCSI commands go to a worker pool; workers
 * execute them (scsi_exec) and hand the result back to the network thread through an
 * eventfd, which sends Data-In/Response PDUs. Targets can be added and removed while
 * the gateway runs. All functions return 0 or a negative errno.
 */
#ifndef CAIRN_GATEWAY_H
#define CAIRN_GATEWAY_H

#include <stdint.h>

#include "acl.h"
#include "iscsi_chap.h"
#include "lun.h"

#define GW_IQN_MAX 223

struct gateway;

struct gateway_opts {
	const char *listen;   /* "127.0.0.1:3260", "[::1]:3260" or "0.0.0.0:3260" */
	unsigned workers;     /* SCSI worker threads; 0 = 2 * cores, at least 4 */
	unsigned max_connections; /* MaxConnections a session may negotiate (Multiple
				   * Connections per Session), 1..GW_MAX_CONNECTIONS;
				   * 0 = 4 */
};

#define GW_MAX_CONNECTIONS 64

/* Bind the portal and start the threads. -EADDRINUSE if the port is taken. */
int gateway_start(const struct gateway_opts *o, struct gateway **out);
/* Export a target with luns[0..nluns) (LUN i = luns[i]; the lun structs must outlive
 * the target). -EEXIST if the IQN is taken. */
int gateway_add_target(struct gateway *g, const char *iqn, struct lun **luns, uint32_t nluns);
/* The same, with its security policy (gateway_set_security) in force from the start. */
struct gw_security;
int gateway_add_target_secure(struct gateway *g, const char *iqn, struct lun **luns,
			      uint32_t nluns, const struct gw_security *sec);
/* Remove a target: its sessions are dropped first. */
int gateway_remove_target(struct gateway *g, const char *iqn);
/* The bound port of the first portal (useful with port 0). */
int gateway_port(const struct gateway *g);

/* Who may log in to a target (or open a discovery session), copied by the gateway. */
struct gw_security {
	const struct chap_cred *accounts; /* CHAP accounts allowed; 0 of them: no CHAP */
	unsigned naccounts;
	const struct chap_cred *mutual;   /* the target's own CHAP credentials, or NULL */
	const struct acl_rule *rules;     /* first match wins (ignored for discovery) */
	unsigned nrules;
	int default_access;               /* enum acl_access when no rule matches */
};
/* Replace the policy of target iqn (NULL: discovery sessions). New logins use it at
 * once; live sessions it now denies are closed. A new target starts with no CHAP and
 * full access. -ENOENT unknown target, -ENOMEM. */
int gateway_set_security(struct gateway *g, const char *iqn, const struct gw_security *sec);

/* Listen on one more portal ("ADDR:PORT" as in gateway_opts). -EEXIST if listed,
 * -EINVAL bad address, -EADDRINUSE, other bind errors. */
int gateway_add_portal(struct gateway *g, const char *listen);
/* Stop listening on a portal (as given to add/start); its connections stay. -ENOENT. */
int gateway_remove_portal(struct gateway *g, const char *listen);

/* One connection of a live session, for listings. */
struct gw_conn_info {
	uint16_t cid;
	char peer[64];                 /* "ip:port" of the initiator */
	char portal[64];               /* "ip:port" of the portal it came in on */
	uint64_t commands, bytes_read, bytes_written;
};

/* A snapshot of one live session, for listings. */
struct gw_session_info {
	char initiator[GW_IQN_MAX + 1];
	char peer[64];                 /* "ip:port" of the initiator (leading login) */
	char target[GW_IQN_MAX + 1];   /* "" for a discovery session */
	uint8_t isid[6];
	uint16_t tsih;
	int read_only;
	char chap_user[CHAP_NAME_MAX]; /* "" without CHAP */
	uint64_t commands, bytes_read, bytes_written; /* all its connections, past ones too */
	uint32_t max_connections;      /* negotiated MaxConnections */
	unsigned nconns;               /* connections in full feature phase, login order */
	struct gw_conn_info conns[GW_MAX_CONNECTIONS];
};
/* Call cb for every live session (under the session lock: cb must not call back into
 * the gateway). Stops at and returns cb's first non-zero result. */
int gateway_list_sessions(struct gateway *g,
			  int (*cb)(void *arg, const struct gw_session_info *si), void *arg);
/* Close every session and connection, join the threads, free everything. */
void gateway_stop(struct gateway *g);

#endif
