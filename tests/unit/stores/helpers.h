/* helpers.h - shared helpers of the stores unit tests: temp dirs and test data. */
#ifndef CAIRN_TEST_STORES_HELPERS_H
#define CAIRN_TEST_STORES_HELPERS_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

static inline void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh empty directory under TMPDIR (or /tmp); the caller owns and removes it. */
static inline char *tmpdir_new(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *p = malloc(strlen(base) + 32);

	if (!p)
		exit(2);
	sprintf(p, "%s/cairn-stores-XXXXXX", base);
	if (!mkdtemp(p)) {
		perror("mkdtemp");
		exit(2);
	}
	return p;
}

static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* Incompressible bytes determined by seed. */
static inline void fill_random(void *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = rng_next(&s);
		memcpy(p + i, &v, len - i < 8 ? len - i : 8);
	}
}

/* Text-like bytes determined by seed that LZ4 compresses about 2-4x. */
static inline void fill_text(void *buf, size_t len, uint64_t seed)
{
	static const char *words[] = { "cairn ", "block ", "chunk ", "volume ", "snapshot ",
		"the ", "of ", "iscsi ", "target ", "lun ", "write ", "read ", "pack ", "index ",
		"0123 ", "deadbeef ", "\n", "repository ", "journal ", "fold " };
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 7;
	char *p = buf;
	size_t i = 0;

	while (i < len) {
		uint64_t v = rng_next(&s);
		const char *w = words[v % 20];
		size_t n = strlen(w);

		if (n > len - i)
			n = len - i;
		memcpy(p + i, w, n);
		i += n;
		if (i < len && (v >> 32) % 5 == 0)
			p[i++] = (char)('a' + (v >> 40) % 26);
	}
}

#endif
