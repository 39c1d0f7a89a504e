/* names.c — SageMaker's name patterns (names.h). Plain ASCII tests rather
 * than <ctype.h>, whose answers depend on the locale. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool name_is_valid(const char *s)
{
	if (!s)
		return false;
	size_t len = strlen(s);
	if (len < 1 || len > NAME_MAX_LEN)
		return false;
	if (!is_alnum(s[0]) || !is_alnum(s[len - 1]))
		return false;
	for (size_t i = 1; i + 1 < len; i++)
		if (!is_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62} with SageMaker's length limit of 63:
 * starts and ends with an alphanumeric, hyphens (runs allowed) between. */
bool hostname_is_valid(const char *s)
{
	if (!s)
		return false;
	size_t len = strlen(s);
	if (len < 1 || len > HOSTNAME_MAX_LEN)
		return false;
	if (!is_alnum(s[0]) || !is_alnum(s[len - 1]))
		return false;
	for (size_t i = 1; i + 1 < len; i++)
		if (!is_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

bool env_key_is_valid(const char *s)
{
	if (!s)
		return false;
	size_t len = strlen(s);
	if (len < 1 || len > ENV_KEY_MAX_LEN)
		return false;
	if (!(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!is_alnum(s[i]) && s[i] != '_')
			return false;
	return true;
}

char *name_lower(const char *s)
{
	if (!s) {
		errno = EINVAL;
		return NULL;
	}
	char *out = strdup(s);
	if (!out)
		return NULL;
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return out;
}
