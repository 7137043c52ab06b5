/* Unit tests of volumes/blockmap.c against a real local repository. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "blockmap.h"
#include "check.h"
#include "log.h"
#include "vtest.h"

static struct chunk_id fake_id(uint64_t c)
{
	struct chunk_id id;

	memset(&id, 0, sizeof(id));
	memcpy(id.b, &c, sizeof(c));
	id.b[31] = 0xC5;
	return id;
}

static void depth_case(struct vt *t, uint64_t nchunks, unsigned want_depth)
{
	struct blockmap *bm;
	struct chunk_id id, root, root2, root3;
	uint64_t probes[] = { 0, 1, 255, 256, nchunks / 2, nchunks - 2, nchunks - 1 };
	unsigned np = sizeof(probes) / sizeof(probes[0]);

	CHECK_EQ(blockmap_depth_for(nchunks), want_depth);
	CHECK_EQ(blockmap_open(&t->cs, nchunks, NULL, &bm), 0);
	CHECK_EQ(blockmap_lookup(bm, 0, 0, &id), 0);
	CHECK(chunk_id_is_null(&id));
	CHECK_EQ(blockmap_lookup(bm, nchunks, 1, &id), -ERANGE);
	CHECK_EQ(blockmap_set(bm, nchunks, &id), -ERANGE);
	for (unsigned i = 0; i < np; i++)
		if (probes[i] < nchunks) {
			struct chunk_id f = fake_id(probes[i]);

			CHECK_EQ(blockmap_set(bm, probes[i], &f), 0);
		}
	CHECK(blockmap_dirty(bm));
	CHECK_EQ(blockmap_flush(bm, &root), 0);
	CHECK(!chunk_id_is_null(&root));
	CHECK(!blockmap_dirty(bm));
	CHECK_EQ(blockmap_flush(bm, &root2), 0);
	CHECK_MEM(&root, &root2, sizeof(root));
	blockmap_close(bm);

	/* reload lazily from the stored root */
	CHECK_EQ(blockmap_open(&t->cs, nchunks, &root, &bm), 0);
	if (want_depth >= 1) {
		CHECK_EQ(blockmap_lookup(bm, probes[0], 0, &id), -EAGAIN);
	}
	for (unsigned i = 0; i < np; i++) {
		struct chunk_id f = fake_id(probes[i]);

		if (probes[i] >= nchunks)
			continue;
		CHECK_EQ(blockmap_lookup(bm, probes[i], 1, &id), 0);
		CHECK_MEM(&id, &f, sizeof(id));
	}
	if (nchunks > 3) {
		CHECK_EQ(blockmap_lookup(bm, 3, 1, &id), 0);
		CHECK(chunk_id_is_null(&id));
	}
	/* setting the same id changes nothing; changing one changes the root */
	{
		struct chunk_id f = fake_id(probes[0]), g = fake_id(12345);

		CHECK_EQ(blockmap_set(bm, probes[0], &f), 0);
		CHECK(!blockmap_dirty(bm));
		CHECK_EQ(blockmap_set(bm, probes[0], &g), 0);
		CHECK_EQ(blockmap_flush(bm, &root2), 0);
		CHECK(memcmp(&root, &root2, sizeof(root)) != 0);
		CHECK_EQ(blockmap_set(bm, probes[0], &f), 0);
		CHECK_EQ(blockmap_flush(bm, &root3), 0);
		CHECK_MEM(&root, &root3, sizeof(root)); /* content addressed */
	}
	/* zero the whole range: the root becomes null */
	CHECK_EQ(blockmap_zero_range(bm, 0, nchunks), 0);
	CHECK_EQ(blockmap_flush(bm, &root2), 0);
	CHECK(chunk_id_is_null(&root2));
	blockmap_close(bm);

	/* a partial zero range keeps what is outside it */
	CHECK_EQ(blockmap_open(&t->cs, nchunks, &root, &bm), 0);
	CHECK_EQ(blockmap_zero_range(bm, 1, nchunks - 2), 0);
	CHECK_EQ(blockmap_lookup(bm, 0, 1, &id), 0);
	{
		struct chunk_id f = fake_id(0);

		CHECK_MEM(&id, &f, sizeof(id));
	}
	CHECK_EQ(blockmap_lookup(bm, nchunks - 1, 1, &id), 0);
	{
		struct chunk_id f = fake_id(nchunks - 1);

		CHECK_MEM(&id, &f, sizeof(id));
	}
	CHECK_EQ(blockmap_lookup(bm, nchunks / 2, 1, &id), 0);
	CHECK(chunk_id_is_null(&id) || nchunks / 2 == 0 || nchunks / 2 == nchunks - 1);
	blockmap_close(bm);
}

static void test_depths(void)
{
	struct vt t;

	CHECK_EQ(vt_init(&t), 0);
	CHECK_EQ(vt_open(&t), 0);
	depth_case(&t, 16, 1);                    /* 1 MiB of 64 KiB chunks */
	depth_case(&t, 256, 1);
	depth_case(&t, 16384, 2);                 /* 1 GiB of 64 KiB chunks */
	depth_case(&t, 1ull << 24, 3);            /* 1 TiB of 64 KiB chunks */
	depth_case(&t, 1ull << 28, 4);            /* 1 TiB of 4 KiB chunks */
	vt_fini(&t);
}

/* A damaged root (a data chunk, not a node) is reported, never used. */
static void test_bad_node(void)
{
	struct vt t;
	struct blockmap *bm;
	struct chunk_id id, got;
	char data[4096];

	CHECK_EQ(vt_init(&t), 0);
	CHECK_EQ(vt_open(&t), 0);
	memset(data, 7, sizeof(data));
	CHECK_EQ(t.cs.ops->put(t.cs.ctx, CHUNK_DATA, data, sizeof(data), &id), 0);
	CHECK_EQ(blockmap_open(&t.cs, 1000, &id, &bm), 0);
	CHECK_EQ(blockmap_lookup(bm, 5, 1, &got), -EBADMSG);
	blockmap_close(bm);
	vt_fini(&t);
}

int main(void)
{
	log_init();
	RUN(test_depths);
	RUN(test_bad_node);
	return check_result();
}
