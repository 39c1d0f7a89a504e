/* image.c — see image.h. */
#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "reference.h"
#include "unpack.h"

/* Opens a directory or tarball image under the roots (O_PATH). */
static int open_local(const struct image_policy *p, const char *image, struct stat *st, struct berth_err *err)
{
	if (image[0] != '/')
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				     "Image \"%s\" is not an absolute path. berth runs images from this host: give "
				     "oci:/path/to/layout[:tag] (an OCI image layout), or the path of a root "
				     "filesystem directory or a rootfs tarball (.tar, .tar.gz).",
				     image);
	int fd = host_path_open(p ? p->roots : NULL, image, O_PATH, err);
	if (fd < 0 && err->errnum == EXDEV)
		return host_paths_refuse_image(p ? p->roots : NULL, image, err);
	if (fd < 0 && berth_err_input_class(err->errnum) != BERTH_ERR_VALIDATION)
		return berth_err_set(err, err->errnum, "cannot check image \"%s\"", image);
	if (fd < 0)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "Image \"%s\" does not exist on this host (%s).",
				      image, strerror(err->errnum));
	if (fstat(fd, st) < 0 || (!S_ISDIR(st->st_mode) && !S_ISREG(st->st_mode))) {
		close(fd);
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				      "Image \"%s\" is neither a rootfs directory nor a tarball.", image);
	}
	return fd;
}

static int no_registry(const char *image, struct berth_err *err)
{
	return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
			      "Image \"%s\" is a registry reference, and this berthd pulls from no registry. Give "
			      "oci:/path/to/layout[:tag], a rootfs directory or tarball, or ask the operator to "
			      "configure registries.",
			      image);
}

int image_check(const struct image_policy *p, const char *image, struct berth_err *err)
{
	if (image_reference_is(image))
		return p && p->registry ? registry_check(p->registry, image, err) : no_registry(image, err);
	if (oci_is_ref(image))
		return oci_check(p ? p->roots : NULL, image, err);
	struct stat st;
	int fd = open_local(p, image, &st, err);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int resolve_path(const char *state_dir, const struct image_policy *p, const char *image,
			struct image_info *out, struct berth_err *err)
{
	struct stat st;
	_cleanup_close_ int fd = open_local(p, image, &st, err);
	if (fd < 0)
		return -1;
	if (S_ISDIR(st.st_mode)) {
		/* the directory opened beneath its root is what the overlay gets */
		if ((out->rootfs = fs_path("/proc/self/fd/%d", fd)) == NULL)
			return berth_err_set(err, ENOMEM, "image");
		out->dir_fd = berth_steal_fd(&fd);
		out->holds_fd = true;
		return 0;
	}
	/* reopen the file itself for reading (an O_PATH descriptor cannot be read) */
	_cleanup_free_ char *self = fs_path("/proc/self/fd/%d", fd);
	_cleanup_close_ int file = self ? open(self, O_RDONLY | O_CLOEXEC) : -1;
	if (file < 0)
		return berth_err_set(err, errno, "Image %s", image);
	char key[17];
	if (unpack_fd_key(file, image, key, err) < 0)
		return -1;
	_cleanup_free_ char *dir = fs_path("%s/images/%s", state_dir, key);
	_cleanup_free_ char *root = fs_path("%s/images/%s/rootfs", state_dir, key);
	if (dir == NULL || root == NULL)
		return berth_err_set(err, ENOMEM, "image");
	if (fs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	struct unpack_limits lim = { .max_bytes = p ? p->max_bytes : 0, .max_entries = p ? p->max_entries : 0 };
	if (unpack_once_fd(file, image, root, &lim, err) < 0) {
		rmdir(dir); /* nothing of it stays in the cache (fails harmlessly if in use) */
		if (err->errnum == EFBIG)
			return berth_err_prefix(err, "Image \"%s\" is over berthd's image bounds (image_max_bytes %llu, "
						"image_max_entries %llu)",
						image, (unsigned long long)lim.max_bytes,
						(unsigned long long)lim.max_entries);
		return berth_err_prefix(err, "cannot unpack image %s", image);
	}
	out->rootfs = berth_steal_ptr(&root);
	return 0;
}

int image_resolve(const char *state_dir, const struct image_policy *p, const char *image, struct image_info *out,
		  struct berth_err *err)
{
	memset(out, 0, sizeof(*out));
	out->dir_fd = -1;
	struct layer_budget lim = { .max_bytes = p ? p->max_bytes : 0, .max_entries = p ? p->max_entries : 0 };
	if (image_reference_is(image)) {
		if (p == NULL || p->registry == NULL)
			return no_registry(image, err);
		struct registry_image pulled;
		if (registry_fetch(p->registry, image, NULL, &pulled, err) < 0)
			return -1;
		_cleanup_free_ char *layout = fs_path(OCI_PREFIX "%s:image", pulled.layout);
		if (layout == NULL)
			return berth_err_set(err, ENOMEM, "image");
		out->oci = true;
		if (oci_resolve(state_dir, &p->registry->roots, &lim, layout, &out->rootfs, &out->config, err) < 0)
			return berth_err_prefix(err, "Image \"%s\" (%s)", image, pulled.resolved);
		return 0;
	}
	if (oci_is_ref(image)) {
		out->oci = true;
		return oci_resolve(state_dir, p ? p->roots : NULL, &lim, image, &out->rootfs, &out->config, err);
	}
	return resolve_path(state_dir, p, image, out, err);
}

void image_info_free(struct image_info *info)
{
	free(info->rootfs);
	oci_image_config_free(&info->config);
	info->rootfs = NULL;
	if (info->holds_fd)
		close(info->dir_fd);
	info->holds_fd = false;
	info->dir_fd = -1;
}
