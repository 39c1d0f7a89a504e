/* errors.h — how the router words and renders its answers that are not a
 * container's: error bodies (always JSON, rendered by common/error_json.h,
 * the renderer berthd uses too), the ModelError body SageMaker sends, and
 * the Server-Timing header. The render_* functions are pure (append to a
 * buffer); respond_* put the result on a request. */
#ifndef BERTH_ROUTER_ERRORS_H
#define BERTH_ROUTER_ERRORS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "request.h"

#define CONTENT_TYPE_JSON "application/json"
#define CONTENT_TYPE_AMZ_JSON "application/x-amz-json-1.1"

/* What a container did wrong, for a 424 ModelError. */
struct model_error {
	int original_status;        /* 0: no HTTP answer (reset, timeout) */
	const char *hostname;
	const char *original;       /* the container's body, or berth's text when status is 0 */
	size_t original_len;
	const char *endpoint;
	const char *variant;
	const char *region;
	const char *account;
	const char *message;        /* NULL: the "Received server error (N) from H …" wording */
};
/* {"message":"Received server error (500) from H with message \"BODY\". See berth
 *  logs E H for more information.","OriginalStatusCode":500,"OriginalMessage":"BODY",
 *  "LogStreamArn":"arn:aws:logs:R:A:log-group:/aws/sagemaker/Endpoints/E:log-stream:V/H"}
 * Bytes of BODY that are not valid UTF-8 become U+FFFD (utf8.h). */
int render_model_error(struct berth_buf *out, const struct model_error *me);

/* "route;dur=0.012, h1;dur=1.500, total;dur=1.530": durations in ns,
 * printed in ms with three decimals. */
struct timing_step { const char *name; uint64_t dur_ns; };
int render_server_timing(struct berth_buf *out, uint64_t route_ns, const struct timing_step *steps,
			 size_t n_steps, uint64_t total_ns);

/* Runtime errors: status, `x-amzn-ErrorType: CODE:`, Content-Type
 * application/json, body {"message":…}. printf-style message. */
void respond_runtime_error(struct request *req, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The router is at a limit (connections, buffered bytes): 503,
 * `x-amzn-ErrorType: ServiceUnavailable:`, `Retry-After: retry_after`
 * (seconds), body {"message":…}, which the SDKs treat as retryable. */
void respond_busy(struct request *req, const char *retry_after, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Control-plane errors: application/x-amz-json-1.1, {"__type","message"},
 * and `x-amzn-ErrorType: TYPE:` too. */
void respond_control_error(struct request *req, int status, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Plain JSON {"message":…} answer without an error type (404). */
void respond_message(struct request *req, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void respond_model_error(struct request *req, const struct model_error *me);

#endif
