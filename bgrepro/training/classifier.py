"""Training: one function of a config, checkpointed every epoch, resumable with identical results.

`train(config, run_dir)` trains `config.arch` on `config.variant` of `config.data` (the official
layout) and leaves `run_dir/checkpoint.pt` (load it with `bgrepro.registry.load`) and
`run_dir/train_log.json`. After every epoch the whole training state (weights, optimizer,
schedule, epoch) is written atomically to `run_dir/last.pt`; running the same config on the same
`run_dir` again resumes there. The data order, augmentation and dropout are seeded per epoch, so
a resumed run ends with exactly the weights of an uninterrupted one on the CPU.

Launched by `torchrun --nproc_per_node N`, it trains with DistributedDataParallel (NCCL on GPUs,
gloo on the CPU); each process takes every N-th example of the epoch's order.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import distributed
from ..data.datasets import BatchStream, load_variant
from ..inference import default_device
from ..io import atomic_write, atomic_write_text
from ..outputs import (
    RESUME,
    check_location,
    check_no_overlap,
    decide,
    identity_of,
    locked,
    marker_path,
    notice,
    set_aside,
    write_marker,
)
from ..profiles import get_profile
from ..registry import CHECKPOINT_FORMAT, create_model, read_torch, start_from_imagenet, weights_file
from ..variants import MIXED_RAND, NAMES, ORIGINAL


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model."""

    data: str
    variant: str = ORIGINAL
    arch: str = "smallcnn"
    epochs: int = 20
    batch_size: int = 64
    lr: float = 0.05
    weight_decay: float = 5e-4
    optimizer: str = "sgd"  # sgd (momentum 0.9, Nesterov) or adamw
    schedule: str = "cosine"  # cosine with linear warm-up, or step (x0.1 at 50% and 75%)
    label_smoothing: float = 0.0
    #: Paste foregrounds on random Only-BG-T backgrounds on the fly (variant must be mixed_rand).
    on_the_fly: bool = False
    seed: int = 0
    #: Start from ImageNet weights (fine-tuning): a torchvision weights tag or a weights file; None: from scratch.
    pretrained: str | None = None

    def __post_init__(self) -> None:
        if self.variant not in NAMES:
            raise ValueError(f"unknown variant {self.variant!r}; choose one of {', '.join(NAMES)}")
        if self.on_the_fly and self.variant != MIXED_RAND:
            raise ValueError("on-the-fly compositing is Mixed-Rand training: use variant mixed_rand")
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"optimizer must be sgd or adamw, got {self.optimizer!r}")
        if self.schedule not in ("cosine", "step"):
            raise ValueError(f"schedule must be cosine or step, got {self.schedule!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch size must be positive")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"the learning rate must be a positive finite number, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"the weight decay must be a non-negative finite number, got {self.weight_decay}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label smoothing must be in [0, 1), got {self.label_smoothing}")

    @classmethod
    def from_profile(cls, data, profile: str | None = None, **overrides) -> TrainConfig:
        """The profile's training defaults, with explicit overrides (None means 'keep')."""
        p = get_profile(profile)
        values = dict(data=str(data), arch=p.arch, epochs=p.epochs, batch_size=p.batch_size, lr=p.lr,
                      weight_decay=p.weight_decay)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def as_dict(self) -> dict:
        """Plain-dict form (for records and checkpoints; `pretrained` only when set, so that the records of
        models trained from scratch keep their keys)."""
        values = asdict(self)
        if values["pretrained"] is None:
            del values["pretrained"]
        return values


def _lr_lambda(config: TrainConfig, total_steps: int, steps_per_epoch: int):
    warmup = min(steps_per_epoch, max(1, total_steps // 10))

    def factor(step: int) -> float:
        if config.schedule == "step":
            return 0.1 ** sum(step >= total_steps * m for m in (0.5, 0.75))
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))

    return factor


def _distributed() -> tuple[int, int]:
    return distributed.rank(), distributed.world_size()


