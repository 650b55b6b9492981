"""The runner end to end at the smoke preset, and its usage errors."""

from __future__ import annotations

import json

import pytest

from benchmarks.run import build_parser
from cli_helpers import assert_one_line_error, run_cli

RUN_KEYS = {
    "framework", "model", "optimizer", "epochs", "batch_size", "lr", "seed", "preset", "weights",
    "train_loss", "test_loss", "test_accuracy", "test_macro_f1", "train_time_s", "compile_time_s",
    "images_per_s", "params", "history",
}


@pytest.fixture(scope="module")
def smoke_both(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    proc = run_cli("--framework", "both", "--preset", "smoke", "--no-progress", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return proc, out, json.loads((out / "results.json").read_text())


def test_smoke_writes_results_with_the_agreed_keys(smoke_both):
    _, out, results = smoke_both
    env = results["environment"]
    assert {"host", "data", "frameworks"} <= set(env)
    assert env["data"]["source"] == "idx" and len(env["data"]["checksums"]) == 4
    assert set(env["frameworks"]) == {"jax", "torch"}
    assert env["frameworks"]["jax"]["versions"]["jax"] and env["frameworks"]["torch"]["versions"]["torch"]
    assert [r["framework"] for r in results["runs"]] == ["jax", "torch"]
    for run in results["runs"]:
        assert RUN_KEYS <= set(run), RUN_KEYS - set(run)
        assert run["preset"] == "smoke" and run["epochs"] == 2 and len(run["history"]) == 2
        assert run["train_size"] == 2000 and run["weights"] == "random init (seed 0)"
        assert 0.5 < run["test_accuracy"] <= 1.0  # a fraction, from a model that learned
        assert 0 < run["test_macro_f1"] <= 1.0
        assert run["params"] == 421642 and run["images_per_s"] > 0 and run["train_time_s"] > 0
        assert {"epoch", "train_loss", "val_loss", "val_accuracy", "epoch_time_s", "lr"} <= set(run["history"][0])
    assert results["runs"][0]["compile_time_s"] > 0
    assert (out / "results.md").read_text().startswith("# MNIST benchmark results")


def test_both_prints_table_and_throughput_ratio(smoke_both):
    proc, _, results = smoke_both
    assert "| framework" in proc.stdout and "jax" in proc.stdout and "torch" in proc.stdout
    (ratio,) = results["throughput_ratios"]
    assert ratio["jax_over_torch"] == pytest.approx(ratio["jax_images_per_s"] / ratio["torch_images_per_s"])
    assert f"{ratio['jax_over_torch']:.2f}x" in proc.stdout


def test_both_frameworks_trained_on_the_same_split_and_settings(smoke_both):
    _, _, results = smoke_both
    jax_run, torch_run = results["runs"]
    for key in ("train_size", "val_size", "steps_per_epoch", "batch_size", "lr", "epochs", "seed"):
        assert jax_run[key] == torch_run[key], key
    for run in (jax_run, torch_run):  # both learn: the training loss falls from epoch 1 to epoch 2
        assert run["history"][-1]["train_loss"] < run["history"][0]["train_loss"]


@pytest.mark.parametrize("args,needle", [
    (["--model", "resnet"], "unknown model 'resnet'"),
    (["--framework", "mxnet"], "unknown framework 'mxnet'"),
    (["--epochs", "-1"], "--epochs must be at least 1"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--lr", "0"], "--lr must be positive"),
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--optimizer", "lbfgs"], "unknown optimizer 'lbfgs'"),
    (["--schedule", "step"], "unknown schedule 'step'"),
    (["--data-source", "kaggle"], "unknown data source 'kaggle'"),
    (["--model", "vit", "--variant", "huge/1"], "unknown variant 'huge/1'"),
    (["--model", "cnn", "--variant", "tiny/7"], "this model has no variants"),
    (["--weight-decay", "0.1"], "--weight-decay needs --optimizer adamw"),
    (["--weight-decay", "-1", "--optimizer", "adamw"], "--weight-decay must be >= 0"),
    (["--label-smoothing", "1"], "--label-smoothing must be in [0, 1)"),
    (["--augment-shift", "9"], "--augment-shift must be in [0, 8]"),
    (["--epochs", "two"], "invalid int value"),
    (["--bogus"], "unrecognized arguments"),
    (["--preset", "smoke", "--train-size", "999999"], "train_size must be in"),
    (["--preset", "smoke", "--batch-size", "5000"], "larger than the 2000 training images"),
])
def test_usage_errors_exit_2_with_one_line(tmp_path, args, needle):
    proc = run_cli(*args, "--out", str(tmp_path / "out"))
    assert_one_line_error(proc, needle)
    assert not (tmp_path / "out" / "results.json").exists()


def test_out_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("keep me")
    assert_one_line_error(run_cli("--preset", "smoke", "--out", str(target)), "is not a folder")
    assert target.read_text() == "keep me"


def test_every_flag_has_help_and_a_default_shown():
    parser = build_parser()
    for action in parser._actions:
        if action.dest != "help":
            assert action.help and "(default:" in action.help, action.dest


def test_vit_smoke_in_both_frameworks(tmp_path):
    proc = run_cli("--model", "vit", "--framework", "both", "--preset", "smoke", "--no-progress", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["framework"] for r in results["runs"]] == ["jax", "torch"]
    for run in results["runs"]:
        assert RUN_KEYS <= set(run)
        assert run["model"] == "vit" and run["variant"] == "tiny/7" and run["optimizer"] == "adamw"
        assert run["params"] == 205962 and run["weight_decay"] == 0.05 and run["label_smoothing"] == 0.1
        assert 0.15 < run["test_accuracy"] <= 1.0  # two short epochs from scratch: well above chance
    assert "vit tiny/7" in proc.stdout and results["throughput_ratios"][0]["model"] == "vit tiny/7"


def test_augmented_cnn_run_records_its_recipe(tmp_path):
    proc = run_cli("--framework", "torch", "--preset", "smoke", "--epochs", "1", "--augment-shift", "2",
                   "--optimizer", "adamw", "--weight-decay", "0.01", "--label-smoothing", "0.1", "--no-progress",
                   "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    (run,) = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert (run["augment_shift"], run["weight_decay"], run["label_smoothing"]) == (2, 0.01, 0.1)
    assert run["variant"] is None and run["model"] == "cnn"
