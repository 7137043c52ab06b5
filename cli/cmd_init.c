/* cmd_init.c - `cairn init [--chunk-size S]`: create a repository. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "errmsg.h"
#include "util.h"

static const char usage[] =
	"usage: cairn init [-r REPO] [--chunk-size 64K] [--encrypt]\n"
	"Create an empty repository at REPO: a directory (created if missing) or\n"
	"s3://bucket/prefix (the bucket is created if missing; --s3-endpoint URL or\n"
	"CAIRN_S3_ENDPOINT for a server other than AWS, credentials from AWS_* variables).\n"
	"  --chunk-size S   default chunk size of new volumes: a power of two, 4K to 1M\n"
	"  --encrypt        AES-256-GCM; the first key from --password-file FILE\n"
	"                   (CAIRN_PASSWORD_FILE) or a 32-byte --key-file FILE\n";

int cmd_init(struct cli_globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_GLOBAL_LONGOPTS,
		{ "chunk-size", required_argument, NULL, 'c' },
		{ "encrypt", no_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct repo_create_opts co = { 0 };
	struct repo_secret secret = { 0 };
	int c, rc;

	while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			rc = cli_parse_chunk_size(optarg, &co.chunk_size);
			if (rc)
				return rc;
			break;
		case 'e':
			co.encrypt = 1;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			if (cli_other_opt(g, c, optarg, usage))
				return 2;
			break;
		}
	}
	if (optind != argc)
		return cli_fail(MSG_USAGE, "init takes no positional arguments");
	if (!g->repo || !*g->repo)
		return cli_fail(MSG_NO_REPO_ARG);
	co.s3_endpoint = g->s3_endpoint;
	if (co.encrypt) {
		rc = cli_read_secret(g->password_file, g->key_file, &secret);
		if (rc)
			return rc;
		if (!secret.password && !secret.raw_key)
			return cli_fail(MSG_USAGE, "--encrypt needs --password-file FILE (or CAIRN_PASSWORD_FILE) or --key-file FILE; no repository was created");
		co.secret = &secret;
	}
	rc = repo_create(g->repo, &co);
	free((void *)secret.password);
	free((void *)secret.raw_key);
	if (rc)
		return cli_repo_fail(g->repo, rc);
	printf("created %srepository %s\n", co.encrypt ? "encrypted " : "", g->repo);
	return 0;
}
