/* cmd_cdp.c - `cairn cdp list VOLUME [--json]` and `cairn cdp mark VOLUME LABEL`: the
 * retained continuous-data-protection history (the journal) of a volume. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "control.h"
#include "errmsg.h"
#include "history_cli.h"
#include "util.h"
#include "volume.h"

static const char usage[] =
	"usage: cairn cdp list VOLUME [--json]\n"
	"       cairn cdp mark VOLUME LABEL\n"
	"  list   the retained history: first and last seq and time, records, bytes, marks\n"
	"  mark   add a named point (e.g. after an application flush); it shows in 'cdp list'\n"
	"         and can be used as VOLUME@seq:N with the seq printed\n"
	"  --state-dir DIR  journal directory when no daemon runs (as given to cairn serve)\n";

static int mark_cb(void *arg, const struct history_mark *m)
{
	json_object *o = json_object_new_object();
	char t[48];

	json_object_object_add(o, "seq", json_object_new_uint64(m->seq));
	json_object_object_add(o, "time", json_object_new_string(util_fmt_time(m->time_ns, t, sizeof(t))));
	json_object_object_add(o, "label", json_object_new_string(m->label));
	json_object_array_add(arg, o);
	return 0;
}

json_object *cli_retention_json(const struct volume_retention *r)
{
	json_object *o = json_object_new_object();
	char b[32];

	json_object_object_add(o, "retain", json_object_new_string(history_fmt_duration(r->retain_ns, b, sizeof(b))));
	json_object_object_add(o, "hourly", json_object_new_string(history_fmt_duration(r->hourly_ns, b, sizeof(b))));
	json_object_object_add(o, "hourly_every", json_object_new_string(history_fmt_duration(r->hourly_every_ns, b, sizeof(b))));
	json_object_object_add(o, "daily", json_object_new_string(history_fmt_duration(r->daily_ns, b, sizeof(b))));
	json_object_object_add(o, "daily_every", json_object_new_string(history_fmt_duration(r->daily_every_ns, b, sizeof(b))));
	json_object_object_add(o, "retain_s", json_object_new_uint64(r->retain_ns / VOLUME_NS_PER_S));
	json_object_object_add(o, "hourly_s", json_object_new_uint64(r->hourly_ns / VOLUME_NS_PER_S));
	json_object_object_add(o, "hourly_every_s", json_object_new_uint64(r->hourly_every_ns / VOLUME_NS_PER_S));
	json_object_object_add(o, "daily_s", json_object_new_uint64(r->daily_ns / VOLUME_NS_PER_S));
	json_object_object_add(o, "daily_every_s", json_object_new_uint64(r->daily_every_ns / VOLUME_NS_PER_S));
	return o;
}

/* The automatic points past the window: checkpoints older than the first record kept. */
struct points_arg {
	json_object *arr;
	uint64_t below;
};

static int point_cb(void *arg, const struct history_ckpt *c, int exact)
{
	struct points_arg *pa = arg;
	json_object *o;
	char t[48];

	if (c->hi >= pa->below || !exact)
		return 0;
	o = json_object_new_object();
	json_object_object_add(o, "seq", json_object_new_uint64(c->hi));
	json_object_object_add(o, "time", json_object_new_string(util_fmt_time(c->time_ns, t, sizeof(t))));
	json_object_array_add(pa->arr, o);
	return 0;
}

