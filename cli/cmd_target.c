/* cmd_target.c - `cairn target|lun|acl|chap|portal|session`: the gateway configuration
 * (config.h) and live sessions.
 *
 * A change is one request {"cmd":"config.edit","op":"<noun>.<verb>",...}. While a
 * daemon serves the repository it applies the change at once and saves its config file
 * atomically; if either fails, the daemon keeps its previous configuration. With no
 * daemon the command edits the file named by --config (or CAIRN_CONFIG) directly, also
 * atomically. Listings never show secrets; CHAP secrets are read from a file
 * (--secret-file) so they never appear on a command line.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "config.h"
#include "control.h"
#include "daemon.h"
#include "errmsg.h"
#include "util.h"

static const char usage[] =
	"usage: cairn target add IQN | remove IQN | list [--json]\n"
	"       cairn lun add IQN LUN VOLUME | remove IQN LUN\n"
	"       cairn acl add IQN (--initiator PATTERN | --ip ADDR[/PREFIX]) --access full|read-only|deny\n"
	"       cairn acl remove IQN (--initiator PATTERN | --ip ADDR[/PREFIX]) | default IQN --access A\n"
	"       cairn acl list [IQN] [--json]\n"
	"       cairn chap add USER --secret-file F [--target IQN | --discovery] [--mutual]\n"
	"       cairn chap remove USER | list [--json]\n"
	"       cairn portal add ADDR:PORT | remove ADDR:PORT | list [--json]\n"
	"       cairn session list [--json]\n"
	"While 'cairn serve' runs, changes apply at once and are saved to its --config file.\n"
	"Otherwise they edit the file given by --config FILE (or CAIRN_CONFIG).\n"
	"  --secret-file F   the CHAP secret (12 to 255 characters) on the first line of F\n"
	"  --target IQN      chap add: allow USER on this target (with --mutual: the target's own\n"
	"                    credentials for mutual CHAP)\n"
	"  --discovery       chap add: the same for discovery sessions\n";

struct targs {
	const char *noun, *verb, *config, *initiator, *ip, *access, *secret_file, *target;
	char **pos;
	int npos, json, mutual, discovery;
};

static int status_of(int rc)
{
	return rc == -EINVAL ? 2 : 1;
}

/* ---- reaching the configuration ---- */

/* Offline: the config file path, or NULL after printing why there is none. */
static const char *offline_path(const struct targs *a)
{
	const char *p = a->config ? a->config : getenv("CAIRN_CONFIG");

	if (!p || !*p) {
		cli_fail(MSG_CONFIG_NEEDED);
		return NULL;
	}
	return p;
}

/* Is a daemon serving g's repository? 1 yes (s filled), 0 no, <0 exit status negated. */
static int daemon_session(struct cli_globals *g, struct cli_session *s)
{
	int rc;

	if (!g->repo || !*g->repo)
		return 0;
	rc = cli_open(g, CLI_OPEN_READ, s);
	if (rc)
		return -rc;
	if (s->via_daemon)
		return 1;
	cli_close(s);
	return 0;
}

static int do_edit(struct cli_globals *g, const struct targs *a, json_object *req)
{
	struct cli_session s;
	struct cairn_config *c = NULL;
	json_object *resp = NULL;
	const char *path;
	char err[1024];
	int rc;

	rc = daemon_session(g, &s);
	if (rc < 0)
		return -rc;
	if (rc) {
		json_object_object_add(req, "cmd", json_object_new_string("config.edit"));
		rc = cli_daemon_call(&s, req, &resp);
		if (resp)
			json_object_put(resp);
		cli_close(&s);
		return rc;
	}
	path = offline_path(a);
	if (!path)
		return 2;
	rc = config_load(path, &c, err, sizeof(err));
	if (rc == -ENOENT)
		c = config_new();
	else if (rc)
		return cli_fail(MSG_CONFIG, err);
	if (!c)
		return cli_fail(MSG_CONFIG, "out of memory");
	rc = config_edit(c, req, err, sizeof(err));
	if (!rc)
		rc = config_save(c, path, err, sizeof(err));
	config_free(c);
	if (rc) {
		fprintf(stderr, "cairn: %s; nothing was changed\n", err);
		return status_of(rc);
	}
	return 0;
}

