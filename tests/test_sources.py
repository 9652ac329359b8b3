"""Photo sources (ImageNet + VOC boxes -> GrabCut, user folders) and their errors on bad input."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
from PIL import Image

from bgrepro.data import composite
from bgrepro.data.build import build, read_manifest
from bgrepro.data.sources import FolderSource, ImageNetSource, IN9Source, open_source
from bgrepro.data.synth import render_sample
from bgrepro.in9 import CLASS_FOLDERS
from bgrepro.io import read_image


def photo(class_index: int, seed: int, width: int = 320, height: int = 272):
    """A photo-sized synthetic image (non-square), its true mask and box."""
    image, mask, _, _ = render_sample(class_index, class_index, 256, np.random.default_rng(seed))
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    mask = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)
    ys, xs = np.nonzero(mask)
    return image, mask, (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))


def voc_xml(path, size, boxes) -> None:
    objects = "".join(
        f"<object><name>x</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
        f"<ymax>{b[3]}</ymax></bndbox></object>" for b in boxes
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><size><width>{size[0]}</width><height>{size[1]}</height></size>{objects}</annotation>")


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    """ImageNet-style fixture: val/<IN-9 class>/<id>.JPEG + Annotation/<class>/<id>.xml."""
    root = tmp_path_factory.mktemp("imagenet")
    truth = {}
    for c, folder in enumerate(CLASS_FOLDERS):
        for k in range(3):
            stem = f"ILSVRC_{c}_{k}"
            image, mask, box = photo(c, seed=100 * c + k)
            (root / "val" / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / "val" / folder / f"{stem}.JPEG", quality=95)
            boxes = [box]
            if c == 0 and k == 2:
                boxes = [box, (0, 0, 20, 20)]  # two boxes: not_one_box
            if c == 1 and k == 2:
                boxes = [(0, 0, 319, 271)]  # the whole photo: box_too_large
            if c == 2 and k == 2:
                boxes = [(0, 10, 30, 60)]  # far left, outside the center crop: box_outside_crop
            voc_xml(root / "Annotation" / folder / f"{stem}.xml", (320, 272), boxes)
            truth[stem] = mask
    return root, truth


def test_imagenet_source_runs_the_papers_procedure(imagenet, tmp_path):
    root, truth = imagenet
    report = build(ImageNetSource(root, root / "Annotation"), tmp_path / "out", workers=2, progress=False)
    assert report.rejections == {"not_one_box": 1, "box_too_large": 1, "box_outside_crop": 1}
    rows = read_manifest(tmp_path / "out")
    originals = [r for r in rows if r["variant"] == "original"]
    assert len(originals) == 27 - 3
    rejected = list(csv.DictReader(open(tmp_path / "out" / "rejections.csv")))
    assert {r["reason"] for r in rejected} == {"not_one_box", "box_too_large", "box_outside_crop"}
    ious = []
    for r in originals:
        image = read_image(tmp_path / "out" / r["path"])
        assert image.shape == (224, 224, 3)
        got = np.load(tmp_path / "out" / "fg_mask" / "val" / CLASS_FOLDERS[int(r["label"])] / f"{r['fg_id']}.npy")
        true8, _ = composite.resize_center_crop(truth[r["fg_id"]].astype(np.uint8) * 255, [], 256, 224)
        true = true8 > 127
        ious.append((got & true).sum() / (got | true).sum())
    print(f"GrabCut vs true mask: mean IoU {np.mean(ious):.3f} over {len(ious)} images")
    assert np.mean(ious) > 0.6, f"GrabCut masks should mostly find the object, mean IoU {np.mean(ious):.2f}"
    assert all(r["path"].endswith(".jpg") for r in rows if r["variant"] != "fg_mask")


def test_grabcut_is_deterministic_and_filters_small_foregrounds():
    image, _, box = photo(3, seed=1)
    a = composite.extract_foreground(image, [box])
    b = composite.extract_foreground(image, [box])
    np.testing.assert_array_equal(a[2], b[2])
    with pytest.raises(composite.Rejected) as info:
        composite.extract_foreground(image, [box], min_foreground_fraction=1.01)
    assert info.value.reason == "grabcut_too_small"


def _folder_with_masks(root, masks, classes=("benign", "malignant"), per_class=3, size=64):
    for c, name in enumerate(classes):
        for k in range(per_class):
            image, mask, _, _ = render_sample(c + 2 * k, (c + k) % 9, size, np.random.default_rng([c, k]))
            (root / name).mkdir(parents=True, exist_ok=True)
            (masks / name).mkdir(parents=True, exist_ok=True)
            img = Image.fromarray(image)
            if k == 1:
                img = img.convert("L")  # grayscale is converted, not rejected
            if k == 2:
                img = img.convert("RGBA")
            img.save(root / name / f"{name}_{k}.png")
            Image.fromarray(mask.astype(np.uint8) * 255).save(masks / name / f"{name}_{k}.png")


def test_folder_source_with_masks_any_classes(tmp_path):
    _folder_with_masks(tmp_path / "imgs", tmp_path / "masks")
    source = open_source("folder", tmp_path / "imgs", masks=tmp_path / "masks", size=48)
    assert source.classes == ("benign", "malignant") and source.splits() == ["val"]
    build(source, tmp_path / "out", workers=1, progress=False)
    rows = read_manifest(tmp_path / "out")
    nxt = [r for r in rows if r["variant"] == "mixed_next"]
    assert len(nxt) == 6 and all(int(r["bg_class"]) == 1 - int(r["fg_class"]) for r in nxt)
    assert read_image(tmp_path / "out" / nxt[0]["path"]).shape == (48, 48, 3)


def test_folder_source_with_box_csv(tmp_path):
    root = tmp_path / "imgs"
    rows = []
    for c, name in enumerate(("cat", "dog")):
        for k in range(2):
            image, _, box = photo(4 * c, seed=k, width=240, height=240)
            (root / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / name / f"{name}{k}.jpg")
            rows.append([f"{name}/{name}{k}.jpg", *box])
    with open(tmp_path / "boxes.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "xmin", "ymin", "xmax", "ymax"], *rows])
    report = build(FolderSource(root, boxes=tmp_path / "boxes.csv"), tmp_path / "out", workers=1, progress=False)
    assert report.counts["mixed_rand", "val"] == 4 and not report.rejections


# ----------------------------------------------------------------------------- bad input


def _in9(root, n=2):
    for split in ("val",):
        for c, folder in enumerate(CLASS_FOLDERS):
            for k in range(n):
                image, mask, _, _ = render_sample(c, c, 32, np.random.default_rng([c, k]))
                (root / "original" / split / folder).mkdir(parents=True, exist_ok=True)
                (root / "fg_mask" / split / folder).mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(root / "original" / split / folder / f"im{c}_{k}.JPEG", quality=95)
                np.save(root / "fg_mask" / split / folder / f"im{c}_{k}.npy", mask)
    return root


def _build_error(source, tmp_path):
    with pytest.raises((ValueError, FileNotFoundError)) as info:
        build(source, tmp_path / "out", workers=1, progress=False)
    return str(info.value)


def test_truncated_image_names_the_file(tmp_path):
    root = _in9(tmp_path / "in9")
    bad = root / "original" / "val" / "03_reptile" / "im3_0.JPEG"
    bad.write_bytes(bad.read_bytes()[:200])
    message = _build_error(IN9Source(root), tmp_path)
    assert str(bad) in message and "truncated" in message


@pytest.mark.parametrize(
    "mask, expected",
    [(np.zeros((16, 32), bool), "mask is 32x16 but its image is 32x32"),
     (np.zeros((32, 32), bool), "mask is empty"),
     (np.ones((32, 32), bool), "covers the whole image")],
)
def test_bad_masks_name_the_file(tmp_path, mask, expected):
    root = _in9(tmp_path / "in9")
    bad = root / "fg_mask" / "val" / "05_insect" / "im5_1.npy"
    np.save(bad, mask)
    message = _build_error(IN9Source(root), tmp_path)
    assert str(bad) in message and expected in message
    assert not (tmp_path / "out" / "manifest.csv").exists()
    assert not list((tmp_path / "out").rglob("*.part"))


def test_missing_and_unknown_class_folders(tmp_path):
    root = _in9(tmp_path / "in9", n=1)
    (root / "original" / "val" / "10_cat").mkdir()
    assert "10_cat: unknown class folder" in _build_error(IN9Source(root), tmp_path)
    (root / "original" / "val" / "10_cat").rmdir()
    for f in (root / "original" / "val" / "08_fish").iterdir():
        f.unlink()
    (root / "original" / "val" / "08_fish").rmdir()
    assert "08_fish: missing class folder" in _build_error(IN9Source(root), tmp_path)


def test_duplicate_ids_and_box_outside(tmp_path):
    _folder_with_masks(tmp_path / "imgs", tmp_path / "masks", per_class=1)
    dup = tmp_path / "imgs" / "benign" / "benign_0.jpg"  # the same stem twice in one class folder
    Image.open(tmp_path / "imgs" / "benign" / "benign_0.png").save(dup)
    message = _build_error(FolderSource(tmp_path / "imgs", masks=tmp_path / "masks"), tmp_path)
    assert "duplicate id 'benign_0'" in message and "benign_0." in message

    root = tmp_path / "boxed"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir(parents=True)
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(root / "a" / "x.png")
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(root / "b" / "y.png")
    (tmp_path / "boxes.csv").write_text("path,xmin,ymin,xmax,ymax\na/x.png,5,5,60,30\nb/y.png,1,1,9,9\n")
    message = _build_error(FolderSource(root, boxes=tmp_path / "boxes.csv"), tmp_path)
    assert str(root / "a" / "x.png") in message and "outside the 40x40 image" in message


def _ilsvrc_xml(path, size, wnid, box) -> None:
    """A VOC XML as ILSVRC ships them: the object's name is its wnid."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><size><width>{size[0]}</width><height>{size[1]}</height></size><object>"
                    f"<name>{wnid}</name><bndbox><xmin>{box[0]}</xmin><ymin>{box[1]}</ymin><xmax>{box[2]}</xmax>"
                    f"<ymax>{box[3]}</ymax></bndbox></object></annotation>")


