"""Epoch orders and shifts: seeded, bounded, and what each framework's fit draws when given none."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_common import TrainConfig, epoch_orders, random_shifts, training_tables


def test_epoch_orders_are_seeded_permutations():
    orders = epoch_orders(100, 3, seed=7)
    assert orders.shape == (3, 100)
    for row in orders:
        assert sorted(row.tolist()) == list(range(100))
    assert not np.array_equal(orders[0], orders[1])
    np.testing.assert_array_equal(orders, epoch_orders(100, 3, seed=7))
    assert not np.array_equal(orders, epoch_orders(100, 3, seed=8))


def test_random_shifts_are_seeded_bounded_and_apart_from_the_orders():
    shifts = random_shifts(1000, 2, 2, seed=3)
    assert shifts.shape == (2, 1000, 2) and shifts.dtype == np.int8
    assert shifts.min() == -2 and shifts.max() == 2
    np.testing.assert_array_equal(shifts, random_shifts(1000, 2, 2, seed=3))
    assert not np.array_equal(shifts, random_shifts(1000, 2, 2, seed=4))


def test_training_tables_draw_from_the_seed_when_not_given():
    config = TrainConfig(epochs=3, seed=5, augment_shift=2)
    orders, shifts, max_shift = training_tables(200, config)
    np.testing.assert_array_equal(orders, epoch_orders(200, 3, 5))
    np.testing.assert_array_equal(shifts, random_shifts(200, 3, 2, 5))
    assert max_shift == 2
    plain = training_tables(200, config.replace(augment_shift=0))
    assert plain[1] is None and plain[2] == 0


def test_training_tables_use_and_check_what_the_caller_gives():
    config = TrainConfig(epochs=2)
    mine = np.stack([np.arange(10)[::-1], np.arange(10)])
    orders, shifts, max_shift = training_tables(10, config, mine, np.ones((2, 10, 2), np.int8))
    assert orders is mine and max_shift == 1 and shifts.shape == (2, 10, 2)
    assert training_tables(10, config, mine, np.zeros((2, 10, 2)))[1] is None  # no shift at all: no augmentation
    with pytest.raises(ValueError, match=r"orders must be \[epochs, N\] = \[2, 10\], got \[3, 10\]"):
        training_tables(10, config, np.zeros((3, 10), int))
    with pytest.raises(ValueError, match="shifts must be"):
        training_tables(10, config, mine, np.zeros((2, 9, 2)))
