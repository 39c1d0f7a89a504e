"""Stopping containers (shim/stop.c): SIGTERM, then SIGKILL after the stop
timeout — except for a container whose init would never see SIGTERM."""
import berth_helpers as bh


def test_init_without_sigterm_handler_is_not_waited_for(berth):
    """An init that neither catches nor blocks SIGTERM never receives it
    (the kernel drops it for a namespace's init): DeleteEndpoint must not
    wait out the 30 s stop timeout for nothing (issue 11, item 6)."""
    _m, _c, ep = bh.create_endpoint_stack(
        berth.sm, "term-default", primary=bh.container(env={"ECHO_TERM_DEFAULT": "1"}), inst=berth)
    assert berth.rt.invoke_endpoint(EndpointName=ep, Body=b"up")["Body"].read() == b"up"
    pid = berth.running_pid(ep)
    status = bh.proc_status(pid)
    assert status["NSpid"].split()[-1] == "1"
    assert not (int(status["SigCgt"], 16) >> 14) & 1 and not (int(status["SigBlk"], 16) >> 14) & 1
    berth.sm.delete_endpoint(EndpointName=ep)
    # well within the 30 s stop timeout; the timeout itself is still waited
    # for a container that sees SIGTERM and ignores it (test_update, test_crash)
    berth.wait_endpoint_gone(ep, timeout=10)
    berth.sm.delete_endpoint_config(EndpointConfigName="term-default-cfg")
    berth.sm.delete_model(ModelName="term-default")
    berth.assert_serving()
