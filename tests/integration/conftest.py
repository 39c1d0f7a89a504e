"""Fixtures for berth's integration tests: real berthd, berth-router,
berth-shim and runc, driven with the real boto3 / aws CLI / nghttp / curl.

  berth        module-scoped instance (berthd + router on temp dirs and a free
               port, with keys: .admin_key, .invoke_key, .credentials_path);
               .sm / .rt boto3 clients signing with them, .restart_berthd(), .cli(...),
               teardown deletes every endpoint, stops both processes and
               asserts nothing leaked (berth_helpers.Berth.teardown).
  make_berth   factory for extra instances with other flags (function scope).
  supervised_berth  the same for instances whose berthd runs the router.
A module that needs other flags for its shared instance overrides `berth`
with `yield from bh.serve(...)`. Every test has TEST_TIMEOUT_S (below).

Run with Debian's python: BERTH_BUILD=/abs/build-san /usr/bin/python3 -m pytest tests/integration
"""
import signal

import pytest

import berth_helpers as bh

TEST_TIMEOUT_S = 150


@pytest.fixture(scope="module")
def berth():
    yield from bh.serve()


@pytest.fixture
def make_berth():
    """make_berth(**kw) starts another instance (Berth's keyword arguments)."""
    made = bh.Instances()
    yield made.make
    made.teardown()


@pytest.fixture
def supervised_berth():
    """supervised_berth(**kw) starts an instance whose berthd runs the
    (confined) router itself (bh.SupervisedBerth)."""
    made = bh.Instances(bh.SupervisedBerth)
    yield made.make
    made.teardown()


@pytest.fixture(autouse=True)
def _time_limit():
    """No test may run longer than TEST_TIMEOUT_S (pytest-timeout is not in
    Debian's python3-pytest set we rely on)."""
    def on_alarm(signum, frame):
        raise TimeoutError("test exceeded %d s" % TEST_TIMEOUT_S)
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On any failure, attach the stderr of every live berthd / router."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for inst in list(bh.LIVE):
            rep.sections.append(("berth logs (%s)" % inst.state_dir, inst.log_tail(200)))
