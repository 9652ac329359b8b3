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
from ..analyses.wsol import chance_rows, localization_metrics, mask_iou, masks_from_maps
from ..data.build import build
from ..data.datasets import ImageListing, ImageSet
from ..data.photos import photos_identity, select_photos
from ..data.sources import FolderSource
from ..io import read_image
from ..profiles import get_profile
from ..registry import PACKAGED, installed_packaged
from ..variants import MIXED_RAND, MIXED_SAME, ONLY_BG_T, ONLY_FG, ORIGINAL, title
from . import experiments, paper
from . import verdicts as v
from .records import Record, cached, config_hash
from .studies import Study

#: The models, weakest to strongest by their ImageNet top-1 (75.1, 76.7, 77.6%).
MODELS = tuple(PACKAGED)
#: The backbone whose trunk makes the masks, and the side photos are built at (IN-9's 224 px).
MASK_BACKBONE, SIDE = MODELS[0], 224
#: w* is a mean: it is estimated on at most this many photos per class, so memory stays flat in the photos' number.
ESTIMATE_PER_CLASS = 120
#: Photos per class whose Grad-CAM share on the foreground is measured.
SALIENCY_PER_CLASS = 5
#: The variants of the accuracy table, in the paper's order.
ROWS = (ORIGINAL, ONLY_BG_T, MIXED_SAME, MIXED_RAND, ONLY_FG)
#: Where the photos shipped beside a checkout are (`../shared/realphotos`, read by path, never copied).
SHARED = Path(__file__).resolve().parents[3] / "shared" / "realphotos"
#: The claims the chapter judges, and those that need models trained on the variants (none of ours is).
JUDGED = ("2", "3", "5", "6", "RPS")
TRAINED_ONLY = ("1", "4a", "4b", "4c")


def default_photos() -> Path | None:
    """The ImageNet validation photos shipped beside a checkout (`SHARED/imagenet-val-227`), or None."""
    path = SHARED / "imagenet-val-227"
    return path if path.is_dir() else None


def short(model: str) -> str:
    """A model's name as the page writes it (EfficientNet-Lite0)."""
    return model.replace("efficientnet_lite", "EfficientNet-Lite")


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
    """The real photos' variants: where they were built and what went in (the record of `photo_variants`)."""

    record: Record

    @property
    def data(self) -> Path:
        return Path(self.record.metrics["data"])

    @property
    def folder(self) -> Path:
        return self.data.parent

    @property
    def metrics(self) -> dict:
        return self.record.metrics


