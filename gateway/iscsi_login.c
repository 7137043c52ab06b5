/* iscsi_login.c - login phase state machine (RFC 7143 sections 6, 11.12, 11.13).
 *
 * Login Request byte 1: T (0x80, transit), C (0x40, text continues), CSG (bits 3-2),
 * NSG (bits 1-0). Stages: 0 SecurityNegotiation, 1 LoginOperationalNegotiation,
 * 3 FullFeaturePhase. The target answers each request with one Login Response; it
 * agrees to every transit the initiator asks for once the stage's requirements are
 * met. The first request fixes ISID, TSIH, CID and the initial StatSN (its ExpStatSN),
 * and, once checked (target, ACL, policy), SessionType, InitiatorName and TargetName: a
 * later request may repeat them, not change them. An answer longer than one login PDU
 * (8192 bytes) is refused rather than continued.
 * When the final response (T=1, NSG=3) of a leading login (TSIH 0) is queued, a session
 * is created with a fresh TSIH; a live session of the same initiator name + ISID +
 * target is reinstated (all its connections closed) first.
 * A login with a TSIH adds a connection to that session (RFC 7143 5.3, 6.3): it passes
 * the target's ACL (by its InitiatorName and its own address) and CHAP exactly as a
 * leading login does, must name the session's InitiatorName, ISID, target and type
 * (else 0x020a session does not exist), may not give more access than the session has
 * (a read-only ACL result or another CHAP user: 0x0202), and may not exceed the
 * negotiated MaxConnections (0x0206 too many connections) unless its CID is one of the
 * session's: then it reinstates that connection, which is closed (its tasks ended as at
 * ERL 0) once the new one is authenticated. Its Leading Only keys are Irrelevant; its
 * digests and MaxRecvDataSegmentLength are its own.
 * Digests start with the first PDU after the final response. A failed login gets a
 * response with a non-zero status class and the connection is closed.
 */
#include "iscsi_login.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "acl.h"
#include "iscsi_conn.h"
#include "log.h"

#define SUB "login"

void iscsi_login_cleanup(struct iscsi_login *l, struct iscsi_server *srv)
{
	iscsi_server_put_target(srv, l->target);
	l->target = NULL;
	iscsi_secpol_put(srv, l->sec);
	l->sec = NULL;
	OPENSSL_cleanse(&l->chap, sizeof(l->chap));
	iscsi_textbuf_free(&l->in);
}

static int respond(struct iscsi_conn *c, uint8_t flags, uint16_t status, uint16_t tsih,
		   const struct iscsi_textbuf *text, int final)
{
	struct iscsi_login *l = &c->login;
	uint32_t dlen = text ? (uint32_t)text->len : 0;
	struct tx_ctrl *x = iscsi_conn_ctrl_new(dlen);

	if (!x)
		return -ENOMEM;
	x->bhs[0] = ISCSI_OP_LOGIN_RSP;
	x->bhs[1] = flags;
	x->bhs[2] = 0x00; /* VersionMax */
	x->bhs[3] = 0x00; /* VersionActive */
	memcpy(x->bhs + 8, l->isid, 6);
	iscsi_put16(x->bhs + 14, tsih);
	iscsi_put32(x->bhs + 16, l->itt);
	x->bhs[36] = status >> 8;
	x->bhs[37] = status & 0xff;
	x->adv_statsn = 1;
	x->start_digests = final;
	if (dlen)
		memcpy(x->data, text->buf, dlen);
	iscsi_conn_queue(c, &x->it);
	return 0;
}

static int fail(struct iscsi_conn *c, uint16_t status)
{
	struct iscsi_login *l = &c->login;
	int ret;

	log_warn(SUB, "%s: login of '%s' to '%s' refused: status 0x%04x", c->peer,
		 l->neg.initiator_name, l->neg.target_name, status);
	ret = respond(c, (uint8_t)(l->stage << 2), status, 0, NULL, 0);
	if (!ret)
		((struct tx_ctrl *)c->txq_tail)->close_after = 1;
	return -EACCES;
}