@pytest.fixture(scope="module")
def ilsvrc(tmp_path_factory):
    """ImageNet in its real (Kaggle) layout: ILSVRC/Data/CLS-LOC/train/<wnid>/<wnid>_<k>.JPEG with XMLs in
    ILSVRC/Annotations/CLS-LOC/train/<wnid>/, a flat val/ folder, and LOC_val_solution.csv at the top.
    One wnid per IN-9 class (the first of each), one wnid under no IN-9 class (abacus), and one training
    image per class without a box (IN-9L keeps it; IN-9 cannot)."""
    from bgrepro.in9 import IMAGENET_WNIDS

    top = tmp_path_factory.mktemp("kaggle")
    data, notes = top / "ILSVRC" / "Data" / "CLS-LOC", top / "ILSVRC" / "Annotations" / "CLS-LOC"
    wnids = [group[0] for group in IMAGENET_WNIDS] + ["n02666196"]  # abacus: under no IN-9 class
    solution = ["ImageId,PredictionString"]
    n = 0
    for c, wnid in enumerate(wnids):
        for k in range(4):
            image, _, box = photo(c % 9, 100 * c + k)
            path = data / "train" / wnid / f"{wnid}_{k}.JPEG"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(path, quality=95)
            if k < 3:  # the fourth has no box
                _ilsvrc_xml(notes / "train" / wnid / f"{wnid}_{k}.xml", image.shape[1::-1], wnid, box)
        for k in range(2):
            n += 1
            image, _, box = photo(c % 9, 5000 + 10 * c + k)
            stem = f"ILSVRC2012_val_{n:08d}"
            (data / "val").mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(data / "val" / f"{stem}.JPEG", quality=95)
            solution.append(f"{stem},{wnid} {' '.join(map(str, box))}")
    (top / "LOC_val_solution.csv").write_text("\n".join(solution) + "\n")
    return top, data, notes


