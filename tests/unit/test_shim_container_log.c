/* test_shim_container_log.c — the shim's container log (shim/container_log.c):
 * bytes kept exactly as written, rotation to LOG.1 past the cap at a line
 * boundary, an existing log appended to, and draining a pipe until EOF.
 * Real files in a temporary directory; the shim's stderr (which
 * container_log_open points at the log) is put back after each test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "buf.h"
#include "container_log.h"
#include "fsutil.h"
#include "shim.h"

struct log_fixture {
	char dir[64];
	char path[128];
	int saved_stderr;
	struct shim shim;
};

static int setup(void **state)
{
	struct log_fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/berth-shim-log-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/log", f->dir);
	f->saved_stderr = dup(STDERR_FILENO);
	assert_true(f->saved_stderr >= 0);
	f->shim = (struct shim){ .epfd = -1, .output_fd = -1, .log = { .fd = -1 } };
	f->shim.cfg.id = "c0ffee";
	f->shim.cfg.log_path = f->path;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct log_fixture *f = *state;
	dup2(f->saved_stderr, STDERR_FILENO);
	close(f->saved_stderr);
	if (f->shim.log.fd >= 0)
		close(f->shim.log.fd);
	if (f->shim.output_fd >= 0)
		close(f->shim.output_fd);
	if (f->shim.epfd >= 0)
		close(f->shim.epfd);
	struct berth_err err;
	fs_remove_tree(f->dir, &err);
	free(f);
	return 0;
}

/* The whole file at path as a NUL-terminated string (caller frees), or
 * NULL when it does not exist. */
static char *slurp(const char *path)
{
	struct berth_buf b = BERTH_BUF_INIT;
	struct berth_err err;
	if (fs_read_file(path, &b, 1 << 20, &err) < 0) {
		buf_free(&b);
		return NULL;
	}
	if (b.len == 0) { /* fs_read_file may have reserved room, unterminated */
		buf_free(&b);
		return strdup("");
	}
	return b.data;
}

static void write_str(struct shim *shim, const char *s)
{
	container_log_write(shim, s, strlen(s));
}

static void test_shim_log_keeps_bytes_verbatim_without_a_cap(void **state)
{
	struct log_fixture *f = *state;
	f->shim.cfg.log_max_bytes = 0;
	struct berth_err err;
	assert_int_equal(container_log_open(&f->shim, &err), 0);
	const char bin[] = { 'a', '\0', '\r', 'b', '\n' };
	container_log_write(&f->shim, bin, sizeof(bin));
	write_str(&f->shim, "no newline at the end");
	assert_int_equal(f->shim.log.size, sizeof(bin) + strlen("no newline at the end"));
	struct berth_buf b = BERTH_BUF_INIT;
	assert_int_equal(fs_read_file(f->path, &b, 1 << 20, &err), 0);
	assert_int_equal(b.len, f->shim.log.size);
	assert_memory_equal(b.data, bin, sizeof(bin));
	assert_memory_equal(b.data + sizeof(bin), "no newline at the end", strlen("no newline at the end"));
	buf_free(&b);
	char *rotated = fs_path("%s.1", f->path);
	assert_int_equal(access(rotated, F_OK), -1); /* never rotated */
	free(rotated);
}

static void test_shim_log_open_appends_to_an_existing_log(void **state)
{
	struct log_fixture *f = *state;
	struct berth_err err;
	assert_int_equal(fs_write_atomic(f->path, "before restart\n", 15, 0640, &err), 0);
	assert_int_equal(container_log_open(&f->shim, &err), 0);
	assert_int_equal(f->shim.log.size, 15); /* counts what is already there */
	write_str(&f->shim, "after restart\n");
	char *text = slurp(f->path);
	assert_string_equal(text, "before restart\nafter restart\n");
	free(text);
}

