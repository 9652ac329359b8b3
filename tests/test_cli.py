"""The `bgrepro` command line: the synth subcommand, its preview, and its errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image

from bgrepro.cli import main


def test_synth_cli_writes_dataset_and_preview(tmp_path, capsys):
    out = tmp_path / "syn"
    rc = main(["synth", "--out", str(out), "--profile", "tiny", "--train-per-class", "1",
               "--test-per-class", "3", "--seed", "2", "--correlation", "0.5", "--preview"])
    assert rc == 0
    assert "wrote 36 images (32px)" in capsys.readouterr().out
    assert len(list((out / "original" / "val").rglob("*.png"))) == 27
    preview = Image.open(out / "preview.png")
    assert preview.size[1] > preview.size[0] / 2  # nine rows: taller than half its width
    assert (out / "habitats.png").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size", "-4"], "must be non-negative"),
        (["--train-per-class", "-1"], "must be non-negative"),
        (["--test-per-class", "-2"], "must be non-negative"),
        (["--profile", "huge"], "invalid choice: 'huge'"),
        (["--correlation", "1.2"], r"must be in \[0, 1\]"),
    ],
)
def test_synth_cli_rejects_bad_arguments(tmp_path, args, message):
    proc = subprocess.run([sys.executable, "-m", "bgrepro", "synth", "--out", str(tmp_path / "o"), *args],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert pytest.importorskip("re").search(message, proc.stderr), proc.stderr
    assert not (tmp_path / "o").exists(), "a rejected command must not leave output behind"


def test_synth_cli_unwritable_output(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    rc = main(["synth", "--out", str(blocker / "sub"), "--profile", "tiny"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "not writable" in err and str(blocker / "sub") in err


def test_synth_cli_too_small_size(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "o"), "--profile", "tiny", "--size", "4"]) == 2
    assert "at least 16" in capsys.readouterr().err
