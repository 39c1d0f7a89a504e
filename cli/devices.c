/* devices.c — see devices.h. */
#include "devices.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "control_client.h"
#include "json.h"

int cli_devices(const char *socket, int argc, char **argv)
{
	if (argc > 1) {
		fprintf(stderr, "berth: devices takes no arguments, not \"%s\"\n", argv[1]);
		return 2;
	}
	struct berth_err err;
	yajl_val v = control_simple(socket, "devices", &err);
	if (v == NULL) {
		fprintf(stderr, "berth: %s\n", err.msg);
		return 1;
	}
	bool ok = false;
	if (!json_get_bool(v, "ok", &ok) || !ok) {
		const char *msg = json_get_string(v, "error");
		fprintf(stderr, "berth: devices: %s\n", msg ? msg : "berthd did not answer with a device list");
		yajl_tree_free(v);
		return 1;
	}
	yajl_val dirs = json_get(v, "dirs");
	printf("CDI spec directories:");
	for (size_t i = 0; dirs && YAJL_IS_ARRAY(dirs) && i < dirs->u.array.len; i++)
		printf(" %s", YAJL_GET_STRING(dirs->u.array.values[i]) ?: "");
	printf("\n%-28s %-18s %-24s %-6s %-10s %s\n", "DEVICE", "ENDPOINT", "VARIANT", "INST", "HEALTH", "SPEC");
	yajl_val list = json_get(v, "devices");
	size_t n = list && YAJL_IS_ARRAY(list) ? list->u.array.len : 0;
	for (size_t i = 0; i < n; i++) {
		yajl_val d = list->u.array.values[i];
		long long instance = -1;
		char inst[24] = "-";
		if (json_get_int64(d, "instance", &instance))
			snprintf(inst, sizeof(inst), "%lld", instance);
		const char *health = json_get_string(d, "health") ?: "";
		bool healthy = strcmp(health, "ok") == 0;
		char other[96] = "-"; /* held by another berthd of this host */
		if (json_get_string(d, "berthd"))
			snprintf(other, sizeof(other), "berthd:%s", json_get_string(d, "berthd"));
		printf("%-28s %-18s %-24s %-6s %-10s %s\n", json_get_string(d, "name") ?: "",
		       json_get_string(d, "endpoint") ?: other, json_get_string(d, "variant") ?: "-", inst,
		       healthy ? "ok" : "unusable", json_get_string(d, "spec") ?: "-");
		if (!healthy)
			printf("    %s\n", health);
	}
	if (n == 0)
		printf("(no devices: no CDI spec in these directories defines one)\n");
	yajl_val problems = json_get(v, "problems");
	for (size_t i = 0; problems && YAJL_IS_ARRAY(problems) && i < problems->u.array.len; i++) {
		yajl_val p = problems->u.array.values[i];
		printf("refused %s: %s\n", json_get_string(p, "file") ?: "", json_get_string(p, "error") ?: "");
	}
	yajl_tree_free(v);
	return 0;
}
