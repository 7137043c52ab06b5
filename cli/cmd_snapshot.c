/* cmd_snapshot.c - `cairn snapshot create|list|delete`, and the shared machinery of the
 * history subcommands (history_cli.h): local-or-daemon dispatch, error replies,
 * point resolution. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "errmsg.h"
#include "history_cli.h"
#include "util.h"
#include "volume.h"
#include "volume_head.h"

static const char usage[] =
	"usage: cairn snapshot create VOLUME [--name N]\n"
	"       cairn snapshot list VOLUME [--json]\n"
	"       cairn snapshot delete VOLUME NAME\n"
	"  --name N         snapshot name (default: the current time, RFC 3339)\n"
	"  --json           machine-readable output\n"
	"  --state-dir DIR  journal directory when no daemon runs (as given to cairn serve)\n"
	"A snapshot holds exactly the writes acknowledged before it; it is taken live when\n"
	"'cairn serve' runs. Use it as the point VOLUME@NAME (export, clone, restore).\n";

/* ---- shared machinery ---- */

const char *hist_state_dir(const struct cli_session *s, const char *opt, char *buf,
			   size_t len)
{
	if (opt && *opt)
		return opt;
	return cli_default_state_dir(s->repo ? repo_id_hex(s->repo) : "unknown", buf, len);
}

static int reply_fail(json_object *r)
{
	json_object *e;
	const char *msg = "the request failed";
	int status = 1;

	if (json_object_object_get_ex(r, "error", &e))
		msg = json_object_get_string(e);
	if (json_object_object_get_ex(r, "status", &e))
		status = json_object_get_int(e);
	cli_fail(MSG_DAEMON, msg);
	return status ? status : 1;
}

int hist_run(struct cli_globals *g, enum cli_open_mode mode, const char *state_opt,
	     hist_handler fn, json_object *req, json_object **resp)
{
	struct cli_session s;
	struct hist_ctx h = { 0 };
	json_object *r, *ok;
	char sd[4096];
	int rc;

	g->state_dir = state_opt; /* cli_open keeps the index table there too */
	rc = cli_open(g, mode, &s);
	if (rc)
		return rc;
	if (s.via_daemon) {
		rc = cli_daemon_call(&s, req, resp);
		cli_close(&s);
		return rc;
	}
	h.cs = &s.cs;
	h.state_dir = hist_state_dir(&s, state_opt, sd, sizeof(sd));
	r = fn(&h, req);
	cli_close(&s);
	if (!json_object_object_get_ex(r, "ok", &ok) || !json_object_get_boolean(ok)) {
		rc = reply_fail(r);
		json_object_put(r);
		return rc;
	}
	*resp = r;
	return 0;
}

json_object *hist_err(const char *what, const char *vol, int err)
{
	char msg[600];
	const char *at = what ? strchr(what, '@') : NULL;
	int status;

	if (!what)
		what = vol;
	switch (err) {
	case -EINVAL: status = cli_msg_format(msg, sizeof(msg), MSG_POINT_BAD, what); break;
	case -ENOENT:
	case -EBUSY: status = cli_volume_fail(vol, err, msg, sizeof(msg)); break;
	case -ESRCH:
		status = cli_msg_format(msg, sizeof(msg), MSG_SNAPSHOT_MISSING, vol,
					at ? at + 1 : what, vol);
		break;
	case -ENODATA:
		status = cli_msg_format(msg, sizeof(msg), MSG_POINT_GONE, what, vol, vol);
		break;
	case -ERANGE:
		if (at && !strncmp(at + 1, "seq:", 4))
			status = cli_msg_format(msg, sizeof(msg), MSG_POINT_PAST_END, what, vol);
		else
			status = cli_msg_format(msg, sizeof(msg), MSG_POINT_FUTURE, what);
		break;
	default:
		status = cli_msg_format(msg, sizeof(msg), MSG_HISTORY_IO, what, strerror(-err));
	}
	return control_reply_err(status, msg);
}

int hist_volume(struct hist_ctx *h, const char *name, struct volume **v, int *opened,
		struct served **served)
{
	struct volume_open_opts vo = { .state_dir = h->state_dir };
	struct served *s = h->d ? daemon_find_served(h->d, name) : NULL;

	*opened = 0;
	if (served)
		*served = s;
	if (s) {
		*v = s->vol;
		return 0;
	}
	*opened = 1;
	return volume_open(h->cs, name, &vo, v);
}

