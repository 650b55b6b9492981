"""Exported models: a folder holding ``model.safetensors`` and ``config.json``, readable by either framework.

The weights are in one canonical layout, the PyTorch twin's ``state_dict`` (keys,
shapes, float32), so ``torch_ref.models.load`` reads them as they are and
``jax_impl.models.load`` converts them with ``jax_impl.models.layout``.
``config.json`` says what the model is (architecture, preprocessing, class
names), where it came from (framework, mode, commit, seed) and what it reached
(test metrics), and holds the weights file's SHA-256, which every load checks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mnist_common.architectures import VIT_VARIANTS
from mnist_common.errors import UserError
from mnist_common.files import atomic_write, sha256_of
from mnist_common.preprocessing import MNIST_MEAN, MNIST_STD

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "mnist-jax-torch exported model, version 1"
ARCHITECTURES = ("cnn", "vit")  # what the exported format covers: the models both frameworks implement


class ExportError(UserError, ValueError):
    """An exported model that cannot be used as it is: one line naming the file and the problem."""


TWIN_LAYOUT = "the PyTorch twin's state_dict (torch_ref.models), float32"


def write_config(directory: Path, *, model: str, variant: str | None, num_classes: int, image_size: int,
                 metadata: dict | None = None, layout: str = TWIN_LAYOUT, preprocessing: dict | None = None) -> dict:
    """``config.json`` for the weights already written in ``directory``; returns it. ``layout`` and
    ``preprocessing`` default to the CNN's and the ViT's: MNIST's statistics on one grey channel."""
    directory = Path(directory)
    config = {
        "format": FORMAT,
        "model": model,
        "variant": variant,
        "num_classes": num_classes,
        "image_size": image_size,
        "preprocessing": preprocessing or {
            "input": "grey image, uint8 0-255, image_size x image_size, one channel",
            "scale": "x / 255", "mean": MNIST_MEAN, "std": MNIST_STD,
            "normalize": "(x / 255 - mean) / std",
        },
        "class_names": [str(c) for c in range(num_classes)],
        "weights": {"file": WEIGHTS_FILE, "sha256": sha256_of(directory / WEIGHTS_FILE),
                    "layout": layout},
        **(metadata or {}),
    }
    atomic_write(directory / CONFIG_FILE, json.dumps(config, indent=2) + "\n")
    return config


def torchvision_config(spec_name: str, image_size: int) -> dict:
    """``write_config``'s description of a fine-tuned torchvision model's weights (its network's state dict,
    which ``--weights PATH`` reads back in either framework) and of the MNIST adaptation in front of it."""
    classes = 11 if spec_name == "faster_rcnn" else 10
    return dict(
        model=spec_name, variant=None, num_classes=classes, image_size=image_size,
        preprocessing={"input": "MNIST normalised as for the CNN, one grey channel, 28 x 28",
                       "adapted": f"un-normalised, resized to {image_size} px, grey to RGB, then the weights' own "
                                  "mean and std (torch_ref.finetune, jax_impl.models.imagenet)"},
        layout=f"torchvision's {spec_name} state_dict, fine-tuned head ({classes} classes)",
    )


#: The sides an exported model may declare: a CNN needs 4 pixels for its two pools; beyond 256 the dense layer
#: alone would take gigabytes, which no MNIST model needs (this project's are 28).
MIN_SIDE, MAX_SIDE = 4, 256
#: Classes an exported model may declare.
MIN_CLASSES, MAX_CLASSES = 2, 1000