json_object *hist_cdp_list(struct hist_ctx *h, json_object *req)
{
	const char *vol = daemon_req_str(req, "volume");
	struct volume_info vi;
	struct history_span sp;
	struct points_arg pa;
	json_object *r, *marks;
	char t[48];
	int rc;

	if (!vol)
		return control_reply_err(2, "cdp.list needs a volume");
	rc = volume_lookup(h->cs, vol, &vi);
	if (rc)
		return hist_err(vol, vol, rc);
	rc = history_span(h->cs, h->state_dir, &vi, &sp);
	if (rc)
		return hist_err(vol, vol, rc);
	marks = json_object_new_array();
	rc = history_mark_list(h->cs, vi.id, sp.first_seq, mark_cb, marks);
	if (rc) {
		json_object_put(marks);
		return hist_err(vol, vol, rc);
	}
	pa.arr = json_object_new_array();
	pa.below = sp.first_seq;
	rc = history_ckpt_list(h->cs, vi.id, point_cb, &pa);
	if (rc) {
		json_object_put(marks);
		json_object_put(pa.arr);
		return hist_err(vol, vol, rc);
	}
	r = control_reply_ok();
	json_object_object_add(r, "volume", json_object_new_string(vol));
	json_object_object_add(r, "first_seq", json_object_new_uint64(sp.first_seq));
	json_object_object_add(r, "first_time", sp.first_time_ns ?
			       json_object_new_string(util_fmt_time(sp.first_time_ns, t, sizeof(t))) : NULL);
	json_object_object_add(r, "last_seq", sp.have_records ? json_object_new_uint64(sp.last_seq) : NULL);
	json_object_object_add(r, "last_time", sp.have_records && sp.last_time_ns ?
			       json_object_new_string(util_fmt_time(sp.last_time_ns, t, sizeof(t))) : NULL);
	json_object_object_add(r, "next_seq", json_object_new_uint64(sp.next_seq));
	json_object_object_add(r, "records", json_object_new_uint64(sp.next_seq - sp.first_seq));
	json_object_object_add(r, "bytes", json_object_new_uint64(sp.local_bytes));
	json_object_object_add(r, "segments", json_object_new_uint64(sp.local_segments));
	json_object_object_add(r, "repo_segments", json_object_new_uint64(sp.repo_segments));
	json_object_object_add(r, "repo_bytes", json_object_new_uint64(sp.repo_bytes));
	json_object_object_add(r, "repo_first_seq", sp.repo_segments ? json_object_new_uint64(sp.repo_first_seq) : NULL);
	json_object_object_add(r, "repo_next_seq", sp.repo_segments ? json_object_new_uint64(sp.repo_next_seq) : NULL);
	json_object_object_add(r, "retention", cli_retention_json(&vi.retention));
	json_object_object_add(r, "points", pa.arr);
	json_object_object_add(r, "marks", marks);
	return r;
}

json_object *hist_cdp_mark(struct hist_ctx *h, json_object *req)
{
	const char *vol = daemon_req_str(req, "volume"), *label = daemon_req_str(req, "label");
	struct volume *v;
	uint64_t seq = 0;
	json_object *r;
	char msg[400];
	int opened, rc;

	if (!vol || !label)
		return control_reply_err(2, "cdp.mark needs a volume and a label");
	if (!history_label_valid(label)) {
		int status = cli_msg_format(msg, sizeof(msg), MSG_MARK_LABEL, label);
		return control_reply_err(status, msg);
	}
	rc = hist_volume(h, vol, &v, &opened, NULL);
	if (rc)
		return hist_err(vol, vol, rc);
	rc = volume_mark(v, label, &seq);
	if (opened)
		volume_close(v);
	if (rc)
		return hist_err(vol, vol, rc);
	r = control_reply_ok();
	json_object_object_add(r, "seq", json_object_new_uint64(seq));
	return r;
}

