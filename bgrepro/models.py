"""Models: architectures by name, checkpoints, ImageNet-pretrained weights and the 1000 -> IN-9 mapping.

Every model takes float images in [0, 1] of shape (N, 3, H, W) (ImageNet normalisation happens
inside, as in the official code) and returns class logits, one per class of the data it was trained
on (a checkpoint records their names); ImageNet models mapped to IN-9 have one more, "no IN-9
class", which always counts as wrong.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from . import classes as in9

#: ImageNet channel statistics.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: torchvision architectures by the names this project uses.
TORCHVISION_ARCHS = {
    "resnet18": "resnet18",
    "resnet50": "resnet50",
    "resnet152": "resnet152",
    "wide_resnet50_2": "wide_resnet50_2",
    "vgg16_bn": "vgg16_bn",
    "alexnet": "alexnet",
    "shufflenet_v2": "shufflenet_v2_x1_0",
    "mobilenet_v3_large": "mobilenet_v3_large",
    "efficientnet_b0": "efficientnet_b0",
}


class Normalize(nn.Module):
    """Maps images in [0, 1] to ImageNet-normalised inputs."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Classifier(nn.Module):
    """Normalisation followed by a network."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.normalize = Normalize()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """Three VGG-style stages and global average pooling: a CPU-sized classifier."""

    def __init__(self, widths: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        stages, cin = [], 3
        for i, w in enumerate(widths):
            stages.append(_block(cin, w))
            if i < len(widths) - 1:
                stages.append(nn.MaxPool2d(2))
            cin = w
        self.features = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


SMALL_ARCHS = {  # stage widths: the zoo of the smoke scale varies width (narrow, wide) and depth (shallow, deep)
    "smallcnn": (16, 32, 64),
    "smallcnn_narrow": (8, 16, 32),
    "smallcnn_wide": (24, 48, 96),
    "smallcnn_shallow": (16, 32),
    "smallcnn_deep": (16, 32, 64, 128),
}

ARCHS = tuple(SMALL_ARCHS) + tuple(TORCHVISION_ARCHS)


def create_model(arch: str, num_classes: int) -> Classifier:
    """A fresh, randomly initialised classifier by name (small nets, torchvision, or timm's names)."""
    if arch in SMALL_ARCHS:
        return Classifier(SmallCNN(SMALL_ARCHS[arch], num_classes))
    if arch in TORCHVISION_ARCHS:
        import torchvision

        return Classifier(torchvision.models.get_model(TORCHVISION_ARCHS[arch], weights=None,
                                                       num_classes=num_classes))
    try:
        import timm
    except ImportError:
        timm = None
    if timm is not None and arch in timm.list_models():
        return Classifier(timm.create_model(arch, pretrained=False, num_classes=num_classes))
    raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)} (or a timm model name)")


def feature_trunk(net: nn.Module) -> nn.Module:
    """The convolutional trunk of a network: its input -> its last spatial feature map (N, C, h, w).

    SmallCNN, VGG, AlexNet, EfficientNet and MobileNet keep it as `.features`; ResNets, Wide ResNets
    and ShuffleNet are rebuilt up to their last stage. The trunk's last module is where Grad-CAM looks.
    """
    if isinstance(net, IN9Mapped):
        net = net.model  # an ImageNet model scored on IN-9: its own trunk
    net = getattr(net, "net", net)  # a Classifier's network
    if isinstance(getattr(net, "features", None), nn.Module):
        return net.features
    if hasattr(net, "layer4"):
        return nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3,
                             net.layer4)
    if hasattr(net, "conv5") and hasattr(net, "stage4"):
        return nn.Sequential(net.conv1, net.maxpool, net.stage2, net.stage3, net.stage4, net.conv5)
    raise ValueError(f"{type(net).__name__}: no convolutional trunk known; pass the layer explicitly")


