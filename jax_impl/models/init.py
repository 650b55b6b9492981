"""PyTorch's default initialisation, written as Flax initialisers.

``torch.nn.Linear`` and ``torch.nn.Conv2d`` draw weights with
``kaiming_uniform_(a=sqrt(5))``, i.e. uniform in +-sqrt(1/fan_in), and biases
uniform in +-1/sqrt(fan_in). Using the same distributions in Flax (instead of
Flax's lecun_normal / zeros) keeps training dynamics comparable even before
weights are converted across frameworks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import jax
import jax.numpy as jnp
from flax import nnx

M = TypeVar("M", bound=nnx.Module)

#: uniform(+-sqrt(3 * scale / fan_in)) with scale 1/3 == uniform(+-1/sqrt(fan_in)).
#: Fan-in follows Flax's layouts: HWIO conv kernels, (in, out) dense kernels.
torch_default_kernel_init = nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def torch_default_bias_init(fan_in: int):
    """Bias initialiser uniform in +-1/sqrt(fan_in); the bias alone does not know its fan-in."""
    bound = 1.0 / fan_in**0.5

    def init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def initialized(make: Callable[[], M]) -> M:
    """What ``make()`` builds, every array of it computed in one compiled call. Built eagerly, each initialiser
    and random split compiles and runs on its own, seconds on a CPU; here the constructor is traced once.

    The same values bit for bit only where XLA, compiling the draws together, rounds as the eager ones did:
    tested for the models built so (a model's ``compiled_init``; docs/performance.md, "Drawing the initial
    weights")."""
    built = {}

    def state():  # one trace: the structure kept, the whole state computed
        graphdef, state = nnx.split(make())
        built["graphdef"] = graphdef
        return state

    state = jax.jit(state)()
    return nnx.merge(built["graphdef"], state)


def build(cls: Callable[..., M], *args, seed: int, **kwargs) -> M:
    """``cls(*args, **kwargs, rngs=nnx.Rngs(seed))`` with its initial weights: in one compiled call
    (:func:`initialized`), unless the class sets ``compiled_init = False`` (eager is faster for it, or rounds
    differently). The runner's way to build a model it trains from random weights. (The ``Rngs`` is made inside
    the call: one made outside cannot be drawn from inside a compiled one.)"""
    def make():
        return cls(*args, **kwargs, rngs=nnx.Rngs(seed))

    return initialized(make) if getattr(cls, "compiled_init", True) else make()


def without_weights(make: Callable[[], M]) -> M:
    """What ``make()`` builds, its parameters left as shapes and dtypes (``nnx.eval_shape``) and the rest of its
    state (random streams and their counts) exactly as ``make()`` sets it. For a model whose every parameter is set
    next (an exported model loaded, a warm start): drawing weights only to replace them costs seconds of small
    compilations on a CPU, this a tenth of a second. Setting them is the caller's part (:func:`check_weights_set`)."""
    built = {}

    def rest():  # one trace: the structure and the parameters' shapes kept, the rest computed
        graphdef, params, others = nnx.split(make(), nnx.Param, ...)
        built["graphdef"] = graphdef
        built["params"] = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), nnx.to_pure_dict(params))
        return others  # (the weights' draws are not returned: dead code to XLA)

    others = jax.jit(rest)()
    return nnx.merge(built["graphdef"], built["params"], others)


def check_weights_set(model: nnx.Module) -> None:
    """ValueError naming the first parameter of a :func:`without_weights` model that no weights were set for."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(nnx.state(model)):
        if isinstance(leaf, jax.ShapeDtypeStruct):
            raise ValueError(f"{jax.tree_util.keystr(path)} was never set")
