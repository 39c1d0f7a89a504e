/* layer.h — applies one OCI image layer (a tar stream: plain, gzip or zstd,
 * as the OCI media types allow; anything else is refused, and no external
 * decompressor is ever run) onto a root directory, as the OCI image spec's
 * "Applying Changesets" describes, and measures the blob while reading it.
 *
 * Safety: every entry is placed relative to root_fd, one path component at a
 * time with O_NOFOLLOW, so nothing is ever written outside the root:
 * absolute names and ".." components are refused, and an entry whose parent
 * is a symbolic link (say a link "/etc -> /host/etc" from an earlier entry or
 * layer) is refused rather than written through it. Symbolic links
 * themselves are created as they are (an absolute link is fine as a link).
 * Hard links must name a file inside the root.
 *
 * Replacement: an entry replaces whatever an earlier layer (or entry) left at
 * its path, except that a directory over a directory keeps the contents.
 * Whiteouts: ".wh.NAME" removes NAME; ".wh..wh..opq" empties its directory
 * of everything not written by this same layer. Whiteout files are never
 * created. Device nodes are skipped (devices come from the runtime).
 * Owners, modes, times and (for regular files) extended attributes are kept.
 *
 * The caller compares res->sha256 / res->size with the layer's descriptor;
 * the whole blob is read (trailing bytes after the tar end included), and
 * reading stops with an error as soon as it exceeds max_blob_bytes. */
#ifndef BERTH_LAYER_H
#define BERTH_LAYER_H

#include <stdint.h>

#include "err.h"

/* What the layers of one image may unpack to, all layers together; 0 = no
 * bound. Bytes are regular files' declared sizes (a sparse or highly
 * compressed file counts at its full size), checked before the entry is
 * written; entries are every header read. bytes/entries: used so far
 * (start at 0, carried from layer to layer). */
struct layer_budget {
	uint64_t max_bytes, max_entries;
	uint64_t bytes, entries;
};

struct layer_result {
	uint64_t size;     /* bytes of the blob read */
	char sha256[65];   /* lower-case hex digest of those bytes */
};

/* Applies the layer read from blob_fd (at its current offset) under root_fd.
 * max_blob_bytes: 0 = no bound. budget: NULL = no bound; going past it
 * fails with EFBIG. On error the root may hold part of the layer: apply
 * into a scratch directory and throw it away on failure. */
int layer_apply(int root_fd, int blob_fd, uint64_t max_blob_bytes, struct layer_budget *budget,
		struct layer_result *res, struct berth_err *err);

/* Normalises a tar entry name into out ("./a//b/" → "a/b"; "." → "").
 * Returns -1 for absolute names or ".." components (exposed for tests). */
int layer_clean_path(const char *name, char *out, size_t out_size);

#endif
