/* err.c — see err.h. */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int berth_err_set(struct berth_err *err, int errnum, const char *fmt, ...)
{
	if (err == NULL)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		err->msg[0] = '\0';
	err->errnum = errnum;
	if (errnum != 0) {
		size_t used = strlen(err->msg);
		char tmp[256];
		const char *reason = strerror_r(errnum, tmp, sizeof(tmp));
		snprintf(err->msg + used, sizeof(err->msg) - used, ": %s", reason);
	}
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
