"""Each dense layer of a model, its three matrix products timed in both frameworks: ``benchmarks.profile --dense``.

The dense layers are read from the stock Flax model's computation (``jax.make_jaxpr``:
every ``dot_general`` of an activation ``[..., in]`` with a 2-D kernel ``[in, out]``,
Flax's layout), one row per distinct shape, the activation's leading axes as rows.
A training step runs three products per layer, each timed alone, jitted and
synchronised, after one warm-up call, by the caller's timer (``benchmarks.profile``'s median):

* forward ``x @ W``: JAX with the kernel ``[in, out]`` as Flax stores it, PyTorch
  ``F.linear`` with the weight ``[out, in]`` as ``nn.Linear`` stores it;
* input gradient ``g @ W^T``;
* kernel gradient ``x^T @ g`` (PyTorch ``g^T @ x``, its weight's layout).

Which framework's matrix-product library is faster for a model's shapes is what
the step's forward and backward columns cannot say on their own.
"""

from __future__ import annotations

import jax
import numpy as np

from benchmarks.convolutions import Timer, count_equations, timed_ms

PRODUCTS = ("forward", "input grad", "kernel grad")


def shapes(model, x) -> list[tuple[int, int, int, int]]:
    """``(rows, in, out, count)`` of each distinct dense product ``model(x)`` runs, in the order first run: an
    activation's leading axes counted as rows, contracted over its last axis with a 2-D kernel's first."""
    def key_of(eqn):
        if eqn.primitive.name != "dot_general":
            return None
        (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
        lhs, rhs = eqn.invars[0].aval.shape, eqn.invars[1].aval.shape
        if len(rhs) != 2 or lb or rb or tuple(lc) != (len(lhs) - 1,) or tuple(rc) != (0,):
            return None
        return int(np.prod(lhs[:-1])), rhs[0], rhs[1]

    return [(*key, n) for key, n in count_equations(model, x, key_of).items()]


def _jax_ms(rows: int, d_in: int, d_out: int, time_s: Timer) -> list[float]:
    keys = jax.random.split(jax.random.key(0), 3)
    x, kernel = jax.random.normal(keys[0], (rows, d_in)), jax.random.normal(keys[1], (d_in, d_out)) * 0.01
    g = jax.random.normal(keys[2], (rows, d_out))
    products = [(jax.jit(lambda x, k: x @ k), (x, kernel)), (jax.jit(lambda g, k: g @ k.T), (g, kernel)),
                (jax.jit(lambda x, g: x.T @ g), (x, g))]
    return [timed_ms(lambda f=f, a=a: jax.block_until_ready(f(*a)), time_s) for f, a in products]


def _torch_ms(rows: int, d_in: int, d_out: int, time_s: Timer) -> list[float]:
    import torch
    import torch.nn.functional as F

    x, weight, g = torch.randn(rows, d_in), torch.randn(d_out, d_in) * 0.01, torch.randn(rows, d_out)
    products = [lambda: F.linear(x, weight), lambda: g @ weight, lambda: g.t() @ x]
    return [timed_ms(p, time_s) for p in products]


def table(model, x, *, frameworks: list[str], time_s: Timer) -> tuple[list[str], list[list[str]]]:
    """The header and rows: each dense product of ``model(x)``, its count, and milliseconds per product and
    framework."""
    rows = []
    for n, d_in, d_out, count in shapes(model, x):
        row = [str(n), f"{d_in}x{d_out}", str(count)]
        for fw, timed in (("jax", _jax_ms), ("torch", _torch_ms)):
            if fw in frameworks:
                row += [f"{ms:.2f}" for ms in timed(n, d_in, d_out, time_s)]
        rows.append(row)
    header = ["rows", "kernel (in x out)", "count"]
    for fw, label in (("jax", "JAX"), ("torch", "PyTorch")):
        if fw in frameworks:
            header += [f"{label} {p} (ms)" for p in PRODUCTS]
    return header, rows


def total_ms(rows: list[list[str]], header: list[str], label: str) -> float:
    """A framework's milliseconds (``label``: ``JAX`` or ``PyTorch``), all three products summed over the model's
    dense layers (each row times its count)."""
    columns = [header.index(f"{label} {p} (ms)") for p in PRODUCTS]
    return float(np.sum([sum(float(r[i]) for i in columns) * int(r[2]) for r in rows]))
