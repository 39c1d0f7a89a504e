/* layer.c — see layer.h. */
#include "layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define WHITEOUT_PREFIX ".wh."
#define WHITEOUT_OPAQUE ".wh..wh..opq"
#define MAX_NAME 4096

/* ---- the blob, hashed as libarchive reads it ------------------------------ */

struct blob_reader {
	int fd;
	EVP_MD_CTX *md;
	uint64_t size, max;
	char buf[1 << 16];
};

static la_ssize_t blob_read(struct archive *a, void *data, const void **out)
{
	struct blob_reader *r = data;
	ssize_t n;
	do
		n = read(r->fd, r->buf, sizeof(r->buf));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		archive_set_error(a, errno, "read error");
		return -1;
	}
	r->size += (uint64_t)n;
	if (r->max && r->size > r->max) {
		archive_set_error(a, EFBIG, "the blob is larger than its descriptor's %llu bytes",
				  (unsigned long long)r->max);
		return -1;
	}
	EVP_DigestUpdate(r->md, r->buf, (size_t)n);
	*out = r->buf;
	return n;
}

/* Hashes whatever libarchive left unread (tar padding, trailing zeros). */
static int blob_drain(struct blob_reader *r, struct berth_err *err)
{
	for (;;) {
		ssize_t n = read(r->fd, r->buf, sizeof(r->buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return berth_err_set(err, errno, "reading the layer");
		if (n == 0)
			return 0;
		r->size += (uint64_t)n;
		if (r->max && r->size > r->max)
			return berth_err_set(err, 0, "the layer is larger than its descriptor's %llu bytes",
					     (unsigned long long)r->max);
		EVP_DigestUpdate(r->md, r->buf, (size_t)n);
	}
}

/* ---- paths written by this layer (for opaque whiteouts) ------------------ */

struct path_set {
	char **slots;
	size_t cap, n;
};

static uint64_t path_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static bool path_set_has(const struct path_set *set, const char *p)
{
	if (set->cap == 0)
		return false;
	for (size_t i = path_hash(p) & (set->cap - 1);; i = (i + 1) & (set->cap - 1)) {
		if (set->slots[i] == NULL)
			return false;
		if (strcmp(set->slots[i], p) == 0)
			return true;
	}
}

static int path_set_add(struct path_set *set, const char *p)
{
	if (path_set_has(set, p))
		return 0;
	if ((set->n + 1) * 2 > set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 256;
		char **slots = calloc(cap, sizeof(char *));
		if (slots == NULL)
			return -1;
		for (size_t i = 0; i < set->cap; i++) {
			if (set->slots[i] == NULL)
				continue;
			size_t j = path_hash(set->slots[i]) & (cap - 1);
			while (slots[j] != NULL)
				j = (j + 1) & (cap - 1);
			slots[j] = set->slots[i];
		}
		free(set->slots);
		set->slots = slots;
		set->cap = cap;
	}
	char *copy = strdup(p);
	if (copy == NULL)
		return -1;
	size_t i = path_hash(p) & (set->cap - 1);
	while (set->slots[i] != NULL)
		i = (i + 1) & (set->cap - 1);
	set->slots[i] = copy;
	set->n++;
	return 0;
}

static void path_set_free(struct path_set *set)
{
	for (size_t i = 0; i < set->cap; i++)
		free(set->slots[i]);
	free(set->slots);
}

/* ---- safe path handling --------------------------------------------------- */

int layer_clean_path(const char *name, char *out, size_t out_size)
{
	if (name == NULL || name[0] == '/' || out_size == 0)
		return -1;
	size_t len = 0;
	out[0] = '\0';
	for (const char *p = name; *p;) {
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -1;
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (len + (len ? 1 : 0) + n + 1 > out_size)
				return -1;
			if (len)
				out[len++] = '/';
			memcpy(out + len, p, n);
			len += n;
			out[len] = '\0';
		}
		p += n;
		if (*p == '/')
			p++;
	}
	return 0;
}

/* Removes name under dirfd, recursively, never following symlinks. */
static int remove_at(int at, const char *name, struct berth_err *err)
{
	struct stat st;
	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : berth_err_set(err, errno, "cannot stat \"%s\"", name);
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(at, name, 0) < 0 && errno != ENOENT)
			return berth_err_set(err, errno, "cannot remove \"%s\"", name);
		return 0;
	}
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return berth_err_set(err, errno, "cannot open \"%s\"", name);
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return berth_err_set(err, errno, "cannot open \"%s\"", name);
	}
	int r = 0;
	for (struct dirent *de; r == 0 && (de = readdir(d)) != NULL;)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			r = remove_at(dirfd(d), de->d_name, err);
	closedir(d);
	if (r == 0 && unlinkat(at, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return berth_err_set(err, errno, "cannot remove directory \"%s\"", name);
	return r;
}

/* Opens the directory holding the last component of rel (a clean path),
 * walking one component at a time without following symlinks; missing
 * directories are created (mode 0755) when create is set. *base points at
 * the last component inside rel. Returns an O_PATH fd, or -1 (errnum ENOENT
 * when a parent is missing and create is not set). */
static int open_parent(int root_fd, const char *rel, bool create, const char **base, struct berth_err *err)
{
	char comp[MAX_NAME];
	const char *slash = strrchr(rel, '/');
	*base = slash ? slash + 1 : rel;
	int fd = dup(root_fd);
	if (fd < 0)
		return berth_err_set(err, errno, "dup");
	for (const char *p = rel; slash && p <= slash;) {
		const char *end = strchr(p, '/');
		size_t n = (size_t)(end - p);
		memcpy(comp, p, n);
		comp[n] = '\0';
		p = end + 1;
		int next = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create) {
			if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST) {
				berth_err_set(err, errno, "cannot create directory \"%.*s\"", (int)(end - rel), rel);
				close(fd);
				return -1;
			}
			next = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			int e = errno;
			struct stat st;
			if (e == ENOENT)
				berth_err_set(err, ENOENT, "\"%.*s\" does not exist", (int)(end - rel), rel);
			else if (fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
				berth_err_set(err, 0,
					      "\"%s\" would be written through the symbolic link \"%.*s\"; refusing "
					      "(it could point outside the image)",
					      rel, (int)(end - rel), rel);
			else
				berth_err_set(err, e, "\"%.*s\" is not a directory", (int)(end - rel), rel);
			close(fd);
			return -1;
		}
		close(fd);
		fd = next;
	}
	return fd;
}

