"""The `bgrepro localize` experiment: w* of a backbone (`rps`) estimated on a dataset (or loaded), its maps and the
CAAM baseline's scored against the dataset's masks by the standard WSOL metrics (`wsol`), and RPS masks written for
any folder of photos (`masks`). What it is asked is one `LocalizeConfig`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import distributed, layout, registry
from ..data.datasets import load_variant, mask_boxes
from ..io import atomic_write_text
from ..training.simsiam import is_self_supervised
from ..variants import ORIGINAL
from .evaluate import predict
from .masks import folder_images, write_masks
from .rps import RPS, activation_maps, estimate
from .wsol import best_threshold, localization_metrics

#: How class-wise w* are estimated, and how the map threshold of MaxBoxAccV2 is chosen.
CLASS_WISE = ("none", "labels", "predictions")
PROTOCOLS = ("best", "held-out")


@dataclass(frozen=True)
class LocalizeConfig:
    """Everything a localization run is a function of."""

    #: A dataset in the official layout (original/ [+ fg_mask/]), or any folder of images.
    data: Path
    #: The backbone: any model spec of `bgrepro.registry` (a checkpoint in any format with layers, a torchvision
    #: or timm name with its ImageNet weights, a self-supervised backbone of the RPS paper by name).
    backbone: str
    #: Its weights file (DINO, MoCo, ImageNet), and a state dict's architecture.
    weights: Path | None = None
    arch: str | None = None
    #: The split scored, and the split (of `estimate_on`, by default of `data`) w* is estimated on.
    split: str = "val"
    estimate_split: str = "train"
    estimate_on: Path | None = None
    #: A saved w* (rps.pt) instead of estimating one.
    rps_file: Path | None = None
    #: One w* per class: none, from the true labels, or from the backbone's own predictions (a classifier).
    class_wise: str = "none"
    #: The backbone's input side (default: the images' own), and the side w* is estimated at (default: 224 for a
    #: named backbone, as published; the images' own for a checkpoint, a network trained at that size).
    size: int | None = None
    estimate_size: int | None = None
    #: At most this many images per class for a class-wise w*.
    per_class: int | None = None
    #: The map threshold of MaxBoxAccV2: "best" per IoU on the scored split (the standard WSOL evaluation), or
    #: "held-out", one chosen on the estimation split's masks (the published RPS protocol).
    protocol: str = "best"
    #: ResNet feature stride: 16 as published (14 x 14 at 224 px), or 32 as built.
    resnet_stride: int = 16
    #: Where rps.pt and localize.json go, and where RPS masks are written (a mirror tree of .npy files), cut at
    #: `mask_threshold` and refined by `refine` ("none" or "grabcut").
    out: Path | None = None
    write_masks_to: Path | None = None
    mask_threshold: float = 0.5
    refine: str = "none"
    #: Never download weights.
    offline: bool = False

    def __post_init__(self) -> None:
        if self.class_wise not in CLASS_WISE:
            raise ValueError(f"`class_wise` must be one of {', '.join(CLASS_WISE)}, got {self.class_wise!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"`protocol` must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")


def _dataset_images(root: Path, split: str, size: int | None, progress: bool):
    """(images, labels, masks, classes) of a dataset's Original split (labels, masks and classes None
    where unknown: a plain folder of images; masks None when resized, as they would no longer match)."""
    if not layout.variant_dir(root, ORIGINAL).is_dir():
        images, _ = folder_images(root, size or 224, progress=progress)
        return images, None, None, None
    with_masks = layout.split_dir(root, layout.MASKS, split).is_dir()
    data = load_variant(root, ORIGINAL, split, with_masks=with_masks)
    images, masks = data.images, data.masks
    if size and images.shape[-1] != size:
        images = F.interpolate(images.float(), size=(size, size), mode="bilinear",
                               align_corners=False).round().clamp(0, 255).byte()
        masks = None
    return images, data.labels, masks, list(data.classes)


def _supervised_warning(cfg: LocalizeConfig, loaded: registry.LoadedModel) -> str | None:
    """The warning a supervised backbone gets: the method's backbones are self-supervised (DINO, MoCo); a
    classifier's trunk or supervised ImageNet weights give maps that are not the method's (worse than a centred
    box on COCO). A named backbone with a weights file of the user's is taken as self-supervised."""
    if loaded.format == "self_supervised" or (loaded.format == "imagenet" and cfg.weights is not None) or (
            is_self_supervised(loaded.meta)):
        return None
    return (f"{cfg.backbone}: a supervised backbone (a trained classifier's trunk or ImageNet classification "
            "weights); RPS as published uses self-supervised ones (DINO, MoCo: `weights` FILE), so these maps and "
            "masks are not the method's")


