"""Whether each claim of both papers holds here: a criterion written before any number is seen, and a
verdict computed from the numbers.

Every claim has one `CRITERIA` entry, fixed in the package, and one judge that takes our numbers and
returns a `Verdict`: reproduced, partly reproduced, not reproduced, or no counterpart at this scale, with
the reason in words. A claim about several models is judged on all of them, never on the best of them.
The book's prose that says whether a claim holds is `Verdict.sentence()`, so no page can say "as in the
paper" where its own numbers say otherwise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..variants import MIXED_RAND, ONLY_BG_T

REPRODUCED, PARTLY, NOT_REPRODUCED, NO_COUNTERPART = (
    "reproduced", "partly reproduced", "not reproduced", "no counterpart at this scale")
VERDICTS = (REPRODUCED, PARTLY, NOT_REPRODUCED, NO_COUNTERPART)

#: The paper's statements, one per claim (ours in words; see PAPER.md).
STATEMENTS = {
    "1": "Backgrounds suffice: models trained without foregrounds are well above chance on Original",
    "2": "Models exploit backgrounds: a BG-Gap of 6-22 points",
    "3": "Adversarial backgrounds fool most foregrounds",
    "4a": "Training on Mixed-Rand removes the BG-Gap",
    "4b": "Mixed-Rand training costs accuracy on Original",
    "4c": "Mixed-Rand training moves saliency onto the foreground",
    "5": "For most images the background is needed",
    "6": "Better models use the foreground more: every variant rises, Mixed-Rand faster than Only-BG-T",
    "RPS": "Representer point selection localizes objects better than the CAAM baseline (RPS paper)",
}

#: The criteria, fixed before any number is seen (points and % as in the book's tables).
CRITERIA = {
    "1": "each of the three background-only models (Only-BG-B, Only-BG-T, No-FG) scores above chance on Original: "
         "reproduced when each also reaches the paper's 40%, partly when each beats chance but not all reach 40%, "
         "not reproduced when one does not beat chance",
    "2": "the Original-trained model's BG-Gap: reproduced at or above the smallest gap of the paper's Table 2 "
         "(6.0 points), partly above 0 but below it, not reproduced at or below 0",
    "3": "the Original-trained model's challenge accuracy: reproduced below 50% (most foregrounds fooled), not "
         "reproduced otherwise",
    "4a": "the Mixed-Rand-trained model's BG-Gap: reproduced within 2 points of 0 and below the Original-trained "
          "model's, partly when at most half of it in size, not reproduced otherwise",
    "4b": "Original accuracy of the Mixed-Rand-trained model against the Original-trained one, both trained on the "
          "same images: reproduced when lower, not reproduced otherwise",
    "4c": "Grad-CAM's share on the foreground: reproduced when the Mixed-Rand-trained model's exceeds the "
          "Original-trained model's, not reproduced otherwise",
    "5": "share of test images whose own background is needed (right on Original, wrong on Mixed-Rand): "
         "reproduced above 50%, not reproduced otherwise",
    "6": "slopes against Original accuracy across at least 4 models: reproduced when every variant's slope is "
         "positive and Mixed-Rand's exceeds Only-BG-T's with a 95% bootstrap interval (over models) above 0, "
         "partly when Mixed-Rand's exceeds Only-BG-T's, not reproduced otherwise",
    "RPS": "with a self-supervised backbone, RPS against CAAM on MaxBoxAccV2 and PxAP: reproduced when better on "
           "both, partly on one, not reproduced on neither; no counterpart without a self-supervised backbone",
}


@dataclass(frozen=True)
class Verdict:
    """One claim judged on our numbers."""

    claim: str
    measure: str
    ours: str
    paper: str
    verdict: str
    reason: str

    @property
    def statement(self) -> str:
        return STATEMENTS[self.claim]

    @property
    def criterion(self) -> str:
        return CRITERIA[self.claim]

    def sentence(self) -> str:
        """The verdict in one sentence, for the text of a page."""
        return f"Claim {self.claim} ({self.statement.split(':')[0].lower()}): {self.verdict}: {self.reason}."

    def to_json(self) -> dict:
        return {**asdict(self), "statement": self.statement, "criterion": self.criterion}


def _known(*values) -> bool:
    return all(v is not None and not (isinstance(v, float) and math.isnan(v)) for v in values)


def claim_1(on_original: dict[str, float], chance: float, bar: float = 40.0) -> Verdict:
    """Backgrounds suffice: every background-only model's accuracy (%) on Original, judged each."""
    shown = ", ".join(f"{name} {value:.1f}%" for name, value in on_original.items())
    if not on_original or not _known(*on_original.values()):
        return Verdict("1", "accuracy on Original of each background-only model", shown or "n/a", f"over {bar:g}%",
                       NO_COUNTERPART, "a background-only model has no accuracy")
    below_chance = [n for n, v in on_original.items() if v <= chance]
    below_bar = [n for n, v in on_original.items() if v < bar]
    if below_chance:
        verdict, reason = NOT_REPRODUCED, f"{', '.join(below_chance)} does not beat chance ({chance:.1f}%)"
    elif below_bar:
        verdict, reason = PARTLY, (f"all {len(on_original)} beat chance ({chance:.1f}%), but {', '.join(below_bar)} "
                                   f"stay{'s' if len(below_bar) == 1 else ''} below the paper's {bar:g}%")
    else:
        verdict, reason = REPRODUCED, f"all {len(on_original)} reach the paper's {bar:g}%"
    return Verdict("1", "accuracy on Original of each background-only model", shown, f"over {bar:g}%", verdict,
                   reason)