/* May this login join the session of its TSIH? A login status (0: yes, *out set). */
static int join_check(struct iscsi_conn *c, struct iscsi_session **out)
{
	struct iscsi_login *l = &c->login;
	struct iscsi_session *s = iscsi_session_by_tsih(c->srv, l->tsih);
	struct iscsi_conn *o;

	if (!s || s->closing || s->type != l->neg.session_type || memcmp(s->isid, l->isid, 6) ||
	    strcmp(s->initiator_name, l->neg.initiator_name) || s->target != l->target) {
		log_warn(SUB, "%s: '%s' asks to add a connection to session tsih %u, which it "
			 "does not have", c->peer, l->neg.initiator_name, l->tsih);
		return ISCSI_LOGIN_NO_SESSION;
	}
	for (o = s->conns; o && o->cid != c->cid; o = o->sess_next)
		;
	if (!o && s->nconns >= s->p.max_conns) {
		log_warn(SUB, "%s: session tsih %u of '%s' already has %u connections "
			 "(MaxConnections=%u)", c->peer, s->tsih, s->initiator_name, s->nconns,
			 s->p.max_conns);
		return ISCSI_LOGIN_TOO_MANY_CONNS;
	}
	if (out)
		*out = s;
	return 0;
}

/* Checks once the first request's keys are known: names, target, ACL, TSIH. */
static int first_checks(struct iscsi_conn *c, struct iscsi_textbuf *out)
{
	struct iscsi_login *l = &c->login;
	struct iscsi_neg *n = &l->neg;

	if (!n->initiator_name[0])
		return ISCSI_LOGIN_MISSING_PARAM;
	if (n->session_type == ISCSI_SESSION_NORMAL) {
		int access;

		if (!n->target_name[0])
			return ISCSI_LOGIN_MISSING_PARAM;
		l->target = iscsi_server_get_target(c->srv, n->target_name);
		if (!l->target)
			return ISCSI_LOGIN_NOT_FOUND;
		l->sec = iscsi_secpol_get(c->srv, l->target);
		access = acl_check(l->sec->rules, l->sec->nrules, l->sec->default_access,
				   n->initiator_name, (const struct sockaddr *)&c->peer_ss);
		if (access == ACL_DENY) {
			log_warn(SUB, "%s: '%s' is denied access to %s by its ACL", c->peer,
				 n->initiator_name, l->target->iqn);
			return ISCSI_LOGIN_FORBIDDEN;
		}
		l->read_only = access == ACL_READ_ONLY;
		if (iscsi_text_addf(out, "TargetPortalGroupTag", "1"))
			return ISCSI_LOGIN_NO_RESOURCES;
	} else {
		l->sec = iscsi_secpol_get(c->srv, NULL);
	}
	if (l->tsih) /* adding a connection to a session */
		return join_check(c, NULL);
	return 0;
}

/* 1 if the policy of this login demands CHAP. */
static int chap_required(const struct iscsi_login *l)
{
	return l->sec && l->sec->chap.naccounts > 0;
}

/* SecurityNegotiation: answer AuthMethod (CHAP when the policy has accounts, else
 * None), run the CHAP steps, and decide whether the initiator may leave the stage:
 * while CHAP is under way a transit request is answered with T=0. Returns a login
 * status. */
static int login_security(struct iscsi_conn *c, const char *in, size_t len, int *transit,
			  struct iscsi_textbuf *out)
{
	struct iscsi_login *l = &c->login;
	struct iscsi_neg *n = &l->neg;
	int need = chap_required(l), st;

	if (n->auth_offered && !l->auth_answered) {
		l->auth_answered = 1;
		if (need && n->auth_offer_chap) {
			l->chap.state = CHAP_WAIT_A;
			if (iscsi_text_addf(out, "AuthMethod", "CHAP"))
				return ISCSI_LOGIN_NO_RESOURCES;
		} else if (!need && n->auth_offer_none) {
			n->auth_none = 1;
			if (iscsi_text_addf(out, "AuthMethod", "None"))
				return ISCSI_LOGIN_NO_RESOURCES;
		} else {
			log_warn(SUB, "%s: '%s' offers no authentication method we accept (%s required)",
				 c->peer, n->initiator_name, need ? "CHAP" : "None");
			return ISCSI_LOGIN_AUTH_FAILED;
		}
	}
	if (l->chap.state == CHAP_WAIT_A || l->chap.state == CHAP_WAIT_R) {
		st = chap_step(&l->chap, &l->sec->chap, in, len, out);
		if (st)
			return st;
	}
	if (*transit && need && l->chap.state != CHAP_DONE) {
		if (l->chap.state != CHAP_OFF) {
			*transit = 0; /* not yet: the exchange continues in this stage (T=0) */
			return 0;
		}
		log_warn(SUB, "%s: '%s' tried to skip CHAP authentication", c->peer,
			 n->initiator_name);
		return ISCSI_LOGIN_AUTH_FAILED;
	}
	return 0;
}

