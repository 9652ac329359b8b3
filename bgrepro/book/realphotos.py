"""The real-photo chapter: the paper's claims about ImageNet-pretrained models, tested on real photographs of IN-9's
classes with ImageNet classifiers whose weights a package ships (`registry.PACKAGED`: EfficientNet-Lite0/1/2).

No annotation is used. The photos of an ImageNet-style folder (`data.photos`) get their foreground masks from
representer point selection on the first model's trunk (w* in one pass over the photos, each map cut at 0.5 and
its box handed to GrabCut, as `bgrepro localize --write-masks --refine grabcut` does), and the builder turns them
into the eight variants (Only-BG-B from the mask's box). Each model is then scored on every variant, searched by
the backgrounds challenge, split by the fine-grained categories and looked at by Grad-CAM; every number carries its
interval over photos, and every claim that applies to pretrained models is judged by its `verdicts.CLAIMS`
criterion, one model at a time. Where truth exists (two photos with true masks) the masks are scored beside CAAM
and the chance rows.
"""

from __future__ import annotations

import importlib.util
import os
import random
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import layout, registry
from ..analyses.groups import wilson
from ..analyses.masks import images_at, refine_by_grabcut, write_masks
from ..analyses.rps import RPS, activation_maps, estimate
from ..analyses.saliency import foreground_share, gradcam
from ..analyses.wsol import (
    IOU_THRESHOLDS,
    best_ious,
    best_threshold,
    box_metrics,
    chance_rows,
    localization_metrics,
    mask_iou,
    masks_from_maps,
    whole_image_ious,
)
from ..data.build import build
from ..data.datasets import ImageListing, ImageSet
from ..data.photos import photo_classes, photos_identity, select_photos
from ..data.sources import FolderSource
from ..in9 import CLASS_FOLDERS
from ..io import atomic_write_text, read_image, read_mask, read_table
from ..outputs import fingerprint
from ..profiles import get_profile
from ..registry import PACKAGED, PUBLISHED_FILES, installed_packaged
from ..registry.weights import Published
from ..variants import MIXED_RAND, MIXED_SAME, ONLY_BG_T, ONLY_FG, ORIGINAL, title
from . import experiments, paper
from . import verdicts as v
from .records import Record, cached, config_hash
from .studies import Study, progress_verdict

#: The packaged models, weakest to strongest by their ImageNet top-1 (75.1, 76.7, 77.6%).
MODELS = tuple(PACKAGED)
#: The backbone whose trunk makes the masks where a folder has no boxes, and the side photos are built at (224 px).
MASK_BACKBONE, SIDE = MODELS[0], 224
#: w* is a mean: it is estimated on at most this many photos per class, so memory stays flat in the photos' number.
ESTIMATE_PER_CLASS = 120
#: Photos per class whose Grad-CAM share on the foreground is measured.
SALIENCY_PER_CLASS = 5
#: The variants of the accuracy table, in the paper's order.
ROWS = (ORIGINAL, ONLY_BG_T, MIXED_SAME, MIXED_RAND, ONLY_FG)
#: Where the photos shipped beside a checkout are (`../shared/realphotos`, read by path, never copied).
SHARED = Path(__file__).resolve().parents[3] / "shared" / "realphotos"
#: Where the TFLite classifiers shipped beside a checkout are (`../shared/realmodels`, read by path, never copied).
SHARED_MODELS = SHARED.parent / "realmodels"
#: The routes in a few words, for tables.
SHORT_ROUTES = {"boxes": "box + GrabCut", "rps": "RPS + GrabCut"}
#: How the photos' foreground masks are made: from ImageNet's boxes by GrabCut with the paper's filters (IN-9's own
#: recipe, where the folder comes with boxes), or by RPS on `MASK_BACKBONE`'s trunk and GrabCut (no annotation).
ROUTES = {"boxes": "ImageNet's boxes and GrabCut (the paper's recipe)",
          "rps": f"RPS on {PACKAGED[MASK_BACKBONE].published.display}'s trunk and GrabCut (no annotation)"}
#: The claims the chapter judges, and those that need models trained on the variants (none of ours is).
JUDGED = ("2", "3", "5", "6", "RPS")
TRAINED_ONLY = ("1", "4a", "4b", "4c")


def default_photos() -> Path | None:
    """The ImageNet validation photos shipped beside a checkout (`SHARED/imagenet-val-227`), or None."""
    path = SHARED / "imagenet-val-227"
    return path if path.is_dir() else None


@dataclass(frozen=True)
class RealModel:
    """One ImageNet classifier of the chapter: its key (a packaged name, or a TFLite file's stem), what
    `registry.load` takes, what its authors publish (name, ImageNet top-1 and its source table), the identity its
    records are keyed by, and whether Grad-CAM reaches its layers."""

    key: str
    spec: str
    published: Published
    weights: str
    gradients: bool

    @property
    def display(self) -> str:
        return self.published.display

    @property
    def top1(self) -> float:
        return self.published.top1


def ladder(profile: str | None = None, models_dir: Path | None = None) -> tuple[RealModel, ...]:
    """The chapter's models, weakest to strongest by published ImageNet top-1: the packaged EfficientNet-Lites that
    are installed and the TFLite files of `PUBLISHED_FILES` in `models_dir` (`SHARED_MODELS` by default) when LiteRT
    is installed; the profile's `real_models` keys only, where it names some."""
    found = [RealModel(name, name, e.published, f"package {e.package}", True)
             for name, e in PACKAGED.items() if name in installed_packaged()]
    folder = SHARED_MODELS if models_dir is None else Path(models_dir)
    if folder.is_dir() and importlib.util.find_spec("ai_edge_litert") is not None:
        found += [RealModel(Path(name).stem, str(folder / name), published, fingerprint(folder / name), False)
                  for name, published in PUBLISHED_FILES.items() if (folder / name).is_file()]
    wanted = get_profile(profile).real_models
    return tuple(sorted((m for m in found if not wanted or m.key in wanted), key=lambda m: m.top1))


@dataclass(frozen=True)
class TrueMask:
    """A photo with a true segmentation mask: which of the mask's values are the object, which are its border
    (left out of the scores), and the photo's IN-9 class."""

    photo: str
    mask: str
    label: str
    object: tuple[int, ...]
    ignore: tuple[int, ...]


