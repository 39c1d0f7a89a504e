/* artifact.c — see artifact.h. */
#include "artifact.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fsutil.h"
#include "unpack.h"

int artifact_local_path(const char *object_store_root, const char *url, char **path, struct berth_err *err)
{
	if (strncmp(url, "s3://", 5) == 0) {
		const char *rest = url + 5;
		if (rest[0] == '\0' || rest[0] == '/' || strstr(rest, "..") != NULL)
			return berth_err_set(err, 0, "ModelDataUrl \"%s\" is not a valid s3:// URL", url);
		if (object_store_root == NULL)
			return berth_err_set(err, 0,
					     "ModelDataUrl \"%s\" needs an object store: start berthd with "
					     "--object-store-root DIR (s3://bucket/key is read from DIR/bucket/key)",
					     url);
		*path = fs_path("%s/%s", object_store_root, rest);
	} else if (strncmp(url, "file://", 7) == 0) {
		const char *p = url + 7;
		if (p[0] != '/' || strstr(p, "/../") != NULL)
			return berth_err_set(err, 0, "ModelDataUrl \"%s\" must be file:///absolute/path", url);
		*path = strdup(p);
	} else {
		return berth_err_set(err, 0,
				     "ModelDataUrl \"%s\" uses a scheme berth cannot read yet; use s3:// or file://", url);
	}
	return *path ? 0 : berth_err_set(err, ENOMEM, "ModelDataUrl");
}

int artifact_resolve(const char *state_dir, const char *object_store_root, const char *url, char **dir,
		     struct berth_err *err)
{
	_cleanup_free_ char *path = NULL;
	if (artifact_local_path(object_store_root, url, &path, err) < 0)
		return -1;
	struct stat st;
	if (stat(path, &st) < 0)
		return berth_err_set(err, 0, "Failed to download model data from %s: %s does not exist", url, path);
	if (S_ISDIR(st.st_mode)) {
		*dir = berth_steal_ptr(&path);
		return 0;
	}
	char key[17];
	if (unpack_file_key(path, key, err) < 0)
		return -1;
	_cleanup_free_ char *parent = fs_path("%s/artifacts", state_dir);
	_cleanup_free_ char *dest = fs_path("%s/artifacts/%s", state_dir, key);
	if (parent == NULL || dest == NULL)
		return berth_err_set(err, ENOMEM, "ModelDataUrl");
	if (fs_mkdir_p(parent, 0700, err) < 0)
		return -1;
	if (unpack_once(path, dest, ARTIFACT_MAX_UNPACKED_BYTES, err) < 0)
		return berth_err_prefix(err, "Failed to extract model data from %s", url);
	*dir = berth_steal_ptr(&dest);
	return 0;
}
