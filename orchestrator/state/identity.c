/* identity.c — see identity.h. */
#include "identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"

void berth_identity_of(const char *state_real, const char *default_real, char out[BERTH_IDENTITY_MAX])
{
	if (default_real != NULL && strcmp(state_real, default_real) == 0) {
		snprintf(out, BERTH_IDENTITY_MAX, "%s", BERTH_IDENTITY_DEFAULT);
		return;
	}
	char hex[65];
	sigv4_sha256_hex(state_real, strlen(state_real), hex);
	snprintf(out, BERTH_IDENTITY_MAX, "%s-%.8s", BERTH_IDENTITY_DEFAULT, hex);
}

uint32_t berth_identity_number(const char *identity)
{
	size_t n = strlen(BERTH_IDENTITY_DEFAULT);
	if (strncmp(identity, BERTH_IDENTITY_DEFAULT "-", n + 1) != 0 || strlen(identity) != n + 9)
		return 0;
	return (uint32_t)strtoul(identity + n + 1, NULL, 16);
}
