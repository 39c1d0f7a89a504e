/* test_api_model.c — CreateModel / DescribeModel / DeleteModel: the good
 * shapes and every validation rule, with SageMaker's exact messages. */
#include <sys/resource.h>

#include "api_fixture.h"
#include "host_paths.h"
#include "image.h"

#define PATTERN "[a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?"
#define HOST_PATTERN "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"

static void bad(struct fixture *f, const char *body, const char *type, const char *message)
{
	expect_error(call(f, "CreateModel", body), 400, type, message);
	assert_int_equal(store_count_models(f->store), 0);
}

static void test_create_primary_and_describe(void **state)
{
	struct fixture *f = *state;
	yajl_val v = expect_ok(call(f, "CreateModel",
				    "{\"ModelName\":\"My-Model\",\"ExecutionRoleArn\":\"arn:aws:iam::000000000000:role/x\","
				    "\"PrimaryContainer\":{\"Image\":\"oci:/images/echo:latest\",\"ContainerHostname\":"
				    "\"ignored\",\"ModelDataUrl\":\"s3://bucket/m.tar.gz\",\"Environment\":{\"ECHO_MODE\":"
				    "\"upper\"}},\"Tags\":[{\"Key\":\"team\",\"Value\":\"ml\"}]}"));
	assert_string_equal(json_get_string(v, "ModelArn"), "arn:aws:sagemaker:us-east-1:000000000000:model/my-model");
	assert_int_equal(v->u.object.len, 1);
	yajl_tree_free(v);

	v = expect_ok(call(f, "DescribeModel", "{\"ModelName\":\"My-Model\"}"));
	assert_string_equal(json_get_string(v, "ModelName"), "My-Model");
	assert_string_equal(json_get_string(v, "ModelArn"), "arn:aws:sagemaker:us-east-1:000000000000:model/my-model");
	double t = 0;
	assert_true(json_get_double(v, "CreationTime", &t) && t > 1.6e9);
	yajl_val pc = json_get(v, "PrimaryContainer");
	assert_non_null(pc);
	assert_string_equal(json_get_string(pc, "ContainerHostname"), "primary");
	assert_string_equal(json_get_string(pc, "Image"), "oci:/images/echo:latest");
	assert_string_equal(json_get_string(pc, "ModelDataUrl"), "s3://bucket/m.tar.gz");
	assert_string_equal(json_get_string(pc, "Mode"), "SingleModel");
	assert_string_equal(json_get_string(json_get(pc, "Environment"), "ECHO_MODE"), "upper");
	assert_null(json_get(v, "Containers"));
	assert_null(json_get(v, "Tags"));
	assert_null(json_get(v, "Berth"));
	assert_string_equal(json_get_string(v, "ExecutionRoleArn"), "arn:aws:iam::000000000000:role/x");
	bool iso = true;
	assert_true(json_get_bool(v, "EnableNetworkIsolation", &iso) && !iso);
	yajl_tree_free(v);
	const struct model *m = store_get_model(f->store, "My-Model");
	assert_int_equal(m->n_tags, 1);
}

