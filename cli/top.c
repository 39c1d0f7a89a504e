/* top.c — see top.h. */
#include "top.h"
#include "clock.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control_client.h"
#include "json.h"

struct sample {
	char id[64];
	double cpu_seconds; /* -1: unknown */
};

struct row {
	const char *endpoint, *hostname, *id, *state, *health;
	long long pid, restarts, memory;
	double cpu_percent; /* -1: unknown (first sample) */
};

static int by_cpu_then_memory(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	if (x->cpu_percent != y->cpu_percent)
		return x->cpu_percent < y->cpu_percent ? 1 : -1;
	return x->memory < y->memory ? 1 : x->memory > y->memory ? -1 : 0;
}

static double previous_cpu(const struct sample *prev, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(prev[i].id, id) == 0)
			return prev[i].cpu_seconds;
	return -1;
}

/* One screen. prev/n_prev hold the last sample and are replaced. */
static int show(const char *socket, struct sample **prev, size_t *n_prev, double interval, int clear)
{
	struct berth_err err;
	yajl_val v = control_simple(socket, "ps", &err);
	if (v == NULL) {
		fprintf(stderr, "berth: %s\n", err.msg);
		return -1;
	}
	yajl_val list = json_get(v, "containers");
	size_t n = list && YAJL_IS_ARRAY(list) ? list->u.array.len : 0;
	struct row *rows = calloc(n + 1, sizeof(*rows));
	struct sample *next = calloc(n + 1, sizeof(*next));
	if (rows == NULL || next == NULL) {
		free(rows);
		free(next);
		yajl_tree_free(v);
		return -1;
	}
	long long total_memory = 0;
	double total_cpu = 0;
	for (size_t i = 0; i < n; i++) {
		yajl_val c = list->u.array.values[i];
		struct row *r = &rows[i];
		r->endpoint = json_get_string(c, "endpoint") ?: "";
		r->hostname = json_get_string(c, "hostname") ?: "";
		r->id = json_get_string(c, "id") ?: "";
		r->state = json_get_string(c, "state") ?: "";
		r->health = json_get_string(c, "health") ?: "";
		r->memory = -1;
		json_get_int64(c, "pid", &r->pid);
		json_get_int64(c, "restarts", &r->restarts);
		json_get_int64(c, "memory_bytes", &r->memory);
		double cpu = -1;
		json_get_double(c, "cpu_seconds", &cpu);
		snprintf(next[i].id, sizeof(next[i].id), "%s", r->id);
		next[i].cpu_seconds = cpu;
		double before = previous_cpu(*prev, *n_prev, r->id);
		r->cpu_percent = cpu >= 0 && before >= 0 && interval > 0 ? (cpu - before) / interval * 100.0 : -1;
		if (r->cpu_percent > 0)
			total_cpu += r->cpu_percent;
		if (r->memory > 0)
			total_memory += r->memory;
	}
	qsort(rows, n, sizeof(*rows), by_cpu_then_memory);
	if (clear)
		fputs("\033[H\033[2J", stdout);
	time_t t = time(NULL);
	char when[32];
	strftime(when, sizeof(when), "%H:%M:%S", localtime(&t));
	printf("berth top - %s  %zu container%s  CPU %.1f%%  memory %.1f MiB\n\n", when, n, n == 1 ? "" : "s",
	       total_cpu, (double)total_memory / 1048576.0);
	printf("%-20s %-16s %-18s %-8s %-8s %8s %8s %7s %10s\n", "ENDPOINT", "CONTAINER", "ID", "STATE", "HEALTH",
	       "PID", "RESTARTS", "CPU%", "MEMORY");
	for (size_t i = 0; i < n; i++) {
		char cpu[16] = "-", mem[24] = "-";
		if (rows[i].cpu_percent >= 0)
			snprintf(cpu, sizeof(cpu), "%.1f", rows[i].cpu_percent);
		if (rows[i].memory >= 0)
			snprintf(mem, sizeof(mem), "%.1fMiB", (double)rows[i].memory / 1048576.0);
		printf("%-20s %-16s %-18s %-8s %-8s %8lld %8lld %7s %10s\n", rows[i].endpoint, rows[i].hostname,
		       rows[i].id, rows[i].state, rows[i].health, rows[i].pid, rows[i].restarts, cpu, mem);
	}
	fflush(stdout);
	free(rows);
	free(*prev);
	*prev = next;
	*n_prev = n;
	yajl_tree_free(v);
	return 0;
}

int cli_top(const char *socket, int argc, char **argv)
{
	double delay = 2.0;
	long iterations = 0;
	optind = 1;
	for (int c; (c = getopt(argc, argv, "d:n:")) != -1;) {
		char *end;
		switch (c) {
		case 'd':
			delay = strtod(optarg, &end);
			if (*end || delay < 0.1) {
				fprintf(stderr, "berth top: -d wants seconds (at least 0.1), not \"%s\"\n", optarg);
				return 2;
			}
			break;
		case 'n':
			iterations = strtol(optarg, &end, 10);
			if (*end || iterations < 1) {
				fprintf(stderr, "berth top: -n wants a count of screens, not \"%s\"\n", optarg);
				return 2;
			}
			break;
		default:
			fprintf(stderr, "usage: berth top [-d SECONDS] [-n ITERATIONS]\n");
			return 2;
		}
	}
	int clear = isatty(STDOUT_FILENO);
	struct sample *prev = NULL;
	size_t n_prev = 0;
	double last = (clock_now_ns() / 1e9);
	int r = 0;
	for (long i = 0; iterations == 0 || i < iterations; i++) {
		double now = (clock_now_ns() / 1e9);
		if (show(socket, &prev, &n_prev, now - last, clear) < 0) {
			r = 1;
			break;
		}
		last = now;
		if (iterations != 0 && i + 1 == iterations)
			break;
		if (!clear)
			putchar('\n');
		struct timespec ts = { (time_t)delay, (long)((delay - (time_t)delay) * 1e9) };
		nanosleep(&ts, NULL);
	}
	free(prev);
	return r;
}