int hist_resolve(struct hist_ctx *h, const char *point, struct point_plan *plan)
{
	char vol[VOLUME_NAME_MAX + 1];
	const char *spec;
	uint64_t live = 0;
	int ret = history_parse_point(point, vol, &spec);

	if (ret)
		return ret;
	if (!spec && h->d) {
		struct served *s = daemon_find_served(h->d, vol);

		if (s) {
			ret = volume_cut(s->vol, &live);
			if (ret)
				return ret;
		}
	}
	return history_resolve(h->cs, h->state_dir, point, live, plan);
}

json_object *hist_plan_json(const struct point_plan *p)
{
	json_object *o = json_object_new_object();
	char root[2 * CHUNK_ID_LEN + 1];

	util_hex(p->root.b, CHUNK_ID_LEN, root);
	json_object_object_add(o, "name", json_object_new_string(p->info.name));
	json_object_object_add(o, "id", json_object_new_string(p->info.id));
	json_object_object_add(o, "size", json_object_new_uint64(p->info.size));
	json_object_object_add(o, "chunk_size", json_object_new_uint64(p->info.chunk_size));
	json_object_object_add(o, "created_ns", json_object_new_uint64(p->info.created_ns));
	json_object_object_add(o, "root", json_object_new_string(root));
	json_object_object_add(o, "from_seq", json_object_new_uint64(p->from_seq));
	json_object_object_add(o, "to_seq", json_object_new_uint64(p->to_seq));
	json_object_object_add(o, "time_ns", json_object_new_uint64(p->time_ns));
	json_object_object_add(o, "snapshot", json_object_new_string(p->snapshot));
	return o;
}

static uint64_t ju64(json_object *o, const char *k)
{
	json_object *x;

	return json_object_object_get_ex(o, k, &x) ? json_object_get_uint64(x) : 0;
}

static int jstr(json_object *o, const char *k, char *buf, size_t len)
{
	json_object *x;

	if (!json_object_object_get_ex(o, k, &x) || strlen(json_object_get_string(x)) >= len)
		return -EBADMSG;
	strcpy(buf, json_object_get_string(x));
	return 0;
}

int hist_plan_parse(json_object *o, struct point_plan *p)
{
	char root[2 * CHUNK_ID_LEN + 1];

	memset(p, 0, sizeof(*p));
	if (jstr(o, "name", p->info.name, sizeof(p->info.name)) ||
	    jstr(o, "id", p->info.id, sizeof(p->info.id)) || jstr(o, "root", root, sizeof(root)) ||
	    util_unhex(root, p->root.b, CHUNK_ID_LEN) ||
	    jstr(o, "snapshot", p->snapshot, sizeof(p->snapshot)))
		return -EBADMSG;
	p->info.size = ju64(o, "size");
	p->info.chunk_size = (uint32_t)ju64(o, "chunk_size");
	p->info.created_ns = ju64(o, "created_ns");
	p->from_seq = ju64(o, "from_seq");
	p->to_seq = ju64(o, "to_seq");
	p->time_ns = ju64(o, "time_ns");
	return 0;
}

/* ---- handlers ---- */

json_object *hist_snapshot_create(struct hist_ctx *h, json_object *req)
{
	const char *vol = daemon_req_str(req, "volume"), *name = daemon_req_str(req, "name");
	struct history_snap sn = { 0 };
	struct volume *v;
	json_object *r, *o;
	char t[48], msg[300];
	int opened, rc, status;

	if (!vol)
		return control_reply_err(2, "snapshot.create needs a volume");
	sn.time_ns = util_now_ns();
	if (!name)
		name = util_fmt_time(sn.time_ns, t, sizeof(t));
	if (!history_snap_name_valid(name)) {
		status = cli_msg_format(msg, sizeof(msg), MSG_SNAPSHOT_NAME, name);
		return control_reply_err(status, msg);
	}
	snprintf(sn.name, sizeof(sn.name), "%s", name);
	rc = hist_volume(h, vol, &v, &opened, NULL);
	if (rc)
		return hist_err(vol, vol, rc);
	rc = history_snap_get(h->cs, volume_get_info(v)->id, name, &sn);
	if (rc == 0) {
		rc = -EEXIST;
	} else if (rc == -ENOENT) {
		snprintf(sn.name, sizeof(sn.name), "%s", name);
		rc = volume_cut(v, &sn.seq);
		if (!rc)
			rc = history_snap_put(h->cs, volume_get_info(v)->id, &sn, 1);
	}
	if (opened)
		volume_close(v);
	if (rc == -EEXIST) {
		status = cli_msg_format(msg, sizeof(msg), MSG_SNAPSHOT_EXISTS, vol, name);
		return control_reply_err(status, msg);
	}
	if (rc)
		return hist_err(vol, vol, rc);
	r = control_reply_ok();
	o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(sn.name));
	json_object_object_add(o, "seq", json_object_new_uint64(sn.seq));
	json_object_object_add(o, "time", json_object_new_string(util_fmt_time(sn.time_ns, t, sizeof(t))));
	json_object_object_add(r, "snapshot", o);
	return r;
}

