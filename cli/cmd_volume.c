/* cmd_volume.c - `cairn volume create|list|delete`. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "control.h"
#include "daemon.h"
#include "errmsg.h"
#include "history_cli.h"
#include "point.h"
#include "util.h"
#include "volume.h"

static const char usage[] =
	"usage: cairn volume create NAME --size S [--chunk-size S] [--physical-block-size S]\n"
	"                               [--own-key]\n"
	"       cairn volume list [--json]\n"
	"       cairn volume delete NAME\n"
	"       cairn volume clone POINT NEW   (a writable volume from any point; O(1))\n"
	"       cairn volume set NAME [--retain D] [--hourly D[/EVERY]] [--daily D[/EVERY]]\n"
	"  --size S         volume size, e.g. 10G (a multiple of 512 bytes)\n"
	"  --chunk-size S   chunk size: a power of two, 4K to 1M (default: the repository's)\n"
	"  --physical-block-size S  the physical block size the LUN reports: 512 (default,\n"
	"                   \"512n\") or a power of two up to the chunk size; 4K makes a \"512e\"\n"
	"                   disk (512-byte logical blocks, 4 KiB physical), which initiators\n"
	"                   align their partitions and IO to. Fixed at creation\n"
	"  --own-key        (encrypted repositories) the volume's data under a key of its own,\n"
	"                   so that SANITIZE CRYPTO ERASE can destroy it in an instant; its\n"
	"                   chunks never dedup with other volumes' (its clones share the key)\n"
	"  --json           machine-readable output\n"
	"  --state-dir DIR  with no daemon running: the state directory (as given to serve)\n"
	"  --retain D       keep every write (CDP) for D, e.g. 24h (default); 0 keeps none\n"
	"  --hourly D[/E]   then one point per E (default 1h) for D (default 7d)\n"
	"  --daily D[/E]    then one point per E (default 1d) for D (default 30d)\n"
	"                   durations: 90s, 15m, 24h, 7d, 2w or seconds\n"
	"  --config FILE    set: with no daemon running, also save the change in the file\n"
	"                   'cairn serve --config FILE' reads (default $CAIRN_CONFIG); a daemon\n"
	"                   started with --config saves it there itself\n";

json_object *cli_volume_json(const struct volume_info *vi)
{
	json_object *o = json_object_new_object();
	char t[40];

	json_object_object_add(o, "name", json_object_new_string(vi->name));
	json_object_object_add(o, "id", json_object_new_string(vi->id));
	json_object_object_add(o, "size", json_object_new_int64((int64_t)vi->size));
	json_object_object_add(o, "chunk_size", json_object_new_int64(vi->chunk_size));
	json_object_object_add(o, "physical_block_size",
			       json_object_new_int64(vi->phys_block ? vi->phys_block : VOLUME_SECTOR));
	json_object_object_add(o, "created", json_object_new_string(util_fmt_time(vi->created_ns, t, sizeof(t))));
	json_object_object_add(o, "retention", cli_retention_json(&vi->retention));
	json_object_object_add(o, "own_key", json_object_new_boolean(vi->key_ref != 0));
	if (vi->key_ref) {
		char kr[9];

		snprintf(kr, sizeof(kr), "%08x", vi->key_ref);
		json_object_object_add(o, "key", json_object_new_string(kr));
		json_object_object_add(o, "key_generation", json_object_new_int64((int64_t)vi->key_gen));
	}
	return o;
}

int cli_volume_fail(const char *name, int err, char *buf, size_t len)
{
	enum cli_msg id;

	switch (err) {
	case -EEXIST: id = MSG_VOLUME_EXISTS; break;
	case -ENOENT: id = MSG_VOLUME_MISSING; break;
	case -EBUSY: id = MSG_VOLUME_BUSY; break;
	case -EINVAL: id = MSG_BAD_VOLUME_NAME; break;
	case -EOPNOTSUPP: id = MSG_OWN_KEY_PLAIN; break;
	case -EKEYREVOKED: id = MSG_KEY_ERASED; break;
	default:
		if (buf)
			return cli_msg_format(buf, len, MSG_VOLUME_IO, name, strerror(-err));
		return cli_fail(MSG_VOLUME_IO, name, strerror(-err));
	}
	if (buf)
		return cli_msg_format(buf, len, id, name);
	return cli_fail(id, name);
}

static int print_list(json_object *arr, int json)
{
	size_t n = json_object_array_length(arr);

	if (json) {
		puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
		return 0;
	}
	printf("%-24s %10s %8s  %-24s %-32s %s\n", "NAME", "SIZE", "CHUNK", "CREATED", "ID", "KEY");
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(arr, i), *f;
		char sz[32], cs[32];
		uint64_t size = 0, chunk = 0;
		const char *name = "", *created = "", *id = "", *key = "repository";

		if (json_object_object_get_ex(v, "name", &f)) name = json_object_get_string(f);
		if (json_object_object_get_ex(v, "size", &f)) size = (uint64_t)json_object_get_int64(f);
		if (json_object_object_get_ex(v, "chunk_size", &f)) chunk = (uint64_t)json_object_get_int64(f);
		if (json_object_object_get_ex(v, "created", &f)) created = json_object_get_string(f);
		if (json_object_object_get_ex(v, "id", &f)) id = json_object_get_string(f);
		if (json_object_object_get_ex(v, "own_key", &f) && json_object_get_boolean(f))
			key = "own";
		printf("%-24s %10s %8s  %-24s %-32s %s\n", name, util_fmt_size(size, sz, sizeof(sz)),
		       util_fmt_size(chunk, cs, sizeof(cs)), created, id, key);
	}
	return 0;
}

static int list_cb(void *arg, const struct volume_info *vi)
{
	json_object_array_add(arg, cli_volume_json(vi));
	return 0;
}

static int do_list(struct cli_globals *g, int json)
{
	struct cli_session s;
	json_object *arr = NULL, *resp = NULL;
	int rc;

	rc = cli_open(g, CLI_OPEN_READ, &s);
	if (rc)
		return rc;
	if (s.via_daemon) {
		json_object *req = json_object_new_object(), *v;
		json_object_object_add(req, "cmd", json_object_new_string("volume.list"));
		rc = cli_daemon_call(&s, req, &resp);
		json_object_put(req);
		if (rc)
			goto out_close;
		if (json_object_object_get_ex(resp, "volumes", &v))
			arr = json_object_get(v);
	} else {
		arr = json_object_new_array();
		rc = volume_list(&s.cs, list_cb, arr);
		if (rc) {
			rc = cli_repo_fail(g->repo, rc);
			goto out_put;
		}
	}
	rc = arr ? print_list(arr, json) : 1;
out_put:
	json_object_put(arr);
out_close:
	if (resp)
		json_object_put(resp);
	cli_close(&s);
	return rc;
}

static int do_create(struct cli_globals *g, const char *name, uint64_t size, uint32_t chunk,
		     uint32_t phys, int own_key)
{
	struct cli_session s;
	struct volume_info vi;
	json_object *resp = NULL;
	char sz[32];
	int rc;

	rc = cli_open(g, CLI_OPEN_WRITE, &s);
	if (rc)
		return rc;
	if (s.via_daemon) {
		json_object *req = json_object_new_object();
		json_object_object_add(req, "cmd", json_object_new_string("volume.create"));
		json_object_object_add(req, "name", json_object_new_string(name));
		json_object_object_add(req, "size", json_object_new_int64((int64_t)size));
		json_object_object_add(req, "chunk_size", json_object_new_int64(chunk));
		json_object_object_add(req, "physical_block_size", json_object_new_int64(phys));
		if (own_key)
			json_object_object_add(req, "own_key", json_object_new_boolean(1));
		rc = cli_daemon_call(&s, req, &resp);
		json_object_put(req);
		if (!rc)
			printf("created volume %s (%s%s), exported as iqn.2026-11.org.cairn:%s\n",
			       name, util_fmt_size(size, sz, sizeof(sz)),
			       own_key ? ", with a key of its own" : "", name);
		if (resp)
			json_object_put(resp);
	} else {
		rc = own_key && !repo_encrypted(s.repo) ? -EOPNOTSUPP :
		     volume_create_keyed(&s.cs, name, size, chunk, phys, NULL,
					 own_key ? VOLUME_KEY_NEW : 0, 0, &vi);
		if (rc)
			rc = cli_volume_fail(name, rc, NULL, 0);
		else
			printf("created volume %s (%s, chunks of %u bytes%s)\n", name,
			       util_fmt_size(size, sz, sizeof(sz)), vi.chunk_size,
			       own_key ? ", with a key of its own" : "");
	}
	cli_close(&s);
	return rc;
}

/* Through the daemon, or directly: the volume's local state goes from the state
 * directory (state, else the default) once its tombstone is stored. */
