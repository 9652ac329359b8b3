"""Fetch dataset archives listed in a committed manifest: resumable, checksummed, unpacked atomically.

A manifest (`data/in9.json`) lists archives: name, url, filename, sha256 (or null when the
publisher gives none), and how to unpack (`strip`: a leading folder to drop; `exclude`: paths
to skip). Downloads go to `<dest>/.downloads/<filename>.part` and resume from there; a finished
file is verified before it is renamed into place. A pinned sha256 that does not match is an
error (the bad file is deleted). For an unpinned archive the digest of the first download that
unpacks cleanly is recorded in `<dest>/.downloads/SHA256SUMS` with a warning, and later downloads
must match it; `bgrepro data forget <dataset> ARCHIVE` clears a wrong record (and the file).
Archives are extracted into a temporary folder first, so a corrupt archive leaves `dest` untouched.
A manifest's file names are plain names and its `strip`/`exclude` paths relative ones without `..`:
nothing is written outside `dest`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import urlparse

from tqdm.auto import tqdm

from ..io import atomic_write_text
from ..outputs import check_location, locked

CHUNK = 1 << 20


def _relative_path(text) -> bool:
    """A relative path that stays inside its folder (no absolute path, no `..`, no backslash)."""
    if not isinstance(text, str) or not text or "\\" in text or text.startswith("/") or ":" in text:
        return False
    return all(part not in ("", ".", "..") for part in text.rstrip("/").split("/"))


def read_manifest(path: Path) -> dict:
    """A dataset manifest, checked for the fields every archive needs and for paths that stay in `dest`."""
    try:
        manifest = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: dataset manifest not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: unreadable dataset manifest ({err})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("archives"), list) or not manifest["archives"]:
        raise ValueError(f"{path}: the manifest lists no archives")
    seen = set()
    for i, archive in enumerate(manifest["archives"]):
        if not isinstance(archive, dict):
            raise ValueError(f"{path}: archive #{i} is not an object")
        missing = [k for k in ("name", "url", "filename") if not isinstance(archive.get(k), str) or not archive[k]]
        if missing:
            raise ValueError(f"{path}: archive #{i} lacks {', '.join(missing)}")
        filename = archive["filename"]
        if "/" in filename or not _relative_path(filename) or filename.startswith("."):
            raise ValueError(f"{path}: archive {archive['name']!r}: filename {filename!r} must be a plain file name")
        if archive.get("strip") is not None and not _relative_path(archive["strip"]):
            raise ValueError(f"{path}: archive {archive['name']!r}: strip {archive['strip']!r} must be a relative "
                             "folder inside the archive (no '..', not absolute)")
        exclude = archive.get("exclude", [])
        if not isinstance(exclude, list) or not all(_relative_path(e) for e in exclude):
            raise ValueError(f"{path}: archive {archive['name']!r}: exclude must list relative paths")
        digest = archive.get("sha256")
        if digest is not None and not (isinstance(digest, str) and len(digest) == 64
                                       and all(c in "0123456789abcdef" for c in digest)):
            raise ValueError(f"{path}: archive {archive['name']!r}: sha256 must be 64 lowercase hex digits or null")
        if urlparse(archive["url"]).scheme not in ("http", "https", "file"):
            raise ValueError(f"{path}: archive {archive['name']!r}: url must be http(s) or file")
        if archive["name"] in seen or filename in seen:
            raise ValueError(f"{path}: archive {archive['name']!r} is listed twice")
        seen.update((archive["name"], filename))
    return manifest


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _open_from(url: str, offset: int):
    """A readable stream of `url` starting at byte `offset`, and whether the offset was honoured."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        f = open(urllib.request.url2pathname(parsed.path), "rb")
        f.seek(offset)
        return f, True, os.fstat(f.fileno()).st_size
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    response = urllib.request.urlopen(request, timeout=60)  # noqa: S310 - URLs come from the manifest
    resumed = offset > 0 and response.status == 206
    length = response.headers.get("Content-Length")
    total = (int(length) + (offset if resumed else 0)) if length else None
    return response, resumed, total


