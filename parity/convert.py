"""Weight conversion between the Flax NNX and PyTorch twins, both ways, in place.

The tables and layout rules live with the Flax models (``jax_impl.models.layout``:
one row per parameter, its Flax path, its PyTorch key and the rule between
them); this module applies them between live models. Keys and shapes are
checked before anything is written; any mismatch raises
:class:`ConversionError` naming the offending path, and the target is left
untouched.
"""

from __future__ import annotations

import numpy as np
import torch
import torchvision

import jax_impl.models
import torch_ref.models
from jax_impl.models.layout import (  # the tables and rules, also used by the parity suite
    ConversionError,
    Row,
    flax_params,
    flax_to_torch_array,
    set_flax_params,
    table,
    torch_to_flax_array,
)
from torch_ref.finetune.classifiers import MNISTClassifier as TorchMNISTClassifier

#: Each Flax model and its PyTorch twin: this project's twins, torchvision's own VGG16 and AlexNet (any
#: ``num_classes``), and the two read through the MNIST adaptation on either side.
TWINS = {jax_impl.models.CNN: torch_ref.models.CNN, jax_impl.models.ViT: torch_ref.models.ViT,
         jax_impl.models.VGG16: torchvision.models.VGG, jax_impl.models.AlexNet: torchvision.models.AlexNet,
         jax_impl.models.MNISTClassifier: TorchMNISTClassifier}


def table_for(flax_model, torch_model) -> list[Row]:
    """The conversion table of this pair; both must be twins of one kind."""
    kind = type(flax_model)
    if kind not in TWINS:
        raise ConversionError(f"no conversion table for {kind.__name__}")
    if not isinstance(torch_model, TWINS[kind]):
        raise ConversionError(f"{type(torch_model).__name__} is not the PyTorch twin of {kind.__name__}")
    if kind is jax_impl.models.MNISTClassifier:
        table_for(flax_model.net, torch_model.net)  # the networks inside must be twins too
    return table(flax_model)


# Every array crossing between the frameworks is copied: on the CPU, NumPy,
# PyTorch and JAX buffers can alias each other, and an optimizer updating one
# framework's weights in place (or XLA reusing a donated buffer) would then
# silently change the other's.


def torch_params(model) -> dict[str, np.ndarray]:
    """``{state_dict key: NumPy copy}``."""
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def _check_keys(table: list[Row], flax_keys, torch_keys) -> None:
    for side, expected, present in (("Flax", {r.flax for r in table}, set(flax_keys)),
                                    ("PyTorch", {r.torch for r in table}, set(torch_keys))):
        if expected - present:
            raise ConversionError(f"{sorted(expected - present)[0]}: in the table but not in the {side} model")
        if present - expected:
            raise ConversionError(f"{sorted(present - expected)[0]}: in the {side} model but not in the table")


# ------------------------------------------------------------------ the verbs


def torch_to_flax(torch_model, flax_model, *, table: list[Row] | None = None) -> None:
    """Copy ``torch_model``'s weights into ``flax_model``, in place."""
    table = table or table_for(flax_model, torch_model)
    src, dst = torch_params(torch_model), flax_params(flax_model)
    _check_keys(table, dst, src)
    new = {}
    for row in table:
        value = torch_to_flax_array(row, src[row.torch])
        if value.shape != dst[row.flax].shape:
            raise ConversionError(
                f"{row.flax}: converted shape {value.shape} from {row.torch} {src[row.torch].shape} "
                f"does not match the Flax shape {dst[row.flax].shape} (rule {row.rule})"
            )
        new[row.flax] = value
    set_flax_params(flax_model, new)


def flax_to_torch(flax_model, torch_model, *, table: list[Row] | None = None) -> None:
    """Copy ``flax_model``'s weights into ``torch_model``, in place."""
    table = table or table_for(flax_model, torch_model)
    src, dst = flax_params(flax_model), torch_model.state_dict()
    _check_keys(table, src, dst)
    new = {}
    for row in table:
        value = flax_to_torch_array(row, src[row.flax])
        if value.shape != tuple(dst[row.torch].shape):
            raise ConversionError(
                f"{row.torch}: converted shape {value.shape} from {row.flax} {src[row.flax].shape} "
                f"does not match the PyTorch shape {tuple(dst[row.torch].shape)} (rule {row.rule})"
            )
        new[row.torch] = torch.tensor(np.ascontiguousarray(value), dtype=dst[row.torch].dtype)
    with torch.no_grad():
        for key, value in new.items():
            dst[key].copy_(value)


def torch_grads_as_flax(torch_model, flax_model, *, table: list[Row] | None = None) -> dict[str, np.ndarray]:
    """PyTorch ``.grad`` of every parameter, laid out as the Flax parameter it maps to."""
    table = table or table_for(flax_model, torch_model)
    grads = {k: p.grad.detach().cpu().numpy().copy() for k, p in torch_model.named_parameters() if p.grad is not None}
    return {row.flax: torch_to_flax_array(row, grads[row.torch]) for row in table}
