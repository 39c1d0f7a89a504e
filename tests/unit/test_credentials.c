/* test_credentials.c — the credentials file (common/credentials.c): what
 * it accepts, every refusal with its line and remedy, the permission
 * checks of credentials_load, and what a key may do. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "credentials.h"
#include "err.h"

static const char example[] =
	"# berth's keys\r\n"
	"[ops]\r\n"
	"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\r\n"
	"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\r\n"
	"allow = sagemaker:*\r\n"
	"\r\n"
	"  ; the application\n"
	"[ app ]\n"
	"\taws_access_key_id=AKIAAPPAPPAPPAPP0001\n"
	"aws_secret_access_key\t=  s#cr;t=x  \n"
	"allow = sagemaker:InvokeEndpoint   sagemaker:InvokeEndpointAsync\n"
	"endpoints = prod-* canary\n"
	"[reader]\n"
	"aws_access_key_id = AKIAREADERREADER0002\n"
	"aws_secret_access_key = r\n"
	"allow = sagemaker:Describe* sagemaker:List*\n"
	"models = m-?\n"
	"endpoint_configs = *\n"
	"[nothing]\n"
	"aws_access_key_id = AKIANOTHINGNOTHING03\n"
	"aws_secret_access_key = n"; /* no final newline */

static struct credentials parse_ok(const char *text)
{
	struct credentials c = { 0 };
	struct berth_err err = { 0 };
	int r = credentials_parse(text, strlen(text), "/etc/berth/credentials", &c, &err);
	if (r != 0)
		fail_msg("refused: %s", err.msg);
	return c;
}

static void assert_refused(const char *text, const char *message)
{
	struct credentials sentinel = { (struct credentials_key *)&sentinel, 42 };
	struct berth_err err = { 0 };
	assert_int_equal(credentials_parse(text, strlen(text), "/etc/berth/credentials", &sentinel, &err), -1);
	assert_string_equal(err.msg, message);
	assert_int_equal(err.cls, BERTH_ERR_VALIDATION);
	/* *out untouched */
	assert_ptr_equal(sentinel.keys, (struct credentials_key *)&sentinel);
	assert_int_equal(sentinel.n, 42);
}

