"""Materialise IN-9 variants of any source on disk, in the official layout, with a manifest::

    DIR/<variant>/<split>/<class folder>/<id>.<ext>     the variants asked for, and always `original`
    DIR/fg_mask/<split>/<class folder>/<id>.npy         boolean foreground masks
    DIR/manifest.csv                                    every output: variant, split, path, label,
                                                        fg_id, fg_class, bg_id, bg_class, and the source
                                                        files of its foreground and background (fg_source,
                                                        bg_source: relative to the source's folder)
    DIR/rejections.csv                                  images the paper's filters left out, and why

Two phases, both parallel over processes and resumable: (1) per source image: load it (GrabCut
for box-only sources), write `original`, `fg_mask` and the single-image variants, and a small
record under DIR/.build/; (2) per mixed variant and foreground: paste the foreground on the
Only-BG-T of its paired background. Pairings are a deterministic function of the seed. Under torchrun
each rank builds its block of the images and of the composites (a collection too big for one
machine's cores builds on several sharing a file system); rank 0 stages, writes the manifest, and
commits. Every file
is written atomically; an interrupted build run again skips what is finished and ends with the
same bytes as an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing as mp
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import distributed, layout
from .. import variants as V
from ..io import (
    atomic_write_bytes,
    atomic_write_text,
    encode_image,
    read_image,
    read_mask,
    remove_stale_parts,
    save_mask,
)
from ..outputs import check_no_overlap, identity_of, staged_output
from ..variants import ORIGINAL
from . import composite
from .parallel import run_tasks
from .sources import Record, Source

MANIFEST_COLUMNS = ("variant", "split", "path", "label", "fg_id", "fg_class", "bg_id", "bg_class", "fg_source",
                    "bg_source")
SPLIT_ORDER = layout.SPLITS


@dataclass
class BuildReport:
    """What a build wrote and left out."""

    out: Path
    counts: Counter = field(default_factory=Counter)  # (variant, split) -> files
    rejections: Counter = field(default_factory=Counter)  # reason -> images
    written: int = 0
    skipped: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        """Human-readable summary, one line per variant."""
        rate = (self.written + self.skipped) / max(self.seconds, 1e-9)
        lines = [f"built {self.out} in {self.seconds:.1f}s: {self.written} files written, "
                 f"{self.skipped} already there ({rate:.0f} files/s)"]
        order = (layout.MASKS, *V.NAMES)
        for (variant, split), n in sorted(self.counts.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
            lines.append(f"  {variant:<11} {split:<5} {n}")
        if self.rejections:
            lines.append("  left out (rejections.csv says which and why): "
                         + ", ".join(f"{r} {n}" for r, n in sorted(self.rejections.items())))
        return "\n".join(lines)


# State shared with worker processes: set in this process, and handed to each spawned worker.
_STATE: dict = {}


def _ext(fmt: str) -> str:
    return "png" if fmt == "png" else "jpg"


def _out_path(out: Path, variant: str, split: str, folder: str, sample_id: str, fmt: str) -> Path:
    if variant == layout.MASKS:
        return layout.mask_path(out, split, folder, sample_id)
    return layout.image_path(out, variant, split, folder, sample_id, _ext(fmt))


def _source_file(source: Source, record: Record) -> str:
    """Where a source image came from: its path relative to the source's folder (absolute where it lies
    elsewhere), so that every composite's foreground and background can be found again."""
    path = Path(record.image_path)
    root = getattr(source, "root", None)
    try:
        return path.resolve().relative_to(Path(root).resolve()).as_posix() if root else str(path)
    except ValueError:
        return str(path.resolve())


