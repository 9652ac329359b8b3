"""A loaded model as a typed record: its network, output names, preprocessing and what can be done with it, and
the two ways a command uses it: adapted to a dataset (`LoadedModel.for_data`) or as a frozen feature-map backbone
for RPS (`LoadedModel.trunk`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..io import first_line, with_options
from .adapters import MappedOutputs, Prepared
from .classes import resolve_outputs

#: What a model file without preprocessing of its own is assumed to expect (said as assumed wherever it is used).
ASSUMED = "assumed: ImageNet mean and std, the data's size (pass `input_size`, `mean` and `std` to say otherwise)"


@dataclass(frozen=True)
class Preprocess:
    """What a model expects of its input: images resized whole to `input_size` (None: the data's own size;
    the variants are already centre crops), then normalised by `mean` and `std` (None: the model does it
    itself, as bgrepro's and the official checkpoints do)."""

    input_size: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    interpolation: str = "bilinear"
    #: Where these values came from (the model's own config, an option, or an assumption said so).
    source: str = "the model"

    def __post_init__(self) -> None:
        if self.input_size is not None and self.input_size < 8:
            raise ValueError(f"`input_size` must be at least 8 pixels, got {self.input_size}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None and (len(value) != 3 or not all(v == v and abs(v) < 1e6 for v in value)):
                raise ValueError(f"`{name}` must be three finite numbers R,G,B, got {value}")
        if self.std is not None and min(self.std) <= 0:
            raise ValueError(f"`std` must be positive, got {self.std}")
        if self.interpolation not in ("bilinear", "bicubic", "nearest"):
            raise ValueError(f"unknown interpolation {self.interpolation!r}")

    def to_json(self) -> dict:
        out = asdict(self)
        out["mean"] = None if self.mean is None else list(self.mean)
        out["std"] = None if self.std is None else list(self.std)
        return out


@dataclass
class LoadedModel:
    """A model as loaded: its network (float images in [0, 1] -> logits, on the CPU), its output names when it
    knows them, its preprocessing, and whether Grad-CAM and RPS can reach its layers."""

    net: nn.Module
    name: str
    #: Its format's name in `formats.FORMATS`.
    format: str
    source: str
    outputs: tuple[str, ...] | None = None
    preprocess: Preprocess = field(default_factory=Preprocess)
    gradients: bool = True
    #: How its outputs were mapped to the data's classes (set by `for_data`).
    class_mapping: str | None = None
    #: The model's own metadata (bgrepro checkpoints: arch, variant, training config; `classifier` False for a
    #: backbone without a classifier head).
    meta: dict = field(default_factory=dict)
    #: The `formats.Format` that read it (which knows its feature-map trunk).
    handler: Any = field(default=None, repr=False, compare=False)

    def info(self, options: dict[str, str] | None = None) -> dict:
        """What the eval JSON and report.json record of the model; what was assumed names the parameters that say
        otherwise as `options` names them (a command's options; the library's parameter names without)."""
        def said(text: str | None) -> str | None:
            return None if text is None else with_options(text, options or {})

        return {"format": self.format, "weights": self.source,
                "preprocess": {**self.preprocess.to_json(), "source": said(self.preprocess.source)},
                "class_mapping": said(self.class_mapping), "gradients": self.gradients}

    def for_data(self, data_classes: list[str], image_size: int, classes_file: Path | None = None,
                 class_map: Path | None = None, input_size: int | None = None, mean=None, std=None) -> LoadedModel:
        """The model adapted to a dataset of these classes and images of this side: `net` takes the data's images in
        [0, 1] and gives one logit per data class (and "no class" when some outputs map to none). The options
        override the model's preprocessing."""
        if self.meta.get("classifier") is False:
            raise ValueError(f"{self.source}: a backbone without a classifier head (self-supervised weights); it "
                             "localizes objects (localize), it does not classify")
        preprocess = self.preprocess
        changes = {k: v for k, v in (("input_size", input_size), ("mean", mean), ("std", std)) if v is not None}
        if changes:
            if self.format in ("bgrepro", "robustness") and ("mean" in changes or "std" in changes):
                raise ValueError(f"{self.source}: a bgrepro or official checkpoint normalises its input itself; "
                                 "`mean` and `std` are for other formats")
            if ("mean" in changes) != ("std" in changes) and preprocess.mean is None:
                raise ValueError("pass `mean` and `std` together")
            said = ", ".join(f"`{k}`" for k in changes)
            preprocess = replace(preprocess, **{k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()},
                                 source=f"{said} (else {preprocess.source})")
        n_outputs = _output_size(self.net, preprocess, image_size)
        if self.format == "imagenet" and n_outputs == 1000 and class_map is None and classes_file is None:
            from .classes import imagenet_groups

            if imagenet_groups(list(data_classes)) is None:
                raise ValueError(f"an ImageNet model is scored through the 1000 -> IN-9 class mapping, which needs "
                                 f"IN-9's class folders, but the data has {len(data_classes)} classes; pass "
                                 "`class_map` FILE (JSON: ImageNet class index -> data class), or train a model")
        groups, said = resolve_outputs(self.outputs, n_outputs, list(data_classes), classes_file, class_map,
                                       self.source)
        net = Prepared(self.net, preprocess) if (preprocess.input_size or preprocess.mean is not None) else self.net
        if groups is not None and groups != list(range(len(data_classes))):
            net = MappedOutputs(net, groups, len(data_classes))
        return replace(self, net=net.eval(), preprocess=preprocess, class_mapping=said)

    def trunk(self, stride: int = 16) -> nn.Module:
        """The network as a frozen feature-map backbone for RPS (images in [0, 1] -> (N, C, h, w), its own
        normalisation inside); ResNets at output stride 16 as published (`stride` 32 keeps the built one)."""
        if self.handler is None:
            raise ValueError(f"{self.source}: no format read this model; load it with `bgrepro.registry.load`")
        return self.handler.trunk(self, stride)


def _output_size(net: nn.Module, preprocess: Preprocess, side: int) -> int:
    """How many outputs a network gives (one probe image at its input size)."""
    size = preprocess.input_size or side
    with torch.no_grad():
        try:
            out = Prepared(net, preprocess)(torch.zeros(1, 3, size, size))
        except Exception as err:  # noqa: BLE001 - whatever the model raises on its input
            raise ValueError(f"the model fails on a {size} x {size} image ({first_line(err)}); pass `input_size` N "
                             "(the side it was trained at)") from None
    if out.ndim != 2:
        raise ValueError(f"the model's output has shape {tuple(out.shape)}; a classifier gives (N, classes)")
    return int(out.shape[1])


__all__ = ["ASSUMED", "Preprocess", "LoadedModel"]
