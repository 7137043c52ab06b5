/* cmd_stats.c - `cairn stats [--json]`: what the repository holds and how well it
 * deduplicates and compresses. Opens the repository read-only, so it also runs while
 * a daemon serves it (counting what the daemon has stored so far).
 *
 *   provisioned   sum of the volumes' sizes
 *   logical       plaintext bytes the volumes' stored block maps reference (a chunk
 *                 referenced twice counts twice)
 *   unique        plaintext bytes of the distinct chunks stored
 *   stored        bytes of chunk records in packs (after compression, with headers)
 *   referenced unique  plaintext bytes of the distinct chunks the volumes reference
 *   dedup ratio   logical / referenced unique; compression ratio  unique / stored
 *   metadata      objects and bytes under meta/: volume heads, history (checkpoints,
 *                 snapshots, marks), journal segments kept in the repository, volume
 *                 blobs (what gc frees of a deleted volume besides its chunks)
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "errmsg.h"
#include "idset.h"
#include "util.h"
#include "volume.h"

static const char usage[] =
	"usage: cairn stats [-r REPO] [--json]\n"
	"Sizes of the repository and of each volume, dedup and compression ratios.\n";

struct vol_acc {
	char name[VOLUME_NAME_MAX + 1];
	uint64_t size, chunk_size, logical, chunks;
};

struct acc {
	struct repo *r;
	struct vol_acc *vols;
	size_t nvols;
	struct idset ids;          /* distinct referenced ids */
	uint64_t logical, ref_unique, bad;
	int err;
};

static int info_cb(void *arg, const struct volume_info *vi)
{
	struct acc *a = arg;
	struct vol_acc *n = realloc(a->vols, sizeof(*n) * (a->nvols + 1));

	if (!n)
		return -ENOMEM;
	a->vols = n;
	memset(&n[a->nvols], 0, sizeof(n[0]));
	snprintf(n[a->nvols].name, sizeof(n[0].name), "%s", vi->name);
	n[a->nvols].size = vi->size;
	n[a->nvols].chunk_size = vi->chunk_size;
	a->nvols++;
	return 0;
}

static int ref_cb(void *arg, const char *root, const struct chunk_id *id)
{
	struct acc *a = arg;
	uint32_t plain = 0, rec = 0;
	int rc;

	if (repo_chunk_stat(a->r, id, &plain, &rec))
		return 0; /* missing: 'cairn check' reports it */
	for (size_t i = 0; i < a->nvols; i++) {
		if (!strcmp(root + 7, a->vols[i].name)) { /* root is "volume <name>" */
			a->vols[i].logical += plain;
			a->vols[i].chunks++;
		}
	}
	a->logical += plain;
	rc = idset_add(&a->ids, id);
	if (rc < 0)
		return rc;
	if (rc)
		a->ref_unique += plain;
	return 0;
}

static void bad_cb(void *arg, const char *object, const char *what)
{
	struct acc *a = arg;

	a->bad++;
	fprintf(stderr, "cairn: warning: %s: %s (run 'cairn check')\n", object, what);
}

struct meta_acc {
	uint64_t objects, bytes;
};

static int meta_cb(void *arg, const char *key, uint64_t size)
{
	struct meta_acc *m = arg;

	(void)key;
	m->objects++;
	m->bytes += size;
	return 0;
}

static double ratio(uint64_t a, uint64_t b)
{
	return b ? (double)a / (double)b : 0.0;
}

