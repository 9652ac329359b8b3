"""Backgrounds-challenge throughput: bgrepro's search vs the official script's method, in one run.

Same model, same data, same device. The baseline follows the official `challenge_eval.py`: per
foreground, every Only-BG-T background is read from disk again, composited in fp32 in batches of
32, stopping at the first batch with a wrong prediction. bgrepro decodes everything once (decode
time included), composites on the device in large batches, and orders the backgrounds by a pilot
(`bgrepro.analyses.adversarial.challenge`). Reports time, composites and composites/s of each and the
ratios; both must find the same fooled foregrounds. bf16 autocast is also timed (the default on
CUDA; on CPUs with bf16 units it is an option), with its agreement with fp32.

    python bench/challenge_throughput.py --data data/variants-smoke --checkpoint results/runs/<hash>/checkpoint.pt
    python bench/challenge_throughput.py --data data/variants-smoke        # trains the profile's Original model
"""

from __future__ import annotations

import time

import torch

from bgrepro.analyses.adversarial import challenge, challenge_reference, load_challenge_data
from bgrepro.book.experiments import model_for_bench
from bgrepro.inference import Inference


def main() -> None:
    args, loaded, device = model_for_bench(description=__doc__.split("\n")[0], **{"--limit": dict(
        type=int, default=None, help="only the first N foregrounds (both methods)")})
    model, meta = loaded.net, loaded.meta
    print(f"model {meta['arch']} ({args.checkpoint}), data {args.data}, device {device}")

    base = challenge_reference(model, args.data, limit=args.limit, device=device, progress=True)
    print(f"official method: {base.seconds:.1f} s, {base.composites} composites, "
          f"{base.composites / base.seconds:.0f} composites/s, challenge accuracy {100 * base.challenge_accuracy:.1f}%")
    results = {}
    for precision in ("fp32", "bf16"):
        t0 = time.perf_counter()
        fgs, bgs = load_challenge_data(args.data)
        if args.limit:
            fgs = fgs.subset(range(args.limit))
        fast = challenge(model, fgs, bgs, inference=Inference.at(device, precision), progress=True)
        seconds = time.perf_counter() - t0
        results[precision] = fast
        print(f"bgrepro {precision}: {seconds:.1f} s with decoding ({fast.seconds:.1f} s search), "
              f"{fast.composites} composites, {fast.composites / fast.seconds:.0f} composites/s, "
              f"challenge accuracy {100 * fast.challenge_accuracy:.1f}%")
        print(f"  ratio vs official method: {base.seconds / seconds:.2f}x total time, "
              f"{(fast.composites / fast.seconds) / (base.composites / base.seconds):.2f}x composites/s")
    same = results["fp32"].fooled_ids == base.fooled_ids
    print(f"fp32 fooled set identical to the official method's: {same}")
    differ = (results["fp32"].fooled != results["bf16"].fooled).sum()
    print(f"bf16 vs fp32: {differ} of {len(base.fg_ids)} foregrounds judged differently")
    if not same:
        raise SystemExit("fooled sets differ")
    torch.cuda.empty_cache() if device.type == "cuda" else None


if __name__ == "__main__":
    main()
