/* Unit tests for host_paths.h: roots, lexical matching, and resolution
 * that never leaves the root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "host_paths.h"

struct fixture {
	char dir[64];      /* the test's scratch directory */
	char *root;        /* DIR/root: the allowed root */
	char *outside;     /* DIR/outside: a sibling, not allowed */
	struct host_roots roots;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/berth-hostpaths-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->root = fs_path("%s/root", f->dir);
	f->outside = fs_path("%s/outside", f->dir);
	assert_int_equal(mkdir(f->root, 0755), 0);
	assert_int_equal(mkdir(f->outside, 0755), 0);
	char *p = fs_path("%s/secret", f->outside);
	assert_int_equal(fs_write_atomic(p, "s", 1, 0600, NULL), 0);
	free(p);
	p = fs_path("%s/model.tar.gz", f->root);
	assert_int_equal(fs_write_atomic(p, "m", 1, 0600, NULL), 0);
	free(p);
	struct berth_err err;
	assert_int_equal(host_roots_add(&f->roots, f->root, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct berth_err err;
	fs_remove_tree(f->dir, &err);
	host_roots_free(&f->roots);
	free(f->root);
	free(f->outside);
	free(f);
	return 0;
}

static int open_rel(struct fixture *f, const char *rel, int flags, struct berth_err *err)
{
	char *p = fs_path("%s%s", f->root, rel);
	int fd = host_path_open(&f->roots, p, flags, err);
	free(p);
	return fd;
}

static void test_roots_are_normalised(void **state)
{
	(void)state;
	struct host_roots r = { .n = 0 };
	struct berth_err err;
	assert_int_equal(host_roots_add(&r, "//srv/./images//", &err), 0);
	assert_string_equal(r.dirs[0], "/srv/images");
	assert_int_equal(host_roots_add(&r, "/srv/images", &err), 0); /* no duplicate */
	assert_int_equal(r.n, 1);
	assert_int_equal(host_roots_add(&r, "relative/dir", &err), -1);
	assert_int_equal(host_roots_add(&r, "/srv/../etc", &err), -1);
	struct berth_buf b = BERTH_BUF_INIT;
	assert_int_equal(host_roots_add(&r, "/", &err), 0);
	host_roots_describe(&r, &b);
	assert_string_equal(b.data, "/srv/images, /");
	buf_free(&b);
	host_roots_free(&r);
	host_roots_describe(&r, &b);
	assert_string_equal(b.data, "none");
	buf_free(&b);
}

static void test_inside_opens(void **state)
{
	struct fixture *f = *state;
	struct berth_err err;
	int fd = open_rel(f, "/model.tar.gz", O_RDONLY, &err);
	assert_true(fd >= 0);
	close(fd);
	fd = open_rel(f, "//./model.tar.gz", O_RDONLY, &err); /* lexical noise is fine */
	assert_true(fd >= 0);
	close(fd);
	fd = open_rel(f, "", O_PATH | O_DIRECTORY, &err); /* the root itself */
	assert_true(fd >= 0);
	close(fd);
	/* a relative link that stays inside is followed */
	char *sub = fs_path("%s/sub", f->root), *link = fs_path("%s/sub/up", f->root);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(symlink("../model.tar.gz", link), 0);
	fd = open_rel(f, "/sub/up", O_RDONLY, &err);
	assert_true(fd >= 0);
	close(fd);
	free(sub);
	free(link);
	/* missing: the open's own error, not a refusal */
	assert_int_equal(open_rel(f, "/nope", O_RDONLY, &err), -1);
	assert_int_equal(err.errnum, ENOENT);
}

static void test_outside_is_refused(void **state)
{
	struct fixture *f = *state;
	struct berth_err err;
	char *p = fs_path("%s/secret", f->outside);
	assert_int_equal(host_path_open(&f->roots, p, O_RDONLY, &err), -1);
	assert_int_equal(err.errnum, EXDEV);
	free(p);
	assert_int_equal(host_path_open(&f->roots, "/", O_PATH, &err), -1);
	assert_int_equal(err.errnum, EXDEV);
	assert_int_equal(host_path_open(&f->roots, "/etc/shadow", O_RDONLY, &err), -1);
	assert_int_equal(err.errnum, EXDEV);
	/* a sibling sharing the root's name as a prefix is not under it */
	p = fs_path("%s-x/secret", f->root);
	assert_int_equal(host_path_open(&f->roots, p, O_RDONLY, &err), -1);
	assert_int_equal(err.errnum, EXDEV);
	free(p);
	/* ".." is refused before anything is opened */
	assert_int_equal(open_rel(f, "/../outside/secret", O_RDONLY, &err), -1);
	assert_int_equal(err.errnum, EXDEV);
	assert_int_equal(host_path_open(&f->roots, "relative", O_RDONLY, &err), -1);
	assert_int_equal(err.errnum, EXDEV);
	assert_int_equal(host_path_open(NULL, f->root, O_PATH, &err), -1);
	assert_int_equal(err.errnum, EXDEV);
}

static void test_links_out_are_refused(void **state)
{
	struct fixture *f = *state;
	struct berth_err err;
	char *abs_link = fs_path("%s/abs", f->root), *rel_link = fs_path("%s/rel", f->root);
	char *etc_link = fs_path("%s/etc", f->root), *proc_link = fs_path("%s/proc", f->root);
	assert_int_equal(symlink(f->outside, abs_link), 0);
	assert_int_equal(symlink("../outside", rel_link), 0);
	assert_int_equal(symlink("/etc", etc_link), 0);
	assert_int_equal(symlink("/proc/self/root", proc_link), 0);
	assert_int_equal(open_rel(f, "/abs/secret", O_RDONLY, &err), -1);
	assert_int_equal(err.errnum, EXDEV);
	assert_int_equal(open_rel(f, "/rel/secret", O_RDONLY, &err), -1);
	assert_int_equal(err.errnum, EXDEV);
	assert_int_equal(open_rel(f, "/etc", O_PATH, &err), -1);
	assert_int_equal(err.errnum, EXDEV);
	assert_int_equal(open_rel(f, "/proc/etc/shadow", O_RDONLY, &err), -1);
	assert_int_equal(err.errnum, EXDEV);
	free(abs_link);
	free(rel_link);
	free(etc_link);
	free(proc_link);
}

static void test_messages_name_the_roots(void **state)
{
	struct fixture *f = *state;
	struct berth_err err;
	assert_int_equal(host_paths_refuse_image(&f->roots, "/etc", &err), -1);
	assert_int_equal(err.errnum, EXDEV);
	char *want = fs_path("Image \"/etc\" is outside the directories berth may run images from (image roots: %s). "
			     "Move the image under one of them, or add its directory to image_roots in berthd's "
			     "configuration (--image-root); a symbolic link must not lead out of its root.",
			     f->root);
	assert_string_equal(err.msg, want);
	free(want);
	assert_int_equal(host_paths_refuse_model(&f->roots, "file:///", &err), -1);
	want = fs_path("Could not access model data at file:///: it is outside the directories berth may read model "
		       "data from (model roots: %s). Move it under one of them, or add its directory to model_roots in "
		       "berthd's configuration (--model-root); a symbolic link must not lead out of its root.",
		       f->root);
	assert_string_equal(err.msg, want);
	free(want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roots_are_normalised),
		cmocka_unit_test_setup_teardown(test_inside_opens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outside_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_links_out_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_messages_name_the_roots, setup, teardown),
	};
	return cmocka_run_group_tests_name("host_paths", tests, NULL, NULL);
}
