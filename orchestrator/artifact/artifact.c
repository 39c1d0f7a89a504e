/* artifact.c — see artifact.h. */
#include "artifact.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifact_cache.h"
#include "buf.h"
#include "clock.h"
#include "fsutil.h"
#include "log.h"
#include "sigv4.h"
#include "unpack.h"

/* STATE/artifacts/KEY for this version of url */
static char *cache_entry(const char *state_dir, const char *url, const char *version)
{
	_cleanup_free_ char *id = fs_path("%s\n%s", url, version);
	if (id == NULL)
		return NULL;
	char hex[65];
	sigv4_sha256_hex(id, strlen(id), hex);
	hex[16] = '\0';
	return fs_path("%s/artifacts/%s", state_dir, hex);
}

/* STATE/artifacts/.last/HASH(url): the entry this URL last resolved to
 * from a remote store, for when the store cannot be reached */
static char *last_record(const char *state_dir, const char *url)
{
	char hex[65];
	sigv4_sha256_hex(url, strlen(url), hex);
	hex[16] = '\0';
	return fs_path("%s/artifacts/.last/%s", state_dir, hex);
}

/* The 16 hex digits of the record at rec into key[17]; -1 when none. */
static int read_record(const char *rec, char key[17])
{
	struct berth_buf b = BERTH_BUF_INIT;
	struct berth_err err;
	int r = -1;
	if (fs_read_file(rec, &b, 64, &err) == 0 && b.len == 16) {
		r = 0;
		for (size_t i = 0; i < 16; i++)
			if (!strchr("0123456789abcdef", b.data[i]) || b.data[i] == '\0')
				r = -1;
		if (r == 0) {
			memcpy(key, b.data, 16);
			key[16] = '\0';
		}
	}
	buf_free(&b);
	return r;
}

static void remember(const char *state_dir, const char *url, const char *dest)
{
	_cleanup_free_ char *dir = fs_path("%s/artifacts/.last", state_dir);
	_cleanup_free_ char *rec = last_record(state_dir, url);
	const char *key = strrchr(dest, '/');
	char old[17];
	struct berth_err err;
	if (dir == NULL || rec == NULL || key == NULL)
		return;
	if (read_record(rec, old) == 0 && strcmp(old, key + 1) == 0)
		return; /* the usual case: written once per version, not at every start */
	if (fs_mkdir_p(dir, 0700, &err) < 0 || fs_write_atomic(rec, key + 1, strlen(key + 1), 0600, &err) < 0)
		log_warn("artifact cache: %s", err.msg);
}

/* The entry url last resolved to, when it is still there; NULL if none. */
static char *remembered(const char *state_dir, const char *url)
{
	_cleanup_free_ char *rec = last_record(state_dir, url);
	char key[17];
	if (rec == NULL || read_record(rec, key) < 0)
		return NULL;
	char *dest = fs_path("%s/artifacts/%s", state_dir, key);
	struct stat sb;
	if (dest != NULL && (stat(dest, &sb) < 0 || !S_ISDIR(sb.st_mode))) {
		free(dest);
		dest = NULL;
	}
	return dest;
}

/* The entry dest (STATE/artifacts/KEY) a container start uses: key[]
 * set, marked used (and recorded when made now), then opened. */
static int use_entry(const struct artifact_config *cfg, const char *url, const char *dest, bool made,
		     char key[ARTIFACT_KEY_LEN + 1], int *dir_fd, struct berth_err *err);

static int open_dir(const char *path, int *dir_fd, struct berth_err *err)
{
	int d = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (d < 0)
		return berth_err_set(err, errno, "cannot open %s", path);
	*dir_fd = d;
	return 0;
}

/* The variant's ModelDataDownloadTimeoutInSeconds ran out (objstore.h
 * artifact_timeout_ms): says so, whatever the step that noticed. */
static int timed_out(const struct artifact_config *cfg, const char *url, const char *what, struct berth_err *err)
{
	berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
		       "Failed to download and extract %s from %s within the variant's "
		       "ModelDataDownloadTimeoutInSeconds (%d seconds). Raise it (at most 3600) in a new endpoint "
		       "configuration, or make the artifact smaller.",
		       what, url, cfg->store->artifact_timeout_ms / 1000);
	err->errnum = ETIMEDOUT; /* for the caller; not a system error to quote */
	return -1;
}