#: The two photos with true masks (`SHARED/masked-pets-birds`). Their encodings, read from the files: the dog's is
#: a pet trimap (0 object, 1 background, 2 border, as the folder's README says); the bird's is a VOC class map (3,
#: VOC's bird, the object; 0 background; a few 1 and 2 pixels on the outline, left out as border).
TRUE_MASKS = (TrueMask("dog_segmentation.bmp", "dog_segmentation_mask.bmp", "00_dog", (0,), (2,)),
              TrueMask("bird_segmentation.bmp", "bird_segmentation_mask.bmp", "01_bird", (3,), (1, 2)))


def read_true_masks(folder: Path, side: int = SIDE) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """The true-mask photos at side x side (uint8 (N, 3, side, side)), their object masks and their border masks."""
    import cv2

    images, objects, borders = [], [], []
    for t in TRUE_MASKS:
        rgb = cv2.resize(read_image(Path(folder) / t.photo), (side, side), interpolation=cv2.INTER_AREA)
        values = cv2.resize(np.asarray(read_image(Path(folder) / t.mask))[..., 0], (side, side),
                            interpolation=cv2.INTER_NEAREST)
        images.append(rgb)
        objects.append(np.isin(values, t.object))
        borders.append(np.isin(values, t.ignore))
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(), np.stack(objects), np.stack(borders)


# ------------------------------------------------------------------------------------------- the photos' variants
@dataclass(frozen=True)
class PhotoSet:
    """The real photos' variants by one route (`ROUTES`): where they were built and what went in (the record of
    `photo_variants`)."""

    record: Record

    @property
    def data(self) -> Path:
        return Path(self.record.metrics["data"])

    @property
    def folder(self) -> Path:
        return self.data.parent

    @property
    def route(self) -> str:
        return self.record.metrics["route"]

    @property
    def metrics(self) -> dict:
        return self.record.metrics


def boxes_of(photos: Path) -> Path | None:
    """The box CSV of a photo folder, `<folder>-boxes.csv` beside it (as `../shared/realphotos` ships its official
    ImageNet boxes), or None: one row a box, the photo's path relative to the folder in `file` (or `path`), the box
    in the stored photo's pixels in `xmin, ymin, xmax, ymax`."""
    path = Path(photos).parent / f"{Path(photos).name}-boxes.csv"
    return path if path.is_file() else None


def _read_boxes(csv_path: Path, root: Path) -> dict[Path, list[tuple[float, ...]]]:
    """A box CSV as {photo's real path: its boxes}; one error naming the file and what it lacks."""
    columns, rows = read_table(csv_path)
    key = "file" if "file" in columns else "path" if "path" in columns else None
    need = {"xmin", "ymin", "xmax", "ymax"}
    if key is None or not need <= set(columns):
        raise ValueError(f"{csv_path}: a box CSV needs a file (or path) column and xmin, ymin, xmax, ymax")
    out: dict[Path, list[tuple[float, ...]]] = {}
    for line, row in enumerate(rows, start=2):
        try:
            box = tuple(float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError):
            raise ValueError(f"{csv_path}:{line}: box coordinates must be numbers") from None
        out.setdefault((root / row[key]).resolve(), []).append(box)
    return out


def _box_folder(selection_dir: Path, boxes: Path, photos: Path, out: Path) -> int:
    """The selected photos that have boxes, linked into `out/photos/<class>/`, and their boxes in `out/boxes.csv` (the
    folder source's form); returns how many selected photos have no box (left out)."""
    table = _read_boxes(boxes, Path(photos).resolve())
    lines, missing = ["path,xmin,ymin,xmax,ymax"], 0
    for link in sorted(selection_dir.glob("*/*")):
        target = link.resolve()
        if target not in table:
            missing += 1
            continue
        mine = out / "photos" / link.parent.name / link.name
        mine.parent.mkdir(parents=True, exist_ok=True)
        if not mine.is_symlink():
            os.symlink(target, mine)
        lines += [f"{link.parent.name}/{link.name},{','.join(f'{v:g}' for v in box)}" for box in table[target]]
    atomic_write_text(out / "boxes.csv", "\n".join(lines) + "\n")
    return missing


def photo_variants(photos: Path, profile: str | None = None, seed: int = 0, progress: bool = True,
                   route: str = "boxes") -> PhotoSet:
    """The eight variants of the profile's share of the photos (`real_per_class` per class, one seeded draw shared by
    both routes), built under results/realphotos/ with masks made by `route`: "boxes", the paper's recipe (the photos
    with exactly one box of `boxes_of`, GrabCut inside it, the paper's filters), or "rps" (RPS on `MASK_BACKBONE`'s
    trunk, its map's box handed to GrabCut). Resumable: the selection, w*, the masks and the build each pick up
    where they stopped."""
    p = get_profile(profile)
    if route not in ROUTES:
        raise ValueError(f"`route` must be one of {', '.join(ROUTES)}, got {route!r}")
    chosen = {"photos": str(Path(photos).resolve()), "photos_identity": photos_identity(Path(photos)),
              "per_class": p.real_per_class, "seed": seed}
    base = layout.results_dir() / "realphotos" / config_hash("real_selection", chosen)
    if route == "boxes":
        boxes = boxes_of(photos)
        if boxes is None:
            raise ValueError(f"{photos}: no box CSV beside it ({Path(photos).name}-boxes.csv); the rps route needs "
                             "none")
        config = {**chosen, "route": route, "boxes": str(boxes.resolve()), "boxes_identity": fingerprint(boxes),
                  "side": SIDE, "mask": "grabcut in the one box, the paper's filters"}
    else:
        config = {**chosen, "route": route, "backbone": MASK_BACKBONE, "side": SIDE,
                  "mask": "rps-0.5-largest-component, grabcut", "estimate_per_class": ESTIMATE_PER_CLASS}
    folder = base / route

    def compute(cfg: dict) -> dict:
        selection = select_photos(Path(photos), base / "photos", cfg["per_class"], seed, progress)
        if selection.count == 0:
            raise ValueError(f"{photos}: no readable photo of IN-9's classes ({len(selection.rejected)} unreadable)")
        extra = {}
        if route == "boxes":
            extra["no_box"] = _box_folder(base / "photos", Path(cfg["boxes"]), Path(photos), folder)
            source = FolderSource(folder / "photos", boxes=folder / "boxes.csv", size=SIDE)
        else:
            extra["w_estimated_on"] = _rps_masks(base / "photos", folder, selection, seed, progress)
            source = FolderSource(base / "photos", masks=folder / "masks", size=SIDE, missing_masks="reject")
        report = build(source, folder / "variants", seed=seed, progress=progress)
        kept = {c: len(layout.images_in(layout.split_dir(folder / "variants", ORIGINAL, "val") / c))
                for c in layout.class_folders(folder / "variants")}
        return {"data": str(folder / "variants"), "route": route, "selection": selection.to_json(), "kept": kept,
                "build_rejections": dict(report.rejections), "n_photos": selection.count,
                "n_kept": sum(kept.values()), **extra}

    return PhotoSet(cached("real_photos", config, compute))


