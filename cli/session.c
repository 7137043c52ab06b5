/* session.c - how a subcommand reaches the repository: through the daemon's control
 * socket when one serves it, else directly (see cli.h). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "control.h"
#include "errmsg.h"
#include "util.h"

int cli_global_opt(struct cli_globals *g, int c, char *arg)
{
	switch (c) {
	case 'r': g->repo = arg; return 0;
	case CLI_OPT_PASSWORD_FILE: g->password_file = arg; return 0;
	case CLI_OPT_S3_ENDPOINT: g->s3_endpoint = arg; return 0;
	case CLI_OPT_KEY_FILE: g->key_file = arg; return 0;
	default: return -1;
	}
}

int cli_other_opt(struct cli_globals *g, int c, char *arg, const char *usage)
{
	if (cli_global_opt(g, c, arg) == 0)
		return 0;
	fputs(usage, stderr);
	return -1;
}

int cli_parse_chunk_size(const char *arg, uint32_t *out)
{
	uint64_t cs;

	if (util_parse_size(arg, &cs) || cs < CHUNK_SIZE_MIN || cs > CHUNK_SIZE_MAX || (cs & (cs - 1)))
		return cli_fail(MSG_BAD_CHUNK_SIZE, arg);
	*out = (uint32_t)cs;
	return 0;
}

/* The run directory of control sockets (see cli_control_path). */
static void run_dir(char *buf, size_t len)
{
	const char *dir = getenv("CAIRN_RUN_DIR");

	if (dir && *dir)
		snprintf(buf, len, "%s", dir);
	else if (geteuid() == 0)
		snprintf(buf, len, "/run/cairn");
	else if (getenv("XDG_RUNTIME_DIR"))
		snprintf(buf, len, "%s/cairn", getenv("XDG_RUNTIME_DIR"));
	else
		snprintf(buf, len, "/tmp/cairn-%u", (unsigned)geteuid());
}

int cli_control_path(const char *repo_id, char *buf, size_t len)
{
	char dir[256];
	int n;

	run_dir(dir, sizeof(dir));
	n = snprintf(buf, len, "%s/%s.sock", dir, repo_id);
	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

void cli_repo_canon(const char *url, char *buf, size_t len)
{
	size_t n;

	if (!strncmp(url, "s3://", 5) || !realpath(url, buf))
		snprintf(buf, len, "%s", url);
	n = strlen(buf);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = 0;
}

/* The control socket of a running daemon that serves repository url (compared in
 * canonical form, see daemon "hello"), found without reading the repository: for when
 * the repository itself is unreachable (an S3 outage) but its daemon still serves.
 * 0 and sock filled, or -ENOENT. */
static int find_daemon_by_url(const char *url, char *sock, size_t len)
{
	char dir[256], want[PATH_MAX], path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int rc = -ENOENT;

	run_dir(dir, sizeof(dir));
	cli_repo_canon(url, want, sizeof(want));
	d = opendir(dir);
	if (!d)
		return -ENOENT;
	while (rc && (de = readdir(d))) {
		json_object *req, *resp = NULL, *v;
		size_t n = strlen(de->d_name);

		if (n < 6 || strcmp(de->d_name + n - 5, ".sock"))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path) ||
		    strlen(path) >= len)
			continue;
		req = json_object_new_object();
		json_object_object_add(req, "cmd", json_object_new_string("hello"));
		if (control_call(path, req, &resp) == 0 &&
		    json_object_object_get_ex(resp, "repo", &v) &&
		    !strcmp(json_object_get_string(v), want)) {
			memcpy(sock, path, strlen(path) + 1);
			rc = 0;
		}
		json_object_put(req);
		if (resp)
			json_object_put(resp);
	}
	closedir(d);
	return rc;
}

