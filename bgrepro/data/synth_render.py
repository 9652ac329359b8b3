"""Procedural drawing for the synthetic IN-9: nine kinds of objects and nine habitats.

Objects are drawn in their own coordinate frame (u to the right along the body, v down; the
object spans about [-1, 1] in u) from ellipses, capsules and polygons, then posed (scale,
aspect, rotation, bend, mirror) by mapping every image pixel back into that frame. The mask is
exactly the set of pixels whose centre falls inside a part, so mask, box and pixels agree.
Colours come from one palette shared by all classes: the class is in the shape and the
texture, never in the colour alone.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Role = int
#: Part roles: what colour a part gets.
BODY, ACCENT, DARK, LIGHT = 1, 2, 3, 4

#: Natural object colours shared by every class (RGB in [0, 1]).
PALETTE = np.array(
    [
        [0.45, 0.30, 0.18],  # brown
        [0.25, 0.17, 0.10],  # dark brown
        [0.76, 0.60, 0.42],  # tan
        [0.55, 0.55, 0.55],  # grey
        [0.12, 0.12, 0.12],  # black
        [0.92, 0.90, 0.86],  # off-white
        [0.85, 0.45, 0.12],  # orange
        [0.85, 0.70, 0.25],  # golden
        [0.45, 0.48, 0.22],  # olive
        [0.60, 0.22, 0.15],  # rust red
        [0.30, 0.38, 0.55],  # slate blue
        [0.20, 0.45, 0.30],  # green
    ]
)


# ----------------------------------------------------------------------------- primitives
def ellipse(u, v, cx, cy, rx, ry, angle=0.0):
    """Pixels inside an ellipse (angle in radians)."""
    c, s = np.cos(angle), np.sin(angle)
    du, dv = u - cx, v - cy
    a = (du * c + dv * s) / rx
    b = (-du * s + dv * c) / ry
    return a * a + b * b <= 1.0


def capsule(u, v, x0, y0, x1, y1, r):
    """Pixels within distance r of the segment (x0, y0)-(x1, y1): limbs, tails, necks."""
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((u - x0) * dx + (v - y0) * dy) / (dx * dx + dy * dy + 1e-12), 0.0, 1.0)
    px, py = u - (x0 + t * dx), v - (y0 + t * dy)
    return px * px + py * py <= r * r


def polygon(u, v, pts):
    """Pixels inside a simple polygon (crossing-number rule)."""
    inside = np.zeros(np.shape(u), dtype=bool)
    n = len(pts)
    for i in range(n):
        xi, yi = pts[i]
        xj, yj = pts[(i + 1) % n]
        if yi == yj:
            continue
        crosses = (yi > v) != (yj > v)
        x_at = (xj - xi) * (v - yi) / (yj - yi) + xi
        inside ^= crosses & (u < x_at)
    return inside


def limb(u, v, pts, r):
    """A jointed limb: capsules through consecutive points."""
    out = np.zeros(np.shape(u), dtype=bool)
    for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:], strict=False):
        out |= capsule(u, v, x0, y0, x1, y1, r)
    return out


def waves(u, v, rng, n=4, freq=(2.0, 5.0)):
    """Smooth random field in [0, 1] over object coordinates (sum of random plane waves)."""
    acc = np.zeros(np.shape(u))
    for _ in range(n):
        ang = rng.uniform(0, np.pi)
        f = rng.uniform(*freq)
        acc += np.sin(f * (u * np.cos(ang) + v * np.sin(ang)) + rng.uniform(0, 2 * np.pi))
    return 0.5 + 0.5 * acc / n


# ----------------------------------------------------------------------------- the nine objects
# Each class function paints part roles into `roles` (later parts over earlier ones) and returns
# a texture field t in [0, 1] for BODY pixels (0 = base colour, 1 = accent colour).
# `j(x)` jitters a proportion by +-15% so that no two individuals are the same.


def _quadruped(u, v, roles, j, rng, *, ears: str, tail: str):
    body_len, body_h = j(0.58), j(0.26)
    roles[ellipse(u, v, 0.0, 0.0, body_len, body_h)] = BODY
    leg_len = j(0.55)
    spread = rng.uniform(-0.12, 0.12)
    for x in (0.38, 0.26, -0.34, -0.46):
        dx = spread if x > 0 else -spread
        roles[limb(u, v, [(x, 0.1), (x + dx, 0.1 + leg_len)], j(0.075))] = BODY
    hx, hy = j(0.72), -j(0.34)
    roles[capsule(u, v, 0.45, -0.05, hx, hy, j(0.12))] = BODY  # neck
    roles[ellipse(u, v, hx, hy, j(0.2), j(0.17))] = BODY
    if ears == "floppy":  # dog: drooping ears and a longer snout
        roles[ellipse(u, v, hx - 0.08, hy + 0.05, 0.07, j(0.17), angle=0.25)] = ACCENT
        roles[ellipse(u, v, hx + 0.2, hy + 0.06, j(0.14), 0.08)] = BODY
        roles[ellipse(u, v, hx + 0.33, hy + 0.04, 0.045, 0.045)] = DARK
    else:  # carnivore: upright pointed ears, short muzzle
        for ex in (-0.1, 0.06):
            roles[polygon(u, v, [(hx + ex - 0.07, hy - 0.1), (hx + ex + 0.07, hy - 0.1),
                                 (hx + ex, hy - j(0.33))])] = ACCENT
        roles[ellipse(u, v, hx + 0.16, hy + 0.05, 0.08, 0.07)] = BODY
        roles[ellipse(u, v, hx + 0.23, hy + 0.03, 0.035, 0.035)] = DARK
    roles[ellipse(u, v, hx + 0.06, hy - 0.04, 0.035, 0.035)] = DARK  # eye
    if tail == "up":  # dog: short tail carried up
        roles[capsule(u, v, -0.55, -0.08, -0.8, -j(0.42), 0.055)] = BODY
    else:  # carnivore: long tail, low and curled
        roles[limb(u, v, [(-0.55, 0.0), (-0.85, j(0.2)), (-1.05, j(0.05))], 0.07)] = ACCENT


def _dog(u, v, roles, j, rng):
    _quadruped(u, v, roles, j, rng, ears="floppy", tail="up")
    return (waves(u, v, rng, freq=(3.0, 6.0)) > rng.uniform(0.55, 0.7)).astype(float)  # patches


def _carnivore(u, v, roles, j, rng):
    _quadruped(u, v, roles, j, rng, ears="pointed", tail="long")
    wobble = 0.15 * np.sin(7.0 * v + rng.uniform(0, 6.3))
    freq = rng.uniform(14.0, 20.0)
    return (np.sin(freq * (u + wobble)) > 0.25).astype(float)  # stripes across the body


def _bird(u, v, roles, j, rng):
    tilt = rng.uniform(-0.35, 0.05)
    roles[ellipse(u, v, 0.0, 0.0, j(0.46), j(0.27), angle=tilt)] = BODY
    roles[polygon(u, v, [(-0.35, -0.05), (-0.95, -j(0.25)), (-0.9, j(0.18))])] = ACCENT  # tail
    hx, hy = j(0.45), -j(0.3)
    roles[ellipse(u, v, hx, hy, j(0.17), j(0.16))] = BODY
    roles[polygon(u, v, [(hx + 0.12, hy - 0.06), (hx + j(0.42), hy + 0.01),
                         (hx + 0.12, hy + 0.07)])] = LIGHT  # beak
    roles[ellipse(u, v, hx + 0.05, hy - 0.04, 0.035, 0.035)] = DARK
    wing_up = rng.uniform(-0.9, 0.1)
    roles[ellipse(u, v, -0.08, -0.05, j(0.38), j(0.13), angle=wing_up)] = ACCENT
    for x in (-0.05, 0.08):
        roles[limb(u, v, [(x, 0.2), (x, j(0.55)), (x + 0.08, 0.58)], 0.025)] = DARK
    return (np.sin(18.0 * (u + 0.7 * np.abs(v))) > 0.5).astype(float) * 0.6  # feather chevrons


def _vehicle(u, v, roles, j, rng):
    top, bottom, half = -j(0.08), j(0.28), j(0.85)
    roles[polygon(u, v, [(-half, top), (half, top), (half, bottom), (-half, bottom)])] = BODY
    cab0 = rng.uniform(-0.5, 0.05)
    cab1 = cab0 + rng.uniform(0.45, 0.8)
    roof = top - j(0.34)
    roles[polygon(u, v, [(cab0 - 0.12, top), (cab0, roof), (cab1, roof), (cab1 + 0.12, top)])] = BODY
    mid = (cab0 + cab1) / 2
    roles[polygon(u, v, [(cab0 + 0.02, top - 0.04), (cab0 + 0.08, roof + 0.06),
                         (mid - 0.03, roof + 0.06), (mid - 0.03, top - 0.04)])] = LIGHT
    roles[polygon(u, v, [(mid + 0.03, top - 0.04), (mid + 0.03, roof + 0.06),
                         (cab1 - 0.04, roof + 0.06), (cab1 + 0.04, top - 0.04)])] = LIGHT
    r = j(0.2)
    for x in (-half + 0.3, half - 0.3):
        roles[ellipse(u, v, x, bottom + 0.02, r, r)] = DARK
        roles[ellipse(u, v, x, bottom + 0.02, r * 0.4, r * 0.4)] = LIGHT
    return (np.abs(v - (top + bottom) / 2) < 0.03).astype(float)  # trim line


def _reptile(u, v, roles, j, rng):
    roles[ellipse(u, v, 0.0, 0.0, j(0.5), j(0.13))] = BODY
    roles[polygon(u, v, [(-0.4, -0.09), (-0.4, 0.09), (-j(1.05), rng.uniform(-0.1, 0.1))])] = BODY
    roles[ellipse(u, v, j(0.58), 0.0, j(0.19), j(0.09))] = BODY
    roles[ellipse(u, v, 0.62, -0.04, 0.03, 0.03)] = DARK
    for x, side in ((0.28, -1), (0.28, 1), (-0.28, -1), (-0.28, 1)):
        knee = (x + 0.08 * np.sign(x), side * j(0.25))
        foot = (x + 0.16 * np.sign(x), side * j(0.3))
        roles[limb(u, v, [(x, 0.0), knee, foot], 0.045)] = BODY
    f = rng.uniform(20.0, 26.0)
    scales = ((np.floor(f * (u + v)) + np.floor(f * (u - v))) % 2).astype(float)
    ridge = (np.abs(v) < 0.03).astype(float)
    return np.maximum(scales * 0.45, ridge)


def _insect(u, v, roles, j, rng):
    for side in (-1, 1):  # six legs, each with a knee
        for x in (0.38, 0.28, 0.18):
            knee = (x + rng.uniform(-0.2, 0.2), side * j(0.32))
            foot = (knee[0] + rng.uniform(-0.15, 0.15), side * j(0.5))
            roles[limb(u, v, [(x, 0.0), knee, foot], 0.025)] = DARK
    if rng.random() < 0.6:  # wings
        for side in (-1, 1):
            roles[ellipse(u, v, 0.0, side * 0.16, j(0.4), j(0.13), angle=side * 0.25)] = LIGHT
    roles[ellipse(u, v, -j(0.25), 0.0, j(0.42), j(0.2))] = BODY  # abdomen
    roles[ellipse(u, v, 0.28, 0.0, j(0.15), j(0.13))] = ACCENT  # thorax
    roles[ellipse(u, v, 0.5, 0.0, j(0.1), j(0.1))] = DARK  # head
    for side in (-1, 1):
        roles[limb(u, v, [(0.55, side * 0.05), (0.75, side * j(0.2)), (0.9, side * j(0.35))],
                   0.02)] = DARK
    f = rng.uniform(15.0, 20.0)
    return (np.sin(f * u) > 0.2).astype(float)  # bands across the abdomen


def _instrument(u, v, roles, j, rng):
    lower, upper = j(0.36), j(0.27)
    roles[ellipse(u, v, -0.38, 0.0, lower, lower * j(1.0))] = BODY
    roles[ellipse(u, v, 0.02, 0.0, upper, upper * j(0.95))] = BODY
    roles[polygon(u, v, [(0.2, -0.06), (0.95, -0.05), (0.95, 0.05), (0.2, 0.06)])] = ACCENT
    roles[polygon(u, v, [(0.93, -0.1), (1.12, -0.11), (1.12, 0.11), (0.93, 0.1)])] = ACCENT
    roles[ellipse(u, v, -0.12, 0.0, 0.09, 0.09)] = DARK  # sound hole
    roles[polygon(u, v, [(-0.55, -0.1), (-0.5, -0.1), (-0.5, 0.1), (-0.55, 0.1)])] = DARK
    for s in (-0.035, 0.0, 0.035):
        roles[capsule(u, v, -0.52, s, 1.0, s, 0.008) & (roles > 0)] = LIGHT  # strings
    grain = np.sin(rng.uniform(25, 35) * v + 3.0 * waves(u, v, rng, n=2))
    return 0.35 * (grain > 0.3)


def _primate(u, v, roles, j, rng):
    # Upright: the body axis runs along v (head at negative v).
    roles[ellipse(u, v, 0.0, 0.05, j(0.22), j(0.33))] = BODY
    for side in (-1, 1):
        raise_arm = rng.uniform(-0.5, 0.5)
        elbow = (side * j(0.38), -0.05 + raise_arm * 0.4)
        hand = (side * j(0.45), j(0.4) + raise_arm * 0.6)
        roles[limb(u, v, [(side * 0.17, -0.18), elbow, hand], j(0.065))] = BODY
        roles[limb(u, v, [(side * 0.1, 0.3), (side * j(0.22), 0.55), (side * 0.18, j(0.8))],
                   j(0.075))] = BODY
        roles[ellipse(u, v, side * 0.15, -0.43, 0.06, 0.06)] = ACCENT  # ears
    roles[ellipse(u, v, 0.0, -0.42, j(0.16), j(0.15))] = BODY
    roles[ellipse(u, v, 0.0, -0.39, 0.1, 0.09)] = LIGHT  # face
    for side in (-1, 1):
        roles[ellipse(u, v, side * 0.04, -0.42, 0.022, 0.022)] = DARK
    return 0.5 * (waves(u, v, rng, n=6, freq=(25.0, 40.0)) > 0.6)  # fur


def _fish(u, v, roles, j, rng):
    roles[polygon(u, v, [(-0.45, 0.0), (-j(0.95), -j(0.32)), (-j(0.85), 0.0),
                         (-j(0.95), j(0.32))])] = ACCENT  # tail
    roles[polygon(u, v, [(-0.2, -0.2), (0.15, -0.22), (-0.1, -j(0.5))])] = ACCENT  # dorsal fin
    roles[polygon(u, v, [(0.0, 0.2), (0.15, 0.2), (-0.05, j(0.38))])] = ACCENT
    roles[ellipse(u, v, 0.0, 0.0, j(0.55), j(0.28))] = BODY
    roles[ellipse(u, v, 0.36, -0.06, 0.05, 0.05)] = DARK
    roles[capsule(u, v, 0.22, -0.15, 0.22, 0.15, 0.015) & (roles > 0)] = ACCENT  # gill
    f = rng.uniform(18.0, 24.0)
    scales = ((np.mod(f * u + 0.5 * np.floor(f * v), 1.0) ** 2 + np.mod(f * v, 1.0) ** 2) > 0.8)
    stripe = np.abs(v - 0.02) < rng.uniform(0.0, 0.06)
    return np.maximum(scales * 0.4, stripe)


OBJECTS: tuple[Callable, ...] = (
    _dog, _bird, _vehicle, _reptile, _carnivore, _insect, _instrument, _primate, _fish
)
#: Classes whose shape is rigid (no body bend) and upright (no large roll).
_RIGID = {2, 6}
_UPRIGHT = {7}


def _pick_colors(rng):
    base = PALETTE[rng.integers(len(PALETTE))] + rng.normal(0, 0.04, 3)
    if rng.random() < 0.5:
        accent = PALETTE[rng.integers(len(PALETTE))] + rng.normal(0, 0.04, 3)
    else:
        accent = base * rng.uniform(0.35, 0.65)
    dark = np.full(3, rng.uniform(0.04, 0.16))
    light = np.full(3, rng.uniform(0.8, 0.95)) * np.array([1.0, 0.97, 0.9])
    return base, accent, dark, light


def render_object(class_index: int, half_extent: float, rng: np.random.Generator):
    """One posed object: (rgb float HxWx3, bool mask HxW) cropped tightly to its mask."""
    for _ in range(50):
        def j(x, rng=rng):
            return x * rng.uniform(0.85, 1.15)

        angle = rng.uniform(-0.15, 0.15) if class_index in _UPRIGHT else rng.uniform(-0.45, 0.45)
        aspect = rng.uniform(0.85, 1.15)
        bend = 0.0 if class_index in _RIGID else rng.uniform(-0.25, 0.25)
        mirror = rng.random() < 0.5
        reach = int(np.ceil(1.5 * half_extent * max(aspect, 1.0))) + 1
        dy, dx = np.mgrid[-reach:reach + 1, -reach:reach + 1].astype(float)
        c, s = np.cos(angle), np.sin(angle)
        u = (dx * c + dy * s) / half_extent
        v = (-dx * s + dy * c) / (half_extent * aspect)
        if mirror:
            u = -u
        v = v - bend * (u * u - 0.3)
        roles = np.zeros(u.shape, dtype=np.uint8)
        texture = OBJECTS[class_index](u, v, roles, j, rng)
        mask = roles > 0
        if mask.sum() >= 4:
            break
    else:  # pragma: no cover - only for absurdly small sizes
        raise ValueError(f"object of half-extent {half_extent:.1f}px is too small to draw")
    base, accent, dark, light = _pick_colors(rng)
    texture = np.broadcast_to(np.asarray(texture, dtype=float), u.shape)[..., None]
    rgb = np.zeros(u.shape + (3,))
    rgb[:] = base * (1 - texture) + accent * texture
    rgb[roles == ACCENT] = accent
    rgb[roles == DARK] = dark
    rgb[roles == LIGHT] = light
    shade = 1.0 - 0.22 * np.clip(v, -1, 1) - 0.05  # light from above
    rgb = rgb * shade[..., None] + rng.normal(0, 0.025, rgb.shape)
    ys, xs = np.nonzero(mask)
    sl = np.s_[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    return np.clip(rgb[sl], 0, 1), mask[sl]


# ----------------------------------------------------------------------------- the nine habitats
def noise(size: int, rng: np.random.Generator, cells: tuple[int, int] | int) -> np.ndarray:
    """Smooth value noise in [0, 1] of shape (size, size), from a random grid of `cells`."""
    ch, cw = (cells, cells) if isinstance(cells, int) else cells
    grid = rng.random((max(ch, 2), max(cw, 2))).astype(np.float32)
    return np.clip(cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC), 0, 1)


def fractal(size, rng, octaves=(4, 8, 16), gain=0.5):
    """Multi-octave value noise in [0, 1]."""
    acc, total, w = np.zeros((size, size), np.float32), 0.0, 1.0
    for cells in octaves:
        acc += w * noise(size, rng, cells)
        total += w
        w *= gain
    return acc / total


def _mix(a, b, t):
    return a * (1 - t[..., None]) + b * t[..., None]


def _rows(size):
    return np.linspace(0, 1, size, dtype=np.float32)[:, None] * np.ones((1, size), np.float32)


def _sky(size, rng):
    top = np.array([0.18, 0.42, 0.80]) + rng.normal(0, 0.05, 3)
    horizon = np.array([0.70, 0.83, 0.95]) + rng.normal(0, 0.03, 3)
    if rng.random() < 0.2:  # dusk
        horizon = np.array([0.95, 0.70, 0.50])
    img = _mix(top, horizon, _rows(size))
    clouds = fractal(size, rng, (3, 6, 12))
    cover = rng.uniform(0.45, 0.7)
    t = np.clip((clouds - cover) * 4, 0, 1)
    return _mix(img, np.array([0.97, 0.97, 0.98]) * rng.uniform(0.85, 1.0), t)


def _water(size, rng):
    deep = np.array([0.05, 0.25, 0.45]) + rng.normal(0, 0.04, 3)
    shallow = np.array([0.20, 0.55, 0.65]) + rng.normal(0, 0.04, 3)
    img = _mix(deep, shallow, fractal(size, rng, (3, 6)))
    y = _rows(size) * size
    warp = fractal(size, rng, (4, 8)) * 6
    ripple = 0.5 + 0.5 * np.sin(y * rng.uniform(0.5, 0.9) * 48 / size * 2 + warp)
    img = img * (0.8 + 0.35 * ripple[..., None])
    sparkle = rng.random((size, size)) > 0.985
    img[sparkle] = 0.9
    return img


def _grass(size, rng):
    dark = np.array([0.10, 0.30, 0.06]) + rng.normal(0, 0.03, 3)
    light = np.array([0.45, 0.68, 0.18]) + rng.normal(0, 0.04, 3)
    blades = noise(size, rng, (max(size // 12, 2), max(size // 2, 2)))  # tall thin streaks
    patches = fractal(size, rng, (3, 6))
    return _mix(dark, light, np.clip(0.6 * blades + 0.5 * patches - 0.05, 0, 1))


def _foliage(size, rng):
    img = np.zeros((size, size, 3), np.float32) + np.array([0.05, 0.15, 0.05])
    for _ in range(int(rng.integers(60, 120))):
        g = rng.uniform(0.2, 0.6)
        color = np.array([g * rng.uniform(0.2, 0.6), g, g * rng.uniform(0.1, 0.4)])
        center = (float(rng.uniform(0, size)), float(rng.uniform(0, size)))
        axes = (float(rng.uniform(0.04, 0.12) * size), float(rng.uniform(0.02, 0.06) * size))
        cv2.ellipse(img, (center, axes, float(rng.uniform(0, 180))), color.tolist(), -1)
    return img * (0.75 + 0.4 * fractal(size, rng, (4, 8)))[..., None]


def _sand_rock(size, rng):
    sand = np.array([0.78, 0.68, 0.50]) + rng.normal(0, 0.05, 3)
    img = _mix(sand * 0.85, sand, fractal(size, rng, (4, 8, 16)))
    for _ in range(int(rng.integers(2, 7))):
        grey = rng.uniform(0.35, 0.6)
        center = (float(rng.uniform(0, size)), float(rng.uniform(0, size)))
        axes = (float(rng.uniform(0.06, 0.2) * size), float(rng.uniform(0.04, 0.12) * size))
        cv2.ellipse(img, (center, axes, float(rng.uniform(0, 180))), [grey, grey * 0.97, grey * 0.93], -1)
    speckle = rng.normal(0, 0.06, (size, size, 1))
    return img + speckle


def _road(size, rng):
    grey = rng.uniform(0.25, 0.42)
    img = np.zeros((size, size, 3), np.float32) + grey
    img = img * (0.85 + 0.3 * fractal(size, rng, (8, 16)))[..., None] + rng.normal(0, 0.04, (size, size, 1))
    paint = np.array([0.95, 0.95, 0.9]) if rng.random() < 0.6 else np.array([0.95, 0.8, 0.2])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for _ in range(int(rng.integers(1, 3))):
        y0, slope = rng.uniform(0.15, 0.85), rng.uniform(-0.3, 0.3)
        dist = np.abs(yy - (y0 + slope * (xx - 0.5)))
        dashes = np.mod(xx * rng.uniform(3, 5) + rng.uniform(0, 1), 1.0) < 0.55
        img[(dist < 0.025) & dashes] = paint
    if rng.random() < 0.5:  # kerb
        img[int(size * rng.uniform(0.85, 0.95)):] = [0.6, 0.6, 0.58]
    return img


def _indoor_wood(size, rng):
    wood = np.array([0.55, 0.35, 0.18]) * rng.uniform(0.7, 1.2)
    n_planks = int(rng.integers(4, 9))
    plank = np.floor(_rows(size) * n_planks)
    tint = rng.uniform(0.8, 1.15, n_planks + 1)[plank.astype(int)]
    grain = np.sin(_rows(size) * size * rng.uniform(1.2, 2.0) + fractal(size, rng, (2, 8)) * 8)
    img = wood * (tint * (0.85 + 0.12 * grain))[..., None]
    seam = np.mod(_rows(size) * n_planks, 1.0) < 0.04
    img[seam] *= 0.45
    if rng.random() < 0.5:  # vertical panelling
        img = img.transpose(1, 0, 2)
    return img


def _flowers(size, rng):
    img = _grass(size, rng) * 0.85
    colors = np.array([[0.9, 0.15, 0.2], [0.95, 0.85, 0.15], [0.95, 0.5, 0.75],
                       [0.6, 0.3, 0.8], [0.97, 0.97, 0.95]])
    for _ in range(int(rng.integers(30, 70) * (size / 64) ** 2) + 8):
        c = colors[rng.integers(len(colors))] * rng.uniform(0.85, 1.0)
        r = max(1, int(round(rng.uniform(0.015, 0.04) * size)))
        center = (int(rng.integers(0, size)), int(rng.integers(0, size)))
        cv2.circle(img, center, r, c.tolist(), -1)
    return img


def _snow(size, rng):
    white = np.array([0.92, 0.94, 0.97]) * rng.uniform(0.85, 1.0)
    shadow = np.array([0.68, 0.74, 0.85])
    img = _mix(white, shadow, np.clip(fractal(size, rng, (3, 6, 12)) * 1.4 - 0.45, 0, 1))
    if rng.random() < 0.5:  # bare trunks in the snow
        for _ in range(int(rng.integers(1, 4))):
            x = int(rng.integers(0, size))
            w = max(1, int(size * rng.uniform(0.02, 0.05)))
            img[: int(size * rng.uniform(0.4, 0.8)), x:x + w] = [0.25, 0.2, 0.18]
    return img + rng.normal(0, 0.02, (size, size, 1))


HABITAT_RENDERERS: tuple[Callable, ...] = (
    _sky, _water, _grass, _foliage, _sand_rock, _road, _indoor_wood, _flowers, _snow
)


def render_background(habitat: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One background scene of a habitat: float32 (size, size, 3) in [0, 1]."""
    img = HABITAT_RENDERERS[habitat](size, rng).astype(np.float32)
    return np.clip(img, 0.0, 1.0)
