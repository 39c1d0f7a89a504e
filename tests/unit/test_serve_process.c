/* The process a container runs: Docker's rules for `docker run IMAGE serve`
 * (orchestrator/container/serve_process.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "serve_process.h"

struct root {
	char dir[64];
};

static int setup(void **state)
{
	struct root *r = calloc(1, sizeof(*r));
	snprintf(r->dir, sizeof(r->dir), "/tmp/berth-serve-test-XXXXXX");
	if (mkdtemp(r->dir) == NULL)
		return -1;
	*state = r;
	return 0;
}

static int teardown(void **state)
{
	struct root *r = *state;
	struct berth_err err;
	fs_remove_tree(r->dir, &err);
	free(r);
	return 0;
}

/* Creates ROOT/rel with mode (its directories too). */
static void put_file(const struct root *r, const char *rel, mode_t mode)
{
	char *path = fs_path("%s/%s", r->dir, rel);
	char *dir = strdup(path);
	*strrchr(dir, '/') = '\0';
	struct berth_err err;
	assert_int_equal(fs_mkdir_p(dir, 0755, &err), 0);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
	free(dir);
	free(path);
}

static void put_link(const struct root *r, const char *rel, const char *target)
{
	char *path = fs_path("%s/%s", r->dir, rel);
	char *dir = strdup(path);
	*strrchr(dir, '/') = '\0';
	struct berth_err err;
	assert_int_equal(fs_mkdir_p(dir, 0755, &err), 0);
	assert_int_equal(symlink(target, path), 0);
	free(dir);
	free(path);
}

