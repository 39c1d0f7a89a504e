/* The stateful session pin table (router/sessions.c): ID and New-Session-Id
 * validation, pin/find/unpin, expiry, the bound, dropping pins whose
 * instance left the route table, and moving a plan to a pinned instance. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "invoke.h"
#include "route_table.h"
#include "sessions.h"

static const char table_json[] =
	"{\"op\":\"routes\",\"generation\":1,\"account\":\"123456789012\",\"region\":\"us-east-1\",\"endpoints\":["
	"{\"name\":\"chat\",\"status\":\"InService\",\"mode\":\"Single\",\"variants\":[{\"name\":\"AllTraffic\",\"weight\":1,"
	"\"instances\":[{\"containers\":[{\"hostname\":\"m\",\"socket\":\"/s/i0\"}]},"
	"{\"containers\":[{\"hostname\":\"m\",\"socket\":\"/s/i1\"}]}]}]}]}";

/* the same endpoint after instance 0 was replaced */
static const char replaced_json[] =
	"{\"op\":\"routes\",\"generation\":2,\"account\":\"123456789012\",\"region\":\"us-east-1\",\"endpoints\":["
	"{\"name\":\"chat\",\"status\":\"InService\",\"mode\":\"Single\",\"variants\":[{\"name\":\"AllTraffic\",\"weight\":1,"
	"\"instances\":[{\"containers\":[{\"hostname\":\"m\",\"socket\":\"/s/i2\"}]},"
	"{\"containers\":[{\"hostname\":\"m\",\"socket\":\"/s/i1\"}]}]}]}]}";

static struct route_table *parse(const char *json)
{
	struct berth_err err;
	struct route_table *t = route_table_parse(json, strlen(json), &err);
	assert_non_null(t);
	return t;
}

static void id_validation(void **state)
{
	(void)state;
	assert_true(session_id_valid("a"));
	assert_true(session_id_valid("abc-123--x9"));
	assert_false(session_id_valid(""));
	assert_false(session_id_valid("-abc"));
	assert_false(session_id_valid("abc-"));
	assert_false(session_id_valid("a_b"));
	assert_false(session_id_valid("a b"));
	assert_false(session_id_valid("NEW_SESSION")); /* handled before: not an ID */
	char long_id[SESSION_ID_MAX + 2];
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	assert_false(session_id_valid(long_id));
	long_id[SESSION_ID_MAX] = '\0';
	assert_true(session_id_valid(long_id));
}

static void parse_new(void **state)
{
	(void)state;
	char id[SESSION_ID_MAX + 1];
	int64_t e = 0;
	assert_int_equal(session_parse_new("s-1; Expires=2030-01-02T03:04:05Z", id, &e), 0);
	assert_string_equal(id, "s-1");
	assert_int_equal(e, 1893553445);
	assert_int_equal(session_parse_new("s-1;Expires=2030-01-02T03:04:05Z", id, &e), -1);
	assert_int_equal(session_parse_new("s-1; Expires=tomorrow", id, &e), -1);
	assert_int_equal(session_parse_new("s-1; Expires=2030-13-02T03:04:05Z", id, &e), -1);
	assert_int_equal(session_parse_new("s-1; Expires=2030-01-02T03:04:05Zjunk", id, &e), -1);
	assert_int_equal(session_parse_new("s_1; Expires=2030-01-02T03:04:05Z", id, &e), -1);
	assert_int_equal(session_parse_new("s-1", id, &e), -1);
	assert_int_equal(session_parse_new("; Expires=2030-01-02T03:04:05Z", id, &e), -1);
}

