"""The table of model formats: one small class per format, each saying whether a spec is its kind (`detect`),
loading it (`load` -> `LoadedModel`), and giving its feature-map trunk for RPS (`trunk`).

A spec is a file or folder (its format read from what it holds, never from its name alone), a Hugging Face
hub id, a torchvision or timm architecture name (its ImageNet weights), an ImageNet classifier whose weights a
package ships (EfficientNet-Lite0/1/2), or the name of one of the RPS paper's
self-supervised backbones. `load(spec)` asks the formats in the table's order; `checkpoint:PATH` is a file.
"""

from __future__ import annotations

import io
import json
import re
import sys
import warnings
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import torch
from torch import nn

from ..in9 import CLASS_FOLDERS, NUM_CLASSES
from ..io import first_line
from .adapters import (
    CallableNet,
    Exported,
    FixedBatch,
    HFOutput,
    OnnxNet,
    TFLiteNet,
    TimmFeatures,
    Trunk,
    ViTTokens,
    core_of,
    static_shape,
)
from .architectures import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    TORCHVISION_ARCHS,
    Classifier,
    Normalize,
    create_model,
    feature_trunk,
    is_imagenet_architecture,
    network,
    output_count,
    set_resnet_stride,
)
from .export import load_export
from .model import ASSUMED, LoadedModel, Preprocess
from .weights import (
    PACKAGED,
    PAPER_WEIGHTS,
    PUBLISHED_FILES,
    SELF_SUPERVISED,
    first_mismatch,
    load_into,
    packaged_weights,
    read_torch,
    self_supervised_weights,
    state_dict_of,
    timm_pretrained,
    torchvision_state,
)

#: What a bgrepro checkpoint says it is (written by `training`, read here).
CHECKPOINT_FORMAT = "bgrepro-checkpoint-1"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class Options:
    """What a command says of a model beside its spec."""

    #: The architecture of a state dict or of an official checkpoint.
    arch: str | None = None
    #: Never download weights.
    offline: bool = False
    #: A weights file for a named architecture or backbone (instead of its library's cache).
    weights: Path | None = None
    #: torchvision's weights of a named architecture (IMAGENET1K_V1, the paper's, by default).
    tag: str = PAPER_WEIGHTS


class Probe:
    """What a spec is, read once and shared by every format's `detect` and `load`: the path, its first bytes,
    the members of a zip archive, and a torch file's payload (read as plain data)."""

    def __init__(self, spec: str | Path) -> None:
        self.spec = str(spec).removeprefix("checkpoint:")
        self.path = Path(self.spec)

    @cached_property
    def head(self) -> bytes:
        with open(self.path, "rb") as f:
            return f.read(8)

    @cached_property
    def zip_names(self) -> list[str]:
        if self.head[:2] != b"PK" or not zipfile.is_zipfile(self.path):
            return []
        with zipfile.ZipFile(self.path) as z:
            return z.namelist()

    @cached_property
    def payload(self):
        return read_torch(self.path, "model file")

    @property
    def is_file(self) -> bool:
        return self.path.is_file()


class Format:
    """One kind of model spec."""

    #: Its name (the eval JSON's and report.json's `format`).
    name = "format"
    #: Whether Grad-CAM and RPS can reach its network's layers.
    gradients = True

    def detect(self, probe: Probe) -> bool:
        raise NotImplementedError

    def load(self, probe: Probe, options: Options) -> LoadedModel:
        raise NotImplementedError

    def trunk(self, loaded: LoadedModel, stride: int) -> nn.Module:
        """The network's last feature map, with its normalisation, frozen (the same for every PyTorch network)."""
        if not loaded.gradients:
            raise ValueError(f"{loaded.source}: RPS needs the network's feature maps, which its format "
                             f"({loaded.format}) does not give; pass a state dict (`arch`) or a bgrepro checkpoint")
        net = core_of(loaded.net)
        if isinstance(net, Classifier):  # bgrepro's, the official and the named models normalise inside
            normalize, net = net.normalize, net.net
        else:
            normalize = Normalize(loaded.preprocess.mean or (0.0, 0.0, 0.0), loaded.preprocess.std or (1.0, 1.0, 1.0))
        return Trunk(_feature_map(net, stride, loaded.source), normalize).eval().requires_grad_(False)


