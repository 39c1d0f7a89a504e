/* The application/vnd.amazon.eventstream framing (router/eventstream.c),
 * byte for byte: the empty message of the AWS event stream test suite, and
 * a PayloadPart and a ModelStreamError computed independently (Python's
 * struct and zlib.crc32) and read back by botocore's EventStreamBuffer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "eventstream.h"

/* The concatenation head | payload | trailer of a frame. */
static size_t flatten(const struct eventstream_frame *f, const void *payload, size_t len, uint8_t *out)
{
	memcpy(out, f->head, f->head_len);
	memcpy(out + f->head_len, payload, len);
	memcpy(out + f->head_len + len, f->trailer, 4);
	return f->head_len + len + 4;
}

static void empty_message(void **state)
{
	(void)state;
	static const uint8_t want[] = { 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00,
					0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff };
	struct eventstream_frame f;
	uint8_t out[64];
	assert_int_equal(eventstream_frame(&f, NULL, 0, "", 0), 0);
	size_t n = flatten(&f, "", 0, out);
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
}

static void payload_part(void **state)
{
	(void)state;
	static const uint8_t want[] = {
		0x00, 0x00, 0x00, 0x6e, 0x00, 0x00, 0x00, 0x59, 0x51, 0x97, 0xff, 0x15, 0x0b, 0x3a, 0x65, 0x76,
		0x65, 0x6e, 0x74, 0x2d, 0x74, 0x79, 0x70, 0x65, 0x07, 0x00, 0x0b, 0x50, 0x61, 0x79, 0x6c, 0x6f,
		0x61, 0x64, 0x50, 0x61, 0x72, 0x74, 0x0d, 0x3a, 0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74, 0x2d,
		0x74, 0x79, 0x70, 0x65, 0x07, 0x00, 0x18, 0x61, 0x70, 0x70, 0x6c, 0x69, 0x63, 0x61, 0x74, 0x69,
		0x6f, 0x6e, 0x2f, 0x6f, 0x63, 0x74, 0x65, 0x74, 0x2d, 0x73, 0x74, 0x72, 0x65, 0x61, 0x6d, 0x0d,
		0x3a, 0x6d, 0x65, 0x73, 0x73, 0x61, 0x67, 0x65, 0x2d, 0x74, 0x79, 0x70, 0x65, 0x07, 0x00, 0x05,
		0x65, 0x76, 0x65, 0x6e, 0x74, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x29, 0x73, 0x8a, 0xb4,
	};
	struct eventstream_frame f;
	uint8_t out[256];
	assert_int_equal(eventstream_payload_part(&f, "hello", 5), 0);
	size_t n = flatten(&f, "hello", 5, out);
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
}

static void model_stream_error(void **state)
{
	(void)state;
	static const uint8_t want[] = {
		0x00, 0x00, 0x00, 0x98, 0x00, 0x00, 0x00, 0x5e, 0x08, 0x87, 0xcf, 0x4b, 0x0f, 0x3a, 0x65, 0x78,
		0x63, 0x65, 0x70, 0x74, 0x69, 0x6f, 0x6e, 0x2d, 0x74, 0x79, 0x70, 0x65, 0x07, 0x00, 0x10, 0x4d,
		0x6f, 0x64, 0x65, 0x6c, 0x53, 0x74, 0x72, 0x65, 0x61, 0x6d, 0x45, 0x72, 0x72, 0x6f, 0x72, 0x0d,
		0x3a, 0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74, 0x2d, 0x74, 0x79, 0x70, 0x65, 0x07, 0x00, 0x10,
		0x61, 0x70, 0x70, 0x6c, 0x69, 0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x2f, 0x6a, 0x73, 0x6f, 0x6e,
		0x0d, 0x3a, 0x6d, 0x65, 0x73, 0x73, 0x61, 0x67, 0x65, 0x2d, 0x74, 0x79, 0x70, 0x65, 0x07, 0x00,
		0x09, 0x65, 0x78, 0x63, 0x65, 0x70, 0x74, 0x69, 0x6f, 0x6e, 0x7b, 0x22, 0x4d, 0x65, 0x73, 0x73,
		0x61, 0x67, 0x65, 0x22, 0x3a, 0x22, 0x6d, 0x22, 0x2c, 0x22, 0x45, 0x72, 0x72, 0x6f, 0x72, 0x43,
		0x6f, 0x64, 0x65, 0x22, 0x3a, 0x22, 0x53, 0x74, 0x72, 0x65, 0x61, 0x6d, 0x42, 0x72, 0x6f, 0x6b,
		0x65, 0x6e, 0x22, 0x7d, 0x5d, 0x2d, 0xb3, 0xa1,
	};
	struct berth_buf b = BERTH_BUF_INIT;
	assert_int_equal(eventstream_append_exception(&b, "ModelStreamError", "StreamBroken", "m"), 0);
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.data, want, sizeof(want));
	buf_free(&b);
}

