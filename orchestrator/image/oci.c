/* oci.c — see oci.h. */
#include "oci.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fsutil.h"
#include "host_paths.h"
#include "json.h"
#include "layer.h"
#include "log.h"

#define INDEX_MAX_BYTES (4u << 20)
#define MANIFEST_MAX_BYTES (4u << 20)
#define CONFIG_MAX_BYTES (8u << 20)
#define MAX_LAYERS 512

bool oci_is_ref(const char *image)
{
	return image != NULL && strncmp(image, OCI_PREFIX, strlen(OCI_PREFIX)) == 0;
}

int oci_ref_parse(const char *image, char **layout, char **tag, struct berth_err *err)
{
	*layout = *tag = NULL;
	const char *p = image + strlen(OCI_PREFIX);
	if (p[0] != '/')
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				      "Image \"%s\": an OCI layout is given as oci:/absolute/path/to/layout[:tag].",
				      image);
	const char *slash = strrchr(p, '/');
	const char *colon = strrchr(p, ':');
	size_t layout_len = colon && colon > slash ? (size_t)(colon - p) : strlen(p);
	const char *t = colon && colon > slash ? colon + 1 : OCI_DEFAULT_TAG;
	if (*t == '\0')
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "Image \"%s\" has an empty tag after ':'.", image);
	while (layout_len > 1 && p[layout_len - 1] == '/')
		layout_len--;
	*layout = strndup(p, layout_len);
	*tag = strdup(t);
	if (*layout == NULL || *tag == NULL) {
		free(*layout);
		free(*tag);
		*layout = *tag = NULL;
		return berth_err_set(err, ENOMEM, "image");
	}
	return 0;
}

/* ---- documents ------------------------------------------------------------ */

static int parse_descriptor(yajl_val v, struct oci_descriptor *d, const char *what, struct berth_err *err)
{
	memset(d, 0, sizeof(*d));
	const char *digest = json_get_string(v, "digest");
	long long size;
	if (digest == NULL || !json_get_int64(v, "size", &size) || size < 0)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "%s has no valid digest and size", what);
	if (strncmp(digest, "sha256:", 7) != 0)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				      "%s has digest \"%.80s\"; berth verifies sha256 digests only", what, digest);
	size_t n = strlen(digest + 7);
	if (n != 64 || strspn(digest + 7, "0123456789abcdef") != 64)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "%s has a malformed digest \"%.80s\"", what,
				      digest);
	snprintf(d->digest, sizeof(d->digest), "%s", digest);
	d->size = size;
	const char *mt = json_get_string(v, "mediaType");
	if (mt != NULL && (d->media_type = strdup(mt)) == NULL)
		return berth_err_set(err, ENOMEM, "%s", what);
	return 0;
}

void oci_descriptor_free(struct oci_descriptor *d)
{
	free(d->media_type);
	d->media_type = NULL;
}

static yajl_val manifests_of(yajl_val doc, struct berth_err *err)
{
	yajl_val m = json_get(doc, "manifests");
	if (m == NULL || !YAJL_IS_ARRAY(m)) {
		berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "it has no \"manifests\" array");
		return NULL;
	}
	return m;
}

int oci_index_find(const char *text, size_t len, const char *tag, struct oci_descriptor *out,
		   struct berth_err *err)
{
	yajl_val doc = json_parse(text, len, err);
	if (doc == NULL) {
		berth_err_blame_input(err);
		return berth_err_prefix(err, "index.json is not valid JSON");
	}
	int r = -1;
	yajl_val m = manifests_of(doc, err);
	if (m == NULL) {
		berth_err_prefix(err, "index.json is malformed");
		goto out;
	}
	struct berth_buf tags = BERTH_BUF_INIT;
	for (size_t i = 0; i < YAJL_GET_ARRAY(m)->len; i++) {
		yajl_val entry = YAJL_GET_ARRAY(m)->values[i];
		const char *name = json_get_string(json_get(entry, "annotations"), OCI_REF_NAME);
		if (name == NULL)
			continue;
		if (strcmp(name, tag) == 0) {
			r = parse_descriptor(entry, out, "the manifest descriptor in index.json", err);
			buf_free(&tags);
			goto out;
		}
		if (tags.len < 800)
			buf_printf(&tags, "%s%s", tags.len ? ", " : "", name);
	}
	if (tags.len == 0)
		berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
			       "there is no tag \"%s\" in it (index.json names no tags at all)", tag);
	else
		berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "there is no tag \"%s\" in it; its tags are: %s", tag,
			       tags.data);
	buf_free(&tags);