def _feature_map(net: nn.Module, stride: int, source: str) -> nn.Module:
    """The module that gives a network's last feature map: a ViT's patch tokens on their grid, a known CNN's
    trunk (ResNets at `stride`), a timm network's `forward_features`, a Hugging Face model's backbone."""
    if hasattr(net, "patch_embed") and hasattr(net, "forward_features"):
        return ViTTokens(net)
    set_resnet_stride(net, stride)
    try:
        return feature_trunk(net)
    except ValueError:
        if hasattr(net, "forward_features"):
            return TimmFeatures(net)
        inner = getattr(net, "resnet", None) or getattr(net, "base_model", None)  # Hugging Face: its backbone
        if inner is not None:
            return HFOutput(inner, "last_hidden_state")
        raise ValueError(f"{source}: no feature trunk known for {type(net).__name__}") from None


# ------------------------------------------------------------------------------------------------- torch files
class BgreproCheckpoint(Format):
    """A checkpoint bgrepro's training wrote: the network, its class names and how it was trained."""

    name = "bgrepro"

    def detect(self, probe: Probe) -> bool:
        return _torch_file(probe) and isinstance(probe.payload, dict) and probe.payload.get(
            "format") == CHECKPOINT_FORMAT

    def load(self, probe: Probe, options: Options) -> LoadedModel:
        path, payload = probe.path, probe.payload
        meta, state = payload.get("meta"), payload.get("state_dict")
        if not isinstance(meta, dict) or not isinstance(meta.get("arch"), str):
            raise ValueError(f"{path}: checkpoint has no architecture name (meta.arch)")
        if not isinstance(state, dict):
            raise ValueError(f"{path}: checkpoint has no state_dict")
        classes = meta.get("classes")
        if classes is not None and (not isinstance(classes, list | tuple) or len(classes) < 2 or not all(
                isinstance(c, str) for c in classes) or len(set(classes)) != len(classes)):
            raise ValueError(f"{path}: checkpoint's class names must be a list of at least two distinct names")
        if classes is None and not isinstance(meta.get("num_classes", 9), int):
            raise ValueError(f"{path}: checkpoint's num_classes is not an integer")
        meta = dict(meta)
        meta["classes"] = list(_checkpoint_classes(meta))
        meta["num_classes"] = len(meta["classes"])
        try:
            model = create_model(meta["arch"], meta["num_classes"])
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as err:
            raise ValueError(f"{path}: weights do not fit architecture {meta['arch']!r} with {meta['num_classes']} "
                             f"classes ({first_mismatch(err)})") from None
        return LoadedModel(model.eval(), meta["arch"], self.name, str(path), tuple(meta["classes"]),
                           Preprocess(None, None, None, "bilinear", "the checkpoint (its own normalisation, the "
                                      "data's size)"), meta=meta)


def _checkpoint_classes(meta: dict) -> tuple[str, ...]:
    """The class names a checkpoint was trained on (checkpoints from before they were recorded: IN-9's)."""
    if meta.get("classes"):
        return tuple(meta["classes"])
    if meta.get("num_classes", NUM_CLASSES) == NUM_CLASSES:
        return CLASS_FOLDERS
    return tuple(str(c) for c in range(meta["num_classes"]))


def _torch_file(probe: Probe) -> bool:
    """Whether a spec is a file torch.save wrote (not an archive of another format, not ONNX, not safetensors)."""
    return probe.is_file and probe.path.suffix.lower() not in (".onnx", ".safetensors", ".pt2") and not any(
        n.endswith("/models/model.json") or "/code/" in n or "serialized_exported_program" in n
        for n in probe.zip_names) and probe.head[:1] != b"\x08"


