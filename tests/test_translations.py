"""actexport's graph profile against torch.onnx's stock graphs: never worse on the oracle, and recorded."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from actexport import catalog, translations
from actexport.cli import main
from actexport.exporters.onnx import DEFAULT_EXPORTER, OnnxExporter, export
from actexport.verify import Options, verify

# The catalog rows whose ONNX graph the candidate translations change (checked below against the exports);
# the actexport profile is the same minus the rows the benchmark rejected (none today).
CHANGED = ("softshrink", "softshrink_1", "hardshrink", "hardshrink_1", "threshold", "prelu", "softplus",
           "softplus_b2_t10", "mish", "softmax2d")
SIDES = ("stock", "candidates")
DTYPES = ("float16", "float32", "float64")
OPSETS = (18, 20)
_RANK = {"pass": 0, "xpass": 0, "skip": 0, "xfail": 1, "unavailable": 1, "fail": 2, "error": 2}


@pytest.fixture(scope="module")
def both():
    """verify of every changed row, ONNX only, stock and every candidate translation, three dtypes, opsets
    18 and 20."""
    out = {}
    for graphs in SIDES:
        options = Options(formats=("onnx",), dtypes=DTYPES, opsets=OPSETS, exporter=OnnxExporter.of("dynamo", graphs).key)
        out[graphs] = verify(list(CHANGED), options)
    return out


def _onnx_cells(report, act_id):
    return {c.key: c for c in report.cells if c.activation == act_id and c.format == "onnx"}


@pytest.mark.parametrize("act_id", CHANGED)
def test_actexport_graph_is_no_worse_than_stock_on_the_oracle(both, act_id):
    stock, ours = _onnx_cells(both["stock"], act_id), _onnx_cells(both["candidates"], act_id)
    assert stock and stock.keys() == ours.keys()
    for key, s in stock.items():
        a = ours[key]
        assert _RANK[a.status] <= _RANK[s.status], f"{key}: {s.status} -> {a.status}: {a.reason}"
        if a.status == "unavailable":
            assert s.status == "unavailable", f"{key}: the actexport graph cannot run: {a.reason}"
            continue
        if s.status == "unavailable":
            continue  # onnxruntime has no kernel for the stock graph (float64 Softplus at opset 20)
        if s.max_ulp is None or a.max_ulp is None:
            continue
        # No worse in ULP against the exact reference, unless both are within the cell's budget.
        assert a.max_ulp <= max(s.max_ulp, a.ulp_budget or 0), f"{key}: {s.max_ulp} -> {a.max_ulp} ULP"
        # No special value lost or invented, and no more zeros of the wrong sign.
        assert (a.nan_mismatch or 0) + (a.inf_mismatch or 0) <= (s.nan_mismatch or 0) + (s.inf_mismatch or 0), key
        assert (a.signed_zero_mismatch or 0) <= (s.signed_zero_mismatch or 0), key


def test_the_changed_rows_are_exactly_those_whose_exports_used_a_translation(both):
    used = {}
    for record in both["candidates"].exports:
        if record["format"] == "onnx" and record.get("translations"):
            used.setdefault(record["activation"], set()).update(record["translations"])
    assert set(used) == set(CHANGED)
    assert used["softmax2d"] == {"softmax2d.reduce"} and used["threshold"] == {"threshold.max"}
    assert not any(r.get("translations") for r in both["stock"].exports)
    assert {r["graphs"] for r in both["stock"].exports if r["format"] == "onnx"} == {"stock"}


def test_the_actexport_profile_has_fewer_declared_deviations():
    """onnxruntime's float64 Softplus returns 0 in the far negative tail (declared for stock only); the
    actexport graph computes log1p itself and passes."""
    options = {"formats": ("onnx",), "dtypes": ("float64",), "reference": False}
    counts = {g: verify(["softplus", "softplus_b2_t10"], Options(exporter=OnnxExporter.of("dynamo", g).key, **options)).counts()
              for g in ("stock", "actexport")}
    assert counts["stock"]["xfail"] == 2 and counts["actexport"]["xfail"] == 0
    assert counts["actexport"]["pass"] == counts["stock"]["pass"] + 2


def test_rejected_rows_are_only_in_the_candidates_profile(monkeypatch):
    import dataclasses

    rows = tuple(dataclasses.replace(t, rejected="measured slower") if t.name == "hardshrink.mask" else t
                 for t in translations.TRANSLATIONS)
    monkeypatch.setattr(translations, "TRANSLATIONS", rows)
    assert translations.plan(nn.Hardshrink(), "float32", 18).used == []
    assert translations.plan(nn.Hardshrink(), "float32", 18, "candidates").used == ["hardshrink.mask"]
    assert translations.plan(nn.Hardshrink(), "float32", 18, "stock").used == []
    assert translations.plan(nn.Softshrink(), "float32", 18).used == ["softshrink.clip"]


def test_stock_gelu_is_the_native_op_from_opset_20(tmp_path):
    """Why actexport has no GELU row: torch.onnx itself emits ONNX's Gelu from opset 20 on. If that
    changes, gelu is 3-5x eager again on onnxruntime CPU and needs a row."""
    act = catalog.get("gelu")
    at18 = export(act, "float32", tmp_path / "a.onnx", opset=18, exporter="dynamo")
    at20 = export(act, "float32", tmp_path / "b.onnx", opset=20, exporter="dynamo")
    assert at18.ok and at20.ok, (at18.error, at20.error)
    assert "Erf" in at18.details["op_types"] and at20.details["op_types"] == ["Gelu"]


@pytest.mark.parametrize("act_id, op_types", [
    ("softshrink", ["Clip", "Sub"]),
    ("prelu", ["LeakyRelu"]),
    ("softmax2d", ["Div", "Exp", "ReduceMax", "ReduceSum", "Sub"]),
])
def test_replacement_graphs_are_the_documented_ones(tmp_path, act_id, op_types):
    r = export(catalog.get(act_id), "float32", tmp_path / "m.onnx", opset=18, exporter="dynamo+actexport")
    assert r.ok, r.error
    assert r.details["op_types"] == op_types
    assert r.exporter.endswith("+ actexport graphs")


def test_rows_that_cannot_be_exact_keep_the_stock_graph():
    def used(module, dtype="float32"):
        return translations.plan(module, dtype, 18, "candidates").used

    assert used(nn.PReLU(3)) == []  # per-channel slopes
    assert used(nn.PReLU(), "float64") == []  # no float64 LeakyRelu kernel
    assert used(nn.Threshold(-0.5, 1.0)) == []  # -0 > th would become +0
    assert used(nn.Threshold(0.5, float("inf"))) == []  # inf * 0
    # 0.1 + (20 - 0.1) gives 20 back in float32, so the row applies; 1e8 + (1 - 1e8) does not.
    assert used(nn.Threshold(0.1, 20.0)) == ["threshold.max"]
    assert used(nn.Threshold(1e8, 1.0)) == []
    assert used(nn.Mish(), "bfloat16") == []


def test_softplus_keeps_the_threshold_mask_only_where_rounding_does_not():
    # beta=1, threshold=20: x + log1p(exp(-x)) rounds to x above 20 in float32, not in float64.
    assert translations.plan(nn.Softplus(), "float32", 18).module.masked is False
    assert translations.plan(nn.Softplus(), "float64", 18).module.masked is True
    assert translations.plan(nn.Softplus(2.0, 10.0), "float32", 18).module.masked is True


def test_plan_substitutes_inside_a_model_and_leaves_the_original_alone():
    model = nn.Sequential(nn.Linear(4, 4), nn.Softshrink(), nn.Sequential(nn.Mish(), nn.Hardshrink(1.0)))
    p = translations.plan(model, "float32", 18, "candidates")
    assert p.used == ["softshrink.clip", "mish.ratio", "hardshrink.mask"]
    assert type(model[1]) is nn.Softshrink and type(model[2][0]) is nn.Mish
    assert type(p.module[1]).__name__ == "_Softshrink" and p.module[0] is not model[0]
    x = torch.linspace(-3, 3, 64).reshape(16, 4)
    with torch.no_grad():
        torch.testing.assert_close(p.module(x), model(x), rtol=0, atol=2e-7)


_EXACT = [(nn.Softshrink, ()), (nn.Softshrink, (1.0,)), (nn.Hardshrink, ()), (nn.Threshold, (0.5, -1.0)),
          (nn.PReLU, ())]


@pytest.mark.parametrize("cls, args, dtype", [
    (cls, args, dtype) for cls, args in _EXACT for dtype in ("float16", "float32", "float64")
    if not (cls is nn.PReLU and dtype == "float64")  # the row does not apply: no float64 LeakyRelu kernel
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_exact_substitutions_match_eager_bit_for_bit_in_eager(cls, args, dtype):
    """The rows that claim exactness compute the same bits as the module in eager PyTorch, signs of
    zero, NaN and infinities included."""
    from actexport.inputs import batteries

    t = getattr(torch, dtype)
    module = cls(*args).to(t)
    act = next(a for a in catalog.CATALOG if repr(a.module()) == repr(cls(*args)))
    p = translations.plan(module, dtype, 18, "candidates")
    assert len(p.used) == 1
    for battery in batteries(act, dtype):
        xt = torch.from_numpy(battery.x).to(t)
        with torch.no_grad():
            want, got = module(xt), p.module.to(t)(xt)
        torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=True, msg=battery.name)
        same_sign = torch.signbit(want) == torch.signbit(got)
        assert bool((same_sign | torch.isnan(want)).all()), f"{battery.name}: a zero changed sign"


def test_cli_records_the_profile_in_the_manifest(tmp_path):
    assert main(["export", "softshrink", "--formats", "onnx", "--out", str(tmp_path / "a"), "--no-cache"]) == 0
    assert main(["export", "softshrink", "--formats", "onnx", "--graphs", "stock", "--out", str(tmp_path / "b"),
                 "--no-cache"]) == 0
    a = json.loads((tmp_path / "a" / "manifest.json").read_text())["artifacts"][0]
    b = json.loads((tmp_path / "b" / "manifest.json").read_text())["artifacts"][0]
    assert (a["graphs"], a["translations"]) == ("actexport", ["softshrink.clip"])
    assert (b["graphs"], b["translations"]) == ("stock", [])
    assert (a["onnx_exporter"], b["onnx_exporter"]) == ("dynamo", "dynamo")
    assert a["sha256"] != b["sha256"]


@pytest.mark.parametrize("made_by, key, label", [
    (OnnxExporter.of("dynamo"), "dynamo+actexport", "torch.onnx.export(dynamo=True) + actexport graphs"),
    (OnnxExporter.of("dynamo", "stock"), "dynamo", "torch.onnx.export(dynamo=True)"),
    (OnnxExporter.of("legacy"), "legacy", "torch.onnx.export(dynamo=False)"),
])
def test_an_onnx_exporter_travels_as_its_key(made_by, key, label):
    assert (made_by.key, made_by.label, OnnxExporter.parse(key)) == (key, label, made_by)
    assert DEFAULT_EXPORTER == OnnxExporter.of("dynamo").key  # what the caches were keyed with


@pytest.mark.parametrize("argv, message", [
    (["--graphs", "fast"], "unknown graph profile 'fast'; valid: stock, actexport, candidates"),
    (["--graphs", "actexport", "--exporter", "legacy"], "needs the dynamo exporter"),
])
def test_bad_graph_profile_is_a_usage_error(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert main(["export", "relu", "--formats", "onnx", "--out", str(out), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_graphs_report_judges_each_translation_and_flags_a_stale_declaration():
    from actexport.sidebyside import ProfileReport

    rows = [{"activation": "a", "translations": ["softshrink.clip"], "accepted": True},
            {"activation": "b", "translations": ["softshrink.clip"], "accepted": False},
            {"activation": "c", "translations": ["hardshrink.mask"], "accepted": True}]
    report = ProfileReport(rows=rows)
    # softshrink.clip failed on one activation: measured rejected, declared accepted.
    assert report.verdicts() == {"softshrink.clip": {"measured": False, "declared": True},
                                 "hardshrink.mask": {"measured": True, "declared": True}}
    assert not report.agrees
    rows[1]["accepted"] = True
    assert report.agrees


def test_graphs_side_by_side_on_one_activation(capsys):
    from actexport.sidebyside import compare

    report = compare(["prelu"], 18, sizes=(1000,), dtypes=("float32",))
    (row,) = report.rows
    assert row["activation"] == "prelu" and row["translations"] == ["prelu.leaky"]
    assert row["dtypes"]["float32"] == {"stock_ulp": 0, "actexport_ulp": 0, "stock_status": "pass",
                                        "actexport_status": "pass"}
    assert row["sizes"][1000]["baseline"] == "eager:cpu"  # PReLU has no single out= kernel
    assert row["sizes"][1000]["stock_us"] > 0 and row["sizes"][1000]["actexport_us"] > 0
    assert set(report.catalog) == {"stock", "candidates", "actexport"}
