"""The synthetic IN-9: the embedded default dataset, written in the official IN-9 layout.

Nine classes of procedurally drawn objects (shape and texture carry the class; colours come
from one shared palette) on nine procedural habitats. Each class has its own distribution over
habitats (`HABITAT_MATRIX`), blended with the uniform distribution by the correlation R, so a
background hints at a group of classes rather than naming one, as in photographs.

Habitats are assigned by quota, not by independent draws: within each (split, class) the
number of images per habitat is the largest-remainder rounding of n * P(habitat | class), so
the realised frequencies match the declared matrix up to rounding, and then shuffled.

Calibration, measured by training (`scripts/calibrate_synth.py`, the project's training engine;
smoke profile: 40 px, 400 train / 100 test per class, correlation 0.8, `smallcnn`, 20 epochs, 2 CPU
cores, dataset seed 0). Accuracy (%) on the test variants of nets trained on one variant:

    trained on   Original  Only-BG-T  Only-FG  Mixed-Same  Mixed-Rand  BG-Gap
    Original       92.7      22.2      73.4      90.4        82.2       8.2
    Only-BG-T      43.3      43.7      10.9      43.0        10.1        -
    Only-FG        14.6      12.8      99.8      14.7        11.0        -
    Mixed-Rand     92.9      11.2      58.0      92.2        90.4       1.8

Targets (IN-9): backgrounds alone reach 35-50% on Original (IN-9: 41-46%); foreground-only
training >= 80%; Original training >= 90%. The best any classifier can do from the habitat alone
at R = 0.8 is `background_only_ceiling(0.8)` = 44.0%. See data/README.md for where the
simulation departs from IN-9 (the No-FG silhouette is a strong cue).
"""

from __future__ import annotations

import csv
import io
import multiprocessing as mp
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import layout
from ..in9 import CLASS_FOLDERS, NUM_CLASSES
from ..io import atomic_write_bytes, atomic_write_text, encode_image, mask_box, remove_stale_parts, save_mask
from ..outputs import staged_output
from ..profiles import get_profile
from ..variants import ORIGINAL
from . import synth_render
from .parallel import run_tasks

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

#: P(habitat | class) at correlation 1. Rows: classes (IN-9 order); columns: habitats
#: (sky, water, grass, foliage, sand_rock, road, indoor_wood, flowers, snow). Shared habitats
#: make backgrounds hint at groups: dog/carnivore/primate share grass and foliage, fish and
#: reptile share water, bird and insect share sky and flowers.
HABITAT_MATRIX = np.array(
    [
        #  sky  water grass foli  sand  road  wood  flow  snow
        [0.00, 0.05, 0.35, 0.10, 0.05, 0.15, 0.20, 0.00, 0.10],  # dog
        [0.40, 0.15, 0.05, 0.20, 0.05, 0.00, 0.00, 0.15, 0.00],  # bird
        [0.00, 0.00, 0.05, 0.00, 0.10, 0.70, 0.05, 0.00, 0.10],  # wheeled vehicle
        [0.00, 0.30, 0.10, 0.15, 0.45, 0.00, 0.00, 0.00, 0.00],  # reptile
        [0.00, 0.05, 0.30, 0.25, 0.15, 0.00, 0.00, 0.00, 0.25],  # carnivore
        [0.10, 0.00, 0.15, 0.20, 0.05, 0.00, 0.00, 0.50, 0.00],  # insect
        [0.00, 0.00, 0.05, 0.00, 0.00, 0.10, 0.75, 0.05, 0.05],  # musical instrument
        [0.05, 0.00, 0.20, 0.50, 0.10, 0.00, 0.10, 0.00, 0.05],  # primate
        [0.00, 0.80, 0.00, 0.05, 0.15, 0.00, 0.00, 0.00, 0.00],  # fish
    ]
)

#: Default correlation between class and habitat (calibrated by training, see module doc).
DEFAULT_CORRELATION = 0.8
#: Object half-extent as a fraction of the image side (objects span about 45-85% of it).
SCALE_RANGE = (0.24, 0.42)
#: Columns of annotations.csv, in order.
ANNOTATION_COLUMNS = (
    "split", "class_index", "class_folder", "id", "xmin", "ymin", "xmax", "ymax", "habitat"
)
SPLITS = layout.SPLITS
#: Version of the drawing code; part of the dataset identity checked on resume.
GENERATOR_VERSION = 1