def photo_variants(photos: Path, profile: str | None = None, seed: int = 0, progress: bool = True) -> PhotoSet:
    """The eight variants of the profile's share of the photos (`real_per_class` per class), with masks made by RPS
    on `MASK_BACKBONE`'s trunk and GrabCut, built under results/realphotos/ (resumable: the selection, w*, the masks
    and the build each pick up where they stopped)."""
    p = get_profile(profile)
    config = {"photos": str(Path(photos).resolve()), "photos_identity": photos_identity(Path(photos)),
              "per_class": p.real_per_class, "seed": seed, "backbone": MASK_BACKBONE, "side": SIDE,
              "mask": "rps-0.5-largest-component, grabcut", "estimate_per_class": ESTIMATE_PER_CLASS}
    folder = layout.results_dir() / "realphotos" / config_hash("real_photos", config)

    def compute(cfg: dict) -> dict:
        selection = select_photos(Path(photos), folder / "photos", cfg["per_class"], seed, progress)
        if selection.count == 0:
            raise ValueError(f"{photos}: no readable photo of IN-9's classes ({len(selection.rejected)} unreadable)")
        trunk = registry.load(MASK_BACKBONE, offline=True).trunk()
        saved = folder / "rps.pt"
        if saved.exists():
            rps = RPS.load(saved)
        else:
            files = [f for c in selection.chosen for f in _draw(layout.images_in(folder / "photos" / c),
                                                                 ESTIMATE_PER_CLASS, seed)]
            rps = estimate(trunk, images_at(files, SIDE, progress), progress=progress)
            rps.save(saved)
            (folder / "rps-photos.txt").write_text(f"{len(files)}\n")
        write_masks(trunk, rps, folder / "photos", folder / "masks", SIDE, refine="grabcut",
                    batch_size=experiments.PHOTO_BATCH_CPU, progress=progress)
        masked = {c: len(list((folder / "masks" / c).glob("*.npy"))) for c in selection.chosen}
        short_of = [c for c, n in masked.items() if n < 2]
        if short_of:  # Mixed-Same pairs two photos of a class, and IN-9's mapping needs all nine classes
            raise ValueError(f"{photos}: only {masked[short_of[0]]} photo(s) of {short_of[0]} got a mask (RPS found no "
                             "object, or GrabCut left no background, in the others); give more photos of it, or a "
                             "profile with more per class")
        source = FolderSource(folder / "photos", masks=folder / "masks", size=SIDE, missing_masks="reject")
        report = build(source, folder / "variants", seed=seed, progress=progress)
        kept = {c: len(layout.images_in(layout.split_dir(folder / "variants", ORIGINAL, "val") / c))
                for c in layout.class_folders(folder / "variants")}
        return {"data": str(folder / "variants"), "selection": selection.to_json(), "kept": kept,
                "build_rejections": dict(report.rejections), "n_photos": selection.count,
                "n_kept": sum(kept.values()),
                "w_estimated_on": int((folder / "rps-photos.txt").read_text().strip())}

    return PhotoSet(cached("real_photos", config, compute))


def _draw(files: list[Path], count: int, seed: int) -> list[Path]:
    """`count` of the files (all when fewer), a seeded draw, in name order."""
    return files if len(files) <= count else sorted(random.Random(seed).sample(files, count))


def photo_counts(photos: PhotoSet) -> pd.DataFrame:
    """Per class: the photos in the folder, those chosen, those kept with a mask (RPS found an object and GrabCut
    left a foreground and a background), and the unreadable ones."""
    m = photos.metrics
    rejected = pd.Series([r["class"] for r in m["selection"]["rejected"]], dtype=object).value_counts()
    rows = {layout.short_name(c): {"in the folder": m["selection"]["available"].get(c, 0),
                                   "chosen": m["selection"]["chosen"].get(c, 0), "kept (masked)": m["kept"].get(c, 0),
                                   "unreadable": int(rejected.get(c, 0))}
            for c in m["selection"]["available"]}
    table = pd.DataFrame(rows).T
    table.loc["all"] = table.sum()
    return table


# ------------------------------------------------------------------------------------------------ the models
def available_models(profile: str | None = None) -> tuple[str, ...]:
    """The profile's models (`real_models`; all three by default) that are installed here (all after `make
    setup`)."""
    wanted = get_profile(profile).real_models or MODELS
    return tuple(m for m in installed_packaged() if m in wanted)


def _weights(model: str) -> str:
    return f"package {PACKAGED[model].package}"


def model_records(data: Path, models: tuple[str, ...] = MODELS) -> dict[str, Record]:
    """Each model's evaluation record on the photos' variants (`experiments.pretrained_record`)."""
    return {m: experiments.pretrained_record(m, data, _weights(m)) for m in models}


def _pct(value: float, pair) -> str:
    return f"{100 * value:.1f} [{100 * pair[0]:.1f}, {100 * pair[1]:.1f}]" if pair else f"{100 * value:.1f}"