static void expect_argv(const struct serve_process *p, const char *const *want)
{
	size_t n = 0;
	while (want[n])
		n++;
	assert_int_equal(p->argc, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(p->argv[i], want[i]);
	assert_null(p->argv[n]);
}

static void entrypoint_is_kept_and_serve_replaces_cmd(void **state)
{
	struct root *r = *state;
	struct serve_process p;
	struct berth_err err;
	char *ep[] = { "/bin/sh", "-c", "exec server \"$0\"", NULL };
	/* no lookup at all: nothing needs to exist in the root */
	assert_int_equal(serve_process_resolve(r->dir, ep, 3, true, "/nowhere", &p, &err), 0);
	expect_argv(&p, (const char *const[]){ "/bin/sh", "-c", "exec server \"$0\"", "serve", NULL });
	serve_process_free(&p);
	char *one[] = { "/usr/local/bin/serve", NULL };
	assert_int_equal(serve_process_resolve(r->dir, one, 1, true, SERVE_DEFAULT_PATH, &p, &err), 0);
	expect_argv(&p, (const char *const[]){ "/usr/local/bin/serve", "serve", NULL });
	serve_process_free(&p);
}

static void no_entrypoint_finds_serve_on_the_image_path(void **state)
{
	struct root *r = *state;
	struct serve_process p;
	struct berth_err err;
	put_file(r, "opt/program/serve", 0755);
	assert_int_equal(serve_process_resolve(r->dir, NULL, 0, true, "/opt/program:/usr/bin", &p, &err), 0);
	/* argv[0] "serve": runc looks it up in the container, as Docker does */
	expect_argv(&p, (const char *const[]){ "serve", NULL });
	serve_process_free(&p);
	/* not on the default PATH: a clear refusal naming every place looked in */
	assert_int_equal(serve_process_resolve(r->dir, NULL, 0, true, SERVE_DEFAULT_PATH, &p, &err), -1);
	assert_int_equal(err.cls, BERTH_ERR_VALIDATION);
	assert_string_equal(err.msg,
			    "the image has no Entrypoint, so berth runs \"serve\" as `docker run IMAGE serve` does, looked "
			    "up in the container's PATH (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin), "
			    "but none of /usr/local/sbin/serve, /usr/local/bin/serve, /usr/sbin/serve, /usr/bin/serve, "
			    "/sbin/serve, /bin/serve is an executable file in the image. Put serve in one of those "
			    "directories, set PATH (the image config's Env or the model's Environment) to include its "
			    "directory, or give the image an Entrypoint");
	assert_null(p.argv);
}

static void lookup_stays_inside_the_root(void **state)
{
	struct root *r = *state;
	struct serve_process p;
	struct berth_err err;
	/* /bin/true exists on the host, not in this root: an absolute link and
	 * a `..` walk resolve inside the root, so both find nothing */
	put_link(r, "a/serve", "/bin/true");
	put_link(r, "b/serve", "../../../../../../../bin/true");
	assert_int_equal(serve_process_resolve(r->dir, NULL, 0, true, "/a:/b", &p, &err), -1);
	assert_non_null(strstr(err.msg, "none of /a/serve, /b/serve"));
	/* the same absolute link is fine when its target is inside */
	put_file(r, "bin/true", 0755);
	assert_int_equal(serve_process_resolve(r->dir, NULL, 0, true, "/a:/b", &p, &err), 0);
	expect_argv(&p, (const char *const[]){ "serve", NULL });
	serve_process_free(&p);
}

static void not_executable_directories_and_relative_entries_do_not_count(void **state)
{
	struct root *r = *state;
	struct serve_process p;
	struct berth_err err;
	put_file(r, "x/serve", 0644);
	put_file(r, "y/serve/inner", 0755); /* y/serve is a directory */
	put_file(r, "rel/serve", 0755);
	assert_int_equal(serve_process_resolve(r->dir, NULL, 0, true, "/x:/y/:rel::", &p, &err), -1);
	assert_non_null(strstr(err.msg, "none of /x/serve, /y/serve is"));
	/* a PATH longer than the bound is refused, not walked */
	char *longpath = malloc(SERVE_MAX_PATH + 2);
	memset(longpath, 'a', SERVE_MAX_PATH + 1);
	longpath[0] = '/';
	longpath[SERVE_MAX_PATH + 1] = '\0';
	assert_int_equal(serve_process_resolve(r->dir, NULL, 0, true, longpath, &p, &err), -1);
	assert_non_null(strstr(err.msg, "PATH is 4097 bytes long"));
	free(longpath);
}

static void rootfs_images_fall_back_to_slash_serve(void **state)
{
	struct root *r = *state;
	struct serve_process p;
	struct berth_err err;
	/* an OCI image with a config gets no fallback */
	put_file(r, "serve", 0755);
	assert_int_equal(serve_process_resolve(r->dir, NULL, 0, true, SERVE_DEFAULT_PATH, &p, &err), -1);
	assert_null(strstr(err.msg, "nor /serve"));
	/* a rootfs directory or tarball (no config) does */
	assert_int_equal(serve_process_resolve(r->dir, NULL, 0, false, SERVE_DEFAULT_PATH, &p, &err), 0);
	expect_argv(&p, (const char *const[]){ "/serve", "serve", NULL });
	serve_process_free(&p);
	/* but serve on its PATH comes first */
	put_file(r, "usr/bin/serve", 0755);
	assert_int_equal(serve_process_resolve(r->dir, NULL, 0, false, SERVE_DEFAULT_PATH, &p, &err), 0);
	expect_argv(&p, (const char *const[]){ "serve", NULL });
	serve_process_free(&p);
}

static void path_comes_from_the_model_then_the_image_then_docker(void **state)
{
	(void)state;
	struct kv image_env[] = { { "PATH", "/opt/program:/usr/bin" }, { "A", "b" } };
	struct kv env[] = { { "PATH", "/first" }, { "PATH", "/mine" } };
	assert_string_equal(serve_process_path(NULL, 0, NULL, 0), SERVE_DEFAULT_PATH);
	assert_string_equal(serve_process_path(image_env, 2, NULL, 0), "/opt/program:/usr/bin");
	assert_string_equal(serve_process_path(image_env, 2, env, 2), "/mine");
	assert_string_equal(serve_process_path(image_env + 1, 1, NULL, 0), SERVE_DEFAULT_PATH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(entrypoint_is_kept_and_serve_replaces_cmd, setup, teardown),
		cmocka_unit_test_setup_teardown(no_entrypoint_finds_serve_on_the_image_path, setup, teardown),
		cmocka_unit_test_setup_teardown(lookup_stays_inside_the_root, setup, teardown),
		cmocka_unit_test_setup_teardown(not_executable_directories_and_relative_entries_do_not_count, setup,
						teardown),
		cmocka_unit_test_setup_teardown(rootfs_images_fall_back_to_slash_serve, setup, teardown),
		cmocka_unit_test(path_comes_from_the_model_then_the_image_then_docker),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
