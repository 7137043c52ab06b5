/* cmd_serve.c - `cairn serve`: the setup function that stacks the layers.
 *
 *   backend (local dir) -> repo (chunks, packs, index) -> chunk_store ops
 *     -> volume (journal, overlay, block map) -> lun ops -> gateway (iSCSI, SCSI)
 *
 * With no config every live volume is exported as target iqn.2026-11.org.cairn:<name>,
 * LUN 0. The control socket (control.h) serves the other subcommands while we run.
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

#include "cli.h"
#include "control.h"
#include "daemon.h"
#include "lun_volume.h"
#include "errmsg.h"
#include "gateway.h"
#include "log.h"
#include "util.h"
#include "volume.h"

static const char usage[] =
	"usage: cairn serve [-r REPO] [--listen ADDR:PORT] [--state-dir DIR]\n"
	"Run the iSCSI gateway: every volume is target " CAIRN_IQN_PREFIX "<volume>, LUN 0.\n"
	"  --listen ADDR:PORT  portal (default 127.0.0.1:3260; port 0 picks a free one)\n"
	"  --state-dir DIR     journal and local state (default /var/lib/cairn/<repo id>)\n"
	"Stop with Ctrl-C or SIGTERM; every acknowledged write is kept.\n";

int daemon_serve_volume(struct daemon *d, const char *name)
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
	s->luns[0] = &s->lun;
	snprintf(s->iqn, sizeof(s->iqn), CAIRN_IQN_PREFIX "%s", name);
	rc = gateway_add_target(d->gw, s->iqn, s->luns, 1);
	if (rc)
		goto out_close;
	s->next = d->served;
	d->served = s;
	log_info("serve", "exporting volume %s as %s, LUN 0", name, s->iqn);
	return 0;

out_close:
	volume_close(s->vol);
out_free:
	free(s);
	return rc;
}

void daemon_unserve(struct daemon *d, struct served *s)
{
	int rc;

	gateway_remove_target(d->gw, s->iqn);
	rc = volume_close(s->vol);
	if (rc)
		log_error("serve", "closing volume %s: %s", s->lun.name, strerror(-rc));
	free(s);
}

static int open_cb(void *arg, const struct volume_info *vi)
{
	struct daemon *d = arg;
	int rc = daemon_serve_volume(d, vi->name);

	if (rc)
		log_error("serve", "cannot export volume %s: %s", vi->name, strerror(-rc));
	return 0;
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

static const char *default_state_dir(const char *repo_id, char *buf, size_t len)
{
	if (geteuid() == 0)
		snprintf(buf, len, "/var/lib/cairn/%s", repo_id);
	else if (getenv("HOME"))
		snprintf(buf, len, "%s/.local/state/cairn/%s", getenv("HOME"), repo_id);
	else
		snprintf(buf, len, "/tmp/cairn-state-%u/%s", (unsigned)geteuid(), repo_id);
	return buf;
}

int cmd_serve(struct cli_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_GLOBAL_LONGOPTS,
		{ "listen", required_argument, NULL, 'l' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct daemon d = { 0 };
	struct repo_open_opts ro = { 0 };
	struct gateway_opts go = { .listen = "127.0.0.1:3260" };
	struct control_server *ctl = NULL;
	char sdir[512], sock[256];
	sigset_t sigs;
	int c, rc, sig, status = 1;

	while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l': go.listen = optarg; break;
		case 's': d.state_dir = optarg; break;
		case 'C': return cli_fail(MSG_USAGE, "--config is not available in this build yet");
		case 'h': fputs(usage, stdout); return 0;
		default:
			if (cli_global_opt(g, c, optarg) == 0)
				break;
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind != argc)
		return cli_fail(MSG_USAGE, "serve takes no positional arguments");
	if (!g->repo || !*g->repo)
		return cli_fail(MSG_NO_REPO_ARG);

	/* Threads inherit this mask; only the main thread takes the signals, by sigwait. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&d.lock, NULL);

	rc = repo_open(g->repo, &ro, &d.repo);
	if (rc)
		return cli_repo_fail(g->repo, rc);
	repo_chunk_store(d.repo, &d.cs);
	if (!d.state_dir)
		d.state_dir = default_state_dir(repo_id_hex(d.repo), sdir, sizeof(sdir));
	rc = util_mkdirs(d.state_dir, 0700);
	if (rc) {
		status = cli_fail(MSG_STATE_DIR, d.state_dir, strerror(-rc));
		goto out_repo;
	}
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
	rc = volume_list(&d.cs, open_cb, &d);
	pthread_mutex_unlock(&d.lock);
	if (rc) {
		status = cli_repo_fail(g->repo, rc);
		goto out_gateway;
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
out_volumes:
	gateway_stop(d.gw);
	d.gw = NULL;
	while (d.served) {
		struct served *s = d.served;
		d.served = s->next;
		rc = volume_close(s->vol);
		if (rc) {
			log_error("serve", "closing volume %s: %s", s->lun.name, strerror(-rc));
			status = 1;
		}
		free(s);
	}
out_gateway:
	if (d.gw)
		gateway_stop(d.gw);
out_repo:
	repo_close(d.repo);
	pthread_mutex_destroy(&d.lock);
	if (status == 0)
		printf("cairn: stopped cleanly\n");
	return status;
}
