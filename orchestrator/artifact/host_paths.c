/* host_paths.c — see host_paths.h. */
#include "host_paths.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define HOST_PATH_MAX 4096

/* "/a//b/./c/" → "/a/b/c"; "/" stays "/". -1 when not absolute, too long,
 * or a component is "..". */
static int normalise(const char *in, char *out, size_t out_size)
{
	if (in == NULL || in[0] != '/' || out_size < 2)
		return -1;
	size_t len = 0;
	for (const char *p = in; *p;) {
		while (*p == '/')
			p++;
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -1;
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (len + 1 + n + 1 > out_size)
				return -1;
			out[len++] = '/';
			memcpy(out + len, p, n);
			len += n;
		}
		p = end;
	}
	if (len == 0)
		out[len++] = '/';
	out[len] = '\0';
	return 0;
}

int host_roots_add(struct host_roots *r, const char *dir, struct berth_err *err)
{
	char norm[HOST_PATH_MAX];
	if (normalise(dir, norm, sizeof(norm)) < 0)
		return berth_err_set(err, 0, "root \"%s\" must be an absolute directory path without \"..\"", dir);
	if (r->n == HOST_ROOTS_MAX)
		return berth_err_set(err, 0, "at most %d roots of one kind", HOST_ROOTS_MAX);
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->dirs[i], norm) == 0)
			return 0;
	if ((r->dirs[r->n] = strdup(norm)) == NULL)
		return berth_err_set(err, ENOMEM, "roots");
	r->n++;
	return 0;
}

void host_roots_free(struct host_roots *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->dirs[i]);
	r->n = 0;
}

void host_roots_describe(const struct host_roots *r, struct berth_buf *out)
{
	if (r == NULL || r->n == 0) {
		buf_append_str(out, "none");
		return;
	}
	for (size_t i = 0; i < r->n; i++)
		buf_printf(out, "%s%s", i ? ", " : "", r->dirs[i]);
}

int host_path_open_beneath(const char *root, const char *rel, int flags, struct berth_err *err)
{
	_cleanup_close_ int root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return berth_err_set(err, errno, "root %s", root);
	struct open_how how = {
		.flags = (unsigned long long)(flags | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, root_fd, rel[0] ? rel : ".", &how, sizeof(how));
	if (fd < 0)
		return berth_err_set(err, errno, "%s/%s", root, rel);
	return fd;
}

int host_path_open(const struct host_roots *r, const char *path, int flags, struct berth_err *err)
{
	char norm[HOST_PATH_MAX];
	if (normalise(path, norm, sizeof(norm)) < 0)
		return berth_err_set(err, EXDEV, "\"%s\" is not an absolute path without \"..\"", path);
	for (size_t i = 0; r != NULL && i < r->n; i++) {
		const char *root = r->dirs[i];
		size_t n = strlen(root);
		const char *rel;
		if (strcmp(root, "/") == 0)
			rel = norm + 1;
		else if (strncmp(norm, root, n) == 0 && (norm[n] == '\0' || norm[n] == '/'))
			rel = norm[n] == '/' ? norm + n + 1 : "";
		else
			continue;
		/* the first root the path is under decides: a path under two
		 * nested roots is resolved beneath the outer one listed first */
		return host_path_open_beneath(root, rel, flags, err);
	}
	return berth_err_set(err, EXDEV, "%s is not under any allowed root", path);
}

int host_paths_refuse_image(const struct host_roots *r, const char *image, struct berth_err *err)
{
	struct berth_buf roots = BERTH_BUF_INIT;
	host_roots_describe(r, &roots);
	berth_err_set(err, 0,
		      "Image \"%s\" is outside the directories berth may run images from (image roots: %s). Move "
		      "the image under one of them, or add its directory to image_roots in berthd's configuration "
		      "(--image-root); a symbolic link must not lead out of its root.",
		      image, roots.data ? roots.data : "none");
	buf_free(&roots);
	err->errnum = EXDEV;
	return -1;
}

int host_paths_refuse_model(const struct host_roots *r, const char *url, struct berth_err *err)
{
	struct berth_buf roots = BERTH_BUF_INIT;
	host_roots_describe(r, &roots);
	berth_err_set(err, 0,
		      "Could not access model data at %s: it is outside the directories berth may read model data "
		      "from (model roots: %s). Move it under one of them, or add its directory to model_roots in "
		      "berthd's configuration (--model-root); a symbolic link must not lead out of its root.",
		      url, roots.data ? roots.data : "none");
	buf_free(&roots);
	err->errnum = EXDEV;
	return -1;
}
