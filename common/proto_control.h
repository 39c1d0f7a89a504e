/* proto_control.h — the channel to berthd's control socket
 * (--socket, default /run/berth/berthd.sock), used by berth-router and the
 * berth CLI. Newline-delimited JSON (ipc.h). Every connection starts with
 * one request line from the client; the kinds are:
 *
 * 1. Control-plane call (one per connection; berthd closes after replying):
 *      → {"op":"control","target":"CreateModel","request_id":"…","body":"<raw JSON text of the HTTP body>"}
 *      ← {"status":200,"body":"<raw JSON text to send back>"}
 *    "target" is the operation without the "SageMaker." prefix. "body" is
 *    the client's bytes as a JSON string (may be malformed JSON: berthd
 *    answers SerializationException). The reply body is sent to the client
 *    as is with Content-Type application/x-amz-json-1.1; status is the
 *    HTTP status (200, 400, 500).
 *
 * 2. Route table subscription (the router; connection stays open):
 *      → {"op":"watch_routes"}
 *      ← one route table now, then a whole new one after every change:
 *        {"op":"routes","generation":N,"account":"000000000000","region":"us-east-1",
 *         "endpoints":[{"name":"E","status":"InService"|"Creating"|"Updating"|"Deleting"|"Failed"|…,
 *                       "mode":"Single"|"Direct"|"Serial",
 *                       "variants":[{"name":"AllTraffic","weight":1.0,
 *                                    "instances":[{"containers":[
 *                                        {"hostname":"h","socket":"/run/berth/shims/ID.sock",
 *                                         "log":"/var/lib/berth/containers/ID/log"}]}]}]}]}
 *      Containers of an instance are in model order (Serial order). An
 *      endpoint that is not InService may have no instances. The router
 *      replaces its whole table with each message.
 *
 * 3. Containers listing (the CLI's `berth ps` and `berth logs`):
 *      → {"op":"ps"}
 *      ← {"containers":[{"endpoint":"E","hostname":"h","id":"ID","state":"running","pid":N,"log":"…",
 *                        "variant":"AllTraffic","instance":0,"restarts":0,
 *                        "health":"healthy"|"down"|"starting"|"draining","ping_failures":0,
 *                        "started_at":EPOCH_SECONDS,      (when running)
 *                        "memory_bytes":N,"cpu_seconds":X  (when the cgroup can be read)}]}
 *    `berth logs [-f] ENDPOINT [CONTAINER]` reads the "log" files named here
 *    directly (the CLI runs on the same host, as root); no other op.
 */
#ifndef BERTH_PROTO_CONTROL_H
#define BERTH_PROTO_CONTROL_H

#define BERTHD_DEFAULT_SOCKET "/run/berth/berthd.sock"
#define BERTHD_DEFAULT_STATE_DIR "/var/lib/berth"
#define BERTHD_DEFAULT_RUN_DIR "/run/berth"

#endif