def download(url: str, target: Path, progress: bool = True) -> Path:
    """Download `url` to `target`, resuming `target.part` if an earlier attempt was interrupted."""
    target = Path(target)
    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.exists() else 0
    try:
        stream, resumed, total = _open_from(url, offset)
    except OSError as err:
        raise ConnectionError(f"{url}: download failed ({err}); run the same command again to resume") from None
    with stream, open(part, "ab" if resumed else "wb") as out:
        bar = tqdm(total=total, initial=offset if resumed else 0, unit="B", unit_scale=True,
                   desc=target.name, disable=not progress)
        for block in iter(lambda: stream.read(CHUNK), b""):
            out.write(block)
            bar.update(len(block))
        bar.close()
    os.replace(part, target)
    return target


def _known_sums(downloads: Path) -> dict[str, str]:
    sums = downloads / "SHA256SUMS"
    if not sums.exists():
        return {}
    return {name: digest for digest, name in (line.split(None, 1) for line in sums.read_text().splitlines() if line)}


def _verify(archive: dict, file: Path, downloads: Path) -> str | None:
    """Check the file against its pinned or recorded sha256; returns its digest when there is none yet."""
    digest = sha256_of(file)
    recorded = _known_sums(downloads).get(archive["filename"])
    expected = archive.get("sha256") or recorded
    if expected and digest != expected:
        file.unlink()
        how = "pinned in the manifest" if archive.get("sha256") else (
            f"recorded at the first download; if that record is wrong, run `bgrepro data forget` for "
            f"{archive['name']!r}")
        raise ValueError(f"{file}: sha256 {digest} does not match the expected {expected} ({how}; "
                         "the file was deleted; run again to download it anew)")
    return None if expected else digest


def _record(archive: dict, digest: str, downloads: Path) -> None:
    """Record the digest of an unpinned archive that downloaded and unpacked cleanly."""
    print(f"warning: {archive['filename']} has no published sha256; recorded {digest} in "
          f"{downloads / 'SHA256SUMS'} (later downloads must match it)", file=sys.stderr)
    sums = _known_sums(downloads)
    sums[archive["filename"]] = digest
    _write_sums(downloads, sums)


def _write_sums(downloads: Path, sums: dict[str, str]) -> None:
    atomic_write_text(downloads / "SHA256SUMS", "".join(f"{d}  {n}\n" for n, d in sorted(sums.items())))


def forget(manifest_path: Path, dest: Path, names: tuple[str, ...]) -> list[str]:
    """Clear what fetching the named archives left in `dest/.downloads` (recorded sha256, the file, its
    unpacked marker) so that the next fetch downloads and records them anew; returns what was cleared."""
    archives = {a["name"]: a for a in read_manifest(manifest_path)["archives"]}
    unknown = [n for n in names if n not in archives]
    if unknown:
        raise ValueError(f"unknown archive {unknown[0]!r} in {manifest_path}; choose from {', '.join(archives)}")
    downloads = Path(dest) / ".downloads"
    sums = _known_sums(downloads)
    cleared = []
    for name in names:
        filename = archives[name]["filename"]
        found = sums.pop(filename, None) is not None
        for leftover in (downloads / filename, downloads / f"{filename}.part"):
            found |= leftover.exists()
            leftover.unlink(missing_ok=True)
        unpacked = downloads / f"{filename}.unpacked"
        if unpacked.exists():  # its files stay known as bgrepro's, so that the next fetch may replace them
            found = True
            os.replace(unpacked, downloads / f"{filename}.unpacked.forgotten")
        if found:
            cleared.append(name)
    if downloads.is_dir():
        _write_sums(downloads, sums)
    return cleared


def _extract(file: Path, into: Path) -> None:
    try:
        if zipfile.is_zipfile(file):
            with zipfile.ZipFile(file) as z:
                z.extractall(into)
        else:
            with tarfile.open(file) as t:
                t.extractall(into, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"{file}: corrupt or unreadable archive ({err})") from None


def _ours(downloads: Path) -> set[str]:
    """Files (relative to dest) that fetching unpacked there, from the `.unpacked` records of every archive."""
    owned: set[str] = set()
    for record in downloads.glob("*.unpacked*"):
        owned.update(line for line in record.read_text().splitlines() if line and line != "ok")
    return owned


