"""Localization metrics with known answers, RPS behaviour and its mask source, Grad-CAM saliency."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from bgrepro import localize as loc
from bgrepro.cli import main
from bgrepro.datasets import load_variant
from bgrepro.models import load_checkpoint
from bgrepro.saliency import foreground_share, gradcam


def _rect_masks(n=4, h=20, w=24):
    masks = np.zeros((n, h, w), dtype=bool)
    boxes = []
    for i in range(n):
        x0, y0, x1, y1 = 2 + i, 3, 10 + 2 * i, 12 + i
        masks[i, y0:y1 + 1, x0:x1 + 1] = True
        boxes.append((x0, y0, x1, y1))
    return masks, np.array(boxes)


def test_metrics_known_answers():
    masks, boxes = _rect_masks()
    perfect = masks.astype(float)
    assert loc.pxap(perfect, masks) == pytest.approx(1)
    assert loc.piou(perfect, masks) == pytest.approx(1)
    assert loc.max_box_acc(perfect, boxes, iou=0.7) == pytest.approx(1)
    constant = np.full(masks.shape, 0.4)
    assert loc.pxap(constant, masks) == pytest.approx(masks.mean())
    assert loc.piou(constant, masks) == pytest.approx(masks.mean())  # everything predicted: IoU = fg share
    for mask, box in zip(masks, boxes):
        assert loc.box_from_map(mask.astype(float), 0.5) == tuple(box)
    inverted = 1 - perfect  # the map points at the background
    assert loc.pxap(inverted, masks) < masks.mean() + 0.01
    with pytest.raises(ValueError, match="match"):
        loc.pxap(perfect[:, :10], masks)
    with pytest.raises(ValueError, match="boxes"):
        loc.max_box_acc(perfect, boxes[:2])


def test_largest_component_wins_and_masks_from_maps():
    heat = np.zeros((20, 20))
    heat[1:4, 1:4] = 0.9  # small blob
    heat[8:18, 6:16] = 0.8  # large blob
    assert loc.box_from_map(heat, 0.5) == (6, 8, 15, 17)
    mask = loc.masks_from_maps(heat[None], 0.5)[0]
    assert mask.sum() == 100 and mask[10, 10] and not mask[2, 2]


class _PixelFeatures(nn.Module):
    """A stand-in backbone whose feature map is the image itself (C = 3)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        self.calls += 1
        return x


def _salient_images(n=16, size=24, seed=0):
    """Dim grey-ish backgrounds and one bright, high-norm, reddish square object per image."""
    rng = np.random.default_rng(seed)
    images = rng.integers(20, 60, size=(n, 3, size, size)).astype(np.uint8)
    masks = np.zeros((n, size, size), dtype=bool)
    for i in range(n):
        x0, y0 = rng.integers(0, size - 10, 2)
        masks[i, y0:y0 + 10, x0:x0 + 10] = True
        images[i, 0][masks[i]] = rng.integers(200, 256, masks[i].sum())
        images[i, 1][masks[i]] = rng.integers(60, 120, masks[i].sum())
    return torch.from_numpy(images), masks


def test_rps_is_one_pass_and_finds_high_norm_objects(tmp_path):
    images, masks = _salient_images()
    net = _PixelFeatures()
    rps = loc.estimate(net, images, labels=torch.arange(len(images)) % 9, batch_size=4)
    assert net.calls == 4  # one pass: each batch once
    assert rps.w.shape == (3,) and rps.w_class.shape == (9, 3)
    assert torch.allclose(rps.w.norm(), torch.tensor(1.0))
    maps = loc.activation_maps(net, images, rps).numpy()
    assert maps.shape == masks.shape and maps.min() >= 0 and maps.max() <= 1
    assert loc.pxap(maps, masks) > 0.95
    rps.save(tmp_path / "rps.pt")
    again = loc.RPS.load(tmp_path / "rps.pt")
    assert torch.equal(again.w, rps.w) and torch.equal(again.w_class, rps.w_class)
    # zero-shot: w* from one set applied to another set drawn differently
    other, other_masks = _salient_images(seed=1)
    assert loc.pxap(loc.activation_maps(net, other, rps).numpy(), other_masks) > 0.95


def test_localize_cli_and_rps_masks_feed_the_builder(tmp_path, tiny_variants, tiny_checkpoint, capsys):
    args = ["localize", "--data", str(tiny_variants), "--backbone", f"checkpoint:{tiny_checkpoint}", "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("maxboxacc", "pxap", "piou"):
        assert 0 <= summary[key] <= 1
    assert "pxap" in summary["caam"]
    masks_dir = tmp_path / "rps_masks"
    assert main([*args, "--class-wise", "labels", "--write-masks", str(masks_dir), "--out", str(tmp_path / "o")]) == 0
    written = json.loads(capsys.readouterr().out)["masks_written"]
    n_images = len(list((tiny_variants / "original").rglob("*.png")))
    assert 0 < written <= n_images == 81  # a briefly trained backbone finds no object in some
    for f in masks_dir.rglob("*.npy"):
        mask = np.load(f)
        assert mask.shape == (32, 32) and mask.any() and not mask.all()
    assert (tmp_path / "o" / "rps.pt").exists() and (tmp_path / "o" / "localize.json").exists()
    assert main([*args, "--write-masks", str(masks_dir)]) == 0  # resumes: nothing left to write
    assert json.loads(capsys.readouterr().out)["masks_written"] == 0
    out = tmp_path / "variants"
    assert main(["build", "--source", "folder", "--in", str(tiny_variants / "original"), "--masks", str(masks_dir),
                 "--out", str(out), "--size", "32", "--missing-masks", "reject",
                 "--variants", "only_bg_t,no_fg,only_fg"]) == 0
    built = len(load_variant(out, "only_fg", "train")) + len(load_variant(out, "only_fg", "val"))
    reasons = [line.split(",")[4] for line in (out / "rejections.csv").read_text().splitlines()[1:]]
    assert reasons.count("no_mask") == n_images - written
    assert 0 < built == n_images - len(reasons)
    assert main(["localize", "--data", str(tiny_variants), "--backbone", "nonexistent_net"]) == 2
    assert "nonexistent_net" in capsys.readouterr().err


def test_foreground_share_known_answers():
    masks, _ = _rect_masks()
    assert np.allclose(foreground_share(masks.astype(float), masks), 1)
    assert np.allclose(foreground_share(np.ones(masks.shape), masks), masks.mean(axis=(1, 2)))
    assert np.isnan(foreground_share(np.zeros(masks.shape), masks)).all()


def test_gradcam_batched_equals_per_image(tiny_variants, tiny_checkpoint):
    model, _ = load_checkpoint(tiny_checkpoint)
    data = load_variant(tiny_variants, "original", "val", with_masks=True)
    batched = gradcam(model, data.images[:12], batch_size=12)
    single = torch.cat([gradcam(model, data.images[i:i + 1], batch_size=1) for i in range(12)])
    assert batched.shape == (12, *data.images.shape[2:])
    assert (batched >= 0).all()
    assert torch.allclose(batched, single, atol=1e-5)
    share = foreground_share(batched, data.masks[:12])
    assert np.nanmin(share) >= 0 and np.nanmax(share) <= 1
