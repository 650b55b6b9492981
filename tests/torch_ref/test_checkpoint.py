"""PyTorch checkpoints on resume: a damaged file is set aside for the one before it; one that does not fit the
model is a one-line error, and is kept."""

from __future__ import annotations

import pytest
import torch

from mnist_common.checkpointing import CheckpointError, Checkpointing, Progress
from torch_ref.checkpoint import Checkpointer


def _model(inputs: int = 3):
    torch.manual_seed(0)
    model = torch.nn.Linear(inputs, 2)
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def test_a_damaged_newest_file_is_set_aside_for_the_one_before_it(tmp_path, capsys):
    checkpointer, (model, opt) = Checkpointer(Checkpointing(tmp_path, identity={"run": 1})), _model()
    for epoch in (1, 2):
        checkpointer.save(model, opt, None, Progress(epoch), steps_per_epoch=4)
    newest = sorted(tmp_path.glob("checkpoint-*.pt"))[-1]
    newest.write_bytes(b"not a checkpoint")
    restored = Checkpointer(Checkpointing(tmp_path, identity={"run": 1}, resume=True)).restore(
        *_model(), None, steps_per_epoch=4)
    assert restored.epoch == 1
    assert (tmp_path / f"{newest.name}.damaged").read_bytes() == b"not a checkpoint"  # kept, out of the way
    err = capsys.readouterr().err
    assert "is damaged" in err and "set it aside" in err and "resuming from checkpoint 4" in err


def test_a_checkpoint_that_does_not_fit_the_model_is_one_line_and_kept(tmp_path):
    plan = Checkpointing(tmp_path, identity={"run": 1})
    Checkpointer(plan).save(*_model(), None, Progress(1), steps_per_epoch=4)
    other, opt = _model(inputs=4)  # another version of the model, the same settings
    with pytest.raises(CheckpointError, match="does not fit this model"):
        Checkpointer(Checkpointing(tmp_path, identity={"run": 1}, resume=True)).restore(other, opt, None, 4)
    assert list(tmp_path.glob("checkpoint-*.pt"))  # not set aside: nothing damaged here
