/* test_backoff.c — when the health monitor restarts a failed container. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "backoff.h"

static void test_first_restart_immediate_then_doubling_up_to_the_cap(void **state)
{
	long long d = 0; /* the first restart waits nothing */
	d = backoff_after_restart(d);
	assert_int_equal(d, BACKOFF_MIN_MS);
	long long prev = d;
	for (int i = 0; i < 20; i++) {
		d = backoff_after_restart(d);
		assert_true(d == prev * 2 || d == BACKOFF_MAX_MS);
		assert_true(d <= BACKOFF_MAX_MS);
		prev = d;
	}
	assert_int_equal(d, BACKOFF_MAX_MS);
}

static void test_reset_only_after_staying_healthy(void **state)
{
	assert_false(backoff_should_reset(0, 10 * BACKOFF_RESET_MS)); /* not healthy now */
	assert_false(backoff_should_reset(1000, 1000 + BACKOFF_RESET_MS - 1));
	assert_true(backoff_should_reset(1000, 1000 + BACKOFF_RESET_MS));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_restart_immediate_then_doubling_up_to_the_cap),
		cmocka_unit_test(test_reset_only_after_staying_healthy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
