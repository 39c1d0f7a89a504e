/* InvokeEndpointAsync in the router: the path's classification
 * (dispatch.c), the header checks and the request line for berthd
 * (async_invoke.c, pure), and the queue gauges on /metrics
 * (async_metrics.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "async_invoke.h"
#include "async_metrics.h"
#include "dispatch.h"
#include "json.h"

struct headers {
	const char *names[8], *values[8];
	size_t n;
};

static const char *get(const void *ctx, const char *name)
{
	const struct headers *h = ctx;
	for (size_t i = 0; i < h->n; i++)
		if (strcmp(h->names[i], name) == 0)
			return h->values[i];
	return NULL;
}

static int render(struct headers *h, struct berth_buf *line, struct berth_buf *why)
{
	buf_reset(line);
	buf_reset(why);
	return async_invoke_render("ep", get, h, line, why);
}

static void classify(void **state)
{
	(void)state;
	struct dispatch_target t = dispatch_classify(REQUEST_POST, "/endpoints/e-1/async-invocations", NULL);
	assert_int_equal(t.kind, DISPATCH_INVOKE);
	assert_true(t.async);
	assert_false(t.stream);
	assert_int_equal(t.name_len, 3);
	assert_memory_equal(t.name, "e-1", 3);
	t = dispatch_classify(REQUEST_POST, "/endpoints/e/invocations", NULL);
	assert_false(t.async);
	t = dispatch_classify(REQUEST_GET, "/endpoints/e/async-invocations", NULL);
	assert_int_equal(t.kind, DISPATCH_NOT_FOUND);
	t = dispatch_classify(REQUEST_POST, "/endpoints/a/b/async-invocations", NULL);
	assert_int_equal(t.kind, DISPATCH_NOT_FOUND);
	t = dispatch_classify(REQUEST_POST, "/endpoints//async-invocations", NULL);
	assert_int_equal(t.kind, DISPATCH_NOT_FOUND);
}

static void header_checks(void **state)
{
	(void)state;
	struct berth_buf line = BERTH_BUF_INIT, why = BERTH_BUF_INIT;
	struct headers h = { { 0 }, { 0 }, 0 };
	assert_int_equal(render(&h, &line, &why), -1);
	assert_string_equal(why.data, "1 validation error detected: Value null at 'inputLocation' failed to satisfy "
				      "constraint: Member must not be null");
	h = (struct headers){ { "x-amzn-sagemaker-inputlocation" }, { "s3:/b/k" }, 1 };
	assert_int_equal(render(&h, &line, &why), -1);
	assert_non_null(strstr(why.data, "Value 's3:/b/k' at 'inputLocation' failed to satisfy constraint: Member must "
					 "satisfy regular expression pattern: ^(https|s3)://([^/]+)/?(.*)$"));
	h = (struct headers){ { "x-amzn-sagemaker-inputlocation", "x-amzn-sagemaker-requestttlseconds",
				"x-amzn-sagemaker-invocationtimeoutseconds", "x-amzn-sagemaker-filename" },
			      { "s3://b/k", "21601", "0", "a.b.c" }, 4 };
	assert_int_equal(render(&h, &line, &why), -1);
	assert_non_null(strstr(why.data, "3 validation errors detected: "));
	assert_non_null(strstr(why.data, "Value '21601' at 'requestTTLSeconds' failed to satisfy constraint: Member must "
					 "have value less than or equal to 21600"));
	assert_non_null(strstr(why.data, "Value '0' at 'invocationTimeoutSeconds' failed to satisfy constraint: Member "
					 "must have value greater than or equal to 1"));
	assert_non_null(strstr(why.data, "at 'filename' failed to satisfy constraint"));
	h = (struct headers){ { "x-amzn-sagemaker-inputlocation", "x-amzn-sagemaker-custom-attributes" },
			      { "s3://b/k", "caf\xc3\xa9" }, 2 };
	assert_int_equal(render(&h, &line, &why), -1);
	assert_non_null(strstr(why.data, "at 'customAttributes'"));
	buf_free(&line);
	buf_free(&why);
}

static void request_line(void **state)
{
	(void)state;
	struct berth_buf line = BERTH_BUF_INIT, why = BERTH_BUF_INIT;
	struct headers h = { { "x-amzn-sagemaker-inputlocation", "x-amzn-sagemaker-inference-id",
			       "x-amzn-sagemaker-invocationtimeoutseconds", "x-amzn-sagemaker-s3outputpathextension" },
			     { "s3://b/in.json", "id 1", "3600", "day/1" }, 4 };
	assert_int_equal(render(&h, &line, &why), 0);
	assert_true(line.len > 0 && line.data[line.len - 1] == '\n');
	struct berth_err err;
	yajl_val v = json_parse(line.data, line.len - 1, &err);
	assert_non_null(v);
	assert_string_equal(json_get_string(v, "op"), "async_submit");
	assert_string_equal(json_get_string(v, "endpoint"), "ep");
	assert_string_equal(json_get_string(v, "input"), "s3://b/in.json");
	assert_string_equal(json_get_string(v, "inference_id"), "id 1");
	assert_string_equal(json_get_string(v, "output_extension"), "day/1");
	long long t = 0;
	assert_true(json_get_int64(v, "timeout_s", &t));
	assert_int_equal(t, 3600);
	assert_null(json_get(v, "ttl_s"));
	assert_null(json_get(v, "accept"));
	yajl_tree_free(v);
	buf_free(&line);
	buf_free(&why);
}

static void gauges(void **state)
{
	(void)state;
	struct async_metrics *m = async_metrics_new();
	assert_non_null(m);
	struct berth_buf out = BERTH_BUF_INIT;
	assert_false(async_metrics_route_event(m, "{\"op\":\"routes\",\"endpoints\":[]}", 31));
	const char *ev = "{\"op\":\"async_stats\",\"now\":100,\"endpoints\":[{\"endpoint\":\"a\",\"backlog\":6,"
			 "\"running\":2,\"instances\":2,\"oldest\":90.5},{\"endpoint\":\"b\",\"backlog\":0,"
			 "\"running\":0,\"instances\":0,\"oldest\":0}]}";
	assert_true(async_metrics_route_event(m, ev, strlen(ev)));
	assert_int_equal(async_metrics_render(m, 100.0, &out), 0);
	assert_non_null(strstr(out.data, "ApproximateBacklogSize{endpoint=\"a\"} 6\n"));
	assert_non_null(strstr(out.data, "ApproximateBacklogSizePerInstance{endpoint=\"a\"} 3\n"));
	assert_non_null(strstr(out.data, "ApproximateAgeOfOldestRequest{endpoint=\"a\"} 9.500\n"));
	assert_non_null(strstr(out.data, "ApproximateAgeOfOldestRequest{endpoint=\"b\"} 0.000\n"));
	assert_non_null(strstr(out.data, "berth_async_running{endpoint=\"a\"} 2\n"));
	/* a malformed one is taken (it was ours) but the last good one kept */
	const char *bad = "{\"op\":\"async_stats\",\"endpoints\":[{\"backlog\":1}]}";
	assert_true(async_metrics_route_event(m, bad, strlen(bad)));
	buf_reset(&out);
	assert_int_equal(async_metrics_render(m, 100.0, &out), 0);
	assert_non_null(strstr(out.data, "ApproximateBacklogSize{endpoint=\"a\"} 6\n"));
	buf_free(&out);
	async_metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(classify),
		cmocka_unit_test(header_checks),
		cmocka_unit_test(request_line),
		cmocka_unit_test(gauges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