def official_state(payload) -> tuple[dict, torch.Tensor | None, torch.Tensor | None] | None:
    """The network weights and normaliser of a checkpoint in the robustness library's layout (the
    paper's released IN-9 models: a dict with `model` or `state_dict` whose keys are
    `module.model.*`, `module.attacker.model.*` (a copy) and `module.normalizer.new_mean/new_std`),
    or None when the payload is not one. `module.` may be missing (saved without DataParallel)."""
    if not isinstance(payload, dict) or payload.get("format") == CHECKPOINT_FORMAT:
        return None
    state = payload.get("model", payload.get("state_dict"))
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        return None
    state = {k.removeprefix("module."): v for k, v in state.items()}
    net = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    if not net or not all(isinstance(v, torch.Tensor) for v in net.values()):
        return None
    return net, state.get("normalizer.new_mean"), state.get("normalizer.new_std")


class OfficialCheckpoint(Format):
    """A robustness-library checkpoint, as the paper's released IN-9 models are: a torchvision network (`arch`,
    resnet50 by default) with its own normaliser (IN-9's statistics); 9 outputs are IN-9's classes, 1000 an
    ImageNet model scored through the 1000 -> 9 mapping."""

    name = "robustness"

    def detect(self, probe: Probe) -> bool:
        if not _torch_file(probe):
            return False
        found = official_state(probe.payload)
        return found is not None and found[1] is not None

    def load(self, probe: Probe, options: Options) -> LoadedModel:
        path, payload = probe.path, probe.payload
        net_state, mean, std = official_state(payload)
        arch = options.arch or "resnet50"
        if arch not in TORCHVISION_ARCHS:
            raise ValueError(f"{path}: `arch` {arch!r} is not a torchvision architecture (the official checkpoints "
                             f"are torchvision networks; choose one of {', '.join(TORCHVISION_ARCHS)})")
        try:
            outputs = output_count(net_state)
            net = network(arch, outputs)
            net.load_state_dict(net_state)
        except (RuntimeError, ValueError, TypeError) as err:
            raise ValueError(f"{path}: the official checkpoint's weights do not fit {arch} ({first_mismatch(err)}); "
                             "name its architecture with `arch`") from None
        stats = []
        for name, value in (("new_mean", mean), ("new_std", std)):
            if not isinstance(value, torch.Tensor) or value.numel() != 3 or not torch.isfinite(value).all():
                raise ValueError(f"{path}: the official checkpoint has no usable normalizer.{name} (3 values)")
            stats.append(tuple(float(v) for v in value.flatten()))
        if min(stats[1]) <= 0:
            raise ValueError(f"{path}: the official checkpoint's normalizer.new_std must be positive")
        model = Classifier(net)
        model.normalize = Normalize(*stats)
        meta = {"arch": arch, "format": "robustness (official release)",
                "normalizer": {"mean": stats[0], "std": stats[1]},
                "epoch": payload.get("epoch") if isinstance(payload.get("epoch"), int) else None}
        if outputs == NUM_CLASSES:
            names = CLASS_FOLDERS
        elif outputs == 1000:
            names, meta["imagenet"] = None, True
        else:
            names = tuple(str(c) for c in range(outputs))
        return LoadedModel(model.eval(), arch, self.name, str(path), names,
                           Preprocess(None, None, None, "bilinear", "the checkpoint (its own normalisation, the "
                                      "data's size)"), meta=meta)


class StateDict(Format):
    """A plain state dict of any torchvision or timm architecture (`arch`; its class count read from the head), in
    a torch file (also inside the usual training wrappers) or a .safetensors file. It carries no preprocessing:
    assumed and said so, never taken from a pretrained configuration of the architecture."""

    name = "state_dict"

    def detect(self, probe: Probe) -> bool:
        return probe.is_file and (probe.path.suffix.lower() == ".safetensors" or _torch_file(probe))

    def load(self, probe: Probe, options: Options) -> LoadedModel:
        path = probe.path
        if path.suffix.lower() == ".safetensors":
            try:
                from safetensors.torch import load_file
            except ImportError:
                raise ValueError(f"{path}: a .safetensors file needs the safetensors package") from None
            try:
                state = state_dict_of(load_file(str(path)))
            except Exception as err:  # noqa: BLE001 - safetensors' own error types
                raise ValueError(f"{path}: unreadable safetensors file ({first_line(err)})") from None
        else:
            state = state_dict_of(probe.payload)
        if state is None:
            raise ValueError(f"{path}: not a model file bgrepro reads (a bgrepro or official checkpoint, a state dict, "
                             "TorchScript, torch.export, ONNX, TFLite or a Hugging Face folder)")
        if not options.arch:
            raise ValueError(f"{path}: a plain state dict; name its architecture with `arch` (a torchvision or timm "
                             "name, e.g. resnet50, mobilenetv3_small_050)")
        net = _fitted(path, options.arch, state)
        return LoadedModel(net.eval(), f"{path.name}: {options.arch}", self.name, str(path), None,
                           Preprocess(None, IMAGENET_MEAN, IMAGENET_STD, "bilinear", ASSUMED))


