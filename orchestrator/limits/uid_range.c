/* uid_range.c — see uid_range.h. */
#include "uid_range.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "log.h"

#define SUBID_MAX_BYTES (4u << 20)

static bool parse_id(const char *s, size_t len, long long *out)
{
	if (len == 0 || len > 10 || strspn(s, "0123456789") < len)
		return false;
	long long v = 0;
	for (size_t i = 0; i < len; i++)
		v = v * 10 + (s[i] - '0');
	*out = v;
	return v < USERNS_ID_LIMIT;
}

static int parse_line(const char *line, size_t len, struct uid_span *span)
{
	const char *c1 = memchr(line, ':', len);
	const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
	if (c1 == NULL || c2 == NULL || c1 == line)
		return -1;
	size_t rest = len - (size_t)(c2 + 1 - line);
	if (!parse_id(c1 + 1, (size_t)(c2 - c1 - 1), &span->start) || !parse_id(c2 + 1, rest, &span->count) ||
	    span->count == 0)
		return -1;
	return 0;
}

int uid_range_parse_subid(const char *label, const char *text, size_t len, struct uid_span **spans, size_t *n,
			  struct berth_err *err)
{
	size_t lineno = 0;
	for (const char *p = text, *end = text + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
		lineno++;
		const char *line = p;
		p += l + (nl != NULL);
		while (l > 0 && (line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t'))
			l--;
		if (l == 0 || line[0] == '#')
			continue;
		struct uid_span span;
		if (parse_line(line, l, &span) < 0) {
			log_warn("%s line %zu is not \"name:start:count\"; ignoring it", label, lineno);
			continue;
		}
		struct uid_span *grown = realloc(*spans, (*n + 1) * sizeof(**spans));
		if (grown == NULL)
			return berth_err_set(err, ENOMEM, "%s", label);
		*spans = grown;
		(*spans)[(*n)++] = span;
	}
	return 0;
}

int uid_range_policy_load(struct uid_range_policy *policy, long long base, const char *subuid_path,
			  const char *subgid_path, struct berth_err *err)
{
	memset(policy, 0, sizeof(*policy));
	policy->base = base;
	const char *paths[] = { subuid_path, subgid_path };
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(paths); i++) {
		struct berth_buf doc = BERTH_BUF_INIT;
		struct berth_err rerr;
		if (paths[i] == NULL)
			continue;
		if (fs_read_file(paths[i], &doc, SUBID_MAX_BYTES, &rerr) < 0) {
			buf_free(&doc);
			if (rerr.errnum == ENOENT)
				continue;
			uid_range_policy_free(policy);
			return berth_err_set(err, 0, "cannot read %s: %s", paths[i], rerr.msg);
		}
		int r = uid_range_parse_subid(paths[i], doc.data ? doc.data : "", doc.len, &policy->reserved,
					      &policy->n_reserved, err);
		buf_free(&doc);
		if (r < 0) {
			uid_range_policy_free(policy);
			return -1;
		}
	}
	return 0;
}

void uid_range_policy_free(struct uid_range_policy *policy)
{
	free(policy->reserved);
	policy->reserved = NULL;
	policy->n_reserved = 0;
}

static bool overlaps(long long a, long long a_count, long long b, long long b_count)
{
	return a < b + b_count && b < a + a_count;
}

int uid_range_pick(const struct uid_range_policy *policy, const long long *used, size_t n_used, long long *start,
		   struct berth_err *err)
{
	long long limit = policy->limit > 0 && policy->limit < USERNS_ID_LIMIT ? policy->limit : USERNS_ID_LIMIT;
	for (long long s = policy->base; s + USERNS_RANGE_SIZE <= limit; s += USERNS_RANGE_SIZE) {
		bool taken = false;
		for (size_t i = 0; i < n_used && !taken; i++)
			taken = overlaps(s, USERNS_RANGE_SIZE, used[i], USERNS_RANGE_SIZE);
		for (size_t i = 0; i < policy->n_reserved && !taken; i++)
			taken = overlaps(s, USERNS_RANGE_SIZE, policy->reserved[i].start, policy->reserved[i].count);
		if (!taken) {
			*start = s;
			return 0;
		}
	}
	return berth_err_set(err, 0,
			     "every user namespace range from uid %lld to %lld is taken (%zu in use): delete endpoints, "
			     "or lower \"userns_uid_base\"",
			     policy->base, limit - 1, n_used);
}

long long uid_range_window_count(long long base)
{
	return base < 0 || base >= USERNS_ID_LIMIT ? 0 : (USERNS_ID_LIMIT - base) / USERNS_WINDOW_IDS;
}

long long uid_range_window_candidate(long long base, uint32_t number, long long k)
{
	long long n = uid_range_window_count(base);
	if (k < 0 || n < 1)
		return -1;
	if (number == 0)
		return k == 0 ? base : -1;
	if (n < 2 || k >= n - 1)
		return -1;
	return base + (1 + ((long long)number + k) % (n - 1)) * USERNS_WINDOW_IDS;
}

long long uid_range_window_mapped(const char *proc, long long start)
{
	DIR *d = opendir(proc);
	if (d == NULL)
		return 0;
	long long found = 0;
	for (struct dirent *de; found == 0 && (de = readdir(d)) != NULL;) {
		size_t len = strlen(de->d_name);
		if (len == 0 || len > 10 || strspn(de->d_name, "0123456789") != len)
			continue;
		_cleanup_free_ char *path = fs_path("%s/%s/uid_map", proc, de->d_name);
		_cleanup_fclose_ FILE *f = path ? fopen(path, "re") : NULL;
		long long inside, outside, count;
		/* "inside outside count" lines, at most 340 of them; the host's own
		 * namespace (and any like it) maps ids to themselves: no range */
		for (int line = 0; f != NULL && line < 400 && fscanf(f, "%lld %lld %lld", &inside, &outside, &count) == 3;
		     line++)
			if (inside != outside && overlaps(start, USERNS_WINDOW_IDS, outside, count)) {
				found = atoll(de->d_name);
				break;
			}
	}
	closedir(d);
	return found;
}

int uid_range_window_claim(const char *lock_path, long long start, int *fd, struct berth_err *err)
{
	if (*fd < 0 && (*fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return berth_err_set(err, errno, "cannot open %s, the host's lock of user namespace ids", lock_path);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = USERNS_WINDOW_IDS };
	if (fcntl(*fd, F_SETLK, &fl) == 0)
		return 0;
	if (errno != EAGAIN && errno != EACCES)
		return berth_err_set(err, errno, "cannot lock host uids %lld..%lld in %s", start,
				     start + USERNS_WINDOW_IDS - 1, lock_path);
	struct flock who = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = USERNS_WINDOW_IDS };
	long long pid = fcntl(*fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK ? (long long)who.l_pid : -1;
	berth_err_set(err, EBUSY,
		      "host uids %lld..%lld overlap the user namespace ids of another berthd (pid %lld, lock %s)",
		      start, start + USERNS_WINDOW_IDS - 1, pid, lock_path);
	return 1;
}

void uid_range_window_release(int fd, long long start)
{
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = USERNS_WINDOW_IDS };
	if (fd >= 0)
		fcntl(fd, F_SETLK, &fl);
}
