/* daemon.h - the state of a running `cairn serve`, shared by the subcommands' daemon
 * handlers.
 *
 * A subcommand that must act on a live daemon (create a volume and export it, take a
 * crash-consistent snapshot, ...) sends a control request (control.h); the daemon looks
 * its "cmd" up in daemon_cmds[] (daemon_cmds.c) and runs the handler on the control
 * thread. Handlers live beside their subcommand (cmd_volume.c holds the volume.* ones).
 */
#ifndef CAIRN_DAEMON_H
#define CAIRN_DAEMON_H

#include <pthread.h>

#include <json-c/json.h>

#include "gateway.h"
#include "repo.h"
#include "volume.h"

#define CAIRN_IQN_PREFIX "iqn.2026-11.org.cairn:"

/* One exported volume. */
struct served {
	struct volume *vol;
	struct lun lun;
	struct lun *luns[1];
	char iqn[GW_IQN_MAX + 1];
	struct served *next;
};

struct daemon {
	struct repo *repo;
	struct chunk_store cs;
	struct gateway *gw;
	const char *state_dir;
	pthread_mutex_t lock; /* guards served */
	struct served *served;
	struct serve_conf *conf; /* `serve --config` state (config.h); NULL without */
	char repo_url[4096];     /* the repository, canonical (cli_repo_canon) */
};

/* A control request handler: returns a new reply (control_reply_ok/err). */
typedef json_object *(*daemon_handler)(struct daemon *d, json_object *req);

struct daemon_cmd {
	const char *name;   /* the request's "cmd" */
	daemon_handler fn;
};

/* "hello": {"repo": canonical URL, "id": repository id}, so a client can find the
 * daemon of a repository it cannot reach itself (cmd_serve.c). */
json_object *daemon_hello(struct daemon *d, json_object *req);

/* The table, ended by { NULL, NULL }. */
extern const struct daemon_cmd daemon_cmds[];

/* Open volume name and export it. Caller holds d->lock. */
int daemon_serve_volume(struct daemon *d, const char *name);
/* Unlink the served entry of volume name (NULL if none). Caller holds d->lock. */
struct served *daemon_take_served(struct daemon *d, const char *name);
/* Find the served entry of volume name. Caller holds d->lock. */
struct served *daemon_find_served(struct daemon *d, const char *name);
/* Remove its target, close its volume, free it. */
void daemon_unserve(struct daemon *d, struct served *s);
/* The error reply for a volume_* error on volume name. */
json_object *daemon_volume_err(const char *name, int err);
/* Request field helpers: NULL / 0 when absent. */
const char *daemon_req_str(json_object *req, const char *key);
int64_t daemon_req_int(json_object *req, const char *key);

/* volume.* handlers (cmd_volume.c) */
json_object *daemon_volume_list(struct daemon *d, json_object *req);
json_object *daemon_volume_create(struct daemon *d, json_object *req);
json_object *daemon_volume_delete(struct daemon *d, json_object *req);

#endif
