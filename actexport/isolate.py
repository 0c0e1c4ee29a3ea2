"""Work that can crash or hang runs in worker processes: a segfault, abort or timeout is an outcome.

Exporters and runtimes are native code (onnxruntime, the TorchScript and torch.export loaders,
custom ops): one of them can kill its process or never return. `Workers` runs tasks in processes
forked from a forkserver that has torch and onnxruntime already imported (so a new or replacement
worker starts in milliseconds), waits for each with a deadline, and reports a crash or a timeout as
the task's outcome; the other tasks go on in a fresh worker. `Inline` has the same interface and runs
tasks in this process (for debugging, and for tests that patch code in this process).
"""

from __future__ import annotations

import heapq
import itertools
import multiprocessing as mp
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, TypeVar

from actexport.files import error_text
from actexport.lifecycle import describe_exit, load_plugins, plugins

if TYPE_CHECKING:
    from multiprocessing.context import ForkServerContext, SpawnContext

DEFAULT_TIMEOUT = 300.0  # seconds for one export or one cell
# Imported once by the forkserver, inherited by every worker it forks.
PRELOAD = ["actexport.isolate", "torch", "numpy", "onnx", "onnxruntime", "onnx.reference",
           "torch._export.serde.serialize", "actexport.catalog", "actexport.tasks", "actexport.runtimes.onnxrt",
           "actexport.runtimes.torch_common"]


@dataclass(frozen=True)
class Task:
    fn: Callable  # a module-level function (it is pickled by reference)
    args: tuple
    tag: object  # the caller's key, returned with the outcome
    timeout: float = DEFAULT_TIMEOUT
    priority: int = 0  # lower first
    fresh: bool = False  # run in a process that has run nothing else, and retire it afterwards


@dataclass(frozen=True)
class Outcome:
    tag: object
    value: object = None
    failure: str | None = None  # set when the task crashed, hung or raised: the reason, one line
    seconds: float = 0.0


def _context() -> ForkServerContext | SpawnContext:
    # NOTE: every worker hashes strings with one seed: TorchScript orders a class's attributes by
    # Python's set order, so scripting under another seed writes other bytes. The forkserver (and
    # a spawned worker) reads this when it starts; this process's own hashing is not changed.
    os.environ["PYTHONHASHSEED"] = "0"
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return mp.get_context("spawn")  # NOTE: no forkserver (Windows): each worker imports everything itself


