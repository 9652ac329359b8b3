"""A user's files are sacred: what an output of bgrepro may be, and how it replaces one of its own.

Every output folder carries bgrepro's marker (`layout.MARKER`: the command that made it, its arguments
and the identity of its inputs). Before a command writes anything:

- `check_location` refuses the current folder, the home folder and the filesystem root as an output;
- `check_no_overlap` refuses an output that equals, contains or lies inside any input (symlinks
  followed), so that no output can ever replace or delete a photo, a mask, a box file or a checkpoint;
- `locked` takes an OS file lock beside the output (released by the OS if the process dies), so a
  second run into the same output stops with one line instead of mixing its files with the first's;
- `decide` compares the folder with what the run would make: absent or empty -> fresh; the marker of
  the same command, arguments and inputs -> resume; the same arguments on changed inputs -> recompute
  (the inputs are named); other arguments -> refused, or replaced with `overwrite`; any folder without
  bgrepro's marker of that command -> refused, whatever `overwrite` says.

`staged_output` puts these together for the outputs written whole (synth, build, challenge, saliency,
localize): the work goes to a hidden sibling that replaces the output only once complete.
Single files (`eval --record`) carry a `written_by` field instead (`check_file_output`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from . import layout
from .io import atomic_write_text, describe_difference

try:
    import fcntl
except ImportError:  # not POSIX: no lock (one run per output is then the user's care)
    fcntl = None

#: What `decide` answers.
FRESH, RESUME, RECOMPUTE = "fresh", "resume", "recompute"


# ------------------------------------------------------------------------------------------ input identity
def fingerprint(path: Path | str | None) -> str | None:
    """The identity of an input: a file's sha256; a dataset bgrepro built or generated, its manifest's
    sha256 (`layout.data_identity`); any other folder, its listing (every visible file's path, size
    and modification time) with the file count, so that an added, removed or edited photo changes it."""
    if path is None:
        return None
    path = Path(path)
    if path.is_file():
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return f"sha256:{digest.hexdigest()}"
    if path.is_dir():
        mark = read_marker(path)
        made = layout.data_identity(path) if mark and mark["command"] in ("build", "synth") else None
        if made:
            return f"manifest:{made}"
        digest, count = hashlib.sha256(), 0
        for file in sorted(p for p in path.rglob("*") if p.is_file() and not layout.hidden(p, path)):
            stat = file.stat()
            digest.update(f"{file.relative_to(path).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
            count += 1
        return f"listing:{digest.hexdigest()}:{count} files"
    raise FileNotFoundError(f"{path}: not found")


def identity_of(inputs: dict[str, Path | str | Iterable | None]) -> dict[str, object]:
    """`fingerprint` of every named input (a list of paths gives a list)."""
    out: dict[str, object] = {}
    for name, value in inputs.items():
        if isinstance(value, (list, tuple)):
            out[name] = [fingerprint(v) for v in value]
        else:
            out[name] = fingerprint(value)
    return out


def _changed_inputs(old: dict, new: dict) -> str:
    def count(fp):
        return fp.rsplit(":", 1)[-1] if isinstance(fp, str) and fp.startswith("listing:") else "content"

    parts = []
    for name in sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k)):
        a, b = old.get(name), new.get(name)
        parts.append(f"{name} ({count(a)} -> {count(b)})" if count(a) != count(b) else f"{name} (its content)")
    return ", ".join(parts) or "the inputs"


# ---------------------------------------------------------------------------------------------- locations
def _resolved(path: Path | str) -> Path:
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def check_location(out: Path | str, option: str = "--out") -> Path:
    """`out`, refused when it is the current folder, the home folder or the filesystem root (an output
    there would mix with, or on --overwrite replace, everything else in it)."""
    where = _resolved(out)
    for place, what in ((Path.cwd().resolve(), "the current folder"), (Path.home().resolve(), "the home folder"),
                        (Path(where.anchor), "the filesystem root")):
        if where == place:
            raise ValueError(f"{option} {out}: is {what}; give a new folder for the output (e.g. {option} "
                             f"{Path(out) / 'bgrepro-out'})")
    return Path(out)


def check_no_overlap(out: Path | str | None, inputs: dict[str, Path | str | Iterable | None],
                     option: str = "--out") -> None:
    """Refuse an output that equals, contains or lies inside one of the inputs (symlinks followed)."""
    if out is None:
        return
    where = _resolved(out)
    for name, value in inputs.items():
        for item in (value if isinstance(value, (list, tuple)) else (value,)):
            if item is None:
                continue
            source = _resolved(item)
            if where == source:
                raise ValueError(f"{option} {out}: is the input {name} itself; choose an output apart from the inputs")
            if source in where.parents:
                raise ValueError(f"{option} {out}: lies inside the input {name} {item}; choose an output outside it")
            if where in source.parents:
                raise ValueError(f"{option} {out}: contains the input {name} {item}; choose an output that does not")


# ------------------------------------------------------------------------------------------------ the lock
def lock_path(out: Path) -> Path:
    """The lock file of an output: a hidden sibling, so that it exists before and after the output."""
    out = Path(out)
    return out.parent / f".{out.name}.lock"


@contextmanager
def locked(out: Path | str) -> Iterator[None]:
    """Hold the output's lock for the block; a second run into the same output stops with one line. The
    lock file is removed when the block ends (a dead process's lock is released by the OS)."""
    if fcntl is None:
        yield
        return
    path = lock_path(Path(out))
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise PermissionError(f"{out}: output folder is not writable ({err.strerror or err})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise BlockingIOError(f"{out}: another bgrepro run is writing it ({holder}); wait for it to end, or "
                                  "choose another output") from None
        try:  # the file may have been removed by the run that held it just before: lock the one at `path`
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


# ------------------------------------------------------------------------------------------------ the marker
def marker_path(folder: Path) -> Path:
    return Path(folder) / layout.MARKER


def read_marker(folder: Path) -> dict | None:
    """bgrepro's marker of a folder (None when it has none, or an unreadable one)."""
    try:
        mark = json.loads(marker_path(folder).read_text())
    except (OSError, ValueError):
        return None
    return mark if isinstance(mark, dict) and isinstance(mark.get("command"), str) else None


def write_marker(folder: Path, command: str, args: dict, inputs: dict) -> None:
    """Mark `folder` as the output of `bgrepro <command>` with these arguments and inputs."""
    from . import __version__

    atomic_write_text(marker_path(folder), json.dumps(
        {"command": command, "bgrepro": __version__, "args": args, "inputs": inputs},
        indent=2, sort_keys=True, default=str) + "\n")


def is_ours(folder: Path, command: str) -> bool:
    """Whether `folder` holds bgrepro's marker of `command`."""
    mark = read_marker(folder)
    return mark is not None and mark["command"] == command


def _is_lock(path: Path) -> bool:
    """One of bgrepro's lock files (hidden, `.lock`, holding nothing or the pid line `locked` writes)."""
    if not (path.name.startswith(".") and path.name.endswith(".lock") and path.is_file()):
        return False
    try:
        return path.read_bytes()[:4] in (b"", b"pid ")
    except OSError:
        return False


def visible_entries(folder: Path) -> list[Path]:
    """What a folder holds, less bgrepro's own lock files."""
    return [p for p in Path(folder).iterdir() if not _is_lock(p)]


def decide(out: Path, command: str, args: dict, inputs: dict, overwrite: bool, what: str,
           option: str = "--out") -> tuple[str, str]:
    """What a run of `command` does with `out`: (FRESH | RESUME | RECOMPUTE, why). Raises for a folder
    that is not bgrepro's output of `command`, or one made with other arguments (unless `overwrite`)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{option} {out}: exists and is not a folder")
    if not out.is_dir() or not visible_entries(out):
        return FRESH, ""
    mark = read_marker(out)
    if mark is None:
        raise FileExistsError(f"{option} {out}: holds files that bgrepro did not make (no {layout.MARKER}); "
                              + ("--overwrite replaces only bgrepro's own output; " if overwrite else "")
                              + "choose a new or empty folder")
    if mark["command"] != command:
        raise FileExistsError(f"{option} {out}: holds the output of `bgrepro {mark['command']}`, not of "
                              f"`bgrepro {command}`; choose another folder")
    old = json.loads(json.dumps(mark.get("args"), default=str))
    if old == json.loads(json.dumps(args, default=str)):
        if mark.get("inputs") == inputs:
            return RESUME, ""
        return RECOMPUTE, f"{_changed_inputs(mark.get('inputs') or {}, inputs)} changed since {out} was made"
    if overwrite:
        return FRESH, "replacing it (--overwrite)"
    difference = describe_difference(old or {}, args)
    raise ValueError(f"{option} {out}: holds a {what} made with other arguments ({difference}); "
                     "choose another folder, or pass --overwrite to replace it (it is bgrepro's own output)")


def notice(text: str) -> None:
    """One line to stderr about what a run does with an existing output."""
    print(f"note: {text}", file=sys.stderr)


def _remove_ours(folder: Path, command: str) -> None:
    """Delete a hidden working folder of bgrepro's (refusing one that is not marked as its own)."""
    if folder.exists():
        if not is_ours(folder, command):
            raise FileExistsError(f"{folder}: is in the way and was not made by bgrepro; move it away")
        shutil.rmtree(folder)


@contextmanager
def staged_output(out: Path | str, command: str, args: dict, *, inputs: dict | None = None,
                  overwrite: bool = False, what: str = "output", option: str = "--out",
                  record: str | None = None) -> Iterator[Path]:
    """The folder to write an output into, so that `out` is never left half-written, mixed or replaced
    unless it is bgrepro's own output of `command` (see `decide`).

    Resume (same arguments and inputs) works in `out` itself. Otherwise the work goes to a hidden
    sibling (`layout.staging_dir`) that replaces `out` only once complete: a killed run resumes there,
    and a run that fails on bad input removes it, leaving `out` as it was. `record`, if given, is a
    file name under which the arguments are also written for people (build.json, synth.json)."""
    out = check_location(out, option)
    inputs = inputs or {}
    with locked(out):
        action, why = decide(out, command, args, inputs, overwrite, what, option)
        if action == RESUME:
            yield out
            return
        if why:
            notice(f"{why}: {'recomputing' if action == RECOMPUTE else 'it will be replaced'}")
        stage = layout.staging_dir(out)
        try:
            stage.parent.mkdir(parents=True, exist_ok=True)
            mark = read_marker(stage) if stage.is_dir() else None
            if stage.exists() and not (mark and mark["command"] == command and mark.get("args") == args
                                       and mark.get("inputs") == inputs):
                _remove_ours(stage, command)  # an unfinished run with other arguments or inputs: start afresh
            stage.mkdir(exist_ok=True)
        except PermissionError as err:
            raise PermissionError(f"{out}: output folder is not writable ({err.strerror or err})") from None
        write_marker(stage, command, args, inputs)
        if record:
            atomic_write_text(stage / record, json.dumps(args, indent=2, sort_keys=True, default=str) + "\n")
        try:
            yield stage
        except Exception:
            shutil.rmtree(stage, ignore_errors=True)  # bad input: leave nothing behind (a kill keeps it, to resume)
            raise
        replace_with(out, stage, command)


def replace_with(out: Path, stage: Path, command: str) -> None:
    """Put a complete staged folder in place of `out` (absent, empty, or bgrepro's output of `command`)."""
    old = out.parent / f".{out.name}.replaced"
    if out.is_dir():
        if visible_entries(out):
            if not is_ours(out, command):  # checked by `decide`; checked again before anything moves
                raise FileExistsError(f"{out}: holds files that bgrepro did not make; nothing was replaced")
            _remove_ours(old, command)
            os.replace(out, old)
        else:
            for lock in out.iterdir():
                lock.unlink()
            out.rmdir()
    os.replace(stage, out)
    shutil.rmtree(old, ignore_errors=True)


# -------------------------------------------------------------------------------------------- single files
def check_file_output(path: Path | str, command: str, inputs: dict[str, Path | str | Iterable | None],
                      option: str) -> Path:
    """A single output file (a JSON record): refused when it overlaps an input, or when it exists and was
    not written by bgrepro (its `written_by` field names a bgrepro command)."""
    path = Path(path)
    check_no_overlap(path, inputs, option)
    if path.is_dir():
        raise IsADirectoryError(f"{option} {path}: is a folder; give a file name")
    if path.exists():
        try:
            written_by = json.loads(path.read_text()).get("written_by", "")
        except (OSError, ValueError, AttributeError):
            written_by = ""
        if not str(written_by).startswith("bgrepro"):
            raise FileExistsError(f"{option} {path}: exists and was not written by bgrepro; choose another file")
    return path


def command_args(args, exclude: Iterable[str] = ()) -> dict:
    """The arguments of a parsed command that its output is a function of, as plain JSON: paths resolved,
    and what only changes how it runs (progress, --json, --overwrite, workers, device) left out."""
    skip = {"func", "command", "json", "overwrite", "workers", "device", "data_command", *exclude}
    out = {}
    for key, value in sorted(vars(args).items()):
        if key in skip:
            continue
        if isinstance(value, Path):
            value = str(_resolved(value))
        elif isinstance(value, (list, tuple)):
            value = [str(_resolved(v)) if isinstance(v, Path) else v for v in value]
        out[key] = value
    return json.loads(json.dumps(out, default=str))


__all__ = ["FRESH", "RESUME", "RECOMPUTE", "fingerprint", "identity_of", "check_location", "check_no_overlap",
           "locked", "read_marker", "write_marker", "is_ours", "decide", "staged_output", "replace_with",
           "check_file_output", "command_args", "notice"]
