"""Representer point selection (RPS; Song et al., ICCV 2023): the foreground predictor w* of a frozen backbone, in
closed form from one pass over a training set, and its activation maps.

A frozen backbone gives a feature map f(x) (C x h x w). Each location is scored by a linear foreground
predictor applied to the L2-normalised feature; its closed form needs two averages over a training set, in one
pass, with no training:

    v = mean over images of the mean raw feature vector,
    u = mean over images of the mean L2-normalised feature vector,
    w* = normalise(v - u ‖v‖ / ‖u‖).

The map is <w*, f / ‖f‖>, clamped at 0, min-max normalised per image and upsampled to the image. Class-wise RPS
keeps one w* per class (from labels, or from a classifier's predictions); zero-shot transfer applies a w*
estimated on one dataset to another. The class-agnostic activation map (CAAM, the channel sum of f) is the
baseline. Checked against the official implementation (yeonghwansong/UOLwRPS) on the same feature tensors:
w* and the maps on the feature grid agree to float rounding; the official code upsamples with
align_corners=True, bgrepro with False (the convention of the standard WSOL evaluation's resize). A map is blank
(all zeros) when every location scores <w*, f/|f|> <= 0, as in the official code (which then gives NaN).
Backbones come from `bgrepro.registry` (`LoadedModel.trunk`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import distributed
from ..inference import Inference
from ..io import atomic_write
from ..registry import read_torch


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
        atomic_write(Path(path), lambda tmp: torch.save({"format": "bgrepro-rps-1", "w": self.w,
                                                         "w_class": self.w_class}, tmp))

    @classmethod
    def load(cls, path: Path) -> RPS:
        payload = read_torch(path, "RPS predictor")
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
    parts = distributed.gather([_sums(net, images, labels, num_classes, batch_size, device, progress)])
    parts = [p for p in parts if p["n"]]
    if not parts:
        raise ValueError("no images to estimate w* from")
    total = {key: sum((p[key] for p in parts[1:]), parts[0][key]) for key in parts[0]}
    w = _closed_form(total["v"] / total["n"], total["u"] / total["n"]).float()
    w_class = None
    if labels is not None:
        counts = total["counts"]
        c = counts.clamp_min(1)[:, None]
        w_class = _closed_form(total["v_cls"] / c, total["u_cls"] / c).float()
        w_class[counts == 0] = w  # classes absent from the estimation set fall back to class-agnostic
    return RPS(w, w_class)


def _sums(net: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor | None, num_classes: int | None,
          batch_size: int, device, progress: bool) -> dict:
    """This process's running sums (float64) of the mean raw and the mean normalised feature of its images,
    per class too with `labels`, and their count."""
    block = distributed.shard_batches(len(images), batch_size)
    sums: dict = {"n": 0}
    for j, feats in enumerate(features(net, images[block], batch_size, device, progress and distributed.is_main())):
        raw = feats.mean(dim=(2, 3))  # (B, C): mean raw feature per image
        unit = F.normalize(feats, dim=1).mean(dim=(2, 3))  # mean normalised feature per image
        if "v" not in sums:
            sums.update(v=torch.zeros(raw.shape[1], dtype=torch.float64), u=torch.zeros(raw.shape[1],
                                                                                        dtype=torch.float64))
            if labels is not None:
                sums.update(v_cls=torch.zeros(num_classes, raw.shape[1], dtype=torch.float64),
                            u_cls=torch.zeros(num_classes, raw.shape[1], dtype=torch.float64),
                            counts=torch.zeros(num_classes, dtype=torch.float64))
        sums["n"] += len(raw)
        sums["v"] += raw.sum(0).double()
        sums["u"] += unit.sum(0).double()
        if labels is not None:
            start = block.start + j * batch_size
            lab = labels[start:start + len(raw)].long()
            sums["v_cls"].index_add_(0, lab, raw.double())
            sums["u_cls"].index_add_(0, lab, unit.double())
            sums["counts"] += torch.bincount(lab, minlength=num_classes).double()
    return sums


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


__all__ = ["RPS", "features", "estimate", "activation_maps", "resize_images"]
