"""torchvision's VGG16 (configuration "D") in Flax NNX, NHWC, with stock or tuned layers (``kernels``).

As ``torchvision.models.vgg16`` builds it: ``features`` (thirteen 3x3
convolutions with ReLU, five 2x2 max pools), adaptive average pooling to 7x7,
``classifier`` (4096, 4096, ``num_classes``, ReLU and dropout between), with
torchvision's initialisation (convolutions Kaiming-normal on the fan-out, dense
layers N(0, 0.01), biases 0). ``features`` holds the convolutions only; their
torchvision indices (the ReLUs and pools take the others) are
:data:`FEATURE_INDICES`, which the conversion table (``jax_impl.models.layout``) uses.
"""

from __future__ import annotations

import jax
from flax import nnx

from jax_impl import kernels as kernel_choice
from jax_impl.models.imagenet import adaptive_avg_pool, classifier_layers

#: Configuration "D": output channels of each 3x3 convolution, "M" a 2x2 max pool.
CONFIG_D = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def _conv_indices(config) -> tuple[int, ...]:
    """torchvision's ``features`` index of each convolution: a convolution and its ReLU take two, a pool one."""
    indices, i = [], 0
    for v in config:
        if v != "M":
            indices.append(i)
        i += 1 if v == "M" else 2
    return tuple(indices)


FEATURE_INDICES = _conv_indices(CONFIG_D)
#: torchvision's ``classifier`` index of each dense layer: Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear.
CLASSIFIER_INDICES = (0, 3, 6)
POOLED = 7  # the adaptive average pool's output side


class VGG16(nnx.Module):
    """Normalised RGB ``[B, H, W, 3]`` (H, W >= 32) -> logits ``[B, num_classes]``.

    ``kernels``: as the CNN's (``"tuned"``: the same parameters through ``jax_impl.kernels``'
    convolutions, pooling, dense layers and dropout; ``"auto"``: tuned on the CPU backend).
    """

    #: Built eagerly, not in one compiled call (``jax_impl.models.init.initialized``): compiled together, the
    #: dense layers' N(0, 0.01) draws and their scaling round differently, a quarter of those weights one unit
    #: in the last place off (docs/performance.md, "Drawing the initial weights").
    compiled_init = False

    def __init__(self, *, num_classes: int = 1000, dropout: float = 0.5, kernels: str = "auto", dtype=None,
                 rngs: nnx.Rngs):
        self.kernels = kernel_choice.resolve(kernels)
        layers = kernel_choice.layers(self.kernels)
        conv_init = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")  # kaiming_normal_, fan_out, ReLU
        convs, c_in = [], 3
        for v in CONFIG_D:
            if v != "M":
                convs.append(layers.Conv(c_in, v, kernel_size=(3, 3), padding=((1, 1), (1, 1)),
                                         kernel_init=conv_init, bias_init=nnx.initializers.zeros_init(), dtype=dtype,
                                         rngs=rngs))
                c_in = v

        def linear(d_in: int, d_out: int) -> nnx.Linear:
            return layers.Linear(d_in, d_out, kernel_init=nnx.initializers.normal(0.01),
                                 bias_init=nnx.initializers.zeros_init(), dtype=dtype, rngs=rngs)

        self.features = nnx.List(convs)
        self.classifier = classifier_layers(linear, c_in * POOLED * POOLED, num_classes)
        self.dropout = layers.Dropout(dropout, rngs=rngs)
        self.num_classes, self.dtype = num_classes, dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        convs, max_pool = iter(self.features), kernel_choice.layers(self.kernels).max_pool
        for v in CONFIG_D:
            x = max_pool(x, 2) if v == "M" else nnx.relu(next(convs)(x))
        x = adaptive_avg_pool(x, (POOLED, POOLED))  # [B, 7, 7, 512]
        x = x.reshape(x.shape[0], -1)  # [B, 7*7*512], H-W-C order
        x = self.dropout(nnx.relu(self.classifier[0](x)))  # [B, 4096]
        x = self.dropout(nnx.relu(self.classifier[1](x)))  # [B, 4096]
        return self.classifier[2](x)  # [B, num_classes]
