/* router_log.c — see router_log.h. */
#include "router_log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"

struct router_log {
	int read_fd;
	int write_fd;
	int wake_fd;     /* eventfd: stop */
	pthread_t thread;
	char line[ROUTER_LOG_LINE_MAX];
	size_t len;
	size_t dropped;  /* bytes of the current line past ROUTER_LOG_LINE_MAX */
};

void router_log_format(const char *line, size_t len, size_t dropped, char *out, size_t out_len)
{
	/* keep room for the cut note */
	size_t room = out_len > 48 ? out_len - 48 : 0, n = 0, i = 0;
	for (; i < len && n + 4 < room; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			out[n++] = (char)c;
		} else if (c == '\\') {
			out[n++] = '\\';
			out[n++] = '\\';
		} else {
			n += (size_t)snprintf(out + n, out_len - n, "\\x%02x", c);
		}
	}
	dropped += len - i;
	if (out_len > 0)
		out[n < out_len ? n : out_len - 1] = '\0';
	if (dropped > 0 && n < out_len)
		snprintf(out + n, out_len - n, " [cut: %zu more bytes]", dropped);
}

static void emit(struct router_log *rl)
{
	char text[1800]; /* berth_log's line is 2048 bytes */
	router_log_format(rl->line, rl->len, rl->dropped, text, sizeof(text));
	log_info("router: %s", text);
	rl->len = 0;
	rl->dropped = 0;
}

static void take(struct router_log *rl, const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (data[i] == '\n')
			emit(rl);
		else if (rl->len < ROUTER_LOG_LINE_MAX)
			rl->line[rl->len++] = data[i];
		else
			rl->dropped++;
	}
}

/* Reads what the pipe holds now; false at end of file or on an error. */
static bool drain(struct router_log *rl)
{
	char buf[4096];
	for (;;) {
		ssize_t n = read(rl->read_fd, buf, sizeof(buf));
		if (n > 0) {
			take(rl, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && errno == EAGAIN;
	}
}

static void *reader(void *arg)
{
	struct router_log *rl = arg;
	for (;;) {
		struct pollfd p[2] = { { rl->read_fd, POLLIN, 0 }, { rl->wake_fd, POLLIN, 0 } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("router log: poll: %s", strerror(errno));
			break;
		}
		if (p[0].revents && !drain(rl))
			break;
		if (p[1].revents) {
			drain(rl);
			break;
		}
	}
	if (rl->len > 0 || rl->dropped > 0)
		emit(rl); /* a last line without its newline */
	return NULL;
}

struct router_log *router_log_start(struct berth_err *err)
{
	struct router_log *rl = calloc(1, sizeof(*rl));
	if (rl == NULL) {
		berth_err_set(err, ENOMEM, "router log");
		return NULL;
	}
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0) {
		berth_err_set(err, errno, "router log pipe");
		free(rl);
		return NULL;
	}
	rl->wake_fd = -1;
	rl->read_fd = fds[0];
	rl->write_fd = fds[1];
	int r = 0;
	if (fcntl(rl->read_fd, F_SETFL, O_NONBLOCK) < 0 || (rl->wake_fd = eventfd(0, EFD_CLOEXEC)) < 0)
		r = berth_err_set(err, errno, "router log pipe");
	else if ((r = pthread_create(&rl->thread, NULL, reader, rl)) != 0)
		r = berth_err_set(err, r, "starting the router log thread");
	if (r < 0) {
		close(rl->read_fd);
		close(rl->write_fd);
		if (rl->wake_fd >= 0)
			close(rl->wake_fd);
		free(rl);
		return NULL;
	}
	return rl;
}

int router_log_fd(const struct router_log *rl)
{
	return rl->write_fd;
}

void router_log_stop(struct router_log *rl)
{
	if (rl == NULL)
		return;
	uint64_t one = 1;
	if (write(rl->wake_fd, &one, sizeof(one)) < 0)
		log_warn("stopping the router log thread: %s", strerror(errno));
	pthread_join(rl->thread, NULL);
	close(rl->read_fd);
	close(rl->write_fd);
	close(rl->wake_fd);
	free(rl);
}
