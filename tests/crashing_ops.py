"""Test-only custom ops that crash or hang inside actexport's worker processes (and nowhere else).

Imported by the workers through $ACTEXPORT_PLUGINS. Outside a worker they return their input, so
the test process can build, script and export modules that use them.
"""

from __future__ import annotations

import multiprocessing
import os
import time

import torch
from torch import nn


def _in_worker() -> bool:
    return multiprocessing.current_process().name == "actexport-worker"


@torch.library.custom_op("actexport_test::abort_in_worker", mutates_args=())
def abort_in_worker(x: torch.Tensor) -> torch.Tensor:
    if _in_worker():
        os.abort()
    return x.clone()


@torch.library.custom_op("actexport_test::hang_in_worker", mutates_args=())
def hang_in_worker(x: torch.Tensor) -> torch.Tensor:
    if _in_worker():
        time.sleep(3600)
    return x.clone()


@abort_in_worker.register_fake
def _(x):
    return torch.empty_like(x)


@hang_in_worker.register_fake
def _(x):
    return torch.empty_like(x)


class Aborts(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.actexport_test.abort_in_worker(x)


class Hangs(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.actexport_test.hang_in_worker(x)


def allocate(n: int) -> int:
    """Asks for n bytes (zeros: the pages are not touched) and returns how many it got."""
    return len(bytearray(n))