/* The configuration view (config_to_json); *out to be put by the caller. */
static int do_view(struct cli_globals *g, const struct targs *a, json_object **out)
{
	struct cli_session s;
	struct cairn_config *c;
	json_object *req, *resp = NULL, *v;
	const char *path;
	char err[1024];
	int rc;

	rc = daemon_session(g, &s);
	if (rc < 0)
		return -rc;
	if (rc) {
		req = json_object_new_object();
		json_object_object_add(req, "cmd", json_object_new_string("config.show"));
		rc = cli_daemon_call(&s, req, &resp);
		json_object_put(req);
		cli_close(&s);
		if (rc)
			return rc;
		if (!json_object_object_get_ex(resp, "config", &v)) {
			json_object_put(resp);
			return cli_fail(MSG_DAEMON, "the daemon sent no configuration");
		}
		*out = json_object_get(v);
		json_object_put(resp);
		return 0;
	}
	path = offline_path(a);
	if (!path)
		return 2;
	rc = config_load(path, &c, err, sizeof(err));
	if (rc)
		return cli_fail(MSG_CONFIG, err);
	*out = config_to_json(c);
	config_free(c);
	return 0;
}

/* ---- listings ---- */

static const char *jstr(json_object *o, const char *k)
{
	json_object *f;

	return json_object_object_get_ex(o, k, &f) ? json_object_get_string(f) : "";
}

static json_object *jget(json_object *o, const char *k)
{
	json_object *f;

	return json_object_object_get_ex(o, k, &f) ? f : NULL;
}

static void print_json(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
}

static int list_targets(json_object *cfg, int json)
{
	json_object *ts = jget(cfg, "targets");
	size_t n = ts ? json_object_array_length(ts) : 0;

	if (json) {
		print_json(ts);
		return 0;
	}
	printf("%-48s %-28s %-10s %s\n", "TARGET", "LUNS", "DEFAULT", "CHAP");
	for (size_t i = 0; i < n; i++) {
		json_object *t = json_object_array_get_idx(ts, i), *l = jget(t, "luns");
		json_object *chap = jget(jget(t, "auth"), "chap");
		char luns[256] = "", chaps[256] = "";
		size_t off = 0;

		for (size_t j = 0; l && j < json_object_array_length(l) && off < sizeof(luns); j++) {
			json_object *e = json_object_array_get_idx(l, j);
			off += (size_t)snprintf(luns + off, sizeof(luns) - off, "%s%s=%s", j ? "," : "",
						jstr(e, "lun"), jstr(e, "volume"));
		}
		off = 0;
		for (size_t j = 0; chap && j < json_object_array_length(chap) && off < sizeof(chaps); j++)
			off += (size_t)snprintf(chaps + off, sizeof(chaps) - off, "%s%s", j ? "," : "",
						json_object_get_string(json_object_array_get_idx(chap, j)));
		printf("%-48s %-28s %-10s %s\n", jstr(t, "iqn"), luns[0] ? luns : "-",
		       jstr(t, "default_access"), chaps[0] ? chaps : "-");
	}
	return 0;
}

static int list_acl(json_object *cfg, const char *iqn, int json)
{
	json_object *ts = jget(cfg, "targets"), *arr = json_object_new_array();
	size_t n = ts ? json_object_array_length(ts) : 0;
	int found = !iqn;

	for (size_t i = 0; i < n; i++) {
		json_object *t = json_object_array_get_idx(ts, i), *acl = jget(t, "acl");

		if (iqn && strcmp(iqn, jstr(t, "iqn")))
			continue;
		found = 1;
		for (size_t j = 0; acl && j < json_object_array_length(acl); j++) {
			json_object *r = json_object_array_get_idx(acl, j), *o = json_object_new_object();
			int ip = jget(r, "ip") != NULL;

			json_object_object_add(o, "target", json_object_new_string(jstr(t, "iqn")));
			json_object_object_add(o, "kind", json_object_new_string(ip ? "ip" : "initiator"));
			json_object_object_add(o, "match", json_object_new_string(jstr(r, ip ? "ip" : "initiator")));
			json_object_object_add(o, "access", json_object_new_string(jstr(r, "access")));
			json_object_array_add(arr, o);
		}
		{ /* the default closes each target's list */
			json_object *o = json_object_new_object();
			json_object_object_add(o, "target", json_object_new_string(jstr(t, "iqn")));
			json_object_object_add(o, "kind", json_object_new_string("default"));
			json_object_object_add(o, "match", json_object_new_string("*"));
			json_object_object_add(o, "access", json_object_new_string(jstr(t, "default_access")));
			json_object_array_add(arr, o);
		}
	}
	if (!found) {
		json_object_put(arr);
		return cli_fail(MSG_CONFIG, "no such target in the configuration; 'cairn target list' shows them");
	}
	if (json) {
		print_json(arr);
	} else {
		printf("%-48s %-10s %-40s %s\n", "TARGET", "KIND", "MATCH", "ACCESS");
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *o = json_object_array_get_idx(arr, i);
			printf("%-48s %-10s %-40s %s\n", jstr(o, "target"), jstr(o, "kind"),
			       jstr(o, "match"), jstr(o, "access"));
		}
	}
	json_object_put(arr);
	return 0;
}

