"""Shared fixtures: small synthetic datasets made once per test session."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs the suite in one worker per core (pytest-xdist): one thread each, for the tests and the
    # commands they start (OpenMP threads oversubscribed on shared cores spin and slow every worker down)
    os.environ["OMP_NUM_THREADS"] = "1"

from bgrepro.data.synth import SynthConfig, generate  # noqa: E402 (after the thread count, which torch reads once)


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under root, by relative path (the dataset's identity)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(root).rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session", autouse=True)
def _results_outside_the_checkout(tmp_path_factory):
    """What commands write into bgrepro's results folder by default (eval records, cached experiments) goes to a
    temporary folder, never into the checkout the tests run in."""
    saved = os.environ.get("BGREPRO_RESULTS")
    os.environ["BGREPRO_RESULTS"] = str(tmp_path_factory.mktemp("results"))
    yield
    if saved is None:
        os.environ.pop("BGREPRO_RESULTS", None)
    else:
        os.environ["BGREPRO_RESULTS"] = saved


_MADE: dict[str, object] = {}


def once(name: str, make):
    """What `make()` returns, made once per test process. pytest-xdist tears a worker's session fixtures down
    whenever its queue of tests runs dry, and pytest would make them again; what they made lies in the session's
    temporary folder, kept to the end, so it is reused instead."""
    if name not in _MADE:
        _MADE[name] = make()
    return _MADE[name]


@pytest.fixture(scope="session")
def tiny_config() -> SynthConfig:
    return SynthConfig.from_profile("tiny", seed=7)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory, tiny_config) -> Path:
    def make() -> Path:
        root = tmp_path_factory.mktemp("synth") / "tiny"
        generate(root, tiny_config, workers=2, progress=False)
        return root

    return once("tiny_dataset", make)


@pytest.fixture(scope="session")
def tiny_variants(tmp_path_factory, tiny_dataset) -> Path:
    """All eight variants of the tiny synthetic dataset (official layout)."""
    from bgrepro.data.build import build
    from bgrepro.data.sources import SyntheticSource

    def make() -> Path:
        out = tmp_path_factory.mktemp("variants") / "tiny"
        build(SyntheticSource(tiny_dataset), out, seed=0, workers=1, progress=False)
        return out

    return once("tiny_variants", make)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_variants) -> Path:
    """A SmallCNN trained briefly on the tiny variants' Original set (a real, if weak, classifier)."""
    from bgrepro.training.classifier import TrainConfig, train

    config = TrainConfig.from_profile(tiny_variants, "tiny", epochs=3, seed=0)
    return once("tiny_checkpoint", lambda: train(config, tmp_path_factory.mktemp("tiny-run"), progress=False))


def load_model(path, arch=None):
    """A checkpoint's network and metadata (`bgrepro.registry.load`), as the tests use them."""
    from bgrepro import registry

    loaded = registry.load(path, arch=arch)
    return loaded.net, loaded.meta


def model_for_data(data, spec, arch=None, offline=False, **options):
    """A model in any format adapted to a dataset's classes and image size (as the commands adapt it)."""
    from bgrepro import registry
    from bgrepro.data.datasets import image_side
    from bgrepro.layout import class_folders

    return registry.load(spec, arch, offline).for_data(list(class_folders(data)), image_side(data), **options)
