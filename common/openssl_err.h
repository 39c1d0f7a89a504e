/* openssl_err.h — the two things every OpenSSL caller of berth needs the
 * same way (berthd's tls_material.c, the router's tls.c). */
#ifndef BERTH_OPENSSL_ERR_H
#define BERTH_OPENSSL_ERR_H

#include <stddef.h>

/* A pem_password_cb that refuses: an encrypted key has no one to ask for
 * its passphrase. */
int openssl_no_passphrase(char *buf, int size, int rwflag, void *u);
/* OpenSSL's last queued error as text into out (none_text when the queue
 * is empty), then the queue cleared. Returns out. */
const char *openssl_last_error(char *out, size_t len, const char *none_text);

#endif
