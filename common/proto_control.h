/* proto_control.h — the channels to berthd: its admin socket (--socket,
 * default /run/berth/berthd.sock; root only, 0600; every kind below; the
 * berth CLI's, and a router run by hand as root) and the router's channel
 * (RUN_DIR/router.sock when berthd runs the router; root:ROUTER_GROUP 0660,
 * only the router's uid served; kinds 1, 2, 4, 5, 6, 10 and 11's
 * async_submit only, anything else
 * answered {"ok":false,"error":"operation \"OP\" is not offered on the
 * router's channel; the berth CLI uses berthd's admin socket"}; see
 * orchestrator/control_server.h). Newline-delimited JSON (ipc.h), nested
 * at most JSON_MAX_DEPTH (json.h) deep. Every connection starts with
 * one request line from the client; the kinds are:
 *
 * 1. Control-plane call (one per connection; berthd closes after replying):
 *      → {"op":"control","target":"CreateModel","request_id":"…",
 *         "method":"POST","path":"/","headers":[["host","127.0.0.1:8080"],["authorization","AWS4-HMAC-SHA256 …"],…],
 *         "body":"<raw JSON text of the HTTP body>"}
 *      ← {"status":200,"body":"<raw JSON text to send back>"}
 *    From the router, method, path and headers (every header as received,
 *    names lower-case, HTTP/2's :authority included) are the signed
 *    request: berthd verifies the signature itself and checks the key's
 *    permission before anything runs (orchestrator/api/api_access.h); the
 *    CLI's calls on the admin socket carry none and are root's.
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
 *                       "variants":[{"name":"AllTraffic","weight":1.0,
 *                                    "mode":"Single"|"Direct"|"Serial"|"MultiModel",
 *                                    "instances":[{"containers":[
 *                                        {"hostname":"h","socket":"/run/berth/shims/ID.sock",
 *                                         "log":"/var/lib/berth/containers/ID/log"}]}]}]}]}
 *      Each variant has its own mode (its model's). A berthd before that
 *      sent one endpoint-level "mode" instead, which the router still
 *      takes for variants without one. Containers of an instance are in
 *      model order (Serial order). An endpoint that is not InService may
 *      have no instances. The router replaces its whole table with each
 *      message.
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
 *
 * 4. Multi-model load (the router, on a miss; one request per connection):
 *      → {"op":"mme_load","endpoint":"E","target_model":"model-17.tar.gz"}
 *      ← {"ok":true,"model":"N","load_ms":12.5}
 *      ← {"ok":false,"status":400|424|429|500|503,"code":"ValidationError"|"ModelError"|…,
 *         "message":"…","original_status":500,"original_message":"…"}
 *    berthd fetches TARGET under the endpoint's ModelDataUrl prefix,
 *    unpacks it into its per-endpoint model cache (mounted read-only in the
 *    container at /opt/ml/models/N/model) and calls the container's
 *    POST /models. N is berth's opaque name for that artifact version
 *    (CONTRACT.md §4). Concurrent loads of one (E, TARGET) share one fetch
 *    and one POST /models; loads of other models are not blocked by it.
 *    Answers as soon as the model is loaded (or already was). The router
 *    bounds its own wait (ModelNotReadyException 429 after its budget) and
 *    just closes the connection; berthd finishes the load anyway.
 *
 * 5. Multi-model usage (the router, about once a second while invoked):
 *      → {"op":"mme_touch","endpoint":"E","models":{"N":COUNT,…}}
 *    No answer. Recency and counts for berthd's LRU and /metrics.
 *
 * 6. Signature question (the router, for an invocation signed by a key
 *    whose derived day key it was not given; one per connection):
 *      → {"op":"auth_verify","key_id":"AKIA…","string_to_sign":"AWS4-HMAC-SHA256\n…",
 *         "signature":"<64 hex>","endpoint":"E"}
 *      ← {"ok":true}
 *      ← {"ok":false,"type":"InvalidSignatureException"|…,"status":403,"message":"…"}
 *    berthd checks the string's date and scope, the signature with the
 *    key's secret, and the key's sagemaker:InvokeEndpoint permission on E
 *    (or "action":"sagemaker:InvokeEndpointAsync", the router's for
 *    /endpoints/E/async-invocations; absent: InvokeEndpoint).
 *
 * 7. Shutdown (the CLI's `berth shutdown`, `make stop`; admin socket only):
 *      → {"op":"shutdown","stop_containers":false}
 *      ← {"ok":true,"pid":PID}
 *    berthd then stops as on SIGTERM: containers keep running (the next
 *    berthd adopts them) unless stop_containers, as with --stop-containers;
 *    records are kept either way. The CLI waits for PID to exit.
 *
 * 8. Registry images (the CLI's `berth images`, `berth pull`, `berth images
 *    prune`; admin socket only; orchestrator/image/registry.h):
 *      → {"op":"images"}
 *      ← {"ok":true,"images":[{"digest":"sha256:…","bytes":N,"references":["reg/repo:tag",…],
 *                              "resolved_at":EPOCH_SECONDS,"models":["m1",…]}]}
 *      → {"op":"pull","image":"reg/repo:tag"}     (resolves the tag now; pulls when not cached)
 *      ← {"ok":true,"image":"…","resolved":"reg/repo@sha256:…","digest":"sha256:…","pulled":true,"ms":N}
 *      → {"op":"images_prune"}                     (removes what no model uses)
 *      ← {"ok":true,"removed":N,"bytes":N}
 *      ← {"ok":false,"error":"…"}                  (any of them)
 *
 * 9. Model data cache (the CLI's `berth artifacts`, `berth artifacts prune`;
 *    admin socket only; orchestrator/artifact/artifact_cache.h):
 *      → {"op":"artifacts"}
 *      ← {"ok":true,"artifacts":[{"key":"16 hex","url":"s3://…"|null,"bytes":N,
 *                                 "last_used":EPOCH_SECONDS,"endpoints":["e1",…]}]}
 *      → {"op":"artifacts_prune"}                  (removes what no container holds)
 *      ← {"ok":true,"removed":N,"bytes":N}
 *      ← {"ok":false,"error":"…"}                  (any of them)
 *
 * 10. Stateful session pins (the router, as its pins change; no answer;
 *    router/sessions.h, orchestrator/runtime/sessions.c):
 *      → {"op":"session_pin","endpoint":"E","id":"ID","variant":"V",
 *         "instance":"<first container's shim socket>","expires":<Unix seconds>}
 *      → {"op":"session_unpin","endpoint":"E","id":"ID"}
 *    berthd persists them (STATE_DIR/sessions.json + sessions.log) and, on the route-table
 *    connection (kind 2), after the settings and before the first table,
 *    sends {"op":"sessions","pins":[{endpoint,id,variant,instance,expires}…]}
 *    without those expired or whose instance no longer serves.
 *
 * 11. Asynchronous inference (InvokeEndpointAsync; orchestrator/runtime/async.c):
 *      → {"op":"async_submit","endpoint":"E","input":"s3://b/k", (the router's, one per connection)
 *         "content_type","accept","custom_attributes","inference_id",
 *         "output_extension","filename" (each only when given),
 *         "ttl_s":N,"timeout_s":N (only when given)}
 *      ← {"ok":true,"id":"UUID","inference_id":"…","output":"s3://…","failure":"s3://…"}
 *        (sent only once the request is on disk, fsync'd)
 *      ← {"ok":false,"status":400|500|503,"code":"ValidationError"|"ServiceUnavailable"|…,"message":"…"}
 *      → {"op":"async_stats"}                       (admin socket: berth describe)
 *      ← {"op":"async_stats","now":EPOCH_S,"endpoints":[{"endpoint":"E","backlog":N,
 *          "running":N,"instances":N,"oldest":EPOCH_S (0: none waiting)}]}
 *    berthd also sends that async_stats document on the route-table
 *    connection (kind 2), between tables, when the queues change (at most
 *    every 250 ms) and every 5 s: the router's /metrics gauges.
 *
 *    On the route-table connection (kind 2) berthd first sends the router's
 *    settings, before the first table and again whenever they change:
 *      {"op":"auth","mode":"sigv4"|"none","region":"us-east-1","account":"000000000000",
 *       "keys":[{"id":"AKIA…","name":"app","allow":["sagemaker:InvokeEndpoint"],"endpoints":["prod-*"]|null,
 *                "signing":{"20261130":"<64 hex>","20261201":"…","20261202":"…"}},
 *               {"id":"AKIA…","name":"ops","verify":"berthd"}]}
 *    "signing" holds the derived SigV4 keys (common/sigv4.h step 3) of a
 *    key that may only invoke, for the UTC days around now; a key that may
 *    do more is only named, and the router asks berthd (kind 6). No
 *    secret is ever sent (docs/design.md, "Who holds secrets").
 *
 *    On the route-table connection (kind 2) berthd also sends, between
 *    tables, {"op":"mme_evicted","endpoint":"E","model":"N"} when it
 *    unloads a model (507 from the container, memory high-water mark, or
 *    disk cache bound); the router forgets N. A router that invokes a model
 *    the container no longer has (404 from /models/N/invoke) treats it as
 *    a miss and loads again.
 */
#ifndef BERTH_PROTO_CONTROL_H
#define BERTH_PROTO_CONTROL_H

#define BERTHD_DEFAULT_SOCKET "/run/berth/berthd.sock"
#define BERTHD_DEFAULT_STATE_DIR "/var/lib/berth"
#define BERTHD_DEFAULT_RUN_DIR "/run/berth"

#endif
