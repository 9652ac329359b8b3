"""What the book costs, in a unit that travels between machines (issue 31).

Runs every chapter of the book from a cold cache (a fresh results folder: every record and every chapter
made anew; the data and the venv in place) and, in the same run, the reference unit: the profile's default
model trained on Original with seed 0 by the code of the baseline commit (`REFERENCE_COMMIT`, a fixed piece of
work), timed before and after the chapters (two runs, so that a machine that speeds up or slows down in the
meantime shows). The book's total divided by the mean of the
two references is its cost in reference units, which compares across machines and days where seconds
alone do not (this project's machines differ by up to 2x from day to day).

Each run appends one entry to `bench/results/book.json`: per chapter seconds and peak resident memory (the
runner's process and the chapter's kernel together, and the largest process alone, `runner.PeakMemory`), the
total, the references, the total in reference units, the commit measured and the machine.

    python bench/book.py --label after --data data/variants-smoke-grabcut --synth data/synth-smoke
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

#: The reference unit's code: the default model's training as it stood at the issue's baseline commit, run from
#: that commit's own files (`git archive`), so that the unit is the same work in every run: training made faster
#: later makes the book cheaper in units instead of shrinking the unit with it.
REFERENCE_COMMIT = "79518ffa5e0e650e0505870d840f4c59058d0b17"
_REFERENCE = """
import sys, time
from pathlib import Path
from bgrepro.train import TrainConfig, train
t0 = time.perf_counter()
train(TrainConfig.from_profile(Path(sys.argv[1]), sys.argv[2]), Path(sys.argv[3]), progress=False)
print(time.perf_counter() - t0)
"""


def reference_code(work: Path) -> Path:
    """The baseline commit's package, unpacked once under `work` (needs this checkout's git history)."""
    dest = work / "reference-code"
    if not (dest / "bgrepro").is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", REFERENCE_COMMIT, "bgrepro"], capture_output=True,
                                 cwd=Path(__file__).resolve().parent.parent)
        if archive.returncode != 0:
            raise SystemExit(f"the reference unit needs commit {REFERENCE_COMMIT[:7]} in this checkout's history "
                             f"(a shallow clone lacks it: git fetch --unshallow): {archive.stderr.decode().strip()}")
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def reference_seconds(data: Path, profile: str, work: Path) -> float:
    """Seconds to train the profile's default model on Original (seed 0) into a fresh folder, with the
    baseline commit's code (`REFERENCE_COMMIT`) in a process of its own."""
    run = work / f"reference-{time.monotonic_ns()}"
    env = {**os.environ, "PYTHONPATH": str(reference_code(work)), "BGREPRO_RESULTS": str(work / "reference-results")}
    done = subprocess.run([sys.executable, "-c", _REFERENCE, str(data), profile, str(run)], capture_output=True,
                          text=True, env=env, check=True, cwd=work)  # not the checkout: its package would come first
    shutil.rmtree(run, ignore_errors=True)
    return float(done.stdout.strip().splitlines()[-1])


def commit_of(package_dir: Path) -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=package_dir)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=package_dir).stdout.strip()
        return done.stdout.strip() + ("+uncommitted" if dirty else "")
    except OSError:
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--synth", type=Path, required=True)
    parser.add_argument("--label", required=True, help="what is measured, e.g. before or after")
    parser.add_argument("--chapters", default=None,
                        help="comma-separated chapters to execute (default: the whole book, in its order)")
    parser.add_argument("--work", type=Path, default=Path("results/bench-book"),
                        help="a scratch folder for the cold cache (emptied first)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/book.json"))
    args = parser.parse_args()
    data, synth = args.data.resolve(), args.synth.resolve()
    for path in (data, synth):
        if not path.is_dir():
            raise SystemExit(f"{path}: not found; run `make data PROFILE={args.profile}` first")
    work = args.work.resolve() / args.label
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ["BGREPRO_RESULTS"] = str(work / "results")  # records and chapters from a cold cache

    import torch

    import bgrepro
    from bgrepro.book.runner import execute

    package_dir = Path(bgrepro.__file__).resolve().parent
    references = [reference_seconds(data, args.profile, work)]
    print(f"[bench-book] reference unit: {references[0]:.1f} s", flush=True)
    t0 = time.perf_counter()
    from bgrepro.book.runner import ORDER

    chosen = tuple(args.chapters.split(",")) if args.chapters else ORDER
    peaks: dict[str, dict[str, float]] = {}
    chapters = execute(args.profile, data, synth, chapters=chosen, out=work / "notebooks", peaks=peaks)
    total = time.perf_counter() - t0
    references.append(reference_seconds(data, args.profile, work))
    unit = sum(references) / len(references)
    entry = {
        "label": args.label,
        "commit": commit_of(package_dir),
        "profile": args.profile,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(), "torch": torch.__version__},
        "chapters_seconds": {k: round(v, 1) for k, v in chapters.items()},
        "total_seconds": round(total, 1),
        "reference": {"what": f"the {args.profile} profile's default model trained on Original, seed 0, with the "
                              f"code of commit {REFERENCE_COMMIT[:7]}",
                      "seconds": [round(r, 1) for r in references], "mean_seconds": round(unit, 1)},
        "total_units": round(total / unit, 2),
        "chapters_units": {k: round(v / unit, 2) for k, v in chapters.items()},
        "chapters_peak_mib": {k: round(v["all"]) for k, v in peaks.items()},
        "chapters_largest_process_mib": {k: round(v["largest"]) for k, v in peaks.items()},
        "peak_mib": round(max((v["all"] for v in peaks.values()), default=0)),
    }
    entries = json.loads(args.out.read_text()) if args.out.exists() else []
    entries.append(entry)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(entries, indent=2) + "\n")
    for name, seconds in chapters.items():
        print(f"[bench-book]   {name:<22}{seconds:7.1f} s {seconds / unit:6.2f} units, "
              f"peak {peaks[name]['all']:,.0f} MiB (largest process {peaks[name]['largest']:,.0f})")
    print(f"[bench-book] {args.label}: {total:.0f} s = {total / unit:.1f} reference units "
          f"(reference {unit:.1f} s), peak {entry['peak_mib']:,} MiB; written to {args.out}", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
