/* Unit tests for the multi-model cache's pure parts (mme.h) and the object
 * store's URL mapping and SigV4 set-up (objstore.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mme.h"
#include "objstore.h"

static void test_target_ok(void **state)
{
	(void)state;
	struct berth_err err;
	const char *good[] = { "model-17.tar.gz", "a/b/c.tar.gz", "m..odel.tar.gz", "x" };
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		assert_int_equal(mme_validate_target(good[i], strlen(good[i]), &err), 0);
}

static void test_target_bad(void **state)
{
	(void)state;
	struct berth_err err;
	const char *bad[] = { "", "/abs.tar.gz", "../up.tar.gz", "a/../b", "a/./b", "a//b", "dir/", "..", "tab\there" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		assert_int_equal(mme_validate_target(bad[i], strlen(bad[i]), &err), -1);
		assert_true(strlen(err.msg) > 0);
	}
	char nul[] = "a\0b";
	assert_int_equal(mme_validate_target(nul, 3, &err), -1);
	char *longname = malloc(2001);
	memset(longname, 'a', 2000);
	longname[2000] = '\0';
	assert_int_equal(mme_validate_target(longname, 2000, &err), -1);
	assert_non_null(strstr(err.msg, "1024"));
	longname[1024] = '\0';
	assert_int_equal(mme_validate_target(longname, 1024, &err), 0);
	free(longname);
}

static void test_model_name(void **state)
{
	(void)state;
	char a[MME_NAME_HEX + 1], b[MME_NAME_HEX + 1], c[MME_NAME_HEX + 1], d[MME_NAME_HEX + 1];
	mme_model_name("m1.tar.gz", "\"etag1\"", a);
	mme_model_name("m1.tar.gz", "\"etag1\"", b);
	mme_model_name("m1.tar.gz", "\"etag2\"", c);
	mme_model_name("m2.tar.gz", "\"etag1\"", d);
	assert_int_equal(strlen(a), MME_NAME_HEX);
	assert_int_equal(strspn(a, "0123456789abcdef"), MME_NAME_HEX);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_string_not_equal(a, d);
}

static void test_lru_pick(void **state)
{
	(void)state;
	struct mme_lru_item items[] = { { 50, true }, { 10, false }, { 20, true }, { 30, true } };
	assert_int_equal(mme_lru_pick(items, 4), 2);
	items[2].evictable = false;
	assert_int_equal(mme_lru_pick(items, 4), 3);
	items[0].evictable = items[3].evictable = false;
	assert_int_equal(mme_lru_pick(items, 4), -1);
	assert_int_equal(mme_lru_pick(items, 0), -1);
}

static void test_objstore_local(void **state)
{
	(void)state;
	struct objstore_config cfg = { .local_root = "/srv/store" };
	struct objstore_object o;
	enum objstore_status st;
	struct berth_err err;
	char *url = objstore_join("s3://bucket/prefix", "m.tar.gz");
	assert_string_equal(url, "s3://bucket/prefix/m.tar.gz");
	free(url);
	url = objstore_join("s3://bucket/prefix/", "m.tar.gz");
	assert_string_equal(url, "s3://bucket/prefix/m.tar.gz");
	assert_int_equal(objstore_locate(&cfg, url, &o, &st, &err), 0);
	assert_string_equal(o.local_path, "/srv/store/bucket/prefix/m.tar.gz");
	assert_string_equal(o.bucket, "bucket");
	assert_string_equal(o.key, "prefix/m.tar.gz");
	assert_null(o.http_url);
	objstore_object_free(&o);
	free(url);
	assert_int_equal(objstore_locate(&cfg, "file:///dir/m.tar.gz", &o, &st, &err), 0);
	assert_string_equal(o.local_path, "/dir/m.tar.gz");
	objstore_object_free(&o);
	assert_int_equal(objstore_locate(&cfg, "file://relative", &o, &st, &err), -1);
	objstore_object_free(&o);
	assert_int_equal(objstore_locate(&cfg, "s3://bucket/../x", &o, &st, &err), -1);
	objstore_object_free(&o);
	assert_int_equal(objstore_locate(&cfg, "ftp://x/y", &o, &st, &err), -1);
	objstore_object_free(&o);
	struct objstore_config none = { 0 };
	assert_int_equal(objstore_locate(&none, "s3://b/k", &o, &st, &err), -1);
	assert_non_null(strstr(err.msg, "--object-store-root"));
	objstore_object_free(&o);
}

static void test_objstore_http(void **state)
{
	(void)state;
	struct objstore_list buckets = { .n = 0 }, hosts = { .n = 0 };
	assert_int_equal(objstore_list_add(&buckets, "bkt"), 0);
	assert_int_equal(objstore_list_add(&hosts, "example.com"), 0);
	assert_int_equal(objstore_list_add(&hosts, "127.0.0.1:8443"), 0);
	assert_int_equal(objstore_list_add(&hosts, "[::1]"), 0);
	struct objstore_config cfg = { .local_root = "/srv", .s3_endpoint = "http://127.0.0.1:9000/",
				       .buckets = &buckets, .https_hosts = &hosts };
	struct objstore_object o;
	enum objstore_status st;
	struct berth_err err;
	assert_int_equal(objstore_locate(&cfg, "s3://bkt/p/a b+c.tar.gz", &o, &st, &err), 0);
	assert_string_equal(o.http_url, "http://127.0.0.1:9000/bkt/p/a%20b%2Bc.tar.gz");
	assert_true(o.signed_s3);
	assert_null(o.local_path);
	objstore_object_free(&o);
	assert_int_equal(objstore_locate(&cfg, "https://example.com/m.tar.gz", &o, &st, &err), 0);
	assert_string_equal(o.http_url, "https://example.com/m.tar.gz");
	assert_false(o.signed_s3);
	assert_int_equal(st, OBJSTORE_OK);
	objstore_object_free(&o);
	/* only listed buckets get the host's credentials; nothing else is asked */
	assert_int_equal(objstore_locate(&cfg, "s3://other/p/m.tar.gz", &o, &st, &err), -1);
	assert_int_equal(st, OBJSTORE_FORBIDDEN);
	assert_non_null(strstr(err.msg, "s3_buckets setting (--s3-bucket): bkt; bucket \"other\" is not one of them"));
	assert_null(o.http_url);
	objstore_object_free(&o);
	assert_int_equal(objstore_check(&cfg, "s3://other/prefix/", &err), -1);
	assert_int_equal(err.errnum, EACCES);
	assert_int_equal(objstore_check(&cfg, "s3://bkt/prefix/", &err), 0);
	/* hosts: name (any port), name:port, [v6]; userinfo does not fool it */
	assert_int_equal(objstore_check(&cfg, "https://EXAMPLE.com:444/p/", &err), 0);
	assert_int_equal(objstore_check(&cfg, "https://127.0.0.1:8443/p/", &err), 0);
	assert_int_equal(objstore_check(&cfg, "https://127.0.0.1/p/", &err), -1);
	assert_non_null(strstr(err.msg, "127.0.0.1:443 is not one of them"));
	assert_int_equal(objstore_check(&cfg, "http://[::1]:9/p/", &err), 0);
	assert_int_equal(objstore_check(&cfg, "https://example.com@evil.test/p/", &err), -1);
	assert_int_equal(objstore_check(&cfg, "https://evil.test/example.com/", &err), -1);
	assert_int_equal(objstore_locate(&cfg, "https://evil.test/m.tar.gz", &o, &st, &err), -1);
	assert_int_equal(st, OBJSTORE_FORBIDDEN);
	objstore_object_free(&o);
	/* no list: no http(s) at all */
	struct objstore_config bare = { .local_root = "/srv" };
	assert_int_equal(objstore_check(&bare, "https://example.com/p/", &err), -1);
	assert_non_null(strstr(err.msg, "(--https-host): none;"));
	/* a local root with a bucket list keeps to it as well */
	bare.buckets = &buckets;
	assert_int_equal(objstore_check(&bare, "s3://other/x", &err), -1);
	assert_int_equal(objstore_check(&bare, "s3://bkt/x", &err), 0);
	objstore_list_free(&buckets);
	objstore_list_free(&hosts);
}

