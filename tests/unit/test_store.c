/* test_store.c — the state store: put/get/delete persist, a reopened store
 * reads everything back, a corrupt document is renamed and skipped, and a
 * failed write leaves the old document (on disk and in memory). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "fsutil.h"
#include "resources.h"
#include "store.h"

struct tmp {
	char dir[64];
};

static int setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/berth-store-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tmp *t = *state;
	struct berth_err err = { 0 };
	assert_int_equal(fs_remove_tree(t->dir, &err), 0);
	free(t);
	return 0;
}

static struct model *new_model(const char *name, const char *image)
{
	struct model *m = calloc(1, sizeof(*m));
	m->name = strdup(name);
	m->arn = strdup("arn:aws:sagemaker:us-east-1:000000000000:model/x");
	m->creation_time = 1700000000.125;
	m->has_primary = true;
	m->n_containers = 1;
	m->containers = calloc(1, sizeof(*m->containers));
	m->containers[0].hostname = strdup("primary");
	m->containers[0].image = strdup(image);
	m->containers[0].model_data_url = strdup("s3://bucket/model.tar.gz");
	m->containers[0].n_env = 2;
	m->containers[0].env = calloc(2, sizeof(struct kv));
	m->containers[0].env[0] = (struct kv){ strdup("B_KEY"), strdup("1") };
	m->containers[0].env[1] = (struct kv){ strdup("A_KEY"), strdup("two \"quoted\"") };
	m->n_tags = 1;
	m->tags = calloc(1, sizeof(struct kv));
	m->tags[0] = (struct kv){ strdup("team"), strdup("ml") };
	m->enable_network_isolation = strcmp(name, "alpha") == 0;
	return m;
}

static struct endpoint *new_endpoint(const char *name)
{
	struct endpoint *e = calloc(1, sizeof(*e));
	e->name = strdup(name);
	e->arn = strdup("arn:aws:sagemaker:us-east-1:000000000000:endpoint/e");
	e->config_name = strdup("cfg");
	e->creation_time = 1700000000.5;
	e->last_modified_time = 1700000001.25;
	e->status = strdup("Failed");
	e->failure_reason = strdup("container exited");
	e->legacy_mode = strdup("Serial");
	e->variant_name = strdup("AllTraffic");
	e->n_containers = 2;
	e->containers = calloc(2, sizeof(*e->containers));
	e->containers[0] = (struct endpoint_container){ .id = strdup("c0"), .hostname = strdup("a"),
							.socket = strdup("/run/a.sock"), .log = strdup("/l/a") };
	e->containers[1] = (struct endpoint_container){ .id = strdup("c1"), .hostname = strdup("b") };
	e->n_variants = 1;
	e->variants = calloc(1, sizeof(*e->variants));
	e->variants[0] = (struct variant){ .variant_name = strdup("AllTraffic"), .model_name = strdup("m"),
					   .initial_instance_count = 2, .instance_type = strdup("ml.m5.large"),
					   .initial_weight = 0.5, .startup_health_check_timeout_s = 60 };
	e->containers[0].startup_timeout_ms = 60000;
	e->containers[0].download_timeout_ms = 3600000;
	return e;
}

static void test_put_get_delete_reopen(void **state)
{
	struct tmp *t = *state;
	struct berth_err err = { 0 };
	struct store *s = store_open(t->dir, &err);
	assert_non_null(s);
	assert_string_equal(store_dir(s), t->dir);
	assert_int_equal(store_count_models(s), 0);

	assert_int_equal(store_put_model(s, new_model("zeta", "img-z"), &err), 0);
	assert_int_equal(store_put_model(s, new_model("alpha", "img-a"), &err), 0);
	assert_int_equal(store_put_model(s, new_model("mid", "img-m"), &err), 0);
	assert_int_equal(store_count_models(s), 3);
	assert_string_equal(store_model_at(s, 0)->name, "alpha");
	assert_string_equal(store_model_at(s, 2)->name, "zeta");
	assert_null(store_model_at(s, 3));
	/* replacing keeps one copy */
	assert_int_equal(store_put_model(s, new_model("mid", "img-m2"), &err), 0);
	assert_int_equal(store_count_models(s), 3);
	assert_string_equal(store_get_model(s, "mid")->containers[0].image, "img-m2");
	assert_null(store_get_model(s, "nope"));

	assert_int_equal(store_put_endpoint(s, new_endpoint("ep"), &err), 0);
	struct endpoint_config *c = calloc(1, sizeof(*c));
	c->name = strdup("cfg");
	c->arn = strdup("arn:cfg");
	c->creation_time = 5.5;
	c->n_variants = 1;
	c->variants = calloc(1, sizeof(*c->variants));
	c->variants[0] = (struct variant){ .variant_name = strdup("v1"), .model_name = strdup("alpha"),
					   .initial_instance_count = 3, .instance_type = strdup("ml.c5.xlarge"),
					   .initial_weight = 1.0, .model_data_download_timeout_s = 3600 };
	assert_int_equal(store_put_endpoint_config(s, c, &err), 0);

	assert_int_equal(store_delete_model(s, "zeta", &err), 0);
	assert_int_equal(store_delete_model(s, "zeta", &err), -1);
	char path[128];
	snprintf(path, sizeof(path), "%s/models/zeta.json", t->dir);
	assert_int_not_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/models/alpha.json", t->dir);
	assert_int_equal(access(path, F_OK), 0);
	store_close(s);

	s = store_open(t->dir, &err);
	assert_non_null(s);
	assert_int_equal(store_count_models(s), 2);
	const struct model *m = store_get_model(s, "alpha");
	assert_non_null(m);
	assert_true(m->has_primary);
	assert_true(m->creation_time == 1700000000.125);
	assert_string_equal(m->containers[0].image, "img-a");
	assert_string_equal(m->containers[0].model_data_url, "s3://bucket/model.tar.gz");
	assert_int_equal(m->containers[0].n_env, 2);
	assert_string_equal(m->containers[0].env[0].key, "B_KEY"); /* order kept */
	assert_string_equal(m->containers[0].env[1].value, "two \"quoted\"");
	assert_int_equal(m->n_tags, 1);
	assert_string_equal(m->tags[0].value, "ml");
	assert_true(m->enable_network_isolation);
	assert_false(store_get_model(s, "mid")->enable_network_isolation);

	const struct endpoint *e = store_get_endpoint(s, "ep");
	assert_non_null(e);
	assert_string_equal(e->status, "Failed");
	assert_string_equal(e->failure_reason, "container exited");
	assert_string_equal(e->legacy_mode, "Serial");
	/* a record without per-variant modes: each variant has the legacy one */
	assert_null(e->variants[0].mode);
	assert_string_equal(endpoint_variant_mode(e, 0), "Serial");
	assert_string_equal(e->variant_name, "AllTraffic");
	assert_int_equal(e->n_containers, 2);
	assert_string_equal(e->containers[0].socket, "/run/a.sock");
	assert_null(e->containers[1].socket);
	assert_int_equal(e->n_variants, 1);
	assert_int_equal(e->variants[0].initial_instance_count, 2);
	assert_true(e->variants[0].initial_weight == 0.5);
	/* the per-variant timeouts and each container's copy survive a restart */
	assert_int_equal(e->variants[0].startup_health_check_timeout_s, 60);
	assert_int_equal(e->variants[0].model_data_download_timeout_s, 0);
	assert_int_equal(e->containers[0].startup_timeout_ms, 60000);
	assert_int_equal(e->containers[0].download_timeout_ms, 3600000);
	assert_int_equal(e->containers[1].startup_timeout_ms, 0);
	assert_true(e->last_modified_time == 1700000001.25);

	const struct endpoint_config *cc = store_get_endpoint_config(s, "cfg");
	assert_non_null(cc);
	assert_string_equal(cc->variants[0].instance_type, "ml.c5.xlarge");
	assert_int_equal(cc->variants[0].model_data_download_timeout_s, 3600);
	assert_int_equal(cc->variants[0].startup_health_check_timeout_s, 0);
	assert_int_equal(store_delete_endpoint(s, "ep", &err), 0);
	assert_int_equal(store_delete_endpoint_config(s, "cfg", &err), 0);
	assert_int_equal(store_count_endpoints(s), 0);
	assert_int_equal(store_count_endpoint_configs(s), 0);
	store_close(s);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_corrupt_documents_skipped(void **state)
{
	struct tmp *t = *state;
	struct berth_err err = { 0 };
	struct store *s = store_open(t->dir, &err);
	assert_non_null(s);
	assert_int_equal(store_put_model(s, new_model("good", "img"), &err), 0);
	store_close(s);

	char path[160];
	snprintf(path, sizeof(path), "%s/models/bad.json", t->dir);
	write_file(path, "{\"ModelName\": \"bad\", ");
	snprintf(path, sizeof(path), "%s/models/wrongtype.json", t->dir);
	write_file(path, "{\"ModelName\":\"wrongtype\",\"ModelArn\":7,\"CreationTime\":1,"
			 "\"PrimaryContainer\":{\"ContainerHostname\":\"primary\",\"Image\":\"x\"}}");
	snprintf(path, sizeof(path), "%s/models/renamed.json", t->dir);
	write_file(path, "{\"ModelName\":\"other\",\"ModelArn\":\"a\",\"CreationTime\":1,"
			 "\"PrimaryContainer\":{\"ContainerHostname\":\"primary\",\"Image\":\"x\"}}");
	snprintf(path, sizeof(path), "%s/endpoints/e.json", t->dir);
	write_file(path, "[1,2]");
	snprintf(path, sizeof(path), "%s/endpoint-configs/c.json", t->dir);
	write_file(path, "{\"EndpointConfigName\":\"c\",\"EndpointConfigArn\":\"a\",\"CreationTime\":1,"
			 "\"ProductionVariants\":\"oops\"}");
	snprintf(path, sizeof(path), "%s/models/left.json.tmp.123", t->dir); /* leftover: ignored */
	write_file(path, "garbage");
	/* nested past JSON_MAX_DEPTH (a tampered file): refused while parsing, no crash */
	static char deep[2 * 200000 + 1];
	memset(deep, '[', 200000);
	memset(deep + 200000, ']', 200000);
	snprintf(path, sizeof(path), "%s/models/deep.json", t->dir);
	write_file(path, deep);

	s = store_open(t->dir, &err);
	assert_non_null(s);
	assert_int_equal(store_count_models(s), 1);
	assert_non_null(store_get_model(s, "good"));
	assert_int_equal(store_count_endpoints(s), 0);
	assert_int_equal(store_count_endpoint_configs(s), 0);
	store_close(s);

	const char *moved[] = { "models/bad.json.corrupt", "models/wrongtype.json.corrupt",
				"models/renamed.json.corrupt", "endpoints/e.json.corrupt",
				"endpoint-configs/c.json.corrupt", "models/left.json.tmp.123",
				"models/deep.json.corrupt" };
	for (size_t i = 0; i < sizeof(moved) / sizeof(moved[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", t->dir, moved[i]);
		assert_int_equal(access(path, F_OK), 0);
	}
	snprintf(path, sizeof(path), "%s/models/bad.json", t->dir);
	assert_int_not_equal(access(path, F_OK), 0);
}

static void test_failed_write_keeps_old(void **state)
{
	struct tmp *t = *state;
	struct berth_err err = { 0 };
	struct store *s = store_open(t->dir, &err);
	assert_non_null(s);
	assert_int_equal(store_put_model(s, new_model("keep", "old-image"), &err), 0);

	/* A directory where fs_write_atomic wants its temp file makes the write fail. */
	char path[160];
	snprintf(path, sizeof(path), "%s/models/keep.json.tmp.%d", t->dir, (int)getpid());
	assert_int_equal(mkdir(path, 0700), 0);
	berth_err_clear(&err);
	assert_int_equal(store_put_model(s, new_model("keep", "new-image"), &err), -1);
	assert_true(err.msg[0] != '\0');
	assert_string_equal(store_get_model(s, "keep")->containers[0].image, "old-image");
	/* a new resource that cannot be written is not in memory either */
	snprintf(path, sizeof(path), "%s/models/fresh.json.tmp.%d", t->dir, (int)getpid());
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(store_put_model(s, new_model("fresh", "x"), &err), -1);
	assert_null(store_get_model(s, "fresh"));
	assert_int_equal(store_count_models(s), 1);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/models/keep.json.tmp.%d", t->dir, (int)getpid());
	rmdir(path);
	store_close(s);

	s = store_open(t->dir, &err);
	assert_non_null(s);
	assert_string_equal(store_get_model(s, "keep")->containers[0].image, "old-image");
	assert_null(store_get_model(s, "fresh"));
	/* invalid names never reach the file system */
	assert_int_equal(store_put_model(s, new_model("../evil", "x"), &err), -1);
	store_close(s);
}

static void test_dup_and_json_roundtrip(void **state)
{
	(void)state;
	struct endpoint *e = new_endpoint("ep");
	struct endpoint *d = endpoint_dup(e);
	assert_non_null(d);
	assert_string_equal(d->containers[0].log, "/l/a");
	assert_string_equal(d->variants[0].model_name, "m");
	struct berth_buf a = BERTH_BUF_INIT, b = BERTH_BUF_INIT;
	assert_int_equal(endpoint_to_json(e, &a), 0);
	assert_int_equal(endpoint_to_json(d, &b), 0);
	assert_string_equal(a.data, b.data);
	struct berth_err err = { 0 };
	struct endpoint *back = endpoint_from_json(a.data, a.len, &err);
	assert_non_null(back);
	buf_reset(&b);
	assert_int_equal(endpoint_to_json(back, &b), 0);
	assert_string_equal(a.data, b.data);
	endpoint_free(back);
	endpoint_free(d);
	endpoint_free(e);

	struct model *m = new_model("m1", "img");
	struct model *md = model_dup(m);
	buf_reset(&a);
	buf_reset(&b);
	assert_int_equal(model_to_json(m, &a), 0);
	assert_int_equal(model_to_json(md, &b), 0);
	assert_string_equal(a.data, b.data);
	model_free(md);
	model_free(m);

	/* bad documents: refused with a message, never a crash */
	const char *bad[] = { "", "null", "{}", "{\"ModelName\":\"a\"}", "{\"ModelName\":5}",
			      "{\"ModelName\":\"a\",\"ModelArn\":\"x\",\"CreationTime\":1,\"Containers\":[]}",
			      "{\"ModelName\":\"a\",\"ModelArn\":\"x\",\"CreationTime\":1,\"Containers\":[7]}",
			      "{\"ModelName\":\"a\",\"ModelArn\":\"x\",\"CreationTime\":1,\"PrimaryContainer\":"
			      "{\"ContainerHostname\":\"p\",\"Image\":\"i\",\"Environment\":{\"K\":1}}}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		berth_err_clear(&err);
		assert_null(model_from_json(bad[i], strlen(bad[i]), &err));
		assert_true(err.msg[0] != '\0');
		assert_null(endpoint_from_json(bad[i], strlen(bad[i]), &err));
		assert_null(endpoint_config_from_json(bad[i], strlen(bad[i]), &err));
	}
	buf_free(&a);
	buf_free(&b);
}

/* Each variant's mode is kept with the endpoint ("Mode" in its own copy of
 * the variants); a record from before (one Berth.mode) still loads. */
static void test_per_variant_modes(void **state)
{
	(void)state;
	struct berth_err err = { 0 };
	struct endpoint *e = new_endpoint("ep");
	free(e->legacy_mode);
	e->legacy_mode = NULL;
	e->variants[0].mode = strdup("Direct");
	struct berth_buf a = BERTH_BUF_INIT;
	assert_int_equal(endpoint_to_json(e, &a), 0);
	assert_non_null(strstr(a.data, "\"Mode\":\"Direct\""));
	assert_null(strstr(a.data, "\"mode\""));
	struct endpoint *back = endpoint_from_json(a.data, a.len, &err);
	assert_non_null(back);
	assert_string_equal(endpoint_variant_mode(back, 0), "Direct");
	assert_string_equal(endpoint_variant_mode(back, 7), "Single"); /* no such variant, no legacy mode */
	endpoint_free(back);
	endpoint_free(e);
	buf_free(&a);
	/* the old format, as a berthd before per-variant modes wrote it */
	static const char old[] =
		"{\"EndpointName\":\"ep\",\"EndpointArn\":\"arn\",\"EndpointConfigName\":\"c\",\"EndpointStatus\":"
		"\"InService\",\"CreationTime\":1,\"Berth\":{\"mode\":\"Serial\",\"variant_name\":\"a\",\"containers\":[],"
		"\"production_variants\":[{\"VariantName\":\"a\",\"ModelName\":\"m\",\"InitialInstanceCount\":1,"
		"\"InstanceType\":\"ml.m5.large\",\"InitialVariantWeight\":1}]}}";
	back = endpoint_from_json(old, strlen(old), &err);
	assert_non_null(back);
	assert_string_equal(back->legacy_mode, "Serial");
	assert_string_equal(endpoint_variant_mode(back, 0), "Serial");
	endpoint_free(back);
	/* a mode berth does not know is a corrupt record */
	static const char weird[] =
		"{\"EndpointName\":\"ep\",\"EndpointArn\":\"arn\",\"EndpointConfigName\":\"c\",\"EndpointStatus\":"
		"\"InService\",\"CreationTime\":1,\"Berth\":{\"containers\":[],"
		"\"production_variants\":[{\"VariantName\":\"a\",\"ModelName\":\"m\",\"InitialInstanceCount\":1,"
		"\"InstanceType\":\"ml.m5.large\",\"Mode\":\"Chained\"}]}}";
	assert_null(endpoint_from_json(weird, strlen(weird), &err));
	assert_non_null(strstr(err.msg, "Chained"));
	/* SageMaker's rules for a model's mode */
	struct model *m = new_model("m", "img");
	assert_string_equal(model_invocation_mode(m), "Single");
	m->containers[0].mode = strdup("MultiModel");
	assert_string_equal(model_invocation_mode(m), "MultiModel");
	free(m->containers[0].mode);
	m->containers[0].mode = NULL;
	m->execution_mode = strdup("Direct"); /* one container, a mode given */
	assert_string_equal(model_invocation_mode(m), "Direct");
	model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_get_delete_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_documents_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_write_keeps_old, setup, teardown),
		cmocka_unit_test(test_dup_and_json_roundtrip),
		cmocka_unit_test(test_per_variant_modes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
