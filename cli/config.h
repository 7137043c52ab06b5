/* config.h - the gateway's declarative configuration file (`cairn serve --config FILE`).
 *
 * Format: libconfig (https://hyperrealm.github.io/libconfig/), chosen because it reads
 * like the targetcli/tgt blocks admins know (nested groups and lists, comments, no
 * significant indentation unlike YAML), libconfig reports file and line of syntax
 * errors, and it writes the tree back, so CLI changes re-save the same format.
 *
 *   portals = [ "127.0.0.1:3260", "[::1]:3260" ];   # listen addresses (optional)
 *   default_access = "full";          # targets without their own default: full | read-only | deny
 *   max_connections = 4;              # MaxConnections a session may negotiate, 1..64
 *                                     # (read at start; `serve --max-connections` wins)
 *   accounts = (                      # CHAP accounts: secrets of 12 to 255 characters
 *     { user = "alice"; secret = "alice-secret-1"; groups = [ "ops" ]; } );
 *   discovery = { chap = [ "alice" ]; mutual = { user = "gw"; secret = "..."; }; };
 *   targets = (
 *     { iqn = "iqn.2026-11.org.cairn:db";
 *       luns = ( { lun = 0; volume = "db"; } );
 *       chap = [ "alice", "@ops" ];       # accounts or @groups allowed; none: no CHAP
 *       mutual = { user = "db-target"; secret = "..."; };   # optional
 *       default_access = "deny";          # optional, else the global default
 *       acl = ( { initiator = "iqn.1994-05.com.redhat:*"; access = "full"; },
 *               { ip = "10.0.0.0/8"; access = "read-only"; } ); } );
 *   retention = { retain = "24h"; hourly = "7d/1h"; daily = "30d/1d"; };   # optional
 *   volumes = (                       # optional: settings per volume
 *     { name = "db"; retention = { retain = "48h"; hourly = "14d"; }; } );
 *
 * Retention (volume.h struct volume_retention; `cairn volume set` has the same fields):
 * retain = WINDOW keeps every write that long; hourly / daily = WINDOW[/PERIOD] then keep
 * one point per PERIOD (default 1h / 1d) for WINDOW. A duration is a string "90s", "15m",
 * "24h", "7d", "2w", or "0", or an integer number of seconds. The file governs the
 * retention of the volumes it names: one with a `volumes` entry gets that entry's fields,
 * then the top-level `retention` fields, then the built-in 24h, 7d/1h, 30d/1d; a volume
 * only mapped by a LUN gets the top-level `retention` (when the file has one); other
 * volumes keep what their head stores. The daemon applies this at start and after every
 * live change; `cairn volume set` on a daemon with a config file saves the fields it
 * sets into the volume's `volumes` entry (all of its policy when the file did not govern
 * the volume yet), so a restart keeps them.
 *
 * Without a config file the daemon exports every volume as its own target (see
 * cmd_serve.c). Edits (config_edit) are validated as a whole before they are kept;
 * config_save writes the file atomically (tmp, fsync, rename, fsync dir; mode 0600
 * since it holds secrets). Comments in the file are not kept by a CLI edit.
 * Functions return 0 or a negative errno; failures that concern the user also fill
 * err with one sentence (file, line when known, and what to fix).
 */
#ifndef CAIRN_CONFIG_H
#define CAIRN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "acl.h"
#include "gateway.h"
#include "iscsi_chap.h"
#include "volume.h"

#define CFG_MAX_GROUPS 8
#define CFG_GROUP_MAX 64
#define CFG_ADDR_MAX 128
#define CFG_VOLUME_MAX 65

struct cfg_account {
	struct chap_cred cred;
	char groups[CFG_MAX_GROUPS][CFG_GROUP_MAX];
	unsigned ngroups;
	unsigned line;               /* in the file it came from (0: added by the CLI) */
};

struct cfg_lun {
	uint32_t lun;
	char volume[CFG_VOLUME_MAX];
};

/* A retention policy as the file states it; fields not given are unset. */
enum cfg_ret_field { CFG_RET_RETAIN, CFG_RET_HOURLY, CFG_RET_HOURLY_EVERY, CFG_RET_DAILY,
		     CFG_RET_DAILY_EVERY, CFG_RET_FIELDS };
struct cfg_retention {
	int present;                 /* the group is in the file (it may be empty) */
	unsigned set;                /* bit f: ns[f] is given */
	uint64_t ns[CFG_RET_FIELDS]; /* nanoseconds, whole seconds */
};

/* One entry of `volumes`. */
struct cfg_volume {
	char name[CFG_VOLUME_MAX];
	struct cfg_retention ret;
	unsigned line;               /* in the file it came from (0: added by the CLI) */
};

