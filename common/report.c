/* report.c — see report.h. */
#include "report.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"

static int wait_readable(int fd, long long deadline_ms)
{
	for (;;) {
		int timeout = -1;
		if (deadline_ms >= 0) {
			long long left = deadline_ms - clock_now_ms();
			if (left <= 0)
				return 0;
			timeout = (int)left;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, timeout);
		if (r < 0 && errno == EINTR)
			continue;
		return r;
	}
}

int report_read(int fd, long long deadline_ms, char *line, size_t size, size_t *len)
{
	size_t used = 0;
	line[0] = '\0';
	*len = 0;
	while (used < size - 1) {
		if (wait_readable(fd, deadline_ms) <= 0)
			return -1;
		ssize_t n = read(fd, line + used, size - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += (size_t)n;
		line[used] = '\0';
		*len = used;
		if (memchr(line, '\n', used) != NULL)
			return 1;
	}
	return 0;
}

int report_parse(const char *line, struct berth_err *err)
{
	size_t n = strcspn(line, "\n");
	if (n == 2 && strncmp(line, "ok", 2) == 0)
		return 0;
	if (strncmp(line, "error: ", 7) == 0)
		line += 7, n -= 7;
	return berth_err_set(err, 0, "%.*s", (int)n, line);
}
