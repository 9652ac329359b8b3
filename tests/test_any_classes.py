"""Labels come from the data: any class names, any number of classes, file names repeated across
classes, through build, train, eval and the challenge; records follow the data's content."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from bgrepro.analyses.localize import RPS
from bgrepro.cli import main
from bgrepro.in9 import CLASS_FOLDERS
from tests.conftest import load_model

ACCENTED = ("café au lait", "naïve bayes", "Ünïcode fish", "zebra crossing")


def _collection(root, masks, classes, per_class=4, size=32):
    """Class folders of photos whose file names repeat in every class, with a mask tree; each class's
    object is a square of its own colour on a striped background."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        for k in range(per_class):
            image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            image[:, ::4] = (40 * c) % 255
            mask = np.zeros((size, size), bool)
            x, y = rng.integers(2, size // 2, 2)
            mask[y:y + size // 3, x:x + size // 3] = True
            image[mask] = np.array([(70 * c) % 256, 255 - (30 * c) % 256, (110 * c) % 256], np.uint8)
            for split, n in (("train", per_class), ("val", per_class // 2)):
                if k < n:
                    (root / split / name).mkdir(parents=True, exist_ok=True)
                    (masks / split / name).mkdir(parents=True, exist_ok=True)
                    Image.fromarray(image).save(root / split / name / f"image_{k:04d}.png")
                    Image.fromarray(mask.astype(np.uint8) * 255).save(masks / split / name / f"image_{k:04d}.png")


def _json(capsys):
    out = capsys.readouterr().out.strip().splitlines()[-1]
    return json.loads(out, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))


@pytest.mark.parametrize("classes", [ACCENTED[:2], ACCENTED, tuple(f"class {k:02d} é" for k in range(12))],
                         ids=["2 classes", "4 classes", "12 classes"])
def test_every_command_takes_its_classes_from_the_data(tmp_path, capsys, classes):
    _collection(tmp_path / "photos", tmp_path / "masks", classes)
    data, run = tmp_path / "variants", tmp_path / "run"
    assert main(["build", "--source", "folder", "--in", str(tmp_path / "photos"), "--masks", str(tmp_path / "masks"),
                 "--out", str(data), "--size", "32"]) == 0
    # every class keeps its files, although their names repeat across classes
    for name in classes:
        assert len(list((data / "original" / "train" / name).iterdir())) == 4
    assert main(["train", "--data", str(data), "--variant", "original", "--out", str(run), "--profile", "tiny",
                 "--epochs", "2"]) == 0
    _, meta = load_model(run / "checkpoint.pt")
    assert meta["classes"] == sorted(classes) and meta["num_classes"] == len(classes)
    capsys.readouterr()
    assert main(["eval", "--data", str(data), "--checkpoint", str(run / "checkpoint.pt"), "--json"]) == 0
    evaluation = _json(capsys)
    assert evaluation["classes"] == sorted(classes)
    assert set(evaluation["per_class"]["original"]) == set(classes)
    assert evaluation["bg_gap"] is not None and 0 <= evaluation["accuracy"]["mixed_rand"] <= 1
    assert main(["challenge", "--data", str(data), "--checkpoint", str(run / "checkpoint.pt"), "--json"]) == 0
    result = _json(capsys)
    assert result["classes"] == sorted(classes) and set(result["fooled_per_class"]) == set(classes)
    assert result["n_foregrounds"] == 2 * len(classes)
    assert all(i.split("/")[0] in classes for i in result["fooled_ids"])
    text = json.dumps([evaluation, result])
    assert not any(folder in text for folder in CLASS_FOLDERS)
    # class-wise RPS keeps one w* per class of the data, whether labels come from folders or predictions
    for source in ("labels", "predictions"):
        assert main(["localize", "--data", str(data), "--backbone", f"checkpoint:{run / 'checkpoint.pt'}",
                     "--class-wise", source, "--out", str(tmp_path / source), "--json"]) == 0
        summary = _json(capsys)
        assert summary["n_images"] == 2 * len(classes) and 0 <= summary["pxap"] <= 100
        assert RPS.load(tmp_path / source / "rps.pt").w_class.shape[0] == len(classes)


def test_a_model_of_other_classes_is_refused(tmp_path, capsys, tiny_checkpoint):
    _collection(tmp_path / "photos", tmp_path / "masks", ACCENTED)
    data = tmp_path / "variants"
    assert main(["build", "--source", "folder", "--in", str(tmp_path / "photos"), "--masks", str(tmp_path / "masks"),
                 "--out", str(data), "--size", "32", "--variants", "only_bg_t"]) == 0
    capsys.readouterr()
    for command in ("eval", "challenge"):
        assert main([command, "--data", str(data), "--checkpoint", str(tiny_checkpoint)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "trained on 9 classes" in err and "has 4" in err


def test_rebuilt_data_at_the_same_path_is_recomputed(tmp_path, monkeypatch, tiny_dataset):
    from bgrepro.book.experiments import trained_model
    from bgrepro.data.build import build
    from bgrepro.data.sources import SyntheticSource
    from bgrepro.training.classifier import TrainConfig

    monkeypatch.setenv("BGREPRO_RESULTS", str(tmp_path / "results"))
    data = tmp_path / "variants"
    config = TrainConfig.from_profile(data, "tiny", epochs=1)
    build(SyntheticSource(tiny_dataset), data, variants=("mixed_rand",), seed=0, workers=1, progress=False)
    first = trained_model(config, progress=False)
    assert trained_model(config, progress=False).provenance == first.provenance  # cached
    build(SyntheticSource(tiny_dataset), tmp_path / "other", variants=("mixed_rand",), seed=5, workers=1,
          progress=False)
    shutil.rmtree(data)
    shutil.copytree(tmp_path / "other", data)  # other content at the same path
    second = trained_model(config, progress=False)
    assert second.provenance["data_manifest_sha256"] != first.provenance["data_manifest_sha256"]
    assert second.provenance["created"] >= first.provenance["created"]
    assert second.checkpoint != first.checkpoint  # a new run, not the old model