static void test_create_containers_hostnames(void **state)
{
	struct fixture *f = *state;
	call_ok(f, "CreateModel",
		"{\"ModelName\":\"pipe\",\"Containers\":[{\"Image\":\"a\"},{\"Image\":\"b\",\"Mode\":\"SingleModel\"},"
		"{\"Image\":\"c\"}]}");
	yajl_val v = expect_ok(call(f, "DescribeModel", "{\"ModelName\":\"pipe\"}"));
	yajl_val cs = json_get(v, "Containers");
	assert_non_null(cs);
	assert_int_equal(cs->u.array.len, 3);
	assert_string_equal(json_get_string(cs->u.array.values[0], "ContainerHostname"), "container-1");
	assert_string_equal(json_get_string(cs->u.array.values[2], "ContainerHostname"), "container-3");
	assert_null(json_get(v, "InferenceExecutionConfig"));
	yajl_tree_free(v);

	call_ok(f, "CreateModel",
		"{\"ModelName\":\"direct\",\"InferenceExecutionConfig\":{\"Mode\":\"Direct\"},\"Containers\":["
		"{\"Image\":\"a\",\"ContainerHostname\":\"first\"},{\"Image\":\"b\",\"ContainerHostname\":\"sec--ond\"}]}");
	v = expect_ok(call(f, "DescribeModel", "{\"ModelName\":\"direct\"}"));
	assert_string_equal(json_get_string(json_get(v, "InferenceExecutionConfig"), "Mode"), "Direct");
	cs = json_get(v, "Containers");
	assert_string_equal(json_get_string(cs->u.array.values[1], "ContainerHostname"), "sec--ond");
	yajl_tree_free(v);
	/* survives a reopen with hostname_given */
	const struct model *m = store_get_model(f->store, "direct");
	assert_true(m->containers[0].hostname_given);
	assert_false(store_get_model(f->store, "pipe")->containers[0].hostname_given);
}

static void test_name_rules(void **state)
{
	struct fixture *f = *state;
	bad(f, "{\"ModelName\":\"x!\",\"PrimaryContainer\":{\"Image\":\"i\"}}", "ValidationException",
	    "1 validation error detected: Value 'x!' at 'modelName' failed to satisfy constraint: Member must "
	    "satisfy regular expression pattern: " PATTERN);
	char body[512];
	const char *n64 = "a123456789012345678901234567890123456789012345678901234567890123";
	snprintf(body, sizeof(body), "{\"ModelName\":\"%s\",\"PrimaryContainer\":{\"Image\":\"i\"}}", n64);
	char msg[512];
	snprintf(msg, sizeof(msg),
		 "1 validation error detected: Value '%s' at 'modelName' failed to satisfy constraint: Member must "
		 "have length less than or equal to 63",
		 n64);
	bad(f, body, "ValidationException", msg);
	bad(f, "{\"ModelName\":\"-a\",\"PrimaryContainer\":{\"Image\":\"i\"}}", "ValidationException", NULL);
	bad(f, "{\"ModelName\":\"a-\",\"PrimaryContainer\":{\"Image\":\"i\"}}", "ValidationException", NULL);
	expect_error(call(f, "CreateModel", "{\"PrimaryContainer\":{\"Image\":\"i\"}}"), 400, "ValidationException",
		     "1 validation error detected: Value null at 'modelName' failed to satisfy constraint: Member "
		     "must not be null");
	expect_error(call(f, "CreateModel", "{\"ModelName\":\"\",\"PrimaryContainer\":{\"Image\":\"i\"}}"), 400,
		     "ValidationException",
		     "2 validation errors detected: Value '' at 'modelName' failed to satisfy constraint: Member must "
		     "have length greater than or equal to 1; Value '' at 'modelName' failed to satisfy constraint: "
		     "Member must satisfy regular expression pattern: " PATTERN);
	snprintf(body, sizeof(body), "{\"ModelName\":\"%.63s\",\"PrimaryContainer\":{\"Image\":\"i\"}}", n64);
	call_ok(f, "CreateModel", body);
}

static void test_several_errors(void **state)
{
	struct fixture *f = *state;
	bad(f, "{\"ModelName\":\"x!\",\"PrimaryContainer\":{}}", "ValidationException",
	    "2 validation errors detected: Value 'x!' at 'modelName' failed to satisfy constraint: Member must "
	    "satisfy regular expression pattern: " PATTERN "; Value null at 'primaryContainer.image' failed to "
	    "satisfy constraint: Member must not be null");
}

