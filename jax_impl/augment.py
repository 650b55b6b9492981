"""Random shifts applied on the device from shift tables made outside.

The shifts themselves (integers per image per epoch) come from the caller,
drawn once in NumPy, so PyTorch (``torch_ref.augment``) shifts the very same
images by the very same amounts.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def shift_images(x: jax.Array, shifts: jax.Array, max_shift: int, fill: float) -> jax.Array:
    """Translate each image by ``shifts[i] = (dy, dx)`` pixels, filling with ``fill``.

    ``x`` is NHWC ``[B, H, W, C]``; ``out[i, r, c] = x[i, r - dy, c - dx]``
    where that lies inside the image, ``fill`` elsewhere. ``|dy|, |dx| <= max_shift``.
    """
    m = max_shift
    padded = jnp.pad(x, ((0, 0), (m, m), (m, m), (0, 0)), constant_values=fill)  # [B, H+2m, W+2m, C]

    def crop(image, shift):
        return jax.lax.dynamic_slice(image, (m - shift[0], m - shift[1], 0), x.shape[1:])

    return jax.vmap(crop)(padded, shifts.astype(jnp.int32))  # [B, H, W, C]
