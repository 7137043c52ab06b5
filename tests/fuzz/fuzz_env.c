/* fuzz_env.c - the fuzz targets' RAM LUNs and socketless server (see fuzz_env.h).
 *
 * The server is a struct iscsi_server filled the way gateway_start() fills it, minus the
 * portal and the network thread: the harness itself plays the network thread (it calls
 * iscsi_conn_on_read/on_write, hands completed tasks back with iscsi_conn_task_done and
 * calls iscsi_conn_reap), so the transport code under test is the daemon's own.
 * Two targets: FUZZ_IQN with LUNs 0 and 2 (1 unmapped), FUZZ_IQN2 without LUNs (for
 * SendTargets and ACL filtering).
 */
#include "fuzz_env.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "acl.h"
#include "bufpool.h"
#include "iscsi_text.h"
#include "scsi.h"
#include "work_pool.h"

struct fuzz_ram fuzz_ram[FUZZ_NLUNS];
struct lun fuzz_luns[FUZZ_NLUNS];
struct lun *fuzz_lun_tab[FUZZ_NLUNS];

static struct iscsi_server srv;
static struct iscsi_target targets[2];
static int have_server;

static int ram_check(uint64_t off, uint64_t len)
{
	return off > FUZZ_LUN_BYTES || len > FUZZ_LUN_BYTES - off ? -ERANGE : 0;
}

static int ram_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct fuzz_ram *r = ctx;

	if (r->fail_read)
		return r->fail_read;
	if (ram_check(off, len))
		return -ERANGE;
	memcpy(buf, r->mem + off, len);
	return 0;
}

static int ram_write(void *ctx, uint64_t off, const void *buf, size_t len, int fua)
{
	struct fuzz_ram *r = ctx;

	(void)fua;
	if (r->fail_write)
		return r->fail_write;
	if (ram_check(off, len))
		return -ERANGE;
	memcpy(r->mem + off, buf, len);
	return 0;
}

static int ram_zero(void *ctx, uint64_t off, uint64_t len, int fua)
{
	struct fuzz_ram *r = ctx;

	(void)fua;
	if (r->fail_write)
		return r->fail_write;
	if (ram_check(off, len))
		return -ERANGE;
	memset(r->mem + off, 0, len);
	return 0;
}

static int ram_flush(void *ctx)
{
	return ((struct fuzz_ram *)ctx)->fail_write;
}

static int ram_state_save(void *ctx, const void *blob, size_t len)
{
	struct fuzz_ram *r = ctx;
	void *b;

	if (r->fail_write)
		return r->fail_write;
	b = malloc(len ? len : 1);
	if (!b)
		return -ENOMEM;
	memcpy(b, blob, len);
	free(r->blob);
	r->blob = b;
	r->blob_len = len;
	return 0;
}

static int ram_state_load(void *ctx, void **blob, size_t *len)
{
	struct fuzz_ram *r = ctx;

	if (!r->blob)
		return -ENOENT;
	*blob = malloc(r->blob_len ? r->blob_len : 1);
	if (!*blob)
		return -ENOMEM;
	memcpy(*blob, r->blob, r->blob_len);
	*len = r->blob_len;
	return 0;
}

static int ram_copy(void *ctx, uint64_t dst, uint64_t src, uint64_t len)
{
	struct fuzz_ram *r = ctx;

	if (r->fail_write)
		return r->fail_write;
	if (ram_check(dst, len) || ram_check(src, len))
		return -ERANGE;
	memmove(r->mem + dst, r->mem + src, len);
	return 0;
}

static const struct lun_ops ops_full = {
	.read = ram_read, .write = ram_write, .write_zeroes = ram_zero, .flush = ram_flush,
	.state_save = ram_state_save, .state_load = ram_state_load, .copy_range = ram_copy,
};
static const struct lun_ops ops_plain = {
	.read = ram_read, .write = ram_write, .write_zeroes = ram_zero, .flush = ram_flush,
};

/* A policy laid out as gateway.c's secpol_new() lays it out (iscsi_secpol_free frees
 * it): the struct, then the accounts, then the rules. */
