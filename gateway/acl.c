/* acl.c - first-match access rules by initiator name and source address (acl.h). */
#include "acl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int acl_rule_set_initiator(struct acl_rule *r, const char *pattern)
{
	size_t n = pattern ? strlen(pattern) : 0;

	if (!n || n >= sizeof(r->pattern))
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	r->kind = ACL_BY_INITIATOR;
	memcpy(r->pattern, pattern, n + 1);
	return 0;
}

int acl_rule_set_net(struct acl_rule *r, const char *cidr)
{
	char host[INET6_ADDRSTRLEN + 2], *end;
	const char *slash;
	size_t hl;
	unsigned long prefix;
	unsigned maxp;

	if (!cidr || !*cidr || strlen(cidr) >= sizeof(r->pattern))
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	r->kind = ACL_BY_NET;
	snprintf(r->pattern, sizeof(r->pattern), "%s", cidr);
	slash = strchr(cidr, '/');
	hl = slash ? (size_t)(slash - cidr) : strlen(cidr);
	if (hl >= 2 && cidr[0] == '[' && cidr[hl - 1] == ']') {
		cidr++;
		hl -= 2;
	}
	if (!hl || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, cidr, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, r->addr) == 1) {
		r->family = AF_INET;
		maxp = 32;
	} else if (inet_pton(AF_INET6, host, r->addr) == 1) {
		r->family = AF_INET6;
		maxp = 128;
	} else {
		return -EINVAL;
	}
	r->prefix = maxp;
	if (slash) {
		if (!slash[1] || slash[1] == '-' || slash[1] == '+' || slash[1] == ' ')
			return -EINVAL;
		errno = 0;
		prefix = strtoul(slash + 1, &end, 10);
		if (errno || *end || prefix > maxp)
			return -EINVAL;
		r->prefix = (unsigned)prefix;
	}
	return 0;
}

int acl_access_parse(const char *s)
{
	if (!s)
		return -EINVAL;
	if (!strcmp(s, "full"))
		return ACL_FULL;
	if (!strcmp(s, "read-only"))
		return ACL_READ_ONLY;
	if (!strcmp(s, "deny"))
		return ACL_DENY;
	return -EINVAL;
}

const char *acl_access_name(int access)
{
	switch (access) {
	case ACL_FULL: return "full";
	case ACL_READ_ONLY: return "read-only";
	default: return "deny";
	}
}

/* 1 if the first prefix bits of a and b agree. */
static int prefix_eq(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, full))
		return 0;
	if (!rest)
		return 1;
	return ((a[full] ^ b[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

static int net_match(const struct acl_rule *r, const struct sockaddr *peer)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const uint8_t *a;
	int fam;

	if (!peer)
		return 0;
	if (peer->sa_family == AF_INET) {
		fam = AF_INET;
		a = (const uint8_t *)&((const struct sockaddr_in *)peer)->sin_addr;
	} else if (peer->sa_family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)peer)->sin6_addr.s6_addr;
		fam = AF_INET6;
		if (!memcmp(a, mapped, 12)) {
			fam = AF_INET;
			a += 12;
		}
	} else {
		return 0;
	}
	return fam == r->family && prefix_eq(a, r->addr, r->prefix);
}

int acl_check(const struct acl_rule *rules, unsigned n, int dflt, const char *initiator,
	      const struct sockaddr *peer)
{
	for (unsigned i = 0; i < n; i++) {
		const struct acl_rule *r = &rules[i];
		int hit = r->kind == ACL_BY_NET ? net_match(r, peer)
						: (initiator && initiator[0] &&
						   fnmatch(r->pattern, initiator, 0) == 0);

		if (hit)
			return r->access;
	}
	return dflt;
}
