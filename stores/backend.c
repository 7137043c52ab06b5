/* backend.c - what every backend shares (see backend.h). */
#include "backend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int keys_add(void *arg, const char *key, uint64_t size)
{
	struct backend_keys *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		char **k = realloc(l->keys, sizeof(*k) * cap);
		uint64_t *s;

		if (!k)
			return -ENOMEM;
		l->keys = k;
		s = realloc(l->sizes, sizeof(*s) * cap);
		if (!s)
			return -ENOMEM;
		l->sizes = s;
		l->cap = cap;
	}
	if (!(l->keys[l->n] = strdup(key)))
		return -ENOMEM;
	l->sizes[l->n++] = size;
	return 0;
}

int backend_list_keys(struct backend *b, const char *prefix, struct backend_keys *l)
{
	return b->ops->list(b->ctx, prefix, keys_add, l);
}

size_t backend_keys_lower(const struct backend_keys *l, const char *prefix, size_t pl)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (strncmp(l->keys[mid], prefix, pl) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

long backend_keys_find(const struct backend_keys *l, const char *key)
{
	size_t i = backend_keys_lower(l, key, strlen(key) + 1);

	return i < l->n && !strcmp(l->keys[i], key) ? (long)i : -1;
}

void backend_keys_free(struct backend_keys *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->keys[i]);
	free(l->keys);
	free(l->sizes);
	memset(l, 0, sizeof(*l));
}

int backend_key_check(const char *key)
{
	const char *p = key;

	if (!key || !*key)
		return -EINVAL;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);

		if (n == 0 || p[0] == '.')
			return -EINVAL;
		if (!slash)
			return 0;
		p = slash + 1;
	}
}