def _fitted(path: Path, arch: str, state: dict) -> nn.Module:
    """A network of `arch` with the state dict's class count and its weights: torchvision's of that name, else
    timm's (the same name can be both, with other parameter names)."""
    import torchvision

    outputs = output_count(state)
    tried = []
    name = TORCHVISION_ARCHS.get(arch, arch)
    if name in torchvision.models.list_models():
        net = torchvision.models.get_model(name, weights=None, num_classes=outputs)
        try:
            net.load_state_dict(state)
            return net
        except (RuntimeError, ValueError) as err:
            tried.append(err)  # perhaps timm's network of the same name
    import timm

    if not timm.is_model(arch):
        if tried:
            raise ValueError(f"{path}: the weights do not fit {arch} with {outputs} outputs "
                             f"({first_mismatch(tried[0])}); is `arch` right?") from None
        raise ValueError(f"{path}: unknown architecture {arch!r} (neither torchvision's nor timm's)")
    net = timm.create_model(arch, pretrained=False, num_classes=outputs)
    try:
        net.load_state_dict(state)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"{path}: the weights do not fit {arch} with {outputs} outputs "
                         f"({first_mismatch(tried[0] if tried else err)}); is `arch` right?") from None
    return net


# -------------------------------------------------------------------------------------------- compiled graphs
class _Graph(Format):
    """A compiled graph: no layers reachable (no Grad-CAM, no RPS); ImageNet statistics assumed, said so."""

    gradients = False

    def trunk(self, loaded: LoadedModel, stride: int) -> nn.Module:
        raise ValueError(f"{loaded.source}: RPS needs the network's feature maps, which its format ({loaded.format}) "
                         "does not give; pass a state dict (`arch`) or a bgrepro checkpoint")

    def model(self, net: nn.Module, path: Path, batch: int | None, side: int | None) -> LoadedModel:
        """The graph as a model: run `batch` images at a time when its input has a fixed batch size, at its fixed
        side when it has one, else at the data's."""
        if batch:
            net = FixedBatch(net, batch)
        said = ASSUMED if side is None else ASSUMED.replace("the data's size", f"{side} px from the graph's input")
        return LoadedModel(net, path.name, self.name, str(path), None,
                           Preprocess(side, IMAGENET_MEAN, IMAGENET_STD, "bilinear", said), gradients=False)


class TorchScript(_Graph):
    """A TorchScript archive (`torch.jit.save`)."""

    name = "torchscript"

    def detect(self, probe: Probe) -> bool:
        return probe.is_file and any("/code/" in n for n in probe.zip_names)

    def load(self, probe: Probe, options: Options) -> LoadedModel:
        try:
            with warnings.catch_warnings():  # torch's deprecation notice of TorchScript: the user's file is as it is
                warnings.simplefilter("ignore", FutureWarning)
                net = torch.jit.load(str(probe.path), map_location="cpu")
        except Exception as err:  # noqa: BLE001 - TorchScript's own error types
            raise ValueError(f"{probe.path}: unreadable TorchScript archive ({first_line(err)})") from None
        return self.model(net.eval(), probe.path, None, None)