static void test_container_rules(void **state)
{
	struct fixture *f = *state;
	bad(f, "{\"ModelName\":\"m\",\"PrimaryContainer\":{\"Image\":\"a b\"}}", "ValidationException",
	    "1 validation error detected: Value 'a b' at 'primaryContainer.image' failed to satisfy constraint: "
	    "Member must satisfy regular expression pattern: [\\S]+");
	bad(f, "{\"ModelName\":\"m\",\"Containers\":[{\"Image\":\"a\",\"ContainerHostname\":\"h_1\"}]}",
	    "ValidationException",
	    "1 validation error detected: Value 'h_1' at 'containers.1.containerHostname' failed to satisfy "
	    "constraint: Member must satisfy regular expression pattern: " HOST_PATTERN);
	bad(f, "{\"ModelName\":\"m\",\"Containers\":[{\"Image\":\"a\"},{\"Image\":\"b\",\"ContainerHostname\":\"-x\"}]}",
	    "ValidationException",
	    "1 validation error detected: Value '-x' at 'containers.2.containerHostname' failed to satisfy "
	    "constraint: Member must satisfy regular expression pattern: " HOST_PATTERN);
	bad(f, "{\"ModelName\":\"m\",\"PrimaryContainer\":{\"Image\":\"a\",\"Mode\":\"Multi\"}}", "ValidationException",
	    "1 validation error detected: Value 'Multi' at 'primaryContainer.mode' failed to satisfy constraint: "
	    "Member must satisfy enum value set: [SingleModel, MultiModel]");
	bad(f, "{\"ModelName\":\"m\",\"InferenceExecutionConfig\":{\"Mode\":\"Parallel\"},\"Containers\":[{\"Image\":\"a\"}]}",
	    "ValidationException",
	    "1 validation error detected: Value 'Parallel' at 'inferenceExecutionConfig.mode' failed to satisfy "
	    "constraint: Member must satisfy enum value set: [Serial, Direct]");
	bad(f, "{\"ModelName\":\"m\",\"InferenceExecutionConfig\":{},\"Containers\":[{\"Image\":\"a\"}]}",
	    "ValidationException",
	    "1 validation error detected: Value null at 'inferenceExecutionConfig.mode' failed to satisfy "
	    "constraint: Member must not be null");
	bad(f, "{\"ModelName\":\"m\",\"PrimaryContainer\":{\"Image\":\"a\",\"ModelDataUrl\":\"ftp://x/y\"}}",
	    "ValidationException",
	    "1 validation error detected: Value 'ftp://x/y' at 'primaryContainer.modelDataUrl' failed to satisfy "
	    "constraint: Member must satisfy regular expression pattern: ^(https|s3)://([^/]+)/?(.*)$|^file:///(.*)$");
	call_ok(f, "CreateModel", "{\"ModelName\":\"f\",\"PrimaryContainer\":{\"Image\":\"a\",\"ModelDataUrl\":\"file:///srv/m.tar.gz\"}}");
	call_ok(f, "CreateModel", "{\"ModelName\":\"h\",\"PrimaryContainer\":{\"Image\":\"a\",\"ModelDataUrl\":\"https://host/m.tar.gz\"}}");
	assert_int_equal(store_delete_model(f->store, "f", &(struct berth_err){ 0 }), 0);
	assert_int_equal(store_delete_model(f->store, "h", &(struct berth_err){ 0 }), 0);

	bad(f, "{\"ModelName\":\"m\",\"PrimaryContainer\":{\"Image\":\"a\"},\"Containers\":[{\"Image\":\"b\"}]}",
	    "ValidationException", "PrimaryContainer and Containers cannot both be specified: give one of them.");
	bad(f, "{\"ModelName\":\"m\"}", "ValidationException", "Either PrimaryContainer or Containers must be specified.");
	bad(f, "{\"ModelName\":\"m\",\"Containers\":[]}", "ValidationException",
	    "1 validation error detected: Value '[]' at 'containers' failed to satisfy constraint: Member must "
	    "have length greater than or equal to 1");
	char body[4096] = "{\"ModelName\":\"m\",\"Containers\":[";
	for (int i = 0; i < 16; i++)
		strcat(body, i ? ",{\"Image\":\"i\"}" : "{\"Image\":\"i\"}");
	strcat(body, "]}");
	struct api_reply r = call(f, "CreateModel", body);
	assert_non_null(strstr(r.body.data, "at 'containers' failed to satisfy constraint: Member must have length "
					    "less than or equal to 15"));
	expect_error(r, 400, "ValidationException", NULL);

	bad(f, "{\"ModelName\":\"m\",\"Containers\":[{\"Image\":\"a\",\"ContainerHostname\":\"x\"},{\"Image\":\"b\"}]}",
	    "ValidationException",
	    "ContainerHostname is set for some containers but not all: when one container of Containers sets "
	    "ContainerHostname, every container must.");
	bad(f, "{\"ModelName\":\"m\",\"Containers\":[{\"Image\":\"a\",\"ContainerHostname\":\"x\"},{\"Image\":\"b\","
	       "\"ContainerHostname\":\"X\"}]}",
	    "ValidationException", "Duplicate ContainerHostname 'X': every container of a model needs a unique hostname.");
	bad(f, "{\"ModelName\":\"m\",\"Containers\":[{\"Image\":\"a\",\"Mode\":\"MultiModel\"},{\"Image\":\"b\"}]}",
	    "ValidationException",
	    "Container 'container-1' has Mode MultiModel, which needs a model with a single container.");
}

