/* Unit tests for safe archive extraction (model artifacts, rootfs tarballs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "fsutil.h"
#include "unpack.h"

struct entry {
	const char *name;
	const char *data;     /* file content, NULL for a symlink */
	const char *symlink;  /* link target */
};

static void write_tgz(const char *path, const struct entry *entries, size_t n)
{
	struct archive *a = archive_write_new();
	archive_write_add_filter_gzip(a);
	archive_write_set_format_pax_restricted(a);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, entries[i].name);
		if (entries[i].symlink) {
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_symlink(e, entries[i].symlink);
			archive_entry_set_perm(e, 0777);
			archive_write_header(a, e);
		} else {
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, 0644);
			archive_entry_set_size(e, (la_int64_t)strlen(entries[i].data));
			archive_write_header(a, e);
			archive_write_data(a, entries[i].data, strlen(entries[i].data));
		}
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
}

struct fixture {
	char dir[64];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/berth-unpack-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct berth_err err;
	fs_remove_tree(f->dir, &err);
	free(f);
	return 0;
}

static void test_good_archive_unpacks_once(void **state)
{
	struct fixture *f = *state;
	char *tgz = fs_path("%s/model.tar.gz", f->dir), *dest = fs_path("%s/out", f->dir);
	struct entry e[] = { { "weights.txt", "w=1\n", NULL }, { "sub/cfg.json", "{}", NULL } };
	write_tgz(tgz, e, 2);
	struct berth_err err;
	assert_int_equal(unpack_once(tgz, dest, NULL, &err), 0);
	struct berth_buf b = BERTH_BUF_INIT;
	char *w = fs_path("%s/weights.txt", dest);
	assert_int_equal(fs_read_file(w, &b, 100, &err), 0);
	assert_string_equal(b.data, "w=1\n");
	/* a second call finds it done and does not touch it */
	unlink(w);
	assert_int_equal(unpack_once(tgz, dest, NULL, &err), 0);
	assert_int_not_equal(access(w, F_OK), 0);
	buf_free(&b);
	free(w);
	free(tgz);
	free(dest);
}

static void assert_refused(struct fixture *f, const struct entry *e, size_t n, const char *escape)
{
	char *tgz = fs_path("%s/bad.tar.gz", f->dir), *dest = fs_path("%s/bad-out", f->dir);
	write_tgz(tgz, e, n);
	struct berth_err err;
	assert_int_equal(unpack_once(tgz, dest, NULL, &err), -1);
	assert_int_equal(err.cls, BERTH_ERR_VALIDATION); /* the archive's fault: 400 */
	assert_int_not_equal(access(dest, F_OK), 0); /* nothing half-unpacked left */
	if (escape != NULL)
		assert_int_not_equal(access(escape, F_OK), 0);
	free(tgz);
	free(dest);
}

static void test_dotdot_is_refused(void **state)
{
	struct fixture *f = *state;
	char *escape = fs_path("%s/escaped.txt", f->dir);
	struct entry e[] = { { "ok.txt", "fine", NULL }, { "../escaped.txt", "evil", NULL } };
	assert_refused(f, e, 2, escape);
	free(escape);
}

static void test_absolute_path_is_refused(void **state)
{
	struct fixture *f = *state;
	char *abs = fs_path("%s/abs-escape.txt", f->dir);
	struct entry e[] = { { abs, "evil", NULL } };
	assert_refused(f, e, 1, abs);
	free(abs);
}

static void test_write_through_symlink_is_refused(void **state)
{
	struct fixture *f = *state;
	char *escape = fs_path("%s/through-link", f->dir);
	struct entry e[] = { { "link", NULL, f->dir }, { "link/through-link", "evil", NULL } };
	assert_refused(f, e, 2, escape);
	free(escape);
}

static void test_size_bound(void **state)
{
	struct fixture *f = *state;
	char *tgz = fs_path("%s/big.tar.gz", f->dir), *dest = fs_path("%s/big-out", f->dir);
	struct entry e[] = { { "a.txt", "0123456789abcdef", NULL } };
	write_tgz(tgz, e, 1);
	struct berth_err err;
	struct unpack_limits lim = { .max_bytes = 8 };
	assert_int_equal(unpack_once(tgz, dest, &lim, &err), -1);
	assert_non_null(strstr(err.msg, "more than 8 bytes"));
	assert_int_equal(err.errnum, EFBIG);
	assert_int_equal(err.cls, BERTH_ERR_VALIDATION);
	assert_int_not_equal(access(dest, F_OK), 0);
	/* exactly at the bound is fine */
	lim.max_bytes = 16;
	assert_int_equal(unpack_once(tgz, dest, &lim, &err), 0);
	free(tgz);
	free(dest);
}

/* A big, highly compressible entry is refused on its declared size, before
 * its data is read: the bound holds however well it compresses. */
