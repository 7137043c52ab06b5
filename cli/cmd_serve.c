/* cmd_serve.c - `cairn serve`: the setup function that stacks the layers.
 *
 *   backend (local dir) -> repo (chunks, packs, index) -> chunk_store ops
 *     -> volume (journal, overlay, block map) -> lun ops -> gateway (iSCSI, SCSI)
 *
 * With no config every live volume is exported as target iqn.2026-11.org.cairn:<name>,
 * LUN 0. With --config FILE (config.h) the file says which targets, LUNs, portals,
 * ACLs and CHAP accounts exist; daemon_conf_apply() makes the gateway match it at start
 * and after every live change (cmd_target.c). The control socket (control.h) serves the other subcommands while we run.
 * SIGINT/SIGTERM stop cleanly: sessions close, volumes fold and checkpoint, the
 * repository is flushed and unlocked.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "config.h"
#include "control.h"
#include "daemon.h"
#include "gc_cli.h"
#include "lun_volume.h"
#include "errmsg.h"
#include "gateway.h"
#include "log.h"
#include "scsi.h"
#include "util.h"
#include "volume.h"

static const char usage[] =
	"usage: cairn serve [-r REPO] [--listen ADDR:PORT] [--config FILE] [--state-dir DIR]\n"
	"Run the iSCSI gateway: every volume is target " CAIRN_IQN_PREFIX "<volume>, LUN 0,\n"
	"unless a config file says which targets, LUNs, portals, ACLs and CHAP accounts exist.\n"
	"  --listen ADDR:PORT  portal (default 127.0.0.1:3260, or the config's first portal;\n"
	"                      port 0 picks a free one)\n"
	"  --config FILE       declarative configuration (libconfig syntax); changes made with\n"
	"                      'cairn target|lun|acl|chap|portal' apply live and are saved here\n"
	"                      (so do 'cairn volume set' retention changes; the file's retention\n"
	"                      settings apply to the volumes it names at start)\n"
	"  --state-dir DIR     journal and local state (default $CAIRN_STATE_DIR,\n"
	"                      else /var/lib/cairn/<repo id>)\n"
	"  --max-connections N connections an iSCSI session may have (MaxConnections,\n"
	"                      1 to 64; default 4, or the config file's max_connections)\n"
	"Stop with Ctrl-C or SIGTERM; every acknowledged write is kept.\n";

/* Open volume name into a new served entry (linked into d->served); export it as its
 * own target when export. Caller holds d->lock. */
static int open_served(struct daemon *d, const char *name, int export, struct served **out)
{
	struct volume_open_opts vo = { .state_dir = d->state_dir };
	struct served *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	rc = volume_open(&d->cs, name, &vo, &s->vol);
	if (rc)
		goto out_free;
	lun_from_volume(&s->lun, s->vol);
	scsi_sanitize_resume(&s->lun); /* scsi.h: a SANITIZE cut by a stop or crash goes on */
	s->luns[0] = &s->lun;
	if (!export) {
		s->next = d->served;
		d->served = s;
		*out = s;
		return 0;
	}
	snprintf(s->iqn, sizeof(s->iqn), CAIRN_IQN_PREFIX "%s", name);
	rc = gateway_add_target(d->gw, s->iqn, s->luns, 1);
	if (rc)
		goto out_close;
	s->next = d->served;
	d->served = s;
	log_info("serve", "exporting volume %s as %s, LUN 0", name, s->iqn);
	*out = s;
	return 0;

out_close:
	scsi_lun_release(&s->lun);
	volume_close(s->vol);
out_free:
	free(s);
	return rc;
}

int daemon_serve_volume(struct daemon *d, const char *name)
{
	struct served *s;
	char err[512];
	int rc;

	if (!d->conf)
		return open_served(d, name, 1, &s);
	daemon_conf_retention(d, name, NULL); /* config.h: the file's retention, if it names it */
	/* with a config, a new volume is exported where the config maps it (if anywhere) */
	for (unsigned i = 0; i < d->conf->cfg->ntargets; i++)
		for (unsigned j = 0; j < d->conf->cfg->targets[i].nluns; j++)
			if (!strcmp(d->conf->cfg->targets[i].luns[j].volume, name)) {
				rc = daemon_conf_apply(d, NULL, err, sizeof(err));
				if (rc)
					log_error("serve", "%s", err);
				return 0;
			}
	return 0;
}

void daemon_unserve(struct daemon *d, struct served *s)
{
	char err[512];
	int rc;

	if (s->iqn[0])
		gateway_remove_target(d->gw, s->iqn);
	if (d->conf) { /* targets that map it lose the LUN first */
		pthread_mutex_lock(&d->lock);
		rc = daemon_conf_apply(d, s->lun.name, err, sizeof(err));
		pthread_mutex_unlock(&d->lock);
		if (rc)
			log_error("serve", "%s", err);
	}
	scsi_lun_release(&s->lun);
	rc = volume_close(s->vol);
	if (rc)
		log_error("serve", "closing volume %s: %s", s->lun.name, strerror(-rc));
	free(s);
}