static void test_environment_rules(void **state)
{
	struct fixture *f = *state;
	bad(f, "{\"ModelName\":\"m\",\"PrimaryContainer\":{\"Image\":\"a\",\"Environment\":{\"1BAD\":\"v\"}}}",
	    "ValidationException",
	    "1 validation error detected: Value '{1BAD=v}' at 'primaryContainer.environment' failed to satisfy "
	    "constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: "
	    "[a-zA-Z_][a-zA-Z0-9_]*]");
	bad(f, "{\"ModelName\":\"m\",\"PrimaryContainer\":{\"Image\":\"a\",\"Environment\":{\"K\":1}}}",
	    "SerializationException", "'primaryContainer.environment' values must be strings; 'K' is not.");

	/* 101 entries */
	struct berth_buf b = BERTH_BUF_INIT;
	buf_append_str(&b, "{\"ModelName\":\"m\",\"PrimaryContainer\":{\"Image\":\"a\",\"Environment\":{");
	for (int i = 0; i < 101; i++)
		buf_printf(&b, "%s\"K%d\":\"v\"", i ? "," : "", i);
	buf_append_str(&b, "}}}");
	struct api_reply r = call(f, "CreateModel", b.data);
	assert_non_null(strstr(r.body.data, "at 'primaryContainer.environment' failed to satisfy constraint: Member "
					    "must have length less than or equal to 100"));
	expect_error(r, 400, "ValidationException", NULL);

	/* a value of 1025 bytes */
	buf_reset(&b);
	buf_append_str(&b, "{\"ModelName\":\"m\",\"PrimaryContainer\":{\"Image\":\"a\",\"Environment\":{\"K\":\"");
	for (int i = 0; i < 1025; i++)
		buf_append_str(&b, "v");
	buf_append_str(&b, "\"}}}");
	r = call(f, "CreateModel", b.data);
	assert_non_null(strstr(r.body.data, "Map value must satisfy constraint: [Member must have length less than or "
					    "equal to 1024]"));
	expect_error(r, 400, "ValidationException", NULL);

	/* 32 KB across containers: 3 containers x 12 values of 1000 bytes */
	buf_reset(&b);
	buf_append_str(&b, "{\"ModelName\":\"m\",\"Containers\":[");
	for (int c = 0; c < 3; c++) {
		buf_printf(&b, "%s{\"Image\":\"a\",\"Environment\":{", c ? "," : "");
		for (int i = 0; i < 12; i++) {
			buf_printf(&b, "%s\"K%d\":\"", i ? "," : "", i);
			for (int k = 0; k < 1000; k++)
				buf_append_str(&b, "v");
			buf_append_str(&b, "\"");
		}
		buf_append_str(&b, "}}");
	}
	buf_append_str(&b, "]}");
	r = call(f, "CreateModel", b.data);
	assert_non_null(strstr(r.body.data, "limit is 32768 bytes"));
	expect_error(r, 400, "ValidationException", NULL);
	buf_free(&b);
}