def _single(record: Record) -> tuple[dict, int]:
    """Phase 1 for one source image; returns its record and how many files were written."""
    source: Source = _STATE["source"]
    out, fmt, variants = _STATE["out"], _STATE["fmt"], _STATE["single"]
    folder = source.classes[record.label]
    meta_file = layout.build_state_path(out, record.split, folder, record.id)
    wanted = (layout.MASKS, *variants) if source.foregrounds else variants
    targets = {v: _out_path(out, v, record.split, folder, record.id, fmt) for v in wanted}
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        if meta["status"] == "rejected" or all(p.exists() for p in targets.values()):
            return {"source": _source_file(source, record), **meta}, 0
    try:
        sample = source.load(record)
    except composite.Rejected as rejection:
        meta = {"status": "rejected", "id": record.id, "split": record.split, "label": record.label,
                "path": str(record.image_path), "reason": rejection.reason, "detail": str(rejection)}
        atomic_write_text(meta_file, json.dumps(meta) + "\n")
        return meta, 0
    written = 0
    for variant, path in targets.items():
        if path.exists():
            continue
        if variant == layout.MASKS:
            save_mask(path, sample.mask)
        else:
            atomic_write_bytes(path, encode_image(composite.single(variant, sample.image, sample.box, sample.mask),
                                                  fmt))
        written += 1
    meta = {"status": "ok", "id": record.id, "split": record.split, "label": record.label,
            "box": None if sample.box is None else list(sample.box), "shape": list(sample.image.shape[:2]),
            "source": _source_file(source, record)}
    atomic_write_text(meta_file, json.dumps(meta) + "\n")  # last: marks the image finished
    return meta, written


def _mixed(task: tuple[str, dict, dict]) -> int:
    """Phase 2 for one composite: foreground of `fg` on the Only-BG-T of `bg`."""
    variant, fg, bg = task
    source: Source = _STATE["source"]
    out, fmt = _STATE["out"], _STATE["fmt"]
    target = _out_path(out, variant, fg["split"], source.classes[fg["label"]], fg["id"], fmt)
    if target.exists():
        return 0
    fg_file = _out_path(out, ORIGINAL, fg["split"], source.classes[fg["label"]], fg["id"], fmt)
    bg_file = _out_path(out, ORIGINAL, bg["split"], source.classes[bg["label"]], bg["id"], fmt)
    fg_image = read_image(fg_file)
    fg_mask = read_mask(_out_path(out, layout.MASKS, fg["split"], source.classes[fg["label"]], fg["id"], fmt),
                        fg_image.shape[:2])
    bg_image = read_image(bg_file)
    if bg_image.shape != fg_image.shape:
        raise ValueError(f"{bg_file}: background is {bg_image.shape[1]}x{bg_image.shape[0]} but foreground "
                         f"{fg_file} is {fg_image.shape[1]}x{fg_image.shape[0]}; mixing needs one image size")
    background = composite.only_bg_t(bg_image, tuple(bg["box"]))
    atomic_write_bytes(target, encode_image(composite.paste(fg_image, fg_mask, background), fmt))
    return 1


def pair_backgrounds(samples: list[dict], variant: str, seed: int, num_classes: int,
                     class_names: tuple[str, ...] | None = None) -> list[dict]:
    """For each foreground (in order), the sample whose Only-BG-T becomes its background.

    By the variant's pairing (`variants.Variant.pairing`): "same", another image of the same class; "random",
    another image of any class; "next", an image of class (c + 1) mod num_classes. Deterministic from the seed.
    """
    if not samples:
        return []
    split = samples[0]["split"]
    rng = np.random.default_rng([seed, SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER),
                                 V.MIXED.index(variant)])
    by_class: dict[int, list[int]] = {}
    for i, s in enumerate(samples):
        by_class.setdefault(s["label"], []).append(i)
    name = lambda c: repr(class_names[c]) if class_names else str(c)  # noqa: E731
    pairing = V.BY_NAME[variant].pairing
    if pairing == "same":  # every class too small, named at once
        alone = [c for c, members in sorted(by_class.items()) if len(members) < 2]
        if alone:
            raise ValueError(f"{variant} for split {split!r} needs at least two images of each class; "
                             f"{len(alone)} class(es) have one: {', '.join(name(c) for c in alone[:8])}"
                             f"{', ...' if len(alone) > 8 else ''} (add images to them, leave them out, or leave "
                             "this variant out of the build (`variants`))")
    chosen = []
    for i, s in enumerate(samples):
        if pairing == "same":
            pool = [k for k in by_class[s["label"]] if k != i]
            need = f"at least two images of class {name(s['label'])}"
        elif pairing == "next":
            pool = by_class.get((s["label"] + 1) % num_classes, [])
            need = f"an image of class {name((s['label'] + 1) % num_classes)} (the next class)"
        else:
            pool = [k for k in range(len(samples)) if k != i]
            need = "at least two images"
        if not pool:
            raise ValueError(f"{variant} for split {split!r} needs {need}")
        chosen.append(samples[pool[int(rng.integers(len(pool)))]])
    return chosen


