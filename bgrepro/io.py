"""Small helpers shared by every stage: atomic writes, checked image and table reads, one-line errors."""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


def first_line(err: BaseException) -> str:
    """The first line of an error message (its type when empty), for one-line errors."""
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:160]


def with_options(text: str, options: dict[str, str]) -> str:
    """`text` with every parameter it names in backticks (`class_map`) written as `options` names it (a command's
    --class-map); the library speaks in its parameters, and a command line shows its options instead."""
    return re.sub(r"`([a-z][a-z0-9_]*)`", lambda m: options.get(m.group(1), m.group(0)), text)


def strict_json(value):
    """`value` with every non-finite float (NaN, inf) replaced by None, so that it is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    return value


#: The errors of a folder that cannot be written into (no permission, a read-only file system).
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)
#: What torch's archive writer says when a write came up short (it raises RuntimeError, not OSError).
_SHORT_WRITE = ("unexpected pos", "file write failed", "PytorchStreamWriter failed")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Run `write(tmp)` on a temporary file beside `path`, then rename it into place. A folder that cannot be
    written into and a full disk are errors that name `path`, never the hidden temporary file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as err:
        if err.errno in _NOT_WRITABLE:  # named by the folder and the file meant, not by the hidden temporary name
            raise PermissionError(f"{path.parent}: folder is not writable (writing {path.name})") from None
        raise _named(err, path) from None
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # as a plain open() would create it (mkstemp makes 0600)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException as err:
        full = isinstance(err, RuntimeError) and any(s in str(err) for s in _SHORT_WRITE) and _disk_full(tmp)
        Path(tmp).unlink(missing_ok=True)
        if full:
            raise OSError(errno.ENOSPC, "No space left on device", str(path)) from None
        if isinstance(err, OSError) and err.errno is not None and err.filename in (tmp, None):
            raise _named(err, path) from None
        raise


def _named(err: OSError, path: Path) -> OSError:
    """The same error, naming the file meant instead of its temporary name."""
    return type(err)(err.errno, err.strerror or str(err), str(path))


def _disk_full(tmp: str) -> bool:
    """Whether the file system of `tmp` has (next to) no room left: what a short write there means."""
    try:
        return shutil.disk_usage(Path(tmp).parent).free < (1 << 20)
    except OSError:
        return False


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: The process's umask, read once (reading it means setting it, which is not thread-safe).
_UMASK = _read_umask()


def describe_difference(old: dict, new: dict) -> str:
    """The keys whose values differ between two argument records, as `key: old -> new` (three at most)."""
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    shown = [f"{k}: {json.dumps(old.get(k))[:40]} -> {json.dumps(new.get(k))[:40]}" for k in keys[:3]]
    return "; ".join(shown) + ("; ..." if len(keys) > 3 else "")


def read_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """A CSV as a spreadsheet writes it: UTF-8 with or without a byte-order mark, UTF-16 with one (Excel's
    "Unicode text"), else Windows-1252 (what Excel's plain "CSV" saves), comma-, semicolon- or tab-separated;
    returns (columns, rows), the column names stripped of spaces. A row with more fields than the header names
    is refused (a shifted column would silently read as another)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{path}: is a folder, not a CSV file") from None
    try:
        text = raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    if "\0" in text:
        raise ValueError(f"{path}: not a text CSV file (it holds binary data)")
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count) if first.strip() else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = []
    try:
        for row in reader:
            if None in row:
                raise ValueError(f"{path}:{reader.line_num}: {len(row) - 1 + len(row[None])} fields, but the header "
                                 f"names {len(reader.fieldnames)}")
            rows.append(row)
    except csv.Error as err:
        raise ValueError(f"{path}: malformed CSV ({err})") from None
    columns = [(c or "").strip() for c in (reader.fieldnames or ())]
    rows = [{(k or "").strip(): v for k, v in row.items()} for row in rows]
    return columns, rows


def remove_stale_parts(root: Path) -> int:
    """Delete temporary files that an interrupted run left under root; returns how many."""
    stale = list(Path(root).rglob(".*.part"))
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write bytes to `path` atomically."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: Path, text: str) -> None:
    """Write text to `path` atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text))


def encode_image(rgb: np.ndarray, fmt: str) -> bytes:
    """Encode a uint8 RGB array as PNG or JPEG bytes (deterministic for the same array)."""
    buf = io.BytesIO()
    img = Image.fromarray(rgb, mode="RGB")
    if fmt == "png":
        img.save(buf, format="PNG", optimize=False, compress_level=6)
    elif fmt in ("jpeg", "jpg"):
        img.save(buf, format="JPEG", quality=95, subsampling=0)
    else:
        raise ValueError(f"unknown image format {fmt!r}; use png or jpeg")
    return buf.getvalue()


def save_mask(path: Path, mask: np.ndarray) -> None:
    """Save a boolean mask as .npy, atomically."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(mask, dtype=bool))
    atomic_write_bytes(path, buf.getvalue())


