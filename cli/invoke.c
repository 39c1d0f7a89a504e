/* invoke.c — see invoke.h. */
#include "invoke.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>

#include "buf.h"
#include "credentials.h"
#include "err.h"

#define INVOKE_ACTION "sagemaker:InvokeEndpoint"
#define INVOKE_MAX_ANSWER_HEADER 512

static void invoke_usage(FILE *f)
{
	fprintf(f, "usage: berth invoke ENDPOINT [--target-container H] [--content-type T] [--accept T]\n"
		   "         [--url http://127.0.0.1:8080] [--credentials PATH] [--key NAME] < BODY\n"
		   "  signed with SigV4: the key of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, else key NAME of\n"
		   "  PATH (default " CREDENTIALS_DEFAULT_PATH "; default key: the first allowed to invoke\n"
		   "  ENDPOINT); region AWS_REGION, AWS_DEFAULT_REGION, else us-east-1. The answer goes to stdout.\n");
}

struct invoke_key {
	char *id;
	char *secret;
	char source[300]; /* for messages: "AWS_ACCESS_KEY_ID" or "key NAME of PATH" */
};

static void invoke_key_free(struct invoke_key *k)
{
	if (k->secret)
		explicit_bzero(k->secret, strlen(k->secret));
	free(k->id);
	free(k->secret);
}

/* The key to sign with (see invoke.h). 0, or -1 with err. */
static int invoke_key_find(const char *path, const char *name, const char *endpoint, struct invoke_key *out,
			   struct berth_err *err)
{
	const char *id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
	if ((id && *id) || (secret && *secret)) {
		if (!(id && *id) || !(secret && *secret))
			return berth_err_set(err, 0, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together "
						     "(or neither, to use a key of %s)", path);
		out->id = strdup(id);
		out->secret = strdup(secret);
		snprintf(out->source, sizeof(out->source), "AWS_ACCESS_KEY_ID");
		return out->id && out->secret ? 0 : berth_err_set(err, ENOMEM, "key");
	}
	struct credentials creds = { NULL, 0 };
	if (credentials_load(path, &creds, err) < 0)
		return berth_err_prefix(err, "no key to sign with (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
					     "or give --credentials PATH)");
	const struct credentials_key *k = NULL;
	for (size_t i = 0; i < creds.n && k == NULL; i++) {
		if (name != NULL ? strcmp(creds.keys[i].name, name) == 0
				 : credentials_allows(&creds.keys[i], INVOKE_ACTION, CRED_KIND_ENDPOINT, endpoint))
			k = &creds.keys[i];
	}
	int r = 0;
	if (k == NULL && name != NULL)
		r = berth_err_set(err, 0, "%s has no key named \"%s\" (berth keys ls --credentials %s lists them)", path,
				  name, path);
	else if (k == NULL)
		r = berth_err_set(err, 0, "no key of %s may call %s on endpoint %s; add one: berth keys add NAME "
					  "--allow %s --credentials %s", path, INVOKE_ACTION, endpoint, INVOKE_ACTION, path);
	if (k != NULL) {
		out->id = strdup(k->key_id);
		out->secret = strdup(k->secret);
		snprintf(out->source, sizeof(out->source), "key %s of %s", k->name, path);
		if (!out->id || !out->secret)
			r = berth_err_set(err, ENOMEM, "key");
	}
	credentials_free(&creds);
	return r;
}

static const char *invoke_region(void)
{
	const char *r = getenv("AWS_REGION");
	if (r == NULL || *r == '\0')
		r = getenv("AWS_DEFAULT_REGION");
	return r != NULL && *r != '\0' ? r : "us-east-1";
}

static size_t write_out(char *p, size_t size, size_t n, void *data)
{
	return fwrite(p, size, n, (FILE *)data);
}

/* Keeps the answer's x-amzn-ErrorType ("InvalidSignatureException:") for the message. */
static size_t header_in(char *p, size_t size, size_t n, void *data)
{
	static const char name[] = "x-amzn-errortype:";
	char *type = data;
	size_t len = size * n;
	if (len > strlen(name) && strncasecmp(p, name, strlen(name)) == 0) {
		const char *v = p + strlen(name);
		size_t vlen = len - strlen(name);
		while (vlen > 0 && (*v == ' ' || *v == '\t'))
			v++, vlen--;
		while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ':' || v[vlen - 1] == ' '))
			vlen--;
		if (vlen >= INVOKE_MAX_ANSWER_HEADER)
			vlen = INVOKE_MAX_ANSWER_HEADER - 1;
		memcpy(type, v, vlen);
		type[vlen] = '\0';
	}
	return len;
}

