"""The small modules that make any loaded network look alike: images in [0, 1] in, logits (or a feature map) out.

A classifier is adapted to a dataset by `Prepared` (resize and normalise its input) and `MappedOutputs` (its
outputs mapped to the data's classes: IN-9's 1000 -> 9 mapping is one instance); a format without modules of
its own is wrapped (`OnnxNet`, `Exported`, `CallableNet`, `HFOutput`; `FixedBatch` for a graph exported for one
batch size); a backbone for RPS is a `Trunk` (normalisation and a feature map: `ViTTokens`, `TimmFeatures`,
`HFOutput` where the network's trunk is not a plain module). `core_of` finds the network inside them all.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..io import first_line


class Prepared(nn.Module):
    """Images in [0, 1] at any size -> the network's input (resized whole, normalised) -> its logits."""

    def __init__(self, net: nn.Module, preprocess) -> None:
        super().__init__()
        self.net = net
        self.input_size = preprocess.input_size
        self.interpolation = preprocess.interpolation
        self.normalize = preprocess.mean is not None
        mean = preprocess.mean or (0.0, 0.0, 0.0)
        std = preprocess.std or (1.0, 1.0, 1.0)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_size is not None and tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            align = None if self.interpolation == "nearest" else False
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode=self.interpolation,
                              align_corners=align, antialias=self.interpolation != "nearest")
        if self.normalize:
            x = (x - self.mean) / self.std
        return self.net(x)


