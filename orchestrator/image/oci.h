/* oci.h — OCI image layouts (`oci:/path/to/layout[:tag]`, what `umoci` and
 * `skopeo copy` write: oci-layout, index.json, blobs/sha256/…).
 *
 * oci_check is the cheap CreateModel-time test (layout exists, index.json
 * parses, the tag exists). oci_resolve follows tag → manifest (through one
 * image index, picking linux/amd64) → config + layers, verifies the digest
 * and size of every blob it reads against its descriptor, and unpacks the
 * layers in order (layer.h) into the content-addressed cache
 * STATE/images/sha256-<manifest digest>/rootfs.
 *
 * Cache: one unpack per manifest digest, whoever asks (threads or
 * processes): the first takes STATE/images/sha256-D.lock (flock), unpacks
 * into STATE/images/sha256-D.partial and renames it into place only when
 * every layer applied and matched its digest; the others wait on the lock
 * and find the finished entry. A failure removes the partial tree, so the
 * cache never holds a half-unpacked image. The lock file is removed by
 * whoever holds it when done (a waiter re-checks the inode it locked). */
#ifndef BERTH_OCI_H
#define BERTH_OCI_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "host_paths.h"
#include "layer.h"
#include "resources.h"

#define OCI_PREFIX "oci:"
#define OCI_DEFAULT_TAG "latest"
#define OCI_REF_NAME "org.opencontainers.image.ref.name"

struct oci_descriptor {
	char *media_type;      /* may be NULL */
	char digest[72];       /* "sha256:" + 64 lower-case hex */
	long long size;
};

struct oci_manifest {
	struct oci_descriptor config;
	struct oci_descriptor *layers;
	size_t n_layers;
};

/* The image config fields berth honours (Docker's meaning). */
struct oci_image_config {
	char **entrypoint;     /* NULL-terminated; NULL when absent */
	size_t n_entrypoint;
	char **cmd;            /* kept for the record: SageMaker replaces it with "serve" */
	size_t n_cmd;
	struct kv *env;        /* "K=V" split at the first '=' */
	size_t n_env;
	char *working_dir;     /* NULL when absent */
	char *user;            /* NULL when absent */
	struct kv *labels;
	size_t n_labels;
};

bool oci_is_ref(const char *image);
/* "oci:/abs/path[:tag]" → layout and tag (caller frees both). */
int oci_ref_parse(const char *image, char **layout, char **tag, struct berth_err *err);

/* index.json: the descriptor annotated with ref.name == tag. When the tag is
 * missing the message lists the tags there are. */
int oci_index_find(const char *text, size_t len, const char *tag, struct oci_descriptor *out,
		   struct berth_err *err);
/* An image index (manifest list): the linux/amd64 entry, else the first. */
int oci_index_pick_platform(const char *text, size_t len, struct oci_descriptor *out, struct berth_err *err);
/* True when a manifest document is really an image index. */
bool oci_doc_is_index(const char *text, size_t len);
int oci_manifest_parse(const char *text, size_t len, struct oci_manifest *out, struct berth_err *err);
int oci_config_parse(const char *text, size_t len, struct oci_image_config *out, struct berth_err *err);
/* Value of a label, NULL when absent. */
const char *oci_config_label(const struct oci_image_config *c, const char *key);

void oci_descriptor_free(struct oci_descriptor *d);
void oci_manifest_free(struct oci_manifest *m);
void oci_image_config_free(struct oci_image_config *c);

/* Reads blobs/sha256/HEX of layout_fd (bounded by max and the descriptor)
 * into out and checks its sha256 and size against d. */
int oci_blob_read(int layout_fd, const struct oci_descriptor *d, size_t max, struct berth_buf *out,
		  struct berth_err *err);

/* CreateModel-time check; messages are for the API user. The layout must
 * lie under one of roots (host_paths.h), else the image roots message. */
int oci_check(const struct host_roots *roots, const char *image, struct berth_err *err);
/* Unpacks (once) and returns the cached rootfs path and the image config.
 * limits: max_bytes / max_entries of all layers together (layer.h; NULL:
 * no bound). */
int oci_resolve(const char *state_dir, const struct host_roots *roots, const struct layer_budget *limits,
		const char *image, char **rootfs, struct oci_image_config *config, struct berth_err *err);

/* Locks a cache entry's lock file (flock, exclusive), making sure the file
 * locked is still the one at that path (a previous holder removes it when
 * done). Returns the descriptor. */
int oci_cache_lock(const char *lock_path, struct berth_err *err);

#endif
