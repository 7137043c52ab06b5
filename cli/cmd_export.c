/* cmd_export.c - `cairn export POINT FILE|-` (the raw image of any point; sparse where
 * zero when FILE is a regular file, written to a temporary file renamed at the end)
 * and `cairn import VOLUME FILE|-` (an image into a volume, through its journal: zero
 * chunks become zero records, the rest is deduplicated when folded). A progress line
 * is shown when stderr is a terminal. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "errmsg.h"
#include "history_cli.h"
#include "point.h"
#include "util.h"
#include "volume.h"
#include "volume_ingest.h"

static const char usage_export[] =
	"usage: cairn export POINT FILE|-\n"
	"  POINT: VOLUME, VOLUME@SNAPSHOT, VOLUME@<RFC 3339 time> or VOLUME@seq:N\n"
	"  --state-dir DIR  journal directory when no daemon runs (as given to cairn serve)\n";
static const char usage_import[] =
	"usage: cairn import VOLUME FILE|-\n"
	"  Writes the raw image into VOLUME (zero-filled past its end); the volume must not\n"
	"  be served by a running daemon. The import is part of the volume's history.\n"
	"  --state-dir DIR  journal directory (as given to cairn serve)\n";

static void progress(const char *what, uint64_t done, uint64_t total, int *last)
{
	int pct = total ? (int)(done * 100 / total) : 100;
	char a[32], b[32];

	if (pct == *last)
		return;
	*last = pct;
	fprintf(stderr, "\r%s: %3d%% (%s of %s)", what, pct, util_fmt_size(done, a, sizeof(a)),
		util_fmt_size(total, b, sizeof(b)));
	if (done >= total)
		fputc('\n', stderr);
}

static int parse_common(struct cli_globals *g, int argc, char **argv, const char *usage,
			const char **state)
{
	static const struct option opts[] = {
		CLI_GLOBAL_LONGOPTS,
		{ "state-dir", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': *state = optarg; break;
		case 'h': fputs(usage, stdout); return -1;
		default:
			if (cli_other_opt(g, c, optarg, usage))
				return 2;
			break;
		}
	}
	g->state_dir = *state; /* cli_open keeps the index table there too */
	if (optind + 2 != argc)
		return cli_fail(MSG_USAGE, "give exactly two arguments");
	return 0;
}

/* Resolve point and open its image; *repo is opened here when the daemon resolved it. */
static int open_point(struct cli_globals *g, const char *point, const char *state,
		      struct cli_session *s, struct repo **repo, struct chunk_store *cs,
		      struct point **p)
{
	struct repo_open_opts ro = { .read_only = 1 };
	struct point_plan plan;
	char sd[4096], vol[VOLUME_NAME_MAX + 1];
	const char *spec, *sdir;
	json_object *r;
	int rc;

	history_parse_point(point, vol, &spec);
	rc = cli_open(g, CLI_OPEN_READ, s);
	if (rc)
		return rc;
	if (s->via_daemon) {
		json_object *req = json_object_new_object(), *resp = NULL, *pl;

		json_object_object_add(req, "cmd", json_object_new_string("point.resolve"));
		json_object_object_add(req, "point", json_object_new_string(point));
		rc = cli_daemon_call(s, req, &resp);
		json_object_put(req);
		if (rc)
			return rc;
		if (!json_object_object_get_ex(resp, "plan", &pl) || hist_plan_parse(pl, &plan)) {
			json_object_put(resp);
			return cli_fail(MSG_DAEMON, "the daemon sent a malformed point plan");
		}
		snprintf(sd, sizeof(sd), "%s",
			 json_object_get_string(json_object_object_get(resp, "state_dir")));
		json_object_put(resp);
		sdir = sd;
		/* opened after the plan: every chunk the plan names is in its index */
		rc = cli_repo_open(g, &ro, repo); /* with the password of an encrypted one */
		if (rc)
			return rc;
		repo_chunk_store(*repo, cs);
	} else {
		sdir = hist_state_dir(s, state, sd, sizeof(sd));
		*cs = s->cs;
		rc = history_resolve(cs, sdir, point, 0, &plan);
		if (rc)
			goto out_err;
	}
	rc = point_open(cs, sdir, &plan, p);
	if (!rc)
		return 0;
out_err:
	r = hist_err(point, vol, rc);
	cli_fail(MSG_DAEMON, json_object_get_string(json_object_object_get(r, "error")));
	rc = json_object_get_int(json_object_object_get(r, "status"));
	json_object_put(r);
	return rc ? rc : 1;
}