int cmd_stats(struct cli_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_GLOBAL_LONGOPTS,
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct repo_open_opts ro = { .read_only = 1 };
	struct acc a = { 0 };
	struct repo_walk_cbs cb = { .ref = ref_cb, .bad = bad_cb, .arg = &a };
	struct repo_stats st;
	struct chunk_store cs;
	struct meta_acc meta = { 0, 0 };
	uint64_t prov = 0;
	int c, rc, json = 0;

	while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 'h': fputs(usage, stdout); return 0;
		default:
			if (cli_other_opt(g, c, optarg, usage))
				return 2;
			break;
		}
	}
	if (optind != argc)
		return cli_fail(MSG_USAGE, "stats takes no positional arguments");
	rc = cli_repo_open(g, &ro, &a.r);
	if (rc)
		return rc;
	repo_chunk_store(a.r, &cs);
	rc = volume_list(&cs, info_cb, &a);
	if (!rc)
		rc = cli_volume_walker.walk(cli_volume_walker.ctx, &cs, &cb);
	if (!rc)
		rc = repo_meta_list(a.r, "", meta_cb, &meta);
	if (rc) {
		rc = cli_repo_fail(g->repo, rc);
		goto out_close;
	}
	repo_get_stats(a.r, &st);
	for (size_t i = 0; i < a.nvols; i++)
		prov += a.vols[i].size;
	if (json) {
		json_object *o = json_object_new_object(), *vs = json_object_new_array();

		json_object_object_add(o, "repository", json_object_new_string(g->repo));
		json_object_object_add(o, "encrypted", json_object_new_boolean(repo_encrypted(a.r)));
		json_object_object_add(o, "volumes", json_object_new_int64((int64_t)a.nvols));
		json_object_object_add(o, "provisioned_bytes", json_object_new_int64((int64_t)prov));
		json_object_object_add(o, "logical_bytes", json_object_new_int64((int64_t)a.logical));
		json_object_object_add(o, "unique_bytes", json_object_new_int64((int64_t)st.plain_bytes));
		json_object_object_add(o, "referenced_unique_bytes", json_object_new_int64((int64_t)a.ref_unique));
		json_object_object_add(o, "stored_bytes", json_object_new_int64((int64_t)st.stored_bytes));
		json_object_object_add(o, "chunks", json_object_new_int64((int64_t)st.chunks));
		json_object_object_add(o, "tree_chunks", json_object_new_int64((int64_t)st.tree_chunks));
		json_object_object_add(o, "packs", json_object_new_int64((int64_t)st.packs));
		json_object_object_add(o, "metadata_objects", json_object_new_int64((int64_t)meta.objects));
		json_object_object_add(o, "metadata_bytes", json_object_new_int64((int64_t)meta.bytes));
		json_object_object_add(o, "dedup_ratio", json_object_new_double(ratio(a.logical, a.ref_unique)));
		json_object_object_add(o, "compression_ratio", json_object_new_double(ratio(st.plain_bytes, st.stored_bytes)));
		for (size_t i = 0; i < a.nvols; i++) {
			json_object *v = json_object_new_object();

			json_object_object_add(v, "name", json_object_new_string(a.vols[i].name));
			json_object_object_add(v, "size", json_object_new_int64((int64_t)a.vols[i].size));
			json_object_object_add(v, "chunk_size", json_object_new_int64((int64_t)a.vols[i].chunk_size));
			json_object_object_add(v, "logical_bytes", json_object_new_int64((int64_t)a.vols[i].logical));
			json_object_object_add(v, "chunks", json_object_new_int64((int64_t)a.vols[i].chunks));
			json_object_array_add(vs, v);
		}
		json_object_object_add(o, "per_volume", vs);
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
		json_object_put(o);
	} else {
		char b1[32], b2[32], b3[32], b4[32];

		printf("repository    %s%s\n", g->repo, repo_encrypted(a.r) ? " (encrypted)" : "");
		printf("volumes       %zu, provisioned %s\n", a.nvols, util_fmt_size(prov, b1, sizeof(b1)));
		printf("logical       %s referenced by the volumes\n", util_fmt_size(a.logical, b1, sizeof(b1)));
		printf("unique        %s in %llu chunks (%llu block-map nodes)\n",
		       util_fmt_size(st.plain_bytes, b2, sizeof(b2)), (unsigned long long)st.chunks,
		       (unsigned long long)st.tree_chunks);
		printf("stored        %s in %llu packs\n", util_fmt_size(st.stored_bytes, b3, sizeof(b3)),
		       (unsigned long long)st.packs);
		printf("metadata      %s in %llu objects (heads, history, journal segments)\n",
		       util_fmt_size(meta.bytes, b3, sizeof(b3)), (unsigned long long)meta.objects);
		printf("dedup         %.2fx\n", ratio(a.logical, a.ref_unique));
		printf("compression   %.2fx\n", ratio(st.plain_bytes, st.stored_bytes));
		if (a.nvols)
			printf("\n%-24s %10s %8s %12s %10s\n", "VOLUME", "SIZE", "CHUNK", "LOGICAL", "CHUNKS");
		for (size_t i = 0; i < a.nvols; i++)
			printf("%-24s %10s %8s %12s %10llu\n", a.vols[i].name,
			       util_fmt_size(a.vols[i].size, b1, sizeof(b1)),
			       util_fmt_size(a.vols[i].chunk_size, b2, sizeof(b2)),
			       util_fmt_size(a.vols[i].logical, b4, sizeof(b4)),
			       (unsigned long long)a.vols[i].chunks);
	}
	rc = 0;
out_close:
	free(a.vols);
	idset_free(&a.ids);
	repo_close(a.r);
	return rc;
}
