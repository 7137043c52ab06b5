/* iscsi_text.h - iSCSI text keys (RFC 7143 sections 6 and 13): parsing key=value lists
 * and negotiating the login/operational keys.
 *
 * Text data is a sequence of "key=value\0" items. Negotiation is run by the target as
 * the responder: every key the initiator offers gets the RFC's result (numerical
 * min/max, boolean AND/OR, first match of a list, or NotUnderstood/Irrelevant/Reject),
 * and the target declares its own MaxRecvDataSegmentLength once.
 */
#ifndef CAIRN_ISCSI_TEXT_H
#define CAIRN_ISCSI_TEXT_H

#include <stddef.h>
#include <stdint.h>

#define ISCSI_NAME_MAX 224           /* iSCSI name, 223 bytes + NUL */
#define ISCSI_TEXT_VALUE_MAX 8192    /* longest value we accept */
#define ISCSI_OUR_MRDSL (256u << 10) /* our MaxRecvDataSegmentLength */
#define ISCSI_LOGIN_MRDSL 8192       /* data segment limit during login (RFC 7143 13.12) */
#define ISCSI_TEXT_MAX (64u << 10)   /* longest text exchange we accumulate */

/* A growing text buffer (control path only). */
struct iscsi_textbuf {
	char *buf;
	size_t len, cap;
};

void iscsi_textbuf_free(struct iscsi_textbuf *t);
/* Append raw bytes. -ENOMEM. */
int iscsi_textbuf_append(struct iscsi_textbuf *t, const void *p, size_t n);
/* Append "key=value\0" with value formatted printf-style. -ENOMEM. */
int iscsi_text_addf(struct iscsi_textbuf *t, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Iterate over key=value items of data[0..len). *pos starts at 0. Returns 1 with
 * key/klen/val/vlen set, 0 at the end, -EINVAL on an item without '=' or with an
 * empty key. A trailing item without NUL is accepted. */
int iscsi_text_next(const char *data, size_t len, size_t *pos, const char **key, size_t *klen,
		    const char **val, size_t *vlen);

/* Find key in a text list: value copied NUL-terminated into out. -ENOENT if absent,
 * -ENAMETOOLONG if it does not fit. */
int iscsi_text_get(const char *data, size_t len, const char *key, char *out, size_t outsz);

enum iscsi_session_type { ISCSI_SESSION_NORMAL = 0, ISCSI_SESSION_DISCOVERY = 1 };

/* Operational parameters of a session/connection, at RFC defaults until negotiated. */
struct iscsi_params {
	int header_digest;            /* 1 = CRC32C */
	int data_digest;              /* 1 = CRC32C */
	uint32_t max_send_dsl;        /* initiator's MaxRecvDataSegmentLength: our Data-In limit */
	uint32_t max_recv_dsl;        /* ours, as declared */
	uint32_t max_burst;           /* MaxBurstLength */
	uint32_t first_burst;         /* FirstBurstLength */
	uint32_t max_outstanding_r2t; /* MaxOutstandingR2T */
	uint32_t max_conns;           /* MaxConnections */
	int initial_r2t;              /* InitialR2T */
	int immediate_data;           /* ImmediateData */
	int data_pdu_in_order;        /* DataPDUInOrder */
	int data_seq_in_order;        /* DataSequenceInOrder */
	uint32_t time2wait;           /* DefaultTime2Wait */
	uint32_t time2retain;         /* DefaultTime2Retain */
	uint32_t erl;                 /* ErrorRecoveryLevel */
};

void iscsi_params_default(struct iscsi_params *p);

/* Negotiation state of one login (or of a full-feature text exchange). */
struct iscsi_neg {
	struct iscsi_params p;        /* results so far */
	int session_type;             /* enum iscsi_session_type */
	char initiator_name[ISCSI_NAME_MAX];
	char initiator_alias[256];
	char target_name[ISCSI_NAME_MAX];
	int auth_offered;             /* the initiator sent AuthMethod (the login answers it) */
	int auth_offer_none;          /* ... listing None */
	int auth_offer_chap;          /* ... listing CHAP */
	int auth_none;                /* AuthMethod negotiated to None */
	int declared_mrdsl;           /* our MaxRecvDataSegmentLength already sent */
	int full_feature;             /* negotiation during full feature phase */
	int non_leading;              /* login adding a connection to a session (TSIH set):
				       * Leading Only keys are Irrelevant */
	uint32_t max_conns_ours;      /* MaxConnections the target offers (0: 1, the RFC
				       * default) */
	int names_locked;             /* the login checked SessionType, InitiatorName and
				       * TargetName (first request): a later request may
				       * repeat them but not change them (-EPROTO) */
	uint16_t status;              /* login status on failure (ISCSI_LOGIN_*) */
};

void iscsi_neg_init(struct iscsi_neg *n);

/* Process the initiator's keys in[0..len) and append the responses to out.
 * Returns 0, -EPROTO (n->status holds the login status: malformed text, bad
 * declarative value, a locked name changed) or -ENOMEM. */
int iscsi_text_negotiate(struct iscsi_neg *n, const char *in, size_t len,
			 struct iscsi_textbuf *out);

/* Append the target's declarations still owed before leaving the operational stage
 * (MaxRecvDataSegmentLength), and clamp FirstBurstLength to MaxBurstLength. */
int iscsi_text_finish(struct iscsi_neg *n, struct iscsi_textbuf *out);

#endif
