"""Bad input, kind by kind, through the command line: exit code 2, one line on stderr that names the
culprit (file or option), no traceback, and nothing written or changed anywhere in the work folder.

Each case builds its own bad input in `tmp_path` and returns (argv, culprit): the text the error
line must contain. The work folder's files and folders are compared before and after the command.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from bgrepro.cli import main

# ----------------------------------------------------------------------------- helpers


def _photos(root: Path, masks: Path | None = None, classes=("apple", "pear"), per_class=4, size=32) -> Path:
    """Class folders of small photos (train and val), with a mirror tree of PNG masks."""
    rng = np.random.default_rng(1)
    for c, name in enumerate(classes):
        for k in range(per_class):
            image = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
            mask = np.zeros((size, size), np.uint8)
            mask[6 + k:20 + k, 8:22] = 255
            image[mask > 0] = (200, 40 * c, 90)
            for split in ("train", "val"):
                (root / split / name).mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(root / split / name / f"img_{k}.png")
                if masks is not None:
                    (masks / split / name).mkdir(parents=True, exist_ok=True)
                    Image.fromarray(mask).save(masks / split / name / f"img_{k}.png")
    return root


def _folder_build(tmp: Path, *extra: str, boxes: Path | None = None) -> list[str]:
    argv = ["build", "--source", "folder", "--in", str(tmp / "photos"), "--out", str(tmp / "out"), "--size", "32",
            "--workers", "1"]
    argv += ["--boxes", str(boxes)] if boxes else ["--masks", str(tmp / "masks")]
    return argv + list(extra)


def _with_masks(tmp: Path) -> None:
    _photos(tmp / "photos", tmp / "masks")


def _boxes_csv(tmp: Path, rows: list[str], header: str = "path,xmin,ymin,xmax,ymax") -> Path:
    _photos(tmp / "photos")
    lines = [header] + [f"{split}/{c}/img_{k}.png,8,6,21,19" for split in ("train", "val") for c in ("apple", "pear")
                        for k in range(4)]
    lines[1:1 + len(rows)] = rows
    path = tmp / "boxes.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _text(path: Path, text: str = "this is not what it claims to be\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _checkpoint(path: Path, payload) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


def _manifest(tmp: Path, **archive) -> Path:
    entry = {"name": "test", "url": "file:///nonexistent/test.tar", "filename": "test.tar", "sha256": None}
    entry.update(archive)
    return _text(tmp / "manifest.json", json.dumps({"archives": [entry]}))


def _fetch(tmp: Path, manifest: Path) -> list[str]:
    return ["data", "fetch", "in9", "--manifest", str(manifest), "--dest", str(tmp / "dest")]


# ----------------------------------------------------------------------------- the cases
# each: (tmp, fx) -> (argv, culprit)


def synth_size_too_small(tmp, fx):
    return ["synth", "--out", str(tmp / "out"), "--profile", "tiny", "--size", "4"], "--size"


def synth_correlation_nan(tmp, fx):
    return ["synth", "--out", str(tmp / "out"), "--correlation", "nan"], "--correlation"


def synth_correlation_above_one(tmp, fx):
    return ["synth", "--out", str(tmp / "out"), "--correlation", "2"], "--correlation"


def synth_negative_count(tmp, fx):
    return ["synth", "--out", str(tmp / "out"), "--train-per-class", "-1"], "--train-per-class"


def synth_workers_not_a_number(tmp, fx):
    return ["synth", "--out", str(tmp / "out"), "--workers", "many"], "--workers"


def synth_out_is_a_file(tmp, fx):
    out = _text(tmp / "out")
    return ["synth", "--out", str(out), "--profile", "tiny"], str(out)


def synth_out_holds_another_config(tmp, fx):
    shutil.copytree(fx.dataset, tmp / "out")
    return ["synth", "--out", str(tmp / "out"), "--profile", "tiny", "--seed", "99"], "seed"


def build_missing_source(tmp, fx):
    return ["build", "--source", "folder", "--in", str(tmp / "nowhere"), "--masks", str(tmp),
            "--out", str(tmp / "out")], str(tmp / "nowhere")


def build_corrupt_image(tmp, fx):
    _with_masks(tmp)
    bad = tmp / "photos" / "val" / "pear" / "img_2.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return _folder_build(tmp), str(bad)


def build_truncated_image(tmp, fx):
    _with_masks(tmp)
    bad = tmp / "photos" / "train" / "apple" / "img_1.png"
    bad.write_bytes(bad.read_bytes()[:60])
    return _folder_build(tmp), str(bad)


def build_text_file_as_image(tmp, fx):
    _with_masks(tmp)
    bad = _text(tmp / "photos" / "train" / "apple" / "img_9.jpg")
    _text(tmp / "masks" / "train" / "apple" / "img_9.png")
    return _folder_build(tmp), str(bad)


def build_mask_of_the_wrong_size(tmp, fx):
    _with_masks(tmp)
    bad = tmp / "masks" / "train" / "pear" / "img_0.png"
    Image.fromarray(np.full((20, 24), 255, np.uint8)).save(bad)
    return _folder_build(tmp), str(bad)


def build_missing_mask(tmp, fx):
    _with_masks(tmp)
    (tmp / "masks" / "val" / "apple" / "img_3.png").unlink()
    return _folder_build(tmp), "img_3"


def build_mask_with_nan(tmp, fx):
    _with_masks(tmp)
    (tmp / "masks" / "val" / "apple" / "img_1.png").unlink()
    mask = np.zeros((32, 32), np.float32)
    mask[5:20, 5:20] = np.nan
    np.save(tmp / "masks" / "val" / "apple" / "img_1.npy", mask)
    return _folder_build(tmp), "img_1.npy"


def build_mask_not_2d(tmp, fx):
    _with_masks(tmp)
    (tmp / "masks" / "val" / "apple" / "img_1.png").unlink()
    np.save(tmp / "masks" / "val" / "apple" / "img_1.npy", np.ones((32, 32, 3), bool))
    return _folder_build(tmp), "img_1.npy"


def build_empty_mask(tmp, fx):
    _with_masks(tmp)
    bad = tmp / "masks" / "train" / "apple" / "img_2.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(bad)
    return _folder_build(tmp), str(bad)


def build_mask_is_a_pickle(tmp, fx):
    _with_masks(tmp)
    (tmp / "masks" / "val" / "pear" / "img_0.png").unlink()
    np.save(tmp / "masks" / "val" / "pear" / "img_0.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return _folder_build(tmp), "img_0.npy"


def build_mask_linked_to_a_jpeg(tmp, fx):
    _with_masks(tmp)
    (tmp / "masks" / "val" / "pear" / "img_0.png").unlink()
    Image.new("RGB", (32, 32)).save(tmp / "a_photo.jpg")
    (tmp / "masks" / "val" / "pear" / "img_0.npy").symlink_to(tmp / "a_photo.jpg")
    return _folder_build(tmp), "img_0.npy: not a NumPy array (.npy), but a JPEG image"


def build_mask_bomb(tmp, fx):
    """A mask of more pixels than PIL opens safely (a decompression bomb, small on disk): refused in one line
    before it is decoded (PIL's warning is that error, not a line of its own)."""
    _with_masks(tmp)
    Image.new("1", (9500, 9500)).save(tmp / "masks" / "train" / "apple" / "img_1.png")
    return _folder_build(tmp), "img_1.png: too many pixels to open safely"


def build_lock_path_is_a_folder(tmp, fx):
    _with_masks(tmp)
    (tmp / ".out.bgrepro-lock").mkdir()
    return _folder_build(tmp), "a folder in the way of bgrepro's lock"


def build_box_row_with_an_extra_field(tmp, fx):
    return _folder_build(tmp, boxes=_boxes_csv(tmp, ["train/apple/img_0.png,8,6,21,19,4"])), "boxes.csv:2: 6 fields"


def build_every_image_rejected(tmp, fx):
    _with_masks(tmp)
    for mask in (tmp / "masks").rglob("*.png"):
        full = np.full((32, 32), 255, np.uint8)
        full[0, 0] = 0  # a mask whose box is the whole image: nothing left for Only-BG-T
        Image.fromarray(full).save(mask)
    return _folder_build(tmp), "every one of the 16 images"


def build_box_with_inf(tmp, fx):
    return _folder_build(tmp, boxes=_boxes_csv(tmp, ["train/apple/img_0.png,0,0,inf,10"])), "boxes.csv:2"


def build_box_row_missing_a_field(tmp, fx):
    return _folder_build(tmp, boxes=_boxes_csv(tmp, ["train/apple/img_0.png,0,0,10"])), "boxes.csv:2"


def build_box_not_a_number(tmp, fx):
    return _folder_build(tmp, boxes=_boxes_csv(tmp, ["train/apple/img_0.png,a,0,10,10"])), "boxes.csv:2"


def build_box_reversed(tmp, fx):
    return _folder_build(tmp, boxes=_boxes_csv(tmp, ["train/apple/img_0.png,20,0,10,10"])), "boxes.csv:2"


def build_box_outside_the_image(tmp, fx):
    return _folder_build(tmp, boxes=_boxes_csv(tmp, ["train/apple/img_0.png,2,2,90,20"])), "img_0.png"


def build_box_csv_without_columns(tmp, fx):
    return _folder_build(tmp, boxes=_boxes_csv(tmp, [], header="file,x,y")), "boxes.csv"


def build_image_without_a_box_row(tmp, fx):
    boxes = _boxes_csv(tmp, [])
    boxes.write_text("\n".join(boxes.read_text().splitlines()[:-1]) + "\n")
    return _folder_build(tmp, boxes=boxes), "img_3.png"


def _build_with(name: str, options: tuple[str, ...], needle: str):
    """A case: a well-formed folder built with bad `options`; the error names `needle`."""
    def case(tmp, fx):
        _with_masks(tmp)
        return _folder_build(tmp, *options), needle
    case.__name__ = name
    return case


build_size_zero = _build_with("build_size_zero", ("--size", "0"), "--size")
build_unknown_variant = _build_with("build_unknown_variant", ("--variants", "original,mixed_up"), "mixed_up")
build_unknown_split = _build_with("build_unknown_split", ("--splits", "test"), "--splits")
build_negative_seed = _build_with("build_negative_seed", ("--seed", "-3"), "--seed")


def build_duplicate_stem_in_a_class(tmp, fx):
    _with_masks(tmp)
    Image.new("RGB", (32, 32)).save(tmp / "photos" / "val" / "pear" / "img_1.jpg")
    return _folder_build(tmp), "duplicate id"


def build_imagenet_without_xmls(tmp, fx):
    from bgrepro.in9 import CLASS_FOLDERS

    for folder in CLASS_FOLDERS:
        (tmp / "imagenet" / "val" / folder).mkdir(parents=True)
        Image.new("RGB", (40, 40)).save(tmp / "imagenet" / "val" / folder / "n01_1.JPEG")
    (tmp / "xml").mkdir()
    return ["build", "--source", "imagenet", "--in", str(tmp / "imagenet"), "--boxes", str(tmp / "xml"),
            "--out", str(tmp / "out")], str(tmp / "xml")


def build_annotations_without_xmin(tmp, fx):
    shutil.copytree(fx.dataset, tmp / "synth")
    csv = tmp / "synth" / "annotations.csv"
    csv.write_text(csv.read_text().replace("xmin", "x_min"))
    return ["build", "--source", "synthetic", "--in", str(tmp / "synth"), "--out", str(tmp / "out")], "xmin"


def build_out_built_with_another_seed(tmp, fx):
    shutil.copytree(fx.variants, tmp / "out")
    return ["build", "--source", "synthetic", "--in", str(fx.dataset), "--out", str(tmp / "out"), "--seed", "5"], "seed"


def build_out_holds_other_files(tmp, fx):
    _with_masks(tmp)
    _text(tmp / "out" / "notes.txt")
    return _folder_build(tmp), str(tmp / "out")


def _train(tmp, fx, *extra):
    return ["train", "--data", str(fx.variants), "--variant", "original", "--out", str(tmp / "run"),
            "--profile", "tiny", *extra]


def train_lr_nan(tmp, fx):
    return _train(tmp, fx, "--lr", "nan"), "--lr"


def train_lr_negative(tmp, fx):
    return _train(tmp, fx, "--lr", "-0.1"), "--lr"


def train_batch_size_zero(tmp, fx):
    return _train(tmp, fx, "--batch-size", "0"), "--batch-size"


def train_epochs_zero(tmp, fx):
    return _train(tmp, fx, "--epochs", "0"), "--epochs"


def train_weight_decay_inf(tmp, fx):
    return _train(tmp, fx, "--weight-decay", "inf"), "--weight-decay"


def train_unknown_variant(tmp, fx):
    argv = _train(tmp, fx)
    argv[argv.index("original")] = "background_only"
    return argv, "background_only"


def train_unknown_arch(tmp, fx):
    return _train(tmp, fx, "--arch", "resnet9000"), "resnet9000"


def train_missing_data(tmp, fx):
    argv = _train(tmp, fx)
    argv[argv.index(str(fx.variants))] = str(tmp / "no-data")
    return argv, str(tmp / "no-data")


def train_loss_diverges(tmp, fx):
    return _train(tmp, fx, "--lr", "1e30", "--epochs", "1"), "loss became"


def train_hostile_resume_file(tmp, fx):
    _checkpoint(tmp / "run" / "last.pt", {"x": [1, 2, 3]})  # in a folder bgrepro did not make: never read
    return _train(tmp, fx), str(tmp / "run")


def _eval(fx, *extra, command="eval"):
    return [command, "--data", str(fx.variants), *extra]


def eval_checkpoint_is_text(tmp, fx):
    bad = _text(tmp / "model.pt")
    return _eval(fx, "--checkpoint", str(bad)), str(bad)


def eval_checkpoint_truncated(tmp, fx):
    bad = tmp / "model.pt"
    bad.write_bytes(Path(fx.checkpoint).read_bytes()[:500])
    return _eval(fx, "--checkpoint", str(bad)), str(bad)


def _altered_checkpoint(tmp, fx, alter) -> list[str]:
    """eval of a copy of the trained checkpoint changed by `alter(payload)`."""
    payload = torch.load(fx.checkpoint, weights_only=True)
    alter(payload)
    return _eval(fx, "--checkpoint", str(_checkpoint(tmp / "model.pt", payload)))


def eval_checkpoint_without_arch(tmp, fx):
    return _altered_checkpoint(tmp, fx, lambda p: p["meta"].pop("arch")), str(tmp / "model.pt")


def eval_checkpoint_without_weights(tmp, fx):
    return _altered_checkpoint(tmp, fx, lambda p: p.pop("state_dict")), str(tmp / "model.pt")


def eval_checkpoint_of_another_architecture(tmp, fx):
    return _altered_checkpoint(tmp, fx, lambda p: p["meta"].update(arch="resnet18")), str(tmp / "model.pt")


def eval_checkpoint_of_other_classes(tmp, fx):
    def rename(p):
        p["meta"]["classes"] = [f"class {k}" for k in range(len(p["meta"]["classes"]))]

    return _altered_checkpoint(tmp, fx, rename), str(tmp / "model.pt")


def eval_checkpoint_missing(tmp, fx):
    return _eval(fx, "--checkpoint", str(tmp / "absent.pt")), str(tmp / "absent.pt")


def eval_arch_without_pretrained(tmp, fx):
    return _eval(fx, "--arch", "resnet18"), "--pretrained"


def eval_weights_are_text(tmp, fx):
    bad = _text(tmp / "resnet18.pth")
    return _eval(fx, "--arch", "resnet18", "--pretrained", "--weights", str(bad)), str(bad)


def eval_predictions_row_with_an_extra_field(tmp, fx):
    from bgrepro.analyses.evaluate import image_listing

    paths = image_listing(fx.variants)
    rows = [f"{p},00_dog" for p in paths]
    rows[3] += ",00_dog"
    bad = _text(tmp / "preds.csv", "path,prediction\n" + "\n".join(rows) + "\n")
    return _eval(fx, "--predictions", str(bad), "--record", str(tmp / "eval.json")), "preds.csv:5: 3 fields"


def eval_missing_split(tmp, fx):
    return _eval(fx, "--checkpoint", str(fx.checkpoint), "--split", "test"), "test"


def challenge_unknown_device(tmp, fx):
    return _eval(fx, "--checkpoint", str(fx.checkpoint), "--device", "tpu9", command="challenge"), "--device"


def challenge_cuda_without_a_gpu(tmp, fx):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    return _eval(fx, "--checkpoint", str(fx.checkpoint), "--device", "cuda", command="challenge"), "--device"


def challenge_negative_batch_size(tmp, fx):
    return _eval(fx, "--checkpoint", str(fx.checkpoint), "--batch-size", "-1", command="challenge"), "--batch-size"


def _localize(fx, *extra):
    return ["localize", "--data", str(fx.variants), "--backbone", f"checkpoint:{fx.checkpoint}", *extra]


def localize_size_zero(tmp, fx):
    return _localize(fx, "--size", "0"), "--size"


def localize_threshold_nan(tmp, fx):
    return _localize(fx, "--mask-threshold", "nan"), "--mask-threshold"


def localize_rps_file_is_text(tmp, fx):
    bad = _text(tmp / "rps.pt")
    return _localize(fx, "--rps", str(bad)), str(bad)


def localize_rps_of_another_backbone(tmp, fx):
    bad = _checkpoint(tmp / "rps.pt", {"format": "bgrepro-rps-1", "w": torch.ones(7), "w_class": None})
    return _localize(fx, "--rps", str(bad)), "channels"


def localize_backbone_weights_are_text(tmp, fx):
    bad = _text(tmp / "resnet18.pth")
    return ["localize", "--data", str(fx.variants), "--backbone", "resnet18", "--weights", str(bad)], str(bad)


def localize_folder_without_images(tmp, fx):
    (tmp / "empty").mkdir()
    return ["localize", "--data", str(tmp / "empty"), "--backbone", f"checkpoint:{fx.checkpoint}"], str(tmp / "empty")


def fetch_filename_leaves_dest(tmp, fx):
    return _fetch(tmp, _manifest(tmp, filename="../escape.tar")), "filename"


def fetch_strip_leaves_the_archive(tmp, fx):
    return _fetch(tmp, _manifest(tmp, strip="../..")), "strip"


def fetch_manifest_not_json(tmp, fx):
    bad = _text(tmp / "manifest.json", "{archives: ")
    return _fetch(tmp, bad), str(bad)


def fetch_manifest_without_archives(tmp, fx):
    bad = _text(tmp / "manifest.json", json.dumps({"archives": []}))
    return _fetch(tmp, bad), str(bad)


def fetch_malformed_sha256(tmp, fx):
    return _fetch(tmp, _manifest(tmp, sha256="abc")), "sha256"


def fetch_corrupt_archive(tmp, fx):
    archive = _text(tmp / "served" / "test.tar", "not a tar archive at all\n" * 40)
    (tmp / "dest" / ".downloads").mkdir(parents=True)
    return _fetch(tmp, _manifest(tmp, url=archive.as_uri())), "corrupt"


CASES = [v for k, v in dict(globals()).items() if callable(v) and k.split("_")[0] in
         ("synth", "build", "train", "eval", "challenge", "localize", "fetch")]


# ----------------------------------------------------------------------------- the test

_PROGRESS = re.compile(r"\d+%\||\d+/\d+ \[")


def _snapshot(root: Path) -> dict[str, str | None]:
    """Every file (with its bytes' hash) and folder under root."""
    import hashlib

    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def fx(tiny_dataset, tiny_variants, tiny_checkpoint):
    return SimpleNamespace(dataset=tiny_dataset, variants=tiny_variants, checkpoint=tiny_checkpoint)


def test_there_are_at_least_forty_kinds():
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_bad_input_gets_one_clean_error_and_changes_nothing(case, tmp_path, fx, capsys):
    argv, culprit = case(tmp_path, fx)
    before = _snapshot(tmp_path)
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's errors
        code = exit_.code
    err = capsys.readouterr().err
    lines = [ln for ln in re.split(r"[\r\n]+", err) if ln.strip() and not _PROGRESS.search(ln)]
    assert code == 2, err
    assert len(lines) == 1, err
    assert culprit in lines[0], lines[0]
    assert "Traceback" not in err
    assert _snapshot(tmp_path) == before, "the failing command changed the work folder"


def test_a_hostile_manifest_cannot_write_outside_dest(tmp_path, capsys):
    """A tar whose manifest would strip up and out: refused before anything is downloaded."""
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as tar:
        data = b"x"
        info = tarfile.TarInfo("top/file.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    served = tmp_path / "served" / "test.tar"
    served.parent.mkdir()
    served.write_bytes(payload.getvalue())
    for hostile in ({"filename": "../../outside.tar"}, {"strip": "/etc"}, {"exclude": ["../x"]}):
        manifest = _manifest(tmp_path, url=served.as_uri(), **hostile)
        assert main(_fetch(tmp_path, manifest)) == 2
        assert "error" in capsys.readouterr().err
    assert not (tmp_path / "dest").exists() and not (tmp_path.parent / "outside.tar").exists()
    # the well-formed manifest unpacks inside dest, and only then records the unpinned digest
    manifest = _manifest(tmp_path, url=served.as_uri(), strip="top")
    assert main(_fetch(tmp_path, manifest)) == 0
    assert (tmp_path / "dest" / "file.txt").read_bytes() == b"x"
    assert "test.tar" in (tmp_path / "dest" / ".downloads" / "SHA256SUMS").read_text()


def test_a_wrong_recorded_checksum_is_cleared_by_forget(tmp_path, capsys):
    served = tmp_path / "served" / "test.tar"
    served.parent.mkdir()
    with tarfile.open(served, "w") as tar:
        info = tarfile.TarInfo("file.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"y"))
    manifest = _manifest(tmp_path, url=served.as_uri())
    downloads = tmp_path / "dest" / ".downloads"
    downloads.mkdir(parents=True)
    (downloads / "SHA256SUMS").write_text("0" * 64 + "  test.tar\n")  # a wrong record
    assert main(_fetch(tmp_path, manifest)) == 2
    assert "data forget" in capsys.readouterr().err
    assert main(["data", "forget", "in9", "test", "--manifest", str(manifest), "--dest", str(tmp_path / "dest")]) == 0
    assert main(_fetch(tmp_path, manifest)) == 0
    assert (tmp_path / "dest" / "file.txt").read_bytes() == b"y"


def test_written_files_respect_the_umask(tmp_path):
    import os

    from bgrepro.io import atomic_write_text

    atomic_write_text(tmp_path / "a.txt", "x")
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~_current_umask()
    assert os.access(tmp_path / "a.txt", os.R_OK)


def _current_umask() -> int:
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_every_file_that_is_not_used_is_named_with_its_reason(tmp_path, capsys):
    """An animated GIF, a FIFO and a link to /dev/zero named as photos, a text file, a subfolder and a file
    beside the class folders: none is read, each is named in rejections.csv and counted in the summary."""
    import csv
    import os

    _with_masks(tmp_path)
    apple = tmp_path / "photos" / "val" / "apple"
    frames = [Image.new("RGB", (32, 32), (40 * k, 0, 0)) for k in range(3)]
    frames[0].save(apple / "moving.gif", save_all=True, append_images=frames[1:])
    os.mkfifo(apple / "fifo.jpg")
    (apple / "zero.png").symlink_to("/dev/zero")
    _text(apple / "notes.txt")
    (apple / "more").mkdir()
    _text(tmp_path / "photos" / "val" / "README.md")
    assert main(_folder_build(tmp_path)) == 0
    printed = capsys.readouterr().out
    with open(tmp_path / "out" / "rejections.csv", newline="") as f:
        rows = {Path(r["path"]).name: r for r in csv.DictReader(f)}
    assert {name: rows[name]["reason"] for name in ("moving.gif", "fifo.jpg", "zero.png", "notes.txt", "more",
                                                     "README.md")} == {
        "moving.gif": "not_an_image", "fifo.jpg": "not_a_file", "zero.png": "not_a_file", "notes.txt": "not_an_image",
        "more": "subfolder", "README.md": "not_in_a_class"}
    assert ".gif" in rows["moving.gif"]["detail"] and "convert it" in rows["moving.gif"]["detail"]
    assert "not_an_image 2" in printed and "not_a_file 2" in printed and "subfolder 1" in printed


def test_a_utf16_csv_is_read_as_text(tmp_path, capsys):
    """Excel's "Unicode text" (UTF-16 with a byte-order mark) is text, not binary data."""
    boxes = _boxes_csv(tmp_path, [])
    boxes.write_bytes(boxes.read_text().encode("utf-16"))
    assert main(_folder_build(tmp_path, boxes=boxes)) == 0, capsys.readouterr().err


def test_a_folder_that_cannot_be_written_is_named_not_its_hidden_temporary_file(tmp_path, monkeypatch):
    import tempfile

    from bgrepro.io import atomic_write_text

    def refuse(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", str(Path(dir) / ".eval.json.x1y2.part"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError) as err:
        atomic_write_text(tmp_path / "out" / "eval.json", "{}")
    assert str(err.value) == f"{tmp_path / 'out'}: folder is not writable (writing eval.json)"
    assert ".part" not in str(err.value)