class Export(_Graph):
    """A `torch.export` archive (`.pt2`), read without running anything it holds (`registry.export`)."""

    name = "export"

    def detect(self, probe: Probe) -> bool:
        return probe.is_file and (probe.path.suffix.lower() == ".pt2" or any(
            "serialized_exported_program" in n or n.endswith("/models/model.json") for n in probe.zip_names))

    def load(self, probe: Probe, options: Options) -> LoadedModel:
        program = load_export(probe.path)
        names = set(program.graph_signature.user_inputs)
        images = [n for n in program.graph.nodes if n.op == "placeholder" and n.name in names]
        value = images[0].meta.get("val") if len(images) == 1 else None
        if value is None or value.dim() != 4:
            raise ValueError(f"{probe.path}: an exported image classifier has one 4-D input (N, 3, H, W)")
        try:
            net = program.module()
        except Exception as err:  # noqa: BLE001 - torch.export's own error types
            raise ValueError(f"{probe.path}: unreadable torch.export archive ({first_line(err)})") from None
        return self.model(Exported(net), probe.path, *static_shape(tuple(value.shape)))


class Onnx(_Graph):
    """An ONNX file, run by onnxruntime (its CUDA provider when there is a GPU)."""

    name = "onnx"

    def detect(self, probe: Probe) -> bool:
        # a protobuf's first field: an ONNX ModelProto without the suffix
        return probe.is_file and (probe.path.suffix.lower() == ".onnx" or probe.head[:1] == b"\x08")

    def load(self, probe: Probe, options: Options) -> LoadedModel:
        try:
            net = OnnxNet(probe.path)
        except ImportError:
            raise ValueError(f"{probe.path}: an ONNX model needs onnxruntime (pip install onnxruntime)") from None
        return self.model(net, probe.path, net.fixed_batch, net.input_size)


class TFLite(_Graph):
    """A TFLite file (a FlatBuffer whose identifier is `TFL3`), run by LiteRT's interpreter: its input side, its
    quantisation and its output count are read from the file (`adapters.TFLiteNet`)."""

    name = "tflite"

    def detect(self, probe: Probe) -> bool:
        return probe.is_file and probe.head[4:8] == b"TFL3"

    def load(self, probe: Probe, options: Options) -> LoadedModel:
        net = TFLiteNet(probe.path)
        side = net.input_size
        if net.quantized:
            preprocess = Preprocess(side, None, None, "bilinear", f"the file's: {side} px, pixels 0-255 in, its own "
                                    "input quantisation inside")
        else:
            preprocess = Preprocess(side, IMAGENET_MEAN, IMAGENET_STD, "bilinear",
                                    f"{side} px from the file; ImageNet statistics assumed (a float input)")
        said = "; the first of its 1001 outputs, background, dropped" if net.offset else ""
        published = PUBLISHED_FILES.get(probe.path.name)
        meta = {"imagenet_top1": published.top1, "published": published.source} if published else {}
        return LoadedModel(net, probe.path.name, self.name, str(probe.path), None,
                           replace(preprocess, source=preprocess.source + said), gradients=False, meta=meta)


# --------------------------------------------------------------------------------------------- Hugging Face
#: The files of a Hugging Face folder that may ask for the folder's own Python code (`auto_map`).
HF_CONFIGS = ("config.json", "preprocessor_config.json", "processor_config.json")