static void exception_without_code_and_bad_utf8(void **state)
{
	(void)state;
	struct berth_buf b = BERTH_BUF_INIT;
	assert_int_equal(eventstream_append_exception(&b, "InternalStreamFailure", NULL, "bad \xff byte"), 0);
	const char *json = "{\"Message\":\"bad \xef\xbf\xbd byte\"}";
	size_t jl = strlen(json);
	assert_true(b.len > jl + 4);
	assert_memory_equal(b.data + b.len - 4 - jl, json, jl);
	/* total length in the prelude is the whole message */
	uint32_t total = ((uint32_t)(uint8_t)b.data[0] << 24) | ((uint32_t)(uint8_t)b.data[1] << 16) |
			 ((uint32_t)(uint8_t)b.data[2] << 8) | (uint8_t)b.data[3];
	assert_int_equal(total, b.len);
	buf_free(&b);
}

/* The reflected IEEE CRC32 bit by bit, as the format defines it: the
 * reference the router's vectorised CRC must agree with. */
static uint32_t reference_crc(uint32_t crc, const uint8_t *p, size_t len)
{
	crc = ~crc;
	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}

static uint32_t be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Payloads long enough for every path of the CRC (byte tail, 128-bit and
 * 512-bit folds), at odd lengths and an unaligned start: both CRCs agree
 * with the bitwise reference. */
static void large_payloads_checked_bit_by_bit(void **state)
{
	(void)state;
	static const size_t lengths[] = { 1, 15, 16, 63, 64, 255, 256, 257, 1000, 4095, 65536, 65537, 262144 + 13 };
	size_t max = 262144 + 13 + 1;
	uint8_t *buf = malloc(max);
	assert_non_null(buf);
	uint32_t x = 12345;
	for (size_t i = 0; i < max; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 16);
	}
	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		const uint8_t *payload = buf + (i & 1); /* every other one unaligned */
		struct eventstream_frame f;
		assert_int_equal(eventstream_payload_part(&f, payload, lengths[i]), 0);
		assert_int_equal(be32(f.head), f.head_len + lengths[i] + 4);
		assert_int_equal(be32(f.head + 8), reference_crc(0, f.head, 8));
		uint32_t want = reference_crc(reference_crc(0, f.head, f.head_len), payload, lengths[i]);
		assert_int_equal(be32(f.trailer), want);
	}
	free(buf);
}

static void bounds(void **state)
{
	(void)state;
	struct eventstream_frame f;
	char big[300];
	memset(big, 'n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	struct eventstream_header h = { big, "v" };
	assert_int_equal(eventstream_frame(&f, &h, 1, "", 0), -1); /* name over 255 bytes */
	h = (struct eventstream_header){ "", "v" };
	assert_int_equal(eventstream_frame(&f, &h, 1, "", 0), -1); /* empty name */
	h = (struct eventstream_header){ "n", big };
	assert_int_equal(eventstream_frame(&f, &h, 1, "", 0), 0);
	struct eventstream_header two[2] = { { "a", big }, { "b", big } };
	assert_int_equal(eventstream_frame(&f, two, 2, "", 0), -1); /* over EVENTSTREAM_MAX_HEAD */
	assert_int_equal(eventstream_payload_part(&f, "", EVENTSTREAM_MAX_PAYLOAD + 1), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(empty_message),
		cmocka_unit_test(payload_part),
		cmocka_unit_test(model_stream_error),
		cmocka_unit_test(exception_without_code_and_bad_utf8),
		cmocka_unit_test(large_payloads_checked_bit_by_bit),
		cmocka_unit_test(bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