def _set_state(state: dict) -> None:
    _STATE.update(state)


def build(
    source: Source,
    out: Path,
    variants: tuple[str, ...] = V.NAMES,
    splits: tuple[str, ...] | None = None,
    seed: int = 0,
    workers: int | None = None,
    fmt: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> BuildReport:
    """Write the asked variants of `source` to `out`; resumable and deterministic. `out` is written
    whole or not at all (see `outputs.staged_output`); one built with other arguments is refused unless
    `overwrite`, one from changed inputs is rebuilt, and `out` may not overlap the source's folders."""
    t0 = time.perf_counter()
    out = Path(out)
    inputs = source.inputs()
    check_no_overlap(out, inputs)
    fmt = fmt or ("jpeg" if source.photo else "png")
    if fmt not in ("png", "jpeg"):
        raise ValueError(f"`format` must be png or jpeg, got {fmt!r}")
    available = source.splits()
    splits = tuple(splits or available)
    missing = [s for s in splits if s not in available]
    if missing:
        raise FileNotFoundError(f"source has no {missing[0]!r} split (it has: {', '.join(available) or 'none'})")
    records = [r for s in splits for r in source.records(s)]  # validates the layout before writing anything
    if not records:
        raise ValueError("the source has no images in the chosen splits")
    variants = (ORIGINAL, *[v for v in variants if v != ORIGINAL])  # the base of every other variant
    if any(v in V.MIXED for v in variants):  # Mixed-Same and Mixed-Next draw from every class of every split
        have = {(r.split, r.label) for r in records}
        empty = next(((s, c) for s in splits for c in range(len(source.classes)) if (s, c) not in have), None)
        if empty is not None:
            split, label = empty
            raise ValueError(f"{source.class_folder(split, label)}: no image in this class folder (split {split!r}); "
                             "the mixed variants need images of every class in every split: add photos of "
                             f"{source.classes[label]!r} or remove its folder")
    if not source.foregrounds and variants != (ORIGINAL,):
        raise ValueError(f"{source.describe().get('root', 'the source')}: its images have no foreground (IN-9L), so "
                         f"only the original variant can be built, not {', '.join(variants[1:])}")
    args = {"source": source.describe(), "variants": list(variants), "splits": list(splits), "seed": seed,
            "format": fmt}
    stage = lambda: staged_output(out, "build", args, inputs=identity_of(inputs), overwrite=overwrite,  # noqa: E731
                                  what="build", record=layout.BUILD_ARGS)
    with distributed.main_first(stage) as work:  # under torchrun: rank 0 locks and stages, every rank builds
        report = _build_into(work, out.name, source, records, variants, splits, seed, fmt, workers,
                             progress and distributed.is_main())
    report.out = out
    report.seconds = time.perf_counter() - t0
    return report


def _build_into(out: Path, name: str, source: Source, records: list[Record], variants: tuple[str, ...],
                splits: tuple[str, ...], seed: int, fmt: str, workers: int | None, progress: bool) -> BuildReport:
    if distributed.is_main():
        remove_stale_parts(out)
    distributed.barrier()
    workers = max(1, min(workers or mp.cpu_count(), len(records)))
    _STATE.update(source=source, out=out, fmt=fmt, single=tuple(v for v in V.SINGLE if v in variants))
    report = BuildReport(out)
    # under torchrun each rank builds its block of the images, then of the composites; every rank learns
    # every image's record, and rank 0 alone writes the manifest
    phase1 = distributed.map_blocks(
        lambda block: run_tasks(_single, block, workers, f"build {name}: images", progress, _set_state,
                                (dict(_STATE),)), records)
    metas = [m for m, _ in phase1]
    report.written += sum(n for _, n in phase1)
    ok = [m for m in metas if m["status"] == "ok"]
    # the files among the photos that are not read at all (another format, a FIFO, ...) are named too
    rejected = [m for m in metas if m["status"] == "rejected"] + [m for m in source.skipped()
                                                                   if m["split"] in (*splits, "")]
    report.rejections.update(m["reason"] for m in rejected)
    if not ok:
        raise ValueError(f"the paper's filters left out every one of the {len(metas)} images "
                         f"({_reasons(report.rejections)}); nothing to build")
    shapes = {tuple(m["shape"]) for m in ok}
    mixed = [v for v in V.MIXED if v in variants]
    if mixed and len(shapes) > 1:
        raise ValueError(f"images come in several sizes {sorted(shapes)[:3]}; mixed variants need one size")
    pairs = {}
    for variant in mixed:
        for split in splits:
            fgs = [m for m in ok if m["split"] == split]
            try:
                backgrounds = pair_backgrounds(fgs, variant, seed, len(source.classes), source.classes)
            except ValueError as err:
                if not report.rejections:
                    raise
                raise ValueError(f"{err}; the paper's filters left out {_reasons(report.rejections)} of the "
                                 f"{len(metas)} images") from None
            pairs[variant, split] = list(zip(fgs, backgrounds))
    tasks = [(v, fg, bg) for (v, _), pl in pairs.items() for fg, bg in pl]
    report.written += sum(distributed.map_blocks(
        lambda block: run_tasks(_mixed, block, workers, f"build {name}: mixed", progress, _set_state,
                                (dict(_STATE),)), tasks))
    _write_manifest(out, source, fmt, ok, variants, pairs, report)  # counts on every rank, the file on rank 0
    if distributed.is_main():
        _write_rejections(out, rejected)
    report.skipped = sum(report.counts.values()) - report.written
    return report


def _reasons(rejections: Counter) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in rejections.most_common())


