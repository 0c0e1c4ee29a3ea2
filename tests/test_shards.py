"""--shard K/N and `merge`: the shards of a run are disjoint, together the single run, the same on
every machine, and merged they give the single run's cells and exit code; merge refuses pieces
that are not one run. The whole catalog in every dtype is benchmarks/shards.py's (minutes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actexport import catalog, shards
from actexport.cli import main
from actexport.files import json_ready, write_json
from actexport.report import jsonfile, reader
from actexport.shards import Shard, assign

# A cheap matrix whose costs differ a lot: mpmath's float64 references beside relu.
IDS = ["relu", "gelu", "elu", "mish", "softplus"]
FLAGS = [*IDS, "--dtypes", "float32,float64", "--formats", "onnx,torchscript", "--quiet"]
N = 3


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("actexport: error: ")
    return err[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """The single run's report and each shard's, as files, with their exit codes."""
    d = tmp_path_factory.mktemp("shards")
    out = {"single": (main(["verify", *FLAGS, "--json", str(d / "single.json")]), d / "single.json")}
    for k in range(1, N + 1):
        out[k] = (main(["verify", *FLAGS, "--shard", f"{k}/{N}", "--json", str(d / f"s{k}.json")]), d / f"s{k}.json")
    return out


def _cells(path: Path) -> list[tuple[str, str]]:
    return [(f"{c['activation']}/{c['format']}@{c['opset']}/{c['runtime']}/{c['dtype']}", c["status"])
            for c in json.loads(path.read_text())["cells"]]


def test_merged_shards_are_the_single_run(runs, tmp_path, capsys):
    code, single = runs["single"]
    pieces = [runs[k][1] for k in range(1, N + 1)]
    shard_cells = [{key for key, _ in _cells(p)} for p in pieces]
    assert all(shard_cells) and sum(map(len, shard_cells)) == len(set().union(*shard_cells))  # disjoint
    merged = tmp_path / "merged.json"
    assert main(["merge", *map(str, reversed(pieces)), "--json", str(merged), "--junit", str(tmp_path / "m.xml"),
                 "--html", str(tmp_path / "m.html"), "--quiet"]) == code
    assert "<table" in (tmp_path / "m.html").read_text()  # the merged page, as a single run writes it
    assert _cells(merged) == _cells(single)  # the same cells, statuses and order
    doc = json.loads(merged.read_text())
    assert doc["summary"]["exit_code"] == code
    assert [m["shard"] for m in doc["environment"]["merged"]] == [f"{k}/{N}" for k in range(1, N + 1)]
    assert "exit code" in capsys.readouterr().out


def test_shards_are_deterministic_and_balanced(runs):
    ordered = [a.id for a in catalog.select(IDS)]  # a run keeps the catalog's order
    units = [(i, d) for i in ordered for d in ("float32", "float64")]
    cost = lambda u: shards.verify_cost(u, ("onnx", "torchscript"))
    dealt = assign(units, N, cost)
    for k in range(1, N + 1):
        record = json.loads(runs[k][1].read_text())["environment"]["shard"]
        assert [tuple(u) for u in record["units"]] == dealt[k - 1]  # what every machine computes alike
        assert record["selection"] == ordered and (record["index"], record["count"]) == (k, N)
    loads = sorted(sum(map(cost, s)) for s in dealt)
    assert loads[-1] - loads[0] <= max(map(cost, units))  # LPT: within the largest unit of each other


def test_lpt_balances_by_cost_not_count():
    units = ["a", "b", "c", "d", "e", "f"]
    cost = {"a": 9, "b": 1, "c": 1, "d": 1, "e": 4, "f": 4}.__getitem__
    dealt = assign(units, 2, cost)
    assert dealt == [["a", "c"], ["b", "d", "e", "f"]]  # 10 and 10 (by count, 3 and 3 could be 14 and 6)
    assert assign(units, 2, cost) == dealt  # deterministic
    assert sorted(u for s in assign(units, 4, cost) for u in s) == units


def test_measured_costs_tell_float64_from_relu():
    assert shards.verify_cost(("gelu", "float64"), ("onnx",)) > 3 * shards.verify_cost(("relu", "float32"), ("onnx",))
    assert shards.verify_cost(("no_such_row", "float32"), ("onnx",)) > 0  # a user's row: the typical unit


@pytest.mark.parametrize("value", ["0/4", "5/4", "a/b", "1/0", "1/4/2", ""])
def test_bad_shard_is_one_line_and_exit_2(capsys, value):
    assert main(["verify", "relu", "--shard", value]) == 2
    assert "invalid --shard" in _one_error_line(capsys)


@pytest.mark.parametrize("argv, message", [
    (["verify", "--module", "torch.nn:ReLU", "--input-shape", "4", "--shard", "1/2"], "--shard splits"),
    (["bench", "--module", "torch.nn:ReLU", "--input-shape", "4", "--shard", "1/2"], "--shard splits"),
    (["verify", "relu", "--shard", "1/2"], "1 activation x dtype units cannot make 2 shards"),
    (["export", "relu", "--shard", "2/3"], "cannot make 3 shards"),
    (["bench", "relu", "gelu", "--shard", "1/3"], "2 activations cannot make 3 shards"),
    (["verify", "--all", "--shard", "1/2", "--latency"], "without --shard"),
    (["merge"], "the following arguments are required: REPORT"),
])
def test_shard_usage_errors(capsys, argv, message):
    assert main(argv) == 2
    assert message in _one_error_line(capsys)


def test_a_report_reads_back_as_written(runs):
    path = runs[1][1]
    assert json_ready(jsonfile.document(reader.read(path))) == json.loads(path.read_text())


def _edited(runs, tmp_path: Path, k: int, edit) -> Path:
    doc = json.loads(runs[k][1].read_text())
    edit(doc)
    path = tmp_path / f"edited{k}.json"
    write_json(path, doc)
    return path


def _set(keys: list, value):
    def edit(doc):
        d = doc
        for key in keys[:-1]:
            d = d[key]
        d[keys[-1]] = value
    return edit


@pytest.mark.parametrize("edit, message", [
    (_set(["environment", "versions", "torch"], "0.0.1"), "differ in versions: torch '0.0.1'"),
    (_set(["environment", "options", "formats"], ["onnx"]), "differ in options: formats"),
    (_set(["environment", "options", "opsets"], [21]), "differ in options: opsets"),
    (_set(["environment", "shard", "count"], 4), "a shard of 4"),
    (_set(["environment", "shard", "index"], 1), "are both shard 1/3"),
    (_set(["environment", "shard", "selection"], ["relu"]), "cover different activations"),
    (_set(["environment", "shard", "units"], []), "do not make the selection's"),
    (lambda doc: doc["environment"].pop("shard"), "not a shard's report"),
    (_set(["schema"], 99), "schema 99"),
    (_set(["cells", 0, "status"], "passed"), "cells[0].status"),
    (_set(["cells", 0, "max_ulp"], "3"), "cells[0].max_ulp"),
    (_set(["cells", 0, "surprise"], 1), "unknown field 'surprise'"),
    (_set(["summary", "exit_code"], 7), "does not match its cells"),
    (_set(["cells"], {}), "cells is dict"),
])
def test_merge_refuses_what_is_not_one_run(runs, tmp_path, capsys, edit, message):
    paths = [str(runs[1][1]), str(_edited(runs, tmp_path, 2, edit)), str(runs[3][1])]
    assert main(["merge", *paths]) == 2
    assert message in _one_error_line(capsys)


def test_merge_refuses_a_missing_or_duplicated_shard(runs, capsys):
    assert main(["merge", str(runs[1][1]), str(runs[3][1])]) == 2
    assert "shard(s) 2 of 3 missing" in _one_error_line(capsys)
    assert main(["merge", *(str(runs[k][1]) for k in (1, 2, 3, 2))]) == 2
    assert "are both shard 2/3" in _one_error_line(capsys)


@pytest.mark.parametrize("content, message", [
    (b"[1, 2", "is not valid JSON"), (b"\xff\xfe", "is not valid JSON"), (b"[" * 100_000, "is not valid JSON"),
    (b"[]", "the document is list"), (b"{}", "schema None"),
])
def test_hostile_files_are_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "r.json"
    path.write_bytes(content)
    assert main(["merge", str(path)]) == 2
    assert message in _one_error_line(capsys)


def test_an_oversized_file_is_refused_unread(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(reader, "MAX_BYTES", 10)
    path = tmp_path / "r.json"
    path.write_text('{"schema": 1, "padding": "xxxxxxxx"}')
    assert main(["merge", str(path), str(tmp_path / "absent.json")]) == 2
    assert "more than a report's 10 at most" in _one_error_line(capsys)
    assert main(["merge", str(tmp_path / "absent.json")]) == 2
    assert "cannot be read" in _one_error_line(capsys)


def test_shard_parses():
    assert Shard.parse(" 2/4 ") == Shard(2, 4) and str(Shard(2, 4)) == "2/4"
