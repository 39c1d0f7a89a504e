/* serve_process.c — see serve_process.h. */
#include "serve_process.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"

#define SERVE "serve"

static const char *env_value(const struct kv *env, size_t n, const char *key)
{
	const char *v = NULL;
	for (size_t i = 0; i < n; i++) /* a key given twice: the last wins, as in the bundle */
		if (strcmp(env[i].key, key) == 0)
			v = env[i].value;
	return v;
}

const char *serve_process_path(const struct kv *image_env, size_t n_image_env, const struct kv *env, size_t n_env)
{
	const char *p = env_value(env, n_env, "PATH");
	if (p == NULL)
		p = env_value(image_env, n_image_env, "PATH");
	return p != NULL ? p : SERVE_DEFAULT_PATH;
}

/* true when file (absolute, as the container sees it) is an executable
 * regular file inside root, symbolic links resolved as in a chroot. */
static bool executable_in_root(int root, const char *file)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	int fd = (int)syscall(SYS_openat2, root, file, &how, sizeof(how));
	if (fd < 0)
		return false;
	struct stat st;
	bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0;
	close(fd);
	return ok;
}

static int set_argv(struct serve_process *out, char *const *head, size_t n_head, const char *tail)
{
	out->argv = calloc(n_head + 2, sizeof(char *));
	if (out->argv == NULL)
		return -1;
	for (size_t i = 0; i < n_head; i++)
		if ((out->argv[out->argc++] = strdup(head[i])) == NULL)
			return -1;
	if ((out->argv[out->argc++] = strdup(tail)) == NULL)
		return -1;
	return 0;
}

int serve_process_resolve(const char *rootfs, char *const *entrypoint, size_t n_entrypoint, bool has_config,
			  const char *path, struct serve_process *out, struct berth_err *err)
{
	memset(out, 0, sizeof(*out));
	if (n_entrypoint > 0) {
		/* Entrypoint kept, the argument replaces Cmd */
		if (set_argv(out, entrypoint, n_entrypoint, SERVE) < 0) {
			serve_process_free(out);
			return berth_err_set(err, ENOMEM, "container process");
		}
		return 0;
	}
	if (strlen(path) > SERVE_MAX_PATH)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				      "the container's PATH is %zu bytes long; berth looks for \"serve\" only in a PATH of "
				      "at most %d bytes. Shorten PATH (image config Env or the model's Environment)",
				      strlen(path), SERVE_MAX_PATH);
	_cleanup_close_ int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return berth_err_set(err, errno, "cannot open the image's root %s", rootfs);
	_cleanup_free_ char *dirs = strdup(path);
	struct berth_buf looked = BERTH_BUF_INIT;
	bool found = false;
	if (dirs == NULL)
		return berth_err_set(err, ENOMEM, "container process");
	char *save = NULL;
	for (char *d = strtok_r(dirs, ":", &save); d != NULL && !found; d = strtok_r(NULL, ":", &save)) {
		if (d[0] != '/') /* Go's LookPath, in runc, refuses what a relative entry finds */
			continue;
		size_t len = strlen(d);
		while (len > 1 && d[len - 1] == '/')
			d[--len] = '\0';
		_cleanup_free_ char *file = fs_path("%s/" SERVE, len == 1 ? "" : d);
		if (file == NULL) {
			buf_free(&looked);
			return berth_err_set(err, ENOMEM, "container process");
		}
		found = executable_in_root(root, file);
		buf_printf(&looked, "%s%s", looked.len > 0 ? ", " : "", file);
	}
	if (found) {
		buf_free(&looked);
		if (set_argv(out, NULL, 0, SERVE) < 0) {
			serve_process_free(out);
			return berth_err_set(err, ENOMEM, "container process");
		}
		return 0;
	}
	if (!has_config && executable_in_root(root, "/" SERVE)) {
		/* berth's rule for a rootfs directory or tarball */
		buf_free(&looked);
		char *slash_serve = "/" SERVE;
		if (set_argv(out, &slash_serve, 1, SERVE) < 0) {
			serve_process_free(out);
			return berth_err_set(err, ENOMEM, "container process");
		}
		return 0;
	}
	berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
		       "the image has no Entrypoint, so berth runs \"serve\" as `docker run IMAGE serve` does, looked "
		       "up in the container's PATH (%.200s), but none of %.300s%s is an executable file in the "
		       "image. Put serve in one of those directories, set PATH (the image config's Env or the "
		       "model's Environment) to include its directory, or give the image an Entrypoint",
		       path, looked.len > 0 ? looked.data : "(no absolute directory)",
		       has_config ? "" : " nor /serve");
	buf_free(&looked);
	return -1;
}

void serve_process_free(struct serve_process *p)
{
	for (size_t i = 0; p->argv != NULL && i < p->argc; i++)
		free(p->argv[i]);
	free(p->argv);
	p->argv = NULL;
	p->argc = 0;
}
