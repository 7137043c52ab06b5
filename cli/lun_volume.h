/* lun_volume.h - the adapter that exports a volume as a LUN.
 *
 * Geometry: 512-byte blocks, optimal transfer = the chunk size. Identity: serial number
 * (VPD 0x80) = the volume id; NAA 6 designator (VPD 0x83) from the volume id. */
#ifndef CAIRN_LUN_VOLUME_H
#define CAIRN_LUN_VOLUME_H

#include "lun.h"
#include "volume.h"

/* Fill l with the ops and identity of the open volume v (which must outlive l). */
void lun_from_volume(struct lun *l, struct volume *v);
/* Once per daemon, before volumes are exported: the repository whose daemon runs the
 * gc that ends a SANITIZE's purge (through its control socket). Without it a SANITIZE
 * of a volume fails in its purge (-ENOTSUP). */
void lun_volume_purge_setup(const char *repo_id);

#endif
