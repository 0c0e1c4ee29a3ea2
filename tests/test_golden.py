"""Golden data: exact references and PyTorch's outputs, committed, so a change in either is a diff."""

from __future__ import annotations

import json

import numpy as np
import pytest

from actexport import catalog
from golden_data import DTYPES, GOLDEN, bits, record

IDS = [a.id for a in catalog.CATALOG]


@pytest.fixture(scope="module", params=DTYPES)
def golden(request):
    return request.param, json.loads((GOLDEN / f"{request.param}.json").read_text())


def test_golden_covers_the_catalog(golden):
    dtype, data = golden
    assert sorted(data) == sorted(IDS), f"regenerate with `python tests/golden_data.py` ({dtype})"


@pytest.mark.parametrize("act", catalog.CATALOG, ids=IDS)
def test_exact_reference_and_pytorch_match_the_golden_bits(golden, act):
    dtype, data = golden
    now, want = record(act, dtype), data[act.id]
    assert [ln.split()[0] for ln in now] == [ln.split()[0] for ln in want], "the seeded inputs changed"
    for column, what in ((1, "the exact reference"), (2, "eager PyTorch")):
        changed = [f"x={a.split()[0]}: {b.split()[column]} -> {a.split()[column]}"
                   for a, b in zip(now, want) if a.split()[column] != b.split()[column]]
        assert not changed, (f"{act.id} {dtype}: {what} changed at {len(changed)} input(s): {changed[:4]}; "
                             "look at it, then regenerate with `python tests/golden_data.py`")


def test_bits_are_raw_dtype_words():
    assert bits(np.array([1.0, -0.0], np.float32)) == ["3f800000", "80000000"]
