/* Unit tests for the model data cache's bookkeeping (artifact_cache.h):
 * holds, listing order, pruning by bound, the lock, leftovers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifact_cache.h"
#include "fsutil.h"

#define KEY_A "aaaaaaaaaaaaaaaa"
#define KEY_B "bbbbbbbbbbbbbbbb"
#define KEY_C "cccccccccccccccc"

static int setup(void **state)
{
	char tmpl[] = "/tmp/berth-unit-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	*state = strdup(tmpl);
	return 0;
}

static int teardown(void **state)
{
	struct berth_err err;
	fs_remove_tree(*state, &err);
	free(*state);
	return 0;
}

/* STATE/artifacts/KEY with one file of size bytes, used at epoch t. */
static void make_entry(const char *st, const char *key, const char *url, size_t size, time_t t)
{
	struct berth_err err;
	char *dir = fs_path("%s/artifacts/%s", st, key);
	char *file = fs_path("%s/weights", dir);
	assert_int_equal(fs_mkdir_p(dir, 0700, &err), 0);
	char *data = calloc(1, size + 1);
	memset(data, 'w', size);
	assert_int_equal(fs_write_atomic(file, data, size, 0600, &err), 0);
	artifact_cache_used(st, key, url, true);
	struct timespec ts[2] = { { .tv_sec = t }, { .tv_sec = t } };
	assert_int_equal(utimensat(AT_FDCWD, dir, ts, 0), 0);
	free(data);
	free(file);
	free(dir);
}

static bool exists(const char *st, const char *key)
{
	char *p = fs_path("%s/artifacts/%s", st, key);
	bool r = access(p, F_OK) == 0;
	free(p);
	return r;
}

static void test_list_oldest_first_with_holders(void **state)
{
	const char *st = *state;
	struct berth_err err;
	make_entry(st, KEY_B, "s3://b/m.tar.gz", 5000, 2000);
	make_entry(st, KEY_A, "s3://a/m.tar.gz", 100, 1000);
	make_entry(st, KEY_C, NULL, 100, 3000);
	assert_int_equal(artifact_cache_hold(st, "c1", (const char *const[]){ KEY_B, "" }, 2, &err), 0);
	assert_int_equal(artifact_cache_hold(st, "c2", (const char *const[]){ KEY_B, KEY_C }, 2, &err), 0);
	struct artifact_entry *v;
	size_t n;
	assert_int_equal(artifact_cache_list(st, &v, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].key, KEY_A);
	assert_string_equal(v[0].url, "s3://a/m.tar.gz");
	assert_int_equal(v[0].last_used, 1000);
	assert_int_equal(v[0].n_holders, 0);
	assert_string_equal(v[1].key, KEY_B);
	assert_true(v[1].bytes >= 5000);
	assert_int_equal(v[1].n_holders, 2);
	assert_string_equal(v[2].key, KEY_C);
	assert_null(v[2].url);
	assert_int_equal(v[2].n_holders, 1);
	assert_string_equal(v[2].holders[0], "c2");
	artifact_entries_free(v, n);
	/* a hold of nothing removes the file */
	assert_int_equal(artifact_cache_hold(st, "c2", NULL, 0, &err), 0);
	char *holds = fs_path("%s/containers/c2/artifacts", st);
	assert_int_equal(access(holds, F_OK), -1);
	free(holds);
}

static void test_prune_all_unheld_and_by_bound(void **state)
{
	const char *st = *state;
	struct berth_err err;
	make_entry(st, KEY_A, "s3://a", 8192, 1000);
	make_entry(st, KEY_B, "s3://b", 8192, 2000);
	make_entry(st, KEY_C, "s3://c", 8192, 3000);
	assert_int_equal(artifact_cache_hold(st, "held", (const char *const[]){ KEY_A }, 1, &err), 0);
	size_t removed;
	uint64_t freed;
	/* a bound the cache is under: nothing goes */
	assert_int_equal(artifact_cache_prune(st, 1ULL << 40, &removed, &freed, &err), 0);
	assert_int_equal(removed, 0);
	/* a bound two entries fit: the oldest not held (B) goes, A is held */
	struct artifact_entry *v;
	size_t n;
	assert_int_equal(artifact_cache_list(st, &v, &n, &err), 0);
	uint64_t two = v[0].bytes + v[2].bytes;
	artifact_entries_free(v, n);
	assert_int_equal(artifact_cache_prune(st, two, &removed, &freed, &err), 0);
	assert_int_equal(removed, 1);
	assert_true(exists(st, KEY_A) && !exists(st, KEY_B) && exists(st, KEY_C));
	char *meta = fs_path("%s/artifacts/.meta/%s", st, KEY_B);
	assert_int_equal(access(meta, F_OK), -1);
	free(meta);
	/* 0: every entry none holds */
	assert_int_equal(artifact_cache_prune(st, 0, &removed, &freed, &err), 0);
	assert_int_equal(removed, 1);
	assert_true(freed >= 8192);
	assert_true(exists(st, KEY_A) && !exists(st, KEY_C));
}

