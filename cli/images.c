/* images.c — see images.h. */
#include "images.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "answer.h"
#include "buf.h"
#include "control_client.h"
#include "json.h"

static void print_strings(yajl_val arr)
{
	size_t n = arr && YAJL_IS_ARRAY(arr) ? arr->u.array.len : 0;
	for (size_t i = 0; i < n; i++)
		if (YAJL_IS_STRING(arr->u.array.values[i]))
			printf("%s%s", i ? "," : "", arr->u.array.values[i]->u.string);
	if (n == 0)
		printf("-");
}

static int list(const char *socket)
{
	struct berth_err err;
	yajl_val v = control_request(socket, "{\"op\":\"images\"}", &err);
	if (!cli_answer_ok(v, &err, "images")) {
		yajl_tree_free(v);
		return 1;
	}
	yajl_val images = json_get(v, "images");
	printf("%-19s  %12s  %s  %s\n", "DIGEST", "SIZE", "REFERENCES", "MODELS");
	for (size_t i = 0; images && YAJL_IS_ARRAY(images) && i < images->u.array.len; i++) {
		yajl_val im = images->u.array.values[i];
		const char *digest = json_get_string(im, "digest");
		double bytes = 0;
		json_get_double(im, "bytes", &bytes);
		printf("%-19.19s  ", digest ? digest : "?");
		cli_print_size(bytes);
		print_strings(json_get(im, "references"));
		printf("  ");
		print_strings(json_get(im, "models"));
		printf("\n");
	}
	yajl_tree_free(v);
	return 0;
}

static int prune(const char *socket)
{
	struct berth_err err;
	yajl_val v = control_request(socket, "{\"op\":\"images_prune\"}", &err);
	if (!cli_answer_ok(v, &err, "images prune")) {
		yajl_tree_free(v);
		return 1;
	}
	long long removed = 0, bytes = 0;
	json_get_int64(v, "removed", &removed);
	json_get_int64(v, "bytes", &bytes);
	printf("removed %lld image%s no model uses (%.1f MiB)\n", removed, removed == 1 ? "" : "s",
	       (double)bytes / (1 << 20));
	yajl_tree_free(v);
	return 0;
}

static int pull(const char *socket, const char *image)
{
	yajl_gen g = json_gen_new();
	struct berth_buf req = BERTH_BUF_INIT;
	bool built = g && yajl_gen_map_open(g) == yajl_gen_status_ok && json_gen_kv_str(g, "op", "pull") == 0 &&
		     json_gen_kv_str(g, "image", image) == 0 && yajl_gen_map_close(g) == yajl_gen_status_ok;
	if (built)
		built = json_gen_finish(g, &req) == 0; /* frees g */
	else if (g)
		yajl_gen_free(g);
	if (!built) {
		buf_free(&req);
		fprintf(stderr, "berth: out of memory\n");
		return 1;
	}
	struct berth_err err;
	yajl_val v = control_request(socket, req.data, &err);
	buf_free(&req);
	if (!cli_answer_ok(v, &err, "pull")) {
		yajl_tree_free(v);
		return 1;
	}
	const char *resolved = json_get_string(v, "resolved");
	bool pulled = false;
	long long ms = 0;
	json_get_bool(v, "pulled", &pulled);
	json_get_int64(v, "ms", &ms);
	printf("%s is %s (%s, %lld ms)\n", image, resolved ? resolved : "?", pulled ? "pulled" : "already cached", ms);
	yajl_tree_free(v);
	return 0;
}

int cli_images(const char *socket, int argc, char **argv)
{
	if (strcmp(argv[0], "pull") == 0) {
		if (argc != 2) {
			fprintf(stderr, "usage: berth pull [registry/]repository[:tag][@sha256:digest]\n");
			return 2;
		}
		return pull(socket, argv[1]);
	}
	if (argc == 1)
		return list(socket);
	if (argc == 2 && strcmp(argv[1], "prune") == 0)
		return prune(socket);
	fprintf(stderr, "usage: berth images [prune]\n");
	return 2;
}