def worker_memory(workers: int) -> int | None:
    """Bytes of data one of `workers` worker processes may allocate: $ACTEXPORT_WORKER_MEMORY (GiB; 0
    for no limit), else three quarters of this machine's memory shared between them. None on a
    machine with an NVIDIA driver (the CUDA runtime maps memory the limit would count) or without
    the limit (not Linux)."""
    import sys
    value = os.environ.get("ACTEXPORT_WORKER_MEMORY", "").strip()
    if value:
        try:
            gib = float(value)
        except ValueError:
            gib = -1.0
        if not 0 <= gib < 1 << 20:
            from actexport.catalog import UsageError
            raise UsageError(f"invalid $ACTEXPORT_WORKER_MEMORY {value[:20]!r}: give GiB per worker (0: no limit)")
        return int(gib * (1 << 30)) or None
    if not sys.platform.startswith("linux") or os.path.exists("/dev/nvidiactl"):
        return None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None
    return max(1 << 30, total * 3 // 4 // workers)


def _limit_memory(limit: int | None) -> None:
    """Caps this worker's data (RLIMIT_DATA: heap and private mappings): an artifact that asks for more
    fails its own cell with MemoryError instead of taking the machine."""
    if not limit:
        return
    try:
        import resource
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        resource.setrlimit(resource.RLIMIT_DATA, (min(limit, hard) if hard != resource.RLIM_INFINITY else limit, hard))
    except (ImportError, ValueError, OSError):
        return


def _die_with_parent() -> None:
    """A worker is killed when its forkserver exits (Linux): a worker stuck on a bad artifact must not
    outlive a cancelled run."""
    import sys
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # NOTE: the parent died before prctl took effect
        os._exit(1)


def warm_up() -> None:
    """Starts the forkserver (it imports PRELOAD in the background) so the first worker is ready sooner."""
    ctx = _context()
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver
        forkserver.ensure_running()


def _serve(conn, plugin_names: list[str], memory: int | None = None) -> None:
    """A worker's loop: run (fn, args), send ("ok", value) or ("raised", text); stop on None."""
    import queue

    import torch
    _die_with_parent()
    _limit_memory(memory)
    load_plugins(plugin_names)
    # NOTE: one intra-op thread: the workers already use every core between them.
    torch.set_num_threads(1)
    # NOTE: tasks are read by a thread of their own, always: the caller sends tasks ahead (DEPTH)
    # while this worker may be sending a large result, and two blocking sends facing each other
    # over full socket buffers would wait forever.
    inbox: queue.SimpleQueue = queue.SimpleQueue()

    def read() -> None:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                msg = None
            inbox.put(msg)
            if msg is None:
                return

    threading.Thread(target=read, name="actexport-inbox", daemon=True).start()
    while True:
        msg = inbox.get()
        if msg is None:
            return
        fn, args = msg
        try:
            reply = ("ok", fn(*args))
        except BaseException as e:  # noqa: BLE001  (reported as the task's outcome)
            reply = ("raised", f"{error_text(e, 500)}")
        try:
            try:
                conn.send(reply)
            except OSError:
                raise
            except Exception as e:  # noqa: BLE001  (the value could not be pickled)
                conn.send(("raised", f"{error_text(e, 500)}"))
        except OSError:  # the caller is gone (killed, say): nobody to answer, nothing to report
            return


_O = TypeVar("_O", bound="Outcome | None")

DEPTH = 2  # tasks sent to a worker ahead of their turn (see Workers.poll)


@dataclass
class _Worker:
    ctx: ForkServerContext | SpawnContext
    proc: BaseProcess | None = None
    conn: Connection | None = None
    sent: deque = field(default_factory=deque)  # the queue entries sent, in order; sent[0] runs
    started: float = 0.0  # when sent[0] began (as far as this process can tell)
    used: bool = False  # has run a task since it started
    parked: tuple | None = None  # the process set aside while a fresh one runs a task
    memory: int | None = None  # bytes of data the process may allocate (see worker_memory)

    @property
    def task(self) -> Task:
        """The task running now (sent[0]); asked only while one is sent."""
        return self.sent[0][2]

    def takes(self, task: Task) -> bool:
        """Whether this worker can be sent `task` now: a fresh task needs an idle worker, and
        nothing is sent behind one (its process retires afterwards)."""
        if not self.sent:
            return True
        return len(self.sent) < DEPTH and not task.fresh and not self.task.fresh

    def submit(self, entry: tuple) -> None:
        task = entry[2]
        if task.fresh and self.used:
            # NOTE: the warmed-up process waits aside (its imports cost seconds) while a new one runs the task.
            self.parked, self.proc, self.conn = (self.proc, self.conn), None, None
        if not self.sent and self.proc is not None and not self.proc.is_alive():
            self._drop_dead()
        if self.proc is None:
            parent, child = self.ctx.Pipe()
            self.proc = self.ctx.Process(target=_serve, args=(child, plugins(), self.memory), daemon=True,
                                         name="actexport-worker")
            self.proc.start()
            child.close()
            self.conn, self.used = parent, False
        assert self.conn is not None  # the process's pipe, opened with it
        self.conn.send((task.fn, task.args))
        if not self.sent:
            self.started = time.monotonic()
        self.sent.append(entry)
        self.used = True

    def collect(self) -> tuple[Outcome, list[tuple]]:
        """The outcome of the running task, and the entries sent after it that must be queued again
        (the process died before it reached them)."""
        task, seconds = self.sent.popleft()[2], time.monotonic() - self.started
        assert self.proc is not None and self.conn is not None  # the task was sent to them
        try:
            kind, value = self.conn.recv()
        except (EOFError, OSError):
            self.proc.join(timeout=5)
            why = describe_exit(self.proc.exitcode)
            return Outcome(task.tag, failure=f"worker process {why}", seconds=seconds), self._drop()
        self.started = time.monotonic()  # NOTE: the next task sent began when this one ended
        if task.fresh:
            self._retire()  # NOTE: whatever the task left in the process goes with it
        if kind == "raised":
            return Outcome(task.tag, failure=f"raised {value}", seconds=seconds), []
        return Outcome(task.tag, value, seconds=seconds), []

    def lost(self, entry: tuple, error: OSError) -> tuple[Outcome | None, list[tuple]]:
        """`entry` could not be sent: the process is gone. A task running there fails when it is
        collected; `entry` fails only when the process had nothing else to do (it died on start)."""
        if self.sent:
            return None, [entry]
        if self.proc is not None:
            self.proc.join(timeout=5)
        why = describe_exit(self.proc.exitcode if self.proc is not None else None)
        requeue = self._drop()
        task = entry[2]
        return Outcome(task.tag, failure=f"worker process {why} before it took the task ({type(error).__name__})"), requeue

    def kill(self) -> tuple[Outcome, list[tuple]]:
        task, seconds = self.sent.popleft()[2], time.monotonic() - self.started
        assert self.proc is not None  # the task was sent to it
        self.proc.kill()
        self.proc.join(timeout=5)
        requeue = self._drop()
        return Outcome(task.tag, failure=f"timed out after {task.timeout:g} s (worker killed)", seconds=seconds), requeue

    def _drop(self) -> list[tuple]:
        """Forgets the process; returns the entries it had been sent and never ran."""
        requeue = list(self.sent)
        self.sent.clear()
        if self.conn is not None:
            self.conn.close()
        self.proc, self.conn = None, None
        if self.parked is not None:  # a fresh task's process is gone: the warmed-up one returns
            (self.proc, self.conn), self.parked = self.parked, None
        return requeue

    def _drop_dead(self) -> None:
        """Closes the pipe of a process that exited between tasks."""
        assert self.proc is not None  # submit() checked
        self.proc.join(timeout=1)
        if self.conn is not None:
            self.conn.close()
        self.proc, self.conn = None, None

    def _retire(self) -> None:
        """Stops the current process; a parked one (see submit) takes its place."""
        if self.proc is not None and self.proc.is_alive():
            assert self.conn is not None  # set with the process
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.proc.join(timeout=5)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join(timeout=5)
        self._drop()

    def close(self) -> None:
        self._retire()
        if self.proc is not None:  # the parked process came back: stop it too
            self._retire()


@dataclass
class Workers:
    """`size` worker processes; `submit` queues tasks, `poll` returns the outcomes that are ready."""

    size: int
    _queue: list = field(default_factory=list)
    _seq: itertools.count = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        ctx = _context()
        memory = worker_memory(max(1, self.size))
        self._workers = [_Worker(ctx, memory=memory) for _ in range(max(1, self.size))]

    def submit(self, task: Task) -> None:
        heapq.heappush(self._queue, (task.priority, next(self._seq), task))

    @property
    def busy(self) -> bool:
        return bool(self._queue) or any(w.sent for w in self._workers)

    def poll(self, timeout: float | None = None) -> list[Outcome]:
        """Starts queued tasks on idle workers; waits up to `timeout` (None: until one finishes)
        for outcomes; kills the workers of tasks past their deadline."""
        out = self._send_queued()
        running = [w for w in self._workers if w.sent]
        if not running:
            return out
        now = time.monotonic()
        deadline = min(w.started + w.task.timeout for w in running) - now
        limit = max(0.0, deadline if timeout is None else min(timeout, deadline))
        conns: list[Connection] = []
        for w in running:
            assert w.conn is not None  # a worker with tasks sent has its pipe
            conns.append(w.conn)
        ready = wait(conns, timeout=limit)
        for w in running:
            if w.conn in ready:
                out.append(self._requeue(*w.collect()))
        now = time.monotonic()
        for w in running:
            if w.sent and w.conn not in ready and now - w.started >= w.task.timeout:
                out.append(self._requeue(*w.kill()))
        return [o for o in out if o is not None] + self._send_queued()

    def _send_queued(self) -> list[Outcome]:
        """Sends queued tasks to the workers, up to DEPTH each.

        A worker runs a task that waits in its pipe as soon as it has sent the previous outcome: it
        does not wait for this process, which judges cells between polls (short tasks left the
        workers idle ~40% of a warm run without it).
        """
        failed: list[Outcome | None] = []
        for depth in range(DEPTH):
            for w in self._workers:
                if not self._queue or len(w.sent) > depth or not w.takes(self._queue[0][2]):
                    continue
                entry = heapq.heappop(self._queue)
                try:
                    w.submit(entry)
                except OSError as e:  # the process is gone (a plugin failed on start, say)
                    failed.append(self._requeue(*w.lost(entry, e)))
        return [o for o in failed if o is not None]

    def _requeue(self, outcome: _O, entries: list[tuple]) -> _O:
        for entry in entries:
            heapq.heappush(self._queue, entry)
        return outcome

    def close(self) -> None:
        for w in self._workers:
            w.close()
        self._queue.clear()


@dataclass
class Inline:
    """Runs tasks in this process, in priority order, one per poll (no crash or hang protection)."""

    _queue: list = field(default_factory=list)
    _seq: itertools.count = field(default_factory=itertools.count)

    def submit(self, task: Task) -> None:
        heapq.heappush(self._queue, (task.priority, next(self._seq), task))

    @property
    def busy(self) -> bool:
        return bool(self._queue)

    def poll(self, timeout: float | None = None) -> list[Outcome]:
        if not self._queue:
            return []
        task = heapq.heappop(self._queue)[2]
        start = time.monotonic()
        try:
            return [Outcome(task.tag, task.fn(*task.args), seconds=time.monotonic() - start)]
        except Exception as e:  # noqa: BLE001
            return [Outcome(task.tag, failure=f"raised {error_text(e, 500)}",
                            seconds=time.monotonic() - start)]

    def close(self) -> None:
        self._queue.clear()


def workers(size: int | None, isolate: bool = True) -> Workers | Inline:
    """Worker processes (default: one per core), or Inline when isolation is off."""
    if not isolate:
        return Inline()
    return Workers(size or default_workers())


def max_workers() -> int:
    """The most worker processes a run may start: four per core (each holds torch, ~0.4 GB)."""
    return 4 * (os.cpu_count() or 1)


def default_workers() -> int:
    """$ACTEXPORT_JOBS, else the cores this process may run on."""
    jobs = os.environ.get("ACTEXPORT_JOBS", "").strip()
    if jobs.isdigit():
        return min(max_workers(), max(1, int(jobs[-6:]) if len(jobs) <= 6 else max_workers()))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


__all__ = ["DEFAULT_TIMEOUT", "Inline", "default_workers", "Outcome", "Task", "Workers", "warm_up", "workers"]

