"""A user's files are sacred. Every way the audit of issue 24 found to lose them, run again as a test:

- data loss: an output on, above or inside an input, `--overwrite` on a folder bgrepro did not make, a
  single-file output onto a user's file; each gives exit 2 and one line, and every input file is
  byte-identical afterwards;
- one run per output: a held lock stops a second run; two runs at once never leave a corrupt output
  behind an exit 0; a killed run's lock is released;
- reruns notice their inputs: after photos are added, `build`, `train`, `localize --write-masks` and
  `report` recompute (the report gives the numbers of a fresh report on the new folder, and no test
  photo lands in training), `challenge --out` never mixes runs;
- every error is one line: bombs, empty .npy, absurd numbers, a full disk, a corrupt timm file, any
  exception type; spreadsheet CSVs (BOM, Windows-1252, semicolons) are read; hidden files are skipped.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bgrepro.cli import main
from tests.conftest import tree_digest
from tests.test_bad_inputs import _photos

_PROGRESS = re.compile(r"\d+%\||\d+/\d+ \[")


def _run(argv, capsys) -> tuple[int, list[str]]:
    """Exit code and the error lines (progress bars and notes left out) of one command."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [ln for ln in re.split(r"[\r\n]+", err) if ln.strip() and not _PROGRESS.search(ln)
                  and not ln.startswith("note:")]


def _refused(argv, capsys, *culprits) -> str:
    code, lines = _run(argv, capsys)
    assert code == 2 and len(lines) == 1, lines
    assert all(c in lines[0] for c in culprits), lines[0]
    return lines[0]


def _everything(*roots: Path) -> dict:
    """Every file under the roots with its bytes' hash (a root may be a file)."""
    import hashlib

    out = {}
    for root in roots:
        out.update({f"{root}:{k}": v for k, v in tree_digest(root).items()} if root.is_dir() else
                   {str(root): hashlib.sha256(root.read_bytes()).hexdigest()})
    return out


