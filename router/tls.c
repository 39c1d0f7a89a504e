/* tls.c — see tls.h. */
#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "openssl_err.h"
#include "server.h"

#define TLS_STAGE_BYTES 16384      /* one full record: a head and the start of its body */
#define TLS_READ_BUFFER (32u << 10) /* OpenSSL's read-ahead buffer per connection */
#define TLS_REFUSAL_LOG_NS 1000000000ull

struct tls_server {
	struct server *srv;
	SSL_CTX *ctx;          /* NULL until berthd sends a certificate */
	BIO_METHOD *bio_method;
	tls_ready_cb ready;
	uint64_t refusal_logged_ns; /* last "no certificate yet" line */
	uint64_t refusals_unlogged;
};

struct tls_conn {
	SSL *ssl;
	int fd;
	char *prefix;          /* bytes the HTTP/1.1 front read before it saw TLS */
	size_t prefix_len, prefix_off;
	bool failed;           /* a fatal error: no close_notify */
};

struct tls_handshake {
	struct client_conn link;
	struct tls_server *ts;
	int fd;
	struct tls_conn *t;
	struct loop_watch watch;
	struct loop_timer timer;
	struct loop_defer free_defer;
	bool closed;
};

/* ---- the socket BIO: the prefix first, then the fd ----------------------- */

static int bio_sock_read(BIO *b, char *out, int len)
{
	struct tls_conn *t = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	if (t->prefix_off < t->prefix_len) {
		size_t n = t->prefix_len - t->prefix_off;
		if (n > (size_t)len)
			n = (size_t)len;
		memcpy(out, t->prefix + t->prefix_off, n);
		t->prefix_off += n;
		if (t->prefix_off == t->prefix_len) {
			free(t->prefix);
			t->prefix = NULL;
			t->prefix_len = t->prefix_off = 0;
		}
		return (int)n;
	}
	ssize_t n;
	do
		n = read(t->fd, out, (size_t)len);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		BIO_set_retry_read(b);
	return (int)n;
}

static int bio_sock_write(BIO *b, const char *in, int len)
{
	struct tls_conn *t = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	ssize_t n;
	do
		n = write(t->fd, in, (size_t)len);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		BIO_set_retry_write(b);
	return (int)n;
}

static long bio_sock_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_sock_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

/* ---- contexts ------------------------------------------------------------ */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
		       unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	static const unsigned char ours[] = "\x02h2\x08http/1.1";
	unsigned char *chosen = NULL;
	if (SSL_select_next_proto(&chosen, outlen, ours, sizeof(ours) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK; /* none of ours: HTTP/1.1 without ALPN */
	*out = chosen;
	return SSL_TLSEXT_ERR_OK;
}

static int openssl_error(struct berth_err *err, const char *what)
{
	char text[256];
	openssl_last_error(text, sizeof(text), "");
	return berth_err_set(err, 0, "%s%s%s", what, text[0] ? ": " : "", text);
}

int tls_global_init(struct berth_err *err)
{
	if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL) != 1)
		return openssl_error(err, "initialising OpenSSL");
	/* Fetch what a context and a PEM key need now, while files can be
	 * read: after router_confine the providers' modules are out of reach. */
	SSL_CTX *warm = SSL_CTX_new(TLS_server_method());
	if (warm == NULL)
		return openssl_error(err, "initialising OpenSSL");
	SSL_CTX_free(warm);
	return 0;
}

