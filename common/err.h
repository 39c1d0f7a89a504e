/* err.h — error out-parameter and cleanup helpers shared by every binary.
 *
 * Functions that can fail return 0 (or a non-negative value) on success and
 * -1 on failure, filling a caller-provided struct berth_err with the errno
 * (0 when none applies), a message written for the user (what went wrong
 * and, where it helps, what to do) and a class: whose fault it is, in
 * SageMaker's terms. The class is set where the failure arises (the code
 * that finds an image missing knows it is the caller's input; an ENOMEM is
 * always berth's own) and travels with the message up to the one place
 * that answers, which takes the HTTP status and the SageMaker error code
 * from it (crun's libcrun_error_t, smaller, plus the class).
 */
#ifndef BERTH_ERR_H
#define BERTH_ERR_H

#include <stddef.h>

/* Whose fault a failure is, and so how an API answers it. Each class has
 * one HTTP status and one error code per protocol (berth_err_class_*):
 *
 *   class                      status  control plane (__type)   runtime (x-amzn-ErrorType)
 *   BERTH_ERR_INTERNAL         500     InternalFailure          InternalFailure
 *   BERTH_ERR_VALIDATION       400     ValidationException      ValidationError
 *   BERTH_ERR_SERIALIZATION    400     SerializationException   ValidationError
 *   BERTH_ERR_NOT_FOUND        400     ValidationException      ValidationError
 *   BERTH_ERR_ALREADY_EXISTS   400     ValidationException      ValidationError
 *   BERTH_ERR_RESOURCE_LIMIT   400     ResourceLimitExceeded    ValidationError
 *   BERTH_ERR_TOO_LARGE        413     ValidationException      ValidationError
 *   BERTH_ERR_UNKNOWN_OPERATION 400    UnknownOperationException ValidationError
 *   BERTH_ERR_UNAVAILABLE      503     ServiceUnavailable       ServiceUnavailable
 *   BERTH_ERR_MODEL            424     ModelError               ModelError
 *
 * SageMaker answers a missing or an already existing resource with
 * ValidationException (docs/contract.md §2), hence the shared codes; the
 * classes stay apart so that the code says what it means. */
enum berth_err_class {
	BERTH_ERR_INTERNAL = 0, /* berth's own fault: memory, disk, a bug */
	BERTH_ERR_VALIDATION,
	BERTH_ERR_SERIALIZATION,
	BERTH_ERR_NOT_FOUND,
	BERTH_ERR_ALREADY_EXISTS,
	BERTH_ERR_RESOURCE_LIMIT,
	BERTH_ERR_TOO_LARGE,
	BERTH_ERR_UNKNOWN_OPERATION,
	BERTH_ERR_UNAVAILABLE,
	BERTH_ERR_MODEL,
};

struct berth_err {
	int errnum;                /* errno at the failure, 0 when none */
	enum berth_err_class cls;  /* INTERNAL unless the failing code said otherwise */
	char msg[1024];            /* NUL-terminated, includes strerror(errnum) if set */
};

/* Sets err (may be NULL) from a printf-style message, class INTERNAL; when
 * errnum != 0 ": strerror(errnum)" is appended. Always returns -1 so
 * callers can write `return berth_err_set(err, errno, "open %s", path);`. */
int berth_err_set(struct berth_err *err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The same with a class: `return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
 * "Image \"%s\" is not …", image);`. An ENOMEM (or an unknown class) is
 * always INTERNAL, whatever the caller says. */
int berth_err_setc(struct berth_err *err, enum berth_err_class cls, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The class of a failure to use a path, a file or data that the caller
 * (the API user) named: VALIDATION for the errnos that say the name is
 * wrong (ENOENT, ENOTDIR, EISDIR, ELOOP, ENAMETOOLONG, EACCES, EPERM,
 * EFBIG, EXDEV, EINVAL, ENXIO, ENODEV, and EMLINK: json_parse's "nests
 * too deep") and for 0 (a rule of the input was
 * broken), INTERNAL for anything else (EMFILE, ENOMEM, EIO, ENOSPC, …:
 * berth could not do its job). */
enum berth_err_class berth_err_input_class(int errnum);
/* Gives err the class berth_err_input_class(err->errnum) when it is still
 * INTERNAL: for an error from a general helper (fs_read_file, json_parse)
 * that failed on the caller's input. Returns -1. */
int berth_err_blame_input(struct berth_err *err);

/* The class's HTTP status, AWS JSON 1.1 error type, and runtime (REST-JSON)
 * error code, as tabled above; INTERNAL's for an unknown class. */
int berth_err_class_status(enum berth_err_class cls);
const char *berth_err_class_type(enum berth_err_class cls);
const char *berth_err_class_runtime_code(enum berth_err_class cls);

/* Prefixes an existing message: "context: old message" (class kept). Returns -1. */
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
