"""The standard weakly supervised object localization metrics (Choe et al., CVPR 2020; clovaai/wsolevaluation),
exactly: maps and masks are (N, H, W) arrays, boxes (N, 4) xmin, ymin, xmax, ymax inclusive (or a list of
(k, 4) arrays for several objects), every number in %.

- `box_metrics` gives MaxBoxAccV2: each map min-max normalised, scaled to uint8 and thresholded at
  0, 0.001, ..., 0.999 of its maximum; the boxes of *all* contours are matched with the ground truth
  and the best IoU counts; BoxAcc at IoU 30/50/70, each at its best threshold, and their mean.
  `max_box_acc(maps, boxes, iou)` is one IoU's. With `threshold=` (the published protocol) every IoU is
  scored at one threshold chosen on a held-out split by `best_threshold`.
- `pxap`: the area under the pixel precision-recall curve, pixels pooled over the set, with optional
  ignore masks; `piou`: the best pooled pixel IoU over thresholds.

`box_from_map` (the largest component's box) serves figures and `masks_from_maps`, not the metrics.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.datasets import mask_boxes

#: Map thresholds of the standard evaluation (wsolevaluation's default interval, 0.001).
CAM_THRESHOLDS = np.arange(0, 1, 0.001)
#: IoU thresholds (%) of MaxBoxAccV2.
IOU_THRESHOLDS = (30, 50, 70)


def _largest_component(binary: np.ndarray):
    """(labels, k, stats) of the largest 8-connected component of a binary map, or None when it is empty."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    if n <= 1:
        return None
    return labels, 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])), stats


