"""PyTorch's default initialisation, written as Flax initialisers.

``torch.nn.Linear`` and ``torch.nn.Conv2d`` draw weights with
``kaiming_uniform_(a=sqrt(5))``, i.e. uniform in +-sqrt(1/fan_in), and biases
uniform in +-1/sqrt(fan_in). Using the same distributions in Flax (instead of
Flax's lecun_normal / zeros) keeps training dynamics comparable even before
weights are converted across frameworks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

#: uniform(+-sqrt(3 * scale / fan_in)) with scale 1/3 == uniform(+-1/sqrt(fan_in)).
#: Fan-in follows Flax's layouts: HWIO conv kernels, (in, out) dense kernels.
torch_default_kernel_init = nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def torch_default_bias_init(fan_in: int):
    """Bias initialiser uniform in +-1/sqrt(fan_in); the bias alone does not know its fan-in."""
    bound = 1.0 / fan_in**0.5

    def init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init
