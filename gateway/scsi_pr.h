/* scsi_pr.h - reservations: SCSI-2 RESERVE/RELEASE (6)/(10) and SCSI-3 PERSISTENT
 * RESERVE IN/OUT (SPC-4 5.9, 6.15, 6.16), the reservation-conflict gate of scsi_exec(),
 * and the APTPL state saved through lun->ops->state_save. State lives in struct
 * scsi_lu (scsi_ua.h). */
#ifndef CAIRN_SCSI_PR_H
#define CAIRN_SCSI_PR_H

#include "scsi.h"

struct scsi_lu;

/* Load the saved persistent reservation state of lun into the fresh lu (nothing when
 * the lun keeps none or the blob is missing or damaged: a damaged blob is logged). */
void scsi_pr_load(struct scsi_lu *lu, struct lun *lun);

/* Reservation gate run by scsi_exec() before the handler: 1 when c was answered with
 * RESERVATION CONFLICT, 0 when it may run. resv is the row's enum scsi_resv_class. */
int scsi_pr_check(struct scsi_cmd *c, struct lun *lun, unsigned resv);

/* Handlers (scsi_int.h contract). */
int scsi_pr_reserve(struct scsi_cmd *c, struct lun *lun);   /* RESERVE (6), (10) */
int scsi_pr_release(struct scsi_cmd *c, struct lun *lun);   /* RELEASE (6), (10) */
int scsi_pr_in(struct scsi_cmd *c, struct lun *lun);        /* PERSISTENT RESERVE IN */
int scsi_pr_out(struct scsi_cmd *c, struct lun *lun);       /* PERSISTENT RESERVE OUT */

#endif
