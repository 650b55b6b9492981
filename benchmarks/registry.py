"""Which models the runner knows, and where each framework's class lives.

Adding a model is one line in :data:`MODELS`: its classes as ``module:Name``
strings (imported only when that framework runs) and its presets.
"""

from __future__ import annotations

import dataclasses
import importlib

from benchmarks.presets import CNN_PRESETS, VIT_PRESETS, Preset


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    jax: str | None  # "module:Class" of the Flax NNX model, built as Class(rngs=nnx.Rngs(seed))
    torch: str | None  # "module:Class" of the PyTorch model, built as Class()
    presets: dict[str, Preset]
    description: str = ""
    variants: tuple[str, ...] = ()  # names in the models' own variants tables (checked by a test)


MODELS: dict[str, ModelSpec] = {
    "cnn": ModelSpec("jax_impl.models:CNN", "torch_ref.models:CNN", CNN_PRESETS, "2 conv + 2 dense layers, dropout"),
    "vit": ModelSpec("jax_impl.models:ViT", "torch_ref.models:ViT", VIT_PRESETS, "Vision Transformer from scratch",
                     variants=("tiny/7", "tiny/4", "small/4")),
}


def import_object(path: str):
    """``"package.module:Name"`` -> the object."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)