static void test_parse(void **state)
{
	(void)state;
	struct credentials c = parse_ok(example);
	assert_int_equal(c.n, 4);
	assert_string_equal(c.keys[0].name, "ops");
	assert_string_equal(c.keys[0].key_id, "AKIAIOSFODNN7EXAMPLE");
	assert_string_equal(c.keys[0].secret, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
	assert_int_equal(c.keys[0].allow.n, 1);
	assert_string_equal(c.keys[0].allow.v[0], "sagemaker:*");
	assert_null(c.keys[0].endpoints.v);
	assert_string_equal(c.keys[1].name, "app");
	assert_string_equal(c.keys[1].key_id, "AKIAAPPAPPAPPAPP0001");
	assert_string_equal(c.keys[1].secret, "s#cr;t=x"); /* no inline comments: '#' may be in a secret */
	assert_int_equal(c.keys[1].allow.n, 2);
	assert_string_equal(c.keys[1].allow.v[1], "sagemaker:InvokeEndpointAsync");
	assert_int_equal(c.keys[1].endpoints.n, 2);
	assert_string_equal(c.keys[1].endpoints.v[0], "prod-*");
	assert_string_equal(c.keys[1].endpoints.v[1], "canary");
	assert_string_equal(c.keys[2].models.v[0], "m-?");
	assert_null(c.keys[3].allow.v);
	assert_string_equal(c.keys[3].secret, "n");
	assert_ptr_equal(credentials_find(&c, "AKIAREADERREADER0002"), &c.keys[2]);
	assert_null(credentials_find(&c, "AKIAREADERREADER000"));
	assert_null(credentials_find(&c, "akiareaderreader0002"));
	assert_null(credentials_find(&c, ""));
	credentials_free(&c);
	assert_int_equal(c.n, 0);
	credentials_free(&c);
	/* an empty file: no keys */
	c = parse_ok("");
	assert_int_equal(c.n, 0);
	credentials_free(&c);
	c = parse_ok("# nothing yet\n\n");
	assert_int_equal(c.n, 0);
	credentials_free(&c);
}

#define KEY "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
#define SECRET "aws_secret_access_key = s\n"
#define P "/etc/berth/credentials line "

static void test_refusals(void **state)
{
	(void)state;
	assert_refused(KEY, P "1: `aws_access_key_id` is outside any section; put a `[NAME]` line above it");
	assert_refused("[a]\n" KEY SECRET "region = us-east-1\n",
		       P "4: unknown member `region`; the members are aws_access_key_id, aws_secret_access_key, allow, "
			 "endpoints, endpoint_configs and models");
	assert_refused("[a]\n" KEY SECRET "[a]\n", P "4: section [a] appears twice; merge the two or rename one");
	assert_refused("[a]\n" KEY SECRET "[b]\n" KEY SECRET,
		       P "5: aws_access_key_id AKIAIOSFODNN7EXAMPLE is also section [a]'s; give each key its own id");
	assert_refused("[a]\n" KEY KEY SECRET, P "3: aws_access_key_id appears twice in section [a]; keep one");
	assert_refused("[a]\n" KEY SECRET SECRET, P "4: aws_secret_access_key appears twice in section [a]; keep one");
	assert_refused("[a]\n" KEY SECRET "allow = *\nallow = *\n",
		       P "5: allow appears twice in section [a]; join the lists on one line");
	assert_refused("[a]\n" SECRET "\n[b]\n",
		       P "1: section [a] has no aws_access_key_id; add `aws_access_key_id = …` to it, or remove the section");
	assert_refused("# c\n[a]\n" KEY,
		       P "2: section [a] has no aws_secret_access_key; add `aws_secret_access_key = …` to it, or remove "
			 "the section");
	assert_refused("[a]\naws_access_key_id = AKIA1234567890\n",
		       P "2: aws_access_key_id must be 16 to 128 upper-case letters and digits (as AKIAIOSFODNN7EXAMPLE); "
			 "correct it");
	assert_refused("[a]\naws_access_key_id = akiaiosfodnn7example\n",
		       P "2: aws_access_key_id must be 16 to 128 upper-case letters and digits (as AKIAIOSFODNN7EXAMPLE); "
			 "correct it");
	assert_refused("[a]\naws_access_key_id =\n",
		       P "2: aws_access_key_id must be 16 to 128 upper-case letters and digits (as AKIAIOSFODNN7EXAMPLE); "
			 "correct it");
	assert_refused("[a]\n" KEY "aws_secret_access_key = two words\n",
		       P "3: aws_secret_access_key must be 1 to 128 printable ASCII characters without spaces; correct it");
	assert_refused("[a]\n" KEY "aws_secret_access_key = caf\xc3\xa9\n",
		       P "3: aws_secret_access_key must be 1 to 128 printable ASCII characters without spaces; correct it");
	assert_refused("[a]\n" KEY "aws_secret_access_key = \n",
		       P "3: aws_secret_access_key must be 1 to 128 printable ASCII characters without spaces; correct it");
	assert_refused("[a]\n" KEY SECRET "allow = \n", P "4: allow is empty; list actions as sagemaker:NAME (letters, "
							"'*', '?'), or *, or remove the line");
	assert_refused("[a]\n" KEY SECRET "allow = sagemaker:CreateModel s3:GetObject\n",
		       P "4: allow: 's3:GetObject' is not actions as sagemaker:NAME (letters, '*', '?'), or *; correct it");
	assert_refused("[a]\n" KEY SECRET "allow = sagemaker:\n",
		       P "4: allow: 'sagemaker:' is not actions as sagemaker:NAME (letters, '*', '?'), or *; correct it");
	assert_refused("[a]\n" KEY SECRET "allow = sagemaker:Create-Model\n",
		       P "4: allow: 'sagemaker:Create-Model' is not actions as sagemaker:NAME (letters, '*', '?'), or *; "
			 "correct it");
	assert_refused("[a]\n" KEY SECRET "endpoints = prod_1\n",
		       P "4: endpoints: 'prod_1' is not endpoint names or globs (letters, digits, '-', '*', '?'); correct it");
	assert_refused("[a]\n" KEY SECRET "models = a,b\n",
		       P "4: models: 'a,b' is not model names or globs (letters, digits, '-', '*', '?'); correct it");
	assert_refused("[a]\n" KEY SECRET "endpoint_configs =   \n",
		       P "4: endpoint_configs is empty; list endpoint configuration names or globs (letters, digits, '-', "
			 "'*', '?'), or remove the line");
	assert_refused("[a]\njunk\n", P "2: expected `name = value`, `[NAME]` or a comment; correct the line");
	assert_refused("[a]\n= x\n", P "2: a value without a name; write `name = value`");
	assert_refused("[a\n", P "1: a section header is `[NAME]` alone on its line; close the bracket or remove what follows it");
	assert_refused("[a] # admin\n", P "1: a section header is `[NAME]` alone on its line; close the bracket or remove "
					 "what follows it");
	assert_refused("[]\n", P "1: section name '' is not a user name (1 to 64 of letters, digits and +=,.@_-); rename it");
	assert_refused("[a b]\n",
		       P "1: section name 'a b' is not a user name (1 to 64 of letters, digits and +=,.@_-); rename it");
	const char nul[] = "[a]\n" KEY "aws_secret_access_key = s\0x\n";
	struct credentials c = { 0 };
	struct berth_err err = { 0 };
	assert_int_equal(credentials_parse(nul, sizeof(nul) - 1, "/etc/berth/credentials", &c, &err), -1);
	assert_string_equal(err.msg, P "3: a control character (byte 0x00); the file must be text");
	char *big = calloc(1, CREDENTIALS_MAX_BYTES + 2);
	assert_non_null(big);
	memset(big, '\n', CREDENTIALS_MAX_BYTES + 1);
	assert_int_equal(credentials_parse(big, CREDENTIALS_MAX_BYTES + 1, "/etc/berth/credentials", &c, &err), -1);
	assert_string_equal(err.msg, "/etc/berth/credentials: 1048577 bytes exceeds the limit of 1048576 bytes for a "
				     "credentials file; remove keys");
	assert_int_equal(credentials_parse(big, CREDENTIALS_MAX_BYTES, "/etc/berth/credentials", &c, &err), 0);
	assert_int_equal(c.n, 0);
	credentials_free(&c);
	free(big);
}

/* ---- credentials_load ---------------------------------------------------- */

static char *write_file(const char *text, mode_t mode)
{
	char *path = strdup("/tmp/berth-test-credentials-XXXXXX");
	assert_non_null(path);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static void test_load(void **state)
{
	(void)state;
	struct credentials c = { 0 };
	struct berth_err err = { 0 };
	char *path = write_file(example, 0600);
	assert_int_equal(credentials_load(path, &c, &err), 0);
	assert_int_equal(c.n, 4);
	credentials_free(&c);

	char expected[512];
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(credentials_load(path, &c, &err), -1);
	snprintf(expected, sizeof(expected),
		 "credentials file %s has mode 0640: group or others may read or change the secret keys; run `chmod 600 %s`",
		 path, path);
	assert_string_equal(err.msg, expected);
	assert_int_equal(chmod(path, 0602), 0);
	assert_int_equal(credentials_load(path, &c, &err), -1);
	assert_non_null(strstr(err.msg, "has mode 0602"));
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(credentials_load(path, &c, &err), 0);
	credentials_free(&c);

	if (geteuid() == 0) {
		/* owned by someone else: only root can arrange that */
		assert_int_equal(chown(path, 65534, (gid_t)-1), 0);
		assert_int_equal(credentials_load(path, &c, &err), -1);
		snprintf(expected, sizeof(expected),
			 "credentials file %s is owned by uid 65534, not by berthd's uid 0, so another user could change "
			 "the keys; run `chown 0 %s`",
			 path, path);
		assert_string_equal(err.msg, expected);
	}
	assert_int_equal(unlink(path), 0);
	assert_int_equal(credentials_load(path, &c, &err), -1);
	snprintf(expected, sizeof(expected),
		 "credentials file %s does not exist; create it (mode 0600, one [NAME] section per key, docs/contract.md "
		 "§1) or name another with --credentials",
		 path);
	assert_string_equal(err.msg, expected);
	assert_int_equal(credentials_load("/tmp", &c, &err), -1);
	assert_string_equal(err.msg, "credentials file /tmp is not a regular file; name the file itself");
	free(path);

	/* over the size bound: refused before reading; a symlink to a good file is read */
	path = write_file("", 0600);
	assert_int_equal(truncate(path, CREDENTIALS_MAX_BYTES + 1), 0);
	assert_int_equal(credentials_load(path, &c, &err), -1);
	snprintf(expected, sizeof(expected),
		 "credentials file %s: 1048577 bytes exceeds the limit of 1048576 bytes; remove keys", path);
	assert_string_equal(err.msg, expected);
	assert_int_equal(truncate(path, 0), 0);
	char link[64];
	snprintf(link, sizeof(link), "%s.link", path);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(credentials_load(link, &c, &err), 0);
	assert_int_equal(c.n, 0);
	credentials_free(&c);
	assert_int_equal(unlink(link), 0);
	assert_int_equal(unlink(path), 0);
	free(path);

	/* a parse refusal names the path given */
	path = write_file("[a]\n", 0600);
	assert_int_equal(credentials_load(path, &c, &err), -1);
	snprintf(expected, sizeof(expected),
		 "%s line 1: section [a] has no aws_access_key_id; add `aws_access_key_id = …` to it, or remove the section",
		 path);
	assert_string_equal(err.msg, expected);
	assert_int_equal(unlink(path), 0);
	free(path);
}

/* ---- permissions ---------------------------------------------------------- */

static void test_allows(void **state)
{
	(void)state;
	struct credentials c = parse_ok(example);
	const struct credentials_key *ops = &c.keys[0], *app = &c.keys[1], *reader = &c.keys[2], *nothing = &c.keys[3];
	assert_true(credentials_allows(ops, "sagemaker:CreateModel", CRED_KIND_MODEL, "m"));
	assert_true(credentials_allows(ops, "sagemaker:ListEndpoints", CRED_KIND_ENDPOINT, "*"));
	/* an invoke-only key restricted to prod-* and canary */
	assert_true(credentials_allows(app, "sagemaker:InvokeEndpoint", CRED_KIND_ENDPOINT, "prod-x"));
	assert_true(credentials_allows(app, "sagemaker:InvokeEndpoint", CRED_KIND_ENDPOINT, "PROD-X"));
	assert_true(credentials_allows(app, "sagemaker:invokeendpoint", CRED_KIND_ENDPOINT, "canary"));
	assert_true(credentials_allows(app, "sagemaker:InvokeEndpointAsync", CRED_KIND_ENDPOINT, "prod-"));
	assert_false(credentials_allows(app, "sagemaker:InvokeEndpoint", CRED_KIND_ENDPOINT, "dev-x"));
	assert_false(credentials_allows(app, "sagemaker:InvokeEndpoint", CRED_KIND_ENDPOINT, "canary-2"));
	assert_false(credentials_allows(app, "sagemaker:InvokeEndpoint", CRED_KIND_ENDPOINT, "*"));
	assert_false(credentials_allows(app, "sagemaker:InvokeEndpointWithResponseStream", CRED_KIND_ENDPOINT, "prod-x"));
	assert_false(credentials_allows(app, "sagemaker:CreateModel", CRED_KIND_MODEL, "m"));
	assert_false(credentials_allows(app, "sagemaker:InvokeEndpoint", CRED_KIND_ENDPOINT, NULL));
	/* no restriction of the kind asked: any name, "*" too */
	assert_true(credentials_allows(reader, "sagemaker:DescribeEndpoint", CRED_KIND_ENDPOINT, "anything"));
	assert_true(credentials_allows(reader, "sagemaker:ListEndpoints", CRED_KIND_ENDPOINT, "*"));
	assert_true(credentials_allows(reader, "sagemaker:DescribeModel", CRED_KIND_MODEL, "m-1"));
	assert_false(credentials_allows(reader, "sagemaker:DescribeModel", CRED_KIND_MODEL, "m-12"));
	assert_false(credentials_allows(reader, "sagemaker:ListModels", CRED_KIND_MODEL, "*"));
	assert_true(credentials_allows(reader, "sagemaker:ListEndpointConfigs", CRED_KIND_ENDPOINT_CONFIG, "*"));
	assert_true(credentials_allows(reader, "sagemaker:DescribeEndpointConfig", CRED_KIND_NONE, NULL));
	assert_false(credentials_allows(reader, "sagemaker:DeleteModel", CRED_KIND_MODEL, "m-1"));
	/* without allow, nothing */
	assert_false(credentials_allows(nothing, "sagemaker:DescribeEndpoint", CRED_KIND_NONE, NULL));
	assert_false(credentials_allows(NULL, "sagemaker:DescribeEndpoint", CRED_KIND_NONE, NULL));

	assert_false(credentials_invoke_only(ops));
	assert_true(credentials_invoke_only(app));
	assert_false(credentials_invoke_only(reader));
	assert_true(credentials_invoke_only(nothing));
	struct credentials d = parse_ok("[x]\n" KEY SECRET "allow = sagemaker:InvokeEndpoint* sagemaker:invokeendpoint?sync\n"
					"[y]\naws_access_key_id = AKIAYYYYYYYYYYYYYYYY\n" SECRET "allow = sagemaker:Invoke*\n"
					"[z]\naws_access_key_id = AKIAZZZZZZZZZZZZZZZZ\n" SECRET "allow = *\n");
	assert_true(credentials_invoke_only(&d.keys[0]));
	assert_false(credentials_invoke_only(&d.keys[1]));
	assert_false(credentials_invoke_only(&d.keys[2]));
	assert_true(credentials_allows(&d.keys[2], "sagemaker:DeleteEndpoint", CRED_KIND_ENDPOINT, "e"));
	credentials_free(&d);

	char message[512];
	credentials_denied_message(app, "123456789012", "sagemaker:CreateModel",
				   "arn:aws:sagemaker:us-east-1:123456789012:model/m", message, sizeof(message));
	assert_string_equal(message, "User: arn:aws:iam::123456789012:user/app is not authorized to perform: "
				     "sagemaker:CreateModel on resource: arn:aws:sagemaker:us-east-1:123456789012:model/m "
				     "because no identity-based policy allows the sagemaker:CreateModel action");
	credentials_free(&c);
}

static void test_glob(void **state)
{
	(void)state;
	assert_true(credentials_glob_match("", ""));
	assert_false(credentials_glob_match("", "a"));
	assert_true(credentials_glob_match("*", ""));
	assert_true(credentials_glob_match("*", "abc"));
	assert_true(credentials_glob_match("a*", "a"));
	assert_true(credentials_glob_match("a*c", "abbbc"));
	assert_false(credentials_glob_match("a*c", "abbbcd"));
	assert_true(credentials_glob_match("a*c*", "abbbcd"));
	assert_true(credentials_glob_match("?", "x"));
	assert_false(credentials_glob_match("?", ""));
	assert_false(credentials_glob_match("??", "x"));
	assert_true(credentials_glob_match("*a*b", "xxaxxab"));
	assert_false(credentials_glob_match("*a*b", "xxaxxa"));
	assert_false(credentials_glob_match("A", "a")); /* case matters here */
	assert_true(credentials_glob_match("sagemaker:Describe*", "sagemaker:DescribeEndpoint"));
	/* no exponential backtracking: a*a*…a*b against a long run of a */
	char pattern[201], subject[20001];
	for (int i = 0; i < 100; i++)
		pattern[2 * i] = 'a', pattern[2 * i + 1] = '*';
	pattern[199] = 'b';
	pattern[200] = '\0';
	memset(subject, 'a', sizeof(subject) - 1);
	subject[sizeof(subject) - 1] = '\0';
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_false(credentials_glob_match(pattern, subject));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(seconds < 1.0);
	subject[sizeof(subject) - 2] = 'b';
	assert_true(credentials_glob_match(pattern, subject));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_allows),
		cmocka_unit_test(test_glob),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
