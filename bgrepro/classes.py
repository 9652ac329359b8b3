"""The IN-9 label space and the synthetic habitats: names shared by every stage."""

from __future__ import annotations

#: Folder names of the official IN-9 release, in label order.
CLASS_FOLDERS: tuple[str, ...] = (
    "00_dog",
    "01_bird",
    "02_wheeled vehicle",
    "03_reptile",
    "04_carnivore",
    "05_insect",
    "06_musical instrument",
    "07_primate",
    "08_fish",
)

#: WordNet synset of each IN-9 class (the super-class of its ImageNet classes).
CLASS_SYNSETS: tuple[str, ...] = (
    "n02084071",
    "n01503061",
    "n04576211",
    "n01661091",
    "n02075296",
    "n02159955",
    "n03800933",
    "n02469914",
    "n02512053",
)

#: Short human names, for tables and figures.
CLASS_NAMES: tuple[str, ...] = tuple(f.split("_", 1)[1] for f in CLASS_FOLDERS)

NUM_CLASSES = len(CLASS_FOLDERS)

#: Background scenes of the synthetic IN-9, in habitat-index order.
HABITATS: tuple[str, ...] = (
    "sky",
    "water",
    "grass",
    "foliage",
    "sand_rock",
    "road",
    "indoor_wood",
    "flowers",
    "snow",
)

#: Official variant folder names, in the paper's order.
VARIANTS: tuple[str, ...] = (
    "original",
    "only_bg_b",
    "only_bg_t",
    "no_fg",
    "only_fg",
    "mixed_same",
    "mixed_rand",
    "mixed_next",
)
#: The paper's name of each variant, for tables, figures and reports.
VARIANT_NAMES = {"original": "Original", "only_bg_b": "Only-BG-B", "only_bg_t": "Only-BG-T", "no_fg": "No-FG",
                 "only_fg": "Only-FG", "mixed_same": "Mixed-Same", "mixed_rand": "Mixed-Rand",
                 "mixed_next": "Mixed-Next"}


def class_index(folder: str) -> int:
    """Label of an official class folder name; ValueError for an unknown folder."""
    try:
        return CLASS_FOLDERS.index(folder)
    except ValueError:
        raise ValueError(
            f"unknown class folder {folder!r}; expected one of {', '.join(CLASS_FOLDERS)}"
        ) from None


def _expand(spec: str) -> tuple[int, ...]:
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return tuple(out)


#: ImageNet-1k class indices (torchvision order) under each IN-9 class's WordNet synset.
IMAGENET_INDICES: tuple[tuple[int, ...], ...] = tuple(
    _expand(s)
    for s in (
        "151-170, 173-268",
        "7-24, 87-100, 127-146",
        "407-408, 428, 436, 444, 468, 511, 547, 555, 561, 565, 569, 573, 586, 603, 609, 612, 627, 656, 661, "
        "665, 670-671, 675, 690, 705, 717, 734, 751, 757, 791, 802-803, 817, 820, 829, 847, 864, 866-867, "
        "870, 880",
        "33-68",
        "269-280, 286-299, 356-362, 387-388",
        "300-326",
        "401-402, 420, 432, 486, 494, 513, 541, 546, 558, 566, 577, 579, 593-594, 641-642, 683-684, 687, 699, "
        "776, 822, 875, 881, 889",
        "365-384",
        "0-6, 389-397",
    )
)

#: IN-9 label of every ImageNet-1k class index, -1 for the 630 classes under no IN-9 synset.
IMAGENET_TO_IN9: tuple[int, ...] = tuple(
    next((c for c, idx in enumerate(IMAGENET_INDICES) if i in idx), -1) for i in range(1000)
)