/* Who may authenticate: names of accounts or "@group". */
struct cfg_auth {
	char (*chap)[CHAP_NAME_MAX];
	unsigned nchap;
	int has_mutual;
	struct chap_cred mutual;
};

struct cfg_target {
	char iqn[GW_IQN_MAX + 1];
	struct cfg_lun *luns;
	unsigned nluns;
	struct acl_rule *acl;
	unsigned nacl;
	int default_access;          /* -1: the global default */
	struct cfg_auth auth;
	unsigned line;               /* in the file it came from (0: added by the CLI) */
};

struct cairn_config {
	char (*portals)[CFG_ADDR_MAX];
	unsigned nportals;
	int default_access;
	unsigned max_connections;       /* 0: not set (the daemon's default) */
	struct cfg_account *accounts;
	unsigned naccounts;
	struct cfg_auth discovery;
	struct cfg_target *targets;
	unsigned ntargets;
	struct cfg_retention retention; /* the default of the volumes the file names */
	struct cfg_volume *volumes;
	unsigned nvolumes;
};

/* An empty configuration (no targets, full access by default). */
struct cairn_config *config_new(void);
void config_free(struct cairn_config *c);
/* Read and validate path. -ENOENT if it does not exist (err set too). */
int config_load(const char *path, struct cairn_config **out, char *err, size_t errlen);
/* A deep copy of c. */
int config_dup(const struct cairn_config *c, struct cairn_config **out, char *err, size_t errlen);
/* Write c to path atomically. */
int config_save(const struct cairn_config *c, const char *path, char *err, size_t errlen);
/* Apply one change (a control request: {"op":"target.add","iqn":...}; see cmd_target.c
 * for the ops and fields; "volume.retention" with "volume" and any of "retain_ns",
 * "hourly_ns", "hourly_every_ns", "daily_ns", "daily_every_ns" sets those fields of the
 * volume's entry, adding it if needed) and validate. On failure c is unchanged. */
int config_edit(struct cairn_config *c, json_object *req, char *err, size_t errlen);
/* The configuration as JSON for listings: secrets are never included. */
json_object *config_to_json(const struct cairn_config *c);
/* The gateway policy of target t (NULL: discovery), with @groups resolved. *accounts is
 * malloc'd (caller wipes and frees it); sec points into it and into c. */
int config_security(const struct cairn_config *c, const struct cfg_target *t,
		    struct gw_security *sec, struct chap_cred **accounts);
const struct cfg_target *config_find_target(const struct cairn_config *c, const char *iqn);
/* The retention the file gives volume (see the top of this file): 1 and *out filled
 * when the file governs it, 0 when it does not (the volume keeps its own). */
int config_retention(const struct cairn_config *c, const char *volume,
		     struct volume_retention *out);

/* ---- the daemon's side (cmd_serve.c) ---- */

struct daemon;

/* A target the daemon exported from the configuration. */
struct live_target {
	struct live_target *next;
	char iqn[GW_IQN_MAX + 1];
	struct lun **luns;           /* luns[i] = LUN i (NULL: unmapped or volume missing) */
	uint32_t nluns;
};

/* `cairn serve --config FILE` state, hung on struct daemon (d->conf). */
struct serve_conf {
	const char *path;
	struct cairn_config *cfg;
	struct live_target *live;
	char (*portals)[CFG_ADDR_MAX]; /* portals added from the configuration */
	unsigned nportals;
};

/* Make the gateway match d->conf->cfg: portals, targets, LUNs (opening volumes as
 * needed, never skip_volume), security. Caller holds d->lock. Fills err on failure. */
int daemon_conf_apply(struct daemon *d, const char *skip_volume, char *err, size_t errlen);

/* Make the retention of the volumes d->conf->cfg governs match it (the served ones live):
 * only that volume when only is set; skip_volume left alone. Failures are logged (a
 * volume the file names that does not exist is a warning), never fatal. Caller holds
 * d->lock. */
void daemon_conf_retention(struct daemon *d, const char *only, const char *skip_volume);
/* volume.set on a daemon with a config (the fields of hist_volume_set's request): the
 * change is saved into the file atomically, then applied; on any failure neither the
 * file nor the volume changes. Caller holds d->lock. */
json_object *daemon_conf_volume_set(struct daemon *d, json_object *req);

/* `cairn volume set --config FILE` with no daemon: the same change saved into FILE
 * (created if missing), atomically; retention is the volume's policy after the change
 * (cli_retention_json). Fills err on failure. */
int config_file_volume_set(const char *path, json_object *req, json_object *retention,
			   char *err, size_t len);

/* control handlers (cmd_target.c) */
#include <json-c/json.h>
json_object *daemon_config_edit(struct daemon *d, json_object *req);
json_object *daemon_config_show(struct daemon *d, json_object *req);
json_object *daemon_session_list(struct daemon *d, json_object *req);

#endif
