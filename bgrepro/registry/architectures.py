"""Architectures by name: the CPU-sized nets, torchvision's and timm's, and what RPS and Grad-CAM read of them.

Every model bgrepro trains takes float images in [0, 1] of shape (N, 3, H, W) (ImageNet normalisation
happens inside, as in the official code, `Classifier`) and returns one logit per class of its data.
"""

from __future__ import annotations

import torch
from torch import nn

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
    """Maps images in [0, 1] to normalised inputs (ImageNet's statistics by default)."""

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
    """VGG-style stages and global average pooling: a CPU-sized classifier."""

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

#: Each architecture as a page names it (the paper's spelling of its Table 2 where it has one).
ARCH_NAMES = {
    "smallcnn": "small CNN", "smallcnn_narrow": "small CNN, narrow", "smallcnn_wide": "small CNN, wide",
    "smallcnn_shallow": "small CNN, shallow", "smallcnn_deep": "small CNN, deep",
    "resnet18": "ResNet-18", "resnet50": "ResNet-50", "resnet152": "ResNet-152", "wide_resnet50_2": "WRN-50x2",
    "vgg16_bn": "VGG16-BN", "alexnet": "AlexNet", "shufflenet_v2": "ShuffleNet", "mobilenet_v3_large": "MobileNet-v3",
    "efficientnet_b0": "EfficientNet-b0",
}


def _timm():
    try:
        import timm
    except ImportError:
        return None
    return timm


def is_imagenet_architecture(name: str) -> bool:
    """Whether `name` is a torchvision or timm architecture (one that has ImageNet weights to speak of)."""
    import torchvision

    timm = _timm()
    return name in TORCHVISION_ARCHS or name in torchvision.models.list_models() or (
        timm is not None and timm.is_model(name))


def network(arch: str, num_classes: int = 1000) -> nn.Module:
    """A fresh, randomly initialised network by name (its own input normalisation not included): the small nets,
    torchvision's by this project's names, timm's by theirs, then torchvision's other names."""
    if arch in SMALL_ARCHS:
        return SmallCNN(SMALL_ARCHS[arch], num_classes)
    import torchvision

    if arch in TORCHVISION_ARCHS:
        return torchvision.models.get_model(TORCHVISION_ARCHS[arch], weights=None, num_classes=num_classes)
    timm = _timm()
    if timm is not None and timm.is_model(arch):
        return timm.create_model(arch, pretrained=False, num_classes=num_classes)
    if arch in torchvision.models.list_models():
        return torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
    raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)} (or a torchvision or timm "
                     "model name)")


def create_model(arch: str, num_classes: int) -> Classifier:
    """A fresh classifier to train: ImageNet normalisation, then the network `arch` with `num_classes` outputs."""
    return Classifier(network(arch, num_classes))


def feature_trunk(net: nn.Module) -> nn.Module:
    """The convolutional trunk of a network: its input -> its last spatial feature map (N, C, h, w).

    SmallCNN, VGG, AlexNet, EfficientNet and MobileNet keep it as `.features`; ResNets, Wide ResNets
    and ShuffleNet are rebuilt up to their last stage. The trunk's last module is where Grad-CAM looks.
    """
    net = getattr(net, "net", net)  # a Classifier's network
    if isinstance(getattr(net, "features", None), nn.Module):
        return net.features
    if hasattr(net, "layer4"):
        return nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3,
                             net.layer4)
    if hasattr(net, "conv5") and hasattr(net, "stage4"):
        return nn.Sequential(net.conv1, net.maxpool, net.stage2, net.stage3, net.stage4, net.conv5)
    raise ValueError(f"{type(net).__name__}: no convolutional trunk known; pass the layer explicitly")


def set_resnet_stride(net: nn.Module, stride: int) -> nn.Module:
    """A torchvision ResNet's output stride: 32 as built, or 16 (the published RPS: the last stage's
    first block at stride 1, no dilation, so 224 px give 14 x 14 features). Other networks unchanged."""
    if stride not in (16, 32):
        raise ValueError(f"the ResNet feature stride must be 16 or 32, got {stride}")
    net = getattr(net, "net", net)
    if stride == 16 and hasattr(net, "layer4"):
        for module in net.layer4[0].modules():
            if isinstance(module, nn.Conv2d) and module.stride != (1, 1):
                module.stride = (1, 1)
    return net


#: The usual names of a classifier's last layer (torchvision and timm), tried before the last 2-D weight.
_HEADS = ("fc.weight", "head.weight", "head.fc.weight", "classifier.weight", "classifier.1.weight",
          "classifier.6.weight", "classifier.3.weight", "heads.head.weight", "last_linear.weight")


def output_count(state: dict) -> int:
    """The class count of a classifier's state dict: rows of its head (by the usual names, else its last 2-D
    weight)."""
    named = next((state[k] for k in _HEADS if k in state and state[k].ndim == 2), None)
    if named is not None:
        return int(named.shape[0])
    heads = [v for k, v in state.items() if k.endswith("weight") and v.ndim == 2]
    if not heads:
        raise ValueError("no classifier weight (a 2-D `...weight`) in the state dict")
    return int(heads[-1].shape[0])


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "TORCHVISION_ARCHS", "SMALL_ARCHS", "ARCHS", "Normalize", "Classifier",
           "SmallCNN", "is_imagenet_architecture", "network", "create_model", "feature_trunk", "set_resnet_stride",
           "output_count"]