def accuracy_table(records: dict[str, Record]) -> pd.DataFrame:
    """Accuracy (%) of each model on each variant and its BG-Gap, each with its 95% bootstrap interval over the
    photos, beside Table 2's ImageNet-pretrained range."""
    imagenet = paper.TABLE2_IMAGENET
    columns = {}
    for model, record in records.items():
        e = record.metrics["evaluation"]
        cells = {title(r): _pct(e["accuracy"][r], e["ci95"].get(r)) for r in ROWS if r in e["accuracy"]}
        cells["BG-Gap (points)"] = _pct(e["bg_gap"], e["bg_gap_ci95"])
        columns[short(model)] = cells
    paper_range = {title(r): f"{imagenet.loc[r].min():.1f} to {imagenet.loc[r].max():.1f}"
                   for r in ROWS if r in imagenet.index}
    paper_range["BG-Gap (points)"] = (f"{imagenet.loc['bg_gap'].min():.1f} to "
                                      f"{imagenet.loc['bg_gap'].max():.1f}")
    columns["paper, ImageNet models (Table 2)"] = paper_range
    return pd.DataFrame(columns)


def accuracy_numbers(records: dict[str, Record]) -> pd.DataFrame:
    """The same accuracies as numbers (%), one row per model, with the ImageNet top-1 its authors report."""
    return pd.DataFrame({short(m): {"ImageNet top-1": PACKAGED[m].top1,
                                    **{r: 100 * r_["evaluation"]["accuracy"][r] for r in ROWS
                                       if r in r_["evaluation"]["accuracy"]}}
                         for m, r_ in ((m, rec.metrics) for m, rec in records.items())}).T


def challenges(data: Path, models: tuple[str, ...], profile: str | None = None, progress: bool = True) -> dict:
    """Each model's backgrounds challenge on the photos within the profile's budget (`real_challenge_budget`)."""
    budget = get_profile(profile).real_challenge_budget
    return {m: experiments.pretrained_challenge(m, data, _weights(m), progress, budget=budget) for m in models}


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
    return pd.DataFrame({short(m): {"challenge accuracy %": challenge_estimate(s).text(),
                                    "foregrounds fooled %": round(100 * s["fooled_fraction"], 1),
                                    "composites evaluated": s["composites"], "reading": s["reading"]}
                         for m, s in results.items()}).T


def needs_background(record: Record) -> tuple[int, int]:
    """(photos right on Original and wrong on Mixed-Rand, photos): claim 5's share."""
    table = record.metrics["finegrained"]
    hits = sum(o and not r for o, r in zip(table[ORIGINAL], table[MIXED_RAND]))
    return int(hits), len(table[ORIGINAL])


def finegrained_table(records: dict[str, Record]) -> pd.DataFrame:
    """The fine-grained categories (% of photos, `analyses.finegrained`) of each model."""
    from ..analyses import finegrained

    columns = {}
    for model, record in records.items():
        t = record.metrics["finegrained"]
        frame = pd.DataFrame({c: t[c] for c in ("label", *finegrained.VARIANTS_USED)}, index=t["ids"])
        columns[short(model)] = finegrained.summary(frame)["share %"]
    return pd.DataFrame(columns)


def first_photos(data: Path, per_class: int) -> ImageSet:
    """The first `per_class` test photos of each class with their masks, only they decoded (memory stays flat in the
    photos' number)."""
    listing = ImageListing.of(data, ORIGINAL, "val")
    keep = torch.cat([torch.nonzero(listing.labels == c).flatten()[:per_class] for c in range(len(listing.classes))])
    return listing.subset(keep.sort().values.tolist()).load(with_masks=True)


