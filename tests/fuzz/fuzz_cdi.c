/* fuzz_cdi.c — libFuzzer target: the CDI spec parser (limits/cdi_spec.c)
 * on JSON and, through libyaml (limits/yaml_json.c), YAML.
 *
 * Input: the first byte picks the format (even: JSON, odd: YAML), the
 * rest is the file, handed over in a buffer of exactly its size. A refusal
 * must be a VALIDATION error with a message and leave nothing behind; an
 * accepted spec must hold what cdi_spec.h promises (a valid kind, at
 * least one device with a valid qualified name, absolute paths, host
 * device nodes under /dev). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdi_spec.h"

static void check_edits(const struct cdi_edits *e)
{
	for (size_t i = 0; i < e->n_nodes; i++)
		if (e->nodes[i].path[0] != '/' || strncmp(e->nodes[i].host_path, "/dev/", 5) != 0 ||
		    strstr(e->nodes[i].host_path, "/../") != NULL)
			abort();
	for (size_t i = 0; i < e->n_mounts; i++)
		if (e->mounts[i].host_path[0] != '/' || e->mounts[i].container_path[0] != '/')
			abort();
	for (size_t i = 0; i < e->n_hooks; i++)
		if (e->hooks[i].path[0] != '/')
			abort();
	for (size_t i = 0; i < e->n_env; i++)
		if (strchr(e->env[i], '=') == NULL || e->env[i][0] == '=')
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool yaml = data[0] & 1;
	size_t len = size - 1;
	char *text = malloc(len ? len : 1);
	if (text == NULL)
		return 0;
	memcpy(text, data + 1, len);
	struct cdi_spec s;
	struct berth_err err = { 0 };
	if (cdi_spec_parse(text, len, yaml, &s, &err) < 0) {
		if (err.cls != BERTH_ERR_VALIDATION || err.msg[0] == '\0' || s.kind != NULL || s.devices != NULL)
			abort();
	} else {
		if (!cdi_kind_valid(s.kind) || s.n_devices == 0)
			abort();
		check_edits(&s.edits);
		for (size_t i = 0; i < s.n_devices; i++) {
			char name[CDI_NAME_MAX + 2];
			size_t n = (size_t)snprintf(name, sizeof(name), "%s=%s", s.kind, s.devices[i].name);
			if (n >= CDI_NAME_MAX || !cdi_qualified_name_valid(name))
				abort();
			check_edits(&s.devices[i].edits);
		}
		cdi_spec_free(&s);
	}
	free(text);
	return 0;
}
