/* The gate of forwarded control calls (orchestrator/api/api_access.c over
 * orchestrator/access/access.c): a real credentials file, requests signed
 * the way a client signs them, and the answer for each permission case. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/hmac.h>

#include "access.h"
#include "api_access.h"
#include "json.h"

#define NOW 1764590400 /* 2025-12-01T12:00:00Z */

static const char creds[] = "[ops]\n"
			    "aws_access_key_id = BRTHOPSKEY0000000001\n"
			    "aws_secret_access_key = opssecret\n"
			    "allow = sagemaker:*\n"
			    "[app]\n"
			    "aws_access_key_id = BRTHAPPKEY0000000002\n"
			    "aws_secret_access_key = appsecret\n"
			    "allow = sagemaker:Describe* sagemaker:InvokeEndpoint sagemaker:CreateEndpoint sagemaker:ListEndpoints\n"
			    "endpoints = prod-*\n"
			    "endpoint_configs = prod-*\n";

struct fixture {
	char dir[64], path[96];
	struct access *a;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/berth-unit-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/credentials", f->dir);
	FILE *out = fopen(f->path, "w");
	fputs(creds, out);
	fclose(out);
	chmod(f->path, 0600);
	struct access_config ac = { "sigv4", f->path, "us-east-1", "000000000000" };
	struct berth_err err;
	assert_int_equal(access_open(&ac, &f->a, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	access_free(f->a);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* The forwarded call {"method","path","headers","body"} of a request
 * signed with (key_id, secret) at NOW. */
static yajl_val signed_call(const char *op, const char *body, const char *key_id, const char *secret)
{
	char amz[17], target[96], hash[65];
	sigv4_format_amz_date(NOW, amz);
	snprintf(target, sizeof(target), "SageMaker.%s", op);
	sigv4_sha256_hex(body, strlen(body), hash);
	struct sigv4_header h[] = {
		{ "content-type", 12, "application/x-amz-json-1.1", 26 },
		{ "host", 4, "127.0.0.1:8080", 14 },
		{ "x-amz-date", 10, amz, 16 },
		{ "x-amz-target", 12, target, strlen(target) },
	};
	struct sigv4_request req = { "POST", "/", h, 4, hash };
	struct sigv4_auth auth = { 0 };
	snprintf(auth.key_id, sizeof(auth.key_id), "%s", key_id);
	memcpy(auth.date, amz, 8);
	snprintf(auth.region, sizeof(auth.region), "us-east-1");
	snprintf(auth.service, sizeof(auth.service), "sagemaker");
	snprintf(auth.signed_headers, sizeof(auth.signed_headers), "content-type;host;x-amz-date;x-amz-target");
	memcpy(auth.amz_date, amz, 17);
	auth.amz_time = NOW;
	struct berth_buf sts = BERTH_BUF_INIT;
	struct sigv4_error e;
	assert_int_equal(sigv4_string_to_sign(&req, &auth, &sts, &e), SIGV4_OK);
	unsigned char key[SIGV4_KEY_LEN], mac[32];
	unsigned int maclen = 0;
	sigv4_signing_key(secret, auth.date, "us-east-1", "sagemaker", key);
	HMAC(EVP_sha256(), key, sizeof(key), (const unsigned char *)sts.data, sts.len, mac, &maclen);
	buf_free(&sts);
	char sig[65];
	for (int i = 0; i < 32; i++)
		snprintf(sig + 2 * i, 3, "%02x", mac[i]);
	struct berth_buf doc = BERTH_BUF_INIT;
	buf_printf(&doc,
		   "{\"op\":\"control\",\"target\":\"%s\",\"method\":\"POST\",\"path\":\"/\",\"headers\":["
		   "[\"content-type\",\"application/x-amz-json-1.1\"],[\"host\",\"127.0.0.1:8080\"],"
		   "[\"x-amz-date\",\"%s\"],[\"x-amz-target\",\"%s\"],[\"authorization\",\"AWS4-HMAC-SHA256 "
		   "Credential=%s/%.8s/us-east-1/sagemaker/aws4_request, "
		   "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=%s\"]]}",
		   op, amz, target, key_id, amz, sig);
	struct berth_err err;
	yajl_val v = json_parse(doc.data, doc.len, &err);
	buf_free(&doc);
	assert_non_null(v);
	return v;
}

/* The answer to op(body) signed by key: 0 when let through, else the
 * status with the body in *out. */
static int check(struct fixture *f, const char *op, const char *body, const char *key_id, const char *secret,
		 char *out, size_t len)
{
	yajl_val call = signed_call(op, body, key_id, secret);
	struct api_reply reply = { 0, BERTH_BUF_INIT };
	struct access_principal who;
	bool ok = api_access_check(f->a, op, call, body, strlen(body), NOW, &reply, &who);
	yajl_tree_free(call);
	snprintf(out, len, "%s", reply.body.data ? reply.body.data : "");
	int status = ok ? 0 : reply.status;
	buf_free(&reply.body);
	return status;
}

#define OPS "BRTHOPSKEY0000000001", "opssecret"
#define APP "BRTHAPPKEY0000000002", "appsecret"

static void signatures(void **state)
{
	struct fixture *f = *state;
	char out[1024];
	assert_int_equal(check(f, "ListModels", "{}", OPS, out, sizeof(out)), 0);
	assert_int_equal(check(f, "CreateModel", "{\"ModelName\":\"m\"}", OPS, out, sizeof(out)), 0);
	assert_int_equal(check(f, "ListModels", "{}", "BRTHOPSKEY0000000001", "wrong", out, sizeof(out)), 403);
	assert_non_null(strstr(out, "\"__type\":\"InvalidSignatureException\""));
	assert_int_equal(check(f, "ListModels", "{}", "BRTHNOSUCHKEY0000003", "x", out, sizeof(out)), 403);
	assert_string_equal(out, "{\"__type\":\"UnrecognizedClientException\","
				 "\"message\":\"The security token included in the request is invalid.\"}");
	/* the body is part of the signature: one byte changed after signing */
	yajl_val call = signed_call("CreateModel", "{\"ModelName\":\"m\"}", OPS);
	struct api_reply reply = { 0, BERTH_BUF_INIT };
	struct access_principal who;
	assert_false(api_access_check(f->a, "CreateModel", call, "{\"ModelName\":\"n\"}", 17, NOW, &reply, &who));
	assert_int_equal(reply.status, 403);
	buf_free(&reply.body);
	/* a valid signature of one operation, run as another */
	yajl_tree_free(call);
	call = signed_call("DescribeModel", "{\"ModelName\":\"m\"}", OPS);
	reply = (struct api_reply){ 0, BERTH_BUF_INIT };
	assert_false(api_access_check(f->a, "DeleteModel", call, "{\"ModelName\":\"m\"}", 17, NOW, &reply, &who));
	assert_int_equal(reply.status, 403);
	assert_non_null(strstr(reply.body.data, "does not cover the operation SageMaker.DeleteModel"));
	buf_free(&reply.body);
	/* a call without its signed request (a forged line on the router's channel) */
	struct berth_err err;
	const char *line = "{\"op\":\"control\",\"target\":\"ListModels\",\"body\":\"{}\"}";
	yajl_val bare = json_parse(line, strlen(line), &err);
	reply = (struct api_reply){ 0, BERTH_BUF_INIT };
	assert_false(api_access_check(f->a, "ListModels", bare, "{}", 2, NOW, &reply, &who));
	assert_int_equal(reply.status, 403);
	assert_string_equal(reply.body.data, "{\"__type\":\"MissingAuthenticationTokenException\","
					     "\"message\":\"Missing Authentication Token\"}");
	buf_free(&reply.body);
	yajl_tree_free(bare);
	/* malformed headers */
	line = "{\"op\":\"control\",\"target\":\"ListModels\",\"headers\":[[\"host\"]],\"body\":\"{}\"}";
	bare = json_parse(line, strlen(line), &err);
	reply = (struct api_reply){ 0, BERTH_BUF_INIT };
	assert_false(api_access_check(f->a, "ListModels", bare, "{}", 2, NOW, &reply, &who));
	assert_int_equal(reply.status, 500);
	buf_free(&reply.body);
	yajl_tree_free(bare);
	yajl_tree_free(call);
}

static void permissions(void **state)
{
	struct fixture *f = *state;
	char out[1024];
	assert_int_equal(check(f, "CreateModel", "{\"ModelName\":\"Mine\"}", APP, out, sizeof(out)), 400);
	assert_string_equal(out, "{\"__type\":\"AccessDeniedException\",\"message\":\"User: "
				 "arn:aws:iam::000000000000:user/app is not authorized to perform: sagemaker:CreateModel "
				 "on resource: arn:aws:sagemaker:us-east-1:000000000000:model/mine because no "
				 "identity-based policy allows the sagemaker:CreateModel action\"}");
	assert_int_equal(check(f, "DescribeEndpoint", "{\"EndpointName\":\"prod-a\"}", APP, out, sizeof(out)), 0);
	assert_int_equal(check(f, "DescribeEndpoint", "{\"EndpointName\":\"dev-x\"}", APP, out, sizeof(out)), 400);
	assert_non_null(strstr(out, "on resource: arn:aws:sagemaker:us-east-1:000000000000:endpoint/dev-x because"));
	/* Describe* covers DescribeEndpointConfig; its own glob list decides */
	assert_int_equal(check(f, "DescribeEndpointConfig", "{\"EndpointConfigName\":\"prod-c\"}", APP, out,
			       sizeof(out)), 0);
	assert_int_equal(check(f, "DescribeModel", "{\"ModelName\":\"anything\"}", APP, out, sizeof(out)), 0);
	/* a key limited to prod-* cannot list every endpoint */
	assert_int_equal(check(f, "ListEndpoints", "{}", APP, out, sizeof(out)), 400);
	assert_non_null(strstr(out, "endpoint/* because"));
	assert_int_equal(check(f, "ListEndpoints", "{}", OPS, out, sizeof(out)), 0);
	/* CreateEndpoint needs the endpoint and its config */
	assert_int_equal(check(f, "CreateEndpoint", "{\"EndpointName\":\"prod-a\",\"EndpointConfigName\":\"prod-c\"}",
			       APP, out, sizeof(out)), 0);
	assert_int_equal(check(f, "CreateEndpoint", "{\"EndpointName\":\"prod-a\",\"EndpointConfigName\":\"dev-c\"}",
			       APP, out, sizeof(out)), 400);
	assert_non_null(strstr(out, "endpoint-config/dev-c because"));
	/* no name in the body: the action decides, the API then refuses it */
	assert_int_equal(check(f, "DescribeEndpoint", "{}", APP, out, sizeof(out)), 0);
	assert_int_equal(check(f, "DeleteEndpoint", "{}", APP, out, sizeof(out)), 400);
	/* an operation berth does not know: the action alone */
	assert_int_equal(check(f, "CreateTrainingJob", "{}", APP, out, sizeof(out)), 400);
	assert_int_equal(check(f, "CreateTrainingJob", "{}", OPS, out, sizeof(out)), 0);
}

static void resources_of_operations(void **state)
{
	(void)state;
	enum credentials_kind kind;
	const char *member;
	assert_true(api_access_resource("CreateModel", &kind, &member));
	assert_int_equal(kind, CRED_KIND_MODEL);
	assert_string_equal(member, "ModelName");
	assert_true(api_access_resource("ListEndpointConfigs", &kind, &member));
	assert_int_equal(kind, CRED_KIND_ENDPOINT_CONFIG);
	assert_null(member);
	assert_true(api_access_resource("UpdateEndpointWeightsAndCapacities", &kind, &member));
	assert_int_equal(kind, CRED_KIND_ENDPOINT);
	assert_false(api_access_resource("CreateTrainingJob", &kind, &member));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(signatures, setup, teardown),
		cmocka_unit_test_setup_teardown(permissions, setup, teardown),
		cmocka_unit_test(resources_of_operations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