out:
	yajl_tree_free(doc);
	return r;
}

bool oci_doc_is_index(const char *text, size_t len)
{
	struct berth_err ignored;
	yajl_val doc = json_parse(text, len, &ignored);
	bool is = doc != NULL && json_get(doc, "manifests") != NULL && json_get(doc, "layers") == NULL;
	yajl_tree_free(doc);
	return is;
}

int oci_index_pick_platform(const char *text, size_t len, struct oci_descriptor *out, struct berth_err *err)
{
	yajl_val doc = json_parse(text, len, err);
	if (doc == NULL) {
		berth_err_blame_input(err);
		return berth_err_prefix(err, "the image index is not valid JSON");
	}
	int r = -1;
	yajl_val m = manifests_of(doc, err);
	if (m == NULL || YAJL_GET_ARRAY(m)->len == 0) {
		berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "the image index lists no manifests");
		goto out;
	}
	yajl_val pick = YAJL_GET_ARRAY(m)->values[0];
	for (size_t i = 0; i < YAJL_GET_ARRAY(m)->len; i++) {
		yajl_val platform = json_get(YAJL_GET_ARRAY(m)->values[i], "platform");
		const char *os = json_get_string(platform, "os"), *arch = json_get_string(platform, "architecture");
		if (os && arch && strcmp(os, "linux") == 0 && strcmp(arch, "amd64") == 0) {
			pick = YAJL_GET_ARRAY(m)->values[i];
			break;
		}
	}
	r = parse_descriptor(pick, out, "the manifest descriptor in the image index", err);
out:
	yajl_tree_free(doc);
	return r;
}

int oci_manifest_parse(const char *text, size_t len, struct oci_manifest *out, struct berth_err *err)
{
	memset(out, 0, sizeof(*out));
	yajl_val doc = json_parse(text, len, err);
	if (doc == NULL) {
		berth_err_blame_input(err);
		return berth_err_prefix(err, "the image manifest is not valid JSON");
	}
	int r = -1;
	yajl_val layers = json_get(doc, "layers");
	if (parse_descriptor(json_get(doc, "config"), &out->config, "the manifest's config", err) < 0)
		goto out;
	if (layers == NULL || !YAJL_IS_ARRAY(layers)) {
		berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "the image manifest has no \"layers\" array");
		goto out;
	}
	size_t n = YAJL_GET_ARRAY(layers)->len;
	if (n > MAX_LAYERS) {
		berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "the image has %zu layers; berth accepts at most %d", n,
			       MAX_LAYERS);
		goto out;
	}
	out->layers = calloc(n + 1, sizeof(*out->layers));
	if (out->layers == NULL) {
		berth_err_set(err, ENOMEM, "manifest");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char what[64];
		snprintf(what, sizeof(what), "layer %zu of the manifest", i + 1);
		if (parse_descriptor(YAJL_GET_ARRAY(layers)->values[i], &out->layers[i], what, err) < 0)
			goto out;
		out->n_layers++;
	}
	r = 0;
out:
	yajl_tree_free(doc);
	if (r < 0)
		oci_manifest_free(out);
	return r;
}

void oci_manifest_free(struct oci_manifest *m)
{
	oci_descriptor_free(&m->config);
	for (size_t i = 0; i < m->n_layers; i++)
		oci_descriptor_free(&m->layers[i]);
	free(m->layers);
	memset(m, 0, sizeof(*m));
}

