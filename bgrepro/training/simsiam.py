"""Self-supervised backbones for representer point selection: SimSiam on a dataset's training images.

RPS as published reads the feature maps of a *self-supervised* backbone (DINO, MoCo): features learned
without labels, which describe objects rather than the classes a classifier separates. Where no such
backbone exists for the data (the synthetic IN-9 at 40 px, a user's medical photos), one is trained
here without a single label by SimSiam (Chen and He, "Exploring Simple Siamese Representation
Learning", CVPR 2021): two augmented views of each training image go through one encoder (a
classifier architecture's convolutional trunk, global pooling and a projection MLP, `z`), a predictor
MLP maps one view's `z` to `p`, and the loss is the negative cosine similarity of `p` of one view with
`z` of the other, whose gradient is stopped (symmetrised). The views are random resized crops
(scale 0.2-1), flips, colour jitter and greyscale, made on the device from the decoded uint8 set.

`train_simsiam(config, out)` writes a bgrepro checkpoint whose network is the classifier architecture
with the learned trunk (its class layer is untouched and unused) and `meta["training"] == "simsiam"`,
so `bgrepro localize --backbone checkpoint:FILE` reads it as a backbone like any other, and knows it is
self-supervised. Its history records the loss and the collapse indicator of the SimSiam paper: the
standard deviation of the l2-normalised `z` over a batch, per channel and averaged, which is about
1/sqrt(dim) for spread outputs and 0 for a collapsed encoder.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..data.datasets import load_variant
from ..inference import default_device
from ..io import atomic_write_text
from ..registry import create_model, feature_trunk
from ..variants import ORIGINAL
from .classifier import save_checkpoint

#: What `meta["training"]` says of a checkpoint trained by `train_simsiam`.
SELF_SUPERVISED_TRAINING = "simsiam"


@dataclass(frozen=True)
class SimSiamConfig:
    """Everything that determines a SimSiam backbone."""

    data: str
    arch: str = "smallcnn"
    variant: str = ORIGINAL
    epochs: int = 30
    batch_size: int = 128
    #: Base learning rate for a batch of 256 (scaled linearly), SGD with momentum 0.9 and a cosine schedule.
    lr: float = 0.05
    weight_decay: float = 1e-4
    #: Width of the projection `z`, and of the predictor's bottleneck.
    dim: int = 256
    pred_dim: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size", "dim", "pred_dim"):
            if getattr(self, key) < 1:
                raise ValueError(f"SimSiam {key} must be positive, got {getattr(self, key)}")
        if self.batch_size < 2:
            raise ValueError("SimSiam needs batches of at least 2 images (batch normalisation)")
        if not (math.isfinite(self.lr) and self.lr > 0 and math.isfinite(self.weight_decay)
                and self.weight_decay >= 0):
            raise ValueError(f"SimSiam lr and weight decay must be finite and positive, got {self.lr}, "
                             f"{self.weight_decay}")

    def as_dict(self) -> dict:
        return {**asdict(self), "data": str(self.data)}


class SimSiam(nn.Module):
    """Encoder (normalisation, trunk, pooling, projector) and predictor."""

    def __init__(self, classifier: nn.Module, dim: int, pred_dim: int) -> None:
        super().__init__()
        self.classifier = classifier  # kept whole, so the trunk is saved in the classifier's layout
        self.trunk = feature_trunk(classifier)
        with torch.no_grad():
            channels = self.trunk(torch.zeros(2, 3, 32, 32)).shape[1]
        self.projector = nn.Sequential(
            nn.Linear(channels, dim, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
            nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim, affine=False))
        self.predictor = nn.Sequential(
            nn.Linear(dim, pred_dim, bias=False), nn.BatchNorm1d(pred_dim), nn.ReLU(inplace=True),
            nn.Linear(pred_dim, dim))

    def project(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.trunk(self.classifier.normalize(x))
        return self.projector(feats.mean(dim=(2, 3)))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The symmetrised SimSiam loss of two views, and the z of the first (for the collapse indicator)."""
        z1, z2 = self.project(a), self.project(b)
        p1, p2 = self.predictor(z1), self.predictor(z2)
        loss = -(F.cosine_similarity(p1, z2.detach(), dim=1).mean()
                 + F.cosine_similarity(p2, z1.detach(), dim=1).mean()) / 2
        return loss, z1.detach()


def _grey(x: torch.Tensor) -> torch.Tensor:
    """Luma (ITU-R BT.601) of float RGB images (N, 3, H, W), as (N, 1, H, W)."""
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]


