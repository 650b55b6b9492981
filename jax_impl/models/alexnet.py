"""torchvision's AlexNet in Flax NNX, NHWC, with stock or tuned layers (``kernels``).

As ``torchvision.models.alexnet`` builds it: ``features`` (five convolutions,
11x11/4, 5x5, then three 3x3, with ReLU; 3x3/2 max pools after the first,
second and fifth), adaptive average pooling to 6x6, ``classifier`` (dropout,
4096, dropout, 4096, ``num_classes``, with ReLU), with PyTorch's default
initialisation. ``features`` and ``classifier`` hold the parameterised layers
only; their torchvision indices are :data:`FEATURE_INDICES` and
:data:`CLASSIFIER_INDICES`.
"""

from __future__ import annotations

import jax
from flax import nnx

from jax_impl import kernels as kernel_choice
from jax_impl.models.imagenet import adaptive_avg_pool, classifier_layers
from jax_impl.models.init import torch_default_bias_init, torch_default_kernel_init

#: (out channels, kernel, stride, padding) of each convolution, and whether a 3x3/2 max pool follows it.
CONVS = ((64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False), (256, 3, 1, 1, False),
         (256, 3, 1, 1, True))
FEATURE_INDICES = (0, 3, 6, 8, 10)  # torchvision's features.<i> of each convolution
CLASSIFIER_INDICES = (1, 4, 6)  # Dropout, Linear, ReLU, Dropout, Linear, ReLU, Linear
POOLED = 6  # the adaptive average pool's output side


class AlexNet(nnx.Module):
    """Normalised RGB ``[B, H, W, 3]`` (H, W >= 63) -> logits ``[B, num_classes]``.

    ``kernels``: as the CNN's (``"tuned"``: the same parameters through ``jax_impl.kernels``'
    convolutions, dense layers and dropout; its overlapping 3x3/2 pools are Flax's in both).
    """

    def __init__(self, *, num_classes: int = 1000, dropout: float = 0.5, kernels: str = "auto", dtype=None,
                 rngs: nnx.Rngs):
        self.kernels = kernel_choice.resolve(kernels)
        layers = kernel_choice.layers(self.kernels)
        convs, c_in = [], 3
        for c_out, k, stride, pad, _ in CONVS:
            convs.append(layers.Conv(c_in, c_out, kernel_size=(k, k), strides=(stride, stride),
                                     padding=((pad, pad), (pad, pad)), kernel_init=torch_default_kernel_init,
                                     bias_init=torch_default_bias_init(k * k * c_in), dtype=dtype, rngs=rngs))
            c_in = c_out

        def linear(d_in: int, d_out: int) -> nnx.Linear:
            return layers.Linear(d_in, d_out, kernel_init=torch_default_kernel_init,
                                 bias_init=torch_default_bias_init(d_in), dtype=dtype, rngs=rngs)

        self.features = nnx.List(convs)
        self.classifier = classifier_layers(linear, c_in * POOLED * POOLED, num_classes)
        self.dropout = layers.Dropout(dropout, rngs=rngs)
        self.num_classes, self.dtype = num_classes, dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        for conv, (*_, pool) in zip(self.features, CONVS):
            x = nnx.relu(conv(x))
            if pool:
                x = nnx.max_pool(x, (3, 3), strides=(2, 2))
        x = adaptive_avg_pool(x, (POOLED, POOLED))  # [B, 6, 6, 256]
        x = x.reshape(x.shape[0], -1)  # [B, 6*6*256], H-W-C order
        x = nnx.relu(self.classifier[0](self.dropout(x)))  # [B, 4096]
        x = nnx.relu(self.classifier[1](self.dropout(x)))  # [B, 4096]
        return self.classifier[2](x)  # [B, num_classes]
