"""How the book's trainings use the cores (issue 42, "measure first"): training images per second of each default
network of a profile at 1 and at 2 threads, alone, and with a second identical training beside it in another
process (each at 1 thread, and each at 2: oversubscribed on 2 cores).

Each measurement is a process of its own that loads the profile's Original training set, builds the network as
training does (channels-last, SGD with momentum), runs `--warmup` batches, then times `--batches` batches of the
training step (forward, cross-entropy, backward, step) at the profile's batch size. Beside: two such processes
start together and each reports its own rate; the table gives their sum (the machine's throughput) and the
speed-up over one training at 2 threads alone.

    python bench/threads.py --data data/variants-smoke-grabcut --profile smoke --out bench/results/threads.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path


def worker(data: Path, arch: str, threads: int, batch_size: int, warmup: int, batches: int) -> float:
    """Training images per second of one network at `threads` threads (this process)."""
    import torch
    import torch.nn.functional as F

    from bgrepro.data.datasets import BatchStream, load_variant
    from bgrepro.registry import create_model

    torch.set_num_threads(threads)
    train = load_variant(data, "original", "train")
    stream = BatchStream(train, batch_size, device="cpu", train=True)
    torch.manual_seed(0)
    net = create_model(arch, len(train.classes)).to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    seen, t0, epoch = 0, None, 0
    while True:
        for k, (x, y) in enumerate(stream.epoch(0, epoch)):
            if k == warmup and t0 is None:
                t0 = time.perf_counter()
            loss = F.cross_entropy(net(x.contiguous(memory_format=torch.channels_last)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if t0 is not None:
                seen += len(y)
                if seen >= batches * batch_size:
                    return seen / (time.perf_counter() - t0)
        epoch += 1


def _spawn(args, arch: str, threads: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return subprocess.Popen([sys.executable, __file__, "--worker", arch, "--threads", str(threads), "--data",
                             str(args.data), "--batch-size", str(args.batch_size), "--warmup", str(args.warmup),
                             "--batches", str(args.batches)], stdout=subprocess.PIPE, text=True, env=env)


def _rates(args, arch: str, threads: int, copies: int) -> list[float]:
    procs = [_spawn(args, arch, threads) for _ in range(copies)]
    return [float(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--archs", default=None, help="comma-separated (default: the profile's zoo)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.worker:
        print(worker(args.data, args.worker, args.threads, args.batch_size, args.warmup, args.batches))
        return
    from bgrepro.profiles import get_profile

    p = get_profile(args.profile)
    args.batch_size = args.batch_size or p.batch_size
    archs = args.archs.split(",") if args.archs else list(dict.fromkeys((p.arch, *p.zoo_archs)))
    rows = {}
    for arch in archs:
        one, two = _rates(args, arch, 1, 1)[0], _rates(args, arch, 2, 1)[0]
        beside1, beside2 = _rates(args, arch, 1, 2), _rates(args, arch, 2, 2)
        rows[arch] = {"alone_1_thread": round(one, 1), "alone_2_threads": round(two, 1),
                      "second_thread_gain": round(two / one, 2),
                      "beside_1_thread_each": [round(r, 1) for r in beside1],
                      "beside_2_threads_each": [round(r, 1) for r in beside2],
                      "two_side_by_side_speedup": round(sum(beside1) / two, 2)}
        print(f"{arch:<18} alone 1t {one:7.1f}  2t {two:7.1f}  beside 1t+1t {sum(beside1):7.1f} "
              f"({sum(beside1) / two:.2f}x of 2t alone)  beside 2t+2t {sum(beside2):7.1f}", flush=True)
    if args.out:
        entry = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "profile": p.name,
                 "batch_size": args.batch_size, "batches": args.batches, "cores": os.cpu_count(),
                 "python": platform.python_version(), "images_per_second": rows}
        entries = json.loads(args.out.read_text()) if args.out.exists() else []
        args.out.write_text(json.dumps([*entries, entry], indent=2) + "\n")


if __name__ == "__main__":
    main()
