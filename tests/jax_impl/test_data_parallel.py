"""Data parallelism over local devices: the same training as one device, only where devices divide the batch."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from cli_helpers import run_python

from jax_impl.parallel import batch_mesh

DATA_PARALLEL = """
import json, numpy as np, jax
from flax import nnx
from harness.data import load_mnist
from jax_impl import train
from jax_impl.models import CNN
from jax_impl.parallel import batch_mesh
from mnist_common import TrainConfig
d = load_mnist()
n, out = 512, {}
for devices in (1, 2):
    model = CNN(dropout=0.0, rngs=nnx.Rngs(0))  # no dropout: the two runs must agree
    config = TrainConfig(batch_size=128, optimizer="sgd", lr=0.05, devices=devices)
    fit = train.fit(model, d.train_images[:n], d.train_labels[:n], config, progress=False)
    leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
    out[devices] = {"devices": fit.devices, "loss": fit.train_loss,
                    "params": [np.asarray(x).ravel()[:50].tolist() for x in leaves],
                    "on_one": all(len(x.devices()) == 1 for x in leaves)}
out["mesh"] = {str(b): (m.size if (m := batch_mesh(b)) else None) for b in (128, 127)}
out["mesh_capped"] = batch_mesh(128, devices=1) is None
print(json.dumps(out))
"""


@pytest.mark.slow
def test_data_parallel_fit_matches_one_device():
    """Two virtual CPU devices (in a subprocess): slow-marked, since XLA CPU's in-process
    all-reduce was seen to deadlock intermittently on 2 cores (docs/performance.md)."""
    out = run_python(DATA_PARALLEL, {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    one, two = out["1"], out["2"]
    assert (one["devices"], two["devices"]) == (1, 2) and one["on_one"] and two["on_one"]
    assert one["loss"] == pytest.approx(two["loss"], rel=1e-5)
    for a, b in zip(one["params"], two["params"]):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert out["mesh"] == {"128": 2, "127": None} and out["mesh_capped"]  # only devices that divide the batch


@pytest.mark.skipif(len(jax.local_devices()) > 1, reason="several local devices (GPUs, or XLA_FLAGS)")
def test_one_device_means_no_mesh():
    assert batch_mesh(128) is None and batch_mesh(128, devices=4) is None


def test_how_gradients_are_summed():
    """One device: no all-reduce. Across processes ``auto`` is flat where every device's rows can be computed
    alone (tuned dropout); Flax's own dropout draws one mask on every device, so ``flat`` refuses it."""
    from flax import nnx
    from jax.sharding import Mesh

    from jax_impl.models import CNN
    from jax_impl.parallel import all_reduce_for, flat_all_reduce_blocker

    tuned, stock = (CNN(kernels=k, rngs=nnx.Rngs(0)) for k in ("tuned", "stock"))
    mesh = Mesh(np.array(jax.devices()[:1]), ("batch",))
    assert all_reduce_for("flat", None, tuned) is None
    assert flat_all_reduce_blocker(tuned) is None and "dropout" in flat_all_reduce_blocker(stock)
    assert flat_all_reduce_blocker(CNN(kernels="stock", dropout=0.0, rngs=nnx.Rngs(0))) is None
    assert all_reduce_for("flat", mesh, tuned) == "flat" and all_reduce_for("xla", mesh, tuned) == "xla"
    assert all_reduce_for("auto", mesh, tuned) == ("flat" if jax.process_count() > 1 else "xla")
    assert all_reduce_for("auto", mesh, stock) == "xla"
    with pytest.raises(ValueError, match="dropout"):
        all_reduce_for("flat", mesh, stock)
    model = CNN(kernels="tuned", rngs=nnx.Rngs(0))
    model.norm = nnx.BatchNorm(4, rngs=nnx.Rngs(0))  # batch statistics differ per device
    assert "batch statistics" in flat_all_reduce_blocker(model)
