/* berth — the command-line client: lists and describes berthd's resources
 * and shows containers through berthd's root-only admin socket (no
 * signature: the socket's permissions are the check), invokes endpoints
 * through the router (signed with SigV4, invoke.c), and manages the access
 * keys of the credentials file (keys.c). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#include "buf.h"
#include "control_client.h"
#include "invoke.h"
#include "artifacts.h"
#include "images.h"
#include "keys.h"
#include "top.h"
#include "devices.h"
#include "logs.h"
#include "json.h"
#include "credentials.h"
#include "proto_control.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: berth [--socket PATH] COMMAND\n"
		   "berthd's admin socket (root only; no signature needed; --socket, else $BERTH_SOCKET, else\n"
		   BERTHD_DEFAULT_SOCKET "):\n"
		   "  ls                          models, endpoint configs and endpoints\n"
		   "  describe NAME               an endpoint, endpoint config or model, as JSON\n"
		   "  ps                          containers: state, health, pid, restarts, uptime, memory, CPU\n"
		   "  top [-d SECONDS] [-n N]      containers refreshed, busiest first, CPU%% over each interval\n"
		   "  logs [-f] ENDPOINT [CONTAINER]  the containers' logs (-f: follow)\n"
		   "  images [prune]              registry images cached: size, references, models using each;\n"
		   "                              prune removes those no model uses\n"
		   "  pull REF                    resolve and pull a registry image now ([registry/]repo[:tag][@digest])\n"
		   "  artifacts [prune]           model data cached (ModelDataUrl, submit directories): size, last\n"
		   "                              use, endpoints holding each; prune removes those none holds\n"
		   "  devices                     CDI devices (GPUs): health, the endpoint instance holding each,\n"
		   "                              spec files refused and why\n"
		   "  shutdown [--stop-containers]  stop berthd and its router (what make run started) and wait;\n"
		   "                              the containers keep running unless --stop-containers (records kept)\n"
		   "the router, signed with SigV4 (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else the credentials file):\n"
		   "  invoke ENDPOINT [--target-container H] [--content-type T] [--accept T]\n"
		   "         [--url http://127.0.0.1:8080] [--credentials PATH] [--key NAME] < BODY\n"
		   "                              the answer goes to stdout\n"
		   "the credentials file (default " CREDENTIALS_DEFAULT_PATH "; berthd reloads it by itself):\n"
		   "  keys add NAME [--allow ACTIONS] [--endpoints GLOBS] [--endpoint-configs GLOBS] [--models GLOBS]\n"
		   "           [--credentials PATH]   a new key; prints its id and secret once\n"
		   "  keys ls [--credentials PATH]    names, key ids and permissions (never secrets)\n");
}

static void print_error(const char *what, yajl_val reply)
{
	const char *type = json_get_string(reply, "__type");
	const char *msg = json_get_string(reply, "message");
	fprintf(stderr, "berth: %s: %s: %s\n", what, type ? type : "error", msg ? msg : "(no message)");
}

/* Prints one list call as a table: NAME  extra-columns. */
static int list(const char *socket, const char *operation, const char *member, const char *name_key,
		const char *title)
{
	yajl_val reply;
	struct berth_err err;
	int status = control_call(socket, operation, "{\"MaxResults\":100}", &reply, &err);
	if (status < 0) {
		fprintf(stderr, "berth: %s\n", err.msg);
		return -1;
	}
	if (status != 200) {
		print_error(operation, reply);
		yajl_tree_free(reply);
		return -1;
	}
	printf("%s\n", title);
	yajl_val items = json_get(reply, member);
	for (size_t i = 0; items && YAJL_IS_ARRAY(items) && i < items->u.array.len; i++) {
		yajl_val it = items->u.array.values[i];
		const char *st = json_get_string(it, "EndpointStatus");
		printf("  %-40s %s\n", json_get_string(it, name_key) ?: "?", st ? st : "");
	}
	yajl_tree_free(reply);
	return 0;
}

static int cmd_ls(const char *socket)
{
	if (list(socket, "ListEndpoints", "Endpoints", "EndpointName", "ENDPOINTS") < 0)
		return 1;
	if (list(socket, "ListEndpointConfigs", "EndpointConfigs", "EndpointConfigName", "ENDPOINT CONFIGS") < 0)
		return 1;
	if (list(socket, "ListModels", "Models", "ModelName", "MODELS") < 0)
		return 1;
	return 0;
}