struct list_arg {
	json_object *arr;
	uint64_t size;
};

static int snap_cb(void *arg, const struct history_snap *s)
{
	struct list_arg *la = arg;
	json_object *o = json_object_new_object();
	char t[48];

	json_object_object_add(o, "name", json_object_new_string(s->name));
	json_object_object_add(o, "time", json_object_new_string(util_fmt_time(s->time_ns, t, sizeof(t))));
	json_object_object_add(o, "seq", json_object_new_uint64(s->seq));
	json_object_object_add(o, "size", json_object_new_uint64(la->size));
	json_object_object_add(o, "materialized", json_object_new_boolean(s->materialized));
	json_object_array_add(la->arr, o);
	return 0;
}

json_object *hist_snapshot_list(struct hist_ctx *h, json_object *req)
{
	const char *vol = daemon_req_str(req, "volume");
	struct volume_info vi;
	struct list_arg la;
	json_object *r;
	int rc;

	if (!vol)
		return control_reply_err(2, "snapshot.list needs a volume");
	rc = volume_lookup(h->cs, vol, &vi);
	if (rc)
		return hist_err(vol, vol, rc);
	la.arr = json_object_new_array();
	la.size = vi.size;
	rc = history_snap_list(h->cs, vi.id, snap_cb, &la);
	if (rc) {
		json_object_put(la.arr);
		return hist_err(vol, vol, rc);
	}
	r = control_reply_ok();
	json_object_object_add(r, "snapshots", la.arr);
	return r;
}

json_object *hist_snapshot_delete(struct hist_ctx *h, json_object *req)
{
	const char *vol = daemon_req_str(req, "volume"), *name = daemon_req_str(req, "name");
	struct volume_info vi;
	struct history_snap sn;
	char point[200];
	int rc;

	if (!vol || !name)
		return control_reply_err(2, "snapshot.delete needs a volume and a name");
	snprintf(point, sizeof(point), "%s@%s", vol, name);
	rc = volume_lookup(h->cs, vol, &vi);
	if (rc)
		return hist_err(point, vol, rc);
	rc = history_snap_get(h->cs, vi.id, name, &sn);
	if (!rc)
		rc = history_snap_del(h->cs, vi.id, name);
	if (rc)
		return hist_err(point, vol, rc == -ENOENT ? -ESRCH : rc);
	return control_reply_ok();
}

json_object *hist_point_resolve(struct hist_ctx *h, json_object *req)
{
	const char *point = daemon_req_str(req, "point");
	struct point_plan plan;
	char vol[VOLUME_NAME_MAX + 1] = "";
	const char *spec;
	json_object *r;
	int rc;

	if (!point)
		return control_reply_err(2, "point.resolve needs a point");
	history_parse_point(point, vol, &spec);
	rc = hist_resolve(h, point, &plan);
	if (rc)
		return hist_err(point, vol, rc);
	r = control_reply_ok();
	json_object_object_add(r, "plan", hist_plan_json(&plan));
	json_object_object_add(r, "state_dir", json_object_new_string(h->state_dir));
	return r;
}

/* ---- daemon wrappers ---- */

static json_object *in_daemon(struct daemon *d, hist_handler fn, json_object *req)
{
	struct hist_ctx h = { .d = d, .cs = &d->cs, .state_dir = d->state_dir };
	json_object *r;

	pthread_mutex_lock(&d->lock);
	r = fn(&h, req);
	pthread_mutex_unlock(&d->lock);
	return r;
}

json_object *daemon_snapshot_create(struct daemon *d, json_object *req)
{
	return in_daemon(d, hist_snapshot_create, req);
}

json_object *daemon_snapshot_list(struct daemon *d, json_object *req)
{
	return in_daemon(d, hist_snapshot_list, req);
}

json_object *daemon_snapshot_delete(struct daemon *d, json_object *req)
{
	return in_daemon(d, hist_snapshot_delete, req);
}

json_object *daemon_point_resolve(struct daemon *d, json_object *req)
{
	return in_daemon(d, hist_point_resolve, req);
}

json_object *daemon_cdp_list(struct daemon *d, json_object *req)
{
	return in_daemon(d, hist_cdp_list, req);
}

json_object *daemon_cdp_mark(struct daemon *d, json_object *req)
{
	return in_daemon(d, hist_cdp_mark, req);
}

