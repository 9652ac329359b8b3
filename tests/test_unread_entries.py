"""Nothing a user gave is skipped without a word (issue 46): every entry of a photo folder or a dataset is either
read, or named and counted where the user sees it (the summary, rejections.csv, the record), or it stops the run
with one line naming it; a failure leaves nothing that blocks the same command from resuming, and names the
user's path, never a temporary one."""

from __future__ import annotations

import csv
import errno
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bgrepro import layout
from bgrepro.cli import main
from tests.test_bad_inputs import _folder_build, _photos, _snapshot, _with_masks

_PROGRESS = re.compile(r"\d+%\||\d+/\d+ \[|it/s")


def _bad_entries(folder: Path) -> set[str]:
    """Put one of each kind of entry that is not a readable image into a class folder; their names."""
    (folder / "gone.png").symlink_to(folder / "nowhere" / "photo.png")  # a dangling link
    (folder / "loop.png").symlink_to(folder / "loop.png")  # a link to itself
    (folder / "folder.jpg").mkdir()  # a folder named like a photo
    os.mkfifo(folder / "pipe.jpg")
    (folder / "notes.txt").write_text("not a photo\n")
    return {"gone.png", "loop.png", "folder.jpg", "pipe.jpg", "notes.txt"}


def _entries(root: Path) -> set[Path]:
    """What a folder of class folders holds: every visible entry of its class folders, and the visible entries
    beside them that are not folders (each split of it, where it has train/ and val/)."""
    splits = [root / s for s in layout.SPLITS if (root / s).is_dir()] or [root]
    out = set()
    for split in splits:
        for entry in split.iterdir():
            if entry.name.startswith("."):
                continue
            out |= {p for p in entry.iterdir() if not p.name.startswith(".")} if entry.is_dir() else {entry}
    return out


def _one_line(err: str) -> list[str]:
    return [ln for ln in re.split(r"[\r\n]+", err) if ln.strip() and not _PROGRESS.search(ln)]


def test_a_broken_link_or_a_folder_named_like_a_photo_is_never_left_out_in_silence(tmp_path):
    folder = tmp_path / "cls"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"x")
    names = _bad_entries(folder)
    found = layout.scan(folder)
    assert [p.name for p in found.images] == ["a.png"]
    assert {u.path.name: u.reason for u in found.unread} == {
        "gone.png": "not_a_file", "loop.png": "not_a_file", "folder.jpg": "subfolder", "pipe.jpg": "not_a_file",
        "notes.txt": "not_an_image"}
    assert {u.path.name for u in found.unread} == names
    assert "broken link" in next(u.detail for u in found.unread if u.path.name == "gone.png")
    with pytest.raises(ValueError, match=r"folder\.jpg: a folder inside a class folder.*and 4 more"):
        layout.images_in(folder)


@pytest.fixture(scope="module")
def fx(tiny_variants, tiny_checkpoint):
    return tiny_variants, tiny_checkpoint


@pytest.mark.parametrize("verb", ["eval", "train", "challenge", "saliency", "localize"])
def test_every_verb_on_a_dataset_stops_at_an_entry_it_cannot_read_with_one_line(verb, fx, tmp_path, capsys):
    """A dataset's test image replaced by a dangling link in every variant used to drop each variant's n by one
    in silence; a folder named like a photo or a file beside the class folders likewise."""
    variants, checkpoint = fx
    data = tmp_path / "data"
    shutil.copytree(variants, data, symlinks=True)
    split = layout.TRAIN if verb == "train" else layout.TEST
    victims = []
    for variant in ("original", "mixed_rand"):
        folder = sorted(p for p in layout.split_dir(data, variant, split).iterdir() if p.is_dir())[0]
        victims.append(sorted(folder.iterdir())[0])
        victims[-1].unlink()
        victims[-1].symlink_to(tmp_path / "moved-away.png")
    out = tmp_path / "out"
    argv = {"eval": ["eval", "--data", str(data), "--checkpoint", str(checkpoint), "--record", str(out / "r.json")],
            "train": ["train", "--data", str(data), "--variant", "original", "--out", str(out), "--profile", "tiny",
                      "--epochs", "1"],
            "challenge": ["challenge", "--data", str(data), "--checkpoint", str(checkpoint), "--out", str(out)],
            "saliency": ["saliency", "--data", str(data), "--checkpoint", str(checkpoint), "--out", str(out)],
            "localize": ["localize", "--data", str(data), "--backbone", f"checkpoint:{checkpoint}", "--out",
                         str(out)]}[verb]
    before = _snapshot(tmp_path)
    capsys.readouterr()
    assert main(argv) == 2
    lines = _one_line(capsys.readouterr().err)
    assert len(lines) == 1 and "broken link" in lines[0] and any(str(v) in lines[0] for v in victims), lines
    assert _snapshot(tmp_path) == before


