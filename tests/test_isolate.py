"""Crashes and hangs stay in their cell: a worker that aborts or never returns fails one cell only."""

from __future__ import annotations

import os
from pathlib import Path
import time

import pytest

import crashing_ops
from actexport.isolate import Task, Workers
from actexport.lifecycle import describe_exit
from actexport.verify import Options, verify


def test_describe_exit_names_the_signal():
    assert describe_exit(-6) == "killed by SIGABRT (signal 6)"
    assert describe_exit(3) == "exited with code 3"


def _run(size: int, *batches: list[Task]) -> dict:
    """Runs each batch of tasks to the end, one after the other, in `size` workers; outcomes by tag."""
    workers = Workers(size)
    outcomes = {}
    try:
        for batch in batches:
            for task in batch:
                workers.submit(task)
            while workers.busy:
                outcomes.update((o.tag, o) for o in workers.poll())
    finally:
        workers.close()
    return outcomes


def test_workers_report_crash_hang_and_exception_and_carry_on():
    outcomes = _run(2, [Task(fn, args, tag, timeout=2) for tag, fn, args in [
        ("abort", os.abort, ()), ("sleep", time.sleep, (60,)), ("raise", int, ("x",)), ("ok", abs, (-3,))]],
        [Task(abs, (-4,), "after")])  # a fresh worker takes over
    assert outcomes["abort"].failure == "worker process killed by SIGABRT (signal 6)"
    assert outcomes["sleep"].failure == "timed out after 2 s (worker killed)"
    assert outcomes["raise"].failure.startswith("raised ValueError: invalid literal")
    assert outcomes["ok"].value == 3 and outcomes["after"].value == 4


@pytest.mark.parametrize("module, reason", [
    (crashing_ops.Aborts, "torchscript:cpu worker process killed by SIGABRT (signal 6)"),
    (crashing_ops.Hangs, "torchscript:cpu timed out after 4 s (worker killed)"),
])
def test_a_runtime_that_crashes_or_hangs_fails_its_cell_and_the_matrix_finishes(monkeypatch, replace_row, module,
                                                                                reason):
    monkeypatch.setenv("ACTEXPORT_PLUGINS", "crashing_ops")  # the workers can load the custom op
    replace_row("relu", factory=module)
    report = verify(["relu", "sigmoid", "tanh"], Options(formats=("torchscript",), timeout=4))
    by = {(c.activation, c.runtime): c for c in report.cells}
    crashed = by["relu", "torchscript:cpu"]
    assert (crashed.status, crashed.stage, crashed.reason) == ("error", "run", reason)
    for act in ("sigmoid", "tanh"):  # verified after the crash, in a fresh worker
        assert by[act, "torchscript:cpu"].status == "pass" and by[act, "eager:cpu"].status == "pass"
    assert report.exit_code() == 1


def test_latency_does_not_reload_an_artifact_whose_cell_crashed(monkeypatch, replace_row):
    monkeypatch.setenv("ACTEXPORT_PLUGINS", "crashing_ops")
    replace_row("relu", factory=crashing_ops.Aborts)
    report = verify(["relu"], Options(formats=("torchscript",), latency=(1000,), timeout=30))
    (bench,) = report.latency
    (row,) = [r for r in bench.rows if r.runtime == "torchscript:cpu"]
    assert row.status == "unavailable" and "errored in verification" in row.reason


def test_an_export_that_times_out_is_an_error_never_a_declared_xfail(tmp_path, capsys):
    from actexport.cli import main

    # rrelu's ONNX export is declared impossible (dynamo); a timed-out export must not pass as that.
    assert main(["export", "rrelu", "--formats", "onnx", "--timeout", "0.01", "--no-cache",
                 "--out", str(tmp_path / "m")]) == 3
    err = capsys.readouterr().err
    assert "rrelu / onnx / float32: error: export failed: timed out after 0.01 s" in err


