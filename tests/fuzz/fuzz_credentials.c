/* fuzz_credentials.c — libFuzzer target: the credentials file parser
 * (common/credentials.c, credentials_parse) and the globs it feeds.
 *
 * Input: the file's text, handed over in a buffer of exactly its size (no
 * NUL), so a read past the end is caught. A refusal must carry the path
 * and a line number; an accepted file must hold what credentials.h
 * promises, and every key is looked up and asked about a few actions.
 * Then the input is also split at its first 0 byte into a glob and a
 * subject for credentials_glob_match: a pathological glob (a*a*a*…b)
 * must stay fast (libFuzzer's -timeout catches one that is not). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "credentials.h"
#include "err.h"

#define PATH "/etc/berth/credentials"

static void check_key(const struct credentials *c, const struct credentials_key *k)
{
	size_t id_len = strlen(k->key_id);
	if (k->name == NULL || k->name[0] == '\0' || k->secret == NULL || k->secret[0] == '\0' || id_len < 16 ||
	    id_len > 128 || strspn(k->key_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != id_len)
		abort();
	if (credentials_find(c, k->key_id) != k)
		abort();
	static const char *const actions[] = { "sagemaker:InvokeEndpoint", "sagemaker:CreateModel",
					       "sagemaker:ListEndpoints", "" };
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		(void)credentials_allows(k, actions[i], CRED_KIND_ENDPOINT, "prod-1");
		(void)credentials_allows(k, actions[i], CRED_KIND_MODEL, "*");
		(void)credentials_allows(k, actions[i], CRED_KIND_NONE, NULL);
	}
	bool invoke_only = credentials_invoke_only(k);
	/* an invoke-only key may do nothing else */
	if (invoke_only && (credentials_allows(k, "sagemaker:CreateModel", CRED_KIND_NONE, NULL) ||
			    credentials_allows(k, "sagemaker:DeleteEndpoint", CRED_KIND_NONE, NULL)))
		abort();
	char message[1024];
	credentials_denied_message(k, "123456789012", "sagemaker:CreateModel", "arn:x", message, sizeof(message));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size ? size : 1);
	if (text == NULL)
		return 0;
	if (size > 0)
		memcpy(text, data, size);
	struct credentials c = { 0 };
	struct berth_err err;
	if (credentials_parse(text, size, PATH, &c, &err) == 0) {
		for (size_t i = 0; i < c.n; i++)
			check_key(&c, &c.keys[i]);
		credentials_free(&c);
	} else if (strncmp(err.msg, PATH " line ", strlen(PATH " line ")) != 0 || err.cls != BERTH_ERR_VALIDATION) {
		abort();
	}
	free(text);

	const uint8_t *nul = memchr(data, 0, size);
	size_t pattern_len = nul ? (size_t)(nul - data) : size;
	char *pattern = strndup((const char *)data, pattern_len);
	char *subject = nul ? strndup((const char *)nul + 1, size - pattern_len - 1) : strdup("");
	if (pattern != NULL && subject != NULL) {
		bool match = credentials_glob_match(pattern, subject);
		/* a pattern without wildcards matches only itself */
		if (strpbrk(pattern, "*?") == NULL && match != (strcmp(pattern, subject) == 0))
			abort();
	}
	free(pattern);
	free(subject);
	return 0;
}
