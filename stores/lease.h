/* lease.h - the writer lease of a repository on a backend without locks (S3).
 *
 * One writer at a time: the holder keeps an object "lease/<32 hex owner id>" whose
 * expiry it renews every ttl/3 from a thread. Another writer that finds a fresh lease
 * not its own gets -EBUSY. A lease is stale when it has expired, or when it names this
 * host and a process that no longer runs (a writer killed with -9 restarts at once).
 * Two writers racing for a free repository both see each other after writing their
 * own lease object; then both step back (-EBUSY) rather than both writing.
 */
#ifndef CAIRN_LEASE_H
#define CAIRN_LEASE_H

#include "backend.h"

#define LEASE_PREFIX "lease/"

struct lease;

/* Take the lease for ttl_s seconds (renewed until lease_release). -EBUSY if another
 * writer holds a fresh one. */
int lease_acquire(struct backend *b, unsigned ttl_s, struct lease **out);
/* 1 while the lease is known held: its last renewal is younger than the ttl. */
int lease_held(struct lease *l);
/* Stop renewing and delete the lease object. */
void lease_release(struct lease *l);

#endif
