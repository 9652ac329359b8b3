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
import re
import shutil
import stat
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from . import __version__, layout
from .io import atomic_write_text, describe_difference

try:
    import fcntl
except ImportError:  # not POSIX: no lock (one run per output is then the user's care)
    fcntl = None

#: What `decide` answers.
FRESH, RESUME, RECOMPUTE = "fresh", "resume", "recompute"


# ------------------------------------------------------------------------------------------ input identity
def _visible_files(root: Path, top: bool = True) -> list[tuple[str, os.stat_result]]:
    """(path relative to root, stat) of every visible file under root, in path order: hidden files and folders
    (`layout.hidden`) left out, symlinked files followed and symlinked folders not (as `Path.rglob`), the files
    at root's top left out unless `top`. One walk and one stat per file (a dataset has tens of thousands)."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = os.path.relpath(folder, root)
        if rel == "." and not top:
            continue
        for name in files:
            if name.startswith("."):
                continue
            try:
                info = os.stat(os.path.join(folder, name))
            except OSError:  # a broken link, or gone since the walk
                continue
            if stat.S_ISREG(info.st_mode):
                found.append((name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"), info))
    return sorted(found, key=lambda item: item[0].split("/"))


def _listing(files: list[tuple[str, os.stat_result]]) -> tuple[str, int]:
    """sha256 of (path, size, modification and change times, inode) of files under a root, and their count: an
    added, removed, edited, renamed or swapped file changes it (a rename or a swap changes the ctime)."""
    digest = hashlib.sha256()
    for rel, info in files:
        digest.update(f"{rel}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_ctime_ns}\0{info.st_ino}\n".encode())
    return digest.hexdigest(), len(files)


def fingerprint(path: Path | str | None) -> str | None:
    """The identity of an input: a file's sha256; a folder's listing (every visible file's path, size,
    times and inode) with the file count, so that an added, removed, edited or swapped photo changes it.
    A dataset bgrepro built or generated adds its manifest and the identity of what it was built from, and
    its listing covers its data folders (not the previews and records at its top)."""
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
        if mark and mark["command"] in ("build", "synth"):
            listing, count = _listing(_visible_files(path, top=False))
            return f"dataset:{layout.data_identity(path)}:{listing}:{count} files"
        listing, count = _listing(_visible_files(path))
        return f"listing:{listing}:{count} files"
    if re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", str(path)) and not str(path).startswith((".", "/")):
        return f"hub:{path}"  # a Hugging Face hub id: the library's cache keeps its revision
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
        return fp.rsplit(":", 1)[-1] if isinstance(fp, str) and fp.startswith(("listing:", "dataset:")) else "content"

    parts = []
    for name in sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k)):
        a, b = old.get(name), new.get(name)
        parts.append(f"{name} ({count(a)} -> {count(b)})" if count(a) != count(b) else f"{name} (its content)")
    return ", ".join(parts) or "the inputs"


# ---------------------------------------------------------------------------------------------- locations
def _resolved(path: Path | str) -> Path:
    """The real absolute path (symlinks followed; a literal `~` is a folder name, as the writes take it)."""
    return Path(os.path.realpath(os.path.abspath(Path(path))))


def check_location(out: Path | str, option: str = "`out`") -> Path:
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
                     option: str = "`out`") -> None:
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
#: The lock files this process holds (real paths): a nested output of the same run is not "another run".
_HELD: set[Path] = set()
LOCK_SUFFIX = ".bgrepro-lock"


def lock_path(out: Path) -> Path:
    """The lock file of an output: a hidden sibling of its real path, so that it exists before and after the
    output and a symlinked alias of the output shares it."""
    out = _resolved(out)
    return out.parent / f".{out.name}{LOCK_SUFFIX}"


def _ours_lock(fd: int) -> bool:
    """Whether an open lock file is bgrepro's: empty (just made) or holding the pid line `locked` writes."""
    head = os.pread(fd, 4, 0)
    return head in (b"", b"pid ")