static struct iscsi_secpol *policy(int chap, int mutual, const struct acl_rule *rules,
				   unsigned nrules, int dflt)
{
	static const struct chap_cred acc[2] = {
		{ "other", "other-secret-99" }, { FUZZ_CHAP_USER, FUZZ_CHAP_SECRET },
	};
	unsigned na = chap ? 2 : 0;
	struct iscsi_secpol *p = calloc(1, sizeof(*p) + na * sizeof(struct chap_cred) +
					   nrules * sizeof(struct acl_rule));
	struct chap_cred *a;
	struct acl_rule *r;

	if (!p)
		abort();
	a = (struct chap_cred *)(p + 1);
	r = (struct acl_rule *)(a + na);
	p->refs = 1;
	memcpy(a, acc, na * sizeof(*a));
	p->chap.accounts = a;
	p->chap.naccounts = na;
	if (mutual) {
		snprintf(p->mutual.user, sizeof(p->mutual.user), "%s", FUZZ_MUTUAL_USER);
		snprintf(p->mutual.secret, sizeof(p->mutual.secret), "%s", FUZZ_MUTUAL_SECRET);
		p->chap.mutual = &p->mutual;
	}
	if (nrules)
		memcpy(r, rules, nrules * sizeof(*r));
	p->rules = r;
	p->nrules = nrules;
	p->default_access = dflt;
	return p;
}

static void put_policy(struct iscsi_secpol **pp)
{
	if (!*pp)
		return;
	if ((*pp)->refs != 1) {
		fprintf(stderr, "fuzz_env: a security policy still has %d references at the end of "
			"an iteration (a login or session leaked one)\n", (*pp)->refs);
		abort();
	}
	iscsi_secpol_free(*pp);
	*pp = NULL;
}

void fuzz_env_init(int server)
{
	for (int i = 0; i < FUZZ_NLUNS; i++) {
		struct lun *l = &fuzz_luns[i];

		l->ctx = &fuzz_ram[i];
		l->size = FUZZ_LUN_BYTES;
		l->block_size = FUZZ_BS;
		l->opt_xfer = 64u << 10;
		snprintf(l->name, sizeof(l->name), "fuzz%d", i);
		snprintf(l->serial, sizeof(l->serial), "00f0220000000%03d", i);
		l->naa[0] = 0x60;
		l->naa[1] = 0x01;
		l->naa[15] = (uint8_t)i;
	}
	if (!server || have_server)
		return;
	have_server = 1;
	pthread_mutex_init(&srv.lock, NULL);
	pthread_mutex_init(&srv.sess_lock, NULL);
	pthread_cond_init(&srv.cond, NULL);
	srv.epfd = epoll_create1(EPOLL_CLOEXEC);
	srv.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (srv.epfd < 0 || srv.evfd < 0)
		abort();
	/* small pools: a buffer overrun of the last buffer of a pool is seen by ASan */
	srv.pools[0] = bufpool_create(64u << 10, 4);
	srv.pools[1] = bufpool_create(1u << 20, 1);
	srv.pools[2] = bufpool_create(SCSI_MAX_XFER, 1);
	if (!srv.pools[0] || !srv.pools[1] || !srv.pools[2] ||
	    work_pool_create(1, 256, &srv.pool))
		abort();
	snprintf(targets[0].iqn, sizeof(targets[0].iqn), "%s", FUZZ_IQN);
	targets[0].luns = fuzz_lun_tab;
	targets[0].map.luns = fuzz_lun_tab;
	targets[0].map.count = FUZZ_NLUNS;
	targets[0].next = &targets[1];
	snprintf(targets[1].iqn, sizeof(targets[1].iqn), "%s", FUZZ_IQN2);
	srv.targets = &targets[0];
}

struct iscsi_server *fuzz_srv(void)
{
	return &srv;
}

