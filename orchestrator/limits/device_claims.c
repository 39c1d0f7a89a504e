/* device_claims.c — see device_claims.h. */
#include "device_claims.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "cdi_spec.h"
#include "fsutil.h"


char **device_claims_read(const char *claims_dir, const char *identity, size_t *n, char ***owners)
{
	*n = 0;
	char **names = calloc(1, sizeof(*names));
	if (owners)
		*owners = calloc(1, sizeof(**owners));
	DIR *dir = claims_dir ? opendir(claims_dir) : NULL;
	struct dirent *de;
	while (names && dir && (de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.' || (identity && strcmp(de->d_name, identity) == 0) ||
		    strchr(de->d_name, '.') != NULL)
			continue;
		_cleanup_free_ char *path = fs_path("%s/%s", claims_dir, de->d_name);
		struct berth_buf text = BERTH_BUF_INIT;
		struct berth_err err;
		if (path == NULL || fs_read_file(path, &text, CLAIMS_MAX_BYTES, &err) < 0 || text.data == NULL) {
			buf_free(&text);
			continue;
		}
		char *save = NULL;
		for (char *line = strtok_r(text.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			if (!cdi_qualified_name_valid(line))
				continue;
			char **grown = realloc(names, (*n + 2) * sizeof(*names));
			if (grown == NULL)
				break;
			names = grown;
			if (owners) {
				char **og = realloc(*owners, (*n + 2) * sizeof(**owners));
				if (og == NULL)
					break;
				*owners = og;
				(*owners)[*n] = strdup(de->d_name);
				(*owners)[*n + 1] = NULL;
			}
			names[*n] = strdup(line);
			names[++*n] = NULL;
		}
		buf_free(&text);
	}
	if (dir)
		closedir(dir);
	return names;
}

int device_claims_write(const char *claims_dir, const char *identity, char *const *names, size_t n,
			struct berth_err *err)
{
	struct berth_buf text = BERTH_BUF_INIT;
	for (size_t i = 0; i < n; i++)
		buf_printf(&text, "%s\n", names[i]);
	_cleanup_free_ char *path = fs_path("%s/%s", claims_dir, identity);
	struct berth_buf now = BERTH_BUF_INIT;
	struct berth_err ignored;
	bool exists = path && fs_read_file(path, &now, CLAIMS_MAX_BYTES, &ignored) == 0;
	bool same = exists ? now.len == text.len && (text.len == 0 || memcmp(now.data, text.data, text.len) == 0)
			   : text.len == 0;
	int r = 0;
	if (path == NULL)
		r = berth_err_set(err, ENOMEM, "device claims");
	else if (!same && text.len == 0 && unlink(path) < 0 && errno != ENOENT)
		r = berth_err_set(err, errno, "removing %s", path);
	else if (!same && text.len > 0 &&
		 (fs_mkdir_p(claims_dir, 0755, err) < 0 || fs_write_atomic(path, text.data, text.len, 0644, err) < 0))
		r = -1;
	buf_free(&now);
	buf_free(&text);
	return r;
}