static SSL_CTX *build_ctx(const char *cert, size_t cert_len, const char *key, size_t key_len, struct berth_err *err)
{
	if (cert_len > INT_MAX || key_len > INT_MAX) {
		berth_err_set(err, 0, "the certificate or key is too large");
		return NULL;
	}
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	BIO *cb = BIO_new_mem_buf(cert, (int)cert_len);
	BIO *kb = BIO_new_mem_buf(key, (int)key_len);
	X509 *leaf = NULL;
	EVP_PKEY *pkey = NULL;
	if (ctx == NULL || cb == NULL || kb == NULL) {
		openssl_error(err, "creating the TLS context");
		goto fail;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* idle connections give their record buffers back: 4096 of them would
	 * otherwise hold about 200 MiB (measured: no throughput cost) */
	SSL_CTX_set_mode(ctx,
			 SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_read_ahead(ctx, 1); /* a record header and its body in one read */
	SSL_CTX_set_default_read_buffer_len(ctx, TLS_READ_BUFFER);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	leaf = PEM_read_bio_X509_AUX(cb, NULL, openssl_no_passphrase, NULL);
	if (leaf == NULL || SSL_CTX_use_certificate(ctx, leaf) != 1) {
		openssl_error(err, "the certificate is not a PEM X.509 certificate");
		goto fail;
	}
	for (X509 *ca; (ca = PEM_read_bio_X509(cb, NULL, openssl_no_passphrase, NULL)) != NULL;)
		if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
			X509_free(ca);
			openssl_error(err, "adding a chain certificate");
			goto fail;
		}
	ERR_clear_error(); /* the end of the chain reads as "no start line" */
	pkey = PEM_read_bio_PrivateKey(kb, NULL, openssl_no_passphrase, NULL);
	if (pkey == NULL) {
		openssl_error(err, "the key is not an unencrypted PEM private key");
		goto fail;
	}
	/* OpenSSL checks the pair here already (key values mismatch) */
	if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		openssl_error(err, "the key does not match the certificate");
		goto fail;
	}
	X509_free(leaf);
	EVP_PKEY_free(pkey);
	BIO_free(cb);
	BIO_free(kb);
	return ctx;
fail:
	X509_free(leaf);
	EVP_PKEY_free(pkey);
	BIO_free(cb);
	BIO_free(kb);
	SSL_CTX_free(ctx);
	return NULL;
}

struct tls_server *tls_server_new(struct server *srv)
{
	struct tls_server *ts = calloc(1, sizeof(*ts));
	if (ts == NULL)
		return NULL;
	ts->srv = srv;
	ts->bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "berth socket");
	if (ts->bio_method == NULL || BIO_meth_set_read(ts->bio_method, bio_sock_read) != 1 ||
	    BIO_meth_set_write(ts->bio_method, bio_sock_write) != 1 ||
	    BIO_meth_set_ctrl(ts->bio_method, bio_sock_ctrl) != 1 ||
	    BIO_meth_set_create(ts->bio_method, bio_sock_create) != 1) {
		tls_server_free(ts);
		return NULL;
	}
	return ts;
}

void tls_server_free(struct tls_server *ts)
{
	if (ts == NULL)
		return;
	SSL_CTX_free(ts->ctx);
	BIO_meth_free(ts->bio_method);
	free(ts);
}

void tls_server_set_ready(struct tls_server *ts, tls_ready_cb ready)
{
	ts->ready = ready;
}

bool tls_server_has_cert(const struct tls_server *ts)
{
	return ts->ctx != NULL;
}

/* "CN=…, valid until …" of the context's certificate, for the log. */
static void describe_cert(SSL_CTX *ctx, char *out, size_t len)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);
	out[0] = '\0';
	BIO *m = BIO_new(BIO_s_mem());
	if (x == NULL || m == NULL) {
		BIO_free(m);
		return;
	}
	X509_NAME_print_ex(m, X509_get_subject_name(x), 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
	BIO_puts(m, ", valid until ");
	ASN1_TIME_print(m, X509_get0_notAfter(x));
	char *p;
	long n = BIO_get_mem_data(m, &p);
	snprintf(out, len, "%.*s", (int)(n > 0 ? n : 0), p);
	BIO_free(m);
}

int tls_server_set_pem(struct tls_server *ts, const char *cert, size_t cert_len, const char *key, size_t key_len,
		       struct berth_err *err)
{
	SSL_CTX *ctx = build_ctx(cert, cert_len, key, key_len, err);
	if (ctx == NULL)
		return -1;
	SSL_CTX_free(ts->ctx); /* connections that hold it keep it */
	ts->ctx = ctx;
	char what[256];
	describe_cert(ctx, what, sizeof(what));
	log_info("TLS certificate in use: %s", what);
	return 0;
}

bool tls_server_route_event(struct tls_server *ts, char *line, size_t len)
{
	static const char tag[] = "{\"op\":\"tls\"";
	if (len < sizeof(tag) - 1 || memcmp(line, tag, sizeof(tag) - 1) != 0)
		return false;
	struct berth_err err;
	yajl_val v = json_parse(line, len, &err);
	const char *op = v ? json_get_string(v, "op") : NULL;
	if (op == NULL || strcmp(op, "tls") != 0) {
		if (v)
			yajl_tree_free(v);
		return false;
	}
	const char *cert = json_get_string(v, "cert"), *key = json_get_string(v, "key");
	if (cert == NULL || key == NULL)
		log_error("berthd sent TLS material without \"cert\" and \"key\"; keeping the previous certificate");
	else if (tls_server_set_pem(ts, cert, strlen(cert), key, strlen(key), &err) < 0)
		log_error("the TLS certificate berthd sent cannot be used: %s; keeping the previous one", err.msg);
	if (key != NULL)
		OPENSSL_cleanse((char *)key, strlen(key));
	yajl_tree_free(v);
	OPENSSL_cleanse(line, len); /* the watch buffer held the key too */
	return true;
}

