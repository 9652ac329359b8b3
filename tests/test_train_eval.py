"""Models, checkpoints, the ImageNet mapping, training with resume and DDP, evaluation, records."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from bgrepro.analyses.evaluate import evaluate
from bgrepro.book.records import cached
from bgrepro.cli import main
from bgrepro.data import composite
from bgrepro.data.datasets import BatchStream, load_variant, mask_boxes
from bgrepro.in9 import CLASS_FOLDERS
from bgrepro.registry import ARCHS, create_model
from bgrepro.registry.adapters import MappedOutputs
from bgrepro.registry.classes import imagenet_groups
from bgrepro.training.classifier import TrainConfig, save_checkpoint, train
from tests.conftest import load_model


@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_gives_one_logit_per_class(arch):
    torch.manual_seed(0)
    model = create_model(arch, 5).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 64)).shape == (2, 5)


def test_checkpoint_round_trip_and_wrong_architecture(tmp_path):
    model = create_model("smallcnn", 9).eval()
    save_checkpoint(tmp_path / "ok.pt", model, {"arch": "smallcnn", "num_classes": 9, "variant": "original",
                                                "image_size": 32})
    loaded, meta = load_model(tmp_path / "ok.pt")
    x = torch.rand(3, 3, 32, 32)
    assert not loaded.training and meta["variant"] == "original"
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    save_checkpoint(tmp_path / "arch.pt", model, {"arch": "smallcnn_wide", "num_classes": 9})
    with pytest.raises(ValueError, match=r"arch\.pt: weights do not fit architecture 'smallcnn_wide'"):
        load_model(tmp_path / "arch.pt")
    save_checkpoint(tmp_path / "classes.pt", model, {"arch": "smallcnn", "num_classes": 10})
    with pytest.raises(ValueError, match="with 10 classes"):
        load_model(tmp_path / "classes.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"junk\.pt: unreadable"):
        load_model(tmp_path / "junk.pt")


class OneHot1000(torch.nn.Module):
    """A stand-in ImageNet model whose top-1 class is given per image."""

    def __init__(self, classes):
        super().__init__()
        self.classes = classes
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        logits = torch.zeros(len(x), 1000)
        logits[torch.arange(len(x)), torch.tensor(self.classes)] = 5.0
        return logits


def test_imagenet_mapping_follows_wordnet_ancestry():
    # dog 151, bird 7, vehicle 407, reptile 33, carnivore 387, insect 300, instrument 889, primate 384,
    # fish 0, and 500 (under no IN-9 class) -> 9, counted wrong
    top1 = [151, 7, 407, 33, 387, 300, 889, 384, 0, 500]
    preds = MappedOutputs(OneHot1000(top1), imagenet_groups(CLASS_FOLDERS), 9)(torch.zeros(10, 3, 8, 8)).argmax(1)
    assert preds.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]


def _tiny_config(data, **changes):
    return TrainConfig.from_profile(data, "tiny", **{"epochs": 3, **changes})


@pytest.mark.parametrize("changes", [{}, {"variant": "mixed_rand", "on_the_fly": True},
                                     {"optimizer": "adamw", "schedule": "step", "label_smoothing": 0.1, "lr": 0.01}])
def test_resumed_training_reproduces_the_uninterrupted_run(tmp_path, tiny_variants, changes):
    config = _tiny_config(tiny_variants, **changes)
    straight = train(config, tmp_path / "straight", progress=False)
    train(config, tmp_path / "resumed", progress=False, stop_after_epoch=1)  # as if killed after epoch 1
    assert (tmp_path / "resumed" / "last.pt").exists() and not (tmp_path / "resumed" / "checkpoint.pt").exists()
    resumed = train(config, tmp_path / "resumed", progress=False)
    a, b = torch.load(straight, weights_only=False), torch.load(resumed, weights_only=False)
    for key in a["state_dict"]:
        torch.testing.assert_close(a["state_dict"][key], b["state_dict"][key], rtol=0, atol=0)
    assert [h["loss"] for h in a["meta"]["history"]] == [h["loss"] for h in b["meta"]["history"]]


def test_run_folder_refuses_another_config(tmp_path, tiny_variants):
    train(_tiny_config(tiny_variants, epochs=1), tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="other arguments"):
        train(_tiny_config(tiny_variants, epochs=2), tmp_path / "run", progress=False)


def test_on_the_fly_mixed_rand_keeps_foregrounds_and_uses_other_backgrounds(tiny_variants):
    data = load_variant(tiny_variants, "original", "train", with_masks=True)
    stream = BatchStream(data, batch_size=16, train=False, mixed_rand=True)
    only_bg_t = composite.only_bg_t_torch(data.images, mask_boxes(data.masks))
    seen = 0
    for x, y in stream.epoch(seed=0, epoch=0):
        images = (x * 255).round().to(torch.uint8)
        for i in range(len(y)):
            k = seen + i
            mask = data.masks[k]
            assert torch.equal(images[i][:, mask], data.images[k][:, mask])
            outside = images[i][:, ~mask]
            matches = [j for j in range(len(data)) if torch.equal(outside, only_bg_t[j][:, ~mask])]
            assert matches and k not in matches
        seen += len(y)
    assert seen == len(data)


def test_ddp_training_with_two_cpu_processes(tmp_path, tiny_variants):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "bgrepro", "train", "--data", str(tiny_variants), "--variant", "original", "--profile", "tiny",
           "--out", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    model, meta = load_model(tmp_path / "ddp" / "checkpoint.pt")
    assert meta["history"][-1]["images_per_second"] > 0 and len(meta["history"]) == 2


def test_evaluate_and_eval_cli(tmp_path, tiny_variants, capsys, monkeypatch):
    monkeypatch.setenv("BGREPRO_RESULTS", str(tmp_path / "results"))
    checkpoint = train(_tiny_config(tiny_variants, epochs=1), tmp_path / "run", progress=False)
    model, _ = load_model(checkpoint)
    result = evaluate(model, tiny_variants)
    assert set(result["accuracy"]) == {"original", "only_bg_b", "only_bg_t", "no_fg", "only_fg",
                                       "mixed_same", "mixed_rand", "mixed_next"}
    assert result["bg_gap"] == pytest.approx(result["accuracy"]["mixed_same"] - result["accuracy"]["mixed_rand"])
    assert all(len(v) == 9 for v in result["per_class"].values())
    assert main(["eval", "--data", str(tiny_variants), "--checkpoint", str(checkpoint), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["accuracy"] == result["accuracy"] and "bg_gap" in printed
    assert not (tmp_path / "run" / "eval.json").exists()  # never beside the model: in bgrepro's results folder
    (record,) = (tmp_path / "results" / "eval").glob("checkpoint-*.json")
    assert json.loads(record.read_text())["accuracy"] == result["accuracy"]


def test_records_are_cached_by_config(tmp_path):
    calls = []

    def compute(cfg):
        calls.append(cfg)
        return {"value": np.float64(cfg["x"]).item() * 2}

    first = cached("demo", {"x": 1, "seed": 3}, compute, root=tmp_path)
    again = cached("demo", {"x": 1, "seed": 3}, compute, root=tmp_path)
    other = cached("demo", {"x": 2, "seed": 3}, compute, root=tmp_path)
    assert len(calls) == 2 and first == again and other.metrics["value"] == 4
    prov = first.provenance
    assert prov["seed"] == 3 and prov["versions"]["torch"] == torch.__version__ and prov["wall_seconds"] >= 0
    nan = cached("demo", {"x": 3}, lambda cfg: {"value": float("nan"), "rows": [1.0, float("inf")]}, root=tmp_path)
    stored = json.loads(nan.path.read_text(), parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    assert stored["metrics"] == {"value": None, "rows": [1.0, None]} == nan.metrics  # null, never NaN


def test_default_augmentation_copies_pixels_without_blurring():
    from bgrepro.data.datasets import augment

    x = torch.rand(32, 3, 40, 40)
    y = augment(x, torch.Generator().manual_seed(0))
    for i in range(len(x)):
        assert torch.isin(y[i].flatten(), x[i].flatten()).all(), "a pixel was interpolated"
    assert not torch.equal(y, augment(x, torch.Generator().manual_seed(1)))


class _Payload:
    """Pickles to a call that would leave a marker file if it ever ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_hostile_checkpoint_runs_no_code(tmp_path, tiny_variants, capsys):
    marker = tmp_path / "ran"
    hostile = tmp_path / "hostile.pt"
    torch.save({"format": "bgrepro-checkpoint-1", "meta": {"arch": "smallcnn"}, "state_dict": _Payload(marker)},
               hostile)
    for command in (["eval"], ["challenge"]):
        assert main([*command, "--data", str(tiny_variants), "--checkpoint", str(hostile)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(hostile) in err
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"meta": {"config": {}}, "x": _Payload(marker)}, run / "last.pt")  # a planted resume file
    config = TrainConfig.from_profile(tiny_variants, "tiny", epochs=1)
    with pytest.raises(FileExistsError, match="did not make"):  # not a run folder of bgrepro's: not even read
        train(config, run, progress=False)
    from bgrepro.outputs import fingerprint, write_marker

    write_marker(run, "train", config.as_dict(), {"--data": fingerprint(tiny_variants)})  # as if bgrepro's own
    with pytest.raises(ValueError, match="last.pt"):
        train(config, run, progress=False)
    assert not marker.exists()