static int string_array(yajl_val v, char ***out, size_t *n, const char *what, struct berth_err *err)
{
	if (v == NULL || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_ARRAY(v))
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "the image config's %s is not an array of strings",
				      what);
	size_t len = YAJL_GET_ARRAY(v)->len;
	*out = calloc(len + 1, sizeof(char *));
	if (*out == NULL)
		return berth_err_set(err, ENOMEM, "image config");
	for (size_t i = 0; i < len; i++) {
		const char *s = YAJL_GET_STRING(YAJL_GET_ARRAY(v)->values[i]);
		if (s == NULL)
			return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
					      "the image config's %s is not an array of strings", what);
		if (((*out)[i] = strdup(s)) == NULL)
			return berth_err_set(err, ENOMEM, "image config");
		(*n)++;
	}
	return 0;
}

int oci_config_parse(const char *text, size_t len, struct oci_image_config *out, struct berth_err *err)
{
	memset(out, 0, sizeof(*out));
	yajl_val doc = json_parse(text, len, err);
	if (doc == NULL) {
		berth_err_blame_input(err);
		return berth_err_prefix(err, "the image config is not valid JSON");
	}
	int r = -1;
	yajl_val c = json_get(doc, "config");
	if (c != NULL && !YAJL_IS_OBJECT(c) && !YAJL_IS_NULL(c)) {
		berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "the image config's \"config\" is not an object");
		goto out;
	}
	if (string_array(json_get(c, "Entrypoint"), &out->entrypoint, &out->n_entrypoint, "Entrypoint", err) < 0 ||
	    string_array(json_get(c, "Cmd"), &out->cmd, &out->n_cmd, "Cmd", err) < 0)
		goto out;
	char **env = NULL;
	size_t n_env = 0;
	if (string_array(json_get(c, "Env"), &env, &n_env, "Env", err) < 0) {
		for (size_t i = 0; i < n_env; i++)
			free(env[i]);
		free(env);
		goto out;
	}
	out->env = calloc(n_env + 1, sizeof(*out->env));
	for (size_t i = 0; i < n_env; i++) {
		char *eq = strchr(env[i], '=');
		if (out->env != NULL && eq != NULL && eq != env[i]) {
			out->env[out->n_env].key = strndup(env[i], (size_t)(eq - env[i]));
			out->env[out->n_env].value = strdup(eq + 1);
			out->n_env++;
		}
		free(env[i]);
	}
	free(env);
	if (out->env == NULL) {
		berth_err_set(err, ENOMEM, "image config");
		goto out;
	}
	const char *wd = json_get_string(c, "WorkingDir"), *user = json_get_string(c, "User");
	if ((wd && *wd && !(out->working_dir = strdup(wd))) || (user && *user && !(out->user = strdup(user)))) {
		berth_err_set(err, ENOMEM, "image config");
		goto out;
	}
	if (out->working_dir && out->working_dir[0] != '/') {
		berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
			       "the image config's WorkingDir \"%.200s\" is not an absolute path", out->working_dir);
		goto out;
	}
	yajl_val labels = json_get(c, "Labels");
	if (labels != NULL && YAJL_IS_OBJECT(labels)) {
		size_t n = YAJL_GET_OBJECT(labels)->len;
		out->labels = calloc(n + 1, sizeof(*out->labels));
		for (size_t i = 0; out->labels && i < n; i++) {
			const char *v = YAJL_GET_STRING(YAJL_GET_OBJECT(labels)->values[i]);
			if (v == NULL)
				continue;
			out->labels[out->n_labels].key = strdup(YAJL_GET_OBJECT(labels)->keys[i]);
			out->labels[out->n_labels].value = strdup(v);
			out->n_labels++;
		}
	}
	r = 0;
out:
	yajl_tree_free(doc);
	if (r < 0)
		oci_image_config_free(out);
	return r;
}

const char *oci_config_label(const struct oci_image_config *c, const char *key)
{
	for (size_t i = 0; i < c->n_labels; i++)
		if (c->labels[i].key && strcmp(c->labels[i].key, key) == 0)
			return c->labels[i].value;
	return NULL;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static void free_kv(struct kv *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].key);
		free(v[i].value);
	}
	free(v);
}

void oci_image_config_free(struct oci_image_config *c)
{
	free_strv(c->entrypoint, c->n_entrypoint);
	free_strv(c->cmd, c->n_cmd);
	free_kv(c->env, c->n_env);
	free_kv(c->labels, c->n_labels);
	free(c->working_dir);
	free(c->user);
	memset(c, 0, sizeof(*c));
}

