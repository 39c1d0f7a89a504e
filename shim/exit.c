/* exit.c — see exit.h. */
#include "exit.h"

#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "fsutil.h"
#include "json.h"
#include "log.h"

static void container_exited(struct shim *shim, int status)
{
	shim->exited = true;
	shim->exit_status = status;
	shim->finished_at = time(NULL);
	if (WIFEXITED(status))
		log_info("container %s (pid %d) exited with status %d", shim->cfg.id, (int)shim->container_pid,
			 WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		log_info("container %s (pid %d) was killed by signal %d", shim->cfg.id, (int)shim->container_pid,
			 WTERMSIG(status));
}

void shim_exit_remember(struct shim *shim, pid_t pid, int status)
{
	if (shim->container_pid > 0) {
		if (pid == shim->container_pid && !shim->exited)
			container_exited(shim, status);
		return;
	}
	if (shim->n_early == SHIM_EARLY_REAPED_MAX) /* keep the newest */
		memmove(shim->early, shim->early + 1, (SHIM_EARLY_REAPED_MAX - 1) * sizeof(shim->early[0]));
	else
		shim->n_early++;
	shim->early[shim->n_early - 1] = (struct shim_reaped){ pid, status };
}

void shim_exit_check_early(struct shim *shim)
{
	for (size_t i = 0; i < shim->n_early; i++)
		if (shim->early[i].pid == shim->container_pid && !shim->exited)
			container_exited(shim, shim->early[i].status);
	shim->n_early = 0;
}

void shim_exit_reap(struct shim *shim)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return;
		shim_exit_remember(shim, pid, status);
	}
}

int shim_exit_gen_status(const struct shim *shim, yajl_gen g)
{
	bool code = shim->exited && WIFEXITED(shim->exit_status);
	bool sig = shim->exited && WIFSIGNALED(shim->exit_status);
	if (json_gen_str(g, "exit_code") < 0 ||
	    (code ? yajl_gen_integer(g, WEXITSTATUS(shim->exit_status)) : yajl_gen_null(g)) != yajl_gen_status_ok)
		return -1;
	if (json_gen_str(g, "signal") < 0 ||
	    (sig ? yajl_gen_integer(g, WTERMSIG(shim->exit_status)) : yajl_gen_null(g)) != yajl_gen_status_ok)
		return -1;
	return 0;
}

int shim_exit_write_file(const struct shim *shim, struct berth_err *err)
{
	yajl_gen g = json_gen_new();
	if (g == NULL)
		return berth_err_set(err, ENOMEM, "writing the exit file");
	struct berth_buf out = BERTH_BUF_INIT;
	if (yajl_gen_map_open(g) != yajl_gen_status_ok || shim_exit_gen_status(shim, g) < 0 ||
	    json_gen_kv_bool(g, "oom_killed", shim->oom_killed) < 0 ||
	    json_gen_kv_int(g, "finished_at", (long long)shim->finished_at) < 0 ||
	    yajl_gen_map_close(g) != yajl_gen_status_ok) {
		yajl_gen_free(g);
		return berth_err_set(err, ENOMEM, "writing the exit file");
	}
	if (json_gen_finish(g, &out) < 0 || buf_append(&out, "\n", 1) < 0) {
		buf_free(&out);
		return berth_err_set(err, ENOMEM, "writing the exit file");
	}
	int r = fs_write_atomic(shim->cfg.exit_file, out.data, out.len, 0644, err);
	buf_free(&out);
	return r;
}
