/* device_claims.h — the devices each berthd of this host holds, in one
 * directory (DEVICES_CLAIMS_DIR, /run/berth-devices) of files named by
 * the berthds' identities (identity.h), one fully qualified CDI name a
 * line, so that berthds reading the same CDI specs never hand out one
 * device twice. Each berthd writes only its own file; the others' are
 * read as they are (lines that are no CDI name skipped, at most
 * CLAIMS_MAX_BYTES a file). */
#ifndef BERTH_DEVICE_CLAIMS_H
#define BERTH_DEVICE_CLAIMS_H

#include <stddef.h>

#include "err.h"

#define CLAIMS_MAX_BYTES (1u << 20)

/* Every name the files of claims_dir other than identity's list; with
 * owners (may be NULL), whose file named each, in parallel. Both
 * NULL-terminated; the caller frees them with cdi_names_free. */
char **device_claims_read(const char *claims_dir, const char *identity, size_t *n, char ***owners);
/* Makes claims_dir/identity list names (written atomically, only when it
 * changes; removed when n is 0). */
int device_claims_write(const char *claims_dir, const char *identity, char *const *names, size_t n,
			struct berth_err *err);

#endif
