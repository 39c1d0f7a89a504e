/* Unit tests for the object store's local side: a local root's objects
 * (file, directory, missing), the bucket list, and how a failure is worded
 * for the API user (objstore_failure). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "objstore.h"

struct fixture {
	char root[64];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->root, sizeof(f->root), "/tmp/berth-objstore-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	char path[256];
	snprintf(path, sizeof(path), "%s/bkt/dir", f->root);
	struct berth_err err;
	assert_int_equal(fs_mkdir_p(path, 0755, &err), 0);
	snprintf(path, sizeof(path), "%s/bkt/m.tar.gz", f->root);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("not really a tarball", fp);
	fclose(fp);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct berth_err err;
	fs_remove_tree(f->root, &err);
	free(f);
	return 0;
}

static void stat_url(const struct objstore_config *cfg, const char *url, int want_r, enum objstore_status want_st,
		     struct objstore_object *o, char **version)
{
	enum objstore_status st;
	struct berth_err err;
	long long size;
	assert_int_equal(objstore_locate(cfg, url, o, &st, &err), 0);
	assert_int_equal(objstore_stat(cfg, o, version, &size, &st, &err), want_r);
	assert_int_equal(st, want_st);
}

static void test_local_root_files_directories_and_missing(void **state)
{
	struct fixture *f = *state;
	struct objstore_config cfg = { .local_root = f->root };
	struct objstore_object o;
	char *version = NULL;
	stat_url(&cfg, "s3://bkt/m.tar.gz", 0, OBJSTORE_OK, &o, &version);
	assert_false(o.local_dir);
	assert_true(o.local_open);
	assert_non_null(version);
	assert_string_not_equal(version, "dir");
	free(version);
	objstore_object_free(&o);
	/* a directory is an already unpacked artifact: the caller decides */
	stat_url(&cfg, "s3://bkt/dir", 0, OBJSTORE_OK, &o, &version);
	assert_true(o.local_dir);
	assert_string_equal(version, "dir");
	free(version);
	objstore_object_free(&o);
	version = NULL;
	stat_url(&cfg, "s3://bkt/absent.tar.gz", -1, OBJSTORE_NOT_FOUND, &o, &version);
	assert_null(version);
	objstore_object_free(&o);
}

static void test_unlisted_bucket_is_forbidden_before_anything_is_opened(void **state)
{
	struct fixture *f = *state;
	struct objstore_list buckets = { 0 };
	assert_int_equal(objstore_list_add(&buckets, "other"), 0);
	struct objstore_config cfg = { .local_root = f->root, .buckets = &buckets };
	struct objstore_object o;
	enum objstore_status st;
	struct berth_err err;
	assert_int_equal(objstore_locate(&cfg, "s3://bkt/m.tar.gz", &o, &st, &err), -1);
	assert_int_equal(st, OBJSTORE_FORBIDDEN);
	assert_false(o.local_open);
	assert_non_null(strstr(err.msg, "bucket \"bkt\" is not one of them"));
	struct berth_err said;
	objstore_failure(&o, "s3://bkt/m.tar.gz", "model data", st, &err, &said);
	/* as S3 answers for a bucket one may not read */
	assert_int_equal(said.cls, BERTH_ERR_VALIDATION);
	assert_string_equal(said.msg, "Failed to download model data(bucket: bkt, key: m.tar.gz). Please ensure that "
				      "there is an object located at the URL and that the role passed to CreateModel "
				      "has permissions to download the model.");
	objstore_object_free(&o);
	objstore_list_free(&buckets);
}

static void test_failures_are_worded_and_classed(void **state)
{
	(void)state;
	struct objstore_object o = { .bucket = "b", .key = "k/m.tar.gz" };
	struct berth_err cause, said;
	berth_err_set(&cause, 0, "Couldn't connect to server");
	objstore_failure(&o, "s3://b/k/m.tar.gz", "the source directory", OBJSTORE_NOT_FOUND, &cause, &said);
	assert_int_equal(said.cls, BERTH_ERR_VALIDATION);
	assert_non_null(strstr(said.msg, "Failed to download the source directory(bucket: b, key: k/m.tar.gz)."));
	objstore_failure(&o, "s3://b/k/m.tar.gz", "model data", OBJSTORE_UNREACHABLE, &cause, &said);
	assert_int_equal(said.cls, BERTH_ERR_UNAVAILABLE);
	assert_string_equal(said.msg, "Failed to download model data from s3://b/k/m.tar.gz: the object store could "
				      "not be reached (Couldn't connect to server). Please try again.");
	berth_err_set(&cause, 0, "s3://b/k/m.tar.gz is larger than the limit of 10 bytes");
	objstore_failure(&o, "s3://b/k/m.tar.gz", "model data", OBJSTORE_TOO_BIG, &cause, &said);
	assert_int_equal(said.cls, BERTH_ERR_VALIDATION);
	assert_string_equal(said.msg, "Failed to download model data from s3://b/k/m.tar.gz: s3://b/k/m.tar.gz is "
				      "larger than the limit of 10 bytes.");
	/* berth's own failure stays berth's */
	berth_err_set(&cause, ENOSPC, "artifacts/.fetch/1.2");
	objstore_failure(&o, "s3://b/k/m.tar.gz", "model data", OBJSTORE_ERROR, &cause, &said);
	assert_int_equal(said.cls, BERTH_ERR_INTERNAL);
	struct objstore_object plain = { 0 };
	berth_err_set(&cause, 0, "gone");
	objstore_failure(&plain, "file:///m/x.tar.gz", "model data", OBJSTORE_NOT_FOUND, &cause, &said);
	assert_non_null(strstr(said.msg, "Failed to download model data(url: file:///m/x.tar.gz)."));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_local_root_files_directories_and_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unlisted_bucket_is_forbidden_before_anything_is_opened, setup,
						teardown),
		cmocka_unit_test(test_failures_are_worded_and_classed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