/* ---- blobs ---------------------------------------------------------------- */

static int blob_open(int layout_fd, const struct oci_descriptor *d, struct berth_err *err)
{
	char rel[96];
	snprintf(rel, sizeof(rel), "blobs/sha256/%s", d->digest + 7);
	/* blobs are looked up inside the layout only: a link in it cannot make
	 * berthd read elsewhere */
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	int fd = (int)syscall(SYS_openat2, layout_fd, rel, &how, sizeof(how));
	if (fd < 0)
		return berth_err_setc(err, berth_err_input_class(errno), errno, "blob %s is missing from the layout",
				      d->digest);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "blob %s is not a regular file", d->digest);
	}
	return fd;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	for (unsigned int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int oci_blob_read(int layout_fd, const struct oci_descriptor *d, size_t max, struct berth_buf *out,
		  struct berth_err *err)
{
	if (d->size > (long long)max)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				      "blob %s is %lld bytes, more than the %zu berth reads", d->digest, d->size, max);
	_cleanup_close_ int fd = blob_open(layout_fd, d, err);
	if (fd < 0)
		return -1;
	size_t want = (size_t)d->size + 1; /* one more byte tells a longer blob */
	if (buf_reserve(out, want) < 0)
		return berth_err_set(err, ENOMEM, "blob %s", d->digest);
	size_t got = 0;
	while (got < want) {
		ssize_t n = read(fd, out->data + got, want - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return berth_err_set(err, errno, "cannot read blob %s", d->digest);
		if (n == 0)
			break;
		got += (size_t)n;
	}
	out->len = got;
	out->data[got < want ? got : want - 1] = '\0';
	if (got != (size_t)d->size)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				      "blob %s has %s bytes than its descriptor's size %lld", d->digest,
				      got > (size_t)d->size ? "more" : "fewer", d->size);
	char hex[65];
	sha256_hex(out->data, got, hex);
	if (strcmp(hex, d->digest + 7) != 0)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				      "blob %s does not match its digest (its content hashes to sha256:%s)", d->digest,
				      hex);
	return 0;
}

/* ---- the layout ----------------------------------------------------------- */

/* Reads NAME of the layout (a file directly in it, never through a link
 * leading out of it), at most max bytes. */
static int layout_read(int layout_fd, const char *name, size_t max, struct berth_buf *out, struct berth_err *err)
{
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	_cleanup_close_ int fd = (int)syscall(SYS_openat2, layout_fd, name, &how, sizeof(how));
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return berth_err_setc(err, berth_err_input_class(errno), errno, "cannot open %s", name);
	if (!S_ISREG(st.st_mode))
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "%s is not a regular file", name);
	if (st.st_size > (off_t)max)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, EFBIG, "%s is larger than %zu bytes", name, max);
	if (buf_reserve(out, (size_t)st.st_size + 1) < 0)
		return berth_err_set(err, ENOMEM, "%s", name);
	for (;;) {
		if (out->len >= max)
			return berth_err_setc(err, BERTH_ERR_VALIDATION, EFBIG, "%s is larger than %zu bytes", name, max);
		if (buf_reserve(out, 4096) < 0)
			return berth_err_set(err, ENOMEM, "%s", name);
		ssize_t n = read(fd, out->data + out->len, out->cap - out->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return berth_err_set(err, errno, "cannot read %s", name);
		if (n == 0)
			break;
		out->len += (size_t)n;
	}
	out->data[out->len] = '\0';
	return 0;
}

/* Opens the layout directory (under one of roots, never leaving it) and
 * finds the tag's descriptor. */