def claim_2(gap: float, paper_gaps: tuple[float, float] = (6.0, 22.0)) -> Verdict:
    """Models exploit backgrounds: the Original-trained model's BG-Gap (points)."""
    if gap >= paper_gaps[0]:
        verdict, reason = REPRODUCED, f"a gap of {gap:.1f} points, in or above the paper's range"
    elif gap > 0:
        verdict, reason = PARTLY, f"a gap of {gap:.1f} points: positive, but below the paper's smallest"
    else:
        verdict, reason = NOT_REPRODUCED, f"a gap of {gap:.1f} points: none"
    return Verdict("2", "BG-Gap of the Original-trained model (points)", f"{gap:.1f}",
                   f"{paper_gaps[0]:g} to {paper_gaps[1]:g}", verdict, reason)


def claim_3(challenge_accuracy: float, paper: float = 12.0) -> Verdict:
    """Adversarial backgrounds: the Original-trained model's challenge accuracy (%)."""
    fooled = 100 - challenge_accuracy
    verdict = REPRODUCED if challenge_accuracy < 50 else NOT_REPRODUCED
    reason = f"some test background fools {fooled:.1f}% of the test foregrounds"
    return Verdict("3", "challenge accuracy of the Original-trained model (%)", f"{challenge_accuracy:.1f}",
                   f"{paper:g} (IN-9L ResNet-50), 22.3 (ImageNet ResNet-50)", verdict, reason)


def claim_4a(gap_mixed: float, gap_original: float) -> Verdict:
    """Mixed-Rand training removes the gap: both models' BG-Gaps (points)."""
    if abs(gap_mixed) <= 2 and gap_mixed < gap_original:
        verdict, reason = REPRODUCED, f"the gap falls from {gap_original:.1f} to {gap_mixed:.1f} points"
    elif gap_original > 0 and abs(gap_mixed) <= gap_original / 2:
        verdict, reason = PARTLY, f"the gap falls from {gap_original:.1f} to {gap_mixed:.1f} points, not to about 0"
    else:
        verdict, reason = NOT_REPRODUCED, f"the gap goes from {gap_original:.1f} to {gap_mixed:.1f} points"
    return Verdict("4a", "BG-Gap of the Mixed-Rand-trained model (points)", f"{gap_mixed:.1f}",
                   "0.2 (official ResNet-50)", verdict, reason)


def claim_4b(original_of_original: float, original_of_mixed: float) -> Verdict:
    """The cost on Original of Mixed-Rand training, like with like (same training images), in points."""
    cost = original_of_original - original_of_mixed
    verdict = REPRODUCED if cost > 0 else NOT_REPRODUCED
    reason = (f"Original accuracy {original_of_mixed:.1f}% against {original_of_original:.1f}% for the same images "
              f"with their own backgrounds: {'a cost of' if cost > 0 else 'a gain of'} {abs(cost):.1f} points")
    return Verdict("4b", "Original accuracy, Original-trained minus Mixed-Rand-trained (points)", f"{cost:.1f}",
                   "a cost (> 0); the paper's matched ResNet-50s, trained on IN-9's Original and Mixed-Rand: 85.95% "
                   "and 73.23% on Original, a cost of 12.7 (arXiv Table 5; not its IN-9L model, a ten times larger "
                   "set)",
                   verdict, reason)


