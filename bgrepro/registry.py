"""Your model, as it is: the one module that turns a spec into a model a command can score.

A spec is a file or a name, and the format is read from the file itself (`detect_format`):

- a bgrepro checkpoint, or the official release's robustness-library file (`models.load_checkpoint`);
- a plain state dict of any torchvision or timm architecture, named by `arch` (its class count read from
  the head's weight), also inside the usual training wrappers (`{"state_dict": ...}`, `module.` prefixes);
- a TorchScript archive (`torch.jit.save`) or a `torch.export` archive (`.pt2`);
- an ONNX file, run by onnxruntime (the CUDA provider when there is a GPU);
- a Hugging Face image classifier: a folder saved by `save_pretrained`, or a hub id fetched through the
  library's own cache unless `offline`; never with `trust_remote_code`;
- in Python, any `torch.nn.Module` or callable from images to logits (`from_module`).

`LoadedModel` is the typed record of what was loaded: the network, its output names when it knows them
(bgrepro metadata, a Hugging Face `id2label`), its preprocessing (`Preprocess`: input size, mean and std,
from timm's pretrained config or the Hugging Face image processor where the model carries them) and
whether gradients reach its layers (Grad-CAM). `for_data` adapts it to a dataset: images in [0, 1] at
the data's size are brought to the model's input size and statistics, and its outputs are mapped to the
data's classes (`resolve_outputs`: by name, by a `class_map`, by a classes file, or, when the counts
agree, in the order of the data's sorted class folders); outputs mapped to no class count as wrong, as the
paper's 1000 -> 9 mapping does. The self-supervised backbones of the RPS paper (`SELF_SUPERVISED`) are
named here too.
"""

from __future__ import annotations

import io
import json
import re
import sys
import zipfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import layout
from .models import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    TORCHVISION_ARCHS,
    first_line,
    load_checkpoint,
    official_state,
    safe_load,
)

FORMATS = ("bgrepro", "robustness", "state_dict", "torchscript", "export", "onnx", "huggingface", "module",
           "imagenet")

_FB = "https://dl.fbaipublicfiles.com"
#: The self-supervised backbones of the RPS paper by name: (architecture, the authors' release URL). Their
#: files are cached by torch.hub (`self_supervised_weights`).
SELF_SUPERVISED = {
    "dino_resnet50": ("resnet50", f"{_FB}/dino/dino_resnet50_pretrain/dino_resnet50_pretrain.pth"),
    "dino_vits16": ("vit_small_patch16_224", f"{_FB}/dino/dino_deitsmall16_pretrain/dino_deitsmall16_pretrain.pth"),
    "mocov2_resnet50": ("resnet50", f"{_FB}/moco/moco_checkpoints/moco_v2_800ep/moco_v2_800ep_pretrain.pth.tar"),
    "mocov3_resnet50": ("resnet50", f"{_FB}/moco-v3/r-50-1000ep/r-50-1000ep.pth.tar"),
}


def self_supervised_weights(name: str, offline: bool = False, progress: bool = True) -> Path:
    """The local file of a named self-supervised backbone: torch.hub's checkpoint cache, downloaded there
    by torch.hub unless `offline` (then one error naming the missing file)."""
    _, url = SELF_SUPERVISED[name]
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if path.exists():
        return path
    if offline:
        raise FileNotFoundError(f"{path.name}: the {name} weights are not in {path.parent} and --offline forbids "
                                f"the download ({url}); put the file there or pass --weights FILE")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(path), progress=progress)
    except Exception as err:  # noqa: BLE001 - network and disk errors end the same way
        raise OSError(f"{path.name}: could not download the {name} weights from {url} into {path.parent} "
                      f"({first_line(err)}); fetch it by hand, or pass --weights FILE") from None
    return path


