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

from mnist_common.files import atomic_write, sha256_of
from mnist_common.preprocessing import MNIST_MEAN, MNIST_STD

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "mnist-jax-torch exported model, version 1"
ARCHITECTURES = ("cnn", "vit")  # what the exported format covers: the models both frameworks implement


class ExportError(ValueError):
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


def read_config(directory: str | os.PathLike) -> dict:
    """``config.json`` of an exported model, after checking the folder, the config and the weights' SHA-256."""
    directory = Path(directory)
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
    for key, kind in (("weights", dict), ("num_classes", int), ("class_names", list), ("image_size", int)):
        if not isinstance(config.get(key), kind):
            raise ExportError(f"{path}: field {key!r} is missing or not a {kind.__name__}")
    if "variant" not in config:
        raise ExportError(f"{path}: field 'variant' is missing")
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise ExportError(f"{weights}: missing")
    expected = config["weights"].get("sha256")
    actual = sha256_of(weights)
    if actual != expected:
        raise ExportError(f"{weights}: SHA-256 {actual[:12]}... does not match {CONFIG_FILE}'s "
                          f"{str(expected)[:12]}...: the file was changed or damaged")
    return config