def claim_4c(share_original: float | None, share_mixed: float | None) -> Verdict:
    """Saliency on the foreground (%), Original- and Mixed-Rand-trained."""
    if not _known(share_original, share_mixed):
        return Verdict("4c", "Grad-CAM share on the foreground (%)", "n/a", "qualitative (saliency maps)",
                       NO_COUNTERPART, "no Grad-CAM share was measured")
    diff = share_mixed - share_original
    verdict = REPRODUCED if diff > 0 else NOT_REPRODUCED
    reason = f"{share_mixed:.1f}% of the saliency on the foreground against {share_original:.1f}%"
    return Verdict("4c", "Grad-CAM share on the foreground, Mixed-Rand minus Original (points)", f"{diff:+.1f}",
                   "qualitative (saliency maps)", verdict, reason)


def claim_5(needed_share: float) -> Verdict:
    """For most images the background is needed: share (%) of test images that need their own background."""
    verdict = REPRODUCED if needed_share > 50 else NOT_REPRODUCED
    reason = f"{needed_share:.1f}% of the test images need their own background"
    return Verdict("5", "test images whose own background is needed (%)", f"{needed_share:.1f}",
                   "'most images' (Fig. 7, no single number)", verdict, reason)


def claim_6(slopes: dict[str, float], difference_ci: list[float] | None, n_models: int) -> Verdict:
    """Benchmark progress: each variant's slope against Original accuracy across `n_models` models, and the
    bootstrap interval (over models) of Mixed-Rand's minus Only-BG-T's."""
    rand, bgt = slopes.get(MIXED_RAND), slopes.get(ONLY_BG_T)
    shown = ", ".join(f"{k} {v:+.2f}" for k, v in slopes.items())
    if n_models < 4 or not _known(rand, bgt, *slopes.values()):
        why = (f"{n_models} models are too few to fit a trend" if n_models < 4 else
               "the zoo has no slope for Mixed-Rand or Only-BG-T (or one is undefined)")
        return Verdict("6", "slopes against Original accuracy", shown or "n/a", "every variant positive (Fig. 8)",
                       NO_COUNTERPART, why)
    falling = [k for k, v in slopes.items() if v <= 0]
    sure = difference_ci is not None and difference_ci[0] > 0
    if not falling and rand > bgt and sure:
        verdict, reason = REPRODUCED, "every variant rises, Mixed-Rand faster than Only-BG-T"
    elif rand > bgt:
        why = [f"{', '.join(falling)} fall{'s' if len(falling) == 1 else ''}"] if falling else []
        if not sure:
            why.append("the difference's interval includes 0" if difference_ci else "no interval for the difference")
        verdict, reason = PARTLY, f"Mixed-Rand rises faster than Only-BG-T, but {' and '.join(why)}"
    else:
        verdict, reason = NOT_REPRODUCED, "Mixed-Rand does not rise faster than Only-BG-T"
    return Verdict("6", f"slopes against Original accuracy ({n_models} models)", shown,
                   "every variant positive, Mixed-Rand above Only-BG-T (Fig. 8)", verdict, reason)


def claim_rps(rps: dict[str, float], caam: dict[str, float], self_supervised: bool, backbone: str) -> Verdict:
    """RPS against CAAM (MaxBoxAccV2 and PxAP, %), and whether the backbone is self-supervised."""
    shown = (f"RPS {rps['maxboxaccv2']:.1f} / {rps['pxap']:.1f}, CAAM {caam['maxboxaccv2']:.1f} / "
             f"{caam['pxap']:.1f} (MaxBoxAccV2 / PxAP)")
    wins = [m for m in ("maxboxaccv2", "pxap") if rps[m] > caam[m]]
    if not self_supervised:
        return Verdict("RPS", "MaxBoxAccV2 and PxAP against CAAM", shown, "RPS above CAAM (its Table 1)",
                       NO_COUNTERPART, f"the method needs a self-supervised backbone and this run has {backbone}, a "
                       f"supervised one (on it RPS beats CAAM on {len(wins)} of 2 metrics)")
    verdict = REPRODUCED if len(wins) == 2 else PARTLY if wins else NOT_REPRODUCED
    return Verdict("RPS", "MaxBoxAccV2 and PxAP against CAAM", shown, "RPS above CAAM (its Table 1)", verdict,
                   f"RPS beats CAAM on {len(wins)} of 2 metrics with {backbone}")


__all__ = ["REPRODUCED", "PARTLY", "NOT_REPRODUCED", "NO_COUNTERPART", "VERDICTS", "STATEMENTS", "CRITERIA",
           "Verdict", "claim_1", "claim_2", "claim_3", "claim_4a", "claim_4b", "claim_4c", "claim_5", "claim_6",
           "claim_rps"]
