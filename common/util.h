/* util.h - small helpers shared by every layer: sizes, hex, time, files.
 * All functions return 0 or a negative errno unless stated otherwise.
 */
#ifndef CAIRN_UTIL_H
#define CAIRN_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Parse "8G", "64K", "512", "1.5T" (binary units K/M/G/T/P, optional "iB"/"B").
 * -EINVAL when not a number with an optional unit, -ERANGE on overflow. */
int util_parse_size(const char *s, uint64_t *out);
/* Format bytes as "8.0 GiB" into buf. Returns buf. */
char *util_fmt_size(uint64_t bytes, char *buf, size_t len);
/* Lower-case hex of n bytes into out (2n+1 bytes). */
void util_hex(const uint8_t *in, size_t n, char *out);
/* Parse exactly 2n hex digits. -EINVAL otherwise. */
int util_unhex(const char *s, uint8_t *out, size_t n);
/* Wall clock in ns since the epoch; monotonic clock in ns. */
uint64_t util_now_ns(void);
uint64_t util_mono_ns(void);
/* Format ns since epoch as RFC 3339 UTC with milliseconds: 2026-11-21T10:15:00.250Z */
char *util_fmt_time(uint64_t ns, char *buf, size_t len);
/* Parse RFC 3339 (Z or +hh:mm offset, optional fraction up to ns). */
int util_parse_time(const char *s, uint64_t *ns_out);
/* Fill buf with cryptographically random bytes (OpenSSL RAND_bytes). */
int util_random(void *buf, size_t n);
/* mkdir -p. */
int util_mkdirs(const char *path, unsigned mode);
/* Write a whole file atomically: tmp file, fsync, rename, fsync dir. */
int util_write_file_atomic(const char *path, const void *data, size_t len);
/* Read a whole file (malloc'd, NUL-terminated for convenience). */
int util_read_file(const char *path, void **data, size_t *len);
/* fsync the directory that holds path. */
int util_fsync_dir_of(const char *path);
/* Loop over write/pwrite until done. */
int util_write_all(int fd, const void *buf, size_t len);
int util_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
int util_pread_all(int fd, void *buf, size_t len, uint64_t off);
/* 1 if all n bytes are zero. Fast path for aligned 8-byte words. */
int util_is_zero(const void *buf, size_t n);

#endif
