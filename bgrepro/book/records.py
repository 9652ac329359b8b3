"""Experiment records: every experiment is a function of a config, cached by the config's hash.

`cached(kind, config, compute)` returns the stored record of `kind` for `config` if there is one,
else runs `compute(config)` (which returns metrics) and stores a record under
`results/records/<kind>-<hash>.json` with the config, the metrics and provenance (git commit, data
manifest hash, seed, device, library versions, wall time). The hash covers the config and the
content identity of every dataset it names (the manifest's sha256, `layout.data_identity`), so data
rebuilt at the same path is recomputed, never mistaken for the old. Re-running the book recomputes
only what changed.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..io import atomic_write_text, strict_json
from ..layout import data_identity, results_dir

#: Config keys whose values are dataset folders.
DATA_KEYS = ("data", "truth", "synthetic")


def data_identities(config: dict) -> dict:
    """The content identity of every dataset a config names (None where a folder has no manifest)."""
    return {k: data_identity(config[k]) for k in DATA_KEYS if isinstance(config.get(k), str | Path)}


def config_hash(kind: str, config: dict) -> str:
    """Short stable hash of an experiment kind, its config and the content of the data it names."""
    text = json.dumps({"kind": kind, "config": config, "data": data_identities(config)}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]



def git_commit() -> str | None:
    """The current git commit of the project, if it is a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(config: dict, seconds: float, device: str | None = None) -> dict:
    """Where, when and with what a record was computed."""
    import numpy
    import torch
    import torchvision

    return {
        "git_commit": git_commit(),
        "data_manifest_sha256": data_identity(config.get("data")),
        "seed": config.get("seed"),
        "device": device or ("cuda:" + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "torchvision": torchvision.__version__, "numpy": numpy.__version__},
        "wall_seconds": round(seconds, 3),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def record_path(kind: str, config: dict, root: Path | None = None) -> Path:
    """Where the record of (kind, config) is stored."""
    return (root or results_dir()) / "records" / f"{kind}-{config_hash(kind, config)}.json"


@dataclass(frozen=True)
class Record:
    """One experiment's result: what it was asked (config), what it measured (metrics), and where,
    when and with what it ran (provenance)."""

    kind: str
    config: dict
    metrics: dict
    provenance: dict
    path: Path | None = None

    @classmethod
    def read(cls, path: Path) -> Record:
        """A stored record."""
        data = json.loads(Path(path).read_text())
        return cls(data["kind"], data["config"], data["metrics"], data["provenance"], Path(path))

    def as_dict(self) -> dict:
        """The stored form (strict JSON: no NaN)."""
        return {"kind": self.kind, "config": self.config, "metrics": self.metrics, "provenance": self.provenance}


def cached(kind: str, config: dict, compute: Callable[[dict], dict], root: Path | None = None) -> Record:
    """The record of (kind, config): loaded if stored, else computed and stored."""
    path = record_path(kind, config, root)
    if path.exists():
        return Record.read(path)
    t0 = time.perf_counter()
    metrics = strict_json(compute(config))
    release_memory()
    record = Record(kind, config, metrics, provenance(config, time.perf_counter() - t0), path)
    atomic_write_text(path, json.dumps(record.as_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n")
    return record


def release_memory() -> None:
    """Hand what a computation used back to the system: the book's kernels run one record after another. The decoded
    test sets are dropped (`evaluate.forget_test_sets`: the next record decodes its own in about a second), and glibc,
    which keeps freed blocks of torch's tensors resident otherwise (measured: 1.1 GB still resident after Grad-CAM of
    one EfficientNet-Lite on 26 photos, 0.85 GB after a trim), is trimmed where it has `malloc_trim`."""
    import ctypes
    import gc

    from ..analyses.evaluate import forget_test_sets

    forget_test_sets()
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl)
        pass


def records(root: Path | None = None) -> list[Record]:
    """Every stored record, in file-name order."""
    return [Record.read(p) for p in sorted(((root or results_dir()) / "records").glob("*.json"))]


def provenance_table(datasets: tuple[str, ...], root: Path | None = None):
    """Per experiment kind, over the records of the given datasets (a record's `data`, `synthetic` or `photos`
    folder): how many, their compute seconds, the devices and the code's git commits."""
    import pandas as pd

    wanted = {str(d) for d in datasets}
    rows = [{"kind": r.kind, "device": r.provenance["device"], "commit": (r.provenance["git_commit"] or "")[:10],
             "seconds": r.provenance["wall_seconds"]}
            for r in records(root)
            if str(r.config.get("data", r.config.get("synthetic", r.config.get("photos", "")))) in wanted]
    if not rows:
        return pd.DataFrame(columns=["records", "seconds", "device", "commits"])
    return pd.DataFrame(rows).groupby("kind").agg(
        records=("kind", "size"), seconds=("seconds", "sum"), device=("device", lambda s: ", ".join(sorted(set(s)))),
        commits=("commit", lambda s: ", ".join(sorted(set(s)))))