static void emit(yajl_gen g, yajl_val x)
{
	if (x == NULL || YAJL_IS_NULL(x)) {
		yajl_gen_null(g);
	} else if (YAJL_IS_STRING(x)) {
		json_gen_str(g, x->u.string);
	} else if (YAJL_IS_NUMBER(x)) {
		yajl_gen_number(g, x->u.number.r, strlen(x->u.number.r));
	} else if (YAJL_IS_TRUE(x) || YAJL_IS_FALSE(x)) {
		yajl_gen_bool(g, YAJL_IS_TRUE(x));
	} else if (YAJL_IS_ARRAY(x)) {
		yajl_gen_array_open(g);
		for (size_t i = 0; i < x->u.array.len; i++)
			emit(g, x->u.array.values[i]);
		yajl_gen_array_close(g);
	} else {
		yajl_gen_map_open(g);
		for (size_t i = 0; i < x->u.object.len; i++) {
			json_gen_str(g, x->u.object.keys[i]);
			emit(g, x->u.object.values[i]);
		}
		yajl_gen_map_close(g);
	}
}

static void print_pretty(yajl_val v)
{
	yajl_gen g = json_gen_new();
	yajl_gen_config(g, yajl_gen_beautify, 1);
	struct berth_buf out = BERTH_BUF_INIT;
	emit(g, v);
	json_gen_finish(g, &out);
	printf("%s\n", out.data ? out.data : "");
	buf_free(&out);
}

/* (async) endpoint's entry in berthd's {"op":"async_stats",…} (NULL: none) */
static yajl_val async_queue_of(yajl_val stats, const char *endpoint)
{
	yajl_val a = stats ? json_get(stats, "endpoints") : NULL;
	for (size_t i = 0; a && YAJL_IS_ARRAY(a) && i < a->u.array.len; i++) {
		const char *n = json_get_string(a->u.array.values[i], "endpoint");
		if (n && strcmp(n, endpoint) == 0)
			return a->u.array.values[i];
	}
	return NULL;
}

static double stat_number(yajl_val o, const char *key)
{
	yajl_val v = o ? json_get(o, key) : NULL;
	return v && YAJL_IS_NUMBER(v) ? YAJL_GET_DOUBLE(v) : 0;
}

/* "AsyncInference": SageMaker's queue metrics by their names, and what runs */
static void emit_async_queue(yajl_gen g, yajl_val stats, yajl_val q)
{
	double backlog = stat_number(q, "backlog"), instances = stat_number(q, "instances");
	double oldest = stat_number(q, "oldest"), now = stat_number(stats, "now");
	json_gen_str(g, "AsyncInference");
	yajl_gen_map_open(g);
	json_gen_kv_int(g, "ApproximateBacklogSize", (long long)backlog);
	json_gen_kv_double(g, "ApproximateBacklogSizePerInstance", instances > 0 ? backlog / instances : backlog);
	json_gen_kv_double(g, "ApproximateAgeOfOldestRequest", backlog > 0 && oldest > 0 && now > oldest
				   ? (double)(long long)((now - oldest) * 1000) / 1000 : 0);
	json_gen_kv_int(g, "Running", (long long)stat_number(q, "running"));
	yajl_gen_map_close(g);
}

