"""Data parallelism over one process's local devices: a 1-D mesh that splits each batch.

``fit`` replicates the training state over the mesh and shards each batch
along it (``NamedSharding``); XLA inserts the gradient all-reduce. The
mathematics is one device's; only the order of summation differs.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh


def batch_mesh(batch_size: int, devices: int | None = None) -> Mesh | None:
    """A ``("batch",)`` mesh over the local devices that divide ``batch_size``; None for one device.

    ``devices`` caps the count (1: no data parallelism).
    """
    local = jax.local_devices()
    n = min(len(local), devices or len(local))
    while n > 1 and batch_size % n:
        n -= 1
    return Mesh(np.array(local[:n]), ("batch",)) if n > 1 else None