static void test_shim_log_open_fails_with_the_path_in_the_message(void **state)
{
	struct log_fixture *f = *state;
	char missing[160];
	snprintf(missing, sizeof(missing), "%s/no-such-dir/log", f->dir);
	f->shim.cfg.log_path = missing;
	struct berth_err err;
	assert_int_equal(container_log_open(&f->shim, &err), -1);
	assert_non_null(strstr(err.msg, missing));
	assert_int_equal(f->shim.log.fd, -1);
}

static void test_shim_log_rotates_at_the_last_newline_past_the_cap(void **state)
{
	struct log_fixture *f = *state;
	f->shim.cfg.log_max_bytes = 20;
	struct berth_err err;
	assert_int_equal(container_log_open(&f->shim, &err), 0);
	write_str(&f->shim, "0123456789\n");       /* 11 bytes: under the cap */
	write_str(&f->shim, "abcdef\nghij\nkl");  /* crosses it: LOG ends at "ghij\n" */
	char *rotated_path = fs_path("%s.1", f->path);
	char *old = slurp(rotated_path);
	char *cur = slurp(f->path);
	assert_string_equal(old, "0123456789\nabcdef\nghij\n");
	assert_string_equal(cur, "kl");
	assert_int_equal(f->shim.log.size, 2);
	free(old);
	free(cur);

	/* the next crossing replaces LOG.1: at most about 2 × the cap on disk */
	write_str(&f->shim, "mnopqrstuvwxyz0123456789\n");
	old = slurp(rotated_path);
	cur = slurp(f->path);
	assert_string_equal(old, "klmnopqrstuvwxyz0123456789\n");
	assert_string_equal(cur, "");
	assert_int_equal(f->shim.log.size, 0);
	free(old);
	free(cur);
	free(rotated_path);
}

static void test_shim_log_chunk_without_newline_goes_whole_into_the_old_file(void **state)
{
	struct log_fixture *f = *state;
	f->shim.cfg.log_max_bytes = 8;
	struct berth_err err;
	assert_int_equal(container_log_open(&f->shim, &err), 0);
	write_str(&f->shim, "one long line without an end");
	char *rotated_path = fs_path("%s.1", f->path);
	char *old = slurp(rotated_path);
	char *cur = slurp(f->path);
	assert_string_equal(old, "one long line without an end");
	assert_string_equal(cur, "");
	free(old);
	free(cur);
	free(rotated_path);
}

static void test_shim_log_drain_reads_the_pipe_until_eof(void **state)
{
	struct log_fixture *f = *state;
	struct berth_err err;
	assert_int_equal(container_log_open(&f->shim, &err), 0);
	f->shim.epfd = epoll_create1(EPOLL_CLOEXEC);
	assert_true(f->shim.epfd >= 0);
	int p[2];
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	f->shim.output_fd = p[0];
	struct epoll_event ev = { .events = EPOLLIN };
	assert_int_equal(epoll_ctl(f->shim.epfd, EPOLL_CTL_ADD, p[0], &ev), 0);

	assert_int_equal(container_log_drain(&f->shim), 0); /* open, nothing yet */
	assert_int_equal(write(p[1], "hello\n", 6), 6);
	assert_int_equal(container_log_drain(&f->shim), 0);
	assert_int_equal(write(p[1], "world\n", 6), 6);
	close(p[1]);
	assert_int_equal(container_log_drain(&f->shim), 1); /* the rest, then EOF */
	assert_int_equal(f->shim.output_fd, -1);
	assert_int_equal(container_log_drain(&f->shim), 1); /* stays at EOF */
	char *text = slurp(f->path);
	assert_string_equal(text, "hello\nworld\n");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_shim_log_keeps_bytes_verbatim_without_a_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shim_log_open_appends_to_an_existing_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shim_log_open_fails_with_the_path_in_the_message, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shim_log_rotates_at_the_last_newline_past_the_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shim_log_chunk_without_newline_goes_whole_into_the_old_file, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_shim_log_drain_reads_the_pipe_until_eof, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
