"""A user's model (`--module` with `--inputs`): any inputs and outputs, each output judged at its own
scale, the layer at fault named with the catalog's explanation, dynamic dims that hold."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from actexport.cli import main
from actexport.model import criterion
from actexport.model.batteries import batteries
from actexport.model.spec import flatten, load

ENCODER = ["--module", "actexport.examples:tiny_encoder", "--inputs", "actexport.examples:tiny_encoder_inputs"]
LOGSIGMOID = ["--module", "actexport.examples:logsigmoid_mlp", "--input-shape", "4,8"]


def _cells(path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def test_token_ids_a_bool_mask_and_dict_outputs_pass_verify_export_and_check(tmp_path, capsys):
    js = tmp_path / "r.json"
    assert main(["verify", *ENCODER, "--quiet", "--json", str(js)]) == 0
    cells = _cells(js)
    assert {c["runtime"] for c in cells} == {"eager:cpu", "ort:cpu", "torchscript:cpu", "pt2:cpu"}
    assert all(c["status"] == "pass" for c in cells)
    assert all([o["name"] for o in c["outputs"]] == ["last_hidden_state", "logits"] for c in cells)
    assert all(c["artifact"] is None for c in cells)  # exported into a folder the run removed
    out = tmp_path / "models"
    assert main(["export", *ENCODER, "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    onnx_entry = next(e for e in manifest["artifacts"] if e["format"] == "onnx")
    assert [(i["name"], i["dtype"]) for i in onnx_entry["inputs"]] == [("input_ids", "int64"), ("padding_mask", "bool")]
    assert main(["check", str(out), *ENCODER, "--quiet"]) == 0


def test_outputs_are_flattened_with_stable_names_and_judged_each():
    t = torch.zeros(2)
    names, _ = flatten({"last_hidden_state": t, "pooler": (t, [t]), "1": {"logits": t}})
    assert names == ["last_hidden_state", "pooler.0", "pooler.1.0", "1.logits"]
    assert flatten(t)[0] == ["output"]
    model = load("sample_models:nested_outputs", "sample_models:nested_inputs", None)
    assert model.outputs == ("0", "1.logits", "1.extra.0")
    assert [i.name for i in model.inputs] == ["x", "scale"]  # positional inputs take the forward's names


def test_a_non_tensor_output_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["verify", "--module", "sample_models:returns_a_string", "--input-shape", "2,3",
                 "--json", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "output 'text' is a str, not a tensor" in err[0]
    assert not (tmp_path / "r.json").exists()


def test_the_logsigmoid_mlp_fails_with_the_layer_and_the_catalog_row_named(tmp_path, capsys):
    js = tmp_path / "r.json"
    assert main(["verify", *LOGSIGMOID, "--formats", "onnx", "--quiet", "--json", str(js)]) == 1
    (ort,) = [c for c in _cells(js) if c["runtime"] == "ort:cpu"]
    assert ort["status"] == "fail"
    assert ort["origin"]["module_path"] == "1" and ort["origin"]["catalog"] == "logsigmoid"
    assert ort["origin"]["op"] == "LogSigmoid" and ort["origin"]["local_max_ulp"] > ort["origin"]["local_budget_ulp"]
    assert "Log(Sigmoid(x))" in ort["origin"]["declaration"]  # the catalog's declaration explains it
    assert ort["origin"]["graph_ops"] == ["Log", "Sigmoid"]  # the layer as the exported graph has it
    assert "the pt2 format" in ort["origin"]["avoid"]
    # onnx.reference was asked as the second vote on the failing cell, and said which side deviates
    assert ort["deviates"] in ("export", "runtime") and "onnx.reference" in ort["reason"]
    assert "starts at layer 1 (LogSigmoid, catalog logsigmoid" in capsys.readouterr().out


def test_a_deviation_with_no_single_origin_is_called_propagation(monkeypatch):
    from actexport.model import origin
    from actexport.runtimes.onnxrt import OrtRuntime
    model = load("actexport.examples:mlp", None, "4,32")
    x = [batteries(model, "float32")[0].tensors[0]]
    # every layer of this MLP exports and runs within budget on its own inputs
    found = origin.find(model, "onnx", lambda: OrtRuntime("cpu"), "float32", x, 18, "dynamo", "ort:cpu")
    assert found["module_path"] is None and "no single origin" in found["note"] and found["tried"] == 6


def test_the_budget_scales_with_each_output():
    names = ["random"]
    ref = np.array([2e-9, -1e-9, 5e-10])
    # 1e-4 relative: far past float32 at this scale, yet every element is under an absolute 1e-5 floor
    off = (ref * (1 + 1e-4)).astype(np.float32)
    eager = ref.astype(np.float32)
    own = criterion.figures("y", "float32", names, [eager], [ref], None)
    bad = criterion.figures("y", "float32", names, [off], [ref], [eager])
    assert own.ok and not bad.ok and bad.ulp_at_scale > 100
    # resnet18's figures: max_abs 7.6e-6 at a value of 12.8 is ~8 ULP at that scale, not 0
    big = np.array([12.8, -3.0, 0.5])
    shifted = (big + np.array([7.6e-6, 0, 0])).astype(np.float32)
    assert 6 <= criterion.figures("y", "float32", names, [shifted], [big], None).ulp_at_scale <= 9


def test_vacuous_outputs_fail_instead_of_passing():
    zero = criterion.figures("y", "float32", ["a", "b"], [np.zeros(4, np.float32)] * 2, [np.zeros(4)] * 2, None)
    assert not zero.ok and "0 on every input" in zero.vacuous
    const = criterion.figures("y", "float32", ["a", "b"], [np.full(4, 3, np.float32)] * 2, [np.full(4, 3.0)] * 2,
                              None)
    assert not const.ok and "constant 3" in const.vacuous
    assert "vacuous" in criterion.summary([zero])


def test_each_battery_has_its_own_budget():
    # eager loses 100 ULP on the edges; the artifact loses 90 on the example, where eager is exact
    ref = [np.array([1.0, 0.5]), np.array([1.0, 0.5])]
    step = float(np.spacing(np.float32(1.0)))
    eager = [ref[0].astype(np.float32), (ref[1] + [100 * step, 0]).astype(np.float32)]
    artifact = [(ref[0] + [90 * step, 0]).astype(np.float32), eager[1]]
    figures = criterion.figures("y", "float32", ["example", "edges"], artifact, ref, eager)
    assert not figures.ok and figures.worst_battery == "example" and figures.budget_ulp == criterion.FLOOR


def test_random_init_outputs_are_judged_at_their_scale_and_flagged(tmp_path, capsys):
    js = tmp_path / "r.json"
    main(["verify", "--module", "actexport.examples:tiny_output_cnn", "--inputs", "actexport.examples:image_inputs",
          "--formats", "onnx", "--quiet", "--json", str(js)])
    cells = _cells(js)
    (out,) = cells[0]["outputs"]
    assert out["scale"] < 1e-5 and out["ulp_at_scale"] > 0  # measured at ~1e-6, not hidden under a floor
    assert "random or untrained weights?" in capsys.readouterr().err


def test_a_realistic_batchnorm_cnn_passes_eager_float32_under_the_model_criterion(tmp_path):
    js = tmp_path / "r.json"
    assert main(["verify", "--module", "actexport.examples:bn_cnn", "--inputs", "actexport.examples:image_inputs",
                 "--quiet", "--json", str(js)]) == 0
    (eager,) = [c for c in _cells(js) if c["runtime"] == "eager:cpu"]
    assert eager["status"] == "pass" and eager["max_ulp"] < criterion.eager_budget("float32")


def test_integer_and_bool_inputs_stay_in_the_examples_range():
    model = load("actexport.examples:tiny_encoder", "actexport.examples:tiny_encoder_inputs", None)
    example = dict(zip([i.name for i in model.inputs], model.example))
    for b in batteries(model, "float32"):
        ids, mask = b.tensors
        assert ids.dtype == torch.int64 and mask.dtype == torch.bool
        assert int(ids.min()) >= int(example["input_ids"].min()) and int(ids.max()) <= int(example["input_ids"].max())
    random = batteries(model, "float32")[1]
    assert random.tensors[0].shape[0] == 4  # dim 0 doubled: the artifact must not have fixed it


def test_float_inputs_are_drawn_around_the_example_or_within_the_range():
    model = load("actexport.examples:bn_cnn", "actexport.examples:image_inputs", None)
    edges = batteries(model, "float32")[3].tensors[0]
    assert float(edges.abs().max()) == pytest.approx(100 * max(abs(model.inputs[0].low), abs(model.inputs[0].high)))
    ranged = load("actexport.examples:bn_cnn", "actexport.examples:image_inputs", None, value_range=(-1.0, 1.0))
    for b in batteries(ranged, "float32")[1:]:  # the example is the user's own
        assert float(b.tensors[0].abs().max()) <= 1.0, b.name


def test_real_samples_are_a_battery_and_a_hostile_file_is_refused(tmp_path, capsys):
    samples = tmp_path / "samples.pt"
    torch.save([torch.randn(3, 32), torch.randn(5, 32)], samples)
    js = tmp_path / "r.json"
    assert main(["verify", "--module", "actexport.examples:mlp", "--input-shape", "4,32", "--samples", str(samples),
                 "--formats", "pt2", "--quiet", "--json", str(js)]) == 0
    assert _cells(js)[0]["elements"] == (4 + 8 + 4 + 4 + 3 + 5) * 10  # the two samples were run too

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save([Evil()], tmp_path / "evil.pt")
    assert main(["verify", "--module", "actexport.examples:mlp", "--input-shape", "4,32",
                 "--samples", str(tmp_path / "evil.pt")]) == 2
    assert "not a torch.save file of tensors" in capsys.readouterr().err


def test_a_batch_1_example_exports_a_symbolic_batch_named_alike_everywhere(tmp_path, capsys):
    out = tmp_path / "models"
    mlp = ["--module", "actexport.examples:mlp", "--input-shape", "1,32"]
    assert main(["export", *mlp, "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    shapes = {e["format"]: (e["inputs"][0]["shape"], e["outputs"][0]["shape"]) for e in manifest["artifacts"]}
    assert shapes == {f: (["input_d0", 32], ["input_d0", 10]) for f in ("onnx", "torchscript", "pt2")}
    graph = onnx.load(str(out / "actexport.examples.mlp" / "model.onnx")).graph
    assert [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == ["input_d0", 32]
    assert [d.dim_param or d.dim_value for d in graph.output[0].type.tensor_type.shape.dim] == ["input_d0", 10]
    # the random battery runs batch 2: a .pt2 fixed at batch 1 would fail here (Guard failed)
    assert main(["check", str(out), *mlp, "--quiet"]) == 0


def test_onnx_reference_that_cannot_evaluate_leaves_the_side_undecided(tmp_path, monkeypatch):
    import onnx.reference

    class Broken:
        def __init__(self, *a, **k):
            raise ValueError("cannot reshape array of size 1 into shape (1,8)")

    monkeypatch.setattr(onnx.reference, "ReferenceEvaluator", Broken)
    js = tmp_path / "r.json"
    assert main(["verify", *LOGSIGMOID, "--formats", "onnx", "--quiet", "--json", str(js)]) == 1
    (ort,) = [c for c in _cells(js) if c["runtime"] == "ort:cpu"]
    assert ort["deviates"] == "" and "the side at fault is undecided" in ort["reason"]
    assert main(["verify", *ENCODER, "--formats", "onnx", "--quiet"]) == 0  # passing cells never ask it


def test_a_0d_input_and_a_none_output_verify(tmp_path):
    js = tmp_path / "r.json"
    # (TorchScript's tracer cannot return None at all: that format is an honest export error)
    assert main(["verify", "--module", "sample_models:scaled", "--inputs", "sample_models:scaled_inputs",
                 "--formats", "onnx,pt2", "--quiet", "--json", str(js)]) == 0
    cells = _cells(js)
    assert len(cells) == 3 and all([o["name"] for o in c["outputs"]] == ["0"] for c in cells)


def test_a_dim_torch_export_fixes_is_refused_not_called_dynamic(tmp_path, capsys):
    out = tmp_path / "models"
    assert main(["export", "--module", "sample_models:batch_as_number", "--input-shape", "2,3", "--formats", "pt2",
                 "--out", str(out)]) == 3
    assert "torch.export fixed dim 0 of input 'input' to 2" in capsys.readouterr().err
    assert json.loads((out / "manifest.json").read_text())["artifacts"] == []


def test_a_run_past_its_deadline_stops_with_exit_2(capsys):
    # the run's deadline is 20 x --timeout; an `except Exception` around a cell must not swallow it
    assert main(["verify", "--module", "sample_models:slow", "--input-shape", "2,3", "--timeout", "0.5"]) == 2
    assert "the run did not finish within 10 s (--timeout)" in capsys.readouterr().err


def test_check_judges_what_the_manifest_lists_and_nothing_else(tmp_path, capsys):
    out = tmp_path / "models"
    mlp = ["--module", "actexport.examples:mlp", "--input-shape", "4,32"]
    assert main(["export", *mlp, "--formats", "onnx,pt2", "--dtypes", "float32,float64", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    keep = [e for e in manifest["artifacts"] if (e["format"], e["dtype"]) in (("onnx", "float32"), ("pt2", "float64"))]
    for e in manifest["artifacts"]:
        if e not in keep:
            (out / e["path"]).unlink()
    (out / "manifest.json").write_text(json.dumps({**manifest, "artifacts": keep}))
    js = tmp_path / "r.json"
    assert main(["check", str(out), *mlp, "--quiet", "--json", str(js)]) == 0
    judged = [c for c in _cells(js) if c["format"] != "eager"]
    assert {(c["format"], c["dtype"]) for c in judged} == {("onnx", "float32"), ("pt2", "float64")}
    assert all(c["artifact"].startswith(str(out)) for c in judged)  # the deployed files


def test_output_dims_are_named_from_the_program_when_sizes_coincide(tmp_path):
    out = tmp_path / "models"
    assert main(["export", "--module", "actexport.examples:tiny_encoder", "--inputs",
                 "sample_models:square_encoder_inputs", "--dynamic-dims", "input_ids=0,1;padding_mask=0,1",
                 "--formats", "onnx,pt2", "--out", str(out)]) == 0
    entries = json.loads((out / "manifest.json").read_text())["artifacts"]
    for e in entries:
        assert e["outputs"][0]["shape"] == ["input_ids_d0", "input_ids_d1", 32]
        assert e["outputs"][1]["shape"] == ["input_ids_d0", 3]
    graph = onnx.load(str(out / "actexport.examples.tiny_encoder" / "model.onnx")).graph
    assert [d.dim_param or d.dim_value for d in graph.output[0].type.tensor_type.shape.dim] == [
        "input_ids_d0", "input_ids_d1", 32]
