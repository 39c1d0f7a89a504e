/* artifact.c — see artifact.h. */
#include "artifact.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "fsutil.h"
#include "host_paths.h"
#include "unpack.h"

/* Opens what the URL names (O_PATH), beneath the root it must stay in. */
static int open_source(const struct objstore_config *store, const char *url, struct berth_err *err)
{
	struct berth_err oe;
	int fd;
	if (strncmp(url, "s3://", 5) == 0) {
		const char *rest = url + 5;
		if (rest[0] == '\0' || rest[0] == '/' || strstr(rest, "..") != NULL)
			return berth_err_set(err, 0, "ModelDataUrl \"%s\" is not a valid s3:// URL", url);
		if (store == NULL || store->local_root == NULL)
			return berth_err_set(err, 0,
					     "ModelDataUrl \"%s\" needs an object store: start berthd with "
					     "--object-store-root DIR (s3://bucket/key is read from DIR/bucket/key)",
					     url);
		if (objstore_check(store, url, err) < 0)
			return -1;
		fd = host_path_open_beneath(store->local_root, rest, O_PATH, &oe);
		if (fd < 0 && (oe.errnum == EXDEV || oe.errnum == ELOOP))
			return berth_err_set(err, 0,
					     "Could not access model data at %s: it leads out of the object store root "
					     "%s through a symbolic link.",
					     url, store->local_root);
	} else if (strncmp(url, "file://", 7) == 0) {
		const char *p = url + 7;
		if (p[0] != '/')
			return berth_err_set(err, 0, "ModelDataUrl \"%s\" must be file:///absolute/path", url);
		fd = host_path_open(store ? store->model_roots : NULL, p, O_PATH, &oe);
		if (fd < 0 && (oe.errnum == EXDEV || oe.errnum == ELOOP))
			return host_paths_refuse_model(store ? store->model_roots : NULL, url, err);
	} else {
		return berth_err_set(err, 0,
				     "ModelDataUrl \"%s\" uses a scheme berth cannot read yet; use s3:// or file://", url);
	}
	if (fd < 0)
		return berth_err_set(err, 0, "Failed to download model data from %s: %s", url, oe.msg);
	return fd;
}

int artifact_resolve(const char *state_dir, const struct objstore_config *store, const char *url, int *dir_fd,
		     struct berth_err *err)
{
	int timeout_ms = store ? store->artifact_timeout_ms : 0;
	long long deadline_ms = timeout_ms > 0 ? clock_now_ms() + timeout_ms : 0;
	_cleanup_close_ int fd = open_source(store, url, err);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return berth_err_set(err, errno, "ModelDataUrl %s", url);
	if (S_ISDIR(st.st_mode)) {
		*dir_fd = berth_steal_fd(&fd);
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return berth_err_set(err, 0, "Failed to download model data from %s: it is neither a file nor a directory",
				     url);
	/* the file found beneath the root, reopened for reading through its descriptor */
	_cleanup_free_ char *self = fs_path("/proc/self/fd/%d", fd);
	_cleanup_close_ int file = self ? open(self, O_RDONLY | O_CLOEXEC) : -1;
	if (file < 0)
		return berth_err_set(err, errno, "ModelDataUrl %s", url);
	char key[17];
	if (unpack_fd_key(file, url, key, err) < 0)
		return -1;
	_cleanup_free_ char *parent = fs_path("%s/artifacts", state_dir);
	_cleanup_free_ char *dest = fs_path("%s/artifacts/%s", state_dir, key);
	if (parent == NULL || dest == NULL)
		return berth_err_set(err, ENOMEM, "ModelDataUrl");
	if (fs_mkdir_p(parent, 0700, err) < 0)
		return -1;
	struct unpack_limits lim = { .max_bytes = ARTIFACT_MAX_UNPACKED_BYTES, .max_entries = UNPACK_DEFAULT_MAX_ENTRIES,
				     .deadline_ms = deadline_ms };
	if (unpack_once_fd(file, url, dest, &lim, err) < 0) {
		if (err->errnum == ETIMEDOUT) {
			berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				       "Failed to download and extract model data from %s within the variant's "
				       "ModelDataDownloadTimeoutInSeconds (%d seconds). Raise it (at most 3600) in a "
				       "new endpoint configuration, or make the artifact smaller.",
				       url, timeout_ms / 1000);
			err->errnum = ETIMEDOUT;
			return -1;
		}
		return berth_err_prefix(err, "Failed to extract model data from %s", url);
	}
	int d = open(dest, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (d < 0)
		return berth_err_set(err, errno, "cannot open %s", dest);
	*dir_fd = d;
	return 0;
}
