"""Epoch orders and augmentation shifts, drawn in NumPy so that both frameworks see the same batches.

Each framework's ``fit`` draws them from ``config.seed`` with these functions
when the caller gives none, so a JAX run and a PyTorch run of one
configuration train on the very same images in the very same order.
"""

from __future__ import annotations

import numpy as np

from mnist_common.config import TrainConfig


def epoch_orders(num_examples: int, epochs: int, seed: int) -> np.ndarray:
    """The shuffling order of every epoch, ``int64 [epochs, num_examples]``: one permutation per epoch."""
    rng = np.random.default_rng(seed)
    if not epochs:
        return np.zeros((0, num_examples), dtype=np.int64)
    return np.stack([rng.permutation(num_examples) for _ in range(epochs)])


def random_shifts(num_examples: int, epochs: int, max_shift: int, seed: int) -> np.ndarray:
    """Augmentation shifts, ``int8 [epochs, num_examples, 2]`` in ``[-max_shift, max_shift]``.

    Entry ``[e, j]`` is the (dy, dx) translation of the image at position j of
    epoch e's order, from a stream apart from the orders' (same seed).
    """
    rng = np.random.default_rng([seed, 1])
    return rng.integers(-max_shift, max_shift + 1, size=(epochs, num_examples, 2), dtype=np.int8)


def training_tables(num_examples: int, config: TrainConfig, orders: np.ndarray | None = None,
                    shifts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None, int]:
    """The epoch orders, the shift table (None: no augmentation) and the largest shift, for one ``fit``.

    Tables the caller gives are checked against ``config`` (one row per epoch, one
    column per example) and used as they are; missing ones are drawn from
    ``config.seed``: orders always, shifts when ``config.augment_shift`` is set.
    """
    if orders is None:
        orders = epoch_orders(num_examples, config.epochs, config.seed)
    orders = np.asarray(orders)
    if orders.shape != (config.epochs, num_examples):
        raise ValueError(f"orders must be [epochs, N] = [{config.epochs}, {num_examples}], got {list(orders.shape)}")
    if shifts is None and config.augment_shift:
        shifts = random_shifts(num_examples, config.epochs, config.augment_shift, config.seed)
    if shifts is None or not np.asarray(shifts).size:
        return orders, None, 0
    shifts = np.asarray(shifts)
    if shifts.shape != (config.epochs, num_examples, 2):
        raise ValueError(f"shifts must be [epochs, N, 2] = [{config.epochs}, {num_examples}, 2], "
                         f"got {list(shifts.shape)}")
    max_shift = int(np.abs(shifts).max())
    return orders, (shifts if max_shift else None), max_shift