static void test_prune_refuses_while_a_start_holds_the_lock(void **state)
{
	const char *st = *state;
	struct berth_err err;
	make_entry(st, KEY_A, "s3://a", 10, 1000);
	int shared = artifact_cache_lock(st, false, &err);
	assert_true(shared >= 0);
	size_t removed = 99;
	uint64_t freed = 99;
	assert_int_equal(artifact_cache_prune(st, 0, &removed, &freed, &err), -1);
	assert_int_equal(err.errnum, EWOULDBLOCK);
	assert_int_equal(removed, 0);
	assert_true(exists(st, KEY_A));
	close(shared);
	assert_int_equal(artifact_cache_prune(st, 0, &removed, &freed, &err), 0);
	assert_int_equal(removed, 1);
}

static void test_prune_sweeps_leftovers_and_last_records(void **state)
{
	const char *st = *state;
	struct berth_err err;
	make_entry(st, KEY_A, "s3://a", 10, 1000);
	char *partial = fs_path("%s/artifacts/%s.partial.12.34", st, KEY_B);
	char *gone = fs_path("%s/artifacts/.gone-%s", st, KEY_C);
	char *last_dir = fs_path("%s/artifacts/.last", st);
	char *last_a = fs_path("%s/artifacts/.last/0123456789abcdef", st);
	char *last_other = fs_path("%s/artifacts/.last/fedcba9876543210", st);
	assert_int_equal(fs_mkdir_p(partial, 0700, &err), 0);
	assert_int_equal(fs_mkdir_p(gone, 0700, &err), 0);
	assert_int_equal(fs_mkdir_p(last_dir, 0700, &err), 0);
	assert_int_equal(fs_write_atomic(last_a, KEY_A, 16, 0600, &err), 0);
	assert_int_equal(fs_write_atomic(last_other, KEY_B, 16, 0600, &err), 0);
	size_t removed;
	uint64_t freed;
	assert_int_equal(artifact_cache_prune(st, 0, &removed, &freed, &err), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(access(partial, F_OK), -1);
	assert_int_equal(access(gone, F_OK), -1);
	assert_int_equal(access(last_a, F_OK), -1);   /* named the removed entry */
	assert_int_equal(access(last_other, F_OK), 0); /* not ours to judge */
	free(partial);
	free(gone);
	free(last_dir);
	free(last_a);
	free(last_other);
}

static void test_entry_without_record_is_measured(void **state)
{
	const char *st = *state;
	struct berth_err err;
	char *dir = fs_path("%s/artifacts/%s", st, KEY_A);
	char *file = fs_path("%s/f", dir);
	assert_int_equal(fs_mkdir_p(dir, 0700, &err), 0);
	assert_int_equal(fs_write_atomic(file, "0123456789", 10, 0600, &err), 0);
	struct artifact_entry *v;
	size_t n;
	assert_int_equal(artifact_cache_list(st, &v, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_null(v[0].url);
	assert_int_equal(v[0].bytes, fs_tree_bytes(dir));
	artifact_entries_free(v, n);
	/* not an entry: other names are left alone */
	char *odd = fs_path("%s/artifacts/not-a-key", st);
	assert_int_equal(fs_mkdir_p(odd, 0700, &err), 0);
	size_t removed;
	uint64_t freed;
	assert_int_equal(artifact_cache_prune(st, 0, &removed, &freed, &err), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(access(odd, F_OK), 0);
	free(odd);
	free(file);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_list_oldest_first_with_holders, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune_all_unheld_and_by_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune_refuses_while_a_start_holds_the_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune_sweeps_leftovers_and_last_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entry_without_record_is_measured, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
