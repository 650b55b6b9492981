"""The canonical layout of each Flax model's parameters: its PyTorch twin's ``state_dict``, in NumPy.

One table per model lists each Flax path, its PyTorch key and the rule between
them:

* ``copy``: same layout (biases, LayerNorm scale/weight, class token, position
  embeddings);
* ``conv``: Flax HWIO <-> PyTorch OIHW (transpose 2,3,1,0 and back);
* ``dense``: Flax (in, out) <-> PyTorch (out, in);
* ``flatten_dense``: a dense layer right after a flatten; Flax flattens NHWC in
  H-W-C order and PyTorch NCHW in C-H-W order, so the input rows are permuted as
  well as transposed.

Exported models (``jax_impl.models.save``) are written in this layout, so either
framework reads them; ``parity.convert`` converts between live models with the
same tables. NumPy only: reading an exported model needs no PyTorch.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
from flax import nnx


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


def cnn_table(model) -> list[Row]:
    channels = model.conv2.out_features
    side = int(round((model.fc1.in_features // channels) ** 0.5))
    return [
        Row("conv1.kernel", "conv1.weight", "conv"), Row("conv1.bias", "conv1.bias", "copy"),
        Row("conv2.kernel", "conv2.weight", "conv"), Row("conv2.bias", "conv2.bias", "copy"),
        Row("fc1.kernel", "fc1.weight", "flatten_dense", (side, side, channels)), Row("fc1.bias", "fc1.bias", "copy"),
        *_dense("fc2"),
    ]


def vit_table(model) -> list[Row]:
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


def _convnet_table(model, feature_indices, classifier_indices, pooled: int) -> list[Row]:
    """A torchvision convnet: ``features[k]`` is ``features.<feature_indices[k]>`` (ReLUs and pools hold no
    parameters), the first dense layer follows the flatten of the ``pooled`` x ``pooled`` map."""
    rows = []
    for k, i in enumerate(feature_indices):
        rows += [Row(f"features.{k}.kernel", f"features.{i}.weight", "conv"),
                 Row(f"features.{k}.bias", f"features.{i}.bias", "copy")]
    first, *rest = classifier_indices
    channels = model.features[-1].out_features
    rows += [Row("classifier.0.kernel", f"classifier.{first}.weight", "flatten_dense", (pooled, pooled, channels)),
             Row("classifier.0.bias", f"classifier.{first}.bias", "copy")]
    for k, i in enumerate(rest, 1):
        rows += _dense(f"classifier.{k}", f"classifier.{i}")
    return rows


def vgg16_table(model) -> list[Row]:
    from jax_impl.models import vgg

    return _convnet_table(model, vgg.FEATURE_INDICES, vgg.CLASSIFIER_INDICES, vgg.POOLED)


def alexnet_table(model) -> list[Row]:
    from jax_impl.models import alexnet

    return _convnet_table(model, alexnet.FEATURE_INDICES, alexnet.CLASSIFIER_INDICES, alexnet.POOLED)


def mnist_classifier_table(model) -> list[Row]:
    """A ported convnet read through its MNIST adaptation: its network's rows under ``net.``, on both sides
    (``torch_ref.finetune.MNISTClassifier`` holds the torchvision model as ``net`` too)."""
    return [dataclasses.replace(r, flax=f"net.{r.flax}", torch=f"net.{r.torch}") for r in table(model.net)]


def table(model) -> list[Row]:
    """The table of a Flax model of this project (CNN, ViT, VGG16, AlexNet, or one of the last two read through
    ``MNISTClassifier``)."""
    from jax_impl.models.alexnet import AlexNet
    from jax_impl.models.cnn import CNN
    from jax_impl.models.imagenet import MNISTClassifier
    from jax_impl.models.vgg import VGG16
    from jax_impl.models.vit import ViT

    for kind, make in ((CNN, cnn_table), (ViT, vit_table), (VGG16, vgg16_table), (AlexNet, alexnet_table),
                       (MNISTClassifier, mnist_classifier_table)):
        if isinstance(model, kind):
            return make(model)
    raise ConversionError(f"no conversion table for {type(model).__name__}")


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


def flax_params(model) -> dict[str, np.ndarray]:
    """``{dotted path: NumPy copy}`` of the model's ``nnx.Param`` leaves."""
    return {".".join(map(str, p)): np.array(v.get_value()) for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}


def flax_shapes(model) -> dict[str, tuple[int, ...]]:
    """``{dotted path: shape}`` of the model's ``nnx.Param`` leaves (of a model built without weights too)."""
    return {".".join(map(str, p)): tuple(v.get_value().shape) for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}


def set_flax_params(model, values: dict[str, np.ndarray]) -> None:
    """Set the ``nnx.Param`` leaves named in ``values`` (dotted paths), each in its own dtype; the rest stay."""
    flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
    updated = [(p, v.replace(jnp.array(values[key], dtype=v.get_value().dtype, copy=True)))
               for p, v in flat if (key := ".".join(map(str, p))) in values]
    nnx.update(model, nnx.from_flat_state(updated))


def to_canonical(model) -> dict[str, np.ndarray]:
    """The model's parameters as ``{PyTorch key: array in PyTorch's layout}``."""
    ours = flax_params(model)
    return {row.torch: np.ascontiguousarray(flax_to_torch_array(row, ours[row.flax])) for row in table(model)}


def from_canonical(model, arrays: dict[str, np.ndarray], source: str = "the weights", *,
                   keep: tuple[str, ...] = ()) -> None:
    """Set the model's parameters from ``{PyTorch key: array}``; keys and shapes are checked first. The PyTorch
    keys in ``keep`` are left as the model has them (and must not be in ``arrays``): a new head, say."""
    rows = [r for r in table(model) if r.torch not in keep]
    present = flax_shapes(model)
    missing = [r.torch for r in rows if r.torch not in arrays]
    unexpected = sorted(set(arrays) - {r.torch for r in rows})
    if missing or unexpected:
        first = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise ConversionError(f"{source} do not fit {type(model).__name__}: {len(missing)} missing, "
                              f"{len(unexpected)} unexpected key(s) ({first})")
    values = {}
    for row in rows:
        value = torch_to_flax_array(row, np.asarray(arrays[row.torch]))
        if value.shape != present[row.flax]:
            raise ConversionError(f"{source}: {row.torch} {np.shape(arrays[row.torch])} does not fit "
                                  f"{row.flax} {present[row.flax]} (rule {row.rule})")
        values[row.flax] = value
    set_flax_params(model, values)