def box_from_map(heat: np.ndarray, threshold: float) -> tuple[int, int, int, int] | None:
    """Box (xmin, ymin, xmax, ymax) of the largest connected component of heat >= threshold, or None."""
    import cv2

    found = _largest_component(np.asarray(heat) >= threshold)
    if found is None:
        return None
    _, k, stats = found
    x, y, w, h = (int(stats[k, i]) for i in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH,
                                              cv2.CC_STAT_HEIGHT))
    return x, y, x + w - 1, y + h - 1


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of `a` (n, 4) with every box of `b` (m, 4), in the standard's inclusive-pixel
    convention (area = (x1 - x0 + 1) (y1 - y0 + 1)); a degenerate pair scores 0."""
    a, b = np.asarray(a, dtype=np.float64)[:, None], np.asarray(b, dtype=np.float64)[None]
    iw = np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    ih = np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    inter = iw * ih
    area = lambda r: (r[..., 2] - r[..., 0] + 1) * (r[..., 3] - r[..., 1] + 1)
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def normalize_map(heat) -> np.ndarray:
    """A map min-max normalised to [0, 1]; a constant map (or one with a NaN) becomes zeros (the
    standard's `normalize_scoremap`)."""
    heat = np.asarray(heat, dtype=np.float64)
    lo, hi = heat.min(), heat.max()
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo == hi:
        return np.zeros_like(heat)
    return (heat - lo) / (hi - lo)


def _levels(gray: np.ndarray, thresholds) -> np.ndarray:
    """The uint8 cut level of each threshold: int(threshold x the map's maximum), as the standard does."""
    return (np.asarray(thresholds, dtype=np.float64) * int(gray.max())).astype(np.int64)


def _boxes_above(gray: np.ndarray, level: int) -> np.ndarray:
    """Bounding boxes (k, 4) of every contour of gray > level; one all-zero box where nothing is kept."""
    import cv2

    h, w = gray.shape
    _, binary = cv2.threshold(gray, int(level), 255, cv2.THRESH_BINARY)
    contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[-2]
    boxes = np.zeros((max(1, len(contours)), 4), dtype=np.int64)
    for i, c in enumerate(contours):
        x, y, bw, bh = cv2.boundingRect(c)
        boxes[i] = (x, y, min(x + bw, w - 1), min(y + bh, h - 1))  # the standard's right/bottom edge
    return boxes


def _gray(heat) -> np.ndarray:
    return (normalize_map(heat) * 255).astype(np.uint8)


def _best_iou_per_threshold(heat, gt: np.ndarray, thresholds) -> np.ndarray:
    """Best IoU of any contour box with any ground-truth box at each threshold (thresholds that fall on
    the same uint8 level share one contour pass)."""
    gray = _gray(heat)
    levels, where = np.unique(_levels(gray, thresholds), return_inverse=True)
    per_level = [_boxes_above(gray, v) for v in levels]
    ious = _iou_matrix(np.concatenate(per_level), gt).max(axis=1)
    starts = np.cumsum([0] + [len(b) for b in per_level[:-1]])
    return np.maximum.reduceat(ious, starts)[where]


def _gt_boxes(boxes, n: int) -> list[np.ndarray]:
    """Ground-truth boxes per image: an (N, 4) array (one object each) or a list of (k, 4) arrays."""
    if isinstance(boxes, np.ndarray | torch.Tensor) and np.asarray(boxes).ndim == 2:
        boxes = np.asarray(boxes)
        if boxes.shape != (n, 4):
            raise ValueError(f"boxes must be ({n}, 4), got {boxes.shape}")
        return [b[None] for b in boxes]
    boxes = [np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in boxes]
    if len(boxes) != n or any(len(b) == 0 for b in boxes):
        raise ValueError(f"boxes must give at least one box for each of the {n} maps")
    return boxes


def _check_maps(maps) -> np.ndarray:
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (N, H, W), got shape {maps.shape}")
    if len(maps) == 0:
        raise ValueError("no maps to score")
    return maps


def best_ious(maps, boxes, thresholds=CAM_THRESHOLDS) -> np.ndarray:
    """(N, T): for each image and threshold, the best IoU between any estimated box (every contour) and
    any ground-truth box."""
    maps = _check_maps(maps)
    gts = _gt_boxes(boxes, len(maps))
    return np.stack([_best_iou_per_threshold(heat, gt, thresholds) for heat, gt in zip(maps, gts)])


def box_accuracy_curve(maps, boxes, iou: float = 0.5, thresholds=CAM_THRESHOLDS) -> np.ndarray:
    """BoxAcc (%) at each threshold: the share of images with a box of IoU >= `iou`."""
    return 100 * (best_ious(maps, boxes, thresholds) >= iou).mean(axis=0)


def max_box_acc(maps, boxes, iou: float = 0.5, thresholds=CAM_THRESHOLDS) -> float:
    """MaxBoxAcc (%) at one IoU: the best threshold's BoxAcc (multi-contour, as in MaxBoxAccV2)."""
    return float(box_accuracy_curve(maps, boxes, iou, thresholds).max())


def box_metrics(maps, boxes, threshold: float | None = None, thresholds=CAM_THRESHOLDS) -> dict:
    """MaxBoxAccV2 (Choe et al., CVPR 2020): BoxAcc (%) at IoU 30/50/70, each at its best threshold, and
    their mean. With `threshold` (the published protocol: chosen on a held-out split by
    `best_threshold`), every IoU is scored at that one threshold instead."""
    if threshold is not None:
        if not (np.isfinite(threshold) and 0 <= threshold < 1):
            raise ValueError(f"the map threshold must be in [0, 1), got {threshold}")
        thresholds = [float(threshold)]
    ious = best_ious(maps, boxes, thresholds)
    out = {}
    for delta in IOU_THRESHOLDS:
        curve = 100 * (ious >= delta / 100).mean(axis=0)
        out[f"iou{delta}"] = float(curve.max())
        out[f"threshold@iou{delta}"] = float(thresholds[int(curve.argmax())])
    out["maxboxaccv2"] = float(np.mean([out[f"iou{d}"] for d in IOU_THRESHOLDS]))
    return out


def best_threshold(maps, boxes, thresholds=CAM_THRESHOLDS) -> float:
    """The threshold with the best mean BoxAcc over IoU 30/50/70 (how the published RPS protocol picks
    the threshold on a held-out split before scoring the test split)."""
    return threshold_of(best_ious(maps, boxes, thresholds), thresholds)[0]


def threshold_of(ious: np.ndarray, thresholds=CAM_THRESHOLDS) -> tuple[float, float]:
    """(threshold, its MaxBoxAccV2 %) from `best_ious`' (N, T) table, which can be gathered chunk by chunk: the
    threshold with the best mean BoxAcc over IoU 30/50/70."""
    mean = np.mean([(np.asarray(ious) >= d / 100).mean(axis=0) for d in IOU_THRESHOLDS], axis=0)
    k = int(mean.argmax())
    return float(thresholds[k]), 100 * float(mean[k])


def _score_histograms(maps, masks, ignore, thresholds):
    """Pixel score histograms (foreground, background) over the bins [t_k, t_k+1), ..., [1, 2), [2, 3]."""
    maps = _check_maps(maps)
    masks = np.asarray(masks)
    if masks.shape != maps.shape:
        raise ValueError(f"masks {masks.shape} must match maps {maps.shape}")
    if ignore is not None and np.asarray(ignore).shape != maps.shape:
        raise ValueError(f"ignore masks {np.asarray(ignore).shape} must match maps {maps.shape}")
    masks = masks.astype(bool)
    edges = np.append(np.asarray(thresholds, dtype=np.float64), [1.0, 2.0, 3.0])
    fg, bg = np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)
    for i, heat in enumerate(maps):
        heat = normalize_map(heat)
        keep = np.ones(heat.shape, bool) if ignore is None else ~np.asarray(ignore[i], dtype=bool)
        fg += np.histogram(heat[masks[i] & keep], bins=edges)[0]
        bg += np.histogram(heat[~masks[i] & keep], bins=edges)[0]
    if fg.sum() == 0:
        raise ValueError("the masks have no foreground pixels")
    return fg, bg


