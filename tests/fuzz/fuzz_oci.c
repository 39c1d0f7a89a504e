/* fuzz_oci.c — libFuzzer target: the OCI layout documents berthd reads from
 * an image layout (orchestrator/oci.c), each through the function
 * oci_resolve / oci_check call on it.
 *
 * Input: the first byte picks the document kind, '0' to '4' (any byte:
 * (uint8_t)(byte - '0') % 5), the rest is the
 * document, handed over in a buffer of exactly its size (no terminating
 * NUL, so a read past the end is caught):
 *   0 index.json, looked up by tag "latest" (oci_index_find)
 *   1 an image index, linux/amd64 picked (oci_index_pick_platform)
 *   2 an image manifest (oci_doc_is_index, then oci_manifest_parse)
 *   3 an image config (oci_config_parse, then its labels looked up)
 *   4 an image reference after "oci:" (oci_ref_parse; NUL-terminated) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oci.h"

static void check_descriptor(const struct oci_descriptor *d)
{
	/* parse_descriptor promises "sha256:" + 64 hex and a size >= 0 */
	if (strlen(d->digest) != 71 || strncmp(d->digest, "sha256:", 7) != 0 || d->size < 0)
		abort();
}

static void fuzz_index(const char *doc, size_t len, int kind)
{
	struct oci_descriptor d = { 0 };
	struct berth_err err;
	int r = kind == 0 ? oci_index_find(doc, len, OCI_DEFAULT_TAG, &d, &err)
			  : oci_index_pick_platform(doc, len, &d, &err);
	if (r == 0)
		check_descriptor(&d);
	oci_descriptor_free(&d);
}

static void fuzz_manifest(const char *doc, size_t len)
{
	(void)oci_doc_is_index(doc, len);
	struct oci_manifest m;
	struct berth_err err;
	if (oci_manifest_parse(doc, len, &m, &err) == 0) {
		check_descriptor(&m.config);
		for (size_t i = 0; i < m.n_layers; i++)
			check_descriptor(&m.layers[i]);
		oci_manifest_free(&m);
	}
}

static void fuzz_config(const char *doc, size_t len)
{
	struct oci_image_config c;
	struct berth_err err;
	if (oci_config_parse(doc, len, &c, &err) < 0)
		return;
	(void)oci_config_label(&c, "com.amazonaws.sagemaker.capabilities.accept-bind-to-port");
	for (size_t i = 0; i < c.n_env; i++)
		if (c.env[i].key == NULL || c.env[i].value == NULL)
			abort();
	oci_image_config_free(&c);
}

static void fuzz_ref(const char *text, size_t len)
{
	char *image = malloc(len + sizeof(OCI_PREFIX));
	if (image == NULL)
		return;
	memcpy(image, OCI_PREFIX, sizeof(OCI_PREFIX) - 1);
	memcpy(image + sizeof(OCI_PREFIX) - 1, text, len);
	image[len + sizeof(OCI_PREFIX) - 1] = '\0';
	char *layout, *tag;
	struct berth_err err;
	if (oci_is_ref(image) && oci_ref_parse(image, &layout, &tag, &err) == 0) {
		if (layout[0] != '/' || tag[0] == '\0')
			abort();
		free(layout);
		free(tag);
	}
	free(image);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	int kind = (uint8_t)(data[0] - '0') % 5;
	size_t len = size - 1;
	char *doc = malloc(len ? len : 1);
	if (doc == NULL)
		return 0;
	memcpy(doc, data + 1, len);
	switch (kind) {
	case 0:
	case 1: fuzz_index(doc, len, kind); break;
	case 2: fuzz_manifest(doc, len); break;
	case 3: fuzz_config(doc, len); break;
	case 4: fuzz_ref(doc, len); break;
	}
	free(doc);
	return 0;
}
