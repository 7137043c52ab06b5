/* acl.h - per-target access control: initiator name patterns and source address ranges.
 *
 * A rule list is checked in order; the first rule that matches the initiator decides its
 * access, else the list's default applies. An initiator rule matches InitiatorName with
 * fnmatch(3) (no flags: '*' also spans dots and colons). A network rule matches the
 * peer address against ADDR/PREFIX (IPv4 or IPv6; an IPv4-mapped IPv6 peer is compared
 * as IPv4; no prefix means the single host).
 */
#ifndef CAIRN_ACL_H
#define CAIRN_ACL_H

#include <stdint.h>
#include <sys/socket.h>

enum acl_access { ACL_FULL = 0, ACL_READ_ONLY = 1, ACL_DENY = 2 };
enum acl_kind { ACL_BY_INITIATOR = 0, ACL_BY_NET = 1 };

#define ACL_PATTERN_MAX 224

struct acl_rule {
	int kind;                       /* enum acl_kind */
	int access;                     /* enum acl_access */
	char pattern[ACL_PATTERN_MAX];  /* ACL_BY_INITIATOR: fnmatch pattern; ACL_BY_NET: the
					 * text as given (for listing) */
	int family;                     /* ACL_BY_NET: AF_INET or AF_INET6 */
	uint8_t addr[16];               /* network address (4 bytes used for AF_INET) */
	unsigned prefix;                /* prefix length in bits */
};

/* Fill r as a network rule from "A.B.C.D[/N]" or "IPV6[/N]" (brackets allowed).
 * -EINVAL on bad text or prefix; host bits set beyond the prefix are accepted and
 * ignored. */
int acl_rule_set_net(struct acl_rule *r, const char *cidr);
/* Fill r as an initiator-name rule. -EINVAL if empty or too long. */
int acl_rule_set_initiator(struct acl_rule *r, const char *pattern);
/* "full" / "read-only" / "deny" <-> enum acl_access; parse gives -EINVAL. */
int acl_access_parse(const char *s);
const char *acl_access_name(int access);
/* The access of initiator (may be "" when not yet known) connecting from peer (may be
 * NULL: network rules never match). */
int acl_check(const struct acl_rule *rules, unsigned n, int dflt, const char *initiator,
	      const struct sockaddr *peer);

#endif
