/* unpack.c — see unpack.h. */
#include "unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pthread.h>
#include <unistd.h>

#include "clock.h"
#include "fsutil.h"
#include "log.h"

/* Whose fault a failure libarchive reports is, by its errno: the host's
 * when it ran out of something or failed (500), the archive's otherwise
 * (missing, not an archive, an entry it cannot hold). */
static enum berth_err_class failure_class(int errnum)
{
	switch (errnum) {
	case ENOSPC:
	case EDQUOT:
	case EIO:
	case EMFILE:
	case ENFILE:
	case ENOMEM:
	case EROFS:
		return BERTH_ERR_INTERNAL;
	default:
		return BERTH_ERR_VALIDATION;
	}
}

/* The writer's errno when it is the system's, so that the message says
 * why ("Could not open …: No space left on device"); 0 for libarchive's
 * own codes (negative, or EILSEQ/EINVAL, which it uses for bad formats
 * and misuse and whose strerror would mislead). */
static int os_errno(struct archive *a)
{
	int e = archive_errno(a);
	return e > 0 && e != EILSEQ && e != EINVAL ? e : 0;
}

static int extract(int archive_fd, const char *archive_path, const char *dest, const struct unpack_limits *lim,
		   struct berth_err *err)
{
	uint64_t max_bytes = lim ? lim->max_bytes : 0, max_entries = lim ? lim->max_entries : 0;
	long long deadline_ms = lim ? lim->deadline_ms : 0;
	struct archive *in = archive_read_new();
	struct archive *out = archive_write_disk_new();
	int r = -1;
	if (in == NULL || out == NULL) {
		berth_err_set(err, ENOMEM, "unpacking %s", archive_path);
		goto done;
	}
	/* gzip (what SageMaker's artifacts are), and the other compressions
	 * libarchive decodes itself. Not archive_read_support_filter_all: for
	 * lrzip, grzip or lzop magic it runs that decompressor from PATH, as
	 * root, on a downloaded artifact. */
	archive_read_support_filter_gzip(in);
	archive_read_support_filter_bzip2(in);
	archive_read_support_filter_xz(in);
	archive_read_support_filter_zstd(in);
	archive_read_support_format_tar(in);
	archive_read_support_format_gnutar(in);
	archive_write_disk_set_options(out, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
					       ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_XATTR |
					       ARCHIVE_EXTRACT_SECURE_NODOTDOT |
					       ARCHIVE_EXTRACT_SECURE_SYMLINKS);
	if (lseek(archive_fd, 0, SEEK_SET) < 0 || archive_read_open_fd(in, archive_fd, 1 << 16) != ARCHIVE_OK) {
		berth_err_setc(err, failure_class(archive_errno(in)), 0, "cannot open archive %s: %s", archive_path,
			       archive_error_string(in));
		goto done;
	}
	uint64_t total = 0, entries = 0;
	for (;;) {
		struct archive_entry *e;
		int s = archive_read_next_header(in, &e);
		if (s == ARCHIVE_EOF)
			break;
		if (deadline_ms > 0 && clock_now_ms() > deadline_ms) {
			berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "unpacking %s did not finish in time",
				       archive_path);
			err->errnum = ETIMEDOUT; /* for the caller; not a system error to quote */
			goto done;
		}
		if (s != ARCHIVE_OK && s != ARCHIVE_WARN) {
			berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "%s is not a readable tar archive: %s",
				       archive_path, archive_error_string(in));
			goto done;
		}
		/* names are checked here and then prefixed with dest, so libarchive sees
		 * absolute paths: SECURE_NOABSOLUTEPATHS cannot be used, the checks below
		 * stand in for it; SECURE_SYMLINKS still refuses writes through links */
		if (max_entries && ++entries > max_entries) {
			berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "%s holds more than %llu entries", archive_path,
				       (unsigned long long)max_entries);
			err->errnum = EFBIG;
			goto done;
		}
		_cleanup_free_ char *name = archive_entry_pathname(e) ? strdup(archive_entry_pathname(e)) : NULL;
		mode_t type = archive_entry_filetype(e);
		/* the declared size, before a byte is written: a sparse or highly
		 * compressed entry counts at the size it would take */
		if (type == AE_IFREG && archive_entry_size_is_set(e) && archive_entry_size(e) > 0) {
			uint64_t declared = (uint64_t)archive_entry_size(e);
			if (max_bytes && (declared > max_bytes || total + declared > max_bytes)) {
				berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "%s unpacks to more than %llu bytes",
					       archive_path, (unsigned long long)max_bytes);
				err->errnum = EFBIG;
				goto done;
			}
		}
		if (type == AE_IFCHR || type == AE_IFBLK)
			continue; /* devices come from the runtime, never from an archive */
		if (name == NULL || name[0] == '/' || strcmp(name, "..") == 0 || strncmp(name, "../", 3) == 0 ||
		    strstr(name, "/../") != NULL) {
			berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				       "%s: entry \"%s\" points outside the archive root; refusing to unpack it",
				      archive_path, name ? name : "");
			goto done;
		}
		_cleanup_free_ char *full = fs_path("%s/%s", dest, name);
		if (full == NULL) {
			berth_err_set(err, ENOMEM, "unpacking %s", archive_path);
			goto done;
		}
		archive_entry_set_pathname(e, full);
		const char *link = archive_entry_hardlink(e);
		_cleanup_free_ char *full_link = NULL;
		if (link != NULL && (link[0] == '/' || strcmp(link, "..") == 0 || strncmp(link, "../", 3) == 0 ||
				     strstr(link, "/../") != NULL)) {
			berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				       "%s: hard link \"%s\" points outside the archive root", archive_path, name);
			goto done;
		}
		if (link != NULL) {
			full_link = fs_path("%s/%s", dest, link);
			if (full_link == NULL) {
				berth_err_set(err, ENOMEM, "unpacking %s", archive_path);
				goto done;
			}
			archive_entry_set_hardlink(e, full_link);
		}
		if (archive_write_header(out, e) != ARCHIVE_OK) {
			berth_err_setc(err, failure_class(archive_errno(out)), os_errno(out), "%s: cannot unpack \"%s\": %s",
				       archive_path, name, archive_error_string(out));
			goto done;
		}
		const void *block;
		size_t size;
		la_int64_t offset;
		while ((s = archive_read_data_block(in, &block, &size, &offset)) == ARCHIVE_OK) {
			total += size;
			if (deadline_ms > 0 && clock_now_ms() > deadline_ms) {
				berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "unpacking %s did not finish in time",
					       archive_path);
				err->errnum = ETIMEDOUT;
				goto done;
			}
			if (max_bytes && total > max_bytes) {
				berth_err_setc(err, BERTH_ERR_VALIDATION, EFBIG, "%s unpacks to more than %llu bytes",
					       archive_path, (unsigned long long)max_bytes);
				goto done;
			}
			if (archive_write_data_block(out, block, size, offset) != ARCHIVE_OK) {
				berth_err_setc(err, failure_class(archive_errno(out)), os_errno(out),
					       "%s: cannot write \"%s\": %s", archive_path, name,
					       archive_error_string(out));
				goto done;
			}
		}
		if (s != ARCHIVE_EOF) {
			berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "%s: corrupt data in \"%s\": %s", archive_path,
				       name, archive_error_string(in));
			goto done;
		}
		if (archive_write_finish_entry(out) != ARCHIVE_OK) {
			berth_err_setc(err, failure_class(archive_errno(out)), os_errno(out), "%s: cannot finish \"%s\": %s",
				       archive_path, name, archive_error_string(out));
			goto done;
		}
	}
	r = 0;
