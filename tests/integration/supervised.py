"""A berth instance whose router berthd runs itself (berthd --listen): the
router is confined (unprivileged user, no capabilities, seccomp) and is
restarted by berthd when it dies. Shared by test_confinement.py and
test_router_supervision.py."""
import os
import pwd
import time

import berth_helpers as bh


class SupervisedBerth(bh.Berth):
    def __init__(self, **kw):
        try:
            pwd.getpwnam("berth")
        except KeyError:
            raise AssertionError("the system user berth (the router's) is missing: run `make router-user` "
                                 "(make run, make install and make integration do)")
        super().__init__(**kw)
        # berthd binds the port and hands it to the router it starts
        self.extra_berthd = ["--listen", "127.0.0.1:%d" % self.port] + self.extra_berthd
        # the unprivileged router must reach berthd's socket through RUN_DIR
        os.chmod(self.run_dir, 0o755)

    def start_router(self):
        self.router = None

        def ping():
            if self.berthd.poll() is not None:
                raise AssertionError("berthd exited with %s\n%s" % (self.berthd.returncode, self.log_tail()))
            try:
                return bh.http_request(self.port, "GET", "/ping", timeout=2)[0] == 200
            except OSError:
                return False
        bh.wait_until(ping, 15, "supervised router GET /ping 200")

    def router_pid(self):
        with open(os.path.join(self.run_dir, "router.pid")) as f:
            return int(f.read().strip())

    def alive(self):
        return self.berthd is not None and self.berthd.poll() is None

    def assert_serving(self):
        assert self.berthd.poll() is None, "berthd died\n%s" % self.log_tail()
        assert bh.http_request(self.port, "GET", "/ping", timeout=5)[0] == 200


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def make_supervised(made, **kw):
    inst = SupervisedBerth(**kw)
    made.append(inst)
    inst.start()
    return inst
