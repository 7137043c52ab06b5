/* iscsi_login.h - the login phase (RFC 7143 section 6): SecurityNegotiation (0) ->
 * LoginOperationalNegotiation (1) -> FullFeaturePhase (3), driven by the T bit and
 * CSG/NSG of each Login Request. The security stage authenticates with AuthMethod
 * (None or CHAP, as the target's policy requires; see iscsi_chap.h), and the target's
 * ACL decides at the first request whether the initiator may log in at all
 * (authorization failure 0x0202) and whether it may write.
 */
#ifndef CAIRN_ISCSI_LOGIN_H
#define CAIRN_ISCSI_LOGIN_H

#include <stdint.h>

#include "iscsi_chap.h"
#include "iscsi_text.h"

struct iscsi_conn;
struct iscsi_server;
struct iscsi_target;

#define ISCSI_STAGE_SECURITY 0
#define ISCSI_STAGE_OPERATIONAL 1
#define ISCSI_STAGE_FULL 3

struct iscsi_login {
	struct iscsi_neg neg;
	int started;                 /* first Login Request seen */
	int stage;                   /* current stage (CSG we accepted) */
	int declared_tpgt;
	uint8_t isid[6];
	uint16_t tsih;
	uint32_t itt;
	uint32_t cmdsn;
	struct iscsi_target *target; /* reference held during login */
	struct iscsi_secpol *sec;    /* policy reference held during login */
	struct chap_exchange chap;
	int auth_answered;           /* AuthMethod answered */
	int read_only;               /* the ACL grants read-only access */
	struct iscsi_textbuf in;     /* keys accumulated across C-bit PDUs */
};

/* Handle a Login Request (c->rx_hdr, data in c->scratch[0..dlen)). Queues the Login
 * Response. Returns 0, or a negative errno when the connection must close after the
 * response already queued (failed login). */
int iscsi_login_handle(struct iscsi_conn *c, const uint8_t *data, uint32_t dlen);
/* Release what an unfinished login holds. */
void iscsi_login_cleanup(struct iscsi_login *l, struct iscsi_server *srv);

#endif