/* Empties the directory rel of everything this layer did not write. */
static int make_opaque(int root_fd, const char *dir_rel, const struct path_set *written, struct berth_err *err)
{
	int fd;
	if (dir_rel[0] == '\0') {
		fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	} else {
		const char *base;
		_cleanup_close_ int parent = open_parent(root_fd, dir_rel, true, &base, err);
		if (parent < 0)
			return -1;
		fd = openat(parent, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return errno == ENOENT ? 0 : berth_err_set(err, errno, "opaque directory \"%s\"", dir_rel);
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return berth_err_set(err, errno, "opaque directory \"%s\"", dir_rel);
	}
	int r = 0;
	char child[MAX_NAME * 2];
	for (struct dirent *de; r == 0 && (de = readdir(d)) != NULL;) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(child, sizeof(child), "%s%s%s", dir_rel, dir_rel[0] ? "/" : "", de->d_name);
		if (!path_set_has(written, child))
			r = remove_at(dirfd(d), de->d_name, err);
	}
	closedir(d);
	return r;
}

/* ---- one entry ------------------------------------------------------------- */

static void set_times(int parent, const char *base, struct archive_entry *e)
{
	struct timespec ts[2] = {
		{ archive_entry_atime_is_set(e) ? archive_entry_atime(e) : archive_entry_mtime(e),
		  archive_entry_atime_is_set(e) ? archive_entry_atime_nsec(e) : archive_entry_mtime_nsec(e) },
		{ archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
	};
	utimensat(parent, base, ts, AT_SYMLINK_NOFOLLOW);
}

static int write_file(struct archive *in, int parent, const char *base, const char *rel, struct archive_entry *e,
		      struct berth_err *err)
{
	_cleanup_close_ int fd = openat(parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return berth_err_set(err, errno, "cannot create \"%s\"", rel);
	const void *block;
	size_t size;
	la_int64_t offset;
	int s;
	while ((s = archive_read_data_block(in, &block, &size, &offset)) == ARCHIVE_OK) {
		for (size_t done = 0; done < size;) {
			ssize_t n = pwrite(fd, (const char *)block + done, size - done, offset + (off_t)done);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return berth_err_set(err, errno, "cannot write \"%s\"", rel);
			done += (size_t)n;
		}
	}
	if (s != ARCHIVE_EOF)
		return berth_err_set(err, 0, "corrupt data in \"%s\": %s", rel, archive_error_string(in));
	if (ftruncate(fd, archive_entry_size(e)) < 0)
		return berth_err_set(err, errno, "cannot size \"%s\"", rel);
	if (fchown(fd, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e)) < 0)
		return berth_err_set(err, errno, "cannot chown \"%s\"", rel);
	if (fchmod(fd, archive_entry_perm(e) & 07777) < 0)
		return berth_err_set(err, errno, "cannot chmod \"%s\"", rel);
	const char *xname;
	const void *xvalue;
	size_t xsize;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &xname, &xvalue, &xsize) == ARCHIVE_OK)
		(void)fsetxattr(fd, xname, xvalue, xsize, 0); /* best effort: the host fs may refuse some */
	struct timespec ts[2] = { { archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
				  { archive_entry_mtime(e), archive_entry_mtime_nsec(e) } };
	futimens(fd, ts);
	return 0;
}