static void test_wrong_types(void **state)
{
	struct fixture *f = *state;
	bad(f, "{\"ModelName\":\"m\",\"Containers\":\"oops\"}", "SerializationException",
	    "'containers' must be a list, not a string.");
	bad(f, "{\"ModelName\":5,\"PrimaryContainer\":{\"Image\":\"a\"}}", "SerializationException",
	    "'modelName' must be a string, not a number.");
	bad(f, "{\"ModelName\":\"m\",\"PrimaryContainer\":[]}", "SerializationException",
	    "'primaryContainer' must be an object, not a list.");
	bad(f, "{\"ModelName\":\"m\",\"Containers\":[5]}", "SerializationException", "'containers.1' must be an object.");
	bad(f, "{\"ModelName\":\"m\",\"PrimaryContainer\":{\"Image\":\"a\"},\"EnableNetworkIsolation\":\"yes\"}",
	    "SerializationException", "'enableNetworkIsolation' must be a boolean, not a string.");
	bad(f, "{\"ModelName\":\"m\",\"PrimaryContainer\":{\"Image\":\"a\"},\"Tags\":{}}", "SerializationException",
	    "'tags' must be a list, not an object.");
	/* null is "not given" */
	call_ok(f, "CreateModel", "{\"ModelName\":\"m\",\"PrimaryContainer\":{\"Image\":\"a\"},\"Containers\":null,\"Tags\":null}");
}

/* EnableNetworkIsolation is kept and described as given; members berth
 * does not implement are refused by name and nothing is created. */
static void test_network_isolation_and_unsupported_members(void **state)
{
	struct fixture *f = *state;
	call_ok(f, "CreateModel", "{\"ModelName\":\"iso\",\"PrimaryContainer\":{\"Image\":\"a\"},"
				  "\"EnableNetworkIsolation\":true}");
	yajl_val v = expect_ok(call(f, "DescribeModel", "{\"ModelName\":\"iso\"}"));
	bool iso = false;
	assert_true(json_get_bool(v, "EnableNetworkIsolation", &iso) && iso);
	yajl_tree_free(v);
	expect_error(call(f, "CreateModel", "{\"ModelName\":\"vpc\",\"PrimaryContainer\":{\"Image\":\"a\"},"
					    "\"VpcConfig\":{\"SecurityGroupIds\":[\"sg-1\"],\"Subnets\":[\"s-1\"]}}"),
		     400, "ValidationException",
		     "berth does not support VpcConfig yet: containers have no network but their own loopback, so "
		     "there is no VPC to attach them to. Remove it from the CreateModel request.");
	expect_error(call(f, "CreateModel", "{\"ModelName\":\"pkg\",\"Containers\":[{\"Image\":\"a\"},"
					    "{\"ModelPackageName\":\"arn:aws:sagemaker:us-east-1:1:model-package/p\"}]}"),
		     400, "ValidationException",
		     "berth does not support Containers.2.ModelPackageName yet: there is no model registry; give "
		     "Image (and ModelDataUrl) instead. Remove it from the CreateModel request.");
	expect_error(call(f, "CreateModel", "{\"ModelName\":\"auth\",\"PrimaryContainer\":{\"Image\":\"a\",\"ImageConfig\":"
					    "{\"RepositoryAccessMode\":\"Vpc\",\"RepositoryAuthConfig\":"
					    "{\"RepositoryCredentialsProviderArn\":\"arn:aws:lambda:x\"}}}}"),
		     400, "ValidationException",
		     "berth does not support PrimaryContainer.ImageConfig.RepositoryAuthConfig yet: registry "
		     "credentials are berthd's (its registries configuration), not a Lambda function's. Remove it "
		     "from the CreateModel request.");
	expect_error(call(f, "CreateModel", "{\"ModelName\":\"mode\",\"PrimaryContainer\":{\"Image\":\"a\",\"ImageConfig\":"
					    "{\"RepositoryAccessMode\":\"Private\"}}}"),
		     400, "ValidationException",
		     "1 validation error detected: Value 'Private' at 'primaryContainer.imageConfig.repositoryAccessMode' "
		     "failed to satisfy constraint: Member must satisfy enum value set: [Platform, Vpc]");
	call_ok(f, "CreateModel", "{\"ModelName\":\"vpc-mode\",\"PrimaryContainer\":{\"Image\":\"a\",\"ImageConfig\":"
				  "{\"RepositoryAccessMode\":\"Vpc\"}}}");
	assert_int_equal(store_count_models(f->store), 2);
}