static int cmd_describe(const char *socket, const char *name)
{
	static const struct {
		const char *op, *member;
	} kinds[] = {
		{ "DescribeEndpoint", "EndpointName" },
		{ "DescribeEndpointConfig", "EndpointConfigName" },
		{ "DescribeModel", "ModelName" },
	};
	struct berth_buf body = BERTH_BUF_INIT;
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(kinds); i++) {
		yajl_gen g = json_gen_new();
		buf_reset(&body);
		yajl_gen_map_open(g);
		json_gen_kv_str(g, kinds[i].member, name);
		yajl_gen_map_close(g);
		json_gen_finish(g, &body);
		yajl_val reply;
		struct berth_err err;
		int status = control_call(socket, kinds[i].op, body.data, &reply, &err);
		if (status < 0) {
			fprintf(stderr, "berth: %s\n", err.msg);
			buf_free(&body);
			return 1;
		}
		if (status == 200) {
			/* (mme) a multi-model endpoint's loaded models, as "LoadedModels" */
			yajl_val mme = NULL;
			if (i == 0 && YAJL_IS_OBJECT(reply)) {
				yajl_gen q = json_gen_new();
				struct berth_buf line = BERTH_BUF_INIT;
				yajl_gen_map_open(q);
				json_gen_kv_str(q, "op", "mme_list");
				json_gen_kv_str(q, "endpoint", name);
				yajl_gen_map_close(q);
				if (json_gen_finish(q, &line) == 0)
					mme = control_request(socket, line.data, &err);
				buf_free(&line);
			}
			yajl_val models = mme ? json_get(mme, "models") : NULL;
			/* (async) an async endpoint's queue, as "AsyncInference" */
			yajl_val stats = i == 0 && YAJL_IS_OBJECT(reply) ? control_simple(socket, "async_stats", &err) : NULL;
			yajl_val queue = async_queue_of(stats, name);
			bool loaded = models && YAJL_IS_ARRAY(models) && models->u.array.len > 0;
			if (loaded || queue) {
				yajl_gen g2 = json_gen_new();
				yajl_gen_config(g2, yajl_gen_beautify, 1);
				struct berth_buf out = BERTH_BUF_INIT;
				yajl_gen_map_open(g2);
				for (size_t k = 0; k < reply->u.object.len; k++) {
					json_gen_str(g2, reply->u.object.keys[k]);
					emit(g2, reply->u.object.values[k]);
				}
				if (loaded) {
					json_gen_str(g2, "LoadedModels");
					emit(g2, models);
				}
				if (queue)
					emit_async_queue(g2, stats, queue);
				yajl_gen_map_close(g2);
				json_gen_finish(g2, &out);
				printf("%s\n", out.data ? out.data : "");
				buf_free(&out);
			} else {
				print_pretty(reply);
			}
			yajl_tree_free(stats);
			yajl_tree_free(mme);
			yajl_tree_free(reply);
			buf_free(&body);
			return 0;
		}
		yajl_tree_free(reply);
	}
	buf_free(&body);
	fprintf(stderr, "berth: no endpoint, endpoint config or model is named \"%s\"\n", name);
	return 1;
}

static int cmd_ps(const char *socket)
{
	struct berth_err err;
	yajl_val v = control_simple(socket, "ps", &err);
	if (v == NULL) {
		fprintf(stderr, "berth: %s\n", err.msg);
		return 1;
	}
	printf("%-20s %-16s %-14s %-4s %-18s %-8s %-8s %-8s %-8s %-10s %-10s %s\n", "ENDPOINT", "CONTAINER", "VARIANT",
	       "INST", "ID", "STATE", "HEALTH", "PID", "RESTARTS", "UPTIME", "MEMORY", "CPU");
	yajl_val list = json_get(v, "containers");
	for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len; i++) {
		yajl_val c = list->u.array.values[i];
		long long pid = 0, restarts = 0, instance = 0, mem = -1;
		double started = 0, cpu = -1;
		json_get_int64(c, "pid", &pid);
		json_get_int64(c, "restarts", &restarts);
		json_get_int64(c, "instance", &instance);
		json_get_int64(c, "memory_bytes", &mem);
		json_get_double(c, "started_at", &started);
		json_get_double(c, "cpu_seconds", &cpu);
		char uptime[32] = "-", memory[32] = "-", cpus[32] = "-";
		if (started > 0) {
			long long s = (long long)(time(NULL) - started);
			if (s < 0)
				s = 0;
			if (s < 3600)
				snprintf(uptime, sizeof(uptime), "%lldm%02llds", s / 60, s % 60);
			else
				snprintf(uptime, sizeof(uptime), "%lldh%02lldm", s / 3600, s / 60 % 60);
		}
		if (mem >= 0)
			snprintf(memory, sizeof(memory), "%.1fMiB", (double)mem / 1048576.0);
		if (cpu >= 0)
			snprintf(cpus, sizeof(cpus), "%.2fs", cpu);
		printf("%-20s %-16s %-14s %-4lld %-18s %-8s %-8s %-8lld %-8lld %-10s %-10s %s\n",
		       json_get_string(c, "endpoint") ?: "", json_get_string(c, "hostname") ?: "",
		       json_get_string(c, "variant") ?: "", instance, json_get_string(c, "id") ?: "",
		       json_get_string(c, "state") ?: "", json_get_string(c, "health") ?: "", pid, restarts, uptime,
		       memory, cpus);
	}
	yajl_tree_free(v);
	return 0;
}