class _Run:
    """One localization run: the backbone, the classifier that labels images (class-wise from predictions), w*."""

    def __init__(self, cfg: LocalizeConfig, progress: bool) -> None:
        self.cfg, self.progress = cfg, progress
        self.loaded = registry.load(cfg.backbone, arch=cfg.arch, offline=cfg.offline, weights=cfg.weights)
        self.net = self.loaded.trunk(cfg.resnet_stride)
        named = self.loaded.format in ("imagenet", "packaged", "self_supervised")
        self.estimate_size = cfg.estimate_size or (224 if named else None)
        # class-wise from predictions: the backbone's own classifier labels the images
        self.predicts = cfg.class_wise == "predictions"
        if self.predicts and self.loaded.format not in ("bgrepro", "robustness"):
            raise ValueError("`class_wise` predictions needs a classifier checkpoint as the backbone")
        self.est_root = Path(cfg.estimate_on or cfg.data)
        self.est_set = None  # (images, labels, masks, classes) of the estimation split, loaded once

    def predictor(self) -> RPS:
        """w*: loaded from `rps_file`, or estimated in one pass over the estimation split."""
        cfg = self.cfg
        if cfg.rps_file:
            return RPS.load(cfg.rps_file)
        self.est_set = _dataset_images(self.est_root, cfg.estimate_split, cfg.size, self.progress)
        images, labels, _, classes = self.est_set
        num_classes = len(classes) if classes else None
        if self.predicts:
            labels = self.predicted(images, classes)
            num_classes = max(num_classes or 0, int(labels.max()) + 1)
        elif cfg.class_wise == "none":
            labels = None
        elif labels is None:
            raise ValueError(f"{self.est_root}: `class_wise` labels needs a dataset in the official layout (class "
                             "folders)")
        return estimate(self.net, images, labels, progress=self.progress, num_classes=num_classes,
                        size=self.estimate_size, per_class=cfg.per_class)

    def predicted(self, images: torch.Tensor, classes: list[str] | None) -> torch.Tensor:
        """The backbone's classifier's class of every image (its outputs mapped to the data's `classes` when known;
        "no class" is index len(classes))."""
        net = self.loaded.for_data(classes, images.shape[-1]).net if classes else self.loaded.net
        return predict(net, images)

    def maps(self, images: torch.Tensor, labels: torch.Tensor | None, classes: list[str] | None,
             rps: RPS | None) -> torch.Tensor:
        """RPS maps (class-wise as configured), or CAAM's for `rps` None."""
        if rps is None:
            return activation_maps(self.net, images, None)
        which = self.predicted(images, classes) if self.predicts else (
            labels if self.cfg.class_wise == "labels" else None)
        return activation_maps(self.net, images, rps, classes=which, progress=self.progress)

    def scores(self, rps: RPS, summary: dict) -> None:
        """RPS's and CAAM's WSOL metrics against the scored split's masks, into `summary` (and `summary["caam"]`)."""
        cfg = self.cfg
        images, labels, masks, classes = _dataset_images(Path(cfg.data), cfg.split, cfg.size, self.progress)
        if masks is None:
            summary["note"] = "no fg_mask at the images' size: metrics skipped"
            return
        held = None
        if cfg.protocol == "held-out":
            held = self.est_set or _dataset_images(self.est_root, cfg.estimate_split, cfg.size, self.progress)
            if held[2] is None:
                raise ValueError(f"{self.est_root}: `protocol` held-out needs masks of the '{cfg.estimate_split}' "
                                 f"split (fg_mask/{cfg.estimate_split})")
        for w, target in ((rps, summary), (None, summary.setdefault("caam", {}))):
            threshold = None
            if held is not None:  # the best threshold on the estimation split's masks
                threshold = best_threshold(self.maps(held[0], held[1], held[3], w).numpy(),
                                           mask_boxes(held[2]).numpy())
            target.update(localization_metrics(self.maps(images, labels, classes, w).numpy(), masks.numpy(),
                                               threshold=threshold))
            target["protocol"] = ("best threshold per IoU on the scored split" if threshold is None else
                                  f"held-out: threshold {threshold:.3f} chosen on '{cfg.estimate_split}'")
        summary["n_images"] = len(images)


def localize_dataset(cfg: LocalizeConfig, progress: bool = True) -> dict:
    """Estimate w* (or load it), score RPS and CAAM maps against the test masks of `cfg.data` when it has them,
    and write RPS masks when asked. Returns the summary (also written to OUT/localize.json beside OUT/rps.pt when
    `cfg.out` is given)."""
    run = _Run(cfg, progress)
    rps = run.predictor()
    summary: dict = {"backbone": cfg.backbone, "class_wise": cfg.class_wise, "resnet_stride": cfg.resnet_stride,
                     "estimate_size": run.estimate_size}
    warning = _supervised_warning(cfg, run.loaded)
    if warning:
        summary["warning"] = warning
    if cfg.out and distributed.is_main():
        rps.save(Path(cfg.out) / "rps.pt")
    official = layout.variant_dir(cfg.data, ORIGINAL).is_dir()
    if official:
        run.scores(rps, summary)
    else:  # a plain folder of photos: what in it is not an image is named (a dataset's listing refuses it instead)
        folders = dict.fromkeys(Path(f) for f in (cfg.data, cfg.estimate_on) if f is not None)
        summary["not_read"] = [u.line() for f in folders if not layout.variant_dir(f, ORIGINAL).is_dir()
                               for u in layout.scan(f, recursive=True).unread]
    if cfg.write_masks_to:
        root = layout.variant_dir(cfg.data, ORIGINAL) if official else Path(cfg.data)
        side = cfg.size or (_dataset_images(Path(cfg.data), cfg.split, None, False)[0].shape[-1] if official else 224)
        summary["masks_written"] = write_masks(run.net, rps, root, cfg.write_masks_to, side, cfg.mask_threshold,
                                               progress=progress, refine=cfg.refine)
        summary["refine"] = cfg.refine
    if cfg.out and distributed.is_main():
        atomic_write_text(Path(cfg.out) / "localize.json", json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return summary


__all__ = ["CLASS_WISE", "PROTOCOLS", "LocalizeConfig", "localize_dataset"]
