"""How much of claims 1, 2, 3 and 5 is the synthetic generator: each claim measured at several habitat strengths.

The synthetic IN-9 plants a class-habitat correlation R (`data.synth.DEFAULT_CORRELATION`, 0.8): a background hints
at its class as strongly as R makes it. Claims 1, 2, 3 and 5 are about how much models use backgrounds, so on
synthetic data their size follows R by construction, and a verdict at one R cannot tell a property of the models
from a property of the simulator. This study regenerates the synthetic IN-9 at each strength of the profile's
`sensitivity_strengths` (the default among them, and one well below it), builds its eight variants with the
generator's exact masks (so that only R changes), trains at each strength and seed of the profile's spread:

- a model on Only-BG-T (claim 1: a background-only model on Original),
- a model on Original (claim 2: its BG-Gap; claim 3: its challenge accuracy; claim 5: its share of test images
  right on Original and wrong on Mixed-Rand),
- a model on Mixed-Rand (claim 3's control: the challenge accuracy of a model that barely uses backgrounds),

and judges each claim at each strength with the same criteria as the chapters (`verdicts`), over the seeds. The
study runs at its own, smaller scale (`sensitivity_per_class`, `sensitivity_epochs`) so that it fits the smoke
book's budget; the default strength is measured at that scale too, so the strengths compare like with like.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from .. import layout
from ..data.build import build
from ..data.sources import open_source
from ..data.synth import DEFAULT_CORRELATION, SynthConfig, background_only_ceiling, generate
from ..profiles import get_profile
from ..training.classifier import TrainConfig
from ..variants import MIXED_RAND, MIXED_SAME, ONLY_BG_T, ORIGINAL
from . import experiments, paper
from . import verdicts as v
from .records import cached

#: The claims the study measures, and the number each is judged on (the column of `measures`).
CLAIMS = {"1": "Only-BG-T model on Original (%)", "2": "BG-Gap (points)", "3": "challenge accuracy (%)",
          "5": "need their background (%)"}


@dataclass(frozen=True)
class Plan:
    """The study's scale under a profile: the strengths, the images per class, the epochs and the seeds."""

    strengths: tuple[float, ...]
    train_per_class: int
    test_per_class: int
    epochs: int
    seeds: tuple[int, ...]
    size: int

    @classmethod
    def of(cls, profile: str | None = None, seed: int = 0) -> Plan:
        p = get_profile(profile)
        train, test = p.sensitivity_per_class
        return cls(tuple(p.sensitivity_strengths), train, test, p.sensitivity_epochs,
                   tuple(range(seed, seed + p.spread_seeds)), p.image_size)


#: Images below which a strength's data are made without a pool of workers.
SMALL_SET = 1000


def folders(strength: float, plan: Plan) -> tuple[Path, Path]:
    """Where the study keeps the synthetic IN-9 at `strength` and its variants (inside bgrepro's results folder,
    `layout.generated_data`)."""
    tag = f"R{strength:.2f}-{plan.size}px-{plan.train_per_class}+{plan.test_per_class}"
    return layout.generated_data("sensitivity", tag, "synth"), layout.generated_data("sensitivity", tag, "variants")


def data_folders(profile: str | None = None, seed: int = 0) -> list[str]:
    """Every folder the study makes under a profile, the synthetic sets and their variants (its records are keyed by
    them)."""
    plan = Plan.of(profile, seed)
    return [str(f) for r in plan.strengths for f in folders(r, plan)]


def dataset(strength: float, plan: Plan, progress: bool = True) -> Path:
    """The synthetic IN-9 at habitat strength `strength` and the plan's size, and its eight variants (exact masks),
    made once and reused (both resumable); returns the variants' folder."""
    config = SynthConfig(size=plan.size, train_per_class=plan.train_per_class, test_per_class=plan.test_per_class,
                         correlation=strength)
    synth, variants = folders(strength, plan)

    # a set of a few hundred images is made in this process: starting a pool of workers costs more than it saves
    workers = 1 if 9 * (plan.train_per_class + plan.test_per_class) < SMALL_SET else None

    def compute(cfg: dict) -> dict:  # a record once both are complete: later calls neither list nor resume them
        generate(synth, config, workers=workers, progress=progress)
        build(open_source("synthetic", synth, fg_masks="exact"), variants, workers=workers, progress=progress)
        return {"variants": str(variants)}

    return Path(cached("sensitivity_data", {"synthetic": str(synth), **asdict(config), "fg_masks": "exact"},
                       compute).metrics["variants"])


