"""The IN-9 transformations as pure functions on numpy arrays (H, W, 3) uint8.

Boxes are inclusive pixel boxes (xmin, ymin, xmax, ymax); masks are boolean (H, W).
"""

from __future__ import annotations

import numpy as np

Box = tuple[int, int, int, int]


def _check(image: np.ndarray, box: Box | None = None, mask: np.ndarray | None = None) -> None:
    h, w = image.shape[:2]
    if box is not None:
        x0, y0, x1, y1 = box
        if not (0 <= x0 <= x1 < w and 0 <= y0 <= y1 < h):
            raise ValueError(f"box {tuple(box)} is outside the {w}x{h} image")
    if mask is not None and mask.shape != (h, w):
        raise ValueError(f"mask of shape {mask.shape} does not match the {w}x{h} image")


def only_bg_b(image: np.ndarray, box: Box) -> np.ndarray:
    """Only-BG-B: the image with its bounding box filled black."""
    _check(image, box)
    x0, y0, x1, y1 = box
    out = image.copy()
    out[y0:y1 + 1, x0:x1 + 1] = 0
    return out


def largest_strip(image_shape: tuple[int, ...], box: Box) -> tuple[str, int]:
    """Which strip outside the box (top, bottom, left, right) is largest, and its area."""
    h, w = image_shape[:2]
    x0, y0, x1, y1 = box
    areas = {"top": y0 * w, "bottom": (h - 1 - y1) * w, "left": x0 * h, "right": (w - 1 - x1) * h}
    side = max(areas, key=lambda k: areas[k])  # ties: the first in this order
    return side, areas[side]


def only_bg_t(image: np.ndarray, box: Box) -> np.ndarray:
    """Only-BG-T: the box filled by tiling the largest strip of the image outside it.

    A top/bottom strip is tiled vertically over the box's columns, a left/right strip
    horizontally over the box's rows, so the fill lines up with the scene around the box.
    """
    _check(image, box)
    x0, y0, x1, y1 = box
    side, area = largest_strip(image.shape, box)
    if area == 0:
        raise ValueError(f"box {tuple(box)} covers the whole image: no background to tile")
    bh, bw = y1 - y0 + 1, x1 - x0 + 1
    if side in ("top", "bottom"):
        strip = image[:y0, x0:x1 + 1] if side == "top" else image[y1 + 1:, x0:x1 + 1]
        reps = -(-bh // strip.shape[0])
        # periodic continuation of the strip across the box edge it touches
        fill = np.concatenate([strip] * reps, axis=0)
        fill = fill[:bh] if side == "top" else fill[-bh:]
    else:
        strip = image[y0:y1 + 1, :x0] if side == "left" else image[y0:y1 + 1, x1 + 1:]
        reps = -(-bw // strip.shape[1])
        fill = np.concatenate([strip] * reps, axis=1)
        fill = fill[:, :bw] if side == "left" else fill[:, -bw:]
    out = image.copy()
    out[y0:y1 + 1, x0:x1 + 1] = fill
    return out


def no_fg(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """No-FG: the foreground (mask) filled black."""
    _check(image, mask=mask)
    return np.where(mask[..., None], 0, image).astype(image.dtype)


def only_fg(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Only-FG: the foreground on black."""
    _check(image, mask=mask)
    return np.where(mask[..., None], image, 0).astype(image.dtype)


def paste(fg_image: np.ndarray, fg_mask: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The mixing step: foreground pixels (mask) of one image over another background."""
    _check(fg_image, mask=fg_mask)
    if background.shape != fg_image.shape:
        raise ValueError(
            f"background of shape {background.shape} does not match foreground image {fg_image.shape}"
        )
    return np.where(fg_mask[..., None], fg_image, background).astype(fg_image.dtype)
