/* names.h — SageMaker's name patterns and limits, and the AWS-style
 * validation messages that go with them (CONTRACT.md §2). */
#ifndef BERTH_NAMES_H
#define BERTH_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define NAME_MAX_LEN 63          /* model, endpoint config, endpoint, variant */
#define HOSTNAME_MAX_LEN 63
#define IMAGE_MAX_LEN 255
#define MODEL_DATA_URL_MAX_LEN 1024
#define ENV_MAX_ENTRIES 100
#define ENV_KEY_MAX_LEN 1024
#define ENV_VALUE_MAX_LEN 1024
#define ENV_TOTAL_MAX_BYTES 32768
#define CONTAINERS_MAX 15

/* The patterns alone, at any length (AWS reports length and pattern as
 * separate constraints). */
bool name_matches_pattern(const char *s);
bool hostname_matches_pattern(const char *s);
/* [a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?, 1..63 */
bool name_is_valid(const char *s);
#define NAME_PATTERN "[a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?"
/* [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62} */
bool hostname_is_valid(const char *s);
#define HOSTNAME_PATTERN "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
/* [a-zA-Z_][a-zA-Z0-9_]*, 1..1024 */
bool env_key_is_valid(const char *s);
#define ENV_KEY_PATTERN "[a-zA-Z_][a-zA-Z0-9_]*"

/* Lower-cases into a new string (ARNs use lower-case names). */
char *name_lower(const char *s);

#endif