class HuggingFace(Format):
    """A Hugging Face image classifier: a folder saved by `save_pretrained`, or a hub id fetched through the
    library's own cache unless offline. Its configuration files are read first: a model or image processor that
    is the folder's own code (`auto_map`) is refused before any weights load; `trust_remote_code` is never set,
    and no question is ever asked on standard input."""

    name = "huggingface"

    def detect(self, probe: Probe) -> bool:
        if probe.path.is_dir():
            if (probe.path / "config.json").is_file():
                return True
            raise ValueError(f"{probe.path}: a folder, but not a Hugging Face model (no config.json); give a model "
                             "file")
        return not probe.path.exists() and bool(_HUB_ID.match(probe.spec)) and not probe.spec.startswith(
            (".", "/")) and probe.path.suffix == ""

    def load(self, probe: Probe, options: Options) -> LoadedModel:
        try:
            from transformers import AutoImageProcessor, AutoModelForImageClassification
        except ImportError:
            raise ValueError(f"{probe.spec}: a Hugging Face model needs the transformers package (pip install "
                             "transformers)") from None
        spec, local, offline = probe.spec, probe.path.is_dir(), options.offline
        settings = {"trust_remote_code": False, "local_files_only": offline or local}
        _refuse_remote_code(probe.path if local else _hub_configs(spec, offline))
        try:
            with _no_questions():
                model = AutoModelForImageClassification.from_pretrained(spec, weights_only=True, **settings)
        except OSError as err:
            how = "" if local else (" (not in the Hugging Face cache and `offline` forbids the download)" if offline
                                    else " (downloaded through the Hugging Face cache)")
            raise OSError(f"{spec}: could not load the Hugging Face classifier{how}: {first_line(err)}") from None
        except Exception as err:  # noqa: BLE001 - transformers, safetensors and torch errors of a bad folder
            where = _hf_weights(probe.path) if local else None
            raise ValueError(f"{where or spec}: not a readable Hugging Face image classifier "
                             f"({first_line(err)})") from None
        config = model.config
        labels = [config.id2label[k] for k in sorted(config.id2label)] if getattr(config, "id2label", None) else None
        if labels and all(re.fullmatch(r"LABEL_\d+", str(v)) for v in labels):
            labels = None  # the library's placeholders: the model does not know its classes
        preprocess = Preprocess(None, IMAGENET_MEAN, IMAGENET_STD, "bilinear", ASSUMED + " (the model has no image "
                                "processor)")
        try:
            with _no_questions():
                processor = AutoImageProcessor.from_pretrained(spec, **settings)
        except (OSError, ValueError, KeyError):
            processor = None
        if processor is not None:
            preprocess = _processor_preprocess(processor)
        return LoadedModel(HFOutput(model.eval(), "logits"), spec, self.name, spec,
                           tuple(map(str, labels)) if labels else None, preprocess, gradients=True)


def _processor_preprocess(processor) -> Preprocess:
    """What a Hugging Face image processor applies: its side, mean, std and resampling."""
    size = getattr(processor, "crop_size", None) if getattr(processor, "do_center_crop", False) else None
    side = _side_of(size) or _side_of(getattr(processor, "size", None))
    normalize = getattr(processor, "do_normalize", True)
    mean = tuple(float(v) for v in processor.image_mean) if normalize and processor.image_mean else None
    std = tuple(float(v) for v in processor.image_std) if normalize and processor.image_std else None
    resample = getattr(processor, "resample", 2)
    return Preprocess(int(side) if side else None, mean, std, "bicubic" if int(resample or 2) == 3 else "bilinear",
                      "the model's image processor")


def _side_of(size) -> int | None:
    """The side of an image processor's `size` (an int, or a mapping with height or shortest_edge)."""
    if size is None or isinstance(size, int):
        return size
    get = size.get if hasattr(size, "get") else (lambda key: getattr(size, key, None))
    value = get("height") or get("shortest_edge")
    return int(value) if value else None


def _refuse_remote_code(folder: Path) -> None:
    """A Hugging Face folder whose model or image processor is its own Python code (`auto_map`) is refused:
    bgrepro never runs a model file's code."""
    for name in HF_CONFIGS:
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


