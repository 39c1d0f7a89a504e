/* test_resolve_ca.c — the CA text berthd's own tag requests trust for a
 * cert_dir: the system bundle then the .crt files, kept and read again
 * only when a file changed; the client certificate pair; refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "resolve_ca.h"

struct fixture {
	char dir[64];     /* the cert_dir */
	char bundle[128]; /* a stand-in system bundle */
	struct resolve_ca_cache cache;
};

static void put(const char *dir, const char *name, const char *text)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/berth-ca-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->bundle, sizeof(f->bundle), "%s.bundle", f->dir);
	FILE *b = fopen(f->bundle, "w");
	if (b == NULL)
		return -1;
	fputs("SYSTEM\n", b);
	fclose(b);
	resolve_ca_init(&f->cache, f->bundle);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	resolve_ca_free(&f->cache);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", f->dir, f->bundle);
	int rc = system(cmd);
	free(f);
	return rc == 0 ? 0 : -1;
}

/* resolve_ca_get with held signature *sig; the text (or NULL) returned. */
static char *get(struct fixture *f, uint64_t *sig, char **cert, char **key)
{
	char *pem = NULL, *c = NULL, *k = NULL, why[256] = "";
	size_t len = 0;
	if (resolve_ca_get(&f->cache, f->dir, sig, &pem, &len, &c, &k, why, sizeof(why)) < 0)
		fail_msg("resolve_ca_get: %s", why);
	if (pem)
		assert_int_equal(strlen(pem), len);
	if (cert)
		*cert = c;
	else
		free(c);
	if (key)
		*key = k;
	else
		free(k);
	return pem;
}

static void test_no_crt_means_default_cas(void **state)
{
	struct fixture *f = *state;
	uint64_t sig = 77;
	put(f->dir, "README", "not a certificate");
	assert_null(get(f, &sig, NULL, NULL));
	assert_int_equal(sig, 0);
	assert_int_equal(f->cache.loads, 0);
}

static void test_text_kept_until_a_file_changes(void **state)
{
	struct fixture *f = *state;
	put(f->dir, "b.crt", "B\n");
	put(f->dir, "a.crt", "A\n");
	uint64_t sig = 0;
	char *pem = get(f, &sig, NULL, NULL);
	assert_non_null(pem);
	assert_string_equal(pem, "SYSTEM\n\nA\n\nB\n\n"); /* the system bundle, then by name */
	assert_int_not_equal(sig, 0);
	assert_int_equal(f->cache.loads, 1);
	free(pem);
	/* held: nothing copied, nothing read */
	uint64_t held = sig;
	assert_null(get(f, &held, NULL, NULL));
	assert_int_equal(held, sig);
	/* another caller holding nothing: the kept text, no file read */
	uint64_t none = 0;
	pem = get(f, &none, NULL, NULL);
	assert_string_equal(pem, "SYSTEM\n\nA\n\nB\n\n");
	assert_int_equal(none, sig);
	assert_int_equal(f->cache.loads, 1);
	free(pem);
	/* a .crt rewritten (another size): read again */
	put(f->dir, "a.crt", "A2 longer\n");
	held = sig;
	pem = get(f, &held, NULL, NULL);
	assert_non_null(pem);
	assert_string_equal(pem, "SYSTEM\n\nA2 longer\n\nB\n\n");
	assert_int_not_equal(held, sig);
	assert_int_equal(f->cache.loads, 2);
	free(pem);
	/* a .crt added */
	sig = held;
	put(f->dir, "c.crt", "C\n");
	pem = get(f, &held, NULL, NULL);
	assert_string_equal(pem, "SYSTEM\n\nA2 longer\n\nB\n\nC\n\n");
	assert_int_not_equal(held, sig);
	free(pem);
	/* the system bundle replaced */
	sig = held;
	char tmp[160];
	snprintf(tmp, sizeof(tmp), "%s.new", f->bundle);
	FILE *b = fopen(tmp, "w");
	assert_non_null(b);
	fputs("SYSTEM2\n", b);
	fclose(b);
	assert_int_equal(rename(tmp, f->bundle), 0);
	pem = get(f, &held, NULL, NULL);
	assert_string_equal(pem, "SYSTEM2\n\nA2 longer\n\nB\n\nC\n\n");
	assert_int_not_equal(held, sig);
	free(pem);
	/* all .crt gone: libcurl's defaults */
	char p[128];
	for (const char *n = "a"; n; n = n[0] == 'a' ? "b" : n[0] == 'b' ? "c" : NULL) {
		snprintf(p, sizeof(p), "%s/%s.crt", f->dir, n);
		assert_int_equal(unlink(p), 0);
	}
	assert_null(get(f, &held, NULL, NULL));
	assert_int_equal(held, 0);
}