static void pin_find_unpin(void **state)
{
	(void)state;
	struct route_table *t = parse(table_json);
	struct sessions *s = sessions_new(8);
	assert_non_null(s);
	assert_int_equal(sessions_pin(s, "chat", "abc", "AllTraffic", "/s/i1", 2000, 1000, t), 0);
	assert_int_equal(sessions_count(s), 1);
	const struct session_pin *p = sessions_find(s, "chat", "abc", 1000);
	assert_non_null(p);
	assert_string_equal(p->instance, "/s/i1");
	const struct route_variant *v;
	const struct route_instance *in;
	assert_int_equal(session_resolve(t, p, &v, &in), 0);
	assert_ptr_equal(in, &route_table_find(t, "chat")->variants[0].instances[1]);
	/* another endpoint's session of the same ID is another session */
	assert_null(sessions_find(s, "other", "abc", 1000));
	/* a plan moves to the pinned instance */
	struct invoke_plan plan;
	struct invoke_refusal r;
	assert_int_equal(invoke_route(t, "chat", NULL, "AllTraffic", NULL, 0, &plan, &r), 0);
	assert_int_equal(invoke_move(&plan, in), 0);
	assert_ptr_equal(plan.instance, in);
	assert_string_equal(plan.steps[0]->socket, "/s/i1");
	/* re-pinning the same ID replaces, never duplicates */
	assert_int_equal(sessions_pin(s, "chat", "abc", "AllTraffic", "/s/i0", 3000, 1000, t), 0);
	assert_int_equal(sessions_count(s), 1);
	assert_string_equal(sessions_find(s, "chat", "abc", 1000)->instance, "/s/i0");
	assert_true(sessions_unpin(s, "chat", "abc"));
	assert_false(sessions_unpin(s, "chat", "abc"));
	assert_null(sessions_find(s, "chat", "abc", 1000));
	assert_int_equal(sessions_count(s), 0);
	sessions_free(s);
	route_table_unref(t);
}

static void expiry(void **state)
{
	(void)state;
	struct sessions *s = sessions_new(8);
	assert_int_equal(sessions_pin(s, "chat", "abc", "AllTraffic", "/s/i0", 2000, 1000, NULL), 0);
	assert_non_null(sessions_find(s, "chat", "abc", 1999));
	assert_null(sessions_find(s, "chat", "abc", 2000)); /* at Expires: gone */
	assert_int_equal(sessions_count(s), 0);
	sessions_free(s);
}

static void bound(void **state)
{
	(void)state;
	struct route_table *t = parse(table_json);
	struct sessions *s = sessions_new(3);
	char id[16];
	for (int i = 0; i < 3; i++) {
		snprintf(id, sizeof(id), "s%d", i);
		assert_int_equal(sessions_pin(s, "chat", id, "AllTraffic", "/s/i0", 1000 + i * 10, 1000 - 1, t), 0);
	}
	assert_false(sessions_has_room(s, 999, t));
	errno = 0;
	assert_int_equal(sessions_pin(s, "chat", "s3", "AllTraffic", "/s/i0", 5000, 999, t), -1);
	assert_int_equal(errno, ENOSPC);
	/* an existing ID may be re-pinned when full */
	assert_int_equal(sessions_pin(s, "chat", "s1", "AllTraffic", "/s/i1", 5000, 999, t), 0);
	/* at 1000, s0 has expired: room for one */
	assert_int_equal(sessions_pin(s, "chat", "s3", "AllTraffic", "/s/i0", 5000, 1000, t), 0);
	assert_int_equal(sessions_count(s), 3);
	assert_null(sessions_find(s, "chat", "s0", 1000));
	sessions_free(s);
	route_table_unref(t);
}

static void instance_gone(void **state)
{
	(void)state;
	struct route_table *t = parse(table_json), *t2 = parse(replaced_json);
	struct sessions *s = sessions_new(2);
	assert_int_equal(sessions_pin(s, "chat", "on0", "AllTraffic", "/s/i0", 5000, 1000, t), 0);
	assert_int_equal(sessions_pin(s, "chat", "on1", "AllTraffic", "/s/i1", 5000, 1000, t), 0);
	const struct route_variant *v;
	const struct route_instance *in;
	assert_int_equal(session_resolve(t2, sessions_find(s, "chat", "on0", 1000), &v, &in), -1);
	assert_int_equal(session_resolve(t2, sessions_find(s, "chat", "on1", 1000), &v, &in), 0);
	/* full under t; under t2 the orphaned pin makes room */
	assert_false(sessions_has_room(s, 1000, t));
	assert_true(sessions_has_room(s, 1000, t2));
	assert_null(sessions_find(s, "chat", "on0", 1000));
	assert_non_null(sessions_find(s, "chat", "on1", 1000));
	sessions_free(s);
	route_table_unref(t);
	route_table_unref(t2);
}

static void many(void **state)
{
	(void)state;
	struct sessions *s = sessions_new(5000);
	char id[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "id-%d", i);
		assert_int_equal(sessions_pin(s, "chat", id, "AllTraffic", "/s/i0", 5000, 1000, NULL), 0);
	}
	for (int i = 0; i < 5000; i += 7) {
		snprintf(id, sizeof(id), "id-%d", i);
		assert_non_null(sessions_find(s, "chat", id, 1000));
		assert_true(sessions_unpin(s, "chat", id));
	}
	assert_int_equal(sessions_count(s), 5000 - 715);
	sessions_free(s);
}