static int do_delete(struct cli_globals *g, const char *name, const char *state)
{
	struct cli_session s;
	json_object *resp = NULL;
	char sd[4096];
	int rc;

	rc = cli_open(g, CLI_OPEN_WRITE, &s);
	if (rc)
		return rc;
	if (s.via_daemon) {
		json_object *req = json_object_new_object();
		json_object_object_add(req, "cmd", json_object_new_string("volume.delete"));
		json_object_object_add(req, "name", json_object_new_string(name));
		rc = cli_daemon_call(&s, req, &resp);
		json_object_put(req);
		if (resp)
			json_object_put(resp);
	} else {
		rc = volume_delete_local(&s.cs, name, hist_state_dir(&s, state, sd, sizeof(sd)));
		if (rc)
			rc = cli_volume_fail(name, rc, NULL, 0);
	}
	if (!rc)
		printf("deleted volume %s\n", name);
	cli_close(&s);
	return rc;
}

/* "D" or "D/EVERY" into window and (when given) every. */
static int parse_tier(const char *arg, const char *what, uint64_t *window, uint64_t *every,
		      int *has_every)
{
	char buf[64], *slash;

	snprintf(buf, sizeof(buf), "%s", arg);
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = 0;
	*has_every = slash != NULL;
	if (history_parse_duration(buf, window) ||
	    (slash && (history_parse_duration(slash, every) || !*every)))
		return cli_fail(MSG_BAD_DURATION, arg, what);
	return 0;
}