static int layout_open(const struct host_roots *roots, const char *image, const char *layout, const char *tag,
		       struct oci_descriptor *desc, struct berth_err *err)
{
	int fd = host_path_open(roots, layout, O_PATH | O_DIRECTORY, err);
	if (fd < 0 && err->errnum == EXDEV)
		return host_paths_refuse_image(roots, image, err);
	if (fd < 0 && berth_err_input_class(err->errnum) != BERTH_ERR_VALIDATION) /* EMFILE, ENOMEM: berth's own */
		return berth_err_set(err, err->errnum, "Image \"%s\": cannot open the OCI image layout %s", image,
				     layout);
	if (fd < 0)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "Image \"%s\": the OCI image layout %s %s.", image,
				      layout,
				      err->errnum == ENOENT    ? "does not exist"
				      : err->errnum == ENOTDIR ? "is not a directory"
							       : strerror(err->errnum));
	struct stat st;
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	int marker = (int)syscall(SYS_openat2, fd, "oci-layout", &how, sizeof(how));
	if (marker < 0 || fstat(marker, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (marker >= 0)
			close(marker);
		close(fd);
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				     "Image \"%s\": %s is not an OCI image layout (it has no oci-layout file).", image,
				     layout);
	}
	close(marker);
	struct berth_buf index = BERTH_BUF_INIT;
	if (layout_read(fd, "index.json", INDEX_MAX_BYTES, &index, err) < 0 ||
	    oci_index_find(index.data ? index.data : "", index.len, tag, desc, err) < 0) {
		buf_free(&index);
		close(fd);
		return berth_err_prefix(err, "Image \"%s\": OCI image layout %s", image, layout);
	}
	buf_free(&index);
	return fd;
}

int oci_check(const struct host_roots *roots, const char *image, struct berth_err *err)
{
	_cleanup_free_ char *layout = NULL;
	_cleanup_free_ char *tag = NULL;
	if (oci_ref_parse(image, &layout, &tag, err) < 0)
		return -1;
	struct oci_descriptor desc;
	int fd = layout_open(roots, image, layout, tag, &desc, err);
	if (fd < 0)
		return -1;
	close(fd);
	oci_descriptor_free(&desc);
	return 0;
}

int oci_cache_lock(const char *lock_path, struct berth_err *err)
{
	for (;;) {
		int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return berth_err_set(err, errno, "cannot open %s", lock_path);
		if (flock(fd, LOCK_EX) < 0) {
			int e = errno;
			close(fd);
			if (e == EINTR)
				continue;
			return berth_err_set(err, e, "cannot lock %s", lock_path);
		}
		struct stat held, now;
		if (fstat(fd, &held) == 0 && stat(lock_path, &now) == 0 && held.st_ino == now.st_ino &&
		    held.st_dev == now.st_dev)
			return fd;
		close(fd);
	}
}

static int unpack_layers(int layout_fd, const struct oci_manifest *m, const char *rootfs,
			 const struct layer_budget *limits, struct berth_err *err)
{
	struct layer_budget budget = { .max_bytes = limits ? limits->max_bytes : 0,
				       .max_entries = limits ? limits->max_entries : 0 };
	_cleanup_close_ int root = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return berth_err_set(err, errno, "cannot open %s", rootfs);
	for (size_t i = 0; i < m->n_layers; i++) {
		const struct oci_descriptor *d = &m->layers[i];
		_cleanup_close_ int fd = blob_open(layout_fd, d, err);
		struct layer_result res;
		if (fd < 0 || layer_apply(root, fd, (uint64_t)d->size, &budget, &res, err) < 0)
			return berth_err_prefix(err, "layer %zu (%s)", i + 1, d->digest);
		if (res.size != (uint64_t)d->size)
			return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
					      "layer %zu (%s) has %llu bytes, its descriptor says %lld", i + 1,
					      d->digest, (unsigned long long)res.size, d->size);
		if (strcmp(res.sha256, d->digest + 7) != 0)
			return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
					     "layer %zu (%s) does not match its digest (its content hashes to "
					     "sha256:%s); the image was not unpacked",
					     i + 1, d->digest, res.sha256);
	}
	return 0;
}

