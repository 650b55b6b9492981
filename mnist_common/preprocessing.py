"""MNIST's input convention: uint8 NHWC pixels -> float32, scaled to [0, 1], then normalised.

Both frameworks normalise in NumPy float32 with :func:`normalize` before
moving the images to their device, so they train on bit-identical inputs
(a compiler would turn the divisions into multiplications and differ in the
last bit).
"""

from __future__ import annotations

import numpy as np

#: MNIST pixel statistics, applied after scaling to [0, 1].
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

#: The normalised value of a black pixel: what shifted-in borders are filled with.
BACKGROUND = float((np.float32(0.0) - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD))


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 ``[N, H, W, C]`` -> normalised float32 ``[N, H, W, C]``, in NumPy."""
    x = np.asarray(images, dtype=np.float32) / np.float32(255.0)
    return (x - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)
