/* skopeo.h — runs Debian's skopeo (executed, never linked) with a time
 * limit, bounded output and a stop switch.
 *
 * The child runs in its own process group with PR_SET_PDEATHSIG (SIGKILL),
 * standard input /dev/null, no descriptor of berthd's but its two pipes,
 * and an environment of PATH, HOME and CONTAINERS_REGISTRIES_CONF (the
 * caller's file: berthd's own registries settings, never the host's
 * /etc/containers mirrors). It is killed (the whole group, SIGKILL) and
 * reaped when the deadline passes, when *stop becomes true or cancelled()
 * says so, or when its
 * standard output grows past max_stdout; skopeo_run returns only once it
 * is gone. */
#ifndef BERTH_SKOPEO_H
#define BERTH_SKOPEO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

#define SKOPEO_STDERR_KEEP 4096 /* the last bytes of its standard error kept for messages */

struct skopeo_run {
	const char *const *argv;        /* argv[0]: the skopeo binary (PATH searched) */
	const char *registries_conf;    /* CONTAINERS_REGISTRIES_CONF */
	const char *home;               /* HOME (where skopeo would look for its auth.json) */
	long long timeout_ms;
	const atomic_bool *stop;        /* may be NULL */
	bool (*cancelled)(void *ctx);   /* also asked every 200 ms (may be NULL) */
	void *cancel_ctx;
	size_t max_stdout;
	/* each line of standard output as it arrives (may be NULL) */
	void (*on_line)(void *user_data, const char *line);
	void *user_data;
};

enum skopeo_outcome {
	SKOPEO_EXITED,    /* *exit_status is its status (0: success) */
	SKOPEO_TIMED_OUT,
	SKOPEO_STOPPED,   /* *stop became true, or cancelled() */
	SKOPEO_TOO_MUCH,  /* standard output past max_stdout */
};

/* Runs it; out gets standard output (unless on_line is set) and errtext
 * the end of standard error, both NUL-terminated. -1 only when it could
 * not be started (err says why). */
int skopeo_run(const struct skopeo_run *r, struct berth_buf *out, struct berth_buf *errtext,
	       enum skopeo_outcome *outcome, int *exit_status, struct berth_err *err);

/* The message skopeo printed, one line: its last "Error: …"/"FATA[…]"
 * line without the prefix, else the last non-empty line. Written into buf. */
void skopeo_error_line(const char *errtext, char *buf, size_t size);

#endif
