/* Unit tests for OCI image layouts: index / manifest / config parsing, tag
 * lookup, digest verification, layer application (whiteouts, opaque
 * directories, replacement, escapes refused) and image User resolution. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "image_user.h"
#include "layer.h"
#include "oci.h"

enum kind { F, L, D, H }; /* file, symlink, directory, hard link */

struct entry {
	enum kind kind;
	const char *name;
	const char *data; /* file content / link target */
};

static char *dir_new(void)
{
	char *d = strdup("/tmp/berth-oci-test-XXXXXX");
	assert_non_null(mkdtemp(d));
	return d;
}

static void dir_free(char *d)
{
	struct berth_err err;
	fs_remove_tree(d, &err);
	free(d);
}

static void write_tar(const char *path, const struct entry *e, size_t n, bool gzip)
{
	struct archive *a = archive_write_new();
	if (gzip)
		archive_write_add_filter_gzip(a);
	archive_write_set_format_pax_restricted(a);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		archive_entry_set_pathname(ae, e[i].name);
		archive_entry_set_mtime(ae, 1000000000, 0);
		switch (e[i].kind) {
		case F:
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, 0644);
			archive_entry_set_size(ae, (la_int64_t)strlen(e[i].data));
			break;
		case L:
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_symlink(ae, e[i].data);
			archive_entry_set_perm(ae, 0777);
			break;
		case D:
			archive_entry_set_filetype(ae, AE_IFDIR);
			archive_entry_set_perm(ae, 0755);
			break;
		case H:
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_hardlink(ae, e[i].data);
			archive_entry_set_perm(ae, 0644);
			break;
		}
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		if (e[i].kind == F)
			archive_write_data(a, e[i].data, strlen(e[i].data));
		archive_entry_free(ae);
	}
	archive_write_close(a);
	archive_write_free(a);
}

/* Applies a layer made of entries to root; returns layer_apply's result. */
static int apply(const char *root, const struct entry *e, size_t n, struct berth_err *err)
{
	char *tar = fs_path("%s.layer.tar", root);
	write_tar(tar, e, n, true);
	int rfd = open(root, O_RDONLY | O_DIRECTORY);
	int bfd = open(tar, O_RDONLY);
	assert_true(rfd >= 0 && bfd >= 0);
	struct layer_result res;
	int r = layer_apply(rfd, bfd, 0, NULL, &res, err);
	close(rfd);
	close(bfd);
	unlink(tar);
	free(tar);
	return r;
}

