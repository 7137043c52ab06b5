/* iscsi_cmdsn.c - the session-wide CmdSN order of the connections of a session.
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
 * The PDUs a classification takes or releases are delivered by iscsi_conn.c
 * (session_advance).
 */
#include "iscsi_conn_int.h"

#include <stdlib.h>

/* Bit of CmdSN sn in s->consumed: 0..63 for ExpCmdSN..ExpCmdSN+63, else -1. */
static int sn_bit(const struct iscsi_session *s, uint32_t sn)
{
	uint32_t d = sn - s->exp_cmdsn;

	return d < 64 ? (int)d : -1;
}

/* ExpCmdSN moves past one CmdSN. */
void iscsi_cmdsn_take(struct iscsi_session *s)
{
	s->exp_cmdsn++;
	s->consumed >>= 1;
}

/* sn counts as received with nothing to deliver (if still ahead, within the window). */
void iscsi_cmdsn_consume(struct iscsi_session *s, uint32_t sn)
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

void iscsi_cmdsn_held_insert(struct iscsi_session *s, struct iscsi_held *n)
{
	struct iscsi_held **pp = &s->held;

	while (*pp && iscsi_sn_lt((*pp)->cmdsn, n->cmdsn))
		pp = &(*pp)->next;
	n->next = *pp;
	*pp = n;
}

void iscsi_cmdsn_held_unlink(struct iscsi_session *s, struct iscsi_held *n)
{
	for (struct iscsi_held **pp = &s->held; *pp; pp = &(*pp)->next)
		if (*pp == n) {
			*pp = n->next;
			break;
		}
	n->next = NULL;
}

/* Where a complete non-immediate PDU with CmdSN sn goes; SN_NOW takes the CmdSN. */
int iscsi_cmdsn_classify(struct iscsi_session *s, uint32_t sn)
{
	int b;

	if (sn == s->exp_cmdsn && !(s->consumed & 1)) {
		iscsi_cmdsn_take(s);
		return SN_NOW;
	}
	b = sn_bit(s, sn);
	if (b > 0 && !iscsi_sn_lt(s->max_cmdsn, sn) && !(s->consumed >> b & 1) &&
	    !held_has(s, sn))
		return SN_HOLD;
	return SN_DROP;
}

/* 1 if a SCSI command header with CmdSN sn may be received (SN_NOW or SN_HOLD). */
int iscsi_cmdsn_acceptable(const struct iscsi_session *s, uint32_t sn)
{
	int b = sn_bit(s, sn);

	return b >= 0 && !iscsi_sn_lt(s->max_cmdsn, sn) && !(s->consumed >> b & 1) &&
	       !held_has(s, sn);
}

/* Drop the PDU copies of c waiting in the session's CmdSN order: their CmdSNs count as
 * received (c closes or logs out). Its waiting tasks go with the tasks. */
void iscsi_cmdsn_held_drop_conn(struct iscsi_session *s, struct iscsi_conn *c)
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
		iscsi_cmdsn_consume(s, h->cmdsn);
		free(container_of(h, struct iscsi_held_pdu, node));
	}
}
