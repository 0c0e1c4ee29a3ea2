"""The comparison arithmetic: ULP counting must be exact, around zero, subnormals and infinity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actexport.catalog import Budget
from actexport.compare import across_devices, compare, merge, ordered, semantics, ulp_distance
from actexport.inputs import finfo, np_dtype

DTYPES = ["float16", "bfloat16", "float32", "float64"]
TIGHT = Budget(ulp=0, atol=0.0)


def _all_16bit(dtype: str) -> np.ndarray:
    """Every finite value of a 16-bit float type, in increasing order, -0 dropped."""
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    v = bits.view(np_dtype(dtype))
    with np.errstate(invalid="ignore"):  # NaN payloads
        v64 = v.astype(np.float64)
    keep = np.isfinite(v64) & ~((v64 == 0) & np.signbit(v64))
    return v[keep][np.argsort(v64[keep], kind="stable")]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_ordered_steps_by_one_through_every_16bit_value(dtype):
    o = ordered(_all_16bit(dtype))
    assert np.all(np.diff(o) == 1)
    assert o[0] == -o[-1]


@pytest.mark.parametrize("dtype", DTYPES)
def test_ulp_distance_around_zero_and_subnormals(dtype):
    dt = np_dtype(dtype)
    fi = finfo(dtype)
    sub = np.array(fi.smallest_subnormal, dt)
    zero, neg_zero = np.array(0.0, dt), np.array(-0.0, dt)
    assert ulp_distance(zero, neg_zero) == 0
    assert ulp_distance(zero, sub) == 1
    assert ulp_distance(-sub, sub) == 2
    assert ulp_distance(neg_zero, -sub) == 1
    normal = np.array(fi.smallest_normal, dt)
    below = np.nextafter(normal, zero) if dtype != "bfloat16" else (normal.astype(np.float32) - sub.astype(np.float32)).astype(dt)
    assert ulp_distance(below, normal) == 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_ulp_distance_at_infinity_and_across_signs(dtype):
    dt = np_dtype(dtype)
    big = np.array(finfo(dtype).max, dt)
    inf = np.array(np.inf, dt)
    assert ulp_distance(big, inf) == 1
    one = np.array(1.0, dt)
    # From -1 to 1 is twice the count of values in (0, 1], each side.
    assert ulp_distance(-one, one) == 2 * int(ordered(one))
    # Opposite extremes: needs more than 63 bits for float64, still exact.
    assert int(ulp_distance(-big, big)) == 2 * int(ordered(big))


def test_ulp_distance_spacing_differs_by_dtype():
    # 1 + 2**-10 is 1 ULP from 1 in float16, 2**13 in float32; bfloat16 cannot hold it (rounds to 1).
    assert ulp_distance(np.float16(1), np.float16(1 + 2**-10)) == 1
    assert ulp_distance(np.float32(1), np.float32(1 + 2**-10)) == 2**13
    bf = np_dtype("bfloat16")
    assert ulp_distance(np.array(1.0, bf), np.array(1 + 2**-7, bf)) == 1


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_next_float32_is_one_ulp_away(x):
    a = np.float32(x)
    b = np.nextafter(a, np.float32(np.inf))
    assert ulp_distance(a, b) == 1
    assert ulp_distance(b, a) == ulp_distance(a, b)


@given(st.floats(allow_nan=False), st.floats(allow_nan=False), st.floats(allow_nan=False))
def test_ulp_distance_is_additive_along_the_line(a, b, c):
    a, b, c = sorted(np.float64(v) for v in (a, b, c))
    assert int(ulp_distance(a, b)) + int(ulp_distance(b, c)) == int(ulp_distance(a, c))


def test_compare_counts_nan_inf_and_signed_zero():
    x = np.array([1.0, 2.0, -0.0, 4.0, 5.0], np.float32)
    want = np.array([np.nan, np.inf, 0.0, 1.0, -np.inf], np.float32)
    got = np.array([0.0, 3.4e38, -0.0, 1.0, -np.inf], np.float32)
    c = compare(got, want, x, TIGHT)
    assert (c.nan_mismatch, c.inf_mismatch, c.signed_zero_mismatch) == (1, 1, 1)
    assert not c.ok
    assert c.worst_input == 1.0 and np.isnan(c.worst_expected)
    assert "warning: 1 zero(s) of the other sign" in c.describe()


def test_signed_zero_alone_passes_with_a_warning():
    c = compare(np.array([-0.0], np.float32), np.array([0.0], np.float32), np.array([-0.0], np.float32), TIGHT)
    assert c.ok and c.signed_zero_mismatch == 1


def test_budget_and_floor_and_the_tolerance_that_would_pass():
    want = np.array([1.0, 1e-30], np.float32)
    got = np.array([np.nextafter(np.nextafter(np.float32(1), np.float32(2)), np.float32(2)), 2e-30], np.float32)
    x = np.array([0.5, 0.25], np.float32)
    strict = compare(got, want, x, Budget(ulp=1, atol=0.0))
    assert not strict.ok and strict.max_ulp > 2  # 1e-30 -> 2e-30 is millions of ULP
    assert "would pass with ulp=" in strict.describe()
    floored = compare(got, want, x, Budget(ulp=2, atol=1e-20))
    assert floored.ok and floored.max_ulp == 2
    assert not compare(got, want, x, Budget(ulp=1, atol=1e-20)).ok


def test_compare_refuses_mismatched_shapes_and_dtypes():
    with pytest.raises(ValueError, match="shape"):
        compare(np.zeros(2, np.float32), np.zeros(3, np.float32), np.zeros(2), TIGHT)
    with pytest.raises(ValueError, match="dtype"):
        compare(np.zeros(2, np.float32), np.zeros(2, np.float64), np.zeros(2), TIGHT)


def test_merge_keeps_the_worst_part():
    x = np.zeros(2, np.float32)
    good = compare(np.zeros(2, np.float32), np.zeros(2, np.float32), x, TIGHT)
    bad = compare(np.array([np.nan, 0], np.float32), np.zeros(2, np.float32), np.array([7.0, 0], np.float32), TIGHT)
    m = merge([good, bad])
    assert m.n == 4 and m.nan_mismatch == 1 and m.worst_input == 7.0 and not m.ok


def test_equal_infinities_have_no_error_and_merge_is_order_free():
    x = np.array([1.0, 2.0], np.float32)
    inf = compare(np.array([np.inf, 1.0], np.float32), np.array([np.inf, np.nextafter(np.float32(1), np.float32(2))],
                                                                   np.float32), x, TIGHT)
    assert inf.max_abs > 0 and np.isfinite(inf.max_abs) and inf.worst_input == 2.0
    other = compare(np.zeros(2, np.float32), np.zeros(2, np.float32), x, TIGHT)
    a, b = merge([inf, other]), merge([other, inf])
    assert (a.max_abs, a.max_ulp, a.worst_input) == (b.max_abs, b.max_ulp, b.worst_input)


def test_semantics_names_special_value_changes():
    x = np.array([np.nan, -0.0, 3.4e38, 0.5], np.float32)
    got = np.array([0.0, 0.0, np.inf, -0.0], np.float32)
    exact = np.array([np.nan, -0.0, 3.4e38, 0.0], np.float32)
    lines = semantics(x, got, exact)
    assert "x=NaN: +0 out, exact NaN" in lines
    assert "x=-0: +0 out, exact -0" in lines
    assert "x=3.4e+38: +inf out, exact 3.4e+38" in lines
    assert len(lines) == 3  # the sign of a zero output for a non-zero input has no meaning


def test_across_devices_counts_every_difference_and_names_special_values():
    x = np.array([np.nan, -0.0, 1.0, 2.0, np.inf], np.float32)
    cpu = np.array([np.nan, -0.0, 1.0, 2.0, np.inf], np.float32)
    same = across_devices([x], [cpu], [cpu.copy()], Budget(ulp=1, atol=0.0), "cuda")
    assert (same.differ, same.max_ulp, same.special, same.agree) == (0, 0, [], True)

    near = cpu.copy()
    near[2] = np.nextafter(near[2], np.float32(2))  # one ULP: within a budget of 1
    within = across_devices([x], [cpu], [near], Budget(ulp=1, atol=0.0), "cuda")
    assert (within.differ, within.max_ulp, within.agree) == (1, 1, True)

    far = cpu.copy()
    far[0], far[1], far[3], far[4] = 0.0, 0.0, np.float32(2.0000005), np.nan  # 2 ULP, -0 -> +0, NaN lost/made
    apart = across_devices([x, x], [cpu, cpu], [far, cpu], Budget(ulp=1, atol=0.0), "cuda")
    assert apart.differ == 4 and apart.elements == 10 and apart.max_ulp == 2
    assert (apart.nan_mismatch, apart.over_budget, apart.signed_zero_mismatch) == (2, 1, 1)
    assert apart.special == ["x=NaN: +0 on cuda, NaN on cpu", "x=-0: +0 on cuda, -0 on cpu",
                                "x=+inf: NaN on cuda, +inf on cpu"]
    assert not apart.agree


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("absolute", [False, True])
def test_identical_outputs_classify_as_the_general_path_would(dtype, absolute, monkeypatch):
    import actexport.compare as cmp

    dt = np_dtype(dtype)
    fi = finfo(dtype)
    values = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, float(fi.smallest_subnormal), -float(fi.smallest_normal),
                       1e-6, -3.5, float(fi.max), 0.25], dtype=np.float64).astype(dt)
    budget = Budget(ulp=4, atol=1e-5, absolute_everywhere=absolute)
    fast = cmp.classify(values, values.copy(), budget)
    monkeypatch.setattr(cmp, "_same_bits", lambda a, e: False)
    general = cmp.classify(values, values.copy(), budget)
    for field in ("ulp", "abs_err", "nan_bad", "inf_bad", "over", "zero_loss", "normal", "floored"):
        np.testing.assert_array_equal(getattr(fast, field), getattr(general, field), err_msg=field)
