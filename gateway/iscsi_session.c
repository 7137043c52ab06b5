/* iscsi_session.c - targets registry, completion hand-off, sessions, TSIH and the
 * session's lifetime (iscsi_session.h). */
#include "iscsi_session.h"

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "iscsi_conn.h"
#include "iscsi_pdu.h"
#include "log.h"

#define SUB "iscsi"

struct iscsi_target *iscsi_server_get_target(struct iscsi_server *srv, const char *iqn)
{
	struct iscsi_target *t;

	pthread_mutex_lock(&srv->lock);
	for (t = srv->targets; t; t = t->next)
		if (!t->removed && !strcmp(t->iqn, iqn))
			break;
	if (t)
		t->refs++;
	pthread_mutex_unlock(&srv->lock);
	return t;
}

void iscsi_server_put_target(struct iscsi_server *srv, struct iscsi_target *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&srv->lock);
	if (--t->refs == 0 && t->removed)
		pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
}

struct iscsi_secpol *iscsi_secpol_get(struct iscsi_server *srv, struct iscsi_target *t)
{
	struct iscsi_secpol *p;

	pthread_mutex_lock(&srv->lock);
	p = t ? t->sec : srv->disc_sec;
	p->refs++;
	pthread_mutex_unlock(&srv->lock);
	return p;
}

void iscsi_secpol_free(struct iscsi_secpol *p)
{
	if (!p)
		return;
	/* the accounts and rules live in the same allocation, after the struct */
	OPENSSL_cleanse(p, sizeof(*p) + p->chap.naccounts * sizeof(struct chap_cred));
	free(p);
}

void iscsi_secpol_put(struct iscsi_server *srv, struct iscsi_secpol *p)
{
	int last;

	if (!p)
		return;
	pthread_mutex_lock(&srv->lock);
	last = --p->refs == 0;
	pthread_mutex_unlock(&srv->lock);
	if (last)
		iscsi_secpol_free(p);
}

int iscsi_server_send_targets(struct iscsi_server *srv, const char *only, const char *addr,
			      const char *initiator, const struct sockaddr *peer,
			      struct iscsi_textbuf *out)
{
	struct iscsi_target *t;
	int ret = 0;

	pthread_mutex_lock(&srv->lock);
	for (t = srv->targets; t && !ret; t = t->next) {
		if (t->removed || (only && strcmp(only, t->iqn)))
			continue;
		if (acl_check(t->sec->rules, t->sec->nrules, t->sec->default_access, initiator,
			      peer) == ACL_DENY)
			continue;
		ret = iscsi_text_addf(out, "TargetName", "%s", t->iqn);
		if (!ret)
			ret = iscsi_text_addf(out, "TargetAddress", "%s,1", addr);
	}
	pthread_mutex_unlock(&srv->lock);
	return ret;
}

void iscsi_server_wake(struct iscsi_server *srv)
{
	uint64_t one = 1;

	if (write(srv->evfd, &one, sizeof(one)) < 0) {
		/* the counter is saturated or the fd is gone: the loop is awake anyway */
	}
}

void iscsi_server_complete(struct iscsi_server *srv, struct iscsi_task *t)
{
	int wake;

	t->done_next = NULL;
	pthread_mutex_lock(&srv->lock);
	wake = !srv->done_head;
	if (srv->done_tail)
		srv->done_tail->done_next = t;
	else
		srv->done_head = t;
	srv->done_tail = t;
	pthread_mutex_unlock(&srv->lock);
	if (wake)
		iscsi_server_wake(srv);
}

struct iscsi_task *iscsi_server_take_done(struct iscsi_server *srv)
{
	struct iscsi_task *h;

	pthread_mutex_lock(&srv->lock);
	h = srv->done_head;
	srv->done_head = srv->done_tail = NULL;
	pthread_mutex_unlock(&srv->lock);
	return h;
}

static int tsih_in_use(struct iscsi_server *srv, uint16_t tsih)
{
	for (struct iscsi_session *s = srv->sessions; s; s = s->next)
		if (s->tsih == tsih)
			return 1;
	return 0;
}

uint32_t iscsi_server_max_conns(const struct iscsi_server *srv)
{
	return srv->max_conns ? srv->max_conns : ISCSI_MAX_CONNS_DEFAULT;
}

int iscsi_session_create(struct iscsi_server *srv, const struct iscsi_neg *neg,
			 const uint8_t isid[6], uint32_t cmdsn, struct iscsi_target *t,
			 struct iscsi_session **out)
{
	struct iscsi_session *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->srv = srv;
	s->target = t;
	s->type = neg->session_type;
	memcpy(s->isid, isid, 6);
	snprintf(s->initiator_name, sizeof(s->initiator_name), "%s", neg->initiator_name);
	if (t)
		snprintf(s->target_iqn, sizeof(s->target_iqn), "%s", t->iqn);
	s->p = neg->p;
	do { /* TSIH 0 is reserved */
		s->tsih = ++srv->next_tsih;
	} while (!s->tsih || tsih_in_use(srv, s->tsih));
	s->exp_cmdsn = cmdsn;
	s->max_cmdsn = cmdsn + ISCSI_QUEUE_DEPTH - 1;
	pthread_mutex_lock(&srv->sess_lock);
	s->next = srv->sessions;
	srv->sessions = s;
	pthread_mutex_unlock(&srv->sess_lock);
	*out = s;
	return 0;
}

struct iscsi_session *iscsi_session_find(struct iscsi_server *srv, const char *initiator,
					 const uint8_t isid[6], const struct iscsi_target *t)
{
	for (struct iscsi_session *s = srv->sessions; s; s = s->next)
		if (s->target == t && !memcmp(s->isid, isid, 6) &&
		    !strcmp(s->initiator_name, initiator))
			return s;
	return NULL;
}

struct iscsi_session *iscsi_session_by_tsih(struct iscsi_server *srv, uint16_t tsih)
{
	for (struct iscsi_session *s = srv->sessions; s; s = s->next)
		if (s->tsih == tsih)
			return s;
	return NULL;
}

void iscsi_session_end(struct iscsi_session *s)
{
	struct iscsi_session **pp;

	if (s->ended)
		return;
	pthread_mutex_lock(&s->srv->sess_lock);
	for (pp = &s->srv->sessions; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	s->ended = 1;
	pthread_mutex_unlock(&s->srv->sess_lock);
	log_debug(SUB, "session tsih %u of '%s' ended", s->tsih, s->initiator_name);
}

static void session_free(struct iscsi_session *s)
{
	/* held PDUs left (a harness that destroys a session with live connections) */
	while (s->held) {
		struct iscsi_held *h = s->held;

		s->held = h->next;
		if (!h->task)
			free(h);
	}
	if (s->nexus.id && s->target)
		scsi_nexus_lost(&s->nexus, &s->target->map);
	iscsi_server_put_target(s->srv, s->target);
	free(s);
}

void iscsi_session_put(struct iscsi_session *s)
{
	if (--s->refs == 0 && !s->nconns) {
		iscsi_session_end(s);
		session_free(s);
	}
}

void iscsi_session_destroy(struct iscsi_session *s)
{
	iscsi_session_end(s);
	session_free(s);
}

void iscsi_session_update_window(struct iscsi_session *s)
{
	unsigned free = s->ntasks < ISCSI_QUEUE_DEPTH ? ISCSI_QUEUE_DEPTH - s->ntasks : 0;
	uint32_t m = s->exp_cmdsn - 1 + free;

	if (iscsi_sn_lt(s->max_cmdsn, m))
		s->max_cmdsn = m;
}
