"""The IN-9 transformations as pure functions on numpy arrays (H, W, 3) uint8.

Boxes are inclusive pixel boxes (xmin, ymin, xmax, ymax); masks are boolean (H, W).
"""

from __future__ import annotations

import numpy as np

from ..io import covers_image
from ..variants import NO_FG, ONLY_BG_B, ONLY_BG_T, ONLY_FG, ORIGINAL

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


# ----------------------------------------------------------------------------- foreground extraction
#: Why an image was left out of IN-9, in the order the paper's filters are applied.
#: Refinements of an automatic (RPS) mask: none, or GrabCut initialised with the mask's box (the object's
#: outline; `bgrepro.analyses.localize.refine_by_grabcut`).
#: How each variant made from one image is made (`variants.SINGLE`): (image, box, mask) -> image.
_SINGLE = {
    ORIGINAL: lambda image, box, mask: image,
    ONLY_BG_B: lambda image, box, mask: only_bg_b(image, box),
    ONLY_BG_T: lambda image, box, mask: only_bg_t(image, box),
    NO_FG: lambda image, box, mask: no_fg(image, mask),
    ONLY_FG: lambda image, box, mask: only_fg(image, mask),
}


def single(variant: str, image: np.ndarray, box: Box | None, mask: np.ndarray | None) -> np.ndarray:
    """The variant `variant` (one made from a single image) of an image with its box and mask."""
    return _SINGLE[variant](image, box, mask)


REFINEMENTS = ("none", "grabcut")


