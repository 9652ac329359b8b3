"""Dataset fetching against local file:// archives made by the tests (never the network)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import numpy as np
import pytest

from bgrepro.cli import main
from bgrepro.data.download import fetch
from bgrepro.data.sources import IN9Source


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def release(tmp_path, tiny_dataset):
    """A miniature official test release: bg_challenge/<variant>/val/<class>/... + fg_mask."""
    files = {}
    for p in sorted((tiny_dataset / "original" / "val").rglob("*.png")):
        rel = p.relative_to(tiny_dataset).as_posix()
        files[f"bg_challenge/{rel}"] = p.read_bytes()
        mask = tiny_dataset / "fg_mask" / "val" / p.parent.name / f"{p.stem}.npy"
        files[f"bg_challenge/fg_mask/val/{p.parent.name}/{p.stem}.npy"] = mask.read_bytes()
    archive = tmp_path / "release.tar.gz"
    archive.write_bytes(_tar(files))
    return archive


def _manifest(tmp_path, archive, sha256="auto"):
    digest = hashlib.sha256(archive.read_bytes()).hexdigest() if sha256 == "auto" else sha256
    manifest = tmp_path / "in9.json"
    manifest.write_text(json.dumps({"archives": [{
        "name": "test", "url": archive.as_uri(), "filename": "release.tar.gz", "sha256": digest,
        "strip": "bg_challenge"}]}))
    return manifest


def test_fetch_unpacks_an_in9_release(tmp_path, release):
    dest = tmp_path / "in9"
    assert fetch(_manifest(tmp_path, release), dest, progress=False) == ["test"]
    source = IN9Source(dest)
    records = source.records("val")
    assert len(records) == 27
    sample = source.load(records[0])
    assert sample.mask.any() and sample.image.shape[:2] == sample.mask.shape


def test_fetch_resumes_a_broken_download(tmp_path, release):
    dest = tmp_path / "in9"
    part = dest / ".downloads" / "release.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(release.read_bytes()[: len(release.read_bytes()) // 2])
    fetch(_manifest(tmp_path, release), dest, progress=False)  # a wrong resume would fail the checksum
    assert not part.exists() and (dest / "original" / "val" / "00_dog").is_dir()


def test_checksum_mismatch_is_an_error_and_leaves_nothing(tmp_path, release):
    dest = tmp_path / "in9"
    with pytest.raises(ValueError, match="does not match"):
        fetch(_manifest(tmp_path, release, sha256="0" * 64), dest, progress=False)
    assert not (dest / ".downloads" / "release.tar.gz").exists()
    assert not (dest / "original").exists()


def test_corrupt_archive_leaves_dest_untouched(tmp_path, release):
    corrupt = tmp_path / "release.tar.gz"
    corrupt.write_bytes(release.read_bytes()[:-200])
    dest = tmp_path / "in9"
    with pytest.raises(ValueError, match="corrupt or unreadable archive"):
        fetch(_manifest(tmp_path, corrupt), dest, progress=False)
    assert sorted(p.name for p in dest.iterdir()) == [".downloads"]


def test_unpinned_archive_is_recorded_then_enforced(tmp_path, release, capsys):
    dest = tmp_path / "in9"
    manifest = _manifest(tmp_path, release, sha256=None)
    fetch(manifest, dest, progress=False)
    assert "no published sha256" in capsys.readouterr().err
    sums = (dest / ".downloads" / "SHA256SUMS").read_text()
    assert hashlib.sha256(release.read_bytes()).hexdigest() in sums
    # the publisher's file changes: a fresh download must no longer be accepted
    for name in ("release.tar.gz", "release.tar.gz.unpacked"):
        (dest / ".downloads" / name).unlink()
    release.write_bytes(_tar({"bg_challenge/original/val/00_dog/x.npy": np.zeros(3).tobytes()}))
    with pytest.raises(ValueError, match="does not match"):
        fetch(manifest, dest, progress=False)


def test_fetch_cli(tmp_path, release, capsys):
    manifest = _manifest(tmp_path, release)
    assert main(["data", "fetch", "in9", "--manifest", str(manifest), "--dest", str(tmp_path / "d")]) == 0
    assert "test ready in" in capsys.readouterr().out
    assert main(["data", "fetch", "in9", "--manifest", str(manifest), "--dest", str(tmp_path / "d"),
                 "--only", "train-original"]) == 2
    assert "unknown archive 'train-original'" in capsys.readouterr().err


def test_committed_in9_manifest_is_valid():
    from pathlib import Path

    from bgrepro.data.download import read_manifest

    manifest = read_manifest(Path(__file__).resolve().parents[1] / "data" / "in9.json")
    assert manifest["default"] == ["test"]
    test = next(a for a in manifest["archives"] if a["name"] == "test")
    assert test["url"].endswith("backgrounds_challenge_data.tar.gz") and test["strip"] == "bg_challenge"
    # every training set the official README links, and the released models with how to use them
    names = {a["name"] for a in manifest["archives"]}
    assert {f"train-{v}" for v in ("in9l", "original", "mixed_rand", "mixed_same", "only_bg_t")} <= names
    models = {m["name"]: m for m in manifest["models"]}
    assert models["in9l_resnet50"]["format"] == "robustness" and "--checkpoint" in models["in9l_resnet50"]["use"]
    assert models["resnet50_imagenet"]["filename"] == "resnet50-0676ba61.pth"
