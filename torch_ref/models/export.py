"""Save a PyTorch model in the exported format, and load any exported model into PyTorch, whichever framework
trained it (``mnist_common.export``: the canonical layout is this package's own ``state_dict``)."""

from __future__ import annotations

import os
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from mnist_common.export import WEIGHTS_FILE, ExportError, check_fits, read_config, write_config
from mnist_common.files import write_via
from torch_ref.models.cnn import CNN
from torch_ref.models.vit import ViT


def save(model: CNN | ViT, directory: str | os.PathLike, metadata: dict | None = None) -> dict:
    """Write ``model.safetensors`` (its ``state_dict``, float32) and ``config.json`` into ``directory``."""

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    write_via(directory / WEIGHTS_FILE, lambda path: save_file(state, path))
    kind, variant = ("vit", model.variant) if isinstance(model, ViT) else ("cnn", None)
    return write_config(directory, model=kind, variant=variant, num_classes=model.num_classes,
                        image_size=model.image_size, metadata=metadata)


def load(directory: str | os.PathLike, *, device=None) -> nn.Module:
    """The exported model in ``directory`` as a PyTorch model in evaluation mode (weights checked by SHA-256)."""

    config = read_config(directory)
    shape = dict(num_classes=config["num_classes"], image_size=config["image_size"])
    model = ViT(config["variant"], **shape) if config["model"] == "vit" else CNN(**shape)
    load_weights(model, directory, config)
    model.eval()
    return model.to(device) if device is not None else model


def load_weights(model: CNN | ViT, directory: str | os.PathLike, config: dict | None = None) -> dict:
    """Set ``model``'s parameters from the exported model in ``directory`` (either framework's), checked to be this
    architecture first (``mnist_common.export.check_fits``); return its config. The model keeps its device, mode
    and everything else it was built with: a warm start keeps its own seed's randomness."""
    config = config or read_config(directory)
    check_fits(config, directory, model="vit" if isinstance(model, ViT) else "cnn",
               variant=model.variant if isinstance(model, ViT) else None, num_classes=model.num_classes,
               image_size=model.image_size)
    weights = Path(directory) / WEIGHTS_FILE
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as err:
        raise ExportError(f"{weights}: not a readable safetensors file ({err})") from None
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        first = (f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}" if unexpected
                 else f"{wrong[0]} {tuple(state[wrong[0]].shape)} vs {tuple(own[wrong[0]].shape)}")
        raise ExportError(f"{weights} does not fit {type(model).__name__}: {first}")
    model.load_state_dict(state)
    return config
