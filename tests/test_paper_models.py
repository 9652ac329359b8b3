"""The paper's models as released: official (robustness-library) checkpoints, torchvision's original
ImageNet weights fetched through its own cache, timm names, and fp32 unless a lower precision is asked."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision

from bgrepro import registry
from bgrepro.analyses import evaluate
from bgrepro.cli import main
from bgrepro.registry import PAPER_WEIGHTS, pretrained_weights_path
from tests.conftest import load_model

IN9_MEAN, IN9_STD = (0.4717, 0.4499, 0.3837), (0.2600, 0.2516, 0.2575)  # the official IN-9 normaliser


def imagenet_model(arch, weights=None, tag=PAPER_WEIGHTS, offline=False, progress=True):
    """An ImageNet classifier by name (`bgrepro.registry`): its network, normalisation inside."""
    return registry.load(arch, offline=offline, weights=weights, tag=tag).net


def _official_file(path, net, mean=IN9_MEAN, std=IN9_STD, key="model", prefix="module."):
    """A checkpoint in the layout of the paper's released files (robustness library)."""
    state = {}
    for k, v in net.state_dict().items():
        state[f"{prefix}model.{k}"] = v
        state[f"{prefix}attacker.model.{k}"] = v.clone()
    for who in ("", "attacker."):
        state[f"{prefix}{who}normalizer.new_mean"] = torch.tensor(mean).view(3, 1, 1)
        state[f"{prefix}{who}normalizer.new_std"] = torch.tensor(std).view(3, 1, 1)
    torch.save({key: state, "optimizer": {"state": {}, "param_groups": []}, "schedule": None, "epoch": 30}, path)
    return path


def _expected_accuracy(net, data, variant, mean=IN9_MEAN, std=IN9_STD):
    images = evaluate.test_set(data, variant, "val")
    x = images.images.float() / 255
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        predictions = net.eval()(x).argmax(1)
    return (predictions == images.labels).float().mean().item()


