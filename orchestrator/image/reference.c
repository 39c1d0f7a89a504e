/* reference.c — see reference.h. */
#include "reference.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "oci.h"

bool image_reference_is(const char *image)
{
	return image != NULL && image[0] != '\0' && image[0] != '/' && !oci_is_ref(image);
}

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One repository part: alnum runs joined by '.', '_', "__" or '-'+. */
static bool path_part_ok(const char *s, size_t n)
{
	if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n;) {
		if (is_lower_alnum(s[i])) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < n && !is_lower_alnum(s[j]))
			j++;
		size_t run = j - i;
		bool ok = (run == 1 && (s[i] == '.' || s[i] == '_' || s[i] == '-')) ||
			  (run == 2 && s[i] == '_' && s[i + 1] == '_') || strspn(s + i, "-") >= run;
		if (!ok)
			return false;
		i = j;
	}
	return true;
}

static bool host_ok(const char *s, size_t n)
{
	if (n == 0)
		return false;
	size_t host_end = n;
	if (s[0] == '[') { /* [v6]:port */
		const char *close = memchr(s, ']', n);
		if (close == NULL || close == s + 1)
			return false;
		size_t inner = (size_t)(close - s) - 1;
		if (strspn(s + 1, "0123456789abcdefABCDEF:.") < inner)
			return false;
		host_end = (size_t)(close - s) + 1;
	} else {
		const char *colon = memchr(s, ':', n);
		if (colon)
			host_end = (size_t)(colon - s);
		if (host_end == 0)
			return false;
		for (size_t i = 0; i < host_end; i++)
			if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-')
				return false;
		if (s[0] == '.' || s[0] == '-' || s[host_end - 1] == '.' || s[host_end - 1] == '-')
			return false;
	}
	if (host_end == n)
		return true;
	if (s[host_end] != ':' || n - host_end - 1 == 0 || n - host_end - 1 > 5)
		return false;
	for (size_t i = host_end + 1; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

static bool tag_ok(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 128 || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)t[i]) && t[i] != '_' && t[i] != '.' && t[i] != '-')
			return false;
	return true;
}

static bool digest_ok(const char *d)
{
	if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 7 + 64)
		return false;
	for (size_t i = 7; d[i]; i++)
		if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
			return false;
	return true;
}

#define HOW "A registry image is [registry/]repository[:tag][@sha256:digest], e.g. " \
	    "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-repo:latest."

int image_reference_parse(const char *text, struct image_reference *out, struct berth_err *err)
{
	memset(out, 0, sizeof(*out));
	char work[1024];
	size_t len = strlen(text);
	if (len == 0 || len >= sizeof(work))
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "Image \"%.200s\" is not a valid image reference. " HOW,
				      text);
	memcpy(work, text, len + 1);

	char *at = strchr(work, '@');
	if (at) {
		*at = '\0';
		if (!digest_ok(at + 1))
			return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
					      "Image \"%s\" has an invalid digest \"%.100s\": berth accepts "
					      "sha256: followed by 64 lower-case hex digits.",
					      text, at + 1);
		snprintf(out->digest, sizeof(out->digest), "%s", at + 1);
	}
	/* the tag is after the last ':' that follows the last '/' */
	char *slash = strrchr(work, '/');
	char *colon = strrchr(slash ? slash : work, ':');
	if (colon) {
		*colon = '\0';
		if (!tag_ok(colon + 1))
			return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
					      "Image \"%s\" has an invalid tag \"%.140s\": a tag is up to 128 letters, "
					      "digits, '_', '.' and '-', not starting with '.' or '-'.",
					      text, colon + 1);
		snprintf(out->tag, sizeof(out->tag), "%s", colon + 1);
	}
	const char *name = work;
	const char *first_slash = strchr(work, '/');
	if (first_slash) {
		size_t hn = (size_t)(first_slash - work);
		bool is_host = memchr(work, '.', hn) || memchr(work, ':', hn) || (hn == 9 && !strncmp(work, "localhost", 9)) ||
			       work[0] == '[';
		for (size_t i = 0; !is_host && i < hn; i++)
			is_host = isupper((unsigned char)work[i]);
		if (is_host) {
			if (!host_ok(work, hn) || hn > REFERENCE_MAX_NAME)
				return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
						      "Image \"%s\" names an invalid registry \"%.*s\". " HOW, text,
						      (int)(hn > 255 ? 255 : hn), work);
			memcpy(out->registry, work, hn);
			out->registry[hn] = '\0';
			name = first_slash + 1;
		}
	}
	if (out->registry[0] == '\0')
		snprintf(out->registry, sizeof(out->registry), "%s", REFERENCE_DEFAULT_REGISTRY);
	/* repository parts */
	size_t nl = strlen(name);
	if (nl == 0)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "Image \"%s\" names no repository. " HOW, text);
	for (const char *p = name; *p;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (!path_part_ok(p, n))
			return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
					      "Image \"%s\" has an invalid repository name \"%.255s\": its parts are "
					      "lower-case letters and digits separated by '.', '_', '__' or '-'. " HOW,
					      text, name);
		p += n + (e ? 1 : 0);
		if (e && *p == '\0')
			return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
					      "Image \"%s\" has an invalid repository name \"%.255s\" (ends with '/'). " HOW,
					      text, name);
	}
	bool library = strcmp(out->registry, REFERENCE_DEFAULT_REGISTRY) == 0 && strchr(name, '/') == NULL;
	int w = snprintf(out->repository, sizeof(out->repository), "%s%s", library ? "library/" : "", name);
	if (w < 0 || (size_t)w >= sizeof(out->repository) || strlen(out->registry) + 1 + (size_t)w > REFERENCE_MAX_NAME)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				      "Image \"%.200s…\" is too long: registry and repository together are at most %d "
				      "characters.",
				      text, REFERENCE_MAX_NAME);
	if (out->tag[0] == '\0' && out->digest[0] == '\0')
		snprintf(out->tag, sizeof(out->tag), "latest");
	return 0;
}

int image_reference_format(const struct image_reference *r, char *buf, size_t size)
{
	int w = snprintf(buf, size, "%s/%s%s%s%s%s", r->registry, r->repository, r->tag[0] ? ":" : "", r->tag,
			 r->digest[0] ? "@" : "", r->digest);
	return w < 0 || (size_t)w >= size ? -1 : 0;
}

int image_reference_pinned(const struct image_reference *r, const char *digest, char *buf, size_t size)
{
	int w = snprintf(buf, size, "%s/%s@%s", r->registry, r->repository, digest);
	return w < 0 || (size_t)w >= size ? -1 : 0;
}

bool image_reference_host_matches(const char *pattern, const char *host)
{
	while (*pattern) {
		if (*pattern == '*') {
			pattern++;
			/* one label: at least one character, none of '.' ':' */
			size_t run = strcspn(host, ".:");
			if (run == 0)
				return false;
			/* the rest of the pattern must match from some point in the label */
			for (size_t k = 1; k <= run; k++)
				if (image_reference_host_matches(pattern, host + k))
					return true;
			return false;
		}
		if (*host == '\0' || tolower((unsigned char)*pattern) != tolower((unsigned char)*host))
			return false;
		pattern++;
		host++;
	}
	return *host == '\0';
}
