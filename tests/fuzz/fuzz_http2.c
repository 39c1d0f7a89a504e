/* fuzz_http2.c — libFuzzer target: berth-router's HTTP/2 front
 * (router/http2.c over nghttp2's server session). Every input is what a
 * prior-knowledge client sends after its connection preface (the target
 * sends the preface first): SETTINGS, HEADERS/CONTINUATION with HPACK,
 * DATA, WINDOW_UPDATE, RST_STREAM, PING, GOAWAY… reaching the same
 * request handling as HTTP/1.1. See router_harness.h. */
#include "router_harness.h"

static const char client_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

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
	harness_run_connection(harness, client_preface, sizeof(client_preface) - 1, data, size);
	return 0;
}