static void test_sigv4(void **state)
{
	(void)state;
	struct objstore_creds c = { .access_key = "AK", .secret_key = "SK" };
	struct objstore_sigv4 s;
	assert_int_equal(objstore_sigv4_setup("eu-west-1", &c, &s), 0);
	assert_string_equal(s.provider, "aws:amz:eu-west-1:s3");
	assert_string_equal(s.userpwd, "AK:SK");
	assert_null(s.token_header);
	objstore_sigv4_free(&s);
	c.session_token = "TOK";
	assert_int_equal(objstore_sigv4_setup(NULL, &c, &s), 0);
	assert_string_equal(s.provider, "aws:amz:us-east-1:s3");
	assert_string_equal(s.token_header, "x-amz-security-token: TOK");
	objstore_sigv4_free(&s);
}

static void test_creds_env_and_file(void **state)
{
	(void)state;
	struct objstore_creds c;
	setenv("AWS_ACCESS_KEY_ID", "envak", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsk", 1);
	unsetenv("AWS_SESSION_TOKEN");
	assert_int_equal(objstore_creds_load(&c), 0);
	assert_string_equal(c.access_key, "envak");
	assert_null(c.session_token);
	objstore_creds_free(&c);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	char path[] = "/tmp/berth-test-creds-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char text[] = "[other]\naws_access_key_id = no\n[default]\naws_access_key_id = fileak\n"
			    "aws_secret_access_key=filesk\naws_session_token = ftok\n";
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	assert_int_equal(objstore_creds_load(&c), 0);
	assert_string_equal(c.access_key, "fileak");
	assert_string_equal(c.secret_key, "filesk");
	assert_string_equal(c.session_token, "ftok");
	objstore_creds_free(&c);
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_target_ok),     cmocka_unit_test(test_target_bad),
		cmocka_unit_test(test_model_name),    cmocka_unit_test(test_lru_pick),
		cmocka_unit_test(test_objstore_local), cmocka_unit_test(test_objstore_http),
		cmocka_unit_test(test_sigv4),         cmocka_unit_test(test_creds_env_and_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
