/* config.c - the declarative gateway configuration (config.h), parsed and written with
 * libconfig. The in-memory model (struct cairn_config) is what the daemon applies; a
 * copy is made through a libconfig tree (to_tree + from_tree), so an edit is tried on
 * the copy and kept only when the whole result validates. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>
#include <openssl/crypto.h>

#include "control.h"
#include "daemon.h"
#include "history.h"
#include "history_cli.h"
#include "log.h"
#include "util.h"
#include "volume.h"

#define LUN_MAX 255

static int errf(char *err, size_t len, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int errf(char *err, size_t len, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && len) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Append one zeroed element to *arr (n elements of sz bytes). */
static void *grow(void *arrp, unsigned *n, size_t sz)
{
	void **arr = arrp;
	char *p = realloc(*arr, (*n + 1) * sz);

	if (!p)
		return NULL;
	memset(p + *n * sz, 0, sz);
	*arr = p;
	return p + (*n)++ * sz;
}

struct cairn_config *config_new(void)
{
	return calloc(1, sizeof(struct cairn_config));
}

static void auth_free(struct cfg_auth *a)
{
	free(a->chap);
	OPENSSL_cleanse(&a->mutual, sizeof(a->mutual));
	memset(a, 0, sizeof(*a));
}

static void free_contents(struct cairn_config *c)
{
	for (unsigned i = 0; i < c->ntargets; i++) {
		free(c->targets[i].luns);
		free(c->targets[i].acl);
		auth_free(&c->targets[i].auth);
	}
	free(c->targets);
	if (c->accounts)
		OPENSSL_cleanse(c->accounts, c->naccounts * sizeof(*c->accounts));
	free(c->accounts);
	free(c->portals);
	free(c->volumes);
	auth_free(&c->discovery);
	memset(c, 0, sizeof(*c));
}

void config_free(struct cairn_config *c)
{
	if (!c)
		return;
	free_contents(c);
	free(c);
}

const struct cfg_target *config_find_target(const struct cairn_config *c, const char *iqn)
{
	for (unsigned i = 0; i < c->ntargets; i++)
		if (!strcmp(c->targets[i].iqn, iqn))
			return &c->targets[i];
	return NULL;
}

static struct cfg_target *find_target(struct cairn_config *c, const char *iqn)
{
	return (struct cfg_target *)config_find_target(c, iqn);
}

static struct cfg_volume *find_volume(const struct cairn_config *c, const char *name)
{
	for (unsigned i = 0; i < c->nvolumes; i++)
		if (!strcmp(c->volumes[i].name, name))
			return &c->volumes[i];
	return NULL;
}

/* ---- retention ---- */

/* The control request fields (hist_volume_set's), by enum cfg_ret_field. */
static const char *const ret_keys[CFG_RET_FIELDS] = { "retain_ns", "hourly_ns",
						      "hourly_every_ns", "daily_ns",
						      "daily_every_ns" };

static uint64_t *ret_field(struct volume_retention *r, int f)
{
	switch (f) {
	case CFG_RET_RETAIN: return &r->retain_ns;
	case CFG_RET_HOURLY: return &r->hourly_ns;
	case CFG_RET_HOURLY_EVERY: return &r->hourly_every_ns;
	case CFG_RET_DAILY: return &r->daily_ns;
	default: return &r->daily_every_ns;
	}
}

static void ret_merge(struct volume_retention *r, const struct cfg_retention *cr)
{
	for (int f = 0; f < CFG_RET_FIELDS; f++)
		if (cr->set & (1u << f))
			*ret_field(r, f) = cr->ns[f];
}

static int lun_maps(const struct cairn_config *c, const char *volume)
{
	for (unsigned i = 0; i < c->ntargets; i++)
		for (unsigned j = 0; j < c->targets[i].nluns; j++)
			if (!strcmp(c->targets[i].luns[j].volume, volume))
				return 1;
	return 0;
}

int config_retention(const struct cairn_config *c, const char *volume,
		     struct volume_retention *out)
{
	const struct cfg_volume *v = find_volume(c, volume);

	if (!v && !(c->retention.present && lun_maps(c, volume)))
		return 0;
	volume_retention_default(out);
	ret_merge(out, &c->retention);
	if (v)
		ret_merge(out, &v->ret);
	return 1;
}

static struct cfg_account *find_account(struct cairn_config *c, const char *user)
{
	for (unsigned i = 0; i < c->naccounts; i++)
		if (!strcmp(c->accounts[i].cred.user, user))
			return &c->accounts[i];
	return NULL;
}

/* ---- validation ---- */

/* iqn.YYYY-MM.reverse.domain[:anything], eui.<16 hex> or naa.<hex>, lower case. */
static int iqn_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 5 || n > GW_IQN_MAX)
		return 0;
	if (strncmp(s, "iqn.", 4) && strncmp(s, "eui.", 4) && strncmp(s, "naa.", 4))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
		      ch == '-' || ch == ':'))
			return 0;
	}
	return 1;
}

static int portal_valid(const char *s)
{
	const char *colon = strrchr(s, ':');

	return colon && colon[1] && strlen(s) < CFG_ADDR_MAX &&
	       strspn(colon + 1, "0123456789") == strlen(colon + 1);
}

static int secret_check(const char *where, const struct chap_cred *cr, char *err, size_t len)
{
	size_t sl = strlen(cr->secret);

	if (!cr->user[0])
		return errf(err, len, -EINVAL, "%s: the CHAP user name is empty; give a user name", where);
	if (sl < CHAP_SECRET_MIN || sl >= CHAP_SECRET_MAX)
		return errf(err, len, -EINVAL,
			    "%s: the CHAP secret of '%s' has %zu characters; use %d to %d characters",
			    where, cr->user, sl, CHAP_SECRET_MIN, CHAP_SECRET_MAX - 1);
	return 0;
}

static int group_has_member(const struct cairn_config *c, const char *g)
{
	for (unsigned i = 0; i < c->naccounts; i++)
		for (unsigned j = 0; j < c->accounts[i].ngroups; j++)
			if (!strcmp(c->accounts[i].groups[j], g))
				return 1;
	return 0;
}

static int auth_check(const struct cairn_config *c, const struct cfg_auth *a, const char *where,
		      char *err, size_t len)
{
	for (unsigned i = 0; i < a->nchap; i++) {
		const char *n = a->chap[i];

		if (n[0] == '@' ? !group_has_member(c, n + 1)
				: !find_account((struct cairn_config *)c, n))
			return errf(err, len, -EINVAL,
				    "%s: CHAP %s '%s' is not defined; add it to 'accounts' first", where,
				    n[0] == '@' ? "group" : "account", n[0] == '@' ? n + 1 : n);
	}
	if (a->has_mutual)
		return secret_check(where, &a->mutual, err, len);
	return 0;
}

