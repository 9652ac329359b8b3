"""Which of a model's outputs is which of the data's classes: by the model's own names, a classes file, a class
map (IN-9's 1000 -> 9 mapping of ImageNet classes is one instance), or, when the counts agree, the order of
the data's sorted class folders, said as assumed."""

from __future__ import annotations

import json
from pathlib import Path

from ..in9 import CLASS_FOLDERS, IMAGENET_INDICES
from ..io import first_line


def read_classes(path: Path) -> tuple[str, ...]:
    """A classes file: one name per line, in the model's output order (blank lines and # comments skipped)."""
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: classes file not found") from None
    except UnicodeDecodeError:
        lines = Path(path).read_text(encoding="cp1252").splitlines()
    names = tuple(ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#"))
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(f"{path}: a classes file needs at least two distinct names, one per line")
    return names


def read_class_map(path: Path) -> dict[str, str]:
    """A class map: JSON object from a model output (its index or name) to one of the data's classes."""
    try:
        mapping = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: class map not found") from None
    except ValueError as err:
        raise ValueError(f"{path}: not JSON ({first_line(err)})") from None
    if not isinstance(mapping, dict) or not mapping or not all(isinstance(v, str) for v in mapping.values()):
        raise ValueError(f"{path}: a class map is a JSON object {{model output (index or name): data class}}")
    return {str(k): v for k, v in mapping.items()}


def _few(names) -> str:
    names = list(names)
    return ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")


def resolve_outputs(outputs: tuple[str, ...] | None, n_outputs: int, data_classes: list[str],
                    classes_file: Path | None = None, class_map: Path | None = None,
                    source: str = "the model") -> tuple[list[int] | None, str]:
    """How the model's outputs map to the data's classes: (groups, said) where groups[i] is the data class of
    output i (len(data_classes): none) or None for the identity, and `said` how it was decided."""
    k = len(data_classes)
    if classes_file is not None:
        outputs, where = read_classes(classes_file), f"the classes file {classes_file}"
        if len(outputs) != n_outputs:
            raise ValueError(f"{classes_file}: names {len(outputs)} classes but {source} has {n_outputs} outputs")
    else:
        where = "the model's own class names"
    if class_map is not None:
        return _mapped(read_class_map(class_map), class_map, outputs, n_outputs, data_classes)
    if outputs is not None:
        if list(outputs) == list(data_classes):
            return None, f"{where}, the data's classes in the same order"
        if len(outputs) == k and set(outputs) == set(data_classes):
            return [data_classes.index(c) for c in outputs], f"{where}, matched to the data's classes by name"
        if n_outputs == 1000 and tuple(data_classes) == CLASS_FOLDERS:
            pass  # an ImageNet classifier with named outputs on IN-9: the paper's mapping below
        else:
            raise ValueError(f"{source}: the model was trained on {len(outputs)} classes ({_few(outputs)}) but the "
                             f"data has {k} ({_few(data_classes)}); pass `class_map` FILE (JSON: model output -> "
                             "data class)")
    if n_outputs == 1000 and imagenet_groups(data_classes) is not None:
        return imagenet_groups(data_classes), "IN-9's 1000 -> 9 mapping of ImageNet classes (the paper's)"
    if n_outputs == k:
        return None, (f"assumed: output i is the data's i-th class folder in sorted order ({_few(data_classes)}); "
                      "pass `classes` FILE to say otherwise")
    raise ValueError(f"{source} has {n_outputs} outputs but the data has {k} classes; pass `class_map` FILE (JSON: "
                     "model output -> data class) or `classes` FILE")


def _mapped(mapping: dict[str, str], class_map: Path, outputs: tuple[str, ...] | None, n_outputs: int,
            data_classes: list[str]) -> tuple[list[int], str]:
    """The groups of a class map (model output index or name -> data class); outputs it maps to no class count
    as wrong."""
    k = len(data_classes)
    unknown = sorted(set(mapping.values()) - set(data_classes))
    if unknown:
        raise ValueError(f"{class_map}: maps to {unknown[0]!r}, which is not a class of the data "
                         f"({', '.join(data_classes[:6])}{', ...' if k > 6 else ''})")
    groups, names = [k] * n_outputs, list(outputs or ())
    for key, target in mapping.items():
        if key.lstrip("-").isdigit() and key not in names:
            index = int(key)
        elif key in names:
            index = names.index(key)
        else:
            raise ValueError(f"{class_map}: {key!r} is neither an output index (0 to {n_outputs - 1}) nor an output "
                             "name of the model")
        if not 0 <= index < n_outputs:
            raise ValueError(f"{class_map}: output {index} is out of range (the model has {n_outputs} outputs)")
        groups[index] = data_classes.index(target)
    missing = [c for c in data_classes if data_classes.index(c) not in groups]
    if missing:
        raise ValueError(f"{class_map}: no output maps to the data's class {missing[0]!r}")
    return groups, (f"the class map {class_map}: {sum(g < k for g in groups)} of {n_outputs} outputs mapped to the "
                    f"data's {k} classes, the others count as wrong")


def imagenet_groups(data_classes: list[str]) -> list[int] | None:
    """IN-9's data class of each of ImageNet's 1000 classes (len(data_classes): none), or None when the data's
    classes are not IN-9's."""
    if tuple(data_classes) != CLASS_FOLDERS:
        return None
    groups = [len(data_classes)] * 1000
    for c, indices in enumerate(IMAGENET_INDICES):
        for i in indices:
            groups[i] = c
    return groups


__all__ = ["read_classes", "read_class_map", "resolve_outputs", "imagenet_groups"]