def _rps_masks(photos: Path, folder: Path, selection, seed: int, progress: bool) -> int:
    """RPS masks of the selected photos in `folder/masks` (w* in `folder/rps.pt`, estimated on at most
    `ESTIMATE_PER_CLASS` photos a class, drawn with the seed); returns how many photos w* was estimated on."""
    trunk = registry.load(MASK_BACKBONE, offline=True).trunk()
    saved = folder / "rps.pt"
    if saved.exists():
        rps = RPS.load(saved)
    else:
        files = [f for c in selection.chosen for f in _draw(layout.images_in(photos / c), ESTIMATE_PER_CLASS, seed)]
        rps = estimate(trunk, images_at(files, SIDE, progress), progress=progress)
        rps.save(saved)
        (folder / "rps-photos.txt").write_text(f"{len(files)}\n")
    write_masks(trunk, rps, photos, folder / "masks", SIDE, refine="grabcut", batch_size=experiments.PHOTO_BATCH_CPU,
                progress=progress)
    masked = {c: len(list((folder / "masks" / c).glob("*.npy"))) for c in selection.chosen}
    short_of = [c for c, n in masked.items() if n < 2]
    if short_of:  # Mixed-Same pairs two photos of a class, and IN-9's mapping needs all nine classes
        raise ValueError(f"{selection.root}: only {masked[short_of[0]]} photo(s) of {short_of[0]} got a mask (RPS "
                         "found no object, or GrabCut left no background, in the others); give more photos of it, "
                         "or a profile with more per class")
    return int((folder / "rps-photos.txt").read_text().strip())


def _draw(files: list[Path], count: int, seed: int) -> list[Path]:
    """`count` of the files (all when fewer), a seeded draw, in name order."""
    return files if len(files) <= count else sorted(random.Random(seed).sample(files, count))


#: The column of the photo counts for each route's kept photos.
KEPT = {"boxes": "kept: box", "rps": "kept: RPS"}


def photo_counts(sets: dict[str, PhotoSet]) -> pd.DataFrame:
    """Per class: the photos in the folder, those chosen, those each route kept ("kept: box": exactly one box and the
    paper's filters passed; "kept: RPS": RPS found an object and GrabCut left a foreground and a background), and
    the entries that are not readable photos."""
    m = next(iter(sets.values())).metrics
    rejected = pd.Series([r["class"] for r in m["selection"]["rejected"]], dtype=object).value_counts()
    rows = {layout.short_name(c): {"in the folder": m["selection"]["available"].get(c, 0),
                                   "chosen": m["selection"]["chosen"].get(c, 0),
                                   **{KEPT[r]: ps.metrics["kept"].get(c, 0) for r, ps in sets.items()},
                                   "not readable": int(rejected.get(c, 0))}
            for c in m["selection"]["available"]}
    table = pd.DataFrame(rows).T
    table.loc["all"] = table.sum()
    return table


# ------------------------------------------------------------------------------------------------ the models
def model_records(data: Path, models: tuple[RealModel, ...]) -> dict[RealModel, Record]:
    """Each model's evaluation record on the photos' variants (`experiments.pretrained_record`)."""
    return {m: experiments.pretrained_record(m.spec, data, m.weights) for m in models}


def _pct(value: float, pair) -> str:
    return f"{100 * value:.1f} [{100 * pair[0]:.1f}, {100 * pair[1]:.1f}]" if pair else f"{100 * value:.1f}"


def accuracy_table(records: dict[RealModel, Record]) -> pd.DataFrame:
    """Table 2's ImageNet half on the photos: each model's accuracy (%) on each variant and its BG-Gap, each with its
    95% bootstrap interval over the photos, one row a model with its published ImageNet top-1, then the paper's five
    ImageNet-pretrained models (Table 2)."""
    rows = {}
    for model, record in records.items():
        e = record.metrics["evaluation"]
        rows[model.display] = {"ImageNet top-1": f"{model.top1:.1f}",
                               **{title(r): _pct(e["accuracy"][r], e["ci95"].get(r)) for r in ROWS
                                  if r in e["accuracy"]},
                               "BG-Gap (points)": _pct(e["bg_gap"], e["bg_gap_ci95"])}
    imagenet = paper.TABLE2_IMAGENET
    for name in imagenet.columns:
        rows[f"paper: {name}"] = {"ImageNet top-1": f"{imagenet.loc['imagenet', name]:.1f}",
                                  **{title(r): f"{imagenet.loc[r, name]:.1f}" for r in ROWS if r in imagenet.index},
                                  "BG-Gap (points)": f"{imagenet.loc['bg_gap', name]:.1f}"}
    return pd.DataFrame(rows).T.fillna("")


def accuracy_numbers(records: dict[RealModel, Record]) -> pd.DataFrame:
    """The same accuracies as numbers (%), one row per model, with the ImageNet top-1 its authors report."""
    return pd.DataFrame({m.display: {"ImageNet top-1": m.top1,
                                     **{r: 100 * rec.metrics["evaluation"]["accuracy"][r] for r in ROWS
                                        if r in rec.metrics["evaluation"]["accuracy"]},
                                     "bg_gap": 100 * rec.metrics["evaluation"]["bg_gap"]}
                         for m, rec in records.items()}).T


def sources_table(models: tuple[RealModel, ...]) -> pd.DataFrame:
    """Each model's published ImageNet top-1 and the table it is quoted from."""
    return pd.DataFrame({m.display: {"ImageNet top-1 %": m.top1, "quoted from": m.published.source,
                                     "format": "TFLite (8-bit)" if not m.gradients else "PyTorch (package weights)"}
                         for m in models}).T


def challenges(data: Path, models: tuple[RealModel, ...], profile: str | None = None, progress: bool = True
               ) -> dict[RealModel, dict]:
    """Each model's backgrounds challenge on the photos within the profile's budget (`real_challenge_budget`)."""
    budget = get_profile(profile).real_challenge_budget
    return {m: experiments.pretrained_challenge(m.spec, data, m.weights, progress, budget=budget) for m in models}


