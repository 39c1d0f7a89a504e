/* router_log.h — berth-router's stdout and stderr, read by berthd.
 *
 * The router writes into a pipe berthd holds; a thread reads it and logs
 * each line through berthd's own log as "router: LINE". The router never
 * writes into berthd's log file itself, so it cannot forge berthd's
 * lines: every line it writes carries berthd's prefix and "router: ",
 * bytes outside printable ASCII (a carriage return, escape sequences)
 * are shown as \xNN, and a line longer than ROUTER_LOG_LINE_MAX bytes is
 * cut there ("[cut: N more bytes]"), so memory stays bounded whatever it
 * writes. */
#ifndef BERTH_ROUTER_LOG_H
#define BERTH_ROUTER_LOG_H

#include <stddef.h>

#include "err.h"

#define ROUTER_LOG_LINE_MAX 1024

struct router_log;

/* Makes the pipe and starts the reading thread. */
struct router_log *router_log_start(struct berth_err *err);
/* The write end, for the router's fds 1 and 2 (close-on-exec in berthd;
 * the spawner dup2s it). */
int router_log_fd(const struct router_log *rl);
/* Logs what is still in the pipe, stops the thread, closes both ends. */
void router_log_stop(struct router_log *rl);

/* One line as logged (without the "router: " prefix): out gets the
 * escaped text of line[0..len) and, when dropped > 0, the cut note.
 * Exposed for the unit test. */
void router_log_format(const char *line, size_t len, size_t dropped, char *out, size_t out_len);

#endif
