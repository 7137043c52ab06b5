/* gateway.c - the target daemon core (gateway.h): portal socket, network thread,
 * worker pool, buffer pools and the target registry.
 *
 * The network thread owns every connection. Its loop: epoll_wait; accept new
 * connections; read/write ready connections; drain the completion list filled by the
 * workers (woken through the eventfd); then iscsi_conn_reap() flushes output, closes
 * what must close and frees closed connections - never inside the event batch, so an
 * event of the same batch never sees freed memory.
 */
#include "gateway.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bufpool.h"
#include "iscsi_conn.h"
#include "iscsi_session.h"
#include "log.h"
#include "util.h"
#include "work_pool.h"

#define SUB "gateway"
#define WORK_QUEUE_CAP 4096

_Static_assert(GW_MAX_CONNECTIONS == ISCSI_MAX_CONNS_CAP, "one MaxConnections cap");

/* Data buffer pools: sizes and counts fixed at start (virtual memory until used). */
static const struct { size_t size; unsigned count; } pool_spec[ISCSI_NPOOLS] = {
	{ 64u << 10, 512 },
	{ 1u << 20, 128 },
	{ SCSI_MAX_XFER, 24 },
};

/* One listening socket. Added and removed by any thread under srv.lock; a removed one
 * moves to dead_portals and the network thread closes and frees it after the event
 * batch, so an event already fetched never sees freed memory. */
struct portal {
	int ep_tag;         /* ISCSI_EP_LISTEN: must be first (epoll data) */
	int fd;
	int port;
	char listen[128];   /* as given */
	struct portal *next;
};

struct gateway {
	struct iscsi_server srv;
	struct portal *portals;      /* under srv.lock */
	struct portal *dead_portals; /* under srv.lock; freed by the network thread */
	int port;           /* of the first portal */
	int event_tag;      /* ISCSI_EP_EVENT: epoll data for srv.evfd */
	int stop;           /* under srv.lock */
	int thread_started;
	pthread_t thread;
};

static int parse_listen(const char *s, char *host, size_t hl, char *port, size_t pl)
{
	const char *colon;
	size_t n;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		n = (size_t)(end - s - 1);
		colon = end + 1;
		s++;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		n = (size_t)(colon - s);
	}
	if (n >= hl || strlen(colon + 1) >= pl || !colon[1])
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

static int open_portal(const char *listen_addr, int *port_out)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], port[16];
	int fd, one = 1, ret;

	ret = parse_listen(listen_addr, host, sizeof(host), port, sizeof(port));
	if (ret)
		return ret;
	if (getaddrinfo(host[0] ? host : NULL, port, &hints, &ai))
		return -EINVAL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		goto out_free_ai;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 128) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		ret = -errno;
		goto out_close_fd;
	}
	*port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						    : ((struct sockaddr_in *)&ss)->sin_port);
	freeaddrinfo(ai);
	return fd;

out_close_fd:
	close(fd);
out_free_ai:
	freeaddrinfo(ai);
	return ret;
}