def test_imagenet_rebuild_from_its_real_layout(ilsvrc, tmp_path, capsys):
    from bgrepro.cli import main

    top, data, notes = ilsvrc
    out = tmp_path / "in9"
    assert main(["build", "--source", "imagenet", "--in", str(data), "--boxes", str(notes), "--out", str(out),
                 "--workers", "2"]) == 0
    rows = read_manifest(out)
    original = [r for r in rows if r["variant"] == "original"]
    by_split = {s: [r for r in original if r["split"] == s] for s in ("train", "val")}
    # the abacus is skipped; boxless training images are rejected as having no box (not one box)
    rejected = list(csv.DictReader(open(out / "rejections.csv")))
    assert {r["reason"] for r in rejected if r["id"].endswith("_3")} == {"not_one_box"}
    assert len(by_split["train"]) + sum(r["split"] == "train" for r in rejected) == 9 * 4
    assert len(by_split["val"]) + sum(r["split"] == "val" for r in rejected) == 9 * 2
    assert len(by_split["val"]) >= 12  # the val classes and boxes come from LOC_val_solution.csv
    # the wnid's WordNet ancestry names the IN-9 class: a Chihuahua is a dog
    chihuahua = [r for r in original if "n02085620" in r["path"]]
    assert chihuahua and all(r["path"].split("/")[2] == "00_dog" for r in chihuahua)
    assert (out / "mixed_rand" / "val").is_dir() and (out / "fg_mask" / "train").is_dir()
    # IN-9L: every training image of the IN-9 classes, boxes or not, Original only
    in9l = tmp_path / "in9l"
    assert main(["build", "--source", "imagenet", "--in", str(data), "--in9l", "--splits", "train",
                 "--out", str(in9l), "--workers", "2"]) == 0
    files = sorted(p.relative_to(in9l).as_posix() for p in (in9l / "original").rglob("*.jpg"))
    assert len(files) == 9 * 4 and not (in9l / "fg_mask").exists() and not (in9l / "only_bg_t").exists()
    assert {read_image(in9l / f).shape for f in files} == {(224, 224, 3)}
    capsys.readouterr()
    assert main(["build", "--source", "imagenet", "--in", str(data), "--in9l", "--variants", "only_bg_t",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "only the original variant" in capsys.readouterr().err


def test_imagenet_flat_val_takes_classes_from_the_xml_object_names(ilsvrc, tmp_path):
    top, data, notes = ilsvrc
    flat = tmp_path / "val_only"
    (flat / "val").mkdir(parents=True)
    xml_dir = tmp_path / "xml"
    for jpeg in sorted((data / "val").glob("*.JPEG"))[:6]:
        (flat / "val" / jpeg.name).write_bytes(jpeg.read_bytes())
    solution = {r["ImageId"]: r["PredictionString"].split() for r in csv.DictReader(open(top / "LOC_val_solution.csv"))}
    for stem in [p.stem for p in (flat / "val").glob("*.JPEG")]:
        wnid, *box = solution[stem]
        image = read_image(flat / "val" / f"{stem}.JPEG")
        _ilsvrc_xml(xml_dir / "val" / f"{stem}.xml", image.shape[1::-1], wnid, [int(v) for v in box])
    records = ImageNetSource(flat, xml_dir).records("val")
    assert [r.label for r in records] == [0, 0, 1, 1, 2, 2]  # the first IN-9 classes' wnids, in val order
    (xml_dir / "val" / f"{records[0].id}.xml").unlink()
    with pytest.raises(ValueError, match="no class for this image"):
        ImageNetSource(flat, xml_dir).records("val")


def test_real_photo_files_read_upright_and_in_their_true_tones(tmp_path):
    """EXIF orientation applied first; 16-bit grey scaled (not clipped to white); grey+alpha on white."""
    upright = np.zeros((30, 50, 3), dtype=np.uint8)
    upright[:10, :, 0] = 255  # a red band along the top of the photo as a viewer shows it
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright, k=1)))  # the camera stored it rotated
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    stored.save(tmp_path / "rotated.jpg", exif=exif, quality=100)
    shown = read_image(tmp_path / "rotated.jpg")
    assert shown.shape == (30, 50, 3)
    assert shown[:8, :, 0].mean() > 200 and shown[12:, :, 0].mean() < 50
    ramp = (np.arange(64, dtype=np.uint16)[None].repeat(8, 0) * 1024)  # 0 .. 64512 of 65535
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    grey = read_image(tmp_path / "deep.png")
    assert grey.shape == (8, 64, 3) and grey[0, 0, 0] == 0 and grey[0, -1, 0] == round(64512 * 255 / 65535)
    assert 120 <= grey[0, 32, 0] <= 130  # mid-grey stays mid-grey
    la = Image.fromarray(np.stack([np.full((4, 4), 0, np.uint8), np.full((4, 4), 0, np.uint8)], axis=2), "LA")
    la.save(tmp_path / "clear.png")
    assert (read_image(tmp_path / "clear.png") == 255).all()  # fully transparent black -> the white backdrop
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    cmyk = read_image(tmp_path / "cmyk.jpg")
    assert cmyk[..., 0].mean() > 200 and cmyk[..., 1].mean() < 60  # red stays red


