"""Unsupervised object localization by representer point selection (RPS; Song et al., ICCV 2023).

A frozen backbone gives a feature map f(x) (C x h x w). Each location is scored by a linear
foreground predictor applied to the L2-normalised feature; its closed form needs two averages over
a training set, in one pass, with no training:

    v = mean over images of the mean raw feature vector,
    u = mean over images of the mean L2-normalised feature vector,
    w* = normalise(v - u ‖v‖ / ‖u‖).

The map is <w*, f / ‖f‖>, clamped at 0, min-max normalised per image and upsampled to the image.
Class-wise RPS keeps one w* per class (from labels, or from a classifier's predictions); zero-shot
transfer applies a w* estimated on one dataset to another. The class-agnostic activation map (CAAM,
the channel sum of f) is the baseline. As published: ResNet features at stride 16, w* estimated on
images resized to 224 px (`estimate(size=224)`; bgrepro's own checkpoints default to their training
size), ViT patch tokens after the final norm through a ReLU, MoCo / DINO checkpoints unwrapped.

Metrics follow the standard WSOL evaluation (Choe et al., CVPR 2020; clovaai/wsolevaluation) exactly;
maps and masks are (N, H, W) arrays, boxes (N, 4) xmin, ymin, xmax, ymax inclusive (or a list of
(k, 4) arrays for several objects), every number in %:

- `box_metrics` gives MaxBoxAccV2: each map min-max normalised, scaled to uint8 and thresholded at
  0, 0.001, ..., 0.999 of its maximum; the boxes of *all* contours are matched with the ground truth
  and the best IoU counts; BoxAcc at IoU 30/50/70, each at its best threshold, and their mean.
  `max_box_acc(maps, boxes, iou)` is one IoU's. With `threshold=` (the published protocol) every IoU is
  scored at one threshold chosen on a held-out split by `best_threshold`.
- `pxap`: the area under the pixel precision-recall curve, pixels pooled over the set, with optional
  ignore masks; `piou`: the best pooled pixel IoU over thresholds.

`box_from_map` (the largest component's box) serves figures and `masks_from_maps`, not the metrics.

Backbones (`backbone(spec)`): a bgrepro or official checkpoint (`checkpoint:PATH` or a path ending in
.pt), the paper's self-supervised backbones by name (`SELF_SUPERVISED`, fetched through torch.hub's
cache), a torchvision CNN by name (ImageNet weights, or `weights=` a DINO / MoCo / ImageNet file), or a
timm ViT by name with a weights file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import distributed
from .inference import Inference
from .models import Normalize, feature_trunk, safe_load
from .registry import SELF_SUPERVISED, self_supervised_weights

#: Map thresholds of the standard evaluation (wsolevaluation's default interval, 0.001).
CAM_THRESHOLDS = np.arange(0, 1, 0.001)
#: IoU thresholds (%) of MaxBoxAccV2.
IOU_THRESHOLDS = (30, 50, 70)


# ----------------------------------------------------------------------------- backbones
class _Trunk(torch.nn.Module):
    """Images in [0, 1] -> feature map (N, C, h, w)."""

    def __init__(self, net: torch.nn.Module, normalize: torch.nn.Module) -> None:
        super().__init__()
        self.normalize, self.net = normalize, net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


class _ViTTokens(torch.nn.Module):
    """A timm ViT as a feature-map backbone: patch tokens after the final norm (prefix tokens dropped),
    through a ReLU as in the published RPS, on their grid."""

    def __init__(self, vit: torch.nn.Module) -> None:
        super().__init__()
        self.vit = vit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.vit.forward_features(x)[:, getattr(self.vit, "num_prefix_tokens", 1):]  # after the final norm
        h, w = x.shape[2] // self.vit.patch_embed.patch_size[0], x.shape[3] // self.vit.patch_embed.patch_size[1]
        return torch.relu(tokens.transpose(1, 2).reshape(len(x), -1, h, w))


def _load_state(path: Path) -> dict:
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: backbone weights not found")
    state = safe_load(path, "backbone weights")
    for key in ("state_dict", "model", "teacher", "student"):  # common wrappers (DINO, MoCo, timm)
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state dict of tensors (backbone weights)")
    # DataParallel, DINO's backbone, MoCo v1/v2's query encoder (its key encoder stays prefixed and
    # unused), MoCo v3's base encoder, SimSiam's encoder
    prefixes = ("module.", "backbone.", "encoder_q.", "base_encoder.", "encoder.")
    clean = {}
    for k, v in state.items():
        for p in prefixes:
            k = k[len(p):] if k.startswith(p) else k
        clean[k] = v
    return clean


def _load_into(net: torch.nn.Module, path: Path) -> list[str]:
    """Load weights non-strictly; returns the missing keys (a shape mismatch is a clean error)."""
    try:
        missing, _ = net.load_state_dict(_load_state(path), strict=False)
    except RuntimeError as err:
        first = next((ln.strip() for ln in str(err).splitlines()[1:] if ln.strip()), str(err))
        raise ValueError(f"{path}: weights do not fit the backbone ({first[:160]})") from None
    return missing


def set_resnet_stride(net: torch.nn.Module, stride: int) -> torch.nn.Module:
    """A torchvision ResNet's output stride: 32 as built, or 16 (the published RPS: the last stage's
    first block at stride 1, no dilation, so 224 px give 14 x 14 features). Other networks unchanged."""
    if stride not in (16, 32):
        raise ValueError(f"the ResNet feature stride must be 16 or 32, got {stride}")
    net = getattr(net, "net", net)
    if stride == 16 and hasattr(net, "layer4"):
        for module in net.layer4[0].modules():
            if isinstance(module, torch.nn.Conv2d) and module.stride != (1, 1):
                module.stride = (1, 1)
    return net


class _Features(torch.nn.Module):
    """A timm CNN's `forward_features` (its last feature map) as a backbone."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(x)


