/* unpack.h — safe extraction of tar archives (plain, gzip, bzip2, xz or
 * zstd: what libarchive decodes itself; never an external decompressor)
 * into a berth-owned cache directory, once.
 *
 * Extraction never leaves the destination: entries with "..", absolute
 * paths, or paths through symlinks are refused (libarchive's SECURE_*
 * flags), device nodes are skipped. The archive is unpacked into
 * DEST.partial.PID and renamed to DEST only when complete, so a crash or
 * a bad archive never leaves a half-unpacked cache entry that looks done. */
#ifndef BERTH_UNPACK_H
#define BERTH_UNPACK_H

#include <stdint.h>

#include "err.h"

#define UNPACK_DEFAULT_MAX_ENTRIES 1000000ULL

/* Bounds of one unpack; 0 = no bound. Bytes are the sizes the entries
 * declare (a sparse or highly compressed file counts at its full size),
 * checked before anything of the entry is written; entries are every
 * header read (files, directories, links, skipped devices). */
struct unpack_limits {
	uint64_t max_bytes;
	uint64_t max_entries;
	/* clock_now_ms() (monotonic) by which the whole unpack must be done,
	 * checked at every entry and data block; past it the unpack fails
	 * with ETIMEDOUT (a variant's ModelDataDownloadTimeoutInSeconds). */
	long long deadline_ms;
};

/* Unpacks archive_path into dest unless dest already exists. Going past a
 * bound fails with EFBIG and a message naming the bound. A failure is
 * classed VALIDATION when the archive is at fault (missing, not a tar,
 * corrupt, escaping, too large) and INTERNAL when the host is (out of
 * space or memory, I/O error). */
int unpack_once(const char *archive_path, const char *dest, const struct unpack_limits *lim,
		struct berth_err *err);
/* The same from an open archive (read from offset 0); name is for messages. */
int unpack_once_fd(int archive_fd, const char *name, const char *dest, const struct unpack_limits *lim,
		   struct berth_err *err);

/* A short stable key for a local file's identity (path, size, mtime,
 * inode): 16 hex digits into out[17]. Changes when the file changes.
 * unpack_fd_key: the same for an open file, name standing for its path. */
int unpack_file_key(const char *path, char out[17], struct berth_err *err);
int unpack_fd_key(int fd, const char *name, char out[17], struct berth_err *err);

#endif
