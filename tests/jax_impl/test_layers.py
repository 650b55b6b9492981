"""The rewritten layers compute what the stock ones do; the CPU flags and data parallelism behave."""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cli_helpers import REPO
from flax import nnx

from jax_impl import train
from jax_impl.models.layers import Dropout, LayerNorm, Linear, dropout_mask, max_pool


def test_dropout_mask_rate_and_unbiased_scale():
    keep, scale = dropout_mask(jax.random.key(0), (1000, 1000), 0.1)
    p_drop = 6554 / 65536  # round(0.1 * 65536) / 65536
    dropped = 1 - float(keep.mean())
    assert abs(dropped - p_drop) < 4 * np.sqrt(p_drop * (1 - p_drop) / 1e6)
    assert scale * (1 - p_drop) == pytest.approx(1.0, abs=1e-15)  # E[output] = input exactly
    assert dropout_mask(jax.random.key(0), (7, 3), 0.5)[0].shape == (7, 3)  # odd sizes


def test_dropout_module_train_eval_and_streams():
    layer = Dropout(0.25, rngs=nnx.Rngs(dropout=0))
    x = jnp.ones((64, 33))
    a, b = layer(x), layer(x)
    assert not jnp.array_equal(a, b), "the stream advances between calls"
    scale = 65536 / (65536 - 16384)
    assert set(np.unique(np.asarray(a)).tolist()) <= {0.0, np.float32(scale)}
    layer.eval()
    assert layer(x) is x
    assert Dropout(0.0, rngs=nnx.Rngs(0))(x) is x
    wide = Dropout(0.5, broadcast_dims=(0,), rngs=nnx.Rngs(dropout=1))(jnp.ones((8, 16)))
    assert (wide == wide[0]).all(), "broadcast_dims keeps nnx.Dropout's behaviour"


@pytest.mark.parametrize("shape,window", [((2, 28, 28, 3), 2), ((2, 7, 7, 5), 2), ((1, 9, 10, 2), 3)])
def test_max_pool_equals_nnx_max_pool(shape, window):
    x = jax.random.normal(jax.random.key(1), shape)
    np.testing.assert_array_equal(max_pool(x, window), nnx.max_pool(x, (window,) * 2, (window,) * 2))


def test_max_pool_gradient_goes_to_the_first_maximum_of_each_window():
    x = jnp.array([[3.0, 3.0, 0.0, 1.0],
                   [3.0, 1.0, 2.0, 2.0],
                   [0.0, 5.0, 4.0, 4.0],
                   [5.0, 0.0, 4.0, 4.0]]).reshape(1, 4, 4, 1)
    g = jnp.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 2, 1)
    (dx,) = jax.vjp(lambda x: max_pool(x, 2), x)[1](g)
    expected = [[1, 0, 0, 0],
                [0, 0, 2, 0],  # ties 2, 2: the first in row-major order
                [0, 3, 4, 0],  # ties 5 / 5 and 4 x4: the first
                [0, 0, 0, 0]]
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)


def test_max_pool_gradient_ignores_ragged_edges():
    x = jax.random.normal(jax.random.key(2), (1, 5, 5, 1))
    (dx,) = jax.vjp(lambda x: max_pool(x, 2), x)[1](jnp.ones((1, 2, 2, 1)))
    assert dx.shape == x.shape and float(dx[0, 4].sum()) == 0 and float(dx[0, :, 4].sum()) == 0
    assert float(dx.sum()) == 4