def habitat_distribution(correlation: float) -> np.ndarray:
    """P(habitat | class) as a (9, 9) matrix: R * HABITAT_MATRIX + (1 - R) * uniform."""
    if not 0.0 <= correlation <= 1.0:
        raise ValueError(f"correlation must be in [0, 1], got {correlation}")
    return correlation * HABITAT_MATRIX + (1.0 - correlation) / len(HABITATS)


def background_only_ceiling(correlation: float) -> float:
    """Best accuracy any classifier can reach from the habitat alone (uniform class prior)."""
    return float(habitat_distribution(correlation).max(axis=0).sum() / NUM_CLASSES)


def habitat_quota(n: int, probs: np.ndarray) -> np.ndarray:
    """Integer counts summing to n, the largest-remainder rounding of n * probs."""
    exact = n * np.asarray(probs, dtype=float)
    counts = np.floor(exact).astype(int)
    remainder = exact - counts
    order = np.lexsort((np.arange(len(probs)), -remainder))  # ties: lower index first
    counts[order[: n - counts.sum()]] += 1
    return counts


@dataclass(frozen=True)
class SynthConfig:
    """Everything that determines a synthetic dataset's bytes."""

    size: int
    train_per_class: int
    test_per_class: int
    correlation: float = DEFAULT_CORRELATION
    seed: int = 0
    fmt: str = "png"

    def __post_init__(self) -> None:
        if self.size < 16:
            raise ValueError(f"`size` must be at least 16 pixels, got {self.size}")
        if self.train_per_class < 0 or self.test_per_class < 0:
            raise ValueError(
                "images per class must be non-negative, got "
                f"train={self.train_per_class}, test={self.test_per_class}"
            )
        if self.train_per_class + self.test_per_class == 0:
            raise ValueError("nothing to generate: train and test sizes are both 0")
        if not 0.0 <= self.correlation <= 1.0:
            raise ValueError(f"`correlation` must be in [0, 1], got {self.correlation}")
        if self.fmt not in ("png", "jpeg"):
            raise ValueError(f"`format` must be png or jpeg, got {self.fmt!r}")
        if self.seed < 0:
            raise ValueError(f"`seed` must be non-negative, got {self.seed}")

    @classmethod
    def from_profile(cls, profile: str | None = None, **overrides: object) -> SynthConfig:
        """The profile's dataset size, with explicit overrides (None means 'keep')."""
        p = get_profile(profile)
        values = dict(size=p.image_size, train_per_class=p.train_per_class,
                      test_per_class=p.test_per_class)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def ext(self) -> str:
        """File extension of the images."""
        return "png" if self.fmt == "png" else "jpg"

    def per_split(self, split: str) -> int:
        """Images per class in a split."""
        return self.train_per_class if split == "train" else self.test_per_class


@dataclass(frozen=True)
class Job:
    """One image to draw."""

    split: str
    class_index: int
    index: int
    habitat: int

    @property
    def id(self) -> str:
        """Unique id across the dataset (also the file stem)."""
        return f"{self.split}_{self.class_index}_{self.index:05d}"


def plan(config: SynthConfig) -> list[Job]:
    """Every image of the dataset with its habitat, in a fixed order."""
    probs = habitat_distribution(config.correlation)
    jobs = []
    for split_code, split in enumerate(SPLITS):
        n = config.per_split(split)
        for c in range(NUM_CLASSES):
            habitats = np.repeat(np.arange(len(HABITATS)), habitat_quota(n, probs[c]))
            rng = np.random.default_rng([config.seed, split_code, c, 1_000_003])
            habitats = rng.permutation(habitats)
            jobs.extend(Job(split, c, i, int(h)) for i, h in enumerate(habitats))
    return jobs


def render_sample(class_index: int, habitat: int, size: int, rng: np.random.Generator):
    """One image: (uint8 RGB image, bool mask, box, uint8 clean background)."""
    background = synth_render.render_background(habitat, size, rng)
    margin = max(2, round(0.08 * size))
    half = rng.uniform(*SCALE_RANGE) * size
    while True:
        obj, obj_mask = synth_render.render_object(class_index, half, rng)
        h, w = obj_mask.shape
        fits = h <= size and w <= size
        leaves_strip = max(size - h, size - w) >= 2 * margin
        small_enough = obj_mask.sum() <= 0.9 * size * size and h * w <= 0.9 * size * size
        if fits and leaves_strip and small_enough:
            break
        half *= 0.9
    y0 = int(rng.integers(0, size - h + 1))
    x0 = int(rng.integers(0, size - w + 1))
    image = background.copy()
    mask = np.zeros((size, size), dtype=bool)
    mask[y0:y0 + h, x0:x0 + w] = obj_mask
    image[y0:y0 + h, x0:x0 + w][obj_mask] = obj[obj_mask]
    to_u8 = lambda a: np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)  # noqa: E731
    return to_u8(image), mask, mask_box(mask), to_u8(background)


