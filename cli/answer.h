/* answer.h — what the admin-socket commands share in printing berthd's
 * answers. */
#ifndef BERTH_CLI_ANSWER_H
#define BERTH_CLI_ANSWER_H

#include <stdbool.h>
#include <yajl/yajl_tree.h>

#include "err.h"

/* The answer's "ok"; otherwise "berth: WHAT: ERROR" on stderr (its
 * "error", or err's message when there was no answer). */
bool cli_answer_ok(yajl_val v, const struct berth_err *err, const char *what);

/* "   12.3 MiB  ": a size in a column 13 wide, then two spaces. */
void cli_print_size(double bytes);

#endif