static void test_declared_size_bound(void **state)
{
	struct fixture *f = *state;
	char *tgz = fs_path("%s/zeros.tar.gz", f->dir), *dest = fs_path("%s/zeros-out", f->dir);
	size_t big = 4u << 20;
	char *zeros = calloc(1, big + 1);
	memset(zeros, 'z', big);
	struct entry e[] = { { "small.txt", "s", NULL }, { "zeros.bin", zeros, NULL } };
	write_tgz(tgz, e, 2);
	struct stat st;
	assert_int_equal(stat(tgz, &st), 0);
	assert_true(st.st_size < 64 * 1024); /* it compresses well */
	struct berth_err err;
	struct unpack_limits lim = { .max_bytes = 1u << 20 };
	assert_int_equal(unpack_once(tgz, dest, &lim, &err), -1);
	assert_non_null(strstr(err.msg, "more than 1048576 bytes"));
	assert_int_not_equal(access(dest, F_OK), 0);
	free(zeros);
	free(tgz);
	free(dest);
}

static void test_entry_bound(void **state)
{
	struct fixture *f = *state;
	char *tgz = fs_path("%s/many.tar.gz", f->dir), *dest = fs_path("%s/many-out", f->dir);
	struct entry e[] = { { "a", "1", NULL }, { "b", "2", NULL }, { "c", NULL, "a" } };
	write_tgz(tgz, e, 3);
	struct berth_err err;
	struct unpack_limits lim = { .max_entries = 2 };
	assert_int_equal(unpack_once(tgz, dest, &lim, &err), -1);
	assert_non_null(strstr(err.msg, "more than 2 entries"));
	assert_int_equal(err.errnum, EFBIG);
	assert_int_not_equal(access(dest, F_OK), 0);
	lim.max_entries = 3;
	assert_int_equal(unpack_once(tgz, dest, &lim, &err), 0);
	free(tgz);
	free(dest);
}

/* A deadline already past (a variant's ModelDataDownloadTimeoutInSeconds
 * spent) stops the unpack: ETIMEDOUT, nothing left behind. */
static void test_deadline_bound(void **state)
{
	struct fixture *f = *state;
	char *tgz = fs_path("%s/slow.tar.gz", f->dir), *dest = fs_path("%s/slow-out", f->dir);
	struct entry e[] = { { "a", "1", NULL }, { "b", "2", NULL } };
	write_tgz(tgz, e, 2);
	struct berth_err err;
	struct unpack_limits lim = { .deadline_ms = clock_now_ms() - 1 };
	assert_int_equal(unpack_once(tgz, dest, &lim, &err), -1);
	assert_int_equal(err.errnum, ETIMEDOUT);
	assert_non_null(strstr(err.msg, "did not finish in time"));
	assert_null(strstr(err.msg, "timed out")); /* no strerror tacked on */
	assert_int_not_equal(access(dest, F_OK), 0);
	lim.deadline_ms = clock_now_ms() + 60000;
	assert_int_equal(unpack_once(tgz, dest, &lim, &err), 0);
	free(tgz);
	free(dest);
}

static void test_not_an_archive(void **state)
{
	struct fixture *f = *state;
	char *junk = fs_path("%s/junk.tar.gz", f->dir), *dest = fs_path("%s/junk-out", f->dir);
	FILE *fp = fopen(junk, "w");
	fputs("this is not gzip", fp);
	fclose(fp);
	struct berth_err err;
	assert_int_equal(unpack_once(junk, dest, NULL, &err), -1);
	assert_int_equal(err.cls, BERTH_ERR_VALIDATION);
	assert_int_not_equal(access(dest, F_OK), 0);
	char *missing = fs_path("%s/missing.tar.gz", f->dir);
	assert_int_equal(unpack_once(missing, dest, 0, &err), -1);
	assert_int_equal(err.cls, BERTH_ERR_VALIDATION);
	free(missing);
	free(junk);
	free(dest);
}

/* The host failing (here: no file descriptor left to create an entry, a
 * real EMFILE) is berth's fault, not the archive's: INTERNAL (500). */
static void test_host_failure_is_internal(void **state)
{
	struct fixture *f = *state;
	char *tgz = fs_path("%s/good.tar.gz", f->dir), *dest = fs_path("%s/good-out", f->dir);
	struct entry e[] = { { "a.txt", "hello", NULL } };
	write_tgz(tgz, e, 1);
	struct rlimit saved, low;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	int lowest_free = dup(0);
	assert_true(lowest_free >= 0);
	close(lowest_free);
	low = saved;
	low.rlim_cur = (rlim_t)lowest_free + 1; /* the archive opens; its entry cannot */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	struct berth_err err;
	int r = unpack_once(tgz, dest, 0, &err);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
	assert_int_equal(r, -1);
	assert_int_equal(err.cls, BERTH_ERR_INTERNAL);
	assert_non_null(strstr(err.msg, ": Too many open files"));
	assert_int_not_equal(access(dest, F_OK), 0);
	/* with descriptors back it unpacks */
	assert_int_equal(unpack_once(tgz, dest, 0, &err), 0);
	free(tgz);
	free(dest);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_archive_unpacks_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dotdot_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_absolute_path_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_through_symlink_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_declared_size_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entry_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deadline_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_an_archive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_failure_is_internal, setup, teardown),
	};
	return cmocka_run_group_tests_name("unpack", tests, NULL, NULL);
}
