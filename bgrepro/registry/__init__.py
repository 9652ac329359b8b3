"""The only door to a model: any file, folder, hub id or name -> a `LoadedModel` a command can score, adapt to a
dataset (`LoadedModel.for_data`) or use as a frozen backbone for RPS (`LoadedModel.trunk`).

- `formats`: the table of formats (bgrepro and official checkpoints, state dicts, TorchScript, torch.export,
  ONNX, Hugging Face, torchvision or timm names with their ImageNet weights, ImageNet classifiers whose weights
  a package ships, the RPS paper's self-supervised backbones), one small class each;
- `model`: the typed records (`LoadedModel`, `Preprocess`);
- `classes`: which output is which of the data's classes (IN-9's 1000 -> 9 mapping is one case);
- `adapters`: the small modules that make every network look alike;
- `architectures`: the networks by name (what training builds);
- `weights`: every torch file read as plain data, one state-dict reader, the pretrained weights' caches;
- `export`: torch.export archives read without running anything they hold.
"""

from __future__ import annotations

from .adapters import core_of, reaches_layers
from .architectures import ARCHS, IMAGENET_MEAN, IMAGENET_STD, TORCHVISION_ARCHS, create_model, feature_trunk
from .classes import read_class_map, read_classes, resolve_outputs
from .formats import CHECKPOINT_FORMAT, FORMATS, detect_format, from_module, load
from .model import ASSUMED, LoadedModel, Preprocess
from .weights import (
           PACKAGED,
           PAPER_WEIGHTS,
           PUBLISHED_FILES,
           SELF_SUPERVISED,
           available_pretrained,
           installed_packaged,
           model_name,
           pretrained_weights_path,
           read_torch,
           start_from_imagenet,
           weights_file,
)

__all__ = ["ARCHS", "ASSUMED", "CHECKPOINT_FORMAT", "FORMATS", "IMAGENET_MEAN", "IMAGENET_STD", "PACKAGED",
           "PAPER_WEIGHTS", "PUBLISHED_FILES",
           "SELF_SUPERVISED", "TORCHVISION_ARCHS", "LoadedModel", "Preprocess", "available_pretrained", "core_of",
           "create_model", "detect_format", "feature_trunk", "from_module", "installed_packaged", "load",
           "model_name",
           "pretrained_weights_path", "reaches_layers", "read_class_map", "read_classes", "read_torch",
           "resolve_outputs",
           "start_from_imagenet", "weights_file"]
