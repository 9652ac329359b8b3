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
import os
import platform
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from .io import atomic_write_text
from .layout import data_identity

RESULTS_ENV = "BGREPRO_RESULTS"


def results_dir() -> Path:
    """Where records and runs live: $BGREPRO_RESULTS or ./results."""
    return Path(os.environ.get(RESULTS_ENV, "results"))


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


data_hash = data_identity


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
        "data_manifest_sha256": data_hash(config.get("data")),
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


def cached(kind: str, config: dict, compute: Callable[[dict], dict], root: Path | None = None) -> dict:
    """The record of (kind, config): loaded if stored, else computed and stored."""
    path = record_path(kind, config, root)
    if path.exists():
        return json.loads(path.read_text())
    t0 = time.perf_counter()
    metrics = compute(config)
    record = {"kind": kind, "config": config, "metrics": metrics,
              "provenance": provenance(config, time.perf_counter() - t0)}
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
