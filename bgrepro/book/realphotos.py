"""The real-photo chapter's study: the paper's claims about ImageNet-pretrained models, tested on real photographs of
IN-9's classes with a ladder of real ImageNet classifiers (the packaged EfficientNet-Lite0/1/2 and the TFLite MobileNets
of `../shared/realmodels`).

A folder of photos (`PhotoFolder`, looked at once) is turned into the eight variants by one of two routes: where it
comes with boxes (`FOLDER-boxes.csv`), the paper's recipe (the photos with exactly one box, GrabCut inside it, the
paper's filters); else, or beside it for comparison, RPS on `MASK_BACKBONE`'s trunk and GrabCut, with no annotation.
Each model is scored on every variant, searched by the backgrounds challenge and split by the fine-grained
categories; RPS is scored on its own box benchmark; every number carries its interval, and every claim that applies
to pretrained models is judged by its `verdicts.CLAIMS` criterion. The page's sentences and figures are in
`realphotos_view`.
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
    CAM_THRESHOLDS,
    IOU_THRESHOLDS,
    best_ious,
    centre_gaussian,
    chance_rows,
    localization_metrics,
    mask_iou,
    masks_from_maps,
    threshold_of,
    whole_image_ious,
)
from ..data import composite
from ..data.build import build, read_manifest
from ..data.datasets import ImageListing, ImageSet
from ..data.photos import photo_classes, photos_identity, select_photos
from ..data.sources import FolderSource, read_box_csv
from ..in9 import CLASS_FOLDERS
from ..io import atomic_write_text, mask_box, read_image
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


@dataclass(frozen=True)
class PhotoFolder:
    """A folder of real photos as the chapter reads it, looked at once: its real path, what it holds
    (`photos_identity`), and its box CSV (`boxes_of`) with that file's identity; every record of the chapter is
    keyed by these."""

    path: Path
    identity: str
    boxes: Path | None
    boxes_identity: str | None

    @classmethod
    def of(cls, photos: Path | PhotoFolder) -> PhotoFolder:
        if isinstance(photos, PhotoFolder):
            return photos
        boxes = boxes_of(photos)
        return cls(Path(photos).resolve(), photos_identity(Path(photos)), boxes,
                   fingerprint(boxes) if boxes else None)


def _read_boxes(csv_path: Path, root: Path) -> dict[Path, list[tuple[float, ...]]]:
    """A box CSV (`sources.read_box_csv`) as {photo's real path: its boxes}."""
    return {(root / rel).resolve(): boxes for rel, boxes in read_box_csv(csv_path).items()}


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


def photo_variants(photos: Path | PhotoFolder, profile: str | None = None, seed: int = 0, progress: bool = True,
                   route: str = "boxes") -> PhotoSet:
    """The eight variants of the profile's share of the photos (`real_per_class` per class, one seeded draw shared by
    both routes), built under results/realphotos/ with masks made by `route`: "boxes", the paper's recipe (the photos
    with exactly one box of `boxes_of`, GrabCut inside it, the paper's filters), or "rps" (RPS on `MASK_BACKBONE`'s
    trunk, its map's box handed to GrabCut). Resumable: the selection, w*, the masks and the build each pick up
    where they stopped."""
    p = get_profile(profile)
    if route not in ROUTES:
        raise ValueError(f"`route` must be one of {', '.join(ROUTES)}, got {route!r}")
    folder_ = PhotoFolder.of(photos)
    photos = folder_.path
    chosen = {"photos": str(photos), "photos_identity": folder_.identity, "per_class": p.real_per_class,
              "seed": seed}
    base = layout.results_dir() / "realphotos" / config_hash("real_selection", chosen)
    if route == "boxes":
        if folder_.boxes is None:
            raise ValueError(f"{photos}: no box CSV beside it ({photos.name}-boxes.csv); the rps route needs none")
        config = {**chosen, "route": route, "boxes": str(folder_.boxes.resolve()),
                  "boxes_identity": folder_.boxes_identity, "side": SIDE,
                  "mask": "grabcut in the one box, the paper's filters"}
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
            extra["no_box"] = _box_folder(base / "photos", Path(cfg["boxes"]), photos, folder)
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
        rps = estimate(trunk, images_at(files, SIDE, progress), batch_size=experiments.photo_batch(), progress=progress)
        rps.save(saved)
        (folder / "rps-photos.txt").write_text(f"{len(files)}\n")
    write_masks(trunk, rps, photos, folder / "masks", SIDE, refine="grabcut", batch_size=experiments.photo_batch(),
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
    """The fine-grained categories (% of photos, `analyses.finegrained`), one row a model (as the page's other
    per-model tables: seven models as columns were wider than the page at 1280 px)."""
    from ..analyses import finegrained

    rows = {}
    for model, record in records.items():
        t = record.metrics["finegrained"]
        frame = pd.DataFrame({c: t[c] for c in ("label", *finegrained.VARIANTS_USED)}, index=t["ids"])
        rows[model.display] = finegrained.summary(frame)["share %"]
    table = pd.DataFrame(rows).T
    table.index.name = "model"
    return table


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
            share = foreground_share(gradcam(net, test.images, batch_size=experiments.GRADCAM_BATCH_CPU,
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
        rows["RPS + GrabCut (the RPS route's masks)"] = {
            "iou": [100 * float(mask_iou(c[None], o[None])[0]) if c is not None else 0.0 for c, o in zip(cut, objects)]}
        for name, metrics in chance_rows(objects).items():
            rows[f"chance: {name}"] = {**metrics, "iou": None}
        return {"rows": rows, "photos": [t.photo for t in TRUE_MASKS]}

    m = cached("real_mask_quality", {"truth": str(truth), "photos": photos.record.config, "rows": 2},
               compute).metrics
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


#: Photos decoded at once by the benchmark (its memory stays flat in the photos' number).
BENCHMARK_CHUNK = 64


@dataclass(frozen=True)
class BoxPhoto:
    """A photo of the box benchmark: its file, its class, and its boxes scaled to SIDE x SIDE ((k, 4) inclusive)."""

    path: Path
    label: str
    boxes: np.ndarray


def _benchmark_photos(photos: PhotoFolder, per_class: int | None, seed: int) -> list[BoxPhoto]:
    """Every photo of the folder's IN-9 class folders that has boxes (up to `per_class` a class, a seeded draw), with
    its boxes scaled as the photo is squashed to SIDE x SIDE (its size read from its header, nothing decoded)."""
    from PIL import Image

    table = _read_boxes(photos.boxes, photos.path)
    out = []
    for label, folders in sorted(photo_classes(photos.path).items()):
        found = sorted(f for folder in folders for f in layout.scan(folder).images if f.resolve() in table)
        if per_class is not None and len(found) > per_class:
            found = sorted(random.Random(f"{seed}/{label}").sample(found, per_class))
        for path in found:
            with Image.open(path) as im:
                w, h = im.size
            scale = np.array([SIDE / w, SIDE / h, SIDE / w, SIDE / h])
            boxes = np.clip(np.floor(np.asarray(table[path.resolve()]) * scale), 0, SIDE - 1)
            out.append(BoxPhoto(path, CLASS_FOLDERS[label], boxes))
    return out


def _decoded(items: list[BoxPhoto]) -> torch.Tensor:
    """The photos squashed to SIDE x SIDE, uint8 (N, 3, SIDE, SIDE)."""
    return images_at([i.path for i in items], SIDE)


def _resized(images: torch.Tensor, side: int) -> torch.Tensor:
    """uint8 images brought to side x side (bilinear), or as they are at SIDE."""
    import torch.nn.functional as F

    if side == SIDE:
        return images
    return F.interpolate(images.float(), size=(side, side), mode="bilinear", align_corners=False).round().clamp(
        0, 255).byte()


def _maps_at(trunk, images: torch.Tensor, side: int, rps: RPS | None) -> np.ndarray:
    """RPS maps (w* given) or CAAM maps (None) of the images run at `side`, brought back to SIDE."""
    import torch.nn.functional as F

    maps = activation_maps(trunk, _resized(images, side), rps, batch_size=experiments.photo_batch())
    if side != SIDE:
        maps = F.interpolate(maps[:, None].float(), size=(SIDE, SIDE), mode="bilinear", align_corners=False)[:, 0]
    return maps.numpy()


def _gaussian(n: int) -> np.ndarray:
    """n copies of a centred Gaussian map, what a map blind to the photo draws (`wsol.centre_gaussian`)."""
    return np.repeat(centre_gaussian(SIDE, SIDE)[None], n, axis=0)


def _ious(items: list[BoxPhoto], maps_of, thresholds) -> np.ndarray:
    """`best_ious` (N, T) of the maps `maps_of(images)` gives, the photos decoded chunk by chunk."""
    return np.concatenate([best_ious(maps_of(_decoded(chunk)), [i.boxes for i in chunk], thresholds)
                           for chunk in (items[k:k + BENCHMARK_CHUNK] for k in range(0, len(items), BENCHMARK_CHUNK))])


def _box_scores(ious: np.ndarray, seed: int, resamples: int = 1000) -> dict:
    """MaxBoxAccV2 (the mean of BoxAcc at IoU 30, 50, 70) and BoxAcc at IoU 50 (%) of each image's best IoU at one
    threshold ((N,)), each with a 95% bootstrap interval over the images."""
    hits = np.stack([ious >= d / 100 for d in IOU_THRESHOLDS], axis=1)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(hits), (resamples, len(hits)))
    v2, at50 = hits.mean(axis=1), hits[:, 1].astype(float)
    interval = lambda values: [float(x) for x in 100 * np.percentile(values[picks].mean(axis=1), [2.5, 97.5])]  # noqa
    return {"maxboxaccv2": 100 * float(v2.mean()), "maxboxaccv2_ci95": interval(v2),
            "iou50": 100 * float(at50.mean()), "iou50_ci95": interval(at50)}


def rps_benchmark(photos: Path | PhotoFolder, profile: str | None = None, seed: int = 0, progress: bool = True
                  ) -> dict:
    """RPS on the RPS paper's own ImageNet benchmark: the photos with official boxes split by class, a seeded third
    held out to choose the trunk (each EfficientNet-Lite among the profile's models), the input side
    (`BENCHMARK_SIDES`) and every map's threshold (the published protocol), the rest scored: MaxBoxAccV2 and BoxAcc
    at IoU 50 with intervals, of RPS (w* estimated on up to `ESTIMATE_PER_CLASS` held-out photos a class, no label)
    beside CAAM (the same trunk's channel sum), a centred Gaussian map and the whole-image box. Never tuned on what
    is reported; the photos are decoded chunk by chunk, so memory stays flat in their number."""
    p = get_profile(profile)
    photos = PhotoFolder.of(photos)
    config = {"photos": str(photos.path), "photos_identity": photos.identity,
              "boxes": photos.boxes_identity, "per_class": p.rps_benchmark_per_class, "seed": seed,
              "trunks": [m.key for m in ladder(profile) if m.key in PACKAGED], "sides": list(BENCHMARK_SIDES),
              "held_out": BENCHMARK_HELD_OUT, "estimate_per_class": ESTIMATE_PER_CLASS}

    def compute(cfg: dict) -> dict:
        items = _benchmark_photos(photos, cfg["per_class"], seed)
        held, estimate_on = [], []
        for name in sorted({i.label for i in items}):  # a seeded third of each class, at least one photo
            mine = [k for k, i in enumerate(items) if i.label == name]
            random.Random(f"{seed}/held/{name}").shuffle(mine)
            mine = mine[:max(1, round(len(mine) * cfg["held_out"]))]
            held += mine
            estimate_on += mine[:ESTIMATE_PER_CLASS]
        test = [items[k] for k in range(len(items)) if k not in set(held)]
        held, estimate_images = [items[k] for k in sorted(held)], _decoded([items[k] for k in sorted(estimate_on)])
        candidates = []
        for name in cfg["trunks"]:
            trunk = registry.load(name, offline=True).trunk()
            for side in cfg["sides"]:
                rps = estimate(trunk, _resized(estimate_images, side), batch_size=experiments.photo_batch())
                maps_of = lambda x, trunk=trunk, side=side, rps=rps: _maps_at(trunk, x, side, rps)  # noqa: E731
                threshold, score = threshold_of(_ious(held, maps_of, CAM_THRESHOLDS))
                candidates.append({"trunk": name, "side": side, "maxboxaccv2": score, "threshold": threshold,
                                   "w": rps})
        best = max(candidates, key=lambda c: c["maxboxaccv2"])
        trunk, side = registry.load(best["trunk"], offline=True).trunk(), best["side"]
        methods = {"RPS": lambda x: _maps_at(trunk, x, side, best["w"]),
                   "CAAM (channel sum)": lambda x: _maps_at(trunk, x, side, None),
                   "chance: centre Gaussian map": lambda x: _gaussian(len(x))}
        rows = {}
        for name, maps_of in methods.items():
            threshold = best["threshold"] if name == "RPS" else threshold_of(_ious(held, maps_of, CAM_THRESHOLDS))[0]
            rows[name] = {**_box_scores(_ious(test, maps_of, [threshold])[:, 0], seed), "threshold": threshold}
        rows["chance: whole-image box"] = {**_box_scores(whole_image_ious([i.boxes for i in test], SIDE, SIDE), seed),
                                           "threshold": None}
        return {"rows": rows, "n_held_out": len(held), "n_test": len(test),
                "n_estimated_on": len(estimate_images), "n_boxes": sum(len(i.boxes) for i in items),
                "candidates": [{k: v for k, v in c.items() if k != "w"} for c in candidates],
                "chosen": {"trunk": best["trunk"], "side": side}}

    return cached("real_rps_benchmark", config, compute).metrics


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
def mask_check(photos: PhotoSet, folder: PhotoFolder) -> dict:
    """One route's masks against truth, the official boxes of the photos that have them (`verdicts.masks_fit_boxes`):
    per built test photo with boxes, the share of the boxes' area (in the built crop) that the route takes out of
    Only-BG-T's background (the box of its mask on the RPS route; the official box itself on the boxes route, as the
    build does) and the share of its foreground mask inside the boxes; their medians, how many photos, and why the
    variants cannot test a claim about backgrounds (None when they pass)."""
    def compute(cfg: dict) -> dict:
        table = _read_boxes(Path(cfg["boxes"]), folder.path) if cfg["boxes"] else {}
        covered, inside = [], []
        for row in read_manifest(photos.data):
            boxes = table.get(Path(row["fg_source"]).resolve()) if row["variant"] == layout.MASKS else None
            if not boxes:
                continue
            mask = np.load(photos.data / row["path"])
            side = mask.shape[0]
            _, moved = composite.resize_center_crop(read_image(Path(row["fg_source"])), boxes,
                                                    round(side * 256 / 224), side)
            truth = _raster(moved, mask.shape)
            if not truth.any() or not mask.any():
                continue
            removed = truth if photos.route == "boxes" else _raster([mask_box(mask)], mask.shape, inclusive=True)
            covered.append(float((truth & removed).sum() / truth.sum()))
            inside.append(float((mask & truth).sum() / mask.sum()))
        return {"box_covered": float(np.median(covered)) if covered else 0.0,
                "mask_inside": float(np.median(inside)) if inside else 0.0, "photos": len(covered)}

    m = cached("real_mask_check", {"photos": photos.record.config, "boxes": str(folder.boxes or ""),
                                   "boxes_identity": folder.boxes_identity, "thresholds": [v.BOX_COVERED,
                                                                                           v.MASK_INSIDE]},
               compute).metrics
    route = {"boxes": "box-made", "rps": "RPS-made"}[photos.route]
    return {**m, "fails": v.masks_fit_boxes(m["box_covered"], m["mask_inside"], m["photos"], route)}


def _raster(boxes, shape: tuple[int, ...], inclusive: bool = False) -> np.ndarray:
    """The union of boxes as a boolean mask of `shape`: half-open float boxes (`resize_center_crop`'s), or inclusive
    integer ones (`mask_box`'s), clipped to the image."""
    out = np.zeros(shape[:2], dtype=bool)
    for x0, y0, x1, y1 in boxes:
        x1, y1 = (x1 + 1, y1 + 1) if inclusive else (x1, y1)
        c0, r0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
        c1, r1 = min(shape[1], int(np.ceil(x1))), min(shape[0], int(np.ceil(y1)))
        if c1 > c0 and r1 > r0:
            out[r0:r1, c0:c1] = True
    return out


def model_verdicts(model: RealModel, record: Record, challenge: dict | None, chance: float,
                   masks_fail: str | None = None) -> list[v.Verdict]:
    """Claims 2, 3 (where its challenge is given) and 5 for one model on one route's variants, by their
    `verdicts.CLAIMS` criteria with intervals over photos; claim 3 against the level independent errors at the
    model's own Mixed-Same accuracy would give (no ImageNet model trained on Mixed-Rand is at hand). Where the route's
    masks failed their check against the official boxes (`mask_check`'s `fails`), inconclusive. The model's name
    opens each reason."""
    e = record.metrics["evaluation"]
    acc = [100 * e["accuracy"][ORIGINAL]]
    gap = v.Estimate(100 * e["bg_gap"], 100 * e["bg_gap_ci95"][0], 100 * e["bg_gap_ci95"][1],
                     f"{e['n'][ORIGINAL]} photos, bootstrap")
    judged = [v.claim_2(gap, acc, chance, paper="6 to 14 (ImageNet-pretrained models)")]
    if challenge is not None:
        low, high = e["ci95"][MIXED_SAME]
        same = v.Estimate(100 * e["accuracy"][MIXED_SAME], 100 * low, 100 * high, "")
        judged.append(v.claim_3(challenge_estimate(challenge), acc, chance, paper="22.3 (ImageNet ResNet-50)",
                                upper_bound=challenge["upper_bound"],
                                independent=v.independent_level(same, challenge["n_backgrounds"])))
    judged.append(v.claim_5(v.proportion(*needs_background(record)), acc, chance))
    if masks_fail:  # the variants cannot test a claim about backgrounds (`verdicts` module docstring)
        judged = [replace(j, verdict=v.INCONCLUSIVE, reason=masks_fail, power=masks_fail) for j in judged]
    return [replace(j, reason=f"{model.display}: {j.reason}") for j in judged]


def ladder_table(records: dict[RealModel, Record]) -> pd.DataFrame:
    """The models' accuracies (%) on the variants of Fig. 8 and their published ImageNet top-1, one row a model."""
    return accuracy_numbers(records)[["ImageNet top-1", ORIGINAL, ONLY_BG_T, MIXED_SAME, MIXED_RAND]]


def verdicts(photos: PhotoSet, records: dict[RealModel, Record], results: dict, rps: PhotoSet | None = None,
             truth: Path | None = None, bench: dict | None = None, masks_fail: str | None = None) -> list[v.Verdict]:
    """Every claim that applies to ImageNet-pretrained models, judged on one route's variants (the models' records
    and challenges) by its `verdicts.CLAIMS` criterion: claims 2, 3 and 5 one model at a time with intervals over
    photos, claim 6 across the ladder of models against their published ImageNet top-1 with intervals over models,
    RPS on its box benchmark (`rps_benchmark`) where the photos have boxes, else on the true-mask photos."""
    chance = 100 / len(layout.class_folders(photos.data))
    out = [j for m, record in records.items() for j in model_verdicts(m, record, results.get(m), chance, masks_fail)]
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


def route_table(sets: dict[str, PhotoSet], records: dict[str, dict[RealModel, Record]], checks: dict[str, dict]
                ) -> pd.DataFrame:
    """How far the mask source moves the numbers, on the same photos: per model and route, Only-BG-T and the BG-Gap
    with their intervals, and the verdicts of claims 2 and 5 after the route's mask check (`checks`, `mask_check`'s)
    (claim 3 is searched on the main route alone)."""
    rows = {}
    for route, by_model in records.items():
        chance = 100 / len(layout.class_folders(sets[route].data))
        for model, record in by_model.items():
            e = record.metrics["evaluation"]
            judged = {j.claim: j.verdict for j in model_verdicts(model, record, None, chance, checks[route]["fails"])}
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


def routes_for(photos: Path | PhotoFolder) -> tuple[str, ...]:
    """The routes a photo folder can take, the main one first: the paper's boxes where the folder has them, and RPS
    where `MASK_BACKBONE` is installed."""
    boxes = photos.boxes if isinstance(photos, PhotoFolder) else boxes_of(photos)
    return tuple(r for r in ROUTES if (r != "boxes" or boxes) and
                 (r != "rps" or MASK_BACKBONE in installed_packaged()))


def study(photos_path: Path | None, profile: str | None = None, seed: int = 0, progress: bool = True) -> Study:
    """The chapter in one object: the photos' counts (table), the variants of each route (the main one, boxes where
    the folder has them, judged), the accuracy, route, challenge, fine-grained, saliency and mask-quality tables,
    the verdicts, and the numbers the text quotes; None-valued where no photos or models are given."""
    models = ladder(profile)
    if photos_path is None or not Path(photos_path).is_dir() or not models:
        return Study(pd.DataFrame(), {"ran": False, "models": len(models)})
    photos = PhotoFolder.of(Path(photos_path))  # the folder is looked at and hashed once for the whole chapter
    routes = routes_for(photos)
    if not routes:
        return Study(pd.DataFrame(), {"ran": False, "models": len(models)})
    sets = {r: photo_variants(photos, profile, seed, progress, r) for r in routes}
    main = sets[routes[0]]
    truth = SHARED / "masked-pets-birds"
    truth = truth if truth.is_dir() else None
    records = {r: model_records(sets[r].data, models) for r in routes}
    results = challenges(main.data, models, profile, progress)
    bench = rps_benchmark(photos, profile, seed, progress) if "boxes" in sets and "rps" in sets else None
    checks = {r: mask_check(sets[r], photos) for r in routes}
    judged = verdicts(main, records[routes[0]], results, sets.get("rps"), truth, bench, checks[routes[0]]["fails"])
    tables = {"accuracy": accuracy_table(records[routes[0]]), "accuracy numbers": accuracy_numbers(records[routes[0]]),
              "sources": sources_table(models), "challenge": challenge_table(results),
              "fine-grained": finegrained_table(records[routes[0]]),
              "saliency": saliency_table(main.data, models, progress)}
    if len(routes) > 1:
        tables["routes"] = route_table(sets, records, checks)
    tables["mask check"] = pd.DataFrame({SHORT_ROUTES[r]: {
        "photos with official boxes": c["photos"], "box taken out of the background, median (%)":
        100 * c["box_covered"], "mask inside the boxes, median (%)": 100 * c["mask_inside"],
        "passes": "yes" if not c["fails"] else "no"} for r, c in checks.items()}).T
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


def photos_of(parameter: str | Path | None) -> Path | None:
    """The chapter's `realphotos` parameter as a folder: a path given, else the photos beside the checkout."""
    return Path(parameter) if parameter else default_photos()


def data_folders(parameter: str | Path | None, profile: str | None = None, seed: int = 0) -> list[str]:
    """The folders the chapter's records are keyed by: the photo folder and each route's variants (none where the
    chapter did not run)."""
    ran = study(photos_of(parameter), profile, seed, progress=False)
    if not ran.numbers["ran"]:
        return []
    return [str(PhotoFolder.of(photos_of(parameter)).path),
            *[str(s.data) for s in ran.records["sets"].values()]]


def claims_column(parameter: str | Path | None, profile: str | None = None, seed: int = 0) -> dict[str, str]:
    """The claims page's "real photos" column from the chapter's records (`column`)."""
    ran = study(photos_of(parameter), profile, seed, progress=False)
    return column(ran.verdicts if ran.numbers["ran"] else None)


__all__ = ["MODELS", "MASK_BACKBONE", "ROUTES", "TRUE_MASKS", "RealModel", "PhotoFolder", "PhotoSet", "ladder",
           "default_photos", "boxes_of", "rps_benchmark", "benchmark_table", "candidates_table", "photo_variants",
           "photo_counts", "model_records", "accuracy_table", "accuracy_numbers", "sources_table", "challenges",
           "challenge_estimate", "challenge_table", "needs_background", "finegrained_table", "saliency_table",
           "mask_quality", "model_verdicts", "verdicts", "route_table", "column", "routes_for", "study", "photos_of",
           "claims_column"]