def train(config: TrainConfig, run_dir: Path, device=None, progress: bool = True,
          stop_after_epoch: int | None = None, offline: bool = False, overwrite: bool = False) -> Path:
    """Train (or resume) and return the path of the final checkpoint (`offline`: never download the
    ImageNet weights of a fine-tuning run).

    `run_dir` is bgrepro's output (`outputs`): a folder that is not bgrepro's run is refused, as is one of
    another config (unless `overwrite`) or one that overlaps the data; a run whose data changed since
    (another manifest, photos added) is trained afresh instead of returning the old checkpoint."""
    run_dir = Path(run_dir)
    rank, world = _distributed()
    inputs = {"--data": Path(config.data)}
    if config.pretrained and weights_file(config.pretrained) is not None:
        inputs["--pretrained"] = weights_file(config.pretrained)
    if rank == 0:
        check_location(run_dir)
        check_no_overlap(run_dir, inputs)
        if not Path(config.data).is_dir():
            raise FileNotFoundError(f"{config.data}: data folder not found")
    with locked(run_dir) if rank == 0 else nullcontext():
        action, existed, old_marker = RESUME, run_dir.exists(), None
        if rank == 0:
            identity = identity_of(inputs)
            action, why = decide(run_dir, "train", config.as_dict(), identity, overwrite, "training run")
            if action != RESUME and why:
                notice(f"{why}: training afresh")
        fresh = rank == 0 and action != RESUME
        # the last good run is set aside, not deleted, until the new one succeeds (with the eval record of it)
        with set_aside(run_dir, [*RUN_FILES, *_own_eval(run_dir)]) if fresh else nullcontext():
            if fresh:
                old_marker = marker_path(run_dir).read_text() if marker_path(run_dir).is_file() else None
                run_dir.mkdir(parents=True, exist_ok=True)
                write_marker(run_dir, "train", config.as_dict(), identity)
            if world > 1:
                torch.distributed.barrier()
            try:
                return _train(config, run_dir, rank, world, device, progress, stop_after_epoch, offline)
            except Exception:
                if fresh:  # bad input: the folder as it was (an interruption keeps the new run, to resume)
                    _remove_run(run_dir, marker=True)
                    if old_marker is not None:
                        atomic_write_text(marker_path(run_dir), old_marker)
                raise
            finally:
                if fresh and not existed and run_dir.is_dir() and not any(run_dir.iterdir()):
                    run_dir.rmdir()


#: What training writes into its run folder.
RUN_FILES = ("checkpoint.pt", "last.pt", "train_log.json")


def _own_eval(run_dir: Path) -> list[str]:
    """The eval record `bgrepro eval` wrote beside a run's checkpoint (it scored the model being replaced)."""
    try:
        return ["eval.json"] if json.loads((run_dir / "eval.json").read_text()).get("written_by") == "bgrepro eval" \
            else []
    except (OSError, ValueError, AttributeError):
        return []


def _remove_run(run_dir: Path, marker: bool = False) -> None:
    """Delete what training writes into its (bgrepro-made) run folder."""
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    if marker:
        marker_path(run_dir).unlink(missing_ok=True)


def _train(config: TrainConfig, run_dir: Path, rank: int, world: int, device, progress: bool,
           stop_after_epoch: int | None, offline: bool) -> Path:
    if world > 1 and torch.cuda.is_available():
        device = default_device()  # this rank's GPU
    device = torch.device(device) if device is not None else default_device()
    final = run_dir / "checkpoint.pt"
    if final.exists():
        _check_same_config(final, config)
        return final
    data = load_variant(config.data, ORIGINAL if config.on_the_fly else config.variant, "train",
                        with_masks=config.on_the_fly)
    stream = BatchStream(data, max(1, config.batch_size // world), device=device, train=True,
                         mixed_rand=config.on_the_fly, rank=rank, world_size=world)
    torch.manual_seed(config.seed)
    model = create_model(config.arch, len(data.classes))
    if config.pretrained:
        start_from_imagenet(model, config.arch, config.pretrained, offline)
    model = model.to(device)
    # channels-last: cuDNN's fast layout, and oneDNN's on the CPU (the smoke nets train 1.3-1.6x faster at 40 px
    # on 2 cores, ResNet-18 the same; issue 31)
    model = model.to(memory_format=torch.channels_last)
    opt, sched = _optimizer(config, model, len(stream))
    meta = {"arch": config.arch, "num_classes": len(data.classes), "classes": list(data.classes),
            "variant": config.variant,
            "on_the_fly": config.on_the_fly, "image_size": int(data.images.shape[-1]), "config": config.as_dict()}
    last = run_dir / "last.pt"
    history, start = _resume(last, config, run_dir, device, model, opt, sched)
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    bar = tqdm(range(start, config.epochs), initial=start, total=config.epochs, disable=not progress or rank != 0,
               desc=f"train {config.arch} on {config.variant}{' (on the fly)' if config.on_the_fly else ''}")
    for epoch in bar:
        history.append(_epoch(net, stream, opt, sched, config, epoch, device, run_dir, world))
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", acc=f"{history[-1]['train_accuracy']:.2f}",
                        ips=f"{history[-1]['images_per_second']:.0f}")
        if rank == 0:
            save_checkpoint(last, model, meta, optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                            epoch=epoch + 1, history=history)
        if world > 1:
            torch.distributed.barrier()
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            return last
    if rank == 0:
        save_checkpoint(final, model, {**meta, "history": history})
        atomic_write_text(run_dir / "train_log.json", json.dumps({"config": config.as_dict(), "history": history},
                                                                 indent=2) + "\n")
        last.unlink(missing_ok=True)
    if world > 1:
        torch.distributed.barrier()
    return final