def _any_trunk(loaded, path: Path, resnet_stride: int) -> torch.nn.Module:
    """The feature-map trunk of a model loaded by the registry (a torchvision or timm network, a Hugging Face
    classifier's backbone); formats without reachable layers are refused."""
    from .registry import core_of, supports_gradients

    if not supports_gradients(loaded.net):
        raise ValueError(f"{path}: RPS needs the network's feature maps, which its format ({loaded.format}) does "
                         "not give; pass a state dict (--arch) or a bgrepro checkpoint")
    net = core_of(loaded.net)
    net = getattr(net, "model", net)
    if hasattr(net, "patch_embed") and hasattr(net, "forward_features"):
        return _ViTTokens(net)
    set_resnet_stride(net, resnet_stride)
    try:
        return feature_trunk(net)
    except ValueError:
        if hasattr(net, "forward_features"):
            return _Features(net)
        inner = getattr(net, "resnet", None) or getattr(net, "base_model", None)  # Hugging Face: its backbone
        if inner is not None:
            return _HFFeatures(inner)
        raise ValueError(f"{path}: no feature trunk known for {type(net).__name__}") from None


class _HFFeatures(torch.nn.Module):
    """A Hugging Face vision backbone's last hidden state (a feature map) as a backbone."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_values=x).last_hidden_state


def backbone(spec: str, weights: Path | None = None, resnet_stride: int = 16, offline: bool = False,
             arch: str | None = None) -> torch.nn.Module:
    """A frozen feature-map backbone (eval mode; images in [0, 1] -> (N, C, h, w)): a bgrepro or official
    checkpoint, a torchvision CNN (ImageNet weights from `weights`, else torchvision's cache, downloaded
    unless `offline`), or a timm ViT (weights from a file). ResNets give stride-16 features by default,
    as published (`resnet_stride=32` keeps the built stride)."""
    from .models import PAPER_WEIGHTS, TORCHVISION_ARCHS, load_checkpoint, torchvision_state

    if spec in SELF_SUPERVISED:  # the published backbones by name, their files fetched through torch.hub
        weights = Path(weights) if weights else self_supervised_weights(spec, offline)
        spec = SELF_SUPERVISED[spec][0]
    if spec.startswith("checkpoint:") or spec.endswith(".pt"):
        from .registry import detect_format, load

        path = Path(spec.removeprefix("checkpoint:"))
        loaded = load(path, arch, offline) if detect_format(path) != "torch" or arch else None
        if loaded is None or loaded.format in ("bgrepro", "robustness"):
            model, _ = load_checkpoint(path, arch=arch)
            model = getattr(model, "model", model)  # an official ImageNet model mapped to IN-9
            set_resnet_stride(model, resnet_stride)
            trunk = _Trunk(feature_trunk(model), model.normalize)
        else:  # any other format's network: its trunk, with its own normalisation
            trunk = _Trunk(_any_trunk(loaded, path, resnet_stride), Normalize(
                loaded.preprocess.mean or (0.0, 0.0, 0.0), loaded.preprocess.std or (1.0, 1.0, 1.0)))
    elif spec in TORCHVISION_ARCHS:
        import torchvision

        net = torchvision.models.get_model(TORCHVISION_ARCHS[spec], weights=None)
        if weights:
            missing = _load_into(net, Path(weights))
            if any(not k.startswith(("fc.", "classifier.")) for k in missing):
                raise ValueError(f"{weights}: not {spec} weights (missing {missing[0]})")
        else:
            net.load_state_dict(torchvision_state(spec, PAPER_WEIGHTS, offline))
        set_resnet_stride(net, resnet_stride)
        trunk = _Trunk(feature_trunk(net), Normalize())
    else:
        try:
            import timm
        except ImportError:
            raise ValueError(f"unknown backbone {spec!r}: not a checkpoint or torchvision name, and timm is "
                             "not installed") from None
        if not timm.is_model(spec):
            raise ValueError(f"unknown backbone {spec!r}")
        if weights is None:
            raise ValueError(f"{spec}: pass the weights file (--weights)")
        vit = timm.create_model(spec, pretrained=False, num_classes=0)
        missing = _load_into(vit, weights)
        if missing:
            raise ValueError(f"{weights}: not {spec} weights (missing {missing[0]})")
        cfg = vit.pretrained_cfg
        trunk = _Trunk(_ViTTokens(vit), Normalize(cfg.get("mean"), cfg.get("std")))
    return trunk.eval().requires_grad_(False)


@torch.inference_mode()
def features(net: torch.nn.Module, images: torch.Tensor, batch_size: int = 128, device=None,
             progress: bool = False):
    """Yield feature maps (float32, on the CPU) of uint8 images (N, 3, H, W), batch by batch, computed on
    CUDA when available (or `device`)."""
    inference = Inference.at(device, batch_size=batch_size)
    net = inference.prepare(net)
    for _, x in tqdm(inference.batches(images), total=-(-len(images) // batch_size), desc="features",
                     disable=not progress):
        with torch.inference_mode():  # a frozen backbone: no autograd graph to keep
            feats = net(x).float().cpu()
        yield feats


# ----------------------------------------------------------------------------- RPS
@dataclass
class RPS:
    """The closed-form foreground predictor: class-agnostic `w` (C,) and optional class-wise `w_class` (K, C)."""

    w: torch.Tensor
    w_class: torch.Tensor | None = None

    def save(self, path: Path) -> None:
        from .io import atomic_write

        atomic_write(Path(path), lambda tmp: torch.save({"format": "bgrepro-rps-1", "w": self.w,
                                                         "w_class": self.w_class}, tmp))

    @classmethod
    def load(cls, path: Path) -> RPS:
        payload = safe_load(path, "RPS predictor")
        if not isinstance(payload, dict) or payload.get("format") != "bgrepro-rps-1":
            raise ValueError(f"{path}: not an RPS predictor saved by bgrepro")
        w, w_class = payload.get("w"), payload.get("w_class")
        if not isinstance(w, torch.Tensor) or w.ndim != 1 or not torch.isfinite(w).all():
            raise ValueError(f"{path}: RPS predictor w* must be a finite vector")
        if w_class is not None and (not isinstance(w_class, torch.Tensor) or w_class.ndim != 2
                                    or w_class.shape[1] != len(w)):
            raise ValueError(f"{path}: class-wise w* must be a (classes, {len(w)}) matrix")
        return cls(w, w_class)


def _closed_form(v: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    w = v - u * v.norm(dim=-1, keepdim=True) / u.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return F.normalize(w, dim=-1)


def resize_images(images: torch.Tensor, size: int | None) -> torch.Tensor:
    """uint8 images (N, 3, H, W) resized to size x size (bilinear, antialiased), or as they are for None."""
    if size is None or tuple(images.shape[2:]) == (size, size):
        return images
    out = torch.empty((len(images), images.shape[1], size, size), dtype=torch.uint8)
    for k in range(0, len(images), 256):  # in chunks: the float copy of a whole set can be large
        out[k:k + 256] = F.interpolate(images[k:k + 256].float(), size=(size, size), mode="bilinear",
                                       antialias=True, align_corners=False).round().clamp(0, 255).byte()
    return out


def estimate(net: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None,
             batch_size: int = 128, device=None, progress: bool = False, num_classes: int | None = None,
             size: int | None = None, per_class: int | None = None) -> RPS:
    """w* from one pass over a training set; with `labels` (true or predicted), also one w* per class
    (`num_classes` of them, by default the largest label + 1). `size`: the images are resized to
    size x size first (the published RPS estimates at 224 px); `per_class` caps the images per class
    (the first ones) that a class-wise w* averages."""
    if labels is not None:
        num_classes = num_classes or int(labels.max()) + 1
        if per_class is not None:
            keep = torch.zeros(len(labels), dtype=torch.bool)
            for c in range(num_classes):
                keep[torch.nonzero(labels == c).flatten()[:per_class]] = True
            images, labels = images[keep], labels[keep]
    images = resize_images(images, size)
    # running sums over this process's images (under torchrun: its block of whole batches), then the ranks'
    # sums added in rank order on every rank; memory is one set of sums whatever the number of images
    block = distributed.shard_batches(len(images), batch_size)
    sums = None
    for j, feats in enumerate(features(net, images[block], batch_size, device, progress and distributed.is_main())):
        raw = feats.mean(dim=(2, 3))  # (B, C): mean raw feature per image
        unit = F.normalize(feats, dim=1).mean(dim=(2, 3))  # mean normalised feature per image
        if sums is None:
            sums = {"n": 0, "v": torch.zeros(raw.shape[1], dtype=torch.float64)}
            sums["u"] = torch.zeros_like(sums["v"])
            if labels is not None:
                sums["v_cls"] = torch.zeros(num_classes, raw.shape[1], dtype=torch.float64)
                sums["u_cls"] = torch.zeros_like(sums["v_cls"])
                sums["counts"] = torch.zeros(num_classes, dtype=torch.float64)
        sums["n"] += len(raw)
        sums["v"] += raw.sum(0).double()
        sums["u"] += unit.sum(0).double()
        if labels is not None:
            start = block.start + j * batch_size
            lab = labels[start:start + len(raw)].long()
            sums["v_cls"].index_add_(0, lab, raw.double())
            sums["u_cls"].index_add_(0, lab, unit.double())
            sums["counts"] += torch.bincount(lab, minlength=num_classes).double()
    v_sum = u_sum = v_cls = u_cls = counts = None
    k = 0
    for part in distributed.gather([sums] if sums is not None else []):
        if v_sum is None:
            v_sum, u_sum = part["v"].clone(), part["u"].clone()
            if labels is not None:
                v_cls, u_cls, counts = part["v_cls"].clone(), part["u_cls"].clone(), part["counts"].clone()
        else:
            v_sum += part["v"]
            u_sum += part["u"]
            if labels is not None:
                v_cls += part["v_cls"]
                u_cls += part["u_cls"]
                counts += part["counts"]
        k += part["n"]
    if v_sum is None:
        raise ValueError("no images to estimate w* from")
    w = _closed_form(v_sum / k, u_sum / k).float()
    w_class = None
    if labels is not None:
        c = counts.clamp_min(1)[:, None]
        w_class = _closed_form(v_cls / c, u_cls / c).float()
        w_class[counts == 0] = w  # classes absent from the estimation set fall back to class-agnostic
    return RPS(w, w_class)


def _normalise_maps(scores: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    scores = scores.clamp_min(0)
    lo = scores.amin(dim=(1, 2), keepdim=True)
    hi = scores.amax(dim=(1, 2), keepdim=True)
    scores = (scores - lo) / (hi - lo).clamp_min(1e-12)
    return F.interpolate(scores[:, None], size=size, mode="bilinear", align_corners=False)[:, 0].clamp_(0, 1)


def activation_maps(net: torch.nn.Module, images: torch.Tensor, rps: RPS | None,
                    classes: torch.Tensor | None = None, batch_size: int = 128, device=None,
                    progress: bool = False) -> torch.Tensor:
    """Maps (N, H, W) in [0, 1]: RPS (<w*, f/|f|>; per image class's w* when `classes` is given), or the
    baseline CAAM (the channel sum of f, as in the published code) when `rps` is None. Under torchrun each
    rank maps its block of whole batches and every rank gets all the maps, in order."""
    block = distributed.shard_batches(len(images), batch_size)
    return distributed.gather(_maps(net, images[block], rps, None if classes is None else classes[block], batch_size,
                                    device, progress and distributed.is_main()))


def _maps(net: torch.nn.Module, images: torch.Tensor, rps: RPS | None, classes: torch.Tensor | None,
          batch_size: int, device=None, progress: bool = False) -> torch.Tensor:
    """`activation_maps` of this process's images (not shared out over ranks)."""
    size = tuple(images.shape[2:])
    out, k = [torch.empty((0, *size))], 0
    for feats in features(net, images, batch_size, device, progress):
        if rps is None:
            scores = feats.sum(dim=1)
        else:
            if rps.w.shape[0] != feats.shape[1]:
                raise ValueError(f"the RPS w* has {rps.w.shape[0]} channels but the backbone's features have "
                                 f"{feats.shape[1]}: estimate it with this backbone")
            if classes is None:
                w = rps.w.expand(len(feats), -1)
            else:
                if rps.w_class is None:
                    raise ValueError("class-wise maps need a class-wise RPS (estimate with labels)")
                batch_classes = classes[k:k + len(feats)].long()
                if int(batch_classes.max()) >= len(rps.w_class):
                    raise ValueError(f"the class-wise RPS has {len(rps.w_class)} classes, fewer than the data's")
                w = rps.w_class[batch_classes]
            scores = torch.einsum("bc,bchw->bhw", w, F.normalize(feats, dim=1))
        out.append(_normalise_maps(scores, size))
        k += len(feats)
    return torch.cat(out)


# ----------------------------------------------------------------------------- boxes and metrics
def _largest_component(binary: np.ndarray):
    """(labels, k, stats) of the largest 8-connected component of a binary map, or None when it is empty."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    if n <= 1:
        return None
    return labels, 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])), stats


def box_from_map(heat: np.ndarray, threshold: float) -> tuple[int, int, int, int] | None:
    """Box (xmin, ymin, xmax, ymax) of the largest connected component of heat >= threshold, or None."""
    import cv2

    found = _largest_component(np.asarray(heat) >= threshold)
    if found is None:
        return None
    _, k, stats = found
    x, y, w, h = (int(stats[k, i]) for i in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH,
                                              cv2.CC_STAT_HEIGHT))
    return x, y, x + w - 1, y + h - 1


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of `a` (n, 4) with every box of `b` (m, 4), in the standard's inclusive-pixel
    convention (area = (x1 - x0 + 1) (y1 - y0 + 1)); a degenerate pair scores 0."""
    a, b = np.asarray(a, dtype=np.float64)[:, None], np.asarray(b, dtype=np.float64)[None]
    iw = np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    ih = np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    inter = iw * ih
    area = lambda r: (r[..., 2] - r[..., 0] + 1) * (r[..., 3] - r[..., 1] + 1)
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def normalize_map(heat) -> np.ndarray:
    """A map min-max normalised to [0, 1]; a constant map (or one with a NaN) becomes zeros (the
    standard's `normalize_scoremap`)."""
    heat = np.asarray(heat, dtype=np.float64)
    lo, hi = heat.min(), heat.max()
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo == hi:
        return np.zeros_like(heat)
    return (heat - lo) / (hi - lo)


def _levels(gray: np.ndarray, thresholds) -> np.ndarray:
    """The uint8 cut level of each threshold: int(threshold x the map's maximum), as the standard does."""
    return (np.asarray(thresholds, dtype=np.float64) * int(gray.max())).astype(np.int64)


def _boxes_above(gray: np.ndarray, level: int) -> np.ndarray:
    """Bounding boxes (k, 4) of every contour of gray > level; one all-zero box where nothing is kept."""
    import cv2

    h, w = gray.shape
    _, binary = cv2.threshold(gray, int(level), 255, cv2.THRESH_BINARY)
    contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[-2]
    boxes = np.zeros((max(1, len(contours)), 4), dtype=np.int64)
    for i, c in enumerate(contours):
        x, y, bw, bh = cv2.boundingRect(c)
        boxes[i] = (x, y, min(x + bw, w - 1), min(y + bh, h - 1))  # the standard's right/bottom edge
    return boxes


def _gray(heat) -> np.ndarray:
    return (normalize_map(heat) * 255).astype(np.uint8)


def _best_iou_per_threshold(heat, gt: np.ndarray, thresholds) -> np.ndarray:
    """Best IoU of any contour box with any ground-truth box at each threshold (thresholds that fall on
    the same uint8 level share one contour pass)."""
    gray = _gray(heat)
    levels, where = np.unique(_levels(gray, thresholds), return_inverse=True)
    per_level = [_boxes_above(gray, v) for v in levels]
    ious = _iou_matrix(np.concatenate(per_level), gt).max(axis=1)
    starts = np.cumsum([0] + [len(b) for b in per_level[:-1]])
    return np.maximum.reduceat(ious, starts)[where]


def _gt_boxes(boxes, n: int) -> list[np.ndarray]:
    """Ground-truth boxes per image: an (N, 4) array (one object each) or a list of (k, 4) arrays."""
    if isinstance(boxes, np.ndarray | torch.Tensor) and np.asarray(boxes).ndim == 2:
        boxes = np.asarray(boxes)
        if boxes.shape != (n, 4):
            raise ValueError(f"boxes must be ({n}, 4), got {boxes.shape}")
        return [b[None] for b in boxes]
    boxes = [np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in boxes]
    if len(boxes) != n or any(len(b) == 0 for b in boxes):
        raise ValueError(f"boxes must give at least one box for each of the {n} maps")
    return boxes


def _check_maps(maps) -> np.ndarray:
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (N, H, W), got shape {maps.shape}")
    if len(maps) == 0:
        raise ValueError("no maps to score")
    return maps


def best_ious(maps, boxes, thresholds=CAM_THRESHOLDS) -> np.ndarray:
    """(N, T): for each image and threshold, the best IoU between any estimated box (every contour) and
    any ground-truth box."""
    maps = _check_maps(maps)
    gts = _gt_boxes(boxes, len(maps))
    return np.stack([_best_iou_per_threshold(heat, gt, thresholds) for heat, gt in zip(maps, gts)])


def box_accuracy_curve(maps, boxes, iou: float = 0.5, thresholds=CAM_THRESHOLDS) -> np.ndarray:
    """BoxAcc (%) at each threshold: the share of images with a box of IoU >= `iou`."""
    return 100 * (best_ious(maps, boxes, thresholds) >= iou).mean(axis=0)


def max_box_acc(maps, boxes, iou: float = 0.5, thresholds=CAM_THRESHOLDS) -> float:
    """MaxBoxAcc (%) at one IoU: the best threshold's BoxAcc (multi-contour, as in MaxBoxAccV2)."""
    return float(box_accuracy_curve(maps, boxes, iou, thresholds).max())


def box_metrics(maps, boxes, threshold: float | None = None, thresholds=CAM_THRESHOLDS) -> dict:
    """MaxBoxAccV2 (Choe et al., CVPR 2020): BoxAcc (%) at IoU 30/50/70, each at its best threshold, and
    their mean. With `threshold` (the published protocol: chosen on a held-out split by
    `best_threshold`), every IoU is scored at that one threshold instead."""
    if threshold is not None:
        if not (np.isfinite(threshold) and 0 <= threshold < 1):
            raise ValueError(f"the map threshold must be in [0, 1), got {threshold}")
        thresholds = [float(threshold)]
    ious = best_ious(maps, boxes, thresholds)
    out = {}
    for delta in IOU_THRESHOLDS:
        curve = 100 * (ious >= delta / 100).mean(axis=0)
        out[f"iou{delta}"] = float(curve.max())
        out[f"threshold@iou{delta}"] = float(thresholds[int(curve.argmax())])
    out["maxboxaccv2"] = float(np.mean([out[f"iou{d}"] for d in IOU_THRESHOLDS]))
    return out


def best_threshold(maps, boxes, thresholds=CAM_THRESHOLDS) -> float:
    """The threshold with the best mean BoxAcc over IoU 30/50/70 (how the published RPS protocol picks
    the threshold on a held-out split before scoring the test split)."""
    ious = best_ious(maps, boxes, thresholds)
    mean = np.mean([(ious >= d / 100).mean(axis=0) for d in IOU_THRESHOLDS], axis=0)
    return float(thresholds[int(mean.argmax())])


def _score_histograms(maps, masks, ignore, thresholds):
    """Pixel score histograms (foreground, background) over the bins [t_k, t_k+1), ..., [1, 2), [2, 3]."""
    maps = _check_maps(maps)
    masks = np.asarray(masks)
    if masks.shape != maps.shape:
        raise ValueError(f"masks {masks.shape} must match maps {maps.shape}")
    if ignore is not None and np.asarray(ignore).shape != maps.shape:
        raise ValueError(f"ignore masks {np.asarray(ignore).shape} must match maps {maps.shape}")
    masks = masks.astype(bool)
    edges = np.append(np.asarray(thresholds, dtype=np.float64), [1.0, 2.0, 3.0])
    fg, bg = np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)
    for i, heat in enumerate(maps):
        heat = normalize_map(heat)
        keep = np.ones(heat.shape, bool) if ignore is None else ~np.asarray(ignore[i], dtype=bool)
        fg += np.histogram(heat[masks[i] & keep], bins=edges)[0]
        bg += np.histogram(heat[~masks[i] & keep], bins=edges)[0]
    if fg.sum() == 0:
        raise ValueError("the masks have no foreground pixels")
    return fg, bg