def unpack(file: Path, dest: Path, strip: str | None = None, exclude: tuple[str, ...] = ()) -> list[str]:
    """Extract an archive into dest (whole archive first into a temporary folder); returns the files moved
    (relative to dest). A file already in dest that an earlier fetch did not unpack is the user's: the
    archive is refused, naming it, before anything moves."""
    dest = Path(dest)
    tmp = dest / f".unpack-{file.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _extract(file, tmp)
        top = tmp / strip if strip else tmp
        if strip and not top.is_dir():
            raise ValueError(f"{file}: archive has no top-level folder {strip!r}")
        files = []
        for path in sorted(p for p in top.rglob("*") if p.is_file()):
            rel = path.relative_to(top).as_posix()
            if not any(rel == e or rel.startswith(e.rstrip("/") + "/") for e in exclude):
                files.append((path, rel))
        owned = _ours(dest / ".downloads")
        real_dest = Path(os.path.realpath(dest))
        for _, rel in files:  # everything checked before anything moves
            target = dest / rel
            for parent in list(target.relative_to(dest).parents)[:-1][::-1]:
                folder = dest / parent
                if os.path.lexists(folder) and (folder.is_symlink() or not folder.is_dir()):
                    raise FileExistsError(f"{folder}: the archive {file.name} needs a folder here, and this is "
                                          "not one bgrepro made; move it away or choose another --dest")
            if os.path.lexists(target) and rel not in owned:
                raise FileExistsError(f"{target}: already there and not unpacked by bgrepro; the archive {file.name} "
                                      "would replace it: move it away or choose another --dest")
            if not Path(os.path.realpath(target.parent)).is_relative_to(real_dest):
                raise ValueError(f"{target}: would be written outside `dest` {dest}")
        moved: list[str] = []
        try:
            for path, rel in files:
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
                moved.append(rel)
        except BaseException:
            if moved:  # what did move is bgrepro's: a later fetch may replace it
                atomic_write_text(dest / ".downloads" / f"{file.name}.unpacked.partial",
                                  "".join(f"{rel}\n" for rel in moved))
            raise
        return moved
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch(manifest_path: Path, dest: Path, only: tuple[str, ...] | None = None, progress: bool = True) -> list[str]:
    """Download, verify and unpack the manifest's archives (those named in `only`); returns their names."""
    manifest = read_manifest(manifest_path)
    archives = manifest["archives"]
    names = [a["name"] for a in archives]
    wanted = tuple(only or manifest.get("default", names))
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise ValueError(f"unknown archive {unknown[0]!r} in {manifest_path}; choose from {', '.join(names)}")
    dest = check_location(Path(dest), "`dest`")
    with locked(dest):
        return _fetch_into(archives, wanted, dest, progress)


def _fetch_into(archives: list[dict], wanted: tuple[str, ...], dest: Path, progress: bool) -> list[str]:
    downloads = dest / ".downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    done = []
    for archive in (a for a in archives if a["name"] in wanted):
        marker = downloads / f"{archive['filename']}.unpacked"
        if marker.exists():
            done.append(archive["name"])
            continue
        file = downloads / archive["filename"]
        if not file.exists():
            download(archive["url"], file, progress=progress)
        unrecorded = _verify(archive, file, downloads)
        try:
            moved = unpack(file, dest, archive.get("strip"), tuple(archive.get("exclude", ())))
            if not moved:
                raise ValueError(f"{file}: the archive holds no files (after strip and exclude)")
        except ValueError:
            if unrecorded:  # never record the digest of a download that does not unpack
                file.unlink(missing_ok=True)
            raise
        if unrecorded:
            _record(archive, unrecorded, downloads)
        atomic_write_text(marker, "".join(f"{rel}\n" for rel in moved))
        done.append(archive["name"])
    return done


def default_manifest(name: str) -> Path:
    """The committed manifest `data/<name>.json` (from the working folder, else beside the package)."""
    for candidate in (Path("data") / f"{name}.json", Path(__file__).resolve().parents[2] / "data" / f"{name}.json"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"data/{name}.json: no manifest for {name!r} (pass `manifest`)")