class IN9Mapped(nn.Module):
    """A 1000-class ImageNet model scored on IN-9: logit of an IN-9 class = max over its ImageNet classes.

    The argmax of these 10 logits is the IN-9 class of the model's top-1 ImageNet class, or 9
    ("no class", always wrong) when the top-1 class is under no IN-9 synset, as in the paper.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        groups = torch.full((1000,), in9.NUM_CLASSES, dtype=torch.long)
        for c, indices in enumerate(in9.IMAGENET_INDICES):
            groups[list(indices)] = c
        self.register_buffer("groups", groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        if logits.shape[1] != 1000:
            raise ValueError(f"IN9Mapped needs a 1000-class ImageNet model, got {logits.shape[1]} outputs")
        out = logits.new_full((logits.shape[0], in9.NUM_CLASSES + 1), float("-inf"))
        return out.scatter_reduce(1, self.groups.expand_as(logits), logits, reduce="amax")


#: The ImageNet weights the paper's pretrained numbers were measured with: torchvision's original ones
#: (IMAGENET1K_V1, `resnet50-0676ba61.pth`, once published as `resnet50-19c8e357.pth`), not today's
#: DEFAULT (IMAGENET1K_V2 for ResNet-50, 80.9% top-1), which moves Mixed-Rand by points.
PAPER_WEIGHTS = "IMAGENET1K_V1"


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
        raise ValueError(f"--weights-tag {tag}: {arch} has {', '.join(m for m in enum.__members__ if m != 'DEFAULT')} "
                         "(or DEFAULT)")
    return enum[tag]


def pretrained_weights_path(arch: str, tag: str = PAPER_WEIGHTS) -> Path:
    """Where torchvision keeps the ImageNet weights `tag` of `arch` (its torch hub cache)."""
    url = torchvision_weights(arch, tag).url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def available_pretrained(tag: str = PAPER_WEIGHTS) -> tuple[str, ...]:
    """The architectures whose ImageNet weights `tag` are already in the local torch hub cache."""
    return tuple(a for a in TORCHVISION_ARCHS
                 if tag in _weight_tags(a) and pretrained_weights_path(a, tag).exists())


def _weight_tags(arch: str) -> tuple[str, ...]:
    import torchvision

    return ("DEFAULT", *torchvision.models.get_model_weights(TORCHVISION_ARCHS[arch]).__members__)


def first_line(err: BaseException) -> str:
    """The first line of an error message (its type when empty), for one-line errors."""
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:160]


def torchvision_state(arch: str, tag: str = PAPER_WEIGHTS, offline: bool = False, progress: bool = True,
                      local_option: str = "--weights FILE") -> dict:
    """The state dict of torchvision's `arch` weights `tag`: from its torch hub cache, else downloaded into
    it by torchvision (hash-checked) unless `offline`; one clear error naming the file otherwise."""
    weights = torchvision_weights(arch, tag)
    path = pretrained_weights_path(arch, tag)
    if path.exists():
        return safe_load(path, f"{arch} ImageNet weights ({tag})")
    if offline:
        raise FileNotFoundError(f"{path.name}: {arch} {tag} ImageNet weights are not in {path.parent} and --offline "
                                f"forbids the download ({weights.url}); put the file there or pass {local_option}")
    try:
        return weights.get_state_dict(progress=progress, check_hash=True, weights_only=True)
    except Exception as err:  # noqa: BLE001 - network, hash and disk errors all end the same way
        raise OSError(f"{path.name}: could not download {arch} {tag} ImageNet weights from {weights.url} into "
                      f"{path.parent} ({first_line(err)}); put the file there or pass {local_option}") from None


def _timm_model(arch: str, weights: Path | None, offline: bool) -> nn.Module:
    """A timm ImageNet model: pretrained through timm's own cache (Hugging Face hub), or from a local file."""
    try:
        import timm
    except ImportError:
        raise ValueError(f"unknown architecture {arch!r} (and timm is not installed for its names)") from None
    if not timm.is_model(arch):
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(TORCHVISION_ARCHS)} or a timm "
                         "model name")
    if weights:
        net = timm.create_model(arch, pretrained=False)
        _load_weights(net, Path(weights), arch)
        return net
    if offline:  # only what is already in the Hugging Face cache that timm reads
        from huggingface_hub import try_to_load_from_cache

        hub_id = getattr(timm.models.get_pretrained_cfg(arch), "hf_hub_id", None)
        for name in ("model.safetensors", "pytorch_model.bin"):
            found = try_to_load_from_cache(hub_id, name) if hub_id else None
            if isinstance(found, str):
                try:
                    return timm.create_model(arch, pretrained=True, pretrained_cfg_overlay={"file": found})
                except Exception as err:  # noqa: BLE001 - safetensors, pickle and shape errors alike
                    raise ValueError(f"{found}: unreadable or not {arch} weights ({first_line(err)}); delete it "
                                     "from the cache (it is fetched again) or pass --weights FILE") from None
        raise FileNotFoundError(f"{arch}: timm's pretrained weights ({hub_id or 'no hub id'}) are not in the Hugging "
                                "Face cache and --offline forbids the download; pass --weights FILE")
    try:
        return timm.create_model(arch, pretrained=True)
    except Exception as err:  # noqa: BLE001 - hub, network and cache errors all end the same way
        raise OSError(f"{arch}: timm's pretrained weights could not be fetched ({first_line(err)}); pass "
                      "--weights FILE") from None