def challenge_estimate(summary: dict) -> v.Estimate:
    """A challenge accuracy (%) with its 95% interval: Clopper-Pearson over a sample of foregrounds, else Wilson
    over the foregrounds (the photos as a sample of their classes)."""
    n, unfooled = summary["n_foregrounds"], round(summary["challenge_accuracy"] * summary["n_foregrounds"])
    low, high = summary["ci95"] or wilson(unfooled, n)
    over = f"{n} foregrounds x {summary['n_backgrounds']} backgrounds"
    if summary["upper_bound"]:
        over += ", an upper bound"
    return v.Estimate(100 * summary["challenge_accuracy"], 100 * low, 100 * high, over)


def challenge_table(results: dict) -> pd.DataFrame:
    """Per model: the challenge accuracy with its interval, the share fooled, what was searched, and what the
    number means (exact, a sample, a bound)."""
    return pd.DataFrame({m.display: {"challenge accuracy %": challenge_estimate(s).text(),
                                    "foregrounds fooled %": round(100 * s["fooled_fraction"], 1),
                                    "composites evaluated": s["composites"], "reading": s["reading"]}
                         for m, s in results.items()}).T


def needs_background(record: Record) -> tuple[int, int]:
    """(photos right on Original and wrong on Mixed-Rand, photos): claim 5's share."""
    table = record.metrics["finegrained"]
    hits = sum(o and not r for o, r in zip(table[ORIGINAL], table[MIXED_RAND]))
    return int(hits), len(table[ORIGINAL])


def finegrained_table(records: dict[RealModel, Record]) -> pd.DataFrame:
    """The fine-grained categories (% of photos, `analyses.finegrained`) of each model."""
    from ..analyses import finegrained

    columns = {}
    for model, record in records.items():
        t = record.metrics["finegrained"]
        frame = pd.DataFrame({c: t[c] for c in ("label", *finegrained.VARIANTS_USED)}, index=t["ids"])
        columns[model.display] = finegrained.summary(frame)["share %"]
    return pd.DataFrame(columns)


def first_photos(data: Path, per_class: int) -> ImageSet:
    """The first `per_class` test photos of each class with their masks, only they decoded (memory stays flat in the
    photos' number)."""
    listing = ImageListing.of(data, ORIGINAL, "val")
    keep = torch.cat([torch.nonzero(listing.labels == c).flatten()[:per_class] for c in range(len(listing.classes))])
    return listing.subset(keep.sort().values.tolist()).load(with_masks=True)


def saliency_table(data: Path, models: tuple[RealModel, ...], progress: bool = True) -> pd.DataFrame:
    """Grad-CAM's share (%) of saliency on the foreground mask, per model whose layers Grad-CAM reaches (not the
    TFLite files), on `SALIENCY_PER_CLASS` photos per class, beside the masks' share of the image (what a map that
    ignores the object gets)."""
    columns = {}
    for model in (m for m in models if m.gradients):
        def compute(cfg: dict, model=model) -> dict:
            test = first_photos(Path(cfg["data"]), cfg["per_class"])
            net = registry.load(model.spec, offline=True).for_data(list(test.classes), SIDE).net
            share = foreground_share(gradcam(net, test.images, batch_size=experiments.PHOTO_BATCH_CPU,
                                             progress=progress), test.masks)
            return {"mean": float(np.nanmean(share)), "fg_fraction": float(test.masks.float().mean()),
                    "n": len(test)}

        m = cached("real_saliency", {"model": model.key, "data": str(data), "per_class": SALIENCY_PER_CLASS},
                   compute).metrics
        columns[model.display] = {"saliency on the foreground %": 100 * m["mean"],
                                 "mask area (chance) %": 100 * m["fg_fraction"], "photos": m["n"]}
    table = pd.DataFrame(columns).T
    table["photos"] = table["photos"].astype(int)
    return table


# ----------------------------------------------------------------------------------------- masks against truth
def mask_quality(photos: PhotoSet, truth: Path) -> pd.DataFrame:
    """The RPS maps and masks of the chapter (w* from the photos, `MASK_BACKBONE`'s trunk) against the true masks of
    `TRUE_MASKS`, beside CAAM and the chance rows: PxAP and MaxBoxAccV2 (%, the standard WSOL metrics; the mask
    borders left out of PxAP) and the mask IoU (%) of each photo."""
    def compute(cfg: dict) -> dict:
        images, objects, borders = read_true_masks(Path(cfg["truth"]))
        trunk = registry.load(MASK_BACKBONE, offline=True).trunk()
        rps = RPS.load(photos.folder / "rps.pt")
        rps_maps = activation_maps(trunk, images, rps).numpy()
        rows = {}
        for name, maps in (("RPS", rps_maps), ("CAAM (channel sum)", activation_maps(trunk, images, None).numpy())):
            rows[name] = {**localization_metrics(maps, objects, ignore=borders),
                          "iou": [100 * float(x) for x in mask_iou(masks_from_maps(maps), objects)]}
        rgb = images.permute(0, 2, 3, 1).numpy()
        cut = [refine_by_grabcut(img, m) for img, m in zip(rgb, masks_from_maps(rps_maps))]
        rows["RPS + GrabCut (the chapter's masks)"] = {
            "iou": [100 * float(mask_iou(c[None], o[None])[0]) if c is not None else 0.0 for c, o in zip(cut, objects)]}
        for name, metrics in chance_rows(objects).items():
            rows[f"chance: {name}"] = {**metrics, "iou": None}
        return {"rows": rows, "photos": [t.photo for t in TRUE_MASKS]}

    m = cached("real_mask_quality", {"truth": str(truth), "photos": photos.record.config}, compute).metrics
    table = {}
    for name, row in m["rows"].items():
        table[name] = {"PxAP": row.get("pxap"), "MaxBoxAccV2": row.get("maxboxaccv2"),
                       **{f"IoU {Path(p).stem.split('_')[0]}": (row["iou"][k] if row.get("iou") else None)
                          for k, p in enumerate(m["photos"])}}
    return pd.DataFrame(table).T


# ------------------------------------------------------------------------------------- RPS on its own benchmark
#: The input sides RPS is tried at on the held-out photos: 224 px gives the trunks' 7 x 7 maps (stride 32 on the
#: 224-px photo), 320 px 10 x 10 maps (an effective stride of 22 px).
BENCHMARK_SIDES = (224, 320)
#: The share of the photos with boxes on which the trunk, side and every map's threshold are chosen.
BENCHMARK_HELD_OUT = 1 / 3


