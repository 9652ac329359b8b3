"""The numbers the papers report (from ../shared/PAPER.md), for setting ours beside them.

Accuracies in %. Table 2 columns marked * are trained on IN-9L; the others are ImageNet-pretrained
1000-class models mapped to IN-9.
"""

from __future__ import annotations

import pandas as pd

CHANCE = 100 / 9

#: Claim 1: background-only models reach "over 40%" on Original test images.
BACKGROUNDS_SUFFICE_ON_ORIGINAL = 40.0

#: Table 2 (rows: test sets; columns: models).
TABLE2 = pd.DataFrame(
    {
        "MobileNet-v3": [67.9, 91.0, 90.0, 15.7, 69.7, 56.1, 13.6],
        "EfficientNet-b0": [77.2, 95.6, 94.3, 11.9, 79.7, 67.8, 11.9],
        "ResNet-50": [77.6, 96.2, 95.0, 17.8, 82.3, 76.3, 6.0],
        "WRN-50x2": [78.5, 95.8, 95.5, 20.7, 81.7, 73.0, 8.7],
        "DPN-92": [80.0, 96.8, 96.0, 20.6, 85.4, 77.6, 7.8],
        "AlexNet*": [None, 86.7, 83.1, 41.5, 76.2, 54.2, 22.0],
        "ShuffleNet*": [None, 95.7, 93.2, 43.6, 86.7, 69.4, 17.3],
        "ResNet-50*": [None, 96.3, 94.6, 43.6, 89.9, 75.6, 14.3],
        "WRN-50x2*": [None, 97.2, 95.2, 45.1, 90.6, 78.0, 12.6],
        "VGG16-BN*": [None, 97.6, 96.0, 45.7, 91.0, 78.0, 13.0],
    },
    index=["imagenet", "original", "in9l", "only_bg_t", "mixed_same", "mixed_rand", "bg_gap"],
)

#: The official repository's README table: Original / Mixed-Same / Mixed-Rand / BG-Gap.
README_TABLE = pd.DataFrame(
    {
        "VGG16-BN": [94.3, 83.6, 73.4, 10.2],
        "ResNet-50": [95.6, 86.2, 78.9, 7.3],
        "ResNet-152": [96.7, 89.3, 83.5, 5.8],
        "ResNet-50 (IN-9L)": [96.4, 89.8, 75.6, 14.2],
        "ResNet-50 (IN-9 Mixed-Rand)": [73.3, 71.5, 71.3, 0.2],
    },
    index=["original", "mixed_same", "mixed_rand", "bg_gap"],
)

#: Claim 3: challenge accuracy (share of foregrounds no background fools).
CHALLENGE = {"ResNet-50 (ImageNet)": 22.3, "ResNet-50 (IN-9L)": 12.0}
CHALLENGE_CLEAN = {"ResNet-50 (ImageNet)": 95.6}
#: Share of non-insect foregrounds that some insect background fools.
INSECT_BACKGROUNDS_FOOL = 66.55

#: The paper's qualitative findings, for the claims table.
CLAIMS = {
    1: "Backgrounds suffice: models trained without foregrounds reach well above chance (> 40%) on Original.",
    2: "Models exploit backgrounds: BG-Gap (Mixed-Same - Mixed-Rand) of 6-22 points.",
    3: "Adversarial backgrounds fool most foregrounds: challenge accuracy 22.3% (ImageNet ResNet-50), 12.0% (IN-9L).",
    4: "Mixed-Rand training removes the gap (0.2 points) and moves saliency onto the foreground.",
    5: "For most images the background is needed.",
    6: "Better models use the foreground more: foreground variants rise faster than Only-BG-T.",
}


def beside(ours: pd.Series | dict, paper: pd.Series | dict, name_ours: str = "ours",
           name_paper: str = "paper") -> pd.DataFrame:
    """Ours and the paper's numbers side by side, with the difference (ours - paper)."""
    ours, paper = pd.Series(ours, dtype=float), pd.Series(paper, dtype=float)
    table = pd.DataFrame({name_ours: ours, name_paper: paper.reindex(ours.index)})
    table["difference"] = table[name_ours] - table[name_paper]
    return table
