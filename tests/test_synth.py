"""The synthetic IN-9: layout, determinism, agreement of pixels/masks/boxes, habitat statistics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from bgrepro.data.synth import (
    ANNOTATION_COLUMNS,
    HABITAT_MATRIX,
    HABITATS,
    SynthConfig,
    background_only_ceiling,
    generate,
    habitat_distribution,
    habitat_quota,
    job_rng,
    plan,
    read_annotations,
    render_sample,
)
from bgrepro.in9 import CLASS_FOLDERS, NUM_CLASSES
from bgrepro.io import mask_box, read_image, read_mask
from bgrepro.layout import staging_dir

from .conftest import tree_digest


def test_official_layout(tiny_dataset, tiny_config):
    for split in ("train", "val"):
        assert sorted(p.name for p in (tiny_dataset / "original" / split).iterdir()) == list(CLASS_FOLDERS)
        assert sorted(p.name for p in (tiny_dataset / "fg_mask" / split).iterdir()) == list(CLASS_FOLDERS)
    rows = read_annotations(tiny_dataset)
    header = (tiny_dataset / "annotations.csv").read_text().splitlines()[0]
    assert tuple(header.split(",")) == ANNOTATION_COLUMNS
    assert len({r["id"] for r in rows}) == len(rows), "ids must be unique across the dataset"
    for r in rows:
        folder = CLASS_FOLDERS[r["class_index"]]
        assert r["class_folder"] == folder
        assert (tiny_dataset / "original" / r["split"] / folder / f"{r['id']}.png").is_file()
        mask = np.load(tiny_dataset / "fg_mask" / r["split"] / folder / f"{r['id']}.npy")
        assert mask.dtype == bool and mask.shape == (tiny_config.size,) * 2
        assert 0 <= r["habitat"] < len(HABITATS)


def test_class_balance(tiny_dataset, tiny_config):
    counts = Counter((r["split"], r["class_index"]) for r in read_annotations(tiny_dataset))
    for c in range(NUM_CLASSES):
        assert counts["train", c] == tiny_config.train_per_class
        assert counts["val", c] == tiny_config.test_per_class


def test_mask_box_and_pixels_agree(tiny_dataset, tiny_config):
    jobs = {j.id: j for j in plan(tiny_config)}
    size = tiny_config.size
    for r in read_annotations(tiny_dataset):
        folder = CLASS_FOLDERS[r["class_index"]]
        image = read_image(tiny_dataset / "original" / r["split"] / folder / f"{r['id']}.png")
        mask = read_mask(tiny_dataset / "fg_mask" / r["split"] / folder / f"{r['id']}.npy", image.shape[:2])
        box = (r["xmin"], r["ymin"], r["xmax"], r["ymax"])
        assert box == mask_box(mask), "the box must be the tight box of the mask"
        # the paper's filters: box <= 90% of the image, and a strip of background to tile
        x0, y0, x1, y1 = box
        assert (x1 - x0 + 1) * (y1 - y0 + 1) <= 0.9 * size * size
        assert max(x0, y0, size - 1 - x1, size - 1 - y1) >= 2
        # pixels outside the mask are the clean background, inside they are the object's
        job = jobs[r["id"]]
        redrawn, redrawn_mask, _, background = render_sample(
            job.class_index, job.habitat, size, job_rng(tiny_config, job)
        )
        np.testing.assert_array_equal(image, redrawn)
        np.testing.assert_array_equal(mask, redrawn_mask)
        np.testing.assert_array_equal(image[~mask], background[~mask])


def test_deterministic_and_independent_of_workers(tmp_path, tiny_dataset, tiny_config):
    generate(tmp_path / "again", tiny_config, workers=1, progress=False)
    assert tree_digest(tmp_path / "again") == tree_digest(tiny_dataset)


def test_seed_changes_the_data(tmp_path, tiny_config):
    a = SynthConfig(size=24, train_per_class=1, test_per_class=0, seed=1)
    b = SynthConfig(size=24, train_per_class=1, test_per_class=0, seed=2)
    generate(tmp_path / "a", a, workers=1, progress=False)
    generate(tmp_path / "b", b, workers=1, progress=False)
    assert tree_digest(tmp_path / "a") != tree_digest(tmp_path / "b")


def test_realised_habitats_match_the_declared_matrix():
    config = SynthConfig(size=32, train_per_class=200, test_per_class=60, correlation=0.8)
    probs = habitat_distribution(config.correlation)
    for split, n in (("train", 200), ("val", 60)):
        for c in range(NUM_CLASSES):
            got = np.bincount([j.habitat for j in plan(config) if j.split == split and j.class_index == c],
                              minlength=len(HABITATS))
            assert got.sum() == n
            assert np.all(np.abs(got / n - probs[c]) < 1.0 / n + 1e-12)


def _contingency(root: Path) -> np.ndarray:
    table = np.zeros((NUM_CLASSES, len(HABITATS)), dtype=int)
    for r in read_annotations(root):
        table[r["class_index"], r["habitat"]] += 1
    return table


def test_correlation_zero_is_independent_default_is_dependent(tmp_path):
    independent = SynthConfig(size=16, train_per_class=45, test_per_class=0, correlation=0.0)
    default = SynthConfig(size=16, train_per_class=45, test_per_class=0)
    generate(tmp_path / "r0", independent, workers=2, progress=False)
    generate(tmp_path / "rd", default, workers=2, progress=False)
    _, p_independent, _, _ = chi2_contingency(_contingency(tmp_path / "r0"))
    table = _contingency(tmp_path / "rd")
    _, p_default, _, _ = chi2_contingency(table[:, table.sum(axis=0) > 0])
    assert p_independent > 0.05
    assert p_default < 1e-6


def test_habitat_helpers():
    assert np.allclose(HABITAT_MATRIX.sum(axis=1), 1.0)
    assert np.allclose(habitat_distribution(0.0), 1 / 9)
    assert background_only_ceiling(0.0) == pytest.approx(1 / 9)
    ceilings = [background_only_ceiling(r) for r in (0.0, 0.5, 0.8, 1.0)]
    assert ceilings == sorted(ceilings) and ceilings[-1] < 0.6
    counts = habitat_quota(10, np.array([0.25, 0.25, 0.5]))
    assert counts.sum() == 10 and list(counts) == [3, 2, 5]


def test_jpeg_option(tmp_path):
    config = SynthConfig(size=24, train_per_class=1, test_per_class=1, fmt="jpeg")
    generate(tmp_path / "j", config, workers=1, progress=False)
    files = list((tmp_path / "j" / "original").rglob("*.jpg"))
    assert len(files) == 18
    assert read_image(files[0]).shape == (24, 24, 3)


def test_resume_after_kill_is_byte_identical(tmp_path):
    """Kill a generation part-way, run it again: same bytes as an uninterrupted run."""
    args = ["--profile", "tiny", "--size", "32", "--train-per-class", "60", "--test-per-class", "0",
            "--workers", "1"]
    killed = tmp_path / "killed"
    staging = staging_dir(killed)  # written there, renamed to --out when complete
    proc = subprocess.Popen([sys.executable, "-m", "bgrepro", "synth", "--out", str(killed), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(staging.rglob("*.png"))) < 20:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(staging.rglob("*.png")))
    assert 0 < done_before < 540, "the kill must land part-way through"
    assert not killed.exists() and not (staging / "annotations.csv").exists()
    subprocess.run([sys.executable, "-m", "bgrepro", "synth", "--out", str(killed), *args], check=True,
                   capture_output=True)
    clean = tmp_path / "clean"
    subprocess.run([sys.executable, "-m", "bgrepro", "synth", "--out", str(clean), *args], check=True,
                   capture_output=True)
    digest = tree_digest(killed)
    assert not [k for k in digest if k.endswith(".part")], "no half-written file may remain"
    assert digest == tree_digest(clean)


def test_refuses_to_mix_two_datasets(tmp_path):
    generate(tmp_path / "d", SynthConfig(size=16, train_per_class=1, test_per_class=0), progress=False)
    with pytest.raises(ValueError, match="synthetic dataset made with other arguments"):
        generate(tmp_path / "d", SynthConfig(size=16, train_per_class=1, test_per_class=0, seed=3),
                 progress=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(size=8), "at least 16"),
        (dict(train_per_class=-1), "non-negative"),
        (dict(correlation=1.5), r"\[0, 1\]"),
        (dict(fmt="gif"), "png or jpeg"),
        (dict(train_per_class=0, test_per_class=0), "nothing to generate"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    base = dict(size=32, train_per_class=1, test_per_class=1)
    with pytest.raises(ValueError, match=message):
        SynthConfig(**{**base, **kwargs})
