"""The Flax and PyTorch CNNs are twins: names, shapes and counts, learning-rate curves."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch
from flax import nnx

import jax_impl.models
import jax_impl.train
import torch_ref.models
import torch_ref.train


def _flax_params(model) -> dict[str, tuple]:
    flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
    return {".".join(map(str, path)): tuple(v.get_value().shape) for path, v in flat}


def _to_torch_layout(name: str, shape: tuple) -> tuple:
    """Flax kernel shape in PyTorch's layout: HWIO -> OIHW, (in, out) -> (out, in)."""
    if name.endswith("kernel"):
        return tuple(shape[i] for i in (3, 2, 0, 1)) if len(shape) == 4 else shape[::-1]
    return shape


def test_cnn_parameter_names_shapes_and_counts_mirror():
    flax_params = _flax_params(jax_impl.models.CNN(rngs=nnx.Rngs(0)))
    torch_params = {k: tuple(v.shape) for k, v in torch_ref.models.CNN().state_dict().items()}
    as_torch = {k.replace("kernel", "weight"): _to_torch_layout(k, s) for k, s in flax_params.items()}
    assert as_torch == torch_params
    assert jax_impl.models.count_params(jax_impl.models.CNN(rngs=nnx.Rngs(0))) == \
        torch_ref.models.count_params(torch_ref.models.CNN())


@pytest.mark.parametrize("schedule,warmup", [("constant", 0), ("cosine", 0), ("cosine", 7)])
def test_learning_rate_curves_match_optax(schedule, warmup):
    total = 50
    optax_sched = jax_impl.train.make_schedule(0.1, schedule=schedule, total_steps=total, warmup_steps=warmup)
    torch_lrs = [0.1 * torch_ref.train.schedule_factor(t, schedule=schedule, total_steps=total, warmup_steps=warmup)
                 for t in range(total + 3)]
    np.testing.assert_allclose(torch_lrs, [float(optax_sched(t)) for t in range(total + 3)], rtol=1e-5, atol=1e-8)


def test_torch_scheduler_drives_the_optimizer_with_those_rates():
    model = torch.nn.Linear(2, 2)
    opt, sched = torch_ref.train.make_optimizer("sgd", model.parameters(), 0.1, schedule="cosine", total_steps=10,
                                                warmup_steps=2)
    seen = []
    for _ in range(10):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    optax_sched = jax_impl.train.make_schedule(0.1, schedule="cosine", total_steps=10, warmup_steps=2)
    np.testing.assert_allclose(seen, [float(optax_sched(t)) for t in range(10)], rtol=1e-5, atol=1e-8)


def test_same_preprocessing_in_both_frameworks(mnist):
    images = mnist.test_images[:4]
    jx = np.asarray(jax_impl.train.preprocess(images))  # NHWC
    tx = torch_ref.train.preprocess(images, torch.device("cpu")).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(jx, tx)
    assert jax.devices()  # the JAX side ran on its default device