int cli_repo_fail(const char *url, int err)
{
	switch (err) {
	case -ENOENT: return cli_fail(MSG_REPO_MISSING, url, url);
	case -EBUSY: return cli_fail(MSG_REPO_LOCKED, url);
	case -EPROTO: return cli_fail(MSG_REPO_FOREIGN, url);
	case -EEXIST: return cli_fail(MSG_REPO_EXISTS, url);
	case -EPROTONOSUPPORT: return cli_fail(MSG_REPO_FOREIGN, url);
	case -EKEYREJECTED: return cli_fail(MSG_WRONG_PASSWORD, url);
	case -ENOKEY: return cli_fail(MSG_NEED_PASSWORD, url);
	case -EBADMSG: return cli_fail(MSG_KEYS_DAMAGED, url);
	case -EACCES: return cli_fail(MSG_S3_ACCESS, url);
	default: return cli_fail(MSG_REPO_IO, url, strerror(-err));
	}
}

int cli_read_secret(const char *password_file, const char *key_file, struct repo_secret *s)
{
	void *data;
	size_t len;
	int rc;

	memset(s, 0, sizeof(*s));
	if (key_file && *key_file) {
		rc = util_read_file(key_file, &data, &len);
		if (rc)
			return cli_fail(MSG_PASSWORD_FILE, key_file, strerror(-rc));
		if (len != 32) {
			free(data);
			return cli_fail(MSG_KEY_FILE_BAD, key_file);
		}
		s->raw_key = data;
		return 0;
	}
	if (password_file && *password_file) {
		rc = util_read_file(password_file, &data, &len);
		if (rc)
			return cli_fail(MSG_PASSWORD_FILE, password_file, strerror(-rc));
		if (len && ((char *)data)[len - 1] == '\n')
			len--;
		if (len && ((char *)data)[len - 1] == '\r')
			len--;
		s->password = data;
		s->password_len = len;
	}
	return 0;
}

int cli_repo_opts(struct cli_globals *g, struct repo_open_opts *o)
{
	static struct repo_secret secret;
	static int loaded;
	int rc;

	if (!loaded) {
		rc = cli_read_secret(g->password_file, g->key_file, &secret);
		if (rc)
			return rc;
		loaded = 1;
	}
	o->secret = &secret;
	o->s3_endpoint = g->s3_endpoint;
	return 0;
}

/* The index table of a direct open is the one `cairn serve` keeps for the same state
 * directory, found by the daemon's own rule (cmd_serve.c): "<DIR>/index" for
 * --state-dir DIR (the table sits beside "<DIR>/cache"), else
 * "<cli_default_state_dir("")>/<repo id>/index" (stores/repo.c index_dir()).
 *  - A writable open holds the repository's lock (local) or lease (S3), so no daemon
 *    nor other command changes the repository meanwhile: it loads the table, reads only
 *    the packs it does not cover, and keeps it up to date (index writer).
 *  - A read-only open (check, stats, mount, export; possibly beside a running daemon
 *    that merges and checkpoints that table) only reads it and creates nothing there:
 *    runs are immutable, the manifest is replaced by rename, every page is verified at
 *    load, and a run merged away under it makes it read the manifest again (index.h,
 *    index_persist.c). The table is as old as the writer's last checkpoint: packs
 *    stored since are read from their segments, and packs deleted since read as gone.
 *  - Either way the table is checked against the repository's listing of packs at
 *    open (repo.c load_kept): packs it does not know (stored by another machine, a
 *    copy of the repository) are read, packs it knows that are gone (a gc elsewhere)
 *    are dead, and an unsound or foreign table is rebuilt from the segments.
 * transient: a command opens no disk cache of S3 objects there (that is the daemon's)
 * and logs its index summary at debug level. */
static void index_opts(const struct cli_globals *g, struct repo_open_opts *o, char *buf,
		       size_t len)
{
	if (o->probe || (o->state_root && *o->state_root) || (o->cache_dir && *o->cache_dir))
		return;
	if (g->state_dir && *g->state_dir) {
		snprintf(buf, len, "%s/cache", g->state_dir);
		o->cache_dir = buf;
	} else {
		o->state_root = cli_default_state_dir("", buf, len);
	}
	o->transient = 1;
}