def _ancestor_held(out: Path) -> Path | None:
    """An output that contains `out` and that another bgrepro run holds now (a report's data, say)."""
    if fcntl is None:
        return None
    for folder in _resolved(out).parents:
        lock = lock_path(folder) if folder.parent != folder else None
        if lock is None or lock in _HELD or not lock.is_file():
            continue
        try:
            fd = os.open(lock, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except BlockingIOError:
            return folder
        finally:
            os.close(fd)
    return None


def _take_lock(path: Path, out: Path | str) -> tuple[Path, int]:
    """The lock file of `out` opened and locked (its path: beside the output, or in the user's cache when the
    output's parent cannot hold it), or one error saying who holds it or what is in its way."""
    while True:
        if path.is_symlink():
            raise FileExistsError(f"{path}: a link in the way of bgrepro's lock for {out}; move it away")
        if path.is_dir():
            raise FileExistsError(f"{path}: a folder in the way of bgrepro's lock for {out}; move it away")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        except PermissionError:  # a folder the user may write into, in a parent they may not: lock elsewhere
            fallback = Path.home() / ".cache" / "bgrepro" / "locks" / (
                hashlib.sha256(str(path).encode()).hexdigest()[:32] + LOCK_SUFFIX)
            if path == fallback:
                raise PermissionError(f"{out}: no place to write bgrepro's lock ({path})") from None
            path = fallback
            continue
        except OSError as err:
            raise PermissionError(f"{out}: output folder is not writable ({err.strerror or err})") from None
        if not _ours_lock(fd):
            os.close(fd)
            raise FileExistsError(f"{path}: in the way of bgrepro's lock for {out} and not bgrepro's; move it away")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise BlockingIOError(f"{out}: another bgrepro run is writing it ({holder}); wait for it to end, or "
                                  "choose another output") from None
        try:  # the file may have been removed by the run that held it just before: lock the one at `path`
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return path, fd
        except FileNotFoundError:
            pass
        os.close(fd)


@contextmanager
def locked(out: Path | str) -> Iterator[None]:
    """Hold the output's lock for the block; a second run into the same output (or into an output inside
    it) stops with one line. The lock file is removed when the block ends (a dead process's lock is
    released by the OS); a file of that name that is not bgrepro's lock is never touched."""
    if fcntl is None:
        yield
        return
    path = lock_path(Path(out))
    busy = _ancestor_held(Path(out))
    if busy is not None:
        raise BlockingIOError(f"{out}: lies inside {busy}, which another bgrepro run is writing; wait for it to "
                              "end, or choose another output")
    path, fd = _take_lock(path, out)
    _HELD.add(path)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        yield
    finally:
        _HELD.discard(path)
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
    atomic_write_text(marker_path(folder), json.dumps(
        {"command": command, "bgrepro": __version__, "args": args, "inputs": inputs},
        indent=2, sort_keys=True, default=str) + "\n")


def is_ours(folder: Path, command: str) -> bool:
    """Whether `folder` holds bgrepro's marker of `command`."""
    mark = read_marker(folder)
    return mark is not None and mark["command"] == command


def _comparable(args: dict | None) -> dict:
    """Arguments as compared: plain JSON, options left at None dropped (an option added in a later version
    does not make an older output look like another configuration)."""
    plain = json.loads(json.dumps(args or {}, default=str))
    return {k: v for k, v in plain.items() if v is not None}


def owned_files(folder: Path) -> set[str] | None:
    """The files (relative paths) bgrepro wrote into an output folder, or None when it did not list them."""
    try:
        return set((Path(folder) / layout.OWNED).read_text().splitlines()) - {""}
    except OSError:
        return None


def files_under(folder: Path) -> set[str]:
    """Every file under a folder, as relative paths."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink()}


#: bgrepro's own working entries inside an output (a part's staging folder or lock, a replaced or set-aside copy)
#: that a killed run may leave: never taken for a user's files.
_WORKING = re.compile(r"^\.(.+\.partial|.+\.replaced(-\d+)?|.+" + re.escape(LOCK_SUFFIX) + r"|bgrepro-previous)$")


def working_entry(rel: str) -> bool:
    """Whether a path inside an output lies in one of bgrepro's working entries (`_WORKING`)."""
    return any(_WORKING.match(part) for part in rel.split("/"))


def user_files(folder: Path) -> set[str]:
    """Files in a bgrepro output folder that bgrepro did not write there (a user's notes, say)."""
    owned = owned_files(folder)
    if owned is None:  # no list (deleted, or never written): nothing can be told apart, so all is the user's
        owned = set()
    return {f for f in files_under(folder) - owned
            if f not in (layout.OWNED, layout.MARKER) and not working_entry(f)}


def record_owned(folder: Path, keep_out: set[str] = frozenset()) -> None:
    """List every file of an output folder as bgrepro's, but those in `keep_out` (the user's)."""
    owned = sorted(files_under(folder) - set(keep_out) - {layout.OWNED})
    atomic_write_text(Path(folder) / layout.OWNED, "".join(f"{f}\n" for f in owned))


def decide(out: Path, command: str, args: dict, inputs: dict, overwrite: bool, what: str,
           option: str = "`out`") -> tuple[str, str]:
    """What a run of `command` does with `out`: (FRESH | RESUME | RECOMPUTE, why). Raises for a folder
    that is not bgrepro's output of `command`, or one made with other arguments (unless `overwrite`)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{option} {out}: exists and is not a folder")
    if not out.is_dir() or not any(out.iterdir()):
        return FRESH, ""
    mark = read_marker(out)
    if mark is None:
        raise FileExistsError(f"{option} {out}: holds files that bgrepro did not make (no {layout.MARKER}); "
                              + ("`overwrite` replaces only bgrepro's own output; " if overwrite else "")
                              + "choose a new or empty folder")
    if mark["command"] != command:
        raise FileExistsError(f"{option} {out}: holds the output of `bgrepro {mark['command']}`, not of "
                              f"`bgrepro {command}`; choose another folder")
    old = _comparable(mark.get("args"))
    if old == _comparable(args):
        if mark.get("inputs") == inputs:
            return RESUME, ""
        return RECOMPUTE, f"{_changed_inputs(mark.get('inputs') or {}, inputs)} changed since {out} was made"
    if overwrite:
        return FRESH, f"{out} was made with other arguments, and its replacement was asked for"
    difference = describe_difference(old or {}, args)
    raise ValueError(f"{option} {out}: holds a {what} made with other arguments ({difference}); "
                     "choose another folder, or pass `overwrite` to replace it (it is bgrepro's own output)")


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
                  overwrite: bool = False, what: str = "output", option: str = "`out`",
                  record: str | None = None) -> Iterator[Path]:
    """The folder to write an output into, so that `out` is never left half-written, mixed or replaced
    unless it is bgrepro's own output of `command` (see `decide`).

    Resume (same arguments and inputs) works in `out` itself. Otherwise the work goes to a hidden
    sibling (`layout.staging_dir`) that replaces `out` only once complete: a killed run resumes there,
    and a run that fails on bad input removes it, leaving `out` as it was. Files a user put into a bgrepro
    output are carried into its replacement (`replace_with`). A symlinked `out` is its target. `record`, if
    given, is a file name under which the arguments are also written for people (build.json, synth.json)."""
    check_location(out, option)
    if os.path.ismount(_resolved(out)):  # checked before any work: the finished output could not be moved there
        raise ValueError(f"{option} {out}: is a mount point, and this output is written beside its place and moved in "
                         f"once complete, which a mount point does not allow; give a folder inside it (e.g. {option} "
                         f"{Path(out) / 'bgrepro-out'})")
    out = _resolved(out)
    inputs = inputs or {}
    with locked(out):
        action, why = decide(out, command, args, inputs, overwrite, what, option)
        if action == RESUME:
            keep = user_files(out)
            yield out
            record_owned(out, keep)
            return
        if why:
            notice(f"{why}: {'recomputing' if action == RECOMPUTE else 'it will be replaced'}")
        stage = layout.staging_dir(out)
        try:
            stage.parent.mkdir(parents=True, exist_ok=True)
            mark = read_marker(stage) if stage.is_dir() else None
            if stage.exists() and not (mark and mark["command"] == command and _comparable(mark.get("args"))
                                       == _comparable(args) and mark.get("inputs") == inputs):
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
        record_owned(stage)
        replace_with(out, stage, command)


def replace_with(out: Path, stage: Path, command: str) -> None:
    """Put a complete staged folder in place of `out` (absent, empty, or bgrepro's output of `command`), with
    the files a user had put into the old output carried over to the same places."""
    old = out.parent / f".{out.name}.replaced"
    moved = False
    if out.is_dir():
        if any(out.iterdir()):
            if not is_ours(out, command):  # checked by `decide`; checked again before anything moves
                raise FileExistsError(f"{out}: holds files that bgrepro did not make; nothing was replaced")
            keep = sorted(user_files(out))
            clash = next((f for f in keep if os.path.lexists(stage / f)), None)
            if clash is not None:
                raise FileExistsError(f"{out / clash}: your file is where the new output puts one of its own; move "
                                      "it away and run the same command again (nothing was replaced)")
            if os.path.lexists(old):  # a replaced output a killed run left is removed; a user's folder is kept
                if is_ours(old, command):
                    shutil.rmtree(old)
                else:
                    old = out.parent / f".{out.name}.replaced-{os.getpid()}"
            for rel in keep:  # the user's files go with the output
                (stage / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(out / rel, stage / rel)
            os.replace(out, old)
            moved = True
        else:
            out.rmdir()
    os.replace(stage, out)
    if moved:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def set_aside(folder: Path, names: Iterable[str], owned: set[str] | None = None) -> Iterator[None]:
    """Move a bgrepro output's named entries aside while it is recomputed in place: put back when the block
    fails (a failed rerun never destroys the last good output), removed when it succeeds, except the files
    under them that bgrepro did not write (`owned`, relative to `folder`; None: every file under the names
    is bgrepro's), which go back where they were (or, where the new output took their place, stay in
    `.bgrepro-previous/`, said in a note). Entries an interrupted run left aside stay the last good output."""
    folder = Path(folder)
    aside = folder / ".bgrepro-previous"
    names = list(names)
    for name in names:
        if os.path.lexists(aside / name) and os.path.lexists(folder / name):  # the interrupted run's partial copy
            remove_path(folder / name)
    present = [n for n in names if os.path.lexists(folder / n)]
    if present:
        aside.mkdir(exist_ok=True)
    for name in present:
        os.replace(folder / name, aside / name)
    try:
        yield
    except Exception:
        if aside.is_dir():
            for entry in list(aside.iterdir()):
                remove_path(folder / entry.name)
                os.replace(entry, folder / entry.name)
            shutil.rmtree(aside, ignore_errors=True)
        raise
    if not aside.is_dir():
        return
    kept = []
    if owned is not None:
        for rel in sorted(files_under(aside)):
            if rel not in owned and not working_entry(rel):  # the user's: back, unless the new output is there
                target = folder / rel
                if os.path.lexists(target) or any(p.is_file() for p in target.parents if p != folder and
                                                  folder in p.parents):
                    kept.append(rel)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(aside / rel, target)
    if kept:
        for rel in set(files_under(aside)) - set(kept):
            (aside / rel).unlink()
        notice(f"{len(kept)} file(s) of yours were where the new output put its own; they are kept in {aside}")
    else:
        shutil.rmtree(aside, ignore_errors=True)


def remove_path(path: Path) -> None:
    """Delete a file, link or folder of bgrepro's."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


# -------------------------------------------------------------------------------------------- single files
def check_file_output(path: Path | str, command: str, inputs: dict[str, Path | str | Iterable | None],
                      option: str) -> Path:
    """A single output file (a JSON record): refused when it overlaps an input, or when it exists and was
    not written by bgrepro (its `written_by` field names a bgrepro command)."""
    path = Path(path)
    check_no_overlap(path, inputs, option)
    if path.is_symlink():
        raise FileExistsError(f"{option} {path}: is a symbolic link; give a plain file name")
    if path.is_dir():
        raise IsADirectoryError(f"{option} {path}: is a folder; give a file name")
    if path.exists():
        try:
            written_by = json.loads(path.read_text()).get("written_by", "")
        except (OSError, ValueError, AttributeError):
            written_by = ""
        if written_by != f"bgrepro {command}":
            raise FileExistsError(f"{option} {path}: exists and was not written by bgrepro {command}; choose another "
                                  "file")
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
           "locked", "lock_path", "read_marker", "write_marker", "is_ours", "decide", "staged_output",
           "replace_with", "set_aside", "remove_path", "owned_files", "user_files", "record_owned", "check_file_output",
           "command_args", "notice"]
