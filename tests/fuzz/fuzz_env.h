/* fuzz_env.h - what the libFuzzer targets share: a RAM LUN with fault injection, a
 * socketless iSCSI server context (struct iscsi_server built by hand: targets, policies,
 * buffer pools, one worker), CHAP helpers and a bounded input reader.
 *
 * Determinism: everything an iteration changes (LUN SCSI state, RAM contents, APTPL blob,
 * sessions, policies) is reset by fuzz_env_reset(), so a crash input reproduces alone.
 * The worker pool has one thread and the harness waits for every task it submitted
 * before feeding more bytes, so the order of events is the input's alone.
 */
#ifndef CAIRN_FUZZ_ENV_H
#define CAIRN_FUZZ_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "iscsi_chap.h"
#include "iscsi_session.h"
#include "lun.h"

#define FUZZ_BS 512u
#define FUZZ_LUN_BYTES (256u << 10)  /* 512 blocks of 512 bytes (or 64 of 4096) */
#define FUZZ_NLUNS 3                 /* LUN 0, LUN 1 unmapped (NULL), LUN 2 */
#define FUZZ_IQN "iqn.2026-11.org.cairn:fuzz"
#define FUZZ_IQN2 "iqn.2026-11.org.cairn:fuzz2"
#define FUZZ_CHAP_USER "fuzzuser"
#define FUZZ_CHAP_SECRET "fuzz-secret-0001"
#define FUZZ_MUTUAL_USER "fuzztarget"
#define FUZZ_MUTUAL_SECRET "fuzz-target-secret"

/* One RAM LUN. fail_* is the negative errno the next ops return (0: work). */
struct fuzz_ram {
	uint8_t mem[FUZZ_LUN_BYTES];
	int fail_read, fail_write;
	void *blob;                 /* APTPL state (state_save/state_load) */
	size_t blob_len;
};

extern struct fuzz_ram fuzz_ram[FUZZ_NLUNS];
extern struct lun fuzz_luns[FUZZ_NLUNS];
extern struct lun *fuzz_lun_tab[FUZZ_NLUNS];

/* Configuration of one iteration, from the first input byte. */
#define FZ_CHAP 0x01        /* the target requires CHAP */
#define FZ_MUTUAL 0x02      /* ... and has mutual credentials */
#define FZ_DISC_CHAP 0x04   /* discovery requires CHAP */
#define FZ_LUN_RO 0x08      /* LUN 0 is write-protected */
#define FZ_ACL 0x10         /* ACL: "*ro*" initiators read-only, "*deny*" denied */
#define FZ_BS4K 0x20        /* LUN 2 has 4096-byte blocks */
#define FZ_NOCOPY 0x40      /* no copy_range / state ops: the SCSI layer's fallbacks */

/* Set up the LUNs (and, with server != 0, the iSCSI server) once. */
void fuzz_env_init(int server);
/* Reset the LUNs and apply cfg (FZ_*) to LUNs and security policies. */
void fuzz_env_reset(uint8_t cfg);
/* Release the LUNs' SCSI state and the APTPL blobs (end of an iteration). */
void fuzz_env_release(void);
/* The server context (fuzz_env_init(1)). */
struct iscsi_server *fuzz_srv(void);

/* CHAP: if the text t[0..n) holds "CHAP_R=0x" followed by 32 (MD5) or 64 (SHA-256) '?',
 * write there the right response for the challenge in resp[0..rn) (the target's text
 * with CHAP_A, CHAP_I, CHAP_C), so the fuzzer can get past authentication. */
void fuzz_chap_fill(uint8_t *t, size_t n, const char *resp, size_t rn);

/* A bounded reader over the fuzzer's bytes. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};
static inline uint8_t fz_u8(struct fuzz_in *in)
{
	uint8_t v = 0;

	if (in->n) {
		v = *in->p++;
		in->n--;
	}
	return v;
}
static inline uint16_t fz_u16(struct fuzz_in *in)
{
	uint16_t hi = fz_u8(in);

	return (uint16_t)(hi << 8 | fz_u8(in));
}
/* Take up to want bytes; *got is how many there were. */
static inline const uint8_t *fz_take(struct fuzz_in *in, size_t want, size_t *got)
{
	const uint8_t *p = in->p;

	*got = want < in->n ? want : in->n;
	in->p += *got;
	in->n -= *got;
	return p;
}

#endif
