/* Unit tests for user namespace range allocation (limits/uid_range.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "uid_range.h"

static void test_first_range_starts_at_the_base(void **state)
{
	(void)state;
	struct uid_range_policy p = { .base = 100000000 };
	struct berth_err err;
	long long s = 0;
	assert_int_equal(uid_range_pick(&p, NULL, 0, &s, &err), 0);
	assert_int_equal(s, 100000000);
}

static void test_used_ranges_are_skipped_and_freed_ones_reused(void **state)
{
	(void)state;
	struct uid_range_policy p = { .base = 100000000 };
	struct berth_err err;
	long long used[] = { 100000000, 100000000 + 2 * USERNS_RANGE_SIZE };
	long long s = 0;
	assert_int_equal(uid_range_pick(&p, used, 2, &s, &err), 0);
	assert_int_equal(s, 100000000 + USERNS_RANGE_SIZE); /* the hole is reused */
	long long used3[] = { 100000000, 100000000 + USERNS_RANGE_SIZE, 100000000 + 2 * USERNS_RANGE_SIZE };
	assert_int_equal(uid_range_pick(&p, used3, 3, &s, &err), 0);
	assert_int_equal(s, 100000000 + 3 * USERNS_RANGE_SIZE);
}

static void test_subordinate_ids_of_real_users_are_avoided(void **state)
{
	(void)state;
	const char text[] = "# comment\n\nalice:100000000:65536\nbroken line\nbob:100070000:10\r\nx:1:0\n";
	struct uid_span *spans = NULL;
	size_t n = 0;
	struct berth_err err;
	assert_int_equal(uid_range_parse_subid("/etc/subuid", text, strlen(text), &spans, &n, &err), 0);
	assert_int_equal(n, 2); /* the malformed line and the empty range are skipped */
	assert_int_equal(spans[0].start, 100000000);
	assert_int_equal(spans[1].count, 10);
	struct uid_range_policy p = { .base = 100000000, .reserved = spans, .n_reserved = n };
	long long s = 0;
	/* alice owns the first range; bob's ten ids overlap the second */
	assert_int_equal(uid_range_pick(&p, NULL, 0, &s, &err), 0);
	assert_int_equal(s, 100000000 + 2 * USERNS_RANGE_SIZE);
	uid_range_policy_free(&p);
}

static void test_exhaustion_is_an_error_that_says_what_to_do(void **state)
{
	(void)state;
	long long base = USERNS_ID_LIMIT - 2 * USERNS_RANGE_SIZE;
	struct uid_range_policy p = { .base = base };
	struct berth_err err;
	long long used[] = { base };
	long long s = 0;
	assert_int_equal(uid_range_pick(&p, used, 1, &s, &err), 0);
	assert_int_equal(s, base + USERNS_RANGE_SIZE);
	long long used2[] = { base, base + USERNS_RANGE_SIZE };
	assert_int_equal(uid_range_pick(&p, used2, 2, &s, &err), -1);
	assert_non_null(strstr(err.msg, "delete endpoints"));
}

static void test_missing_subid_files_reserve_nothing(void **state)
{
	(void)state;
	struct uid_range_policy p;
	struct berth_err err;
	assert_int_equal(uid_range_policy_load(&p, 200000000, "/nonexistent/subuid", "/nonexistent/subgid", &err), 0);
	assert_int_equal(p.n_reserved, 0);
	assert_int_equal(p.base, 200000000);
	uid_range_policy_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_range_starts_at_the_base),
		cmocka_unit_test(test_used_ranges_are_skipped_and_freed_ones_reused),
		cmocka_unit_test(test_subordinate_ids_of_real_users_are_avoided),
		cmocka_unit_test(test_exhaustion_is_an_error_that_says_what_to_do),
		cmocka_unit_test(test_missing_subid_files_reserve_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
