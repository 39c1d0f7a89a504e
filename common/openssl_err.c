/* openssl_err.c — see openssl_err.h. */
#include "openssl_err.h"

#include <stdio.h>

#include <openssl/err.h>

int openssl_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

const char *openssl_last_error(char *out, size_t len, const char *none_text)
{
	unsigned long e = ERR_peek_last_error();
	if (e == 0)
		snprintf(out, len, "%s", none_text);
	else
		ERR_error_string_n(e, out, len);
	ERR_clear_error();
	return out;
}