/* The login's work is done: release what it held. */
static void login_release(struct iscsi_conn *c)
{
	struct iscsi_login *l = &c->login;

	iscsi_server_put_target(c->srv, l->target);
	l->target = NULL;
	iscsi_secpol_put(c->srv, l->sec);
	l->sec = NULL;
	OPENSSL_cleanse(&l->chap, sizeof(l->chap));
	iscsi_textbuf_free(&l->in);
}

/* The connection's own parameters from its login. */
static void conn_params(struct iscsi_conn *c)
{
	const struct iscsi_params *p = &c->login.neg.p;

	c->max_send_dsl = p->max_send_dsl;
	c->neg_hd = p->header_digest;
	c->neg_dd = p->data_digest;
	c->hd = c->neg_hd;
	c->dd = c->neg_dd;
}

/* A connection joins the session of its TSIH (or takes the place of the session's
 * connection with its CID). */
static int finish_join(struct iscsi_conn *c, struct iscsi_textbuf *out, uint8_t flags)
{
	struct iscsi_login *l = &c->login;
	const char *user = l->chap.state == CHAP_DONE ? l->chap.user : "";
	struct iscsi_session *s = NULL;
	struct iscsi_conn *old;
	int st;

	st = join_check(c, &s); /* again: the session may have changed during the login */
	if (st)
		return fail(c, (uint16_t)st);
	if ((l->read_only && !s->read_only) || strcmp(user, s->chap_user)) {
		log_warn(SUB, "%s: '%s' may not add a connection to session tsih %u: %s", c->peer,
			 l->neg.initiator_name, s->tsih,
			 l->read_only && !s->read_only ? "its ACL gives this address read-only access"
						       : "it authenticated as another CHAP user");
		return fail(c, ISCSI_LOGIN_FORBIDDEN);
	}
	for (old = s->conns; old && old->cid != c->cid; old = old->sess_next)
		;
	conn_params(c);
	iscsi_conn_enter_ffp(c, s);
	if (old) { /* connection reinstatement: the session goes on over the new one */
		log_info(SUB, "%s: reinstating connection CID %u (%s) of session tsih %u", c->peer,
			 c->cid, old->peer, s->tsih);
		iscsi_conn_close(old);
	}
	log_info(SUB, "%s: connection CID %u added to session tsih %u of '%s'%s%s (%u of %u, "
		 "digests %s/%s)", c->peer, c->cid, s->tsih, s->initiator_name,
		 s->target ? " to " : "", s->target ? s->target->iqn : "", s->nconns,
		 s->p.max_conns, c->hd ? "CRC32C" : "None", c->dd ? "CRC32C" : "None");
	login_release(c);
	return respond(c, flags, ISCSI_LOGIN_OK, s->tsih, out, 1);
}

static int finish(struct iscsi_conn *c, struct iscsi_textbuf *out, uint8_t flags)
{
	struct iscsi_login *l = &c->login;
	struct iscsi_session *s, *old;
	int ret;

	if (l->tsih)
		return finish_join(c, out, flags);
	old = iscsi_session_find(c->srv, l->neg.initiator_name, l->isid, l->target);
	if (old && old->conns) {
		log_info(SUB, "%s: reinstating session of '%s' (tsih %u, %u connections)", c->peer,
			 l->neg.initiator_name, old->tsih, old->nconns);
		iscsi_session_close_conns(old);
	}
	ret = iscsi_session_create(c->srv, &l->neg, l->isid, l->cmdsn, l->target, &s);
	if (ret)
		return fail(c, ISCSI_LOGIN_NO_RESOURCES);
	l->target = NULL; /* the session holds the reference now */
	snprintf(s->peer, sizeof(s->peer), "%s", c->peer);
	snprintf(s->chap_user, sizeof(s->chap_user), "%s",
		 l->chap.state == CHAP_DONE ? l->chap.user : "");
	s->read_only = l->read_only;
	iscsi_nexus_fill(s);
	conn_params(c);
	iscsi_conn_enter_ffp(c, s);
	log_info(SUB, "%s: %s session of '%s'%s%s (tsih %u, digests %s/%s%s%s%s, "
		 "MaxConnections %u)", c->peer,
		 s->type == ISCSI_SESSION_DISCOVERY ? "discovery" : "normal", s->initiator_name,
		 s->target ? " to " : "", s->target ? s->target->iqn : "", s->tsih,
		 c->hd ? "CRC32C" : "None", c->dd ? "CRC32C" : "None",
		 s->chap_user[0] ? ", CHAP user " : "", s->chap_user,
		 s->read_only ? ", read-only" : "", s->p.max_conns);
	login_release(c);
	return respond(c, flags, ISCSI_LOGIN_OK, s->tsih, out, 1);
}