static int do_set(struct cli_globals *g, const char *name, const char *retain,
		  const char *hourly, const char *daily, const char *state, const char *config)
{
	json_object *req, *resp = NULL, *r;
	uint64_t w = 0, e = 0;
	int rc, he;

	if (!retain && !hourly && !daily)
		return cli_fail(MSG_USAGE, "volume set needs --retain, --hourly or --daily");
	req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string("volume.set"));
	json_object_object_add(req, "volume", json_object_new_string(name));
	if (retain) {
		if (history_parse_duration(retain, &w)) {
			json_object_put(req);
			return cli_fail(MSG_BAD_DURATION, retain, "--retain");
		}
		json_object_object_add(req, "retain_ns", json_object_new_uint64(w));
	}
	if (hourly) {
		if ((rc = parse_tier(hourly, "--hourly", &w, &e, &he))) {
			json_object_put(req);
			return rc;
		}
		json_object_object_add(req, "hourly_ns", json_object_new_uint64(w));
		if (he)
			json_object_object_add(req, "hourly_every_ns", json_object_new_uint64(e));
	}
	if (daily) {
		if ((rc = parse_tier(daily, "--daily", &w, &e, &he))) {
			json_object_put(req);
			return rc;
		}
		json_object_object_add(req, "daily_ns", json_object_new_uint64(w));
		if (he)
			json_object_object_add(req, "daily_every_ns", json_object_new_uint64(e));
	}
	rc = hist_run(g, CLI_OPEN_WRITE, state, hist_volume_set, req, &resp);
	if (!rc && json_object_object_get_ex(resp, "retention", &r))
		printf("volume %s keeps every write for %s, then one point per %s for %s and one "
		       "per %s for %s\n", name,
		       json_object_get_string(json_object_object_get(r, "retain")),
		       json_object_get_string(json_object_object_get(r, "hourly_every")),
		       json_object_get_string(json_object_object_get(r, "hourly")),
		       json_object_get_string(json_object_object_get(r, "daily_every")),
		       json_object_get_string(json_object_object_get(r, "daily")));
	if (!rc && json_object_object_get_ex(resp, "config", &r)) { /* serve --config */
		printf("saved in %s\n", json_object_get_string(r));
	} else if (!rc && (config || ((config = getenv("CAIRN_CONFIG")) && *config))) {
		char err[1024];

		if (config_file_volume_set(config, req, json_object_object_get(resp, "retention"),
					   err, sizeof(err)))
			rc = cli_fail(MSG_CONFIG_RETENTION, err);
		else
			printf("saved in %s\n", config);
	}
	json_object_put(req);
	if (resp)
		json_object_put(resp);
	return rc;
}