static void accept_all(struct gateway *g, struct portal *pt)
{
	for (;;) {
		struct iscsi_conn *c;
		int one = 1;
		int fd = accept4(pt->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warn(SUB, "accept: %s", strerror(errno));
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (iscsi_conn_create(&g->srv, fd, &c))
			log_warn(SUB, "out of memory for a new connection");
	}
}

static void drain_completions(struct iscsi_server *srv)
{
	struct iscsi_task *t = iscsi_server_take_done(srv), *next;

	for (; t; t = next) {
		next = t->done_next;
		iscsi_conn_task_done(t);
	}
}

static void free_dead_portals(struct gateway *g)
{
	struct portal *pt;

	pthread_mutex_lock(&g->srv.lock);
	pt = g->dead_portals;
	g->dead_portals = NULL;
	pthread_mutex_unlock(&g->srv.lock);
	while (pt) {
		struct portal *next = pt->next;

		close(pt->fd);
		free(pt);
		pt = next;
	}
}

static void *net_thread(void *arg)
{
	struct gateway *g = arg;
	struct iscsi_server *srv = &g->srv;
	struct epoll_event evs[64];
	uint64_t last_sweep = util_mono_ns();
	int stop = 0;

	while (!stop) {
		int n = epoll_wait(srv->epfd, evs, 64, 1000);
		uint64_t now;

		if (n < 0 && errno != EINTR) {
			log_error(SUB, "epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			int tag = *(int *)evs[i].data.ptr;
			uint64_t cnt;

			if (tag == ISCSI_EP_LISTEN) {
				accept_all(g, evs[i].data.ptr);
			} else if (tag == ISCSI_EP_EVENT) {
				if (read(srv->evfd, &cnt, sizeof(cnt)) < 0) {
					/* EAGAIN: already drained */
				}
			} else {
				struct iscsi_conn *c = evs[i].data.ptr;
				int ret = 0;

				if (c->dead)
					continue;
				if (evs[i].events & (EPOLLERR | EPOLLHUP))
					ret = -ECONNRESET;
				if (!ret && (evs[i].events & EPOLLOUT))
					ret = iscsi_conn_on_write(c);
				if (!ret && (evs[i].events & EPOLLIN))
					ret = iscsi_conn_on_read(c);
				if (ret < 0)
					iscsi_conn_close(c);
			}
		}
		drain_completions(srv);
		free_dead_portals(g);
		now = util_mono_ns();
		if (now - last_sweep >= 1000000000ULL) {
			/* login timeout: a peer that connects and stalls holds nothing for long */
			for (struct iscsi_conn *c = srv->conns, *nx; c; c = nx) {
				nx = c->next;
				if (!c->dead && c->phase == CONN_LOGIN &&
				    now - c->born_ns > ISCSI_LOGIN_TIMEOUT_NS) {
					log_warn(SUB, "%s: login not finished in %llu s: closing", c->peer,
						 ISCSI_LOGIN_TIMEOUT_NS / 1000000000ULL);
					iscsi_conn_close(c);
				}
			}
			last_sweep = now;
		}
		iscsi_conn_reap(srv);
		pthread_mutex_lock(&srv->lock);
		stop = g->stop;
		pthread_mutex_unlock(&srv->lock);
	}
	while (srv->conns)
		iscsi_conn_close(srv->conns);
	iscsi_conn_reap(srv);
	return NULL;
}

int gateway_port(const struct gateway *g)
{
	return g->port;
}

static unsigned default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned w = n > 0 ? (unsigned)n * 2 : 4;

	return w < 4 ? 4 : w;
}

static void close_portals(struct gateway *g)
{
	struct portal *lists[2] = { g->portals, g->dead_portals };

	for (int i = 0; i < 2; i++) {
		while (lists[i]) {
			struct portal *pt = lists[i];

			lists[i] = pt->next;
			close(pt->fd);
			free(pt);
		}
	}
	g->portals = g->dead_portals = NULL;
}

/* A policy from sec (NULL: no CHAP, full access), refs = 1, in one allocation:
 * the struct, then the accounts, then the rules. */
static struct iscsi_secpol *secpol_new(const struct gw_security *sec)
{
	unsigned na = sec ? sec->naccounts : 0, nr = sec ? sec->nrules : 0;
	size_t sz = sizeof(struct iscsi_secpol) + na * sizeof(struct chap_cred) +
		    nr * sizeof(struct acl_rule);
	struct iscsi_secpol *p = calloc(1, sz);
	struct chap_cred *acc;
	struct acl_rule *rules;

	if (!p)
		return NULL;
	acc = (struct chap_cred *)(p + 1);
	rules = (struct acl_rule *)(acc + na);
	p->refs = 1;
	p->chap.accounts = acc;
	p->chap.naccounts = na;
	p->rules = rules;
	p->nrules = nr;
	p->default_access = sec ? sec->default_access : ACL_FULL;
	if (na)
		memcpy(acc, sec->accounts, na * sizeof(*acc));
	if (nr)
		memcpy(rules, sec->rules, nr * sizeof(*rules));
	if (sec && sec->mutual) {
		p->mutual = *sec->mutual;
		p->chap.mutual = &p->mutual;
	}
	return p;
}

int gateway_set_security(struct gateway *g, const char *iqn, const struct gw_security *sec)
{
	struct iscsi_server *srv = &g->srv;
	struct iscsi_secpol *p = secpol_new(sec), *old = NULL;
	struct iscsi_target *t;
	int found = 1;

	if (!p)
		return -ENOMEM;
	pthread_mutex_lock(&srv->lock);
	if (!iqn) {
		old = srv->disc_sec;
		srv->disc_sec = p;
	} else {
		for (t = srv->targets; t; t = t->next)
			if (!t->removed && !strcmp(t->iqn, iqn))
				break;
		if (t) {
			old = t->sec;
			t->sec = p;
			srv->recheck_acl = 1;
		} else {
			found = 0;
		}
	}
	if (old && --old->refs > 0)
		old = NULL; /* a login still uses it: the last put frees it */
	pthread_mutex_unlock(&srv->lock);
	if (!found) {
		iscsi_secpol_free(p);
		return -ENOENT;
	}
	iscsi_secpol_free(old);
	iscsi_server_wake(srv);
	return 0;
}

int gateway_add_portal(struct gateway *g, const char *listen)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct iscsi_server *srv = &g->srv;
	struct portal *pt, *p;
	int ret;

	if (strlen(listen) >= sizeof(pt->listen))
		return -EINVAL;
	pthread_mutex_lock(&srv->lock);
	for (p = g->portals; p; p = p->next)
		if (!strcmp(p->listen, listen))
			break;
	pthread_mutex_unlock(&srv->lock);
	if (p)
		return -EEXIST;
	pt = calloc(1, sizeof(*pt));
	if (!pt)
		return -ENOMEM;
	pt->ep_tag = ISCSI_EP_LISTEN;
	snprintf(pt->listen, sizeof(pt->listen), "%s", listen);
	pt->fd = open_portal(listen, &pt->port);
	if (pt->fd < 0) {
		ret = pt->fd;
		goto out_free;
	}
	ev.data.ptr = pt;
	pthread_mutex_lock(&srv->lock);
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, pt->fd, &ev)) {
		ret = -errno;
		pthread_mutex_unlock(&srv->lock);
		goto out_close;
	}
	pt->next = NULL;
	for (p = g->portals; p && p->next; p = p->next)
		;
	if (p)
		p->next = pt;
	else
		g->portals = pt;
	pthread_mutex_unlock(&srv->lock);
	log_info(SUB, "portal %s listening (port %d)", listen, pt->port);
	return 0;

