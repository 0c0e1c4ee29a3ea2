"""The registry: complete, well-formed, and its formulas agree with torch in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actexport.formats import FORMATS
from actexport import catalog
from actexport.catalog import CATALOG, EXCLUDED, UsageError, XFail
from actexport.inputs import batteries

IDS = [a.id for a in CATALOG]


def test_every_torch_activation_is_cataloged_or_excluded_with_a_reason():
    in_catalog = {type(a.module()).__name__ for a in CATALOG}
    missing = sorted(set(catalog.activation_classes()) - in_catalog - set(EXCLUDED))
    assert not missing, f"torch.nn.modules.activation classes neither in the catalog nor excluded: {missing}"
    assert not set(EXCLUDED) & in_catalog
    assert all(len(reason) > 20 for reason in EXCLUDED.values())


def test_ids_are_unique_and_path_safe():
    assert len(IDS) == len(set(IDS))
    for i in IDS:
        assert i and "/" not in i and not i.startswith(("-", ".")), i


def test_the_articles_activations_have_their_ids_and_parameters():
    for i in ("sigmoid", "tanh", "relu", "leaky_relu", "leaky_relu_0.1"):
        catalog.get(i)
    assert catalog.get("leaky_relu").module().negative_slope == 0.01
    assert catalog.get("leaky_relu_0.1").module().negative_slope == 0.1
    assert catalog.get("leaky_relu_0.1").module_repr == "LeakyReLU(negative_slope=0.1)"


def test_leaky_relu_is_x_above_zero_and_ax_below():
    # The article printed 0 for x<=0 and a*x for x>0; the definition is the other way round.
    f = catalog.get("leaky_relu_0.1").oracle
    assert f(np.array([3.0]))[0] == 3.0
    assert f(np.array([-2.0]))[0] == pytest.approx(-0.2, rel=1e-15)
    assert f(np.array([0.0]))[0] == 0.0


@pytest.mark.parametrize("act", CATALOG, ids=IDS)
def test_oracle_agrees_with_torch_in_float64(act):
    """Catches a catalog row whose formula or parameters do not describe its module."""
    module = act.module().double()
    # NOTE: this checks that the two definitions are the same function, not how accurate either is:
    # cancelling forms (the tail of GELU's tanh form, x - tanh(x)) differ by a few float64 eps in
    # absolute terms, and a wrong parameter or formula is off by far more than 1e-12.
    for b in batteries(act, "float64")[:2]:  # random and grid: finite inputs
        got = module(torch.from_numpy(b.x)).detach().numpy()
        np.testing.assert_allclose(got, act.oracle(b.x), rtol=1e-9, atol=1e-12, err_msg=f"{act.id} ({b.name})")


def test_unknown_activation_lists_the_known_ones():
    with pytest.raises(UsageError, match=r"unknown activation 'relu7'; known: .*leaky_relu"):
        catalog.get("relu7")


def test_select_keeps_catalog_order_and_dedups():
    assert [a.id for a in catalog.select(["tanh", "sigmoid", "tanh"])] == ["sigmoid", "tanh"]
    assert catalog.select([]) == CATALOG


def test_parse_list_rejects_unknown_items():
    assert catalog.parse_list("onnx, pt2,onnx", FORMATS, "format") == ("onnx", "pt2")
    with pytest.raises(UsageError, match="unknown format 'tflite'; valid: onnx, torchscript, pt2"):
        catalog.parse_list("onnx,tflite", FORMATS, "format")


def test_xfail_scope():
    x = XFail("why", format="onnx", exporter="legacy", special=("nan",))
    assert x.matches("onnx", "ort:cpu", "float32", "legacy")
    assert not x.matches("onnx", "ort:cpu", "float32", "dynamo")
    assert not x.matches("pt2", "pt2:cpu", "float32", None)


def test_every_declared_deviation_names_its_side():
    for act in CATALOG:
        for x in act.xfails:
            assert "side:" in x.reason, f"{act.id}: {x.reason}"


def test_every_numerical_declaration_says_where_and_how_large():
    for act in CATALOG:
        for x in act.xfails:
            assert x.no_artifact or x.where or x.special, f"{act.id}: {x.reason}"
            assert not x.where or x.max_ulp is not None or x.max_abs is not None, f"{act.id}: {x.reason}"


def test_a_declaration_without_a_range_or_a_size_is_refused_when_the_catalog_loads():
    with pytest.raises(ValueError, match="needs `where` or `special`"):
        XFail("why; side: runtime", max_ulp=4)
    with pytest.raises(ValueError, match="needs max_ulp or max_abs"):
        XFail("why; side: runtime", where=("[0, 1]",))
    with pytest.raises(ValueError, match="empty region"):
        XFail("why; side: runtime", where=("[1, 0]",), max_ulp=4)


@pytest.mark.parametrize(("text", "inside", "outside"), [
    ("[-0.13, 0)", [-0.13, -1e-30], [0.0, -0.1300001, np.nan]),
    ("±[1e-3, 0.1)", [1e-3, -0.05], [0.1, -0.1, 0.0]),
    ("-inf", [-np.inf], [np.inf, -1e308]),
    ("nan", [np.nan], [0.0, np.inf]),
    ("[1.7e38, inf)", [1.7e38, 3e38], [np.inf, 1e38]),
    ("0", [0.0, -0.0], [1e-300]),
])
def test_regions_contain_what_their_text_says(text, inside, outside):
    region = catalog.Region.parse(text)
    assert region.contains(np.array(inside)).all() and not region.contains(np.array(outside)).any()


def test_a_declaration_excuses_only_inside_its_range_and_size():
    x = XFail("why; side: runtime", where=("[-1, 0)",), max_ulp=100, special=("-inf",))
    xs = np.array([-0.5, -0.5, 0.5, -np.inf, np.inf])
    over = np.array([True, True, True, False, False])
    special = np.array([False, False, False, True, True])
    ulp = np.array([50, 500, 50, 0, 0], np.uint64)
    excused = x.excuses(xs, over, special, ulp, np.zeros(5))
    # in range and small; in range but larger than declared; outside the range; NaN at -inf; at +inf
    assert excused.tolist() == [True, False, False, True, False]