static int apply_entry(struct archive *in, int root_fd, struct archive_entry *e, struct path_set *written,
		       struct berth_err *err)
{
	char rel[MAX_NAME];
	const char *name = archive_entry_pathname(e);
	if (layer_clean_path(name, rel, sizeof(rel)) < 0)
		return berth_err_set(err, 0, "entry \"%s\" points outside the image root; refusing to unpack it",
				     name ? name : "");
	if (rel[0] == '\0')
		return 0; /* the root itself */
	const char *base;
	_cleanup_close_ int parent = -1;
	const char *slash = strrchr(rel, '/');
	const char *last = slash ? slash + 1 : rel;

	if (strncmp(last, WHITEOUT_PREFIX, strlen(WHITEOUT_PREFIX)) == 0) {
		if (strcmp(last, WHITEOUT_OPAQUE) == 0) {
			char dir[MAX_NAME];
			snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - rel) : 0, rel);
			return make_opaque(root_fd, dir, written, err);
		}
		parent = open_parent(root_fd, rel, false, &base, err);
		if (parent < 0)
			return err->errnum == ENOENT ? 0 : -1; /* nothing below to hide */
		const char *victim = base + strlen(WHITEOUT_PREFIX);
		if (victim[0] == '\0' || strcmp(victim, ".") == 0 || strcmp(victim, "..") == 0)
			return berth_err_set(err, 0, "bad whiteout entry \"%s\"", name);
		return remove_at(parent, victim, err);
	}

	mode_t type = archive_entry_filetype(e);
	const char *hardlink = archive_entry_hardlink(e);
	if (hardlink == NULL && (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFSOCK))
		return 0; /* devices come from the runtime, never from an image */
	parent = open_parent(root_fd, rel, true, &base, err);
	if (parent < 0)
		return -1;
	if (path_set_add(written, rel) < 0)
		return berth_err_set(err, ENOMEM, "unpacking");

	struct stat old;
	bool exists = fstatat(parent, base, &old, AT_SYMLINK_NOFOLLOW) == 0;
	if (hardlink == NULL && type == AE_IFDIR) {
		if (exists && !S_ISDIR(old.st_mode) && remove_at(parent, base, err) < 0)
			return -1;
		if ((!exists || !S_ISDIR(old.st_mode)) && mkdirat(parent, base, 0700) < 0)
			return berth_err_set(err, errno, "cannot create directory \"%s\"", rel);
		if (fchownat(parent, base, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e),
			     AT_SYMLINK_NOFOLLOW) < 0 ||
		    fchmodat(parent, base, archive_entry_perm(e) & 07777, 0) < 0)
			return berth_err_set(err, errno, "cannot set owner and mode of \"%s\"", rel);
		set_times(parent, base, e);
		return 0;
	}
	if (exists && remove_at(parent, base, err) < 0)
		return -1;
	if (hardlink != NULL) {
		char target[MAX_NAME];
		const char *tbase;
		if (layer_clean_path(hardlink, target, sizeof(target)) < 0 || target[0] == '\0')
			return berth_err_set(err, 0, "hard link \"%s\" points outside the image root", rel);
		_cleanup_close_ int tparent = open_parent(root_fd, target, false, &tbase, err);
		if (tparent < 0)
			return berth_err_prefix(err, "hard link \"%s\"", rel);
		if (linkat(tparent, tbase, parent, base, 0) < 0)
			return berth_err_set(err, errno, "cannot link \"%s\" to \"%s\"", rel, target);
		return 0;
	}
	switch (type) {
	case AE_IFREG:
		return write_file(in, parent, base, rel, e, err);
	case AE_IFLNK: {
		const char *target = archive_entry_symlink(e);
		if (target == NULL || symlinkat(target, parent, base) < 0)
			return berth_err_set(err, target ? errno : 0, "cannot create symbolic link \"%s\"", rel);
		if (fchownat(parent, base, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e),
			     AT_SYMLINK_NOFOLLOW) < 0)
			return berth_err_set(err, errno, "cannot chown \"%s\"", rel);
		set_times(parent, base, e);
		return 0;
	}
	case AE_IFIFO:
		if (mknodat(parent, base, S_IFIFO | 0600, 0) < 0 ||
		    fchownat(parent, base, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e),
			     AT_SYMLINK_NOFOLLOW) < 0 ||
		    fchmodat(parent, base, archive_entry_perm(e) & 07777, 0) < 0)
			return berth_err_set(err, errno, "cannot create fifo \"%s\"", rel);
		set_times(parent, base, e);
		return 0;
	default:
		return berth_err_set(err, 0, "entry \"%s\" has an unsupported type %o", rel, (unsigned)type);
	}
}

