"""The registry: complete, well-formed, and its formulas agree with torch in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actexport import catalog
from actexport.catalog import CATALOG, EXCLUDED, Budget, UsageError, XFail
from actexport.compare import compare
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
    identity = Budget(ulp=4, atol=1e-12)
    for b in batteries(act, "float64")[:2]:  # random and grid: finite inputs
        got = module(torch.from_numpy(b.x)).detach().numpy()
        c = compare(got, act.oracle(b.x), b.x, identity)
        assert c.ok, f"{act.id} ({b.name}): {c.describe()}"


def test_unknown_activation_lists_the_known_ones():
    with pytest.raises(UsageError, match=r"unknown activation 'relu7'; known: .*leaky_relu"):
        catalog.get("relu7")


def test_select_keeps_catalog_order_and_dedups():
    assert [a.id for a in catalog.select(["tanh", "sigmoid", "tanh"])] == ["sigmoid", "tanh"]
    assert catalog.select([]) == CATALOG


def test_parse_list_rejects_unknown_items():
    assert catalog.parse_list("onnx, pt2,onnx", catalog.FORMATS, "format") == ("onnx", "pt2")
    with pytest.raises(UsageError, match="unknown format 'tflite'; valid: onnx, torchscript, pt2"):
        catalog.parse_list("onnx,tflite", catalog.FORMATS, "format")


def test_xfail_scope():
    x = XFail("why", format="onnx", exporter="legacy")
    assert x.matches("onnx", "ort:cpu", "float32", "legacy")
    assert not x.matches("onnx", "ort:cpu", "float32", "dynamo")
    assert not x.matches("pt2", "pt2:cpu", "float32", None)


def test_every_declared_deviation_names_its_side():
    for act in CATALOG:
        for x in act.xfails:
            assert "side:" in x.reason, f"{act.id}: {x.reason}"


def test_every_numerical_declaration_is_bounded():
    for act in CATALOG:
        for x in act.xfails:
            assert x.no_artifact or x.max_ulp is not None or x.max_abs is not None, f"{act.id}: {x.reason}"
