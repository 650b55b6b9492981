"""Parity of the Flax ports of torchvision's VGG16 and AlexNet: forward passes, gradients, round trip.

Each check builds the model as the runner fine-tunes it in both frameworks
(``torch_ref.finetune.classifiers.build`` and ``jax_impl.models.MNISTClassifier``:
MNIST in, un-normalised, resized, grey to RGB, ImageNet-normalised, a 10-class
head), makes the weights identical by converting one side into the other, and
compares on real MNIST test images:

* :func:`forward`: evaluation-mode logits at the image sizes the presets use
  (VGG16 32 and 224 px, AlexNet 63 and 224 px), in both conversion directions
  (torchvision-initialised weights into Flax, Flax-initialised into
  torchvision). Measure: max|diff| / max|logit| (relative to the logits' scale,
  however small random weights make it), tolerance 1e-5.
* :func:`gradients`: the loss and every parameter's gradient (dropout off) at
  the smaller size, each gradient's max|diff| scaled by max(1, its max|grad|):
  asserted in float64, measured in float32 (through fifteen ReLUs float32
  rounding flips gradient entries on some CPUs).
* :func:`round_trip`: torchvision -> Flax -> torchvision returns the state dict bit for bit.

Records have the shape of ``parity.checks``'.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
import torch.nn.functional as F
from flax import nnx

import jax_impl.models
import jax_impl.train
from parity.checks import CPU_TOLERANCES, Tolerances, _input, _record, _to_float64, _torch_input, for_dtype
from parity.compare import compare_trees
from parity.convert import flax_to_torch, table_for, torch_grads_as_flax, torch_params, torch_to_flax
from torch_ref.finetune import classifiers
from torch_ref.train import preprocess as torch_preprocess

MODELS = ("vgg16", "alexnet")
#: The image sizes each preset resizes MNIST to: cpu and smoke, then full.
SIZES = {"vgg16": (32, 224), "alexnet": (63, 224)}
_PORTS = {"vgg16": jax_impl.models.VGG16, "alexnet": jax_impl.models.AlexNet}


def build_pair(arch: str, image_size: int, *, init_from: str = "torch", seed: int = 0, kernels: str = "auto"):
    """(Flax model, PyTorch model), both MNIST classifiers of 10 classes with the same weights, in
    evaluation mode; ``init_from`` says whose random initialisation both carry, ``kernels`` the Flax layers."""
    torch.manual_seed(seed)
    torch_model = classifiers.build(arch, weights="none", image_size=image_size, progress=False)
    net = _PORTS[arch](num_classes=classifiers.NUM_CLASSES, kernels=kernels, rngs=nnx.Rngs(seed))
    flax_model = jax_impl.models.MNISTClassifier(net, arch, image_size)
    if init_from == "torch":
        torch_to_flax(torch_model, flax_model)
    else:
        flax_to_torch(flax_model, torch_model)
    flax_model.eval()
    torch_model.eval()
    return flax_model, torch_model


def _torch_batch(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC MNIST -> the normalised NCHW tensor every PyTorch model here takes."""
    return torch_preprocess(images, torch.device("cpu"))


def _logits(flax_model, torch_model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flax_logits = jax_impl.train.predict(flax_model, images, batch_size=len(images))
    with torch.no_grad():
        torch_logits = torch_model(_torch_batch(images)).numpy()
    return flax_logits, torch_logits


def forward(arch: str, images: np.ndarray, *, tol: Tolerances = CPU_TOLERANCES, seed: int = 0,
            sizes: tuple[int, ...] | None = None) -> list[dict]:
    """Logits of both frameworks at each preset size (or ``sizes``), weights converted each way."""
    records = []
    for size in sizes or SIZES[arch]:
        for init_from in ("torch", "flax"):
            flax_model, torch_model = build_pair(arch, size, init_from=init_from, seed=seed)
            ours, theirs = _logits(flax_model, torch_model, images)
            scale = float(np.abs(theirs).max())
            cmp = compare_trees({"logits / max|logit|": ours / scale}, {"logits / max|logit|": theirs / scale},
                                tolerance=tol.forward)
            direction = "torch" if init_from == "torch" else "flax"
            records.append(_record(arch, f"forward ({direction} init, {size} px)", cmp, logit_scale=scale))
    return records


def gradients(arch: str, images: np.ndarray, labels: np.ndarray, *, tol: Tolerances = CPU_TOLERANCES,
              seed: int = 0, dtype: str = "float64") -> list[dict]:
    """The loss and every parameter's gradient, dropout off, at the preset's smaller size, in ``dtype``: float64
    by default, since through VGG16's fifteen ReLUs a pre-activation within float32 rounding of zero flips
    gradient entries on some CPUs (``parity.checks.PRECISION_REASONS``); float32 is measured beside it."""
    tol = for_dtype(tol, dtype)
    with jax.enable_x64(dtype == "float64"):
        flax_model, torch_model = build_pair(arch, SIZES[arch][0], seed=seed)
        if dtype == "float64":
            _to_float64(flax_model, torch_model)
        x_np = _input(images, dtype)
        x = jnp.asarray(x_np)

        def loss_fn(model):
            return optax.softmax_cross_entropy_with_integer_labels(model(x), labels).mean()

        flax_loss, grads = nnx.value_and_grad(loss_fn)(flax_model)  # eval mode: dropout off
        flat = {".".join(map(str, p)): np.asarray(v.get_value()) for p, v in nnx.to_flat_state(grads)}
        torch_loss = F.cross_entropy(torch_model(_torch_input(x_np, torch.device("cpu"))),
                                     torch.as_tensor(labels, dtype=torch.long))
        torch_loss.backward()
        theirs = torch_grads_as_flax(torch_model, flax_model)
        loss_cmp = compare_trees({"loss": np.asarray(flax_loss)}, {"loss": torch_loss.detach().numpy()},
                                 tolerance=tol.gradients)
        grad_cmp = compare_trees({k: flat[k] for k in theirs}, theirs, tolerance=tol.gradients, scaled=True)
    size = SIZES[arch][0]
    return [_record(arch, f"gradients (loss, {dtype})", loss_cmp, image_size=size, dtype=dtype),
            _record(arch, f"gradients (parameters, {dtype})", grad_cmp, image_size=size, dtype=dtype)]


def round_trip(arch: str, *, seed: int = 0) -> list[dict]:
    """torchvision -> Flax -> torchvision: every tensor of the state dict back bit for bit."""
    flax_model, torch_model = build_pair(arch, SIZES[arch][0], seed=seed)
    before = torch_params(torch_model)
    torch.manual_seed(seed + 1)
    other = classifiers.build(arch, weights="none", image_size=SIZES[arch][0], progress=False)
    table_for(flax_model, other)
    flax_to_torch(flax_model, other)
    cmp = compare_trees(torch_params(other), before, tolerance=0.0)
    return [_record(arch, "round trip torch -> flax -> torch", cmp)]


def run(arch: str, images: np.ndarray, labels: np.ndarray, *, tol: Tolerances = CPU_TOLERANCES) -> list[dict]:
    """Every check of ``arch``: records with ``asserted`` set (float32 gradients are measured, not asserted)."""
    records = [r | {"asserted": True} for r in forward(arch, images, tol=tol)]
    records += [r | {"asserted": True} for r in gradients(arch, images, labels, tol=tol, dtype="float64")]
    records += [r | {"asserted": False} for r in gradients(arch, images, labels, tol=tol, dtype="float32")]
    return records + [r | {"asserted": True} for r in round_trip(arch)]
