/* fuzz_http1.c — libFuzzer target: one client connection's bytes into
 * berth-router's HTTP/1.1 front (router/http1.c and everything a request
 * reaches from there: dispatch, control calls, invocations, multi-model
 * loads, h2c Upgrade into router/http2.c). See router_harness.h. */
#include "router_harness.h"

static struct router_harness *harness; /* the process's one server (libFuzzer has no user_data) */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	static struct router_harness h;
	harness_init(&h);
	harness = &h;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	harness_run_connection(harness, NULL, 0, data, size);
	return 0;
}