def _pixel_counts(maps, masks, ignore, thresholds):
    fg, bg = _score_histograms(maps, masks, ignore, thresholds)
    tp, fp = fg[::-1].cumsum(), bg[::-1].cumsum()  # pixels at or above each bin's left edge, top down
    return tp, fp, fg.sum()


def pxap(maps, masks, ignore=None, thresholds=CAM_THRESHOLDS) -> float:
    """PxAP (%): the area under the pixel precision-recall curve, pixels pooled over the set (the
    standard's histogram form; `ignore` (N, H, W) marks pixels left out)."""
    tp, fp, positives = _pixel_counts(maps, masks, ignore, thresholds)
    predicted = tp + fp
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = tp / positives
    return float(100 * (precision[1:] * np.diff(recall))[predicted[1:] > 0].sum())


def piou(maps, masks, ignore=None, thresholds=CAM_THRESHOLDS) -> float:
    """PIoU (%): the best pooled pixel IoU, tp / (fg + fp), over thresholds."""
    tp, fp, positives = _pixel_counts(maps, masks, ignore, thresholds)
    return float(100 * np.max(tp / (positives + fp)))


def mask_iou(pred, masks) -> np.ndarray:
    """Per-image IoU of boolean masks (N, H, W)."""
    pred, masks = np.asarray(pred, dtype=bool), np.asarray(masks, dtype=bool)
    inter = (pred & masks).sum(axis=(1, 2))
    union = (pred | masks).sum(axis=(1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def masks_from_maps(maps, threshold: float = 0.5) -> np.ndarray:
    """Binary masks from maps: the largest connected component of map >= threshold (never empty)."""
    maps = np.asarray(maps)
    out = np.zeros(maps.shape, dtype=bool)
    for i, heat in enumerate(maps):
        found = _largest_component(heat >= min(threshold, float(heat.max())))
        if found is not None:
            labels, k, _ = found
            out[i] = labels == k
    return out


def localization_metrics(maps, masks, boxes=None, ignore=None, threshold: float | None = None) -> dict:
    """The standard WSOL metrics of maps against masks (boxes: the masks' own unless given): MaxBoxAccV2
    and its three IoUs (best threshold on these maps, or `threshold` from a held-out split), PxAP and
    PIoU, all in %."""
    from .datasets import mask_boxes

    masks_t = torch.as_tensor(np.asarray(masks, dtype=bool))
    boxes = mask_boxes(masks_t).numpy() if boxes is None else boxes
    return {**box_metrics(maps, boxes, threshold), "pxap": pxap(maps, masks, ignore), "piou": piou(maps, masks, ignore)}


def maps_figure(images: torch.Tensor, masks: torch.Tensor, maps: dict[str, torch.Tensor], threshold: float = 0.5,
                out: Path | None = None):
    """One row per image: the image, its mask, then each named map with its box at `threshold`."""
    from .plots import map_grid

    arrays = {name: m.numpy() for name, m in maps.items()}
    boxes = {name: [box_from_map(heat, threshold) for heat in m] for name, m in arrays.items()}
    return map_grid(images.numpy(), masks.numpy(), arrays, boxes=boxes, overlay=False, mask_title="exact mask",
                    out=out)


def folder_images(root: Path, size: int, progress: bool = False) -> tuple[torch.Tensor, list[Path]]:
    """Every image under a folder, resized to size x size (uint8 (N, 3, size, size)), and their paths."""
    import cv2

    from .io import read_image
    from .sources import images_in

    files = images_in(root, recursive=True)
    if not files:
        raise FileNotFoundError(f"{root}: no images")
    arrays = [cv2.resize(read_image(p), (size, size), interpolation=cv2.INTER_AREA)
              for p in tqdm(files, desc="read", disable=not progress)]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous(), files


def refine_by_grabcut(rgb: np.ndarray, mask: np.ndarray, working_side: int = 256) -> np.ndarray | None:
    """GrabCut's outline of the object inside the box of an RPS mask (RPS finds the object without labels,
    GrabCut draws its edge), run with the image's shorter side brought to `working_side` and brought back
    to the image's size; None where the box leaves no background or GrabCut keeps nothing."""
    import cv2

    from .composite import grabcut_mask
    from .io import covers_image, mask_box

    h, w = mask.shape
    scale = min(1.0, working_side / min(h, w))
    small_rgb = rgb if scale == 1.0 else cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                     interpolation=cv2.INTER_AREA)
    small = mask if scale == 1.0 else cv2.resize(mask.astype(np.uint8), small_rgb.shape[1::-1],
                                                 interpolation=cv2.INTER_NEAREST).astype(bool)
    if not small.any():
        return None
    box = mask_box(small)
    if covers_image(box, small.shape):
        return None
    cut = grabcut_mask(small_rgb, box)
    if scale != 1.0:
        cut = cv2.resize(cut.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    return cut if cut.any() and not cut.all() else None


def write_masks(net: torch.nn.Module, rps: RPS, image_root: Path, out: Path, size: int,
                threshold: float = 0.5, progress: bool = True, batch_size: int | None = None,
                refine: str = "none") -> int:
    """RPS masks for every image under `<image_root>[/<split>]/<class>/` as a mirror tree of .npy masks
    (the `--masks` layout of `bgrepro build --source folder`), each at its image's own size. Images go
    through the backbone in batches of `batch_size` (resized to size x size); each map is brought back
    to its image's size and cut at `threshold`, keeping the largest component. Where the map finds no
    object (or leaves no background) no mask is written; build with `--missing-masks reject` to skip
    those images. Masks already there are kept (an interrupted run resumes); returns the number written.
    `refine="grabcut"` replaces each mask by GrabCut's outline of the object in the mask's box
    (`refine_by_grabcut`).

    `batch_size` defaults to 64 on CUDA and for small images (side <= 64) on the CPU, and to 1 for larger
    images on the CPU, where the forward pass dominates and batching only costs cache (measured with a
    smallcnn trunk: 2.7x faster batched at 40 px, but 109 / 94 / 81 images/s at batch 1 / 8 / 16 at 224 px)."""
    import cv2

    from .composite import REFINEMENTS
    from .io import read_image, save_mask
    from .sources import images_in

    if refine not in REFINEMENTS:
        raise ValueError(f"refine must be one of {', '.join(REFINEMENTS)}, got {refine!r}")
    image_root, out = Path(image_root), Path(out)
    files = [p for p in images_in(image_root, recursive=True) if out not in p.parents]
    if not files:
        raise FileNotFoundError(f"{image_root}: no images")
    target = lambda path: out / path.relative_to(image_root).with_suffix(".npy")  # noqa: E731
    todo = [p for p in files if not target(p).exists()]  # resume
    distributed.barrier()  # every rank has listed what is left before any writes
    todo = todo[distributed.shard(len(todo))]  # under torchrun: each rank its block of the images
    if batch_size is None:
        batch_size = 64 if torch.cuda.is_available() or size <= 64 else 1
    done = 0
    with tqdm(total=len(todo), desc="rps masks", disable=not (progress and distributed.is_main())) as bar:
        for k in range(0, len(todo), batch_size):
            chunk = todo[k:k + batch_size]
            photos = [read_image(p) for p in chunk]
            small = np.stack([cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA) for rgb in photos])
            heats = _maps(net, torch.from_numpy(small).permute(0, 3, 1, 2).contiguous(), rps, None, batch_size)
            for path, rgb, heat in zip(chunk, photos, heats):
                full = cv2.resize(heat.numpy(), (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
                mask = masks_from_maps(full[None], threshold)[0]
                if not mask.any() or mask.all():  # no object found, or no background left: no mask
                    continue
                if refine == "grabcut" and (mask := refine_by_grabcut(rgb, mask)) is None:
                    continue
                save_mask(target(path), mask)
                done += 1
            bar.update(len(chunk))
    return distributed.gather(done)



# ----------------------------------------------------------------------------- the command's experiment
def _dataset_images(root: Path, split: str, size: int | None, progress: bool):
    """(images, labels, masks, classes) of a dataset's Original split (labels, masks and classes None
    where unknown: a plain folder of images; masks None when resized, as they would no longer match)."""
    from . import layout
    from .datasets import load_variant

    if not layout.variant_dir(root, "original").is_dir():
        images, _ = folder_images(root, size or 224, progress=progress)
        return images, None, None, None
    with_masks = layout.split_dir(root, layout.MASKS, split).is_dir()
    data = load_variant(root, "original", split, with_masks=with_masks)
    images, masks = data.images, data.masks
    if size and images.shape[-1] != size:
        images = F.interpolate(images.float(), size=(size, size), mode="bilinear",
                               align_corners=False).round().clamp(0, 255).byte()
        masks = None
    return images, data.labels, masks, list(data.classes)


def _trained_without_labels(path: str) -> bool:
    """Whether a file is a bgrepro checkpoint of a self-supervised backbone (`selfsup.train_simsiam`)."""
    from .selfsup import is_self_supervised

    try:
        payload = safe_load(Path(path), "checkpoint")
    except (OSError, ValueError):
        return False
    return isinstance(payload, dict) and isinstance(payload.get("meta"), dict) and is_self_supervised(payload["meta"])


def localize_dataset(data: Path, backbone_spec: str, *, weights: Path | None = None, split: str = "val",
                     estimate_split: str = "train", estimate_on: Path | None = None, rps_file: Path | None = None,
                     class_wise: str = "none", size: int | None = None, out: Path | None = None,
                     write_masks_to: Path | None = None, mask_threshold: float = 0.5, protocol: str = "best",
                     resnet_stride: int = 16, estimate_size: int | None = None, per_class: int | None = None,
                     offline: bool = False, refine: str = "none", progress: bool = True,
                     arch: str | None = None) -> dict:
    """The `bgrepro localize` experiment: estimate w* (or load it), score RPS and CAAM maps against the
    test masks of `data` when it has them, and write RPS masks when asked. Returns the summary (also
    written to OUT/localize.json beside OUT/rps.pt when `out` is given).

    `protocol` "best" is the standard WSOL evaluation (each IoU at its best threshold on the scored
    split); "held-out" is the published RPS protocol (one threshold, the best on the estimation
    split's masks, applied to the scored split). w* is estimated on images of `estimate_size` px: 224
    for a named backbone (as published), the images' own size for a bgrepro checkpoint (a network
    trained at that size); `per_class` caps the images per class of a class-wise w*."""
    import json

    from . import layout
    from .datasets import mask_boxes
    from .evaluate import predict
    from .io import atomic_write_text
    from .models import load_checkpoint

    if class_wise not in ("none", "labels", "predictions"):
        raise ValueError(f"class_wise must be none, labels or predictions, got {class_wise!r}")
    if protocol not in ("best", "held-out"):
        raise ValueError(f"protocol must be best or held-out, got {protocol!r}")
    net = backbone(backbone_spec, weights, resnet_stride, offline, arch)
    is_checkpoint = backbone_spec.startswith("checkpoint:") or backbone_spec.endswith(".pt")
    if estimate_size is None and not is_checkpoint:
        estimate_size = 224
    official = layout.variant_dir(data, "original").is_dir()
    classifier = None  # class-wise from predictions: the backbone's own classifier labels the images
    if class_wise == "predictions":
        if not is_checkpoint:
            raise ValueError("--class-wise predictions needs a classifier checkpoint as the backbone")
        classifier, meta = load_checkpoint(backbone_spec.removeprefix("checkpoint:"))
    est_root = Path(estimate_on or data)
    est_set = None  # (images, labels, masks, classes) of the estimation split, loaded once
    if rps_file:
        rps = RPS.load(rps_file)
    else:
        est_set = _dataset_images(est_root, estimate_split, size, progress)
        images, labels, _, classes = est_set
        num_classes = len(classes) if classes else None
        if classifier is not None:
            labels, num_classes = predict(classifier, images), len(meta["classes"])
        elif class_wise == "none":
            labels = None
        elif labels is None:
            raise ValueError(f"{est_root}: --class-wise labels needs a dataset in the official layout (class folders)")
        rps = estimate(net, images, labels, progress=progress, num_classes=num_classes, size=estimate_size,
                       per_class=per_class)
    summary: dict = {"backbone": backbone_spec, "class_wise": class_wise, "resnet_stride": resnet_stride,
                     "estimate_size": estimate_size}
    if (is_checkpoint and not _trained_without_labels(backbone_spec.removeprefix("checkpoint:"))) or (
            not is_checkpoint and weights is None and backbone_spec not in SELF_SUPERVISED):
        # the method's backbones are self-supervised (DINO, MoCo); a classifier's trunk or torchvision's
        # supervised ImageNet weights give maps that are not the method's (worse than a centred box on COCO)
        summary["warning"] = (f"{backbone_spec}: a supervised backbone (a trained classifier's trunk or ImageNet "
                              "classification weights); RPS as published uses self-supervised ones (DINO, MoCo: "
                              "--weights FILE), so these maps and masks are not the method's")
    if out and distributed.is_main():
        rps.save(Path(out) / "rps.pt")
    if official:
        images, labels, masks, _ = _dataset_images(Path(data), split, size, progress)
        if masks is None:
            summary["note"] = "no fg_mask at the images' size: metrics skipped"
        else:
            def maps_of(imgs, labs, w: RPS | None):
                if w is None:
                    return activation_maps(net, imgs, None)
                cls = predict(classifier, imgs) if classifier is not None else labs if class_wise == "labels" else None
                return activation_maps(net, imgs, w, classes=cls, progress=progress)

            held = None
            if protocol == "held-out":
                held = est_set or _dataset_images(est_root, estimate_split, size, progress)
                if held[2] is None:
                    raise ValueError(f"{est_root}: --protocol held-out needs masks of the "
                                     f"'{estimate_split}' split (fg_mask/{estimate_split})")
            for w, target in ((rps, summary), (None, summary.setdefault("caam", {}))):
                threshold = None
                if held is not None:  # the best threshold on the estimation split's masks
                    threshold = best_threshold(maps_of(held[0], held[1], w).numpy(), mask_boxes(held[2]).numpy())
                target.update(localization_metrics(maps_of(images, labels, w).numpy(), masks.numpy(),
                                                   threshold=threshold))
                target["protocol"] = ("best threshold per IoU on the scored split" if threshold is None else
                                      f"held-out: threshold {threshold:.3f} chosen on '{estimate_split}'")
            summary["n_images"] = len(images)
    if write_masks_to:
        root = layout.variant_dir(data, "original") if official else Path(data)
        side = size or (_dataset_images(Path(data), split, None, False)[0].shape[-1] if official else 224)
        summary["masks_written"] = write_masks(net, rps, root, write_masks_to, side, mask_threshold,
                                               progress=progress, refine=refine)
        summary["refine"] = refine
    if out and distributed.is_main():
        atomic_write_text(Path(out) / "localize.json", json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return summary


__all__ = ["RPS", "backbone", "estimate", "activation_maps", "box_from_map", "max_box_acc", "pxap", "piou",
           "localization_metrics", "masks_from_maps", "mask_iou", "maps_figure", "write_masks", "refine_by_grabcut",
           "localize_dataset"]