def test_bootstrap_intervals_have_their_known_properties():
    from bgrepro.analyses.evaluate import bootstrap_intervals

    rng = np.random.default_rng(1)
    half = rng.permutation(np.r_[np.ones(200, bool), np.zeros(200, bool)])
    ids = [f"c/{i}" for i in range(400)]
    ci, gap = bootstrap_intervals({"original": np.ones(400, bool), "mixed_same": half, "mixed_rand": half.copy()},
                                  {"original": ids, "mixed_same": ids, "mixed_rand": ids}, resamples=2000)
    assert ci["original"] == [1.0, 1.0]  # no spread where every image is right
    lo, hi = ci["mixed_same"]
    assert lo < 0.5 < hi and 0.08 < hi - lo < 0.12  # about 2 x 1.96 x sqrt(0.25 / 400) = 0.098
    assert gap == [0.0, 0.0]  # paired: the same images drawn for both sets, which agree image by image
    again = bootstrap_intervals({"mixed_same": half}, {"mixed_same": ids}, resamples=2000)[0]
    assert again == bootstrap_intervals({"mixed_same": half}, {"mixed_same": ids}, resamples=2000)[0]  # seeded
    shuffled = {"mixed_same": half, "mixed_rand": rng.permutation(half)}  # same accuracy, other images right
    _, gap = bootstrap_intervals(shuffled, {"mixed_same": ids, "mixed_rand": ids}, resamples=2000)
    assert gap[0] < 0 < gap[1] and gap[1] - gap[0] > 0.08


