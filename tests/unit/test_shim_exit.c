/* test_shim_exit.c — how the shim records the end of its container
 * (shim/exit.c): the exit file's exact content for an exit and for a
 * signal, statuses reaped before the container's pid was known, children
 * that are not the container, and the OOM check of a bundle's cgroup. Real
 * child processes are reaped; the exit file is written to a temporary
 * directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "exit.h"
#include "fsutil.h"
#include "json.h"
#include "shim.h"

struct exit_fixture {
	char dir[64];
	char exit_file[128];
	struct shim shim;
};

static int setup(void **state)
{
	struct exit_fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/berth-shim-exit-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->exit_file, sizeof(f->exit_file), "%s/exit.json", f->dir);
	f->shim = (struct shim){ .epfd = -1, .output_fd = -1, .log = { .fd = -1 } };
	f->shim.cfg.id = "c0ffee";
	f->shim.cfg.exit_file = f->exit_file;
	f->shim.cfg.bundle = f->dir;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct exit_fixture *f = *state;
	struct berth_err err;
	fs_remove_tree(f->dir, &err);
	free(f);
	return 0;
}

/* A child that exits with code (code >= 0) or is killed by -code. */
static pid_t child_ending(int code)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (code < 0)
			raise(-code);
		_exit(code < 0 ? 99 : code);
	}
	return pid;
}

/* Reaps until the container is seen exited (bounded: 5 s). */
static void reap_until_exited(struct shim *shim)
{
	for (int i = 0; i < 500 && !shim->exited; i++) {
		shim_exit_reap(shim);
		if (!shim->exited)
			usleep(10000);
	}
	assert_true(shim->exited);
}

static char *exit_file_text(struct exit_fixture *f)
{
	struct berth_buf b = BERTH_BUF_INIT;
	struct berth_err err;
	assert_int_equal(fs_read_file(f->exit_file, &b, 4096, &err), 0);
	assert_non_null(b.data);
	return b.data;
}

static void test_shim_exit_file_for_a_process_that_exited(void **state)
{
	struct exit_fixture *f = *state;
	f->shim.container_pid = child_ending(3);
	time_t before = time(NULL);
	reap_until_exited(&f->shim);
	assert_true(WIFEXITED(f->shim.exit_status));
	assert_true(f->shim.finished_at >= before && f->shim.finished_at <= time(NULL));
	f->shim.finished_at = 1700000000; /* the exact text, with a known time */
	struct berth_err err;
	assert_int_equal(shim_exit_write_file(&f->shim, &err), 0);
	char *text = exit_file_text(f);
	assert_string_equal(text, "{\"exit_code\":3,\"signal\":null,\"oom_killed\":false,\"finished_at\":1700000000}\n");
	free(text);
}

static void test_shim_exit_file_for_a_process_killed_by_a_signal(void **state)
{
	struct exit_fixture *f = *state;
	f->shim.container_pid = child_ending(-SIGKILL);
	reap_until_exited(&f->shim);
	f->shim.finished_at = 1700000001;
	f->shim.oom_killed = true;
	struct berth_err err;
	assert_int_equal(shim_exit_write_file(&f->shim, &err), 0);
	char *text = exit_file_text(f);
	assert_string_equal(text, "{\"exit_code\":null,\"signal\":9,\"oom_killed\":true,\"finished_at\":1700000001}\n");
	free(text);
}

static void test_shim_exit_status_is_null_while_running(void **state)
{
	struct exit_fixture *f = *state;
	f->shim.container_pid = 12345;
	yajl_gen g = json_gen_new();
	assert_non_null(g);
	struct berth_buf out = BERTH_BUF_INIT;
	assert_int_equal(yajl_gen_map_open(g), yajl_gen_status_ok);
	assert_int_equal(shim_exit_gen_status(&f->shim, g), 0);
	assert_int_equal(yajl_gen_map_close(g), yajl_gen_status_ok);
	assert_int_equal(json_gen_finish(g, &out), 0);
	assert_string_equal(out.data, "{\"exit_code\":null,\"signal\":null}");
	buf_free(&out);
}

