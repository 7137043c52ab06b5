/* backend.c - what every backend shares (see backend.h). */
#include "backend.h"

#include <errno.h>
#include <string.h>

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
