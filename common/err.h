/* err.h — error out-parameter and cleanup helpers shared by every binary.
 *
 * Functions that can fail return 0 (or a non-negative value) on success and
 * -1 on failure, filling a caller-provided struct berth_err with the errno
 * (0 when none applies) and a message written for the user: what went wrong
 * and, where it helps, what to do. The message is printed in one place, by
 * whoever decides the failure is final (crun's libcrun_error_t, smaller).
 */
#ifndef BERTH_ERR_H
#define BERTH_ERR_H

#include <stddef.h>

struct berth_err {
	int errnum;       /* errno at the failure, 0 when none */
	char msg[1024];   /* NUL-terminated, includes strerror(errnum) if set */
};

/* Sets err (may be NULL) from a printf-style message; when errnum != 0
 * ": strerror(errnum)" is appended. Always returns -1 so callers can write
 * `return berth_err_set(err, errno, "open %s", path);`. */
int berth_err_set(struct berth_err *err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes an existing message: "context: old message". Returns -1. */
int berth_err_prefix(struct berth_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void berth_err_clear(struct berth_err *err);

/* cleanup helpers, used as `_cleanup_free_ char *s = NULL;` */
void berth_freep(void *p);   /* free(*(void **)p) */
void berth_closep(int *fd);  /* close(*fd) if >= 0, keeps errno */
void berth_fclosep(void *f); /* fclose(*(FILE **)p) if non-NULL */

#define _cleanup_free_ __attribute__((cleanup(berth_freep)))
#define _cleanup_close_ __attribute__((cleanup(berth_closep)))
#define _cleanup_fclose_ __attribute__((cleanup(berth_fclosep)))

/* Hands ownership out of a cleanup variable: `return steal_fd(&fd);`. */
static inline int berth_steal_fd(int *fd) { int r = *fd; *fd = -1; return r; }
static inline void *berth_steal_ptr(void *pp) { void **p = (void **)pp; void *r = *p; *p = NULL; return r; }

#define BERTH_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