def _benchmark_photos(photos: Path, per_class: int | None, seed: int) -> tuple[torch.Tensor, list, list[str], list]:
    """Every photo of the folder's IN-9 class folders that has boxes (up to `per_class` a class, a seeded draw), at
    SIDE x SIDE (uint8 (N, 3, SIDE, SIDE)), its boxes scaled with it ((k, 4) inclusive pixels), its class, and its
    file."""
    import cv2

    table = _read_boxes(boxes_of(photos), Path(photos).resolve())
    images, boxes, labels, files = [], [], [], []
    for label, folders in sorted(photo_classes(photos).items()):
        found = sorted(f for folder in folders for f in layout.scan(folder).images if f.resolve() in table)
        if per_class is not None and len(found) > per_class:
            found = sorted(random.Random(f"{seed}/{label}").sample(found, per_class))
        for path in found:
            rgb = read_image(path)
            h, w = rgb.shape[:2]
            scale = np.array([SIDE / w, SIDE / h, SIDE / w, SIDE / h])
            images.append(cv2.resize(rgb, (SIDE, SIDE), interpolation=cv2.INTER_AREA))
            boxes.append(np.clip(np.floor(np.asarray(table[path.resolve()]) * scale), 0, SIDE - 1))
            labels.append(CLASS_FOLDERS[label])
            files.append(str(path))
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(), boxes, labels, files


def _maps_at(trunk, images: torch.Tensor, side: int, rps: RPS | None) -> np.ndarray:
    """RPS maps (w* given) or CAAM maps (None) of the images run at `side`, brought back to SIDE."""
    import torch.nn.functional as F

    x = _resized(images, side)
    maps = torch.cat([activation_maps(trunk, x[k:k + 32], rps) for k in range(0, len(x), 32)])
    if side != SIDE:
        maps = F.interpolate(maps[:, None].float(), size=(SIDE, SIDE), mode="bilinear", align_corners=False)[:, 0]
    return maps.numpy()


def _hits(maps: np.ndarray, boxes: list, threshold: float) -> np.ndarray:
    """(N, 3): whether each image has an estimated box of IoU >= 30, 50, 70% with one of its boxes at `threshold`."""
    best = best_ious(maps, boxes, [threshold])[:, 0]
    return np.stack([best >= d / 100 for d in IOU_THRESHOLDS], axis=1)


