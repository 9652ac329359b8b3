"""A folder of real photographs of IN-9's classes, as a folder source reads them: `select_photos` picks up to a
number of photos per class from an ImageNet-style folder (IN-9's class folders, `00_dog` ... `08_fish`, or
ImageNet's synset folders, `n02085620` ..., each mapped to its IN-9 class by the WordNet ancestry of `in9`),
checks that each one decodes, and links the readable ones into `<out>/<IN-9 class>/`. A photo that does not
decode, and every other entry of a class folder that is not a photo (a broken link, a text file, a subfolder), is
named in the selection's rejections and counted among the folder's entries, never fatal; the user's folder is only
read.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from .. import layout
from ..in9 import CLASS_FOLDERS, WNID_TO_IN9
from ..io import atomic_write_text, first_line, read_image

#: An ImageNet synset folder name.
_WNID = re.compile(r"^n\d{8}$")
#: The file beside the selection's folder that says it is complete (written last).
SELECTION = "selection.json"


@dataclass
class Selection:
    """What `select_photos` linked: the photos per IN-9 class, those available, and the rejected files."""

    root: str
    per_class: int | None
    seed: int
    chosen: dict[str, int] = field(default_factory=dict)
    available: dict[str, int] = field(default_factory=dict)
    rejected: list[dict] = field(default_factory=list)
    #: Synset folders of the photos' folder that are none of IN-9's classes (not read).
    other_synsets: int = 0

    @property
    def count(self) -> int:
        return sum(self.chosen.values())

    def to_json(self) -> dict:
        return asdict(self)


def photo_classes(root: Path) -> dict[int, list[Path]]:
    """IN-9 class -> its folders under `root`: IN-9's class folders by name, ImageNet synset folders by the WordNet
    ancestry (the synsets of none of the nine classes are left out); one error naming the folder otherwise."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: photo folder not found")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    out: dict[int, list[Path]] = {}
    for folder in folders:
        if folder.name in CLASS_FOLDERS:
            out.setdefault(CLASS_FOLDERS.index(folder.name), []).append(folder)
        elif _WNID.match(folder.name):
            if folder.name in WNID_TO_IN9:
                out.setdefault(WNID_TO_IN9[folder.name], []).append(folder)
        else:
            raise ValueError(f"{folder}: neither an IN-9 class folder ({CLASS_FOLDERS[0]} ... {CLASS_FOLDERS[-1]}) nor "
                             "an ImageNet synset folder (n01440764 ...); give a folder of such class folders")
    if not out:
        raise FileNotFoundError(f"{root}: no photos of IN-9's classes (no IN-9 class folder and no synset folder of "
                                "its 370 ImageNet classes)")
    return out


def photos_identity(root: Path) -> str:
    """What a photo folder holds, as far as the real-photo chapter reads it: every image of its IN-9 class or synset
    folders (links followed) by path, size and modification time, and every entry it cannot read by path, hashed."""
    digest, count = hashlib.sha256(), 0
    for label, folders in sorted(photo_classes(root).items()):
        for folder in folders:
            listing = layout.scan(folder)
            for path in listing.images:
                st = path.stat()
                digest.update(f"{label}/{folder.name}/{path.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
                count += 1
            for entry in listing.unread:
                digest.update(f"{label}/{folder.name}/{entry.path.name}:{entry.reason}\n".encode())
                count += 1
    return f"photos:{digest.hexdigest()}:{count}"


def check_photos(root: Path) -> None:
    """One error unless the folder holds a photo of IN-9's classes that decodes (the first one that does ends the
    look, so a good folder costs one decode): what the real-photo chapter checks before it runs."""
    unread = 0
    for folders in photo_classes(root).values():
        for folder in folders:
            listing = layout.scan(folder)
            unread += len(listing.unread)
            for path in listing.images:
                try:
                    read_image(path)
                    return
                except (ValueError, OSError, MemoryError):
                    unread += 1
    raise ValueError(f"{root}: no readable photo in its IN-9 class or synset folders (what they hold: {unread} "
                     "unreadable entries); give a folder with photos of IN-9's classes")


def select_photos(root: Path, out: Path, per_class: int | None = None, seed: int = 0,
                  progress: bool = True) -> Selection:
    """Up to `per_class` photos of each IN-9 class of `root` (all with None; a seeded draw otherwise), each decoded
    once to check it, linked into `<out>/<class>/`. A complete selection in `out` for the same arguments is
    reused; `out` is bgrepro's own folder (never inside `root`)."""
    root, out = Path(root).resolve(), Path(out)
    if out.resolve() == root or root in out.resolve().parents:
        raise ValueError(f"{out}: the selection may not lie inside the photos' folder {root}")
    done = out.parent / SELECTION  # beside the class folders, not among them
    if done.exists():
        saved = json.loads(done.read_text())
        if (saved["root"], saved["per_class"], saved["seed"]) == (str(root), per_class, seed):
            return Selection(**saved)
    by_class = photo_classes(root)
    synsets = sum(1 for p in root.iterdir() if p.is_dir() and _WNID.match(p.name) and p.name not in WNID_TO_IN9)
    selection = Selection(str(root), per_class, seed, other_synsets=synsets)
    plan = []
    for label in sorted(by_class):
        listings = [layout.scan(folder) for folder in by_class[label]]
        files = sorted(f for listing in listings for f in listing.images)
        selection.rejected += [{"path": str(u.path), "class": CLASS_FOLDERS[label], "reason": u.reason,
                                "detail": u.line()} for listing in listings for u in listing.unread]
        random.Random(f"{seed}/{CLASS_FOLDERS[label]}").shuffle(files)
        selection.available[CLASS_FOLDERS[label]] = len(files) + sum(len(x.unread) for x in listings)
        plan.append((label, files))
    for label, files in plan:
        name, kept = CLASS_FOLDERS[label], 0
        target = out / name
        target.mkdir(parents=True, exist_ok=True)
        for path in tqdm(files, desc=f"photos {layout.short_name(name)}", disable=not progress, leave=False):
            if per_class is not None and kept >= per_class:
                break
            try:
                read_image(path)
            except (ValueError, OSError, MemoryError) as err:
                selection.rejected.append({"path": str(path), "class": name, "reason": "unreadable",
                                           "detail": first_line(err)})
                continue
            link = target / f"{path.parent.name}_{path.name}" if path.parent.name != name else target / path.name
            if not link.is_symlink():
                try:
                    os.symlink(path, link)
                except FileExistsError:  # a second run into the same selection linked it first
                    pass
            kept += 1
        selection.chosen[name] = kept
    atomic_write_text(done, json.dumps(selection.to_json(), indent=1) + "\n")
    return selection


__all__ = ["Selection", "SELECTION", "check_photos", "photo_classes", "photos_identity", "select_photos"]
