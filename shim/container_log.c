/* container_log.c — see container_log.h. */
#include "container_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"

#define LOG_READ_CHUNK 8192 /* on the stack: the shim keeps no big buffers */
#define LOG_DRAIN_ROUNDS 16 /* per event, so one chatty container cannot starve the socket */

static int log_open_fd(const char *path, struct berth_err *err)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd < 0)
		return berth_err_set(err, errno, "cannot open log %s", path);
	return fd;
}

int container_log_open(struct shim *shim, struct berth_err *err)
{
	int fd = log_open_fd(shim->cfg.log_path, err);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return berth_err_set(err, e, "stat %s", shim->cfg.log_path);
	}
	if (dup2(fd, STDERR_FILENO) < 0) {
		int e = errno;
		close(fd);
		return berth_err_set(err, e, "dup2 log onto stderr");
	}
	shim->log.fd = fd;
	shim->log.size = (unsigned long long)st.st_size;
	return 0;
}

static void log_rotate(struct shim *shim)
{
	_cleanup_free_ char *old = fs_path("%s.1", shim->cfg.log_path);
	if (old == NULL || rename(shim->cfg.log_path, old) < 0) {
		log_warn("cannot rotate log %s: %s", shim->cfg.log_path, strerror(old ? errno : ENOMEM));
		return;
	}
	struct berth_err err;
	int fd = log_open_fd(shim->cfg.log_path, &err);
	if (fd < 0) {
		log_warn("%s (keeping %s.1 open)", err.msg, shim->cfg.log_path);
		return;
	}
	close(shim->log.fd);
	shim->log.fd = fd;
	shim->log.size = 0;
	dup2(fd, STDERR_FILENO);
}

static void log_append(struct shim *shim, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(shim->log.fd, data, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_warn("cannot write log %s: %s; %zu bytes lost", shim->cfg.log_path, strerror(errno), len);
			return;
		}
		data += n;
		len -= (size_t)n;
		shim->log.size += (unsigned long long)n;
	}
}

void container_log_write(struct shim *shim, const char *data, size_t len)
{
	unsigned long long max = shim->cfg.log_max_bytes;
	if (max == 0 || shim->log.size + len < max) {
		log_append(shim, data, len);
		return;
	}
	/* Crossing the cap: end the old file at the chunk's last newline so a
	 * line is not split across LOG.1 and LOG (unless it has none). */
	const char *nl = memrchr(data, '\n', len);
	size_t head = nl ? (size_t)(nl - data) + 1 : len;
	log_append(shim, data, head);
	log_rotate(shim);
	if (head < len)
		log_append(shim, data + head, len - head);
}

int container_log_drain(struct shim *shim)
{
	if (shim->output_fd < 0)
		return 1;
	char chunk[LOG_READ_CHUNK];
	for (int round = 0; round < LOG_DRAIN_ROUNDS; round++) {
		ssize_t n = read(shim->output_fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			log_warn("reading the container's output: %s", strerror(errno));
			n = 0; /* treat as EOF */
		}
		if (n == 0) {
			epoll_ctl(shim->epfd, EPOLL_CTL_DEL, shim->output_fd, NULL);
			close(shim->output_fd);
			shim->output_fd = -1;
			return 1;
		}
		container_log_write(shim, chunk, (size_t)n);
	}
	return 0;
}