@pytest.fixture
def photos(tmp_path):
    """A project folder: photos (train/val, two classes), their masks and a boxes CSV."""
    _photos(tmp_path / "photos", tmp_path / "masks")
    rows = ["path,xmin,ymin,xmax,ymax"] + [f"{s}/{c}/img_{k}.png,8,6,21,19" for s in ("train", "val")
                                           for c in ("apple", "pear") for k in range(4)]
    (tmp_path / "boxes.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def _build(src: Path, out: Path, *extra, masks: Path | None = None, boxes: Path | None = None) -> list:
    argv = ["build", "--source", "folder", "--in", src, "--out", out, "--size", "32", "--workers", "1"]
    return argv + (["--boxes", boxes] if boxes else ["--masks", masks]) + list(extra)


# ------------------------------------------------------------------------------------------------ data loss
def test_no_output_may_overlap_an_input_even_with_overwrite(photos, capsys):
    p = photos
    inputs = _everything(p / "photos", p / "masks", p / "boxes.csv")
    cases = [
        (_build(p / "photos", p / "photos", "--overwrite", masks=p / "masks"), "is the input --in"),
        (_build(p / "photos", p, "--overwrite", masks=p / "masks"), "contains the input --in"),
        (_build(p / "photos", p / "photos" / "train" / "out", masks=p / "masks"), "inside the input --in"),
        (_build(p / "photos", p / "masks", "--overwrite", masks=p / "masks"), "the input --masks"),
        (_build(p / "photos", p, "--overwrite", boxes=p / "boxes.csv"), "contains the input --in"),
        (_build(p / "photos", p / "boxes.csv", "--overwrite", boxes=p / "boxes.csv"), "the input --boxes"),
        (["report", "--images", p / "photos", "--masks", p / "masks", "--out", p / "photos", "--overwrite"],
         "is the input --images"),
        (["report", "--images", p / "photos", "--masks", p / "masks", "--out", p, "--overwrite"], "contains"),
        (["report", "--images", p / "photos", "--boxes", p / "boxes.csv", "--out", p / "photos" / "r"], "inside"),
    ]
    for argv, culprit in cases:
        _refused(argv, capsys, culprit)
    (p / "link").symlink_to(p / "photos", target_is_directory=True)  # symlinks are followed
    _refused(_build(p / "photos", p / "link", "--overwrite", masks=p / "masks"), capsys, "is the input --in")
    assert _everything(p / "photos", p / "masks", p / "boxes.csv") == inputs


def test_overwrite_replaces_only_what_bgrepro_made(photos, capsys, monkeypatch):
    p = photos
    project = p / "project"
    (project / "src").mkdir(parents=True)
    (project / "notes.txt").write_text("my notes\n")
    (project / "src" / "main.py").write_text("print('mine')\n")
    mine = _everything(project)
    for argv in (["synth", "--out", project, "--profile", "tiny", "--overwrite"],
                 _build(p / "photos", project, "--overwrite", masks=p / "masks"),
                 ["report", "--images", p / "photos", "--masks", p / "masks", "--out", project, "--overwrite"]):
        line = _refused(argv, capsys, str(project), "did not make")
        assert "--overwrite replaces only bgrepro's own output" in line  # never suggests --overwrite for it
    assert "pass --overwrite" not in _refused(["synth", "--out", project, "--profile", "tiny"], capsys)
    monkeypatch.chdir(project)  # the current folder, the home folder and the root are never an output
    _refused(["report", "--images", p / "photos", "--masks", p / "masks", "--out", ".", "--overwrite"], capsys,
             "current folder")
    _refused(["synth", "--out", "/", "--profile", "tiny"], capsys, "filesystem root")
    _refused(["synth", "--out", Path.home(), "--profile", "tiny"], capsys, "home folder")
    assert _everything(project) == mine and not list(project.parent.glob(".*partial"))
    # the output of another command is not this command's to replace either
    code, _ = _run(["synth", "--out", p / "synthetic", "--profile", "tiny"], capsys)
    assert code == 0
    _refused(_build(p / "photos", p / "synthetic", "--overwrite", masks=p / "masks"), capsys, "bgrepro synth")


def test_single_file_outputs_never_replace_a_users_file(photos, tiny_variants, tiny_checkpoint, capsys, monkeypatch,
                                                        tmp_path_factory):
    p = photos
    results = tmp_path_factory.mktemp("results")
    monkeypatch.setenv("BGREPRO_RESULTS", str(results))
    checkpoint = p / "model.pt"
    shutil.copy(tiny_checkpoint, checkpoint)
    notes = p / "notes.json"
    notes.write_text('{"mine": true}\n')
    mine = _everything(checkpoint, notes)
    model = ["--data", tiny_variants, "--checkpoint", checkpoint]
    _refused(["eval", *model, "--record", checkpoint], capsys, "is the input --checkpoint")
    _refused(["eval", *model, "--record", notes], capsys, "not written by bgrepro")
    _refused(["eval", *model, "--record", tiny_variants / "eval.json"], capsys, "inside the input --data")
    (p / "eval.json").write_text("my own eval\n")  # beside the model: the user's, never where eval writes
    folder = _everything(p)
    assert _run(["eval", *model, "--bootstrap", "0"], capsys)[0] == 0
    assert _everything(p) == folder  # nothing written beside the model: the default record is bgrepro's own folder
    written = list((results / "eval").glob("model-*.json"))
    assert len(written) == 1 and json.loads(written[0].read_text())["written_by"] == "bgrepro eval"
    assert _everything(checkpoint, notes) == mine
    record = p / "record.json"
    assert _run(["eval", *model, "--record", record, "--bootstrap", "0"], capsys)[0] == 0
    assert json.loads(record.read_text())["written_by"] == "bgrepro eval"
    assert _run(["eval", *model, "--record", record, "--bootstrap", "0"], capsys)[0] == 0  # its own: replaced
    figures = p / "figures"  # a user's folder holding their own saliency.png
    figures.mkdir()
    (figures / "saliency.png").write_bytes(b"my figure")
    for command in ("saliency", "challenge"):
        _refused([command, *model, "--out", figures, "--overwrite"], capsys, str(figures), "did not make")
    _refused(["localize", "--data", tiny_variants, "--backbone", f"checkpoint:{checkpoint}", "--write-masks",
              figures], capsys, "did not make")
    _refused(["train", "--data", tiny_variants, "--variant", "original", "--out", figures, "--profile", "tiny"],
             capsys, "did not make")
    assert (figures / "saliency.png").read_bytes() == b"my figure" and sorted(figures.iterdir()) == [
        figures / "saliency.png"]
    # report --overwrite with the given checkpoint inside --out: refused, the checkpoint kept
    inside = p / "rep" / "model.pt"
    inside.parent.mkdir()
    shutil.copy(tiny_checkpoint, inside)
    _refused(["report", "--images", p / "photos", "--masks", p / "masks", "--out", p / "rep", "--checkpoint",
              inside, "--overwrite"], capsys, "contains the input --checkpoint")
    assert inside.read_bytes() == tiny_checkpoint.read_bytes()


def _fetch_of(tmp_path: Path, files: dict[str, bytes]) -> list:
    """`data fetch` of a served tar archive holding `files`, into tmp_path/dest."""
    import io
    import tarfile

    served = tmp_path / "served.tar"
    with tarfile.open(served, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"archives": [{"name": "test", "url": served.as_uri(), "filename": "test.tar",
                                                  "sha256": None}]}))
    return ["data", "fetch", "in9", "--manifest", manifest, "--dest", tmp_path / "dest"]


