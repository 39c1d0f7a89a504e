/* fuzz_sigv4.c — libFuzzer target: SigV4 verification (common/sigv4.c) on
 * a synthetic request whose Authorization, X-Amz-Date and target come
 * from the input, as the router will call it: sigv4_parse, then (when it
 * passes) sigv4_canonical_request and sigv4_verify with a key derived
 * from a fixed secret.
 *
 * Input: up to four parts separated by 0 bytes: the Authorization value,
 * the X-Amz-Date value, the Date value, the request target (path and
 * query, to the end). An empty or absent part leaves its header out (the
 * target: "/"). Header
 * values are handed over in buffers of exactly their size (no NUL), so a
 * read past the end is caught. Every answer must be one of the statuses
 * with a printable-ASCII message (it becomes JSON), and what sigv4_parse
 * accepted must be what sigv4.h promises. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "sigv4.h"

#define NOW INT64_C(1440938160) /* 20150830T123600Z */

static void check_error(int status, const struct sigv4_error *err)
{
	if (status < 0)
		return; /* ENOMEM */
	if (status != SIGV4_MISSING && status != SIGV4_INCOMPLETE && status != SIGV4_INVALID)
		abort();
	if (err->status != (enum sigv4_status)status || memchr(err->message, '\0', sizeof(err->message)) == NULL)
		abort();
	size_t len = strlen(err->message);
	if (len == 0)
		abort();
	for (size_t i = 0; i < len; i++)
		if (err->message[i] < 0x20 || err->message[i] > 0x7e)
			abort();
	if (sigv4_error_type((enum sigv4_status)status) == NULL)
		abort();
}

static void check_auth(const struct sigv4_auth *a)
{
	if (strlen(a->key_id) == 0 || strlen(a->date) != 8 || strlen(a->signature) != 64 ||
	    strlen(a->signed_headers) == 0 || strcmp(a->region, "us-east-1") != 0 || strcmp(a->service, "service") != 0)
		abort();
	for (int i = 0; i < 64; i++)
		if (!((a->signature[i] >= '0' && a->signature[i] <= '9') || (a->signature[i] >= 'a' && a->signature[i] <= 'f')))
			abort();
	char again[17];
	sigv4_format_amz_date(a->amz_time, again);
	if (strcmp(again, a->amz_date) != 0 || a->amz_time < NOW - SIGV4_MAX_SKEW_S || a->amz_time > NOW + SIGV4_MAX_SKEW_S)
		abort();
}

static char *copy_exact(const uint8_t *data, size_t len)
{
	char *p = malloc(len ? len : 1);
	if (p != NULL && len > 0)
		memcpy(p, data, len);
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *part[4] = { NULL, NULL, NULL, NULL };
	size_t part_len[4] = { 0, 0, 0, 0 }, pos = 0;
	for (int n = 0; n < 4 && pos <= size; n++) {
		const uint8_t *end = n < 3 ? memchr(data + pos, 0, size - pos) : NULL;
		size_t len = end != NULL ? (size_t)(end - (data + pos)) : size - pos;
		if (len > 0) /* an empty part: the header is absent */
			part[n] = data + pos, part_len[n] = len;
		pos += len + 1;
	}
	char *authorization = part[0] ? copy_exact(part[0], part_len[0]) : NULL;
	char *date = part[1] ? copy_exact(part[1], part_len[1]) : NULL;
	char *http_date = part[2] ? copy_exact(part[2], part_len[2]) : NULL;
	char *target = NULL;
	if (part[3] != NULL && (target = malloc(part_len[3] + 1)) != NULL) {
		memcpy(target, part[3], part_len[3]);
		target[part_len[3]] = '\0'; /* a NUL inside only shortens it */
	}
	static char host[] = { 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm' };
	struct sigv4_header headers[5];
	size_t n_headers = 0;
	headers[n_headers++] = (struct sigv4_header){ "Host", 4, host, sizeof(host) };
	headers[n_headers++] = (struct sigv4_header){ ":authority", 10, host, sizeof(host) };
	if (authorization != NULL)
		headers[n_headers++] = (struct sigv4_header){ "Authorization", 13, authorization, part_len[0] };
	if (date != NULL)
		headers[n_headers++] = (struct sigv4_header){ "X-Amz-Date", 10, date, part_len[1] };
	if (http_date != NULL)
		headers[n_headers++] = (struct sigv4_header){ "Date", 4, http_date, part_len[2] };
	struct sigv4_request req = { "GET", target ? target : "/", headers, n_headers, SIGV4_EMPTY_PAYLOAD_HASH };

	struct sigv4_auth auth;
	struct sigv4_error err;
	enum sigv4_status s = sigv4_parse(&req, "us-east-1", "service", NOW, &auth, &err);
	if (s != SIGV4_OK) {
		check_error(s, &err);
	} else {
		check_auth(&auth);
		struct berth_buf canonical = BERTH_BUF_INIT;
		int r = sigv4_canonical_request(&req, &auth, &canonical, &err);
		if (r != SIGV4_OK)
			check_error(r, &err);
		else if (canonical.data == NULL || strlen(canonical.data) != canonical.len)
			abort();
		buf_free(&canonical);
		unsigned char key[SIGV4_KEY_LEN];
		sigv4_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", auth.date, auth.region, auth.service, key);
		r = sigv4_verify(&req, &auth, key, &err);
		if (r != SIGV4_OK)
			check_error(r, &err);
	}
	free(authorization);
	free(date);
	free(http_date);
	free(target);
	return 0;
}
