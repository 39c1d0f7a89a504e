/* embedded_configs.c — see embedded_configs.h. The paths are relative to
 * the directory make runs in (the repository root); the Makefile makes
 * this object depend on both files. */
#include "embedded_configs.h"

__asm__(".section .rodata\n"
	".balign 16\n"
	"berth_instance_types_start:\n"
	".incbin \"configs/instance-types.json\"\n"
	"berth_instance_types_end:\n"
	".balign 16\n"
	"berth_seccomp_start:\n"
	".incbin \"configs/seccomp.json\"\n"
	"berth_seccomp_end:\n"
	".previous\n");

extern const char berth_instance_types_start[], berth_instance_types_end[];
extern const char berth_seccomp_start[], berth_seccomp_end[];

const char *embedded_instance_types(size_t *len)
{
	*len = (size_t)(berth_instance_types_end - berth_instance_types_start);
	return berth_instance_types_start;
}

const char *embedded_seccomp_profile(size_t *len)
{
	*len = (size_t)(berth_seccomp_end - berth_seccomp_start);
	return berth_seccomp_start;
}