void fuzz_env_reset(uint8_t cfg)
{
	for (int i = 0; i < FUZZ_NLUNS; i++) {
		struct lun *l = &fuzz_luns[i];
		struct fuzz_ram *r = &fuzz_ram[i];

		memset(r->mem, 0, sizeof(r->mem));
		r->fail_read = r->fail_write = 0;
		l->ops = (cfg & FZ_NOCOPY) ? &ops_plain : &ops_full;
		l->read_only = i == 0 && (cfg & FZ_LUN_RO);
		l->block_size = i == 2 && (cfg & FZ_BS4K) ? 4096 : FUZZ_BS;
	}
	fuzz_lun_tab[0] = &fuzz_luns[0];
	fuzz_lun_tab[1] = NULL;
	fuzz_lun_tab[2] = &fuzz_luns[2];
	if (!have_server)
		return;
	srv.next_tsih = 0;
	{
		struct acl_rule rules[3];
		int acl = !!(cfg & FZ_ACL);

		memset(rules, 0, sizeof(rules));
		acl_rule_set_initiator(&rules[0], "*deny*");
		rules[0].access = ACL_DENY;
		acl_rule_set_initiator(&rules[1], "*ro*");
		rules[1].access = ACL_READ_ONLY;
		acl_rule_set_net(&rules[2], "127.0.0.2/32");
		rules[2].access = ACL_DENY;
		targets[0].sec = policy(cfg & FZ_CHAP, cfg & FZ_MUTUAL, rules, acl ? 3 : 0, ACL_FULL);
		targets[1].sec = policy(0, 0, NULL, 0, acl ? ACL_DENY : ACL_FULL);
		srv.disc_sec = policy(cfg & FZ_DISC_CHAP, cfg & FZ_MUTUAL, NULL, 0, ACL_FULL);
	}
}

void fuzz_env_release(void)
{
	for (int i = 0; i < FUZZ_NLUNS; i++) {
		scsi_lun_release(&fuzz_luns[i]);
		free(fuzz_ram[i].blob);
		fuzz_ram[i].blob = NULL;
		fuzz_ram[i].blob_len = 0;
	}
	if (!have_server)
		return;
	if (srv.sessions || srv.conns || srv.zombies) {
		fprintf(stderr, "fuzz_env: sessions or connections left at the end of an iteration\n");
		abort();
	}
	for (int i = 0; i < ISCSI_NPOOLS; i++)
		if (bufpool_in_use(srv.pools[i])) {
			/* the pools are fixed: a buffer lost per connection starves the daemon */
			fprintf(stderr, "fuzz_env: %u data buffers of pool %d not returned\n",
				bufpool_in_use(srv.pools[i]), i);
			abort();
		}
	for (int i = 0; i < 2; i++) {
		if (targets[i].refs) {
			fprintf(stderr, "fuzz_env: target %s still has %d references\n",
				targets[i].iqn, targets[i].refs);
			abort();
		}
		put_policy(&targets[i].sec);
	}
	put_policy(&srv.disc_sec);
}

/* The value of the last "key=" in t[0..n) (NUL-terminated there), or NULL. */
static const char *last_value(const char *t, size_t n, const char *key)
{
	size_t kl = strlen(key);
	const char *best = NULL;

	for (size_t i = 0; i + kl <= n; i++)
		if ((i == 0 || t[i - 1] == '\0') && !memcmp(t + i, key, kl) &&
		    memchr(t + i + kl, '\0', n - i - kl))
			best = t + i + kl;
	return best;
}

void fuzz_chap_fill(uint8_t *t, size_t n, const char *resp, size_t rn)
{
	const char *a = last_value(resp, rn, "CHAP_A="), *id = last_value(resp, rn, "CHAP_I=");
	const char *ch = last_value(resp, rn, "CHAP_C=");
	uint8_t chal[CHAP_BIN_MAX], d[64];
	static const char hx[] = "0123456789abcdef";
	size_t clen, dl;
	char *end;

	if (!a || !id || !ch || chap_decode(ch, chal, sizeof(chal), &clen))
		return;
	if (chap_digest((int)strtol(a, &end, 10), (uint8_t)strtoul(id, &end, 10),
			FUZZ_CHAP_SECRET, chal, clen, d, &dl))
		return;
	for (size_t i = 0; i + 9 + 2 * dl <= n; i++) {
		size_t q = 0;

		if (memcmp(t + i, "CHAP_R=0x", 9))
			continue;
		while (i + 9 + q < n && t[i + 9 + q] == '?')
			q++;
		if (q != 2 * dl)
			continue;
		for (size_t k = 0; k < dl; k++) {
			t[i + 9 + 2 * k] = (uint8_t)hx[d[k] >> 4];
			t[i + 10 + 2 * k] = (uint8_t)hx[d[k] & 15];
		}
	}
}