# ------------------------------------------------------------------------------------------ the typed records
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
            raise ValueError(f"--input-size must be at least 8 pixels, got {self.input_size}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None and (len(value) != 3 or not all(v == v and abs(v) < 1e6 for v in value)):
                raise ValueError(f"--{name} must be three finite numbers R,G,B, got {value}")
        if self.std is not None and min(self.std) <= 0:
            raise ValueError(f"--std must be positive, got {self.std}")
        if self.interpolation not in ("bilinear", "bicubic", "nearest"):
            raise ValueError(f"unknown interpolation {self.interpolation!r}")

    def to_json(self) -> dict:
        out = asdict(self)
        out["mean"] = None if self.mean is None else list(self.mean)
        out["std"] = None if self.std is None else list(self.std)
        return out


#: What a model file without preprocessing of its own is assumed to expect (said as assumed wherever it is used).
ASSUMED = "assumed: ImageNet mean and std, the data's size (pass --input-size, --mean and --std to say otherwise)"


@dataclass
class LoadedModel:
    """A model as loaded: its network (float images in [0, 1] -> logits, on the CPU), its output names when it
    knows them, its preprocessing, and whether Grad-CAM can reach its layers."""

    net: nn.Module
    name: str
    format: str
    source: str
    outputs: tuple[str, ...] | None = None
    preprocess: Preprocess = field(default_factory=Preprocess)
    gradients: bool = True
    #: How its outputs were mapped to the data's classes (set by `for_data`).
    class_mapping: str | None = None
    #: The model's own metadata (bgrepro checkpoints: arch, variant, training config).
    meta: dict = field(default_factory=dict)

    def info(self) -> dict:
        """What the eval JSON and report.json record of the model."""
        return {"format": self.format, "weights": self.source, "preprocess": self.preprocess.to_json(),
                "class_mapping": self.class_mapping, "gradients": self.gradients}


# ------------------------------------------------------------------------------------------------ adapters
class Prepared(nn.Module):
    """Images in [0, 1] at any size -> the network's input (resized whole, normalised) -> its logits."""

    def __init__(self, net: nn.Module, preprocess: Preprocess) -> None:
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


class _Logits(nn.Module):
    """A Hugging Face classifier as a plain module: images -> logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits


class _OnnxNet(nn.Module):
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
        self.fixed_batch, self.input_size = _static_shape(inputs[0].shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import numpy as np

        out = self.session.run(None, {self.input_name: x.detach().float().cpu().contiguous().numpy()})[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32)).to(x.device)


def _static_shape(shape) -> tuple[int | None, int | None]:
    """(batch size, square side) of an (N, 3, H, W) input shape, each None where it is not a fixed number."""
    fixed = [d if isinstance(d, int) and not isinstance(d, bool) else None for d in shape]
    side = fixed[2] if fixed[2] is not None and fixed[2] == fixed[3] else None
    return fixed[0], side


class _FixedBatch(nn.Module):
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


class _Exported(nn.Module):
    """A `torch.export` program's module, which cannot switch between train and eval mode: kept as it was
    exported (in eval mode, as a classifier is exported for inference)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def train(self, mode: bool = True) -> _Exported:
        self.training = mode  # not passed down: the exported graph fixed its mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


class _Callable(nn.Module):
    """A plain callable from float images to logits, as a module (no gradients assumed)."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fn(x)
        return out if isinstance(out, torch.Tensor) else torch.as_tensor(out, dtype=torch.float32)


# ---------------------------------------------------------------------------------------------- formats
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def detect_format(spec: str | Path) -> str:
    """The format of a model file or folder, read from what it holds (a missing path that looks like
    `owner/name` is a Hugging Face hub id)."""
    path = Path(spec)
    if path.is_dir():
        if (path / "config.json").is_file():
            return "huggingface"
        raise ValueError(f"{path}: a folder, but not a Hugging Face model (no config.json); give a model file")
    if not path.exists():
        if _HUB_ID.match(str(spec)) and not str(spec).startswith((".", "/")) and path.suffix == "":
            return "huggingface"
        raise FileNotFoundError(f"{path}: model file not found")
    with open(path, "rb") as f:
        head = f.read(4)
    if path.suffix.lower() == ".onnx":
        return "onnx"
    if path.suffix.lower() == ".safetensors":
        return "state_dict"
    if head[:2] == b"PK" and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
        if any("serialized_exported_program" in n or n.endswith("/models/model.json") for n in names):
            return "export"
        if any("/code/" in n for n in names):
            return "torchscript"
        return "torch"  # torch.save's zip: bgrepro, robustness or a state dict
    if head[:1] == b"\x08":  # a protobuf's first field: an ONNX ModelProto without the suffix
        return "onnx"
    return "torch"


def _strip(state: dict) -> dict:
    """A state dict without the wrappers' prefixes (`module.` of DataParallel, `model.` of Lightning-style)."""
    for prefix in ("module.", "model.", "net."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _state_dict_of(payload) -> dict | None:
    """The tensors of a plain state dict, or of one inside the usual training wrappers."""
    if isinstance(payload, dict) and payload and all(isinstance(k, str) for k in payload):
        if all(isinstance(v, torch.Tensor) for v in payload.values()):
            return _strip(payload)
        for key in ("state_dict", "model", "model_state_dict", "net", "weights"):
            inner = payload.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return _strip(inner)
    return None


#: The usual names of a classifier's last layer (torchvision and timm), tried before the last 2-D weight.
_HEADS = ("fc.weight", "head.weight", "head.fc.weight", "classifier.weight", "classifier.1.weight",
          "classifier.6.weight", "classifier.3.weight", "heads.head.weight", "last_linear.weight")


def _output_count(state: dict) -> int:
    """The class count of a state dict: rows of its head (by the usual names, else its last 2-D weight)."""
    named = next((state[k] for k in _HEADS if k in state and state[k].ndim == 2), None)
    if named is not None:
        return int(named.shape[0])
    heads = [v for k, v in state.items() if k.endswith("weight") and v.ndim == 2]
    if not heads:
        raise ValueError("no classifier weight (a 2-D `...weight`) in the state dict")
    return int(heads[-1].shape[0])


def _architecture(path: Path, arch: str | None, state: dict) -> tuple[nn.Module, Preprocess]:
    """A torchvision or timm network of `arch` with the state dict's class count, the weights loaded."""
    if not arch:
        raise ValueError(f"{path}: a plain state dict; name its architecture with --arch (a torchvision or timm "
                         "name, e.g. resnet50, mobilenetv3_small_100)")
    outputs = _output_count(state)
    tv = TORCHVISION_ARCHS.get(arch, arch)
    import torchvision

    tried = []
    # a user's weights carry no preprocessing: none is taken from a pretrained configuration of the same
    # architecture (that describes the pretrained weights, not these), so every format of the same weights
    # scores the same (TorchScript and ONNX assume the same)
    preprocess = Preprocess(None, IMAGENET_MEAN, IMAGENET_STD, "bilinear", ASSUMED)
    if tv in torchvision.models.list_models():
        net = torchvision.models.get_model(tv, weights=None, num_classes=outputs)
        try:
            net.load_state_dict(state)
            return net, preprocess
        except (RuntimeError, ValueError) as err:
            tried.append(err)  # perhaps timm's network of the same name
    import timm

    if not timm.is_model(arch):
        if tried:
            raise ValueError(f"{path}: the weights do not fit {arch} with {outputs} outputs "
                             f"({_first_mismatch(tried[0])}); is --arch right?") from None
        raise ValueError(f"{path}: unknown architecture {arch!r} (neither torchvision's nor timm's)")
    net = timm.create_model(arch, pretrained=False, num_classes=outputs)
    try:
        net.load_state_dict(state)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"{path}: the weights do not fit {arch} with {outputs} outputs "
                         f"({_first_mismatch(tried[0] if tried else err)}); is --arch right?") from None
    return net, preprocess


def _first_mismatch(err: BaseException) -> str:
    return next((ln.strip() for ln in str(err).splitlines()[1:] if ln.strip()), first_line(err))[:160]


def _side_of(size) -> int | None:
    """The side of an image processor's `size` (an int, or a mapping with height or shortest_edge)."""
    if size is None or isinstance(size, int):
        return size
    get = size.get if hasattr(size, "get") else (lambda key: getattr(size, key, None))
    value = get("height") or get("shortest_edge")
    return int(value) if value else None


#: The files of a Hugging Face folder that may ask for the folder's own Python code (`auto_map`).
_HF_CONFIGS = ("config.json", "preprocessor_config.json", "processor_config.json")


def _refuse_remote_code(folder: Path) -> None:
    """A Hugging Face folder whose model or image processor is its own Python code (`auto_map`) is refused:
    bgrepro never runs a model file's code."""
    for name in _HF_CONFIGS:
        try:
            config = json.loads((folder / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as err:
            raise ValueError(f"{folder / name}: unreadable ({first_line(err)})") from None
        if isinstance(config, dict) and config.get("auto_map"):
            part = "model" if name == "config.json" else "image processor"
            raise ValueError(f"{folder / name}: the {part} is the folder's own Python code (auto_map), which bgrepro "
                             "never runs; use a model of a standard transformers architecture")


@contextmanager
def _no_questions():
    """Standard input closed for the block: a library that would ask a question gets no answer, never a user's."""
    saved = sys.stdin
    sys.stdin = io.StringIO()
    try:
        yield
    finally:
        sys.stdin = saved


def _huggingface(spec: str | Path, offline: bool) -> LoadedModel:
    try:
        from transformers import AutoImageProcessor, AutoModelForImageClassification
    except ImportError:
        raise ValueError(f"{spec}: a Hugging Face model needs the transformers package (pip install "
                         "transformers)") from None
    local = Path(spec).is_dir()
    options = {"trust_remote_code": False, "local_files_only": offline or local}
    _refuse_remote_code(Path(spec) if local else _hub_configs(str(spec), offline))
    try:
        with _no_questions():
            model = AutoModelForImageClassification.from_pretrained(str(spec), weights_only=True, **options)
    except OSError as err:
        how = "" if local else (" (not in the Hugging Face cache and --offline forbids the download)" if offline
                                else " (downloaded through the Hugging Face cache)")
        raise OSError(f"{spec}: could not load the Hugging Face classifier{how}: {first_line(err)}") from None
    except Exception as err:  # noqa: BLE001 - transformers, safetensors and torch errors of a bad folder
        weights = _hf_weights(Path(spec)) if local else None
        where = f"{weights}: " if weights else f"{spec}: "
        raise ValueError(f"{where}not a readable Hugging Face image classifier ({first_line(err)})") from None
    config = model.config
    labels = [config.id2label[k] for k in sorted(config.id2label)] if getattr(config, "id2label", None) else None
    if labels and all(re.fullmatch(r"LABEL_\d+", str(v)) for v in labels):
        labels = None  # the library's placeholders: the model does not know its classes
    preprocess = Preprocess(None, IMAGENET_MEAN, IMAGENET_STD, "bilinear", ASSUMED + " (the model has no image "
                            "processor)")
    try:
        with _no_questions():
            processor = AutoImageProcessor.from_pretrained(str(spec), **options)
    except (OSError, ValueError, KeyError):
        processor = None
    if processor is not None:
        size = getattr(processor, "crop_size", None) if getattr(processor, "do_center_crop", False) else None
        side = _side_of(size) or _side_of(getattr(processor, "size", None))
        normalize = getattr(processor, "do_normalize", True)
        mean = tuple(float(v) for v in processor.image_mean) if normalize and processor.image_mean else None
        std = tuple(float(v) for v in processor.image_std) if normalize and processor.image_std else None
        resample = getattr(processor, "resample", 2)
        preprocess = Preprocess(int(side) if side else None, mean, std,
                                "bicubic" if int(resample or 2) == 3 else "bilinear", "the model's image processor")
    return LoadedModel(_Logits(model.eval()), str(spec), "huggingface", str(spec), tuple(map(str, labels))
                       if labels else None, preprocess, gradients=True)


def _hub_configs(hub_id: str, offline: bool) -> Path:
    """The local folder of a hub model's configuration files (fetched into the Hugging Face cache unless
    `offline`), read before any of its weights or code."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(hub_id, allow_patterns=list(_HF_CONFIGS), local_files_only=offline))
    except Exception as err:  # noqa: BLE001 - hub, network and cache errors all end the same way
        how = "not in the Hugging Face cache and --offline forbids the download" if offline else "could not fetch it"
        raise OSError(f"{hub_id}: {how} ({first_line(err)})") from None


def _hf_weights(folder: Path) -> Path | None:
    """The weights file of a Hugging Face folder (what a failed load most likely failed on)."""
    for name in ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                 "pytorch_model.bin.index.json"):
        if (folder / name).is_file():
            return folder / name
    return None


def _graph_model(net: nn.Module, path: Path, fmt: str, batch: int | None, side: int | None) -> LoadedModel:
    """A compiled graph (TorchScript, torch.export, ONNX) as a model: run `batch` images at a time when its input
    has a fixed batch size, at its fixed side when it has one, else at the data's; ImageNet statistics assumed."""
    if batch:
        net = _FixedBatch(net, batch)
    said = ASSUMED if side is None else ASSUMED.replace("the data's size", f"{side} px from the graph's input")
    return LoadedModel(net, path.name, fmt, str(path), None,
                       Preprocess(side, IMAGENET_MEAN, IMAGENET_STD, "bilinear", said), gradients=False)


def load(spec: str | Path, arch: str | None = None, offline: bool = False) -> LoadedModel:
    """A model from a file, folder or hub id, in whichever format it is (see the module docstring)."""
    kind = detect_format(spec)
    path = Path(spec)
    if kind == "huggingface":
        return _huggingface(spec, offline)
    if kind == "onnx":
        try:
            net = _OnnxNet(path)
        except ImportError:
            raise ValueError(f"{path}: an ONNX model needs onnxruntime (pip install onnxruntime)") from None
        return _graph_model(net, path, "onnx", net.fixed_batch, net.input_size)
    if kind == "torchscript":
        try:
            import warnings

            with warnings.catch_warnings():  # torch's deprecation notice of TorchScript: the user's file is as it is
                warnings.simplefilter("ignore", FutureWarning)
                net = torch.jit.load(str(path), map_location="cpu")
        except Exception as err:  # noqa: BLE001 - TorchScript's own error types
            raise ValueError(f"{path}: unreadable TorchScript archive ({first_line(err)})") from None
        return _graph_model(net.eval(), path, "torchscript", None, None)
    if kind == "export":
        from .safe_export import load_export

        program = load_export(path)
        names = set(program.graph_signature.user_inputs)
        images = [n for n in program.graph.nodes if n.op == "placeholder" and n.name in names]
        value = images[0].meta.get("val") if len(images) == 1 else None
        if value is None or value.dim() != 4:
            raise ValueError(f"{path}: an exported image classifier has one 4-D input (N, 3, H, W)")
        try:
            net = program.module()
        except Exception as err:  # noqa: BLE001 - torch.export's own error types
            raise ValueError(f"{path}: unreadable torch.export archive ({first_line(err)})") from None
        return _graph_model(_Exported(net), path, "export", *_static_shape(tuple(value.shape)))
    if path.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ValueError(f"{path}: a .safetensors file needs the safetensors package") from None
        try:
            state = _strip(load_file(str(path)))
        except Exception as err:  # noqa: BLE001 - safetensors' own error types
            raise ValueError(f"{path}: unreadable safetensors file ({first_line(err)})") from None
        net, preprocess = _architecture(path, arch, state)
        return LoadedModel(net.eval(), f"{path.name}: {arch}", "state_dict", str(path), None, preprocess)
    payload = safe_load(path, "model file")
    official = official_state(payload)
    if (isinstance(payload, dict) and payload.get("format") == "bgrepro-checkpoint-1") or (
            official is not None and official[1] is not None):
        model, meta = load_checkpoint(path, arch=arch)
        fmt = "bgrepro" if meta.get("format", "bgrepro") == "bgrepro" else "robustness"
        names = tuple(meta["classes"]) + (("(no class)",) if meta.get("imagenet") else ())
        return LoadedModel(model, meta["arch"], fmt, str(path), names,
                           Preprocess(None, None, None, "bilinear", "the checkpoint (its own normalisation, the "
                                      "data's size)"), meta=meta)
    state = _state_dict_of(payload)
    if state is None:
        raise ValueError(f"{path}: not a model file bgrepro reads (a bgrepro or official checkpoint, a state dict, "
                         "TorchScript, torch.export, ONNX or a Hugging Face folder)")
    net, preprocess = _architecture(path, arch, state)
    return LoadedModel(net.eval(), f"{path.name}: {arch}", "state_dict", str(path), None, preprocess)


def from_module(model, name: str = "model", classes: tuple[str, ...] | None = None,
                preprocess: Preprocess | None = None) -> LoadedModel:
    """Any `torch.nn.Module` (gradients reach its layers) or callable from images to logits, as a model."""
    if isinstance(model, nn.Module):
        return LoadedModel(model.eval(), name, "module", "python", classes, preprocess or Preprocess(
            None, None, None, "bilinear", "the module (it normalises its own input)"), gradients=True)
    if not callable(model):
        raise TypeError(f"{name}: neither a torch.nn.Module nor a callable")
    return LoadedModel(_Callable(model), name, "module", "python", classes, preprocess or Preprocess(
        None, None, None, "bilinear", "the callable (it normalises its own input)"), gradients=False)


# --------------------------------------------------------------------------------------------- the classes
def read_classes(path: Path) -> tuple[str, ...]:
    """A classes file: one name per line, in the model's output order (blank lines and # comments skipped)."""
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: classes file not found") from None
    except UnicodeDecodeError:
        lines = Path(path).read_text(encoding="cp1252").splitlines()
    names = tuple(ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#"))
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(f"{path}: a classes file needs at least two distinct names, one per line")
    return names


def read_class_map(path: Path) -> dict[str, str]:
    """A class map: JSON object from a model output (its index or name) to one of the data's classes."""
    try:
        mapping = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: class map not found") from None
    except ValueError as err:
        raise ValueError(f"{path}: not JSON ({first_line(err)})") from None
    if not isinstance(mapping, dict) or not mapping or not all(isinstance(v, str) for v in mapping.values()):
        raise ValueError(f"{path}: a class map is a JSON object {{model output (index or name): data class}}")
    return {str(k): v for k, v in mapping.items()}


def _few(names) -> str:
    names = list(names)
    return ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")


def resolve_outputs(outputs: tuple[str, ...] | None, n_outputs: int, data_classes: list[str],
                    classes_file: Path | None = None, class_map: Path | None = None,
                    source: str = "the model") -> tuple[list[int] | None, str]:
    """How the model's outputs map to the data's classes: (groups, said) where groups[i] is the data class of
    output i (len(data_classes): none) or None for the identity, and `said` how it was decided."""
    from .classes import CLASS_FOLDERS, IMAGENET_INDICES

    k = len(data_classes)
    if classes_file is not None:
        outputs, where = read_classes(classes_file), f"--classes {classes_file}"
        if len(outputs) != n_outputs:
            raise ValueError(f"{classes_file}: names {len(outputs)} classes but {source} has {n_outputs} outputs")
    else:
        where = "the model's own class names"
    if class_map is not None:
        mapping = read_class_map(class_map)
        unknown = sorted(set(mapping.values()) - set(data_classes))
        if unknown:
            raise ValueError(f"{class_map}: maps to {unknown[0]!r}, which is not a class of the data "
                             f"({', '.join(data_classes[:6])}{', ...' if k > 6 else ''})")
        groups = [k] * n_outputs
        names = list(outputs or ())
        for key, target in mapping.items():
            if key.lstrip("-").isdigit() and key not in names:
                index = int(key)
            elif key in names:
                index = names.index(key)
            else:
                raise ValueError(f"{class_map}: {key!r} is neither an output index (0 to {n_outputs - 1}) nor an "
                                 "output name of the model")
            if not 0 <= index < n_outputs:
                raise ValueError(f"{class_map}: output {index} is out of range (the model has {n_outputs} outputs)")
            groups[index] = data_classes.index(target)
        missing = [c for c in data_classes if data_classes.index(c) not in groups]
        if missing:
            raise ValueError(f"{class_map}: no output maps to the data's class {missing[0]!r}")
        mapped = sum(g < k for g in groups)
        return groups, (f"--class-map {class_map}: {mapped} of {n_outputs} outputs mapped to the data's {k} "
                        "classes, the others count as wrong")
    if outputs is not None:
        if list(outputs) == list(data_classes):
            return None, f"{where}, the data's classes in the same order"
        if len(outputs) == k and set(outputs) == set(data_classes):
            return [data_classes.index(c) for c in outputs], f"{where}, matched to the data's classes by name"
        if outputs[-1] == "(no class)" and list(outputs[:-1]) == list(data_classes):
            return None, "IN-9's classes (the model's 1000 outputs mapped as the paper does)"
        if n_outputs == 1000 and tuple(data_classes) == CLASS_FOLDERS:
            pass  # an ImageNet classifier with named outputs on IN-9: the paper's mapping below
        else:
            raise ValueError(f"{source}: the model was trained on {len(outputs)} classes ({_few(outputs)}) but the "
                             f"data has {k} ({_few(data_classes)}); pass --class-map FILE (JSON: model output -> "
                             "data class)")
    if n_outputs == 1000 and tuple(data_classes) == CLASS_FOLDERS:
        groups = [k] * 1000
        for c, indices in enumerate(IMAGENET_INDICES):
            for i in indices:
                groups[i] = c
        return groups, "IN-9's 1000 -> 9 mapping of ImageNet classes (the paper's)"
    if n_outputs == k:
        return None, (f"assumed: output i is the data's i-th class folder in sorted order ({_few(data_classes)}); "
                      "pass --classes FILE to say otherwise")
    raise ValueError(f"{source} has {n_outputs} outputs but the data has {k} classes; pass --class-map FILE (JSON: "
                     "model output -> data class) or --classes FILE")


def _output_size(net: nn.Module, preprocess: Preprocess, side: int) -> int:
    """How many outputs a network gives (one probe image at its input size)."""
    size = preprocess.input_size or side
    with torch.no_grad():
        try:
            out = Prepared(net, preprocess)(torch.zeros(1, 3, size, size))
        except Exception as err:  # noqa: BLE001 - whatever the model raises on its input
            raise ValueError(f"the model fails on a {size} x {size} image ({first_line(err)}); pass --input-size N "
                             "(the side it was trained at)") from None
    if out.ndim != 2:
        raise ValueError(f"the model's output has shape {tuple(out.shape)}; a classifier gives (N, classes)")
    return int(out.shape[1])


def for_data(loaded: LoadedModel, data_classes: list[str], image_size: int, classes_file: Path | None = None,
             class_map: Path | None = None, input_size: int | None = None, mean=None, std=None) -> LoadedModel:
    """The model adapted to a dataset: `net` takes the data's images in [0, 1] and gives one logit per data
    class (and "no class" when some outputs map to none). Options override the model's preprocessing."""
    preprocess = loaded.preprocess
    changes = {k: v for k, v in (("input_size", input_size), ("mean", mean), ("std", std)) if v is not None}
    if changes:
        if loaded.format in ("bgrepro", "robustness") and ("mean" in changes or "std" in changes):
            raise ValueError(f"{loaded.source}: a bgrepro or official checkpoint normalises its input itself; "
                             "--mean and --std are for other formats")
        if ("mean" in changes) != ("std" in changes) and preprocess.mean is None:
            raise ValueError("pass --mean and --std together")
        said = ", ".join(f"--{k.replace('_', '-')}" for k in changes)
        preprocess = replace(preprocess, **{k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()},
                             source=f"{said} (else {preprocess.source})")
    n_outputs = _output_size(loaded.net, preprocess, image_size)
    groups, said = resolve_outputs(loaded.outputs, n_outputs, list(data_classes), classes_file, class_map,
                                   loaded.source)
    net = Prepared(loaded.net, preprocess) if (preprocess.input_size or preprocess.mean is not None) else loaded.net
    if groups is not None and groups != list(range(len(data_classes))):
        net = MappedOutputs(net, groups, len(data_classes))
    return replace(loaded, net=net.eval(), preprocess=preprocess, class_mapping=said)


def load_for_data(data: Path, spec: str | Path, arch: str | None = None, offline: bool = False,
                  classes_file: Path | None = None, class_map: Path | None = None, input_size: int | None = None,
                  mean=None, std=None) -> LoadedModel:
    """`load` then `for_data` on a dataset in the official layout (its classes and image size)."""
    from .datasets import list_variant
    from .io import read_image

    classes = list(layout.class_folders(data))
    first = next((p for p, _ in list_variant(data, "original", layout.TEST, classes)), None) if layout.split_dir(
        data, "original", layout.TEST).is_dir() else None
    side = read_image(first).shape[0] if first is not None else 224
    return for_data(load(spec, arch, offline), classes, side, classes_file, class_map, input_size, mean, std)


def model_for_data(data: Path, checkpoint: str | Path | None = None, arch: str | None = None,
                   pretrained: bool = False, weights: Path | None = None, weights_tag: str | None = None,
                   offline: bool = False, classes_file: Path | None = None, class_map: Path | None = None,
                   input_size: int | None = None, mean=None, std=None) -> LoadedModel:
    """The model a command scores on `data`: a model file in any format (`load_for_data`), or an
    ImageNet-pretrained `arch` (torchvision or timm; torchvision's weights `weights_tag`, the paper's
    IMAGENET1K_V1 by default, or a `weights` file) scored through the paper's 1000 -> 9 mapping on IN-9's
    classes, or through `class_map` on any others."""
    from .classes import CLASS_FOLDERS
    from .models import PAPER_WEIGHTS, imagenet_model

    if checkpoint:
        if pretrained:
            raise ValueError("--pretrained goes with --arch alone, not with --checkpoint")
        return load_for_data(data, checkpoint, arch, offline, classes_file, class_map, input_size, mean, std)
    if not (arch and pretrained):
        raise ValueError("pass --checkpoint FILE (any format) or --arch NAME --pretrained")
    data_classes = list(layout.class_folders(data))
    if tuple(data_classes) != CLASS_FOLDERS and class_map is None:
        raise ValueError(f"{data}: an ImageNet model is scored through the 1000 -> IN-9 class mapping, which needs "
                         f"IN-9's class folders, but it has {len(data_classes)} classes ({_few(data_classes)}); "
                         "pass --class-map FILE (JSON: ImageNet class index -> data class), or train a model")
    tag = weights_tag or PAPER_WEIGHTS
    mapped = imagenet_model(arch, weights, tag, offline)
    source = str(weights) if weights else tag if arch in TORCHVISION_ARCHS else "timm pretrained"
    plain = Preprocess(None, None, None, "bilinear", "the data's size; ImageNet normalisation inside")
    loaded = LoadedModel(mapped.model, arch, "imagenet", source, None, plain)
    if class_map is None and classes_file is None and input_size is None:
        return replace(loaded, net=mapped, class_mapping="IN-9's 1000 -> 9 mapping of ImageNet classes (the paper's)")
    side = input_size or 224
    return for_data(loaded, data_classes, side, classes_file, class_map, input_size)


# ---------------------------------------------------------------------------------------- Grad-CAM targets
def core_of(model: nn.Module) -> nn.Module:
    """The network inside bgrepro's adapters (what Grad-CAM looks into)."""
    from .models import IN9Mapped

    while isinstance(model, (MappedOutputs, Prepared, _Logits, IN9Mapped, _FixedBatch)):
        model = model.model if isinstance(model, (MappedOutputs, _Logits, IN9Mapped)) else model.net
    return model


def supports_gradients(model: nn.Module) -> bool:
    """Whether Grad-CAM can hook the model's layers (not ONNX, TorchScript, torch.export or a callable)."""
    core = core_of(model)
    return not isinstance(core, (_OnnxNet, _Callable, _Exported, torch.jit.ScriptModule, torch.fx.GraphModule))


__all__ = ["FORMATS", "SELF_SUPERVISED", "self_supervised_weights", "Preprocess", "LoadedModel", "Prepared",
           "MappedOutputs", "detect_format", "load", "from_module", "read_classes", "read_class_map",
           "resolve_outputs", "for_data", "load_for_data", "model_for_data", "core_of", "supports_gradients"]