def _optimizer(config: TrainConfig, model: torch.nn.Module, steps_per_epoch: int):
    """The optimizer (SGD with Nesterov momentum, or AdamW) and its learning-rate schedule per step."""
    if config.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9, nesterov=True,
                              weight_decay=config.weight_decay)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total = config.epochs * steps_per_epoch
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(config, total, steps_per_epoch))


def _resume(last: Path, config: TrainConfig, run_dir: Path, device, model, opt, sched) -> tuple[list, int]:
    """(history, first epoch) of an interrupted run's training state, put back into the model, optimizer and
    schedule; ([], 0) without one."""
    if not last.exists():
        return [], 0
    state = read_torch(last, "training state", device)
    if not isinstance(state, dict) or not {"meta", "state_dict", "optimizer", "scheduler", "history",
                                            "epoch"} <= set(state):
        raise ValueError(f"{last}: not a bgrepro training state (delete it to start the run afresh)")
    if state["meta"].get("config") != config.as_dict():
        raise ValueError(f"{last}: {run_dir} holds a run with another config; choose another run folder")
    model.load_state_dict(state["state_dict"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    return state["history"], state["epoch"]


def _epoch(net, stream: BatchStream, opt, sched, config: TrainConfig, epoch: int, device, run_dir: Path,
           world: int) -> dict:
    """One epoch of training; its loss, training accuracy and speed."""
    cuda = device.type == "cuda"
    torch.manual_seed(config.seed * 7919 + epoch)  # dropout etc.: same per epoch, resumed or not
    net.train()
    t0, loss_sum, correct, seen = time.perf_counter(), 0.0, 0, 0
    for x, y in stream.epoch(config.seed, epoch):
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            logits = net(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise ValueError(f"{run_dir}: the training loss became {value} in epoch {epoch + 1} (learning rate "
                             f"{config.lr} too high?); stopped before the weights were spoiled, no checkpoint "
                             "written for this epoch")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss_sum += value * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
    seconds = time.perf_counter() - t0
    return {"epoch": epoch + 1, "loss": loss_sum / seen, "train_accuracy": correct / seen,
            "images_per_second": seen * world / seconds, "seconds": seconds}


def save_checkpoint(path: Path, model: torch.nn.Module, meta: dict, **extra) -> None:
    """Write a bgrepro checkpoint atomically: the model's weights, its metadata and any training state."""
    model = getattr(model, "module", model)  # unwrap DDP
    payload = {"format": CHECKPOINT_FORMAT, "meta": meta, "state_dict": model.state_dict(), **extra}
    atomic_write(Path(path), lambda tmp: torch.save(payload, tmp))


def _check_same_config(checkpoint: Path, config: TrainConfig) -> None:
    meta = read_torch(checkpoint)["meta"]
    if meta["config"] != config.as_dict():
        raise ValueError(f"{checkpoint}: this run folder holds a model trained with another config")