static int write_image(struct point *p, const char *point, const char *file)
{
	const struct point_plan *pl = point_get_plan(p);
	uint64_t size = pl->info.size, cs = pl->info.chunk_size;
	char tmp[4200];
	struct stat st;
	int fd, sparse = 0, rc = 0, tty = isatty(2), last = -1;
	uint8_t *buf = malloc(cs);

	tmp[0] = 0;
	if (!buf)
		return cli_fail(MSG_EXPORT_FILE, file, strerror(ENOMEM));
	if (!strcmp(file, "-")) {
		fd = 1;
		tty = 0;
	} else if (stat(file, &st) == 0 && !S_ISREG(st.st_mode)) {
		fd = open(file, O_WRONLY | O_CLOEXEC);
	} else {
		snprintf(tmp, sizeof(tmp), "%s.cairn-tmp.%d", file, (int)getpid());
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		sparse = 1;
	}
	if (fd < 0) {
		rc = -errno;
		goto out_fail;
	}
	if (sparse && ftruncate(fd, (off_t)size)) {
		rc = -errno;
		goto out_close;
	}
	for (uint64_t off = 0; off < size; off += cs) {
		size_t n = (size_t)MIN(cs, size - off);

		if (sparse && point_chunk_is_null(p, off / cs))
			goto next;
		rc = point_read(p, off, buf, n);
		if (rc) {
			free(buf);
			if (fd != 1)
				close(fd);
			if (tmp[0])
				unlink(tmp);
			return cli_fail(MSG_HISTORY_IO, point, strerror(-rc));
		}
		if (sparse && util_is_zero(buf, n))
			goto next;
		rc = sparse ? util_pwrite_all(fd, buf, n, off) : util_write_all(fd, buf, n);
		if (rc)
			goto out_close;
next:
		if (tty)
			progress("exporting", off + n, size, &last);
	}
	if (fd != 1 && fsync(fd) && sparse) {
		rc = -errno;
		goto out_close;
	}
	if (fd != 1)
		close(fd);
	if (sparse && rename(tmp, file)) {
		rc = -errno;
		goto out_fail;
	}
	free(buf);
	return 0;

out_close:
	if (fd != 1)
		close(fd);
out_fail:
	if (tmp[0])
		unlink(tmp);
	free(buf);
	return cli_fail(MSG_EXPORT_FILE, file, strerror(-rc));
}

int cmd_export(struct cli_globals *g, int argc, char **argv)
{
	struct cli_session s;
	struct repo *repo = NULL;
	struct chunk_store cs;
	struct point *p = NULL;
	const char *state = NULL, *point, *file;
	char vol[VOLUME_NAME_MAX + 1];
	const char *spec;
	int rc;

	rc = parse_common(g, argc, argv, usage_export, &state);
	if (rc)
		return rc < 0 ? 0 : rc;
	point = argv[optind];
	file = argv[optind + 1];
	if (history_parse_point(point, vol, &spec))
		return cli_fail(MSG_POINT_BAD, point);
	rc = open_point(g, point, state, &s, &repo, &cs, &p);
	if (!rc) {
		rc = write_image(p, point, file);
		if (!rc && strcmp(file, "-"))
			printf("exported %s to %s\n", point, file);
		point_close(p);
	}
	if (repo)
		repo_close(repo);
	cli_close(&s);
	return rc;
}

/* Read up to len bytes (short only at end of input). */
static ssize_t read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Undo a failed import: roll the volume back to the point seq0 taken before it (the
 * partial import stays in the history, like any restore). */
static int import_undo(struct chunk_store *cs, struct volume *v, const char *state,
		       uint64_t seq0)
{
	char point[VOLUME_NAME_MAX + 32];
	struct point_plan plan;
	struct chunk_id root;
	struct point *p;
	int rc;

	snprintf(point, sizeof(point), "%s@seq:%" PRIu64, volume_get_info(v)->name, seq0);
	rc = history_resolve(cs, state, point, 0, &plan);
	if (!rc)
		rc = point_open(cs, state, &plan, &p);
	if (rc)
		return rc;
	rc = point_materialize(p, &root);
	point_close(p);
	return rc ? rc : volume_restore(v, &root, NULL);
}