def _load_weights(net: nn.Module, path: Path, arch: str) -> None:
    try:
        net.load_state_dict(safe_load(path, f"{arch} ImageNet weights"))
    except (RuntimeError, ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"{path}: not {arch} ImageNet weights ({str(err).splitlines()[0]})") from None


def imagenet_model(arch: str, weights: Path | None = None, tag: str = PAPER_WEIGHTS, offline: bool = False,
                   progress: bool = True) -> IN9Mapped:
    """An ImageNet-pretrained model mapped to IN-9: torchvision's `arch` with weights `tag` (the paper's
    IMAGENET1K_V1 by default) or a timm model name; from a local file (`weights`), the library's cache,
    or downloaded into that cache unless `offline`."""
    import torchvision

    if arch in TORCHVISION_ARCHS:
        net = torchvision.models.get_model(TORCHVISION_ARCHS[arch], weights=None)
        if weights:
            _load_weights(net, Path(weights), arch)
        else:
            try:
                net.load_state_dict(torchvision_state(arch, tag, offline, progress))
            except RuntimeError as err:
                raise ValueError(f"{pretrained_weights_path(arch, tag)}: not {arch} weights "
                                 f"({str(err).splitlines()[0]})") from None
        return IN9Mapped(Classifier(net)).eval()
    net = _timm_model(arch, weights, offline)
    cfg = getattr(net, "pretrained_cfg", {}) or {}
    classifier = Classifier(net)
    classifier.normalize = Normalize(cfg.get("mean", IMAGENET_MEAN), cfg.get("std", IMAGENET_STD))
    return IN9Mapped(classifier).eval()


def weights_file(pretrained: str) -> Path | None:
    """`pretrained` as a weights file (a path that exists or ends in .pth/.pt/.bin), or None for a weights tag."""
    path = Path(pretrained)
    return path if path.suffix in (".pth", ".pt", ".bin") or path.exists() else None


def start_from_imagenet(model: Classifier, arch: str, pretrained: str, offline: bool = False) -> Classifier:
    """Fine-tuning's starting point: a fresh classifier of `arch` with ImageNet weights in every layer but the
    last (whose outputs are the data's classes). `pretrained` is a torchvision weights tag (IMAGENET1K_V1,
    DEFAULT, ...; from torchvision's cache, downloaded unless `offline`) or a weights file."""
    if arch not in TORCHVISION_ARCHS:
        raise ValueError(f"--pretrained: no ImageNet weights are known for {arch!r}; fine-tuning takes one of "
                         f"{', '.join(TORCHVISION_ARCHS)}")
    path = weights_file(pretrained)
    if path is not None:
        state, origin = safe_load(path, f"{arch} ImageNet weights"), str(path)
    else:
        state = torchvision_state(arch, pretrained, offline, local_option="--pretrained FILE")
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


