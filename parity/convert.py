"""Weight conversion between the Flax NNX and PyTorch twins, both ways, in place.

Each model has an explicit table: one row per parameter, naming the Flax path,
the PyTorch ``state_dict`` key and the layout rule between them:

* ``copy``: same layout (biases, LayerNorm scale/weight, class token,
  position embeddings);
* ``conv``: Flax HWIO <-> PyTorch OIHW (transpose 2,3,1,0 and back);
* ``dense``: Flax (in, out) <-> PyTorch (out, in);
* ``flatten_dense``: a dense layer right after a flatten; Flax flattens NHWC
  in H-W-C order and PyTorch NCHW in C-H-W order, so the input rows are
  permuted as well as transposed.

Keys and shapes are checked before anything is written; any mismatch raises
:class:`ConversionError` naming the offending path, and the target is left
untouched.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

import jax_impl.models
import torch_ref.models


class ConversionError(ValueError):
    """Keys, shapes or model types do not match; the message names the path."""


@dataclasses.dataclass(frozen=True)
class Row:
    flax: str  # dotted path in nnx.state(model, nnx.Param)
    torch: str  # state_dict key
    rule: str  # copy | conv | dense | flatten_dense
    feature_map: tuple[int, int, int] | None = None  # (H, W, C) before the flatten, for flatten_dense


def _dense(flax_prefix: str, torch_prefix: str | None = None) -> list[Row]:
    t = torch_prefix or flax_prefix
    return [Row(f"{flax_prefix}.kernel", f"{t}.weight", "dense"), Row(f"{flax_prefix}.bias", f"{t}.bias", "copy")]


def _norm(prefix: str) -> list[Row]:
    return [Row(f"{prefix}.scale", f"{prefix}.weight", "copy"), Row(f"{prefix}.bias", f"{prefix}.bias", "copy")]


def cnn_table(model: jax_impl.models.CNN) -> list[Row]:
    channels = model.conv2.out_features
    side = int(round((model.fc1.in_features // channels) ** 0.5))
    return [
        Row("conv1.kernel", "conv1.weight", "conv"), Row("conv1.bias", "conv1.bias", "copy"),
        Row("conv2.kernel", "conv2.weight", "conv"), Row("conv2.bias", "conv2.bias", "copy"),
        Row("fc1.kernel", "fc1.weight", "flatten_dense", (side, side, channels)), Row("fc1.bias", "fc1.bias", "copy"),
        *_dense("fc2"),
    ]


def vit_table(model: jax_impl.models.ViT) -> list[Row]:
    rows = [
        Row("patch_embed.kernel", "patch_embed.weight", "conv"), Row("patch_embed.bias", "patch_embed.bias", "copy"),
        Row("cls_token", "cls_token", "copy"), Row("pos_embed", "pos_embed", "copy"),
    ]
    for i in range(len(model.blocks)):
        b = f"blocks.{i}"
        rows += _norm(f"{b}.norm1")
        for proj in ("q", "k", "v", "proj"):
            rows += _dense(f"{b}.attn.{proj}")
        rows += _norm(f"{b}.norm2") + _dense(f"{b}.mlp.fc1") + _dense(f"{b}.mlp.fc2")
    return rows + _norm("norm") + _dense("head")


TABLES = {jax_impl.models.CNN: cnn_table, jax_impl.models.ViT: vit_table}
TWINS = {jax_impl.models.CNN: torch_ref.models.CNN, jax_impl.models.ViT: torch_ref.models.ViT}


def table_for(flax_model, torch_model) -> list[Row]:
    """The conversion table of this pair; both must be twins of one kind."""
    kind = type(flax_model)
    if kind not in TABLES:
        raise ConversionError(f"no conversion table for {kind.__name__}")
    if not isinstance(torch_model, TWINS[kind]):
        raise ConversionError(f"{type(torch_model).__name__} is not the PyTorch twin of {kind.__name__}")
    return TABLES[kind](flax_model)


# ------------------------------------------------------------------- the rules


def torch_to_flax_array(row: Row, w: np.ndarray) -> np.ndarray:
    if row.rule == "copy":
        return w
    if row.rule == "conv":
        return w.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    if row.rule == "dense":
        return w.T  # (out, in) -> (in, out)
    if row.rule == "flatten_dense":
        h, wd, c = row.feature_map
        out = w.shape[0]
        return w.reshape(out, c, h, wd).transpose(0, 2, 3, 1).reshape(out, h * wd * c).T  # C-H-W -> H-W-C rows
    raise ConversionError(f"{row.flax}: unknown rule {row.rule!r}")


def flax_to_torch_array(row: Row, k: np.ndarray) -> np.ndarray:
    if row.rule == "copy":
        return k
    if row.rule == "conv":
        return k.transpose(3, 2, 0, 1)  # HWIO -> OIHW
    if row.rule == "dense":
        return k.T
    if row.rule == "flatten_dense":
        h, wd, c = row.feature_map
        out = k.shape[1]
        return k.T.reshape(out, h, wd, c).transpose(0, 3, 1, 2).reshape(out, c * h * wd)  # H-W-C -> C-H-W
    raise ConversionError(f"{row.flax}: unknown rule {row.rule!r}")


# ----------------------------------------------------------------- flat access


# Every array crossing between the frameworks is copied: on the CPU, NumPy,
# PyTorch and JAX buffers can alias each other, and an optimizer updating one
# framework's weights in place (or XLA reusing a donated buffer) would then
# silently change the other's.


def flax_params(model) -> dict[str, np.ndarray]:
    """``{dotted path: NumPy copy}`` of the model's ``nnx.Param`` leaves."""
    return {".".join(map(str, p)): np.array(v.get_value()) for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}


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


def _set_flax_params(model, values: dict[str, np.ndarray]) -> None:
    flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
    updated = [(p, v.replace(jnp.array(values[".".join(map(str, p))], dtype=v.get_value().dtype, copy=True)))
               for p, v in flat]
    nnx.update(model, nnx.from_flat_state(updated))


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
    _set_flax_params(flax_model, new)


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