json_object *daemon_hello(struct daemon *d, json_object *req)
{
	json_object *r = control_reply_ok();

	(void)req;
	json_object_object_add(r, "repo", json_object_new_string(d->repo_url));
	json_object_object_add(r, "id", json_object_new_string(repo_id_hex(d->repo)));
	return r;
}

static int open_cb(void *arg, const struct volume_info *vi)
{
	struct daemon *d = arg;
	struct served *s;
	int rc = open_served(d, vi->name, 1, &s);

	if (rc)
		log_error("serve", "cannot export volume %s: %s", vi->name, strerror(-rc));
	return 0;
}

/* ---- configuration mode ---- */

static void live_free(struct live_target *lt)
{
	free(lt->luns);
	free(lt);
}

/* The LUN array target t wants; volumes opened on demand (never skip). */
static int want_luns(struct daemon *d, const struct cfg_target *t, const char *skip,
		     struct lun ***out, uint32_t *nout)
{
	uint32_t n = 0;
	struct lun **luns;

	for (unsigned i = 0; i < t->nluns; i++)
		if (t->luns[i].lun + 1 > n)
			n = t->luns[i].lun + 1;
	luns = calloc(n ? n : 1, sizeof(*luns));
	if (!luns)
		return -ENOMEM;
	for (unsigned i = 0; i < t->nluns; i++) {
		const char *vol = t->luns[i].volume;
		struct served *s = daemon_find_served(d, vol);
		int rc;

		if (skip && !strcmp(vol, skip))
			continue;
		if (!s) {
			rc = open_served(d, vol, 0, &s);
			if (rc) {
				log_warn("serve", "target %s LUN %u: volume %s cannot be opened (%s): LUN left out",
					 t->iqn, t->luns[i].lun, vol, strerror(-rc));
				continue;
			}
		}
		luns[t->luns[i].lun] = &s->lun;
	}
	*out = luns;
	*nout = n;
	return 0;
}

static int apply_portals(struct daemon *d, char *err, size_t errlen)
{
	struct serve_conf *sc = d->conf;
	const struct cairn_config *c = sc->cfg;
	int rc;

	for (unsigned i = 0; i < sc->nportals;) { /* gone from the config */
		int keep = 0;

		for (unsigned j = 0; j < c->nportals; j++)
			keep |= !strcmp(sc->portals[i], c->portals[j]);
		if (keep) {
			i++;
			continue;
		}
		gateway_remove_portal(d->gw, sc->portals[i]);
		memmove(sc->portals[i], sc->portals[i + 1], (sc->nportals - i - 1) * sizeof(sc->portals[0]));
		sc->nportals--;
	}
	for (unsigned j = 0; j < c->nportals; j++) {
		int have = 0;
		void *p;

		for (unsigned i = 0; i < sc->nportals; i++)
			have |= !strcmp(sc->portals[i], c->portals[j]);
		if (have)
			continue;
		rc = gateway_add_portal(d->gw, c->portals[j]);
		if (rc == -EEXIST)
			continue; /* the --listen portal */
		if (rc)
			return snprintf(err, errlen, "cannot listen on portal %s: %s", c->portals[j],
					rc == -EINVAL ? "invalid address" : strerror(-rc)), rc;
		p = realloc(sc->portals, (sc->nportals + 1) * sizeof(sc->portals[0]));
		if (!p) {
			gateway_remove_portal(d->gw, c->portals[j]);
			return -ENOMEM;
		}
		sc->portals = p;
		snprintf(sc->portals[sc->nportals++], CFG_ADDR_MAX, "%s", c->portals[j]);
	}
	return 0;
}

