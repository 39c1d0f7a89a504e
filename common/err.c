/* err.c — see err.h. */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
	int status;
	const char *type;         /* AWS JSON 1.1 (control plane) */
	const char *runtime_code; /* REST-JSON (runtime) */
} berth_err_classes[] = {
	[BERTH_ERR_INTERNAL] = { 500, "InternalFailure", "InternalFailure" },
	[BERTH_ERR_VALIDATION] = { 400, "ValidationException", "ValidationError" },
	[BERTH_ERR_SERIALIZATION] = { 400, "SerializationException", "ValidationError" },
	[BERTH_ERR_NOT_FOUND] = { 400, "ValidationException", "ValidationError" },
	[BERTH_ERR_ALREADY_EXISTS] = { 400, "ValidationException", "ValidationError" },
	[BERTH_ERR_RESOURCE_LIMIT] = { 400, "ResourceLimitExceeded", "ValidationError" },
	[BERTH_ERR_TOO_LARGE] = { 413, "ValidationException", "ValidationError" },
	[BERTH_ERR_UNKNOWN_OPERATION] = { 400, "UnknownOperationException", "ValidationError" },
	[BERTH_ERR_UNAVAILABLE] = { 503, "ServiceUnavailable", "ServiceUnavailable" },
	[BERTH_ERR_MODEL] = { 424, "ModelError", "ModelError" },
};

static enum berth_err_class class_known(enum berth_err_class cls)
{
	return (unsigned)cls < BERTH_ARRAY_SIZE(berth_err_classes) ? cls : BERTH_ERR_INTERNAL;
}

int berth_err_class_status(enum berth_err_class cls)
{
	return berth_err_classes[class_known(cls)].status;
}

const char *berth_err_class_type(enum berth_err_class cls)
{
	return berth_err_classes[class_known(cls)].type;
}

const char *berth_err_class_runtime_code(enum berth_err_class cls)
{
	return berth_err_classes[class_known(cls)].runtime_code;
}

static void err_vset(struct berth_err *err, enum berth_err_class cls, int errnum, const char *fmt, va_list ap)
{
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	if (n < 0)
		err->msg[0] = '\0';
	err->errnum = errnum;
	err->cls = errnum == ENOMEM ? BERTH_ERR_INTERNAL : class_known(cls);
	if (errnum != 0) {
		size_t used = strlen(err->msg);
		char tmp[256];
		const char *reason = strerror_r(errnum, tmp, sizeof(tmp));
		snprintf(err->msg + used, sizeof(err->msg) - used, ": %s", reason);
	}
}

int berth_err_set(struct berth_err *err, int errnum, const char *fmt, ...)
{
	if (err == NULL)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	err_vset(err, BERTH_ERR_INTERNAL, errnum, fmt, ap);
	va_end(ap);
	return -1;
}

int berth_err_setc(struct berth_err *err, enum berth_err_class cls, int errnum, const char *fmt, ...)
{
	if (err == NULL)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	err_vset(err, cls, errnum, fmt, ap);
	va_end(ap);
	return -1;
}

enum berth_err_class berth_err_input_class(int errnum)
{
	switch (errnum) {
	case 0:
	case ENOENT:
	case ENOTDIR:
	case EISDIR:
	case ELOOP:
	case ENAMETOOLONG:
	case EACCES:
	case EPERM:
	case EFBIG:
	case EXDEV:
	case EINVAL:
	case ENXIO:
	case ENODEV:
	case EMLINK: /* json.h's JSON_TOO_DEEP: the text nests too deep */
		return BERTH_ERR_VALIDATION;
	default:
		return BERTH_ERR_INTERNAL;
	}
}

int berth_err_blame_input(struct berth_err *err)
{
	if (err != NULL && err->cls == BERTH_ERR_INTERNAL)
		err->cls = berth_err_input_class(err->errnum);
	return -1;
}

int berth_err_prefix(struct berth_err *err, const char *fmt, ...)
{
	if (err == NULL)
		return -1;
	char prefix[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	size_t plen = strlen(prefix), olen = strlen(err->msg);
	if (plen + 2 >= sizeof(err->msg))
		plen = sizeof(err->msg) - 3;
	if (plen + 2 + olen >= sizeof(err->msg))
		olen = sizeof(err->msg) - plen - 3;
	memmove(err->msg + plen + 2, err->msg, olen);
	memcpy(err->msg, prefix, plen);
	memcpy(err->msg + plen, ": ", 2);
	err->msg[plen + 2 + olen] = '\0';
	return -1;
}

void berth_err_clear(struct berth_err *err)
{
	if (err != NULL) {
		err->errnum = 0;
		err->cls = BERTH_ERR_INTERNAL;
		err->msg[0] = '\0';
	}
}

void berth_freep(void *p)
{
	free(*(void **)p);
}

void berth_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

void berth_fclosep(void *p)
{
	FILE *f = *(FILE **)p;
	if (f != NULL)
		fclose(f);
}
