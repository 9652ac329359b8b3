"""Batched inference, with device, precision and batch size decided once at the entry point.

`Inference.at(device=None, precision="fp32")` picks CUDA when it is there, else the CPU; every stage
that runs a model over images (evaluation, the challenge, localization, saliency) takes one and
gets the same policy: the model moved to the device in eval mode (channels_last), images
sent in batches as floats in [0, 1], autocast only when a lower precision is asked for. fp32 is
the default wherever a number is compared with the paper.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .distributed import local_device

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def default_device() -> torch.device:
    """CUDA when available (under torchrun, this rank's own GPU), else the CPU."""
    return local_device()


@dataclass(frozen=True)
class Inference:
    """How models run: on which device, in which precision, how many images at a time."""

    device: torch.device
    precision: str = "fp32"
    batch_size: int = 256

    @classmethod
    def at(cls, device=None, precision: str = "fp32", batch_size: int | None = None) -> Inference:
        """The policy for a device (default: CUDA when available); 'auto' precision is bf16 on CUDA."""
        device = torch.device(device) if device is not None else default_device()
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("`device` cuda: no CUDA GPU is available on this machine")
        if precision == "auto":
            precision = "bf16" if device.type == "cuda" else "fp32"
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of auto, {', '.join(PRECISIONS)}; got {precision!r}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch size must be positive, got {batch_size}")
        return cls(device, precision, batch_size or (1024 if device.type == "cuda" else 256))

    @classmethod
    def of(cls, model: torch.nn.Module, precision: str = "fp32") -> Inference:
        """The policy of wherever a model already is."""
        param = next(model.parameters(), None)
        return cls.at(param.device if param is not None else "cpu", precision)

    @property
    def memory_format(self) -> torch.memory_format:
        # channels_last everywhere: cuDNN's fast layout, and oneDNN's CPU inference runs 1.5-2x faster in it
        # (A/B on the smoke nets at 40 px, 3 repeats each)
        return torch.channels_last

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model on the device, in eval mode and the device's memory format."""
        return model.to(self.device).eval().to(memory_format=self.memory_format)

    def autocast(self):
        """Autocast to the chosen lower precision, or nothing for fp32."""
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def floats(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (or [0, 1] float) images as floats in [0, 1] on the device, in its memory format."""
        x = images.to(self.device, non_blocking=True)
        x = x.float().div_(255) if x.dtype == torch.uint8 else x.float()
        return x.contiguous(memory_format=self.memory_format)

    def batches(self, images: torch.Tensor) -> Iterator[tuple[int, torch.Tensor]]:
        """(start, float batch on the device) over a set of images."""
        for k in range(0, len(images), self.batch_size):
            yield k, self.floats(images[k:k + self.batch_size])

    @torch.inference_mode()
    def logits(self, model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
        """fp32 logits (N, K), on the CPU, of a prepared model on uint8 images."""
        out = []
        for _, x in self.batches(images):
            with self.autocast():
                out.append(model(x).float().cpu())
        return torch.cat(out) if out else torch.empty(0)

    def predict(self, model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
        """Predicted class (N,) of every image."""
        return self.logits(self.prepare(model), images).argmax(1)


def precision_check(model: torch.nn.Module, images: torch.Tensor, inference: Inference, sample: int = 512) -> dict:
    """How many of the first `sample` images get another prediction at `inference`'s precision than in
    fp32 (the cost of an opt-in bf16/fp16 run, reported beside its numbers)."""
    images = images[:sample]
    fp32 = Inference(inference.device, "fp32", inference.batch_size)
    low = fp32.predict(model, images)
    other = inference.predict(model, images)
    return {"precision": inference.precision, "sample": len(images), "flipped": int((low != other).sum())}