def _to_rgb(img: Image.Image) -> np.ndarray:
    """uint8 RGB of an opened image in any mode: 16- and 32-bit grey scaled to 8 bits (not clipped to
    white), float images from [0, 1], transparency composited on white, palette, CMYK, grey as RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(img).astype(np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        grey = np.clip(np.round(a * 255.0 / top), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        grey = np.clip(np.round(a * (255.0 if a.max() <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", img.size, (255, 255, 255, 255)), img)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


@contextmanager
def _opened(path: Path, what: str):
    """An image file opened lazily (its header read, no pixel decoded), one clear error otherwise: a file of more
    pixels than PIL's limit (`Image.MAX_IMAGE_PIXELS`, a decompression bomb) is refused before it is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {what} file not found") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(f"{path}: too many pixels to open safely (more than {Image.MAX_IMAGE_PIXELS:,}); "
                         "refused before decoding it") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as err:
        raise ValueError(f"{path}: unreadable or truncated {what} ({err or 'empty file'})") from None
    with img:
        yield img


def read_image(path: Path) -> np.ndarray:
    """Read any image file as uint8 RGB, upright: the EXIF orientation is applied first (boxes and masks
    drawn on the photo as a viewer shows it then fit), and every mode is converted (`_to_rgb`)."""
    path = Path(path)
    with _opened(path, "image") as img:
        try:
            img.load()
            return _to_rgb(ImageOps.exif_transpose(img))
        except MemoryError:
            raise MemoryError(f"{path}: the image does not fit in memory") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as err:
            raise ValueError(f"{path}: unreadable or truncated image ({err})") from None


#: The first bytes of a NumPy .npy file.
_NPY_MAGIC = b"\x93NUMPY"


def _read_npy(path: Path, shape: tuple[int, int] | None) -> np.ndarray:
    """A .npy array: its header checked (magic, shape) before its data is read."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_NPY_MAGIC))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: mask file not found") from None
    except OSError as err:
        raise ValueError(f"{path}: unreadable mask ({err})") from None
    if head != _NPY_MAGIC:
        kind = _image_kind(path)
        raise ValueError(f"{path}: not a NumPy array (.npy){f', but a {kind} image' if kind else ''}; a mask is a "
                         ".npy array or an image file named as one (.png)")
    try:
        header = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{path}: unreadable mask ({err or 'empty file'})") from None
    _check_mask_shape(path, header.shape, shape)
    return np.array(header)


def _image_kind(path: Path) -> str | None:
    """The format of an image file (JPEG, PNG, ...) from its header, or None when it is not one."""
    try:
        with Image.open(path) as img:
            return img.format
    except Exception:  # noqa: BLE001 - anything that is not an image
        return None


def _check_mask_shape(path: Path, got: tuple[int, ...], shape: tuple[int, int] | None) -> None:
    if shape is not None and len(got) >= 2 and tuple(got[:2]) != tuple(shape):
        raise ValueError(f"{path}: mask is {got[1]}x{got[0]} but its image is {shape[1]}x{shape[0]} (width x height)")


def read_mask(path: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a boolean mask (.npy or an image: non-zero = foreground), checking its size before decoding it."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        mask = _read_npy(path, shape)
    else:
        with _opened(path, "mask") as img:
            _check_mask_shape(path, img.size[::-1], shape)
            try:
                mask = np.asarray(img.convert("L"))
            except (OSError, ValueError, EOFError) as err:
                raise ValueError(f"{path}: unreadable mask ({err})") from None
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"{path}: mask must be 2-D (H, W), got shape {mask.shape}")
    if mask.dtype.kind not in "biuf":
        raise ValueError(f"{path}: mask must hold numbers or booleans, got dtype {mask.dtype}")
    if mask.dtype.kind == "f" and not np.isfinite(mask).all():
        raise ValueError(f"{path}: mask holds NaN or infinite values")
    return mask.astype(bool)


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight inclusive box (xmin, ymin, xmax, ymax) of a non-empty mask."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if len(xs) == 0:
        raise ValueError("empty mask has no box")
    return int(xs[0]), int(ys[0]), int(xs[-1]), int(ys[-1])


def covers_image(box: tuple[int, int, int, int], shape: tuple[int, ...]) -> bool:
    """Whether an inclusive box spans a whole image of `shape` (H, W, ...): no background outside it."""
    return tuple(box) == (0, 0, shape[1] - 1, shape[0] - 1)
