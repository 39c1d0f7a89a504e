/* proto_shim.h — the channel to a berth-shim's socket (one per container,
 * RUN_DIR/shims/ID.sock). Newline-delimited JSON (ipc.h); a client may send
 * many requests on one connection, each answered in order. The socket is
 * shared with the router's group (mode 0660), which needs only connect:
 * state and stop are answered only to a peer running as the shim's own
 * uid (berthd; SO_PEERCRED), others get
 * {"ok":false,"error":"op \"stop\" is berthd's only; this connection may ask for connect"}.
 *
 *   → {"op":"connect"}            (optional "port":8080)
 *   ← {"ok":true}  + SCM_RIGHTS: a TCP socket already connected to the
 *                    container's 127.0.0.1:PORT (blocking mode; the
 *                    receiver sets O_NONBLOCK and TCP_NODELAY as it likes)
 *   ← {"ok":false,"error":"connect to 127.0.0.1:8080 in container ID: Connection refused"}
 *
 *   → {"op":"state"}
 *   ← {"ok":true,"id":"ID","state":"running"|"stopped","pid":N,"started_at":EPOCH_SECONDS,
 *      "exit_code":N|null,"signal":N|null,"oom_killed":false}
 *
 *   → {"op":"stop","timeout_ms":30000}
 *   ← {"ok":true,"exit_code":N|null,"signal":N|null} once the container has exited
 *      (SIGTERM, then SIGKILL after timeout_ms) and `runc delete` is done. The
 *      shim then removes its socket and exits.
 *
 * Command line (spawned by berthd; the shim daemonizes itself):
 *   berth-shim --id ID --bundle DIR --socket PATH --log PATH --exit-file PATH
 *              --runc PATH --runc-root DIR [--log-max-bytes N] [--ready-fd N]
 * The shim writes "ok\n" on --ready-fd once the container's process runs and
 * the socket listens, or "error: MESSAGE\n" and exits 1; the spawning
 * process returns as soon as it reads that line. The exit file is JSON:
 *   {"exit_code":N|null,"signal":N|null,"oom_killed":bool,"finished_at":EPOCH_SECONDS}
 */
#ifndef BERTH_PROTO_SHIM_H
#define BERTH_PROTO_SHIM_H

#define SHIM_CONTAINER_PORT 8080
#define SHIM_LOG_MAX_BYTES_DEFAULT (8u << 20)

#endif
