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
#include "journal.h"
#include "util.h"
#include "volume.h"

static const char usage[] =
	"usage: cairn cdp list VOLUME [--json]\n"
	"       cairn cdp mark VOLUME LABEL\n"
	"  list   the retained history: first and last seq and time, records, bytes, marks\n"
	"  mark   add a named point (e.g. after an application flush); it shows in 'cdp list'\n"
	"         and can be used as VOLUME@seq:N with the seq printed\n"
	"  --state-dir DIR  journal directory when no daemon runs (as given to cairn serve)\n";

struct last {
	uint64_t seq, time_ns;
	int any;
};

static int last_cb(void *arg, const struct journal_rec *rec, uint64_t seg_first, uint64_t pos)
{
	struct last *l = arg;

	(void)seg_first;
	(void)pos;
	l->seq = rec->seq;
	l->time_ns = rec->time_ns;
	l->any = 1;
	return 0;
}

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

json_object *hist_cdp_list(struct hist_ctx *h, json_object *req)
{
	const char *vol = daemon_req_str(req, "volume");
	struct volume_info vi;
	struct journal_span span;
	struct last l = { 0 };
	uint64_t lastseg = 0, end = 0;
	json_object *r, *marks;
	char jdir[4096], t[48];
	int rc;

	if (!vol)
		return control_reply_err(2, "cdp.list needs a volume");
	rc = volume_lookup(h->cs, vol, &vi);
	if (rc)
		return hist_err(vol, vol, rc);
	history_journal_dir(h->state_dir, vi.id, jdir, sizeof(jdir));
	rc = journal_span(jdir, &span);
	if (rc == -ENOENT) {
		memset(&span, 0, sizeof(span));
		span.first_seq = end = vi.ckpt_seq;
		rc = 0;
	} else if (!rc) {
		rc = journal_seek_time(jdir, UINT64_MAX, &lastseg);
		if (!rc)
			rc = journal_scan(jdir, lastseg, last_cb, &l, &end);
	}
	if (rc)
		return hist_err(vol, vol, rc);
	marks = json_object_new_array();
	rc = history_mark_list(h->cs, vi.id, span.first_seq, mark_cb, marks);
	if (rc) {
		json_object_put(marks);
		return hist_err(vol, vol, rc);
	}
	r = control_reply_ok();
	json_object_object_add(r, "volume", json_object_new_string(vol));
	json_object_object_add(r, "first_seq", json_object_new_uint64(span.first_seq));
	json_object_object_add(r, "first_time", span.first_time_ns ?
			       json_object_new_string(util_fmt_time(span.first_time_ns, t, sizeof(t))) : NULL);
	json_object_object_add(r, "last_seq", l.any ? json_object_new_uint64(l.seq) : NULL);
	json_object_object_add(r, "last_time", l.any ?
			       json_object_new_string(util_fmt_time(l.time_ns, t, sizeof(t))) : NULL);
	json_object_object_add(r, "next_seq", json_object_new_uint64(end));
	json_object_object_add(r, "records", json_object_new_uint64(end - span.first_seq));
	json_object_object_add(r, "bytes", json_object_new_uint64(span.bytes));
	json_object_object_add(r, "segments", json_object_new_uint64(span.segments));
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
