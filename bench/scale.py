"""How time and memory grow with the collection: build, eval and the sampled challenge on synthetic
collections of 5k, 20k and 50k test images at 64 px (issue 25), and the full challenge's quadratic cost.

Each stage runs as its own `bgrepro` command under GNU time, which gives its wall time and its peak
resident memory (the largest process: the command, or one of its build workers). The growth ratios are
against the smallest collection, measured in the same run: linear growth is 4x and 10x; flat memory is
1x. The model is a small CNN trained here for a few epochs on a separate synthetic training set (a real,
if weak, classifier, so that the challenge's early stopping meets foregrounds that resist).

The full challenge (every foreground against every background) costs N x M composites when no
background fools a foreground; it is measured on samples of 500 and 1,000 foregrounds with as many
backgrounds, and its worst case given for each collection beside the sampled challenge's fixed cost.

    python bench/scale.py --out bench/results/scale.json [--sizes 5000,20000,50000] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def timed(args: list[str], log: Path) -> dict:
    """Wall seconds and peak RSS (MiB) of one bgrepro command."""
    stats = log.with_suffix(".time")
    cmd = ["/usr/bin/time", "-f", "%e %M", "-o", str(stats), sys.executable, "-m", "bgrepro", *args]
    with open(log, "w") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): bgrepro {' '.join(args)}; see {log}")
    seconds, kib = stats.read_text().split()[-2:]
    return {"seconds": float(seconds), "peak_mib": round(int(kib) / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="5000,20000,50000")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bgrepro-scale"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/scale.json"))
    parser.add_argument("--foregrounds", type=int, default=200, help="the sampled challenge's foregrounds")
    parser.add_argument("--backgrounds", type=int, default=50, help="the sampled challenge's backgrounds per class")
    parser.add_argument("--keep", action="store_true", help="keep the collections")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # the model: a small CNN on its own synthetic training set
    model_data = work / "model-data"
    if not (model_data / "manifest.csv").exists():
        timed(["synth", "--out", str(work / "model-synth"), "--size", "64", "--train-per-class", "600",
               "--test-per-class", "5", "--overwrite"], work / "model-synth.log")
        timed(["build", "--source", "synthetic", "--in", str(work / "model-synth"), "--out", str(model_data),
               "--fg-masks", "exact", "--variants", "original", "--overwrite"], work / "model-build.log")
    timed(["train", "--data", str(model_data), "--variant", "original", "--out", str(work / "model"),
           "--profile", "smoke", "--epochs", "10"], work / "train.log")
    model = work / "model" / "checkpoint.pt"
    rows = []
    for n in sizes:
        per_class = n // 9
        synth, data = work / f"synth-{n}", work / f"data-{n}"
        for path in (synth, data):
            shutil.rmtree(path, ignore_errors=True)
        timed(["synth", "--out", str(synth), "--size", "64", "--train-per-class", "0", "--test-per-class",
               str(per_class)], work / f"synth-{n}.log")
        row = {}
        row["build"] = timed(["build", "--source", "synthetic", "--in", str(synth), "--out", str(data),
                              "--fg-masks", "exact"], work / f"build-{n}.log")
        row["eval"] = timed(["eval", "--data", str(data), "--checkpoint", str(model), "--record",
                             str(work / f"eval-{n}.json"), "--bootstrap", "200"], work / f"eval-{n}.log")
        row["challenge_sampled"] = timed(
            ["challenge", "--data", str(data), "--checkpoint", str(model), "--foregrounds", str(args.foregrounds),
             "--backgrounds", str(args.backgrounds), "--out", str(work / f"challenge-{n}"), "--overwrite"],
            work / f"challenge-{n}.log")
        sampled = json.loads((work / f"challenge-{n}" / "challenge.json").read_text())
        row["challenge_sampled"].update(composites=sampled["composites"], accuracy=sampled["challenge_accuracy"],
                                        ci95=sampled["ci95"], backgrounds=sampled["n_backgrounds"])
        record = json.loads((work / f"eval-{n}.json").read_text())
        row["images"] = record["n"]["original"]
        row["challenge_full_worst_composites"] = row["images"] ** 2
        row["eval_accuracy_original"] = record["accuracy"]["original"]
        row = {"images": row.pop("images"), **row}
        rows.append(row)
        if not args.keep:
            shutil.rmtree(synth, ignore_errors=True)
        print(json.dumps(row), flush=True)
    # the full challenge's quadratic cost, on samples of the smallest collection
    full = []
    smallest = work / f"data-{sizes[0]}"
    for k in (500, 1000):
        result = timed(["challenge", "--data", str(smallest), "--checkpoint", str(model), "--foregrounds", str(k),
                        "--backgrounds", str(k // 9), "--out", str(work / f"full-{k}"), "--overwrite"],
                       work / f"full-{k}.log")
        saved = json.loads((work / f"full-{k}" / "challenge.json").read_text())
        result.update(foregrounds=saved["n_foregrounds"], backgrounds=saved["n_backgrounds"],
                      composites=saved["composites"], accuracy=saved["challenge_accuracy"])
        full.append(result)
        print(json.dumps(result), flush=True)
    if not args.keep:
        for n in sizes:
            shutil.rmtree(work / f"data-{n}", ignore_errors=True)
    base = rows[0]
    growth = {str(r["images"]): {f"{stage}_{what}": round(r[stage][key] / max(base[stage][key], 1e-9), 2)
                                 for stage in ("build", "eval", "challenge_sampled")
                                 for what, key in (("time", "seconds"), ("memory", "peak_mib"))}
              | {"linear": round(r["images"] / base["images"], 2)} for r in rows}
    import platform

    import torch

    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
              "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                       text=True).stdout.strip(),
              "image_side": 64, "sampled_challenge": {"foregrounds": args.foregrounds,
                                                      "backgrounds_per_class": args.backgrounds},
              "rows": rows, "growth": growth, "full_challenge": full,
              "seconds": round(time.perf_counter() - t0, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(growth, indent=2))


if __name__ == "__main__":
    main()