/* ---- handshakes ---------------------------------------------------------- */

static struct tls_conn *tls_conn_new(struct tls_server *ts, int fd, const char *data, size_t len)
{
	struct tls_conn *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->fd = fd;
	if (len > 0) {
		t->prefix = malloc(len);
		if (t->prefix == NULL) {
			free(t);
			return NULL;
		}
		memcpy(t->prefix, data, len);
		t->prefix_len = len;
	}
	BIO *bio = BIO_new(ts->bio_method);
	t->ssl = SSL_new(ts->ctx);
	if (bio == NULL || t->ssl == NULL) {
		BIO_free(bio);
		tls_conn_free(t);
		return NULL;
	}
	BIO_set_data(bio, t);
	SSL_set_bio(t->ssl, bio, bio);
	SSL_set_accept_state(t->ssl);
	return t;
}

void tls_conn_free(struct tls_conn *t)
{
	if (t == NULL)
		return;
	if (t->ssl != NULL) {
		if (!t->failed && SSL_is_init_finished(t->ssl))
			SSL_shutdown(t->ssl); /* close_notify, if the socket takes it now */
		SSL_free(t->ssl);
	}
	ERR_clear_error();
	free(t->prefix);
	free(t);
}

static void hs_close(struct tls_handshake *h)
{
	if (h->closed)
		return;
	h->closed = true;
	struct server *srv = h->ts->srv;
	loop_watch_del(srv->loop, &h->watch);
	loop_timer_cancel(srv->loop, &h->timer);
	tls_conn_free(h->t);
	h->t = NULL;
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	server_conn_unlink(srv, &h->link);
	srv->metrics.client_connections--;
	loop_defer(srv->loop, &h->free_defer);
}

static void hs_close_link(struct client_conn *link) { hs_close(container_of(link, struct tls_handshake, link)); }

static void hs_free_deferred(struct loop_defer *d) { free(container_of(d, struct tls_handshake, free_defer)); }

static void hs_done(struct tls_handshake *h)
{
	struct server *srv = h->ts->srv;
	const unsigned char *proto = NULL;
	unsigned int plen = 0;
	SSL_get0_alpn_selected(h->t->ssl, &proto, &plen);
	bool h2 = plen == 2 && memcmp(proto, "h2", 2) == 0;
	int fd = h->fd;
	struct tls_conn *t = h->t;
	h->fd = -1;
	h->t = NULL;
	srv->metrics.tls_handshakes++;
	if (srv->debug)
		log_debug("TLS handshake done: %s, %s, ALPN %.*s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl),
			  (int)plen, plen ? (const char *)proto : "(none)");
	hs_close(h);
	if (h->ts->ready == NULL) {
		tls_conn_free(t);
		close(fd);
		return;
	}
	h->ts->ready(srv, fd, t, h2);
}

static void hs_step(struct tls_handshake *h)
{
	ERR_clear_error();
	int r = SSL_do_handshake(h->t->ssl);
	if (r == 1) {
		hs_done(h);
		return;
	}
	struct server *srv = h->ts->srv;
	int e = SSL_get_error(h->t->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		loop_watch_mod(srv->loop, &h->watch, EPOLLIN | EPOLLRDHUP);
		return;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		loop_watch_mod(srv->loop, &h->watch, EPOLLOUT);
		return;
	}
	srv->metrics.tls_handshake_failures++;
	if (srv->debug) {
		char text[256] = "connection closed";
		unsigned long code = ERR_peek_last_error();
		if (code != 0)
			ERR_error_string_n(code, text, sizeof(text));
		log_debug("TLS handshake failed: %s", text);
	}
	h->t->failed = true; /* OpenSSL sent its alert, if any */
	hs_close(h);
}

static void hs_on_event(struct loop_watch *w, uint32_t events)
{
	(void)events;
	hs_step(container_of(w, struct tls_handshake, watch));
}

static void hs_on_timer(struct loop_timer *tm)
{
	struct tls_handshake *h = container_of(tm, struct tls_handshake, timer);
	struct server *srv = h->ts->srv;
	srv->metrics.tls_handshake_failures++;
	srv->metrics.request_timeouts++;
	if (srv->debug)
		log_debug("closing a TLS client whose handshake did not finish within %u ms", ROUTER_HEADER_TIMEOUT_MS);
	h->t->failed = true;
	hs_close(h);
}

