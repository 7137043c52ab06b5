/* Unit tests of the chunk codec: ids, compression choice, damage detection. */
#include <errno.h>

#include "check.h"
#include "chunk_codec.h"
#include "helpers.h"

static uint8_t in[CHUNK_SIZE_MAX], out[CHUNK_SIZE_MAX], rec[CODEC_REC_MAX];

static void test_ids(void)
{
	struct chunk_id a, b;

	memset(in, 0, 65536);
	CHECK_EQ(chunk_codec_id(NULL, in, 65536, &a), 0);
	CHECK(chunk_id_is_null(&a));
	in[65535] = 1;
	CHECK_EQ(chunk_codec_id(NULL, in, 65536, &a), 0);
	CHECK(!chunk_id_is_null(&a));
	/* SHA-256("abc") */
	static const uint8_t abc[32] = { 0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41,
		0x40, 0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
		0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad };
	CHECK_EQ(chunk_codec_id(NULL, "abc", 3, &b), 0);
	CHECK_MEM(b.b, abc, 32);
}

static void roundtrip_level(size_t len, int compressible, int level)
{
	struct chunk_id id;
	struct codec_hdr h;
	size_t rl, pl;

	if (compressible)
		fill_text(in, len, len);
	else
		fill_random(in, len, len);
	CHECK_EQ(chunk_codec_id(NULL, in, len, &id), 0);
	CHECK_EQ(chunk_codec_encode(NULL, CHUNK_DATA, &id, in, len, level, rec, &rl), 0);
	CHECK_EQ(chunk_codec_parse_hdr(rec, &h), 0);
	CHECK_EQ(h.codec, compressible ? CODEC_LZ4 : CODEC_RAW);
	CHECK_EQ(h.plain_len, len);
	if (compressible)
		CHECK(rl < CODEC_REC_HDR_LEN + len - len / 16);
	else
		CHECK_EQ(rl, CODEC_REC_HDR_LEN + len);
	memset(out, 0xaa, len);
	CHECK_EQ(chunk_codec_decode(NULL, rec, rl, &id, out, len, &pl), 0);
	CHECK_EQ(pl, len);
	CHECK_MEM(out, in, len);
	CHECK_EQ(chunk_codec_decode(NULL, rec, rl, &id, out, len - 1, &pl), -ENOBUFS);
}

/* Both efforts (LZ4 fast and LZ4HC) round-trip through the one decoder. */
static void roundtrip(size_t len, int compressible)
{
	roundtrip_level(len, compressible, 0);
	roundtrip_level(len, compressible, CODEC_LEVEL_DEFAULT);
}

/* LZ4HC never stores compressible text bigger than LZ4 fast does. */
static void test_hc_not_bigger(void)
{
	struct chunk_id id;
	size_t fast, hc;

	fill_text(in, 65536, 65536);
	CHECK_EQ(chunk_codec_id(NULL, in, 65536, &id), 0);
	CHECK_EQ(chunk_codec_encode(NULL, CHUNK_DATA, &id, in, 65536, 0, rec, &fast), 0);
	CHECK_EQ(chunk_codec_encode(NULL, CHUNK_DATA, &id, in, 65536, CODEC_LEVEL_DEFAULT, rec, &hc), 0);
	CHECK(hc <= fast);
}

static void test_roundtrip_all_sizes(void)
{
	for (size_t len = CHUNK_SIZE_MIN; len <= CHUNK_SIZE_MAX; len *= 2) {
		roundtrip(len, 0);
		roundtrip(len, 1);
	}
	roundtrip(1, 0);
	roundtrip(1000, 1);
}

/* Every single flipped bit anywhere in a record is detected, never decoded. */
static void test_every_flip_detected(void)
{
	struct chunk_id id, other;
	size_t rl, pl;
	int undetected = 0;

	for (int compressible = 0; compressible < 2; compressible++) {
		if (compressible)
			fill_text(in, 4096, 3);
		else
			fill_random(in, 4096, 3);
		chunk_codec_id(NULL, in, 4096, &id);
		CHECK_EQ(chunk_codec_encode(NULL, CHUNK_TREE, &id, in, 4096, 0, rec, &rl), 0);
		for (size_t i = 0; i < rl; i++) {
			for (int bit = 0; bit < 8; bit += 3) {
				rec[i] ^= (uint8_t)(1u << bit);
				if (chunk_codec_decode(NULL, rec, rl, &id, out, sizeof(out), &pl) != -EBADMSG)
					undetected++;
				rec[i] ^= (uint8_t)(1u << bit);
			}
		}
		CHECK_EQ(chunk_codec_decode(NULL, rec, rl, &id, out, sizeof(out), &pl), 0);
		CHECK_EQ(chunk_codec_decode(NULL, rec, rl - 1, &id, out, sizeof(out), &pl), -EBADMSG);
		other = id;
		other.b[0] ^= 1;
		CHECK_EQ(chunk_codec_decode(NULL, rec, rl, &other, out, sizeof(out), &pl), -EBADMSG);
	}
	CHECK_EQ(undetected, 0);
}

static void test_bad_args(void)
{
	struct chunk_id id;
	size_t rl;

	fill_random(in, 4096, 9);
	chunk_codec_id(NULL, in, 4096, &id);
	CHECK_EQ(chunk_codec_encode(NULL, (enum chunk_kind)7, &id, in, 4096, 0, rec, &rl), -EINVAL);
	CHECK_EQ(chunk_codec_encode(NULL, CHUNK_DATA, &id, in, 0, 0, rec, &rl), -EINVAL);
	CHECK_EQ(chunk_codec_encode(NULL, CHUNK_DATA, &id, in, CHUNK_SIZE_MAX + 1, 0, rec, &rl), -EINVAL);
}

int main(void)
{
	RUN(test_ids);
	RUN(test_roundtrip_all_sizes);
	RUN(test_hc_not_bigger);
	RUN(test_every_flip_detected);
	RUN(test_bad_args);
	return check_result();
}
