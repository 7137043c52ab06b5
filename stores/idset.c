/* idset.c - see idset.h. A chunk id is a uniform hash, so its first 8 bytes index the
 * table directly. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "idset.h"

#define IDSET_MIN 1024u

static size_t home(const struct chunk_id *id, size_t mask)
{
	uint64_t h;

	memcpy(&h, id->b, sizeof(h));
	return (size_t)h & mask;
}

static int grow(struct idset *s)
{
	size_t cap = s->v ? (s->mask + 1) * 2 : IDSET_MIN, i;
	struct chunk_id *nv = calloc(cap, sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	for (size_t j = 0; s->v && j <= s->mask; j++) {
		if (chunk_id_is_null(&s->v[j]))
			continue;
		for (i = home(&s->v[j], cap - 1); !chunk_id_is_null(&nv[i]); i = (i + 1) & (cap - 1))
			;
		nv[i] = s->v[j];
	}
	free(s->v);
	s->v = nv;
	s->mask = cap - 1;
	return 0;
}

int idset_add(struct idset *s, const struct chunk_id *id)
{
	size_t i;
	int rc;

	if (chunk_id_is_null(id))
		return -EINVAL;
	if (!s->v || (s->n + 1) * 10 > (s->mask + 1) * 7) {
		rc = grow(s);
		if (rc)
			return rc;
	}
	for (i = home(id, s->mask); !chunk_id_is_null(&s->v[i]); i = (i + 1) & s->mask)
		if (!memcmp(s->v[i].b, id->b, CHUNK_ID_LEN))
			return 0;
	s->v[i] = *id;
	s->n++;
	return 1;
}

int idset_has(const struct idset *s, const struct chunk_id *id)
{
	if (!s->v || chunk_id_is_null(id))
		return 0;
	for (size_t i = home(id, s->mask); !chunk_id_is_null(&s->v[i]); i = (i + 1) & s->mask)
		if (!memcmp(s->v[i].b, id->b, CHUNK_ID_LEN))
			return 1;
	return 0;
}

void idset_free(struct idset *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}
