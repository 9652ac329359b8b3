"""Calibrate the synthetic IN-9 against the paper's statistics by training small nets.

Generates (or reuses) a synthetic dataset, builds the background/foreground variants in memory
with `bgrepro.composite`, trains the profile's small net on each training variant and tests it on
every test variant. The targets (issue: foundation) on the smoke profile:
  Only-BG-T-trained net on Original: roughly 35-50% (IN-9: 41-46%);
  Only-FG- or Mixed-Rand-trained net on its own test set: >= 80%;
  Original-trained net on Original: >= 90%, with a visible BG-Gap (Mixed-Same - Mixed-Rand).

This is a stop-gap until the training engine lands; it prints one table and writes JSON.

    python scripts/calibrate_synth.py --data data/synth-smoke --correlation 0.8
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from bgrepro import composite
from bgrepro.classes import CLASS_FOLDERS
from bgrepro.io import read_image, read_mask
from bgrepro.models import create_model
from bgrepro.profiles import get_profile
from bgrepro.synth import SynthConfig, background_only_ceiling, generate, read_annotations

TRAIN_VARIANTS = ("original", "only_bg_t", "only_fg", "mixed_rand")
TEST_VARIANTS = ("original", "only_bg_t", "only_fg", "mixed_same", "mixed_rand", "mixed_next")


def load_split(root: Path, split: str):
    rows = [r for r in read_annotations(root) if r["split"] == split]
    images, masks = [], []
    for r in rows:
        folder = CLASS_FOLDERS[r["class_index"]]
        f = next((root / "original" / split / folder).glob(f"{r['id']}.*"))
        img = read_image(f)
        images.append(img)
        masks.append(read_mask(root / "fg_mask" / split / folder / f"{r['id']}.npy", img.shape[:2]))
    labels = np.array([r["class_index"] for r in rows])
    boxes = [(r["xmin"], r["ymin"], r["xmax"], r["ymax"]) for r in rows]
    return np.stack(images), np.stack(masks), boxes, labels


def variants(images, masks, boxes, labels, seed):
    """All variants in memory; mixed pairings from a seeded generator."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    bg_t = np.stack([composite.only_bg_t(im, b) for im, b in zip(images, boxes, strict=True)])
    out = {
        "original": images,
        "only_bg_t": bg_t,
        "only_fg": np.stack([composite.only_fg(im, m) for im, m in zip(images, masks, strict=True)]),
    }
    by_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    pick = {
        "mixed_rand": lambda i: rng.integers(n),
        "mixed_same": lambda i: rng.choice(by_class[labels[i]][by_class[labels[i]] != i]),
        "mixed_next": lambda i: rng.choice(by_class[(labels[i] + 1) % 9]),
    }
    for name, choose in pick.items():
        out[name] = np.stack([composite.paste(images[i], masks[i], bg_t[choose(i)]) for i in range(n)])
    return out


def to_tensor(u8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(u8).permute(0, 3, 1, 2).contiguous()


def train(x_u8: torch.Tensor, y: torch.Tensor, profile, seed: int, desc: str):
    torch.manual_seed(seed)
    model = create_model(profile.arch)
    opt = torch.optim.SGD(model.parameters(), lr=profile.lr, momentum=0.9, nesterov=True,
                          weight_decay=profile.weight_decay)
    steps_per_epoch = -(-len(y) // profile.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, profile.lr, total_steps=profile.epochs * steps_per_epoch,
                                                pct_start=0.15)
    gen = torch.Generator().manual_seed(seed)
    pad = 4
    model.train()
    for _ in tqdm(range(profile.epochs), desc=desc, leave=False):
        order = torch.randperm(len(y), generator=gen)
        for k in range(0, len(y), profile.batch_size):
            idx = order[k:k + profile.batch_size]
            xb = x_u8[idx].float() / 255
            # augmentation: random translation (reflect pad + crop) and horizontal flip
            xb = F.pad(xb, (pad,) * 4, mode="reflect")
            dx, dy = torch.randint(0, 2 * pad + 1, (2,), generator=gen).tolist()
            xb = xb[..., dy:dy + x_u8.shape[2], dx:dx + x_u8.shape[3]]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def accuracy(model, x_u8, y) -> float:
    preds = torch.cat([model(x_u8[k:k + 512].float() / 255).argmax(1) for k in range(0, len(y), 512)])
    return float((preds == y).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("data/synth-smoke"))
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--correlation", type=float, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    profile = get_profile(args.profile).with_overrides(epochs=args.epochs)
    config = SynthConfig.from_profile(args.profile, correlation=args.correlation, seed=args.seed)
    generate(args.data, config)
    train_split = load_split(args.data, "train")
    test_split = load_split(args.data, "val")
    train_sets = variants(*train_split, seed=args.seed)
    test_sets = variants(*test_split, seed=args.seed + 1)
    ytr, yte = torch.from_numpy(train_split[3]), torch.from_numpy(test_split[3])
    table = {}
    for tv in TRAIN_VARIANTS:
        t0 = time.time()
        model = train(to_tensor(train_sets[tv]), ytr, profile, args.seed, desc=f"train {tv}")
        table[tv] = {v: accuracy(model, to_tensor(test_sets[v]), yte) for v in TEST_VARIANTS}
        table[tv]["bg_gap"] = table[tv]["mixed_same"] - table[tv]["mixed_rand"]
        table[tv]["train_seconds"] = round(time.time() - t0, 1)
    header = "trained on \\ test  " + "".join(f"{v:>11}" for v in (*TEST_VARIANTS, "bg_gap", "secs"))
    print(f"correlation {config.correlation}  background-only ceiling "
          f"{background_only_ceiling(config.correlation):.1%}  epochs {profile.epochs}")
    print(header)
    for tv, row in table.items():
        cells = "".join(f"{100 * row[v]:>10.1f}%" for v in (*TEST_VARIANTS, "bg_gap"))
        print(f"{tv:<19}{cells}{row['train_seconds']:>10.1f}")
    if args.json:
        record = {"synth": asdict(config), "profile": profile.as_dict(),
                  "background_only_ceiling": background_only_ceiling(config.correlation), "table": table}
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
