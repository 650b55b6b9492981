"""Reading a multi-process run's place from the environment, as torchrun, SLURM and harness.launch set it."""

from __future__ import annotations

import pytest

from mnist_common.processes import ProcessesError, World, world_from_environment


def test_no_launcher_is_one_process():
    assert world_from_environment({}) == World()
    assert world_from_environment({"SLURM_NTASKS": "1", "SLURM_PROCID": "0"}) == World()
    # a batch script of a 4-task job, outside any srun step: one process
    assert world_from_environment({"SLURM_NTASKS": "4", "SLURM_PROCID": "0", "SLURM_LOCALID": "0"}) == World()


def test_torchrun_variables():
    env = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "MASTER_ADDR": "node0", "MASTER_PORT": "29500"}
    world = world_from_environment(env)
    assert world == World(4, 3, 1, "node0", 29500)
    assert not world.main
    assert world.jax_coordinator == "node0:29501"  # one above PyTorch's store


def test_slurm_variables_without_an_address_let_jax_detect_the_cluster():
    world = world_from_environment({"SLURM_STEP_NUM_TASKS": "2", "SLURM_NTASKS": "2", "SLURM_PROCID": "1",
                                    "SLURM_LOCALID": "0"})
    assert (world.size, world.rank, world.local_rank) == (2, 1, 0)
    assert world.jax_coordinator is None


@pytest.mark.parametrize("env, needle", [
    ({"WORLD_SIZE": "two"}, "$WORLD_SIZE must be an integer"),
    ({"WORLD_SIZE": "2", "RANK": "2"}, "rank 2 of 2"),
    ({"WORLD_SIZE": "0"}, "rank 0 of 0"),
])
def test_bad_environment_is_one_clear_error(env, needle):
    with pytest.raises(ProcessesError, match=needle.replace("$", r"\$")):
        world_from_environment(env)


def test_shares_tile_the_batch_in_rank_order():
    rows = [World(4, r).share(64) for r in range(4)]
    assert [(s.start, s.stop) for s in rows] == [(0, 16), (16, 32), (32, 48), (48, 64)]
    with pytest.raises(ProcessesError, match="multiple of --processes"):
        World(3, 0).share(64)