def _write_manifest(out, source, fmt, ok, variants, pairs, report) -> None:
    rows = []
    key = lambda m: (SPLIT_ORDER.index(m["split"]) if m["split"] in SPLIT_ORDER else len(SPLIT_ORDER), m["label"],
                   m["id"])  # noqa: E731
    for variant in ((layout.MASKS,) if source.foregrounds else ()) + tuple(v for v in V.NAMES if v in variants):
        if variant in V.MIXED:
            items = sorted(((fg, bg) for (v, _), pl in pairs.items() if v == variant for fg, bg in pl),
                           key=lambda p: key(p[0]))
        else:
            items = [(m, m) for m in sorted(ok, key=key)]
        for fg, bg in items:
            folder = source.classes[fg["label"]]
            path = _out_path(out, variant, fg["split"], folder, fg["id"], fmt).relative_to(out).as_posix()
            has_fg = variant == layout.MASKS or V.BY_NAME[variant].foreground
            has_bg = variant != layout.MASKS and V.BY_NAME[variant].background
            rows.append([variant, fg["split"], path, fg["label"],
                         fg["id"] if has_fg else "", fg["label"] if has_fg else "",
                         bg["id"] if has_bg else "", bg["label"] if has_bg else "",
                         fg.get("source", "") if has_fg else "", bg.get("source", "") if has_bg else ""])
            report.counts[variant, fg["split"]] += 1
    if not distributed.is_main():
        return
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    writer.writerows(rows)
    atomic_write_text(layout.manifest_path(out), buf.getvalue())


def _write_rejections(out: Path, rejected: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("split", "id", "label", "path", "reason", "detail"))
    order = lambda m: (m["split"], m["label"] if isinstance(m["label"], int) else -1, m["id"])  # noqa: E731
    for m in sorted(rejected, key=order):
        writer.writerow((m["split"], m["id"], m["label"], m["path"], m["reason"], m["detail"]))
    atomic_write_text(out / "rejections.csv", buf.getvalue())


def read_manifest(root: Path) -> list[dict]:
    """Rows of a build's manifest.csv."""
    path = layout.manifest_path(root)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no manifest.csv (was {root} made by `bgrepro build`?)")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
