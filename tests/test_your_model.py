"""Your model, as it is (issue 23): every common format read from the file, classes and preprocessing from
the model or options, predictions made outside bgrepro scored number for number, Grad-CAM for any PyTorch
model. The tests make their own models: random weights, saved the usual ways."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from bgrepro.cli import main
from bgrepro.data.datasets import list_variant, load_variant
from bgrepro.inference import Inference
from bgrepro.registry import detect_format, load
from tests.conftest import model_for_data as load_for_data

SIDE = 32


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_variants):
    """A ResNet-18 (torchvision, random weights, 9 outputs) saved as a state dict, TorchScript, torch.export
    and ONNX, with the class names file of its outputs."""
    root = tmp_path_factory.mktemp("formats")
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=9).eval()
    x = torch.rand(2, 3, SIDE, SIDE)
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}},
               root / "resnet18.pth")  # as a DataParallel training loop saves it
    torch.jit.save(torch.jit.trace(net, x), root / "resnet18.torchscript.pt")
    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.export.save(torch.export.export(net, (x,), dynamic_shapes=({0: batch},)), root / "resnet18.pt2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), root / "resnet18.onnx", input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": {0: "n"}, "logits": {0: "n"}}, dynamo=False)
    from bgrepro.layout import class_folders

    (root / "classes.txt").write_text("\n".join(class_folders(tiny_variants)) + "\n")
    return root


PREP = ["--input-size", str(SIDE), "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"]


def _logits(model, images):
    return Inference.at("cpu").logits(Inference.at("cpu").prepare(model), images)


def test_every_format_is_read_from_the_file_and_predicts_the_same(saved, tiny_variants):
    assert [detect_format(saved / n) for n in ("resnet18.pth", "resnet18.torchscript.pt", "resnet18.pt2",
                                               "resnet18.onnx")] == ["state_dict", "torchscript", "export", "onnx"]
    images = load_variant(tiny_variants, "original", "val").images
    logits = {}
    for name in ("resnet18.pth", "resnet18.torchscript.pt", "resnet18.pt2", "resnet18.onnx"):
        loaded = load_for_data(tiny_variants, saved / name, arch="resnet18", input_size=SIDE,
                               mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
        assert loaded.class_mapping.startswith("assumed")  # none carries class names: the folders' order, said
        logits[name] = _logits(loaded.net, images)
    reference = logits["resnet18.pth"]
    for name in ("resnet18.torchscript.pt", "resnet18.pt2"):
        assert torch.allclose(logits[name], reference, atol=1e-4), name
    assert torch.equal(logits["resnet18.onnx"].argmax(1), reference.argmax(1))  # the same class on every image
    # no file carries its preprocessing: every format's is the same assumption, said so
    for name in ("resnet18.pth", "resnet18.torchscript.pt", "resnet18.pt2", "resnet18.onnx"):
        assert load(saved / name, "resnet18").preprocess.source.startswith("assumed"), name
    with pytest.raises(ValueError, match="`arch`"):
        load(saved / "resnet18.pth")
    with pytest.raises(ValueError, match="do not fit resnet50"):
        load(saved / "resnet18.pth", "resnet50")


def test_the_predictions_route_equals_the_in_process_route_number_for_number(saved, tiny_variants, tmp_path,
                                                                              capsys):
    common = ["--data", str(tiny_variants), "--bootstrap", "300", "--json"]
    assert main(["eval", "--checkpoint", str(saved / "resnet18.pth"), "--arch", "resnet18", *PREP, *common,
                 "--record", str(tmp_path / "model.json")]) == 0
    in_process = json.loads(capsys.readouterr().out)
    assert main(["eval", "--data", str(tiny_variants), "--list-images"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0] == "path" and len(listing) - 1 == sum(in_process["n"].values())
    loaded = load_for_data(tiny_variants, saved / "resnet18.pth", arch="resnet18", input_size=SIDE,
                           mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    from bgrepro.io import read_image

    rows, logit_rows = ["path,prediction"], []
    classes = json.loads(json.dumps(in_process["classes"]))
    for path in listing[1:]:
        image = torch.from_numpy(read_image(tiny_variants / path)).permute(2, 0, 1)[None]
        out = _logits(loaded.net, image)[0]
        rows.append(f"{path},{classes[int(out.argmax())]}")
        logit_rows.append([path, *map(float, out)])
    (tmp_path / "preds.csv").write_text("\n".join(rows) + "\n")
    header = "path," + ",".join(classes)
    (tmp_path / "logits.csv").write_text(header + "\n" + "\n".join(
        ",".join([p] + [repr(v) for v in vals]) for p, *vals in logit_rows) + "\n")
    for table in ("preds.csv", "logits.csv"):
        assert main(["eval", "--predictions", str(tmp_path / table), *common,
                     "--record", str(tmp_path / f"{table}.json")]) == 0
        outside = json.loads(capsys.readouterr().out)
        for key in ("accuracy", "per_class", "n", "bg_gap", "ci95", "bg_gap_ci95", "finegrained"):
            assert outside[key] == in_process[key], (table, key)
    partial = tmp_path / "partial.csv"
    partial.write_text("\n".join(rows[:-5]) + "\n")
    assert main(["eval", "--predictions", str(partial), *common, "--record", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err
    assert f"no prediction for 5 of {len(listing) - 1} images" in err and "--list-images" in err


def test_a_class_map_scores_a_1000_output_model_on_a_three_class_folder(tiny_variants, tmp_path, capsys):
    from bgrepro.layout import class_folders

    three = tmp_path / "three"
    keep = class_folders(tiny_variants)[:3]
    for variant in ("original", "mixed_same", "mixed_rand"):
        for c in keep:
            shutil.copytree(tiny_variants / variant / "val" / c, three / variant / "val" / c)
    torch.manual_seed(1)
    net = torchvision.models.resnet18().eval()  # 1000 outputs
    torch.save(net.state_dict(), tmp_path / "imagenet18.pth")
    mapping = {"0": keep[0], "1": keep[0], "207": keep[1], "409": keep[2], "700": keep[2]}
    (tmp_path / "map.json").write_text(json.dumps(mapping))
    assert main(["eval", "--data", str(three), "--checkpoint", str(tmp_path / "imagenet18.pth"), "--arch", "resnet18",
                 "--class-map", str(tmp_path / "map.json"), "--bootstrap", "0", "--json", *PREP]) == 0
    result = json.loads(capsys.readouterr().out)
    assert "5 of 1000 outputs mapped" in result["class_mapping"]
    prep = load(tmp_path / "imagenet18.pth", "resnet18")
    from bgrepro.registry import Preprocess
    from bgrepro.registry.adapters import Prepared

    raw = Prepared(prep.net, Preprocess(SIDE, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))
    images = load_variant(three, "original", "val")
    top = _logits(raw, images.images).argmax(1)
    mapped = np.array([keep.index(mapping[str(int(t))]) if str(int(t)) in mapping else -1 for t in top])
    assert result["accuracy"]["original"] == pytest.approx(float((mapped == images.labels.numpy()).mean()))
    # a model whose outputs fit nothing: one line naming both counts
    torch.save(torchvision.models.resnet18(num_classes=5).state_dict(), tmp_path / "five.pth")
    assert main(["eval", "--data", str(three), "--checkpoint", str(tmp_path / "five.pth"), "--arch", "resnet18",
                 *PREP]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "5 outputs" in err[0] and "3 classes" in err[0]


def test_a_hugging_face_classifier_from_save_pretrained(tiny_variants, tmp_path, capsys):
    from transformers import ResNetConfig, ResNetForImageClassification, ViTImageProcessor

    from bgrepro.layout import class_folders

    classes = list(class_folders(tiny_variants))
    shuffled = classes[::-1]  # the model's outputs in another order than the folders: matched by name
    config = ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=9,
                          id2label=dict(enumerate(shuffled)), label2id={c: k for k, c in enumerate(shuffled)})
    torch.manual_seed(2)
    model = ResNetForImageClassification(config).eval()
    folder = tmp_path / "hf"
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": SIDE, "width": SIDE}, image_mean=[0.5, 0.5, 0.5],
                      image_std=[0.25, 0.25, 0.25]).save_pretrained(folder)
    assert detect_format(folder) == "huggingface"
    loaded = load_for_data(tiny_variants, folder)
    assert loaded.preprocess.mean == (0.5, 0.5, 0.5) and loaded.preprocess.input_size == SIDE
    assert "by name" in loaded.class_mapping
    images = load_variant(tiny_variants, "original", "val").images
    ours = _logits(loaded.net, images)
    with torch.no_grad():
        theirs = model(pixel_values=(images.float() / 255 - 0.5) / 0.25).logits
    assert torch.equal(ours.argmax(1), torch.tensor([classes.index(shuffled[k]) for k in theirs.argmax(1)]))
    assert main(["saliency", "--data", str(tiny_variants), "--checkpoint", str(folder), "--per-class", "2",
                 "--json"]) == 0  # Grad-CAM reaches a Hugging Face network's last stage
    assert 0 <= json.loads(capsys.readouterr().out)["foreground_share"] <= 1
    assert main(["eval", "--data", str(tiny_variants), "--checkpoint", "someone/no-such-model", "--offline"]) == 2
    assert "no-such-model" in capsys.readouterr().err


def test_gradcam_for_any_pytorch_model_and_a_vit(saved, tiny_variants, capsys):
    import timm

    from bgrepro.analyses.saliency import gradcam, gradcam_layer
    from bgrepro.registry import from_module

    torch.manual_seed(3)
    vit = timm.create_model("vit_tiny_patch16_224", img_size=SIDE, patch_size=8, num_classes=9).eval()
    model = from_module(vit).for_data(list(load_variant(tiny_variants, "original", "val").classes), SIDE).net
    layer = gradcam_layer(model, probe=torch.rand(1, 3, SIDE, SIDE))
    assert layer is vit.blocks[-1].norm1  # the last block's tokens
    images = load_variant(tiny_variants, "original", "val").images[:6]
    maps = gradcam(model, images)
    assert maps.shape == (6, SIDE, SIDE) and (maps >= 0).all() and (maps.flatten(1).amax(1) > 0).sum() >= 3
    named = gradcam(model, images, layer="blocks.3.norm1")
    assert maps.shape == named.shape
    with pytest.raises(ValueError, match="no such module"):
        gradcam(model, images, layer="blocks.99")
    onnx = ["saliency", "--data", str(tiny_variants), "--checkpoint", str(saved / "resnet18.onnx"), *PREP]
    assert main(onnx) == 2  # no gradients: said in one line (beside the note on the assumed class order)
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if not ln.startswith("note:")]
    assert len(err) == 1 and "Grad-CAM needs" in err[0]
    # the challenge runs on any format, ONNX included
    assert main(["challenge", "--data", str(tiny_variants), "--checkpoint", str(saved / "resnet18.onnx"), *PREP,
                 "--json"]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["challenge_accuracy"] <= 1


def test_list_variant_paths_are_what_predictions_name(tiny_variants):
    items = list_variant(tiny_variants, "mixed_rand", "val")
    assert all(Path(p).relative_to(tiny_variants).parts[:2] == ("mixed_rand", "val") for p, _ in items)


def test_report_gives_the_same_numbers_for_a_model_in_any_form(tmp_path, capsys):
    """One model, one number: a timm network's state dict (with --arch), TorchScript and ONNX of the same weights,
    given the same options (here none: nothing is taken from timm's pretrained configuration of the
    architecture, which describes its ImageNet weights, not these), give the same report."""
    import timm

    from tests.test_report import make_photos

    photos = make_photos(tmp_path / "p" / "photos", per_class=4)
    torch.manual_seed(4)
    net = timm.create_model("mobilenetv3_small_050", num_classes=3).eval()
    x = torch.rand(2, 3, 32, 32)
    torch.save(net.state_dict(), tmp_path / "m.pth")
    torch.jit.save(torch.jit.trace(net, x), tmp_path / "m.torchscript.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), tmp_path / "m.onnx", input_names=["images"], dynamic_axes={"images": {0: "n"}},
                          dynamo=False)
    outside = ["report", "--images", str(photos), "--boxes", str(tmp_path / "p" / "boxes.csv"), "--size", "32",
               "--bootstrap", "100", "--min-foreground-fraction", "0.01", "--json"]
    reports = {}
    for name in ("m.pth", "m.torchscript.pt", "m.onnx"):
        arch = ["--arch", "mobilenetv3_small_050"] if name == "m.pth" else []
        assert main([*outside, *arch, "--checkpoint", str(tmp_path / name), "--out", str(tmp_path / f"r-{name}")]) \
            == 0, name
        reports[name] = json.loads(capsys.readouterr().out)["models"][0]
    keys = ("accuracy", "accuracy_ci95", "per_class", "bg_gap", "finegrained", "challenge_accuracy")
    for name in ("m.torchscript.pt", "m.onnx"):
        for key in keys:
            assert reports[name][key] == reports["m.pth"][key], (name, key)
        for key in ("mean", "std", "interpolation"):  # the ONNX graph also carries its side (32 px, the data's)
            assert reports[name]["training"]["preprocess"][key] == reports["m.pth"]["training"]["preprocess"][key]
    assert reports["m.pth"]["training"]["preprocess"]["input_size"] is None  # the data's size, not timm's 224
    assert reports["m.pth"]["training"]["preprocess"]["source"].startswith("assumed")
    # what a command's user may pass to say otherwise is named by its option, as the library names its parameter
    said = {name: (r["training"]["preprocess"]["source"], r["training"]["class_mapping"]) for name, r in reports.items()
            }
    assert "--input-size" in said["m.pth"][0] and "`input_size`" not in said["m.pth"][0]
    assert all("--classes FILE" in mapping and "`classes`" not in mapping for _, mapping in said.values())
    assert "`input_size`" in load(tmp_path / "m.pth", "mobilenetv3_small_050").info()["preprocess"]["source"]
    assert reports["m.pth"]["skipped"] == []  # Grad-CAM ran on the state dict's network
    assert reports["m.onnx"]["foreground_share"] is None and "Grad-CAM needs" in reports["m.onnx"]["skipped"][0]
    # predictions made outside: list the images, score them, report on the predictions
    out = tmp_path / "r-predictions"
    assert main([*outside, "--out", str(out), "--list-images"]) == 0
    capsys.readouterr()
    listing = (out / "images.csv").read_text().splitlines()[1:]
    built = (out / "data" / listing[0]).stat().st_ino
    loaded = load_for_data(out / "data", tmp_path / "m.pth", arch="mobilenetv3_small_050")
    from bgrepro.io import read_image
    from bgrepro.layout import class_folders

    classes = class_folders(out / "data")
    rows = ["path,prediction"]
    for path in listing:
        image = torch.from_numpy(read_image(out / "data" / path)).permute(2, 0, 1)[None]
        rows.append(f"{path},{classes[int(_logits(loaded.net, image)[0].argmax())]}")
    (tmp_path / "preds.csv").write_text("\n".join(rows) + "\n")
    assert main([*outside, "--out", str(out), "--predictions", str(tmp_path / "preds.csv")]) == 0
    predicted = json.loads(capsys.readouterr().out)["models"][0]
    assert (out / "data" / listing[0]).stat().st_ino == built  # the listed data scored, not rebuilt
    for key in ("accuracy", "accuracy_ci95", "per_class", "bg_gap", "finegrained"):
        assert predicted[key] == reports["m.pth"][key], key
    assert predicted["challenge_accuracy"] is None and "need the model" in predicted["skipped"][0]


def _result(acc, acc_ci, gap, gap_ci, challenge=None, n=40):
    from bgrepro.report.make import ModelResult

    return ModelResult(name="m", training={}, accuracy={"original": acc}, accuracy_ci95={"original": acc_ci},
                       n_test_images={"mixed_rand": n}, per_class={}, bg_gap=gap, bg_gap_ci95=gap_ci,
                       bg_gap_seeds=None, challenge_accuracy=challenge, challenge_seeds=None, fooled_per_class={},
                       foreground_share=None, foreground_share_seeds=None, mask_area=None, finegrained={}, runs=[])


def test_the_reports_conclusion_follows_its_criteria():
    from bgrepro.report.make import conclude

    def findings(*args, **kwargs):
        return [f["finding"] for f in conclude(_result(*args, **kwargs), n_classes=4, trained=True)]

    # chance is 25%: an interval reaching it makes the model too weak for anything else
    assert findings(40.0, [24.9, 55.0], 12.0, [6.0, 18.0]) == ["weak"]
    assert findings(40.0, [25.1, 55.0], 12.0, [6.0, 18.0], 60.0)[:1] == ["leans"]
    # the BG-Gap's interval: above 0 leans, containing 0 shows nothing, below 0 prefers other backgrounds
    assert findings(90.0, [85.0, 95.0], 3.0, [0.1, 5.9])[0] == "leans"
    assert findings(90.0, [85.0, 95.0], 3.0, [-0.1, 5.9])[0] == "no_evidence"
    assert findings(90.0, [85.0, 95.0], -3.0, [-5.9, -0.1])[0] == "prefers_other"
    # an interval wider than 10 points asks for more photos (and seeds for trained models)
    wide = conclude(_result(90.0, [85.0, 95.0], 3.0, [-3.0, 7.1]), n_classes=4, trained=True)
    assert [f["finding"] for f in wide] == ["no_evidence", "imprecise"] and "--seeds" in wide[1]["advice"]
    assert "imprecise" not in findings(90.0, [85.0, 95.0], 3.0, [-3.0, 6.9])
    # the challenge breaks it when fewer than half of the Original accuracy survives
    assert findings(90.0, [85.0, 95.0], 3.0, [1.0, 5.0], challenge=44.9)[-1] == "breaks"
    assert findings(90.0, [85.0, 95.0], 3.0, [1.0, 5.0], challenge=45.1)[-1] == "holds"


def test_localize_takes_a_state_dict_backbone_and_refuses_one_without_layers(saved, tiny_variants, capsys):
    common = ["localize", "--data", str(tiny_variants), "--size", str(SIDE), "--json"]
    assert main([*common, "--backbone", f"checkpoint:{saved / 'resnet18.pth'}", "--arch", "resnet18"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert 0 <= summary["pxap"] <= 100 and "not the method's" in summary["warning"]
    assert main([*common, "--backbone", f"checkpoint:{saved / 'resnet18.onnx'}"]) == 2
    assert "feature maps" in capsys.readouterr().err
