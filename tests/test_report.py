"""`bgrepro report`: one command from a folder of real-like photos to a strict JSON and a self-contained
HTML report; resumable; bad input gets one line and leaves nothing behind."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from bgrepro.cli import main
from bgrepro.variants import NAMES as VARIANTS
from tests.conftest import tree_digest
from tests.test_sources import photo

CLASSES = ("cat", "dog", "train")  # a class literally named `train`, in a folder with no split


def _strict(text: str):
    def refuse(name):
        raise ValueError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def make_photos(root, per_class: int = 5):
    """`per_class` photos per class, the same file names in every class, boxes in root/../boxes.csv: one
    photo stored rotated with an EXIF orientation (its box drawn on the upright photo) and one a 16-bit
    grey PNG."""
    rows = ["path,xmin,ymin,xmax,ymax"]
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for k in range(per_class):
            image, _, box = photo(c, 300 + 10 * c + k, 120, 100)
            file = f"img_{k}.jpg"
            if name == "cat" and k == 0:  # the camera stored it rotated; a viewer shows it upright
                exif = Image.Exif()
                exif[0x0112] = 6
                Image.fromarray(np.ascontiguousarray(np.rot90(image, k=1))).save(root / name / file, exif=exif,
                                                                                   quality=95)
            elif name == "dog" and k == 0:
                file = "img_0.png"
                grey = image.mean(axis=2).astype(np.uint16) * 257
                Image.fromarray(grey).save(root / name / file)
            else:
                Image.fromarray(image).save(root / name / file, quality=95)
            rows.append(f"{name}/{file},{','.join(map(str, box))}")
    (root.parent / "boxes.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return make_photos(tmp_path_factory.mktemp("report") / "photos")


def _args(photos, out, *extra):
    return ["report", "--images", str(photos), "--boxes", str(photos.parent / "boxes.csv"), "--out", str(out),
            "--size", "32", "--profile", "tiny", "--epochs", "1", "--seeds", "2", "--bootstrap", "200", *extra]


@pytest.fixture(scope="module")
def clean_report(photos):
    out = photos.parent / "clean"
    assert main(_args(photos, out)) == 0
    return out


def test_report_from_a_folder_of_photos(photos, clean_report):
    report = _strict((clean_report / "report.json").read_text())
    assert report["classes"] == list(CLASSES)
    data = report["data"]
    assert data["images"] == 15 and data["kept"] + sum(data["rejected"].values()) == 15
    assert data["kept_per_split"]["val"] == 6  # two test photos per class (Mixed-Same pairs two)
    rejected = (clean_report / "data" / "rejections.csv").read_text()
    assert "cat/img_0" not in rejected.replace("\\", "/")  # the EXIF photo's box fell on the upright photo
    assert [m["name"] for m in report["models"]] == ["trained on Original", "trained on Mixed-Rand"]
    for m in report["models"]:
        assert set(m["accuracy"]) == set(VARIANTS)
        assert all(0 <= a <= 100 for a in m["accuracy"].values())
        gap = m["bg_gap"]
        assert gap["value"] == pytest.approx(m["accuracy"]["mixed_same"] - m["accuracy"]["mixed_rand"])
        assert gap["ci95"][0] <= gap["value"] + 1e-9 and gap["value"] <= gap["ci95"][1] + 1e-9
        assert len(gap["seeds"]["values"]) == 2 and m["training"]["seeds"] == [0, 1]
        assert np.mean(gap["seeds"]["values"]) == pytest.approx(gap["value"])
        assert 0 <= m["challenge_accuracy"] <= 100
        assert m["foreground_share"] is None or 0 <= m["foreground_share"] <= 100
        assert sum(m["finegrained"].values()) == pytest.approx(100)
        # which backgrounds hurt which classes: Mixed-Rand group by group, in %, its worst group named
        groups = m["groups"]["mixed_rand"]
        assert sum(g["n"] for g in groups["groups"]) == data["kept_per_split"]["val"]
        assert groups["accuracy"] == pytest.approx(m["accuracy"]["mixed_rand"])
        assert all(g["small"] for g in groups["groups"])  # two test photos per class: every group is small
        assert m["worst_group"].endswith(f"(the set's mean {groups['accuracy']:.1f}%)")
    page = (clean_report / "report.html").read_text()
    assert "Which backgrounds hurt which classes" in page and "worst group" in page
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", page)  # nothing outside the page
    assert "<script" not in page and "<link" not in page
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', page)) >= 6
    built = np.asarray(Image.open(next((clean_report / "data" / "original").glob("*/cat/img_0.jpg"))))
    assert built.shape == (32, 32, 3)


@pytest.mark.skipif(not any(shutil.which(b) for b in ("chromium", "chromium-browser")), reason="no Chromium")
def test_report_renders_in_headless_chromium_with_its_figures(clean_report, tmp_path):
    browser = next(shutil.which(b) for b in ("chromium", "chromium-browser") if shutil.which(b))
    probe = tmp_path / "probe.html"  # the page, plus a line that counts the images the browser decoded
    probe.write_text((clean_report / "report.html").read_text().replace(
        "</body>", "<script>window.addEventListener('load',()=>{document.body.dataset.decoded="
                   "[...document.images].filter(i=>i.complete&&i.naturalWidth>0).length})</script></body>"))
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                          "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    decoded = int(re.search(r'data-decoded="(\d+)"', dom).group(1))
    assert decoded == len(re.findall(r"<img ", (clean_report / "report.html").read_text())) >= 6
    assert "How much do these models lean on backgrounds?" in dom


def _numbers(report: dict) -> list:
    return [{k: v for k, v in m.items() if k != "runs"} | {"runs": [{k: v for k, v in r.items() if k != "checkpoint"}
                                                                    for r in m["runs"]]}
            for m in report["models"]]


def test_an_interrupted_report_resumes_to_the_same_numbers(photos, clean_report, tmp_path, monkeypatch, capsys):
    from bgrepro.report import make as report_module

    out = tmp_path / "resumed"
    real, calls = report_module._analyse, []

    def interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(report_module, "_analyse", interrupt)
    assert main(_args(photos, out)) == 130
    assert (out / "report_args.json").exists() and not (out / "report.json").exists()
    checkpoints = sorted(p.relative_to(out) for p in out.glob("models/*/checkpoint.pt"))
    assert len(checkpoints) == 4  # the trained models stay
    stamps = {p: (out / p).stat().st_mtime_ns for p in checkpoints}
    monkeypatch.setattr(report_module, "_analyse", real)
    assert main(_args(photos, out)) == 0
    assert {p: (out / p).stat().st_mtime_ns for p in checkpoints} == stamps  # not trained again
    assert _numbers(_strict((out / "report.json").read_text())) == _numbers(
        _strict((clean_report / "report.json").read_text()))
    capsys.readouterr()
    before = tree_digest(out)
    assert main(_args(photos, out)[:-2] + ["--bootstrap", "300"]) == 2  # other arguments: refused, untouched
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bootstrap" in err[0] and "--overwrite" in err[0]
    assert tree_digest(out) == before


def _one_line_and_nothing_written(capsys, out, *names):
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("bgrepro")]
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert all(n in err[0] for n in names), err[0]
    assert not out.exists()


def test_bad_input_to_report_is_one_line_and_leaves_nothing(photos, clean_report, tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad"
    shutil.copytree(photos, bad)
    (bad / "dog" / "img_3.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["report", "--images", str(bad), "--boxes", str(photos.parent / "boxes.csv"), "--out", str(out),
                 "--size", "32", "--profile", "tiny", "--epochs", "1"]) == 2
    _one_line_and_nothing_written(capsys, out, "img_3.jpg")
    small = tmp_path / "small"  # a 3-image class: too few for two Mixed-Same test photos
    shutil.copytree(photos, small)
    for k in (3, 4):
        (small / "train" / f"img_{k}.jpg").unlink()
    assert main(["report", "--images", str(small), "--boxes", str(photos.parent / "boxes.csv"), "--out", str(out),
                 "--size", "32", "--profile", "tiny", "--epochs", "1"]) == 2
    _one_line_and_nothing_written(capsys, out, "mixed_same", "'train'")
    other = tmp_path / "other.pt"  # a checkpoint of other classes
    payload = torch.load(clean_report / "models" / "original-seed0" / "checkpoint.pt", weights_only=True)
    payload["meta"]["classes"] = ["a", "b", "c"]
    torch.save(payload, other)
    assert main(["report", "--images", str(photos), "--boxes", str(photos.parent / "boxes.csv"), "--out", str(out),
                 "--size", "32", "--checkpoint", str(other)]) == 2
    _one_line_and_nothing_written(capsys, out, "other.pt")
    assert main(["report", "--images", str(photos), "--out", str(out), "--localizer", "dino_resnet50",
                 "--offline"]) == 2
    _one_line_and_nothing_written(capsys, out, "dino_resnet50_pretrain.pth")
    # what training needs is checked before the build, not after minutes of it
    assert main(_args(photos, out, "--arch", "nonsense")) == 2
    _one_line_and_nothing_written(capsys, out, "nonsense")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))
    assert main(_args(photos, out, "--arch", "resnet18", "--pretrained", "--offline")) == 2
    _one_line_and_nothing_written(capsys, out, "resnet18-f37072fd.pth", "--pretrained FILE")


def test_report_on_a_given_checkpoint_and_without_annotations(photos, clean_report, tmp_path):
    """A given model is reported on, not retrained; photos without masks or boxes get RPS masks refined
    by GrabCut (here with an untrained ResNet-18's weights file made by the test, read offline: its masks
    miss some objects, so the folder has more photos and half of each class is test)."""
    checkpoint = clean_report / "models" / "original-seed0" / "checkpoint.pt"
    out = tmp_path / "given"
    assert main(["report", "--images", str(photos), "--boxes", str(photos.parent / "boxes.csv"), "--out", str(out),
                 "--size", "32", "--checkpoint", str(checkpoint), "--bootstrap", "100"]) == 0
    report = _strict((out / "report.json").read_text())
    assert len(report["models"]) == 1 and "trained on Original" in report["models"][0]["name"]
    assert report["data"]["kept_per_split"] == {"val": report["data"]["kept"]}  # a given model: all test photos
    assert not list(out.glob("models/*/checkpoint.pt"))
    torch.manual_seed(0)
    weights = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    out = tmp_path / "unannotated"
    more = make_photos(tmp_path / "more", per_class=8)
    assert main(["report", "--images", str(more), "--out", str(out), "--size", "32", "--profile", "tiny",
                 "--epochs", "1", "--localizer", "resnet18", "--localizer-weights", str(weights), "--offline",
                 "--bootstrap", "100", "--val-fraction", "0.5"]) == 0
    report = _strict((out / "report.json").read_text())
    assert "representer point selection" in report["data"]["masks"] and "grabcut" in report["data"]["masks"]
    masks = list((out / "masks").rglob("*.npy"))
    assert masks and report["data"]["kept"] <= len(masks)
    assert report["data"]["rejected"].get("no_mask", 0) == 24 - len(masks)  # no object found: left out, counted


def test_report_fine_tunes_from_imagenet_weights_on_any_classes(photos, tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "resnet18-imagenet.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)  # torchvision's layout, 1000 classes
    out = tmp_path / "finetuned"
    assert main(["report", "--images", str(photos), "--boxes", str(photos.parent / "boxes.csv"), "--out", str(out),
                 "--size", "32", "--profile", "tiny", "--epochs", "1", "--arch", "resnet18", "--pretrained",
                 str(weights), "--offline", "--bootstrap", "100"]) == 0
    report = _strict((out / "report.json").read_text())
    assert [m["name"] for m in report["models"]] == ["fine-tuned on Original from ImageNet",
                                                     "fine-tuned on Mixed-Rand from ImageNet"]
    assert all(m["training"]["arch"] == "resnet18" and "ImageNet" in m["training"]["start"] for m in report["models"])