def safe_load(path: Path, what: str = "checkpoint", map_location="cpu"):
    """A torch file read as plain data only (`weights_only=True`): no file the tool reads can run code."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {what} not found") from None
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for a bad or hostile file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: unreadable {what}, or it holds more than tensors and plain data "
                         f"(bgrepro loads only those; re-save its state_dict) ({first[:160]})") from None


def save_checkpoint(path: Path, model: nn.Module, meta: dict, **extra) -> None:
    """Write a checkpoint atomically: the model's weights, its metadata and any training state."""
    from .io import atomic_write

    model = getattr(model, "module", model)  # unwrap DDP
    payload = {"format": "bgrepro-checkpoint-1", "meta": meta, "state_dict": model.state_dict(), **extra}
    atomic_write(Path(path), lambda tmp: torch.save(payload, tmp))


def checkpoint_classes(meta: dict) -> tuple[str, ...]:
    """The class names a checkpoint was trained on (checkpoints from before they were recorded: IN-9's)."""
    if meta.get("classes"):
        return tuple(meta["classes"])
    if meta.get("num_classes", in9.NUM_CLASSES) == in9.NUM_CLASSES:
        return in9.CLASS_FOLDERS
    return tuple(str(c) for c in range(meta["num_classes"]))


def official_state(payload) -> tuple[dict, torch.Tensor | None, torch.Tensor | None] | None:
    """The network weights and normaliser of a checkpoint in the robustness library's layout (the
    paper's released IN-9 models: a dict with `model` or `state_dict` whose keys are
    `module.model.*`, `module.attacker.model.*` (a copy) and `module.normalizer.new_mean/new_std`),
    or None when the payload is not one. `module.` may be missing (saved without DataParallel)."""
    if not isinstance(payload, dict):
        return None
    state = payload.get("model", payload.get("state_dict"))
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        return None
    state = {k.removeprefix("module."): v for k, v in state.items()}
    net = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    if not net or not all(isinstance(v, torch.Tensor) for v in net.values()):
        return None
    return net, state.get("normalizer.new_mean"), state.get("normalizer.new_std")


def _output_count(state: dict) -> int:
    """The number of outputs of a classifier's state dict: rows of its last 2-D weight."""
    last = [v for k, v in state.items() if k.endswith("weight") and v.ndim == 2]
    if not last:
        raise ValueError("no linear classifier weight")
    return int(last[-1].shape[0])


