/* error_json.c — see error_json.h. */
#include "error_json.h"

#include <string.h>

#include "json.h"
#include "utf8.h"

int error_json_gen_text(yajl_gen g, const char *s, size_t len)
{
	if (s == NULL)
		s = "", len = 0;
	if (utf8_is_valid(s, len))
		return json_gen_strn(g, s, len);
	struct berth_buf clean = BERTH_BUF_INIT;
	int r = utf8_sanitize(&clean, s, len);
	if (r == 0)
		r = json_gen_strn(g, clean.data, clean.len);
	buf_free(&clean);
	return r;
}

int error_json_render(struct berth_buf *out, const char *type, const char *message)
{
	yajl_gen g = json_gen_new();
	if (g == NULL)
		return -1;
	if (message == NULL)
		message = "";
	if (yajl_gen_map_open(g) != yajl_gen_status_ok || (type != NULL && json_gen_kv_str(g, "__type", type) < 0) ||
	    json_gen_str(g, "message") < 0 || error_json_gen_text(g, message, strlen(message)) < 0 ||
	    yajl_gen_map_close(g) != yajl_gen_status_ok) {
		yajl_gen_free(g);
		return -1;
	}
	return json_gen_finish(g, out);
}
