"""Report: exit-code policy, JSON without NaN, JUnit counts, what the terminal shows."""

from __future__ import annotations

import argparse
import io
import json
import re
from xml.etree import ElementTree as ET

import pytest

from actexport.compare import Agreement
from actexport.graphs import Optimisation
from actexport.report import Cell, DeviceRecord, GraphRecord, Report
from rich.console import Console


def _cell(status, stage="", **kw):
    return Cell("relu", "ReLU()", "onnx", "ort:cpu", "float32", status, reason="why", stage=stage, **kw)


@pytest.mark.parametrize(
    "statuses, code",
    [
        (["pass", "xfail", "skip", "unavailable"], 0),
        (["pass", "fail"], 1),
        (["pass", "xpass"], 1),
        (["error"], 1),
        (["fail", ("error", "export")], 3),
    ],
)
def test_exit_codes(statuses, code):
    cells = [_cell(*s) if isinstance(s, tuple) else _cell(s) for s in statuses]
    assert Report(cells=cells).exit_code() == code


def test_json_has_no_nan_and_keeps_special_inputs(tmp_path):
    r = Report(cells=[_cell("fail", worst_input=float("nan"), worst_expected=float("-inf"), worst_actual=-0.0)])
    r.write_json(tmp_path / "r.json")
    doc = json.loads((tmp_path / "r.json").read_text())  # strict JSON: would fail on a bare NaN
    cell = doc["cells"][0]
    assert (cell["worst_input"], cell["worst_expected"], cell["worst_actual"]) == ("nan", "-inf", -0.0)
    assert doc["summary"]["counts"]["fail"] == 1 and doc["summary"]["exit_code"] == 1


