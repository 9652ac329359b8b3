"""Calibrate the synthetic IN-9 against the paper's statistics by training, with the project's own engine.

Generates (or reuses) the synthetic dataset, builds its eight variants, trains the profile's net on
each training variant below (each a cached record) and tests it on every variant. The targets of
the foundation issue, on the smoke profile:
  Only-BG-T-trained net on Original: roughly 35-50% (IN-9: 41-46%);
  Only-FG- or Mixed-Rand-trained net on its own test set: >= 80%;
  Original-trained net on Original: >= 90%, with a visible BG-Gap (Mixed-Same - Mixed-Rand).

    python scripts/calibrate_synth.py --synth data/synth-smoke --variants data/variants-smoke --correlation 0.8
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from bgrepro.book.experiments import trained_model
from bgrepro.data.build import build
from bgrepro.data.sources import SyntheticSource
from bgrepro.data.synth import SynthConfig, background_only_ceiling, generate
from bgrepro.training.classifier import TrainConfig

TRAIN_VARIANTS = ("original", "only_bg_t", "only_fg", "mixed_rand")
TEST_VARIANTS = ("original", "only_bg_t", "only_fg", "mixed_same", "mixed_rand", "mixed_next")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--synth", type=Path, default=Path("data/synth-smoke"))
    ap.add_argument("--variants", type=Path, default=Path("data/variants-smoke"))
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--correlation", type=float, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    config = SynthConfig.from_profile(args.profile, correlation=args.correlation, seed=args.seed)
    generate(args.synth, config)
    build(SyntheticSource(args.synth), args.variants, seed=args.seed)
    rows = {}
    for variant in TRAIN_VARIANTS:
        record = trained_model(TrainConfig.from_profile(args.variants, args.profile, variant=variant, seed=args.seed))
        rows[variant] = {**{v: 100 * record.accuracy[v] for v in TEST_VARIANTS},
                         "bg_gap": 100 * record.bg_gap, "train_seconds": record.train_seconds}
    pd.set_option("display.float_format", "{:.1f}".format)
    pd.set_option("display.width", 160)
    ceiling = background_only_ceiling(config.correlation)
    print(f"correlation {config.correlation}; background-only ceiling {ceiling:.1%}")
    print(pd.DataFrame(rows).T.rename_axis("trained on \\ test").to_string())


if __name__ == "__main__":
    main()