/* Unpacks the manifest's layers into STATE/images/sha256-HEX unless there. */
static int cache_fill(const char *state_dir, int layout_fd, const struct oci_descriptor *manifest_desc,
		      const struct oci_manifest *m, const struct layer_budget *limits, char **rootfs,
		      struct berth_err *err)
{
	const char *hex = manifest_desc->digest + 7;
	_cleanup_free_ char *images = fs_path("%s/images", state_dir);
	_cleanup_free_ char *entry = fs_path("%s/images/sha256-%s", state_dir, hex);
	_cleanup_free_ char *root = fs_path("%s/images/sha256-%s/rootfs", state_dir, hex);
	_cleanup_free_ char *partial = fs_path("%s/images/sha256-%s.partial", state_dir, hex);
	_cleanup_free_ char *partial_root = fs_path("%s/images/sha256-%s.partial/rootfs", state_dir, hex);
	_cleanup_free_ char *lock_path = fs_path("%s/images/sha256-%s.lock", state_dir, hex);
	if (!images || !entry || !root || !partial || !partial_root || !lock_path)
		return berth_err_set(err, ENOMEM, "image cache");
	struct stat st;
	if (stat(root, &st) == 0 && S_ISDIR(st.st_mode)) {
		*rootfs = berth_steal_ptr(&root);
		return 0;
	}
	if (fs_mkdir_p(images, 0700, err) < 0)
		return -1;
	_cleanup_close_ int lock = oci_cache_lock(lock_path, err);
	if (lock < 0)
		return -1;
	int r = 0;
	if (stat(root, &st) == 0 && S_ISDIR(st.st_mode))
		goto unlock; /* someone else unpacked it while we waited */
	struct berth_err ignored;
	fs_remove_tree(partial, &ignored); /* left by a berthd that died unpacking */
	if (fs_mkdir_p(partial, 0700, err) < 0 || mkdir(partial_root, 0755) < 0) {
		r = berth_err_set(err, errno, "cannot create %s", partial_root);
		goto cleanup;
	}
	if (unpack_layers(layout_fd, m, partial_root, limits, err) < 0) {
		r = -1;
		goto cleanup;
	}
	syncfs(lock);
	if (rename(partial, entry) < 0) {
		r = berth_err_set(err, errno, "cannot move %s into place", entry);
		goto cleanup;
	}
	log_info("unpacked image %s (%zu layer%s) into %s", manifest_desc->digest, m->n_layers,
		 m->n_layers == 1 ? "" : "s", entry);
	goto unlock;
cleanup:
	if (fs_remove_tree(partial, &ignored) < 0)
		log_warn("%s", ignored.msg);
unlock:
	unlink(lock_path);
	if (r < 0)
		return -1;
	*rootfs = berth_steal_ptr(&root);
	return 0;
}

int oci_resolve(const char *state_dir, const struct host_roots *roots, const struct layer_budget *limits,
		const char *image, char **rootfs, struct oci_image_config *config, struct berth_err *err)
{
	memset(config, 0, sizeof(*config));
	_cleanup_free_ char *layout = NULL;
	_cleanup_free_ char *tag = NULL;
	if (oci_ref_parse(image, &layout, &tag, err) < 0)
		return -1;
	struct oci_descriptor desc;
	_cleanup_close_ int fd = layout_open(roots, image, layout, tag, &desc, err);
	if (fd < 0)
		return -1;
	struct berth_buf doc = BERTH_BUF_INIT;
	struct oci_manifest m = { 0 };
	int r = -1;
	if (oci_blob_read(fd, &desc, MANIFEST_MAX_BYTES, &doc, err) < 0)
		goto out;
	if (oci_doc_is_index(doc.data, doc.len)) {
		struct oci_descriptor inner;
		if (oci_index_pick_platform(doc.data, doc.len, &inner, err) < 0)
			goto out;
		oci_descriptor_free(&desc);
		desc = inner;
		buf_reset(&doc);
		if (oci_blob_read(fd, &desc, MANIFEST_MAX_BYTES, &doc, err) < 0)
			goto out;
	}
	if (oci_manifest_parse(doc.data, doc.len, &m, err) < 0)
		goto out;
	buf_reset(&doc);
	if (oci_blob_read(fd, &m.config, CONFIG_MAX_BYTES, &doc, err) < 0 ||
	    oci_config_parse(doc.data, doc.len, config, err) < 0)
		goto out;
	if (cache_fill(state_dir, fd, &desc, &m, limits, rootfs, err) < 0)
		goto out;
	r = 0;
out:
	if (r < 0) {
		oci_image_config_free(config);
		berth_err_prefix(err, "Image \"%s\"", image);
	}
	oci_manifest_free(&m);
	oci_descriptor_free(&desc);
	buf_free(&doc);
	return r;
}
