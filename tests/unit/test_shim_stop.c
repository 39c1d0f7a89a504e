/* test_shim_stop.c — stopping the container (shim/stop.c): SIGTERM first
 * and a SIGKILL deadline on the timerfd; a second request only brings the
 * deadline closer; timeout 0 kills at once; the timer firing early or after
 * the exit does nothing. The "container" is a real child process that
 * ignores or obeys SIGTERM; its end is read with waitpid. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "shim.h"
#include "stop.h"

struct stop_fixture {
	struct shim shim;
	pid_t child;
};

/* A child that ignores SIGTERM (ignore_term) or dies of it, and otherwise
 * waits to be killed. It reports "ready" on a pipe once its disposition is set. */
static pid_t child_waiting(bool ignore_term)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		if (ignore_term)
			signal(SIGTERM, SIG_IGN);
		(void)!write(p[1], "r", 1);
		for (int i = 0; i < 600; i++) /* 60 s at most, should the test fail */
			usleep(100000);
		_exit(0);
	}
	close(p[1]);
	char c;
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	return pid;
}

/* A child that is the init of a new pid namespace: catch_term 1, with a
 * SIGTERM handler; 2, SIGTERM blocked and read from a signalfd (as the
 * example echo container does); 0, neither. "ready" as above. */
static void on_term(int sig)
{
	(void)sig;
	_exit(7);
}

static pid_t child_init(int catch_term)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, 0);
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		int sfd = -1;
		if (catch_term == 1)
			signal(SIGTERM, on_term);
		if (catch_term == 2) {
			sigset_t set;
			sigemptyset(&set);
			sigaddset(&set, SIGTERM);
			sigprocmask(SIG_BLOCK, &set, NULL);
			sfd = signalfd(-1, &set, SFD_NONBLOCK);
		}
		(void)!write(p[1], getpid() == 1 ? "1" : "x", 1);
		for (int i = 0; i < 600; i++) {
			struct signalfd_siginfo si;
			if (sfd >= 0 && read(sfd, &si, sizeof(si)) == sizeof(si))
				_exit(8);
			usleep(10000);
		}
		_exit(0);
	}
	close(p[1]);
	char c;
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	assert_int_equal(c, '1');
	return pid;
}

static int setup(void **state)
{
	struct stop_fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->shim = (struct shim){ .epfd = -1, .output_fd = -1, .log = { .fd = -1 } };
	f->shim.cfg.id = "c0ffee";
	f->shim.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	assert_true(f->shim.timer_fd >= 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct stop_fixture *f = *state;
	if (f->child > 0) {
		kill(f->child, SIGKILL);
		waitpid(f->child, NULL, 0);
	}
	close(f->shim.timer_fd);
	free(f);
	return 0;
}

/* The child's wait status once it has ended (bounded: 5 s), or -1. */
static int wait_end(struct stop_fixture *f)
{
	for (int i = 0; i < 500; i++) {
		int status;
		pid_t r = waitpid(f->child, &status, WNOHANG);
		if (r == f->child) {
			f->child = 0;
			return status;
		}
		usleep(10000);
	}
	return -1;
}

/* Milliseconds until the timerfd fires (0: disarmed). */
static long long timer_left_ms(struct shim *shim)
{
	struct itimerspec its;
	assert_int_equal(timerfd_gettime(shim->timer_fd, &its), 0);
	return (long long)its.it_value.tv_sec * 1000 + its.it_value.tv_nsec / 1000000;
}

static void test_shim_stop_sends_sigterm_and_arms_the_kill_timer(void **state)
{
	struct stop_fixture *f = *state;
	f->child = child_waiting(false);
	f->shim.container_pid = f->child;
	long long before = clock_now_ms();
	shim_stop_request(&f->shim, 10000);
	assert_true(f->shim.stopping);
	assert_false(f->shim.killed);
	assert_true(f->shim.kill_deadline_ms >= before + 10000 && f->shim.kill_deadline_ms <= clock_now_ms() + 10000);
	long long left = timer_left_ms(&f->shim);
	assert_true(left > 9000 && left <= 10000);
	int status = wait_end(f);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGTERM);
}

static void test_shim_stop_second_request_only_brings_the_deadline_closer(void **state)
{
	struct stop_fixture *f = *state;
	f->child = child_waiting(true);
	f->shim.container_pid = f->child;
	shim_stop_request(&f->shim, 20000);
	long long first = f->shim.kill_deadline_ms;
	shim_stop_request(&f->shim, 60000); /* later: ignored */
	assert_int_equal(f->shim.kill_deadline_ms, first);
	assert_true(timer_left_ms(&f->shim) > 19000);
	shim_stop_request(&f->shim, 5000); /* closer: taken, timer re-armed */
	assert_true(f->shim.kill_deadline_ms < first);
	long long left = timer_left_ms(&f->shim);
	assert_true(left > 4000 && left <= 5000);
	assert_false(f->shim.killed);
	/* SIGTERM is ignored by this child: it still runs */
	assert_int_equal(waitpid(f->child, NULL, WNOHANG), 0);
}