int iscsi_login_handle(struct iscsi_conn *c, const uint8_t *data, uint32_t dlen)
{
	struct iscsi_login *l = &c->login;
	const uint8_t *h = c->rx_hdr;
	int transit = !!(h[1] & ISCSI_LOGIN_TRANSIT), cont = !!(h[1] & ISCSI_FLAG_CONT);
	int csg = (h[1] >> 2) & 3, nsg = h[1] & 3;
	struct iscsi_textbuf out = { 0 };
	uint8_t flags;
	int ret, st;

	if (!l->started) {
		l->started = 1;
		memcpy(l->isid, h + 8, 6);
		l->tsih = iscsi_get16(h + 14);
		l->neg.non_leading = l->tsih != 0;
		l->neg.max_conns_ours = iscsi_server_max_conns(c->srv);
		c->cid = iscsi_get16(h + 20);
		c->statsn = iscsi_get32(h + 28);
		l->stage = csg;
		l->itt = iscsi_bhs_itt(h);
		l->cmdsn = iscsi_get32(h + 24);
		if (h[3] > 0x00) /* VersionMin above the only version we speak, 0x00 */
			return fail(c, ISCSI_LOGIN_UNSUPPORTED_VERSION);
	}
	l->itt = iscsi_bhs_itt(h);
	l->cmdsn = iscsi_get32(h + 24);
	if (csg != l->stage || csg == 2 || csg == 3 || (transit && cont) ||
	    (transit && (nsg <= csg || nsg == 2)))
		return fail(c, ISCSI_LOGIN_INITIATOR_ERR);
	if (l->in.len + dlen > ISCSI_TEXT_MAX)
		return fail(c, ISCSI_LOGIN_INITIATOR_ERR);
	if (iscsi_textbuf_append(&l->in, data, dlen))
		return fail(c, ISCSI_LOGIN_NO_RESOURCES);
	if (cont) /* the initiator's text continues: empty response, same stage */
		return respond(c, (uint8_t)(csg << 2), ISCSI_LOGIN_OK, 0, NULL, 0);

	ret = iscsi_text_negotiate(&l->neg, l->in.buf, l->in.len, &out);
	if (ret) {
		st = ret == -EPROTO ? l->neg.status : ISCSI_LOGIN_NO_RESOURCES;
		goto out_fail;
	}
	if (!l->declared_tpgt) {
		l->declared_tpgt = 1;
		st = first_checks(c, &out);
		if (st)
			goto out_fail;
		/* what was checked (session type, ACL of the initiator name, target) holds
		 * for the whole login: later requests cannot change it */
		l->neg.names_locked = 1;
	}
	if (csg == ISCSI_STAGE_SECURITY) {
		st = login_security(c, l->in.buf, l->in.len, &transit, &out);
		if (st)
			goto out_fail;
	} else if (chap_required(l) && l->chap.state != CHAP_DONE) {
		log_warn(SUB, "%s: '%s' skipped the security stage but CHAP is required", c->peer,
			 l->neg.initiator_name);
		st = ISCSI_LOGIN_AUTH_FAILED;
		goto out_fail;
	}
	iscsi_textbuf_free(&l->in);
	flags = (uint8_t)(csg << 2);
	if (transit && iscsi_text_finish(&l->neg, &out)) { /* nsg is 1 or 3 here */
		st = ISCSI_LOGIN_NO_RESOURCES;
		goto out_fail;
	}
	if (out.len > ISCSI_LOGIN_MRDSL) {
		/* RFC 7143 13.12: a login PDU carries at most 8192 bytes, and this target does
		 * not continue a Login Response (C bit): an answer that long (only an initiator
		 * offering hundreds of unknown keys at once gets one) is refused */
		log_warn(SUB, "%s: the answer to '%s' would be %zu bytes, more than a login PDU "
			 "carries", c->peer, l->neg.initiator_name, out.len);
		st = ISCSI_LOGIN_INITIATOR_ERR;
		goto out_fail;
	}
	if (transit) {
		flags |= ISCSI_LOGIN_TRANSIT | (uint8_t)nsg;
		if (nsg == ISCSI_STAGE_FULL) {
			ret = finish(c, &out, flags);
			iscsi_textbuf_free(&out);
			return ret;
		}
		l->stage = nsg;
	}
	ret = respond(c, flags, ISCSI_LOGIN_OK, 0, &out, 0);
	iscsi_textbuf_free(&out);
	return ret;

out_fail:
	iscsi_textbuf_free(&l->in);
	iscsi_textbuf_free(&out);
	return fail(c, (uint16_t)st);
}