def _box_scores(hits: np.ndarray, seed: int, resamples: int = 1000) -> dict:
    """MaxBoxAccV2 (the mean of BoxAcc at IoU 30, 50, 70) and BoxAcc at IoU 50 (%), each with a 95% bootstrap
    interval over the images."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(hits), (resamples, len(hits)))
    v2, at50 = hits.mean(axis=1), hits[:, 1].astype(float)
    interval = lambda values: [float(x) for x in 100 * np.percentile(values[picks].mean(axis=1), [2.5, 97.5])]  # noqa
    return {"maxboxaccv2": 100 * float(v2.mean()), "maxboxaccv2_ci95": interval(v2),
            "iou50": 100 * float(at50.mean()), "iou50_ci95": interval(at50)}


def rps_benchmark(photos: Path, profile: str | None = None, seed: int = 0, progress: bool = True) -> dict:
    """RPS on the RPS paper's own ImageNet benchmark: the photos with official boxes split by class, a seeded third
    held out to choose the trunk (each installed EfficientNet-Lite), the input side (`BENCHMARK_SIDES`) and every
    map's threshold (the published protocol), the rest scored: MaxBoxAccV2 and BoxAcc at IoU 50 with intervals, of
    RPS (w* estimated on the held-out photos, no label) beside CAAM (the same trunk's channel sum), a centred
    Gaussian map and the whole-image box. Never tuned on what is reported."""
    p = get_profile(profile)
    config = {"photos": str(Path(photos).resolve()), "photos_identity": photos_identity(Path(photos)),
              "boxes": fingerprint(boxes_of(photos)), "per_class": p.rps_benchmark_per_class, "seed": seed,
              "trunks": [m for m in MODELS if m in installed_packaged()], "sides": list(BENCHMARK_SIDES),
              "held_out": BENCHMARK_HELD_OUT}

    def compute(cfg: dict) -> dict:
        images, boxes, labels, files = _benchmark_photos(Path(photos), cfg["per_class"], seed)
        held = []
        for name in sorted(set(labels)):  # a seeded third of each class, at least one photo
            mine = [k for k, c in enumerate(labels) if c == name]
            random.Random(f"{seed}/held/{name}").shuffle(mine)
            held += mine[:max(1, round(len(mine) * cfg["held_out"]))]
        held = sorted(held)
        test = [k for k in range(len(labels)) if k not in set(held)]
        pick = lambda items, keep: [items[k] for k in keep]  # noqa: E731
        candidates, trunks = [], {}
        for name in cfg["trunks"]:
            trunks[name] = registry.load(name, offline=True).trunk()
            for side in cfg["sides"]:
                rps = estimate(trunks[name], _resized(images[held], side), progress=False)
                maps = _maps_at(trunks[name], images[held], side, rps)
                threshold = best_threshold(maps, pick(boxes, held))
                score = box_metrics(maps, pick(boxes, held), threshold=threshold)["maxboxaccv2"]
                candidates.append({"trunk": name, "side": side, "maxboxaccv2": score, "threshold": threshold,
                                   "w": rps})
        best = max(candidates, key=lambda c: c["maxboxaccv2"])
        trunk, side = trunks[best["trunk"]], best["side"]
        caam_held = _maps_at(trunk, images[held], side, None)
        h, w = SIDE, SIDE
        yy, xx = np.mgrid[0:h, 0:w]
        gaussian = np.exp(-0.5 * (((yy - (h - 1) / 2) / (h / 4)) ** 2 + ((xx - (w - 1) / 2) / (w / 4)) ** 2))
        thresholds = {"RPS": best["threshold"], "CAAM (channel sum)": best_threshold(caam_held, pick(boxes, held)),
                      "chance: centre Gaussian map": best_threshold(np.repeat(gaussian[None], len(held), 0),
                                                                    pick(boxes, held))}
        test_maps = {"RPS": _maps_at(trunk, images[test], side, best["w"]),
                     "CAAM (channel sum)": _maps_at(trunk, images[test], side, None),
                     "chance: centre Gaussian map": np.repeat(gaussian[None], len(test), 0)}
        rows = {name: {**_box_scores(_hits(maps, pick(boxes, test), thresholds[name]), seed),
                       "threshold": thresholds[name]} for name, maps in test_maps.items()}
        whole = whole_image_ious(pick(boxes, test), SIDE, SIDE)
        rows["chance: whole-image box"] = {**_box_scores(np.stack([whole >= d / 100 for d in IOU_THRESHOLDS], 1),
                                                         seed), "threshold": None}
        return {"rows": rows, "n_held_out": len(held), "n_test": len(test), "n_boxes": sum(len(b) for b in boxes),
                "candidates": [{k: v for k, v in c.items() if k != "w"} for c in candidates],
                "chosen": {"trunk": best["trunk"], "side": side}}

    return cached("real_rps_benchmark", config, compute).metrics


def _resized(images: torch.Tensor, side: int) -> torch.Tensor:
    """uint8 images brought to side x side (bilinear), or as they are at SIDE."""
    import torch.nn.functional as F

    if side == SIDE:
        return images
    return F.interpolate(images.float(), size=(side, side), mode="bilinear", align_corners=False).round().clamp(
        0, 255).byte()


def benchmark_table(bench: dict) -> pd.DataFrame:
    """RPS and its baselines on the held-out protocol's test photos: MaxBoxAccV2 and BoxAcc at IoU 50 (%) with 95%
    bootstrap intervals over the photos, and the map threshold chosen on the held-out photos."""
    return pd.DataFrame({name: {"MaxBoxAccV2": _pct(r["maxboxaccv2"] / 100, [x / 100 for x in r["maxboxaccv2_ci95"]]),
                                "BoxAcc at IoU 50": _pct(r["iou50"] / 100, [x / 100 for x in r["iou50_ci95"]]),
                                "threshold (held out)": "-" if r["threshold"] is None else f"{r['threshold']:.3f}"}
                         for name, r in bench["rows"].items()}).T


def candidates_table(bench: dict) -> pd.DataFrame:
    """The trunks and input sides tried on the held-out photos, with their MaxBoxAccV2 there (%)."""
    return pd.DataFrame([{"trunk": PACKAGED[c["trunk"]].published.display, "input side (px)": c["side"],
                          "MaxBoxAccV2 on the held-out photos": round(c["maxboxaccv2"], 1)}
                         for c in bench["candidates"]]).set_index(["trunk", "input side (px)"])


# ------------------------------------------------------------------------------------------------- verdicts
def model_verdicts(model: RealModel, record: Record, challenge: dict | None, chance: float) -> list[v.Verdict]:
    """Claims 2, 3 (where its challenge is given) and 5 for one model on one route's variants, by their
    `verdicts.CLAIMS` criteria with intervals over photos; first the check that the backgrounds do not show the
    objects (Only-BG-T at most the paper's highest for ImageNet models), inconclusive otherwise. The model's name
    opens each reason."""
    e = record.metrics["evaluation"]
    acc = [100 * e["accuracy"][ORIGINAL]]
    gap = v.Estimate(100 * e["bg_gap"], 100 * e["bg_gap_ci95"][0], 100 * e["bg_gap_ci95"][1],
                     f"{e['n'][ORIGINAL]} photos, bootstrap")
    judged = [v.claim_2(gap, acc, chance, paper="6 to 14 (ImageNet-pretrained models)")]
    if challenge is not None:
        judged.append(v.claim_3(challenge_estimate(challenge), acc, chance, paper="22.3 (ImageNet ResNet-50)",
                                upper_bound=challenge["upper_bound"]))
    judged.append(v.claim_5(v.proportion(*needs_background(record)), acc, chance))
    low, high = e["ci95"][ONLY_BG_T]
    leak = v.backgrounds_show_objects(v.Estimate(100 * e["accuracy"][ONLY_BG_T], 100 * low, 100 * high,
                                                 f"{e['n'][ONLY_BG_T]} photos, bootstrap"))
    if leak:  # the variants cannot test a claim about backgrounds (`verdicts` module docstring)
        judged = [replace(j, verdict=v.INCONCLUSIVE, reason=leak, power=leak) for j in judged]
    return [replace(j, reason=f"{model.display}: {j.reason}") for j in judged]


def ladder_table(records: dict[RealModel, Record]) -> pd.DataFrame:
    """The models' accuracies (%) on the variants of Fig. 8 and their published ImageNet top-1, one row a model."""
    return accuracy_numbers(records)[["ImageNet top-1", ORIGINAL, ONLY_BG_T, MIXED_SAME, MIXED_RAND]]


def verdicts(photos: PhotoSet, records: dict[RealModel, Record], results: dict, rps: PhotoSet | None = None,
             truth: Path | None = None, bench: dict | None = None) -> list[v.Verdict]:
    """Every claim that applies to ImageNet-pretrained models, judged on one route's variants (the models' records
    and challenges) by its `verdicts.CLAIMS` criterion: claims 2, 3 and 5 one model at a time with intervals over
    photos, claim 6 across the ladder of models against their published ImageNet top-1 with intervals over models,
    RPS on its box benchmark (`rps_benchmark`) where the photos have boxes, else on the true-mask photos."""
    chance = 100 / len(layout.class_folders(photos.data))
    out = [j for m, record in records.items() for j in model_verdicts(m, record, results.get(m), chance)]
    out.sort(key=lambda j: JUDGED.index(j.claim))  # claim by claim, the models in order within each
    table = ladder_table(records)
    if len(table) > 1:
        out.append(progress_verdict(table, "ImageNet top-1", chance)[1])
    else:
        out.append(v.claim_6({}, {}, dict(zip(table.index, table[ORIGINAL])), chance, against="ImageNet top-1"))
    if bench is not None:
        rows = bench["rows"]
        chance_box = max(r["maxboxaccv2"] for name, r in rows.items() if name.startswith("chance"))
        out.append(v.claim_rps({"maxboxaccv2": rows["RPS"]["maxboxaccv2"]},
                               {"maxboxaccv2": rows["CAAM (channel sum)"]["maxboxaccv2"]}, {"maxboxaccv2": chance_box},
                               self_supervised=False, backbone=f"{PACKAGED[bench['chosen']['trunk']].published.display}"
                               "'s ImageNet-supervised trunk"))
    elif truth is not None and rps is not None:
        q = mask_quality(rps, truth)
        chance_rows_ = q[q.index.str.startswith("chance")]
        pick = lambda row: {"maxboxaccv2": float(row["MaxBoxAccV2"]), "pxap": float(row["PxAP"])}  # noqa: E731
        out.append(v.claim_rps(pick(q.loc["RPS"]), pick(q.loc["CAAM (channel sum)"]),
                               {"maxboxaccv2": float(chance_rows_["MaxBoxAccV2"].max()),
                                "pxap": float(chance_rows_["PxAP"].max())}, self_supervised=False,
                               backbone=f"{PACKAGED[MASK_BACKBONE].published.display}'s ImageNet-supervised trunk"))
    return out


def route_table(sets: dict[str, PhotoSet], records: dict[str, dict[RealModel, Record]]) -> pd.DataFrame:
    """How far the mask source moves the numbers, on the same photos: per model and route, Only-BG-T and the BG-Gap
    with their intervals, and the verdicts of claims 2 and 5 (claim 3 is searched on the main route alone)."""
    rows = {}
    for route, by_model in records.items():
        chance = 100 / len(layout.class_folders(sets[route].data))
        for model, record in by_model.items():
            e = record.metrics["evaluation"]
            judged = {j.claim: j.verdict for j in model_verdicts(model, record, None, chance)}
            rows[(model.display, SHORT_ROUTES[route])] = {
                "photos": e["n"][ORIGINAL], "Only-BG-T %": _pct(e["accuracy"][ONLY_BG_T], e["ci95"][ONLY_BG_T]),
                "BG-Gap (points)": _pct(e["bg_gap"], e["bg_gap_ci95"]), "claim 2": judged["2"],
                "claim 5": judged["5"]}
    table = pd.DataFrame(rows).T
    table.index.names = ["model", "masks"]
    return table


def column(judged: list[v.Verdict] | None) -> dict[str, str]:
    """The claims page's "real photos" column: per claim the verdicts of the models in a few words."""
    out = {c: "does not apply: it needs models trained on the variants" for c in TRAINED_ONLY}
    if judged is None:
        return {**out, **{c: "no photos were given" for c in JUDGED}}
    for claim in JUDGED:
        mine = [j for j in judged if j.claim == claim]
        kinds = list(dict.fromkeys(j.verdict for j in mine))
        if not mine:
            out[claim] = "not measured"
        elif len(kinds) == 1:
            out[claim] = kinds[0] + (f" ({len(mine)} models)" if len(mine) > 1 else "")
        else:  # the models that share a verdict together, in the ladder's order
            out[claim] = "; ".join(f"{', '.join(j.reason.split(':')[0] for j in mine if j.verdict == k)}: {k}"
                                   for k in kinds)
    return out


def routes_for(photos: Path) -> tuple[str, ...]:
    """The routes a photo folder can take, the main one first: the paper's boxes where the folder has them, and RPS
    where `MASK_BACKBONE` is installed."""
    return tuple(r for r in ROUTES if (r != "boxes" or boxes_of(photos)) and
                 (r != "rps" or MASK_BACKBONE in installed_packaged()))


def study(photos_path: Path | None, profile: str | None = None, seed: int = 0, progress: bool = True) -> Study:
    """The chapter in one object: the photos' counts (table), the variants of each route (the main one, boxes where
    the folder has them, judged), the accuracy, route, challenge, fine-grained, saliency and mask-quality tables,
    the verdicts, and the numbers the text quotes; None-valued where no photos or models are given."""
    models = ladder(profile)
    routes = routes_for(Path(photos_path)) if photos_path is not None and Path(photos_path).is_dir() else ()
    if not routes or not models:
        return Study(pd.DataFrame(), {"ran": False, "models": len(models)})
    sets = {r: photo_variants(Path(photos_path), profile, seed, progress, r) for r in routes}
    main = sets[routes[0]]
    truth = SHARED / "masked-pets-birds"
    truth = truth if truth.is_dir() else None
    records = {r: model_records(sets[r].data, models) for r in routes}
    results = challenges(main.data, models, profile, progress)
    bench = rps_benchmark(Path(photos_path), profile, seed, progress) if "boxes" in sets and "rps" in sets else None
    judged = verdicts(main, records[routes[0]], results, sets.get("rps"), truth, bench)
    tables = {"accuracy": accuracy_table(records[routes[0]]), "accuracy numbers": accuracy_numbers(records[routes[0]]),
              "sources": sources_table(models), "challenge": challenge_table(results),
              "fine-grained": finegrained_table(records[routes[0]]),
              "saliency": saliency_table(main.data, models, progress)}
    if len(routes) > 1:
        tables["routes"] = route_table(sets, records)
    if truth is not None and "rps" in sets:
        tables["mask quality"] = mask_quality(sets["rps"], truth)
    if bench is not None:
        tables["rps benchmark"] = benchmark_table(bench)
        tables["rps candidates"] = candidates_table(bench)
    m = main.metrics
    numbers = {"ran": True, "route": routes[0], "n_photos": m["n_photos"], "n_kept": m["n_kept"],
               "n_unreadable": len(m["selection"]["rejected"]), "no_box": m.get("no_box", 0),
               "not_one_box": m["build_rejections"].get("not_one_box", 0), "models": len(models),
               "w_estimated_on": sets["rps"].metrics["w_estimated_on"] if "rps" in sets else None,
               "bench_test": bench["n_test"] if bench else None,
               "bench_held_out": bench["n_held_out"] if bench else None}
    return Study(photo_counts(sets), numbers, tables, records={"photos": main, "sets": sets,
                                                              "records": records[routes[0]], "models": models},
                 verdicts=judged)


def gap_words(ran: Study) -> str:
    """Where the models' BG-Gaps lie against the paper's ImageNet range (Table 2), in one sentence."""
    imagenet = paper.TABLE2_IMAGENET
    low, high = (float(f(imagenet.loc["bg_gap"])) for f in (np.min, np.max))
    gaps = [100 * r.metrics["evaluation"]["bg_gap"] for r in ran.records["records"].values()]
    where = ("above" if min(gaps) > high else "below" if max(gaps) < low else
             "within" if low <= min(gaps) and max(gaps) <= high else "partly within")
    return (f"On the variants built with masks from {ROUTES[ran.numbers['route']]}, the models' BG-Gaps, "
            f"{min(gaps):.1f} to {max(gaps):.1f} points, lie {where} the range of the paper's ImageNet models "
            f"({low:.1f} to {high:.1f}).")


def photos_of(parameter: str | Path | None) -> Path | None:
    """The chapter's `realphotos` parameter as a folder: a path given, else the photos beside the checkout."""
    return Path(parameter) if parameter else default_photos()


def claims_column(parameter: str | Path | None, profile: str | None = None, seed: int = 0) -> dict[str, str]:
    """The claims page's "real photos" column from the chapter's records (`column`)."""
    ran = study(photos_of(parameter), profile, seed, progress=False)
    return column(ran.verdicts if ran.numbers["ran"] else None)


def scale_words(ran: Study, profile: str | None, parameter: str | Path | None) -> str:
    """What produced the chapter's numbers, in one paragraph."""
    p, n = get_profile(profile), ran.numbers
    share = f"up to {p.real_per_class} per class" if p.real_per_class else "every photo"
    where = Path(photos_of(parameter)).name
    return (f"Scale of these numbers: {n['n_kept']} real photographs kept of {n['n_photos']} chosen ({share}, "
            f"profile {p.name}) from the folder {where}, at {SIDE} px; masks from {ROUTES[n['route']]}; "
            f"{n['models']} ImageNet models ({', '.join(m.display for m in ran.records['models'])}) with their "
            "published weights, in fp32. The paper: IN-9's 4,050 test photos with GrabCut masks from ImageNet's "
            "boxes; `make reproduce REALPHOTOS=PATH` takes any ImageNet-style folder (every photo of it with "
            "PROFILE=full).")


def missing_words(parameter: str | Path | None, profile: str | None = None) -> str:
    """What the chapter needs when it has no photos or no models, in one paragraph."""
    if not ladder(profile):
        return ("No ImageNet model is installed: `make setup` installs EfficientNet-Lite0/1/2 (the packages "
                f"{', '.join(e.package for e in PACKAGED.values())}, Apache-2.0) and LiteRT for the TFLite files.")
    where = f"{parameter} is not a folder" if parameter else "no photos were given and none are beside the checkout"
    return (f"No real photos: {where}. Give an ImageNet-style folder, IN-9's class folders (00_dog ... 08_fish) or "
            "ImageNet's synset folders (n01440764 ...), with `make reproduce REALPHOTOS=PATH` (or the chapter's "
            "`realphotos` parameter); with a box CSV beside it (FOLDER-boxes.csv) its variants are built the paper's "
            "way; the ImageNet validation set in synset folders runs on its 18,500 photos of the nine classes.")


def mask_examples(ran: Study, count: int = 6):
    """The first photo of each of the first `count` classes with each route's mask (and, for RPS, the map it was cut
    from): the same photos where both routes kept them."""
    from ..plots import map_grid

    sets = ran.records["sets"]
    main = sets[ran.numbers["route"]]
    test = first_photos(main.data, 1)
    pick = list(range(min(count, len(test))))
    names = [layout.short_name(test.classes[int(c)]) for c in test.labels[pick]]
    maps, captions = {}, {}
    if "rps" in sets:
        trunk = registry.load(MASK_BACKBONE, offline=True).trunk()
        maps["RPS map"] = activation_maps(trunk, test.images[pick], RPS.load(sets["rps"].folder / "rps.pt"))
        captions["RPS map"] = names
        if main.route != "rps":
            other = _masks_of(sets["rps"].data, [test.ids[i] for i in pick], test.images.shape[-2:])
            maps["RPS mask"] = other
            captions["RPS mask"] = ["(none: RPS found no object)" if not m.any() else "" for m in other]
    title_ = f"mask ({'box + GrabCut' if main.route == 'boxes' else 'RPS + GrabCut'})"
    return map_grid(test.images[pick], test.masks[pick], maps, captions=captions, mask_title=title_)


def _masks_of(data: Path, ids: list[str], shape) -> torch.Tensor:
    """The foreground masks of these images (`<class>/<stem>` ids) in a built dataset, empty where it has none."""
    out = torch.zeros((len(ids), *shape), dtype=torch.bool)
    for k, image_id in enumerate(ids):
        folder, stem = image_id.split("/")
        path = layout.mask_path(data, "val", folder, stem)
        if path.exists():
            out[k] = torch.from_numpy(read_mask(path, tuple(shape)))
    return out


def accuracy_figure(ran: Study):
    """Each model's accuracy on every variant with its 95% bootstrap interval, beside Table 2's ImageNet range."""
    import matplotlib.pyplot as plt

    imagenet = paper.TABLE2_IMAGENET
    fig, ax = plt.subplots(figsize=(9, 3.6))
    records = ran.records["records"]
    width = 0.8 / max(len(records), 1)
    for k, (model, record) in enumerate(records.items()):
        e = record.metrics["evaluation"]
        acc = np.array([100 * e["accuracy"][r] for r in ROWS])
        ci = np.array([[100 * x for x in e["ci95"][r]] for r in ROWS])
        xs = np.arange(len(ROWS)) + (k - (len(records) - 1) / 2) * width
        ax.bar(xs, acc, width, label=model.display, yerr=[acc - ci[:, 0], ci[:, 1] - acc], capsize=2)
    for i, r in enumerate(ROWS):
        if r in imagenet.index:
            lo, hi = imagenet.loc[r].min(), imagenet.loc[r].max()
            ax.plot([i - 0.45, i + 0.45], [lo, lo], color="k", lw=1)
            ax.plot([i - 0.45, i + 0.45], [hi, hi], color="k", lw=1, label="paper's range" if i == 0 else None)
    ax.set_xticks(range(len(ROWS)), [title(r) for r in ROWS])
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.tight_layout()
    return fig


def progress_figure(ran: Study):
    """Accuracy on each variant against the models' published ImageNet top-1 (the paper's Fig. 8), each point with its
    95% interval over photos and each line with its slope's interval over models."""
    from ..analyses.progress import progress_figure as figure

    table = ladder_table(ran.records["records"])
    errors = {}
    for model, record in ran.records["records"].items():
        e = record.metrics["evaluation"]
        errors[model.display] = {r: [100 * (e["accuracy"][r] - e["ci95"][r][0]), 100 * (e["ci95"][r][1] -
                                                                                      e["accuracy"][r])]
                                 for r in table.columns if r in e["ci95"]}
    fits = progress_verdict(table, "ImageNet top-1", 0.0)[0]
    return figure(table, fits, x="ImageNet top-1", errors=errors)


__all__ = ["MODELS", "MASK_BACKBONE", "ROUTES", "TRUE_MASKS", "RealModel", "PhotoSet", "ladder", "default_photos",
           "boxes_of", "photo_variants", "photo_counts", "model_records", "accuracy_table", "accuracy_numbers",
           "sources_table", "challenges", "challenge_estimate", "challenge_table", "needs_background",
           "finegrained_table", "saliency_table", "mask_quality", "model_verdicts", "verdicts", "route_table",
           "column", "routes_for", "study", "photos_of", "claims_column", "scale_words", "missing_words", "gap_words",
           "mask_examples", "accuracy_figure", "progress_figure"]