out_close:
	close(pt->fd);
out_free:
	free(pt);
	return ret;
}

int gateway_remove_portal(struct gateway *g, const char *listen)
{
	struct iscsi_server *srv = &g->srv;
	struct portal **pp, *pt = NULL;

	pthread_mutex_lock(&srv->lock);
	for (pp = &g->portals; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->listen, listen)) {
			pt = *pp;
			*pp = pt->next;
			break;
		}
	if (pt) {
		epoll_ctl(srv->epfd, EPOLL_CTL_DEL, pt->fd, NULL);
		pt->next = g->dead_portals;
		g->dead_portals = pt;
	}
	pthread_mutex_unlock(&srv->lock);
	if (!pt)
		return -ENOENT;
	iscsi_server_wake(srv);
	log_info(SUB, "portal %s removed", listen);
	return 0;
}

int gateway_list_sessions(struct gateway *g,
			  int (*cb)(void *arg, const struct gw_session_info *si), void *arg)
{
	struct iscsi_server *srv = &g->srv;
	struct gw_session_info *si = malloc(sizeof(*si));
	int ret = 0;

	if (!si)
		return -ENOMEM;
	/* sessions, their connection lists and the fields read here change under
	 * sess_lock (iscsi_session.h); counters are relaxed atomics */
	pthread_mutex_lock(&srv->sess_lock);
	for (struct iscsi_session *s = srv->sessions; s && !ret; s = s->next) {
		memset(si, 0, sizeof(*si));
		snprintf(si->initiator, sizeof(si->initiator), "%s", s->initiator_name);
		snprintf(si->peer, sizeof(si->peer), "%s", s->peer);
		snprintf(si->target, sizeof(si->target), "%s", s->target_iqn);
		memcpy(si->isid, s->isid, 6);
		si->tsih = s->tsih;
		si->read_only = s->read_only;
		snprintf(si->chap_user, sizeof(si->chap_user), "%s", s->chap_user);
		si->commands = __atomic_load_n(&s->n_cmds, __ATOMIC_RELAXED);
		si->bytes_read = __atomic_load_n(&s->bytes_read, __ATOMIC_RELAXED);
		si->bytes_written = __atomic_load_n(&s->bytes_written, __ATOMIC_RELAXED);
		si->max_connections = s->p.max_conns;
		for (struct iscsi_conn *c = s->conns; c && si->nconns < GW_MAX_CONNECTIONS;
		     c = c->sess_next) {
			struct gw_conn_info *ci = &si->conns[si->nconns++];

			ci->cid = c->cid;
			snprintf(ci->peer, sizeof(ci->peer), "%s", c->peer);
			snprintf(ci->portal, sizeof(ci->portal), "%s", c->local);
			ci->commands = __atomic_load_n(&c->n_cmds, __ATOMIC_RELAXED);
			ci->bytes_read = __atomic_load_n(&c->bytes_read, __ATOMIC_RELAXED);
			ci->bytes_written = __atomic_load_n(&c->bytes_written, __ATOMIC_RELAXED);
		}
		ret = cb(arg, si);
	}
	pthread_mutex_unlock(&srv->sess_lock);
	free(si);
	return ret;
}