int daemon_conf_apply(struct daemon *d, const char *skip_volume, char *err, size_t errlen)
{
	struct serve_conf *sc = d->conf;
	const struct cairn_config *c = sc->cfg;
	struct gw_security sec;
	struct chap_cred *acc;
	int rc;

	snprintf(err, errlen, "out of memory");
	rc = apply_portals(d, err, errlen);
	if (rc)
		return rc;
	/* targets gone from the config */
	for (struct live_target **pp = &sc->live; *pp;) {
		struct live_target *lt = *pp;

		if (config_find_target(c, lt->iqn)) {
			pp = &lt->next;
			continue;
		}
		*pp = lt->next;
		gateway_remove_target(d->gw, lt->iqn);
		live_free(lt);
	}
	for (unsigned i = 0; i < c->ntargets; i++) {
		const struct cfg_target *t = &c->targets[i];
		struct live_target *lt, **pp;
		struct lun **luns;
		uint32_t n;

		rc = config_security(c, t, &sec, &acc);
		if (rc)
			return rc;
		rc = want_luns(d, t, skip_volume, &luns, &n);
		if (rc)
			goto out_acc;
		for (pp = &sc->live; *pp && strcmp((*pp)->iqn, t->iqn); pp = &(*pp)->next)
			;
		lt = *pp;
		if (lt && lt->nluns == n && !memcmp(lt->luns, luns, n * sizeof(*luns))) {
			free(luns);
			rc = gateway_set_security(d->gw, t->iqn, &sec);
			goto out_acc;
		}
		if (lt) { /* LUNs changed: re-export (its sessions log in again) */
			*pp = lt->next;
			gateway_remove_target(d->gw, lt->iqn);
			live_free(lt);
		}
		lt = calloc(1, sizeof(*lt));
		if (!lt) {
			free(luns);
			rc = -ENOMEM;
			goto out_acc;
		}
		snprintf(lt->iqn, sizeof(lt->iqn), "%s", t->iqn);
		lt->luns = luns;
		lt->nluns = n;
		/* with its policy from the start: no login slips in unchecked */
		rc = gateway_add_target_secure(d->gw, lt->iqn, luns, n, &sec);
		if (rc) {
			snprintf(err, errlen, "cannot export target %s: %s", t->iqn, strerror(-rc));
			live_free(lt);
			goto out_acc;
		}
		lt->next = sc->live;
		sc->live = lt;
out_acc:
		OPENSSL_cleanse(acc, sec.naccounts * sizeof(*acc));
		free(acc);
		if (rc)
			return rc;
	}
	daemon_conf_retention(d, NULL, skip_volume); /* config.h: retention of the volumes it names */
	rc = config_security(c, NULL, &sec, &acc);
	if (rc)
		return rc;
	rc = gateway_set_security(d->gw, NULL, &sec);
	OPENSSL_cleanse(acc, sec.naccounts * sizeof(*acc));
	free(acc);
	return rc;
}

struct served *daemon_find_served(struct daemon *d, const char *name)
{
	for (struct served *s = d->served; s; s = s->next)
		if (!strcmp(s->lun.name, name))
			return s;
	return NULL;
}

struct served *daemon_take_served(struct daemon *d, const char *name)
{
	for (struct served **pp = &d->served; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->lun.name, name)) {
			struct served *s = *pp;
			*pp = s->next;
			return s;
		}
	}
	return NULL;
}

json_object *daemon_volume_err(const char *name, int err)
{
	char msg[512];
	int status = cli_volume_fail(name, err, msg, sizeof(msg));
	return control_reply_err(status, msg);
}

const char *daemon_req_str(json_object *req, const char *key)
{
	json_object *f;
	return json_object_object_get_ex(req, key, &f) ? json_object_get_string(f) : NULL;
}

int64_t daemon_req_int(json_object *req, const char *key)
{
	json_object *f;
	return json_object_object_get_ex(req, key, &f) ? json_object_get_int64(f) : 0;
}

/* Control requests: dispatched through daemon_cmds[]. */
static json_object *handle(void *arg, json_object *req)
{
	const char *cmd = daemon_req_str(req, "cmd");

	for (const struct daemon_cmd *c = daemon_cmds; cmd && c->name; c++)
		if (!strcmp(c->name, cmd))
			return c->fn(arg, req);
	return control_reply_err(2, "unknown control request (is the daemon older than this cairn?)");
}

