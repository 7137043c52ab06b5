/* cmd_check.c - `cairn check [--read-data] [--state-dir DIR]`: verify the repository
 * and name every damaged object; exit status 1 on damage. Opens the repository
 * read-only, so it also runs while a daemon serves it (it then sees what the daemon
 * has stored so far).
 *
 * The references are walked from every root gc marks from (cli_root_walker, cmd_gc.c:
 * each version of each live volume's head, its history checkpoints and snapshots, the
 * RESTORE records of its journal), so a chunk check passes is one gc keeps, and a
 * chunk only a point in the past needs is checked too.
 *
 * cli_volume_walker: a repo_tree_walker (repo_check.h) over every live volume's
 * current block map only, chunk by chunk, through the volumes/ API (cmd_stats.c).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockmap.h"
#include "cli.h"
#include "errmsg.h"
#include "gc_cli.h"
#include "volume.h"
#include "volume_head.h"

static const char usage[] =
	"usage: cairn check [-r REPO] [--read-data] [--state-dir DIR]\n"
	"Verify the repository: key slots, metadata, every pack against its index segment,\n"
	"and that every chunk the volumes reference is stored: their current state, every\n"
	"snapshot and every point of their retained history. Names each damaged object;\n"
	"exits 1 when anything is damaged. Nothing is changed.\n"
	"  --read-data       also read every chunk, decrypt/decompress it and verify its id\n"
	"  --state-dir DIR   where the volumes' journals are (default: as 'cairn serve')\n";

struct walk {
	struct chunk_store *cs;
	const struct repo_walk_cbs *cb;
	int rc;
};

static int walk_volume(void *arg, const struct volume_info *vi)
{
	struct walk *w = arg;
	struct volume_head h;
	struct blockmap *bm;
	struct chunk_id id;
	char root[96], what[160];
	uint64_t n = (vi->size + vi->chunk_size - 1) / vi->chunk_size;
	int rc;

	snprintf(root, sizeof(root), "volume %s", vi->name);
	rc = volume_head_find(w->cs, vi->name, &h);
	if (rc) {
		snprintf(what, sizeof(what), "its head cannot be read (%s)", strerror(-rc));
		w->cb->bad(w->cb->arg, root, what);
		return 0;
	}
	rc = blockmap_open(w->cs, n, &h.root, &bm);
	if (rc) {
		snprintf(what, sizeof(what), "its block map cannot be opened (%s)", strerror(-rc));
		w->cb->bad(w->cb->arg, root, what);
		return 0;
	}
	for (uint64_t c = 0; c < n; c++) {
		rc = blockmap_lookup(bm, c, 1, &id);
		if (rc) {
			snprintf(what, sizeof(what), "block map node of chunk %llu unreadable (%s)",
				 (unsigned long long)c, strerror(-rc));
			w->cb->bad(w->cb->arg, root, what);
			/* skip the rest of that leaf */
			c |= BLOCKMAP_FANOUT - 1;
			continue;
		}
		if (!chunk_id_is_null(&id) && (rc = w->cb->ref(w->cb->arg, root, &id)) != 0) {
			w->rc = rc;
			break;
		}
	}
	blockmap_close(bm);
	return w->rc;
}

static int walk_volumes(void *ctx, struct chunk_store *cs, const struct repo_walk_cbs *cb)
{
	struct walk w = { .cs = cs, .cb = cb };
	int rc;

	(void)ctx;
	rc = volume_list(cs, walk_volume, &w);
	return rc ? rc : w.rc;
}

const struct repo_tree_walker cli_volume_walker = { .walk = walk_volumes, .ctx = NULL };

static void on_damaged(void *arg, const char *object, const char *what)
{
	(void)arg;
	if (isatty(2))
		fputs("\r\033[K", stderr);
	if (!strncmp(what, "note: ", 6))
		printf("note: %s: %s\n", object, what + 6);
	else
		printf("damaged: %s: %s\n", object, what);
	fflush(stdout);
}

static void on_progress(void *arg, const char *phase, uint64_t done, uint64_t total)
{
	(void)arg;
	if (!isatty(2))
		return;
	fprintf(stderr, "\r\033[Kchecking %s: %llu/%llu", phase, (unsigned long long)done,
		(unsigned long long)total);
	if (done == total)
		fputc('\n', stderr);
}

int cmd_check(struct cli_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_GLOBAL_LONGOPTS,
		{ "read-data", no_argument, NULL, 'd' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct repo_open_opts ro = { .read_only = 1 };
	struct repo_check_opts co = { .damaged = on_damaged, .progress = on_progress };
	struct repo_check_result res;
	struct cli_root_walker rw;
	struct repo *r;
	const char *state = NULL;
	char sdir[4096];
	int c, rc;

	while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': co.read_data = 1; break;
		case 's': state = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default:
			if (cli_other_opt(g, c, optarg, usage))
				return 2;
			break;
		}
	}
	if (optind != argc)
		return cli_fail(MSG_USAGE, "check takes no positional arguments");
	g->state_dir = state; /* cli_repo_open reads the index table kept there */
	rc = cli_repo_open(g, &ro, &r);
	if (rc)
		return rc;
	if (!state)
		state = cli_default_state_dir(repo_id_hex(r), sdir, sizeof(sdir));
	cli_root_walker_init(&rw, state);
	co.walker = &rw.w;
	rc = repo_check(r, &co, &res);
	repo_close(r);
	if (rc)
		return cli_repo_fail(g->repo, rc);
	printf("checked %llu key slot(s), %llu metadata object(s), %llu pack(s), %llu index segment(s), "
	       "%llu chunk reference(s)\n",
	       (unsigned long long)res.keys, (unsigned long long)res.meta,
	       (unsigned long long)res.packs, (unsigned long long)res.segments,
	       (unsigned long long)res.refs);
	if (co.read_data)
		printf("%llu chunk(s) read and verified\n", (unsigned long long)res.chunks_read);
	if (res.erased) /* CRYPTO ERASE: unreadable by design until a gc deletes them */
		printf("%llu chunk(s) under destroyed volume keys (crypto-erased): not readable, "
		       "not damage; the next gc reclaims them\n", (unsigned long long)res.erased);
	if (res.damaged)
		return cli_fail(MSG_CHECK_DAMAGED, (unsigned long long)res.damaged, g->repo);
	printf("no damage found\n");
	return 0;
}
