"""Model architectures: small nets sized for the CPU profiles (more arrive with the training engine)."""

from __future__ import annotations

import torch
from torch import nn

from .classes import NUM_CLASSES

#: ImageNet channel statistics; normalisation happens inside the model, as in the official code.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """Maps images in [0, 1] to ImageNet-normalised inputs."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """Three VGG-style stages and global average pooling: a CPU-sized classifier."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64), num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.normalize = Normalize()
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
        return self.fc(torch.flatten(self.pool(self.features(self.normalize(x))), 1))


SMALL_ARCHS = {
    "smallcnn": lambda: SmallCNN((16, 32, 64)),
    "smallcnn_wide": lambda: SmallCNN((24, 48, 96)),
}


def create_model(arch: str) -> nn.Module:
    """A fresh 9-class model by name."""
    try:
        return SMALL_ARCHS[arch]()
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(SMALL_ARCHS)}") from None
