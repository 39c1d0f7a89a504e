/* keys.c — see keys.h. */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "credentials.h"
#include "err.h"
#include "fsutil.h"

#define KEYS_NAME_MAX 64

static void keys_usage(FILE *f)
{
	fprintf(f, "usage: berth keys add NAME [--allow ACTIONS] [--endpoints GLOBS] [--endpoint-configs GLOBS]\n"
		   "                           [--models GLOBS] [--credentials PATH]\n"
		   "       berth keys ls [--credentials PATH]\n"
		   "  ACTIONS: IAM-style actions, space-separated, * and ? globs (default sagemaker:InvokeEndpoint;\n"
		   "  sagemaker:* for everything); GLOBS: resource names the key is limited to (default any).\n"
		   "  PATH defaults to " CREDENTIALS_DEFAULT_PATH ". berthd picks a change up by itself.\n");
}

int keys_generate(char id[KEYS_ID_LEN + 1], char secret[KEYS_SECRET_LEN + 1], struct berth_err *err)
{
	static const char id_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";                                  /* 5 bits */
	static const char secret_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"; /* 6 bits */
	unsigned char r[10 + 30]; /* 16 × 5 bits, then 40 × 6 bits */
	size_t got = 0;
	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return berth_err_set(err, errno, "cannot read random bytes for a new key (getrandom)");
		got += (size_t)n;
	}
	memcpy(id, KEYS_ID_PREFIX, strlen(KEYS_ID_PREFIX));
	for (size_t i = 0; i < 16; i++) {
		size_t bit = i * 5, v = 0;
		for (size_t b = 0; b < 5; b++, bit++)
			v = v << 1 | ((r[bit / 8] >> (7 - bit % 8)) & 1);
		id[strlen(KEYS_ID_PREFIX) + i] = id_alphabet[v];
	}
	id[KEYS_ID_LEN] = '\0';
	for (size_t i = 0; i < KEYS_SECRET_LEN; i++) {
		size_t bit = 80 + i * 6, v = 0;
		for (size_t b = 0; b < 6; b++, bit++)
			v = v << 1 | ((r[bit / 8] >> (7 - bit % 8)) & 1);
		secret[i] = secret_alphabet[v];
	}
	secret[KEYS_SECRET_LEN] = '\0';
	explicit_bzero(r, sizeof(r));
	return 0;
}

/* A name IAM would take for a user (it becomes arn:aws:iam::ACCOUNT:user/NAME). */
static bool name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > KEYS_NAME_MAX)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("+=,.@_-", *p)))
			return false;
	return true;
}

