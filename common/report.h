/* report.h — the one-line start report of a process berth spawns (the
 * shim, through its --ready-fd pipe): "ok\n" or "error: MESSAGE\n". The
 * writer writes one line; the reader takes bytes up to the first newline,
 * bounded in size and, where it waits for a child, in time. */
#ifndef BERTH_REPORT_H
#define BERTH_REPORT_H

#include <stddef.h>

#include "err.h"

#define REPORT_MAX 1200 /* "error: " + a berth_err message + newline */

/* Reads from fd into line (size > 1) until a newline, EOF, size - 1 bytes
 * or deadline_ms (clock.h's monotonic clock; < 0: no deadline). line is
 * NUL-terminated and keeps its newline. Returns 1 when a newline was read,
 * 0 on EOF (or a full buffer) without one, -1 on time-out. */
int report_read(int fd, long long deadline_ms, char *line, size_t size, size_t *len);
/* A complete report line: 0 for "ok"; otherwise -1 with err set to the
 * message (without "error: " and the newline). */
int report_parse(const char *line, struct berth_err *err);

#endif