static void refuse_without_cert(struct tls_server *ts, int fd)
{
	struct server *srv = ts->srv;
	close(fd);
	srv->metrics.tls_handshake_failures++;
	uint64_t now = loop_now_ns(srv->loop);
	if (ts->refusal_logged_ns != 0 && now - ts->refusal_logged_ns < TLS_REFUSAL_LOG_NS) {
		ts->refusals_unlogged++;
		return;
	}
	log_warn("closed a TLS client: berthd has not sent the router a certificate yet (berthd --tls-cert and "
		 "--tls-key)%s",
		 ts->refusals_unlogged ? "; more were closed since the last such line" : "");
	ts->refusal_logged_ns = now;
	ts->refusals_unlogged = 0;
}

void tls_server_accept(struct tls_server *ts, int fd, const char *data, size_t len)
{
	struct server *srv = ts->srv;
	if (ts->ctx == NULL) {
		refuse_without_cert(ts, fd);
		return;
	}
	struct tls_handshake *h = calloc(1, sizeof(*h));
	struct tls_conn *t = h ? tls_conn_new(ts, fd, data, len) : NULL;
	if (t == NULL) {
		log_warn("closed a TLS client: out of memory");
		free(h);
		close(fd);
		return;
	}
	h->ts = ts;
	h->fd = fd;
	h->t = t;
	h->link.close = hs_close_link;
	h->link.drain = hs_close_link; /* nothing asked yet: nothing to finish */
	loop_watch_init(&h->watch, hs_on_event);
	loop_timer_init(&h->timer, hs_on_timer);
	loop_defer_init(&h->free_defer, hs_free_deferred);
	struct berth_err err;
	if (loop_watch_add(srv->loop, &h->watch, fd, EPOLLIN | EPOLLRDHUP, &err) < 0) {
		log_error("%s", err.msg);
		tls_conn_free(t);
		close(fd);
		free(h);
		return;
	}
	server_conn_link(srv, &h->link);
	srv->metrics.client_connections++;
	loop_timer_arm_ms(srv->loop, &h->timer, ROUTER_HEADER_TIMEOUT_MS);
	hs_step(h); /* the ClientHello may be whole already */
}

/* ---- the transport ------------------------------------------------------- */

/* For an SSL_read / SSL_write that returned r <= 0: -1 with errno, or 0
 * (reading only: the peer's close_notify). A write never returns 0, which
 * its callers would take for progress and retry forever. */
static ssize_t io_result(struct tls_conn *t, int r, bool reading)
{
	int e = SSL_get_error(t->ssl, r);
	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		if (reading)
			return 0;
		errno = EPIPE;
		return -1;
	default:
		t->failed = true;
		ERR_clear_error();
		errno = EPIPE;
		return -1;
	}
}

ssize_t tls_conn_read(struct tls_conn *t, void *buf, size_t len)
{
	ERR_clear_error();
	int r = SSL_read(t->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	if (r > 0)
		return r;
	ssize_t n = io_result(t, r, true);
	if (n < 0 && errno == EPIPE)
		return 0; /* an EOF without close_notify ends the stream the same way */
	return n;
}

bool tls_conn_has_pending(const struct tls_conn *t)
{
	return SSL_has_pending(t->ssl) == 1;
}

ssize_t tls_conn_write(struct tls_conn *t, const void *buf, size_t len)
{
	if (len == 0)
		return 0;
	ERR_clear_error();
	int r = SSL_write(t->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	return r > 0 ? r : io_result(t, r, false);
}

/* After a short write the caller retries from where it stopped, so the
 * staged bytes are the same again (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
 * lets them come from another buffer). */
ssize_t tls_conn_writev(struct tls_conn *t, const struct iovec *iov, int n)
{
	if (n <= 0)
		return 0;
	if (n == 1 || iov[0].iov_len >= TLS_STAGE_BYTES)
		return tls_conn_write(t, iov[0].iov_base, iov[0].iov_len);
	unsigned char stage[TLS_STAGE_BYTES];
	size_t k = 0;
	for (int i = 0; i < n && k < sizeof(stage); i++) {
		size_t c = iov[i].iov_len < sizeof(stage) - k ? iov[i].iov_len : sizeof(stage) - k;
		memcpy(stage + k, iov[i].iov_base, c);
		k += c;
	}
	return tls_conn_write(t, stage, k);
}