def read_config(directory: str | os.PathLike) -> dict:
    """``config.json`` of an exported model, after checking the folder, every field the loaders read, and the
    weights' SHA-256: an ExportError naming the file and the first problem, before anything is built."""
    directory = Path(directory)
    if directory.is_file():
        raise ExportError(f"{directory}: a file, not a model folder (an exported model is a folder with "
                          f"{CONFIG_FILE} and {WEIGHTS_FILE})")
    if not directory.is_dir():
        raise ExportError(f"{directory}: no such model folder")
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise ExportError(f"{path}: missing (an exported model has {CONFIG_FILE} and {WEIGHTS_FILE})")
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ExportError(f"{path}: not readable JSON ({err})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ExportError(f"{path}: not an exported model of this project (format {config.get('format')!r})"
                          if isinstance(config, dict) else f"{path}: not an exported model of this project")
    if config.get("model") not in ARCHITECTURES:
        raise ExportError(f"{path}: a {config.get('model')} model loads with --weights {directory / WEIGHTS_FILE}, "
                          f"not as an exported model (those are: {', '.join(ARCHITECTURES)})")
    problem = _config_problem(config)
    if problem:
        raise ExportError(f"{path}: {problem}")
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise ExportError(f"{weights}: missing")
    expected = config["weights"]["sha256"]
    actual = sha256_of(weights)
    if actual != expected:
        raise ExportError(f"{weights}: SHA-256 {actual[:12]}... does not match {CONFIG_FILE}'s "
                          f"{str(expected)[:12]}...: the file was changed or damaged")
    return config


def check_fits(config: dict, directory: str | os.PathLike, *, model: str, variant: str | None,
               num_classes: int = 10, image_size: int = 28) -> None:
    """ExportError unless the exported model ``config`` (read from ``directory``) is a ``model`` of ``variant``,
    ``num_classes`` classes and ``image_size`` px images: what a warm start needs before anything is built."""
    def name(kind, size):
        return f"{kind} {size}" if size else kind

    if (config["model"], config.get("variant")) != (model, variant):
        raise ExportError(f"{directory}: an exported {name(config['model'], config.get('variant'))}, not the "
                          f"{name(model, variant)} asked for")
    if (config["num_classes"], config["image_size"]) != (num_classes, image_size):
        raise ExportError(f"{directory}: a model of {config['num_classes']} classes at {config['image_size']} px, "
                          f"not {num_classes} at {image_size} px")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _config_problem(config: dict) -> str | None:
    """What is wrong with an exported CNN's or ViT's config, field by field (None: nothing)."""

    model, variant = config["model"], config.get("variant", "missing")
    if model == "cnn" and variant is not None:
        return f"field 'variant' must be null for a cnn, got {variant!r}"
    if model == "vit" and variant not in VIT_VARIANTS:
        return f"field 'variant' {variant!r} is not a ViT variant (choose from {', '.join(VIT_VARIANTS)})"
    classes, side = config.get("num_classes"), config.get("image_size")
    if not _is_int(classes) or not MIN_CLASSES <= classes <= MAX_CLASSES:
        return f"field 'num_classes' must be an integer in [{MIN_CLASSES}, {MAX_CLASSES}], got {classes!r}"
    if not _is_int(side) or not MIN_SIDE <= side <= MAX_SIDE:
        return f"field 'image_size' must be an integer in [{MIN_SIDE}, {MAX_SIDE}] pixels, got {side!r}"
    if model == "vit" and side % VIT_VARIANTS[variant].patch:
        return f"field 'image_size' {side} does not divide into the {variant} ViT's {VIT_VARIANTS[variant].patch} px " \
               "patches"
    names = config.get("class_names")
    if not isinstance(names, list) or len(names) != classes or not all(isinstance(n, str) for n in names):
        return f"field 'class_names' must list {classes} names (one per class), got {_brief(names)}"
    if len(set(names)) != len(names):
        return "field 'class_names' names a class twice"
    weights = config.get("weights")
    if not isinstance(weights, dict) or weights.get("file") != WEIGHTS_FILE \
            or not isinstance(weights.get("sha256"), str) or len(weights["sha256"]) != 64:
        return f"field 'weights' must hold file {WEIGHTS_FILE!r} and its 64-digit sha256, got {_brief(weights)}"
    pre = config.get("preprocessing")
    if not isinstance(pre, dict) or pre.get("mean") != MNIST_MEAN or pre.get("std") != MNIST_STD:
        return (f"field 'preprocessing' must hold MNIST's mean {MNIST_MEAN} and std {MNIST_STD} (what both loaders "
                f"apply), got {_brief(pre)}")
    return None


def _brief(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."
