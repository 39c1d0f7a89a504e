/* confine.c — see confine.h. */
#include "confine.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

#if defined(__SANITIZE_ADDRESS__)
#define CONFINE_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CONFINE_SANITIZER 1
#endif
#endif

static const char *const allowed[] = {
	/* event loop, timers, signals */
	"epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "timerfd_create", "timerfd_settime",
	"timerfd_gettime", "signalfd4", "eventfd2", "rt_sigprocmask", "rt_sigaction", "rt_sigreturn", "sigaltstack",
	"restart_syscall",
	/* I/O on what it holds */
	"read", "write", "readv", "writev", "pread64", "close", "fcntl", "ioctl", "dup", "dup3", "pipe2", "lseek",
	"fstat", "newfstatat", "splice",
	/* the batched socket I/O (loop.h, iobatch.h): only entering a ring
	 * made before confinement; no new rings, no registered buffers or files */
	"io_uring_enter",
	/* sockets: accept clients, talk to berthd and the shims, pass fds */
	"accept", "accept4", "connect", "sendmsg", "recvmsg", "sendto", "recvfrom", "shutdown", "setsockopt",
	"getsockopt", "getsockname", "getpeername",
	/* memory, threads' bookkeeping, time */
	"brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "futex", "set_robust_list", "rseq", "getrandom",
	"clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday", "sched_yield",
	/* identity and exit */
	"getpid", "gettid", "getuid", "geteuid", "getgid", "getegid", "tgkill", "exit", "exit_group",
};

#ifdef CONFINE_SANITIZER
/* ASan's reports and LeakSanitizer's stop-the-world at exit */
static const char *const allowed_sanitizer[] = {
	"clone", "clone3", "ptrace", "wait4", "getdents", "getdents64", "openat", "open", "readlink", "readlinkat", "prctl",
	"sched_getaffinity", "getppid", "kill", "tkill", "mincore", "uname", "prlimit64", "getrlimit", "statfs",
	"fstatfs", "access", "faccessat", "faccessat2", "pipe", "stat", "lstat",
};
#endif

static int add_rules(scmp_filter_ctx ctx, const char *const *names, size_t n, struct berth_err *err)
{
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (r < 0)
			return berth_err_set(err, -r, "seccomp: allowing %s", names[i]);
	}
	return 0;
}

static int load_filter(struct berth_err *err)
{
	uint32_t deflt = getenv("BERTH_ROUTER_SECCOMP_LOG") ? SCMP_ACT_LOG : SCMP_ACT_ERRNO(EPERM);
	scmp_filter_ctx ctx = seccomp_init(deflt);
	if (ctx == NULL)
		return berth_err_set(err, ENOMEM, "seccomp_init");
	int r = add_rules(ctx, allowed, sizeof(allowed) / sizeof(allowed[0]), err);
#ifdef CONFINE_SANITIZER
	if (r == 0)
		r = add_rules(ctx, allowed_sanitizer, sizeof(allowed_sanitizer) / sizeof(allowed_sanitizer[0]), err);
#endif
	int e;
	if (r == 0 && (e = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
					    SCMP_A0(SCMP_CMP_EQ, AF_UNIX))) < 0)
		r = berth_err_set(err, -e, "seccomp: allowing socket(AF_UNIX)");
	if (r == 0 && (e = seccomp_load(ctx)) < 0)
		r = berth_err_set(err, -e, "seccomp_load");
	seccomp_release(ctx);
	return r;
}

int router_confine(const char *user, struct berth_err *err)
{
	struct passwd *pw = getpwnam(user);
	if (pw == NULL)
		return berth_err_set(err, errno, "--user %s: no such user", user);
	if (pw->pw_uid == 0)
		return berth_err_set(err, 0, "--user %s is root; the router must run unprivileged", user);
	uid_t uid = pw->pw_uid;
	gid_t gid = pw->pw_gid;
	if (geteuid() == 0) {
		/* the bounding set can only be emptied while CAP_SETPCAP is held */
		for (int c = 0; c <= cap_max_bits() - 1; c++)
			if (cap_drop_bound((cap_value_t)c) < 0 && errno != EINVAL)
				return berth_err_set(err, errno, "dropping capability %d from the bounding set", c);
		if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
			return berth_err_set(err, errno, "switching to user %s (uid %u)", user, (unsigned)uid);
	} else if (geteuid() != uid) {
		return berth_err_set(err, EPERM, "cannot switch to user %s: not started as root", user);
	}
	cap_t none = cap_init();
	if (none == NULL)
		return berth_err_set(err, errno, "cap_init");
	int r = cap_set_proc(none);
	cap_free(none);
	if (r < 0)
		return berth_err_set(err, errno, "clearing the capability sets");
	if (CAP_AMBIENT_SUPPORTED() && cap_reset_ambient() < 0)
		return berth_err_set(err, errno, "clearing the ambient capabilities");
	/* a uid change made it undumpable; LeakSanitizer needs to ptrace itself */
#ifdef CONFINE_SANITIZER
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return berth_err_set(err, errno, "PR_SET_NO_NEW_PRIVS");
	if (load_filter(err) < 0)
		return -1;
	log_info("confined: user %s (uid %u gid %u), no capabilities, no_new_privs, seccomp filter", user,
		 (unsigned)uid, (unsigned)gid);
	return 0;
}
