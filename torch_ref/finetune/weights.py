"""Which weights a torchvision model starts from, and a record of the ones it really used.

``--weights`` takes one of:

* ``pretrained``: the torchvision weights enum (``VGG16_Weights.IMAGENET1K_V1``...).
  The file is read from the TORCH_HOME cache (``torch.hub.get_dir()/checkpoints``)
  or downloaded there when online. Offline with no cached file: :class:`WeightsUnavailable`,
  whose one-line message names the file, its URL and where to put it.
* ``auto``: ``pretrained`` when the file is cached or downloadable, otherwise random
  initialisation, with a loud warning.
* ``none``: random initialisation (the builders still set ``weights_backbone=None``,
  so nothing downloads by surprise).
* a path: a state dict saved with ``torch.save`` (read with ``weights_only=True``)
  or a ``.safetensors`` file.

Every builder returns its model with a :class:`WeightsInfo` attached, so a
report can say which weights a run used: the enum name and the file's SHA-256,
or "random init".
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import urllib.error
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file as load_safetensors
from safetensors.torch import save_file

from mnist_common.architectures import WEIGHTS_CHOICES
from mnist_common.errors import UserError
from mnist_common.export import WEIGHTS_FILE, torchvision_config, write_config
from mnist_common.files import sha256_of, write_via

# torch.hub names cached files "<name>-<first hex digits of the SHA-256>.<ext>".
_HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")


class WeightsError(UserError):
    """Weights that cannot be used: a one-line message for the user."""


class WeightsUnavailable(WeightsError):
    """Pretrained weights that are neither cached nor downloadable (``auto`` falls back on this)."""


@dataclasses.dataclass(frozen=True)
class WeightsInfo:
    """What a model was initialised from."""

    source: str  # "torchvision", "file" or "random init"
    name: str | None = None  # the enum ("VGG16_Weights.IMAGENET1K_V1") or the file's path
    sha256: str | None = None  # of the file that was loaded
    note: str | None = None  # e.g. why ``auto`` fell back to random init

    def label(self, seed: int | None = None) -> str:
        if self.source == "random init":
            return "random init" + (f" (seed {seed})" if seed is not None else "")
        return f"{self.name} (sha256 {self.sha256[:12]})"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def enum_name(weights) -> str:
    """``VGG16_Weights.IMAGENET1K_V1``."""
    return f"{type(weights).__name__}.{weights.name}"


def cache_path(weights) -> Path:
    """Where torch.hub keeps (or will keep) the file of a torchvision weights enum."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def _missing_message(weights) -> str:
    path = cache_path(weights)
    return (f"pretrained weights {enum_name(weights)} are not available offline: put {path.name} "
            f"(from {weights.url}) at {path} (the TORCH_HOME cache; set TORCH_HOME to move it), "
            "or pass --weights PATH or --weights none")


def load_pretrained(weights, *, progress: bool = True) -> tuple[dict, WeightsInfo]:
    """The state dict of a torchvision weights enum, from the cache or downloaded into it."""
    path = cache_path(weights)
    if not path.is_file():
        try:
            # torchvision's own route: downloads into the cache and checks the hash in the name
            torch.hub.load_state_dict_from_url(weights.url, progress=progress, check_hash=True, map_location="cpu")
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            raise WeightsUnavailable(_missing_message(weights) + f" [download failed: {err}]") from None
        except RuntimeError as err:  # a hash mismatch after download
            raise WeightsError(f"downloaded {path.name} is corrupt: {err}") from None
    sha = sha256_of(path)
    expected = _HASH_IN_NAME.search(path.name)
    if expected and not sha.startswith(expected.group(1)):
        raise WeightsError(f"cached {path} is corrupt: its SHA-256 starts {sha[:len(expected.group(1))]}, "
                           f"the file name says {expected.group(1)}; delete it and download it again")
    state = _read_state_dict(path)
    return state, WeightsInfo("torchvision", enum_name(weights), sha)


