"""The variant builder: manifest, pairings, exact composites, round trip, resume after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bgrepro import variants
from bgrepro.data import composite
from bgrepro.data.build import MANIFEST_COLUMNS, build, pair_backgrounds, read_manifest
from bgrepro.data.sources import IN9Source, SyntheticSource
from bgrepro.in9 import CLASS_FOLDERS
from bgrepro.io import read_image, read_mask
from bgrepro.layout import staging_dir
from bgrepro.variants import NAMES as VARIANTS

from .conftest import tree_digest


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_dataset):
    out = tmp_path_factory.mktemp("built") / "in9"
    report = build(SyntheticSource(tiny_dataset), out, seed=3, workers=2, progress=False)
    return out, report


def test_manifest_lists_every_output(built, tiny_config):
    out, report = built
    header = (out / "manifest.csv").read_text().splitlines()[0]
    assert tuple(header.split(",")) == MANIFEST_COLUMNS
    rows = read_manifest(out)
    per_split = {"train": 9 * tiny_config.train_per_class, "val": 9 * tiny_config.test_per_class}
    counts = Counter((r["variant"], r["split"]) for r in rows)
    for variant in (*VARIANTS, "fg_mask"):
        for split, n in per_split.items():
            assert counts[variant, split] == n, (variant, split)
    for r in rows:
        path = out / r["path"]
        assert path.is_file(), r["path"]
        assert path.parts[-4:-1] == (r["variant"], r["split"], CLASS_FOLDERS[int(r["label"])])
    files = {p.relative_to(out).as_posix() for v in (*VARIANTS, "fg_mask") for p in (out / v).rglob("*") if p.is_file()}
    assert files == {r["path"] for r in rows}
    assert report.written == len(rows) and not report.rejections


def test_pairings_follow_the_paper(built):
    rows = read_manifest(built[0])
    for r in rows:
        fg_class, bg_class = r["fg_class"], r["bg_class"]
        if r["variant"] == "mixed_next":
            assert int(bg_class) == (int(fg_class) + 1) % 9
        if r["variant"] == "mixed_same":
            assert bg_class == fg_class and r["bg_id"] != r["fg_id"]
        if r["variant"] == "mixed_rand":
            assert r["bg_id"] != r["fg_id"]
        if r["variant"].startswith("mixed"):
            assert r["label"] == fg_class and r["bg_id"].startswith(r["split"])
        if r["variant"] in ("only_bg_b", "only_bg_t", "no_fg"):
            assert r["fg_id"] == "" and r["label"] == bg_class
        if r["variant"] == "only_fg":
            assert r["bg_id"] == "" and r["label"] == fg_class


def test_mixed_files_keep_the_foreground_exactly(built, tiny_dataset):
    out, _ = built
    rows = [r for r in read_manifest(out) if r["variant"].startswith("mixed")]
    boxes = {s.id: s.box for split in ("train", "val") for s in map(SyntheticSource(tiny_dataset).load,
                                                                    SyntheticSource(tiny_dataset).records(split))}

    def original(sample_id, label, split):
        return read_image(out / "original" / split / CLASS_FOLDERS[int(label)] / f"{sample_id}.png")

    for r in rows:
        composite_image = read_image(out / r["path"])
        fg = original(r["fg_id"], r["fg_class"], r["split"])
        mask = read_mask(out / "fg_mask" / r["split"] / CLASS_FOLDERS[int(r["fg_class"])] / f"{r['fg_id']}.npy",
                         fg.shape[:2])
        background = composite.only_bg_t(original(r["bg_id"], r["bg_class"], r["split"]), boxes[r["bg_id"]])
        np.testing.assert_array_equal(composite_image[mask], fg[mask])
        np.testing.assert_array_equal(composite_image[~mask], background[~mask])


def test_every_composite_names_the_source_files_of_its_pair(built, tiny_dataset):
    """The manifest's fg_source and bg_source lead from any composite back to its two source images (issue 32):
    the foreground's source image shows through the mask exactly, and the background's gives the rest."""
    out, _ = built
    rows = [r for r in read_manifest(out) if r["variant"] == "mixed_rand" and r["split"] == "val"]
    for r in rows[:12]:
        fg_source, bg_source = tiny_dataset / r["fg_source"], tiny_dataset / r["bg_source"]
        assert fg_source.is_file() and bg_source.is_file() and not r["fg_source"].startswith("/")
        assert fg_source.stem == r["fg_id"] and bg_source.stem == r["bg_id"]
        composite_image = read_image(out / r["path"])
        mask = read_mask(out / "fg_mask" / "val" / CLASS_FOLDERS[int(r["fg_class"])] / f"{r['fg_id']}.npy",
                         composite_image.shape[:2])
        np.testing.assert_array_equal(composite_image[mask], read_image(fg_source)[mask])
    singles = [r for r in read_manifest(out) if r["variant"] == "only_fg"]
    assert all(r["fg_source"] and not r["bg_source"] for r in singles)


def test_pairings_are_deterministic_from_the_seed():
    samples = [{"split": "val", "id": f"i{k}", "label": k % 3} for k in range(30)]
    for variant in ("mixed_same", "mixed_rand", "mixed_next"):
        a = pair_backgrounds(samples, variant, seed=1, num_classes=3)
        assert a == pair_backgrounds(samples, variant, seed=1, num_classes=3)
        assert a != pair_backgrounds(samples, variant, seed=2, num_classes=3)
    # every class too small is named in the one error
    with pytest.raises(ValueError, match=r"at least two images of each class; 3 class\(es\) have one: 'a', 'b', 'c'"):
        pair_backgrounds(samples[:3], "mixed_same", seed=0, num_classes=3, class_names=("a", "b", "c"))
    with pytest.raises(ValueError, match=r"1 class\(es\) have one: 'c'"):
        pair_backgrounds(samples[:5], "mixed_same", seed=0, num_classes=3, class_names=("a", "b", "c"))


def test_round_trip_through_the_in9_source(built, tiny_dataset):
    synthetic, official = SyntheticSource(tiny_dataset), IN9Source(built[0])
    assert official.splits() == ["train", "val"]
    for split in ("train", "val"):
        records = official.records(split)
        assert [r.id for r in records] == [r.id for r in synthetic.records(split)]
        for ours, theirs in zip(map(official.load, records), map(synthetic.load, synthetic.records(split))):
            assert ours.label == theirs.label and ours.box == theirs.box
            np.testing.assert_array_equal(ours.image, theirs.image)
            np.testing.assert_array_equal(ours.mask, theirs.mask)


def test_subset_of_variants_and_splits(tmp_path, tiny_dataset):
    report = build(SyntheticSource(tiny_dataset), tmp_path / "b", variants=variants.parse("only_fg,mixed_next"),
                   splits=("val",), workers=1, progress=False)
    assert {v for v, _ in report.counts} == {"fg_mask", "original", "only_fg", "mixed_next"}
    assert not (tmp_path / "b" / "only_bg_t").exists() and not (tmp_path / "b" / "original" / "train").exists()
    with pytest.raises(ValueError, match="unknown variant 'mixed_up'"):
        variants.parse("original,mixed_up")


def test_killed_build_resumes_to_identical_tree(tmp_path):
    from bgrepro.data.synth import SynthConfig, generate

    src = tmp_path / "src"
    generate(src, SynthConfig(size=32, train_per_class=40, test_per_class=0, seed=5), workers=2, progress=False)
    cmd = [sys.executable, "-m", "bgrepro", "build", "--source", "synthetic", "--in", str(src), "--workers", "1"]
    killed = tmp_path / "killed"
    staging = staging_dir(killed)  # the build is written there, and renamed to --out when complete
    proc = subprocess.Popen([*cmd, "--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and sum(1 for _ in staging.rglob("*.png")) < 300:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not killed.exists(), "a killed build leaves --out untouched"
    assert not (staging / "manifest.csv").exists(), "the kill must land before the build finished"
    subprocess.run([*cmd, "--out", str(killed)], check=True, capture_output=True)
    assert not staging.exists()
    clean = tmp_path / "clean"
    subprocess.run([*cmd, "--out", str(clean)], check=True, capture_output=True)
    digest = tree_digest(killed)
    assert not [k for k in digest if k.endswith(".part")]
    assert digest == tree_digest(clean)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=2, max_size=40), st.integers(0, 10_000))
def test_pairing_rules_hold_for_any_labels(labels, seed):
    samples = [{"split": "train", "id": f"i{k}", "label": c} for k, c in enumerate(labels)]
    counts = Counter(labels)
    for variant in ("mixed_same", "mixed_rand", "mixed_next"):
        impossible = (variant == "mixed_same" and min(counts.values()) < 2) or (
            variant == "mixed_next" and any(counts[(c + 1) % 4] == 0 for c in counts))
        if impossible:
            with pytest.raises(ValueError, match=variant):
                pair_backgrounds(samples, variant, seed, num_classes=4)
            continue
        backgrounds = pair_backgrounds(samples, variant, seed, num_classes=4)
        for fg, bg in zip(samples, backgrounds):
            if variant == "mixed_same":
                assert bg["label"] == fg["label"] and bg["id"] != fg["id"]
            elif variant == "mixed_next":
                assert bg["label"] == (fg["label"] + 1) % 4
            else:
                assert bg["id"] != fg["id"]


def test_parallel_build_after_opencv_threads_started(tmp_path, tiny_dataset):
    """Forked workers deadlocked once OpenCV's thread pool ran in the parent; spawned ones must not."""
    script = f"""
import cv2, numpy as np
from bgrepro.data.build import build
from bgrepro.data.sources import SyntheticSource
cv2.resize(np.zeros((600, 600), np.float32), (1200, 1200))
build(SyntheticSource({str(tiny_dataset)!r}), {str(tmp_path / 'a')!r}, workers=1, progress=False)
build(SyntheticSource({str(tiny_dataset)!r}), {str(tmp_path / 'b')!r}, workers=2, progress=False)
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120, capture_output=True)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")


def test_synthetic_masks_from_grabcut_like_the_paper(tmp_path, tiny_dataset):
    report = build(SyntheticSource(tiny_dataset, fg_masks="grabcut"), tmp_path / "g", variants=("no_fg",),
                   workers=1, progress=False)
    exact = SyntheticSource(tiny_dataset)
    ious = []
    for r in (r for r in read_manifest(tmp_path / "g") if r["variant"] == "fg_mask"):
        grab = np.load(tmp_path / "g" / r["path"])
        sample = exact.load(next(x for x in exact.records(r["split"]) if x.id == r["fg_id"]))
        x0, y0, x1, y1 = sample.box
        assert not grab[:y0].any() and not grab[y1 + 1:].any() and not grab[:, :x0].any() and not grab[:, x1 + 1:].any()
        ious.append((grab & sample.mask).sum() / (grab | sample.mask).sum())
    assert len(ious) + sum(report.rejections.values()) == 81
    assert np.mean(ious) > 0.6
    with pytest.raises(ValueError, match="exact or grabcut"):
        SyntheticSource(tiny_dataset, fg_masks="magic")


def test_a_rebuild_with_other_arguments_is_refused_or_replaced_whole(tmp_path, tiny_dataset):
    """Never a mix: another seed (or other masks) into a built --out is refused naming the argument;
    with overwrite the folder is replaced by a complete build, identical to a fresh one."""
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    build(SyntheticSource(tiny_dataset), out, seed=0, workers=1, progress=False)
    before = tree_digest(out)
    with pytest.raises(ValueError, match="seed"):
        build(SyntheticSource(tiny_dataset), out, seed=1, workers=1, progress=False)
    with pytest.raises(ValueError, match="fg_masks"):
        build(SyntheticSource(tiny_dataset, fg_masks="grabcut"), out, seed=0, workers=1, progress=False)
    assert tree_digest(out) == before
    build(SyntheticSource(tiny_dataset), out, seed=1, workers=1, progress=False, overwrite=True)
    build(SyntheticSource(tiny_dataset), fresh, seed=1, workers=1, progress=False)
    assert tree_digest(out) == tree_digest(fresh) != before
    assert not list(tmp_path.glob(".*"))  # no staging or replaced folder left behind
    # the same arguments again: nothing to do, nothing changes
    report = build(SyntheticSource(tiny_dataset), out, seed=1, workers=1, progress=False)
    assert report.written == 0 and tree_digest(out) == tree_digest(fresh)


def test_the_builders_worker_processes_do_not_load_torch():
    """A build's (and the generator's) spawned workers import the module of what they run; torch would cost each
    of them about 500 MB resident beside the chapter's kernel (the real-photo chapter's peak)."""
    code = ("import sys, bgrepro.data.build, bgrepro.data.synth, bgrepro.data.parallel; "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False"]
