"""The three scales (tiny, smoke, full) as one object that every stage reads."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

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

    def as_dict(self) -> dict[str, object]:
        """Plain-dict form, for records and JSON."""
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "tiny": Profile(
        name="tiny",
        image_size=32,
        train_per_class=6,
        test_per_class=3,
        arch="smallcnn",
        epochs=2,
        batch_size=16,
        lr=0.05,
        weight_decay=5e-4,
        gpu=False,
        zoo_archs=("smallcnn_narrow", "smallcnn"),
        zoo_epochs=(1, 2),
        table_archs=("smallcnn",),
    ),
    "smoke": Profile(
        name="smoke",
        image_size=40,
        train_per_class=400,
        test_per_class=100,
        arch="smallcnn",
        epochs=20,
        batch_size=64,
        lr=0.05,
        weight_decay=5e-4,
        gpu=False,
        zoo_archs=("smallcnn_narrow", "smallcnn", "smallcnn_wide"),
        zoo_epochs=(5, 20),
        table_archs=("smallcnn", "smallcnn_wide"),
        challenge_pairs_per_class=20,
    ),
    "full": Profile(
        name="full",
        image_size=224,
        train_per_class=5045,
        test_per_class=450,
        arch="resnet50",
        epochs=30,
        batch_size=256,
        lr=0.1,
        weight_decay=1e-4,
        gpu=True,
        zoo_archs=("alexnet", "shufflenet_v2", "mobilenet_v3_large", "efficientnet_b0", "resnet18", "resnet50",
                   "wide_resnet50_2", "vgg16_bn"),
        zoo_epochs=(30,),
        table_archs=("alexnet", "shufflenet_v2", "resnet50", "wide_resnet50_2", "vgg16_bn"),
    ),
}


def get_profile(name: str | None = None) -> Profile:
    """The named profile, or the one in $BGREPRO_PROFILE, or smoke."""
    name = name or os.environ.get(PROFILE_ENV) or "smoke"
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}"
        ) from None