class Rejected(ValueError):
    """An image that fails one of the paper's filters; `reason` is not_one_box, box_outside_crop,
    box_too_large, grabcut_too_small or no_mask."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def resize_center_crop(image: np.ndarray, boxes: list[Box], resize: int = 256, crop: int = 224, factor: int = 1):
    """Resize the shorter side to `resize`, center-crop `crop` x `crop`; boxes follow (unclipped, float).

    With `factor` > 1 the same crop window is cut at `factor` times the resolution (an image of
    crop x factor pixels whose factor x factor blocks are exactly the pixels of the plain crop)."""
    import cv2

    h, w = image.shape[:2]
    scale = resize / min(h, w)
    nh, nw = max(crop, round(h * scale)), max(crop, round(w * scale))
    top, left = (nh - crop) // 2, (nw - crop) // 2
    nh, nw, top, left, crop = nh * factor, nw * factor, top * factor, left * factor, crop * factor
    interp = cv2.INTER_AREA if scale * factor < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interp)
    cropped = np.ascontiguousarray(resized[top:top + crop, left:left + crop])
    sx, sy = nw / w, nh / h
    moved = [((x0 * sx) - left, (y0 * sy) - top, ((x1 + 1) * sx) - left, ((y1 + 1) * sy) - top)
             for x0, y0, x1, y1 in boxes]  # half-open float boxes in crop coordinates
    return cropped, moved


def grabcut_mask(image: np.ndarray, box: Box, iterations: int = 5, seed: int = 0) -> np.ndarray:
    """Foreground mask from OpenCV GrabCut initialised with the box (RGB uint8 image)."""
    import cv2

    _check(image, box)
    x0, y0, x1, y1 = box
    h, w = image.shape[:2]
    if (x1 - x0 + 1) * (y1 - y0 + 1) >= h * w:
        raise ValueError(f"box {tuple(box)} covers the whole image: GrabCut needs background pixels")
    cv2.setRNGSeed(seed)
    labels = np.zeros((h, w), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(image[..., ::-1])
    cv2.grabCut(bgr, labels, (x0, y0, x1 - x0 + 1, y1 - y0 + 1), bgd, fgd, iterations, cv2.GC_INIT_WITH_RECT)
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def extract_foreground(
    image: np.ndarray,
    boxes: list[Box],
    *,
    resize: int = 256,
    crop: int = 224,
    max_box_fraction: float = 0.9,
    min_inside_fraction: float = 0.5,
    min_foreground_fraction: float = 0.1,
    iterations: int = 5,
    seed: int = 0,
    factor: int = 1,
) -> tuple[np.ndarray, Box, np.ndarray]:
    """The paper's procedure for one photo: (cropped image, box, GrabCut mask), or raise Rejected.
    With `factor` > 1 it runs on the same crop window at `factor` times the resolution (see
    `resize_center_crop`), returning a crop of crop x factor pixels."""
    if len(boxes) != 1:
        raise Rejected("not_one_box", f"{len(boxes)} bounding boxes (IN-9 keeps images with exactly one)")
    cropped, (fbox,) = resize_center_crop(image, list(boxes), resize, crop, factor)
    crop = crop * factor
    fx0, fy0, fx1, fy1 = fbox
    area = max(fx1 - fx0, 0.0) * max(fy1 - fy0, 0.0)
    cx0, cy0, cx1, cy1 = max(fx0, 0.0), max(fy0, 0.0), min(fx1, float(crop)), min(fy1, float(crop))
    inside = max(cx1 - cx0, 0.0) * max(cy1 - cy0, 0.0)
    if area <= 0 or inside < min_inside_fraction * area:
        raise Rejected("box_outside_crop", f"only {inside / max(area, 1e-9):.0%} of the box lies in the center crop")
    if inside > max_box_fraction * crop * crop:
        share = inside / crop**2
        raise Rejected("box_too_large", f"the box covers {share:.0%} of the crop (max {max_box_fraction:.0%})")
    box = (int(np.floor(cx0)), int(np.floor(cy0)), int(np.ceil(cx1)) - 1, int(np.ceil(cy1)) - 1)
    if covers_image(box, cropped.shape):
        raise Rejected("box_too_large", "the box covers the whole crop: no background for GrabCut or Only-BG-T")
    mask = grabcut_mask(cropped, box, iterations=iterations, seed=seed)
    box_pixels = (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
    if mask.sum() < min_foreground_fraction * box_pixels:
        raise Rejected("grabcut_too_small",
                       f"GrabCut kept {mask.sum() / box_pixels:.0%} of the box (min {min_foreground_fraction:.0%})")
    return cropped, box, mask


# ----------------------------------------------------------------------------- batched torch path
# The same transformations on batches (N, C, H, W) on any device, for compositing during training
# and evaluation. Boxes are an (N, 4) integer tensor, masks (N, H, W) bool. Results are identical
# to the numpy functions above on the same inputs (a property test checks this).


def _inside_box(boxes, h: int, w: int):
    import torch

    yy = torch.arange(h, device=boxes.device).view(1, h, 1)
    xx = torch.arange(w, device=boxes.device).view(1, 1, w)
    x0, y0, x1, y1 = (boxes[:, k].view(-1, 1, 1) for k in range(4))
    return (yy >= y0) & (yy <= y1) & (xx >= x0) & (xx <= x1), yy, xx, (x0, y0, x1, y1)


def _check_batch(images, boxes=None, masks=None) -> None:
    n, _, h, w = images.shape
    if boxes is not None:
        if boxes.shape != (n, 4):
            raise ValueError(f"boxes must have shape ({n}, 4), got {tuple(boxes.shape)}")
        bad = (boxes[:, 0] < 0) | (boxes[:, 1] < 0) | (boxes[:, 2] >= w) | (boxes[:, 3] >= h)
        bad |= (boxes[:, 0] > boxes[:, 2]) | (boxes[:, 1] > boxes[:, 3])
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ValueError(f"box {boxes[i].tolist()} of batch item {i} is outside the {w}x{h} image")
    if masks is not None and tuple(masks.shape) != (n, h, w):
        raise ValueError(f"masks must have shape ({n}, {h}, {w}), got {tuple(masks.shape)}")


def only_bg_t_torch(images, boxes):
    """Only-BG-T on a batch: each box filled by tiling the largest strip outside it."""
    import torch

    _check_batch(images, boxes)
    n, c, h, w = images.shape
    inside, yy, xx, (x0, y0, x1, y1) = _inside_box(boxes, h, w)
    areas = torch.stack([y0 * w, (h - 1 - y1) * w, x0 * h, (w - 1 - x1) * h], dim=1).view(n, 4)
    if bool((areas.max(dim=1).values == 0).any()):
        i = int((areas.max(dim=1).values == 0).nonzero()[0, 0])
        raise ValueError(f"box {boxes[i].tolist()} of batch item {i} covers the whole image: no background to tile")
    side = areas.argmax(dim=1).view(n, 1, 1)  # first maximum: top, bottom, left, right
    one = torch.ones_like(y0)
    bh, bw = y1 - y0 + 1, x1 - x0 + 1
    # periodic continuation of the strip across the box edge it touches (as in `only_bg_t`)
    top_y = (yy - y0) % torch.maximum(y0, one)
    p_bottom = torch.maximum(h - 1 - y1, one)
    bottom_y = y1 + 1 + ((-(-bh // p_bottom)) * p_bottom - bh + (yy - y0)) % p_bottom
    left_x = (xx - x0) % torch.maximum(x0, one)
    p_right = torch.maximum(w - 1 - x1, one)
    right_x = x1 + 1 + ((-(-bw // p_right)) * p_right - bw + (xx - x0)) % p_right
    src_y = torch.where(side == 0, top_y, torch.where(side == 1, bottom_y, yy.expand(n, h, w)))
    src_x = torch.where(side == 2, left_x, torch.where(side == 3, right_x, xx.expand(n, h, w)))
    src_y = torch.where(inside, src_y.expand(n, h, w), yy)
    src_x = torch.where(inside, src_x.expand(n, h, w), xx)
    flat = (src_y * w + src_x).view(n, 1, h * w).expand(n, c, h * w)
    return images.reshape(n, c, h * w).gather(2, flat).view(n, c, h, w)


def paste_torch(fg_images, fg_masks, backgrounds):
    """The mixing step on a batch: foregrounds (masks) over backgrounds of the same shape."""
    import torch

    _check_batch(fg_images, masks=fg_masks)
    if backgrounds.shape != fg_images.shape:
        raise ValueError(
            f"backgrounds of shape {tuple(backgrounds.shape)} do not match foregrounds {tuple(fg_images.shape)}"
        )
    return torch.where(fg_masks[:, None], fg_images, backgrounds)
