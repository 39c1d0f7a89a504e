/* logs.c — see logs.h. */
#include "logs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "control_client.h"
#include "json.h"

#define LOGS_MAX_FILES 256

struct followed {
	char prefix[200];
	const char *path;
	off_t offset;
	struct berth_buf partial; /* a line not yet ended */
};

/* Prints what was appended since f->offset; 0 when nothing new. */
static int drain(struct followed *f, bool prefix)
{
	int fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	struct stat st;
	if (fstat(fd, &st) == 0 && st.st_size < f->offset)
		f->offset = 0; /* rotated or truncated */
	char chunk[65536];
	int got = 0;
	ssize_t n;
	while ((n = pread(fd, chunk, sizeof(chunk), f->offset)) > 0) {
		f->offset += n;
		got = 1;
		if (!prefix) {
			fwrite(chunk, 1, (size_t)n, stdout);
			continue;
		}
		buf_append(&f->partial, chunk, (size_t)n);
		char *start = f->partial.data;
		char *end = f->partial.data + f->partial.len;
		for (char *nl; (nl = memchr(start, '\n', (size_t)(end - start))) != NULL; start = nl + 1)
			printf("%s%.*s\n", f->prefix, (int)(nl - start), start);
		size_t rest = (size_t)(end - start);
		memmove(f->partial.data, start, rest);
		f->partial.len = rest;
	}
	close(fd);
	fflush(stdout);
	return got;
}

int cli_logs(const char *socket, int argc, char **argv)
{
	bool follow = false;
	const char *endpoint = NULL, *container = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--follow") == 0)
			follow = true;
		else if (!endpoint)
			endpoint = argv[i];
		else if (!container)
			container = argv[i];
		else {
			fprintf(stderr, "usage: berth logs [-f] ENDPOINT [CONTAINER]\n");
			return 2;
		}
	}
	if (!endpoint) {
		fprintf(stderr, "usage: berth logs [-f] ENDPOINT [CONTAINER]\n");
		return 2;
	}
	struct berth_err err;
	yajl_val v = control_simple(socket, "ps", &err);
	if (v == NULL) {
		fprintf(stderr, "berth: %s\n", err.msg);
		return 1;
	}
	struct followed files[LOGS_MAX_FILES];
	size_t n = 0;
	yajl_val list = json_get(v, "containers");
	for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len && n < LOGS_MAX_FILES; i++) {
		yajl_val c = list->u.array.values[i];
		const char *ep = json_get_string(c, "endpoint"), *host = json_get_string(c, "hostname");
		const char *log = json_get_string(c, "log");
		if (!ep || !host || !log || strcmp(ep, endpoint) != 0 || (container && strcmp(host, container) != 0))
			continue;
		long long instance = 0;
		json_get_int64(c, "instance", &instance);
		const char *variant = json_get_string(c, "variant");
		memset(&files[n], 0, sizeof(files[n]));
		snprintf(files[n].prefix, sizeof(files[n].prefix), "[%s/%lld/%s] ", variant ? variant : "", instance,
			 host);
		files[n].path = log;
		n++;
	}
	int rc = 0;
	if (n == 0) {
		fprintf(stderr, "berth: endpoint \"%s\" has no container%s%s\n", endpoint,
			container ? " named " : "", container ? container : "");
		rc = 1;
	}
	bool prefix = n > 1;
	for (size_t i = 0; i < n; i++)
		drain(&files[i], prefix);
	while (follow && n > 0) {
		int got = 0;
		for (size_t i = 0; i < n; i++)
			got |= drain(&files[i], prefix);
		if (!got)
			usleep(200 * 1000);
	}
	for (size_t i = 0; i < n; i++)
		buf_free(&files[i].partial);
	yajl_tree_free(v);
	return rc;
}
