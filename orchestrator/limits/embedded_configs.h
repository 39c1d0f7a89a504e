/* embedded_configs.h — the shipped configs/instance-types.json and
 * configs/seccomp.json, compiled into berthd (embedded_configs.c, .incbin)
 * so it needs no file to start; --instance-types / --seccomp-profile (or
 * berthd.json) replace them with files. */
#ifndef BERTH_EMBEDDED_CONFIGS_H
#define BERTH_EMBEDDED_CONFIGS_H

#include <stddef.h>

/* Not NUL-terminated: use the lengths. */
const char *embedded_instance_types(size_t *len);
const char *embedded_seccomp_profile(size_t *len);

#endif
