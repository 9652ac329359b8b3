"""Profiles, and the numpy transformations the calibration relies on."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bgrepro.data import composite
from bgrepro.profiles import PROFILE_ENV, get_profile


def test_profiles_scale_up():
    tiny, smoke, full = (get_profile(n) for n in ("tiny", "smoke", "full"))
    assert tiny.image_size < smoke.image_size < full.image_size == 224
    assert full.train_per_class >= 5045 and full.test_per_class >= 450
    assert not smoke.gpu and full.gpu


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv(PROFILE_ENV, "tiny")
    assert get_profile().name == "tiny"
    monkeypatch.delenv(PROFILE_ENV)
    assert get_profile().name == "smoke"
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        get_profile("huge")


@st.composite
def image_and_box(draw):
    h, w = draw(st.integers(3, 24)), draw(st.integers(3, 24))
    seed = draw(st.integers(0, 2**31))
    image = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    x0, x1 = sorted(draw(st.integers(0, w - 1)) for _ in range(2))
    y0, y1 = sorted(draw(st.integers(0, h - 1)) for _ in range(2))
    if (x0, y0, x1, y1) == (0, 0, w - 1, h - 1):
        x1 -= 1
    mask = np.random.default_rng(seed + 1).random((h, w)) < 0.4
    return image, (x0, y0, x1, y1), mask


@settings(max_examples=200, deadline=None)
@given(image_and_box())
def test_only_bg_t_keeps_outside_and_fills_from_outside(sample):
    image, box, _ = sample
    x0, y0, x1, y1 = box
    out = composite.only_bg_t(image, box)
    inside = np.zeros(image.shape[:2], bool)
    inside[y0:y1 + 1, x0:x1 + 1] = True
    np.testing.assert_array_equal(out[~inside], image[~inside])
    outside_colours = {tuple(p) for p in image[~inside]}
    assert all(tuple(p) in outside_colours for p in out[inside])


@settings(max_examples=200, deadline=None)
@given(image_and_box(), st.integers(0, 2**31))
def test_paste_keeps_foreground_exactly(sample, seed):
    image, box, mask = sample
    background = np.random.default_rng(seed).integers(0, 256, image.shape, dtype=np.uint8)
    out = composite.paste(image, mask, background)
    np.testing.assert_array_equal(out[mask], image[mask])
    np.testing.assert_array_equal(out[~mask], background[~mask])
    np.testing.assert_array_equal(composite.only_fg(image, mask)[~mask], 0)
    np.testing.assert_array_equal(composite.no_fg(image, mask)[mask], 0)
    np.testing.assert_array_equal(composite.only_bg_b(image, box)[box[1]:box[3] + 1, box[0]:box[2] + 1], 0)


def test_bad_inputs_are_rejected():
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="outside"):
        composite.only_bg_t(image, (0, 0, 8, 3))
    with pytest.raises(ValueError, match="whole image"):
        composite.only_bg_t(image, (0, 0, 7, 7))
    with pytest.raises(ValueError, match="does not match"):
        composite.only_fg(image, np.zeros((4, 8), bool))


@st.composite
def batch(draw):
    """Several images of one size, each with its own box and mask."""
    h, w, n = draw(st.integers(3, 20)), draw(st.integers(3, 20)), draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    boxes = []
    for _ in range(n):
        x0, x1 = sorted(draw(st.integers(0, w - 1)) for _ in range(2))
        y0, y1 = sorted(draw(st.integers(0, h - 1)) for _ in range(2))
        if (x0, y0, x1, y1) == (0, 0, w - 1, h - 1):
            y1 -= 1
        boxes.append((x0, y0, x1, y1))
    masks = rng.random((n, h, w)) < 0.4
    backgrounds = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    return images, boxes, masks, backgrounds


@settings(max_examples=200, deadline=None)
@given(batch())
def test_numpy_and_torch_paths_agree(sample):
    import torch

    images, boxes, masks, backgrounds = sample
    chw = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2)  # noqa: E731
    t_img, t_bg, t_mask, t_box = chw(images), chw(backgrounds), torch.from_numpy(masks), torch.tensor(boxes)
    pairs = [
        (composite.only_bg_t_torch(t_img, t_box), [composite.only_bg_t(i, b) for i, b in zip(images, boxes)]),
        (composite.paste_torch(t_img, t_mask, t_bg),
         [composite.paste(i, m, g) for i, m, g in zip(images, masks, backgrounds)]),
    ]
    for got, expected in pairs:
        np.testing.assert_array_equal(got.permute(0, 2, 3, 1).numpy(), np.stack(expected))