def test_fetch_never_replaces_a_users_file_in_dest(tmp_path, capsys):
    fetch = _fetch_of(tmp_path, {"val/cat/a.jpg": b"archive a", "README.txt": b"archive readme"})
    manifest = fetch[4]
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "README.txt").write_text("my readme\n")
    _refused(fetch, capsys, str(dest / "README.txt"), "not unpacked by bgrepro")
    assert (dest / "README.txt").read_text() == "my readme\n" and not (dest / "val").exists()
    (dest / "README.txt").unlink()
    assert _run(fetch, capsys)[0] == 0
    assert (dest / "val" / "cat" / "a.jpg").read_bytes() == b"archive a"
    # forgetting and fetching again may replace what bgrepro itself unpacked
    assert _run(["data", "forget", "in9", "test", "--manifest", manifest, "--dest", dest], capsys)[0] == 0
    assert _run(fetch, capsys)[0] == 0


# ------------------------------------------------------------------------------------------ one run per output
def test_a_locked_output_stops_a_second_run_and_a_dead_runs_lock_is_released(tmp_path, capsys):
    from bgrepro.outputs import lock_path, locked

    out = tmp_path / "synth"
    with locked(out):
        line = _refused(["synth", "--out", out, "--profile", "tiny"], capsys, "another bgrepro run", str(out))
        assert f"pid {os.getpid()}" in line
    assert not out.exists() and not lock_path(out).exists()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from bgrepro.outputs import locked\n"
                               "with locked(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)", str(out)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    _refused(["synth", "--out", out, "--profile", "tiny"], capsys, "another bgrepro run")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert _run(["synth", "--out", out, "--profile", "tiny"], capsys)[0] == 0  # the OS released the dead lock


