"""Golden data: exact references and PyTorch's outputs, committed, so a change in either is a diff."""

from __future__ import annotations

import json

import numpy as np
import pytest

from actexport import catalog
from actexport.compare import compare
from actexport.inputs import np_dtype
from golden_data import _UINT, DTYPES, GOLDEN, bits, record

IDS = [a.id for a in catalog.CATALOG]


@pytest.fixture(scope="module", params=DTYPES)
def golden(request):
    return request.param, json.loads((GOLDEN / f"{request.param}.json").read_text())


def test_golden_covers_the_catalog(golden):
    dtype, data = golden
    assert sorted(data) == sorted(IDS), f"regenerate with `python tests/golden_data.py` ({dtype})"


def _values(words: list[str], dtype: str) -> np.ndarray:
    return np.array([int(w, 16) for w in words], _UINT[np_dtype(dtype).itemsize]).view(np_dtype(dtype))


@pytest.mark.parametrize("act", catalog.CATALOG, ids=IDS)
def test_exact_reference_and_pytorch_match_the_golden_bits(golden, act):
    """The exact reference is the truth: bit for bit on every machine. PyTorch's kernels differ by CPU
    (ATEN_CPU_CAPABILITY default / avx2 / avx512, other vendors): a value may differ from the golden bits
    only within the dtype's ULP budget of them, or where it is now within budget of the exact value
    (e.g. GELU(+inf) is +inf on an AMD EPYC with AVX512, NaN on the Intel one that wrote the file), or
    closer to it than before; a value that moves away from the truth beyond the budget fails."""
    dtype, data = golden
    now, want = record(act, dtype), data[act.id]
    assert [ln.split()[0] for ln in now] == [ln.split()[0] for ln in want], "the seeded inputs changed"
    changed = [f"x={a.split()[0]}: {b.split()[1]} -> {a.split()[1]}"
               for a, b in zip(now, want) if a.split()[1] != b.split()[1]]
    assert not changed, (f"{act.id} {dtype}: the exact reference changed at {len(changed)} input(s): {changed[:4]}; "
                         "look at it, then regenerate with `python tests/golden_data.py`")
    x, exact, torch_now, torch_then = (_values([ln.split()[c] for ln in now], dtype) if c < 3 else
                                       _values([ln.split()[2] for ln in want], dtype) for c in (0, 1, 2, 3))
    bad = regressions(x, exact, torch_now, torch_then, act.budget(dtype))
    assert not bad, (f"{act.id} {dtype}: eager PyTorch moved beyond {act.budget(dtype).ulp} ULP of the golden bits, "
                     f"away from the exact value, at {len(bad)} input(s): {bad[:4]}; look at it, then regenerate "
                     "with `python tests/golden_data.py`")


def regressions(x, exact, now, then, budget) -> list[str]:
    """The inputs where `now` differs from the golden `then` beyond the budget, is not within budget of
    `exact` either, and is further from it than `then` was."""
    uint = _UINT[x.dtype.itemsize]
    return [f"x={float(x[i])!r}: {float(then[i])!r} -> {float(now[i])!r} (exact {float(exact[i])!r})"
            for i in np.flatnonzero(now.view(uint) != then.view(uint))
            if not (_within(now[i], then[i], x[i], budget) or _within(now[i], exact[i], x[i], budget)
                    or _closer(now[i], then[i], exact[i]))]


def _within(a, b, x, budget) -> bool:
    return compare(np.array([a]), np.array([b]), np.array([x]), budget).ok


def _closer(now, then, exact) -> bool:
    """Whether `now` is a number at least as close to `exact` as `then` was (a smaller error is no
    regression, whatever the budget)."""
    now, then, exact = (float(v) for v in (now, then, exact))
    if np.isnan(now) or np.isinf(now):
        return now == exact or (np.isnan(now) and np.isnan(exact))
    return np.isnan(then) or np.isinf(then) or abs(now - exact) <= abs(then - exact)


@pytest.mark.parametrize(("then", "now", "exact", "flagged"), [
    (np.nan, np.inf, np.inf, False),  # GELU(+inf): NaN on one CPU, +inf (right) on another
    (1.0, 1.0 + 2**-22, 1.0, False),  # 2 ULP of drift, within the 4 ULP budget
    (1.0, 1.0 + 2**-18, 1.0, True),  # 32 ULP away from the truth
    (-0.0, np.nan, -0.0, True),  # a new NaN
    (5e-8, 4e-8, 1e-8, False),  # still wrong, but closer
    (4e-8, 5e-8, 1e-8, True),  # wrong, and further away than before
])
def test_pytorch_may_differ_by_cpu_only_towards_the_truth(then, now, exact, flagged):
    v = [np.array([a], np.float32) for a in (1.0, exact, now, then)]
    assert bool(regressions(*v, catalog.DEFAULT_BUDGETS["float32"])) == flagged


def test_bits_are_raw_dtype_words():
    assert bits(np.array([1.0, -0.0], np.float32)) == ["3f800000", "80000000"]