def load_file(path: str | os.PathLike) -> tuple[dict, WeightsInfo]:
    """A state dict from ``torch.save`` (read with ``weights_only=True``) or a ``.safetensors`` file."""
    path = Path(path)
    if path.is_dir():
        raise WeightsError(f"--weights {path}: a folder, not a state-dict file")
    if not path.is_file():
        raise WeightsError(f"--weights {path}: no such file (expected auto, pretrained, none or a state-dict file)")
    return _read_state_dict(path), WeightsInfo("file", str(path), sha256_of(path))


def _read_state_dict(path: Path) -> dict:
    try:
        if path.suffix == ".safetensors":

            state = load_safetensors(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user mistake
        # Not PyTorch's own message: it suggests weights_only=False, which would run the file's code.
        kind = "a .safetensors file" if path.suffix == ".safetensors" else "a state dict saved with torch.save"
        raise WeightsError(f"{path} is not {kind} that loads safely ({type(err).__name__}); accepted: "
                           "torch.save(model.state_dict()) files, read with weights_only=True (pickled objects "
                           "are refused), or .safetensors files") from None
    for key in ("state_dict", "model"):  # common checkpoint wrappers
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return _strip_prefixes(dict(state))


def _strip_prefixes(state: dict) -> dict:
    """Drop a ``module.`` (DataParallel) or ``net.`` (our wrappers) prefix shared by every key."""
    for prefix in ("module.", "net."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def check_available(choice: str, enum, *, progress: bool = True) -> None:
    """Fail early, before any training, on weights that :func:`resolve` would reject.

    ``pretrained``: the file is cached, or gets downloaded into the cache now.
    A path: the file exists. ``auto`` and ``none`` never fail.
    """
    if choice == "pretrained" and not cache_path(enum).is_file():
        load_pretrained(enum, progress=progress)
    elif choice not in WEIGHTS_CHOICES and not Path(choice).is_file():
        raise WeightsError(f"--weights {choice}: no such file (expected auto, pretrained, none or a state-dict file)")


def resolve(choice: str, enum, *, progress: bool = True) -> tuple[dict | None, WeightsInfo]:
    """``--weights`` -> (state dict or None for random init, what was used).

    ``enum`` is the torchvision weights enum member that ``pretrained`` means.
    """
    if choice == "none":
        return None, WeightsInfo("random init")
    if choice == "pretrained":
        return load_pretrained(enum, progress=progress)
    if choice == "auto":
        try:
            return load_pretrained(enum, progress=progress)
        except WeightsUnavailable as err:
            note = f"--weights auto: {err}; training from RANDOM INITIALISATION instead"
            banner = "!" * 78
            print(f"{banner}\nWARNING: {note}\n{banner}", file=sys.stderr)
            return None, WeightsInfo("random init", note="pretrained weights unavailable (--weights auto)")
    return load_file(choice)


def load_matching(module: torch.nn.Module, state: dict, source: str) -> None:
    """``load_state_dict(strict=True)``, with a one-line error naming the first bad keys."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
             if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first {unexpected[0]})")
        if wrong:
            parts.append(f"{len(wrong)} of the wrong shape (first {wrong[0]})")
        raise WeightsError(f"weights from {source} do not fit {type(module).__name__}: " + ", ".join(parts))
    module.load_state_dict(state, strict=True)


def save_state_dict(model: torch.nn.Module, directory: str | os.PathLike, *, spec_name: str, metadata: dict) -> dict:
    """A fine-tuned torchvision model as ``model.safetensors`` (the network's state dict, which ``--weights PATH``
    reads back) and ``config.json`` (``mnist_common.export``); returns the config."""


    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}
    write_via(directory / WEIGHTS_FILE, lambda path: save_file(state, path))
    return write_config(directory, metadata=metadata, **torchvision_config(spec_name, model.image_size))