#: The ImageNet-1k synset ids (wnids) of each IN-9 class, the classes of `IMAGENET_INDICES` (ImageNet's
#: sorted wnid order is its class index), so a folder of any subset of wnid folders maps to IN-9.
IMAGENET_WNIDS: tuple[tuple[str, ...], ...] = tuple(
    tuple(s.split())
    for s in (
        "n02085620 n02085782 n02085936 n02086079 n02086240 n02086646 n02086910 n02087046 n02087394 n02088094 "
        "n02088238 n02088364 n02088466 n02088632 n02089078 n02089867 n02089973 n02090379 n02090622 n02090721 "
        "n02091244 n02091467 n02091635 n02091831 n02092002 n02092339 n02093256 n02093428 n02093647 n02093754 "
        "n02093859 n02093991 n02094114 n02094258 n02094433 n02095314 n02095570 n02095889 n02096051 n02096177 "
        "n02096294 n02096437 n02096585 n02097047 n02097130 n02097209 n02097298 n02097474 n02097658 n02098105 "
        "n02098286 n02098413 n02099267 n02099429 n02099601 n02099712 n02099849 n02100236 n02100583 n02100735 "
        "n02100877 n02101006 n02101388 n02101556 n02102040 n02102177 n02102318 n02102480 n02102973 n02104029 "
        "n02104365 n02105056 n02105162 n02105251 n02105412 n02105505 n02105641 n02105855 n02106030 n02106166 "
        "n02106382 n02106550 n02106662 n02107142 n02107312 n02107574 n02107683 n02107908 n02108000 n02108089 "
        "n02108422 n02108551 n02108915 n02109047 n02109525 n02109961 n02110063 n02110185 n02110341 n02110627 "
        "n02110806 n02110958 n02111129 n02111277 n02111500 n02111889 n02112018 n02112137 n02112350 n02112706 "
        "n02113023 n02113186 n02113624 n02113712 n02113799 n02113978",
        "n01514668 n01514859 n01518878 n01530575 n01531178 n01532829 n01534433 n01537544 n01558993 n01560419 "
        "n01580077 n01582220 n01592084 n01601694 n01608432 n01614925 n01616318 n01622779 n01817953 n01818515 "
        "n01819313 n01820546 n01824575 n01828970 n01829413 n01833805 n01843065 n01843383 n01847000 n01855032 "
        "n01855672 n01860187 n02002556 n02002724 n02006656 n02007558 n02009229 n02009912 n02011460 n02012849 "
        "n02013706 n02017213 n02018207 n02018795 n02025239 n02027492 n02028035 n02033041 n02037110 n02051845 "
        "n02056570 n02058221",
        "n02701002 n02704792 n02797295 n02814533 n02835271 n02930766 n03100240 n03272562 n03345487 n03384352 "
        "n03393912 n03417042 n03444034 n03478589 n03538406 n03594945 n03599486 n03670208 n03770679 n03777568 "
        "n03785016 n03791053 n03792782 n03796401 n03868242 n03895866 n03930630 n03977966 n04037443 n04065272 "
        "n04204347 n04252077 n04252225 n04285008 n04310018 n04335435 n04389033 n04461696 n04465501 n04467665 "
        "n04482393 n04509417",
        "n01664065 n01665541 n01667114 n01667778 n01669191 n01675722 n01677366 n01682714 n01685808 n01687978 "
        "n01688243 n01689811 n01692333 n01693334 n01694178 n01695060 n01697457 n01698640 n01704323 n01728572 "
        "n01728920 n01729322 n01729977 n01734418 n01735189 n01737021 n01739381 n01740131 n01742172 n01744401 "
        "n01748264 n01749939 n01751748 n01753488 n01755581 n01756291",
        "n02114367 n02114548 n02114712 n02114855 n02115641 n02115913 n02116738 n02117135 n02119022 n02119789 "
        "n02120079 n02120505 n02125311 n02127052 n02128385 n02128757 n02128925 n02129165 n02129604 n02130308 "
        "n02132136 n02133161 n02134084 n02134418 n02137549 n02138441 n02441942 n02442845 n02443114 n02443484 "
        "n02444819 n02445715 n02447366 n02509815 n02510455",
        "n02165105 n02165456 n02167151 n02168699 n02169497 n02172182 n02174001 n02177972 n02190166 n02206856 "
        "n02219486 n02226429 n02229544 n02231487 n02233338 n02236044 n02256656 n02259212 n02264363 n02268443 "
        "n02268853 n02276258 n02277742 n02279972 n02280649 n02281406 n02281787",
        "n02672831 n02676566 n02787622 n02804610 n02992211 n03017168 n03110669 n03249569 n03272010 n03372029 "
        "n03394916 n03447721 n03452741 n03494278 n03495258 n03720891 n03721384 n03838899 n03840681 n03854065 "
        "n03884397 n04141076 n04311174 n04487394 n04515003 n04536866",
        "n02480495 n02480855 n02481823 n02483362 n02483708 n02484975 n02486261 n02486410 n02487347 n02488291 "
        "n02488702 n02489166 n02490219 n02492035 n02492660 n02493509 n02493793 n02494079 n02497673 n02500267",
        "n01440764 n01443537 n01484850 n01491361 n01494475 n01496331 n01498041 n02514041 n02526121 n02536864 "
        "n02606052 n02607072 n02640242 n02641379 n02643566 n02655020",
    )
)

#: IN-9 label of each of the 370 wnids under an IN-9 class.
WNID_TO_IN9: dict[str, int] = {w: c for c, group in enumerate(IMAGENET_WNIDS) for w in group}