def _fit_head(net, data, mean=IN9_MEAN, std=IN9_STD):
    """A least-squares linear head on the random trunk's features of the Original test images."""
    images = evaluate.test_set(data, "original", "val")
    x = (images.images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    fc, net.fc = net.fc, torch.nn.Identity()
    with torch.no_grad():
        raw = net(x)
        mu, scale = raw.mean(0), 1 / (raw.std(0) + 1e-6)
        target = torch.nn.functional.one_hot(images.labels, 9).float()
        weight = torch.linalg.lstsq((raw - mu) * scale, target, driver="gelsd").solution  # (features, 9)
        fc.weight.copy_((weight * scale[:, None]).T)
        fc.bias.copy_(-(mu * scale) @ weight)
    net.fc = fc


def test_official_checkpoint_scores_exactly_as_its_network_with_its_normaliser(tmp_path, tiny_variants, capsys):
    torch.manual_seed(0)
    net = torchvision.models.resnet50(num_classes=9).eval()
    _fit_head(net, tiny_variants)  # a network whose predictions vary from image to image
    path = _official_file(tmp_path / "in9l_resnet50.pt", net)
    assert main(["eval", "--data", str(tiny_variants), "--checkpoint", str(path), "--json",
                 "--record", str(tmp_path / "eval.json")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["format"].startswith("robustness") and result["precision"] == "fp32"
    assert result["precision_check"] is None
    for variant in ("original", "mixed_rand", "only_bg_t"):
        assert result["accuracy"][variant] == pytest.approx(_expected_accuracy(net, tiny_variants, variant), abs=1e-6)
    model, meta = load_model(path)
    assert meta["normalizer"]["mean"] == pytest.approx(IN9_MEAN) and meta["epoch"] == 30
    assert len(set(result["accuracy"].values())) > 1
    # `state_dict` instead of `model`, and no DataParallel prefix: read the same
    same = _official_file(tmp_path / "plain.pt", net, key="state_dict", prefix="")
    again, _ = load_model(same)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))


def test_official_checkpoint_of_another_architecture_or_normaliser_is_refused(tmp_path, tiny_variants, capsys):
    path = _official_file(tmp_path / "r18.pt", torchvision.models.resnet18(num_classes=9))
    assert main(["eval", "--data", str(tiny_variants), "--checkpoint", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "r18.pt" in err[0] and "--arch" in err[0]
    assert main(["eval", "--data", str(tiny_variants), "--checkpoint", str(path), "--arch", "resnet18",
                 "--json", "--record", str(tmp_path / "e.json")]) == 0
    capsys.readouterr()
    bad = _official_file(tmp_path / "nan.pt", torchvision.models.resnet18(num_classes=9), std=(0.2, float("nan"), 0.2))
    with pytest.raises(ValueError, match="nan.pt.*new_std"):
        load_model(bad, arch="resnet18")


def test_offline_pretrained_fails_naming_the_papers_weights_file(tmp_path, tiny_variants, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert main(["eval", "--data", str(tiny_variants), "--arch", "resnet50", "--pretrained", "--offline"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "resnet50-0676ba61.pth" in err[0] and "--offline" in err[0]
    assert PAPER_WEIGHTS == "IMAGENET1K_V1"
    assert pretrained_weights_path("resnet50", "IMAGENET1K_V2").name == "resnet50-11ad3fa6.pth"


def test_pretrained_weights_are_fetched_through_torchvisions_cache(tmp_path, monkeypatch):
    """The download goes through torchvision's own hub cache; here the network is replaced by a function
    that leaves a state dict of the real layout where torch.hub would."""
    import torchvision.models._api as api

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(1)
    reference = torchvision.models.resnet18()
    calls = []

    def fake_download(url, *args, **kwargs):
        calls.append((url, kwargs))
        target = pretrained_weights_path("resnet18")
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.save(reference.state_dict(), target)
        return torch.load(target, weights_only=True)

    monkeypatch.setattr(api, "load_state_dict_from_url", fake_download)
    model = imagenet_model("resnet18", progress=False)
    assert calls[0][0].endswith("resnet18-f37072fd.pth") and calls[0][1]["check_hash"] is True
    assert pretrained_weights_path("resnet18").exists()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.net(x), reference.eval()(x))
    imagenet_model("resnet18", offline=True)  # now cached: offline works, no second download
    assert len(calls) == 1

    def failing(url, *args, **kwargs):
        raise ConnectionError("network unreachable")

    monkeypatch.setattr(api, "load_state_dict_from_url", failing)
    pretrained_weights_path("resnet18").unlink()
    with pytest.raises(OSError, match=r"resnet18-f37072fd.pth: could not download .*network unreachable"):
        imagenet_model("resnet18", progress=False)
    with pytest.raises(ValueError, match="IMAGENET1K_V9.*IMAGENET1K_V1"):
        imagenet_model("resnet18", tag="IMAGENET1K_V9")


def test_timm_names_from_a_local_file_and_offline(tmp_path, monkeypatch):
    timm = pytest.importorskip("timm")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    torch.manual_seed(2)
    reference = timm.create_model("resnet10t", pretrained=False).eval()
    torch.save(reference.state_dict(), tmp_path / "resnet10t.pth")
    model = imagenet_model("resnet10t", weights=tmp_path / "resnet10t.pth")
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.net(x), reference(x))
    assert tuple(model.normalize.mean.flatten().tolist()) == pytest.approx(reference.pretrained_cfg["mean"])
    with pytest.raises(FileNotFoundError, match="resnet10t.*not in the Hugging Face cache"):
        imagenet_model("resnet10t", offline=True)
    with pytest.raises(ValueError, match="unknown architecture 'not_a_net'"):
        imagenet_model("not_a_net")


def test_lower_precision_is_opt_in_and_reports_its_flips(tmp_path, tiny_variants, tiny_checkpoint, capsys):
    args = ["--data", str(tiny_variants), "--checkpoint", str(tiny_checkpoint), "--json"]
    assert main(["eval", *args, "--record", str(tmp_path / "a.json")]) == 0
    fp32 = json.loads(capsys.readouterr().out)
    assert main(["eval", *args, "--precision", "bf16", "--record", str(tmp_path / "b.json")]) == 0
    bf16 = json.loads(capsys.readouterr().out)
    assert fp32["precision"] == "fp32" and fp32["precision_check"] is None
    check = bf16["precision_check"]
    assert check["precision"] == "bf16" and check["sample"] == fp32["n"]["original"]
    assert 0 <= check["flipped"] <= check["sample"]
    assert main(["challenge", *args]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "fp32"