def _load_official(path: Path, payload, arch: str | None) -> tuple[nn.Module, dict]:
    """A robustness-library checkpoint as a model with its own normaliser (IN-9's statistics for the
    paper's models): 9 outputs are IN-9's classes, 1000 an ImageNet model mapped to IN-9."""
    import torchvision

    net_state, mean, std = official_state(payload)
    arch = arch or "resnet50"
    if arch not in TORCHVISION_ARCHS:
        raise ValueError(f"{path}: --arch {arch!r} is not a torchvision architecture (the official checkpoints "
                         f"are torchvision networks; choose one of {', '.join(TORCHVISION_ARCHS)})")
    try:
        outputs = _output_count(net_state)
        net = torchvision.models.get_model(TORCHVISION_ARCHS[arch], weights=None, num_classes=outputs)
        net.load_state_dict(net_state)
    except (RuntimeError, ValueError, TypeError) as err:
        first = next((ln.strip() for ln in str(err).splitlines()[1:] if ln.strip()), first_line(err))
        raise ValueError(f"{path}: the official checkpoint's weights do not fit {arch} ({first[:160]}); "
                         "name its architecture with --arch") from None
    stats = []
    for name, value in (("new_mean", mean), ("new_std", std)):
        if not isinstance(value, torch.Tensor) or value.numel() != 3 or not torch.isfinite(value).all():
            raise ValueError(f"{path}: the official checkpoint has no usable normalizer.{name} (3 values)")
        stats.append(tuple(float(v) for v in value.flatten()))
    if min(stats[1]) <= 0:
        raise ValueError(f"{path}: the official checkpoint's normalizer.new_std must be positive")
    model = Classifier(net)
    model.normalize = Normalize(*stats)
    meta = {"arch": arch, "format": "robustness (official release)", "normalizer": {"mean": stats[0], "std": stats[1]},
            "epoch": payload.get("epoch") if isinstance(payload.get("epoch"), int) else None}
    if outputs == 1000:
        return IN9Mapped(model).eval(), {**meta, "classes": list(in9.CLASS_FOLDERS), "imagenet": True,
                                         "num_classes": in9.NUM_CLASSES}
    classes = list(in9.CLASS_FOLDERS) if outputs == in9.NUM_CLASSES else [str(c) for c in range(outputs)]
    return model.eval(), {**meta, "classes": classes, "num_classes": outputs}


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu",
                    arch: str | None = None) -> tuple[nn.Module, dict]:
    """A trained model (eval mode, images in [0, 1] -> one logit per class) and its metadata (arch,
    classes, variant, image size). Reads bgrepro checkpoints and the official release's
    robustness-library files (their architecture is `arch`, resnet50 by default)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    payload = safe_load(path, "checkpoint", map_location)
    if official_state(payload) is not None and payload.get("format") != "bgrepro-checkpoint-1":
        model, meta = _load_official(path, payload, arch)
        return model.to(map_location).eval(), meta
    if not isinstance(payload, dict) or payload.get("format") != "bgrepro-checkpoint-1":
        raise ValueError(f"{path}: not a bgrepro checkpoint nor an official (robustness-library) one")
    meta, state = payload.get("meta"), payload.get("state_dict")
    if not isinstance(meta, dict) or not isinstance(meta.get("arch"), str):
        raise ValueError(f"{path}: checkpoint has no architecture name (meta.arch)")
    if not isinstance(state, dict):
        raise ValueError(f"{path}: checkpoint has no state_dict")
    classes = meta.get("classes")
    if classes is not None and (not isinstance(classes, list | tuple) or not all(isinstance(c, str) for c in classes)
                                or len(set(classes)) != len(classes) or len(classes) < 2):
        raise ValueError(f"{path}: checkpoint's class names must be a list of at least two distinct names")
    if classes is None and not isinstance(meta.get("num_classes", 9), int):
        raise ValueError(f"{path}: checkpoint's num_classes is not an integer")
    meta = dict(meta)
    meta["classes"] = list(checkpoint_classes(meta))
    meta["num_classes"] = len(meta["classes"])
    try:
        model = create_model(meta["arch"], meta["num_classes"])
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        first = next((ln.strip() for ln in str(err).splitlines()[1:] if ln.strip()), str(err))
        raise ValueError(f"{path}: weights do not fit architecture {meta['arch']!r} "
                         f"with {meta['num_classes']} classes ({first})") from None
    return model.to(map_location).eval(), meta


def _names(classes) -> str:
    classes = list(classes)
    return f"{len(classes)} classes ({', '.join(classes[:4])}{', ...' if len(classes) > 4 else ''})"


def require_classes(checkpoint: Path, trained: list[str], data: Path, classes: list[str]) -> None:
    """Refuse a model trained on other classes than the data's (one line naming the checkpoint)."""
    if list(trained) != list(classes):
        raise ValueError(f"{checkpoint}: the model was trained on {_names(trained)} but {data} has {_names(classes)}")
