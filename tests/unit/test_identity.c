/* Unit tests for the instance identity (state/identity.c) and the uid
 * windows it chooses between (limits/uid_range.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "identity.h"
#include "uid_range.h"

static void test_the_default_state_directory_keeps_todays_names(void **state)
{
	(void)state;
	char id[BERTH_IDENTITY_MAX];
	berth_identity_of("/var/lib/berth", "/var/lib/berth", id);
	assert_string_equal(id, "berth");
	assert_int_equal(berth_identity_number(id), 0);
	/* the default's realpath counts, not its name (/var/lib a symlink) */
	berth_identity_of("/data/lib/berth", "/data/lib/berth", id);
	assert_string_equal(id, "berth");
}

static void test_any_other_gets_the_hash_of_its_realpath(void **state)
{
	(void)state;
	char id[BERTH_IDENTITY_MAX];
	/* printf %s /srv/berth-b | sha256sum: 674c97c5… */
	berth_identity_of("/srv/berth-b", "/var/lib/berth", id);
	assert_string_equal(id, "berth-674c97c5");
	assert_int_equal(berth_identity_number(id), 0x674c97c5u);
	/* the default's own path under another default is just another path */
	berth_identity_of("/var/lib/berth", "/data/lib/berth", id);
	assert_string_equal(id, "berth-5a2cdf17");
	char other[BERTH_IDENTITY_MAX];
	berth_identity_of("/srv/berth-c", "/var/lib/berth", other);
	assert_string_not_equal(other, "berth-674c97c5");
	assert_int_equal(strlen(other), strlen("berth-") + 8);
	assert_int_equal(berth_identity_number("berth-zz"), 0);
}

static void test_the_default_identity_has_only_its_base_window(void **state)
{
	(void)state;
	assert_int_equal(uid_range_window_candidate(100000000, 0, 0), 100000000);
	assert_int_equal(uid_range_window_candidate(100000000, 0, 1), -1);
	assert_int_equal(uid_range_window_count(100000000), (USERNS_ID_LIMIT - 100000000) / USERNS_WINDOW_IDS);
}

static void test_other_identities_try_every_other_window_once(void **state)
{
	(void)state;
	long long base = 100000000, n = uid_range_window_count(base);
	assert_true(n >= 2);
	char *seen = calloc((size_t)n, 1);
	assert_non_null(seen);
	long long k = 0;
	for (long long w; (w = uid_range_window_candidate(base, 0x674c97c5u, k)) >= 0; k++) {
		assert_true(w > base); /* never the default's window */
		assert_int_equal((w - base) % USERNS_WINDOW_IDS, 0);
		assert_true(w + USERNS_WINDOW_IDS <= USERNS_ID_LIMIT);
		long long slot = (w - base) / USERNS_WINDOW_IDS;
		assert_int_equal(seen[slot], 0);
		seen[slot] = 1;
	}
	assert_int_equal(k, n - 1);
	free(seen);
	/* a base with room for one window leaves none to other identities */
	long long top = USERNS_ID_LIMIT - USERNS_WINDOW_IDS;
	assert_int_equal(uid_range_window_candidate(top, 0, 0), top);
	assert_int_equal(uid_range_window_candidate(top, 7, 0), -1);
}

static void test_picks_stay_inside_the_window(void **state)
{
	(void)state;
	struct uid_range_policy p = { .base = 100000000, .limit = 100000000 + 2 * USERNS_RANGE_SIZE };
	struct berth_err err;
	long long used[] = { 100000000, 100000000 + USERNS_RANGE_SIZE }, s = 0;
	assert_int_equal(uid_range_pick(&p, used, 1, &s, &err), 0);
	assert_int_equal(s, 100000000 + USERNS_RANGE_SIZE);
	assert_int_equal(uid_range_pick(&p, used, 2, &s, &err), -1);
	assert_non_null(strstr(err.msg, "from uid 100000000 to 100131071 is taken"));
}

/* Two processes: the child holds a window; an overlapping one is refused
 * with its pid, a disjoint one is granted, and the window is free again
 * once the child is gone. */