static int validate(const struct cairn_config *c, const char *file, char *err, size_t len)
{
	char where[512];
	int rc;

	for (unsigned i = 0; i < c->nportals; i++) {
		if (!portal_valid(c->portals[i]))
			return errf(err, len, -EINVAL,
				    "%s: portal '%s' is invalid; use ADDR:PORT such as 127.0.0.1:3260 or [::1]:3260",
				    file, c->portals[i]);
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(c->portals[i], c->portals[j]))
				return errf(err, len, -EINVAL, "%s: portal '%s' is listed twice", file,
					    c->portals[i]);
	}
	for (unsigned i = 0; i < c->naccounts; i++) {
		const struct cfg_account *a = &c->accounts[i];

		snprintf(where, sizeof(where), "%s:%u: account '%s'", file, a->line, a->cred.user);
		rc = secret_check(where, &a->cred, err, len);
		if (rc)
			return rc;
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(a->cred.user, c->accounts[j].cred.user))
				return errf(err, len, -EINVAL, "%s is defined twice; keep one", where);
	}
	snprintf(where, sizeof(where), "%s: discovery", file);
	rc = auth_check(c, &c->discovery, where, err, len);
	if (rc)
		return rc;
	for (unsigned i = 0; i < c->ntargets; i++) {
		const struct cfg_target *t = &c->targets[i];

		snprintf(where, sizeof(where), "%s:%u: target '%s'", file, t->line, t->iqn);
		if (!iqn_valid(t->iqn))
			return errf(err, len, -EINVAL,
				    "%s: the name is not a valid iSCSI name; use iqn.YYYY-MM.reverse.domain:name in lower case",
				    where);
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(t->iqn, c->targets[j].iqn))
				return errf(err, len, -EINVAL, "%s is defined twice; keep one", where);
		for (unsigned j = 0; j < t->nluns; j++) {
			if (t->luns[j].lun > LUN_MAX)
				return errf(err, len, -EINVAL, "%s: LUN %u is out of range; use 0 to %d",
					    where, t->luns[j].lun, LUN_MAX);
			if (!volume_name_valid(t->luns[j].volume))
				return errf(err, len, -EINVAL, "%s: LUN %u: '%s' is not a volume name",
					    where, t->luns[j].lun, t->luns[j].volume);
			for (unsigned k = 0; k < j; k++)
				if (t->luns[k].lun == t->luns[j].lun)
					return errf(err, len, -EINVAL, "%s: LUN %u is mapped twice", where,
						    t->luns[j].lun);
		}
		rc = auth_check(c, &t->auth, where, err, len);
		if (rc)
			return rc;
	}
	for (unsigned i = 0; i < c->nvolumes; i++) {
		const struct cfg_volume *v = &c->volumes[i];
		struct volume_retention r;

		if (!volume_name_valid(v->name))
			return errf(err, len, -EINVAL, "%s:%u: '%s' under volumes is not a volume name",
				    file, v->line, v->name);
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(v->name, c->volumes[j].name))
				return errf(err, len, -EINVAL,
					    "%s:%u: volume '%s' is listed twice under volumes; keep one",
					    file, v->line, v->name);
		config_retention(c, v->name, &r);
		if (!volume_retention_valid(&r))
			return errf(err, len, -EINVAL,
				    "%s:%u: volume '%s': the period of hourly and daily (after '/') must not be 0",
				    file, v->line, v->name);
	}
	return 0;
}

/* ---- reading ---- */

static int str_of(const config_setting_t *s, const char *name, char *out, size_t outsz,
		  int required, const char *file, char *err, size_t len)
{
	const char *v = NULL;

	if (!config_setting_lookup_string(s, name, &v)) {
		if (!required)
			return 0;
		return errf(err, len, -EINVAL, "%s:%u: '%s' (a string) is missing here", file,
			    config_setting_source_line(s), name);
	}
	if (strlen(v) >= outsz)
		return errf(err, len, -EINVAL, "%s:%u: '%s' is too long (at most %zu characters)", file,
			    config_setting_source_line(s), name, outsz - 1);
	snprintf(out, outsz, "%s", v);
	return 0;
}

static int access_of(const config_setting_t *s, const char *name, int *out, const char *file,
		     char *err, size_t len)
{
	const char *v;
	int a;

	if (!config_setting_lookup_string(s, name, &v))
		return 0;
	a = acl_access_parse(v);
	if (a < 0)
		return errf(err, len, -EINVAL, "%s:%u: %s '%s' is invalid; use full, read-only or deny",
			    file, config_setting_source_line(s), name, v);
	*out = a;
	return 0;
}

static int read_auth(const config_setting_t *s, struct cfg_auth *a, const char *file, char *err,
		     size_t len)
{
	const config_setting_t *l = config_setting_get_member(s, "chap");
	const config_setting_t *m = config_setting_get_member(s, "mutual");
	int rc;

	for (int i = 0; l && i < config_setting_length(l); i++) {
		const char *v = config_setting_get_string_elem(l, i);
		char (*slot)[CHAP_NAME_MAX];

		if (!v || !v[0] || strlen(v) >= CHAP_NAME_MAX)
			return errf(err, len, -EINVAL,
				    "%s:%u: 'chap' must list account names or @groups as strings", file,
				    config_setting_source_line(l));
		slot = grow(&a->chap, &a->nchap, sizeof(*slot));
		if (!slot)
			return -ENOMEM;
		snprintf(*slot, sizeof(*slot), "%s", v);
	}
	if (m) {
		a->has_mutual = 1;
		rc = str_of(m, "user", a->mutual.user, sizeof(a->mutual.user), 1, file, err, len);
		if (!rc)
			rc = str_of(m, "secret", a->mutual.secret, sizeof(a->mutual.secret), 1, file,
				    err, len);
		if (rc)
			return rc;
	}
	return 0;
}

static int read_target(const config_setting_t *s, struct cfg_target *t, const char *file,
		       char *err, size_t len)
{
	const config_setting_t *luns = config_setting_get_member(s, "luns");
	const config_setting_t *acl = config_setting_get_member(s, "acl");
	int rc;

	t->line = config_setting_source_line(s);
	t->default_access = -1;
	rc = str_of(s, "iqn", t->iqn, sizeof(t->iqn), 1, file, err, len);
	if (!rc)
		rc = access_of(s, "default_access", &t->default_access, file, err, len);
	if (!rc)
		rc = read_auth(s, &t->auth, file, err, len);
	if (rc)
		return rc;
	for (int i = 0; luns && i < config_setting_length(luns); i++) {
		const config_setting_t *e = config_setting_get_elem(luns, (unsigned)i);
		struct cfg_lun *l = grow(&t->luns, &t->nluns, sizeof(*l));
		int n;

		if (!l)
			return -ENOMEM;
		if (!config_setting_is_group(e) || !config_setting_lookup_int(e, "lun", &n) || n < 0)
			return errf(err, len, -EINVAL,
				    "%s:%u: each LUN is { lun = N; volume = \"NAME\"; } with N from 0 to %d",
				    file, config_setting_source_line(e ? e : luns), LUN_MAX);
		l->lun = (uint32_t)n;
		rc = str_of(e, "volume", l->volume, sizeof(l->volume), 1, file, err, len);
		if (rc)
			return rc;
	}
	for (int i = 0; acl && i < config_setting_length(acl); i++) {
		const config_setting_t *e = config_setting_get_elem(acl, (unsigned)i);
		struct acl_rule *r = grow(&t->acl, &t->nacl, sizeof(*r));
		const char *ini = NULL, *ip = NULL;
		int access = -1;

		if (!r)
			return -ENOMEM;
		if (!config_setting_is_group(e))
			return errf(err, len, -EINVAL, "%s:%u: each ACL rule is a group { ... }", file,
				    config_setting_source_line(acl));
		config_setting_lookup_string(e, "initiator", &ini);
		config_setting_lookup_string(e, "ip", &ip);
		if (!!ini == !!ip)
			return errf(err, len, -EINVAL,
				    "%s:%u: an ACL rule needs exactly one of initiator = \"PATTERN\" or ip = \"ADDR[/PREFIX]\"",
				    file, config_setting_source_line(e));
		if (ini ? acl_rule_set_initiator(r, ini) : acl_rule_set_net(r, ip))
			return errf(err, len, -EINVAL, "%s:%u: ACL %s '%s' is invalid%s", file,
				    config_setting_source_line(e), ini ? "initiator pattern" : "address",
				    ini ? ini : ip,
				    ini ? "" : "; use an IPv4 or IPv6 address with an optional /prefix");
		rc = access_of(e, "access", &access, file, err, len);
		if (rc)
			return rc;
		if (access < 0)
			return errf(err, len, -EINVAL,
				    "%s:%u: the ACL rule needs access = \"full\", \"read-only\" or \"deny\"",
				    file, config_setting_source_line(e));
		r->access = access;
	}
	return 0;
}

