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
	if (image[0] != '/')
		return berth_err_set(err, 0,
				     "Image \"%s\" is not an absolute path. berth runs images from this host: give the path "
				     "of a root filesystem directory or a rootfs tarball (.tar, .tar.gz).",
				     image);
	struct stat st;
	if (stat(image, &st) < 0)
		return berth_err_set(err, 0, "Image \"%s\" does not exist on this host (%s).", image,
				     strerror(errno));
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		return berth_err_set(err, 0, "Image \"%s\" is neither a rootfs directory nor a tarball.", image);
	return 0;
}

int image_resolve(const char *state_dir, const char *image, char **rootfs, struct berth_err *err)
{
	if (image_check(image, err) < 0)
		return -1;
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
