/* The router's TLS contexts (router/tls.c): what it makes of the PEM
 * berthd pushes on the route watch. Handshakes, ALPN and protocol
 * versions, end to end with real clients: tests/integration/test_tls.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "server.h"
#include "tls.h"

struct pem {
	char *cert, *key;
};

/* A self-signed P-256 certificate for CN=cn, valid for a day. */
static struct pem make_pem(const char *cn)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	assert_non_null(k);
	assert_non_null(x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, n);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_X509(cb, x), 1);
	assert_int_equal(PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL), 1);
	struct pem p;
	char *data;
	long len = BIO_get_mem_data(cb, &data);
	p.cert = strndup(data, (size_t)len);
	len = BIO_get_mem_data(kb, &data);
	p.key = strndup(data, (size_t)len);
	BIO_free(cb);
	BIO_free(kb);
	X509_free(x);
	EVP_PKEY_free(k);
	return p;
}

static void free_pem(struct pem *p)
{
	free(p->cert);
	free(p->key);
}

struct fixture {
	struct server srv; /* tls.c uses its loop and metrics only on connections */
	struct tls_server *ts;
	struct pem one, two;
};

static int setup(void **state)
{
	struct berth_err err;
	if (tls_global_init(&err) < 0)
		return -1;
	struct fixture *f = calloc(1, sizeof(*f));
	f->ts = tls_server_new(&f->srv);
	f->one = make_pem("berth one");
	f->two = make_pem("berth two");
	*state = f;
	return f->ts ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	tls_server_free(f->ts);
	free_pem(&f->one);
	free_pem(&f->two);
	free(f);
	return 0;
}

static int set(struct fixture *f, const char *cert, const char *key, struct berth_err *err)
{
	return tls_server_set_pem(f->ts, cert, strlen(cert), key, strlen(key), err);
}

static void pem_checks(void **state)
{
	struct fixture *f = *state;
	struct berth_err err;
	assert_false(tls_server_has_cert(f->ts));
	assert_int_equal(set(f, "not a certificate", f->one.key, &err), -1);
	assert_non_null(strstr(err.msg, "the certificate is not a PEM X.509 certificate"));
	assert_int_equal(set(f, f->one.cert, "not a key", &err), -1);
	assert_non_null(strstr(err.msg, "the key is not an unencrypted PEM private key"));
	assert_int_equal(set(f, f->one.cert, f->two.key, &err), -1);
	assert_non_null(strstr(err.msg, "the key does not match the certificate"));
	assert_false(tls_server_has_cert(f->ts)); /* nothing half-installed */
	assert_int_equal(set(f, f->one.cert, f->one.key, &err), 0);
	assert_true(tls_server_has_cert(f->ts));
	/* a bad pair later leaves the good one in place */
	assert_int_equal(set(f, f->two.cert, f->one.key, &err), -1);
	assert_true(tls_server_has_cert(f->ts));
}

static char *greeting(const char *cert, const char *key)
{
	yajl_gen g = json_gen_new();
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "op", "tls");
	if (cert)
		json_gen_kv_str(g, "cert", cert);
	if (key)
		json_gen_kv_str(g, "key", key);
	yajl_gen_map_close(g);
	struct berth_buf out = BERTH_BUF_INIT;
	assert_int_equal(json_gen_finish(g, &out), 0);
	return buf_steal(&out);
}

static void route_events(void **state)
{
	struct fixture *f = *state;
	/* not ours: left to the next handler */
	char other[] = "{\"op\":\"mme_evicted\",\"endpoint\":\"e\",\"model\":\"m\"}";
	assert_false(tls_server_route_event(f->ts, other, strlen(other)));
	char table[] = "{\"generation\":1,\"endpoints\":[]}";
	assert_false(tls_server_route_event(f->ts, table, strlen(table)));
	/* ours, but incomplete or bad: taken, logged, nothing installed */
	char *doc = greeting(f->one.cert, NULL);
	assert_true(tls_server_route_event(f->ts, doc, strlen(doc)));
	assert_false(tls_server_has_cert(f->ts));
	free(doc);
	doc = greeting(f->one.cert, f->two.key);
	assert_true(tls_server_route_event(f->ts, doc, strlen(doc)));
	assert_false(tls_server_has_cert(f->ts));
	free(doc);
	doc = greeting(f->one.cert, f->one.key);
	size_t len = strlen(doc);
	assert_true(tls_server_route_event(f->ts, doc, len));
	assert_true(tls_server_has_cert(f->ts));
	for (size_t i = 0; i < len; i++) /* the private key does not stay in the watch buffer */
		assert_int_equal(doc[i], 0);
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(pem_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(route_events, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