int cmd_import(struct cli_globals *g, int argc, char **argv)
{
	struct cli_session s;
	struct volume_info vi;
	struct volume_open_opts vo = { 0 };
	struct volume *v = NULL;
	struct stat st;
	const char *state = NULL, *vol, *file;
	uint64_t off = 0, zero = 0, total = 0, seq0 = 0;
	struct volume_ingest *ing = NULL;
	ssize_t last_n = 0;
	uint8_t *buf = NULL;
	char sd[4096], sz[32];
	int rc, fd = -1, tty = isatty(2), last = -1;

	rc = parse_common(g, argc, argv, usage_import, &state);
	if (rc)
		return rc < 0 ? 0 : rc;
	vol = argv[optind];
	file = argv[optind + 1];
	if (!volume_name_valid(vol))
		return cli_fail(MSG_BAD_VOLUME_NAME, vol);
	rc = cli_open(g, CLI_OPEN_WRITE, &s);
	if (rc)
		return rc;
	if (s.via_daemon) {
		rc = cli_fail(MSG_IMPORT_SERVED, vol);
		goto out_close;
	}
	rc = volume_lookup(&s.cs, vol, &vi);
	if (rc) {
		rc = cli_volume_fail(vol, rc, NULL, 0);
		goto out_close;
	}
	fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC) : 0;
	if (fd < 0 || fstat(fd, &st)) {
		rc = cli_fail(MSG_IMPORT_FILE, file, strerror(errno));
		goto out_close;
	}
	if (S_ISREG(st.st_mode)) {
		total = (uint64_t)st.st_size;
		if (total > vi.size) {
			rc = cli_fail(MSG_IMPORT_TOO_BIG, file, vol, util_fmt_size(vi.size, sz, sizeof(sz)));
			goto out_close;
		}
		if (total % VOLUME_SECTOR) {
			rc = cli_fail(MSG_IMPORT_UNALIGNED, file);
			goto out_close;
		}
	} else {
		total = vi.size;
		tty = 0;
	}
	vo.state_dir = hist_state_dir(&s, state, sd, sizeof(sd));
	rc = volume_open(&s.cs, vol, &vo, &v);
	if (!rc)
		rc = volume_cut(v, &seq0); /* the state to go back to if the input fails */
	if (!rc)
		rc = volume_ingest_open(v, 0, &ing);
	if (rc) {
		if (v)
			volume_close(v);
		rc = cli_volume_fail(vol, rc, NULL, 0);
		goto out_close;
	}
	/* Whole chunks go through the ingest (stored in parallel, no journal data); a
	 * short last piece (the input ends inside a chunk) is written after it. */
	for (;;) {
		uint8_t *cbuf = volume_ingest_buffer(ing);
		ssize_t n;

		if (!cbuf)
			break; /* the ingest failed: finish says why */
		n = read_full(fd, cbuf, vi.chunk_size);
		if (n <= 0 || (size_t)n < vi.chunk_size || off + (uint64_t)n > vi.size) {
			if (n > 0) {
				buf = malloc((size_t)n);
				if (buf)
					memcpy(buf, cbuf, (size_t)n);
				else
					n = -ENOMEM;
			}
			volume_ingest_release(ing, cbuf);
			last_n = n;
			break;
		}
		rc = volume_ingest_submit(ing, off / vi.chunk_size, cbuf);
		if (rc)
			break;
		off += (uint64_t)n;
		if (tty)
			progress("importing", off, total, &last);
	}
	{
		uint64_t zchunks = 0;
		int irc = volume_ingest_finish(ing, NULL, &zchunks);

		zero = zchunks * vi.chunk_size;
		if (irc) {
			rc = cli_volume_fail(vol, irc, NULL, 0);
			goto out_vol;
		}
	}
	if (last_n < 0) {
		rc = cli_fail(MSG_IMPORT_FILE, file, strerror((int)-last_n));
		goto out_vol;
	}
	if (last_n > 0) {
		uint64_t n = (uint64_t)last_n;

		if (off + n > vi.size || n % VOLUME_SECTOR) {
			/* only a stream can get here: a file's size was checked up front */
			int urc = import_undo(&s.cs, v, vo.state_dir, seq0);

			if (urc)
				rc = cli_fail(MSG_VOLUME_IO, vol, strerror(-urc));
			else if (n % VOLUME_SECTOR && off + n <= vi.size)
				rc = cli_fail(MSG_IMPORT_UNALIGNED, file);
			else
				rc = cli_fail(MSG_IMPORT_STDIN_TOO_BIG, vol,
					      util_fmt_size(vi.size, sz, sizeof(sz)),
					      (unsigned long long)vi.size,
					      (unsigned long long)(off + n));
			goto out_vol;
		}
		if (util_is_zero(buf, n)) {
			rc = volume_write_zeroes(v, off, n, 0);
			zero += n;
		} else {
			rc = volume_write(v, off, buf, n, 0);
		}
		if (rc) {
			rc = cli_volume_fail(vol, rc, NULL, 0);
			goto out_vol;
		}
		off += n;
		if (tty)
			progress("importing", off, total, &last);
	}
	if (off < vi.size)
		rc = volume_write_zeroes(v, off, vi.size - off, 0);
	if (!rc)
		rc = volume_flush(v);
	if (rc) {
		rc = cli_volume_fail(vol, rc, NULL, 0);
		goto out_vol;
	}
	printf("imported %s into %s (%" PRIu64 " bytes, %" PRIu64 " of them zero)\n", file, vol,
	       off, zero);
out_vol:
	{
		int crc = volume_close(v);

		if (!rc && crc)
			rc = cli_volume_fail(vol, crc, NULL, 0);
	}
out_close:
	if (fd > 0)
		close(fd);
	free(buf);
	cli_close(&s);
	return rc;
}
