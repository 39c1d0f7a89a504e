/* answer.c — see answer.h. */
#include "answer.h"

#include <stdio.h>

#include "json.h"

bool cli_answer_ok(yajl_val v, const struct berth_err *err, const char *what)
{
	bool ok = false;
	if (v != NULL && json_get_bool(v, "ok", &ok) && ok)
		return true;
	const char *msg = v ? json_get_string(v, "error") : NULL;
	fprintf(stderr, "berth: %s: %s\n", what, msg ? msg : v ? "unexpected answer" : err->msg);
	return false;
}

void cli_print_size(double bytes)
{
	const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	size_t u = 0;
	while (bytes >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		bytes /= 1024;
		u++;
	}
	printf("%8.1f %-3s  ", bytes, units[u]);
}