static int list_chap(json_object *cfg, int json)
{
	json_object *out = json_object_new_object(), *acc = jget(cfg, "accounts"), *mut;
	json_object *ts = jget(cfg, "targets");

	json_object_object_add(out, "accounts", json_object_get(acc));
	mut = json_object_new_array();
	for (size_t i = 0; ts && i < json_object_array_length(ts); i++) {
		json_object *t = json_object_array_get_idx(ts, i);
		const char *u = jstr(jget(t, "auth"), "mutual_user");

		if (*u) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "target", json_object_new_string(jstr(t, "iqn")));
			json_object_object_add(o, "user", json_object_new_string(u));
			json_object_array_add(mut, o);
		}
	}
	if (*jstr(jget(cfg, "discovery"), "mutual_user")) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "target", json_object_new_string("(discovery)"));
		json_object_object_add(o, "user", json_object_new_string(jstr(jget(cfg, "discovery"), "mutual_user")));
		json_object_array_add(mut, o);
	}
	json_object_object_add(out, "mutual", mut);
	json_object_object_add(out, "discovery", json_object_get(jget(jget(cfg, "discovery"), "chap")));
	if (json) {
		print_json(out);
	} else {
		printf("%-32s %s\n", "USER", "GROUPS");
		for (size_t i = 0; acc && i < json_object_array_length(acc); i++) {
			json_object *a = json_object_array_get_idx(acc, i), *gr = jget(a, "groups");
			printf("%-32s", jstr(a, "user"));
			for (size_t j = 0; gr && j < json_object_array_length(gr); j++)
				printf("%s%s", j ? "," : " ", json_object_get_string(json_object_array_get_idx(gr, j)));
			printf("\n");
		}
		for (size_t i = 0; i < json_object_array_length(mut); i++) {
			json_object *o = json_object_array_get_idx(mut, i);
			printf("mutual user %s for %s\n", jstr(o, "user"), jstr(o, "target"));
		}
	}
	json_object_put(out);
	return 0;
}

static int list_sessions(struct cli_globals *g, int json)
{
	struct cli_session s;
	json_object *req, *resp = NULL, *arr;
	int rc = daemon_session(g, &s);

	if (rc <= 0)
		return rc < 0 ? -rc : cli_fail(MSG_SESSIONS_NO_DAEMON);
	req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string("session.list"));
	rc = cli_daemon_call(&s, req, &resp);
	json_object_put(req);
	cli_close(&s);
	if (rc)
		return rc;
	arr = jget(resp, "sessions");
	if (json) {
		print_json(arr);
	} else {
		printf("%-40s %-22s %-40s %-12s %5s %8s %12s %12s\n", "INITIATOR", "ADDRESS", "TARGET",
		       "ISID", "TSIH", "COMMANDS", "READ", "WRITTEN");
		for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
			json_object *o = json_object_array_get_idx(arr, i), *cs;
			printf("%-40s %-22s %-40s %-12s %5s %8s %12s %12s\n", jstr(o, "initiator"),
			       jstr(o, "address"), *jstr(o, "target") ? jstr(o, "target") : "(discovery)",
			       jstr(o, "isid"), jstr(o, "tsih"), jstr(o, "commands"), jstr(o, "bytes_read"),
			       jstr(o, "bytes_written"));
			cs = jget(o, "connections");
			for (size_t j = 0; cs && j < json_object_array_length(cs); j++) {
				json_object *co = json_object_array_get_idx(cs, j);

				printf("  connection CID %-5s %-22s portal %-22s %8s %12s %12s\n",
				       jstr(co, "cid"), jstr(co, "address"), jstr(co, "portal"),
				       jstr(co, "commands"), jstr(co, "bytes_read"),
				       jstr(co, "bytes_written"));
			}
		}
	}
	json_object_put(resp);
	return 0;
}