static void test_shim_exit_file_write_fails_with_its_path(void **state)
{
	struct exit_fixture *f = *state;
	char missing[160];
	snprintf(missing, sizeof(missing), "%s/gone/exit.json", f->dir);
	f->shim.cfg.exit_file = missing;
	f->shim.exited = true;
	struct berth_err err;
	assert_int_equal(shim_exit_write_file(&f->shim, &err), -1);
	assert_non_null(strstr(err.msg, "gone"));
}

static void test_shim_exit_early_reaped_container_is_found_once_its_pid_is_known(void **state)
{
	struct exit_fixture *f = *state;
	/* `runc run -d` has not told the shim the pid yet: children reaped now
	 * are remembered (runc's helper, then the container itself) */
	pid_t helper = child_ending(0);
	pid_t container = child_ending(7);
	int status;
	assert_int_equal(waitpid(helper, &status, 0), helper);
	shim_exit_remember(&f->shim, helper, status);
	assert_int_equal(waitpid(container, &status, 0), container);
	shim_exit_remember(&f->shim, container, status);
	assert_false(f->shim.exited);
	assert_int_equal(f->shim.n_early, 2);

	f->shim.container_pid = container;
	shim_exit_check_early(&f->shim);
	assert_true(f->shim.exited);
	assert_int_equal(WEXITSTATUS(f->shim.exit_status), 7);
	assert_int_equal(f->shim.n_early, 0);
}

static void test_shim_exit_early_list_keeps_the_newest(void **state)
{
	struct exit_fixture *f = *state;
	for (int i = 0; i < SHIM_EARLY_REAPED_MAX + 3; i++)
		shim_exit_remember(&f->shim, 1000 + i, i << 8);
	assert_int_equal(f->shim.n_early, SHIM_EARLY_REAPED_MAX);
	assert_int_equal(f->shim.early[0].pid, 1003);
	assert_int_equal(f->shim.early[SHIM_EARLY_REAPED_MAX - 1].pid, 1000 + SHIM_EARLY_REAPED_MAX + 2);
	/* the container's status came before the list overflowed: it is gone,
	 * and the container stays "running" rather than taking a stranger's */
	f->shim.container_pid = 1000;
	shim_exit_check_early(&f->shim);
	assert_false(f->shim.exited);
}

static void test_shim_exit_other_children_do_not_end_the_container(void **state)
{
	struct exit_fixture *f = *state;
	pid_t container = child_ending(-SIGTERM);
	f->shim.container_pid = container;
	shim_exit_remember(&f->shim, container + 100000, 0); /* an orphan reaped */
	assert_false(f->shim.exited);
	reap_until_exited(&f->shim);
	assert_true(WIFSIGNALED(f->shim.exit_status));
	assert_int_equal(WTERMSIG(f->shim.exit_status), SIGTERM);
	/* a later status for the same pid does not overwrite the first */
	shim_exit_remember(&f->shim, container, 0);
	assert_true(WIFSIGNALED(f->shim.exit_status));
}

static void test_shim_exit_oom_check_without_a_cgroup_path_finds_nothing(void **state)
{
	struct exit_fixture *f = *state;
	struct berth_err err;
	/* no config.json at all, then one whose cgroupsPath tries to climb out */
	shim_exit_check_oom(&f->shim);
	assert_false(f->shim.oom_killed);
	char *config = fs_path("%s/config.json", f->dir);
	const char doc[] = "{\"linux\":{\"cgroupsPath\":\"/../../etc\"}}";
	assert_int_equal(fs_write_atomic(config, doc, strlen(doc), 0644, &err), 0);
	shim_exit_check_oom(&f->shim);
	assert_false(f->shim.oom_killed);
	free(config);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_shim_exit_file_for_a_process_that_exited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shim_exit_file_for_a_process_killed_by_a_signal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shim_exit_status_is_null_while_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shim_exit_file_write_fails_with_its_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shim_exit_early_reaped_container_is_found_once_its_pid_is_known,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_shim_exit_early_list_keeps_the_newest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shim_exit_other_children_do_not_end_the_container, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_shim_exit_oom_check_without_a_cgroup_path_finds_nothing, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
