/* backend.h - the dumb object store under a repository.
 *
 * A backend stores whole objects under '/'-separated keys such as
 * "packs/ab/ab12...". Objects are written once; the few mutable heads are new
 * versioned keys, never an overwrite. Two implementations: a local directory
 * (backend_local.c) and S3 (a later issue). A fault-injecting layer may wrap
 * any backend, since callers only see this struct.
 *
 * Every member returns 0 or a negative errno:
 *   -ENOENT  no such object            -EEXIST  put with BACKEND_PUT_EXCL hit an object
 *   -EIO     the backend failed        -ENOSPC  the backend is full
 */
#ifndef CAIRN_BACKEND_H
#define CAIRN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#define BACKEND_PUT_EXCL 1 /* fail with -EEXIST if the key exists (best effort on S3) */

/* Called once per key by list(); return non-zero to stop the listing (list returns it). */
typedef int (*backend_list_cb)(void *arg, const char *key, uint64_t size);

struct backend_ops {
	/* Read len bytes at off of key into buf; len == 0 is invalid. Short object is -ENODATA. */
	int (*get_range)(void *ctx, const char *key, uint64_t off, void *buf, size_t len);
	/* Read the whole object into a malloc'd buffer (*data, *len); caller frees. */
	int (*get)(void *ctx, const char *key, void **data, size_t *len);
	/* Store the object durably (fsync on local) before returning. flags: BACKEND_PUT_*. */
	int (*put)(void *ctx, const char *key, const void *data, size_t len, int flags);
	/* Remove the object; -ENOENT if absent. */
	int (*del)(void *ctx, const char *key);
	/* Call cb for every key starting with prefix, in lexicographic order. */
	int (*list)(void *ctx, const char *prefix, backend_list_cb cb, void *arg);
	/* Size of the object, or -ENOENT. */
	int (*stat)(void *ctx, const char *key, uint64_t *size);
	/* Release the context. */
	void (*close)(void *ctx);
};

struct backend {
	const struct backend_ops *ops;
	void *ctx;
	char *url; /* as given by the user, for messages */
};

/* 0 if key is a valid object key: '/'-separated non-empty parts, none starting with '.'
 * (so no ".." and no temp-file names); -EINVAL otherwise. Every backend enforces it, so
 * a repository can move between backends. */
int backend_key_check(const char *key);

/* The keys (and sizes) under a prefix, in the backend's lexicographic order. */
struct backend_keys {
	char **keys;
	uint64_t *sizes;
	size_t n, cap;
};
/* Append every key starting with prefix to l (zeroed before the first call). */
int backend_list_keys(struct backend *b, const char *prefix, struct backend_keys *l);
/* Index of key in the sorted list l, or -1. */
long backend_keys_find(const struct backend_keys *l, const char *key);
/* First index whose key's first pl bytes compare >= prefix (l sorted). */
size_t backend_keys_lower(const struct backend_keys *l, const char *prefix, size_t pl);
void backend_keys_free(struct backend_keys *l);

/* Open a local-directory backend rooted at path (which must exist unless create). */
int backend_local_open(const char *path, int create, struct backend **out);
void backend_close(struct backend *b);

#endif