static void test_exists_describe_delete(void **state)
{
	struct fixture *f = *state;
	make_model(f, "dup");
	expect_error(call(f, "CreateModel", "{\"ModelName\":\"DUP\",\"PrimaryContainer\":{\"Image\":\"a\"}}"), 400,
		     "ValidationException",
		     "Cannot create already existing model \"arn:aws:sagemaker:us-east-1:000000000000:model/dup\".");
	expect_error(call(f, "DescribeModel", "{\"ModelName\":\"Nope\"}"), 400, "ValidationException",
		     "Could not find model \"arn:aws:sagemaker:us-east-1:000000000000:model/nope\".");
	expect_error(call(f, "DeleteModel", "{\"ModelName\":\"nope\"}"), 400, "ValidationException",
		     "Could not find model \"arn:aws:sagemaker:us-east-1:000000000000:model/nope\".");
	expect_error(call(f, "DescribeModel", "{}"), 400, "ValidationException",
		     "1 validation error detected: Value null at 'modelName' failed to satisfy constraint: Member "
		     "must not be null");
	struct api_reply r = call(f, "DeleteModel", "{\"ModelName\":\"dup\"}");
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.data, "{}");
	buf_free(&r.body);
	assert_null(store_get_model(f->store, "dup"));
	char path[128];
	snprintf(path, sizeof(path), "%s/models/dup.json", f->dir);
	assert_int_not_equal(access(path, F_OK), 0);
}

static void test_persistence_failure(void **state)
{
	struct fixture *f = *state;
	char path[160];
	snprintf(path, sizeof(path), "%s/models/pf.json.tmp.%d", f->dir, (int)getpid());
	assert_int_equal(mkdir(path, 0700), 0);
	struct api_reply r = call(f, "CreateModel", "{\"ModelName\":\"pf\",\"PrimaryContainer\":{\"Image\":\"a\"}}");
	assert_int_equal(r.status, 500);
	assert_non_null(strstr(r.body.data, "\"__type\":\"InternalFailure\""));
	assert_non_null(strstr(r.body.data, "persisting models pf"));
	buf_free(&r.body);
	assert_null(store_get_model(f->store, "pf"));
	rmdir(path);
}

/* The real image check (image.h) as the runtime wires it in main.c. */
static int real_image_check(void *sources, const char *image, struct berth_err *err)
{
	(void)sources;
	struct host_roots roots = { 0 }; /* the test's directories: every path is under "/" */
	if (host_roots_add(&roots, "/", err) < 0)
		return -1;
	struct image_policy policy = { .roots = &roots };
	int r = image_check(&policy, image, err);
	host_roots_free(&roots);
	return r;
}

