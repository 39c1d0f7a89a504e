/* main.c — berth-router: parses flags and wires the server together. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "confine.h"
#include "http1.h"
#include "log.h"
#include "proto_control.h"
#include "netaddr.h"
#include "server.h"
#include "sessions.h"
#include "tls.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: berth-router [--listen HOST:PORT]... [--listen-fd N]... [--berthd-socket PATH]\n"
		"                    [--invocation-timeout-ms N] [--max-body-bytes N] [--max-step-bytes N]\n"
		"  --listen HOST:PORT        listen address, repeatable; [::1]:PORT for IPv6 (default 127.0.0.1:8080);\n"
		"                            HTTP/1.1 and h2c, and TLS once berthd sent a certificate; loopback only\n"
		"                            unless --insecure-listen\n"
		"  --listen-fd N             adopt an already listening socket, repeatable\n"
		"  --tls-listen HOST:PORT    TLS-only listen address (certificate from berthd), repeatable\n"
		"  --tls-listen-fd N         adopt an already listening TLS-only socket, repeatable\n"
		"  --insecure-listen         allow a cleartext --listen on a non-loopback address (a warning at start)\n"
		"  --berthd-socket PATH      berthd's socket (default %s, root only; berthd passes\n"
		"                            the router's own channel, RUN_DIR/router.sock)\n"
		"  --invocation-timeout-ms N container answer timeout (default 60000)\n"
		"  --max-body-bytes N        request and response body limit (default 6291456)\n"
		"  --max-step-bytes N        Serial: limit of a step's answer passed to the next (default 5242880)\n"
		"  --model-wait-ms N         MultiModel: wait for a model load before 429 ModelNotReadyException (default 60000)\n"
		"  --request-timeout-ms N    a whole request (head and body) must arrive within this, else 408 (default %u)\n"
		"  --max-connections N       client connections served at once; more get 503 + Retry-After (default %u)\n"
		"  --max-buffered-bytes N    request bodies held in memory, all clients; past it 503 + Retry-After\n"
		"                            (HTTP/2: RST_STREAM REFUSED_STREAM) (default %u)\n"
		"  --max-connection-buffered-bytes N  the same bound for one HTTP/2 connection (default %u)\n"
		"  --max-sessions N          stateful session pins held at once; a NEW_SESSION beyond gets 503 (default %u, at most %u)\n"
		"  --no-io-uring             send each socket write with its own system call, not batched through\n"
		"                            io_uring (the same when the kernel refuses io_uring; logged at start)\n"
		"  --user USER               once the sockets are open: become USER, drop every capability,\n"
		"                            no_new_privs, seccomp allow-list (berthd passes it)\n",
		BERTHD_DEFAULT_SOCKET, ROUTER_REQUEST_TIMEOUT_MS, ROUTER_MAX_CONNECTIONS, ROUTER_MAX_BUFFERED_BYTES,
		ROUTER_MAX_CONNECTION_BUFFERED_BYTES, SESSIONS_DEFAULT_MAX, SESSIONS_LIMIT);
}

static int parse_number(const char *flag, const char *text, unsigned long long min, unsigned long long max,
			unsigned long long *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-' || v < min || v > max) {
		fprintf(stderr, "berth-router: %s expects a number from %llu to %llu, got \"%s\"\n", flag, min, max, text);
		return -1;
	}
	*out = v;
	return 0;
}

/* A cleartext address others can reach needs --insecure-listen; the
 * TLS-only ones may be anywhere (berthd, which holds the keys, decides
 * whether callers must sign). Inherited cleartext sockets are held to the
 * same rule: berthd passes --insecure-listen when it allowed them. */