def _hub_configs(hub_id: str, offline: bool) -> Path:
    """The local folder of a hub model's configuration files (fetched into the Hugging Face cache unless
    `offline`), read before any of its weights or code."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(hub_id, allow_patterns=list(HF_CONFIGS), local_files_only=offline))
    except Exception as err:  # noqa: BLE001 - hub, network and cache errors all end the same way
        how = "not in the Hugging Face cache and `offline` forbids the download" if offline else "could not fetch it"
        raise OSError(f"{hub_id}: {how} ({first_line(err)})") from None


def _hf_weights(folder: Path) -> Path | None:
    """The weights file of a Hugging Face folder (what a failed load most likely failed on)."""
    for name in ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                 "pytorch_model.bin.index.json"):
        if (folder / name).is_file():
            return folder / name
    return None


# ------------------------------------------------------------------------------------------------ by name
class SelfSupervised(Format):
    """One of the RPS paper's self-supervised backbones by name (DINO, MoCo v2 and v3; `SELF_SUPERVISED`): its
    architecture with the authors' weights, fetched through torch.hub's cache unless offline (or `weights`). A
    backbone without a classifier head: it localizes, it does not classify."""

    name = "self_supervised"

    def detect(self, probe: Probe) -> bool:
        return probe.spec in SELF_SUPERVISED and not probe.path.exists()

    def load(self, probe: Probe, options: Options) -> LoadedModel:
        arch = SELF_SUPERVISED[probe.spec][0]
        weights = Path(options.weights) if options.weights else self_supervised_weights(probe.spec, options.offline)
        return _named(arch, weights, options, self.name, probe.spec, backbone=True)


class PackagedImageNet(Format):
    """An ImageNet classifier whose weights a Python package ships (`weights.PACKAGED`: EfficientNet-Lite0/1/2), by
    name: the package's state dict paired in order with the tensors of timm's architecture of the same layout
    (every shape checked), its own input scaling inside, its side as the model's input size."""

    name = "packaged"

    def detect(self, probe: Probe) -> bool:
        return probe.spec in PACKAGED and not probe.path.exists()

    def load(self, probe: Probe, options: Options) -> LoadedModel:
        import timm

        entry = PACKAGED[probe.spec]
        path = Path(options.weights) if options.weights else packaged_weights(probe.spec)
        state = state_dict_of(read_torch(path, f"{probe.spec} weights"))
        net = timm.create_model(entry.arch, pretrained=False)
        own = net.state_dict()
        if state is None or len(state) != len(own):
            raise ValueError(f"{path}: not {probe.spec} weights ({len(state or {})} tensors; {entry.arch} has "
                             f"{len(own)})")
        for (key, mine), (theirs, value) in zip(own.items(), state.items()):
            if tuple(mine.shape) != tuple(value.shape):
                raise ValueError(f"{path}: not {probe.spec} weights ({theirs!r} {tuple(value.shape)} against "
                                 f"{entry.arch}'s {key!r} {tuple(mine.shape)})")
        net.load_state_dict(dict(zip(own, state.values())))
        model = Classifier(net)
        model.normalize = Normalize(entry.mean, entry.std)  # the weights' own scaling, from their table entry
        return LoadedModel(model.eval(), probe.spec, self.name, str(path), None,
                           Preprocess(entry.input_size, None, None, entry.interpolation,
                                      f"the model's: {entry.input_size} px, its own scaling inside"),
                           meta={"arch": entry.arch, "classifier": True, "package": entry.package,
                                 "licence": entry.licence, "imagenet_top1": entry.top1})


class ImageNet(Format):
    """A torchvision or timm architecture by name with its ImageNet weights: torchvision's `tag` (the paper's
    IMAGENET1K_V1 by default) from its cache, timm's pretrained weights from theirs (downloaded unless
    offline), or a weights file (a backbone's may lack the classifier head, as self-supervised ones do)."""

    name = "imagenet"

    def detect(self, probe: Probe) -> bool:
        return not probe.path.exists() and is_imagenet_architecture(probe.spec)

    def load(self, probe: Probe, options: Options) -> LoadedModel:
        return _named(probe.spec, options.weights, options, self.name, probe.spec, backbone=options.weights is not None)


