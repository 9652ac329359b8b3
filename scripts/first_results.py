"""Run the first three experiments (backgrounds suffice, BG-Gap table, Mixed-Rand training) and print them.

    python scripts/first_results.py --data data/variants-smoke --profile smoke [--archs smallcnn,smallcnn_wide]

Every model is a cached record under results/ (or $BGREPRO_RESULTS): a second run only reads them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from bgrepro.book.experiments import backgrounds_suffice, bg_gap_table, mixed_rand_training


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--archs", default="smallcnn,smallcnn_wide")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    pd.set_option("display.float_format", "{:.1f}".format)
    archs = tuple(a for a in args.archs.split(",") if a)
    print("Backgrounds suffice (accuracy %):")
    print(backgrounds_suffice(args.data, args.profile, args.seed), "\n")
    print("BG-Gap table (accuracy %, trained on Original):")
    print(bg_gap_table(args.data, archs, args.profile, args.seed), "\n")
    print("Mixed-Rand training (accuracy %):")
    print(mixed_rand_training(args.data, args.profile, args.seed))


if __name__ == "__main__":
    main()