def measures(profile: str | None = None, seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """One row per (strength, seed): the number each claim is judged on, and the Original accuracies the power
    checks need (every model trained once, then read from its record)."""
    plan = Plan.of(profile, seed)
    rows = []
    for strength in plan.strengths:
        data = dataset(strength, plan, progress)
        for s in plan.seeds:
            config = {variant: TrainConfig.from_profile(data, profile, variant=variant, seed=s, epochs=plan.epochs)
                      for variant in (ONLY_BG_T, ORIGINAL, MIXED_RAND)}
            background = experiments.trained_model(config[ONLY_BG_T], progress).accuracy
            original = experiments.trained_model(config[ORIGINAL], progress).accuracy
            mixed = experiments.trained_model(config[MIXED_RAND], progress).accuracy
            right = experiments.finegrained_correctness(config[ORIGINAL], progress)
            rows.append({
                "strength": strength, "seed": s,
                CLAIMS["1"]: 100 * background[ORIGINAL],
                CLAIMS["2"]: 100 * (original[MIXED_SAME] - original[MIXED_RAND]),
                CLAIMS["3"]: 100 * experiments.adversarial_backgrounds(config[ORIGINAL], 0, progress=progress
                                                                       ).challenge_accuracy,
                "control: Mixed-Rand-trained challenge accuracy (%)": 100 * experiments.adversarial_backgrounds(
                    config[MIXED_RAND], 0, progress=progress).challenge_accuracy,
                CLAIMS["5"]: 100 * float((right[ORIGINAL] & ~right[MIXED_RAND]).mean()),
                "Original-trained on Original (%)": 100 * original[ORIGINAL],
                "Mixed-Rand-trained on Original (%)": 100 * mixed[ORIGINAL],
            })
    return pd.DataFrame(rows)


def judge(rows: pd.DataFrame, chance: float) -> dict[str, v.Verdict]:
    """The four claims judged on one strength's rows (one per seed), by the chapters' criteria."""
    original = list(rows["Original-trained on Original (%)"])
    return {
        "1": v.claim_1({"Only-BG-T": list(rows[CLAIMS["1"]])}, chance),
        "2": v.claim_2(list(rows[CLAIMS["2"]]), original, chance),
        "3": v.claim_3(list(rows[CLAIMS["3"]]), original, chance,
                       control=list(rows["control: Mixed-Rand-trained challenge accuracy (%)"])),
        "5": v.claim_5(list(rows[CLAIMS["5"]]), original, chance),
    }


#: The paper's number each panel draws as a line (claim 1: the lower end of "around 40-50%"; claim 2: its smallest
#: gap; claim 3: the IN-9L ResNet-50's challenge accuracy; claim 5: "approximately 35%").
PAPER_LINES = {"1": (paper.BACKGROUNDS_SUFFICE_ON_ORIGINAL, "paper: around 40-50%"),
               "2": (6.0, "paper: 6-22 (smallest 6)"),
               "3": (paper.number(paper.IN9L_MODEL, "challenge accuracy"), "paper: 12.0"),
               "5": (paper.number(paper.ORIGINAL_MODEL, "images that need their background"),
                     "paper: approximately 35%")}


@dataclass
class Sensitivity:
    """The study's results: every seed's numbers (`rows`), each claim's mean and 95% interval per strength
    (`table`), each claim's verdict per strength (`verdicts`), and one sentence per claim (`sentences`)."""

    plan: Plan
    rows: pd.DataFrame
    table: pd.DataFrame
    verdicts: dict[float, dict[str, v.Verdict]]
    sentences: dict[str, str]


def study(profile: str | None = None, seed: int = 0, progress: bool = True) -> Sensitivity:
    """Run (or read) the study and judge every claim at every strength."""
    plan = Plan.of(profile, seed)
    rows = measures(profile, seed, progress)
    chance = 100 / len(layout.class_folders(folders(plan.strengths[0], plan)[1]))  # classes come from the data
    verdicts, table = {}, []
    for strength, group in rows.groupby("strength", sort=True):
        verdicts[float(strength)] = judge(group, chance)
        for claim, column in CLAIMS.items():
            est = v.over_seeds(group[column])
            table.append({"strength": float(strength), "claim": claim, "measure": column, "mean": est.value,
                          "95% interval, low": est.low, "95% interval, high": est.high,
                          "verdict": verdicts[float(strength)][claim].verdict})
        est = v.over_seeds(group["control: Mixed-Rand-trained challenge accuracy (%)"])
        table.append({"strength": float(strength), "claim": "3", "measure": "control: Mixed-Rand-trained",
                      "mean": est.value, "95% interval, low": est.low, "95% interval, high": est.high,
                      "verdict": ""})
    table = pd.DataFrame(table)
    return Sensitivity(plan, rows, table, verdicts, {c: sentence(c, verdicts) for c in CLAIMS})


def sentence(claim: str, verdicts: dict[float, dict[str, v.Verdict]]) -> str:
    """Where claim `claim` holds across the strengths, in words computed from its verdicts: at every strength, only
    from a strength up, at some strengths out of order, or at none; with each other strength's verdict."""
    strengths = sorted(verdicts)
    holds = [r for r in strengths if verdicts[r][claim].verdict == v.REPRODUCED]
    title = v.CLAIMS[claim].title
    listed = "; ".join(f"R = {r:g}: {verdicts[r][claim].verdict}" for r in strengths)
    if len(holds) == len(strengths):
        where = f"holds at every habitat strength tested ({', '.join(f'{r:g}' for r in strengths)})"
    elif not holds:
        where = "holds at no habitat strength tested"
    elif holds == strengths[-1:]:
        where = (f"holds only at the strongest habitat tested (R = {holds[0]:g}): at weaker habitats it is a property "
                 "the generator can take away")
    elif holds == strengths[strengths.index(holds[0]):]:
        where = (f"holds only from R = {holds[0]:g} up: at weaker habitats it is a property the generator can "
                 "take away")
    else:
        where = f"holds at R = {', '.join(f'{r:g}' for r in holds)} but not in order of strength"
    default = f" (the book's chapters use R = {DEFAULT_CORRELATION:g})"
    return f"Claim {claim} ({title.lower()}) {where}{default}: {listed}."


def plan_table(result: Sensitivity) -> pd.DataFrame:
    """The plan as a reader reads it: per strength, the images, epochs and seeds, and the background-only accuracy
    the habitats allow at best (the Bayes ceiling, %)."""
    plan = result.plan
    return pd.DataFrame({"habitat strength R": list(plan.strengths),
                         "training images per class": plan.train_per_class,
                         "test images per class": plan.test_per_class, "epochs": plan.epochs,
                         "seeds": len(plan.seeds), "image side (px)": plan.size,
                         "best accuracy from the habitat alone (%)": [100 * background_only_ceiling(r)
                                                                      for r in plan.strengths]}
                        ).set_index("habitat strength R")


def claims_table(result: Sensitivity) -> pd.DataFrame:
    """Per claim and strength: the number's mean over seeds, its 95% interval and the verdict."""
    table = result.table.assign(claim=lambda t: "claim " + t["claim"])
    return table.set_index(["claim", "measure", "strength"]).sort_index(level=[0, 2], sort_remaining=False)


def seeds_table(result: Sensitivity) -> pd.DataFrame:
    """Every seed's numbers at every strength."""
    return result.rows.set_index(["strength", "seed"])


def figure(result: Sensitivity):
    """Each claim's number against the habitat strength, with its interval, the paper's number and the chapters' R."""
    from ..plots import sensitivity_figure

    return sensitivity_figure(result.table, {c: PAPER_LINES[c] for c in CLAIMS}, CLAIMS, DEFAULT_CORRELATION)
