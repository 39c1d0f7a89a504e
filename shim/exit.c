/* exit.c — see exit.h. */
#include "exit.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
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

static long long oom_kills_in(const char *dir, const char *file)
{
	_cleanup_free_ char *path = fs_path("%s/%s", dir, file);
	struct berth_buf text = BERTH_BUF_INIT;
	long long kills = 0;
	if (path != NULL && fs_read_file(path, &text, 65536, NULL) == 0 && text.data != NULL) {
		for (char *line = text.data; line && *line;) {
			long long v;
			if (sscanf(line, "oom_kill %lld", &v) == 1)
				kills = v;
			line = strchr(line, '\n');
			if (line)
				line++;
		}
	}
	buf_free(&text);
	return kills;
}

void shim_exit_check_oom(struct shim *shim)
{
	_cleanup_free_ char *config = fs_path("%s/config.json", shim->cfg.bundle);
	struct berth_buf doc = BERTH_BUF_INIT;
	yajl_val root = NULL;
	if (config != NULL && fs_read_file(config, &doc, 16u << 20, NULL) == 0 && doc.data != NULL)
		root = json_parse(doc.data, doc.len, NULL);
	buf_free(&doc);
	const char *cgroup = json_get_string(json_get(root, "linux"), "cgroupsPath");
	FILE *mounts = cgroup && cgroup[0] == '/' && !strstr(cgroup, "..") ? fopen("/proc/self/mountinfo", "re") : NULL;
	char *line = NULL;
	size_t cap = 0;
	long long kills = 0;
	while (mounts != NULL && getline(&line, &cap, mounts) > 0) {
		char *sep = strstr(line, " - ");
		char fstype[32] = "", source[256] = "", super[1024] = "", mnt[4096];
		if (sep == NULL || sscanf(sep + 3, "%31s %255s %1023s", fstype, source, super) < 1 ||
		    sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		bool v2 = strcmp(fstype, "cgroup2") == 0;
		bool v1_memory = strcmp(fstype, "cgroup") == 0 && (strstr(super, ",memory") || strncmp(super, "memory", 6) == 0);
		if (!v2 && !v1_memory)
			continue;
		_cleanup_free_ char *dir = fs_path("%s%s", mnt, cgroup);
		if (dir != NULL)
			kills += oom_kills_in(dir, v2 ? "memory.events" : "memory.oom_control");
	}
	free(line);
	if (mounts != NULL)
		fclose(mounts);
	yajl_tree_free(root);
	if (kills > 0 && !shim->oom_killed) {
		shim->oom_killed = true;
		log_warn("container %s: the OOM killer killed %lld process%s of it (out of memory: the memory limit of "
			 "its instance was reached)",
			 shim->cfg.id, kills, kills == 1 ? "" : "es");
	}
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