/* One duration: a string (history_parse_duration) or an integer of seconds; with
 * tier, "WINDOW[/PERIOD]" with a period above 0. 0 or -EINVAL. */
static int duration_of(const config_setting_t *e, int tier, uint64_t *window, uint64_t *every,
		       int *has_every, char *text, size_t textlen)
{
	char buf[64], *slash = NULL;
	const char *v;

	*has_every = 0;
	switch (config_setting_type(e)) {
	case CONFIG_TYPE_STRING:
		v = config_setting_get_string(e);
		snprintf(text, textlen, "%s", v);
		if (strlen(v) >= sizeof(buf))
			return -EINVAL;
		snprintf(buf, sizeof(buf), "%s", v);
		break;
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		snprintf(buf, sizeof(buf), "%lld", config_setting_get_int64(e));
		snprintf(text, textlen, "%s", buf);
		break;
	default:
		snprintf(text, textlen, "(not a string)");
		return -EINVAL;
	}
	if (tier) {
		slash = strchr(buf, '/');
		if (slash)
			*slash++ = 0;
	}
	if (history_parse_duration(buf, window))
		return -EINVAL;
	if (slash) {
		if (history_parse_duration(slash, every) || !*every)
			return -EINVAL;
		*has_every = 1;
	}
	return 0;
}

/* A retention group ("what" names it in messages). */
static int read_retention(const config_setting_t *g, struct cfg_retention *r, const char *what,
			  const char *file, char *err, size_t len)
{
	static const char *const names[] = { "retain", "hourly", "daily" };
	static const int win[] = { CFG_RET_RETAIN, CFG_RET_HOURLY, CFG_RET_DAILY };

	if (!config_setting_is_group(g))
		return errf(err, len, -EINVAL,
			    "%s:%u: %s is a group { retain = \"24h\"; hourly = \"7d/1h\"; daily = \"30d/1d\"; }",
			    file, config_setting_source_line(g), what);
	r->present = 1;
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *e = config_setting_get_elem(g, (unsigned)i);
		const char *n = config_setting_name(e);
		uint64_t w = 0, every = 0;
		char text[80];
		int k, he;

		for (k = 0; k < 3 && strcmp(n, names[k]); k++)
			;
		if (k == 3)
			return errf(err, len, -EINVAL,
				    "%s:%u: %s: unknown setting '%s'; expected retain, hourly or daily",
				    file, config_setting_source_line(e), what, n);
		if (duration_of(e, k > 0, &w, &every, &he, text, sizeof(text)))
			return errf(err, len, -EINVAL,
				    "%s:%u: %s: %s '%s' is invalid: give a number with an optional unit s, m, h, d or w (e.g. 24h, 7d), or 0%s",
				    file, config_setting_source_line(e), what, n, text,
				    k ? ", then optionally '/' and a period above 0 (e.g. 7d/1h)" : "");
		r->ns[win[k]] = w;
		r->set |= 1u << win[k];
		if (he) {
			r->ns[win[k] + 1] = every;
			r->set |= 1u << (win[k] + 1);
		}
	}
	return 0;
}

static int from_tree(const config_t *cf, const char *file, struct cairn_config *c, char *err,
		     size_t len)
{
	const config_setting_t *root = config_root_setting(cf), *l, *d;
	static const char *const known[] = { "portals", "default_access", "max_connections",
					     "accounts", "discovery", "targets", "retention",
					     "volumes", NULL };
	int rc;

	for (int i = 0; i < config_setting_length(root); i++) {
		const config_setting_t *e = config_setting_get_elem(root, (unsigned)i);
		int ok = 0;

		for (int k = 0; known[k]; k++)
			ok |= !strcmp(config_setting_name(e), known[k]);
		if (!ok)
			return errf(err, len, -EINVAL,
				    "%s:%u: unknown setting '%s'; expected portals, default_access, max_connections, accounts, discovery, targets, retention or volumes",
				    file, config_setting_source_line(e), config_setting_name(e));
	}
	c->default_access = ACL_FULL;
	rc = access_of(root, "default_access", &c->default_access, file, err, len);
	if (rc)
		return rc;
	d = config_setting_get_member(root, "max_connections");
	if (d) {
		int v = config_setting_get_int(d);

		if (config_setting_type(d) != CONFIG_TYPE_INT || v < 1 || v > GW_MAX_CONNECTIONS)
			return errf(err, len, -EINVAL,
				    "%s:%u: max_connections must be a number from 1 to %d",
				    file, config_setting_source_line(d), GW_MAX_CONNECTIONS);
		c->max_connections = (unsigned)v;
	}
	l = config_setting_get_member(root, "portals");
	for (int i = 0; l && i < config_setting_length(l); i++) {
		const char *v = config_setting_get_string_elem(l, i);
		char (*slot)[CFG_ADDR_MAX];

		if (!v || strlen(v) >= CFG_ADDR_MAX)
			return errf(err, len, -EINVAL, "%s:%u: portals must be strings \"ADDR:PORT\"",
				    file, config_setting_source_line(l));
		slot = grow(&c->portals, &c->nportals, sizeof(*slot));
		if (!slot)
			return -ENOMEM;
		snprintf(*slot, sizeof(*slot), "%s", v);
	}
	l = config_setting_get_member(root, "accounts");
	for (int i = 0; l && i < config_setting_length(l); i++) {
		const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
		const config_setting_t *g = e ? config_setting_get_member(e, "groups") : NULL;
		struct cfg_account *a = grow(&c->accounts, &c->naccounts, sizeof(*a));

		if (!a)
			return -ENOMEM;
		if (!config_setting_is_group(e))
			return errf(err, len, -EINVAL,
				    "%s:%u: each account is { user = \"NAME\"; secret = \"...\"; }", file,
				    config_setting_source_line(l));
		a->line = config_setting_source_line(e);
		rc = str_of(e, "user", a->cred.user, sizeof(a->cred.user), 1, file, err, len);
		if (!rc)
			rc = str_of(e, "secret", a->cred.secret, sizeof(a->cred.secret), 1, file, err,
				    len);
		if (rc)
			return rc;
		for (int j = 0; g && j < config_setting_length(g); j++) {
			const char *v = config_setting_get_string_elem(g, j);

			if (!v || !v[0] || strlen(v) >= CFG_GROUP_MAX || a->ngroups >= CFG_MAX_GROUPS)
				return errf(err, len, -EINVAL,
					    "%s:%u: groups must be up to %d names of up to %d characters",
					    file, config_setting_source_line(g), CFG_MAX_GROUPS,
					    CFG_GROUP_MAX - 1);
			snprintf(a->groups[a->ngroups++], CFG_GROUP_MAX, "%s", v);
		}
	}
	d = config_setting_get_member(root, "discovery");
	if (d) {
		rc = read_auth(d, &c->discovery, file, err, len);
		if (rc)
			return rc;
	}
	l = config_setting_get_member(root, "targets");
	for (int i = 0; l && i < config_setting_length(l); i++) {
		const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
		struct cfg_target *t = grow(&c->targets, &c->ntargets, sizeof(*t));

		if (!t)
			return -ENOMEM;
		if (!config_setting_is_group(e))
			return errf(err, len, -EINVAL, "%s:%u: each target is a group { iqn = ...; }",
				    file, config_setting_source_line(l));
		rc = read_target(e, t, file, err, len);
		if (rc)
			return rc;
	}
	d = config_setting_get_member(root, "retention");
	if (d) {
		rc = read_retention(d, &c->retention, "retention", file, err, len);
		if (rc)
			return rc;
	}
	l = config_setting_get_member(root, "volumes");
	for (int i = 0; l && i < config_setting_length(l); i++) {
		const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
		struct cfg_volume *v = grow(&c->volumes, &c->nvolumes, sizeof(*v));
		char what[CFG_VOLUME_MAX + 32];

		if (!v)
			return -ENOMEM;
		if (!config_setting_is_group(e))
			return errf(err, len, -EINVAL,
				    "%s:%u: each volume is { name = \"NAME\"; retention = { ... }; }", file,
				    config_setting_source_line(l));
		v->line = config_setting_source_line(e);
		rc = str_of(e, "name", v->name, sizeof(v->name), 1, file, err, len);
		if (rc)
			return rc;
		for (int k = 0; k < config_setting_length(e); k++) {
			const char *n = config_setting_name(config_setting_get_elem(e, (unsigned)k));

			if (strcmp(n, "name") && strcmp(n, "retention"))
				return errf(err, len, -EINVAL,
					    "%s:%u: volume '%s': unknown setting '%s'; expected name or retention",
					    file, v->line, v->name, n);
		}
		d = config_setting_get_member(e, "retention");
		snprintf(what, sizeof(what), "retention of volume '%s'", v->name);
		if (d) {
			rc = read_retention(d, &v->ret, what, file, err, len);
			if (rc)
				return rc;
		}
	}
	return validate(c, file, err, len);
}