int cli_invoke(int argc, char **argv)
{
	const char *url = "http://127.0.0.1:8080", *target = NULL, *ctype = "application/octet-stream";
	const char *accept = NULL, *path = CREDENTIALS_DEFAULT_PATH, *key_name = NULL;
	static const struct option opts[] = {
		{ "target-container", required_argument, NULL, 't' },
		{ "content-type", required_argument, NULL, 'c' },
		{ "accept", required_argument, NULL, 'a' },
		{ "url", required_argument, NULL, 'u' },
		{ "credentials", required_argument, NULL, 'f' },
		{ "key", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	optind = 1;
	for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		switch (c) {
		case 't': target = optarg; break;
		case 'c': ctype = optarg; break;
		case 'a': accept = optarg; break;
		case 'u': url = optarg; break;
		case 'f': path = optarg; break;
		case 'k': key_name = optarg; break;
		default: invoke_usage(stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		invoke_usage(stderr);
		return 2;
	}
	const char *endpoint = argv[optind];
	struct berth_err err;
	struct invoke_key key = { NULL, NULL, "" };
	if (invoke_key_find(path, key_name, endpoint, &key, &err) < 0) {
		fprintf(stderr, "berth: %s\n", err.msg);
		return 1;
	}
	struct berth_buf body = BERTH_BUF_INIT;
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		buf_append(&body, chunk, n);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURL *curl = curl_easy_init();
	struct berth_buf full = BERTH_BUF_INIT, hdr = BERTH_BUF_INIT, sigv4 = BERTH_BUF_INIT;
	char *escaped = curl_easy_escape(curl, endpoint, 0);
	buf_printf(&full, "%s/endpoints/%s/invocations", url, escaped);
	curl_free(escaped);
	struct curl_slist *headers = NULL;
	buf_printf(&hdr, "Content-Type: %s", ctype);
	headers = curl_slist_append(headers, hdr.data);
	if (target != NULL) {
		buf_reset(&hdr);
		buf_printf(&hdr, "X-Amzn-SageMaker-Target-Container-Hostname: %s", target);
		headers = curl_slist_append(headers, hdr.data);
	}
	if (accept != NULL) {
		buf_reset(&hdr);
		buf_printf(&hdr, "Accept: %s", accept);
		headers = curl_slist_append(headers, hdr.data);
	}
	/* No "Expect:" to turn 100-continue off: libcurl would sign that empty
	 * header and then not send it, a signature the router cannot match.
	 * The router answers 100-continue (large bodies) at once. */
	/* provider1:provider2:region:service, as the aws CLI and boto3 sign */
	buf_printf(&sigv4, "aws:amz:%s:sagemaker", invoke_region());
	char error_type[INVOKE_MAX_ANSWER_HEADER] = "";
	curl_easy_setopt(curl, CURLOPT_URL, full.data);
	curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4.data);
	curl_easy_setopt(curl, CURLOPT_USERNAME, key.id);
	curl_easy_setopt(curl, CURLOPT_PASSWORD, key.secret);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data ? body.data : "");
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_out);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, stdout);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_in);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, error_type);
	CURLcode rc = curl_easy_perform(curl);
	long code = 0;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
	int ret = 0;
	if (rc != CURLE_OK) {
		fprintf(stderr, "berth: cannot reach the router at %s: %s\n", url, curl_easy_strerror(rc));
		ret = 1;
	} else if (code != 200) {
		fprintf(stderr, "\nberth: invoke answered HTTP %ld%s%s%s (signed with %s)\n", code,
			error_type[0] ? " (" : "", error_type, error_type[0] ? ")" : "", key.source);
		ret = 1;
	}
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	curl_global_cleanup();
	buf_free(&full);
	buf_free(&hdr);
	buf_free(&sigv4);
	buf_free(&body);
	invoke_key_free(&key);
	return ret;
}