def test_a_file_beside_the_class_folders_of_a_dataset_stops_eval(fx, tmp_path, capsys):
    variants, checkpoint = fx
    data = tmp_path / "data"
    shutil.copytree(variants, data, symlinks=True)
    stray = layout.split_dir(data, "only_fg", layout.TEST) / "README.txt"
    stray.write_text("notes\n")
    assert main(["eval", "--data", str(data), "--checkpoint", str(checkpoint), "--json"]) == 2
    lines = _one_line(capsys.readouterr().err)
    assert len(lines) == 1 and str(stray) in lines[0] and "beside the class folders" in lines[0]


def test_each_verb_on_a_photo_folder_reads_or_names_every_entry(tmp_path, tiny_checkpoint, capsys):
    """build, report and localize over one folder that holds each kind of bad entry: what was read plus what was
    named equals what the folder holds."""
    _with_masks(tmp_path)
    photos = tmp_path / "photos"
    bad = _bad_entries(photos / "val" / "apple")
    (photos / "val" / "README.md").write_text("about these photos\n")
    held = _entries(photos)
    # build: the images read are in Original; every other entry is a row of rejections.csv
    assert main(_folder_build(tmp_path)) == 0
    printed = capsys.readouterr().out
    with open(tmp_path / "out" / "rejections.csv", newline="") as f:
        named = {Path(r["path"]) for r in csv.DictReader(f)}
    read = {photos / p.parent.parent.name / p.parent.name / p.name
            for p in (tmp_path / "out" / "original").rglob("*.*")}
    read = {p.with_suffix(".png") for p in read}
    assert read | named == held and not read & named
    assert {p.name for p in named} == bad | {"README.md"}
    assert "not_a_file 3" in printed and "subfolder 1" in printed and "not_in_a_class 1" in printed
    # report: the same rule through the same build, counted in report.json
    report = ["report", "--images", str(photos), "--masks", str(tmp_path / "masks"), "--out", str(tmp_path / "rep"),
              "--size", "32", "--profile", "tiny", "--epochs", "1", "--seeds", "1", "--bootstrap", "20",
              "--challenge-budget", "20", "--json"]
    assert main(report) == 0, capsys.readouterr().err
    data = json.loads((tmp_path / "rep" / "report.json").read_text())["data"]
    assert data["images"] == len(held) and data["rejected"]["not_a_file"] == 3
    # localize on a plain folder of photos: every entry that is not an image is named in its summary
    flat = tmp_path / "flat"
    flat.mkdir()
    for photo in (photos / "val" / "apple").glob("img_*.png"):
        shutil.copy(photo, flat)
    _bad_entries(flat)
    capsys.readouterr()
    assert main(["localize", "--data", str(flat), "--backbone", f"checkpoint:{tiny_checkpoint}", "--size", "32",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # localize reads a folder with its subfolders: the folder named like a photo is walked (it is empty)
    assert {Path(line.split(":")[0]).name for line in summary["not_read"]} == bad - {"folder.jpg"}


def test_the_real_photo_selection_counts_and_names_links_it_cannot_read(tmp_path):
    from bgrepro.data.photos import check_photos, photos_identity, select_photos

    root = tmp_path / "photos"
    _photos(root / "x", classes=("00_dog", "01_bird"), per_class=3)
    for name in ("00_dog", "01_bird"):
        shutil.move(root / "x" / "val" / name, root / name)
    shutil.rmtree(root / "x")
    bad = _bad_entries(root / "00_dog")
    before = photos_identity(root)
    selection = select_photos(root, tmp_path / "sel" / "photos", per_class=None, progress=False)
    assert selection.chosen == {"00_dog": 3, "01_bird": 3}
    assert selection.available == {"00_dog": 3 + len(bad), "01_bird": 3}
    assert {Path(r["path"]).name for r in selection.rejected} == bad
    os.unlink(root / "00_dog" / "gone.png")
    assert photos_identity(root) != before  # a link removed is a change of what the folder holds
    check_photos(root)
    # class folders with no photo, only unreadable files, or a link to their parent: one line, before any work
    for case in ("empty", "unreadable", "parent"):
        other = tmp_path / case
        (other / "00_dog").mkdir(parents=True) if case != "parent" else other.mkdir()
        if case == "unreadable":
            (other / "00_dog" / "a.jpg").write_bytes(b"\xff\xd8 not a jpeg")
        if case == "parent":
            (other / "00_dog").symlink_to(other)
        with pytest.raises(ValueError, match="no readable photo"):
            check_photos(other)


def test_the_book_says_a_bad_photo_folder_in_one_line(tmp_path):
    (tmp_path / "photos" / "00_dog").mkdir(parents=True)
    (tmp_path / "photos" / "00_dog" / "a.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    done = subprocess.run([sys.executable, "-m", "bgrepro.book", "run", "--profile", "tiny", "--data", "x", "--synth",
                           "y", "--chapters", "realphotos", "--realphotos", str(tmp_path / "photos")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert len(_one_line(done.stderr)) == 1 and "no readable photo" in done.stderr and "Traceback" not in done.stderr


def test_an_empty_class_folder_is_named_as_empty(tmp_path, capsys):
    _with_masks(tmp_path)
    for photo in (tmp_path / "photos" / "val" / "pear").iterdir():
        photo.unlink()
    assert main(_folder_build(tmp_path)) == 2
    line = _one_line(capsys.readouterr().err)[0]
    assert str(tmp_path / "photos" / "val" / "pear") in line and "no image in this class folder" in line


# --------------------------------------------------------------------------------------------------- writing
def test_a_full_disk_during_a_torch_save_names_the_file_meant(tmp_path, monkeypatch):
    """torch's archive writer says `unexpected pos` when the disk fills: the same words as every other verb's."""
    from bgrepro import io as bio
    from bgrepro.cli import _describe

    def short_write(tmp):
        Path(tmp).write_bytes(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 21888 vs 21784")

    monkeypatch.setattr(bio.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(100, 100, 0))
    target = tmp_path / "run" / "checkpoint.pt"
    with pytest.raises(OSError) as err:
        bio.atomic_write(target, short_write)
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(target)
    assert _describe(err.value).startswith(f"the disk is full writing {target}; free some space")
    assert list((tmp_path / "run").iterdir()) == []  # the temporary file is gone


def test_a_full_disk_on_a_small_file_system_stops_train_in_one_line(tiny_variants, tmp_path, capsys):
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(small)], capture_output=True).returncode:
        pytest.skip("this machine does not let the test mount a small file system")
    try:
        code = main(["train", "--data", str(tiny_variants), "--variant", "original", "--out", str(small / "run"),
                     "--profile", "tiny", "--epochs", "1"])
        err = capsys.readouterr().err
        assert code == 2 and "the disk is full writing" in err and "inline_container" not in _one_line(err)[0][:80]
        assert len(_one_line(err)) == 1, err
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_a_read_only_folder_is_named_not_a_temporary_file(tmp_path, monkeypatch):
    from bgrepro import io as bio

    def read_only(*args, dir=None, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(Path(dir) / ".r.json.l9phxr_c.part"))

    monkeypatch.setattr(bio.tempfile, "mkstemp", read_only)
    with pytest.raises(PermissionError) as err:
        bio.atomic_write_text(tmp_path / "r.json", "{}")
    assert str(err.value) == f"{tmp_path}: folder is not writable (writing r.json)"


def test_an_output_at_a_mount_point_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    from bgrepro import outputs

    out = tmp_path / "mounted"
    out.mkdir()
    monkeypatch.setattr(outputs.os.path, "ismount", lambda p: Path(p) == out)
    assert main(["synth", "--out", str(out), "--profile", "tiny"]) == 2
    line = _one_line(capsys.readouterr().err)[0]
    assert "is a mount point" in line and str(out / "bgrepro-out") in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mounted"] and not any(out.iterdir())


def test_a_pickle_given_as_weights_is_one_line_without_torchs_warning(tiny_variants, tmp_path):
    import pickle

    raw = tmp_path / "weights.bin"
    raw.write_bytes(pickle.dumps({"w": torch.zeros(2)}, protocol=4))
    done = subprocess.run([sys.executable, "-m", "bgrepro", "eval", "--data", str(tiny_variants), "--checkpoint",
                           str(raw), "--arch", "smallcnn"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and len(_one_line(done.stderr)) == 1 and "Warning" not in done.stderr, done.stderr


# -------------------------------------------------------------------------------------------- several processes
def test_a_failed_run_under_several_processes_leaves_nothing_and_resumes(tmp_path):
    """`--processes 2 build` stopped by a corrupt photo in rank 1's block: rank 0 is ended by the launcher, and
    cleans up as one process does (no staging folder, no lock), so the same command succeeds once it is fixed."""
    _photos(tmp_path / "photos", tmp_path / "masks", per_class=60, size=96)  # rank 0 still builds its images...
    bad = tmp_path / "photos" / "val" / "apple" / "img_0.png"  # ...when rank 1 fails on the first of its block
    good = bad.read_bytes()
    bad.write_bytes(good[:60])
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    env.pop("OMP_NUM_THREADS", None)
    argv = [sys.executable, "-m", "bgrepro", "--processes", "2", *_folder_build(tmp_path)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 2 and str(bad) in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["masks", "photos"]  # no .out.partial, no lock
    bad.write_bytes(good)
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["masks", "out", "photos"]


def test_a_killed_runs_working_entries_are_never_taken_for_a_users_files(tmp_path):
    """A report killed under several processes left its data's staging folder and lock inside the output: the
    next run neither keeps them as the user's files nor puts them back into the new output."""
    from bgrepro.outputs import owned_files, record_owned, set_aside, user_files

    out = tmp_path / "report"
    (out / "data").mkdir(parents=True)
    (out / "data" / "a.txt").write_text("bgrepro's\n")
    record_owned(out)
    (out / "notes.txt").write_text("the user's\n")
    (out / ".data.partial" / "original").mkdir(parents=True)
    (out / ".data.partial" / "original" / "x.png").write_bytes(b"half")
    (out / ".data.bgrepro-lock").write_text("pid 1\n")
    assert user_files(out) == {"notes.txt"}
    with set_aside(out, ["data", ".data.partial", ".data.bgrepro-lock", "notes.txt"], owned=owned_files(out)):
        (out / "data").mkdir()
    assert sorted(p.name for p in out.iterdir()) == [".bgrepro-files.txt", "data", "notes.txt"]
