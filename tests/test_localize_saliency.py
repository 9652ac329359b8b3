"""Localization metrics with known answers, RPS behaviour and its mask source, Grad-CAM saliency."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from bgrepro import registry
from bgrepro.analyses import masks as rps_masks
from bgrepro.analyses import rps, wsol
from bgrepro.analyses.saliency import foreground_share, gradcam
from bgrepro.cli import main
from bgrepro.data.datasets import load_variant
from tests.conftest import load_model


def _rect_masks(n=4, h=20, w=24):
    masks = np.zeros((n, h, w), dtype=bool)
    boxes = []
    for i in range(n):
        x0, y0, x1, y1 = 2 + i, 3, 10 + 2 * i, 12 + i
        masks[i, y0:y1 + 1, x0:x1 + 1] = True
        boxes.append((x0, y0, x1, y1))
    return masks, np.array(boxes)


def _standard_iou(pred, gt):
    """IoU in the WSOL standard's inclusive-pixel convention, written out from its definition."""
    iw = max(0, min(pred[2], gt[2]) - max(pred[0], gt[0]) + 1)
    ih = max(0, min(pred[3], gt[3]) - max(pred[1], gt[1]) + 1)
    area = lambda b: (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return iw * ih / (area(pred) + area(gt) - iw * ih)


def test_metrics_known_answers():
    masks, boxes = _rect_masks()
    perfect = masks.astype(float)
    assert wsol.pxap(perfect, masks) == pytest.approx(100)
    assert wsol.piou(perfect, masks) == pytest.approx(100)
    # a contour's box reaches one pixel past the object (OpenCV's x + w), as in the standard, so even the
    # perfect map's IoU is w h / ((w + 1) (h + 1)) (capped at the image's last pixel)
    ious = wsol.best_ious(perfect, boxes)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        assert ious[i, 0] == pytest.approx(_standard_iou((x0, y0, x1 + 1, y1 + 1), (x0, y0, x1, y1)))
    assert wsol.max_box_acc(perfect, boxes, iou=0.7) == pytest.approx(100)
    # threshold 0 keeps the pixels strictly above 0: the object, never the whole image
    assert (ious[:, 0] == ious[:, 500]).all()
    constant = np.full(masks.shape, 0.4)  # normalised to zeros: nothing is ever kept, every pixel ties
    assert wsol.pxap(constant, masks) == pytest.approx(100 * masks.mean())
    assert wsol.piou(constant, masks) == pytest.approx(100 * masks.mean())  # everything predicted: IoU = fg share
    assert wsol.max_box_acc(constant, boxes, iou=0.3) == 0
    for mask, box in zip(masks, boxes):
        assert wsol.box_from_map(mask.astype(float), 0.5) == tuple(box)
    inverted = 1 - perfect  # the map points at the background
    assert wsol.pxap(inverted, masks) < 100 * masks.mean() + 1
    with pytest.raises(ValueError, match="match"):
        wsol.pxap(perfect[:, :10], masks)
    with pytest.raises(ValueError, match="boxes"):
        wsol.max_box_acc(perfect, boxes[:2])


def test_pxap_and_piou_by_hand():
    # four pixels ranked 1.0 (fg), 0.6 (bg), 0.3 (fg), 0.0 (bg): precision 1, 1/2, 2/3, 1/2 at recall
    # 1/2, 1/2, 1, 1 -> AP = 1 x 1/2 + 2/3 x 1/2; the best IoU is 2 / (2 + 1) at the third cut
    heat = np.array([[[1.0, 0.6], [0.3, 0.0]]])
    mask = np.array([[[True, False], [True, False]]])
    assert wsol.pxap(heat, mask) == pytest.approx(100 * (1 / 2 + 2 / 3 / 2))
    assert wsol.piou(heat, mask) == pytest.approx(100 * 2 / 3)
    ignore = np.array([[[False, True], [False, False]]])  # leave the 0.6 background pixel out
    assert wsol.pxap(heat, mask, ignore=ignore) == pytest.approx(100)
    assert wsol.pxap(heat * 7 + 3, mask) == pytest.approx(wsol.pxap(heat, mask))  # maps are min-max normalised
    with pytest.raises(ValueError, match="ignore"):
        wsol.pxap(heat, mask, ignore=ignore[:, :1])


def test_maxboxaccv2_known_answer():
    # one 20 x 20 object; the map's blob shifted right by s pixels -> known IoUs 0.91, 0.75, 0.55, 0.31
    gt = (10, 10, 29, 29)
    shifts = (0, 2, 5, 10)
    maps = np.zeros((4, 48, 48))
    for i, s in enumerate(shifts):
        maps[i, 10:30, 10 + s:30 + s] = 1
    expected = [_standard_iou((10 + s, 10, 30 + s, 30), gt) for s in shifts]
    assert np.round(expected, 2).tolist() == [0.91, 0.75, 0.55, 0.31]
    ious = wsol.best_ious(maps, np.tile(gt, (4, 1)))
    assert ious[:, 100] == pytest.approx(expected)
    m = wsol.box_metrics(maps, np.tile(gt, (4, 1)))
    assert (m["iou30"], m["iou50"], m["iou70"]) == (100, 75, 50)
    assert m["maxboxaccv2"] == pytest.approx(75)
    # several objects in one image: the best-matching ground-truth box counts
    assert wsol.box_metrics(maps, [np.array([(0, 0, 3, 3), gt])] * 4)["maxboxaccv2"] == pytest.approx(75)


def test_a_larger_decoy_does_not_hide_the_object():
    heat = np.zeros((1, 40, 40))
    heat[0, 2:30, 2:14] = 1.0  # the decoy: larger and as bright
    heat[0, 25:35, 25:35] = 0.8  # the object
    gt = np.array([(25, 25, 34, 34)])
    # the largest component's box (what bgrepro scored before) is the decoy's
    assert wsol.box_from_map(heat[0], 0.5) == (2, 2, 13, 29)
    assert _standard_iou(wsol.box_from_map(heat[0], 0.5), gt[0]) == 0
    # every contour's box is a candidate, so the object's box is found at every threshold below 0.8
    assert wsol.max_box_acc(heat, gt, iou=0.7) == 100
    assert wsol.best_ious(heat, gt)[0, :790].min() == pytest.approx(_standard_iou((25, 25, 35, 35), gt[0]))


def test_held_out_threshold_protocol():
    gt = np.tile((10, 10, 29, 29), (2, 1))
    maps = np.zeros((2, 48, 48))
    maps[:, 10:30, 10:30] = 0.5  # the object at half the peak
    maps[:, 18:22, 18:22] = 1.0  # a bright core
    # below 0.5 the whole object is kept (IoU 0.91), above it only the core (IoU < 0.1)
    t = wsol.best_threshold(maps, gt)
    assert t < 0.5
    assert wsol.box_metrics(maps, gt, threshold=t)["maxboxaccv2"] == 100
    assert wsol.box_metrics(maps, gt, threshold=0.6)["maxboxaccv2"] == 0
    assert wsol.box_metrics(maps, gt)["threshold@iou70"] < 0.5
    with pytest.raises(ValueError, match="threshold"):
        wsol.box_metrics(maps, gt, threshold=float("nan"))


def test_largest_component_wins_and_masks_from_maps():
    heat = np.zeros((20, 20))
    heat[1:4, 1:4] = 0.9  # small blob
    heat[8:18, 6:16] = 0.8  # large blob
    assert wsol.box_from_map(heat, 0.5) == (6, 8, 15, 17)
    mask = wsol.masks_from_maps(heat[None], 0.5)[0]
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
    predictor = rps.estimate(net, images, labels=torch.arange(len(images)) % 9, batch_size=4)
    assert net.calls == 4  # one pass: each batch once
    assert predictor.w.shape == (3,) and predictor.w_class.shape == (9, 3)
    assert torch.allclose(predictor.w.norm(), torch.tensor(1.0))
    maps = rps.activation_maps(net, images, predictor).numpy()
    assert maps.shape == masks.shape and maps.min() >= 0 and maps.max() <= 1
    assert wsol.pxap(maps, masks) > 95
    predictor.save(tmp_path / "rps.pt")
    again = rps.RPS.load(tmp_path / "rps.pt")
    assert torch.equal(again.w, predictor.w) and torch.equal(again.w_class, predictor.w_class)
    # zero-shot: w* from one set applied to another set drawn differently
    other, other_masks = _salient_images(seed=1)
    assert wsol.pxap(rps.activation_maps(net, other, predictor).numpy(), other_masks) > 95


def test_localize_cli_and_rps_masks_feed_the_builder(tmp_path, tiny_variants, tiny_checkpoint, capsys):
    args = ["localize", "--data", str(tiny_variants), "--backbone", f"checkpoint:{tiny_checkpoint}", "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("maxboxaccv2", "iou50", "pxap", "piou"):
        assert 0 <= summary[key] <= 100
    assert "pxap" in summary["caam"] and summary["protocol"].startswith("best")
    assert "not the method's" in summary["warning"]  # a trained classifier's trunk is a supervised backbone
    assert main([*args, "--protocol", "held-out"]) == 0  # the published protocol: threshold from train's masks
    held = json.loads(capsys.readouterr().out)
    assert held["protocol"].startswith("held-out: threshold") and "'train'" in held["protocol"]
    assert held["pxap"] == summary["pxap"] and held["maxboxaccv2"] <= summary["maxboxaccv2"]
    masks_dir = tmp_path / "rps_masks"
    assert main([*args, "--class-wise", "labels", "--write-masks", str(masks_dir), "--out", str(tmp_path / "o")]) == 0
    written = json.loads(capsys.readouterr().out)["masks_written"]
    n_images = len(list((tiny_variants / "original").rglob("*.png")))
    assert 0 < written <= n_images == 81  # a briefly trained backbone finds no object in some
    for f in masks_dir.rglob("*.npy"):
        mask = np.load(f)
        assert mask.shape == (32, 32) and mask.any() and not mask.all()
    assert (tmp_path / "o" / "rps.pt").exists() and (tmp_path / "o" / "localize.json").exists()
    again = [*args, "--class-wise", "labels", "--write-masks", str(masks_dir), "--out", str(tmp_path / "o")]
    assert main(again) == 0  # the same command resumes: nothing left to write
    assert json.loads(capsys.readouterr().out)["masks_written"] == 0
    before = sorted(masks_dir.rglob("*.npy"))
    assert main([*again, "--mask-threshold", "0.3"]) == 2  # other masks: never mixed with the old ones
    assert "mask_threshold: 0.5 -> 0.3" in capsys.readouterr().err and sorted(masks_dir.rglob("*.npy")) == before
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
    model, _ = load_model(tiny_checkpoint)
    data = load_variant(tiny_variants, "original", "val", with_masks=True)
    batched = gradcam(model, data.images[:12], batch_size=12)
    single = torch.cat([gradcam(model, data.images[i:i + 1], batch_size=1) for i in range(12)])
    assert batched.shape == (12, *data.images.shape[2:])
    assert (batched >= 0).all()
    assert torch.allclose(batched, single, atol=1e-5)
    share = foreground_share(batched, data.masks[:12])
    assert np.nanmin(share) >= 0 and np.nanmax(share) <= 1


# ----------------------------------------------------------------------------- RPS as published
def _backbone(spec, weights=None, resnet_stride=16, offline=False):
    """A named backbone with its weights, as `localize --backbone NAME --weights FILE` takes it."""
    return registry.load(spec, offline=offline, weights=weights).trunk(resnet_stride)


def test_resnet_features_at_stride_16_as_published(tmp_path):
    import torchvision

    torch.manual_seed(0)
    reference = torchvision.models.resnet50()
    torch.save(reference.state_dict(), tmp_path / "r50.pth")
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        assert _backbone("resnet50", tmp_path / "r50.pth")(x).shape == (1, 2048, 14, 14)
        assert _backbone("resnet50", tmp_path / "r50.pth", resnet_stride=32)(x).shape == (1, 2048, 7, 7)
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    with torch.no_grad():  # a basic-block ResNet too
        assert _backbone("resnet18", tmp_path / "r18.pth")(x[:, :, :64, :64]).shape == (1, 512, 4, 4)


def test_moco_query_encoder_is_unwrapped_and_the_key_encoder_ignored(tmp_path):
    import torchvision

    torch.manual_seed(1)
    query = torchvision.models.resnet18()
    state = {f"module.encoder_q.{k}": v for k, v in query.state_dict().items() if not k.startswith("fc.")}
    state.update({f"module.encoder_k.{k}": torch.zeros_like(v) for k, v in query.state_dict().items()})
    state["module.encoder_q.fc.0.weight"] = torch.zeros(512, 512)  # MoCo v2's projection head
    torch.save({"state_dict": state, "epoch": 200, "arch": "resnet18"}, tmp_path / "moco_v2.pth.tar")
    net = _backbone("resnet18", tmp_path / "moco_v2.pth.tar", resnet_stride=32)
    x = torch.rand(2, 3, 64, 64)
    trunk = nn.Sequential(*list(query.children())[:-2]).eval()
    normalize = net.normalize
    with torch.no_grad():
        assert torch.allclose(net(x), trunk(normalize(x)), atol=1e-6)


def test_vit_tokens_after_the_final_norm_through_a_relu(tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(2)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0).eval()
    torch.save(vit.state_dict(), tmp_path / "vit.pth")
    net = _backbone("vit_tiny_patch16_224", tmp_path / "vit.pth")
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        feats = net(x)
        tokens = vit.forward_features(net.normalize(x))[:, vit.num_prefix_tokens:]
    assert feats.shape == (1, 192, 14, 14) and (feats >= 0).all() and (feats == 0).any()
    assert torch.allclose(feats.flatten(2).transpose(1, 2), tokens.clamp_min(0), atol=1e-6)


def test_caam_is_the_channel_sum_and_estimation_resizes_and_caps():
    net = _PixelFeatures()
    images, masks = _salient_images()
    caam = rps.activation_maps(net, images, None).numpy()
    total = images.float().sum(1)
    expected = (total - total.amin((1, 2), keepdim=True)) / (total.amax((1, 2), keepdim=True)
                                                            - total.amin((1, 2), keepdim=True))
    assert np.allclose(caam, expected.numpy(), atol=1e-5)
    labels = torch.arange(len(images)) % 4
    at_224 = rps.estimate(net, images, size=224)
    assert torch.allclose(at_224.w, rps.estimate(net, rps.resize_images(images, 224)).w)
    assert rps.resize_images(images, 224).shape[-1] == 224 and rps.resize_images(images, None) is images
    capped = rps.estimate(net, images, labels, num_classes=4, per_class=1)
    first = rps.estimate(net, images[:4], labels[:4], num_classes=4)  # the first image of each class
    assert torch.allclose(capped.w_class, first.w_class) and torch.allclose(capped.w, first.w)


def test_saliency_command(tmp_path, tiny_variants, tiny_checkpoint, capsys):
    out = tmp_path / "sal"
    assert main(["saliency", "--data", str(tiny_variants), "--checkpoint", str(tiny_checkpoint), "--json",
                 "--per-class", "2", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 2 * len(summary["classes"]) and 0 < summary["mask_area"] < 1
    assert summary["foreground_share"] is None or 0 <= summary["foreground_share"] <= 1
    assert set(summary["per_class"]) == set(summary["classes"])
    assert json.loads((out / "saliency.json").read_text())["n"] == summary["n"]
    assert (out / "saliency.png").read_bytes()[:4] == b"\x89PNG"
    # the same numbers as the library's Grad-CAM and share on those images
    model, _ = load_model(tiny_checkpoint)
    test = load_variant(tiny_variants, "original", "val", with_masks=True).first_per_class(2)
    share = foreground_share(gradcam(model, test.images), test.masks)
    assert summary["foreground_share"] == pytest.approx(float(np.nanmean(share)))
    assert main(["saliency", "--data", str(tmp_path), "--checkpoint", str(tiny_checkpoint)]) == 2
    assert "fg_mask" in capsys.readouterr().err
    # an ImageNet model scored on IN-9 is explained through its own trunk
    import torchvision

    from bgrepro.in9 import CLASS_FOLDERS
    from bgrepro.registry.adapters import MappedOutputs
    from bgrepro.registry.architectures import Classifier
    from bgrepro.registry.classes import imagenet_groups

    mapped = MappedOutputs(Classifier(torchvision.models.resnet18()), imagenet_groups(CLASS_FOLDERS), 9).eval()
    assert gradcam(mapped, test.images[:2]).shape == (2, *test.images.shape[2:])


def test_self_supervised_backbones_by_name_through_torch_hubs_cache(tmp_path, monkeypatch):
    """The published backbones by name: the download goes through torch.hub into its cache (here replaced
    by a function leaving a state dict of the release's layout there), offline needs the file."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(3)
    query = torchvision.models.resnet50()
    fetched = []

    def fake_download(url, dst, progress=True):
        fetched.append(url)
        state = {f"module.encoder_q.{k}": v for k, v in query.state_dict().items() if not k.startswith("fc.")}
        state.update({f"module.encoder_k.{k}": torch.zeros_like(v) for k, v in query.state_dict().items()})
        torch.save({"state_dict": state, "epoch": 800}, dst)

    with pytest.raises(FileNotFoundError, match="moco_v2_800ep_pretrain.pth.tar.*offline"):
        _backbone("mocov2_resnet50", offline=True)
    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    net = _backbone("mocov2_resnet50", resnet_stride=32)
    assert fetched == [registry.SELF_SUPERVISED["mocov2_resnet50"][1]]
    x = torch.rand(1, 3, 64, 64)
    trunk = nn.Sequential(*list(query.children())[:-2]).eval()
    with torch.no_grad():
        assert torch.allclose(net(x), trunk(net.normalize(x)), atol=1e-5)
    _backbone("mocov2_resnet50", offline=True)  # cached now: no second download
    assert len(fetched) == 1


def test_grabcut_refines_a_coarse_rps_mask_into_the_objects_outline():
    """RPS finds roughly where the object is; GrabCut in that region's box draws its edge: the refined
    mask agrees with the true mask much better than the coarse blob it started from."""
    from tests.test_sources import photo

    ious_coarse, ious_refined = [], []
    for seed in range(4):
        image, truth, (x0, y0, x1, y1) = photo(seed % 3, 700 + seed)
        coarse = np.zeros_like(truth)  # a blob over the object's box, a little larger, as a thresholded map is
        coarse[max(0, y0 - 6):y1 + 7, max(0, x0 - 6):x1 + 7] = True
        refined = rps_masks.refine_by_grabcut(image, coarse)
        assert refined is not None and refined.shape == truth.shape
        ious_coarse.append(wsol.mask_iou(coarse[None], truth[None])[0])
        ious_refined.append(wsol.mask_iou(refined[None], truth[None])[0])
    assert np.mean(ious_refined) > np.mean(ious_coarse) + 0.1, (ious_coarse, ious_refined)
    whole = np.ones((40, 50), dtype=bool)  # a map that found no background: nothing to refine
    assert rps_masks.refine_by_grabcut(np.zeros((40, 50, 3), np.uint8), whole) is None
