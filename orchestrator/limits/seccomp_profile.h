/* seccomp_profile.h — the containers' default seccomp profile
 * (configs/seccomp.json, Docker's default policy in Docker's profile
 * format) rendered into config.json's linux.seccomp the way Docker does:
 *
 *   - architectures: the archMap entry of this host's architecture and
 *     its sub-architectures (x86_64 → x86_64, x86, x32; aarch64 → aarch64,
 *     arm);
 *   - a rule is kept only when its "includes" all hold (every listed
 *     capability is in the container's set, the host architecture is
 *     listed, the kernel is at least minKernel) and none of its
 *     "excludes" do (no listed capability is in the set, the
 *     architecture is not listed);
 *   - names, action, errnoRet and args (index, value, valueTwo, op) are
 *     passed on; comments and conditions are not.
 *
 * The profile is validated when loaded (bounded size, every rule has
 * names and an SCMP_ACT_* action, args well formed), so rendering cannot
 * fail on bad input. Read-only once loaded: threads share it. */
#ifndef BERTH_SECCOMP_PROFILE_H
#define BERTH_SECCOMP_PROFILE_H

#include <stddef.h>
#include <yajl/yajl_gen.h>

#include "err.h"

struct seccomp_profile;

/* machine: uname's ("x86_64", "aarch64"); kernel: uname's release
 * ("6.1.0-18-amd64"). NULL for either: this host's. */
struct seccomp_profile *seccomp_profile_parse(const char *text, size_t len, const char *machine, const char *kernel,
					      struct berth_err *err);
/* path NULL: the profile compiled into berthd (embedded_configs.h). */
struct seccomp_profile *seccomp_profile_load(const char *path, struct berth_err *err);
void seccomp_profile_free(struct seccomp_profile *p);

/* Writes the "seccomp" key and its object into an open map, for a process
 * holding the capabilities caps ("CAP_CHOWN", …). */
int seccomp_profile_gen(const struct seccomp_profile *p, const char *const *caps, size_t n_caps, yajl_gen g);

#endif
