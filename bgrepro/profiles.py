"""The three scales (tiny, smoke, full) as one object that every stage reads."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import NamedTuple

from .variants import MIXED_RAND, NO_FG, ONLY_BG_B, ONLY_BG_T, ORIGINAL

#: Environment variable that selects the profile when none is passed explicitly.
PROFILE_ENV = "BGREPRO_PROFILE"


@dataclass(frozen=True)
class Profile:
    """Everything that changes with scale; the code path is the same at every scale."""

    name: str
    #: Side of the (square) images, in pixels.
    image_size: int
    #: Synthetic images per class in the train split.
    train_per_class: int
    #: Synthetic images per class in the val (test) split.
    test_per_class: int
    #: Default architecture for trained models.
    arch: str
    #: Training epochs.
    epochs: int
    #: Mini-batch size.
    batch_size: int
    #: Peak learning rate (SGD with momentum, cosine schedule).
    lr: float
    #: Weight decay.
    weight_decay: float
    #: Whether the profile expects a GPU.
    gpu: bool
    #: The model zoo of the benchmark-progress analysis: architectures x training epochs.
    zoo_archs: tuple[str, ...] = ()
    zoo_epochs: tuple[int, ...] = ()
    #: Architectures trained on Original for the BG-Gap table (Table 2 layout).
    table_archs: tuple[str, ...] = ()
    #: Foregrounds per class that meet every background for Figs. 3-4 (None: all of them).
    challenge_pairs_per_class: int | None = None
    #: Seeds of the default model (Original- and Mixed-Rand-trained) behind the spread of the BG-Gap and the
    #: challenge accuracy.
    spread_seeds: int = 1
    #: SimSiam epochs of the self-supervised backbone trained on the training images for RPS (`selfsup`).
    ssl_epochs: int = 1
    #: The real-photo chapter: photos per IN-9 class (None: every photo of the folder), and the challenge's budget
    #: per ImageNet model in composites at worst (None: the device's, `adversarial.challenge_budget_default`).
    real_per_class: int | None = None
    real_challenge_budget: int | None = None
    #: Its ImageNet models (`registry.PACKAGED` names and TFLite files' stems; empty: every one there).
    real_models: tuple[str, ...] = ()
    #: Photos per class of RPS's box benchmark on the photos with boxes (None: every one).
    rps_benchmark_per_class: int | None = None
    #: The generator sensitivity study (`book.sensitivity`): the habitat strengths R it regenerates the synthetic IN-9
    #: at (the default 0.8 among them), its images per class (train, test) and its epochs, each strength with the
    #: profile's `spread_seeds` seeds. The default size keeps the smoke study within 8 minutes on 2 cores: at
    #: (120, 50) its 27 models and 18 challenges ran at about 65 s per strength and seed, 10 minutes in all.
    sensitivity_strengths: tuple[float, ...] = (0.2, 0.5, 0.8)
    sensitivity_per_class: tuple[int, int] = (100, 40)
    sensitivity_epochs: int = 10

    def as_dict(self) -> dict[str, object]:
        """Plain-dict form, for records and JSON."""
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "tiny": Profile("tiny", image_size=32, train_per_class=6, test_per_class=3, arch="smallcnn", epochs=2,
                    batch_size=16, lr=0.05, weight_decay=5e-4, gpu=False, zoo_archs=("smallcnn_narrow", "smallcnn"),
                    zoo_epochs=(1, 2), table_archs=("smallcnn",), spread_seeds=2, ssl_epochs=2,
                    real_per_class=4, real_challenge_budget=200, rps_benchmark_per_class=6,
                    real_models=("efficientnet_lite0", "mobilenet_v1_0.25_128_quant"),
                    sensitivity_per_class=(8, 4), sensitivity_epochs=1),
    # smoke: sized for `make reproduce` in <= 20 min on 2 CPU cores (every model 12 epochs, the zoo seven nets,
    # the SimSiam backbone 20 epochs: trained 30, its loss fell from -0.136 to -0.872 by epoch 20 and only to -0.876
    # by epoch 30 (issue 31); a 20-epoch version with a wider net took 23-29 min, the machine's speed varying by a
    # third). The zoo: seven nets that differ in width, depth or architecture, each trained as long
    # as the default model; the first of table_archs is the one set beside the paper's.
    "smoke": Profile("smoke", image_size=40, train_per_class=400, test_per_class=100, arch="smallcnn", epochs=12,
                     batch_size=64, lr=0.05, weight_decay=5e-4, gpu=False,
                     zoo_archs=("smallcnn_shallow", "smallcnn_narrow", "smallcnn", "smallcnn_wide", "smallcnn_deep",
                                "resnet18", "shufflenet_v2"),
                     zoo_epochs=(12,), table_archs=("smallcnn", "smallcnn_narrow"), challenge_pairs_per_class=10,
                     spread_seeds=3, ssl_epochs=20, real_per_class=20, real_challenge_budget=4000),
    "full": Profile("full", image_size=224, train_per_class=5045, test_per_class=450, arch="resnet50", epochs=30,
                    batch_size=256, lr=0.1, weight_decay=1e-4, gpu=True,
                    zoo_archs=("alexnet", "shufflenet_v2", "mobilenet_v3_large", "efficientnet_b0", "resnet18",
                               "resnet50", "wide_resnet50_2", "vgg16_bn"),
                    zoo_epochs=(30,), table_archs=("alexnet", "shufflenet_v2", "resnet50", "wide_resnet50_2",
                                                   "vgg16_bn"), spread_seeds=3, ssl_epochs=20,
                    sensitivity_per_class=(1000, 200), sensitivity_epochs=16),
}
#: The full profile's code path on a handful of images: 224 px, the full profile's architectures, one
#: epoch. The tests run every chapter under it so that the full scale's code never rots.
PROFILES["fullcheck"] = replace(PROFILES["full"], name="fullcheck", train_per_class=2, test_per_class=2, epochs=1,
                                batch_size=8, lr=0.01, gpu=False, zoo_epochs=(1,), spread_seeds=2, ssl_epochs=1,
                                real_per_class=4, real_challenge_budget=200, rps_benchmark_per_class=6,
                                real_models=("efficientnet_lite0", "mobilenet_v1_0.25_128_quant"),
                                sensitivity_per_class=(2, 2), sensitivity_epochs=1)


def get_profile(name: str | None = None) -> Profile:
    """The named profile, or the one in $BGREPRO_PROFILE, or smoke."""
    name = name or os.environ.get(PROFILE_ENV) or "smoke"
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}"
        ) from None


class Planned(NamedTuple):
    """One model a chapter trains: its architecture, training variant, seed and epochs, the training images per
    class, and the data (IN-9, or the generator's at one habitat strength)."""

    arch: str
    variant: str
    seed: int
    epochs: int
    train_per_class: int
    data: str = "IN-9"


def chapter_models(profile: Profile, seed: int = 0) -> dict[str, list[Planned]]:
    """The models each chapter trains under a profile, every seed and the generator study's models included (a model
    shared by chapters counts once, where it is first)."""
    seeds = range(seed, seed + profile.spread_seeds)

    def model(arch=profile.arch, variant=ORIGINAL, s=seed, epochs=profile.epochs):
        return Planned(arch, variant, s, epochs, profile.train_per_class)

    train, _ = profile.sensitivity_per_class
    plan = {
        "backgrounds_suffice": [model(variant=v, s=s) for s in seeds for v in (ONLY_BG_B, ONLY_BG_T, NO_FG)],
        "bg_gap": [*(model(a) for a in profile.table_archs), *(model(variant=v, s=s) for v in (ORIGINAL, MIXED_RAND)
                                                                for s in seeds)],
        "mixed_rand_training": [model(variant=v) for v in (ORIGINAL, MIXED_RAND, "mixed_rand (on the fly)")],
        "adversarial": [model(variant=v, s=s) for v in (ORIGINAL, MIXED_RAND) for s in seeds],
        "progress": [model(a, epochs=e) for a in profile.zoo_archs for e in profile.zoo_epochs],
        "localization": [model()],
        "generator": [Planned(profile.arch, v, s, profile.sensitivity_epochs, train, f"generator R={r}")
                      for r in profile.sensitivity_strengths for s in seeds for v in (ONLY_BG_T, ORIGINAL, MIXED_RAND)],
    }
    seen: set[Planned] = set()
    return {chapter: [m for m in models if not (m in seen or seen.add(m))] for chapter, models in plan.items()}