int config_load(const char *path, struct cairn_config **out, char *err, size_t errlen)
{
	struct cairn_config *c = config_new();
	config_t cf;
	FILE *f;
	int rc;

	if (!c)
		return -ENOMEM;
	f = fopen(path, "r");
	if (!f) {
		rc = -errno;
		config_free(c);
		return errf(err, errlen, rc, "cannot read config file %s: %s", path, strerror(-rc));
	}
	config_init(&cf);
	if (!config_read(&cf, f)) {
		rc = errf(err, errlen, -EINVAL, "%s:%d: %s; fix the syntax (see 'cairn serve --help')",
			  path, config_error_line(&cf), config_error_text(&cf));
		goto out_destroy;
	}
	rc = from_tree(&cf, path, c, err, errlen);
out_destroy:
	config_destroy(&cf);
	fclose(f);
	if (rc) {
		config_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* ---- writing ---- */

static void add_str(config_setting_t *parent, const char *name, const char *v)
{
	config_setting_t *s = config_setting_add(parent, name, CONFIG_TYPE_STRING);

	if (s)
		config_setting_set_string(s, v);
}

static void auth_tree(config_setting_t *g, const struct cfg_auth *a)
{
	if (a->nchap) {
		config_setting_t *l = config_setting_add(g, "chap", CONFIG_TYPE_ARRAY);

		for (unsigned i = 0; l && i < a->nchap; i++)
			config_setting_set_string_elem(l, -1, a->chap[i]);
	}
	if (a->has_mutual) {
		config_setting_t *m = config_setting_add(g, "mutual", CONFIG_TYPE_GROUP);

		if (m) {
			add_str(m, "user", a->mutual.user);
			add_str(m, "secret", a->mutual.secret);
		}
	}
}

static void retention_tree(config_setting_t *parent, const struct cfg_retention *r)
{
	static const char *const names[] = { "retain", "hourly", "daily" };
	static const int win[] = { CFG_RET_RETAIN, CFG_RET_HOURLY, CFG_RET_DAILY };
	config_setting_t *g = config_setting_add(parent, "retention", CONFIG_TYPE_GROUP);

	for (int k = 0; g && k < 3; k++) {
		char a[32], b[32], v[72];
		int f = win[k];

		if (!(r->set & (1u << f)))
			continue; /* a period alone is refused by edits and reads */
		history_fmt_duration(r->ns[f], a, sizeof(a));
		if (k && (r->set & (1u << (f + 1))))
			snprintf(v, sizeof(v), "%s/%s", a, history_fmt_duration(r->ns[f + 1], b, sizeof(b)));
		else
			snprintf(v, sizeof(v), "%s", a);
		add_str(g, names[k], v);
	}
}

static void to_tree(const struct cairn_config *c, config_t *cf)
{
	config_setting_t *root = config_root_setting(cf), *l;

	if (c->nportals) {
		l = config_setting_add(root, "portals", CONFIG_TYPE_ARRAY);
		for (unsigned i = 0; l && i < c->nportals; i++)
			config_setting_set_string_elem(l, -1, c->portals[i]);
	}
	add_str(root, "default_access", acl_access_name(c->default_access));
	if (c->max_connections) {
		l = config_setting_add(root, "max_connections", CONFIG_TYPE_INT);
		if (l)
			config_setting_set_int(l, (int)c->max_connections);
	}
	l = config_setting_add(root, "accounts", CONFIG_TYPE_LIST);
	for (unsigned i = 0; l && i < c->naccounts; i++) {
		config_setting_t *e = config_setting_add(l, NULL, CONFIG_TYPE_GROUP), *g;

		add_str(e, "user", c->accounts[i].cred.user);
		add_str(e, "secret", c->accounts[i].cred.secret);
		if (c->accounts[i].ngroups) {
			g = config_setting_add(e, "groups", CONFIG_TYPE_ARRAY);
			for (unsigned j = 0; g && j < c->accounts[i].ngroups; j++)
				config_setting_set_string_elem(g, -1, c->accounts[i].groups[j]);
		}
	}
	if (c->discovery.nchap || c->discovery.has_mutual)
		auth_tree(config_setting_add(root, "discovery", CONFIG_TYPE_GROUP), &c->discovery);
	l = config_setting_add(root, "targets", CONFIG_TYPE_LIST);
	for (unsigned i = 0; l && i < c->ntargets; i++) {
		const struct cfg_target *t = &c->targets[i];
		config_setting_t *e = config_setting_add(l, NULL, CONFIG_TYPE_GROUP), *ll;

		add_str(e, "iqn", t->iqn);
		ll = config_setting_add(e, "luns", CONFIG_TYPE_LIST);
		for (unsigned j = 0; ll && j < t->nluns; j++) {
			config_setting_t *g = config_setting_add(ll, NULL, CONFIG_TYPE_GROUP);
			config_setting_t *n = config_setting_add(g, "lun", CONFIG_TYPE_INT);

			config_setting_set_int(n, (int)t->luns[j].lun);
			add_str(g, "volume", t->luns[j].volume);
		}
		auth_tree(e, &t->auth);
		if (t->default_access >= 0)
			add_str(e, "default_access", acl_access_name(t->default_access));
		if (t->nacl) {
			ll = config_setting_add(e, "acl", CONFIG_TYPE_LIST);
			for (unsigned j = 0; ll && j < t->nacl; j++) {
				config_setting_t *g = config_setting_add(ll, NULL, CONFIG_TYPE_GROUP);

				add_str(g, t->acl[j].kind == ACL_BY_NET ? "ip" : "initiator",
					t->acl[j].pattern);
				add_str(g, "access", acl_access_name(t->acl[j].access));
			}
		}
	}
	if (c->retention.present)
		retention_tree(root, &c->retention);
	if (c->nvolumes) {
		l = config_setting_add(root, "volumes", CONFIG_TYPE_LIST);
		for (unsigned i = 0; l && i < c->nvolumes; i++) {
			config_setting_t *e = config_setting_add(l, NULL, CONFIG_TYPE_GROUP);

			add_str(e, "name", c->volumes[i].name);
			if (c->volumes[i].ret.present)
				retention_tree(e, &c->volumes[i].ret);
		}
	}
}

int config_save(const struct cairn_config *c, const char *path, char *err, size_t errlen)
{
	static const char head[] = "# cairn gateway configuration (libconfig syntax).\n"
				   "# Written by cairn; changes made with the cairn CLI are kept here.\n";
	char *buf = NULL;
	size_t len = 0;
	config_t cf;
	FILE *f;
	int rc;

	f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	fputs(head, f);
	config_init(&cf);
	to_tree(c, &cf);
	config_write(&cf, f);
	config_destroy(&cf);
	if (fclose(f)) {
		free(buf);
		return -ENOMEM;
	}
	rc = util_write_file_atomic(path, buf, len);
	OPENSSL_cleanse(buf, len);
	free(buf);
	if (rc)
		return errf(err, errlen, rc, "cannot write config file %s: %s", path, strerror(-rc));
	return 0;
}

/* A deep copy, through a libconfig tree. */
int config_dup(const struct cairn_config *c, struct cairn_config **out, char *err,
		       size_t len)
{
	struct cairn_config *n = config_new();
	config_t cf;
	int rc;

	if (!n)
		return -ENOMEM;
	config_init(&cf);
	to_tree(c, &cf);
	rc = from_tree(&cf, "(config)", n, err, len);
	config_destroy(&cf);
	/* lines of the file are kept for later messages */
	for (unsigned i = 0; !rc && i < n->ntargets && i < c->ntargets; i++)
		n->targets[i].line = c->targets[i].line;
	for (unsigned i = 0; !rc && i < n->naccounts && i < c->naccounts; i++)
		n->accounts[i].line = c->accounts[i].line;
	for (unsigned i = 0; !rc && i < n->nvolumes && i < c->nvolumes; i++)
		n->volumes[i].line = c->volumes[i].line;
	if (rc) {
		config_free(n);
		return rc;
	}
	*out = n;
	return 0;
}

/* ---- edits ---- */

static const char *rstr(json_object *req, const char *key)
{
	json_object *f;

	return json_object_object_get_ex(req, key, &f) ? json_object_get_string(f) : NULL;
}

static int rbool(json_object *req, const char *key)
{
	json_object *f;

	return json_object_object_get_ex(req, key, &f) && json_object_get_boolean(f);
}

static int list_add_name(struct cfg_auth *a, const char *name)
{
	char (*slot)[CHAP_NAME_MAX];

	for (unsigned i = 0; i < a->nchap; i++)
		if (!strcmp(a->chap[i], name))
			return 0;
	slot = grow(&a->chap, &a->nchap, sizeof(*slot));
	if (!slot)
		return -ENOMEM;
	snprintf(*slot, sizeof(*slot), "%s", name);
	return 0;
}

/* Remove user from a's list and mutual; returns how many were removed. */
static int auth_drop_user(struct cfg_auth *a, const char *user)
{
	int n = 0;

	for (unsigned i = 0; i < a->nchap;) {
		if (!strcmp(a->chap[i], user)) {
			memmove(a->chap[i], a->chap[i + 1], (a->nchap - i - 1) * sizeof(a->chap[0]));
			a->nchap--;
			n++;
		} else {
			i++;
		}
	}
	if (a->has_mutual && !strcmp(a->mutual.user, user)) {
		OPENSSL_cleanse(&a->mutual, sizeof(a->mutual));
		a->has_mutual = 0;
		n++;
	}
	return n;
}

static int need_target(struct cairn_config *c, const char *iqn, struct cfg_target **t, char *err,
		       size_t len)
{
	if (!iqn)
		return errf(err, len, -EINVAL, "no target IQN given");
	*t = find_target(c, iqn);
	if (!*t)
		return errf(err, len, -ENOENT,
			    "no target '%s' in the configuration; 'cairn target list' shows them", iqn);
	return 0;
}

static int edit_chap(struct cairn_config *c, json_object *req, char *err, size_t len)
{
	const char *user = rstr(req, "user"), *secret = rstr(req, "secret");
	const char *iqn = rstr(req, "target");
	int mutual = rbool(req, "mutual"), disc = rbool(req, "discovery");
	struct cfg_target *t = NULL;
	struct cfg_auth *a = NULL;
	struct cfg_account *acc;
	int rc;

	if (!user || !user[0] || strlen(user) >= CHAP_NAME_MAX || !secret)
		return errf(err, len, -EINVAL, "a CHAP account needs a user name and a secret");
	if (strlen(secret) < CHAP_SECRET_MIN || strlen(secret) >= CHAP_SECRET_MAX)
		return errf(err, len, -EINVAL,
			    "the CHAP secret has %zu characters; use %d to %d characters", strlen(secret),
			    CHAP_SECRET_MIN, CHAP_SECRET_MAX - 1);
	if (iqn) {
		rc = need_target(c, iqn, &t, err, len);
		if (rc)
			return rc;
		a = &t->auth;
	} else if (disc) {
		a = &c->discovery;
	}
	if (mutual) {
		if (!a)
			return errf(err, len, -EINVAL,
				    "--mutual sets the credentials a target answers with: give --target IQN or --discovery");
		a->has_mutual = 1;
		snprintf(a->mutual.user, sizeof(a->mutual.user), "%s", user);
		snprintf(a->mutual.secret, sizeof(a->mutual.secret), "%s", secret);
		return 0;
	}
	acc = find_account(c, user);
	if (!acc) {
		acc = grow(&c->accounts, &c->naccounts, sizeof(*acc));
		if (!acc)
			return -ENOMEM;
		snprintf(acc->cred.user, sizeof(acc->cred.user), "%s", user);
	}
	snprintf(acc->cred.secret, sizeof(acc->cred.secret), "%s", secret);
	return a ? list_add_name(a, user) : 0;
}

static int edit_chap_remove(struct cairn_config *c, const char *user, char *err, size_t len)
{
	int n = 0;

	if (!user)
		return errf(err, len, -EINVAL, "no CHAP user given");
	for (unsigned i = 0; i < c->ntargets; i++) {
		const struct cfg_auth *a = &c->targets[i].auth;

		if (a->nchap == 1 && !strcmp(a->chap[0], user))
			return errf(err, len, -EBUSY,
				    "'%s' is the last CHAP account of target %s: removing it would open the target to everyone; add another account to it first, or remove the target",
				    user, c->targets[i].iqn);
	}
	for (unsigned i = 0; i < c->naccounts; i++) {
		if (!strcmp(c->accounts[i].cred.user, user)) {
			OPENSSL_cleanse(&c->accounts[i], sizeof(c->accounts[i]));
			memmove(&c->accounts[i], &c->accounts[i + 1],
				(c->naccounts - i - 1) * sizeof(c->accounts[0]));
			c->naccounts--;
			n++;
			break;
		}
	}
	n += auth_drop_user(&c->discovery, user);
	for (unsigned i = 0; i < c->ntargets; i++)
		n += auth_drop_user(&c->targets[i].auth, user);
	if (!n)
		return errf(err, len, -ENOENT, "no CHAP account or mutual user named '%s'", user);
	return 0;
}

static int parse_rule(json_object *req, struct acl_rule *r, char *err, size_t len)
{
	const char *ini = rstr(req, "initiator"), *ip = rstr(req, "ip");

	if (!!ini == !!ip)
		return errf(err, len, -EINVAL, "give exactly one of --initiator PATTERN or --ip ADDR[/PREFIX]");
	if (ini ? acl_rule_set_initiator(r, ini) : acl_rule_set_net(r, ip))
		return errf(err, len, -EINVAL, "%s '%s' is invalid%s", ini ? "initiator pattern" : "address",
			    ini ? ini : ip, ini ? "" : "; use an IPv4 or IPv6 address with an optional /prefix");
	return 0;
}

/* "volume.retention": the fields given set those of the volume's entry. */
static int edit_retention(struct cairn_config *c, json_object *req, char *err, size_t len)
{
	const char *name = rstr(req, "volume");
	struct cfg_retention r = { .present = 1 };
	struct cfg_volume *v;
	json_object *f;

	if (!name || !volume_name_valid(name))
		return errf(err, len, -EINVAL, "'%s' is not a volume name", name ? name : "");
	for (int k = 0; k < CFG_RET_FIELDS; k++) {
		if (!json_object_object_get_ex(req, ret_keys[k], &f))
			continue;
		r.ns[k] = json_object_get_uint64(f);
		r.set |= 1u << k;
		if ((k == CFG_RET_HOURLY_EVERY || k == CFG_RET_DAILY_EVERY) && !r.ns[k])
			return errf(err, len, -EINVAL,
				    "the period of --hourly and --daily (after '/') must not be 0");
	}
	v = find_volume(c, name);
	for (int k = CFG_RET_HOURLY_EVERY; k <= CFG_RET_DAILY_EVERY; k += 2)
		if ((r.set & (1u << k)) && !(r.set & (1u << (k - 1))) &&
		    !(v && (v->ret.set & (1u << (k - 1)))))
			return errf(err, len, -EINVAL, "a period (%s) needs its window (%s)",
				    ret_keys[k], ret_keys[k - 1]);
	if (!v) {
		v = grow(&c->volumes, &c->nvolumes, sizeof(*v));
		if (!v)
			return -ENOMEM;
		snprintf(v->name, sizeof(v->name), "%s", name);
	}
	v->ret.present = 1;
	v->ret.set |= r.set;
	for (int k = 0; k < CFG_RET_FIELDS; k++)
		if (r.set & (1u << k))
			v->ret.ns[k] = r.ns[k];
	return 0;
}

static int apply(struct cairn_config *c, json_object *req, char *err, size_t len)
{
	const char *op = rstr(req, "op"), *iqn = rstr(req, "iqn");
	struct cfg_target *t;
	struct acl_rule r;
	int rc;

	if (!op)
		return errf(err, len, -EINVAL, "no configuration change given");
	if (!strcmp(op, "target.add")) {
		if (!iqn || !iqn_valid(iqn))
			return errf(err, len, -EINVAL,
				    "'%s' is not a valid iSCSI name; use iqn.YYYY-MM.reverse.domain:name in lower case",
				    iqn ? iqn : "");
		if (find_target(c, iqn))
			return errf(err, len, -EEXIST, "target '%s' already exists", iqn);
		t = grow(&c->targets, &c->ntargets, sizeof(*t));
		if (!t)
			return -ENOMEM;
		snprintf(t->iqn, sizeof(t->iqn), "%s", iqn);
		t->default_access = -1;
		return 0;
	}
	if (!strcmp(op, "portal.add") || !strcmp(op, "portal.remove")) {
		const char *addr = rstr(req, "addr");
		char (*slot)[CFG_ADDR_MAX];

		if (!addr || !portal_valid(addr))
			return errf(err, len, -EINVAL,
				    "portal '%s' is invalid; use ADDR:PORT such as 127.0.0.1:3260 or [::1]:3260",
				    addr ? addr : "");
		for (unsigned i = 0; i < c->nportals; i++) {
			if (strcmp(c->portals[i], addr))
				continue;
			if (op[7] == 'a')
				return errf(err, len, -EEXIST, "portal %s is already configured", addr);
			memmove(c->portals[i], c->portals[i + 1], (c->nportals - i - 1) * sizeof(*slot));
			c->nportals--;
			return 0;
		}
		if (op[7] == 'r')
			return errf(err, len, -ENOENT, "portal %s is not configured; 'cairn portal list' shows them", addr);
		slot = grow(&c->portals, &c->nportals, sizeof(*slot));
		if (!slot)
			return -ENOMEM;
		snprintf(*slot, sizeof(*slot), "%s", addr);
		return 0;
	}
	if (!strcmp(op, "chap.add"))
		return edit_chap(c, req, err, len);
	if (!strcmp(op, "chap.remove"))
		return edit_chap_remove(c, rstr(req, "user"), err, len);
	if (!strcmp(op, "volume.retention"))
		return edit_retention(c, req, err, len);
	rc = need_target(c, iqn, &t, err, len);
	if (rc)
		return rc;
	if (!strcmp(op, "target.remove")) {
		unsigned i = (unsigned)(t - c->targets);

		free(t->luns);
		free(t->acl);
		auth_free(&t->auth);
		memmove(t, t + 1, (c->ntargets - i - 1) * sizeof(*t));
		c->ntargets--;
		return 0;
	}
	if (!strcmp(op, "lun.add") || !strcmp(op, "lun.remove")) {
		json_object *f;
		int64_t lun = json_object_object_get_ex(req, "lun", &f) ? json_object_get_int64(f) : -1;
		const char *vol = rstr(req, "volume");
		struct cfg_lun *l;

		if (lun < 0 || lun > LUN_MAX)
			return errf(err, len, -EINVAL, "LUN numbers go from 0 to %d", LUN_MAX);
		for (unsigned i = 0; i < t->nluns; i++) {
			if (t->luns[i].lun != (uint32_t)lun)
				continue;
			if (op[4] == 'a')
				return errf(err, len, -EEXIST, "target '%s' already has LUN %lld (volume %s)",
					    iqn, (long long)lun, t->luns[i].volume);
			memmove(&t->luns[i], &t->luns[i + 1], (t->nluns - i - 1) * sizeof(*l));
			t->nluns--;
			return 0;
		}
		if (op[4] == 'r')
			return errf(err, len, -ENOENT, "target '%s' has no LUN %lld", iqn, (long long)lun);
		if (!vol || !volume_name_valid(vol))
			return errf(err, len, -EINVAL, "'%s' is not a volume name", vol ? vol : "");
		l = grow(&t->luns, &t->nluns, sizeof(*l));
		if (!l)
			return -ENOMEM;
		l->lun = (uint32_t)lun;
		snprintf(l->volume, sizeof(l->volume), "%s", vol);
		return 0;
	}
	if (!strcmp(op, "acl.add") || !strcmp(op, "acl.remove")) {
		struct acl_rule *slot;
		int access = acl_access_parse(rstr(req, "access"));

		rc = parse_rule(req, &r, err, len);
		if (rc)
			return rc;
		for (unsigned i = 0; i < t->nacl; i++) {
			if (t->acl[i].kind != r.kind || strcmp(t->acl[i].pattern, r.pattern))
				continue;
			if (op[4] == 'r') {
				memmove(&t->acl[i], &t->acl[i + 1], (t->nacl - i - 1) * sizeof(r));
				t->nacl--;
				return 0;
			}
			if (access < 0)
				return errf(err, len, -EINVAL, "--access must be full, read-only or deny");
			t->acl[i].access = access; /* same rule again: its access changes */
			return 0;
		}
		if (op[4] == 'r')
			return errf(err, len, -ENOENT, "target '%s' has no ACL rule for '%s'", iqn, r.pattern);
		if (access < 0)
			return errf(err, len, -EINVAL, "--access must be full, read-only or deny");
		r.access = access;
		slot = grow(&t->acl, &t->nacl, sizeof(*slot));
		if (!slot)
			return -ENOMEM;
		*slot = r;
		return 0;
	}
	if (!strcmp(op, "acl.default")) {
		int access = acl_access_parse(rstr(req, "access"));

		if (access < 0)
			return errf(err, len, -EINVAL, "--access must be full, read-only or deny");
		t->default_access = access;
		return 0;
	}
	return errf(err, len, -EINVAL, "unknown configuration change '%s'", op);
}

int config_edit(struct cairn_config *c, json_object *req, char *err, size_t len)
{
	struct cairn_config *n;
	int rc;

	rc = config_dup(c, &n, err, len);
	if (rc)
		return rc;
	rc = apply(n, req, err, len);
	if (!rc)
		rc = validate(n, "the configuration", err, len);
	if (rc) {
		config_free(n);
		return rc;
	}
	free_contents(c);
	*c = *n;
	free(n);
	return 0;
}

/* ---- views ---- */

static json_object *auth_json(const struct cfg_auth *a)
{
	json_object *o = json_object_new_object(), *l = json_object_new_array();

	for (unsigned i = 0; i < a->nchap; i++)
		json_object_array_add(l, json_object_new_string(a->chap[i]));
	json_object_object_add(o, "chap", l);
	if (a->has_mutual)
		json_object_object_add(o, "mutual_user", json_object_new_string(a->mutual.user));
	return o;
}

json_object *config_to_json(const struct cairn_config *c)
{
	json_object *o = json_object_new_object(), *l;

	l = json_object_new_array();
	for (unsigned i = 0; i < c->nportals; i++)
		json_object_array_add(l, json_object_new_string(c->portals[i]));
	json_object_object_add(o, "portals", l);
	json_object_object_add(o, "default_access",
			       json_object_new_string(acl_access_name(c->default_access)));
	if (c->max_connections)
		json_object_object_add(o, "max_connections",
				       json_object_new_int64(c->max_connections));
	l = json_object_new_array();
	for (unsigned i = 0; i < c->naccounts; i++) {
		json_object *a = json_object_new_object(), *g = json_object_new_array();

		json_object_object_add(a, "user", json_object_new_string(c->accounts[i].cred.user));
		for (unsigned j = 0; j < c->accounts[i].ngroups; j++)
			json_object_array_add(g, json_object_new_string(c->accounts[i].groups[j]));
		json_object_object_add(a, "groups", g);
		json_object_array_add(l, a);
	}
	json_object_object_add(o, "accounts", l);
	json_object_object_add(o, "discovery", auth_json(&c->discovery));
	l = json_object_new_array();
	for (unsigned i = 0; i < c->ntargets; i++) {
		const struct cfg_target *t = &c->targets[i];
		json_object *to = json_object_new_object(), *ll = json_object_new_array();

		json_object_object_add(to, "iqn", json_object_new_string(t->iqn));
		for (unsigned j = 0; j < t->nluns; j++) {
			json_object *lo = json_object_new_object();

			json_object_object_add(lo, "lun", json_object_new_int64(t->luns[j].lun));
			json_object_object_add(lo, "volume", json_object_new_string(t->luns[j].volume));
			json_object_array_add(ll, lo);
		}
		json_object_object_add(to, "luns", ll);
		ll = json_object_new_array();
		for (unsigned j = 0; j < t->nacl; j++) {
			json_object *ao = json_object_new_object();

			json_object_object_add(ao, t->acl[j].kind == ACL_BY_NET ? "ip" : "initiator",
					       json_object_new_string(t->acl[j].pattern));
			json_object_object_add(ao, "access",
					       json_object_new_string(acl_access_name(t->acl[j].access)));
			json_object_array_add(ll, ao);
		}
		json_object_object_add(to, "acl", ll);
		json_object_object_add(to, "default_access",
				       json_object_new_string(acl_access_name(
					       t->default_access >= 0 ? t->default_access : c->default_access)));
		json_object_object_add(to, "auth", auth_json(&t->auth));
		json_object_array_add(l, to);
	}
	json_object_object_add(o, "targets", l);
	if (c->retention.present) {
		struct volume_retention r;

		volume_retention_default(&r);
		ret_merge(&r, &c->retention);
		json_object_object_add(o, "retention", cli_retention_json(&r));
	}
	l = json_object_new_array();
	for (unsigned i = 0; i < c->nvolumes; i++) {
		json_object *vo = json_object_new_object();
		struct volume_retention r;

		json_object_object_add(vo, "name", json_object_new_string(c->volumes[i].name));
		config_retention(c, c->volumes[i].name, &r);
		json_object_object_add(vo, "retention", cli_retention_json(&r));
		json_object_array_add(l, vo);
	}
	json_object_object_add(o, "volumes", l);
	return o;
}

int config_security(const struct cairn_config *c, const struct cfg_target *t,
		    struct gw_security *sec, struct chap_cred **accounts)
{
	const struct cfg_auth *a = t ? &t->auth : &c->discovery;
	struct chap_cred *acc = calloc(c->naccounts ? c->naccounts : 1, sizeof(*acc));
	unsigned n = 0;

	if (!acc)
		return -ENOMEM;
	for (unsigned i = 0; i < c->naccounts; i++) {
		const struct cfg_account *ac = &c->accounts[i];
		int allowed = 0;

		for (unsigned j = 0; j < a->nchap && !allowed; j++) {
			if (a->chap[j][0] != '@') {
				allowed = !strcmp(a->chap[j], ac->cred.user);
				continue;
			}
			for (unsigned k = 0; k < ac->ngroups && !allowed; k++)
				allowed = !strcmp(a->chap[j] + 1, ac->groups[k]);
		}
		if (allowed)
			acc[n++] = ac->cred;
	}
	memset(sec, 0, sizeof(*sec));
	sec->accounts = acc;
	sec->naccounts = n;
	sec->mutual = a->has_mutual ? &a->mutual : NULL;
	if (t) {
		sec->rules = t->acl;
		sec->nrules = t->nacl;
		sec->default_access = t->default_access >= 0 ? t->default_access : c->default_access;
	}
	*accounts = acc;
	return 0;
}

/* ---- the daemon's side: retention ---- */

static int retention_same(const struct volume_retention *a, const struct volume_retention *b)
{
	return a->retain_ns == b->retain_ns && a->hourly_ns == b->hourly_ns &&
	       a->hourly_every_ns == b->hourly_every_ns && a->daily_ns == b->daily_ns &&
	       a->daily_every_ns == b->daily_every_ns;
}

/* Set volume name to r unless it has it already. */
static int retention_set(struct daemon *d, const char *name, const struct volume_retention *r,
			 int quiet_missing)
{
	struct volume_info vi;
	struct served *s;
	char a[32], b[32], c[32], e[32], f[32];
	int rc;

	rc = volume_lookup(&d->cs, name, &vi);
	if (rc == -ENOENT && quiet_missing)
		return 0;
	if (!rc && retention_same(&vi.retention, r))
		return 0;
	if (!rc) {
		s = daemon_find_served(d, name);
		rc = volume_set_retention(&d->cs, s ? s->vol : NULL, name, r);
	}
	if (rc == -ENOENT)
		log_warn("serve", "the configuration sets the retention of volume %s, which does not exist (yet)",
			 name);
	else if (rc)
		log_error("serve", "cannot set the retention of volume %s from the configuration: %s",
			  name, strerror(-rc));
	else
		log_info("serve", "volume %s: retention from the configuration: every write for %s, "
			 "then one point per %s for %s, one per %s for %s", name,
			 history_fmt_duration(r->retain_ns, a, sizeof(a)),
			 history_fmt_duration(r->hourly_every_ns, b, sizeof(b)),
			 history_fmt_duration(r->hourly_ns, c, sizeof(c)),
			 history_fmt_duration(r->daily_every_ns, e, sizeof(e)),
			 history_fmt_duration(r->daily_ns, f, sizeof(f)));
	return rc;
}

void daemon_conf_retention(struct daemon *d, const char *only, const char *skip_volume)
{
	const struct cairn_config *c = d->conf->cfg;
	struct volume_retention r;

	for (unsigned i = 0; i < c->nvolumes; i++) {
		const char *n = c->volumes[i].name;

		if ((only && strcmp(n, only)) || (skip_volume && !strcmp(n, skip_volume)))
			continue;
		config_retention(c, n, &r);
		retention_set(d, n, &r, only != NULL);
	}
	if (!c->retention.present)
		return;
	for (unsigned i = 0; i < c->ntargets; i++)
		for (unsigned j = 0; j < c->targets[i].nluns; j++) {
			const char *n = c->targets[i].luns[j].volume;

			if ((only && strcmp(n, only)) || (skip_volume && !strcmp(n, skip_volume)) ||
			    find_volume(c, n))
				continue;
			config_retention(c, n, &r);
			retention_set(d, n, &r, 1); /* want_luns warns of a missing one */
		}
}

/* The "volume.retention" edit for hist_volume_set's req on volume name: the fields req
 * gives; when c does not govern the volume yet, the others too, from base (so the file
 * then states what the volume has). */
static json_object *retention_edit(const struct cairn_config *c, const char *name,
				   json_object *req, const struct volume_retention *base)
{
	struct volume_retention r = *base, cur;
	int governed = config_retention(c, name, &cur);
	json_object *edit = json_object_new_object(), *f;

	json_object_object_add(edit, "op", json_object_new_string("volume.retention"));
	json_object_object_add(edit, "volume", json_object_new_string(name));
	for (int k = 0; k < CFG_RET_FIELDS; k++) {
		uint64_t v = *ret_field(&r, k);

		if (json_object_object_get_ex(req, ret_keys[k], &f))
			v = json_object_get_uint64(f);
		else if (governed)
			continue; /* the file's default (or entry) keeps deciding it */
		json_object_object_add(edit, ret_keys[k], json_object_new_uint64(v));
	}
	return edit;
}

int config_file_volume_set(const char *path, json_object *req, json_object *retention,
			   char *err, size_t len)
{
	const char *name = daemon_req_str(req, "volume");
	struct volume_retention base;
	struct cairn_config *c = NULL;
	json_object *edit, *f;
	char key[32];
	int rc;

	volume_retention_default(&base);
	for (int k = 0; k < CFG_RET_FIELDS; k++) { /* "retain_ns" -> "retain_s" */
		snprintf(key, sizeof(key), "%.*s_s", (int)strlen(ret_keys[k]) - 3, ret_keys[k]);
		if (json_object_object_get_ex(retention, key, &f))
			*ret_field(&base, k) = json_object_get_uint64(f) * VOLUME_NS_PER_S;
	}
	rc = config_load(path, &c, err, len);
	if (rc == -ENOENT)
		c = config_new();
	else if (rc)
		return rc;
	if (!c)
		return errf(err, len, -ENOMEM, "out of memory");
	edit = retention_edit(c, name ? name : "", req, &base);
	rc = config_edit(c, edit, err, len);
	json_object_put(edit);
	if (!rc)
		rc = config_save(c, path, err, len);
	config_free(c);
	return rc;
}

json_object *daemon_conf_volume_set(struct daemon *d, json_object *req)
{
	struct serve_conf *sc = d->conf;
	const char *name = daemon_req_str(req, "volume");
	struct volume_retention r;
	struct cairn_config *nw = NULL;
	struct volume_info vi;
	struct served *s;
	json_object *edit, *reply;
	char err[1024];
	int rc;

	if (!name)
		return control_reply_err(2, "volume.set needs a volume");
	rc = volume_lookup(&d->cs, name, &vi);
	if (rc)
		return daemon_volume_err(name, rc);
	edit = retention_edit(sc->cfg, name, req, &vi.retention);
	rc = config_dup(sc->cfg, &nw, err, sizeof(err));
	if (!rc)
		rc = config_edit(nw, edit, err, sizeof(err));
	json_object_put(edit);
	if (rc) {
		config_free(nw);
		return control_reply_err(rc == -EINVAL ? 2 : 1, err);
	}
	config_retention(nw, name, &r);
	s = daemon_find_served(d, name);
	rc = retention_same(&vi.retention, &r) ? 0 : volume_set_retention(&d->cs, s ? s->vol : NULL, name, &r);
	if (rc) {
		config_free(nw);
		return daemon_volume_err(name, rc);
	}
	rc = config_save(nw, sc->path, err, sizeof(err));
	if (rc) { /* the volume gets back what it had */
		if (!retention_same(&vi.retention, &r) &&
		    volume_set_retention(&d->cs, s ? s->vol : NULL, name, &vi.retention))
			log_error("serve", "volume %s: cannot restore its previous retention", name);
		config_free(nw);
		strncat(err, "; nothing was changed", sizeof(err) - strlen(err) - 1);
		return control_reply_err(1, err);
	}
	config_free(sc->cfg);
	sc->cfg = nw;
	reply = control_reply_ok();
	json_object_object_add(reply, "retention", cli_retention_json(&r));
	json_object_object_add(reply, "config", json_object_new_string(sc->path));
	return reply;
}