def test_junit_maps_statuses(tmp_path):
    r = Report(cells=[_cell("pass"), _cell("fail"), _cell("xpass"), _cell("error"), _cell("xfail"), _cell("unavailable")])
    r.write_junit(tmp_path / "r.xml")
    suite = ET.parse(tmp_path / "r.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("6", "2", "1", "2")


def test_each_device_has_its_max_ulp_column_and_a_dash_where_nothing_ran():
    cells = [Cell("relu", "ReLU()", "onnx", "ort:cpu", "float32", "pass", max_ulp=2),
             Cell("relu", "ReLU()", "onnx", "ort:cuda", "float32", "unavailable", reason="no card", device="cuda")]
    out = io.StringIO()
    Report(cells=cells).render(Console(file=out, width=200))
    text = out.getvalue()
    assert text.count("max ULP") == 2  # one column per device
    row = next(line for line in text.splitlines() if line.startswith(" relu "))
    cols = [c.strip() for c in row.split("│") if c.strip()]
    assert cols[-2:] == ["2", "-"]  # cpu, cuda: not a 0 that would read as perfect parity


def test_every_json_file_goes_through_one_encoder_that_names_non_finite_values(tmp_path):
    from pathlib import Path

    from actexport.files import json_ready, write_json
    doc = {"worst_input": float("-inf"), "row": (1, float("nan")), "path": Path("a/b"), 3: float("inf")}
    assert json_ready(doc) == {"worst_input": "-inf", "row": [1, "nan"], "path": "a/b", "3": "inf"}
    write_json(tmp_path / "x.json", doc)
    assert json.loads((tmp_path / "x.json").read_text())["worst_input"] == "-inf"


def test_graph_records_write_only_what_they_hold():
    plain = GraphRecord("relu", "float32", 18, ["Relu"], 1)
    assert plain.to_dict() == {"activation": "relu", "dtype": "float32", "opset": 18, "op_types": ["Relu"],
                               "nodes": 1}
    failed = GraphRecord("relu", "float32", 21, None, None, {"18": 0}, optimisation_error="worker crashed")
    assert failed.to_dict()["ort_cpu_max_ulp_vs_opset"] == {"18": 0}
    assert failed.to_dict()["optimisation"] == {"error": "worker crashed"}
    o = Optimisation(1, {"com.microsoft:QuickGelu": 1}, ["com.microsoft:QuickGelu"], "2 nodes -> 1 node", True,
                     0, 0, 1, 1, True, True)
    doc = GraphRecord("silu", "float32", 18, ["Mul", "Sigmoid"], 2, optimisation=o).to_dict()
    assert (doc["optimised_nodes"], doc["ort_specific"]) == (1, ["com.microsoft:QuickGelu"])
    assert doc["optimisation"] == {"graph": "2 nodes -> 1 node", "rewritten": True, "numbers": 0,
                                   "max_ulp_between": 0, "unoptimised_max_ulp_vs_exact": 1,
                                   "optimised_max_ulp_vs_exact": 1, "unoptimised_within_budget": True,
                                   "optimised_within_budget": True}


def test_a_device_record_reads_back_what_it_wrote(tmp_path):
    agreement = Agreement(10, 1, 3, 1e-6, 0, 0, 0, 0, ["x=1: NaN on cuda, 1 on cpu"], False)
    record = DeviceRecord("gelu", "float16", "onnx", 18, "ort", "cuda", "CUDAExecutionProvider", 1, agreement)
    path = tmp_path / "r.json"
    Report(devices=[record]).write_json(path)
    (back,) = json.loads(path.read_text())["devices"]
    assert back["differ"] == 1 and back["runtime"] == "ort" and "agreement" not in back
    assert DeviceRecord.from_dict(back) == record


def _emitted(report, **flags) -> str:
    """What `actexport verify` prints for `report` in a CI log (not a terminal: width 160)."""
    from actexport.commands import _emit

    out = Console(file=io.StringIO(), width=160)
    args = argparse.Namespace(**{"quiet": False, "explain": False, "json_path": None, "junit": None, **flags})
    assert _emit(report, args, out, Console(file=io.StringIO())) == report.exit_code()
    return out.file.getvalue()


def _covered(line: str) -> list[tuple[str, str]]:
    """The (activation, runtime) pairs a group line names: "a, b on r1, r2; c on r3 (5 cells)..."."""
    where = re.sub(r" \(\d+ cells?\).*", "", line.split(": ", 2)[2])
    return [(act, rt) for part in where.split("; ") for acts, rts in [part.split(" on ")]
            for act in acts.split(", ") for rt in rts.split(", ")]


def test_verify_all_prints_one_line_per_kind_of_known_deviation(full_report):
    """A CI log: the matrix, one line per declared cause with the cells it covers, the summary; each
    xfail cell's own line (300-600 characters) only with --explain."""
    xfails = [c for c in full_report.cells if c.status == "xfail"]
    assert len(xfails) > 40 and full_report.exit_code() == 0
    lines = _emitted(full_report).splitlines()
    assert len(lines) <= 60, len(lines)
    groups = [line for line in lines if line.startswith("xfail: ")]
    assert len(groups) < len(xfails) / 2
    pairs = sorted(p for line in groups for p in _covered(line))
    assert pairs == sorted((c.activation, c.runtime) for c in xfails)  # every cell, once
    for line in groups:
        n = int(re.search(r"\((\d+) cells?\)", line)[1])
        assert n == len(_covered(line))
        # the cause: from each covered cell's declaration (where one template's parameter differs,
        # as Elu, Selu, Celu in "onnxruntime's Elu computes exp(x) - 1", they are listed)
        words = line.split(": ", 2)[1].split(" ")
        for act, rt in _covered(line):
            (cell,) = [c for c in xfails if (c.activation, c.runtime) == (act, rt)]
            declared = re.split(r" \[(?:vs exact|no artifact)", cell.reason)[0]
            assert words[0].rstrip(",") in declared and words[-1] in declared, (line, cell.reason)
        assert "max ULP " in line or "rrelu" in line  # rrelu: no artifact, so no figure
    assert not any(c.key in "\n".join(lines) for c in xfails)
    assert lines[-1] == full_report.summary_line()

    explained = _emitted(full_report, explain=True)
    for c in xfails:
        assert f"{c.key}: xfail: {c.reason}\n" in explained
    assert "Deviations from the exact reference" in explained
    assert _emitted(full_report, quiet=True) == full_report.summary_line() + "\n"


def test_skipped_and_unavailable_cells_are_grouped_by_reason_in_every_dtype_and_opset():
    def cell(act, status, reason, dtype="float32", opset=18, runtime="ort:cpu"):
        return Cell(act, "M()", "onnx", runtime, dtype, status, reason=reason, opset=opset)

    kernel = "onnxruntime 1.32.0 has no kernel for {} on CPUExecutionProvider"
    report = Report(cells=[
        cell("elu", "unavailable", kernel.format("Elu(bfloat16)"), "bfloat16"),
        cell("gelu", "unavailable", kernel.format("Erf(double), Add(double)"), "float64"),
        cell("gelu", "unavailable", kernel.format("Erf(double), Add(double)"), "float64", 21),
        cell("relu", "skip", "the legacy exporter is not installed: torch 2.15", runtime="onnx.reference"),
        cell("relu", "pass", "", "float64", 21),
        cell("relu", "fail", "vs exact: 3 ULP"),
    ])
    text = _emitted(report)
    assert ("unavailable: " + kernel.format("Elu(bfloat16), Erf(double), Add(double)") + ": elu on onnx@18 "
            "ort:cpu bfloat16; gelu on onnx@18 ort:cpu float64, onnx@21 ort:cpu float64 (3 cells)\n") in text
    assert "skip: the legacy exporter is not installed: relu on onnx.reference float32 (1 cell)\n" in text
    assert "relu / onnx@18 / ort:cpu / float32: fail: vs exact: 3 ULP\n" in text  # a failure in full
    explained = _emitted(report, explain=True)
    assert "gelu / onnx@21 / ort:cpu / float64: unavailable: " + kernel.format("Erf(double), Add(double)") in explained
