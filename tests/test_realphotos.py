"""Real photographs and real ImageNet models: the packaged EfficientNet-Lite weights against their packages' own
loader, the IN-9 mapping of their predictions, photo folders (IN-9 or synset folders, broken photos), and the mask
route of the real-photo chapter on a photo with a true mask."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from bgrepro import registry
from bgrepro.analyses.masks import images_at, write_masks
from bgrepro.analyses.rps import activation_maps, estimate
from bgrepro.analyses.wsol import mask_iou, masks_from_maps
from bgrepro.book import realphotos as rp
from bgrepro.data.build import build
from bgrepro.data.photos import photo_classes, select_photos
from bgrepro.data.sources import FolderSource
from bgrepro.in9 import CLASS_FOLDERS, IMAGENET_INDICES
from bgrepro.io import read_image

SHARED = rp.SHARED
needs_photos = pytest.mark.skipif(not (SHARED / "imagenet-samples").is_dir(), reason="../shared/realphotos absent")


def _photo(name: str, side: int) -> torch.Tensor:
    """A shared photo (float (1, 3, side, side) in [0, 1]), or a seeded random image where the photos are absent."""
    import cv2

    path = SHARED / "imagenet-samples" / name
    if not path.exists():
        return torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    rgb = cv2.resize(read_image(path), (side, side), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255


@pytest.mark.parametrize("name", rp.MODELS)
def test_packaged_logits_match_the_packages_own_loader(name):
    """Our load (the package's tensors paired in order with timm's network) gives the logits of the package's own
    EfficientNet, fed (x - 127) / 128 as its authors scale inputs."""
    efficientnet_lite_pytorch = pytest.importorskip("efficientnet_lite_pytorch")
    entry = registry.PACKAGED[name]
    loaded = registry.load(name)
    assert loaded.format == "packaged" and loaded.preprocess.input_size == entry.input_size
    reference = efficientnet_lite_pytorch.EfficientNet.from_pretrained(
        name.replace("_", "-"), weights_path=str(registry.weights.packaged_weights(name))).eval()
    x = torch.cat([_photo("00_dog/n02085620_Chihuahua.JPEG", entry.input_size),
                   _photo("08_fish/n01440764_tench.JPEG", entry.input_size)])
    with torch.no_grad():
        ours, theirs = loaded.net(x), reference((255 * x - 127) / 128)
    assert ours.shape == (2, 1000)
    assert torch.allclose(ours, theirs, atol=1e-3, rtol=0)
    assert torch.equal(ours.argmax(1), theirs.argmax(1))


@needs_photos
def test_predictions_map_to_in9_as_the_paper_maps_them():
    """The IN-9 class of a photo is the class whose ImageNet indices hold the model's top-1 (the official code's
    table lookup); the photos' own ImageNet classes come out right."""
    loaded = registry.load("efficientnet_lite0")
    mapped = loaded.for_data(list(CLASS_FOLDERS), 224)
    x = torch.cat([_photo("00_dog/n02085620_Chihuahua.JPEG", 224), _photo("08_fish/n01440764_tench.JPEG", 224)])
    with torch.no_grad():
        top1 = loaded.net(torch.nn.functional.interpolate(x, size=224)).argmax(1).tolist()
        in9 = mapped.net(x).argmax(1).tolist()
    expected = [next((c for c, group in enumerate(IMAGENET_INDICES) if t in group), len(CLASS_FOLDERS)) for t in top1]
    assert in9 == expected
    assert in9 == [0, 8]  # a Chihuahua is a dog, a tench a fish


def test_packaged_weights_of_another_model_are_refused(tmp_path):
    other = registry.weights.packaged_weights("efficientnet_lite0")
    with pytest.raises(ValueError, match=str(other).replace(".", r"\.") + ".*not efficientnet_lite1"):
        registry.load("efficientnet_lite1", weights=other)