/* Downloads o into STATE/artifacts/.fetch and unpacks it into dest; the
 * download is removed whatever happens. Both within lim->deadline_ms
 * when set: the transfer gets what is left of it. */
static int fetch_unpack(const struct artifact_config *cfg, const struct objstore_object *o, const char *url,
			const char *what, const char *dest, const struct unpack_limits *lim, struct berth_err *err)
{
	_cleanup_free_ char *tdir = fs_path("%s/artifacts/.fetch", cfg->state_dir);
	_cleanup_free_ char *tmp = fs_path("%s/artifacts/.fetch/%d.%lx", cfg->state_dir, (int)getpid(),
					   (unsigned long)pthread_self());
	if (tdir == NULL || tmp == NULL)
		return berth_err_set(err, ENOMEM, "artifact cache");
	if (fs_mkdir_p(tdir, 0700, err) < 0)
		return -1;
	log_info("artifact: fetching %s", url);
	enum objstore_status st = OBJSTORE_OK;
	struct berth_err cause;
	struct objstore_config store = *cfg->store;
	if (lim->deadline_ms > 0) {
		long long left = lim->deadline_ms - clock_now_ms();
		if (left < 1)
			return timed_out(cfg, url, what, err);
		if (store.timeout_ms <= 0 || left < store.timeout_ms)
			store.timeout_ms = (int)left;
	}
	if (objstore_fetch(&store, o, tmp, lim->max_bytes, &st, &cause) < 0) {
		if (lim->deadline_ms > 0 && clock_now_ms() >= lim->deadline_ms)
			return timed_out(cfg, url, what, err);
		objstore_failure(o, url, what, st, &cause, err);
		return -1;
	}
	/* messages name the URL, not the download's path */
	_cleanup_close_ int fd = open(tmp, O_RDONLY | O_CLOEXEC);
	int r = fd >= 0 ? unpack_once_fd(fd, url, dest, lim, err) : berth_err_set(err, errno, "cannot open %s", tmp);
	unlink(tmp);
	if (r < 0 && err->errnum == ETIMEDOUT)
		return timed_out(cfg, url, what, err);
	if (r < 0)
		return berth_err_prefix(err, "Failed to extract %s from %s", what, url);
	return 0;
}

/* STATE/artifacts/.fetch/KEY.lock, held (flock) while KEY is fetched; a
 * waiter finds KEY there when it gets the lock. */
static char *lock_path(const char *state_dir, const char *dest)
{
	const char *key = strrchr(dest, '/');
	return fs_path("%s/artifacts/.fetch/%s.lock", state_dir, key ? key + 1 : dest);
}

static int lock_entry(const char *state_dir, const char *dest, struct berth_err *err)
{
	_cleanup_free_ char *tdir = fs_path("%s/artifacts/.fetch", state_dir);
	_cleanup_free_ char *path = lock_path(state_dir, dest);
	if (tdir == NULL || path == NULL)
		return berth_err_set(err, ENOMEM, "artifact cache");
	if (fs_mkdir_p(tdir, 0700, err) < 0)
		return -1;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return berth_err_set(err, errno, "cannot create %s", path);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			return berth_err_set(err, e, "cannot lock %s", path);
		}
	}
	return fd;
}

/* Removed while still held: whoever waits on it finds the entry done, and
 * whoever comes later creates a new lock and finds it too. */
static void unlock_entry(const char *state_dir, const char *dest, int fd)
{
	_cleanup_free_ char *path = lock_path(state_dir, dest);
	if (path != NULL)
		unlink(path);
	flock(fd, LOCK_UN);
}

static int use_entry(const struct artifact_config *cfg, const char *url, const char *dest, bool made,
		     char key[ARTIFACT_KEY_LEN + 1], int *dir_fd, struct berth_err *err)
{
	const char *base = strrchr(dest, '/');
	snprintf(key, ARTIFACT_KEY_LEN + 1, "%s", base ? base + 1 : dest);
	artifact_cache_used(cfg->state_dir, key, url, made);
	return open_dir(dest, dir_fd, err);
}