int gateway_start(const struct gateway_opts *o, struct gateway **out)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct iscsi_server *srv;
	struct gateway *g;
	int ret;

	if (o->max_connections > GW_MAX_CONNECTIONS)
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	srv = &g->srv;
	srv->max_conns = o->max_connections;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_mutex_init(&srv->sess_lock, NULL);
	pthread_cond_init(&srv->cond, NULL);
	g->event_tag = ISCSI_EP_EVENT;
	srv->epfd = srv->evfd = -1;
	srv->disc_sec = secpol_new(NULL);
	if (!srv->disc_sec) {
		ret = -ENOMEM;
		goto out_free;
	}
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	srv->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (srv->epfd < 0 || srv->evfd < 0) {
		ret = -errno;
		goto out_close;
	}
	ret = gateway_add_portal(g, o->listen ? o->listen : "0.0.0.0:3260");
	if (ret)
		goto out_close;
	g->port = g->portals->port;
	ev.data.ptr = &g->event_tag;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->evfd, &ev)) {
		ret = -errno;
		goto out_portals;
	}
	for (int i = 0; i < ISCSI_NPOOLS; i++) {
		srv->pools[i] = bufpool_create(pool_spec[i].size, pool_spec[i].count);
		if (!srv->pools[i]) {
			ret = -ENOMEM;
			goto out_pools;
		}
	}
	ret = work_pool_create(o->workers ? o->workers : default_workers(), WORK_QUEUE_CAP,
			       &srv->pool);
	if (ret)
		goto out_pools;
	ret = -pthread_create(&g->thread, NULL, net_thread, g);
	if (ret)
		goto out_pool;
	g->thread_started = 1;
	log_info(SUB, "started (first portal %s, port %d)", o->listen ? o->listen : "0.0.0.0:3260",
		 g->port);
	*out = g;
	return 0;

out_pool:
	work_pool_destroy(srv->pool);
out_pools:
	for (int i = 0; i < ISCSI_NPOOLS; i++)
		bufpool_destroy(srv->pools[i]);
out_portals:
	close_portals(g);
out_close:
	if (srv->evfd >= 0)
		close(srv->evfd);
	if (srv->epfd >= 0)
		close(srv->epfd);
	iscsi_secpol_free(srv->disc_sec);