static void test_shim_stop_timer_before_the_deadline_does_not_kill(void **state)
{
	struct stop_fixture *f = *state;
	f->child = child_waiting(true);
	f->shim.container_pid = f->child;
	shim_stop_request(&f->shim, 30000);
	shim_stop_on_timer(&f->shim); /* nothing to read: a spurious wake-up */
	assert_false(f->shim.killed);
	assert_int_equal(waitpid(f->child, NULL, WNOHANG), 0);
}

static void test_shim_stop_timer_past_the_deadline_sends_sigkill(void **state)
{
	struct stop_fixture *f = *state;
	f->child = child_waiting(true);
	f->shim.container_pid = f->child;
	shim_stop_request(&f->shim, 50);
	usleep(120000);
	assert_int_equal(timer_left_ms(&f->shim), 0); /* fired */
	shim_stop_on_timer(&f->shim);
	assert_true(f->shim.killed);
	int status = wait_end(f);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
}

static void test_shim_stop_timeout_zero_kills_at_once(void **state)
{
	struct stop_fixture *f = *state;
	f->child = child_waiting(true);
	f->shim.container_pid = f->child;
	shim_stop_request(&f->shim, 0);
	assert_true(f->shim.stopping && f->shim.killed);
	int status = wait_end(f);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	/* a negative timeout is taken as 0 as well; nothing left to kill now */
	shim_stop_request(&f->shim, -5);
	assert_true(f->shim.killed);
}

static void test_shim_stop_after_exit_or_before_start_does_nothing(void **state)
{
	struct stop_fixture *f = *state;
	shim_stop_request(&f->shim, 1000); /* container_pid 0: not started */
	assert_false(f->shim.stopping);
	f->child = child_waiting(true);
	f->shim.container_pid = f->child;
	f->shim.exited = true;
	shim_stop_request(&f->shim, 0);
	assert_false(f->shim.stopping || f->shim.killed);
	assert_int_equal(waitpid(f->child, NULL, WNOHANG), 0);
	assert_int_equal(timer_left_ms(&f->shim), 0);
}

static void test_shim_stop_huge_timeout_is_capped_at_a_day(void **state)
{
	struct stop_fixture *f = *state;
	f->child = child_waiting(true);
	f->shim.container_pid = f->child;
	long long before = clock_now_ms();
	shim_stop_request(&f->shim, STOP_TIMEOUT_MS_MAX * 10);
	assert_true(f->shim.kill_deadline_ms <= clock_now_ms() + STOP_TIMEOUT_MS_MAX);
	assert_true(f->shim.kill_deadline_ms >= before + STOP_TIMEOUT_MS_MAX);
}

/* A namespace's init without a SIGTERM handler never sees SIGTERM: the
 * stop kills it at once instead of waiting out the timeout for nothing. */
static void test_shim_stop_init_without_handler_is_killed_at_once(void **state)
{
	struct stop_fixture *f = *state;
	f->child = child_init(0);
	f->shim.container_pid = f->child;
	assert_true(stop_term_is_dropped(f->child));
	shim_stop_request(&f->shim, 30000);
	assert_true(f->shim.stopping);
	assert_true(f->shim.killed);
	int status = wait_end(f);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
}

/* An init that sees SIGTERM (mode as child_init) gets it and its time,
 * as any process; it exits with code. */
static void expect_graceful(struct stop_fixture *f, int mode, int code)
{
	f->child = child_init(mode);
	f->shim.container_pid = f->child;
	assert_false(stop_term_is_dropped(f->child));
	shim_stop_request(&f->shim, 30000);
	assert_false(f->shim.killed);
	int status = wait_end(f);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), code);
}

/* One with a handler. */
static void test_shim_stop_init_with_handler_gets_sigterm(void **state)
{
	expect_graceful(*state, 1, 7);
	assert_false(stop_term_is_dropped(getpid())); /* not an init */
}

/* One that blocks SIGTERM and reads it from a signalfd. */
static void test_shim_stop_init_reading_a_signalfd_gets_sigterm(void **state)
{
	expect_graceful(*state, 2, 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_shim_stop_sends_sigterm_and_arms_the_kill_timer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shim_stop_init_without_handler_is_killed_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shim_stop_init_with_handler_gets_sigterm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shim_stop_init_reading_a_signalfd_gets_sigterm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shim_stop_second_request_only_brings_the_deadline_closer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_shim_stop_timer_before_the_deadline_does_not_kill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shim_stop_timer_past_the_deadline_sends_sigkill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shim_stop_timeout_zero_kills_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shim_stop_after_exit_or_before_start_does_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shim_stop_huge_timeout_is_capped_at_a_day, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
