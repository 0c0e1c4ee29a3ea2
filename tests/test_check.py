"""`actexport check DIR`, deployed artifacts from elsewhere, and reproducible exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from actexport.formats import FORMATS
from actexport import catalog
from actexport.artifacts import export_all, read_manifest, sha256
from actexport.cli import main
from actexport.exporters.onnx import DEFAULT_EXPORTER, DEFAULT_OPSET, OnnxExporter


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("small")
    assert main(["export", "relu", "gelu", "softmax", "--out", str(out), "--no-cache"]) == 0
    return out


@pytest.fixture
def deployed(small, tmp_path):
    import shutil

    shutil.copytree(small, tmp_path / "m")
    return tmp_path / "m"


def _snapshot(dir):
    return {p.relative_to(dir).as_posix(): sha256(p) for p in sorted(dir.rglob("*")) if p.is_file()}


def _relist(dir, rel):
    """What a careless (or hostile) hand does: rewrites the manifest's sha256 to match the file."""
    doc = json.loads((dir / "manifest.json").read_text())
    for e in doc["artifacts"]:
        if e["path"] == rel:
            e["sha256"] = sha256(dir / rel)
    (dir / "manifest.json").write_text(json.dumps(doc))


def test_check_of_a_fresh_export_exits_0_and_writes_nothing(deployed, capsys):
    before = _snapshot(deployed)
    assert main(["check", str(deployed), "--quiet"]) == 0
    assert "15 cells: " in capsys.readouterr().out
    assert _snapshot(deployed) == before