def saliency_table(data: Path, models: tuple[str, ...], progress: bool = True) -> pd.DataFrame:
    """Grad-CAM's share (%) of saliency on the foreground mask, per model, on `SALIENCY_PER_CLASS` photos per class,
    beside the masks' share of the image (what a map that ignores the object gets)."""
    columns = {}
    for model in models:
        def compute(cfg: dict, model=model) -> dict:
            test = first_photos(Path(cfg["data"]), cfg["per_class"])
            net = registry.load(model, offline=True).for_data(list(test.classes), SIDE).net
            share = foreground_share(gradcam(net, test.images, batch_size=experiments.PHOTO_BATCH_CPU,
                                             progress=progress), test.masks)
            return {"mean": float(np.nanmean(share)), "fg_fraction": float(test.masks.float().mean()),
                    "n": len(test)}

        m = cached("real_saliency", {"model": model, "data": str(data), "per_class": SALIENCY_PER_CLASS},
                   compute).metrics
        columns[short(model)] = {"saliency on the foreground %": 100 * m["mean"],
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


# ------------------------------------------------------------------------------------------------- verdicts
def verdicts(photos: PhotoSet, records: dict[str, Record], results: dict, truth: Path | None = None
             ) -> list[v.Verdict]:
    """Every claim that applies to ImageNet-pretrained models, judged on the photos (the models' records and
    challenges) by its `verdicts.CLAIMS` criterion, one model at a time (the model's name opens each reason):
    claims 2, 3 and 5 per model with intervals over photos, claim 6 across the models, RPS on the true-mask
    photos."""
    chance = 100 / len(layout.class_folders(photos.data))
    out = []
    for model, record in records.items():
        e = record.metrics["evaluation"]
        acc = [100 * e["accuracy"][ORIGINAL]]
        n = e["n"][ORIGINAL]
        gap = v.Estimate(100 * e["bg_gap"], 100 * e["bg_gap_ci95"][0], 100 * e["bg_gap_ci95"][1],
                         f"{n} photos, bootstrap")
        judged = [v.claim_2(gap, acc, chance, paper="6 to 14 (ImageNet-pretrained models)"),
                  v.claim_3(challenge_estimate(results[model]), acc, chance, paper="22.3 (ImageNet ResNet-50)",
                            upper_bound=results[model]["upper_bound"]),
                  v.claim_5(v.proportion(*needs_background(record)), acc, chance)]
        low, high = e["ci95"][ONLY_BG_T]
        leak = v.backgrounds_show_objects(v.Estimate(100 * e["accuracy"][ONLY_BG_T], 100 * low, 100 * high,
                                                     f"{e['n'][ONLY_BG_T]} photos, bootstrap"))
        if leak:  # the variants cannot test a claim about backgrounds (`verdicts` module docstring)
            judged = [replace(j, verdict=v.INCONCLUSIVE, reason=leak, power=leak) for j in judged]
        out += [replace(j, reason=f"{short(model)}: {j.reason}") for j in judged]
    out.sort(key=lambda j: JUDGED.index(j.claim))  # claim by claim, the models in order within each
    # the paper's Fig. 8 axis for ImageNet models, their ImageNet top-1 (their Original accuracy on a few hundred
    # photos barely moves); no interval: the criterion's four models are not there
    table = accuracy_numbers(records)
    slope = lambda r: float(np.polyfit(table["ImageNet top-1"], table[r], 1)[0])  # noqa: E731
    over = f"{len(table)} models, against ImageNet top-1"
    shown = {r: v.Estimate(slope(r), None, None, over) for r in (ONLY_BG_T, MIXED_SAME, MIXED_RAND)
             if len(table) > 1}
    faster = {f"{r} - {ONLY_BG_T}": v.Estimate(shown[r].value - shown[ONLY_BG_T].value, None, None, over)
              for r in (MIXED_SAME, MIXED_RAND) if r in shown}
    out.append(v.claim_6(shown, faster, dict(zip(table.index, table[ORIGINAL])), chance))
    if truth is not None:
        q = mask_quality(photos, truth)
        chance_rows_ = q[q.index.str.startswith("chance")]
        pick = lambda row: {"maxboxaccv2": float(row["MaxBoxAccV2"]), "pxap": float(row["PxAP"])}  # noqa: E731
        out.append(v.claim_rps(pick(q.loc["RPS"]), pick(q.loc["CAAM (channel sum)"]),
                               {"maxboxaccv2": float(chance_rows_["MaxBoxAccV2"].max()),
                                "pxap": float(chance_rows_["PxAP"].max())}, self_supervised=False,
                               backbone=f"{short(MASK_BACKBONE)}'s ImageNet-supervised trunk"))
    return out


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
        else:
            out[claim] = "; ".join(f"{j.reason.split(':')[0]}: {j.verdict}" for j in mine)
    return out


def study(photos_path: Path | None, profile: str | None = None, seed: int = 0, progress: bool = True) -> Study:
    """The chapter in one object: the photos' counts (table), the accuracy, challenge, fine-grained, saliency and
    mask-quality tables, the verdicts, and the numbers the text quotes; None-valued where no photos are given."""
    models = available_models(profile)
    if photos_path is None or not Path(photos_path).is_dir() or not models:
        return Study(pd.DataFrame(), {"ran": False, "models": len(models)})
    photos = photo_variants(Path(photos_path), profile, seed, progress)
    truth = SHARED / "masked-pets-birds"
    truth = truth if truth.is_dir() else None
    records = model_records(photos.data, models)
    results = challenges(photos.data, models, profile, progress)
    judged = verdicts(photos, records, results, truth)
    tables = {"accuracy": accuracy_table(records), "accuracy numbers": accuracy_numbers(records),
              "challenge": challenge_table(results),
              "fine-grained": finegrained_table(records), "saliency": saliency_table(photos.data, models, progress)}
    if truth is not None:
        tables["mask quality"] = mask_quality(photos, truth)
    m = photos.metrics
    numbers = {"ran": True, "n_photos": m["n_photos"], "n_kept": m["n_kept"], "n_unreadable":
               len(m["selection"]["rejected"]), "w_estimated_on": m["w_estimated_on"], "models": len(models)}
    return Study(photo_counts(photos), numbers, tables, records={"photos": photos, "records": records},
                 verdicts=judged)


def gap_words(ran: Study) -> str:
    """Where the models' BG-Gaps lie against the paper's ImageNet range (Table 2), in one sentence, with what a mask
    smaller than its object would do to them."""
    imagenet = paper.TABLE2_IMAGENET
    low, high = (float(f(imagenet.loc["bg_gap"])) for f in (np.min, np.max))
    gaps = [100 * r.metrics["evaluation"]["bg_gap"] for r in ran.records["records"].values()]
    where = ("above" if min(gaps) > high else "below" if max(gaps) < low else
             "within" if low <= min(gaps) and max(gaps) <= high else "partly within")
    text = (f"The models' BG-Gaps here, {min(gaps):.1f} to {max(gaps):.1f} points, lie {where} the range of the "
            f"paper's ImageNet models ({low:.1f} to {high:.1f}).")
    if where == "above":
        area = ran.tables["saliency"]["mask area (chance) %"].iloc[0]
        text += (f" The masks cover {area:.1f}% of a photo on average over the photos Grad-CAM looks at below; a mask "
                 "that misses part of its object leaves "
                 "that part out of Mixed-Rand and Mixed-Same and in the backgrounds, which would widen the gap, so "
                 "the size of this gap is partly the masks' (their quality against the truth is above).")
    return text


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
    return (f"Scale of these numbers: {n['n_kept']} real photographs kept of {n['n_photos']} chosen ({share}, "
            f"profile {p.name}) from {photos_of(parameter)}, at {SIDE} px; masks by RPS on {short(MASK_BACKBONE)}'s "
            f"trunk (w* from {n['w_estimated_on']} photos) and GrabCut, no annotation; the models "
            f"{', '.join(short(m) for m in available_models(profile))} with their ImageNet weights, in fp32. The "
            "paper: IN-9's 4,050 test photos with GrabCut masks from ImageNet's boxes; `make reproduce "
            "REALPHOTOS=PATH` takes any ImageNet-style folder (every photo of it with PROFILE=full).")


def missing_words(parameter: str | Path | None, profile: str | None = None) -> str:
    """What the chapter needs when it has no photos or no models, in one paragraph."""
    if not available_models(profile):
        return ("No EfficientNet-Lite weights are installed: `make setup` installs them (the packages "
                f"{', '.join(e.package for e in PACKAGED.values())}, Apache-2.0).")
    where = f"{parameter} is not a folder" if parameter else f"no photos were given and {SHARED} is not there"
    return (f"No real photos: {where}. Give an ImageNet-style folder, IN-9's class folders (00_dog ... 08_fish) or "
            "ImageNet's synset folders (n01440764 ...), with `make reproduce REALPHOTOS=PATH` (or the chapter's "
            "`realphotos` parameter); the ImageNet validation set in synset folders runs on its 18,500 photos of the "
            "nine classes.")


def mask_examples(ran: Study, count: int = 6):
    """The first photo of each of the first `count` classes with its mask and the RPS map it was cut from."""
    from ..plots import map_grid

    photos = ran.records["photos"]
    test = first_photos(photos.data, 1)
    pick = list(range(min(count, len(test))))
    trunk = registry.load(MASK_BACKBONE, offline=True).trunk()
    maps = activation_maps(trunk, test.images[pick], RPS.load(photos.folder / "rps.pt"))
    names = [layout.short_name(test.classes[int(c)]) for c in test.labels[pick]]
    return map_grid(test.images[pick], test.masks[pick], {"RPS map": maps}, captions={"RPS map": names},
                    mask_title="mask (RPS + GrabCut)")


def accuracy_figure(ran: Study):
    """Each model's accuracy on every variant with its 95% bootstrap interval, beside Table 2's ImageNet range."""
    import matplotlib.pyplot as plt

    imagenet = paper.TABLE2_IMAGENET
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    records = ran.records["records"]
    width = 0.8 / max(len(records), 1)
    for k, (model, record) in enumerate(records.items()):
        e = record.metrics["evaluation"]
        acc = np.array([100 * e["accuracy"][r] for r in ROWS])
        ci = np.array([[100 * x for x in e["ci95"][r]] for r in ROWS])
        xs = np.arange(len(ROWS)) + (k - (len(records) - 1) / 2) * width
        ax.bar(xs, acc, width, label=short(model), yerr=[acc - ci[:, 0], ci[:, 1] - acc], capsize=2)
    for i, r in enumerate(ROWS):
        if r in imagenet.index:
            lo, hi = imagenet.loc[r].min(), imagenet.loc[r].max()
            ax.plot([i - 0.45, i + 0.45], [lo, lo], color="k", lw=1)
            ax.plot([i - 0.45, i + 0.45], [hi, hi], color="k", lw=1, label="paper's range" if i == 0 else None)
    ax.set_xticks(range(len(ROWS)), [title(r) for r in ROWS])
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=8, ncol=4)
    fig.tight_layout()
    return fig


def progress_figure(ran: Study):
    """Accuracy on each variant against the models' ImageNet top-1 (the paper's Fig. 8, three models)."""
    from ..analyses.progress import progress_figure as figure

    table = ran.tables["accuracy numbers"].drop(columns=[ORIGINAL])
    return figure(table, x="ImageNet top-1")


__all__ = ["MODELS", "MASK_BACKBONE", "TRUE_MASKS", "PhotoSet", "default_photos", "photo_variants", "photo_counts",
           "available_models", "model_records", "accuracy_table", "accuracy_numbers", "challenges",
           "challenge_estimate", "challenge_table", "needs_background", "finegrained_table", "saliency_table",
           "mask_quality", "verdicts", "column", "study", "short", "photos_of", "claims_column", "scale_words",
           "missing_words", "gap_words", "mask_examples", "accuracy_figure", "progress_figure"]