static bool exists_in(const char *root, const char *rel)
{
	char *p = fs_path("%s/%s", root, rel);
	struct stat st;
	bool r = lstat(p, &st) == 0;
	free(p);
	return r;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int n;
	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ---- references and documents -------------------------------------------- */

static void test_ref_parse(void **state)
{
	(void)state;
	char *layout, *tag;
	struct berth_err err;
	assert_int_equal(oci_ref_parse("oci:/srv/img", &layout, &tag, &err), 0);
	assert_string_equal(layout, "/srv/img");
	assert_string_equal(tag, "latest");
	free(layout);
	free(tag);
	assert_int_equal(oci_ref_parse("oci:/srv/my.img:v1.2", &layout, &tag, &err), 0);
	assert_string_equal(layout, "/srv/my.img");
	assert_string_equal(tag, "v1.2");
	free(layout);
	free(tag);
	assert_int_equal(oci_ref_parse("oci:relative/img", &layout, &tag, &err), -1);
	assert_non_null(strstr(err.msg, "absolute"));
	assert_true(oci_is_ref("oci:/x"));
	assert_false(oci_is_ref("/x"));
}

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static void test_index_tag_lookup(void **state)
{
	(void)state;
	const char *index = "{\"schemaVersion\":2,\"manifests\":["
			    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1
			    "\",\"size\":10,\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}},"
			    "{\"digest\":\"" D2 "\",\"size\":20,\"annotations\":{\"org.opencontainers.image.ref.name\":"
			    "\"latest\"}}]}";
	struct oci_descriptor d;
	struct berth_err err;
	assert_int_equal(oci_index_find(index, strlen(index), "latest", &d, &err), 0);
	assert_string_equal(d.digest, D2);
	assert_int_equal(d.size, 20);
	oci_descriptor_free(&d);
	assert_int_equal(oci_index_find(index, strlen(index), "v1", &d, &err), 0);
	assert_string_equal(d.digest, D1);
	assert_string_equal(d.media_type, "application/vnd.oci.image.manifest.v1+json");
	oci_descriptor_free(&d);
	assert_int_equal(oci_index_find(index, strlen(index), "v9", &d, &err), -1);
	assert_non_null(strstr(err.msg, "no tag \"v9\""));
	assert_non_null(strstr(err.msg, "v1, latest"));
	const char *bad = "{\"manifests\": [";
	assert_int_equal(oci_index_find(bad, strlen(bad), "latest", &d, &err), -1);
	assert_non_null(strstr(err.msg, "not valid JSON"));
	const char *nolist = "{\"schemaVersion\":2}";
	assert_int_equal(oci_index_find(nolist, strlen(nolist), "latest", &d, &err), -1);
	assert_non_null(strstr(err.msg, "malformed"));
	const char *baddigest = "{\"manifests\":[{\"digest\":\"sha256:zz\",\"size\":1,"
				"\"annotations\":{\"org.opencontainers.image.ref.name\":\"latest\"}}]}";
	assert_int_equal(oci_index_find(baddigest, strlen(baddigest), "latest", &d, &err), -1);
	assert_non_null(strstr(err.msg, "malformed digest"));
}

static void test_manifest_and_config(void **state)
{
	(void)state;
	const char *m = "{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1 "\",\"size\":5},"
			"\"layers\":[{\"digest\":\"" D2 "\",\"size\":6},{\"digest\":\"" D3 "\",\"size\":7}]}";
	struct oci_manifest man;
	struct berth_err err;
	assert_int_equal(oci_manifest_parse(m, strlen(m), &man, &err), 0);
	assert_string_equal(man.config.digest, D1);
	assert_int_equal(man.n_layers, 2);
	assert_string_equal(man.layers[1].digest, D3);
	assert_int_equal(man.layers[1].size, 7);
	oci_manifest_free(&man);
	const char *nolayers = "{\"config\":{\"digest\":\"" D1 "\",\"size\":5}}";
	assert_int_equal(oci_manifest_parse(nolayers, strlen(nolayers), &man, &err), -1);

	const char *c = "{\"architecture\":\"amd64\",\"config\":{\"User\":\"app:staff\",\"Env\":[\"PATH=/usr/bin\","
			"\"A=b=c\",\"BAD\"],\"Entrypoint\":[\"/serve\",\"--x\"],\"Cmd\":[\"ignored\"],"
			"\"WorkingDir\":\"/srv\",\"Labels\":{\"com.amazonaws.sagemaker.capabilities.multi-models\":"
			"\"true\"}}}";
	struct oci_image_config cfg;
	assert_int_equal(oci_config_parse(c, strlen(c), &cfg, &err), 0);
	assert_string_equal(cfg.user, "app:staff");
	assert_string_equal(cfg.working_dir, "/srv");
	assert_int_equal(cfg.n_entrypoint, 2);
	assert_string_equal(cfg.entrypoint[1], "--x");
	assert_int_equal(cfg.n_cmd, 1);
	assert_int_equal(cfg.n_env, 2);
	assert_string_equal(cfg.env[1].key, "A");
	assert_string_equal(cfg.env[1].value, "b=c");
	assert_string_equal(oci_config_label(&cfg, "com.amazonaws.sagemaker.capabilities.multi-models"), "true");
	assert_null(oci_config_label(&cfg, "nope"));
	oci_image_config_free(&cfg);
	const char *empty = "{}";
	assert_int_equal(oci_config_parse(empty, strlen(empty), &cfg, &err), 0);
	assert_null(cfg.entrypoint);
	assert_null(cfg.user);
	oci_image_config_free(&cfg);
	const char *rel = "{\"config\":{\"WorkingDir\":\"srv\"}}";
	assert_int_equal(oci_config_parse(rel, strlen(rel), &cfg, &err), -1);
	const char *notarray = "{\"config\":{\"Entrypoint\":\"/serve\"}}";
	assert_int_equal(oci_config_parse(notarray, strlen(notarray), &cfg, &err), -1);
	/* an image's documents nested past JSON_MAX_DEPTH: refused while parsing */
	size_t depth = 300000;
	char *deep = malloc(2 * depth + 32);
	assert_non_null(deep);
	strcpy(deep, "{\"config\":{\"Labels\":");
	size_t n = strlen(deep);
	memset(deep + n, '[', depth);
	memset(deep + n + depth, ']', depth);
	strcpy(deep + n + 2 * depth, "}}");
	assert_int_equal(oci_config_parse(deep, strlen(deep), &cfg, &err), -1);
	assert_non_null(strstr(err.msg, "more than 64 levels deep"));
	memcpy(deep, "{\"layers\":", 10);
	memmove(deep + 10, deep + n, 2 * depth);
	strcpy(deep + 10 + 2 * depth, "}");
	assert_int_equal(oci_manifest_parse(deep, strlen(deep), &man, &err), -1);
	assert_non_null(strstr(err.msg, "more than 64 levels deep"));
	free(deep);
}

static void test_platform_pick(void **state)
{
	(void)state;
	const char *idx = "{\"manifests\":[{\"digest\":\"" D1 "\",\"size\":1,\"platform\":{\"os\":\"linux\","
			  "\"architecture\":\"arm64\"}},{\"digest\":\"" D2 "\",\"size\":2,\"platform\":{\"os\":"
			  "\"linux\",\"architecture\":\"amd64\"}}]}";
	struct oci_descriptor d;
	struct berth_err err;
	assert_true(oci_doc_is_index(idx, strlen(idx)));
	assert_int_equal(oci_index_pick_platform(idx, strlen(idx), &d, &err), 0);
	assert_string_equal(d.digest, D2);
	oci_descriptor_free(&d);
}

/* ---- blobs and a whole layout ---------------------------------------------- */

static void put_blob(const char *layout, const void *data, size_t len, struct oci_descriptor *d)
{
	char hex[65];
	sha256_hex(data, len, hex);
	char *p = fs_path("%s/blobs/sha256/%s", layout, hex);
	struct berth_err err;
	assert_int_equal(fs_write_atomic(p, data, len, 0644, &err), 0);
	free(p);
	memset(d, 0, sizeof(*d));
	snprintf(d->digest, sizeof(d->digest), "sha256:%s", hex);
	d->size = (long long)len;
}

static void put_file_blob(const char *layout, const char *path, struct oci_descriptor *d)
{
	struct berth_buf b = BERTH_BUF_INIT;
	struct berth_err err;
	assert_int_equal(fs_read_file(path, &b, 1 << 20, &err), 0);
	put_blob(layout, b.data, b.len, d);
	buf_free(&b);
}

/* A layout with one layer; corrupt: the manifest names a digest that the
 * layer's bytes do not hash to. */
static void make_layout(const char *layout, bool corrupt)
{
	struct berth_err err;
	char *blobs = fs_path("%s/blobs/sha256", layout);
	assert_int_equal(fs_mkdir_p(blobs, 0755, &err), 0);
	free(blobs);
	char *p = fs_path("%s/oci-layout", layout);
	assert_int_equal(fs_write_atomic(p, "{\"imageLayoutVersion\":\"1.0.0\"}", 30, 0644, &err), 0);
	free(p);
	char *tar = fs_path("%s/../layer.tar.gz", layout);
	struct entry e[] = { { D, "etc", NULL }, { F, "etc/hello", corrupt ? "hello, corrupt\n" : "hi\n" } };
	write_tar(tar, e, 2, corrupt ? false : true);
	struct oci_descriptor layer, config, manifest;
	put_file_blob(layout, tar, &layer);
	unlink(tar);
	free(tar);
	if (corrupt) {
		/* same size, a valid tar still, other content: the digest names
		 * bytes that are not there */
		char *bp = fs_path("%s/blobs/sha256/%s", layout, layer.digest + 7);
		struct berth_buf blob = BERTH_BUF_INIT;
		struct berth_err e2;
		assert_int_equal(fs_read_file(bp, &blob, 1 << 20, &e2), 0);
		char *at = memmem(blob.data, blob.len, "corrupt", 7);
		assert_non_null(at);
		*at = 'C';
		assert_int_equal(fs_write_atomic(bp, blob.data, blob.len, 0644, &e2), 0);
		buf_free(&blob);
		free(bp);
	}
	const char *cfg = "{\"config\":{\"Entrypoint\":[\"/serve\"],\"Env\":[\"K=v\"]}}";
	put_blob(layout, cfg, strlen(cfg), &config);
	struct berth_buf m = BERTH_BUF_INIT;
	buf_printf(&m, "{\"schemaVersion\":2,\"config\":{\"digest\":\"%s\",\"size\":%lld},\"layers\":[{\"digest\":"
		       "\"%s\",\"size\":%lld}]}",
		   config.digest, config.size, layer.digest, layer.size);
	put_blob(layout, m.data, m.len, &manifest);
	buf_free(&m);
	struct berth_buf idx = BERTH_BUF_INIT;
	buf_printf(&idx, "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"%s\",\"size\":%lld,\"annotations\":{"
			 "\"org.opencontainers.image.ref.name\":\"latest\"}}]}",
		   manifest.digest, manifest.size);
	p = fs_path("%s/index.json", layout);
	assert_int_equal(fs_write_atomic(p, idx.data, idx.len, 0644, &err), 0);
	free(p);
	buf_free(&idx);
}

static size_t count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	for (struct dirent *de; d && (de = readdir(d));)
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static void test_resolve_and_digest_mismatch(void **state)
{
	(void)state;
	char *dir = dir_new();
	char *good = fs_path("%s/good", dir), *bad = fs_path("%s/bad", dir), *st = fs_path("%s/state", dir);
	make_layout(good, false);
	make_layout(bad, true);
	struct berth_err err;
	struct host_roots roots = { .n = 0 };
	assert_int_equal(host_roots_add(&roots, dir, &err), 0);
	char *image = fs_path("oci:%s", good);
	assert_int_equal(oci_check(&roots, image, &err), 0);
	char *rootfs = NULL;
	struct oci_image_config cfg;
	/* over the image's bounds: refused, nothing cached */
	char *st_small = fs_path("%s/state-small", dir);
	struct layer_budget tiny = { .max_bytes = 1 };
	assert_int_equal(oci_resolve(st_small, &roots, &tiny, image, &rootfs, &cfg, &err), -1);
	assert_non_null(strstr(err.msg, "image_max_bytes"));
	assert_null(rootfs);
	char *small_images = fs_path("%s/images", st_small);
	assert_int_equal(count_entries(small_images), 0);
	free(small_images);
	free(st_small);
	/* a layout outside the roots, or reached through a link out of them */
	struct host_roots other = { .n = 0 };
	char *other_dir = fs_path("%s/other", dir);
	mkdir(other_dir, 0755);
	assert_int_equal(host_roots_add(&other, other_dir, &err), 0);
	assert_int_equal(oci_check(&other, image, &err), -1);
	assert_non_null(strstr(err.msg, "is outside the directories berth may run images from (image roots: "));
	char *link = fs_path("%s/link", other_dir);
	assert_int_equal(symlink(good, link), 0);
	char *via = fs_path("oci:%s", link);
	assert_int_equal(oci_check(&other, via, &err), -1);
	assert_int_equal(err.errnum, EXDEV);
	assert_int_equal(oci_resolve(st, &other, NULL, via, &rootfs, &cfg, &err), -1);
	assert_int_equal(err.errnum, EXDEV);
	free(via);
	free(link);
	free(other_dir);
	host_roots_free(&other);
	assert_int_equal(oci_resolve(st, &roots, NULL, image, &rootfs, &cfg, &err), 0);
	assert_true(exists_in(rootfs, "etc/hello"));
	assert_non_null(strstr(rootfs, "/images/sha256-"));
	assert_string_equal(cfg.entrypoint[0], "/serve");
	oci_image_config_free(&cfg);
	/* a second resolve reuses the cache */
	char *again = NULL;
	assert_int_equal(oci_resolve(st, &roots, NULL, image, &again, &cfg, &err), 0);
	assert_string_equal(rootfs, again);
	oci_image_config_free(&cfg);
	free(again);
	free(rootfs);
	free(image);
	char *images = fs_path("%s/images", st);
	assert_int_equal(count_entries(images), 1);

	image = fs_path("oci:%s", bad);
	rootfs = NULL;
	assert_int_equal(oci_resolve(st, &roots, NULL, image, &rootfs, &cfg, &err), -1);
	assert_non_null(strstr(err.msg, "does not match its digest"));
	assert_null(rootfs);
	assert_int_equal(count_entries(images), 1); /* nothing half-unpacked */
	free(image);

	image = fs_path("oci:%s:nope", good);
	assert_int_equal(oci_check(&roots, image, &err), -1);
	assert_non_null(strstr(err.msg, "its tags are: latest"));
	free(image);
	image = fs_path("oci:%s/missing", dir);
	assert_int_equal(oci_check(&roots, image, &err), -1);
	assert_non_null(strstr(err.msg, "does not exist"));
	free(image);

	/* a blob whose size differs from its descriptor */
	struct oci_descriptor d;
	put_blob(good, "abc", 3, &d);
	d.size = 4;
	int lfd = open(good, O_PATH | O_DIRECTORY);
	struct berth_buf b = BERTH_BUF_INIT;
	assert_int_equal(oci_blob_read(lfd, &d, 100, &b, &err), -1);
	assert_non_null(strstr(err.msg, "fewer bytes"));
	d.size = 3;
	buf_reset(&b);
	assert_int_equal(oci_blob_read(lfd, &d, 100, &b, &err), 0);
	d.digest[10] ^= 1;
	buf_reset(&b);
	assert_int_equal(oci_blob_read(lfd, &d, 100, &b, &err), -1);
	buf_free(&b);
	close(lfd);
	free(images);
	free(good);
	free(bad);
	free(st);
	host_roots_free(&roots);
	dir_free(dir);
}

/* ---- layers ------------------------------------------------------------------ */

static void test_whiteouts_and_opaque(void **state)
{
	(void)state;
	char *dir = dir_new();
	char *root = fs_path("%s/root", dir);
	mkdir(root, 0755);
	struct berth_err err;
	struct entry l1[] = {
		{ D, "a", NULL },	   { F, "a/keep", "k" },   { F, "a/gone", "g" },   { D, "a/gonedir", NULL },
		{ F, "a/gonedir/x", "x" }, { D, "d", NULL },	   { F, "d/old", "o" },	   { D, "d/sub", NULL },
		{ F, "d/sub/y", "y" },	   { F, "file", "1" },	   { L, "link", "file" },
	};
	assert_int_equal(apply(root, l1, BERTH_ARRAY_SIZE(l1), &err), 0);
	struct entry l2[] = {
		{ F, "a/.wh.gone", "" },      { F, "a/.wh.gonedir", "" }, { D, "d", NULL },
		{ F, "d/.wh..wh..opq", "" }, { F, "d/new", "n" },	 { F, "link", "now a file" },
		{ D, "file", NULL },	      { F, "file/inside", "i" },	 { H, "hard", "a/keep" },
		{ F, "a/.wh.never-there", "" },
	};
	assert_int_equal(apply(root, l2, BERTH_ARRAY_SIZE(l2), &err), 0);
	assert_true(exists_in(root, "a/keep"));
	assert_false(exists_in(root, "a/gone"));
	assert_false(exists_in(root, "a/gonedir"));
	assert_false(exists_in(root, "a/.wh.gone"));
	assert_false(exists_in(root, "d/old"));
	assert_false(exists_in(root, "d/sub"));
	assert_false(exists_in(root, "d/.wh..wh..opq"));
	assert_true(exists_in(root, "d/new"));
	assert_true(exists_in(root, "file/inside"));
	char *p = fs_path("%s/link", root);
	struct stat st;
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	free(p);
	char *keep = fs_path("%s/a/keep", root), *hard = fs_path("%s/hard", root);
	struct stat s1, s2;
	assert_int_equal(stat(keep, &s1), 0);
	assert_int_equal(stat(hard, &s2), 0);
	assert_int_equal(s1.st_ino, s2.st_ino);
	free(keep);
	free(hard);
	free(root);
	dir_free(dir);
}

static void test_escapes_refused(void **state)
{
	(void)state;
	char *dir = dir_new();
	char *root = fs_path("%s/root", dir), *host = fs_path("%s/host", dir);
	mkdir(root, 0755);
	mkdir(host, 0755);
	struct berth_err err;
	struct entry dotdot[] = { { F, "ok", "fine" }, { F, "../escaped", "evil" } };
	assert_int_equal(apply(root, dotdot, 2, &err), -1);
	assert_non_null(strstr(err.msg, "outside"));
	assert_false(exists_in(dir, "escaped"));
	struct entry inner[] = { { F, "a/../../escaped2", "evil" } };
	assert_int_equal(apply(root, inner, 1, &err), -1);
	assert_false(exists_in(dir, "escaped2"));

	/* an absolute link pointing out is fine as a link, not as a way out */
	struct entry link[] = { { L, "out", host }, { F, "out/pwned", "evil" } };
	assert_int_equal(apply(root, link, 2, &err), -1);
	assert_non_null(strstr(err.msg, "symbolic link"));
	assert_false(exists_in(host, "pwned"));
	assert_true(exists_in(root, "out"));
	/* nor in a later layer */
	struct entry later[] = { { F, "out/pwned2", "evil" } };
	assert_int_equal(apply(root, later, 1, &err), -1);
	assert_false(exists_in(host, "pwned2"));
	/* replacing the link itself is fine and does not touch the target */
	char *victim = fs_path("%s/victim", host);
	assert_int_equal(fs_write_atomic(victim, "safe", 4, 0644, &err), 0);
	struct entry l1[] = { { L, "f", victim } };
	assert_int_equal(apply(root, l1, 1, &err), 0);
	struct entry l2[] = { { F, "f", "replaced" } };
	assert_int_equal(apply(root, l2, 1, &err), 0);
	struct berth_buf b = BERTH_BUF_INIT;
	assert_int_equal(fs_read_file(victim, &b, 100, &err), 0);
	assert_string_equal(b.data, "safe");
	buf_free(&b);
	/* hard links must stay inside */
	struct entry hl[] = { { H, "h", "../host/victim" } };
	assert_int_equal(apply(root, hl, 1, &err), -1);
	struct entry hl2[] = { { H, "h2", "f2/x" }, { L, "f2", host } };
	assert_int_equal(apply(root, hl2, 1, &err), -1);
	free(victim);
	free(root);
	free(host);
	dir_free(dir);
}

static void test_clean_path(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(layer_clean_path("./a//b/", out, sizeof(out)), 0);
	assert_string_equal(out, "a/b");
	assert_int_equal(layer_clean_path(".", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(layer_clean_path("/abs", out, sizeof(out)), -1);
	assert_int_equal(layer_clean_path("a/../b", out, sizeof(out)), -1);
	assert_int_equal(layer_clean_path("a/..b", out, sizeof(out)), 0);
}

static void test_layer_digest(void **state)
{
	(void)state;
	char *dir = dir_new();
	char *root = fs_path("%s/root", dir), *tar = fs_path("%s/l.tar", dir);
	mkdir(root, 0755);
	struct entry e[] = { { F, "x", "data" } };
	write_tar(tar, e, 1, false);
	struct berth_buf b = BERTH_BUF_INIT;
	struct berth_err err;
	assert_int_equal(fs_read_file(tar, &b, 1 << 20, &err), 0);
	char hex[65];
	sha256_hex(b.data, b.len, hex);
	int rfd = open(root, O_RDONLY | O_DIRECTORY), bfd = open(tar, O_RDONLY);
	struct layer_result res;
	assert_int_equal(layer_apply(rfd, bfd, 0, NULL, &res, &err), 0);
	assert_string_equal(res.sha256, hex);
	assert_int_equal(res.size, b.len);
	close(bfd);
	/* a bound below the blob's size stops reading */
	bfd = open(tar, O_RDONLY);
	assert_int_equal(layer_apply(rfd, bfd, b.len - 1, NULL, &res, &err), -1);
	close(bfd);
	/* the image's budget: bytes declared, entries counted, across layers */
	struct layer_budget budget = { .max_bytes = 3 };
	bfd = open(tar, O_RDONLY);
	assert_int_equal(layer_apply(rfd, bfd, 0, &budget, &res, &err), -1);
	assert_non_null(strstr(err.msg, "more than 3 bytes (berthd's image_max_bytes)"));
	assert_int_equal(err.errnum, EFBIG);
	close(bfd);
	budget = (struct layer_budget){ .max_bytes = 4, .max_entries = 1 };
	bfd = open(tar, O_RDONLY);
	assert_int_equal(layer_apply(rfd, bfd, 0, &budget, &res, &err), 0);
	assert_int_equal(budget.bytes, 4);
	assert_int_equal(budget.entries, 1);
	close(bfd);
	bfd = open(tar, O_RDONLY); /* a second layer: the budget is spent */
	assert_int_equal(layer_apply(rfd, bfd, 0, &budget, &res, &err), -1);
	assert_non_null(strstr(err.msg, "more than 1 entries (berthd's image_max_entries)"));
	close(bfd);
	close(rfd);
	buf_free(&b);
	free(root);
	free(tar);
	dir_free(dir);
}

/* ---- User ------------------------------------------------------------------------ */

static void test_user_resolution(void **state)
{
	(void)state;
	char *dir = dir_new();
	struct berth_err err;
	char *etc = fs_path("%s/etc", dir);
	mkdir(etc, 0755);
	char *passwd = fs_path("%s/passwd", etc), *group = fs_path("%s/group", etc);
	const char *pw = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n";
	const char *gr = "root:x:0:\napp:x:1001:\nstaff:x:50:app,other\nvideo:x:44:app\nnobody:x:65534:\n";
	assert_int_equal(fs_write_atomic(passwd, pw, strlen(pw), 0644, &err), 0);
	assert_int_equal(fs_write_atomic(group, gr, strlen(gr), 0644, &err), 0);
	struct image_user u;
	assert_int_equal(image_user_resolve(dir, NULL, &u, &err), 0);
	assert_int_equal(u.uid, 0);
	assert_int_equal(image_user_resolve(dir, "app", &u, &err), 0);
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 1001);
	assert_int_equal(u.n_additional_gids, 2);
	assert_int_equal(u.additional_gids[0], 50);
	assert_int_equal(u.additional_gids[1], 44);
	assert_int_equal(image_user_resolve(dir, "1000", &u, &err), 0);
	assert_int_equal(u.gid, 1001);
	assert_int_equal(image_user_resolve(dir, "4321", &u, &err), 0);
	assert_int_equal(u.uid, 4321);
	assert_int_equal(u.gid, 0);
	assert_int_equal(image_user_resolve(dir, "app:staff", &u, &err), 0);
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 50);
	assert_int_equal(u.n_additional_gids, 0);
	assert_int_equal(image_user_resolve(dir, "7:9", &u, &err), 0);
	assert_int_equal(u.uid, 7);
	assert_int_equal(u.gid, 9);
	assert_int_equal(image_user_resolve(dir, "ghost", &u, &err), -1);
	assert_non_null(strstr(err.msg, "no user \"ghost\""));
	assert_int_equal(image_user_resolve(dir, "app:ghosts", &u, &err), -1);
	assert_non_null(strstr(err.msg, "no group \"ghosts\""));
	/* /etc/passwd as an absolute link out of the image is read inside it */
	unlink(passwd);
	assert_int_equal(symlink("/etc/passwd", passwd), 0);
	assert_int_equal(image_user_resolve(dir, "root", &u, &err), -1);
	free(passwd);
	free(group);
	free(etc);
	dir_free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ref_parse),
		cmocka_unit_test(test_index_tag_lookup),
		cmocka_unit_test(test_manifest_and_config),
		cmocka_unit_test(test_platform_pick),
		cmocka_unit_test(test_resolve_and_digest_mismatch),
		cmocka_unit_test(test_whiteouts_and_opaque),
		cmocka_unit_test(test_escapes_refused),
		cmocka_unit_test(test_clean_path),
		cmocka_unit_test(test_layer_digest),
		cmocka_unit_test(test_user_resolution),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
