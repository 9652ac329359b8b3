"""Collections of any size: the sampled challenge (intervals, bounds, backgrounds streamed in chunks) and
every heavy stage under torchrun with 2 gloo processes giving what one process gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from bgrepro.analyses.adversarial import (
    SearchSettings,
    budget_sample,
    challenge,
    clopper_pearson,
    load_challenge_data,
    sample_foregrounds,
    sample_per_class,
)
from bgrepro.cli import main
from bgrepro.data.datasets import ImageListing
from tests.conftest import load_model, tree_digest


# ------------------------------------------------------------------------------------------ sampled challenge
def test_clopper_pearson_known_answers():
    assert clopper_pearson(0, 10) == pytest.approx([0.0, 0.30850], abs=1e-5)
    assert clopper_pearson(5, 10) == pytest.approx([0.18709, 0.81291], abs=1e-5)
    assert clopper_pearson(10, 10) == pytest.approx([0.69150, 1.0], abs=1e-5)


def test_samples_are_stratified_seeded_and_budgeted():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    pick = sample_foregrounds(labels, 10, seed=3)
    assert np.bincount(labels[pick]).tolist() == [5, 3, 2]  # each class its share
    assert len(set(pick.tolist())) == 10 and (np.diff(pick) > 0).all()
    assert (sample_foregrounds(labels, 10, seed=3) == pick).all()
    assert not (sample_foregrounds(labels, 10, seed=4) == pick).all()
    assert (sample_foregrounds(labels, 500) == np.arange(100)).all()
    assert np.bincount(labels[sample_per_class(labels, 25)]).tolist() == [25, 25, 20]  # all of a smaller class
    assert budget_sample(100, 100, 3, 10_000) == (None, None)  # fits: the whole challenge
    assert budget_sample(1000, 100, 3, 50_000) == (500, None)  # foregrounds sampled first
    fgs, per_class = budget_sample(100_000, 100_000, 10, 1_000_000)  # then the backgrounds too
    assert fgs == 200 and per_class == 500 and fgs * per_class * 10 <= 1_000_000


def test_the_budget_is_never_exceeded_and_ties_follow_the_seed():
    for n_fg, n_bg, k, budget in [(5000, 5000, 9, 1_000_000), (100_000, 100_000, 10, 1_000), (50, 50, 9, 20),
                                  (4050, 4050, 9, 25_000_000), (300, 10_000, 3, 10_000)]:
        fgs, per_class = budget_sample(n_fg, n_bg, k, budget)
        cost = (fgs or n_fg) * (n_bg if per_class is None else min(n_bg, per_class * k))
        assert cost <= budget or (fgs == 1 and per_class == 1), (n_fg, n_bg, k, budget, fgs, per_class)
    labels = np.repeat(np.arange(9), 10)  # equal classes: which get the leftover foregrounds is the seed's
    picked = {tuple(np.unique(labels[sample_foregrounds(labels, 5, seed=s)])) for s in range(20)}
    assert len(picked) > 1 and all(len(p) == 5 for p in picked)


def test_streamed_backgrounds_give_the_same_fooled_set(tiny_variants, tiny_checkpoint):
    model, _ = load_model(tiny_checkpoint)
    fgs, bgs = load_challenge_data(tiny_variants)
    assert not isinstance(bgs, ImageListing)
    exact = challenge(model, fgs, bgs, progress=False)
    fgs2, listing = load_challenge_data(tiny_variants, stream=True)
    assert isinstance(listing, ImageListing)
    streamed = challenge(model, fgs2, listing, progress=False, settings=SearchSettings(chunk=7))
    assert streamed.fooled_ids == exact.fooled_ids and streamed.undecided == 0
    every = challenge(model, fgs, bgs, all_pairs=True, progress=False)
    every_streamed = challenge(model, fgs2, listing, all_pairs=True, progress=False,
                               settings=SearchSettings(chunk=5))
    assert (every.pairs == every_streamed.pairs).all()
    assert every.fooled_ids == exact.fooled_ids


def test_a_sample_interval_covers_the_whole_challenge_and_fewer_backgrounds_bound_it(tiny_variants, tiny_checkpoint):
    model, _ = load_model(tiny_checkpoint)
    whole = challenge(model, *load_challenge_data(tiny_variants), progress=False)
    assert whole.interval is None and not whole.upper_bound
    n = len(whole.fg_ids)
    sampled = challenge(model, *load_challenge_data(tiny_variants, foregrounds=n // 2, seed=1), progress=False)
    assert len(sampled.fg_ids) == n // 2 and sampled.foregrounds_total == n
    lo, hi = sampled.interval
    assert lo <= whole.challenge_accuracy <= hi
    # a sampled foreground is fooled exactly when it is in the whole challenge
    assert set(sampled.fooled_ids) == set(sampled.fg_ids) & set(whole.fooled_ids)
    both = challenge(model, *load_challenge_data(tiny_variants, foregrounds=n // 2, backgrounds=1, seed=1),
                     progress=False)
    assert "against the backgrounds tried" in both.reading() and "upper bound" in both.reading()
    few = challenge(model, *load_challenge_data(tiny_variants, backgrounds=1, seed=1), progress=False)
    assert few.upper_bound and len(few.bg_ids) == len(few.classes)
    assert few.challenge_accuracy >= whole.challenge_accuracy
    assert "upper bound" in few.to_json()["reading"] and few.to_json()["upper_bound"] is True


def test_the_challenge_command_says_what_it_sampled(tiny_variants, tiny_checkpoint, tmp_path, capsys):
    assert main(["challenge", "--data", str(tiny_variants), "--checkpoint", str(tiny_checkpoint),
                 "--foregrounds", "10", "--backgrounds", "2", "--out", str(tmp_path / "c")]) == 0
    printed = capsys.readouterr().out
    assert "at most" in printed and "upper bound" in printed and "Clopper-Pearson" in printed
    saved = json.loads((tmp_path / "c" / "challenge.json").read_text())
    assert saved["n_foregrounds"] == 10 and saved["upper_bound"] and len(saved["ci95"]) == 2


# ------------------------------------------------------------------------------------------------ torchrun
def torchrun(*args: str) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node 2 -m bgrepro ARGS` on the CPU (gloo)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "bgrepro", *args], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[:6000]
    return done


def _files(root) -> dict[str, str]:
    """Every file's sha256 but the ownership marker's (which names the output's own path)."""
    return _without(tree_digest(root), ".bgrepro.json")


def _without(record: dict, *keys: str) -> dict:
    return {k: v for k, v in record.items() if k not in keys}


def test_every_heavy_stage_under_torchrun_equals_one_process(tiny_variants, tiny_checkpoint, tmp_path):
    data, ckpt = str(tiny_variants), str(tiny_checkpoint)
    one, two = tmp_path / "one", tmp_path / "two"
    timing = ("seconds", "composites")
    # the challenge: in memory, and every pair with the backgrounds streamed in chunks
    for name, extra in (("plain", ()), ("pairs", ("--all-pairs", "--chunk", "7"))):
        assert main(["challenge", "--data", data, "--checkpoint", ckpt, "--out", str(one / name), "--json",
                     *extra]) == 0
        torchrun("challenge", "--data", data, "--checkpoint", ckpt, "--out", str(two / name), "--json", *extra)
        a, b = (json.loads((root / name / "challenge.json").read_text()) for root in (one, two))
        assert _without(a, *timing) == _without(b, *timing)
    assert a["all_pairs"] and sum(a["background_counts"]) > 0
    # eval
    assert main(["eval", "--data", data, "--checkpoint", ckpt, "--record", str(one / "eval.json")]) == 0
    torchrun("eval", "--data", data, "--checkpoint", ckpt, "--record", str(two / "eval.json"))
    a, b = (json.loads((root / "eval.json").read_text()) for root in (one, two))
    assert a == b and a["bg_gap"] is not None
    # saliency: maps and shares
    assert main(["saliency", "--data", data, "--checkpoint", ckpt, "--out", str(one / "sal"), "--json"]) == 0
    torchrun("saliency", "--data", data, "--checkpoint", ckpt, "--out", str(two / "sal"), "--json")
    a, b = (json.loads((root / "sal" / "saliency.json").read_text()) for root in (one, two))
    assert a == b and a["foreground_share"] is not None
    # localize: w*, both methods' metrics, and the masks written
    args = ["localize", "--data", data, "--backbone", f"checkpoint:{ckpt}", "--class-wise", "labels", "--json"]
    assert main([*args, "--out", str(one / "loc"), "--write-masks", str(one / "masks")]) == 0
    torchrun(*args, "--out", str(two / "loc"), "--write-masks", str(two / "masks"))
    a, b = (json.loads((root / "loc" / "localize.json").read_text()) for root in (one, two))
    assert a == b and a["caam"]
    w1, w2 = (torch.load(root / "loc" / "rps.pt", weights_only=True) for root in (one, two))
    assert torch.equal(w1["w"], w2["w"]) and torch.equal(w1["w_class"], w2["w_class"])
    assert _files(one / "masks") == _files(two / "masks") and list((one / "masks").rglob("*.npy"))


def test_build_under_torchrun_writes_the_same_files(tiny_dataset, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["build", "--source", "synthetic", "--in", str(tiny_dataset), "--out", str(one), "--workers", "1"]) == 0
    done = torchrun("build", "--source", "synthetic", "--in", str(tiny_dataset), "--out", str(two), "--workers", "1")
    assert done.stdout.count("built ") == 1  # one summary, from rank 0
    a, b = _files(one), _files(two)
    assert a == b and any(k.startswith("mixed_rand/") for k in a)


def test_report_under_torchrun_equals_one_process(tmp_path):
    from tests.test_report import make_photos

    photos = make_photos(tmp_path / "photos", per_class=4)
    boxes = str(photos.parent / "boxes.csv")
    common = ["--images", str(photos), "--boxes", boxes, "--size", "32", "--profile", "tiny", "--epochs", "1",
              "--bootstrap", "100", "--val-fraction", "0.5"]
    assert main(["report", *common, "--out", str(tmp_path / "trained")]) == 0
    model = tmp_path / "trained" / "models" / "original-seed0" / "checkpoint.pt"
    given = [*common, "--checkpoint", str(model), "--challenge-budget", "20"]
    assert main(["report", *given, "--out", str(tmp_path / "one")]) == 0
    torchrun("report", *given, "--out", str(tmp_path / "two"))
    a, b = (json.loads((tmp_path / root / "report.json").read_text()) for root in ("one", "two"))
    assert _without(a, "seconds", "arguments") == _without(b, "seconds", "arguments")
    assert a["challenge"]["backgrounds_per_class"] == 1 and "budget of 20 composites" in a["challenge"]["reading"]
    assert (tmp_path / "two" / "report.html").is_file()


def test_a_bad_input_on_one_rank_ends_as_one_process_would(tmp_path):
    """`bgrepro --processes 2`: a corrupt photo in the second rank's block ends the command with that rank's one
    line naming the file, exit code 2: no launcher report, no traceback, no line from the rank whose peer left."""
    from tests.test_bad_inputs import _folder_build, _with_masks

    _with_masks(tmp_path)
    bad = tmp_path / "photos" / "val" / "pear" / "img_3.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    env.pop("OMP_NUM_THREADS", None)
    done = subprocess.run([sys.executable, "-m", "bgrepro", "--processes", "2", *_folder_build(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=600)
    lines = [ln for ln in done.stderr.splitlines() if ln.strip() and "it/s]" not in ln and "%|" not in ln]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("bgrepro build (rank 1): error: ") and str(bad) in lines[0]
    assert not (tmp_path / "out").exists()
