"""Each framework's faster modes against its plain one, and the two frameworks in bfloat16.

* :func:`torch_compiled`: a ``torch.compile``d model against the same weights run
  eagerly: evaluation logits, then N SGD steps (dropout off; float64 asserted, float32
  measured: ``parity.checks.PRECISION_REASONS``) through the compiled loss-and-backward
  and the compiled optimizer step of ``torch_ref.compiled``.
* :func:`jax_kernels`: a Flax model with ``kernels="tuned"`` against the same weights
  with ``kernels="stock"``: logits, then N SGD steps (float64 asserted, float32 measured).
* :func:`bfloat16_forward`: the Flax model built with ``dtype=jnp.bfloat16`` against
  the PyTorch twin under bfloat16 autocast, from the same weights.

Records have the shape of :mod:`parity.checks`' records.
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

import jax_impl.models
import jax_impl.optim
import jax_impl.train
import torch_ref.train
from parity.checks import (
    CPU_TOLERANCES,
    Tolerances,
    _flax_outputs,
    _flax_update,
    _input,
    _record,
    _torch_input,
    build_pair,
    for_dtype,
)
from parity.compare import compare_trees
from parity.convert import flax_params, torch_params
from torch_ref import compiled as torch_compile
from torch_ref.optim import make_optimizer

#: bfloat16 keeps 8 bits of mantissa (a relative rounding of 2^-9, about 0.2%), and the two frameworks round
#: at different points (XLA after its fusions, oneDNN/ATen per operation, each accumulating in float32). Over a
#: dozen rounded products the logits then agree to about a percent of their scale: max|diff| / max(1, max|logit|).
BF16_FORWARD = 3e-2


def _batches(images: np.ndarray, labels: np.ndarray, batch_size: int):
    x = jax_impl.train.preprocess(images)  # NHWC float32, bit-identical to the PyTorch input below
    return x, jnp.asarray(labels, jnp.int32), len(images) // batch_size


def torch_compiled(model: str, images: np.ndarray, labels: np.ndarray, *, mode: str = "default", steps: int = 100,
                   batch_size: int = 32, lr: float = 0.05, tol: Tolerances = CPU_TOLERANCES, seed: int = 0,
                   dtype: str = "float32", forward: bool = True) -> list[dict]:
    """Compiled PyTorch (``mode``) against eager from the same weights: logits (float32, with ``forward``), and
    ``steps`` SGD steps in ``dtype`` (float64 asserts what float32 rounding would blur: ``PRECISION_REASONS``)."""
    _, eager = build_pair(model, seed)
    twin = copy.deepcopy(eager)
    device = next(eager.parameters()).device
    eager.eval(), twin.eval()  # dropout off: the two must follow one trajectory
    records = []
    if forward:
        x = torch_ref.train.preprocess(images[:64], device)
        with torch.no_grad():
            ours = {"logits": torch_compile.eval_forward(twin, mode)(x)}
            theirs = {"logits": eager(x)}
        records.append(_record(model, f"compiled PyTorch ({mode}) against eager: forward",
                               compare_trees(ours, theirs, tolerance=tol.forward)))
    if dtype == "float64":
        eager.double(), twin.double()
    x = _torch_input(_input(images, dtype), device)
    y = torch.as_tensor(labels, dtype=torch.long, device=device)
    losses = {}
    for name, net, how in (("eager", eager, "none"), ("compiled", twin, mode)):
        opt, _ = make_optimizer("sgd", net, lr, tensor_lr=True)
        loss_fn = torch_compile.loss_function(net, torch_ref.train.CLASSIFICATION, label_smoothing=0.0,
                                              precision="float32", mode=how)
        opt_step = torch_compile.optimizer_step(opt, mode=how)
        n = len(x) // batch_size
        losses[name] = []
        for step in range(steps):
            lo = (step % n) * batch_size
            losses[name].append(torch_ref.train.train_step(loss_fn, opt, opt_step, None, x[lo:lo + batch_size],
                                                           y[lo:lo + batch_size]))
    tol = for_dtype(tol, dtype)
    name = f"compiled PyTorch ({mode}) against eager: {steps} SGD steps, {dtype}"
    loss_cmp = compare_trees({f"loss[{i}]": v.item() for i, v in enumerate(losses["compiled"])},
                             {f"loss[{i}]": v.item() for i, v in enumerate(losses["eager"])}, tolerance=tol.trajectory)
    param_cmp = compare_trees(torch_params(twin), torch_params(eager), tolerance=tol.trajectory)
    return records + [_record(model, f"{name}: losses", loss_cmp, dtype=dtype),
                      _record(model, f"{name}: final parameters", param_cmp, dtype=dtype)]


def jax_kernels(model: str, images: np.ndarray, labels: np.ndarray, *, steps: int = 100, batch_size: int = 32,
                lr: float = 0.05, tol: Tolerances = CPU_TOLERANCES, seed: int = 0, dtype: str = "float32",
                forward: bool = True) -> list[dict]:
    """Tuned JAX (``jax_impl.kernels``) against stock Flax layers from the same weights: logits (float32, with
    ``forward``), and ``steps`` SGD steps in ``dtype``."""
    records = []
    if forward:  # in float32, as the models run (built outside float64's x64 mode, which widens some initialisers)
        stock, _ = build_pair(model, seed, kernels="stock")
        tuned, _ = build_pair(model, seed, kernels="tuned")
        stock.eval(), tuned.eval()
        x32 = jax_impl.train.preprocess(images[:64])
        records.append(_record(model, "tuned JAX against stock: forward",
                               compare_trees({"logits": _flax_outputs(tuned, x32)["logits"]},
                                             {"logits": _flax_outputs(stock, x32)["logits"]},
                                             tolerance=tol.forward)))
    with jax.enable_x64(dtype == "float64"):
        stock, _ = build_pair(model, seed, kernels="stock")
        tuned, _ = build_pair(model, seed, kernels="tuned")
        stock.eval(), tuned.eval()
        if dtype == "float64":
            for net in (stock, tuned):
                nnx.update(net, jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), nnx.state(net, nnx.Param)))
        x, y, n = jnp.asarray(_input(images, dtype)), jnp.asarray(labels, jnp.int32), len(images) // batch_size
        losses = {}
        for name, net in (("stock", stock), ("tuned", tuned)):
            tx, _ = jax_impl.optim.make_optimizer("sgd", lr)
            opt = nnx.Optimizer(net, tx, wrt=nnx.Param)
            losses[name] = [_flax_update(net, opt, x[(s % n) * batch_size:(s % n + 1) * batch_size],
                                         y[(s % n) * batch_size:(s % n + 1) * batch_size]) for s in range(steps)]
        tol = for_dtype(tol, dtype)
        name = f"tuned JAX against stock: {steps} SGD steps, {dtype}"
        loss_cmp = compare_trees({f"loss[{i}]": np.asarray(v) for i, v in enumerate(losses["tuned"])},
                                 {f"loss[{i}]": np.asarray(v) for i, v in enumerate(losses["stock"])},
                                 tolerance=tol.trajectory)
        param_cmp = compare_trees(flax_params(tuned), flax_params(stock), tolerance=tol.trajectory)
    return records + [_record(model, f"{name}: losses", loss_cmp, dtype=dtype),
                      _record(model, f"{name}: final parameters", param_cmp, dtype=dtype)]


def bfloat16_forward(model: str, images: np.ndarray, *, tolerance: float = BF16_FORWARD, seed: int = 0) -> list[dict]:
    """JAX in bfloat16 (``dtype=jnp.bfloat16``) against PyTorch under bfloat16 autocast, the same weights: logits
    relative to their scale (max|diff| / max(1, max|logit|); see :data:`BF16_FORWARD`)."""
    flax_model, torch_model = build_pair(model, seed, dtype=jnp.bfloat16)
    flax_model.eval(), torch_model.eval()
    device = next(torch_model.parameters()).device
    with torch.no_grad(), torch_compile.autocast(device, "bfloat16"):
        theirs = torch_model(torch_ref.train.preprocess(images, device)).float()
    ours = _flax_outputs(flax_model, jax_impl.train.preprocess(images))["logits"].astype(jnp.float32)
    comparison = compare_trees({"logits": ours}, {"logits": theirs}, tolerance=tolerance, scaled=True)
    records = [_record(model, "bfloat16: JAX against PyTorch autocast, forward (scaled)", comparison)]
    # the same logits' predictions: bfloat16 may move a near-tie, so agreement is measured, not asserted
    agree = float((np.asarray(ours).argmax(1) == theirs.argmax(1).cpu().numpy()).mean())
    return [r | {"agreement": agree} for r in records]