def _named(arch: str, weights: Path | None, options: Options, fmt: str, name: str, backbone: bool) -> LoadedModel:
    """A named architecture with weights from a file, torchvision's cache, or timm's: a classifier of ImageNet's
    1000 classes that normalises its own input (timm's pretrained statistics for timm's weights, which they
    describe), or a backbone whose file has no classifier head."""
    import timm

    mean, std, classifier = IMAGENET_MEAN, IMAGENET_STD, True
    if weights is not None:
        net = network(arch, 1000)
        if not Path(weights).exists():
            raise FileNotFoundError(f"{weights}: weights file not found")
        classifier = load_into(net, Path(weights), f"{arch} weights", backbone=backbone)
        if hasattr(net, "pretrained_cfg"):  # a timm network: the statistics its weights were trained with
            mean, std = net.pretrained_cfg.get("mean", mean), net.pretrained_cfg.get("std", std)
    elif arch in TORCHVISION_ARCHS:
        net = network(arch, 1000)
        try:
            net.load_state_dict(torchvision_state(arch, options.tag, options.offline))
        except RuntimeError as err:
            raise ValueError(f"{arch}: its cached ImageNet weights ({options.tag}) do not fit "
                             f"({first_mismatch(err)})") from None
    elif timm.is_model(arch):
        net = timm_pretrained(arch, options.offline)
        cfg = getattr(net, "pretrained_cfg", {}) or {}
        mean, std = cfg.get("mean", mean), cfg.get("std", std)
    else:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(TORCHVISION_ARCHS)} or a timm "
                         "model name")
    model = Classifier(net)
    model.normalize = Normalize(mean, std)
    source = str(weights) if weights else options.tag if arch in TORCHVISION_ARCHS else "timm pretrained"
    return LoadedModel(model.eval(), name, fmt, source, None,
                       Preprocess(None, None, None, "bilinear", "the data's size; ImageNet normalisation inside"),
                       meta={"arch": arch, "classifier": classifier})


class Module(Format):
    """In Python: any `torch.nn.Module` (gradients reach its layers) or callable from images to logits."""

    name = "module"

    def detect(self, probe: Probe) -> bool:
        return False  # given as an object (`from_module`), never as a spec


#: Every format, in the order `load` asks them (a file's own bytes first; names last).
FORMATS: dict[str, Format] = {f.name: f for f in (
    TFLite(), BgreproCheckpoint(), OfficialCheckpoint(), Export(), TorchScript(), Onnx(), StateDict(), HuggingFace(),
    SelfSupervised(), PackagedImageNet(), ImageNet(), Module())}


def detect_format(spec: str | Path) -> str:
    """The format of a model spec (see the module docstring), read from what a file holds; one error naming a
    missing file."""
    probe = Probe(spec)
    return _detect(probe).name


def _detect(probe: Probe) -> Format:
    for fmt in FORMATS.values():
        if fmt.detect(probe):
            return fmt
    if not probe.path.exists():
        if "/" not in probe.spec and not probe.path.suffix:
            raise ValueError(f"unknown architecture {probe.spec!r}: neither a model file nor a torchvision or timm "
                             f"architecture (e.g. {', '.join(list(TORCHVISION_ARCHS)[:4])}) nor a packaged ImageNet "
                             f"model ({', '.join(PACKAGED)}) nor a self-supervised backbone "
                             f"({', '.join(SELF_SUPERVISED)})")
        raise FileNotFoundError(f"{probe.path}: model file not found")
    raise ValueError(f"{probe.path}: not a model file bgrepro reads (a bgrepro or official checkpoint, a state dict, "
                     "TorchScript, torch.export, ONNX, TFLite or a Hugging Face folder)")


def load(spec: str | Path, arch: str | None = None, offline: bool = False, weights: Path | None = None,
         tag: str = PAPER_WEIGHTS) -> LoadedModel:
    """A model from a file, folder, hub id or name, in whichever format it is (see the module docstring)."""
    probe = Probe(spec)
    fmt = _detect(probe)
    return replace(fmt.load(probe, Options(arch, offline, Path(weights) if weights else None, tag)), handler=fmt)


def from_module(model, name: str = "model", classes: tuple[str, ...] | None = None,
                preprocess: Preprocess | None = None) -> LoadedModel:
    """Any `torch.nn.Module` (gradients reach its layers) or callable from images to logits, as a model."""
    if isinstance(model, nn.Module):
        return LoadedModel(model.eval(), name, "module", "python", classes, preprocess or Preprocess(
            None, None, None, "bilinear", "the module (it normalises its own input)"), gradients=True,
            handler=FORMATS["module"])
    if not callable(model):
        raise TypeError(f"{name}: neither a torch.nn.Module nor a callable")
    return LoadedModel(CallableNet(model), name, "module", "python", classes, preprocess or Preprocess(
        None, None, None, "bilinear", "the callable (it normalises its own input)"), gradients=False,
        handler=FORMATS["module"])


__all__ = ["CHECKPOINT_FORMAT", "Options", "Format", "FORMATS", "official_state", "detect_format", "load",
           "from_module"]
