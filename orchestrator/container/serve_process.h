/* serve_process.h — the process a serving container runs: SageMaker starts
 * a container as `docker run IMAGE serve`, and this applies Docker's rules
 * for that command to berth's image config (docs/contract.md §4):
 *
 *   - the image has an Entrypoint: Entrypoint + ["serve"] (the argument
 *     replaces the image's Cmd, the Entrypoint is kept as it is);
 *   - it has none: ["serve"], which runc, like Docker, looks up inside the
 *     container in the process's PATH (CreateModel Environment's PATH, else
 *     the image config Env's, else Docker's default SERVE_DEFAULT_PATH)
 *     after entering the container's root and WorkingDir.
 *
 * runc does the lookup itself (runc 1.1: exec.LookPath after pivot_root,
 * with the container's environment), so what runs is exactly what Docker
 * would run. berthd checks first, resolving each PATH directory + "serve"
 * inside the image's root (openat2 RESOLVE_IN_ROOT: an absolute or `..`
 * symbolic link resolves within it, never on the host), so that an image
 * without `serve` fails its endpoint with a FailureReason naming every
 * place looked in rather than runc's terse error. Only absolute PATH
 * entries count (Go's LookPath refuses a program found through a relative
 * one).
 *
 * Images without a config (a rootfs directory or tarball) have no
 * Entrypoint and the default PATH, plus berth's own rule for them: when
 * `serve` is on no PATH directory, an executable /serve is run as
 * ["/serve", "serve"]. */
#ifndef BERTH_SERVE_PROCESS_H
#define BERTH_SERVE_PROCESS_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "resources.h"

/* Docker's default PATH, for an image whose config sets none. */
#define SERVE_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define SERVE_MAX_PATH 4096  /* a longer PATH is refused (the check would not be bounded) */

struct serve_process {
	char **argv;  /* NULL-terminated, owned */
	size_t argc;
};

/* The PATH the container's process gets: CreateModel Environment's PATH,
 * else the image config Env's, else SERVE_DEFAULT_PATH. Points into the
 * arguments or at the constant. */
const char *serve_process_path(const struct kv *image_env, size_t n_image_env, const struct kv *env, size_t n_env);

/* Fills out by the rules above for the image whose root is rootfs (a
 * directory path, /proc/self/fd/N included). entrypoint: the image
 * config's (n == 0: none); has_config: false for a rootfs directory or
 * tarball (the /serve rule). 0, or -1 with err (a missing `serve`: the
 * message names the image's PATH, each directory looked in and what to
 * do; class validation, the caller's image). */
int serve_process_resolve(const char *rootfs, char *const *entrypoint, size_t n_entrypoint, bool has_config,
			  const char *path, struct serve_process *out, struct berth_err *err);
void serve_process_free(struct serve_process *p);

#endif