done:
	if (in != NULL)
		archive_read_free(in);
	if (out != NULL) {
		if (archive_write_close(out) != ARCHIVE_OK && r == 0)
			r = berth_err_setc(err, failure_class(archive_errno(out)), os_errno(out), "%s: %s", archive_path,
					   archive_error_string(out));
		archive_write_free(out);
	}
	return r;
}

int unpack_once(const char *archive_path, const char *dest, const struct unpack_limits *lim,
		struct berth_err *err)
{
	_cleanup_close_ int fd = open(archive_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return berth_err_setc(err, berth_err_input_class(errno), errno, "cannot open archive %s", archive_path);
	return unpack_once_fd(fd, archive_path, dest, lim, err);
}

int unpack_once_fd(int archive_fd, const char *archive_path, const char *dest, const struct unpack_limits *lim,
		   struct berth_err *err)
{
	struct stat st;
	if (stat(dest, &st) == 0)
		return 0;
	_cleanup_free_ char *partial = fs_path("%s.partial.%d.%lx", dest, (int)getpid(), (unsigned long)pthread_self());
	if (partial == NULL)
		return berth_err_set(err, ENOMEM, "unpacking %s", archive_path);
	struct berth_err ignored;
	fs_remove_tree(partial, &ignored);
	if (fs_mkdir_p(partial, 0755, err) < 0)
		return -1;
	if (extract(archive_fd, archive_path, partial, lim, err) < 0) {
		fs_remove_tree(partial, &ignored);
		return -1;
	}
	if (rename(partial, dest) < 0) {
		int e = errno;
		fs_remove_tree(partial, &ignored);
		/* another thread finished the same entry first: theirs is as good */
		if ((e == ENOTEMPTY || e == EEXIST) && stat(dest, &st) == 0)
			return 0;
		return berth_err_set(err, e, "cannot move %s into place", dest);
	}
	log_info("unpacked %s into %s", archive_path, dest);
	return 0;
}

static void file_key(const char *path, const struct stat *st, char out[17]);

int unpack_file_key(const char *path, char out[17], struct berth_err *err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return berth_err_set(err, errno, "%s", path);
	file_key(path, &st, out);
	return 0;
}

int unpack_fd_key(int fd, const char *name, char out[17], struct berth_err *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return berth_err_set(err, errno, "%s", name);
	file_key(name, &st, out);
	return 0;
}

static void file_key(const char *path, const struct stat *stp, char out[17])
{
	const struct stat st = *stp;
	/* FNV-1a over the identity of the file: enough to tell versions apart */
	uint64_t h = 0xcbf29ce484222325ULL;
	char id[4096 + 96];
	int n = snprintf(id, sizeof(id), "%s|%lld|%lld.%ld|%llu", path, (long long)st.st_size,
			 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (unsigned long long)st.st_ino);
	for (int i = 0; i < n && i < (int)sizeof(id); i++) {
		h ^= (unsigned char)id[i];
		h *= 0x100000001b3ULL;
	}
	snprintf(out, 17, "%016llx", (unsigned long long)h);
}
