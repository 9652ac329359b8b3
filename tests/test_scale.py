"""Scale: a set too large for memory is decoded into a memory map, a set too large for the device is
streamed batch by batch, and both give exactly the batches of the in-memory route; the GPU benchmark
runs end to end on a handful of images on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bgrepro.data.datasets import BatchStream, load_variant
from bgrepro.inference import Inference

ROOT = Path(__file__).resolve().parent.parent


def test_memory_mapped_decoding_gives_the_same_images_and_is_reused(tmp_path, tiny_variants, monkeypatch):
    in_memory = load_variant(tiny_variants, "original", "train", with_masks=True)
    monkeypatch.setenv("BGREPRO_RESULTS", str(tmp_path))
    monkeypatch.setenv("BGREPRO_HOST_CACHE_BYTES", "0")  # nothing fits: decode into a file
    mapped = load_variant(tiny_variants, "original", "train", with_masks=True)
    files = list((tmp_path / "cache").glob("images-*.u8"))
    assert len(files) == 1 and not list((tmp_path / "cache").glob(".*part"))
    assert torch.equal(mapped.images, in_memory.images) and torch.equal(mapped.masks, in_memory.masks)
    stamp = files[0].stat().st_mtime_ns
    again = load_variant(tiny_variants, "original", "train")
    assert torch.equal(again.images, in_memory.images) and files[0].stat().st_mtime_ns == stamp  # decoded once


@pytest.mark.parametrize("mixed_rand", [False, True])
def test_streaming_batches_equal_resident_batches(tiny_variants, mixed_rand):
    data = load_variant(tiny_variants, "original", "train", with_masks=True)
    resident = BatchStream(data, 5, mixed_rand=mixed_rand, resident=True)
    streamed = BatchStream(data, 5, mixed_rand=mixed_rand, resident=False)
    assert not streamed.resident
    pairs = list(zip(resident.epoch(7, 2), streamed.epoch(7, 2), strict=True))
    assert len(pairs) == len(resident)
    for (x1, y1), (x2, y2) in pairs:
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_device_budget_decides_residency(tiny_variants, monkeypatch):
    data = load_variant(tiny_variants, "original", "train")
    assert BatchStream(data, 4, device="cpu").resident  # the CPU reads the host copy in place
    monkeypatch.setenv("BGREPRO_DEVICE_CACHE_BYTES", "0")
    meta = torch.device("meta")  # a device with no room: the set must stream
    assert not BatchStream(data, 4, device=meta, resident=None).resident


def test_inference_policy_is_decided_once():
    cpu = Inference.at("cpu")
    assert (cpu.device.type, cpu.precision, cpu.batch_size) == ("cpu", "fp32", 256)
    assert Inference.at("cpu", "auto").precision == "fp32"
    with pytest.raises(ValueError, match="precision"):
        Inference.at("cpu", "int3")
    with pytest.raises(ValueError, match="batch size"):
        Inference.at("cpu", batch_size=0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            Inference.at("cuda")
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    small = Inference.at("cpu", batch_size=3)
    assert torch.equal(small.predict(model, images), Inference.at("cpu").predict(model, images))


def test_a_time_limited_challenge_says_it_is_incomplete_and_keeps_a_lower_bound(tiny_variants, tiny_checkpoint):
    from bgrepro.analyses.adversarial import SearchSettings, challenge, load_challenge_data
    from tests.conftest import load_model

    model, _ = load_model(tiny_checkpoint)
    fgs, bgs = load_challenge_data(tiny_variants)
    exact = challenge(model, fgs, bgs, progress=False, settings=SearchSettings(pilot=0))
    cut = challenge(model, fgs, bgs, progress=False, settings=SearchSettings(pilot=0, time_limit=0.0))
    assert exact.undecided == 0 and exact.to_json()["complete"] is True
    assert cut.undecided > 0 and cut.to_json()["complete"] is False
    assert not (cut.fooled & ~exact.fooled).any()  # what it found fooled is fooled: a lower bound


def test_the_gpu_benchmark_rehearsal_runs_every_stage_within_its_budget(tmp_path):
    """`bench/gpu.py --lease` on the CPU at check sizes, every stage (the lease's and `train`): the command a GPU
    lease runs, end to end, in one run (it and the plain benchmark share every stage's code)."""
    out = tmp_path / "lease.json"
    stages = ["data", "train", "claims", "challenge", "mixed_rand", "saliency", "localize"]
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--lease", "--scale", "check",
                           "--budget", "300", "--max-epochs", "2", "--stages", ",".join(stages),
                           "--work", str(tmp_path / "work"), "--out", str(out), "--commit", "abc123"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["provenance"]["commit"] == "abc123" and result["provenance"]["torch"] == torch.__version__
    assert result["lease"]["stages"] == stages and 0 < result["lease"]["seconds"] <= 300
    assert result["data"]["images"] == 9 * (4 + 2) and result["data"]["build_test_files"] == 9 * 2 * 9
    train = result["train"]
    for key in ("images_per_second", "baseline_images_per_second", "gpu_only_images_per_second"):
        assert train[key] > 0
    assert train["images"] == 9 * 4 and train["image_size"] == 64
    claims = result["claims"]
    assert 1 <= claims["plan"]["epochs"] <= 2 and claims["bg_gap"]["epochs"] == claims["plan"]["epochs"]
    assert set(claims["bg_gap"]["accuracy"]) >= {"original", "mixed_same", "mixed_rand"}
    challenge = result["challenge"]
    assert challenge["precision"] == "fp32" and challenge["complete"] is True
    assert challenge["foregrounds"] == challenge["backgrounds"] == 9 * 2
    assert challenge["fooled_sets_identical"] is True  # fp32 search == the official method on the subset
    assert challenge["speedup_vs_official"] > 0
    assert challenge["forward_only_images_per_second"] > 0 and len(challenge["fooled_ids"]) <= 18
    assert "mixed_rand" in result["mixed_rand"] or "skipped" in result["mixed_rand"]
    assert result["saliency"]["maps_per_second"] > 0 and result["localize"]["map_images_per_second"] > 0
    assert result["localize"]["estimate_images_per_second"] > 0
    assert all(result[s]["peak_host_mb"] > 0 for s in ("data", "train", "claims", "challenge"))


def test_the_lease_stops_at_its_deadline_and_keeps_what_it_measured(tmp_path):
    """The stage after the data never ends (a stall planted for the test), so the deadline is what stops it,
    whatever the machine's speed: the data stage's numbers are kept, every later stage says why it has none."""
    out = tmp_path / "lease.json"
    env = {**os.environ, "BGREPRO_BENCH_STALL": "claims"}
    # the data stage at its smallest (27 images of 32 px: about 7 s, 15 s on a loaded machine), so the budget that
    # stops the planted stall is short
    budget = 25
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--lease", "--scale", "check",
                           "--size", "32", "--train-per-class", "1", "--test-per-class", "2",
                           "--budget", str(budget), "--max-epochs", "1", "--work", str(tmp_path / "work"),
                           "--out", str(out)], capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 1
    result = json.loads(out.read_text())
    assert "images" in result["data"]  # measured before the deadline, kept
    assert "deadline" in result["claims"]["error"]
    late = [s for s in result["lease"]["stages"] if "error" in result[s]]
    assert late[0] == "claims" and all("deadline" in result[s]["error"] or "budget" in result[s]["error"]
                                       for s in late)
    assert result["data"]["images"] == 9 * (1 + 2) and result["data"]["size"] == 32
    assert result["lease"]["seconds"] <= budget + 5
