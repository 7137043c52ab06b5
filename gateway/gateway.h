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

#include "lun.h"

#define GW_IQN_MAX 223

struct gateway;

struct gateway_opts {
	const char *listen;   /* "127.0.0.1:3260", "[::1]:3260" or "0.0.0.0:3260" */
	unsigned workers;     /* SCSI worker threads; 0 = 2 * cores, at least 4 */
};

/* Bind the portal and start the threads. -EADDRINUSE if the port is taken. */
int gateway_start(const struct gateway_opts *o, struct gateway **out);
/* Export a target with luns[0..nluns) (LUN i = luns[i]; the lun structs must outlive
 * the target). -EEXIST if the IQN is taken. */
int gateway_add_target(struct gateway *g, const char *iqn, struct lun **luns, uint32_t nluns);
/* Remove a target: its sessions are dropped first. */
int gateway_remove_target(struct gateway *g, const char *iqn);
/* The bound port (useful with port 0). */
int gateway_port(const struct gateway *g);
/* Close every session and connection, join the threads, free everything. */
void gateway_stop(struct gateway *g);

#endif