/* ---- requests ---- */

static int read_secret(const char *path, char *out, size_t len)
{
	void *data = NULL;
	size_t n = 0;
	int rc = util_read_file(path, &data, &n);
	char *nl;

	if (rc)
		return cli_fail(MSG_CHAP_SECRET_FILE, path, strerror(-rc));
	nl = strpbrk(data, "\r\n");
	if (nl)
		*nl = '\0';
	if (strlen(data) >= len) {
		OPENSSL_cleanse(data, n);
		free(data);
		return cli_fail(MSG_CHAP_SECRET_FILE, path, "the secret is too long");
	}
	snprintf(out, len, "%s", (char *)data);
	OPENSSL_cleanse(data, n);
	free(data);
	return 0;
}

static void add(json_object *req, const char *k, const char *v)
{
	if (v)
		json_object_object_add(req, k, json_object_new_string(v));
}

static int need_pos(const struct targs *a, int n, const char *what)
{
	char detail[200];

	if (a->npos == n)
		return 0;
	snprintf(detail, sizeof(detail), "%s %s takes %s", a->noun, a->verb, what);
	return cli_fail(MSG_USAGE, detail);
}

static int run(struct cli_globals *g, struct targs *a)
{
	json_object *req, *cfg = NULL;
	char op[64], secret[CHAP_SECRET_MAX];
	int rc, list = !strcmp(a->verb, "list");

	if (list && !strcmp(a->noun, "session"))
		return need_pos(a, 0, "no arguments") ? 2 : list_sessions(g, a->json);
	if (list) {
		if (need_pos(a, strcmp(a->noun, "acl") ? 0 : a->npos > 1 ? 1 : a->npos,
			     "no arguments (acl list: an optional IQN)"))
			return 2;
		rc = do_view(g, a, &cfg);
		if (rc)
			return rc;
		if (!strcmp(a->noun, "target"))
			rc = list_targets(cfg, a->json);
		else if (!strcmp(a->noun, "acl"))
			rc = list_acl(cfg, a->npos ? a->pos[0] : NULL, a->json);
		else if (!strcmp(a->noun, "chap"))
			rc = list_chap(cfg, a->json);
		else
			print_json(jget(cfg, "portals")), rc = 0;
		json_object_put(cfg);
		return rc;
	}
	snprintf(op, sizeof(op), "%s.%s", a->noun, a->verb);
	req = json_object_new_object();
	json_object_object_add(req, "op", json_object_new_string(op));
	rc = 0;
	if (!strcmp(a->noun, "target") || !strcmp(a->noun, "acl")) {
		rc = need_pos(a, 1, "one IQN");
		if (!rc) {
			add(req, "iqn", a->pos[0]);
			add(req, "initiator", a->initiator);
			add(req, "ip", a->ip);
			add(req, "access", a->access);
		}
	} else if (!strcmp(a->noun, "lun")) {
		int add_op = !strcmp(a->verb, "add");
		uint64_t lun;

		rc = need_pos(a, add_op ? 3 : 2, add_op ? "IQN LUN VOLUME" : "IQN LUN");
		if (!rc && (util_parse_size(a->pos[1], &lun) || lun > 255 || strpbrk(a->pos[1], "KMGTPkmgtpB.")))
			rc = cli_fail(MSG_USAGE, "LUN must be a number from 0 to 255");
		if (!rc) {
			add(req, "iqn", a->pos[0]);
			json_object_object_add(req, "lun", json_object_new_int64((int64_t)lun));
			if (add_op)
				add(req, "volume", a->pos[2]);
		}
	} else if (!strcmp(a->noun, "chap")) {
		rc = need_pos(a, 1, "one USER");
		if (!rc && !strcmp(a->verb, "add")) {
			if (!a->secret_file)
				rc = cli_fail(MSG_USAGE, "chap add needs --secret-file F (the secret never goes on the command line)");
			else
				rc = read_secret(a->secret_file, secret, sizeof(secret));
			if (!rc) {
				add(req, "secret", secret);
				OPENSSL_cleanse(secret, sizeof(secret));
				add(req, "target", a->target);
				json_object_object_add(req, "mutual", json_object_new_boolean(a->mutual));
				json_object_object_add(req, "discovery", json_object_new_boolean(a->discovery));
			}
		}
		if (!rc)
			add(req, "user", a->pos[0]);
	} else if (!strcmp(a->noun, "portal")) {
		rc = need_pos(a, 1, "one ADDR:PORT");
		if (!rc)
			add(req, "addr", a->pos[0]);
	}
	if (!rc)
		rc = do_edit(g, a, req);
	json_object_put(req);
	if (!rc)
		printf("%s %s: done%s\n", a->noun, a->verb,
		       a->npos ? "" : "");
	return rc;
}

