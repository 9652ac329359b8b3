"""The self-supervised backbone for RPS (SimSiam on the training images): deterministic, trained without
labels, read by `localize` as a self-supervised backbone."""

from __future__ import annotations

import json

import pytest
import torch

from bgrepro.cli import main
from bgrepro.registry import read_torch
from bgrepro.training.simsiam import SimSiamConfig, is_self_supervised, train_simsiam, views
from tests.conftest import load_model


def test_views_are_seeded_augmentations_in_range():
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    a = views(images, torch.Generator().manual_seed(0))
    b = views(images, torch.Generator().manual_seed(0))
    c = views(images, torch.Generator().manual_seed(1))
    assert a.shape == (6, 3, 32, 32) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_config_refuses_what_cannot_train():
    with pytest.raises(ValueError, match="batch"):
        SimSiamConfig(data="x", batch_size=1)
    with pytest.raises(ValueError, match="lr"):
        SimSiamConfig(data="x", lr=float("nan"))


def test_simsiam_trains_without_labels_deterministically_and_localize_reads_it(tiny_variants, tmp_path, capsys):
    config = SimSiamConfig(data=str(tiny_variants), epochs=2, batch_size=16, seed=3)
    first = train_simsiam(config, tmp_path / "a", progress=False)
    second = train_simsiam(config, tmp_path / "b", progress=False)
    one, two = (read_torch(p)["state_dict"] for p in (first, second))
    assert all(torch.equal(one[k], two[k]) for k in one)  # the same config, the same weights
    meta = read_torch(first)["meta"]
    assert is_self_supervised(meta) and len(meta["history"]) == 2
    assert all(-1.0 <= h["loss"] <= 1.0 and h["z_std"] > 0 for h in meta["history"])
    torch.manual_seed(3)  # the untrained start: training moved the trunk
    model, _ = load_model(first)
    from bgrepro.registry import create_model

    fresh = create_model("smallcnn", len(meta["classes"])).state_dict()
    assert any(not torch.equal(fresh[k], model.state_dict()[k]) for k in fresh if k.startswith("net.features"))
    assert main(["localize", "--data", str(tiny_variants), "--backbone", f"checkpoint:{first}", "--json"]) == 0
    captured = capsys.readouterr()
    assert "supervised backbone" not in captured.err  # known to be self-supervised: no warning
    summary = json.loads(captured.out)
    assert summary["caam"]["pxap"] is not None and summary["pxap"] is not None