static void told(void *data, const struct session_pin *pin, const char *endpoint, const char *id)
{
	buf_printf(data, "%s %s/%s;", pin ? "pin" : "unpin", endpoint, id);
}

static void lines_and_greeting(void **state)
{
	(void)state;
	struct berth_buf log = BERTH_BUF_INIT;
	struct sessions *s = sessions_new(4);
	assert_int_equal(sessions_pin(s, "chat", "abc", "AllTraffic", "/s/i0", 5000, 1000, NULL), 0);
	struct berth_buf b = BERTH_BUF_INIT;
	assert_int_equal(session_render_pin(sessions_find(s, "chat", "abc", 1000), &b), 0);
	assert_string_equal(b.data, "{\"op\":\"session_pin\",\"endpoint\":\"chat\",\"id\":\"abc\",\"variant\":"
				    "\"AllTraffic\",\"instance\":\"/s/i0\",\"expires\":5000}\n");
	buf_reset(&b);
	assert_int_equal(session_render_unpin("chat", "abc", &b), 0);
	assert_string_equal(b.data, "{\"op\":\"session_unpin\",\"endpoint\":\"chat\",\"id\":\"abc\"}\n");
	buf_free(&b);
	/* berthd's greeting: valid, unexpired pins merged; the router's own
	 * pin of the same ID wins; expired and malformed ones are skipped */
	static const char greeting[] =
		"{\"op\":\"sessions\",\"pins\":["
		"{\"endpoint\":\"chat\",\"id\":\"abc\",\"variant\":\"AllTraffic\",\"instance\":\"/s/i1\",\"expires\":9000},"
		"{\"endpoint\":\"chat\",\"id\":\"new-1\",\"variant\":\"AllTraffic\",\"instance\":\"/s/i1\",\"expires\":9000},"
		"{\"endpoint\":\"chat\",\"id\":\"old\",\"variant\":\"AllTraffic\",\"instance\":\"/s/i1\",\"expires\":900},"
		"{\"endpoint\":\"chat\",\"id\":\"bad_id\",\"variant\":\"AllTraffic\",\"instance\":\"/s/i1\",\"expires\":9000},"
		"{\"endpoint\":\"chat\",\"id\":\"noexp\",\"variant\":\"AllTraffic\",\"instance\":\"/s/i1\"}]}";
	assert_true(sessions_route_event(s, greeting, strlen(greeting), 1000, told, &log));
	assert_int_equal(sessions_count(s), 2);
	assert_string_equal(sessions_find(s, "chat", "abc", 1000)->instance, "/s/i0");
	assert_string_equal(sessions_find(s, "chat", "new-1", 1000)->instance, "/s/i1");
	/* other lines are not the module's */
	static const char table[] = "{\"op\":\"routes\",\"endpoints\":[]}";
	assert_false(sessions_route_event(s, table, strlen(table), 1000, told, &log));
	assert_int_equal(log.len, 0); /* the first greeting is merged, nothing told */
	/* berthd restarted and missed changes: it has "new-1" (unpinned here
	 * meanwhile) and "gone"; the router has "abc" and "mine" */
	assert_true(sessions_unpin(s, "chat", "new-1"));
	assert_int_equal(sessions_pin(s, "chat", "mine", "AllTraffic", "/s/i1", 9000, 1000, NULL), 0);
	static const char again[] =
		"{\"op\":\"sessions\",\"pins\":["
		"{\"endpoint\":\"chat\",\"id\":\"abc\",\"variant\":\"AllTraffic\",\"instance\":\"/s/i0\",\"expires\":5000},"
		"{\"endpoint\":\"chat\",\"id\":\"new-1\",\"variant\":\"AllTraffic\",\"instance\":\"/s/i1\",\"expires\":9000}]}";
	assert_true(sessions_route_event(s, again, strlen(again), 1000, told, &log));
	assert_string_equal(log.data, "unpin chat/new-1;pin chat/mine;");
	assert_int_equal(sessions_count(s), 2); /* the router's table is unchanged */
	assert_null(sessions_find(s, "chat", "new-1", 1000));
	buf_free(&log);
	sessions_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(id_validation), cmocka_unit_test(parse_new),   cmocka_unit_test(pin_find_unpin),
		cmocka_unit_test(expiry),        cmocka_unit_test(bound),       cmocka_unit_test(instance_gone),
		cmocka_unit_test(many),          cmocka_unit_test(lines_and_greeting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
