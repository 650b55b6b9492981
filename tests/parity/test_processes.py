"""Data parallelism over processes follows the one-process trajectory, in both frameworks."""

from __future__ import annotations

import pytest

from parity.processes import LOSS_TOLERANCE, PARAM_TOLERANCE, check

pytestmark = pytest.mark.e2e  # worker processes under the launcher


def _assert_equal_trajectories(records):
    by_what = {r["check"].rsplit(", ", 1)[1]: r for r in records}
    assert by_what["losses"]["passed"] and by_what["losses"]["max_abs_diff"] <= LOSS_TOLERANCE, by_what
    assert by_what["parameters"]["passed"] and by_what["parameters"]["max_abs_diff"] <= PARAM_TOLERANCE, by_what
    assert by_what["losses"]["tolerance"] == 1e-5 and by_what["parameters"]["tolerance"] == 1e-4


@pytest.mark.parametrize("framework, all_reduce", [("jax", "flat"), ("jax", "xla"), ("torch", "auto")])
def test_two_processes_follow_one_for_20_sgd_steps_cnn(framework, all_reduce):
    """JAX with dropout on, both ways of summing the gradients: the workers draw the one process's masks."""
    _assert_equal_trajectories(check(framework, "cnn", processes=2, steps=20, all_reduce=all_reduce))


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_two_processes_follow_one_for_20_sgd_steps_vit(framework):
    _assert_equal_trajectories(check(framework, "vit", processes=2, steps=20))