int cmd_volume(struct cli_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_GLOBAL_LONGOPTS,
		{ "size", required_argument, NULL, 's' },
		{ "chunk-size", required_argument, NULL, 'c' },
		{ "physical-block-size", required_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' },
		{ "state-dir", required_argument, NULL, 'S' },
		{ "retain", required_argument, NULL, 'R' },
		{ "hourly", required_argument, NULL, 'H' },
		{ "daily", required_argument, NULL, 'D' },
		{ "config", required_argument, NULL, 'C' },
		{ "own-key", no_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	const char *size_arg = NULL, *sub, *state = NULL, *phys_arg = NULL;
	const char *retain = NULL, *hourly = NULL, *daily = NULL, *config = NULL;
	uint64_t size = 0;
	uint32_t chunk = 0, phys = 0;
	int c, json = 0, own_key = 0;

	while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': size_arg = optarg; break;
		case 'c':
			if (cli_parse_chunk_size(optarg, &chunk))
				return 2;
			break;
		case 'P': phys_arg = optarg; break;
		case 'j': json = 1; break;
		case 'S': state = optarg; break;
		case 'R': retain = optarg; break;
		case 'H': hourly = optarg; break;
		case 'D': daily = optarg; break;
		case 'C': config = optarg; break;
		case 'K': own_key = 1; break;
		case 'h': fputs(usage, stdout); return 0;
		default:
			if (cli_other_opt(g, c, optarg, usage))
				return 2;
			break;
		}
	}
	g->state_dir = state; /* cli_open keeps the index table there too */
	if (optind >= argc)
		return cli_fail(MSG_USAGE, "volume needs a subcommand: create, list or delete");
	sub = argv[optind++];
	if (!strcmp(sub, "list")) {
		if (optind != argc)
			return cli_fail(MSG_USAGE, "volume list takes no arguments");
		return do_list(g, json);
	}
	if (!strcmp(sub, "create")) {
		if (optind + 1 != argc)
			return cli_fail(MSG_USAGE, "volume create takes one NAME");
		if (!volume_name_valid(argv[optind]))
			return cli_fail(MSG_BAD_VOLUME_NAME, argv[optind]);
		if (!size_arg)
			return cli_fail(MSG_USAGE, "volume create needs --size S (e.g. --size 10G)");
		if (util_parse_size(size_arg, &size) || size == 0 || size % VOLUME_SECTOR)
			return cli_fail(MSG_BAD_SIZE, size_arg);
		if (phys_arg) {
			uint64_t pb;

			/* at most the chunk size (CHUNK_SIZE_DEFAULT without --chunk-size, as
			 * volume_create_keyed takes it) */
			if (util_parse_size(phys_arg, &pb) || pb > CHUNK_SIZE_MAX ||
			    !volume_phys_block_valid((uint32_t)pb, chunk ? chunk : CHUNK_SIZE_DEFAULT) ||
			    !pb || size % pb)
				return cli_fail(MSG_BAD_PHYS_BLOCK, phys_arg);
			phys = (uint32_t)pb;
		}
		return do_create(g, argv[optind], size, chunk, phys, own_key);
	}
	if (!strcmp(sub, "clone")) {
		if (optind + 2 != argc)
			return cli_fail(MSG_USAGE, "volume clone takes a POINT and a NEW name");
		return cmd_volume_clone(g, argv[optind], argv[optind + 1], state);
	}
	if (!strcmp(sub, "delete")) {
		if (optind + 1 != argc)
			return cli_fail(MSG_USAGE, "volume delete takes one NAME");
		return do_delete(g, argv[optind], state);
	}
	if (!strcmp(sub, "set")) {
		if (optind + 1 != argc)
			return cli_fail(MSG_USAGE, "volume set takes one NAME");
		if (!volume_name_valid(argv[optind]))
			return cli_fail(MSG_BAD_VOLUME_NAME, argv[optind]);
		return do_set(g, argv[optind], retain, hourly, daily, state, config);
	}
	{
		char detail[160];
		snprintf(detail, sizeof(detail), "unknown volume subcommand '%s'", sub);
		return cli_fail(MSG_USAGE, detail);
	}
}

