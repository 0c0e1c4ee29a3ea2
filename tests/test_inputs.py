"""Input batteries: the edge values every user worries about, per dtype, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from actexport import catalog
from actexport.inputs import batteries, boundary_values, finfo, special_values, to_numpy, to_torch

DTYPES = ["float16", "bfloat16", "float32", "float64"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values_cover_nan_inf_signed_zero_subnormal_and_max(dtype):
    v = special_values(dtype)
    assert v.dtype.name == dtype
    v64 = v.astype(np.float64)
    fi = finfo(dtype)
    assert np.isnan(v64).any()
    assert {np.inf, -np.inf} <= set(v64[np.isinf(v64)])
    zeros = v64[v64 == 0]
    assert np.signbit(zeros).any() and (~np.signbit(zeros)).any()
    assert float(fi.smallest_subnormal) in v64 and -float(fi.smallest_subnormal) in v64
    assert float(fi.max) in v64 and float(fi.smallest_normal) in v64
    sub = v64[(np.abs(v64) > 0) & (np.abs(v64) < float(fi.smallest_normal))]
    assert sub.size >= 4  # smallest and largest subnormal, both signs


def test_boundaries_come_with_their_float_neighbours():
    act = catalog.get("relu6")
    b = boundary_values(act, "float32")
    assert 6.0 in b and 0.0 in b
    assert np.nextafter(np.float32(6), np.float32(7)) in b
    assert np.nextafter(np.float32(6), np.float32(5)) in b


@pytest.mark.parametrize("act", [catalog.get(i) for i in ("glu", "prelu_3ch", "softmax2d", "relu")], ids=str)
def test_batteries_keep_static_dims_and_grow_dynamic_ones(act):
    random, grid, edges, line = batteries(act, "float32")
    for i, d in enumerate(act.shape):
        if i in act.static_dims:
            assert random.x.shape[i] == d
        else:
            assert random.x.shape[i] == 2 * d  # a shape the artifact was not exported with
    for b in (grid, edges, line):
        assert b.x.shape[1:] == act.shape[1:]
    assert np.isnan(edges.x).any() and np.isinf(edges.x).any()


def test_batteries_are_seeded():
    a, b = batteries(catalog.get("gelu"), "float32"), batteries(catalog.get("gelu"), "float32")
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.x, y.x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_round_trip_keeps_bits(dtype):
    v = special_values(dtype)
    back = to_numpy(to_torch(v))
    assert back.dtype == v.dtype
    assert back.tobytes() == v.tobytes()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_the_line_holds_every_16_bit_value(dtype):
    line = {b.name: b for b in batteries(catalog.get("elu"), dtype)}["line"].x
    words = np.unique(line.reshape(-1).view(np.uint16))
    assert words.size == 1 << 16


def test_the_line_visits_every_binade_of_float32_and_closes_in_on_declared_ends():
    act = catalog.get("elu")  # declared in [-0.134, 0) on onnxruntime
    line = {b.name: b for b in batteries(act, "float32")}["line"].x.reshape(-1).astype(np.float64)
    finite = line[np.isfinite(line) & (line != 0)]
    exponents = set(np.frexp(np.abs(finite))[1].tolist())
    assert set(range(-125, 129)) <= exponents  # every normal binade (frexp counts from 2^-1)
    assert (finite > 0).any() and (finite < 0).any()
    assert np.sum(np.abs(finite + 0.134) < 0.134 * 2.0**-10) >= 8  # dense next to the declared end


def test_glu_pairs_every_gate_with_a_large_a():
    act = catalog.get("glu")
    line = {b.name: b for b in batteries(act, "float16")}["line"].x
    a, b = np.split(line.astype(np.float64), 2, axis=-1)
    big = a == np.float16(65504 / 4)
    assert big.any() and np.unique(b[big].view(np.uint64)).size > 60000  # every gate beside the large a
