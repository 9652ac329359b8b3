"""Where models look: Grad-CAM saliency (captum's `LayerGradCam`) and the share of it on the foreground.

`gradcam(model, images)` attributes each image's predicted (or given) class to the output of the
model's last convolutional stage (`bgrepro.models.feature_trunk`), keeps the positive part
(`relu_attributions`) and upsamples bilinearly to the image size, in batches. `foreground_share`
is the fraction of an image's positive saliency that falls inside its foreground mask: the paper
(claim 4) finds Mixed-Rand training moves saliency onto the foreground.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .inference import Inference
from .models import feature_trunk


def gradcam_layer(model: torch.nn.Module) -> torch.nn.Module:
    """The last module of the model's convolutional trunk."""
    trunk = feature_trunk(model)
    children = list(trunk.children())
    return children[-1] if children else trunk


def gradcam(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor | None = None,
            layer: torch.nn.Module | None = None, batch_size: int = 128, device=None,
            progress: bool = False) -> torch.Tensor:
    """Grad-CAM maps (N, H, W), non-negative, for uint8 or [0, 1] float images (N, 3, H, W).

    `targets` are the classes to explain (default: the model's predictions).
    """
    from captum.attr import LayerAttribution, LayerGradCam

    inference = Inference.at(device, batch_size=batch_size)
    model = inference.prepare(model)
    explainer = LayerGradCam(model, layer or gradcam_layer(model))
    maps = []
    for k, x in tqdm(inference.batches(images), total=-(-len(images) // batch_size), desc="grad-cam",
                     disable=not progress):
        if targets is None:
            with torch.no_grad():
                target = model(x).argmax(1)
        else:
            target = targets[k:k + batch_size].to(inference.device)
        attr = explainer.attribute(x, target=target, relu_attributions=True)
        up = LayerAttribution.interpolate(attr, tuple(x.shape[2:]), "bilinear")
        maps.append(up.clamp_(min=0)[:, 0].detach().cpu())
    return torch.cat(maps)


def foreground_share(maps: torch.Tensor | np.ndarray, masks: torch.Tensor | np.ndarray) -> np.ndarray:
    """Per image: positive saliency inside the mask / all positive saliency (NaN for an all-zero map)."""
    maps = np.clip(np.asarray(maps, dtype=np.float64), 0, None)
    masks = np.asarray(masks, dtype=bool)
    if maps.shape != masks.shape:
        raise ValueError(f"maps {maps.shape} and masks {masks.shape} must have the same shape (N, H, W)")
    total = maps.sum(axis=(1, 2))
    inside = (maps * masks).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / total, np.nan)


def saliency_figure(images: torch.Tensor, masks: torch.Tensor, maps: dict[str, torch.Tensor],
                    shares: dict[str, np.ndarray] | None = None, out: Path | None = None):
    """One row per image: the image, its mask, then each model's Grad-CAM over the image (captioned
    with the share on the foreground when `shares` is given)."""
    from .plots import map_grid

    caption = lambda v: f"{100 * v:.0f}% on fg" if np.isfinite(v) else "no saliency"  # noqa: E731
    captions = None if shares is None else {name: [caption(v) for v in s] for name, s in shares.items()}
    return map_grid(images.numpy(), masks.numpy(), {k: v.numpy() for k, v in maps.items()}, captions=captions,
                    out=out)


def saliency_report(model: torch.nn.Module, data: Path, split: str = "val", per_class: int | None = None,
                    examples: int = 6, out: Path | None = None, progress: bool = True) -> dict:
    """Grad-CAM of a model on a dataset's Original images (`per_class` of each class, or all) with its
    foreground share: the mean, per class, and the mask area (the share a map spread evenly would get).
    With `out`, writes OUT/saliency.json and OUT/saliency.png (the first image of the first `examples`
    classes, their maps and shares)."""
    import json

    from .datasets import load_variant
    from .io import atomic_write_text

    test = load_variant(data, "original", split, with_masks=True).first_per_class(per_class)
    maps = gradcam(model, test.images, progress=progress)
    share = foreground_share(maps, test.masks)
    labels = test.labels.numpy()

    def mean(values: np.ndarray) -> float | None:
        values = values[np.isfinite(values)]
        return float(values.mean()) if len(values) else None

    summary = {"classes": list(test.classes), "n": len(test), "split": split,
               "foreground_share": mean(share), "mask_area": float(test.masks.float().mean()),
               "per_class": {c: mean(share[labels == k]) for k, c in enumerate(test.classes)},
               "no_saliency": int(np.isnan(share).sum())}
    if out is not None:
        out = Path(out)
        pick = test.first_positions(1)[:examples]
        figure = saliency_figure(test.images[pick], test.masks[pick], {"Grad-CAM": maps[pick]},
                                 {"Grad-CAM": share[pick]})
        import matplotlib.pyplot as plt

        from .io import atomic_write

        atomic_write(out / "saliency.png", lambda tmp: figure.savefig(tmp, format="png", dpi=110,
                                                                      bbox_inches="tight"))
        plt.close(figure)
        atomic_write_text(out / "saliency.json", json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return summary
