"""Which models the runner knows, and where each framework's implementation lives.

Adding a model is one entry in :data:`MODELS`: its classes as ``module:Name``
strings (imported only when that framework runs) and its presets.
"""

from __future__ import annotations

import dataclasses
import importlib

from benchmarks.presets import (
    ALEXNET_PRESETS,
    CNN_PRESETS,
    FASTER_RCNN_PRESETS,
    VGG16_PRESETS,
    VIT_PRESETS,
    Preset,
)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    jax: str | None  # "module:Class" of the Flax NNX model, built as Class(variant?, kernels=, rngs=); for a
    # torchvision model its Flax port, built as Class(num_classes=, dtype=, rngs=) and read through MNISTClassifier
    torch: str | None  # "module:Class" of the PyTorch model, built as Class(variant?)
    presets: dict[str, Preset]
    description: str = ""
    variants: tuple[str, ...] = ()  # names in the models' own variants tables (checked by a test)
    # torchvision models: built as Class(variant?, weights=, image_size=, ...), PyTorch only
    finetune: bool = False
    torch_task: str | None = None  # "module:OBJECT", a torch_ref.train.Task; None: classification
    convnet: bool = False  # convolutions all the way: channels-last memory format applies
    processes: bool = False  # trains data-parallel over several processes (--processes N, torchrun, SLURM)


MODELS: dict[str, ModelSpec] = {
    "cnn": ModelSpec("jax_impl.models:CNN", "torch_ref.models:CNN", CNN_PRESETS, "2 conv + 2 dense layers, dropout",
                     convnet=True, processes=True),
    "vit": ModelSpec("jax_impl.models:ViT", "torch_ref.models:ViT", VIT_PRESETS, "Vision Transformer from scratch",
                     variants=("tiny/7", "tiny/4", "small/4"), processes=True),
    "vgg16": ModelSpec("jax_impl.models:VGG16", "torch_ref.finetune:vgg16", VGG16_PRESETS,
                       "torchvision VGG16, fine-tuned", finetune=True, convnet=True),
    "alexnet": ModelSpec("jax_impl.models:AlexNet", "torch_ref.finetune:alexnet", ALEXNET_PRESETS,
                         "torchvision AlexNet, fine-tuned", finetune=True, convnet=True),
    "faster_rcnn": ModelSpec(None, "torch_ref.finetune:faster_rcnn", FASTER_RCNN_PRESETS,
                             "torchvision Faster R-CNN, top detection as the class", finetune=True,
                             variants=("mobilenet_v3_large_320_fpn", "resnet50_fpn_v2"),
                             torch_task="torch_ref.finetune.detection:DETECTION"),
}


def parse_models(value: str) -> list[str]:
    """``all``, one name, or a comma-separated list -> model names in registry order."""
    names = list(MODELS) if value == "all" else [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        raise ValueError(f"unknown model {', '.join(map(repr, unknown)) or repr(value)} (choose from {', '.join(MODELS)}, all)")
    return [n for n in MODELS if n in names]


def import_object(path: str):
    """``"package.module:Name"`` -> the object."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)