static int check_listen_addresses(const struct router_config *cfg)
{
	for (size_t i = 0; i < cfg->n_listen_fds; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char name[INET6_ADDRSTRLEN + 16];
		if (getsockname(cfg->listen_fds[i], (struct sockaddr *)&ss, &sl) < 0 ||
		    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) || netaddr_is_loopback(&ss) ||
		    cfg->insecure_listen)
			continue; /* not a TCP socket: listener_adopt says so */
		netaddr_format(&ss, name, sizeof(name));
		fprintf(stderr,
			"berth-router: --listen-fd %d is %s, not a loopback address: cleartext there needs "
			"--insecure-listen (berthd --insecure-listen), else use a TLS-only address (--tls-listen-fd)\n",
			cfg->listen_fds[i], name);
		return -1;
	}
	for (size_t i = 0; i < cfg->n_listen; i++) {
		struct sockaddr_storage ss;
		socklen_t len;
		struct berth_err err;
		if (netaddr_parse(cfg->listen[i], &ss, &len, &err) < 0) {
			fprintf(stderr, "berth-router: --listen %s: %s\n", cfg->listen[i], err.msg);
			return -1;
		}
		if (netaddr_is_loopback(&ss))
			continue;
		if (!cfg->insecure_listen) {
			fprintf(stderr,
				"berth-router: --listen %s is not a loopback address: anyone who reaches it would talk to berth "
				"in cleartext. Serve it over TLS with --tls-listen %s (berthd --tls-cert/--tls-key), or, on a "
				"network you trust, add --insecure-listen\n",
				cfg->listen[i], cfg->listen[i]);
			return -1;
		}
		log_warn("--insecure-listen: serving cleartext HTTP on %s, which is not a loopback address", cfg->listen[i]);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "listen-fd", required_argument, NULL, 'f' },
		{ "tls-listen", required_argument, NULL, 'T' },
		{ "tls-listen-fd", required_argument, NULL, 'F' },
		{ "insecure-listen", no_argument, NULL, 'I' },
		{ "berthd-socket", required_argument, NULL, 's' },
		{ "invocation-timeout-ms", required_argument, NULL, 't' },
		{ "max-body-bytes", required_argument, NULL, 'm' },
		{ "max-step-bytes", required_argument, NULL, 'S' },
		{ "user", required_argument, NULL, 'u' },
		{ "model-wait-ms", required_argument, NULL, 'W' },
		{ "request-timeout-ms", required_argument, NULL, 'R' },
		{ "max-connections", required_argument, NULL, 'C' },
		{ "max-buffered-bytes", required_argument, NULL, 'B' },
		{ "max-connection-buffered-bytes", required_argument, NULL, 'b' },
		{ "max-sessions", required_argument, NULL, 'P' },
		{ "no-io-uring", no_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct router_config cfg;
	router_config_defaults(&cfg);
	const char *user = NULL; /* --user: confine (confine.h) once the sockets are open */
	unsigned long long v;
	int opt;
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'l':
			if (cfg.n_listen >= ROUTER_MAX_LISTEN) {
				fprintf(stderr, "berth-router: at most %d --listen\n", ROUTER_MAX_LISTEN);
				return 2;
			}
			cfg.listen[cfg.n_listen++] = optarg;
			break;
		case 'f':
			if (cfg.n_listen_fds >= ROUTER_MAX_LISTEN) {
				fprintf(stderr, "berth-router: at most %d --listen-fd\n", ROUTER_MAX_LISTEN);
				return 2;
			}
			if (parse_number("--listen-fd", optarg, 0, 65535, &v) < 0)
				return 2;
			cfg.listen_fds[cfg.n_listen_fds++] = (int)v;
			break;
		case 'T':
			if (cfg.n_tls_listen >= ROUTER_MAX_LISTEN) {
				fprintf(stderr, "berth-router: at most %d --tls-listen\n", ROUTER_MAX_LISTEN);
				return 2;
			}
			cfg.tls_listen[cfg.n_tls_listen++] = optarg;
			break;
		case 'F':
			if (cfg.n_tls_listen_fds >= ROUTER_MAX_LISTEN) {
				fprintf(stderr, "berth-router: at most %d --tls-listen-fd\n", ROUTER_MAX_LISTEN);
				return 2;
			}
			if (parse_number("--tls-listen-fd", optarg, 0, 65535, &v) < 0)
				return 2;
			cfg.tls_listen_fds[cfg.n_tls_listen_fds++] = (int)v;
			break;
		case 'I':
			cfg.insecure_listen = true;
			break;
		case 's':
			cfg.berthd_socket = optarg;
			break;
		case 't':
			if (parse_number("--invocation-timeout-ms", optarg, 1, 3600000, &v) < 0)
				return 2;
			cfg.invocation_timeout_ms = v;
			break;
		case 'm':
			if (parse_number("--max-body-bytes", optarg, 1, 1ull << 30, &v) < 0)
				return 2;
			cfg.max_body_bytes = (size_t)v;
			break;
		case 'S':
			if (parse_number("--max-step-bytes", optarg, 1, 1ull << 30, &v) < 0)
				return 2;
			cfg.max_step_bytes = (size_t)v;
			break;
		case 'u':
			user = optarg;
			break;
		case 'W':
			if (parse_number("--model-wait-ms", optarg, 1, 3600000, &v) < 0)
				return 2;
			cfg.model_wait_ms = v;
			break;
		case 'R':
			if (parse_number("--request-timeout-ms", optarg, 1, 3600000, &v) < 0)
				return 2;
			cfg.request_timeout_ms = v;
			break;
		case 'C':
			if (parse_number("--max-connections", optarg, 1, 1000000, &v) < 0)
				return 2;
			cfg.max_connections = (size_t)v;
			break;
		case 'B':
			if (parse_number("--max-buffered-bytes", optarg, 1, 1ull << 40, &v) < 0)
				return 2;
			cfg.max_buffered_bytes = (size_t)v;
			break;
		case 'b':
			if (parse_number("--max-connection-buffered-bytes", optarg, 1, 1ull << 40, &v) < 0)
				return 2;
			cfg.max_connection_buffered_bytes = (size_t)v;
			break;
		case 'P':
			if (parse_number("--max-sessions", optarg, 1, SESSIONS_LIMIT, &v) < 0)
				return 2;
			cfg.max_sessions = (size_t)v;
			break;
		case 'U':
			cfg.io_uring = false;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "berth-router: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (cfg.n_listen == 0 && cfg.n_listen_fds == 0 && cfg.n_tls_listen == 0 && cfg.n_tls_listen_fds == 0)
		cfg.listen[cfg.n_listen++] = "127.0.0.1:8080";
	if (check_listen_addresses(&cfg) < 0)
		return 2;

	/* Request bodies come and go in sizes up to --max-body-bytes: a fixed
	 * mmap threshold returns each large one to the kernel when freed
	 * (glibc's adaptive threshold would keep them in a fragmenting heap,
	 * and resident after a burst). */
	mallopt(M_MMAP_THRESHOLD, 256 << 10);
	struct server srv;
	struct berth_err err;
	int rc = 0;
	if (tls_global_init(&err) < 0) {
		log_error("%s", err.msg);
		return 1;
	}
	if (server_init(&srv, &cfg, http1_accept, &err) == 0)
		tls_server_set_ready(srv.tls, http1_tls_ready);
	else
		rc = -1;
	if (rc < 0 || (user != NULL && router_confine(user, &err) < 0) || server_run(&srv, &err) < 0) {
		log_error("%s", err.msg);
		rc = 1;
	}
	server_fini(&srv);
	return rc;
}