/* ---- daemon side (daemon.h) ---- */

json_object *daemon_volume_list(struct daemon *d, json_object *req)
{
	json_object *arr = json_object_new_array(), *r;
	int rc;

	(void)req;
	rc = volume_list(&d->cs, list_cb, arr);
	if (rc) {
		json_object_put(arr);
		return control_reply_err(1, strerror(-rc));
	}
	r = control_reply_ok();
	json_object_object_add(r, "volumes", arr);
	return r;
}

json_object *daemon_volume_create(struct daemon *d, json_object *req)
{
	const char *name = daemon_req_str(req, "name");
	struct volume_info vi;
	json_object *r, *x;
	int rc, own_key;

	if (!name)
		return control_reply_err(2, "volume.create needs a name");
	own_key = json_object_object_get_ex(req, "own_key", &x) && json_object_get_boolean(x);
	rc = own_key && !repo_encrypted(d->repo) ? -EOPNOTSUPP :
	     volume_create_keyed(&d->cs, name, (uint64_t)daemon_req_int(req, "size"),
				 (uint32_t)daemon_req_int(req, "chunk_size"),
				 (uint32_t)daemon_req_int(req, "physical_block_size"), NULL,
				 own_key ? VOLUME_KEY_NEW : 0, 0, &vi);
	if (rc)
		return daemon_volume_err(name, rc);
	pthread_mutex_lock(&d->lock);
	rc = daemon_serve_volume(d, name);
	pthread_mutex_unlock(&d->lock);
	if (rc)
		return daemon_volume_err(name, rc);
	r = control_reply_ok();
	json_object_object_add(r, "volume", cli_volume_json(&vi));
	return r;
}

json_object *daemon_volume_delete(struct daemon *d, json_object *req)
{
	const char *name = daemon_req_str(req, "name");
	struct served *s;
	int rc;

	if (!name)
		return control_reply_err(2, "volume.delete needs a name");
	pthread_mutex_lock(&d->lock);
	s = daemon_take_served(d, name);
	pthread_mutex_unlock(&d->lock);
	if (s)
		daemon_unserve(d, s);
	rc = volume_delete_local(&d->cs, name, d->state_dir);
	if (rc)
		return daemon_volume_err(name, rc);
	return control_reply_ok();
}

/* ---- clone (history_cli.h) ---- */