def test_flat_linear_and_layer_norm_match_the_stock_layers():
    x = jax.random.normal(jax.random.key(3), (4, 17, 64))
    ours, stock = Linear(64, 32, rngs=nnx.Rngs(0)), nnx.Linear(64, 32, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(ours.kernel[...], stock.kernel[...])  # same init, same parameters
    np.testing.assert_allclose(ours(x), stock(x), rtol=1e-6, atol=1e-6)
    ln, stock_ln = LayerNorm(64, epsilon=1e-6, rngs=nnx.Rngs(0)), nnx.LayerNorm(64, epsilon=1e-6, rngs=nnx.Rngs(0))
    np.testing.assert_allclose(ln(x), stock_ln(x), rtol=1e-6, atol=1e-6)
    assert ours(x[0, 0]).shape == (32,) and ours(x[0]).shape == (17, 32)


def _python(code: str, env: dict | None = None) -> dict:
    import os

    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_xla_cpu_flags_apply_before_jax_starts_and_respect_the_users():
    code = ("import json, os; from jax_impl import xla_cpu; ok = xla_cpu.apply(); import jax; "
            "n = len(jax.devices()); again = xla_cpu.apply(); "
            "print(json.dumps({'ok': ok, 'flags': os.environ['XLA_FLAGS'], 'devices': n, 'again': again}))")
    out = _python(code, {"XLA_FLAGS": ""})
    assert out["ok"] and out["again"]  # the second call finds its flags already there
    from jax_impl import xla_cpu

    assert out["flags"] == " ".join(f"{k}={v}" for k, v in xla_cpu.CPU_FLAGS.items()) and out["devices"] == 1
    mine = _python(code, {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_use_thunk_runtime=true"})
    assert not mine["ok"], "the user's own value wins, and apply says the flags are not ours"
    assert mine["flags"] == "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_use_thunk_runtime=true"
    # a flag of ours the user did not set is still added (two flags, as CPU_FLAGS held before)
    two = code.replace("ok = xla_cpu.apply()", "xla_cpu.CPU_FLAGS = {'--xla_cpu_experimental_ynn_fusion_type': "
                       "'individual_dot', '--xla_cpu_multi_thread_eigen': 'false'}; ok = xla_cpu.apply()")
    added = _python(two, {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type="})
    assert not added["ok"] and added["flags"] == ("--xla_cpu_experimental_ynn_fusion_type= "
                                                  "--xla_cpu_multi_thread_eigen=false")
    late = _python("import json, jax; jax.devices(); from jax_impl import xla_cpu; "
                   "print(json.dumps({'ok': xla_cpu.apply()}))", {"XLA_FLAGS": ""})
    assert late == {"ok": False}


def test_xla_cpu_flags_are_probed_on_an_unmeasured_jaxlib(monkeypatch):
    """On a jaxlib the flags were not measured on, a flag XLA does not know is left out (XLA would abort)."""
    from jax_impl import xla_cpu

    monkeypatch.setattr(xla_cpu, "MEASURED_JAXLIB", ())
    xla_cpu._xla_accepts.cache_clear()
    try:
        assert xla_cpu._xla_accepts("--xla_cpu_experimental_ynn_fusion_type=individual_dot")
        assert not xla_cpu._xla_accepts("--xla_cpu_no_such_flag_anywhere=1")
    finally:
        xla_cpu._xla_accepts.cache_clear()


DATA_PARALLEL = """
import json, numpy as np, jax
from flax import nnx
from benchmarks.data import load_mnist
from jax_impl import train
from jax_impl.models import CNN
d = load_mnist()
n, out = 512, {}
orders = np.stack([np.random.default_rng(0).permutation(n)])
for devices in (1, 2):
    model = CNN(dropout=0.0, rngs=nnx.Rngs(0))  # no dropout: the two runs must agree
    fit = train.fit(model, d.train_images[:n], d.train_labels[:n], orders=orders, batch_size=128,
                    optimizer="sgd", lr=0.05, progress=False, devices=devices)
    leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
    out[devices] = {"devices": fit["devices"], "loss": fit["train_loss"],
                    "params": [np.asarray(x).ravel()[:50].tolist() for x in leaves],
                    "on_one": all(len(x.devices()) == 1 for x in leaves)}
out["mesh"] = {str(b): (m.size if (m := train.batch_mesh(b)) else None) for b in (128, 127)}
out["mesh_capped"] = train.batch_mesh(128, devices=1) is None
print(json.dumps(out))
"""


@pytest.mark.slow
def test_data_parallel_fit_matches_one_device():
    """Two virtual CPU devices (in a subprocess): slow-marked, since XLA CPU's in-process
    all-reduce was seen to deadlock intermittently on 2 cores (see jax_impl.xla_cpu)."""
    out = _python(DATA_PARALLEL, {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    one, two = out["1"], out["2"]
    assert (one["devices"], two["devices"]) == (1, 2) and one["on_one"] and two["on_one"]
    assert one["loss"] == pytest.approx(two["loss"], rel=1e-5)
    for a, b in zip(one["params"], two["params"]):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert out["mesh"] == {"128": 2, "127": None} and out["mesh_capped"]  # only devices that divide the batch


@pytest.mark.skipif(len(jax.local_devices()) > 1, reason="several local devices (GPUs, or XLA_FLAGS)")
def test_one_device_means_no_mesh():
    assert train.batch_mesh(128) is None and train.batch_mesh(128, devices=4) is None