/* ---- the layer ------------------------------------------------------------ */

/* Counts the entry against the budget before it is applied (EFBIG past it). */
static int budget_take(struct layer_budget *b, struct archive_entry *e, struct berth_err *err)
{
	if (b == NULL)
		return 0;
	if (b->max_entries && ++b->entries > b->max_entries) {
		berth_err_set(err, 0, "the image holds more than %llu entries (berthd's image_max_entries)",
			      (unsigned long long)b->max_entries);
		err->errnum = EFBIG;
		return -1;
	}
	if (archive_entry_filetype(e) == AE_IFREG && archive_entry_hardlink(e) == NULL &&
	    archive_entry_size_is_set(e) && archive_entry_size(e) > 0) {
		uint64_t size = (uint64_t)archive_entry_size(e);
		if (b->max_bytes && (size > b->max_bytes || b->bytes + size > b->max_bytes)) {
			berth_err_set(err, 0, "the image unpacks to more than %llu bytes (berthd's image_max_bytes)",
				      (unsigned long long)b->max_bytes);
			err->errnum = EFBIG;
			return -1;
		}
		b->bytes += size;
	}
	return 0;
}

int layer_apply(int root_fd, int blob_fd, uint64_t max_blob_bytes, struct layer_budget *budget,
		struct layer_result *res, struct berth_err *err)
{
	struct blob_reader *r = calloc(1, sizeof(*r));
	struct archive *in = archive_read_new();
	struct path_set written = { 0 };
	int rc = -1;
	if (r == NULL || in == NULL || (r->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(r->md, EVP_sha256(), NULL) != 1) {
		berth_err_set(err, ENOMEM, "unpacking a layer");
		goto done;
	}
	r->fd = blob_fd;
	r->max = max_blob_bytes;
	/* The OCI layer media types: tar, tar+gzip, tar+zstd. Not
	 * archive_read_support_filter_all: for lrzip, grzip or lzop magic it
	 * runs that decompressor from PATH, as root, on image content. */
	archive_read_support_filter_gzip(in);
	archive_read_support_filter_zstd(in);
	archive_read_support_format_tar(in);
	archive_read_support_format_gnutar(in);
	archive_read_support_format_empty(in);
	if (archive_read_open(in, r, NULL, blob_read, NULL) != ARCHIVE_OK) {
		berth_err_set(err, 0, "not a readable tar archive: %s", archive_error_string(in));
		goto done;
	}
	for (;;) {
		struct archive_entry *e;
		int s = archive_read_next_header(in, &e);
		if (s == ARCHIVE_EOF)
			break;
		if (s != ARCHIVE_OK && s != ARCHIVE_WARN) {
			berth_err_set(err, 0, "not a readable tar archive: %s", archive_error_string(in));
			goto done;
		}
		if (budget_take(budget, e, err) < 0 || apply_entry(in, root_fd, e, &written, err) < 0)
			goto done;
	}
	if (blob_drain(r, err) < 0)
		goto done;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	if (EVP_DigestFinal_ex(r->md, md, &md_len) != 1 || md_len != 32) {
		berth_err_set(err, 0, "computing the layer's sha256 failed");
		goto done;
	}
	for (unsigned int i = 0; i < md_len; i++)
		snprintf(res->sha256 + 2 * i, 3, "%02x", md[i]);
	res->size = r->size;
	rc = 0;
done:
	if (in != NULL)
		archive_read_free(in);
	if (r != NULL)
		EVP_MD_CTX_free(r->md);
	free(r);
	path_set_free(&written);
	return rc;
}
