"""Each convolution of a model, timed in every variant side by side: ``benchmarks.profile --convolutions``.

The convolutions are read from the stock Flax model's computation (``jax.make_jaxpr``:
every ``conv_general_dilated`` with its input and kernel shapes, stride and padding;
Flax's NHWC and HWIO layouts), one row per distinct shape. Each variant is timed as a
training step needs it: the forward pass and both gradients (input and kernel), jitted,
synchronised, after one warm-up call, by the caller's timer (``benchmarks.profile``'s median):

* ``XLA``: ``lax.conv_general_dilated`` with JAX's own gradients (the stock layers);
* ``canonical``: :func:`jax_impl.kernels.conv.conv2d`'s gradients in Eigen's canonical layout;
* ``patches``: the convolution as one matrix product of the input's patches;
* ``PyTorch``: ``F.conv2d`` forward and backward (NCHW), the gradients cleared each call.

``tuned`` names the variant ``jax_impl.kernels.conv.Conv`` runs for that shape.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np

from jax_impl.kernels import conv as tuned_conv

VARIANTS = {"XLA": tuned_conv._conv, "canonical": tuned_conv._conv_canonical_grads,
            "patches": tuned_conv._conv_as_product}


def count_equations(model, x, key_of: Callable) -> Counter:
    """How often each ``key_of(equation)`` occurs in ``model(x)``'s computation (nested ones included), in the
    order first run; equations whose key is None are skipped. The per-layer timings read a model's layers so."""
    found: Counter = Counter()

    def visit(jaxpr):
        for eqn in jaxpr.eqns:
            key = key_of(eqn)
            if key is not None:
                found[key] += 1
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                visit(sub)

    visit(jax.make_jaxpr(model)(x).jaxpr)
    return found


def shapes(model, x) -> list[tuple[tuple, tuple, int, int, int]]:
    """``(input shape, kernel shape, stride, padding, count)`` of each distinct 2-D convolution ``model(x)`` runs
    (square strides and symmetric paddings, as the models here have), in the order first run."""
    def key_of(eqn):
        if eqn.primitive.name != "conv_general_dilated":
            return None
        (top, _), _ = eqn.params["padding"]
        return (tuple(eqn.invars[0].aval.shape), tuple(eqn.invars[1].aval.shape), eqn.params["window_strides"][0],
                top)

    return [(*key, n) for key, n in count_equations(model, x, key_of).items()]


Timer = Callable[[Callable[[], object]], float]  # seconds of a synchronised call, however the caller takes them


def timed_ms(fn, time_s: Timer) -> float:
    """Milliseconds of ``fn`` by ``time_s``, after one call that compiles (JAX) or warms up (PyTorch)."""
    fn()
    return 1000 * time_s(fn)


def _jax_ms(variant, x_shape, k_shape, stride: int, padding: int, time_s: Timer) -> float:
    keys = jax.random.split(jax.random.key(0), 3)
    x, kernel = jax.random.normal(keys[0], x_shape), jax.random.normal(keys[1], k_shape) * 0.01
    out = jax.eval_shape(lambda x, k: tuned_conv._conv(x, k, stride, padding), x, kernel)
    cotangent = jax.random.normal(keys[2], out.shape)
    step = jax.jit(jax.grad(lambda x, k: jnp.vdot(variant(x, k, stride, padding), cotangent), argnums=(0, 1)))
    return timed_ms(lambda: jax.block_until_ready(step(x, kernel)), time_s)


def _torch_ms(x_shape, k_shape, stride: int, padding: int, time_s: Timer) -> float:
    import torch
    import torch.nn.functional as F

    b, h, w, cin = x_shape
    kh, kw, _, cout = k_shape
    x = torch.randn(b, cin, h, w, requires_grad=True)
    kernel = (torch.randn(cout, cin, kh, kw) * 0.01).requires_grad_()
    with torch.no_grad():
        cotangent = torch.randn_like(F.conv2d(x, kernel, stride=stride, padding=padding))

    def step():
        x.grad = kernel.grad = None
        F.conv2d(x, kernel, stride=stride, padding=padding).backward(cotangent)

    return timed_ms(step, time_s)


def table(model, x, *, frameworks: list[str], time_s: Timer) -> tuple[list[str], list[list[str]]]:
    """The header and rows: each convolution of ``model(x)``, its count, and milliseconds per variant."""
    rows = []
    for x_shape, k_shape, stride, padding, count in shapes(model, x):
        row = ["x".join(map(str, x_shape)), "x".join(map(str, k_shape)), f"{stride}/{padding}", str(count)]
        if "jax" in frameworks:
            row += [f"{_jax_ms(fn, x_shape, k_shape, stride, padding, time_s):.2f}" for fn in VARIANTS.values()]
            row.append("patches" if tuned_conv.smaller_than_kernel(x_shape, k_shape) else "XLA")  # as Conv runs it
        if "torch" in frameworks:
            row.append(f"{_torch_ms(x_shape, k_shape, stride, padding, time_s):.2f}")
        rows.append(row)
    header = ["input (NHWC)", "kernel (HWIO)", "stride/pad", "count"]
    if "jax" in frameworks:
        header += [f"{name} (ms)" for name in VARIANTS] + ["tuned runs"]
    if "torch" in frameworks:
        header.append("PyTorch (ms)")
    return header, rows


def total_ms(rows: list[list[str]], header: list[str], column: str) -> float:
    """A column's milliseconds summed over the model's convolutions (each row times its count)."""
    i = header.index(column)
    return float(np.sum([float(r[i]) * int(r[3]) for r in rows]))


def tuned_total_ms(rows: list[list[str]], header: list[str]) -> float:
    """The milliseconds of the variant the tuned layer runs, summed over the model's convolutions."""
    i = header.index("tuned runs")
    return float(np.sum([float(r[header.index(f"{r[i]} (ms)")]) * int(r[3]) for r in rows]))