static void print_list(json_object *r)
{
	json_object *f, *marks;
	size_t n;

	printf("volume     %s\n", json_object_get_string(json_object_object_get(r, "volume")));
	f = json_object_object_get(r, "first_seq");
	printf("first      seq %s  %s\n", json_object_get_string(f),
	       json_object_get_string(json_object_object_get(r, "first_time")) ?: "-");
	printf("last       seq %s  %s\n",
	       json_object_get_string(json_object_object_get(r, "last_seq")) ?: "-",
	       json_object_get_string(json_object_object_get(r, "last_time")) ?: "-");
	printf("records    %s (%s bytes in %s segments)\n",
	       json_object_get_string(json_object_object_get(r, "records")),
	       json_object_get_string(json_object_object_get(r, "bytes")),
	       json_object_get_string(json_object_object_get(r, "segments")));
	printf("stored     %s segments in the repository (%s bytes)\n",
	       json_object_get_string(json_object_object_get(r, "repo_segments")),
	       json_object_get_string(json_object_object_get(r, "repo_bytes")));
	f = json_object_object_get(r, "retention");
	if (f)
		printf("retention  every write for %s; then one point per %s for %s, one per %s for %s\n",
		       json_object_get_string(json_object_object_get(f, "retain")),
		       json_object_get_string(json_object_object_get(f, "hourly_every")),
		       json_object_get_string(json_object_object_get(f, "hourly")),
		       json_object_get_string(json_object_object_get(f, "daily_every")),
		       json_object_get_string(json_object_object_get(f, "daily")));
	f = json_object_object_get(r, "points");
	n = f ? json_object_array_length(f) : 0;
	for (size_t i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(f, i);

		printf("point      seq %s  %s  (use VOLUME@seq:%s)\n",
		       json_object_get_string(json_object_object_get(m, "seq")),
		       json_object_get_string(json_object_object_get(m, "time")),
		       json_object_get_string(json_object_object_get(m, "seq")));
	}
	marks = json_object_object_get(r, "marks");
	n = marks ? json_object_array_length(marks) : 0;
	for (size_t i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(marks, i);

		printf("mark       seq %s  %s  %s\n",
		       json_object_get_string(json_object_object_get(m, "seq")),
		       json_object_get_string(json_object_object_get(m, "time")),
		       json_object_get_string(json_object_object_get(m, "label")));
	}
}

int cmd_cdp(struct cli_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_GLOBAL_LONGOPTS,
		{ "json", no_argument, NULL, 'j' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	const char *state = NULL, *sub;
	json_object *req, *resp = NULL;
	int c, json = 0, rc;

	while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 's': state = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default:
			if (cli_other_opt(g, c, optarg, usage))
				return 2;
			break;
		}
	}
	if (optind + 2 > argc)
		return cli_fail(MSG_USAGE, "cdp needs a subcommand (list or mark) and a VOLUME");
	sub = argv[optind++];
	if (!volume_name_valid(argv[optind]))
		return cli_fail(MSG_BAD_VOLUME_NAME, argv[optind]);
	req = json_object_new_object();
	json_object_object_add(req, "volume", json_object_new_string(argv[optind]));
	if (!strcmp(sub, "list") && optind + 1 == argc) {
		json_object_object_add(req, "cmd", json_object_new_string("cdp.list"));
		rc = hist_run(g, CLI_OPEN_READ, state, hist_cdp_list, req, &resp);
		if (!rc) {
			json_object_object_del(resp, "ok");
			if (json)
				puts(json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
			else
				print_list(resp);
		}
	} else if (!strcmp(sub, "mark") && optind + 2 == argc) {
		if (!history_label_valid(argv[optind + 1])) {
			json_object_put(req);
			return cli_fail(MSG_MARK_LABEL, argv[optind + 1]);
		}
		json_object_object_add(req, "cmd", json_object_new_string("cdp.mark"));
		json_object_object_add(req, "label", json_object_new_string(argv[optind + 1]));
		rc = hist_run(g, CLI_OPEN_WRITE, state, hist_cdp_mark, req, &resp);
		if (!rc)
			printf("marked %s at seq %s: %s\n", argv[optind],
			       json_object_get_string(json_object_object_get(resp, "seq")),
			       argv[optind + 1]);
	} else {
		rc = cli_fail(MSG_USAGE, "use 'cdp list VOLUME' or 'cdp mark VOLUME LABEL'");
	}
	json_object_put(req);
	if (resp)
		json_object_put(resp);
	return rc;
}
