"""The export cache: keys that follow the module, checksummed reuse, corrupt entries rebuilt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from torch import nn

from actexport import artifacts as art
from actexport import cache as ec
from actexport import catalog
from actexport.cli import main
from actexport.exporters import ExportResult
from actexport.pool import ExportJob, Exports


def _job(act_id: str, out: Path, fmt: str = "onnx", dtype: str = "float32", opset: int = 18) -> ExportJob:
    act = catalog.get(act_id)
    return ExportJob(act, fmt, dtype, opset, "dynamo", art.artifact_path(out, act, fmt, dtype))


def test_key_follows_everything_that_changes_the_bytes(replace_row):
    act = catalog.get("leaky_relu_0.1")
    base = ec.key(act, "onnx", "float32", 18, "dynamo")
    assert base == ec.key(act, "onnx", "float32", 18, "dynamo")
    assert len({base, ec.key(act, "onnx", "float64", 18, "dynamo"), ec.key(act, "onnx", "float32", 20, "dynamo"),
                ec.key(act, "onnx", "float32", 18, "legacy"), ec.key(act, "pt2", "float32", 18, "dynamo"),
                ec.key(act, "onnx", "float32", 18, "dynamo+actexport")}) == 6
    # The opset and exporter do not change a TorchScript artifact, so they are not in its key.
    assert ec.key(act, "torchscript", "float32", 18, "dynamo") == ec.key(act, "torchscript", "float32", 20, "legacy")
    # A parameter, or the bytes of a weight, change the key; the id does not.
    assert ec.key(replace_row("leaky_relu_0.1", factory=lambda: nn.LeakyReLU(0.2)), "onnx", "float32", 18,
                  "dynamo") != base
    prelu = catalog.get("prelu_3ch")
    other = replace_row("prelu_3ch", factory=lambda: nn.PReLU(3))
    assert ec.key(other, "onnx", "float32", 18, "dynamo") != ec.key(prelu, "onnx", "float32", 18, "dynamo")
    assert ec.key(replace_row("leaky_relu_0.1", shape=(2, 3)), "onnx", "float32", 18, "dynamo") != base


def test_second_run_reuses_the_verified_bytes(tmp_path):
    cache = ec.ExportCache(tmp_path / "cache")
    cold, warm = _job("gelu", tmp_path / "a"), _job("gelu", tmp_path / "b")
    with Exports([cold], cache, workers=1) as exports:
        first = exports.result(cold)
    assert first.ok and first.cache == "stored" and first.seconds > 0
    with Exports([warm], cache, workers=1) as exports:
        second = exports.result(warm)
    assert second.cache == "hit" and second.path == warm.path
    assert warm.path.read_bytes() == cold.path.read_bytes()
    assert (second.opset, second.exporter, second.details, second.inputs) == (
        first.opset, first.exporter, first.details, first.inputs)
    assert isinstance(second.inputs, tuple)


def _entry(cache: ec.ExportCache, job: ExportJob) -> Path:
    k = ec.key(job.act, job.format, job.dtype, job.opset, job.exporter)
    return cache.root / ec.LAYOUT / k[:2] / k


@pytest.mark.parametrize("damage", ["flip a byte of the artifact", "truncate the artifact",
                                    "edit entry.json", "garble entry.json", "remove the artifact"])
def test_a_corrupted_entry_is_detected_and_rebuilt_not_used(tmp_path, damage):
    cache = ec.ExportCache(tmp_path / "cache")
    job = _job("relu", tmp_path / "a")
    with Exports([job], cache, workers=1) as exports:
        good = exports.result(job).path.read_bytes()
    entry = _entry(cache, job)
    artifact, meta = entry / ec.ARTIFACT, entry / ec.ENTRY
    if damage == "flip a byte of the artifact":
        data = bytearray(artifact.read_bytes())
        data[len(data) // 2] ^= 0x01
        artifact.write_bytes(bytes(data))
    elif damage == "truncate the artifact":
        artifact.write_bytes(artifact.read_bytes()[:100])
    elif damage == "edit entry.json":
        doc = json.loads(meta.read_text())
        doc["meta"]["result"]["opset"] = 17  # checksummed: an edit is detected
        meta.write_text(json.dumps(doc))
    elif damage == "garble entry.json":
        meta.write_text("{not json")
    else:
        artifact.unlink()

    again = _job("relu", tmp_path / "b")
    with Exports([again], cache, workers=1) as exports:
        result = exports.result(again)
    assert result.ok
    assert result.cache.startswith("corrupt entry discarded and rebuilt") and result.cache.endswith("stored")
    assert again.path.read_bytes() == good  # re-exported: the same bytes as the good entry had
    # The rebuilt entry is whole again: the next run is a plain hit.
    third = _job("relu", tmp_path / "c")
    with Exports([third], cache, workers=1) as exports:
        assert exports.result(third).cache == "hit"


def test_failures_are_cached_but_transient_ones_are_not(tmp_path):
    cache = ec.ExportCache(tmp_path / "cache")
    job = _job("rrelu", tmp_path / "a")  # the dynamo exporter has no translation for rrelu (declared)
    with Exports([job], cache, workers=1) as exports:
        first = exports.result(job)
    assert not first.ok and first.error and first.cache == "stored"
    with Exports([job], cache, workers=1) as exports:
        second = exports.result(job)
    assert second.cache == "hit" and second.error == first.error and second.path is None
    transient = ExportResult("onnx", None, "x", error="OSError: [Errno 28] No space left on device")
    assert cache.store("0" * 64, transient).startswith("not stored: the failure came from the machine")
    assert not (cache.root / ec.LAYOUT / "00").exists()


def test_an_unwritable_cache_is_reported_not_fatal(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = ec.ExportCache(blocker / "cache")  # a path below a file cannot be created
    job = _job("relu", tmp_path / "a")
    with Exports([job], cache, workers=1) as exports:
        result = exports.result(job)
    assert result.ok and result.cache.startswith("not stored: ")


def test_cli_cold_then_warm_then_corrupted(tmp_path, capsys):
    argv = ["verify", "relu", "gelu", "--cache-dir", str(tmp_path / "c"), "--quiet"]
    reports = []
    for n in range(3):
        assert main([*argv, "--json", str(tmp_path / f"r{n}.json")]) == 0
        reports.append(json.loads((tmp_path / f"r{n}.json").read_text()))
        if n == 1:  # corrupt every cached ONNX artifact before the third run
            for entry in (tmp_path / "c").rglob(ec.ARTIFACT):
                if entry.read_bytes()[:2] != b"PK":  # ONNX protobufs, not the zip-based formats
                    entry.write_bytes(entry.read_bytes()[:-1] + b"\0")
    caches = [sorted({e["cache"].split(":")[0] for e in r["exports"]}) for r in reports]
    assert caches[0] == ["stored"] and caches[1] == ["hit"]
    assert "corrupt entry discarded and rebuilt" in caches[2] and "hit" in caches[2]
    statuses = [[(c["activation"], c["runtime"], c["status"]) for c in r["cells"]] for r in reports]
    assert statuses[0] == statuses[1] == statuses[2]


@pytest.mark.parametrize("argv, message", [
    (["--no-cache", "--cache-dir", "x"], "not both"),
    (["--jobs", "0"], "invalid --jobs 0"),
])
def test_cache_flags_bad_usage(capsys, argv, message):
    assert main(["verify", "relu", *argv]) == 2
    assert message in capsys.readouterr().err


def test_unwritable_cache_dir_given_by_the_user_is_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["export", "relu", "--out", str(tmp_path / "out"), "--cache-dir", str(blocker / "c")]) == 2
    assert "cache directory" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_exact_reference_cache_reuses_only_what_matches_its_checksum(tmp_path, monkeypatch):
    from actexport.cache import ExactCache

    act = catalog.get("gelu")
    x = np.linspace(-3, 3, 7)
    cache = ExactCache(tmp_path)
    first = cache.exact(act, x)
    (entry,) = (tmp_path / "v1" / "exact").glob("*.npy")
    calls = []
    monkeypatch.setattr(type(act.oracle), "__call__", lambda self, x, precise=None: calls.append(1) or np.zeros(7))
    np.testing.assert_array_equal(cache.exact(act, x), first)  # a hit: the oracle is not asked
    assert calls == []
    entry.write_bytes(entry.read_bytes()[:-8] + np.float64(1e300).tobytes())  # tampered
    assert cache.exact(act, x).tolist() == [0.0] * 7 and calls == [1]  # recomputed, not trusted
    assert cache.exact(act, x.astype(np.float32)).tolist() == [0.0] * 7  # float32: never cached


def test_a_destination_that_cannot_be_written_never_costs_the_cache_its_entry(tmp_path, capsys):
    cache = ["--cache-dir", str(tmp_path / "c"), "--formats", "onnx"]
    assert main(["export", "sigmoid", "--out", str(tmp_path / "A"), *cache]) == 0
    entries = sorted(p.parent.name for p in (tmp_path / "c").rglob(ec.ARTIFACT))
    (tmp_path / "B").mkdir()
    (tmp_path / "B" / "sigmoid").write_text("a file where the export's folder goes")
    assert main(["export", "sigmoid", "--out", str(tmp_path / "B"), *cache]) != 0
    assert "sigmoid" in capsys.readouterr().err
    assert sorted(p.parent.name for p in (tmp_path / "c").rglob(ec.ARTIFACT)) == entries, "the good entry stays"
    # Every later run on the cache is served from it, as before the careless one.
    assert main(["verify", "sigmoid", *cache, "--quiet", "--json", str(tmp_path / "r.json")]) == 0
    assert [e["cache"] for e in json.loads((tmp_path / "r.json").read_text())["exports"]] == ["hit"]


def test_a_failure_of_the_machine_is_never_cached():
    from actexport.exporters import guarded

    def full_disk():
        raise RuntimeError("the exporter wrapped it") from OSError(28, "No space left on device")

    result = guarded("onnx", "x", full_disk)
    assert result.environmental
    assert ec.ExportCache(Path("/nonexistent")).store("k" * 64, result).startswith("not stored: the failure came")