static int parse(struct cli_globals *g, const char *noun, const char *const *verbs, int argc,
		 char **argv)
{
	static const struct option opts[] = {
		CLI_GLOBAL_LONGOPTS,
		{ "config", required_argument, NULL, 'C' },
		{ "json", no_argument, NULL, 'j' },
		{ "initiator", required_argument, NULL, 'i' },
		{ "ip", required_argument, NULL, 'p' },
		{ "access", required_argument, NULL, 'a' },
		{ "secret-file", required_argument, NULL, 's' },
		{ "target", required_argument, NULL, 't' },
		{ "mutual", no_argument, NULL, 'm' },
		{ "discovery", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct targs a = { .noun = noun };
	char detail[200];
	int c, ok = 0;

	while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'C': a.config = optarg; break;
		case 'j': a.json = 1; break;
		case 'i': a.initiator = optarg; break;
		case 'p': a.ip = optarg; break;
		case 'a': a.access = optarg; break;
		case 's': a.secret_file = optarg; break;
		case 't': a.target = optarg; break;
		case 'm': a.mutual = 1; break;
		case 'd': a.discovery = 1; break;
		case 'h': fputs(usage, stdout); return 0;
		default:
			if (cli_other_opt(g, c, optarg, usage))
				return 2;
			break;
		}
	}
	if (optind >= argc) {
		snprintf(detail, sizeof(detail), "%s needs a subcommand", noun);
		return cli_fail(MSG_USAGE, detail);
	}
	a.verb = argv[optind++];
	for (int i = 0; verbs[i]; i++)
		ok |= !strcmp(verbs[i], a.verb);
	if (!ok) {
		snprintf(detail, sizeof(detail), "unknown %s subcommand '%s'", noun, a.verb);
		return cli_fail(MSG_USAGE, detail);
	}
	a.pos = argv + optind;
	a.npos = argc - optind;
	return run(g, &a);
}

static const char *const v_arl[] = { "add", "remove", "list", NULL };

int cmd_target(struct cli_globals *g, int argc, char **argv)
{
	return parse(g, "target", v_arl, argc, argv);
}

int cmd_lun(struct cli_globals *g, int argc, char **argv)
{
	static const char *const v[] = { "add", "remove", NULL };
	return parse(g, "lun", v, argc, argv);
}

int cmd_acl(struct cli_globals *g, int argc, char **argv)
{
	static const char *const v[] = { "add", "remove", "default", "list", NULL };
	return parse(g, "acl", v, argc, argv);
}

int cmd_chap(struct cli_globals *g, int argc, char **argv)
{
	return parse(g, "chap", v_arl, argc, argv);
}

int cmd_portal(struct cli_globals *g, int argc, char **argv)
{
	return parse(g, "portal", v_arl, argc, argv);
}

int cmd_session(struct cli_globals *g, int argc, char **argv)
{
	static const char *const v[] = { "list", NULL };
	return parse(g, "session", v, argc, argv);
}

/* ---- daemon side ---- */

json_object *daemon_config_edit(struct daemon *d, json_object *req)
{
	struct serve_conf *sc = d->conf;
	struct cairn_config *old, *nw;
	char err[1024], err2[512];
	int rc;

	if (!sc)
		return control_reply_err(1, "this daemon was started without --config, so a change could not be saved; restart it with 'cairn serve --config FILE'");
	pthread_mutex_lock(&d->lock);
	old = sc->cfg;
	rc = config_dup(old, &nw, err, sizeof(err));
	if (rc)
		goto out_unlock;
	rc = config_edit(nw, req, err, sizeof(err));
	if (rc) {
		config_free(nw);
		goto out_unlock;
	}
	sc->cfg = nw;
	rc = daemon_conf_apply(d, NULL, err, sizeof(err));
	if (!rc)
		rc = config_save(nw, sc->path, err, sizeof(err));
	if (rc) { /* back to what was in force and on disk */
		sc->cfg = old;
		if (daemon_conf_apply(d, NULL, err2, sizeof(err2)))
			fprintf(stderr, "cairn: restoring the previous configuration: %s\n", err2);
		config_free(nw);
	} else {
		config_free(old);
	}
out_unlock:
	pthread_mutex_unlock(&d->lock);
	if (rc) {
		strncat(err, "; nothing was changed", sizeof(err) - strlen(err) - 1);
		return control_reply_err(status_of(rc), err);
	}
	return control_reply_ok();
}