int cmd_serve(struct cli_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_GLOBAL_LONGOPTS,
		{ "listen", required_argument, NULL, 'l' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'C' },
		{ "max-connections", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct daemon d = { 0 };
	struct repo_open_opts ro = { 0 };
	struct gateway_opts go = { .listen = "127.0.0.1:3260" };
	struct control_server *ctl = NULL;
	struct serve_conf sc = { 0 };
	char sdir[512], sock[256], err[1024];
	int listen_given = 0;
	sigset_t sigs;
	int c, rc, sig, status = 1;

	while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l': go.listen = optarg; listen_given = 1; break;
		case 's': d.state_dir = optarg; break;
		case 'C': sc.path = optarg; break;
		case 'M': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (!*optarg || *end || v < 1 || v > GW_MAX_CONNECTIONS)
				return cli_fail(MSG_USAGE, "--max-connections takes a number from 1 to 64");
			go.max_connections = (unsigned)v;
			break;
		}
		case 'h': fputs(usage, stdout); return 0;
		default:
			if (cli_other_opt(g, c, optarg, usage))
				return 2;
			break;
		}
	}
	if (optind != argc)
		return cli_fail(MSG_USAGE, "serve takes no positional arguments");
	if (!g->repo || !*g->repo)
		return cli_fail(MSG_NO_REPO_ARG);
	if (sc.path) {
		rc = config_load(sc.path, &sc.cfg, err, sizeof(err));
		if (rc)
			return cli_fail(MSG_CONFIG, err);
		if (!listen_given && sc.cfg->nportals)
			go.listen = sc.cfg->portals[0];
		if (!go.max_connections)
			go.max_connections = sc.cfg->max_connections;
		d.conf = &sc;
	}

	/* Threads inherit this mask; only the main thread takes the signals, by sigwait. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&d.lock, NULL);

	if ((status = cli_repo_opts(g, &ro)) != 0)
		return status;
	status = 1;
	/* S3: the local cache of packs and index segments lives in the state directory */
	if (d.state_dir)
		snprintf(sdir, sizeof(sdir), "%s/cache", d.state_dir), ro.cache_dir = sdir;
	else
		ro.state_root = cli_default_state_dir("", sdir, sizeof(sdir));
	cli_repo_canon(g->repo, d.repo_url, sizeof(d.repo_url));
	rc = repo_open(g->repo, &ro, &d.repo);
	if (rc) {
		config_free(sc.cfg);
		return cli_repo_fail(g->repo, rc);
	}
	repo_chunk_store(d.repo, &d.cs);
	lun_volume_purge_setup(repo_id_hex(d.repo)); /* lun_volume.h: SANITIZE's purge gc */
	if (!d.state_dir)
		d.state_dir = cli_default_state_dir(repo_id_hex(d.repo), sdir, sizeof(sdir));
	rc = util_mkdirs(d.state_dir, 0700);
	if (rc) {
		status = cli_fail(MSG_STATE_DIR, d.state_dir, strerror(-rc));
		goto out_repo;
	}
	/* volume_delete_local: a crash after a tombstone left the volume's local state */
	if ((rc = volume_state_sweep(&d.cs, d.state_dir, NULL)) != 0)
		log_warn("serve", "deleted volumes' local state in %s not swept: %s", d.state_dir,
			 strerror(-rc));
	rc = gateway_start(&go, &d.gw);
	if (rc == -EADDRINUSE) {
		status = cli_fail(MSG_LISTEN_IN_USE, go.listen);
		goto out_repo;
	} else if (rc == -EINVAL) {
		status = cli_fail(MSG_LISTEN_BAD, go.listen);
		goto out_repo;
	} else if (rc) {
		status = cli_fail(MSG_LISTEN_FAILED, go.listen, strerror(-rc));
		goto out_repo;
	}
	pthread_mutex_lock(&d.lock);
	if (d.conf) {
		rc = daemon_conf_apply(&d, NULL, err, sizeof(err));
		pthread_mutex_unlock(&d.lock);
		if (rc) {
			status = cli_fail(MSG_CONFIG, err);
			goto out_volumes;
		}
	} else {
		rc = volume_list(&d.cs, open_cb, &d);
		pthread_mutex_unlock(&d.lock);
		if (rc) {
			status = cli_repo_fail(g->repo, rc);
			goto out_volumes;
		}
	}
	rc = cli_control_path(repo_id_hex(d.repo), sock, sizeof(sock));
	if (!rc)
		rc = control_server_start(sock, handle, &d, &ctl);
	if (rc) {
		status = cli_fail(MSG_CONTROL, sock, strerror(-rc));
		goto out_volumes;
	}
	{
		char host[128];
		const char *colon = strrchr(go.listen, ':');
		size_t hl = colon ? (size_t)(colon - go.listen) : strlen(go.listen);
		snprintf(host, sizeof(host), "%.*s", (int)hl, go.listen);
		printf("cairn: serving %s on %s:%d (state %s, control %s)\n", g->repo, host,
		       gateway_port(d.gw), d.state_dir, sock);
		fflush(stdout);
	}

	for (;;) {
		if (sigwait(&sigs, &sig) == 0 && (sig == SIGINT || sig == SIGTERM))
			break;
	}
	log_info("serve", "signal %d: stopping", sig);
	status = 0;
	control_server_stop(ctl);
	daemon_gc_wait(); /* gc_cli.h: a running gc stops before volumes and repository close */
out_volumes:
	gateway_stop(d.gw);
	d.gw = NULL;
	while (sc.live) {
		struct live_target *lt = sc.live;
		sc.live = lt->next;
		live_free(lt);
	}
	while (d.served) {
		struct served *s = d.served;
		d.served = s->next;
		scsi_lun_release(&s->lun);
		rc = volume_close(s->vol);
		if (rc) {
			log_error("serve", "closing volume %s: %s", s->lun.name, strerror(-rc));
			status = 1;
		}
		free(s);
	}
out_repo:
	repo_close(d.repo);
	config_free(sc.cfg);
	free(sc.portals);
	pthread_mutex_destroy(&d.lock);
	if (status == 0)
		printf("cairn: stopped cleanly\n");
	return status;
}
