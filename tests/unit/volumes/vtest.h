/* vtest.h - helpers shared by the volumes unit tests: temp dirs and a real local
 * repository. */
#ifndef CAIRN_VTEST_H
#define CAIRN_VTEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo.h"

struct vt {
	char dir[64];       /* temp root */
	char repo_dir[96];
	char state_dir[96];
	struct repo *r;
	struct chunk_store cs;
};

static inline void vt_rmtree(const char *d)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", d);
}

/* A fresh repository in a temp dir (create only; vt_open opens it). */
static inline int vt_init(struct vt *t)
{
	memset(t, 0, sizeof(*t));
	strcpy(t->dir, "/tmp/cairn-vtest-XXXXXX");
	if (!mkdtemp(t->dir))
		return -1;
	snprintf(t->repo_dir, sizeof(t->repo_dir), "%s/repo", t->dir);
	snprintf(t->state_dir, sizeof(t->state_dir), "%s/state", t->dir);
	return repo_create(t->repo_dir, NULL);
}

static inline int vt_open(struct vt *t)
{
	int ret = repo_open(t->repo_dir, NULL, &t->r);

	if (!ret)
		repo_chunk_store(t->r, &t->cs);
	return ret;
}

static inline void vt_close(struct vt *t)
{
	if (t->r)
		repo_close(t->r);
	t->r = NULL;
}

static inline void vt_fini(struct vt *t)
{
	vt_close(t);
	vt_rmtree(t->dir);
}

/* xorshift64* */
static inline uint64_t vt_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

#endif