def _jpeg(path: Path, seed: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(path)


def test_photo_folders_by_in9_name_or_synset(tmp_path):
    """IN-9 class folders and ImageNet synset folders alike; synsets of none of the nine classes are left out; a
    folder that is neither is one error naming it."""
    root = tmp_path / "photos"
    for k, folder in enumerate(("00_dog", "n02085620", "n01440764", "n04326547")):  # dog, dog synset, tench, stone wall
        _jpeg(root / folder / f"img{k}.JPEG", k)
    classes = photo_classes(root)
    assert {CLASS_FOLDERS[c]: sorted(p.name for p in f) for c, f in classes.items()} == {
        "00_dog": ["00_dog", "n02085620"], "08_fish": ["n01440764"]}
    selection = select_photos(root, tmp_path / "picked" / "photos", progress=False)
    assert selection.chosen == {"00_dog": 2, "08_fish": 1} and selection.other_synsets == 1
    (root / "holiday").mkdir()
    with pytest.raises(ValueError, match="holiday: neither an IN-9 class folder"):
        photo_classes(root)


def test_a_broken_photo_is_named_and_counted_not_fatal(tmp_path):
    root = tmp_path / "photos"
    for k in range(3):
        _jpeg(root / "01_bird" / f"ok{k}.jpg", k)
    broken = root / "01_bird" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    before = sorted(p.name for p in (root / "01_bird").iterdir())
    selection = select_photos(root, tmp_path / "sel" / "photos", progress=False)
    assert selection.chosen == {"01_bird": 3}
    assert [r["path"] for r in selection.rejected] == [str(broken.resolve())]
    assert sorted(p.name for p in (root / "01_bird").iterdir()) == before  # the user's folder only read
    (root / "01_bird" / "ok0.jpg").write_bytes(b"broken since")  # a complete selection is reused, not re-read
    again = select_photos(root, tmp_path / "sel" / "photos", progress=False)
    assert again.chosen == selection.chosen and len(again.rejected) == 1
    with pytest.raises(ValueError, match="inside the photos' folder"):
        select_photos(root, root / "out", progress=False)


@needs_photos
def test_mask_route_on_a_true_mask_photo(tmp_path):
    """RPS on EfficientNet-Lite0's trunk (w* from real photos, no label) finds the bird of the true-mask photo
    better than a whole-image mask does, and its mask builds variants that keep the photo's foreground exactly."""
    truth = SHARED / "masked-pets-birds"
    images, objects, _ = rp.read_true_masks(truth)
    trunk = registry.load("efficientnet_lite0").trunk()
    files = sorted((SHARED / "imagenet-samples" / "01_bird").iterdir())[:12]
    rps = estimate(trunk, images_at(files, 224))
    bird = [t.photo for t in rp.TRUE_MASKS].index("bird_segmentation.bmp")
    found = masks_from_maps(activation_maps(trunk, images[bird:bird + 1], rps).numpy())
    whole = np.ones_like(objects[bird:bird + 1])
    assert mask_iou(found, objects[bird:bird + 1])[0] > mask_iou(whole, objects[bird:bird + 1])[0] + 0.1
    # the route: a folder of photos -> RPS masks (refined by GrabCut) -> the eight variants
    photos = tmp_path / "photos"
    for k, f in enumerate(files[:4]):
        (photos / "01_bird").mkdir(parents=True, exist_ok=True)
        shutil.copy(f, photos / "01_bird" / f.name)
        dog = sorted((SHARED / "imagenet-samples" / "00_dog").iterdir())[k]
        (photos / "00_dog").mkdir(exist_ok=True)
        shutil.copy(dog, photos / "00_dog" / dog.name)
    written = write_masks(trunk, rps, photos, tmp_path / "masks", 224, refine="grabcut", batch_size=4, progress=False)
    assert written >= 4
    report = build(FolderSource(photos, masks=tmp_path / "masks", size=224, missing_masks="reject"),
                   tmp_path / "variants", progress=False, workers=1, fmt="png")  # lossless: exactness holds
    assert sum(report.counts.values()) > 0
    from bgrepro.data.datasets import load_variant

    original = load_variant(tmp_path / "variants", "original", "val", with_masks=True)
    only_fg = load_variant(tmp_path / "variants", "only_fg", "val")
    keep = original.masks[:, None].expand_as(original.images)
    assert torch.equal(original.images[keep], only_fg.images[keep])  # the composite keeps the foreground exactly


def test_a_bad_photo_folder_stops_the_book_in_one_line_before_any_chapter(tmp_path, capsys):
    from bgrepro.book.runner import main, notebooks_dir

    (tmp_path / "photos" / "holiday").mkdir(parents=True)
    out = notebooks_dir("smoke")
    assert not out.exists()
    code = main(["run", "--data", str(tmp_path), "--synth", str(tmp_path), "--realphotos", str(tmp_path / "photos")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "holiday: neither an IN-9 class folder" in err[0]
    assert not out.exists()
    assert main(["run", "--data", str(tmp_path), "--synth", str(tmp_path), "--realphotos",
                 str(tmp_path / "absent")]) == 2
    assert "photo folder not found" in capsys.readouterr().err


def test_the_chapter_says_what_to_give_it_without_photos(tmp_path):
    ran = rp.study(tmp_path / "absent", "tiny", progress=False)
    assert ran.numbers["ran"] is False and ran.verdicts == []
    from bgrepro.book.realphotos_view import missing_words

    words = missing_words(tmp_path / "absent", "tiny")
    assert "absent is not a folder" in words and "REALPHOTOS=PATH" in words
    assert str(tmp_path) not in words  # the folder's name, never the path of the machine that built the book
    assert set(rp.column(None).values()) == {"no photos were given",
                                             "does not apply: it needs models trained on the variants"}


def test_real_photo_verdicts_an_upper_bound_and_the_independent_error_control():
    """A challenge accuracy that is an upper bound never says most foregrounds resist; most fooled is reproduced only
    below the level independent errors would give; the claims page's cell names each model."""
    from bgrepro.book import verdicts as v
    from bgrepro.book.chapter import _real_cell

    above = v.Estimate(70.0, 60.0, 80.0, "40 foregrounds")
    assert v.claim_3(above, [95.0], 11.1).verdict == v.NOT_REPRODUCED
    assert v.claim_3(above, [95.0], 11.1, upper_bound=True).verdict == v.NOT_SHOWN
    fooled = v.Estimate(10.0, 5.0, 20.0, "x")
    assert v.claim_3(fooled, [95.0], 11.1, upper_bound=True,
                     independent=v.Estimate(30.0, 25.0, 35.0, "y")).verdict == v.REPRODUCED
    assert v.claim_3(fooled, [95.0], 11.1, upper_bound=True,
                     independent=v.Estimate(0.1, 0.0, 0.5, "y")).verdict == v.NOT_SHOWN
    mixed = [v.Verdict("2", "m", "o", "p", v.REPRODUCED, "EfficientNet-Lite0: a gap"),
             v.Verdict("2", "m", "o", "p", v.INCONCLUSIVE, "EfficientNet-Lite1: masks")]
    cell = rp.column(mixed)["2"]
    assert cell == "EfficientNet-Lite0: reproduced; EfficientNet-Lite1: inconclusive"
    three = mixed + [v.Verdict("2", "m", "o", "p", v.REPRODUCED, "MobileNet v2: a gap")]
    assert rp.column(three)["2"] == "EfficientNet-Lite0, MobileNet v2: reproduced; EfficientNet-Lite1: inconclusive"
    html = _real_cell(cell)
    assert html.count("<span") == 2 and "EfficientNet-Lite1: <span" in html


needs_boxes = pytest.mark.skipif(not (SHARED / "imagenet-val-227-boxes.csv").is_file(),
                                 reason="../shared/realphotos absent")


@needs_boxes
def test_the_box_route_builds_in9_the_papers_way(tmp_path, monkeypatch):
    """Validation photos with their official boxes beside them (FOLDER-boxes.csv): a photo with several boxes is left
    out as IN-9 leaves it out (not_one_box), the others get GrabCut's mask inside their one box, and every chosen
    photo is either kept or counted with its reason; the photos' folder is only read."""
    import csv

    monkeypatch.setenv("BGREPRO_RESULTS", str(tmp_path / "results"))
    with open(SHARED / "imagenet-val-227-boxes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    photos = tmp_path / "val"
    picked = []
    for cls in ("00_dog", "01_bird"):
        single = [r for r in rows if r["file"].startswith(cls) and r["boxes_in_photo"] == "1" and 0.15 < (
            float(r["xmax"]) - float(r["xmin"])) * (float(r["ymax"]) - float(r["ymin"])) / 227 ** 2 < 0.5][:5]
        multi = next(r for r in rows if r["file"].startswith(cls) and r["boxes_in_photo"] == "2")
        picked += single + [r for r in rows if r["file"] == multi["file"]]
    for r in picked:
        (photos / Path(r["file"]).parent).mkdir(parents=True, exist_ok=True)
        shutil.copy(SHARED / "imagenet-val-227" / r["file"], photos / r["file"])
    with open(tmp_path / "val-boxes.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(picked)
    before = sorted(p.name for p in photos.rglob("*"))
    assert rp.boxes_of(photos) == tmp_path / "val-boxes.csv" and rp.routes_for(photos)[0] == "boxes"
    made = rp.photo_variants(photos, "smoke", progress=False, route="boxes")  # 20 a class: every photo chosen
    m = made.metrics
    assert m["n_photos"] == 12 and m["build_rejections"]["not_one_box"] == 2 and m["n_kept"] >= 6
    assert m["n_kept"] + sum(m["build_rejections"].values()) == m["n_photos"]
    from bgrepro.data.datasets import load_variant

    original = load_variant(made.data, "original", "val", with_masks=True)
    assert len(original) == m["n_kept"] and original.images.shape[-1] == rp.SIDE
    assert all(0 < float(mask.float().mean()) < 1 for mask in original.masks)
    assert sorted(p.name for p in photos.rglob("*")) == before
    again = rp.photo_variants(photos, "smoke", progress=False, route="boxes")  # a cached record: nothing rebuilt
    assert again.metrics == m
    # the mask check against the official boxes: the box route takes out the box itself and GrabCut stays inside it
    check = rp.mask_check(made, rp.PhotoFolder.of(photos))
    assert check["photos"] == m["n_kept"] and check["fails"] is None
    assert check["box_covered"] == pytest.approx(1.0, abs=1e-9) and check["mask_inside"] > 0.97


def test_box_rasters_for_the_mask_check():
    """Half-open float boxes (the crop's) and inclusive integer ones (a mask's) as pixels, clipped to the image."""
    import numpy as np

    half_open = rp._raster([(1.5, 2.0, 4.0, 5.0)], (8, 8))  # columns 1..3, rows 2..4
    assert half_open.sum() == 3 * 3 and half_open[2, 1] and half_open[4, 3] and not half_open[5, 3]
    inclusive = rp._raster([(1, 2, 4, 5)], (8, 8), inclusive=True)  # columns 1..4, rows 2..5
    assert inclusive.sum() == 4 * 4
    assert rp._raster([(-3.0, -3.0, 2.0, 2.0), (6.0, 6.0, 20.0, 20.0)], (8, 8)).sum() == 4 + 4
    assert not rp._raster([(9.0, 9.0, 12.0, 12.0)], (8, 8)).any() and np.dtype(bool) == half_open.dtype


def test_the_ladder_is_data_sorted_by_published_top1(tmp_path, monkeypatch):
    from bgrepro.registry import PUBLISHED_FILES

    models = tmp_path / "models"
    models.mkdir()
    for name in PUBLISHED_FILES:
        (models / name).write_bytes(b"stand-in")
    (models / "another.tflite").write_bytes(b"not in the table")
    found = rp.ladder("smoke", models)
    tops = [m.top1 for m in found]
    assert tops == sorted(tops)
    if importlib.util.find_spec("ai_edge_litert"):
        assert {m.key for m in found if not m.gradients} == {Path(n).stem for n in PUBLISHED_FILES}
        assert next(m for m in found if m.key == "mobilenet_v1_0.25_128_quant").display.startswith("MobileNet v1")
    tiny = rp.ladder("tiny", models)
    assert {m.key for m in tiny} <= {"efficientnet_lite0", "mobilenet_v1_0.25_128_quant"}


def test_a_chapter_reexecutes_when_what_it_declares_changes_and_no_other(tmp_path):
    """The runner knows no chapter by name: the real-photo chapter declares its photos and models in its front
    matter, and its stamp changes with them; a chapter that declares nothing keeps its stamp."""
    import jupytext

    from bgrepro.book.inputs import identity
    from bgrepro.book.runner import BOOK, _digest

    photos = tmp_path / "photos"
    _jpeg(photos / "00_dog" / "a.jpg", 0)
    declared = jupytext.read(BOOK / "realphotos.md").metadata["bgrepro"]["inputs"]
    assert declared == ["real photos", "real models"]
    params = {"realphotos": str(photos), "profile": "tiny"}
    real, other = (lambda: _digest(BOOK / "realphotos.md", params, declared),
                   lambda: _digest(BOOK / "datasets.md", {"profile": "tiny"}, []))
    before = real(), other()
    _jpeg(photos / "00_dog" / "b.jpg", 1)
    assert real() != before[0] and other() == before[1]
    (tmp_path / "photos-boxes.csv").write_text("file,xmin,ymin,xmax,ymax\n00_dog/a.jpg,1,1,5,5\n")
    changed = real()
    assert changed != before[0] and real() == changed
    with pytest.raises(ValueError, match="unknown chapter input 'photo'"):
        identity(["photo"], params)
    with pytest.raises(ValueError, match="unknown chapter input 'photo'"):  # said the same from the child process
        _digest(BOOK / "realphotos.md", params, ["photo"])


def test_the_runner_reads_declared_inputs_without_loading_torch(tmp_path):
    """Reading the photos and models a chapter declares loads torch; the runner does it in a child process, so that it
    does not keep 600 MB resident beside every chapter's kernel."""
    import subprocess
    import sys

    photos = tmp_path / "photos"
    _jpeg(photos / "00_dog" / "a.jpg", 0)
    code = ("import sys, json; from bgrepro.book.runner import BOOK, _digest; "
            "d = _digest(BOOK / 'realphotos.md', json.loads(sys.argv[1]), ['real photos', 'real models']); "
            "print(len(d), 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, json.dumps({"realphotos": str(photos), "profile": "tiny"})],
                          capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["64", "False"]


@needs_boxes
def test_rps_on_its_box_benchmark_chooses_on_held_out_photos_only(tmp_path, monkeypatch):
    """The trunk, side and thresholds are chosen on a held-out third; the rest is scored with intervals beside CAAM
    and the two chance rows; the verdict says RPS has no counterpart on a supervised trunk."""
    from bgrepro.book import verdicts as v

    monkeypatch.setenv("BGREPRO_RESULTS", str(tmp_path / "results"))
    bench = rp.rps_benchmark(rp.default_photos(), "tiny", progress=False)
    assert bench["n_held_out"] + bench["n_test"] == 54 and bench["n_held_out"] == 18  # 6 a class, a third held out
    assert set(bench["rows"]) == {"RPS", "CAAM (channel sum)", "chance: centre Gaussian map",
                                  "chance: whole-image box"}
    for row in bench["rows"].values():
        low, high = row["maxboxaccv2_ci95"]
        assert 0 <= low <= row["maxboxaccv2"] <= high <= 100
    chosen = max(bench["candidates"], key=lambda c: c["maxboxaccv2"])
    assert bench["chosen"] == {"trunk": chosen["trunk"], "side": chosen["side"]}
    assert {c["side"] for c in bench["candidates"]} == set(rp.BENCHMARK_SIDES)
    rows = bench["rows"]
    judged = v.claim_rps({"maxboxaccv2": rows["RPS"]["maxboxaccv2"]},
                         {"maxboxaccv2": rows["CAAM (channel sum)"]["maxboxaccv2"]}, {"maxboxaccv2": 40.0},
                         self_supervised=False, backbone="a supervised trunk")
    assert judged.verdict == v.NO_COUNTERPART and "(MaxBoxAccV2)" in judged.ours
