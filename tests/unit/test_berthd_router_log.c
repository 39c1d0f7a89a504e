/* test_berthd_router_log.c — how berthd writes a router's line into its own log
 * (router_log.h): printable ASCII as is, everything else escaped, long
 * lines cut with a note; and the pipe end to end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "router_log.h"

static void fmt(const char *line, size_t len, size_t dropped, const char *want)
{
	char out[1800];
	router_log_format(line, len, dropped, out, sizeof(out));
	assert_string_equal(out, want);
}

static void test_format(void **state)
{
	(void)state;
	fmt("plain text [x] 100%", 19, 0, "plain text [x] 100%");
	/* a carriage return or an escape sequence cannot rewrite what a reader sees */
	fmt("a\rberthd[1]: info: x", 20, 0, "a\\x0dberthd[1]: info: x");
	fmt("\x1b[2K\x1b[1Gz", 9, 0, "\\x1b[2K\\x1b[1Gz");
	/* a backslash is doubled, so "\x0d" in the log always means an escape */
	fmt("c:\\x0d", 6, 0, "c:\\\\x0d");
	fmt("nul\0tab\t\xff", 9, 0, "nul\\x00tab\\x09\\xff");
	fmt("cut", 3, 17, "cut [cut: 17 more bytes]");
	fmt("", 0, 0, "");
}

static void test_format_bounded(void **state)
{
	(void)state;
	/* all escapes: 4 bytes out per byte in; the output stays in its buffer */
	char line[ROUTER_LOG_LINE_MAX];
	memset(line, 0x01, sizeof(line));
	char out[200];
	router_log_format(line, sizeof(line), 5, out, sizeof(out));
	assert_true(strlen(out) < sizeof(out));
	const char *note = strstr(out, " [cut: ");
	assert_non_null(note);
	size_t shown = (size_t)(note - out) / 4;
	char want[64];
	snprintf(want, sizeof(want), " [cut: %zu more bytes]", sizeof(line) - shown + 5);
	assert_string_equal(note, want);
}

static void test_pipe(void **state)
{
	(void)state;
	/* berth_log writes to stderr: catch it in a file */
	FILE *caught = tmpfile();
	assert_non_null(caught);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0 && dup2(fileno(caught), STDERR_FILENO) == STDERR_FILENO);
	struct berth_err err;
	struct router_log *rl = router_log_start(&err);
	assert_non_null(rl);
	int fd = router_log_fd(rl);
	assert_true(fd > 2);
	/* a line, a long line and a last line without its newline: read, logged, stopped */
	assert_int_equal(write(fd, "one\n", 4), 4);
	char big[3 * ROUTER_LOG_LINE_MAX];
	memset(big, 'A', sizeof(big));
	big[sizeof(big) - 1] = '\n';
	assert_int_equal(write(fd, big, sizeof(big)), (ssize_t)sizeof(big));
	assert_int_equal(write(fd, "tail", 4), 4);
	router_log_stop(rl);
	dup2(saved, STDERR_FILENO);
	close(saved);
	char text[8192] = "";
	rewind(caught);
	size_t n = fread(text, 1, sizeof(text) - 1, caught);
	fclose(caught);
	text[n] = '\0';
	char *l1 = strstr(text, ": info: router: one\n");
	char *l2 = strstr(text, ": info: router: AAAA");
	char *l3 = strstr(text, ": info: router: tail\n");
	assert_true(l1 != NULL && l2 != NULL && l3 != NULL && l1 < l2 && l2 < l3);
	char note[64];
	snprintf(note, sizeof(note), "A [cut: %d more bytes]\n", 2 * ROUTER_LOG_LINE_MAX - 1);
	assert_non_null(strstr(l2, note));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_bounded),
		cmocka_unit_test(test_pipe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
