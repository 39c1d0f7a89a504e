/* image_user.c — see image_user.h. */
#include "image_user.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "buf.h"

#define DB_MAX_BYTES (4u << 20)
#define ID_MAX 4294967294ULL

/* Reads rootfs/etc/NAME into out; a missing file leaves out empty. */
static int read_db(const char *rootfs, const char *name, struct berth_buf *out, struct berth_err *err)
{
	_cleanup_close_ int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return berth_err_set(err, errno, "cannot open the image root %s", rootfs);
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	char rel[64];
	snprintf(rel, sizeof(rel), "etc/%s", name);
	_cleanup_close_ int fd = (int)syscall(SYS_openat2, root, rel, &how, sizeof(how));
	if (fd < 0)
		return errno == ENOENT ? 0 : berth_err_set(err, errno, "cannot read the image's /%s", rel);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return berth_err_set(err, 0, "the image's /%s is not a regular file", rel);
	if (st.st_size > (off_t)DB_MAX_BYTES)
		return berth_err_set(err, EFBIG, "the image's /%s", rel);
	char chunk[8192];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return berth_err_set(err, errno, "cannot read the image's /%s", rel);
		if (n == 0)
			return 0;
		if (out->len + (size_t)n > DB_MAX_BYTES)
			return berth_err_set(err, EFBIG, "the image's /%s", rel);
		if (buf_append(out, chunk, (size_t)n) < 0)
			return berth_err_set(err, ENOMEM, "reading /%s", rel);
	}
}

static bool parse_id(const char *s, unsigned int *out)
{
	if (s == NULL || *s == '\0')
		return false;
	unsigned long long v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (unsigned)(*p - '0');
		if (v > ID_MAX)
			return false;
	}
	*out = (unsigned int)v;
	return true;
}

/* Splits a colon-separated line into at most max fields (in place). */
static size_t split_fields(char *line, char **fields, size_t max)
{
	size_t n = 0;
	fields[n++] = line;
	for (char *p = line; *p && n < max; p++)
		if (*p == ':') {
			*p = '\0';
			fields[n++] = p + 1;
		}
	return n;
}

static bool member_of(char *members, const char *name)
{
	char *save = NULL;
	for (char *m = strtok_r(members, ",", &save); m; m = strtok_r(NULL, ",", &save))
		if (strcmp(m, name) == 0)
			return true;
	return false;
}

int image_user_resolve(const char *rootfs, const char *user, struct image_user *out, struct berth_err *err)
{
	memset(out, 0, sizeof(*out));
	if (user == NULL || *user == '\0')
		return 0;
	if (strlen(user) > 256)
		return berth_err_set(err, 0, "image User \"%.64s…\" is too long", user);
	char spec[257];
	snprintf(spec, sizeof(spec), "%s", user);
	char *group = strchr(spec, ':');
	if (group != NULL)
		*group++ = '\0';
	if (*spec == '\0')
		return berth_err_set(err, 0, "image User \"%s\" names no user", user);

	struct berth_buf passwd = BERTH_BUF_INIT, groups = BERTH_BUF_INIT;
	int r = -1;
	if (read_db(rootfs, "passwd", &passwd, err) < 0 || read_db(rootfs, "group", &groups, err) < 0)
		goto out;
	bool found = false;
	char name[257] = "";
	unsigned int num = 0;
	bool numeric = parse_id(spec, &num);
	char *save = NULL;
	for (char *line = passwd.data ? strtok_r(passwd.data, "\n", &save) : NULL; line && !found;
	     line = strtok_r(NULL, "\n", &save)) {
		char *f[7] = { 0 };
		unsigned int uid, gid;
		if (line[0] == '#' || split_fields(line, f, 7) < 4 || !parse_id(f[2], &uid) || !parse_id(f[3], &gid))
			continue;
		if (strcmp(f[0], spec) == 0 || (numeric && uid == num)) {
			found = true;
			out->uid = uid;
			out->gid = gid;
			snprintf(name, sizeof(name), "%s", f[0]);
		}
	}
	if (!found) {
		if (!numeric) {
			berth_err_set(err, 0, "image User \"%s\": no user \"%s\" in the image's /etc/passwd", user, spec);
			goto out;
		}
		out->uid = num;
		out->gid = 0;
	}
	/* /etc/group is walked once for the named group or the memberships */
	bool group_found = false;
	unsigned int gnum = 0;
	bool gnumeric = group != NULL && parse_id(group, &gnum);
	if (group != NULL && *group == '\0') {
		berth_err_set(err, 0, "image User \"%s\" names an empty group", user);
		goto out;
	}
	save = NULL;
	for (char *line = groups.data ? strtok_r(groups.data, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *f[4] = { 0 };
		unsigned int gid;
		if (line[0] == '#' || split_fields(line, f, 4) < 3 || !parse_id(f[2], &gid))
			continue;
		if (group != NULL) {
			if (!group_found && (strcmp(f[0], group) == 0 || (gnumeric && gid == gnum))) {
				group_found = true;
				out->gid = gid;
			}
		} else if (found && gid != out->gid && f[3] != NULL && member_of(f[3], name) &&
			   out->n_additional_gids < IMAGE_USER_MAX_GROUPS) {
			out->additional_gids[out->n_additional_gids++] = gid;
		}
	}
	if (group != NULL && !group_found) {
		if (!gnumeric) {
			berth_err_set(err, 0, "image User \"%s\": no group \"%s\" in the image's /etc/group", user,
				      group);
			goto out;
		}
		out->gid = gnum;
	}
	r = 0;
out:
	buf_free(&passwd);
	buf_free(&groups);
	return r;
}