def test_folder_without_splits_gets_a_seeded_stratified_split(tmp_path, capsys):
    from bgrepro.cli import main

    root, masks = tmp_path / "photos", tmp_path / "masks"
    sizes = {"cat": 10, "train": 5, "dog": 3}  # a class literally named `train`, and a small class
    for c, (name, n) in enumerate(sizes.items()):
        for k in range(n):
            image, mask, _ = photo(c, 40 * c + k, 96, 80)
            (root / name).mkdir(parents=True, exist_ok=True)
            (masks / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / name / f"img_{k}.png")
            np.save(masks / name / f"img_{k}.npy", mask)
    source = FolderSource(root, masks=masks, size=64, val_fraction=0.3, split_seed=7)
    assert source.classes == ("cat", "dog", "train") and source.splits() == ["train", "val"]
    val = [r for r in source.records("val")]
    train = [r for r in source.records("train")]
    counts = {c: sum(r.label == k for r in val) for k, c in enumerate(source.classes)}
    assert counts == {"cat": 3, "dog": 1, "train": 2} and len(val) + len(train) == 18
    again = FolderSource(root, masks=masks, size=64, val_fraction=0.3, split_seed=7)
    assert [r.image_path for r in again.records("val")] == [r.image_path for r in val]  # seeded
    other = FolderSource(root, masks=masks, size=64, val_fraction=0.3, split_seed=8)
    assert [r.image_path for r in other.records("val")] != [r.image_path for r in val]
    assert FolderSource(root, masks=masks, size=64).splits() == ["val"]  # no option: all test data, as before
    out = tmp_path / "built"
    assert main(["build", "--source", "folder", "--in", str(root), "--masks", str(masks), "--out", str(out),
                 "--size", "64", "--val-fraction", "0.3", "--variants", "only_bg_t", "--workers", "1"]) == 0
    assert (out / "original" / "train" / "train").is_dir() and (out / "original" / "val" / "cat").is_dir()
    capsys.readouterr()
    assert main(["build", "--source", "folder", "--in", str(root), "--masks", str(masks), "--out", str(out) + "x",
                 "--val-fraction", "nan"]) == 2
    assert "--val-fraction" in capsys.readouterr().err


