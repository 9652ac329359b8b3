"""The backgrounds challenge: exact against the official method, counts, errors, CLI, figures."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from bgrepro.analyses.adversarial import SearchSettings, challenge, challenge_reference, load_challenge_data
from bgrepro.cli import main
from bgrepro.data import composite
from bgrepro.data.datasets import list_variant
from bgrepro.inference import Inference
from bgrepro.registry.architectures import Classifier
from tests.conftest import load_model


class Keyed(nn.Module):
    """A test classifier with a known answer: it recognises each test foreground by its pixels and
    is right about it, except that foreground i (for i not divisible by 3) is misclassified on one
    designated background only, j = (5 i + 3) mod M. So exactly those foregrounds are fooled, each by
    one background somewhere in the search order: a search that skips any background misses some."""

    def __init__(self, foregrounds, backgrounds) -> None:
        super().__init__()
        self.fg = foregrounds.images.float() / 255
        self.masks = foregrounds.masks[:, None]
        self.labels = foregrounds.labels
        self.bg = backgrounds.images.float() / 255
        m = len(backgrounds)
        self.designated = {i: (5 * i + 3) % m for i in range(len(foregrounds)) if i % 3}
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        logits = torch.zeros(len(x), 9)
        for b, image in enumerate(x):
            same_fg = ((image - self.fg).abs() * self.masks).flatten(1).amax(1) < 1e-5
            if not same_fg.any():
                continue
            i = int(same_fg.nonzero()[0, 0])
            label = int(self.labels[i])
            j = self.designated.get(i)
            if j is not None and float(((image - self.bg[j]).abs() * ~self.masks[i]).max()) < 1e-5:
                label = (label + 1) % 9
            logits[b, label] = 1.0
        return logits

    @property
    def fooled_ids(self):
        return sorted(self.designated)


def _models(checkpoint, foregrounds, backgrounds):
    trained, _ = load_model(checkpoint)
    return {"trained": trained, "keyed": Keyed(foregrounds, backgrounds).eval()}


@pytest.mark.parametrize("name", ["trained", "keyed"])
def test_fast_search_finds_exactly_the_exhaustive_fooled_set(tiny_variants, tiny_checkpoint, name):
    foregrounds, backgrounds = load_challenge_data(tiny_variants)
    model = _models(tiny_checkpoint, foregrounds, backgrounds)[name]
    reference = challenge_reference(model, tiny_variants)
    if name == "keyed":
        assert reference.fooled_ids == [foregrounds.ids[i] for i in model.fooled_ids]
        assert 0 < len(reference.fooled_ids) < len(foregrounds)
    for first, most, pilot in ((1, 2, 0), (2, 256, 2), (4, 8, 1)):
        fast = challenge(model, foregrounds, backgrounds, settings=SearchSettings(pilot, first, most),
                         progress=False)
        assert fast.fg_ids == reference.fg_ids
        assert fast.fooled_ids == reference.fooled_ids
    every = challenge(model, foregrounds, backgrounds, all_pairs=True, inference=Inference.at("cpu", batch_size=50),
                      progress=False)
    assert every.fooled_ids == reference.fooled_ids
    assert every.composites == len(foregrounds) * len(backgrounds)
    if name == "keyed":  # each fooled foreground has exactly its one designated background
        assert every.pairs.sum() == len(model.designated)


def test_pair_matrix_matches_compositing_each_pair_by_hand(tiny_variants, tiny_checkpoint):
    model, _ = load_model(tiny_checkpoint)
    fgs, bgs = load_challenge_data(tiny_variants)
    result = challenge(model, fgs, bgs, all_pairs=True, progress=False)
    rng = np.random.default_rng(0)
    for i, j in rng.integers(0, [len(fgs), len(bgs)], size=(40, 2)):
        image = composite.paste(fgs.images[i].permute(1, 2, 0).numpy(), fgs.masks[i].numpy(),
                                bgs.images[j].permute(1, 2, 0).numpy())
        with torch.no_grad():
            pred = int(model(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255).argmax())
        assert result.pairs[i, j] == (pred != int(fgs.labels[i]))
    # a background's count is the number of other-class foregrounds it fools
    j = int(np.argmax(result.background_counts()))
    other = result.fg_labels != result.bg_labels[j]
    assert result.background_counts()[j] == result.pairs[other, j].sum()
    assert 0 <= result.background_rates().min() and result.background_rates().max() <= 1
    summary = result.to_json()
    assert summary["challenge_accuracy"] + summary["fooled_fraction"] == pytest.approx(1)
    assert len(summary["background_counts"]) == summary["n_backgrounds"] == len(bgs)


def test_per_background_counts_need_all_pairs(tiny_variants, tiny_checkpoint):
    model, _ = load_model(tiny_checkpoint)
    result = challenge(model, *load_challenge_data(tiny_variants), progress=False)
    with pytest.raises(ValueError, match="all_pairs"):
        result.background_counts()
    assert "background_counts" not in result.to_json()


def test_malformed_inputs_give_clear_errors(tmp_path, tiny_variants, tiny_checkpoint):
    model, _ = load_model(tiny_checkpoint)
    data = tmp_path / "data"
    shutil.copytree(tiny_variants, data)
    path, label = list_variant(data, "original", "val")[0]
    mask_file = data / "fg_mask" / "val" / path.parent.name / f"{path.stem}.npy"
    np.save(mask_file, np.ones((5, 7), dtype=bool))
    with pytest.raises(ValueError, match=path.stem):
        load_challenge_data(data)
    shutil.rmtree(data / "fg_mask")
    shutil.copytree(tiny_variants / "fg_mask", data / "fg_mask")
    for folder in (data / "only_bg_t" / "val").iterdir():
        shutil.rmtree(folder)
        folder.mkdir()
    with pytest.raises(ValueError, match="no backgrounds"):
        load_challenge_data(data)
    fgs, bgs = load_challenge_data(tiny_variants)
    imagenet_like = Classifier(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 1000)))
    with pytest.raises(ValueError, match="for_data"):
        challenge(imagenet_like, fgs, bgs, progress=False)


def test_challenge_cli_json_and_figures(tmp_path, tiny_variants, tiny_checkpoint, capsys):
    assert main(["challenge", "--data", str(tiny_variants), "--checkpoint", str(tiny_checkpoint), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("challenge_accuracy", "fooled_fraction", "n_foregrounds", "n_backgrounds", "fooled_ids"):
        assert key in summary
    assert summary["n_foregrounds"] == summary["n_backgrounds"] == 27
    out = tmp_path / "challenge"
    assert main(["challenge", "--data", str(tiny_variants), "--checkpoint", str(tiny_checkpoint),
                 "--all-pairs", "--out", str(out)]) == 0
    assert "challenge accuracy" in capsys.readouterr().out
    saved = json.loads((out / "challenge.json").read_text())
    assert saved["fooled_ids"] == summary["fooled_ids"]
    assert (out / "top_backgrounds.png").stat().st_size > 0 and (out / "fooling_histogram.png").stat().st_size > 0
    assert main(["challenge", "--data", str(tmp_path / "nowhere"), "--checkpoint", str(tiny_checkpoint)]) == 2
    assert "nowhere" in capsys.readouterr().err
