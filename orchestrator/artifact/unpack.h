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

/* Unpacks archive_path into dest unless dest already exists. max_bytes
 * bounds the total unpacked size (0 = no bound). */
int unpack_once(const char *archive_path, const char *dest, uint64_t max_bytes, struct berth_err *err);

/* A short stable key for a local file's identity (path, size, mtime,
 * inode): 16 hex digits into out[17]. Changes when the file changes. */
int unpack_file_key(const char *path, char out[17], struct berth_err *err);

#endif
