"""Captures what exporters print (Python warnings, logging, C++ output on fds 1 and 2)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator

_LOCK = threading.RLock()  # reentrant: a quiet() block may run another


class Captured:
    """The text captured inside a `quiet()` block; `text` is set when the block exits."""

    text: str = ""


@contextlib.contextmanager
def quiet() -> Iterator[Captured]:
    """Silences everything the block prints, down to the file descriptors, and keeps the text.

    Exporters write through Python warnings, loggers bound to the original sys.stderr, and C++
    streams; only redirecting fds 1 and 2 catches all three.
    """
    captured = Captured()
    py_out = io.StringIO()
    with _LOCK, tempfile.TemporaryFile(mode="w+b") as sink:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        saved = []
        for fd in (1, 2):
            try:
                saved.append((fd, os.dup(fd)))
                os.dup2(sink.fileno(), fd)
            except OSError:
                pass
        try:
            with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(
                py_out
            ), contextlib.redirect_stderr(py_out):
                warnings.simplefilter("always")
                yield captured
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            for fd, dup in saved:
                os.dup2(dup, fd)
                os.close(dup)
            sink.seek(0)
            fd_text = sink.read().decode("utf-8", "replace")
            lines = [f"{w.category.__name__}: {w.message}" for w in caught]
            captured.text = "\n".join(t for t in (py_out.getvalue(), fd_text, *lines) if t.strip())
