/* image.c — see image.h. */
#include "image.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fsutil.h"
#include "unpack.h"

int image_check(const char *image, struct berth_err *err)
{
	if (oci_is_ref(image))
		return oci_check(image, err);
	if (image[0] != '/')
		return berth_err_set(err, 0,
				     "Image \"%s\" is not an absolute path. berth runs images from this host: give "
				     "oci:/path/to/layout[:tag] (an OCI image layout), or the path of a root "
				     "filesystem directory or a rootfs tarball (.tar, .tar.gz).",
				     image);
	struct stat st;
	if (stat(image, &st) < 0)
		return berth_err_set(err, 0, "Image \"%s\" does not exist on this host (%s).", image,
				     strerror(errno));
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		return berth_err_set(err, 0, "Image \"%s\" is neither a rootfs directory nor a tarball.", image);
	return 0;
}

static int resolve_path(const char *state_dir, const char *image, char **rootfs, struct berth_err *err)
{
	struct stat st;
	if (stat(image, &st) < 0)
		return berth_err_set(err, errno, "Image %s", image);
	if (S_ISDIR(st.st_mode)) {
		*rootfs = strdup(image);
		return *rootfs ? 0 : berth_err_set(err, ENOMEM, "image");
	}
	char key[17];
	if (unpack_file_key(image, key, err) < 0)
		return -1;
	_cleanup_free_ char *dir = fs_path("%s/images/%s", state_dir, key);
	_cleanup_free_ char *root = fs_path("%s/images/%s/rootfs", state_dir, key);
	if (dir == NULL || root == NULL)
		return berth_err_set(err, ENOMEM, "image");
	if (fs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	if (unpack_once(image, root, 0, err) < 0)
		return berth_err_prefix(err, "cannot unpack image %s", image);
	*rootfs = berth_steal_ptr(&root);
	return 0;
}

int image_resolve(const char *state_dir, const char *image, struct image_info *out, struct berth_err *err)
{
	memset(out, 0, sizeof(*out));
	if (image_check(image, err) < 0)
		return -1;
	if (oci_is_ref(image)) {
		out->oci = true;
		return oci_resolve(state_dir, image, &out->rootfs, &out->config, err);
	}
	return resolve_path(state_dir, image, &out->rootfs, err);
}

void image_info_free(struct image_info *info)
{
	free(info->rootfs);
	oci_image_config_free(&info->config);
	info->rootfs = NULL;
}
