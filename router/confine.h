/* confine.h — the router gives up everything it does not need once its
 * sockets are open (the listening sockets come from berthd already bound;
 * berthd's and the shims' unix sockets are reachable through the router
 * user's group):
 *
 *   1. the capability bounding set is emptied (while still root);
 *   2. supplementary groups, then gid and uid become USER's (setresgid,
 *      setresuid: real, effective and saved), so it can never regain root;
 *   3. every capability set (permitted, effective, inheritable, ambient) is
 *      cleared with libcap;
 *   4. PR_SET_NO_NEW_PRIVS;
 *   5. a libseccomp allow-list of what an epoll server that passes file
 *      descriptors over unix sockets calls; anything else fails with EPERM
 *      (socket() only for AF_UNIX: the router opens no network sockets,
 *      it is handed them). Built with sanitizers, the few calls ASan and
 *      LeakSanitizer make at exit (clone, ptrace, wait4, openat, …) are
 *      allowed too.
 *
 * /proc/PID/status then shows Uid ≠ 0, CapEff/CapPrm/CapBnd 0, NoNewPrivs 1,
 * Seccomp 2. */
#ifndef BERTH_ROUTER_CONFINE_H
#define BERTH_ROUTER_CONFINE_H

#include "err.h"

int router_confine(const char *user, struct berth_err *err);

#endif