def job_rng(config: SynthConfig, job: Job) -> np.random.Generator:
    """The random stream of one image: independent of order and of the number of workers."""
    return np.random.default_rng(
        [config.seed, SPLITS.index(job.split), job.class_index, job.index]
    )


def image_path(root: Path, config: SynthConfig, job: Job) -> Path:
    """Where a job's image lives in the official layout."""
    return layout.image_path(root, ORIGINAL, job.split, CLASS_FOLDERS[job.class_index], job.id, config.ext)


def mask_path(root: Path, job: Job) -> Path:
    """Where a job's foreground mask lives in the official layout."""
    return layout.mask_path(root, job.split, CLASS_FOLDERS[job.class_index], job.id)


def _make_one(args: tuple[Path, SynthConfig, Job]) -> tuple[str, tuple[int, int, int, int]]:
    root, config, job = args
    img_file, msk_file = image_path(root, config, job), mask_path(root, job)
    if img_file.exists() and msk_file.exists():  # finished earlier: both files are atomic
        return job.id, mask_box(np.load(msk_file))
    image, mask, box, _ = render_sample(job.class_index, job.habitat, config.size, job_rng(config, job))
    save_mask(msk_file, mask)  # mask first: an image on disk implies its mask is complete
    atomic_write_bytes(img_file, encode_image(image, config.fmt))
    return job.id, box


def _identity(config: SynthConfig) -> dict:
    return {
        "generator": "bgrepro.data.synth",
        "generator_version": GENERATOR_VERSION,
        **asdict(config),
        "classes": list(CLASS_FOLDERS),
        "habitats": list(HABITATS),
        "habitat_matrix": HABITAT_MATRIX.tolist(),
    }


def generate(
    out: Path, config: SynthConfig, workers: int | None = None, progress: bool = True, overwrite: bool = False
) -> Path:
    """Write the dataset to `out` (resumable; byte-identical for the same config). `out` is written whole
    or not at all (`outputs.staged_output`); one holding another config is refused unless `overwrite`."""
    out = Path(out)
    with staged_output(out, "synth", _identity(config), overwrite=overwrite, what="synthetic dataset",
                       record="synth.json") as work:
        _check_writable(work)
        remove_stale_parts(work)  # left by a run that was killed mid-write
        jobs = plan(config)
        workers = max(1, min(workers or mp.cpu_count(), len(jobs)))
        args = [(work, config, job) for job in jobs]
        boxes = dict(run_tasks(_make_one, args, workers, f"synth {out.name}", progress))
        _write_annotations(work / "annotations.csv", jobs, boxes)
    return out


def _write_annotations(path: Path, jobs: list[Job], boxes: dict) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(ANNOTATION_COLUMNS)
    for job in jobs:
        writer.writerow(
            [job.split, job.class_index, CLASS_FOLDERS[job.class_index], job.id, *boxes[job.id], job.habitat]
        )
    atomic_write_text(path, buf.getvalue())


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise PermissionError(f"{out}: output folder is not writable ({err.strerror or err})") from None


def read_annotations(root: Path) -> list[dict]:
    """Rows of a synthetic dataset's annotations.csv, with integer fields parsed."""
    path = Path(root) / "annotations.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no annotations.csv (is {root} a synthetic IN-9 dataset?)")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ANNOTATION_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path}: no {missing[0]} column (expected {', '.join(ANNOTATION_COLUMNS)})")
        rows = list(reader)
    ints = ("class_index", "xmin", "ymin", "xmax", "ymax", "habitat")
    parsed = []
    for line, row in enumerate(rows, start=2):
        try:
            values = {k: (int(row[k]) if k in ints else row[k]) for k in ANNOTATION_COLUMNS}
        except (TypeError, ValueError):
            raise ValueError(f"{path}:{line}: a missing or non-integer field") from None
        if not 0 <= values["class_index"] < NUM_CLASSES or not 0 <= values["habitat"] < len(HABITATS):
            raise ValueError(f"{path}:{line}: class_index or habitat out of range")
        parsed.append(values)
    return parsed
