"""A run's life outside its work: the run's temporary folder and its removal however the run ends,
SIGTERM and Ctrl-C, the plugins every process imports, and deadlines on code this process runs.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager

MAX_TIMEOUT = 86400.0  # a day: a deadline must be a number the clock can reach


class Terminated(BaseException):
    """SIGTERM arrived (CI cancelled the job or ran out of time): unwind, close the workers, clean up."""


def report_stop(e: BaseException) -> int:
    """Says in one line that a signal stopped the run (KeyboardInterrupt or Terminated); its exit code."""
    import sys

    what, sig, code = ("terminated", "SIGTERM", 143) if isinstance(e, Terminated) else ("interrupted", "SIGINT", 130)
    print(f"actexport: {what} ({sig}); the run stopped there and is not a pass", file=sys.stderr)
    return code


def begin_run() -> None:
    """Readies this process for a run with worker processes that leaves nothing behind, however it ends.

    Every temporary file of the run (multiprocessing's sockets included) goes in one folder, removed
    at exit; SIGTERM unwinds like an exception (Terminated) so that the workers are closed; and if
    this process is killed outright, the forkserver, which exits when it does, removes the folder
    (see _clean_up_after) and its workers die with it (see _die_with_parent).
    """
    import shutil
    import tempfile
    from multiprocessing import util
    run_dir = tempfile.mkdtemp(prefix="actexport-")
    os.environ["ACTEXPORT_RUN_DIR"], os.environ["ACTEXPORT_RUN_OWNER"] = run_dir, str(os.getpid())
    # NOTE: multiprocessing puts its forkserver's socket in the temporary folder, and a socket's path
    # has at most ~104 bytes: under a long $TMPDIR, its folder stays where it was (and may be left
    # behind by a killed run).
    if len(os.path.join(run_dir, "pymp-xxxxxxxx", "listener-xxxxxxxx")) < 100:
        tempfile.tempdir = run_dir
    # NOTE: after multiprocessing's own clean-up (priority -100), which removes its folder in this one
    util.Finalize(None, shutil.rmtree, args=(run_dir, True), exitpriority=-101)

    def terminated(*_):
        raise Terminated()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, terminated)


def remove_at_exit(path) -> None:
    """Removes the folder `path` when this process exits, and, in a run (begin_run), when it is killed:
    the run's forkserver removes it then."""
    import shutil
    from multiprocessing import util
    util.Finalize(None, shutil.rmtree, args=(str(path), True), exitpriority=-101)
    run_dir = os.environ.get("ACTEXPORT_RUN_DIR")
    if run_dir and os.path.isdir(run_dir):
        with open(os.path.join(run_dir, "remove"), "a") as f:
            f.write(os.fspath(path) + "\n")


def _remove_listed(run_dir: str) -> None:
    import shutil
    try:
        with open(os.path.join(run_dir, "remove")) as f:
            listed = f.read().splitlines()
    except OSError:
        listed = []
    for path in listed:
        if os.path.basename(path).startswith(".actexport-"):  # NOTE: only what remove_at_exit wrote
            shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(run_dir, ignore_errors=True)


def _clean_up_after() -> None:
    """In the forkserver of a run (begin_run): remove the run's folder when the forkserver exits, which
    it does when the process that started it is gone, however that process ended."""
    import sys
    run_dir, owner = os.environ.get("ACTEXPORT_RUN_DIR"), os.environ.get("ACTEXPORT_RUN_OWNER", "")
    forkserver = "multiprocessing.forkserver" in sys.modules and sys.argv[:1] == ["-c"]
    # NOTE: not "is my parent the owner": the owner may already be gone when this runs (killed while
    # the forkserver was still importing torch); only the run's own forkserver has this environment.
    if forkserver and run_dir and owner.isdigit() and os.path.basename(run_dir).startswith("actexport-"):
        import atexit
        atexit.register(_remove_listed, run_dir)


def plugins() -> list[str]:
    """$ACTEXPORT_PLUGINS: comma-separated modules every process imports before any work (to
    register the custom ops a model needs, e.g. `torch.library` definitions)."""
    return [m.strip() for m in os.environ.get("ACTEXPORT_PLUGINS", "").split(",") if m.strip()]


def load_plugins(names: list[str]) -> None:
    import importlib
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001  (any failure of the user's module is a usage error)
            from actexport.catalog import UsageError
            raise UsageError(f"plugin {name!r} ($ACTEXPORT_PLUGINS) failed to import: {type(e).__name__}: "
                             f"{str(e)[:200]}") from None


def probe_plugins(names: list[str], timeout: float) -> None:
    """Imports the plugins in a separate process first: one that crashes the interpreter (a
    segfault in a custom op library) would otherwise end this process silently."""
    import subprocess
    import sys

    from actexport.catalog import UsageError
    if not names:
        return
    code = "import importlib, sys\nfor n in sys.argv[1:]: importlib.import_module(n)"
    try:
        proc = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, timeout=timeout,
                              check=False, env={k: v for k, v in os.environ.items() if not k.startswith("ACTEXPORT_RUN")})
    except subprocess.TimeoutExpired:
        raise UsageError(f"importing plugin(s) {', '.join(names)} ($ACTEXPORT_PLUGINS) did not finish in "
                         f"{timeout:g} s") from None
    if proc.returncode < 0:
        raise UsageError(f"importing plugin(s) {', '.join(names)} ($ACTEXPORT_PLUGINS): the process was "
                         f"{describe_exit(proc.returncode)}")


class DeadlineExpired(BaseException):
    """A block ran past its deadline. A BaseException, so that the `except Exception` which keeps
    one failing cell from stopping a run (and torch.onnx's own retries) cannot swallow it."""


@contextmanager
def deadline(seconds: float, what: str):
    """Raises DeadlineExpired when the block runs longer than `seconds` (main thread on POSIX;
    elsewhere the block runs without one). For user code this process must run itself: a factory,
    or a --module run."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(*_):
        raise DeadlineExpired(f"{what} did not finish within {seconds:g} s (--timeout)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def describe_exit(code: int | None) -> str:
    """'killed by SIGSEGV (signal 11)' or 'exited with code 3'."""
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name} (signal {-code})"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def check_timeout(seconds: float) -> float:
    """`seconds`, or UsageError when it is not a deadline a clock can reach."""
    from actexport.catalog import UsageError
    if not 0 < seconds <= MAX_TIMEOUT:
        raise UsageError(f"invalid --timeout {seconds:g}: give seconds in (0, {MAX_TIMEOUT:g}]")
    return seconds


_clean_up_after()  # NOTE: does something only when imported by a run's forkserver (isolate.PRELOAD)