def test_concurrent_runs_never_leave_a_corrupt_output_behind_an_exit_0(tmp_path, tiny_dataset):
    reference = tmp_path / "reference"
    argv = ["build", "--source", "synthetic", "--in", str(tiny_dataset), "--workers", "1"]
    assert main([*argv, "--out", str(reference)]) == 0
    want = {k: v for k, v in tree_digest(reference).items()}
    for attempt in range(2):
        out = tmp_path / f"together{attempt}"
        runs = [subprocess.Popen([sys.executable, "-m", "bgrepro", *argv, "--out", str(out)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        results = [(r.wait(timeout=300), r.stderr.read()) for r in runs]
        assert all(code in (0, 2) for code, _ in results), results
        assert any(code == 0 for code, _ in results)
        for code, err in results:
            if code == 2:
                assert "another bgrepro run" in err and "Traceback" not in err
        got = tree_digest(out)
        assert got.keys() == want.keys()  # complete: every image, the manifest, the marker
        assert {k: v for k, v in got.items() if not k.startswith(".")} == {
            k: v for k, v in want.items() if not k.startswith(".")}
        assert not list(tmp_path.glob(f".together{attempt}*"))


# ---------------------------------------------------------------------------------- reruns notice their inputs
def _add_photos(root: Path, masks: Path, count: int = 3) -> None:
    rng = np.random.default_rng(9)
    for k in range(count):
        for split in ("train", "val"):
            image = rng.integers(0, 90, (32, 32, 3), dtype=np.uint8)
            mask = np.zeros((32, 32), np.uint8)
            mask[6:20, 8 + k:22 + k] = 255
            image[mask > 0] = (200, 0, 90)
            Image.fromarray(image).save(root / split / "apple" / f"new_{k}.png")
            Image.fromarray(mask).save(masks / split / "apple" / f"new_{k}.png")


def test_build_and_train_rerun_on_changed_inputs_recompute(photos, capsys):
    p = photos
    out, fresh = p / "built", p / "fresh"
    assert _run(_build(p / "photos", out, masks=p / "masks"), capsys)[0] == 0
    run = ["train", "--data", out, "--variant", "original", "--out", p / "run", "--profile", "tiny", "--epochs", "1"]
    assert _run(run, capsys)[0] == 0
    old_checkpoint = torch.load(p / "run" / "checkpoint.pt", weights_only=True)
    _add_photos(p / "photos", p / "masks")
    capsys.readouterr()
    assert main([str(a) for a in _build(p / "photos", out, masks=p / "masks")]) == 0
    assert "changed since" in capsys.readouterr().err
    assert main([str(a) for a in _build(p / "photos", fresh, masks=p / "masks")]) == 0
    assert (out / "manifest.csv").read_text() == (fresh / "manifest.csv").read_text()
    ours = {k: v for k, v in tree_digest(out).items() if not k.startswith(".")}
    assert ours == {k: v for k, v in tree_digest(fresh).items() if not k.startswith(".")}
    assert sum("new_" in k for k in ours) > 0
    assert _run(run, capsys)[0] == 0  # the data changed: trained afresh, never the old checkpoint
    new_checkpoint = torch.load(p / "run" / "checkpoint.pt", weights_only=True)
    assert not all(torch.equal(a, b) for a, b in zip(old_checkpoint["state_dict"].values(),
                                                     new_checkpoint["state_dict"].values()))
    assert _run([*run[:-2], "--epochs", "2"], capsys)[0] == 2  # another config: refused ...
    assert _run([*run[:-2], "--epochs", "2", "--overwrite"], capsys)[0] == 0  # ... or replaced on request


def test_localize_masks_and_challenge_out_are_one_configurations_output(photos, tiny_variants, tiny_checkpoint,
                                                                        capsys):
    p = photos
    images = p / "images"
    shutil.copytree(p / "photos", images)
    masks = p / "rps"
    localize = ["localize", "--data", images, "--backbone", f"checkpoint:{tiny_checkpoint}", "--size", "32",
                "--write-masks", masks, "--mask-threshold", "0.2"]
    assert _run(localize, capsys)[0] == 0
    first = sorted(masks.rglob("*.npy"))
    _add_photos(images, p / "masks")
    assert _run(localize, capsys)[0] == 0  # new photos: their masks written, none stale
    again = sorted(masks.rglob("*.npy"))
    assert {f.name for f in again} - {f.name for f in first} <= {f"new_{k}.npy" for k in range(3)}
    _refused([*localize[:-1], "0.4"], capsys, "mask_threshold")
    assert _run([*localize[:-1], "0.4", "--overwrite"], capsys)[0] == 0
    challenge = ["challenge", "--data", tiny_variants, "--checkpoint", tiny_checkpoint, "--out", p / "ch"]
    assert _run([*challenge, "--all-pairs"], capsys)[0] == 0
    assert (p / "ch" / "fooling_histogram.png").exists()
    _refused(challenge, capsys, "all_pairs")
    assert _run([*challenge, "--overwrite"], capsys)[0] == 0
    assert sorted(f.name for f in (p / "ch").iterdir()) == [".bgrepro-files.txt", ".bgrepro.json", "challenge.json"]


def test_report_after_adding_photos_equals_a_fresh_report(tmp_path, capsys):
    from tests.test_report import _numbers, make_photos

    photos = make_photos(tmp_path / "a" / "photos", per_class=5)
    args = ["--boxes", tmp_path / "a" / "boxes.csv", "--size", "32", "--profile", "tiny", "--epochs", "1",
            "--bootstrap", "100"]
    out = tmp_path / "report"
    assert _run(["report", "--images", photos, "--out", out, *args], capsys)[0] == 0
    before = json.loads((out / "report.json").read_text())
    (out / "models" / "notes.md").write_text("my notes on the models\n")  # a user's files among the report's own
    (out / "data" / "README.txt").write_text("my readme\n")
    more = make_photos(tmp_path / "b" / "photos", per_class=8)  # three more photos per class, boxes for all
    for folder in more.iterdir():
        for file in folder.iterdir():
            if not (photos / folder.name / file.name).exists():
                shutil.copy(file, photos / folder.name / file.name)
    (tmp_path / "a" / "boxes.csv").write_text((tmp_path / "b" / "boxes.csv").read_text())
    assert _run(["report", "--images", photos, "--out", out, *args], capsys)[0] == 0
    after = json.loads((out / "report.json").read_text())
    fresh_out = tmp_path / "fresh"
    assert _run(["report", "--images", photos, "--out", fresh_out, *args], capsys)[0] == 0
    fresh = json.loads((fresh_out / "report.json").read_text())
    assert after["data"]["images"] == fresh["data"]["images"] == 24 != before["data"]["images"]
    assert (out / "models" / "notes.md").read_text() == "my notes on the models\n"  # kept through the recompute
    assert (out / "data" / "README.txt").read_text() == "my readme\n"
    assert _numbers(after) == _numbers(fresh)
    train = {p.relative_to(out / "data" / "original" / "train") for p in (out / "data/original/train").rglob("*.*")}
    test = {p.relative_to(out / "data" / "original" / "val") for p in (out / "data/original/val").rglob("*.*")}
    assert train and test and not train & test  # no test photo in training
    models = sorted(p.name for p in (out / "models").iterdir() if p.name != "notes.md")
    assert models == sorted(p.name for p in (fresh_out / "models").iterdir())


# --------------------------------------------------------------------------------------- every error, one line
def test_every_error_is_one_line_naming_its_cause(photos, tiny_variants, tiny_checkpoint, capsys, monkeypatch):
    p = photos
    out = p / "out"
    # a decompression bomb: PIL's limit, lowered so that the test's photo exceeds it twice over
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)
    _refused(_build(p / "photos", out, masks=p / "masks"), capsys, "img_0.png", "too many pixels")
    monkeypatch.undo()
    empty = p / "masks" / "train" / "apple" / "img_1.npy"  # a 0-byte mask in place of the PNG one
    png = empty.with_suffix(".png").read_bytes()
    empty.with_suffix(".png").unlink()
    empty.write_bytes(b"")
    _refused(_build(p / "photos", out, masks=p / "masks"), capsys, "img_1.npy")
    empty.unlink()
    empty.with_suffix(".png").write_bytes(png)
    model = ["--data", tiny_variants, "--checkpoint", tiny_checkpoint]
    _refused(["eval", *model, "--bootstrap", "1000000000"], capsys, "--bootstrap", "100,000")
    _refused(["synth", "--out", out, "--seed", str(2**70)], capsys, "--seed")
    _refused(["report", "--images", p / "photos", "--out", out, "--seeds", "1000000"], capsys, "--seeds")
    _refused(["report", "--images", p / "photos", "--out", out, "--localizer-weights", p / "absent.pth"], capsys,
             "absent.pth")
    _refused(["report", "--images", p / "photos", "--masks", p / "masks", "--out", out, "--localizer-weights",
              tiny_checkpoint], capsys, "--localizer-weights")

    from bgrepro.data import synth as synth_module

    def full_disk(path, *args):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(synth_module, "_write_annotations", full_disk)
    _refused(["synth", "--out", out, "--profile", "tiny"], capsys, "disk is full", "annotations.csv")
    monkeypatch.undo()
    assert not out.exists() and not list(p.glob(".out*"))  # nothing half-written

    from bgrepro.analyses import evaluate as evaluate_module

    def surprise(*args, **kwargs):
        raise RuntimeError("an error of a kind bgrepro does not expect")

    monkeypatch.setattr(evaluate_module, "correctness", surprise)
    _refused(["eval", *model, "--record", p / "r.json"], capsys, "RuntimeError", "does not expect")
    monkeypatch.undo()
    corrupt = p / "model.safetensors"  # a corrupt file in timm's cache, read offline
    corrupt.write_bytes(b"\x00" * 64)
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda repo, name: str(corrupt))
    from bgrepro.in9 import CLASS_FOLDERS

    in9 = p / "in9"
    for folder in CLASS_FOLDERS:
        (in9 / "original" / "val" / folder).mkdir(parents=True)
    _refused(["eval", "--data", in9, "--arch", "resnet10t", "--pretrained", "--offline", "--record",
              p / "r.json"], capsys, str(corrupt))


def test_spreadsheet_csvs_and_hidden_files_are_read_as_a_user_means_them(photos, capsys):
    p = photos
    reference = p / "reference"
    assert _run(_build(p / "photos", reference, boxes=p / "boxes.csv"), capsys)[0] == 0
    want = (reference / "manifest.csv").read_text()
    rows = (p / "boxes.csv").read_text().splitlines()
    spreadsheets = {
        "bom.csv": ("\ufeff" + "\n".join(rows) + "\n").encode("utf-8"),
        "excel.csv": ("\r\n".join(r.replace(",", ";") for r in rows) + "\r\n").encode("cp1252"),
        "spaces.csv": ("\n".join(", ".join(r.split(",")) for r in rows) + "\n").encode("utf-8"),
    }
    for name, data in spreadsheets.items():
        (p / name).write_bytes(data)
        assert _run(_build(p / "photos", p / f"out-{name}", boxes=p / name), capsys)[0] == 0, name
        assert (p / f"out-{name}" / "manifest.csv").read_text() == want
    latin = p / "latin"  # a class and a photo named in Windows-1252, as Excel on Windows saves the CSV
    shutil.copytree(p / "photos", latin)
    os.rename(latin / "train" / "pear", latin / "train" / "poire_mûre")
    os.rename(latin / "val" / "pear", latin / "val" / "poire_mûre")
    (p / "latin.csv").write_bytes("\r\n".join(r.replace("pear", "poire_mûre") for r in rows).encode("cp1252"))
    assert _run(_build(latin, p / "out-latin", boxes=p / "latin.csv"), capsys)[0] == 0
    # macOS and Jupyter litter: skipped, never read as photos or classes
    for split in ("train", "val"):
        (p / "photos" / split / "apple" / "._img_0.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
        (p / "photos" / split / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        (p / "photos" / split / ".ipynb_checkpoints").mkdir()
    assert _run(_build(p / "photos", p / "littered", boxes=p / "boxes.csv"), capsys)[0] == 0
    assert (p / "littered" / "manifest.csv").read_text() == want


# ------------------------------------------------------------------------ the second audit (~100 trials)
def test_files_beside_and_inside_an_output_that_bgrepro_did_not_make_are_never_touched(photos, capsys):
    p = photos
    (p / ".built.lock").write_text("my lock notes\n")  # names a user may use beside an output
    (p / ".built.replaced").mkdir()
    (p / ".built.replaced" / "keep.txt").write_text("mine\n")
    build = _build(p / "photos", p / "built", masks=p / "masks")
    assert _run(build, capsys)[0] == 0
    assert (p / ".built.lock").read_text() == "my lock notes\n"
    assert (p / ".built.replaced" / "keep.txt").read_text() == "mine\n"
    (p / ".built.bgrepro-lock").write_text("not a lock of bgrepro's\n")  # in the way of bgrepro's own lock name
    _refused(build, capsys, ".built.bgrepro-lock", "not bgrepro's")
    assert (p / ".built.bgrepro-lock").read_text() == "not a lock of bgrepro's\n"
    (p / ".built.bgrepro-lock").unlink()
    hidden = p / "hidden"  # an --out holding only hidden files is not empty: they are the user's
    hidden.mkdir()
    (hidden / ".config.lock").write_text("")
    _refused(_build(p / "photos", hidden, masks=p / "masks"), capsys, "did not make")
    assert (hidden / ".config.lock").exists()
    # a user's notes inside a build survive a rebuild on changed photos
    (p / "built" / "NOTES.txt").write_text("my notes\n")
    (p / "built" / "original" / "val" / "NOTES.txt").write_text("deep notes\n")
    _add_photos(p / "photos", p / "masks", count=1)
    assert _run(build, capsys)[0] == 0
    assert (p / "built" / "NOTES.txt").read_text() == "my notes\n"
    assert (p / "built" / "original" / "val" / "NOTES.txt").read_text() == "deep notes\n"
    assert any("new_0" in f for f in tree_digest(p / "built"))


def test_photos_edited_in_place_or_swapped_are_noticed_downstream(photos, tiny_checkpoint, capsys):
    p = photos
    for f in list(p.rglob("*.png")) + list(p.rglob("*.npy")):
        os.utime(f, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    build = _build(p / "photos", p / "built", masks=p / "masks")
    train = ["train", "--data", p / "built", "--variant", "original", "--out", p / "run", "--profile", "tiny",
             "--epochs", "1"]
    localize = ["localize", "--data", p / "built", "--backbone", f"checkpoint:{tiny_checkpoint}", "--write-masks",
                p / "rps", "--mask-threshold", "0.2"]
    for argv in (build, train, localize):
        assert _run(argv, capsys)[0] == 0
    checkpoint = (p / "run" / "checkpoint.pt").read_bytes()
    manifest = (p / "built" / "manifest.csv").read_text()
    # invert every photo in place: same names, same sizes, same modification times
    for f in (p / "photos").rglob("*.png"):
        inverted = 255 - np.asarray(Image.open(f))
        Image.fromarray(inverted).save(f)
        os.utime(f, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    capsys.readouterr()
    for argv in (build, train, localize):
        code, _ = _run(argv, capsys)
        assert code == 0
    assert (p / "built" / "manifest.csv").read_text() == manifest  # the same listing ...
    assert (p / "run" / "checkpoint.pt").read_bytes() != checkpoint  # ... yet the model was trained afresh
    # two masks of the same size and time swapped: the build notices
    a, b = p / "masks" / "train" / "apple" / "img_0.png", p / "masks" / "train" / "apple" / "img_1.png"
    os.replace(a, p / "t.png")
    os.replace(b, a)
    os.replace(p / "t.png", b)
    capsys.readouterr()
    assert main([str(x) for x in build]) == 0
    assert "changed since" in capsys.readouterr().err


def test_a_symlinked_or_nested_output_is_one_output(tmp_path, capsys):
    from bgrepro.outputs import locked

    real, alias = tmp_path / "real", tmp_path / "alias"
    real.mkdir()
    alias.symlink_to(real, target_is_directory=True)
    with locked(real):  # another run holds the real folder: its alias is the same output
        _refused(["synth", "--out", alias, "--profile", "tiny"], capsys, "another bgrepro run")
    assert _run(["synth", "--out", alias, "--profile", "tiny"], capsys)[0] == 0
    assert alias.is_symlink() and (real / "synth.json").exists()
    assert _run(["synth", "--out", alias, "--profile", "tiny", "--seed", "1", "--overwrite"], capsys)[0] == 0
    assert alias.is_symlink() and json.loads((real / "synth.json").read_text())["seed"] == 1
    assert not list(tmp_path.glob(".*replaced")) and not list(tmp_path.glob(".*partial"))
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from bgrepro.outputs import locked\n"
                               "with locked(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)",
                               str(tmp_path / "report")], stdout=subprocess.PIPE, text=True)
    try:  # an output inside another run's output (a report's data, say) waits for it
        assert holder.stdout.readline().strip() == "held"
        _refused(["synth", "--out", tmp_path / "report" / "data", "--profile", "tiny"], capsys, "lies inside")
    finally:
        holder.kill()
        holder.wait()
    from bgrepro.outputs import check_location, check_no_overlap

    (tmp_path / "~" / "p").mkdir(parents=True)  # a folder literally named ~ (a quoted '~') is not the home folder
    here = os.getcwd()
    try:
        os.chdir(tmp_path)
        with pytest.raises(ValueError, match="inside the input"):
            check_no_overlap("~/p/sub", {"--in": "~/p"})
        check_location("~")  # the folder named ~ here, as the writes take it
    finally:
        os.chdir(here)


def test_a_failed_rerun_keeps_the_last_good_output(photos, tiny_variants, capsys):
    p = photos
    data = p / "data"
    shutil.copytree(tiny_variants / "original", data / "original")  # a plain folder in the official layout
    run = ["train", "--data", data, "--variant", "original", "--out", p / "run", "--profile", "tiny", "--epochs", "1"]
    assert _run(run, capsys)[0] == 0
    good = (p / "run" / "checkpoint.pt").read_bytes()
    model = ["--data", tiny_variants, "--checkpoint", p / "run" / "checkpoint.pt"]
    # a record asked for inside the run folder (never the default: that is bgrepro's results folder)
    assert _run(["eval", *model, "--bootstrap", "0", "--record", p / "run" / "eval.json"], capsys)[0] == 0
    record = json.loads((p / "run" / "eval.json").read_text())
    assert len(record["weights_sha256"]) == 64  # which file was scored, exactly
    victim = next((data / "original" / "train").rglob("*.png"))
    victim.write_bytes(victim.read_bytes()[:40])  # a truncated photo
    _refused(run, capsys, victim.name)
    assert (p / "run" / "checkpoint.pt").read_bytes() == good  # the last good run is back
    assert (p / "run" / "eval.json").exists() and not (p / "run" / ".bgrepro-previous").exists()
    shutil.copy(next((tiny_variants / "original" / "train").rglob(victim.name)), victim)
    assert _run([*run[:-1], "2", "--overwrite"], capsys)[0] == 0  # replaced on request: its eval record goes too
    assert not (p / "run" / "eval.json").exists()


def test_fetch_checks_every_target_before_anything_moves(tmp_path, capsys):
    fetch = _fetch_of(tmp_path, {"extra/b.txt": b"x", "original/val/cat/a.jpg": b"x"})
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "original").write_text("a user's file where the archive has a folder\n")
    _refused(fetch, capsys, str(dest / "original"), "needs a folder")
    assert not (dest / "extra").exists()  # nothing moved
    (dest / "original").unlink()
    outside = tmp_path / "outside"
    outside.mkdir()
    (dest / "original").symlink_to(outside, target_is_directory=True)  # a symlinked subfolder
    _refused(fetch, capsys, "original")
    assert not list(outside.iterdir())
    (dest / "original").unlink()
    (dest / "extra").mkdir()
    (dest / "extra" / "b.txt").symlink_to(tmp_path / "nowhere")  # a dangling link of the user's
    _refused(fetch, capsys, "b.txt", "not unpacked by bgrepro")
    assert (dest / "extra" / "b.txt").is_symlink()
    (dest / "extra" / "b.txt").unlink()
    assert _run(fetch, capsys)[0] == 0


def test_records_and_interruptions_at_the_edges(photos, tiny_variants, tiny_checkpoint, capsys, monkeypatch):
    p = photos
    model = ["eval", "--data", tiny_variants, "--checkpoint", tiny_checkpoint, "--bootstrap", "0"]
    (p / "link.json").symlink_to(p / "nowhere.json")
    _refused([*model, "--record", p / "link.json"], capsys, "symbolic link")
    (p / "fan.json").write_text('{"written_by": "bgrepro-fan club"}\n')
    _refused([*model, "--record", p / "fan.json"], capsys, "not written by bgrepro eval")
    from bgrepro import cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)  # Ctrl-C while the libraries load
    code, lines = _run(["synth", "--out", p / "x"], capsys)
    assert code == 130 and lines == ["bgrepro: interrupted"]


def test_a_folders_identity_sees_every_photo_change_and_nothing_hidden(tmp_path):
    """The identity a resumed run compares (`outputs.fingerprint`): an added, edited, renamed or linked photo changes
    it, in any folder; a hidden file or folder (.DS_Store, .ipynb_checkpoints) and a broken link do not; a built
    dataset's identity leaves out the previews and records at its top."""
    from bgrepro.outputs import fingerprint, write_marker

    photos = tmp_path / "photos"
    for name in ("cat/a.png", "cat/b c.png", "dog/x.png", "dog b/y.png"):
        (photos / name).parent.mkdir(parents=True, exist_ok=True)
        (photos / name).write_bytes(name.encode())
    seen = [fingerprint(photos)]
    assert seen[0].endswith(":4 files")
    (photos / ".DS_Store").write_bytes(b"x")
    (photos / ".ipynb_checkpoints").mkdir()
    (photos / ".ipynb_checkpoints" / "a.png").write_bytes(b"x")
    (photos / "cat" / "._a.png").write_bytes(b"x")
    (photos / "cat" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    assert fingerprint(photos) == seen[0]
    (tmp_path / "elsewhere.png").write_bytes(b"e")
    (photos / "dog" / "linked.png").symlink_to(tmp_path / "elsewhere.png")
    seen.append(fingerprint(photos))
    (photos / "dog" / "z.png").write_bytes(b"z")
    seen.append(fingerprint(photos))
    (photos / "dog" / "z.png").rename(photos / "dog" / "w.png")
    seen.append(fingerprint(photos))
    os.utime(photos / "dog" / "w.png", ns=(1, 1))
    seen.append(fingerprint(photos))
    assert len(set(seen)) == len(seen) and seen[-1].endswith(":6 files")
    write_marker(photos, "build", {}, {})  # the same folder as a dataset bgrepro built
    built = fingerprint(photos)
    (photos / "variants.png").write_bytes(b"preview")
    assert built.startswith("dataset:") and fingerprint(photos) == built
    (photos / "cat" / "d.png").write_bytes(b"d")
    assert fingerprint(photos) != built