int artifact_resolve(const struct artifact_config *cfg, const char *url, const char *what, int *dir_fd,
		     char key[ARTIFACT_KEY_LEN + 1], struct berth_err *err)
{
	key[0] = '\0';
	if (cfg->store == NULL)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "%s \"%s\": berthd has no object store", what, url);
	long long deadline_ms =
		cfg->store->artifact_timeout_ms > 0 ? clock_now_ms() + cfg->store->artifact_timeout_ms : 0;
	__attribute__((cleanup(objstore_object_free))) struct objstore_object o = { 0 };
	_cleanup_free_ char *version = NULL;
	enum objstore_status st = OBJSTORE_OK;
	long long size = -1;
	struct berth_err cause;
	if (objstore_locate(cfg->store, url, &o, &st, &cause) < 0 ||
	    objstore_stat(cfg->store, &o, &version, &size, &st, &cause) < 0) {
		/* a restart while the store is down runs what this URL ran before */
		_cleanup_free_ char *last = st == OBJSTORE_UNREACHABLE ? remembered(cfg->state_dir, url) : NULL;
		if (last != NULL) {
			log_warn("artifact: %s; using the copy of %s fetched before (%s)", cause.msg, url, last);
			return use_entry(cfg, url, last, false, key, dir_fd, err);
		}
		objstore_failure(&o, url, what, st, &cause, err);
		return -1;
	}
	if (o.local_dir) { /* already unpacked: used as it is, through the descriptor opened beneath its root */
		_cleanup_free_ char *self = fs_path("/proc/self/fd/%d", o.local_fd);
		return self ? open_dir(self, dir_fd, err) : berth_err_set(err, ENOMEM, "artifact");
	}
	uint64_t max = cfg->max_bytes > 0 ? cfg->max_bytes : ARTIFACT_MAX_UNPACKED_BYTES;
	if (size > 0 && (uint64_t)size > max) { /* said before a byte is fetched */
		berth_err_set(&cause, 0, "%s is larger than the limit of %llu bytes (berthd's model_max_bytes)", url,
			      (unsigned long long)max);
		objstore_failure(&o, url, what, OBJSTORE_TOO_BIG, &cause, err);
		return -1;
	}
	_cleanup_free_ char *parent = fs_path("%s/artifacts", cfg->state_dir);
	_cleanup_free_ char *dest = cache_entry(cfg->state_dir, url, version);
	if (parent == NULL || dest == NULL)
		return berth_err_set(err, ENOMEM, "artifact cache");
	if (fs_mkdir_p(parent, 0700, err) < 0)
		return -1;
	bool remote = !o.local_open;
	struct stat sb;
	if (stat(dest, &sb) == 0 && S_ISDIR(sb.st_mode)) { /* this version is here: nothing to fetch */
		if (remote)
			remember(cfg->state_dir, url, dest);
		return use_entry(cfg, url, dest, false, key, dir_fd, err);
	}
	struct unpack_limits lim = { .max_bytes = max, .max_entries = UNPACK_DEFAULT_MAX_ENTRIES,
				     .deadline_ms = deadline_ms };
	if (o.local_open) {
		/* the file objstore_stat opened beneath its root, not its path again */
		if (unpack_once_fd(o.local_fd, url, dest, &lim, err) < 0)
			return err->errnum == ETIMEDOUT ? timed_out(cfg, url, what, err)
							: berth_err_prefix(err, "Failed to extract %s from %s", what, url);
		return use_entry(cfg, url, dest, true, key, dir_fd, err);
	}
	/* one download per entry: the instances of an endpoint start together */
	_cleanup_close_ int lock = lock_entry(cfg->state_dir, dest, err);
	if (lock < 0)
		return -1;
	bool made = !(stat(dest, &sb) == 0 && S_ISDIR(sb.st_mode));
	int r = made ? fetch_unpack(cfg, &o, url, what, dest, &lim, err) : 0;
	unlock_entry(cfg->state_dir, dest, lock);
	if (r < 0)
		return -1;
	remember(cfg->state_dir, url, dest);
	return use_entry(cfg, url, dest, made, key, dir_fd, err);
}

void artifact_sweep(const char *state_dir)
{
	_cleanup_free_ char *tdir = fs_path("%s/artifacts/.fetch", state_dir);
	struct berth_err err;
	if (tdir != NULL && access(tdir, F_OK) == 0 && fs_remove_tree(tdir, &err) < 0)
		log_warn("artifact cache: %s", err.msg);
}
