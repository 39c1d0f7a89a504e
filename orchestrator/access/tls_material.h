/* tls_material.h — the router's certificate and key (berthd's
 * --tls-cert / --tls-key).
 *
 * berthd, root, reads both PEM files; berth-router runs as an
 * unprivileged user and cannot. Both are checked with OpenSSL where they
 * are read: the certificate file holds a PEM X.509 certificate (the leaf,
 * then its chain), the key file an unencrypted PEM private key, and the
 * key is the certificate's. A certificate outside its validity dates is
 * logged as a warning naming them (clients will refuse it), not refused.
 *
 * The router gets them as a watch greeting (runtime.h) rendered by
 * tls_material_render: {"op":"tls","cert":"PEM…","key":"PEM…"}, and again
 * after each successful tls_material_reload (SIGHUP). A reload that fails
 * keeps what was loaded before. Thread-safe: the render runs on the
 * control server's threads, the reload on the main thread. */
#ifndef BERTH_TLS_MATERIAL_H
#define BERTH_TLS_MATERIAL_H

#include "buf.h"
#include "err.h"

#define TLS_MATERIAL_MAX_BYTES (1u << 20) /* each file */

struct tls_material;

/* Reads and checks both files (paths copied). NULL with err saying which
 * file and what is wrong. */
struct tls_material *tls_material_load(const char *cert_path, const char *key_path, struct berth_err *err);
/* Reads both files again; replaces the pair only when the new one passes
 * every check. 0, or -1 with err (the old pair stays). */
int tls_material_reload(struct tls_material *m, struct berth_err *err);
/* A runtime_greeting_fn: the greeting document (data is the struct
 * tls_material). 0, or -1 on ENOMEM. */
int tls_material_render(void *data, struct berth_buf *out);
/* Clears the key from memory and frees. NULL is fine. */
void tls_material_free(struct tls_material *m);

#endif