def test_tasks_sent_ahead_to_a_worker_that_dies_run_again_elsewhere():
    # One worker: the tasks behind the crash and the hang were already in its pipe (isolate.DEPTH).
    outcomes = _run(1, [Task(fn, args, tag, timeout=2) for tag, fn, args in [
        ("abort", os.abort, ()), ("after abort", abs, (-1,)), ("sleep", time.sleep, (60,)), ("after sleep", abs, (-2,))]])
    assert outcomes["abort"].failure == "worker process killed by SIGABRT (signal 6)"
    assert outcomes["sleep"].failure == "timed out after 2 s (worker killed)"
    assert (outcomes["after abort"].value, outcomes["after sleep"].value) == (1, 2)
    assert outcomes["after abort"].failure is None and outcomes["after sleep"].failure is None


_BOTH_WAYS = """
import numpy as np
from actexport.isolate import Task, Workers

if __name__ == "__main__":
    workers = Workers(1)
    big = np.zeros(4_000_000)  # 32 MB each way: far past any socket buffer
    for n in range(4):
        workers.submit(Task(np.asarray, (big,), n, timeout=50))
    done = []
    while workers.busy:
        done += [o.tag for o in workers.poll() if o.failure is None and o.value.shape == big.shape]
    workers.close()
    print(sorted(done))
"""


def test_large_tasks_sent_ahead_while_a_large_result_comes_back_do_not_deadlock(tmp_path):
    import signal
    import subprocess
    import sys

    script = tmp_path / "both_ways.py"
    script.write_text(_BOTH_WAYS)
    # NOTE: a process of its own: a deadlock takes no CPU and never ends, so it is killed (with its
    # forkserver and worker) after a deadline far above the ~5 s this takes.
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("deadlock: the worker and the caller were each blocked sending to the other")
    assert out.strip() == "[0, 1, 2, 3]"


def _run_processes(run_tmp) -> list[int]:
    """Processes whose environment names a run folder under run_tmp (the forkserver and its workers)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(v.startswith(f"ACTEXPORT_RUN_DIR={run_tmp}".encode()) for v in env):
            found.append(int(proc.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the run's processes through /proc (Linux)")
@pytest.mark.parametrize("sig, code, line", [
    ("SIGTERM", 143, "actexport: terminated (SIGTERM); the run stopped there and is not a pass"),
    ("SIGINT", 130, "actexport: interrupted (SIGINT); the run stopped there and is not a pass"),
    ("SIGKILL", -9, None),
])
def test_a_cancelled_run_leaves_no_process_and_no_temporary_folder(sig, code, line):
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="cancel-", dir="/tmp"))  # NOTE: short: a socket's path is at most ~104 bytes
    env = {**os.environ, "TMPDIR": str(tmp)}
    try:
        _cancel(env, tmp, sig, code, line)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _cancel(env, tmp, sig, code, line):
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "actexport", "verify", "--all", "--no-cache", "--quiet"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(_run_processes(tmp)) < 2 and time.monotonic() < deadline:  # the forkserver and a worker at work
        time.sleep(0.2)
    assert len(_run_processes(tmp)) >= 2, f"the run never started its workers: {proc.poll()}"
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code
    if line is not None:
        assert err.strip().splitlines() == [line]
    deadline = time.monotonic() + 10
    while (_run_processes(tmp) or [p.name for p in tmp.iterdir() if p.name.startswith("actexport-")]) and \
            time.monotonic() < deadline:
        time.sleep(0.2)
    assert _run_processes(tmp) == []
    assert [p.name for p in tmp.iterdir() if p.name.startswith(("actexport-", "pymp-"))] == []


def test_a_worker_that_asks_for_too_much_memory_fails_its_task_only(monkeypatch):
    monkeypatch.setenv("ACTEXPORT_WORKER_MEMORY", "1.5")  # GiB: torch and onnxruntime take ~0.5 of it
    outcomes = _run(1, [Task(crashing_ops.allocate, (3 << 30,), "big", timeout=60),  # fits this machine, not the limit
                        Task(abs, (-5,), "after", timeout=60)])
    assert outcomes["big"].failure.startswith("raised MemoryError")
    assert outcomes["after"].value == 5
