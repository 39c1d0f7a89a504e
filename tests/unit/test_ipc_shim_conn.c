/* test_ipc_shim_conn.c — asking a shim for a connected socket
 * (common/shim_conn.c): the request's encoding, every kind of answer, and
 * the blocking call against a stand-in shim in a child process (a real
 * unix socket and SCM_RIGHTS), including one that never answers. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "clock.h"
#include "err.h"
#include "ipc.h"
#include "shim_conn.h"

static bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static void test_request(void **state)
{
	(void)state;
	char out[SHIM_CONN_REQUEST_MAX];
	struct berth_err err;
	int n = shim_conn_request(8080, out, sizeof(out), &err);
	assert_string_equal(out, "{\"op\":\"connect\",\"port\":8080}\n");
	assert_int_equal(n, (int)strlen(out));
	assert_int_equal(shim_conn_request(65535, out, sizeof(out), &err), (int)strlen("{\"op\":\"connect\",\"port\":65535}\n"));
	assert_int_equal(shim_conn_request(0, out, sizeof(out), &err), -1);
	assert_string_equal(err.msg, "port 0 is not a TCP port (1-65535): Invalid argument");
	assert_int_equal(shim_conn_request(65536, out, sizeof(out), &err), -1);
	assert_int_equal(shim_conn_request(8080, out, 10, &err), -1);
}

static int some_fd(void)
{
	int fds[2];
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	close(fds[1]);
	return fds[0];
}

static void test_answers(void **state)
{
	(void)state;
	struct berth_err err;
	int conn = -2;
	/* ok with a socket */
	int fd = some_fd();
	const char *ok = "{\"ok\":true}";
	assert_int_equal(shim_conn_answer("s.sock", ok, strlen(ok), fd, &conn, &err), 0);
	assert_int_equal(conn, fd);
	close(conn);
	/* ok without one */
	assert_int_equal(shim_conn_answer("s.sock", ok, strlen(ok), -1, &conn, &err), -1);
	assert_int_equal(conn, -1);
	assert_string_equal(err.msg, "the shim at s.sock answered connect without a socket: Protocol error");
	/* the shim's refusal, passed through; a stray fd is closed */
	fd = some_fd();
	const char *no = "{\"ok\":false,\"error\":\"connect to 127.0.0.1:8080 in container c1: Connection refused\"}";
	assert_int_equal(shim_conn_answer("s.sock", no, strlen(no), fd, &conn, &err), -1);
	assert_string_equal(err.msg, "connect to 127.0.0.1:8080 in container c1: Connection refused");
	assert_false(fd_is_open(fd));
	/* refusal without a reason, not JSON, not an object */
	const char *bare = "{\"ok\":false}";
	assert_int_equal(shim_conn_answer("s.sock", bare, strlen(bare), -1, &conn, &err), -1);
	assert_string_equal(err.msg, "the shim at s.sock refused connect without saying why: Protocol error");
	static const char *junk[] = { "not json", "[true]", "{\"ok\":\"yes\"}", "" };
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(junk); i++) {
		fd = some_fd();
		assert_int_equal(shim_conn_answer("s.sock", junk[i], strlen(junk[i]), fd, &conn, &err), -1);
		assert_false(fd_is_open(fd));
		assert_int_equal(conn, -1);
	}
}

/* A stand-in shim: accepts one client, checks its request, then answers
 * as told ("pass": ok + a socket whose peer says "hello"; "refuse";
 * "silent": never answers). Exits 0 when the request was the protocol's. */
static pid_t fake_shim(const char *path, const char *mode)
{
	struct berth_err err;
	int l = ipc_listen(path, 0600, &err);
	assert_true(l >= 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid > 0) {
		close(l);
		return pid;
	}
	int c = accept(l, NULL, NULL);
	struct ipc_reader rd;
	ipc_reader_init(&rd, c);
	const char *line;
	size_t len;
	if (ipc_read(&rd, &line, &len, NULL, &err) != 1 || strcmp(line, "{\"op\":\"connect\",\"port\":8080}") != 0)
		_exit(2);
	if (strcmp(mode, "silent") == 0) {
		sleep(5);
		_exit(0);
	}
	if (strcmp(mode, "refuse") == 0) {
		const char *no = "{\"ok\":false,\"error\":\"connect to 127.0.0.1:8080 in container c1: container is not running\"}";
		_exit(ipc_send(c, no, strlen(no), -1, &err) == 0 ? 0 : 3);
	}
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0 || write(sp[1], "hello", 5) != 5)
		_exit(4);
	_exit(ipc_send(c, "{\"ok\":true}", 11, sp[0], &err) == 0 ? 0 : 5);
}

static int reap(pid_t pid)
{
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void sock_path(char *out, size_t size)
{
	snprintf(out, size, "/tmp/berth-test-shim-conn-%d.sock", (int)getpid());
}

static void test_open_passes_socket(void **state)
{
	(void)state;
	char path[108];
	sock_path(path, sizeof(path));
	pid_t pid = fake_shim(path, "pass");
	int conn = -1;
	struct berth_err err;
	assert_int_equal(shim_conn_open(path, 8080, 2000, &conn, &err), 0);
	char got[8] = { 0 };
	assert_int_equal(read(conn, got, 5), 5);
	assert_string_equal(got, "hello");
	assert_true(fcntl(conn, F_GETFD) & FD_CLOEXEC);
	close(conn);
	assert_int_equal(reap(pid), 0);
	unlink(path);
}

static void test_open_refused(void **state)
{
	(void)state;
	char path[108];
	sock_path(path, sizeof(path));
	pid_t pid = fake_shim(path, "refuse");
	int conn = 7;
	struct berth_err err;
	assert_int_equal(shim_conn_open(path, 8080, 2000, &conn, &err), -1);
	assert_int_equal(conn, -1);
	assert_string_equal(err.msg, "connect to 127.0.0.1:8080 in container c1: container is not running");
	assert_int_equal(reap(pid), 0);
	unlink(path);
}

static void test_open_deadline(void **state)
{
	(void)state;
	char path[108];
	sock_path(path, sizeof(path));
	pid_t pid = fake_shim(path, "silent");
	int conn = -1;
	struct berth_err err;
	long long t0 = clock_now_ms();
	assert_int_equal(shim_conn_open(path, 8080, 200, &conn, &err), -1);
	long long took = clock_now_ms() - t0;
	assert_true(took >= 200 && took < 2000);
	assert_int_equal(err.errnum, ETIMEDOUT);
	char want[256];
	snprintf(want, sizeof(want), "the shim at %s did not answer connect within 200 ms: Connection timed out", path);
	assert_string_equal(err.msg, want);
	kill(pid, SIGKILL);
	reap(pid);
	unlink(path);
}

static void test_open_no_shim(void **state)
{
	(void)state;
	int conn = -1;
	struct berth_err err;
	assert_int_equal(shim_conn_open("/tmp/berth-test-no-such-shim.sock", 8080, 200, &conn, &err), -1);
	assert_int_equal(err.errnum, ENOENT);
	assert_string_equal(err.msg, "cannot connect to /tmp/berth-test-no-such-shim.sock: No such file or directory");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_answers),
		cmocka_unit_test(test_open_passes_socket),
		cmocka_unit_test(test_open_refused),
		cmocka_unit_test(test_open_deadline),
		cmocka_unit_test(test_open_no_shim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