json_object *hist_volume_clone(struct hist_ctx *h, json_object *req)
{
	const char *point = daemon_req_str(req, "point"), *name = daemon_req_str(req, "name");
	char vol[VOLUME_NAME_MAX + 1] = "";
	struct point_plan plan;
	struct volume_info vi;
	struct chunk_id root;
	struct point *p;
	const char *spec;
	json_object *r;
	int rc;

	if (!point || !name)
		return control_reply_err(2, "volume.clone needs a point and a name");
	if (!volume_name_valid(name))
		return daemon_volume_err(name, -EINVAL);
	history_parse_point(point, vol, &spec);
	rc = volume_lookup(h->cs, name, &vi);
	if (rc == 0)
		return daemon_volume_err(name, -EEXIST);
	rc = hist_resolve(h, point, &plan);
	if (!rc)
		rc = point_open(h->cs, h->state_dir, &plan, &p);
	if (rc)
		return hist_err(point, vol, rc);
	rc = point_materialize(p, &root);
	point_close(p);
	if (rc)
		return hist_err(point, vol, rc);
	/* an own-key volume's clone shares its key: its chunks are the same chunks */
	rc = volume_create_keyed(h->cs, name, plan.info.size, plan.info.chunk_size,
				 plan.info.phys_block, &root, plan.info.key_ref, plan.info.key_gen,
				 &vi);
	if (rc)
		return daemon_volume_err(name, rc);
	if (h->d) {
		rc = daemon_serve_volume(h->d, name);
		if (rc)
			return daemon_volume_err(name, rc);
	}
	r = control_reply_ok();
	json_object_object_add(r, "volume", cli_volume_json(&vi));
	return r;
}

json_object *hist_volume_set(struct hist_ctx *h, json_object *req)
{
	static const char *const keys[] = { "retain_ns", "hourly_ns", "hourly_every_ns",
					     "daily_ns", "daily_every_ns" };
	const char *name = daemon_req_str(req, "volume");
	struct volume_info vi;
	struct volume_retention r;
	uint64_t *fields[5];
	struct served *s;
	json_object *x, *reply;
	int rc;

	if (!name)
		return control_reply_err(2, "volume.set needs a volume");
	if (h->d && h->d->conf) /* config.h: the file stays the truth; the change is saved there */
		return daemon_conf_volume_set(h->d, req);
	rc = volume_lookup(h->cs, name, &vi);
	if (rc)
		return daemon_volume_err(name, rc);
	r = vi.retention;
	fields[0] = &r.retain_ns;
	fields[1] = &r.hourly_ns;
	fields[2] = &r.hourly_every_ns;
	fields[3] = &r.daily_ns;
	fields[4] = &r.daily_every_ns;
	for (unsigned i = 0; i < 5; i++)
		if (json_object_object_get_ex(req, keys[i], &x))
			*fields[i] = json_object_get_uint64(x);
	if (!volume_retention_valid(&r))
		return control_reply_err(2, "the period of --hourly and --daily (after '/') must not be 0");
	s = h->d ? daemon_find_served(h->d, name) : NULL;
	rc = volume_set_retention(h->cs, s ? s->vol : NULL, name, &r);
	if (rc)
		return daemon_volume_err(name, rc);
	reply = control_reply_ok();
	json_object_object_add(reply, "retention", cli_retention_json(&r));
	return reply;
}

int cmd_volume_clone(struct cli_globals *g, const char *point, const char *name,
		     const char *state_opt)
{
	char vol[VOLUME_NAME_MAX + 1];
	const char *spec;
	json_object *req, *resp = NULL;
	int rc;

	if (history_parse_point(point, vol, &spec))
		return cli_fail(MSG_POINT_BAD, point);
	if (!volume_name_valid(name))
		return cli_fail(MSG_BAD_VOLUME_NAME, name);
	req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string("volume.clone"));
	json_object_object_add(req, "point", json_object_new_string(point));
	json_object_object_add(req, "name", json_object_new_string(name));
	rc = hist_run(g, CLI_OPEN_WRITE, state_opt, hist_volume_clone, req, &resp);
	if (!rc)
		printf("cloned %s as volume %s, exported as " CAIRN_IQN_PREFIX "%s when served\n",
		       point, name, name);
	json_object_put(req);
	if (resp)
		json_object_put(resp);
	return rc;
}