static void test_client_certificate(void **state)
{
	struct fixture *f = *state;
	put(f->dir, "client.cert", "CERT\n");
	put(f->dir, "client.key", "KEY\n");
	uint64_t sig = 0;
	char *cert = NULL, *key = NULL;
	assert_null(get(f, &sig, &cert, &key));
	char want[160];
	snprintf(want, sizeof(want), "%s/client.cert", f->dir);
	assert_string_equal(cert, want);
	snprintf(want, sizeof(want), "%s/client.key", f->dir);
	assert_string_equal(key, want);
	free(cert);
	free(key);
}

static void test_no_system_bundle(void **state)
{
	struct fixture *f = *state;
	resolve_ca_free(&f->cache);
	resolve_ca_init(&f->cache, "/nonexistent/ca-bundle.crt");
	put(f->dir, "a.crt", "A\n");
	uint64_t sig = 0;
	char *pem = get(f, &sig, NULL, NULL);
	assert_string_equal(pem, "A\n\n");
	free(pem);
}

static void test_refusals(void **state)
{
	struct fixture *f = *state;
	char *pem = NULL, *cert = NULL, *key = NULL, why[256] = "";
	size_t len = 0;
	uint64_t sig = 0;
	assert_int_equal(resolve_ca_get(&f->cache, "/nonexistent/certs.d", &sig, &pem, &len, &cert, &key, why,
					sizeof(why)),
			 -1);
	assert_non_null(strstr(why, "cannot read cert_dir /nonexistent/certs.d"));
	assert_null(pem);
	assert_null(cert);
	/* a .crt that cannot be read (a dangling link) */
	char p[128];
	snprintf(p, sizeof(p), "%s/gone.crt", f->dir);
	assert_int_equal(symlink("/nonexistent/target.crt", p), 0);
	assert_int_equal(resolve_ca_get(&f->cache, f->dir, &sig, &pem, &len, &cert, &key, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "gone.crt"));
	assert_null(pem);
	assert_int_equal(f->cache.loads, 0);
}

static void test_many_dirs_evict_least_recent(void **state)
{
	struct fixture *f = *state;
	char dirs[RESOLVE_CA_SETS + 1][96];
	for (size_t i = 0; i <= RESOLVE_CA_SETS; i++) {
		snprintf(dirs[i], sizeof(dirs[i]), "%s/d%zu", f->dir, i);
		assert_int_equal(mkdir(dirs[i], 0700), 0);
		put(dirs[i], "x.crt", "X\n");
	}
	char *pem, *cert, *key, why[256];
	size_t len;
	for (size_t i = 0; i <= RESOLVE_CA_SETS; i++) {
		uint64_t sig = 0;
		assert_int_equal(resolve_ca_get(&f->cache, dirs[i], &sig, &pem, &len, &cert, &key, why, sizeof(why)), 0);
		assert_string_equal(pem, "SYSTEM\n\nX\n\n");
		free(pem);
	}
	assert_int_equal(f->cache.loads, RESOLVE_CA_SETS + 1);
	/* the last is kept; the first went */
	uint64_t sig = 0;
	assert_int_equal(resolve_ca_get(&f->cache, dirs[RESOLVE_CA_SETS], &sig, &pem, &len, &cert, &key, why,
					sizeof(why)),
			 0);
	free(pem);
	assert_int_equal(f->cache.loads, RESOLVE_CA_SETS + 1);
	sig = 0;
	assert_int_equal(resolve_ca_get(&f->cache, dirs[0], &sig, &pem, &len, &cert, &key, why, sizeof(why)), 0);
	free(pem);
	assert_int_equal(f->cache.loads, RESOLVE_CA_SETS + 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_crt_means_default_cas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text_kept_until_a_file_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_certificate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_system_bundle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_dirs_evict_least_recent, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