def test_grabcut_runs_at_working_resolution_whatever_the_output_size(tmp_path):
    """Masks from tight boxes agree with the true masks at 64 px as well as at 224 px (GrabCut runs at
    224 px and the result is brought down), and no more images are lost to the filters at 64 px."""
    root = tmp_path / "photos"
    rows = ["path,xmin,ymin,xmax,ymax"]
    truth = {}
    for c in range(3):
        for k in range(4):
            image, mask, box = photo(c, 900 + 10 * c + k)
            (root / f"class{c}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / f"class{c}" / f"p{k}.png")
            rows.append(f"class{c}/p{k}.png,{','.join(map(str, box))}")
            truth[c, f"p{k}"] = mask
    (tmp_path / "boxes.csv").write_text("\n".join(rows) + "\n")
    ious, kept = {}, {}
    for side in (224, 64):
        source = FolderSource(root, boxes=tmp_path / "boxes.csv", size=side)
        scores, n = [], 0
        for record in source.records("val"):
            try:
                sample = source.load(record)
            except composite.Rejected:
                continue
            n += 1
            true = truth[record.label, record.id].astype(np.uint8) * 255
            true, _ = composite.resize_center_crop(true, [], source.resize, source.crop)
            true = true > 127
            scores.append((sample.mask & true).sum() / (sample.mask | true).sum())
            assert sample.image.shape == (side, side, 3) and sample.mask.shape == (side, side)
        ious[side], kept[side] = float(np.mean(scores)), n
    assert kept[64] == kept[224] >= 10
    assert ious[224] > 0.7 and abs(ious[64] - ious[224]) < 0.05, ious


def test_the_papers_filters_are_options(tmp_path, capsys):
    from bgrepro.cli import main

    root = tmp_path / "photos"
    rows = ["path,xmin,ymin,xmax,ymax"]
    for c in range(2):
        for k in range(3):
            image, _, box = photo(c, 700 + 10 * c + k)
            (root / f"class{c}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / f"class{c}" / f"p{k}.png")
            if k == 0:  # a generous box: about 92% of the center crop (whose side is 224/256 of the height)
                h, w = image.shape[:2]
                box = (round(w / 2 - 0.42 * h), round(0.08 * h), round(w / 2 + 0.42 * h), round(0.92 * h))
            rows.append(f"class{c}/p{k}.png,{','.join(map(str, box))}")
    (tmp_path / "boxes.csv").write_text("\n".join(rows) + "\n")
    base = ["build", "--source", "folder", "--in", str(root), "--boxes", str(tmp_path / "boxes.csv"),
            "--variants", "only_bg_t", "--workers", "1", "--size", "64"]
    assert main([*base, "--out", str(tmp_path / "paper")]) == 0
    rejected = list(csv.DictReader(open(tmp_path / "paper" / "rejections.csv")))
    assert sorted(r["reason"] for r in rejected) == ["box_too_large", "box_too_large"]
    assert "box_too_large 2" in capsys.readouterr().out  # the summary says what was left out and why
    assert main([*base, "--out", str(tmp_path / "loose"), "--max-box-fraction", "0.97"]) == 0
    assert not list(csv.DictReader(open(tmp_path / "loose" / "rejections.csv")))
    capsys.readouterr()
    # the thresholds are part of what an output depends on
    assert main([*base, "--out", str(tmp_path / "loose")]) == 2
    assert "filters" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad:
        main([*base, "--out", str(tmp_path / "x"), "--min-foreground-fraction", "1.5"])
    assert bad.value.code == 2 and "--min-foreground-fraction" in capsys.readouterr().err
    assert main(["build", "--source", "synthetic", "--in", str(tmp_path), "--out", str(tmp_path / "s"),
                 "--max-box-fraction", "0.5"]) == 2
    assert "--max-box-fraction goes with an imagenet or folder source" in capsys.readouterr().err
    for option, value, which in (("--val-fraction", "0.2", "a folder"), ("--in9l", None, "an imagenet")):
        args = ["build", "--source", "synthetic", "--in", str(tmp_path), "--out", str(tmp_path / "s"), option]
        assert main(args + ([value] if value else [])) == 2  # refused, never silently ignored
        assert f"{option} goes with {which} source" in capsys.readouterr().err and not (tmp_path / "s").exists()