static void test_overlapping_windows_are_refused_host_wide(void **state)
{
	(void)state;
	char path[] = "/tmp/berth-unit-userns-XXXXXX";
	int tmp = mkstemp(path);
	assert_true(tmp >= 0);
	close(tmp);
	int ready[2];
	assert_int_equal(pipe(ready), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		int fd = -1;
		struct berth_err cerr;
		char ok = uid_range_window_claim(path, 100000000, &fd, &cerr) == 0 ? 'y' : 'n';
		if (write(ready[1], &ok, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char ok = 0;
	assert_int_equal(read(ready[0], &ok, 1), 1);
	assert_int_equal(ok, 'y');
	int fd = -1;
	struct berth_err err;
	assert_int_equal(uid_range_window_claim(path, 100000000 + USERNS_WINDOW_IDS / 2, &fd, &err), 1);
	char pid_text[32];
	snprintf(pid_text, sizeof(pid_text), "pid %d", (int)child);
	assert_non_null(strstr(err.msg, pid_text));
	assert_int_equal(uid_range_window_claim(path, 100000000 + USERNS_WINDOW_IDS, &fd, &err), 0);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	assert_int_equal(uid_range_window_claim(path, 100000000, &fd, &err), 0);
	close(fd);
	close(ready[0]);
	close(ready[1]);
	unlink(path);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* A fake /proc: process 41 maps 65536 ids at 200000000, 42 the identity
 * map, "self" and non-numbers are not processes. */
static void test_windows_mapped_by_live_namespaces_are_seen(void **state)
{
	(void)state;
	char proc[] = "/tmp/berth-unit-proc-XXXXXX";
	assert_non_null(mkdtemp(proc));
	char path[256];
	const char *dirs[] = { "41", "42", "self" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", proc, dirs[i]);
		assert_int_equal(mkdir(path, 0700), 0);
	}
	snprintf(path, sizeof(path), "%s/41/uid_map", proc);
	write_text(path, "         0  200000000      65536\n");
	snprintf(path, sizeof(path), "%s/42/uid_map", proc);
	write_text(path, "         0          0 4294967295\n");
	snprintf(path, sizeof(path), "%s/self/uid_map", proc);
	write_text(path, "         0  300000000      65536\n");
	long long w = 200000000 - USERNS_WINDOW_IDS / 2;
	/* 42 maps everything to itself (the host's namespace): not a range */
	assert_int_equal(uid_range_window_mapped(proc, w), 41);
	assert_int_equal(uid_range_window_mapped(proc, 1000), 0);
	snprintf(path, sizeof(path), "%s/42/uid_map", proc);
	write_text(path, "         0 2000000000      65536\n");
	assert_int_equal(uid_range_window_mapped(proc, 2000000000 - 65536), 42);
	assert_int_equal(uid_range_window_mapped(proc, 200000000 + 65536), 0);   /* just after it */
	assert_int_equal(uid_range_window_mapped(proc, 300000000 - 1000), 0);    /* "self" is no pid */
	assert_int_equal(uid_range_window_mapped("/nonexistent-proc", w), 0);
	const char *files[] = { "41/uid_map", "42/uid_map", "self/uid_map", "41", "42", "self" };
	for (size_t i = 0; i < 6; i++) {
		snprintf(path, sizeof(path), "%s/%s", proc, files[i]);
		assert_int_equal(remove(path), 0);
	}
	assert_int_equal(rmdir(proc), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_default_state_directory_keeps_todays_names),
		cmocka_unit_test(test_any_other_gets_the_hash_of_its_realpath),
		cmocka_unit_test(test_the_default_identity_has_only_its_base_window),
		cmocka_unit_test(test_other_identities_try_every_other_window_once),
		cmocka_unit_test(test_picks_stay_inside_the_window),
		cmocka_unit_test(test_overlapping_windows_are_refused_host_wide),
		cmocka_unit_test(test_windows_mapped_by_live_namespaces_are_seen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
