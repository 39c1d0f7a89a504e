/* artifacts.c — see artifacts.h. */
#include "artifacts.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "answer.h"
#include "control_client.h"
#include "json.h"

static int list(const char *socket)
{
	struct berth_err err;
	yajl_val v = control_request(socket, "{\"op\":\"artifacts\"}", &err);
	if (!cli_answer_ok(v, &err, "artifacts")) {
		yajl_tree_free(v);
		return 1;
	}
	yajl_val arts = json_get(v, "artifacts");
	printf("%-16s  %12s  %-20s  %-24s  %s\n", "KEY", "SIZE", "LAST USED (UTC)", "HELD BY", "URL");
	for (size_t i = 0; arts && YAJL_IS_ARRAY(arts) && i < arts->u.array.len; i++) {
		yajl_val a = arts->u.array.values[i];
		const char *key = json_get_string(a, "key"), *url = json_get_string(a, "url");
		double bytes = 0;
		long long used = 0;
		json_get_double(a, "bytes", &bytes);
		json_get_int64(a, "last_used", &used);
		char when[32] = "-";
		time_t t = (time_t)used;
		struct tm tm;
		if (used > 0 && gmtime_r(&t, &tm) != NULL)
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		printf("%-16s  ", key ? key : "?");
		cli_print_size(bytes);
		printf("%-20s  ", when);
		yajl_val eps = json_get(a, "endpoints");
		size_t n = eps && YAJL_IS_ARRAY(eps) ? eps->u.array.len : 0;
		int col = 0;
		for (size_t k = 0; k < n; k++)
			if (YAJL_IS_STRING(eps->u.array.values[k]))
				col += printf("%s%s", k ? "," : "", eps->u.array.values[k]->u.string);
		if (n == 0)
			col += printf("-");
		printf("%*s  %s\n", col < 24 ? 24 - col : 0, "", url ? url : "(not recorded)");
	}
	yajl_tree_free(v);
	return 0;
}

static int prune(const char *socket)
{
	struct berth_err err;
	yajl_val v = control_request(socket, "{\"op\":\"artifacts_prune\"}", &err);
	if (!cli_answer_ok(v, &err, "artifacts prune")) {
		yajl_tree_free(v);
		return 1;
	}
	long long removed = 0, bytes = 0;
	json_get_int64(v, "removed", &removed);
	json_get_int64(v, "bytes", &bytes);
	printf("removed %lld cached model artifact%s no container holds (%.1f MiB)\n", removed,
	       removed == 1 ? "" : "s", (double)bytes / (1 << 20));
	yajl_tree_free(v);
	return 0;
}

int cli_artifacts(const char *socket, int argc, char **argv)
{
	if (argc == 1)
		return list(socket);
	if (argc == 2 && strcmp(argv[1], "prune") == 0)
		return prune(socket);
	fprintf(stderr, "usage: berth artifacts [prune]\n");
	return 2;
}
