"""Save a Flax model in the exported format, and load any exported model into Flax, whichever framework
trained it (``mnist_common.export``: canonical weights and ``config.json``)."""

from __future__ import annotations

import os
from pathlib import Path

from flax import nnx
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from jax_impl.models.cnn import CNN
from jax_impl.models.init import check_weights_set, without_weights
from jax_impl.models.layout import ConversionError, from_canonical, to_canonical
from jax_impl.models.vit import ViT
from mnist_common.export import (WEIGHTS_FILE, ExportError, check_fits, read_config, torchvision_config,
                                  write_config)
from mnist_common.files import write_via


def save(model: CNN | ViT, directory: str | os.PathLike, metadata: dict | None = None) -> dict:
    """Write ``model.safetensors`` (the canonical layout) and ``config.json`` into ``directory``; return the config.

    ``metadata`` (where it came from, what it reached) goes into ``config.json`` as it is.
    """

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = to_canonical(model)
    write_via(directory / WEIGHTS_FILE, lambda path: save_file(weights, path))
    kind, variant = ("vit", model.variant) if isinstance(model, ViT) else ("cnn", None)
    return write_config(directory, model=kind, variant=variant, num_classes=model.num_classes,
                        image_size=model.image_size, metadata=metadata)


def save_torchvision(model, directory: str | os.PathLike, metadata: dict | None = None) -> dict:
    """A fine-tuned VGG16 or AlexNet (``MNISTClassifier``) as its network's torchvision state dict in
    ``model.safetensors``, which ``--weights PATH`` reads in either framework, and ``config.json``; the config."""


    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = to_canonical(model.net)
    write_via(directory / WEIGHTS_FILE, lambda path: save_file(weights, path))
    return write_config(directory, metadata=metadata, **torchvision_config(model.arch, model.image_size))


def load(directory: str | os.PathLike, *, kernels: str = "auto", dtype=None) -> CNN | ViT:
    """The exported model in ``directory`` as a Flax model in evaluation mode (weights checked by SHA-256)."""

    config = read_config(directory)
    shape = dict(num_classes=config["num_classes"], image_size=config["image_size"], kernels=kernels, dtype=dtype)
    model = without_weights(lambda: ViT(config["variant"], **shape, rngs=nnx.Rngs(0)) if config["model"] == "vit"
                            else CNN(**shape, rngs=nnx.Rngs(0)))
    load_weights(model, directory, config)
    check_weights_set(model)
    model.eval()
    return model


def load_weights(model: CNN | ViT, directory: str | os.PathLike, config: dict | None = None) -> dict:
    """Set ``model``'s parameters from the exported model in ``directory`` (either framework's), checked to be this
    architecture first (``mnist_common.export.check_fits``); return its config. The rest of the model (its dropout
    stream, kernels, dtype and mode) stays as it was built: a warm start keeps its own seed's randomness."""
    config = config or read_config(directory)
    check_fits(config, directory, model="vit" if isinstance(model, ViT) else "cnn",
               variant=model.variant if isinstance(model, ViT) else None, num_classes=model.num_classes,
               image_size=model.image_size)
    weights = Path(directory) / WEIGHTS_FILE
    try:
        from_canonical(model, load_file(str(weights)), source=str(weights))
    except (SafetensorError, OSError) as err:
        raise ExportError(f"{weights}: not a readable safetensors file ({err})") from None
    except ConversionError as err:
        raise ExportError(str(err)) from None
    return config