def test_eval_json_gives_intervals(tmp_path, tiny_variants, tiny_checkpoint, capsys):
    assert main(["eval", "--data", str(tiny_variants), "--checkpoint", str(tiny_checkpoint), "--json",
                 "--record", str(tmp_path / "e.json")]) == 0
    result = json.loads(capsys.readouterr().out)
    for variant, (lo, hi) in result["ci95"].items():
        assert 0 <= lo <= result["accuracy"][variant] <= hi <= 1
    lo, hi = result["bg_gap_ci95"]
    assert lo <= result["bg_gap"] <= hi and result["bootstrap"]["resamples"] == 1000
    # the class-by-background matrix of every mixed set (issue 32), its groups adding up to the set
    groups = result["groups"]["mixed_rand"]
    assert sum(g["n"] for g in groups["groups"]) == result["n"]["mixed_rand"]
    assert groups["accuracy"] == pytest.approx(result["accuracy"]["mixed_rand"])
    assert all(g["ci95"][0] <= g["accuracy"] <= g["ci95"][1] for g in groups["groups"])
    assert {g["background"] for g in result["groups"]["mixed_next"]["groups"]} == set(result["classes"])
    assert all(g["foreground"] == g["background"] for g in result["groups"]["mixed_same"]["groups"])
    assert main(["eval", "--data", str(tiny_variants), "--checkpoint", str(tiny_checkpoint),
                 "--record", str(tmp_path / "t.json")]) == 0
    printed = capsys.readouterr().out
    assert "95% interval" in printed and "worst group of mixed_rand: " in printed and " backgrounds: " in printed


def test_fine_tuning_starts_from_imagenet_weights_but_the_class_layer(tmp_path, tiny_variants, capsys):
    """`--pretrained FILE`: every layer but the class layer starts from the ImageNet weights (a torchvision
    state dict in its real layout, made here); a file of another architecture is one line naming it."""
    import torchvision

    from bgrepro.registry import start_from_imagenet

    torch.manual_seed(0)
    imagenet = torchvision.models.resnet18().state_dict()
    weights = tmp_path / "resnet18-imagenet.pth"
    torch.save(imagenet, weights)
    model = start_from_imagenet(create_model("resnet18", 9), "resnet18", str(weights))
    own = model.net.state_dict()
    assert torch.equal(own["conv1.weight"], imagenet["conv1.weight"])
    assert torch.equal(own["layer4.1.bn2.running_var"], imagenet["layer4.1.bn2.running_var"])
    assert own["fc.weight"].shape == (9, 512)  # the data's classes, freshly initialised
    assert main(["train", "--data", str(tiny_variants), "--variant", "original", "--out", str(tmp_path / "run"),
                 "--profile", "tiny", "--arch", "resnet18", "--epochs", "1", "--pretrained", str(weights)]) == 0
    meta = load_model(tmp_path / "run" / "checkpoint.pt")[1]
    assert meta["config"]["pretrained"] == str(weights)
    assert "pretrained" not in TrainConfig(data="x").as_dict()  # from-scratch records keep their keys
    torch.save(torchvision.models.alexnet().state_dict(), tmp_path / "alexnet.pth")
    capsys.readouterr()
    assert main(["train", "--data", str(tiny_variants), "--variant", "original", "--out", str(tmp_path / "run2"),
                 "--profile", "tiny", "--arch", "resnet18", "--epochs", "1", "--pretrained",
                 str(tmp_path / "alexnet.pth")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "alexnet.pth" in err[-1] and not (tmp_path / "run2" / "checkpoint.pt").exists()