/* Has pid exited (gone, or a zombie its parent has not reaped yet)? */
static bool process_gone(pid_t pid)
{
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	char path[64], stat[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return true;
	size_t n = fread(stat, 1, sizeof(stat) - 1, f);
	fclose(f);
	stat[n] = '\0';
	const char *end = strrchr(stat, ')'); /* the name may hold anything */
	return end != NULL && end[1] == ' ' && end[2] == 'Z';
}

/* berthd stops as on SIGTERM; waits (bounded) until its process is gone. */
static int cmd_shutdown(const char *socket, int argc, char **argv)
{
	bool stop = false;
	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--stop-containers") == 0) {
			stop = true;
		} else {
			fprintf(stderr, "berth: shutdown takes only --stop-containers, not \"%s\"\n", argv[k]);
			return 2;
		}
	}
	struct berth_err err;
	yajl_val v = control_request(socket,
				     stop ? "{\"op\":\"shutdown\",\"stop_containers\":true}" : "{\"op\":\"shutdown\"}",
				     &err);
	long long pid = 0;
	bool ok = false;
	if (v == NULL || !json_get_bool(v, "ok", &ok) || !ok || !json_get_int64(v, "pid", &pid) || pid <= 0) {
		fprintf(stderr, "berth: berthd did not take the shutdown: %s\n", v ? "unexpected answer" : err.msg);
		if (v)
			yajl_tree_free(v);
		return 1;
	}
	yajl_tree_free(v);
	printf("berthd (pid %lld) is stopping; %s\n", pid,
	       stop ? "its containers are being stopped (their records are kept)" : "the containers keep running");
	fflush(stdout);
	/* containers get their stop timeout (30 s) each, in parallel */
	for (int t = 0; t < 1200; t++) {
		if (process_gone((pid_t)pid)) {
			printf("berthd stopped\n");
			return 0;
		}
		usleep(100000);
	}
	fprintf(stderr, "berth: berthd (pid %lld) is still running after 120 s; see its log\n", pid);
	return 1;
}

int main(int argc, char **argv)
{
	/* a berthd with its own --run-dir: BERTH_SOCKET saves --socket on each command */
	const char *socket = getenv("BERTH_SOCKET");
	if (socket == NULL || socket[0] == '\0')
		socket = BERTHD_DEFAULT_SOCKET;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
			socket = argv[++i];
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[i];
	if (strcmp(cmd, "ls") == 0)
		return cmd_ls(socket);
	if (strcmp(cmd, "ps") == 0)
		return cmd_ps(socket);
	if (strcmp(cmd, "artifacts") == 0)
		return cli_artifacts(socket, argc - i, argv + i);
	if (strcmp(cmd, "devices") == 0)
		return cli_devices(socket, argc - i, argv + i);
	if (strcmp(cmd, "top") == 0)
		return cli_top(socket, argc - i, argv + i);
	if (strcmp(cmd, "logs") == 0)
		return cli_logs(socket, argc - i, argv + i);
	if (strcmp(cmd, "describe") == 0 && i + 1 < argc)
		return cmd_describe(socket, argv[i + 1]);
	if (strcmp(cmd, "invoke") == 0)
		return cli_invoke(argc - i, argv + i);
	if (strcmp(cmd, "keys") == 0)
		return cli_keys(argc - i, argv + i);
	if (strcmp(cmd, "images") == 0 || strcmp(cmd, "pull") == 0)
		return cli_images(socket, argc - i, argv + i);
	if (strcmp(cmd, "shutdown") == 0)
		return cmd_shutdown(socket, argc - i, argv + i);
	usage(stderr);
	return 2;
}
