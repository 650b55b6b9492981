"""Which models the runner knows, where each framework's implementation lives, and what each model can do.

Adding a model is one entry in :data:`MODELS`: its classes as ``module:Name``
strings (imported only when that framework runs), its presets, and its
capabilities, which decide the settings that apply to it (a setting's
``applies``, in ``harness.settings``).
"""

from __future__ import annotations

import dataclasses
import importlib

from harness import presets
from mnist_common.architectures import VIT_VARIANTS


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    jax: str | None  # "module:Class" of the Flax NNX model, built as Class(variant?, kernels=, rngs=); for a
    # torchvision model its Flax port, built as Class(num_classes=, dtype=, rngs=) and read through MNISTClassifier
    torch: str | None  # "module:Class" of the PyTorch model, built as Class(variant?)
    presets: dict[str, dict]  # preset name -> setting values (harness.presets)
    description: str = ""
    variants: tuple[str, ...] = ()  # names in the models' own variants tables (checked by a test)
    # torchvision models: built as Class(variant?, weights=, image_size=, ...)
    finetune: bool = False
    torch_task: str | None = None  # "module:OBJECT", a torch_ref.train.Task; None: classification
    convnet: bool = False  # convolutions all the way: channels-last memory format applies
    processes: bool = False  # trains data-parallel over several processes (--processes N, torchrun, SLURM)
    freezable: bool = False  # a features/classifier split whose features can stay frozen

    @property
    def jax_layers(self) -> bool:
        """Its Flax model has a choice of layers (``kernels``): every model with a JAX side."""
        return self.jax is not None

    @property
    def compilable(self) -> bool:
        """Its PyTorch step goes through ``torch.compile`` (the detector's does not)."""
        return self.torch_task is None

    def can(self, capability: str | None) -> bool:
        """Whether it has ``capability`` (a field or property above; None: every model has it)."""
        return capability is None or bool(getattr(self, capability))


MODELS: dict[str, ModelSpec] = {
    "cnn": ModelSpec("jax_impl.models:CNN", "torch_ref.models:CNN", presets.CNN, "2 conv + 2 dense layers, dropout",
                     convnet=True, processes=True),
    "vit": ModelSpec("jax_impl.models:ViT", "torch_ref.models:ViT", presets.VIT, "Vision Transformer from scratch",
                     variants=tuple(VIT_VARIANTS), processes=True),
    "vgg16": ModelSpec("jax_impl.models:VGG16", "torch_ref.finetune:vgg16", presets.VGG16,
                       "torchvision VGG16, fine-tuned", finetune=True, convnet=True, freezable=True),
    "alexnet": ModelSpec("jax_impl.models:AlexNet", "torch_ref.finetune:alexnet", presets.ALEXNET,
                         "torchvision AlexNet, fine-tuned", finetune=True, convnet=True, freezable=True),
    "faster_rcnn": ModelSpec(None, "torch_ref.finetune:faster_rcnn", presets.FASTER_RCNN,
                             "torchvision Faster R-CNN, top detection as the class", finetune=True,
                             variants=("mobilenet_v3_large_320_fpn", "resnet50_fpn_v2"),
                             torch_task="torch_ref.finetune.detection:DETECTION"),
}


def parse_models(value: str) -> list[str]:
    """``all``, one name, or a comma-separated list -> model names in registry order."""
    names = list(MODELS) if value == "all" else [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        raise ValueError(f"unknown model {', '.join(map(repr, unknown)) or repr(value)} "
                         f"(choose from {', '.join(MODELS)}, all)")
    return [n for n in MODELS if n in names]


def import_object(path: str):
    """``"package.module:Name"`` -> the object."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)
