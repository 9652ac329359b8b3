"""What a chapter may read beside its parameters, declared in its front matter (`bgrepro: inputs: [...]`), each with
the identity the book runner hashes into the chapter's execution stamp: the runner knows no chapter by name, and a
chapter re-executes when what it declared changed (a photo added, a model installed), never for another chapter's."""

from __future__ import annotations

from pathlib import Path


def real_photos(parameters: dict) -> str:
    """The real photos the `realphotos` parameter names (or the shared ones): what the folder holds and its box CSV."""
    from ..data.photos import photos_identity
    from ..outputs import fingerprint
    from .realphotos import boxes_of, photos_of

    photos = photos_of(parameters.get("realphotos"))
    if photos is None or not Path(photos).is_dir():
        return "no photos"
    boxes = boxes_of(photos)
    return photos_identity(photos) + (fingerprint(boxes) if boxes else "no boxes")


def real_models(parameters: dict) -> str:
    """The ImageNet models of the real-photo chapter that are there: their keys and weights' identities."""
    from .realphotos import ladder

    return ";".join(f"{m.key}={m.weights}" for m in ladder(parameters.get("profile")))


def book_folders(data, synth, realphotos, profile: str | None = None, seed: int = 0) -> tuple[str, ...]:
    """Every folder the book's records are keyed by: the chapters' data and synthetic source, the generator study's
    sets (`sensitivity.data_folders`) and the real-photo chapter's photos and variants (`realphotos.data_folders`)."""
    from . import realphotos as rp
    from . import sensitivity

    return (str(data), str(synth), *sensitivity.data_folders(profile, seed),
            *rp.data_folders(realphotos, profile, seed))


#: The inputs a chapter may declare, by the name its front matter gives them.
INPUTS = {"real photos": real_photos, "real models": real_models}


def identity(names: list[str], parameters: dict) -> str:
    """The identity of a chapter's declared inputs; one error naming an input no chapter may declare."""
    unknown = [n for n in names if n not in INPUTS]
    if unknown:
        raise ValueError(f"unknown chapter input {unknown[0]!r}; declare one of {', '.join(INPUTS)}")
    return "".join(f"{name}:{INPUTS[name](parameters)}\n" for name in names)


__all__ = ["INPUTS", "book_folders", "identity", "real_models", "real_photos"]
