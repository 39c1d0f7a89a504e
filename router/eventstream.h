/* eventstream.h — the application/vnd.amazon.eventstream framing that
 * InvokeEndpointWithResponseStream answers in (one module writes it).
 *
 * A message is
 *   prelude   total length (4 bytes), headers length (4), CRC32 of those 8 (4)
 *   headers   each: name length (1), name, value type (1; 7 = string),
 *             value length (2), value — all integers big-endian
 *   payload
 *   CRC32 of everything before it (4)
 * with CRC32 the IEEE polynomial (zlib's crc32; computed by ISA-L). The router sends
 *   PayloadPart  :event-type PayloadPart, :message-type event,
 *                :content-type application/octet-stream; payload = the bytes
 *   errors       :exception-type ModelStreamError | InternalStreamFailure,
 *                :message-type exception, :content-type application/json;
 *                payload = {"Message":…,"ErrorCode":…} (botocore raises
 *                EventStreamError with that code and message).
 * Pure functions: the caller puts head, payload and trailer on the wire
 * itself, so a payload is never copied to be framed. */
#ifndef BERTH_ROUTER_EVENTSTREAM_H
#define BERTH_ROUTER_EVENTSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define EVENTSTREAM_PRELUDE_LEN 12
#define EVENTSTREAM_MAX_HEAD 512              /* prelude and headers of the router's messages */
#define EVENTSTREAM_MAX_PAYLOAD (16u << 20)   /* the format's own bound on a payload */
#define EVENTSTREAM_CONTENT_TYPE "application/vnd.amazon.eventstream"

struct eventstream_header {
	const char *name;  /* at most 255 bytes */
	const char *value; /* a string, at most 65535 bytes */
};

/* One message, framed: head (prelude + headers), then the payload the
 * caller holds, then trailer (the message CRC). */
struct eventstream_frame {
	uint8_t head[EVENTSTREAM_MAX_HEAD];
	size_t head_len;
	uint8_t trailer[4];
};

/* Frames a message with n headers around payload (len bytes). 0, or -1
 * when the headers do not fit EVENTSTREAM_MAX_HEAD or the payload exceeds
 * EVENTSTREAM_MAX_PAYLOAD. */
int eventstream_frame(struct eventstream_frame *f, const struct eventstream_header *headers, size_t n,
		      const void *payload, size_t len);

/* A PayloadPart event carrying payload. */
int eventstream_payload_part(struct eventstream_frame *f, const void *payload, size_t len);

/* A whole exception message appended to out: :exception-type type (e.g.
 * "ModelStreamError"), payload {"Message":message,"ErrorCode":error_code}
 * (error_code NULL: no ErrorCode, as InternalStreamFailure). 0 or -1. */
int eventstream_append_exception(struct berth_buf *out, const char *type, const char *error_code,
				 const char *message);

#endif