@pytest.mark.parametrize("rel", ["gelu/model.onnx", "relu/model.torchscript.pt", "softmax/model.pt2"])
def test_one_changed_byte_is_named_and_exits_1(deployed, capsys, rel):
    data = bytearray((deployed / rel).read_bytes())
    data[len(data) // 3] ^= 0x01
    (deployed / rel).write_bytes(bytes(data))
    assert main(["check", str(deployed), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert f"{deployed / rel} changed since export: sha256" in out


def test_extra_and_missing_files(deployed, capsys):
    (deployed / "relu" / "model.onnx.bak").write_bytes(b"x")
    assert main(["check", str(deployed), "--quiet"]) == 1
    assert f"problem: {deployed / 'relu/model.onnx.bak'}: not listed in" in capsys.readouterr().out
    (deployed / "gelu" / "model.pt2").unlink()
    assert main(["check", str(deployed), "--quiet"]) == 3
    assert "gelu/model.pt2 is listed in the manifest but missing" in capsys.readouterr().out


def test_a_truncated_model_with_a_matching_checksum_is_refused(deployed, capsys):
    rel = "gelu/model.onnx"
    (deployed / rel).write_bytes((deployed / rel).read_bytes()[:200])
    _relist(deployed, rel)
    assert main(["check", str(deployed), "--quiet"]) == 1
    assert f"{deployed / rel} is not a valid ONNX model" in capsys.readouterr().out


def test_external_data_outside_the_directory_is_refused_not_followed(deployed, capsys, tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\0" * 16)
    rel = "relu/model.onnx"
    weight = helper.make_tensor("w", TensorProto.FLOAT, [4], [0.0] * 4)
    weight.data_location = TensorProto.EXTERNAL
    del weight.float_data[:]
    weight.external_data.add(key="location", value="../../secret.bin")
    graph = helper.make_graph([helper.make_node("Add", ["input", "w"], ["output"])], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["d0", 4])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["d0", 4])], [weight])
    # IR version 10, as torch.onnx writes: newer onnx defaults to IR 14, which onnxruntime < 1.32 cannot read.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    onnx.save(model, str(deployed / rel))
    _relist(deployed, rel)
    assert main(["check", str(deployed), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "keeps its data at '../../secret.bin', outside the artifact's directory: refused, not followed" in out


@pytest.mark.parametrize("setup, message", [
    (lambda d: d / "nope", "does not exist"),
    (lambda d: (d / "manifest.json").write_text("{") and d, "is not valid JSON"),
    (lambda d: (d / "manifest.json").write_text('{"schema": 1, "artifacts": []}') and d, "nothing to check"),
])
def test_check_bad_input_is_one_line_exit_2(tmp_path, capsys, setup, message):
    target = setup(tmp_path)
    assert main(["check", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_two_exports_of_the_catalog_are_byte_identical(exported, tmp_path):
    """Reproducible artifacts: the same catalog and versions give the same sha256, every format."""
    again = tmp_path / "again"
    export_all(catalog.CATALOG, FORMATS, ("float32",), again, (DEFAULT_OPSET,), DEFAULT_EXPORTER,
               cache=None)
    first = {e["path"]: e["sha256"] for e in read_manifest(exported)["artifacts"]}
    second = {e["path"]: e["sha256"] for e in read_manifest(again)["artifacts"]}
    assert len(first) == 3 * len(catalog.CATALOG) - 1  # rrelu has no dynamo ONNX artifact (declared)
    assert first == second


def test_check_of_a_directory_built_by_several_exports(tmp_path, capsys):
    mixed = tmp_path / "mixed"
    assert main(["export", "relu", "--formats", "torchscript", "--out", str(mixed)]) == 0
    assert main(["export", "tanh", "--formats", "pt2", "--out", str(mixed)]) == 0
    assert main(["check", str(mixed), "--quiet"]) == 0
    assert "2 skip" in capsys.readouterr().out  # relu/pt2 and tanh/torchscript were never exported there


@pytest.mark.parametrize("edit, message", [
    (lambda doc: doc["artifacts"].append(dict(doc["artifacts"][0])), "lists two"),
    (lambda doc: doc["artifacts"][0].update(sha256=5), "must be non-empty strings"),
    (lambda doc: doc["artifacts"][0].update(id=["a"]), "must be non-empty strings"),
    (lambda doc: doc["artifacts"][0].update(format="tflite"), "unknown format 'tflite'"),
    (lambda doc: doc["artifacts"][0].update(dtype="int8"), "unknown dtype 'int8'"),
    (lambda doc: [e.update(opset="x") for e in doc["artifacts"] if e["format"] == "onnx"], "has opset 'x'; valid: an integer in 1.."),
])
def test_malformed_manifest_entries_are_exit_2(deployed, capsys, edit, message):
    doc = json.loads((deployed / "manifest.json").read_text())
    edit(doc)
    (deployed / "manifest.json").write_text(json.dumps(doc))
    assert main(["check", str(deployed)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_a_symlinked_artifact_is_refused(deployed, capsys, tmp_path):
    outside = tmp_path / "outside.onnx"
    outside.write_bytes((deployed / "relu" / "model.onnx").read_bytes())
    (deployed / "relu" / "model.onnx").unlink()
    (deployed / "relu" / "model.onnx").symlink_to(outside)
    assert main(["check", str(deployed)]) == 2
    assert "a symbolic link: refused" in capsys.readouterr().err


def _replace_onnx(dir, rel, node, output_shape, opsets=()):
    """Puts a one-node ONNX model at dir/rel (input `input` [d0, d1]) and relists it in the manifest."""
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["d0", "d1"])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, output_shape)])
    # IR version 10, as torch.onnx writes: newer onnx defaults to IR 14, which onnxruntime < 1.32 cannot read.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), *opsets], ir_version=10)
    onnx.save(model, str(dir / rel))
    _relist(dir, rel)


def test_an_artifact_with_the_wrong_output_shape_fails_its_cell_only(deployed, capsys):
    _replace_onnx(deployed, "relu/model.onnx", helper.make_node("ReduceMax", ["input"], ["output"], keepdims=0), [])
    assert main(["check", str(deployed), "--quiet"]) == 1
    out = capsys.readouterr().out
    for rt in ("onnx.reference", "ort:cpu"):
        assert f"relu / onnx@18 / {rt} / float32: error: {rt} returned shape [] where the reference has" in out
    assert "15 cells: " in out  # the rest of the matrix ran


def test_a_pt2_archive_that_would_unpickle_code_is_refused(deployed, capsys, tmp_path):
    import pickle
    import zipfile

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    rel = "softmax/model.pt2"
    original = (deployed / rel).read_bytes()
    src = tmp_path / "good.pt2"
    src.write_bytes(original)
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(deployed / rel, "w") as out:
        for name in z.namelist():
            data = z.read(name)
            if name.endswith("constants_config.json"):
                doc = json.loads(data)
                doc.setdefault("config", {})["evil"] = {"path_name": "opaque_obj_9", "is_param": False,
                                                        "use_pickle": True, "tensor_meta": None}
                data = json.dumps(doc).encode()
            out.writestr(z.getinfo(name), data)
        constants = next(n for n in z.namelist() if n.endswith("constants_config.json")).rsplit("/", 1)[0]
        out.writestr(f"{constants}/opaque_obj_9", pickle.dumps(Payload()))
    _relist(deployed, rel)
    assert main(["check", str(deployed), "--quiet"]) == 1
    assert "loading it would run code: refused" in capsys.readouterr().out
    assert not marker.exists()


def _rewrite_program(dir, rel, change):
    """Rewrites the serialized program (models/*.json) inside a .pt2 archive with change(doc)."""
    import zipfile

    src = dir.parent / "original.pt2"
    src.write_bytes((dir / rel).read_bytes())
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dir / rel, "w") as out:
        for name in z.namelist():
            data = z.read(name)
            if "/models/" in name and name.endswith(".json"):
                doc = json.loads(data)
                change(doc)
                data = json.dumps(doc).encode()
            out.writestr(z.getinfo(name), data)
    _relist(dir, rel)


def _sizes(doc):
    for value in doc["graph_module"]["graph"]["tensor_values"].values():
        yield from (s["as_expr"] for s in value["sizes"] if "as_expr" in s)


@pytest.mark.parametrize("what", ["symbolic size", "node target", "both"])
def test_a_pt2_whose_text_torch_would_evaluate_as_code_is_refused(deployed, capsys, tmp_path, what):
    marker = tmp_path / "ran"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch() or Symbol('s0', positive=True, integer=True)"

    def change(doc):
        if what != "node target":  # torch.export.load hands each size to sympy.sympify, which runs Python
            for size in _sizes(doc):
                size["expr_str"] = code
        if what != "symbolic size":  # the target is found by attribute walk from `torch`: torch.os is os
            node = doc["graph_module"]["graph"]["nodes"][0]
            node["target"] = "torch.os.system"
            node["inputs"] = [{"name": "command", "arg": {"as_string": f"touch {marker}"}, "kind": 1}]

    _rewrite_program(deployed, "softmax/model.pt2", change)
    assert main(["check", str(deployed), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "softmax / pt2 / pt2:cpu / float32: error:" in out
    assert ("loading it would let torch evaluate that text: refused" in out), out
    assert not marker.exists()


@pytest.mark.parametrize("expr, why", [
    ("Pow(Integer(10), Integer(10000000000))", "Pow needs an integer literal exponent of at most 64"),
    ("Pow(Integer(10), Mul(Integer(10), Integer(10000000000000000000)))", "Pow needs an integer literal exponent"),
    ("10**10**20", "a power of a power"),
    ("Integer(" + "9" * 40 + ")", "a number longer than 20 digits"),
    ("Float('1.0', precision=100000000)", "a precision above 128 bits"),
    ("Symbol('s0').__class__", "unexpected character '.'"),
    ("exec('1')", "'exec' is not a sympy function"),
])
def test_sizes_that_would_hang_or_escape_sympy_are_refused(expr, why):
    from actexport.runtimes.pt2_text import Refused, check_expr

    with pytest.raises(Refused, match=re.escape(why)):
        check_expr(expr)


def test_what_torch_export_writes_is_accepted():
    from actexport.runtimes.pt2_text import check_expr, check_target

    for expr in ("Symbol('s31', positive=True, integer=True)", "Mul(Integer(2), Symbol('s0', integer=True))",
                 "FloorDiv(Symbol('s0', positive=True, integer=True), Integer(2))", "s0 + 2*s1", "-oo",
                 "Float('1.5', precision=53)", "PowByNatural(Symbol('s0', integer=True), Integer(2))"):
        check_expr(expr)
    for target in ("torch.ops.aten.glu.default", "_operator.getitem", "torch.ops.higher_order.cond", "torch.sym_max"):
        check_target(target)


def test_a_pt2_graph_may_not_read_files():
    from actexport.runtimes.pt2_text import Refused, check_target

    with pytest.raises(Refused, match="reaches outside the graph's tensors"):
        check_target("torch.ops.aten.from_file.default")


def _edit_manifest(dir, rel, **fields):
    doc = json.loads((dir / "manifest.json").read_text())
    for e in doc["artifacts"]:
        if e["path"] == rel:
            e.update(fields)
    (dir / "manifest.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("fields, message", [
    ({"opset": 0}, "has opset 0; valid: an integer in 1.."),
    ({"opset": None}, "has opset None; valid: an integer in 1.."),
    ({"exporter": 7}, "'exporter' of 'gelu/model.onnx' must be a str, not int"),
    ({"details": []}, "'details' of 'gelu/model.onnx' must be a dict, not list"),
    ({"onnx_exporter": "jit"}, "'gelu/model.onnx': unknown exporter 'jit'"),
    ({"graphs": "faster"}, "'gelu/model.onnx': unknown graph profile"),
])
def test_a_listed_file_is_verified_whatever_its_fields_say_or_the_manifest_is_refused(deployed, capsys, fields,
                                                                                      message):
    rel = "gelu/model.onnx"
    (deployed / rel).write_bytes(b"garbage that must never pass")
    _relist(deployed, rel)
    _edit_manifest(deployed, rel, **fields)
    assert main(["check", str(deployed), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_folder_linked_from_inside_dir_is_refused_and_nothing_outside_is_read(deployed, capsys, tmp_path):
    import shutil

    elsewhere = tmp_path / "elsewhere"
    shutil.move(deployed / "relu", elsewhere)
    (deployed / "relu").symlink_to(elsewhere, target_is_directory=True)
    assert main(["check", str(deployed), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "'relu' is a symbolic link: refused, not followed" in err
    assert "sha256" not in err


def test_hidden_files_are_not_listed_and_fail_the_check(deployed, capsys):
    (deployed / "gelu" / ".weights.bin").write_bytes(b"\0" * 64)
    assert main(["check", str(deployed), "--quiet"]) == 1
    assert f"{deployed / 'gelu' / '.weights.bin'}: not listed in" in capsys.readouterr().out


@pytest.mark.parametrize("entry, made_by", [
    ({"exporter": "torch.onnx.export(dynamo=True) + actexport graphs", "onnx_exporter": "dynamo",
      "graphs": "actexport"}, OnnxExporter("dynamo", "actexport")),
    # written before "onnx_exporter": torch.onnx's exporter is named only in the label
    ({"exporter": "torch.onnx.export(dynamo=False)", "graphs": "stock"}, OnnxExporter("legacy", "stock")),
    ({"exporter": "torch.onnx.export(dynamo=True) + candidates graphs"}, OnnxExporter("dynamo", "candidates")),
    ({}, None),
])
def test_a_manifest_entry_names_its_onnx_exporter(entry, made_by):
    from actexport.check import options_for
    from actexport.manifest import onnx_exporter

    assert onnx_exporter(entry) == made_by
    listed = {"id": "relu", "format": "onnx", "dtype": "float32", "opset": 18, "path": "relu/model.onnx", **entry}
    assert options_for({"artifacts": [listed]}).exporter == (made_by or OnnxExporter("dynamo", "stock")).key


def test_every_listed_file_is_checked_by_some_cell():
    from actexport.check import unverified
    from actexport.report import Cell, Report

    manifest = {"artifacts": [{"id": "relu", "format": "onnx", "dtype": "float32", "opset": 18, "path": "relu/model.onnx"},
                              {"id": "relu", "format": "pt2", "dtype": "float32", "path": "relu/model.pt2"}]}
    report = Report(cells=[Cell("relu", "", "onnx", "ort:cpu", "float32", status="pass", opset=18),
                           Cell("relu", "", "pt2", "pt2:cpu", "float32", status="skip")])
    assert unverified(Path("D"), manifest, report) == [
        "D/relu/model.pt2: listed in D/manifest.json but no cell verified it"]


def test_an_onnx_file_that_runs_in_no_runtime_fails_the_check(deployed, capsys):
    # An op of a domain the file's author chose: onnx's checker accepts it, no runtime has it.
    _replace_onnx(deployed, "relu/model.onnx",
                  helper.make_node("Relu", ["input"], ["output"], domain="com.nowhere", name="NOT_IMPLEMENTED"),
                  ["d0", "d1"], [helper.make_opsetid("com.nowhere", 1)])
    assert main(["check", str(deployed), "--quiet"]) == 1
    out = capsys.readouterr().out
    for rt in ("onnx.reference", "ort:cpu"):
        assert f"relu / onnx@18 / {rt} / float32: error: the artifact runs in no runtime here" in out


def test_a_listed_file_too_large_for_onnx_is_refused_unparsed_and_hashing_has_a_deadline(tmp_path):
    import resource

    from actexport.artifacts import onnx_problem

    sparse = tmp_path / "model.onnx"
    with open(sparse, "wb") as f:
        f.truncate(3 << 30)  # NOTE: sparse: 3 GiB that take no disk
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert "an ONNX protobuf is under 2 GiB" in onnx_problem(sparse)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000, "not read into memory (KiB)"
    with pytest.raises(TimeoutError, match=r"took longer than 1e-09 s \(--timeout\)"):
        sha256(sparse, seconds=1e-9)