/* A member's value: one line of printable characters. */
static bool value_valid(const char *v)
{
	if (*v == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* The file's text into out; *exists false when there is none yet. */
static int read_credentials(const char *path, struct berth_buf *out, bool *exists, struct stat *st,
			    struct berth_err *err)
{
	*exists = false;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return berth_err_set(err, errno, "cannot open %s%s", path,
				     errno == EACCES ? " (the credentials file is root's: run berth keys as root)" : "");
	if (fstat(fd, st) < 0)
		return berth_err_set(err, errno, "stat %s", path);
	if (!S_ISREG(st->st_mode))
		return berth_err_set(err, 0, "%s is not a regular file", path);
	*exists = true;
	return fs_read_file(path, out, CREDENTIALS_MAX_BYTES, err);
}

static int keys_add(int argc, char **argv)
{
	const char *path = CREDENTIALS_DEFAULT_PATH, *allow = "sagemaker:InvokeEndpoint";
	const char *members[3] = { NULL, NULL, NULL };
	static const char *member_names[3] = { "endpoints", "endpoint_configs", "models" };
	static const struct option opts[] = {
		{ "allow", required_argument, NULL, 'a' },
		{ "endpoints", required_argument, NULL, 'e' },
		{ "endpoint-configs", required_argument, NULL, 'c' },
		{ "models", required_argument, NULL, 'm' },
		{ "credentials", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	optind = 1;
	for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		switch (c) {
		case 'a': allow = optarg; break;
		case 'e': members[0] = optarg; break;
		case 'c': members[1] = optarg; break;
		case 'm': members[2] = optarg; break;
		case 'f': path = optarg; break;
		default: keys_usage(stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		keys_usage(stderr);
		return 2;
	}
	const char *name = argv[optind];
	if (!name_valid(name)) {
		fprintf(stderr, "berth: key name \"%s\" is not valid: use 1 to %d letters, digits and +=,.@_- "
				"(it names the user in AccessDenied messages)\n", name, KEYS_NAME_MAX);
		return 2;
	}
	if (!value_valid(allow)) {
		fprintf(stderr, "berth: --allow wants one or more actions on one line, e.g. 'sagemaker:InvokeEndpoint'\n");
		return 2;
	}
	for (size_t i = 0; i < 3; i++)
		if (members[i] != NULL && !value_valid(members[i])) {
			fprintf(stderr, "berth: --%s wants one or more name globs on one line, e.g. 'prod-*'\n",
				i == 1 ? "endpoint-configs" : member_names[i]);
			return 2;
		}

	struct berth_err err;
	struct berth_buf text = BERTH_BUF_INIT;
	struct stat st;
	bool exists;
	if (read_credentials(path, &text, &exists, &st, &err) < 0) {
		fprintf(stderr, "berth: %s\n", err.msg);
		buf_free(&text);
		return 1;
	}
	struct credentials creds = { NULL, 0 };
	if (text.len > 0 && credentials_parse(text.data, text.len, path, &creds, &err) < 0) {
		fprintf(stderr, "berth: %s\n(fix the file first: berth keys add appends to it)\n", err.msg);
		buf_free(&text);
		return 1;
	}
	char id[KEYS_ID_LEN + 1], secret[KEYS_SECRET_LEN + 1];
	int ret = 1;
	for (size_t i = 0; i < creds.n; i++)
		if (strcmp(creds.keys[i].name, name) == 0) {
			fprintf(stderr, "berth: %s already has a key named \"%s\"; choose another name "
					"(berth keys ls lists them)\n", path, name);
			goto out;
		}
	do {
		if (keys_generate(id, secret, &err) < 0) {
			fprintf(stderr, "berth: %s\n", err.msg);
			goto out;
		}
	} while (credentials_find(&creds, id) != NULL);

	if (text.len > 0 && text.data[text.len - 1] != '\n')
		buf_append(&text, "\n", 1);
	buf_printf(&text, "[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\nallow = %s\n", name, id, secret,
		   allow);
	for (size_t i = 0; i < 3; i++)
		if (members[i] != NULL)
			buf_printf(&text, "%s = %s\n", member_names[i], members[i]);
	/* berthd would refuse a file it cannot parse: check the result first */
	struct credentials check = { NULL, 0 };
	if (credentials_parse(text.data, text.len, path, &check, &err) < 0) {
		fprintf(stderr, "berth: the new key would make the file invalid, so it was not added: %s\n", err.msg);
		goto out;
	}
	credentials_free(&check);
	if (!exists) {
		_cleanup_free_ char *dir = strdup(path);
		char *slash = dir ? strrchr(dir, '/') : NULL;
		if (slash != NULL && slash != dir) {
			*slash = '\0';
			if (fs_mkdir_p(dir, 0700, &err) < 0) {
				fprintf(stderr, "berth: %s\n", err.msg);
				goto out;
			}
		}
	}
	if (fs_write_atomic(path, text.data, text.len, 0600, &err) < 0) {
		fprintf(stderr, "berth: %s\n", err.msg);
		goto out;
	}
	/* the new file is ours (root's, as berthd's); keep an existing file's owner */
	if (exists && geteuid() == 0 && (st.st_uid != 0 || st.st_gid != 0) && chown(path, st.st_uid, st.st_gid) < 0)
		fprintf(stderr, "berth: warning: cannot give %s back to uid %u: %s\n", path, (unsigned)st.st_uid,
			strerror(errno));
	printf("added key \"%s\" to %s (allow = %s)\n"
	       "aws_access_key_id = %s\n"
	       "aws_secret_access_key = %s\n"
	       "The secret is shown this once; berthd picks the new key up by itself.\n",
	       name, path, allow, id, secret);
	ret = 0;
out:
	explicit_bzero(secret, sizeof(secret));
	if (text.data)
		explicit_bzero(text.data, text.len);
	buf_free(&text);
	credentials_free(&creds);
	return ret;
}

static void print_globs(const struct credentials_globs *g, struct berth_buf *out)
{
	buf_reset(out);
	if (g->v == NULL) {
		buf_printf(out, "*");
		return;
	}
	for (size_t i = 0; i < g->n; i++)
		buf_printf(out, "%s%s", i ? " " : "", g->v[i]);
	if (g->n == 0)
		buf_printf(out, "(none)");
}

static int keys_ls(int argc, char **argv)
{
	const char *path = CREDENTIALS_DEFAULT_PATH;
	static const struct option opts[] = {
		{ "credentials", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	optind = 1;
	for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		if (c != 'f') {
			keys_usage(stderr);
			return 2;
		}
		path = optarg;
	}
	if (optind != argc) {
		keys_usage(stderr);
		return 2;
	}
	struct berth_err err;
	struct credentials creds = { NULL, 0 };
	if (credentials_load(path, &creds, &err) < 0) {
		fprintf(stderr, "berth: %s\n", err.msg);
		return 1;
	}
	struct berth_buf cols[4] = { BERTH_BUF_INIT, BERTH_BUF_INIT, BERTH_BUF_INIT, BERTH_BUF_INIT };
	printf("%-20s %-22s %-36s %-16s %-16s %s\n", "NAME", "KEY ID", "ALLOW", "ENDPOINTS", "ENDPOINT CONFIGS",
	       "MODELS");
	for (size_t i = 0; i < creds.n; i++) {
		const struct credentials_key *k = &creds.keys[i];
		print_globs(&k->allow, &cols[0]);
		print_globs(&k->endpoints, &cols[1]);
		print_globs(&k->endpoint_configs, &cols[2]);
		print_globs(&k->models, &cols[3]);
		if (k->allow.v == NULL) { /* no allow: the key may do nothing */
			buf_reset(&cols[0]);
			buf_printf(&cols[0], "(nothing)");
		}
		printf("%-20s %-22s %-36s %-16s %-16s %s\n", k->name, k->key_id, cols[0].data, cols[1].data,
		       cols[2].data, cols[3].data);
	}
	for (size_t i = 0; i < 4; i++)
		buf_free(&cols[i]);
	credentials_free(&creds);
	return 0;
}

int cli_keys(int argc, char **argv)
{
	if (argc < 2) {
		keys_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "add") == 0)
		return keys_add(argc - 1, argv + 1);
	if (strcmp(argv[1], "ls") == 0)
		return keys_ls(argc - 1, argv + 1);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		keys_usage(stdout);
		return 0;
	}
	keys_usage(stderr);
	return 2;
}