json_object *daemon_config_show(struct daemon *d, json_object *req)
{
	json_object *r = control_reply_ok(), *cfg;

	(void)req;
	pthread_mutex_lock(&d->lock);
	if (d->conf) {
		cfg = config_to_json(d->conf->cfg);
	} else { /* the default: one target per volume */
		json_object *ts = json_object_new_array();

		cfg = json_object_new_object();
		for (struct served *s = d->served; s; s = s->next) {
			json_object *t = json_object_new_object(), *l = json_object_new_array();
			json_object *lo = json_object_new_object(), *auth = json_object_new_object();

			json_object_object_add(t, "iqn", json_object_new_string(s->iqn));
			json_object_object_add(lo, "lun", json_object_new_int64(0));
			json_object_object_add(lo, "volume", json_object_new_string(s->lun.name));
			json_object_array_add(l, lo);
			json_object_object_add(t, "luns", l);
			json_object_object_add(t, "acl", json_object_new_array());
			json_object_object_add(t, "default_access", json_object_new_string("full"));
			json_object_object_add(auth, "chap", json_object_new_array());
			json_object_object_add(t, "auth", auth);
			json_object_array_add(ts, t);
		}
		json_object_object_add(cfg, "targets", ts);
		json_object_object_add(cfg, "portals", json_object_new_array());
		json_object_object_add(cfg, "accounts", json_object_new_array());
	}
	pthread_mutex_unlock(&d->lock);
	json_object_object_add(r, "config", cfg);
	return r;
}

static int session_cb(void *arg, const struct gw_session_info *si)
{
	json_object *o = json_object_new_object(), *conns;
	char isid[13];

	util_hex(si->isid, 6, isid);
	json_object_object_add(o, "initiator", json_object_new_string(si->initiator));
	json_object_object_add(o, "address", json_object_new_string(si->peer));
	json_object_object_add(o, "target", json_object_new_string(si->target));
	json_object_object_add(o, "isid", json_object_new_string(isid));
	json_object_object_add(o, "tsih", json_object_new_int(si->tsih));
	json_object_object_add(o, "access", json_object_new_string(si->read_only ? "read-only" : "full"));
	json_object_object_add(o, "chap_user", json_object_new_string(si->chap_user));
	json_object_object_add(o, "commands", json_object_new_int64((int64_t)si->commands));
	json_object_object_add(o, "bytes_read", json_object_new_int64((int64_t)si->bytes_read));
	json_object_object_add(o, "bytes_written", json_object_new_int64((int64_t)si->bytes_written));
	json_object_object_add(o, "max_connections", json_object_new_int64(si->max_connections));
	conns = json_object_new_array();
	for (unsigned i = 0; i < si->nconns; i++) {
		const struct gw_conn_info *ci = &si->conns[i];
		json_object *co = json_object_new_object();

		json_object_object_add(co, "cid", json_object_new_int(ci->cid));
		json_object_object_add(co, "address", json_object_new_string(ci->peer));
		json_object_object_add(co, "portal", json_object_new_string(ci->portal));
		json_object_object_add(co, "commands", json_object_new_int64((int64_t)ci->commands));
		json_object_object_add(co, "bytes_read", json_object_new_int64((int64_t)ci->bytes_read));
		json_object_object_add(co, "bytes_written",
				       json_object_new_int64((int64_t)ci->bytes_written));
		json_object_array_add(conns, co);
	}
	json_object_object_add(o, "connections", conns);
	json_object_array_add(arg, o);
	return 0;
}

json_object *daemon_session_list(struct daemon *d, json_object *req)
{
	json_object *arr = json_object_new_array(), *r;
	int rc;

	(void)req;
	rc = gateway_list_sessions(d->gw, session_cb, arr);
	if (rc) {
		json_object_put(arr);
		return control_reply_err(1, strerror(-rc));
	}
	r = control_reply_ok();
	json_object_object_add(r, "sessions", arr);
	return r;
}
