"""Where models look: Grad-CAM saliency (captum's `LayerGradCam`) and the share of it on the foreground.

`gradcam(model, images)` attributes each image's predicted (or given) class to the output of the
model's last convolutional stage (`bgrepro.registry.feature_trunk`, or the last spatial module of any
other network; for a vision transformer, its last block's tokens on the patch grid; or the layer named
by `layer`), keeps the positive part (`relu_attributions`) and upsamples bilinearly to the image size,
in batches. `foreground_share`
is the fraction of an image's positive saliency that falls inside its foreground mask: the paper
(claim 4) finds Mixed-Rand training moves saliency onto the foreground.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import distributed
from ..data.datasets import load_variant
from ..inference import Inference
from ..io import atomic_write_text
from ..plots import map_grid
from ..registry import core_of, feature_trunk, reaches_layers
from ..variants import ORIGINAL


def gradcam_layer(model: torch.nn.Module, name: str | None = None, probe: torch.Tensor | None = None
                  ) -> torch.nn.Module:
    """Where Grad-CAM looks: the module called `name` (in the model's own `named_modules`), else the last
    module of the convolutional trunk (bgrepro's, torchvision's), else, found by one probe forward: the
    input norm of a vision transformer's last block (its tokens are reshaped to the patch grid), or the
    last module with a spatial (N, C, h, w) output."""
    if not reaches_layers(model):
        raise ValueError("Grad-CAM needs the model's layers and gradients, which this format (ONNX, TFLite, "
                         "TorchScript, torch.export, a callable or predictions) does not give; it is skipped")
    core = core_of(model)
    if name:
        modules = dict(core.named_modules())
        if name not in modules:
            near = [n for n in modules if name.split(".")[-1] in n][:4]
            raise ValueError(f"`target_layer` {name!r}: no such module" + (f" (did you mean {', '.join(near)}?)"
                                                                         if near else ""))
        return modules[name]
    try:
        trunk = feature_trunk(core)
        children = list(trunk.children())
        return children[-1] if children else trunk
    except ValueError:
        pass
    fired: list[tuple[torch.nn.Module, tuple]] = []
    hooks = [m.register_forward_hook(lambda m, i, o: fired.append((m, tuple(o.shape)))
                                     if isinstance(o, torch.Tensor) else None) for m in core.modules()]
    try:
        with torch.no_grad():
            model.eval()(probe if probe is not None else torch.rand(1, 3, 224, 224))
    finally:
        for hook in hooks:
            hook.remove()
    blocks = [m for m, shape in fired if len(shape) == 3 and any(n in ("norm1", "layernorm_before")
                                                                  for n, _ in m.named_children())]
    if blocks:
        last = blocks[-1]
        return getattr(last, "norm1", None) or last.layernorm_before
    spatial = [m for m, shape in fired if len(shape) == 4 and shape[-1] > 1 and shape[-2] > 1]
    if not spatial:
        raise ValueError(f"{type(core).__name__}: no convolutional stage or transformer block found; name the "
                         "layer with `target_layer`")
    return spatial[-1]


def _token_maps(model: torch.nn.Module, layer: torch.nn.Module, x: torch.Tensor, target: torch.Tensor
                ) -> torch.Tensor:
    """Grad-CAM on a transformer layer's tokens (N, T, C): the patch tokens (after any class, distillation or
    register tokens) reshaped to their square grid, weighted by their mean gradient."""
    seen = {}
    hook = layer.register_forward_hook(lambda m, i, o: seen.__setitem__("tokens", o))
    try:
        with torch.enable_grad():
            logits = model(x)
            tokens = seen["tokens"]
            grads = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), tokens)[0]
    finally:
        hook.remove()
    n, t, _ = tokens.shape
    grid = math.isqrt(t)
    while grid > 0 and t - grid * grid > 8:
        grid -= 1
    prefix = t - grid * grid
    acts, grads = tokens[:, prefix:].detach(), grads[:, prefix:]
    cam = (grads.mean(1, keepdim=True) * acts).sum(-1).clamp(min=0).view(n, 1, grid, grid)
    return torch.nn.functional.interpolate(cam, size=tuple(x.shape[2:]), mode="bilinear", align_corners=False)


def gradcam(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor | None = None,
            layer: torch.nn.Module | str | None = None, batch_size: int = 128, device=None,
            progress: bool = False) -> torch.Tensor:
    """Grad-CAM maps (N, H, W), non-negative, for uint8 or [0, 1] float images (N, 3, H, W).

    `targets` are the classes to explain (default: the model's predictions); `layer` a module or the name
    of one (default: `gradcam_layer`'s choice). Convolutional layers go through captum's LayerGradCam;
    a transformer's tokens through the same rule on the patch grid.
    """
    from captum.attr import LayerAttribution, LayerGradCam

    inference = Inference.at(device, batch_size=batch_size)
    model = inference.prepare(model)
    if not isinstance(layer, torch.nn.Module):
        layer = gradcam_layer(model, layer, inference.floats(images[:1]))
    tokens = _outputs_tokens(model, layer, inference.floats(images[:1]))
    explainer = None if tokens else LayerGradCam(model, layer)
    maps = []
    for k, x in tqdm(inference.batches(images), total=-(-len(images) // batch_size), desc="grad-cam",
                     disable=not progress):
        if targets is None:
            with torch.no_grad():
                target = model(x).argmax(1)
        else:
            target = targets[k:k + batch_size].to(inference.device)
        if tokens:
            up = _token_maps(model, layer, x, target)
        else:
            attr = explainer.attribute(x, target=target, relu_attributions=True)
            up = LayerAttribution.interpolate(attr, tuple(x.shape[2:]), "bilinear")
        maps.append(up.clamp_(min=0)[:, 0].detach().cpu())
    return torch.cat(maps)


def sharded_gradcam(model: torch.nn.Module, images: torch.Tensor, layer: str | None = None, batch_size: int = 128,
                    progress: bool = False) -> torch.Tensor:
    """`gradcam` of every image; under torchrun each rank explains its block of whole batches and every
    rank gets all the maps, in order (the same maps as one process)."""
    block = distributed.shard_batches(len(images), batch_size)
    mine = images[block]
    maps = (gradcam(model, mine, layer=layer, batch_size=batch_size, progress=progress and distributed.is_main())
            if len(mine) else torch.empty((0, *images.shape[2:])))
    return distributed.gather(maps)


def _outputs_tokens(model: torch.nn.Module, layer: torch.nn.Module, probe: torch.Tensor) -> bool:
    """Whether a layer's output is a sequence of tokens (N, T, C) rather than a feature map."""
    shape = {}

    def record(module, inputs, output) -> None:  # a hook that returns nothing leaves the output as it is
        shape.setdefault("s", tuple(output.shape))

    hook = layer.register_forward_hook(record)
    try:
        with torch.no_grad():
            model(probe)
    finally:
        hook.remove()
    return len(shape.get("s", ())) == 3


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
    caption = lambda v: f"{100 * v:.0f}% on fg" if np.isfinite(v) else "no saliency"  # noqa: E731
    captions = None if shares is None else {name: [caption(v) for v in s] for name, s in shares.items()}
    return map_grid(images.numpy(), masks.numpy(), {k: v.numpy() for k, v in maps.items()}, captions=captions,
                    out=out)


def saliency_report(model: torch.nn.Module, data: Path, split: str = "val", per_class: int | None = None,
                    examples: int = 6, out: Path | None = None, progress: bool = True,
                    layer: str | None = None) -> dict:
    """Grad-CAM of a model on a dataset's Original images (`per_class` of each class, or all) with its
    foreground share: the mean, per class, and the mask area (the share a map spread evenly would get).
    With `out`, writes OUT/saliency.json and OUT/saliency.png (the first image of the first `examples`
    classes, their maps and shares)."""
    test = load_variant(data, ORIGINAL, split, with_masks=True).first_per_class(per_class)
    maps = sharded_gradcam(model, test.images, layer=layer, progress=progress)
    share = foreground_share(maps, test.masks)
    labels = test.labels.numpy()

    def mean(values: np.ndarray) -> float | None:
        values = values[np.isfinite(values)]
        return float(values.mean()) if len(values) else None

    summary = {"classes": list(test.classes), "n": len(test), "split": split,
               "foreground_share": mean(share), "mask_area": float(test.masks.float().mean()),
               "per_class": {c: mean(share[labels == k]) for k, c in enumerate(test.classes)},
               "no_saliency": int(np.isnan(share).sum())}
    if out is not None and distributed.is_main():
        out = Path(out)
        pick = test.first_positions(1)[:examples]
        figure = saliency_figure(test.images[pick], test.masks[pick], {"Grad-CAM": maps[pick]},
                                 {"Grad-CAM": share[pick]})
        import matplotlib.pyplot as plt

        from ..io import atomic_write

        atomic_write(out / "saliency.png", lambda tmp: figure.savefig(tmp, format="png", dpi=110,
                                                                      bbox_inches="tight"))
        plt.close(figure)
        atomic_write_text(out / "saliency.json", json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return summary
