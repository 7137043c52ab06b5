/* cmd_key.c - `cairn key add|list|remove|passwd`: the key slots of an encrypted
 * repository. Slots are independent objects, so these work while a daemon serves the
 * repository: they open it read-only with the current password. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "errmsg.h"
#include "util.h"

static const char usage[] =
	"usage: cairn key add --new-password-file F | --new-key-file F\n"
	"       cairn key list [--json]\n"
	"       cairn key remove ID\n"
	"       cairn key passwd --new-password-file F | --new-key-file F\n"
	"The current password comes from --password-file (CAIRN_PASSWORD_FILE) or --key-file.\n"
	"  add      add a password (or a raw 32-byte key file) that also opens the repository\n"
	"  list     the key slots; '*' marks the one the current password opened\n"
	"  remove   remove a key slot (never the last one)\n"
	"  passwd   add the new password, then remove the current one\n";

static int list_cb(void *arg, const struct repo_key_info *ki)
{
	json_object *arr = arg, *o = json_object_new_object();
	char t[40];

	json_object_object_add(o, "id", json_object_new_string(ki->id));
	json_object_object_add(o, "kind", json_object_new_string(ki->kind));
	json_object_object_add(o, "created", json_object_new_string(util_fmt_time(ki->created_ns, t, sizeof(t))));
	if (!ki->damaged && !strcmp(ki->kind, "password")) {
		json_object_object_add(o, "kdf", json_object_new_string("scrypt"));
		json_object_object_add(o, "scrypt_n", json_object_new_int64((int64_t)1 << ki->scrypt_log2_n));
		json_object_object_add(o, "scrypt_r", json_object_new_int(ki->scrypt_r));
		json_object_object_add(o, "scrypt_p", json_object_new_int(ki->scrypt_p));
	}
	json_object_object_add(o, "current", json_object_new_boolean(ki->current));
	json_object_object_add(o, "damaged", json_object_new_boolean(ki->damaged));
	json_object_array_add(arr, o);
	return 0;
}

static void print_list(json_object *arr, int json)
{
	if (json) {
		puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
		return;
	}
	printf("  %-32s %-9s %-24s %s\n", "ID", "KIND", "CREATED", "KDF");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *v = json_object_array_get_idx(arr, i), *f;
		const char *id = "", *kind = "", *created = "";
		int cur = 0;
		char kdf[64] = "";

		if (json_object_object_get_ex(v, "id", &f)) id = json_object_get_string(f);
		if (json_object_object_get_ex(v, "kind", &f)) kind = json_object_get_string(f);
		if (json_object_object_get_ex(v, "created", &f)) created = json_object_get_string(f);
		if (json_object_object_get_ex(v, "current", &f)) cur = json_object_get_boolean(f);
		if (json_object_object_get_ex(v, "scrypt_n", &f))
			snprintf(kdf, sizeof(kdf), "scrypt N=%lld", (long long)json_object_get_int64(f));
		printf("%c %-32s %-9s %-24s %s\n", cur ? '*' : ' ', id, kind, created, kdf);
	}
}

int cmd_key(struct cli_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_GLOBAL_LONGOPTS,
		{ "new-password-file", required_argument, NULL, 'n' },
		{ "new-key-file", required_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct repo_open_opts ro = { .read_only = 1 };
	struct repo_secret ns = { 0 };
	const char *new_pw = NULL, *new_key = NULL, *sub;
	struct repo *r = NULL;
	char id[33], old[33];
	int c, rc, json = 0;

	while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': new_pw = optarg; break;
		case 'k': new_key = optarg; break;
		case 'j': json = 1; break;
		case 'h': fputs(usage, stdout); return 0;
		default:
			if (cli_other_opt(g, c, optarg, usage))
				return 2;
			break;
		}
	}
	if (optind >= argc)
		return cli_fail(MSG_USAGE, "key needs a subcommand: add, list, remove or passwd");
	sub = argv[optind++];
	if (!g->repo || !*g->repo)
		return cli_fail(MSG_NO_REPO_ARG);
	if (!strcmp(sub, "add") || !strcmp(sub, "passwd")) {
		if (optind != argc)
			return cli_fail(MSG_USAGE, "key add/passwd take no positional arguments");
		if (!new_pw && !new_key)
			return cli_fail(MSG_NEW_PASSWORD);
		rc = cli_read_secret(new_pw, new_key, &ns);
		if (rc)
			return rc;
	} else if (!strcmp(sub, "remove")) {
		if (optind + 1 != argc)
			return cli_fail(MSG_USAGE, "key remove takes one key id (see 'cairn key list')");
	} else if (!strcmp(sub, "list")) {
		if (optind != argc)
			return cli_fail(MSG_USAGE, "key list takes no positional arguments");
	} else {
		return cli_fail(MSG_USAGE, "unknown key subcommand (use add, list, remove or passwd)");
	}
	rc = cli_repo_open(g, &ro, &r);
	if (rc)
		goto out_free;
	if (!repo_encrypted(r)) {
		rc = cli_fail(MSG_NOT_ENCRYPTED, g->repo);
		goto out_close;
	}
	if (!strcmp(sub, "list")) {
		json_object *arr = json_object_new_array();

		rc = repo_key_list(r, list_cb, arr);
		if (rc)
			rc = cli_repo_fail(g->repo, rc);
		else
			print_list(arr, json);
		json_object_put(arr);
	} else if (!strcmp(sub, "remove")) {
		rc = repo_key_remove(r, argv[optind]);
		if (rc == -ENOENT)
			rc = cli_fail(MSG_KEY_MISSING, argv[optind], g->repo);
		else if (rc == -EBUSY)
			rc = cli_fail(MSG_KEY_LAST, argv[optind]);
		else if (rc)
			rc = cli_repo_fail(g->repo, rc);
		else
			printf("removed key %s\n", argv[optind]);
	} else {
		snprintf(old, sizeof(old), "%s", repo_key_current(r));
		rc = repo_key_add(r, &ns, id);
		if (rc) {
			rc = cli_repo_fail(g->repo, rc);
			goto out_close;
		}
		printf("added key %s\n", id);
		if (!strcmp(sub, "passwd")) {
			rc = repo_key_remove(r, old);
			if (rc) {
				rc = cli_repo_fail(g->repo, rc);
				goto out_close;
			}
			printf("removed key %s\n", old);
		}
	}
out_close:
	repo_close(r);
out_free:
	free((void *)ns.password);
	free((void *)ns.raw_key);
	return rc;
}