def views(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One augmented view of a uint8 batch (N, 3, H, W) as floats in [0, 1]: a random resized crop (area
    0.2-1, aspect 3/4-4/3), a horizontal flip, colour jitter (brightness, contrast, saturation by up to 40%,
    with probability 0.8) and greyscale (probability 0.2). The draws come from `gen` (on the CPU)."""
    n = len(images)
    x = images.float().div_(255)
    draw = torch.rand(n, 9, generator=gen).to(x.device)
    area = 0.2 + 0.8 * draw[:, 0]
    aspect = torch.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * draw[:, 1])
    sw = torch.sqrt(area * aspect).clamp(max=1.0)
    sh = torch.sqrt(area / aspect).clamp(max=1.0)
    flip = torch.where(draw[:, 2] < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0], theta[:, 1, 1] = sw * flip, sh
    theta[:, 0, 2] = (2 * draw[:, 3] - 1) * (1 - sw)
    theta[:, 1, 2] = (2 * draw[:, 4] - 1) * (1 - sh)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    jitter = (draw[:, 5] < 0.8)[:, None, None, None]
    factors = 1 + 0.4 * (2 * torch.rand(n, 3, generator=gen).to(x.device) - 1)
    jittered = x * factors[:, 0, None, None, None]  # brightness
    mean = jittered.mean(dim=(1, 2, 3), keepdim=True)
    jittered = (jittered - mean) * factors[:, 1, None, None, None] + mean  # contrast
    g = _grey(jittered)
    jittered = (jittered - g) * factors[:, 2, None, None, None] + g  # saturation
    x = torch.where(jitter, jittered, x).clamp_(0, 1)
    greyscale = (draw[:, 6] < 0.2)[:, None, None, None]
    grey = _grey(x).expand_as(x)
    return torch.where(greyscale, grey, x).contiguous(memory_format=torch.channels_last)


def train_simsiam(config: SimSiamConfig, out: Path, device=None, progress: bool = True) -> Path:
    """Train a SimSiam backbone on the (unlabelled) training images of `config.data` and write
    OUT/checkpoint.pt (see the module's docstring) and OUT/simsiam_log.json; returns the checkpoint's path.
    The same config gives the same weights on the CPU."""
    out = Path(out)
    final = out / "checkpoint.pt"
    if final.exists():
        return final
    device = torch.device(device) if device is not None else default_device()
    data = load_variant(config.data, config.variant, "train")
    if len(data) < 2:
        raise ValueError(f"{config.data}: SimSiam needs at least 2 training images, found {len(data)}")
    torch.manual_seed(config.seed)
    classifier = create_model(config.arch, len(data.classes))
    model = SimSiam(classifier, config.dim, config.pred_dim).to(device).to(memory_format=torch.channels_last)
    batch = min(config.batch_size, len(data))
    lr = config.lr * batch / 256
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=config.weight_decay)
    steps = config.epochs * (len(data) // batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / max(steps, 1))))
    images = data.images.to(device)
    gen = torch.Generator().manual_seed(config.seed)
    history = []
    bar = tqdm(range(config.epochs), desc=f"simsiam {config.arch}", disable=not progress)
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(data), generator=gen)
        losses, spreads = [], []
        for k in range(0, len(order) - batch + 1, batch):  # whole batches only (batch normalisation)
            idx = order[k:k + batch].to(device)
            loss, z = model(views(images[idx], gen), views(images[idx], gen))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss))
            spreads.append(float(F.normalize(z, dim=1).std(dim=0).mean()))
        history.append({"epoch": epoch + 1, "loss": sum(losses) / len(losses),
                        "z_std": sum(spreads) / len(spreads), "seconds": time.perf_counter() - t0})
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", z_std=f"{history[-1]['z_std']:.3f}")
    classifier = model.classifier.cpu().eval()
    meta = {"arch": config.arch, "classes": list(data.classes), "training": SELF_SUPERVISED_TRAINING,
            "config": config.as_dict(), "image_size": int(data.images.shape[-1]), "history": history,
            "collapse_reference": 1 / math.sqrt(config.dim)}
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(final, classifier, meta)
    atomic_write_text(out / "simsiam_log.json", json.dumps({"config": config.as_dict(), "history": history},
                                                           indent=2) + "\n")
    return final


def is_self_supervised(meta: dict) -> bool:
    """Whether a checkpoint's metadata says it was trained without labels (`train_simsiam`)."""
    return meta.get("training") == SELF_SUPERVISED_TRAINING