class MappedOutputs(nn.Module):
    """A model's outputs mapped to a dataset's classes: class c's logit is the max over the outputs mapped to
    it, and one more logit, "no class", the max over the outputs mapped to none (always wrong when it wins,
    as the paper scores ImageNet models on IN-9). The argmax is the data class of the model's top output."""

    def __init__(self, model: nn.Module, groups: list[int], num_classes: int) -> None:
        super().__init__()
        self.model = model
        self.num_classes = num_classes
        self.register_buffer("groups", torch.tensor(groups, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        if logits.shape[1] != len(self.groups):
            raise ValueError(f"the model gave {logits.shape[1]} outputs, its class map has {len(self.groups)}")
        out = logits.new_full((logits.shape[0], self.num_classes + 1), float("-inf"))
        return out.scatter_reduce(1, self.groups.expand_as(logits), logits, reduce="amax")


class HFOutput(nn.Module):
    """A Hugging Face model (called with `pixel_values`) as a plain module: images -> one field of its output
    (a classifier's `logits`, a backbone's `last_hidden_state`)."""

    def __init__(self, net: nn.Module, field: str) -> None:
        super().__init__()
        self.net, self.field = net, field

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self.net(pixel_values=x), self.field)


class OnnxNet(nn.Module):
    """An ONNX file run by onnxruntime, as a module from float images to logits (no gradients); the input's
    fixed batch size and side, when the graph has them, in `fixed_batch` and `input_size`."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        import onnxruntime as ort

        providers = ["CPUExecutionProvider"]
        if torch.cuda.is_available() and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), providers=providers)
        except Exception as err:  # noqa: BLE001 - onnxruntime's own error types
            raise ValueError(f"{path}: not a readable ONNX model ({first_line(err)})") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ValueError(f"{path}: an ONNX image classifier has one 4-D input (N, 3, H, W); this one has "
                             f"{[i.shape for i in inputs]}")
        self.input_name = inputs[0].name
        self.fixed_batch, self.input_size = static_shape(inputs[0].shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().float().cpu().contiguous().numpy()})[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32)).to(x.device)


@contextmanager
def _quiet_native_stderr():
    """The process's file descriptor 2 sent to /dev/null for the block: what a native library logs there."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class TFLiteNet(nn.Module):
    """A TFLite image classifier run by LiteRT's interpreter (`ai-edge-litert`), as a module from float images in
    [0, 1] to scores (no gradients). The file's own input parameters say what it takes: a quantised (uint8 or
    int8) input takes the pixels themselves, its quantisation inside the graph, so nothing is normalised outside;
    quantised scores are dequantised with the output's own scale and zero point. With 1001 outputs the first is
    TensorFlow's "background" class and is dropped, leaving ImageNet's 1000 in order. One image at a time when
    the input has a fixed batch of one (as published TFLite classifiers do)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise ValueError(f"{path}: a TFLite model needs LiteRT's interpreter (pip install ai-edge-litert)"
                             ) from None
        try:
            with _quiet_native_stderr():  # its C++ logs ("Created ... XNNPACK delegate"): the error below says it all
                self.interpreter = Interpreter(model_path=str(path))
                self.interpreter.allocate_tensors()
        except Exception as err:  # noqa: BLE001 - LiteRT's own error types (custom operators, a corrupt file)
            raise ValueError(f"{path}: not a TFLite model this interpreter runs ({first_line(err)})") from None
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        shape = tuple(int(d) for d in inputs[0]["shape"]) if len(inputs) == 1 else ()
        if len(shape) != 4 or shape[3] != 3 or shape[1] != shape[2]:
            raise ValueError(f"{path}: a TFLite image classifier has one square RGB input (1, H, H, 3); this one has "
                             f"{[tuple(int(d) for d in i['shape']) for i in inputs]}")
        out_shape = tuple(int(d) for d in outputs[0]["shape"]) if len(outputs) == 1 else ()
        if len(out_shape) != 2 or out_shape[1] < 2:
            raise ValueError(f"{path}: a TFLite image classifier has one output of class scores (1, classes); this "
                             f"one has {[tuple(int(d) for d in o['shape']) for o in outputs]}")
        self.input, self.output = inputs[0], outputs[0]
        self.dtype = np.dtype(self.input["dtype"])
        if self.dtype not in (np.uint8, np.int8, np.float32):
            raise ValueError(f"{path}: a TFLite input of type {self.dtype} is not an image (uint8, int8 or float32)")
        self.input_size = shape[1]
        #: TensorFlow's classifiers put "background" first: 1001 outputs are ImageNet's 1000 behind it.
        self.offset = 1 if out_shape[1] == 1001 else 0
        self.classes = out_shape[1] - self.offset

    @property
    def quantized(self) -> bool:
        """Whether the input takes pixels (quantised inside) rather than floats normalised outside."""
        return self.dtype != np.float32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = x.detach().float().cpu().permute(0, 2, 3, 1).numpy()  # NHWC, as TFLite takes it
        if self.quantized:
            pixels = np.clip(np.rint(images * 255), 0, 255)
            images = (pixels - (128 if self.dtype == np.int8 else 0)).astype(self.dtype)
        scale, zero = self.output.get("quantization", (0.0, 0))
        out = np.empty((len(images), self.classes + self.offset), np.float32)
        for k in range(len(images)):
            self.interpreter.set_tensor(self.input["index"], images[k:k + 1])
            self.interpreter.invoke()
            raw = self.interpreter.get_tensor(self.output["index"])[0].astype(np.float32)
            out[k] = (raw - zero) * scale if scale else raw
        return torch.from_numpy(out[:, self.offset:]).to(x.device)


def static_shape(shape) -> tuple[int | None, int | None]:
    """(batch size, square side) of an (N, 3, H, W) input shape, each None where it is not a fixed number."""
    fixed = [d if isinstance(d, int) and not isinstance(d, bool) else None for d in shape]
    side = fixed[2] if fixed[2] is not None and fixed[2] == fixed[3] else None
    return fixed[0], side


class FixedBatch(nn.Module):
    """A graph exported for one batch size (ONNX, torch.export) run that many images at a time, the last
    chunk padded with zeros and the padding's outputs dropped."""

    def __init__(self, net: nn.Module, batch: int) -> None:
        super().__init__()
        self.net, self.batch = net, batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for k in range(0, len(x), self.batch):
            chunk = x[k:k + self.batch]
            pad = self.batch - len(chunk)
            if pad:
                chunk = torch.cat([chunk, chunk.new_zeros((pad, *chunk.shape[1:]))])
            outs.append(self.net(chunk)[:self.batch - pad])
        return torch.cat(outs)


class Exported(nn.Module):
    """A `torch.export` program's module, which cannot switch between train and eval mode: kept as it was
    exported (in eval mode, as a classifier is exported for inference)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def train(self, mode: bool = True) -> Exported:
        self.training = mode  # not passed down: the exported graph fixed its mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


class CallableNet(nn.Module):
    """A plain callable from float images to logits, as a module (no gradients assumed)."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fn(x)
        return out if isinstance(out, torch.Tensor) else torch.as_tensor(out, dtype=torch.float32)


class Trunk(nn.Module):
    """A frozen backbone for RPS: images in [0, 1] -> normalised -> feature map (N, C, h, w)."""

    def __init__(self, net: nn.Module, normalize: nn.Module) -> None:
        super().__init__()
        self.normalize, self.net = normalize, net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


class ViTTokens(nn.Module):
    """A timm ViT as a feature-map backbone: patch tokens after the final norm (prefix tokens dropped),
    through a ReLU as in the published RPS, on their grid."""

    def __init__(self, vit: nn.Module) -> None:
        super().__init__()
        self.vit = vit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.vit.forward_features(x)[:, getattr(self.vit, "num_prefix_tokens", 1):]  # after the final norm
        h, w = x.shape[2] // self.vit.patch_embed.patch_size[0], x.shape[3] // self.vit.patch_embed.patch_size[1]
        return torch.relu(tokens.transpose(1, 2).reshape(len(x), -1, h, w))


class TimmFeatures(nn.Module):
    """A timm CNN's `forward_features` (its last feature map) as a backbone."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(x)


#: The adapters that hold a network (in `model` or `net`), unwrapped by `core_of`.
_HOLDERS = (MappedOutputs, Prepared, HFOutput, FixedBatch)


def core_of(model: nn.Module) -> nn.Module:
    """The network inside bgrepro's adapters (what Grad-CAM looks into)."""
    while isinstance(model, _HOLDERS):
        model = model.model if isinstance(model, MappedOutputs) else model.net
    return model


def reaches_layers(model: nn.Module) -> bool:
    """Whether Grad-CAM can hook the model's layers (not ONNX, TFLite, TorchScript, torch.export or a callable)."""
    return not isinstance(core_of(model), (OnnxNet, TFLiteNet, CallableNet, Exported, torch.jit.ScriptModule,
                                           torch.fx.GraphModule))


__all__ = ["Prepared", "MappedOutputs", "HFOutput", "OnnxNet", "TFLiteNet", "static_shape", "FixedBatch", "Exported",
           "CallableNet", "Trunk", "ViTTokens", "TimmFeatures", "core_of", "reaches_layers"]
