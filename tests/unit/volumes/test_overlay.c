/* Unit tests of volumes/overlay.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "overlay.h"

static void test_apply_and_cover(void)
{
	struct overlay *o;
	struct overlay_entry *e;
	uint8_t data[4096], out[4096];

	CHECK_EQ(overlay_create(4096, 4, &o), 0);
	CHECK(overlay_find(o, 7) == NULL);
	e = overlay_get(o, 7, 10);
	CHECK(e != NULL);
	CHECK(overlay_get(o, 7, 11) == e); /* existing entry, first_seq unchanged */
	CHECK_EQ(e->first_seq, 10);
	memset(data, 0xAB, sizeof(data));
	overlay_apply(o, e, 1024, 1024, data, 12);
	CHECK_EQ(e->last_seq, 12);
	CHECK_EQ(e->nvalid, 2);
	CHECK(overlay_covers(o, e, 1024, 1024));
	CHECK(overlay_covers(o, e, 1536, 512));
	CHECK(!overlay_covers(o, e, 512, 1024));
	CHECK(!overlay_full(o, e));
	/* copy_valid only touches valid sectors */
	memset(out, 0x11, sizeof(out));
	overlay_copy_valid(o, e, 0, 4096, out);
	for (int i = 0; i < 4096; i++)
		if (out[i] != (i >= 1024 && i < 2048 ? 0xAB : 0x11)) {
			CHECK(0);
			break;
		}
	/* zero write over part of it, overlapping */
	overlay_apply(o, e, 1536, 2048, NULL, 13);
	CHECK_EQ(e->nvalid, 5);
	memset(out, 0x11, sizeof(out));
	overlay_copy_valid(o, e, 1024, 2560, out);
	for (int i = 0; i < 2560; i++)
		if (out[i] != (i < 512 ? 0xAB : 0)) {
			CHECK(0);
			break;
		}
	overlay_apply(o, e, 0, 4096, data, 14);
	CHECK(overlay_full(o, e));
	CHECK_EQ(e->nvalid, 8);
	overlay_destroy(o);
}

static void test_merge(void)
{
	struct overlay *o;
	struct overlay_entry *e;
	uint8_t base[65536], d[512];

	CHECK_EQ(overlay_create(65536, 4, &o), 0);
	e = overlay_get(o, 0, 1);
	memset(d, 0x77, sizeof(d));
	overlay_apply(o, e, 0, 512, d, 1);
	overlay_apply(o, e, 65536 - 512, 512, d, 2);
	for (unsigned s = 64; s < 64 + 65; s++) /* a run crossing bitmap words */
		overlay_apply(o, e, s * 512, 512, d, 3);
	memset(base, 0x22, sizeof(base));
	overlay_merge(o, e->buf, e->bitmap, base);
	for (unsigned s = 0; s < 128; s++) {
		int valid = s == 0 || s == 127 || (s >= 64 && s < 129);

		CHECK_EQ(base[s * 512], valid ? 0x77 : 0x22);
		CHECK_EQ(base[s * 512 + 511], valid ? 0x77 : 0x22);
	}
	CHECK(overlay_covers(o, e, 64 * 512, 65 * 512 - 512));
	overlay_destroy(o);
}

static void test_pool_and_ages(void)
{
	struct overlay *o;
	struct overlay_entry *e[4];
	uint8_t d[512] = { 1 };

	CHECK_EQ(overlay_create(4096, 3, &o), 0);
	for (int i = 0; i < 3; i++) {
		e[i] = overlay_get(o, 100 + (uint64_t)i * 1024, 5 + (uint64_t)i);
		CHECK(e[i] != NULL);
		overlay_apply(o, e[i], 0, 512, d, 5 + (uint64_t)i);
	}
	CHECK_EQ(overlay_count(o), 3);
	CHECK(overlay_get(o, 9999, 9) == NULL); /* exhausted: the caller waits */
	CHECK(overlay_oldest(o) == e[0]);
	CHECK(overlay_younger(e[0]) == e[1]);
	CHECK_EQ(overlay_min_first_seq(o, 1000), 5);
	overlay_touch(o, e[0], 42);
	CHECK(overlay_oldest(o) == e[1]);
	overlay_remove(o, e[1]);
	CHECK(overlay_find(o, 100 + 1024) == NULL);
	CHECK(overlay_find(o, 100) == e[0]);
	CHECK_EQ(overlay_count(o), 2);
	e[3] = overlay_get(o, 9999, 9);
	CHECK(e[3] != NULL);
	CHECK_EQ(e[3]->nvalid, 0);
	CHECK_EQ(overlay_min_first_seq(o, 1000), 5);
	overlay_remove(o, e[0]);
	overlay_remove(o, e[2]);
	overlay_remove(o, e[3]);
	CHECK_EQ(overlay_count(o), 0);
	CHECK_EQ(overlay_min_first_seq(o, 1000), 1000);
	overlay_destroy(o);
}

/* Many chunks hashing into the same table stay distinct. */
static void test_many(void)
{
	struct overlay *o;
	uint8_t d[512];

	CHECK_EQ(overlay_create(4096, 1000, &o), 0);
	for (uint64_t c = 0; c < 1000; c++) {
		struct overlay_entry *e = overlay_get(o, c << 20, c);

		memset(d, (int)(c & 0xff), sizeof(d));
		overlay_apply(o, e, 512, 512, d, c);
	}
	for (uint64_t c = 0; c < 1000; c++) {
		struct overlay_entry *e = overlay_find(o, c << 20);

		CHECK(e && e->chunk == c << 20 && ((uint8_t *)e->buf)[512] == (c & 0xff));
	}
	overlay_destroy(o);
}

int main(void)
{
	RUN(test_apply_and_cover);
	RUN(test_merge);
	RUN(test_pool_and_ages);
	RUN(test_many);
	return check_result();
}
