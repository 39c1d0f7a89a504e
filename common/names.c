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

/* Both patterns describe alphanumerics with hyphens between them (never
 * first or last); HOSTNAME_PATTERN's {0,62} also bounds the alphanumerics
 * to 63 (max_alnums, 0 = unbounded). Any length: the length limit is a
 * constraint of its own in AWS's messages. */
static bool alnum_hyphen_pattern(const char *s, size_t max_alnums)
{
	size_t len = strlen(s), alnums = 0;
	if (len == 0 || !is_alnum(s[0]) || !is_alnum(s[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (is_alnum(s[i]))
			alnums++;
		else if (s[i] != '-')
			return false;
	}
	return max_alnums == 0 || alnums <= max_alnums;
}

bool name_matches_pattern(const char *s)
{
	return s != NULL && alnum_hyphen_pattern(s, 0);
}

bool hostname_matches_pattern(const char *s)
{
	return s != NULL && alnum_hyphen_pattern(s, HOSTNAME_MAX_LEN);
}

bool name_is_valid(const char *s)
{
	return name_matches_pattern(s) && strlen(s) <= NAME_MAX_LEN;
}

bool hostname_is_valid(const char *s)
{
	return hostname_matches_pattern(s) && strlen(s) <= HOSTNAME_MAX_LEN;
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