static void write_text(const char *dir, const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void expect_image_answer(struct fixture *f, const char *image, int status, const char *type,
				const char *message)
{
	char body[512];
	snprintf(body, sizeof(body), "{\"ModelName\":\"img\",\"PrimaryContainer\":{\"Image\":\"%s\"}}", image);
	if (status == 200) {
		call_ok(f, "CreateModel", body);
		call_ok(f, "DeleteModel", "{\"ModelName\":\"img\"}");
		return;
	}
	expect_error(call(f, "CreateModel", body), status, type, message);
	assert_null(store_get_model(f->store, "img"));
}

/* An image the caller got wrong is a 400 ValidationException; an image
 * berthd could not check (here: out of file descriptors, a real EMFILE)
 * is berth's fault, 500 InternalFailure, not a 400 that blames the image. */
static void test_image_check_classes(void **state)
{
	struct fixture *f = *state;
	f->ctx.runtime.image_check = real_image_check;
	char layout[128], image[192], message[1024];
	snprintf(layout, sizeof(layout), "%s/layout", f->dir);
	assert_int_equal(mkdir(layout, 0700), 0);
	write_text(layout, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
	write_text(layout, "index.json",
		   "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		   "\"digest\":\"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"size\":2,"
		   "\"annotations\":{\"org.opencontainers.image.ref.name\":\"latest\"}}]}");
	snprintf(image, sizeof(image), "oci:%s:latest", layout);
	expect_image_answer(f, image, 200, NULL, NULL);

	snprintf(image, sizeof(image), "oci:%s/nope:latest", f->dir);
	snprintf(message, sizeof(message),
		 "Container 'primary': Image \"%s\": the OCI image layout %s/nope does not exist.", image, f->dir);
	expect_image_answer(f, image, 400, "ValidationException", message);

	snprintf(image, sizeof(image), "oci:%s:v9", layout);
	snprintf(message, sizeof(message),
		 "Container 'primary': Image \"%s\": OCI image layout %s: there is no tag \"v9\" in it; its tags "
		 "are: latest",
		 image, layout);
	expect_image_answer(f, image, 400, "ValidationException", message);

	snprintf(image, sizeof(image), "%s/missing-rootfs", f->dir);
	snprintf(message, sizeof(message),
		 "Container 'primary': Image \"%s\" does not exist on this host (No such file or directory).", image);
	expect_image_answer(f, image, 400, "ValidationException", message);

	/* a malformed index.json is the image's fault too */
	char broken[128];
	snprintf(broken, sizeof(broken), "%s/broken", f->dir);
	assert_int_equal(mkdir(broken, 0700), 0);
	write_text(broken, "oci-layout", "{}");
	write_text(broken, "index.json", "{\"manifests\": [");
	snprintf(image, sizeof(image), "oci:%s", broken);
	expect_image_answer(f, image, 400, "ValidationException", NULL);

	/* no file descriptor left: opening the layout fails with EMFILE */
	snprintf(image, sizeof(image), "oci:%s:latest", layout);
	struct rlimit saved, low;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	int lowest_free = dup(0);
	assert_true(lowest_free >= 0);
	close(lowest_free);
	low = saved;
	low.rlim_cur = (rlim_t)lowest_free;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	char body[512];
	snprintf(body, sizeof(body), "{\"ModelName\":\"img\",\"PrimaryContainer\":{\"Image\":\"%s\"}}", image);
	struct api_reply r = call(f, "CreateModel", body);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
	snprintf(message, sizeof(message),
		 "Container 'primary': Image \"%s\": cannot open the OCI image layout %s: Too many open files. This is "
		 "a failure of berthd on this host, not of the request: retry it, and see berthd's log if it persists.",
		 image, layout);
	expect_error(r, 500, "InternalFailure", message);
	assert_null(store_get_model(f->store, "img"));
	/* with descriptors back, the same request succeeds */
	expect_image_answer(f, image, 200, NULL, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_primary_and_describe, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_create_containers_hostnames, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_name_rules, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_several_errors, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_container_rules, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_environment_rules, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_wrong_types, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_exists_describe_delete, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_network_isolation_and_unsupported_members, fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_persistence_failure, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_image_check_classes, fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