def _pixel_counts(maps, masks, ignore, thresholds):
    fg, bg = _score_histograms(maps, masks, ignore, thresholds)
    tp, fp = fg[::-1].cumsum(), bg[::-1].cumsum()  # pixels at or above each bin's left edge, top down
    return tp, fp, fg.sum()


def pxap(maps, masks, ignore=None, thresholds=CAM_THRESHOLDS) -> float:
    """PxAP (%): the area under the pixel precision-recall curve, pixels pooled over the set (the
    standard's histogram form; `ignore` (N, H, W) marks pixels left out)."""
    tp, fp, positives = _pixel_counts(maps, masks, ignore, thresholds)
    predicted = tp + fp
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = tp / positives
    return float(100 * (precision[1:] * np.diff(recall))[predicted[1:] > 0].sum())


def piou(maps, masks, ignore=None, thresholds=CAM_THRESHOLDS) -> float:
    """PIoU (%): the best pooled pixel IoU, tp / (fg + fp), over thresholds."""
    tp, fp, positives = _pixel_counts(maps, masks, ignore, thresholds)
    return float(100 * np.max(tp / (positives + fp)))


def mask_iou(pred, masks) -> np.ndarray:
    """Per-image IoU of boolean masks (N, H, W)."""
    pred, masks = np.asarray(pred, dtype=bool), np.asarray(masks, dtype=bool)
    inter = (pred & masks).sum(axis=(1, 2))
    union = (pred | masks).sum(axis=(1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def masks_from_maps(maps, threshold: float = 0.5) -> np.ndarray:
    """Binary masks from maps: the largest connected component of map >= threshold (never empty)."""
    maps = np.asarray(maps)
    out = np.zeros(maps.shape, dtype=bool)
    for i, heat in enumerate(maps):
        found = _largest_component(heat >= min(threshold, float(heat.max())))
        if found is not None:
            labels, k, _ = found
            out[i] = labels == k
    return out


def localization_metrics(maps, masks, boxes=None, ignore=None, threshold: float | None = None) -> dict:
    """The standard WSOL metrics of maps against masks (boxes: the masks' own unless given): MaxBoxAccV2
    and its three IoUs (best threshold on these maps, or `threshold` from a held-out split), PxAP and
    PIoU, all in %."""
    masks_t = torch.as_tensor(np.asarray(masks, dtype=bool))
    boxes = mask_boxes(masks_t).numpy() if boxes is None else boxes
    return {**box_metrics(maps, boxes, threshold), "pxap": pxap(maps, masks, ignore), "piou": piou(maps, masks, ignore)}


def centre_gaussian(h: int, w: int) -> np.ndarray:
    """A centred Gaussian map (sigma a quarter of each side): the chance row that knows only where objects tend to
    be."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.exp(-0.5 * (((yy - (h - 1) / 2) / (h / 4)) ** 2 + ((xx - (w - 1) / 2) / (w / 4)) ** 2))


def whole_image_ious(boxes, h: int, w: int) -> np.ndarray:
    """(N,): the best IoU of the whole-image box with each image's ground-truth boxes (what a method that knows
    nothing but the image's edges scores)."""
    return np.array([_iou_matrix(np.array([[0, 0, w - 1, h - 1]]), b).max() for b in _gt_boxes(boxes, len(boxes))])


def chance_rows(masks) -> dict[str, dict]:
    """What maps that know nothing score on these masks, the rows every method must beat: a constant map (its
    one box the whole image; every pixel equally likely foreground, so its PxAP and PIoU are the share of
    foreground pixels) and a centred Gaussian map (sigma a quarter of the side) scored like any map."""
    masks = np.asarray(masks, dtype=bool)
    n, h, w = masks.shape
    ious = _iou_matrix(np.array([[0, 0, w - 1, h - 1]]), mask_boxes(torch.as_tensor(masks)).numpy())[0]
    constant = {f"iou{d}": 100 * float((ious >= d / 100).mean()) for d in IOU_THRESHOLDS}
    constant["maxboxaccv2"] = float(np.mean([constant[f"iou{d}"] for d in IOU_THRESHOLDS]))
    constant["pxap"] = constant["piou"] = 100 * float(masks.mean())
    centre = centre_gaussian(h, w)
    return {"constant map": constant,
            "centre Gaussian map": localization_metrics(np.repeat(centre[None], n, axis=0), masks)}


__all__ = ["CAM_THRESHOLDS", "IOU_THRESHOLDS", "box_from_map", "best_ious", "box_accuracy_curve", "max_box_acc",
           "box_metrics", "best_threshold", "pxap", "piou", "mask_iou", "masks_from_maps", "localization_metrics",
           "chance_rows", "whole_image_ious", "threshold_of", "centre_gaussian"]