out_free:
	pthread_mutex_destroy(&srv->sess_lock);
	pthread_mutex_destroy(&srv->lock);
	pthread_cond_destroy(&srv->cond);
	free(g);
	return ret;
}

int gateway_add_target(struct gateway *g, const char *iqn, struct lun **luns, uint32_t nluns)
{
	return gateway_add_target_secure(g, iqn, luns, nluns, NULL);
}

int gateway_add_target_secure(struct gateway *g, const char *iqn, struct lun **luns,
			      uint32_t nluns, const struct gw_security *sec)
{
	struct iscsi_server *srv = &g->srv;
	struct iscsi_target *t, *p;

	if (!iqn || !iqn[0] || strlen(iqn) > GW_IQN_MAX)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->luns = calloc(nluns ? nluns : 1, sizeof(*t->luns));
	if (!t->luns) {
		free(t);
		return -ENOMEM;
	}
	if (nluns)
		memcpy(t->luns, luns, nluns * sizeof(*luns));
	t->sec = secpol_new(sec);
	if (!t->sec) {
		free(t->luns);
		free(t);
		return -ENOMEM;
	}
	snprintf(t->iqn, sizeof(t->iqn), "%s", iqn);
	t->map.luns = t->luns;
	t->map.count = nluns;
	pthread_mutex_lock(&srv->lock);
	for (p = srv->targets; p; p = p->next)
		if (!p->removed && !strcmp(p->iqn, iqn))
			break;
	if (p) {
		pthread_mutex_unlock(&srv->lock);
		iscsi_secpol_free(t->sec);
		free(t->luns);
		free(t);
		return -EEXIST;
	}
	t->next = srv->targets;
	srv->targets = t;
	pthread_mutex_unlock(&srv->lock);
	log_info(SUB, "target %s added (%u LUNs)", iqn, nluns);
	return 0;
}

int gateway_remove_target(struct gateway *g, const char *iqn)
{
	struct iscsi_server *srv = &g->srv;
	struct iscsi_target *t, **pp;

	pthread_mutex_lock(&srv->lock);
	for (t = srv->targets; t; t = t->next)
		if (!t->removed && !strcmp(t->iqn, iqn))
			break;
	if (!t) {
		pthread_mutex_unlock(&srv->lock);
		return -ENOENT;
	}
	t->removed = 1;
	srv->drop_removed = 1;
	pthread_mutex_unlock(&srv->lock);
	iscsi_server_wake(srv);
	pthread_mutex_lock(&srv->lock);
	while (t->refs)
		pthread_cond_wait(&srv->cond, &srv->lock);
	for (pp = &srv->targets; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	pthread_mutex_unlock(&srv->lock);
	log_info(SUB, "target %s removed", iqn);
	iscsi_secpol_put(srv, t->sec);
	free(t->luns);
	free(t);
	return 0;
}

void gateway_stop(struct gateway *g)
{
	struct iscsi_server *srv;

	if (!g)
		return;
	srv = &g->srv;
	pthread_mutex_lock(&srv->lock);
	g->stop = 1;
	pthread_mutex_unlock(&srv->lock);
	iscsi_server_wake(srv);
	if (g->thread_started)
		pthread_join(g->thread, NULL);
	/* tasks still in workers finish, then their closed connections are freed */
	work_pool_destroy(srv->pool);
	drain_completions(srv);
	iscsi_conn_reap(srv);
	while (srv->targets) {
		struct iscsi_target *t = srv->targets;

		srv->targets = t->next;
		iscsi_secpol_free(t->sec);
		free(t->luns);
		free(t);
	}
	iscsi_secpol_free(srv->disc_sec);
	for (int i = 0; i < ISCSI_NPOOLS; i++)
		bufpool_destroy(srv->pools[i]);
	close(srv->evfd);
	close(srv->epfd);
	close_portals(g);
	pthread_mutex_destroy(&srv->sess_lock);
	pthread_mutex_destroy(&srv->lock);
	pthread_cond_destroy(&srv->cond);
	log_info(SUB, "stopped");
	free(g);
}