int cli_repo_open(struct cli_globals *g, struct repo_open_opts *o, struct repo **r)
{
	char root[PATH_MAX];
	int rc;

	if (!g->repo || !*g->repo)
		return cli_fail(MSG_NO_REPO_ARG);
	rc = cli_repo_opts(g, o);
	if (rc)
		return rc;
	index_opts(g, o, root, sizeof(root));
	rc = repo_open(g->repo, o, r);
	if (o->transient) { /* root is this frame's */
		o->state_root = NULL;
		o->cache_dir = NULL;
		o->transient = 0;
	}
	return rc ? cli_repo_fail(g->repo, rc) : 0;
}

const char *cli_default_state_dir(const char *repo_id, char *buf, size_t len)
{
	const char *env = getenv("CAIRN_STATE_DIR");

	if (env && *env)
		snprintf(buf, len, "%s", env);
	else if (geteuid() == 0)
		snprintf(buf, len, "/var/lib/cairn/%s", repo_id);
	else if (getenv("HOME"))
		snprintf(buf, len, "%s/.local/state/cairn/%s", getenv("HOME"), repo_id);
	else
		snprintf(buf, len, "/tmp/cairn-state-%u/%s", (unsigned)geteuid(), repo_id);
	return buf;
}

int cli_open(struct cli_globals *g, enum cli_open_mode mode, struct cli_session *s)
{
	struct repo_open_opts probe = { .probe = 1 };
	struct repo_open_opts direct = { .read_only = mode == CLI_OPEN_READ };
	struct repo *r;
	int rc;

	memset(s, 0, sizeof(*s));
	/* A probe reads the config and checks the password, no index: enough to find the
	 * daemon's socket. Only a direct open pays for loading the index. */
	if (!g->repo || !*g->repo)
		return cli_fail(MSG_NO_REPO_ARG);
	rc = cli_repo_opts(g, &probe);
	if (rc)
		return rc;
	rc = repo_open(g->repo, &probe, &r);
	if (rc) {
		/* Unreachable, not refused: a daemon that serves it may still answer. */
		if (rc != -ENOENT && rc != -EPROTO && rc != -EPROTONOSUPPORT &&
		    rc != -EKEYREJECTED && rc != -ENOKEY && rc != -EBADMSG && rc != -EACCES &&
		    find_daemon_by_url(g->repo, s->sock, sizeof(s->sock)) == 0) {
			fprintf(stderr, "cairn: repository %s unreachable (%s); going through the "
				"daemon that serves it\n", g->repo, strerror(-rc));
			s->via_daemon = 1;
			return 0;
		}
		return cli_repo_fail(g->repo, rc);
	}
	rc = cli_control_path(repo_id_hex(r), s->sock, sizeof(s->sock));
	repo_close(r);
	if (!rc && control_ping(s->sock) == 0) {
		s->via_daemon = 1;
		return 0;
	}
	rc = cli_repo_open(g, &direct, &s->repo);
	if (rc)
		return rc;
	repo_chunk_store(s->repo, &s->cs);
	return 0;
}

void cli_close(struct cli_session *s)
{
	if (s->repo)
		repo_close(s->repo);
	s->repo = NULL;
}

int cli_daemon_call(struct cli_session *s, json_object *req, json_object **resp)
{
	json_object *r = NULL, *ok;
	int rc;

	rc = control_call(s->sock, req, &r);
	if (rc)
		return cli_fail(MSG_CONTROL, s->sock, strerror(-rc));
	if (!json_object_object_get_ex(r, "ok", &ok) || !json_object_get_boolean(ok)) {
		json_object *e;
		const char *msg = "the daemon refused the request";
		int status = 1;
		if (json_object_object_get_ex(r, "error", &e))
			msg = json_object_get_string(e);
		if (json_object_object_get_ex(r, "status", &e))
			status = json_object_get_int(e);
		fprintf(stderr, "cairn: %s\n", msg);
		json_object_put(r);
		return status ? status : 1;
	}
	*resp = r;
	return 0;
}
