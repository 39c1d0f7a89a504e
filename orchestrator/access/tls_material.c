/* tls_material.c — see tls_material.h. */
#include "tls_material.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "openssl_err.h"

struct tls_material {
	char *cert_path, *key_path;
	pthread_mutex_t mu;
	struct berth_buf cert, key; /* PEM text, guarded by mu */
};

static void buf_wipe(struct berth_buf *b)
{
	if (b->data != NULL)
		OPENSSL_cleanse(b->data, b->cap);
	buf_free(b);
}

static void print_time(const ASN1_TIME *t, char *out, size_t len)
{
	BIO *m = BIO_new(BIO_s_mem());
	char *p = NULL;
	long n = 0;
	if (m != NULL && ASN1_TIME_print(m, t) == 1)
		n = BIO_get_mem_data(m, &p);
	snprintf(out, len, "%.*s", (int)(n > 0 ? n : 1), n > 0 ? p : "?");
	BIO_free(m);
}

/* Parses and matches the pair; warns about dates. */
static int check_pair(const struct tls_material *m, const struct berth_buf *cert, const struct berth_buf *key,
		      struct berth_err *err)
{
	char why[256];
	int r = -1;
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	BIO *cb = BIO_new_mem_buf(cert->data ? cert->data : "", (int)cert->len);
	BIO *kb = BIO_new_mem_buf(key->data ? key->data : "", (int)key->len);
	if (cb == NULL || kb == NULL) {
		berth_err_set(err, ENOMEM, "checking the TLS certificate");
		goto out;
	}
	x = PEM_read_bio_X509(cb, NULL, openssl_no_passphrase, NULL);
	if (x == NULL) {
		berth_err_set(err, 0, "--tls-cert %s is not a PEM certificate (%s): give the server certificate, then "
				      "its chain, each as -----BEGIN CERTIFICATE-----",
			      m->cert_path, openssl_last_error(why, sizeof(why), "no PEM data"));
		goto out;
	}
	for (X509 *ca; (ca = PEM_read_bio_X509(cb, NULL, openssl_no_passphrase, NULL)) != NULL;)
		X509_free(ca);
	ERR_clear_error(); /* the end of the chain */
	k = PEM_read_bio_PrivateKey(kb, NULL, openssl_no_passphrase, NULL);
	if (k == NULL) {
		berth_err_set(err, 0, "--tls-key %s is not an unencrypted PEM private key (%s): give the key of the "
				      "certificate without a passphrase (openssl pkey -in KEY -out KEY.pem)",
			      m->key_path, openssl_last_error(why, sizeof(why), "no PEM data"));
		goto out;
	}
	if (X509_check_private_key(x, k) != 1) {
		ERR_clear_error();
		berth_err_set(err, 0, "--tls-key %s is not the private key of the certificate in --tls-cert %s: give "
				      "the key the certificate was issued for",
			      m->key_path, m->cert_path);
		goto out;
	}
	char from[64], until[64];
	print_time(X509_get0_notBefore(x), from, sizeof(from));
	print_time(X509_get0_notAfter(x), until, sizeof(until));
	if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
		log_warn("the certificate in --tls-cert %s has expired: valid from %s until %s; clients will refuse it "
			 "until it is renewed (replace the files and send berthd SIGHUP)",
			 m->cert_path, from, until);
	else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0)
		log_warn("the certificate in --tls-cert %s is not valid yet: valid from %s until %s; clients will "
			 "refuse it until then (is this host's clock right?)",
			 m->cert_path, from, until);
	r = 0;
out:
	X509_free(x);
	EVP_PKEY_free(k);
	BIO_free(cb);
	BIO_free(kb);
	return r;
}

/* Reads and checks the pair into cert/key (wiped on failure). */
static int read_pair(const struct tls_material *m, struct berth_buf *cert, struct berth_buf *key,
		     struct berth_err *err)
{
	if (fs_read_file(m->cert_path, cert, TLS_MATERIAL_MAX_BYTES, err) < 0) {
		berth_err_prefix(err, "--tls-cert %s", m->cert_path);
		goto fail;
	}
	if (fs_read_file(m->key_path, key, TLS_MATERIAL_MAX_BYTES, err) < 0) {
		berth_err_prefix(err, "--tls-key %s", m->key_path);
		goto fail;
	}
	if (cert->len > INT_MAX || key->len > INT_MAX || check_pair(m, cert, key, err) < 0)
		goto fail;
	return 0;
fail:
	buf_wipe(cert);
	buf_wipe(key);
	return -1;
}

struct tls_material *tls_material_load(const char *cert_path, const char *key_path, struct berth_err *err)
{
	struct tls_material *m = calloc(1, sizeof(*m));
	if (m == NULL || (m->cert_path = strdup(cert_path)) == NULL || (m->key_path = strdup(key_path)) == NULL) {
		berth_err_set(err, ENOMEM, "TLS material");
		if (m != NULL)
			free(m->cert_path);
		free(m);
		return NULL;
	}
	pthread_mutex_init(&m->mu, NULL);
	if (read_pair(m, &m->cert, &m->key, err) < 0) {
		tls_material_free(m);
		return NULL;
	}
	return m;
}

int tls_material_reload(struct tls_material *m, struct berth_err *err)
{
	struct berth_buf cert = BERTH_BUF_INIT, key = BERTH_BUF_INIT;
	if (read_pair(m, &cert, &key, err) < 0)
		return -1;
	pthread_mutex_lock(&m->mu);
	struct berth_buf old_cert = m->cert, old_key = m->key;
	m->cert = cert;
	m->key = key;
	pthread_mutex_unlock(&m->mu);
	buf_wipe(&old_cert);
	buf_wipe(&old_key);
	return 0;
}

int tls_material_render(void *data, struct berth_buf *out)
{
	struct tls_material *m = data;
	yajl_gen g = json_gen_new();
	if (g == NULL)
		return -1;
	pthread_mutex_lock(&m->mu);
	int r = yajl_gen_map_open(g) != yajl_gen_status_ok;
	r |= json_gen_kv_str(g, "op", "tls");
	r |= json_gen_str(g, "cert");
	r |= json_gen_strn(g, m->cert.data ? m->cert.data : "", m->cert.len);
	r |= json_gen_str(g, "key");
	r |= json_gen_strn(g, m->key.data ? m->key.data : "", m->key.len);
	pthread_mutex_unlock(&m->mu);
	r |= yajl_gen_map_close(g) != yajl_gen_status_ok;
	if (r) {
		yajl_gen_free(g);
		return -1;
	}
	return json_gen_finish(g, out);
}

void tls_material_free(struct tls_material *m)
{
	if (m == NULL)
		return;
	buf_wipe(&m->cert);
	buf_wipe(&m->key);
	pthread_mutex_destroy(&m->mu);
	free(m->cert_path);
	free(m->key_path);
	free(m);
}
