"""No file the tool reads may run code (issue 30): one hostile file per format and place, each planted with a
payload that would create a marker file if it ran. Every one must end the command in one line, exit code 2,
and no marker. The table `HOSTILE` is the security test: a new model format adds its rows here."""

from __future__ import annotations

import io
import json
import pickle
import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from bgrepro.cli import main

SIDE = 32


class Payload:
    """An object whose unpickling creates `marker` (the shape of every pickle exploit)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"import pathlib; pathlib.Path({str(self.marker)!r}).touch()",)


class Tiny(nn.Module):
    """A small classifier with a constant (a non-persistent buffer), so that an export has weights, constants
    and sample inputs to plant payloads in."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.register_buffer("scale", torch.ones(4), persistent=False)
        self.fc = nn.Linear(4, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean((2, 3)) * self.scale)


def _rewrite_zip(path: Path, change) -> None:
    """Rewrite a zip archive member by member: `change(name, body)` returns the new body (None: drop it), and
    may return extra members as a dict under the key None."""
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    extra = change(None, None) or {}
    with zipfile.ZipFile(path, "w") as z:
        for name, body in members.items():
            body = change(name, body)
            if body is not None:
                z.writestr(name, body)
        for name, body in extra.items():
            z.writestr(name, body)


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _export(path: Path) -> None:
    torch.manual_seed(0)
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(Tiny().eval(), (torch.rand(2, 3, SIDE, SIDE),), dynamic_shapes=({0: batch},))
    torch.export.save(program, path)


def _pickled_member(folder: str, config_name: str):
    """A `.pt2` rewrite: the first entry of a weights or constants config marked as pickled, its file a payload."""
    def plant(path: Path, marker: Path) -> None:
        def change(name, body):
            if name is None:
                return None
            if name.endswith(config_name):
                config = json.loads(body)
                first = next(iter(config["config"].values()))
                first["use_pickle"] = True
                plant.target = first["path_name"]
                return json.dumps(config)
            return body

        _export(path)
        _rewrite_zip(path, change)
        _rewrite_zip(path, lambda name, body: None if name is None else (
            _saved(Payload(marker)) if name.endswith(f"{folder}/{plant.target}") else body))
    return plant


def _in_model_json(edit):
    """A `.pt2` rewrite of its graph JSON by `edit(graph_json, marker)`."""
    def plant(path: Path, marker: Path) -> None:
        _export(path)

        def change(name, body):
            if name is None or not name.endswith("models/model.json"):
                return body
            return json.dumps(edit(json.loads(body), marker))

        _rewrite_zip(path, change)
    return plant


def _code(marker: Path) -> str:
    return f"__import__('pathlib').Path({str(marker)!r}).touch()"


def _expr(graph: dict, marker: Path) -> dict:
    text = json.dumps(graph).replace("Symbol(", f"{_code(marker)} or Symbol(", 1)
    assert text != json.dumps(graph)
    return json.loads(text)


def _guard(graph: dict, marker: Path) -> dict:
    graph["guards_code"] = [f"L['x'].size()[0] >= 1 and {_code(marker)}"]
    return graph


def _target(graph: dict, marker: Path) -> dict:
    node = graph["graph_module"]["graph"]["nodes"][0]
    node["target"] = "torch.os.system"
    return graph


def _prefix(path: Path) -> str:
    """The top folder of a zip archive's members (torch names it after the file)."""
    with zipfile.ZipFile(path) as z:
        return z.namelist()[0].split("/")[0]


def _aoti(path: Path, marker: Path) -> None:
    _export(path)
    member = f"{_prefix(path)}/data/aotinductor/model/model.so"
    _rewrite_zip(path, lambda name, body: {member: b"\x7fELF"} if name is None else body)


def _opaque(path: Path, marker: Path) -> None:
    _export(path)
    prefix = _prefix(path)

    def change(name, body):
        if name is None:
            return {f"{prefix}/data/constants/opaque_obj_0": pickle.dumps(Payload(marker))}
        if name.endswith("constants/model_constants_config.json"):
            config = json.loads(body)
            config["config"]["hidden"] = {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True,
                                          "tensor_meta": None}
            return json.dumps(config)
        return body

    _rewrite_zip(path, change)


def _sample_inputs(path: Path, marker: Path) -> None:
    _export(path)
    _rewrite_zip(path, lambda name, body: None if name is None else (
        _saved((Payload(marker),)) if name.endswith("sample_inputs/model.pt") else body))


