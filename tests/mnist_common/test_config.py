"""Training settings are checked when made; results compute steady-state throughput as documented."""

from __future__ import annotations

import pytest

from mnist_common import ConfigError, EpochStats, FitResult, TrainConfig
from mnist_common.schedules import schedule_factor


@pytest.mark.parametrize("changes,field,words", [
    ({"epochs": 0}, "epochs", "at least 1"),
    ({"batch_size": 0}, "batch_size", "at least 1"),
    ({"optimizer": "lbfgs"}, "optimizer", "'lbfgs' is unknown"),
    ({"lr": 0.0}, "lr", "must be positive"),
    ({"momentum": 1.0}, "momentum", "[0, 1)"),
    ({"weight_decay": 0.1}, "weight_decay", "needs optimizer adamw"),
    ({"weight_decay": -1.0, "optimizer": "adamw"}, "weight_decay", ">= 0"),
    ({"schedule": "step"}, "schedule", "'step' is unknown"),
    ({"label_smoothing": 1.0}, "label_smoothing", "[0, 1)"),
    ({"augment_shift": 9}, "augment_shift", "[0, 8]"),
    ({"steps_per_call": 0}, "steps_per_call", "at least 1"),
    ({"devices": 0}, "devices", "at least 1"),
    ({"seed": -1}, "seed", "in [0, 4294967295]"),
    ({"seed": 2**32}, "seed", "in [0, 4294967295]"),
])
def test_bad_values_name_their_field(changes, field, words):
    with pytest.raises(ConfigError) as err:
        TrainConfig(**changes)
    assert err.value.field == field and words in err.value.problem and str(err.value).startswith(field)


def test_lr_at_follows_the_schedule():
    config = TrainConfig(lr=0.1, schedule="cosine", warmup_steps=5)
    assert config.lr_at(0, 50) == 0.0 and config.lr_at(5, 50) == pytest.approx(0.1)
    assert config.lr_at(20, 50) == pytest.approx(0.1 * schedule_factor(20, schedule="cosine", total_steps=50,
                                                                         warmup_steps=5))
    assert TrainConfig(lr=0.1).lr_at(49, 50) == 0.1


def _result(times, warmup=5.0, steps_per_call=1):
    history = [EpochStats(i + 1, 0.1, t, 1000 / t) for i, t in enumerate(times)]
    return FitResult(history, sum(times), 1.0, warmup, steps_per_epoch=10, batch_size=100,
                     steps_per_call=steps_per_call)


def test_steady_state_throughput():
    assert _result([10.0, 4.0, 6.0]).images_per_s == 200  # epochs 2 and 3: 2 * 1000 images in 10 s
    assert _result([10.0]).images_per_s == 180  # one epoch: without the first step's 100 images and 5 s
    assert _result([10.0], steps_per_call=5).images_per_s == 100  # the first call was 5 steps: 500 images
    assert _result([10.0], warmup=10.0).images_per_s == 100  # nothing left to measure: the epoch as a whole
    assert _result([10.0, 4.0]).train_loss == 0.1 and _result([10.0]).images_per_epoch == 1000


def test_epoch_stats_leave_out_what_was_not_measured():
    assert EpochStats(1, 0.5, 2.0, 50.0, lr=None, val_accuracy=0.9).as_dict() == {
        "epoch": 1, "train_loss": 0.5, "epoch_time_s": 2.0, "images_per_s": 50.0, "val_accuracy": 0.9}


def test_a_run_that_does_not_resume_starts_without_an_earlier_runs_checkpoints(tmp_path, capsys):
    from mnist_common.checkpointing import start_over

    old = tmp_path / "cnn-jax-seed0"
    (old / "117").mkdir(parents=True)
    start_over(old, resume=True)
    assert (old / "117").is_dir()  # resuming keeps them
    start_over(old, resume=False)
    assert not old.exists() and "removing the checkpoints an earlier run left" in capsys.readouterr().err


def test_an_exported_config_missing_a_field_is_one_clear_error(tmp_path):
    import json

    from mnist_common.export import CONFIG_FILE, ExportError, read_config, write_config

    (tmp_path / "model.safetensors").write_bytes(b"x")
    write_config(tmp_path, model="cnn", variant=None, num_classes=10, image_size=28)
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    config["weights"] = "model.safetensors"  # hand-edited: not the dict the loader reads
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ExportError, match="field 'weights' must hold file 'model.safetensors' and its 64-digit sha256"):
        read_config(tmp_path)