json_object *daemon_restore(struct daemon *d, json_object *req)
{
	return in_daemon(d, hist_restore, req);
}

json_object *daemon_volume_clone(struct daemon *d, json_object *req)
{
	return in_daemon(d, hist_volume_clone, req);
}

json_object *daemon_volume_set(struct daemon *d, json_object *req)
{
	return in_daemon(d, hist_volume_set, req);
}

/* ---- the subcommand ---- */

static int print_snapshots(json_object *arr, int json)
{
	size_t n = json_object_array_length(arr);

	if (json) {
		puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
		return 0;
	}
	printf("%-32s %-26s %12s %10s\n", "NAME", "TIME", "SEQ", "SIZE");
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(arr, i), *f;
		const char *name = "", *t = "";
		uint64_t seq = 0, size = 0;
		char sz[32];

		if (json_object_object_get_ex(o, "name", &f)) name = json_object_get_string(f);
		if (json_object_object_get_ex(o, "time", &f)) t = json_object_get_string(f);
		if (json_object_object_get_ex(o, "seq", &f)) seq = json_object_get_uint64(f);
		if (json_object_object_get_ex(o, "size", &f)) size = json_object_get_uint64(f);
		printf("%-32s %-26s %12" PRIu64 " %10s\n", name, t, seq,
		       util_fmt_size(size, sz, sizeof(sz)));
	}
	return 0;
}

int cmd_snapshot(struct cli_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_GLOBAL_LONGOPTS,
		{ "name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	const char *name = NULL, *state = NULL, *sub;
	json_object *req, *resp = NULL, *x;
	int c, json = 0, rc;

	while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': name = optarg; break;
		case 'j': json = 1; break;
		case 's': state = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default:
			if (cli_other_opt(g, c, optarg, usage))
				return 2;
			break;
		}
	}
	if (optind >= argc)
		return cli_fail(MSG_USAGE, "snapshot needs a subcommand: create, list or delete");
	sub = argv[optind++];
	if (optind >= argc)
		return cli_fail(MSG_USAGE, "snapshot needs a VOLUME");
	if (!volume_name_valid(argv[optind]))
		return cli_fail(MSG_BAD_VOLUME_NAME, argv[optind]);
	req = json_object_new_object();
	json_object_object_add(req, "volume", json_object_new_string(argv[optind]));
	if (!strcmp(sub, "create") && optind + 1 == argc) {
		if (name && !history_snap_name_valid(name)) {
			json_object_put(req);
			return cli_fail(MSG_SNAPSHOT_NAME, name);
		}
		json_object_object_add(req, "cmd", json_object_new_string("snapshot.create"));
		if (name)
			json_object_object_add(req, "name", json_object_new_string(name));
		rc = hist_run(g, CLI_OPEN_WRITE, state, hist_snapshot_create, req, &resp);
		if (!rc && json_object_object_get_ex(resp, "snapshot", &x)) {
			json_object *f;
			const char *n = "", *t = "";
			uint64_t seq = 0;

			if (json_object_object_get_ex(x, "name", &f)) n = json_object_get_string(f);
			if (json_object_object_get_ex(x, "time", &f)) t = json_object_get_string(f);
			if (json_object_object_get_ex(x, "seq", &f)) seq = json_object_get_uint64(f);
			if (json)
				puts(json_object_to_json_string_ext(x, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
			else
				printf("created snapshot %s@%s (seq %" PRIu64 ", %s)\n", argv[optind], n,
				       seq, t);
		}
	} else if (!strcmp(sub, "list") && optind + 1 == argc) {
		json_object_object_add(req, "cmd", json_object_new_string("snapshot.list"));
		rc = hist_run(g, CLI_OPEN_READ, state, hist_snapshot_list, req, &resp);
		if (!rc && json_object_object_get_ex(resp, "snapshots", &x))
			rc = print_snapshots(x, json);
	} else if (!strcmp(sub, "delete") && optind + 2 == argc) {
		json_object_object_add(req, "cmd", json_object_new_string("snapshot.delete"));
		json_object_object_add(req, "name", json_object_new_string(argv[optind + 1]));
		rc = hist_run(g, CLI_OPEN_WRITE, state, hist_snapshot_delete, req, &resp);
		if (!rc)
			printf("deleted snapshot %s@%s\n", argv[optind], argv[optind + 1]);
	} else {
		char detail[200];

		snprintf(detail, sizeof(detail), "unknown or malformed 'snapshot %s' command", sub);
		rc = cli_fail(MSG_USAGE, detail);
	}
	json_object_put(req);
	if (resp)
		json_object_put(resp);
	return rc;
}