def _torchscript(member: str):
    def plant(path: Path, marker: Path) -> None:
        torch.jit.save(torch.jit.trace(nn.Sequential(nn.Flatten(), nn.Linear(3 * SIDE * SIDE, 9)).eval(),
                                       torch.rand(1, 3, SIDE, SIDE)), path)
        _rewrite_zip(path, lambda name, body: None if name is None else (
            pickle.dumps(Payload(marker), protocol=2) if name.endswith(member) else body))
    return plant


def _onnx_custom_op(path: Path, marker: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Boom", ["images"], ["logits"], domain="evil.ops")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                                                          ["n", 3, SIDE, SIDE])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 9])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("evil.ops", 1)])
    onnx.save(model, path)


def _safetensors_pickle(path: Path, marker: Path) -> None:
    path.write_bytes(_saved({"fc.weight": Payload(marker)}))  # a pickle under the safetensors name


def _hf_folder(which: str):
    """A Hugging Face folder whose model (config.json) or image processor (preprocessor_config.json) names its
    own code, or whose weights are a pickle payload."""
    def plant(path: Path, marker: Path) -> None:
        from transformers import ResNetConfig, ResNetForImageClassification

        path.mkdir()
        config = ResNetConfig(num_labels=9, embedding_size=8, hidden_sizes=[8, 8], depths=[1, 1])
        ResNetForImageClassification(config).save_pretrained(path)
        (path / "evil_code.py").write_text(_code(marker) + "\n\nclass Evil:\n    pass\n")
        if which == "model":
            config_json = json.loads((path / "config.json").read_text())
            config_json["auto_map"] = {"AutoModelForImageClassification": "evil_code.Evil"}
            (path / "config.json").write_text(json.dumps(config_json))
        elif which == "processor":
            (path / "preprocessor_config.json").write_text(json.dumps(
                {"image_processor_type": "EvilProcessor", "auto_map": {"AutoImageProcessor": "evil_code.Evil"}}))
        else:
            for weights in path.glob("model.safetensors"):
                weights.unlink()
            torch.save({"resnet.embedder.x": Payload(marker)}, path / "pytorch_model.bin")
    return plant


def _torch_file(obj_of):
    def plant(path: Path, marker: Path) -> None:
        torch.save(obj_of(Payload(marker)), path)
    return plant


def _plain_pickle(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps({"fc.weight": Payload(marker)}))


#: (name, file name, how the hostile file is made, extra options): the formats bgrepro reads and the places a
#: payload can hide in each.
HOSTILE = [
    ("bgrepro checkpoint, payload in meta", "m.pt",
     _torch_file(lambda p: {"format": "bgrepro-checkpoint-1", "meta": p, "state_dict": {}}), []),
    ("official checkpoint, payload in the model", "m.pt", _torch_file(lambda p: {"model": {"module.model.x": p}}),
     []),
    ("state dict .pth", "m.pth", _torch_file(lambda p: {"fc.weight": p}), ["--arch", "resnet18"]),
    ("state dict in a training wrapper", "m.pth", _torch_file(lambda p: {"state_dict": {}, "optimizer": p}),
     ["--arch", "resnet18"]),
    ("pytorch_model.bin", "pytorch_model.bin", _torch_file(lambda p: p), ["--arch", "resnet18"]),
    ("plain pickle .bin", "weights.bin", _plain_pickle, ["--arch", "resnet18"]),
    ("TorchScript data.pkl", "m.torchscript.pt", _torchscript("data.pkl"), []),
    ("TorchScript constants.pkl", "m.torchscript.pt", _torchscript("constants.pkl"), []),
    (".pt2 sample_inputs", "m.pt2", _sample_inputs, []),
    (".pt2 constants (pickled)", "m.pt2", _pickled_member("constants", "model_constants_config.json"), []),
    (".pt2 weights (pickled)", "m.pt2", _pickled_member("weights", "model_weights_config.json"), []),
    (".pt2 opaque constant", "m.pt2", _opaque, []),
    (".pt2 shape expression", "m.pt2", _in_model_json(_expr), []),
    (".pt2 guard code", "m.pt2", _in_model_json(_guard), []),
    (".pt2 node target", "m.pt2", _in_model_json(_target), []),
    (".pt2 AOTInductor library", "m.pt2", _aoti, []),
    ("ONNX custom operator", "m.onnx", _onnx_custom_op, []),
    ("safetensors name, pickle inside", "m.safetensors", _safetensors_pickle, ["--arch", "resnet18"]),
    ("Hugging Face model auto_map", "hf-model", _hf_folder("model"), []),
    ("Hugging Face processor auto_map", "hf-processor", _hf_folder("processor"), []),
    ("Hugging Face pytorch_model.bin", "hf-weights", _hf_folder("weights"), []),
]


def test_the_table_covers_every_format_and_place():
    names = " ".join(name for name, *_ in HOSTILE)
    for needed in (".pth", ".bin", "state dict", "TorchScript", ".pt2 sample_inputs", ".pt2 constants",
                   ".pt2 weights", "ONNX", "safetensors", "model auto_map", "processor auto_map"):
        assert needed in names, needed


@pytest.mark.parametrize("name, filename, plant, options", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_no_payload_runs_and_the_run_ends_in_one_line(name, filename, plant, options, tiny_variants, tmp_path,
                                                      capsys):
    marker = tmp_path / "PAYLOAD_RAN"
    model = tmp_path / filename
    plant(model, marker)
    assert not marker.exists(), "making the file ran the payload"
    capsys.readouterr()  # what making the file printed
    code = main(["eval", "--data", str(tiny_variants), "--checkpoint", str(model), *options, "--bootstrap", "0",
                 "--record", str(tmp_path / "eval.json")])
    captured = capsys.readouterr()
    assert not marker.exists(), f"{name}: the payload ran"
    assert code == 2, (name, captured.err)
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bgrepro eval: error: "), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert not (tmp_path / "eval.json").exists()


def test_a_hub_models_configuration_is_read_before_its_weights(tmp_path, monkeypatch):
    """A hub id is checked as a folder is: its configuration files are fetched first, and an `auto_map` stops the
    load before any weights or code (the download itself is patched: no network in the tests)."""
    import huggingface_hub

    from bgrepro import registry

    folder = tmp_path / "snapshot"
    _hf_folder("processor")(folder, tmp_path / "PAYLOAD_RAN")
    asked = {}

    def snapshot_download(repo_id, allow_patterns=None, local_files_only=False):
        asked.update(repo_id=repo_id, patterns=allow_patterns, offline=local_files_only)
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    with pytest.raises(ValueError, match="auto_map"):
        registry.load("someone/evil-model", offline=True)
    assert asked["repo_id"] == "someone/evil-model" and asked["offline"] is True
    assert set(asked["patterns"]) == {"config.json", "preprocessor_config.json", "processor_config.json"}
    assert not (tmp_path / "PAYLOAD_RAN").exists()


def test_a_clean_export_with_a_fixed_batch_runs_that_many_at_a_time(tiny_variants, tmp_path, capsys):
    """An export traced for one image (its guard would fail on any other batch) is run one image at a time;
    a clean archive passes every check."""
    torch.manual_seed(0)
    program = torch.export.export(Tiny().eval(), (torch.rand(1, 3, SIDE, SIDE),))
    torch.export.save(program, tmp_path / "one.pt2")
    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.manual_seed(0)
    program = torch.export.export(Tiny().eval(), (torch.rand(2, 3, SIDE, SIDE),), dynamic_shapes=({0: batch},))
    torch.export.save(program, tmp_path / "any.pt2")
    records = {}
    for name in ("one.pt2", "any.pt2"):
        assert main(["eval", "--data", str(tiny_variants), "--checkpoint", str(tmp_path / name), "--bootstrap", "0",
                     "--json", "--record", str(tmp_path / f"{name}.json")]) == 0, capsys.readouterr().err
        records[name] = json.loads(capsys.readouterr().out)
    assert records["one.pt2"]["accuracy"] == records["any.pt2"]["accuracy"]


def test_the_checks_pass_what_torch_export_writes(tmp_path):
    """The allowlists are not so tight that a real network's export fails them (ResNet-18, a timm ViT)."""
    import timm
    import torchvision

    from bgrepro.registry.export import load_export

    batch = torch.export.Dim("batch", min=1, max=1024)
    for name, net in (("r18", torchvision.models.resnet18(num_classes=3)),
                      ("vit", timm.create_model("vit_tiny_patch16_224", num_classes=3, img_size=SIDE))):
        torch.export.save(torch.export.export(net.eval(), (torch.rand(2, 3, SIDE, SIDE),),
                                              dynamic_shapes=({0: batch},)), tmp_path / f"{name}.pt2")
        program = load_export(tmp_path / f"{name}.pt2")
        x = torch.rand(3, 3, SIDE, SIDE)
        assert torch.allclose(program.module()(x), net.eval()(x), atol=1e-4)
    shutil.rmtree(tmp_path, ignore_errors=True)
