"""The runner end to end at the smoke preset, and its usage errors."""

from __future__ import annotations

import json
import re
import stat
import sys

import pytest
from cli_helpers import assert_one_line_error, run_cli

from benchmarks.run import build_parser

RUN_KEYS = {
    "framework", "model", "kernels", "optimizer", "epochs", "batch_size", "lr", "seed", "preset", "weights",
    "train_loss", "test_loss", "test_accuracy", "test_macro_f1", "train_time_s", "compile_time_s",
    "images_per_s", "params", "history",
}


@pytest.fixture(scope="module")
def smoke_both(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    proc = run_cli("--framework", "both", "--model", "cnn", "--preset", "smoke", "--seeds", "0,1", "--train-size",
                   "1024", "--no-progress", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return proc, out, json.loads((out / "results.json").read_text())


def test_smoke_writes_results_with_the_agreed_keys(smoke_both):
    _, out, results = smoke_both
    env = results["environment"]
    assert {"host", "data", "frameworks"} <= set(env)
    assert env["data"]["source"] == "idx" and len(env["data"]["checksums"]) == 4
    assert set(env["frameworks"]) == {"jax", "torch"}
    assert env["frameworks"]["jax"]["versions"]["jax"] and env["frameworks"]["torch"]["versions"]["torch"]
    assert [(r["framework"], r["seed"]) for r in results["runs"]] == [("jax", 0), ("torch", 0), ("jax", 1), ("torch", 1)]
    for run in results["runs"]:
        assert RUN_KEYS <= set(run), RUN_KEYS - set(run)
        assert run["preset"] == "smoke" and run["epochs"] == 2 and len(run["history"]) == 2
        assert run["train_size"] == 1024 and run["weights"] == f"random init (seed {run['seed']})"
        assert 0.5 < run["test_accuracy"] <= 1.0  # a fraction, from a model that learned
        assert 0 < run["test_macro_f1"] <= 1.0
        assert run["params"] == 421642 and run["images_per_s"] > 0 and run["train_time_s"] > 0
        assert {"epoch", "train_loss", "val_loss", "val_accuracy", "epoch_time_s", "lr"} <= set(run["history"][0])
        # the wait for the first epoch's line: at least that epoch, and the process ran before the run began
        assert run["history"][0]["epoch_time_s"] <= run["first_epoch_s"] and run["launch_to_run_s"] > 0
    assert results["runs"][0]["compile_time_s"] > 0
    assert results["runs"][0]["launch_to_run_s"] < results["runs"][1]["launch_to_run_s"]
    assert [r["kernels"] for r in results["runs"]] == ["tuned", None, "tuned", None]  # auto on a CPU: tuned
    assert [r["devices"] for r in results["runs"]] == [1, 1, 1, 1]  # both: the same device count
    assert (out / "results.md").read_text().startswith("# MNIST benchmark results")
    assert (out / "results.md").read_text().count("First epoch's line") == 4


def test_every_epoch_is_a_line_on_stderr_and_in_history_jsonl(smoke_both):
    """--no-progress hides the bar, not the epochs: 2 epochs x 2 seeds x 2 frameworks."""
    proc, out, _ = smoke_both
    lines = [line for line in proc.stderr.splitlines()
             if re.match(r"(jax|torch) +cnn \((tuned|eager)\) seed [01] epoch [12]/2: ", line)]
    assert len(lines) == 8, proc.stderr
    records = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [(r["framework"], r["seed"], r["epoch"]) for r in records] == [
        (fw, seed, epoch) for seed in (0, 1) for fw in ("jax", "torch") for epoch in (1, 2)]
    assert {"model", "train_loss", "val_loss", "val_accuracy", "epoch_time_s", "images_per_s", "lr", "time"} <= set(
        records[0])


def test_files_get_ordinary_permissions(smoke_both):
    """Written under umask 022 (run_cli's): 0644, like any file open() makes, not a temporary file's 0600."""
    from harness.report.plots import PLOTS

    _, out, _ = smoke_both
    for name in ("results.json", "results.md", "results.csv", "report.md", "history.jsonl", *PLOTS):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name


def test_seeds_write_the_study_files(smoke_both):
    from harness.report.plots import PLOTS

    proc, out, results = smoke_both
    for name in ("results.json", "results.csv", "report.md", *PLOTS):
        assert (out / name).is_file(), name
    assert all((out / name).read_bytes().startswith(b"\x89PNG") for name in PLOTS)
    assert len((out / "results.csv").read_text().splitlines()) == 1 + 4
    md = (out / "report.md").read_text()
    assert "| cnn" in md and " ± " in md and "0,1" in md  # mean ± std over the two seeds
    assert results["runs"][0]["history"] != results["runs"][2]["history"]  # another seed, another run
    assert " ± " in proc.stdout  # the summary over seeds is printed too


def test_both_prints_table_and_throughput_ratio(smoke_both):
    proc, _, results = smoke_both
    assert "| framework" in proc.stdout and "jax" in proc.stdout and "torch" in proc.stdout
    ratio, _ = results["throughput_ratios"]  # one per seed
    assert ratio["jax_over_torch"] == pytest.approx(ratio["jax_images_per_s"] / ratio["torch_images_per_s"])
    assert f"{ratio['jax_over_torch']:.2f}x" in proc.stdout


def test_both_frameworks_trained_on_the_same_split_and_settings(smoke_both):
    _, _, results = smoke_both
    jax_run, torch_run = results["runs"][:2]
    for key in ("train_size", "val_size", "steps_per_epoch", "batch_size", "lr", "epochs", "seed"):
        assert jax_run[key] == torch_run[key], key
    from harness.malloc import SETTINGS

    assert set(results["environment"]["host"]["malloc"]) == set(SETTINGS)  # one process, one allocator setting
    for run in (jax_run, torch_run):  # both learn: the training loss falls from epoch 1 to epoch 2
        assert run["history"][-1]["train_loss"] < run["history"][0]["train_loss"]


@pytest.mark.parametrize("args,needle", [
    (["--model", "resnet"], "unknown model 'resnet'"),
    (["--framework", "mxnet"], "--framework 'mxnet' is unknown (choose from jax, torch, both)"),
    (["--epochs", "-1"], "--epochs must be at least 1"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--lr", "0"], "--lr must be positive"),
    (["--preset", "huge"], "--preset 'huge' is unknown"),
    (["--optimizer", "lbfgs"], "--optimizer 'lbfgs' is unknown"),
    (["--schedule", "step"], "--schedule 'step' is unknown"),
    (["--data-source", "kaggle"], "--data-source 'kaggle' is unknown"),
    (["--model", "vit", "--variant", "huge/1"], "--variant 'huge/1' is unknown for vit"),
    (["--model", "cnn", "--variant", "tiny/7"], "this model has no variants"),
    (["--weight-decay", "0.1"], "--weight-decay needs optimizer adamw"),
    (["--weight-decay", "-1", "--optimizer", "adamw"], "--weight-decay must be >= 0"),
    (["--label-smoothing", "1"], "--label-smoothing must be in [0, 1)"),
    (["--augment-shift", "9"], "--augment-shift must be in [0, 8]"),
    (["--epochs", "two"], "invalid int value"),
    (["--bogus"], "unrecognized arguments"),
    (["--preset", "smoke", "--train-size", "999999"], "train_size must be in"),
    (["--preset", "smoke", "--batch-size", "5000"], "larger than the 2000 training images"),
    (["--model", "faster_rcnn"], "no JAX port: use --framework torch"),
    (["--model", "cnn,faster_rcnn"], "faster_rcnn is a torchvision model with no JAX port"),
    (["--model", "cnn", "--weights", "pretrained"], "--weights does not apply to cnn"),
    (["--model", "vit", "--image-size", "64"], "--image-size does not apply to vit"),
    (["--framework", "torch", "--model", "alexnet", "--image-size", "62"], "--image-size must be >= 63 px for alexnet"),
    (["--framework", "torch", "--model", "vgg16", "--image-size", "31"], "--image-size must be >= 32 px for vgg16"),
    (["--framework", "torch", "--model", "vgg16", "--detector", "resnet50_fpn_v2"], "--detector does not apply"),
    (["--framework", "torch", "--model", "faster_rcnn", "--detector", "yolo"], "--detector 'yolo' is unknown"),
    (["--framework", "torch", "--model", "faster_rcnn", "--freeze-features"], "--freeze-features does not apply"),
    (["--framework", "torch", "--model", "faster_rcnn", "--label-smoothing", "0.1"], "does not apply to faster_rcnn"),
    (["--kernels", "fast"], "--kernels 'fast' is unknown (choose from auto, stock, tuned)"),
    (["--framework", "torch", "--model", "faster_rcnn", "--kernels", "stock"], "--kernels does not apply to faster_rcnn"),
    (["--seed", "-1"], "--seed must be integers in [0, 4294967295]"),
    (["--seed", "99999999999999999999"], "--seed must be integers in [0, 4294967295]"),
    (["--seeds", "0,,1"], "--seeds must be comma-separated integers with no empty entries"),
    (["--checkpoint-dir", "README.md"], "--checkpoint-dir README.md exists and is not a folder"),
    (["--warmup-epochs", "-1"], "--warmup-epochs must be >= 0"),
    (["--framework", "torch", "--model", "vgg16", "--weights", "/nonexistent/vgg.pt"], "no such file"),
    (["--precision", "float16"], "--precision 'float16' is unknown (choose from float32, bfloat16)"),
    (["--torch-compile", "fast"], "--torch-compile 'fast' is unknown"),
    (["--channels-last", "maybe"], "--channels-last 'maybe' is unknown (choose from on, off)"),
    (["--model", "vit", "--channels-last"], "--channels-last does not apply to vit"),
    (["--kernels", "stock,stock"], "--kernels lists a mode twice"),
    (["--test-size", "0"], "--test-size must be in [1, 10000]"),
    (["--steps-per-call", "0"], "--steps-per-call must be at least 1"),
    (["--model", "cnn,resnet"], "unknown model 'resnet'"),
    (["--seeds", "0,x"], "--seeds must be comma-separated integers"),
    (["--seeds", "1,1"], "--seeds names a seed twice"),
    (["--malloc", "jemalloc"], "--malloc 'jemalloc' is unknown"),
])
def test_usage_errors_exit_2_with_one_line(tmp_path, args, needle):
    proc = run_cli(*args, "--out", str(tmp_path / "out"))
    assert_one_line_error(proc, needle)
    assert not (tmp_path / "out").exists()  # nothing written


def test_every_models_weights_are_checked_before_the_first_model_trains(tmp_path):
    """A state dict that is not AlexNet's stops the command before the CNN, first in the list, trains."""
    import torch

    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "bad.pt")
    proc = run_cli("--framework", "torch", "--model", "cnn,alexnet", "--preset", "smoke", "--weights",
                   str(tmp_path / "bad.pt"), "--out", str(tmp_path / "out"))
    assert_one_line_error(proc, "bad.pt do not fit AlexNet")
    assert not (tmp_path / "out").exists()


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


def test_vit_in_both_frameworks_in_bfloat16(tmp_path):
    """The ViT through the runner, in bfloat16 (its float32 training is tested in tests/jax_impl and tests/torch_ref)."""
    proc = run_cli("--model", "vit", "--framework", "both", "--preset", "smoke", "--train-size", "1024", "--val-size",
                   "100", "--test-size", "300", "--precision", "bfloat16", "--no-progress", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert [(r["framework"], r["mode"]) for r in results["runs"]] == [("jax", "tuned, bf16"), ("torch", "eager, bf16")]
    for run in results["runs"]:
        assert RUN_KEYS <= set(run)
        assert run["model"] == "vit" and run["variant"] == "tiny/7" and run["optimizer"] == "adamw"
        assert run["params"] == 205962 and run["weight_decay"] == 0.05 and run["label_smoothing"] == 0.1
        assert 0.15 < run["test_accuracy"] <= 1.0  # two short epochs from scratch: well above chance
    assert [r["precision"] for r in results["runs"]] == ["bfloat16"] * 2
    assert "vit tiny/7" in proc.stdout and results["throughput_ratios"][0]["model"] == "vit tiny/7"


def test_augmented_cnn_run_records_its_recipe(tmp_path):
    proc = run_cli("--framework", "torch", "--preset", "smoke", "--epochs", "1", "--augment-shift", "2",
                   "--optimizer", "adamw", "--weight-decay", "0.01", "--label-smoothing", "0.1", "--quiet",
                   "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert " epoch 1/1" not in proc.stderr  # --quiet: no per-epoch lines (history.jsonl still has them)
    assert len((tmp_path / "history.jsonl").read_text().splitlines()) == 1
    (run,) = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert (run["augment_shift"], run["weight_decay"], run["label_smoothing"]) == (2, 0.01, 0.1)
    assert run["variant"] is None and run["model"] == "cnn"


TORCHVISION_MODELS = ("vgg16", "alexnet", "faster_rcnn")


@pytest.fixture(scope="module")
def smoke_torchvision(tmp_path_factory):
    out = tmp_path_factory.mktemp("torchvision")
    proc = run_cli("--framework", "torch", "--model", ",".join(TORCHVISION_MODELS), "--preset", "smoke",
                   "--weights", "none", "--no-progress", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return proc, out, json.loads((out / "results.json").read_text())


def test_torchvision_smoke_records_random_init_and_its_settings(smoke_torchvision):
    _, _, results = smoke_torchvision
    assert [r["model"] for r in results["runs"]] == list(TORCHVISION_MODELS)
    for run in results["runs"]:
        assert RUN_KEYS <= set(run)
        assert run["framework"] == "torch" and run["weights"] == "random init (seed 0)"
        assert run["weights_info"]["source"] == "random init" and run["precision"] == "float32"
        assert 0 <= run["test_accuracy"] <= 1 and run["train_time_s"] > 0
    sizes = {r["model"]: (r["image_size"], r["test_size"]) for r in results["runs"]}
    assert sizes == {"vgg16": (32, 200), "alexnet": (63, 500), "faster_rcnn": (64, 100)}
    detector = results["runs"][2]
    assert detector["variant"] == "mobilenet_v3_large_320_fpn" and detector["test_loss"] is None
    assert 0 <= detector["no_detection_rate"] <= 1
    assert set(results["settings"]) == set(TORCHVISION_MODELS)


def test_torchvision_report_has_the_labs_comparison_table(smoke_torchvision):
    proc, out, _ = smoke_torchvision
    md = (out / "results.md").read_text()
    section = md.split("## Comparison", 1)[1].split("##", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()
            if line.startswith("|") and not line.startswith("|-")]
    assert rows[0] == ["model", "framework", "mode", "weights", "training loss", "test acc (%)", "macro-F1",
                       "training time (s)"]
    assert [r[:4] for r in rows[1:]] == [[m, "torch", "eager", "random init (seed 0)"] for m in
                                         ("vgg16", "alexnet", "faster_rcnn mobilenet_v3_large_320_fpn")]
    assert "had no detection" in md
    assert "vgg16" in proc.stdout and "faster_rcnn" in proc.stdout


def test_pretrained_offline_exits_2_naming_the_file(tmp_path):
    proc = run_cli("--framework", "torch", "--model", "alexnet", "--preset", "smoke", "--weights", "pretrained",
                   "--out", str(tmp_path / "out"), env={"TORCH_HOME": str(tmp_path / "th"),
                                                        "https_proxy": "http://127.0.0.1:9"})
    line = assert_one_line_error(proc, "AlexNet_Weights.IMAGENET1K_V1", "alexnet-owt-7be5be79.pth")
    assert str(tmp_path / "th" / "hub" / "checkpoints") in line
    assert not (tmp_path / "out" / "results.json").exists()


@pytest.mark.slow  # end to end; the default suite covers the parts
def test_model_all_with_jax_runs_the_ports_and_skips_faster_rcnn(tmp_path):
    proc = run_cli("--model", "all", "--preset", "smoke", "--epochs", "1", "--train-size", "256", "--val-size", "0",
                   "--test-size", "100", "--quiet", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "skipping faster_rcnn" in proc.stderr and "skipping vgg16" not in proc.stderr
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert [(r["framework"], r["model"]) for r in runs] == [("jax", m) for m in ("cnn", "vit", "vgg16", "alexnet")]


@pytest.mark.slow  # end to end; the default suite covers the parts
def test_kernels_stock_and_tuned_both_run_and_are_recorded(tmp_path):
    """Each choice trains (the stock and tuned layers differ in their dropout masks only) and is recorded."""
    for choice in ("stock", "tuned"):
        out = tmp_path / choice
        proc = run_cli("--model", "cnn", "--preset", "smoke", "--epochs", "1", "--train-size", "1024", "--val-size",
                       "100", "--test-size", "500", "--kernels", choice, "--no-progress", "--out", str(out))
        assert proc.returncode == 0, proc.stderr
        (run,) = json.loads((out / "results.json").read_text())["runs"]
        assert run["kernels"] == choice and run["framework"] == "jax"
        assert json.loads((out / "results.json").read_text())["settings"]["cnn"]["kernels"] == choice
        assert run["test_accuracy"] > 0.5


@pytest.mark.parametrize("args,needle", [
    (["--lr", "inf"], "--lr must be a finite number, got inf"),
    (["--lr", "nan"], "--lr must be a finite number, got nan"),
    (["--momentum", "inf"], "--momentum must be a finite number"),
    (["--optimizer", "adamw", "--weight-decay", "nan"], "--weight-decay must be a finite number"),
    (["--label-smoothing", "nan"], "--label-smoothing must be a finite number"),
    (["--warmup-epochs", "inf"], "--warmup-epochs must be a finite number"),
    (["--out", ""], "--out must name a folder, got an empty path"),
    (["--out", "  "], "--out must name a folder"),
    (["--data-dir", ""], "--data-dir must name a folder"),
    (["--data-dir", "README.md"], "a file, not a data folder"),
    (["--data-dir", "/no/such/folder"], "data folder not found"),
    (["--val-size", "-1"], "--val-size must be >= 0"),
    (["--train-size", "0"], "--train-size must be at least 1"),
    (["--devices", "0"], "--devices must be at least 1"),
    (["--checkpoint-every", "-1"], "--checkpoint-every must be >= 0"),
    (["--framework", "both", "--devices", "2"], "--devices 2:"),
    (["--device", "tpu"], "--device 'tpu' is unknown (choose from auto, cpu, gpu)"),
    (["--device", "gpu"], "--device gpu: JAX sees no GPU"),
    (["--framework", "torch", "--device", "gpu"], "--device gpu: PyTorch sees no CUDA GPU"),
    (["--framework", "torch", "--model", "vgg16", "--image-size", "0"], "--image-size must be >= 32 px"),
    (["--framework", "torch", "--model", "vgg16", "--weights", "docs"], "is a folder, not a file"),
    (["--data-source", "tfds"], "needs tensorflow-datasets, an optional extra"),
])
def test_bad_values_stop_before_training_with_one_line(tmp_path, capsys, monkeypatch, args, needle):
    """In this process (fast): exit 2, one line, nothing written; tfds as if not installed."""
    from benchmarks.run import main

    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import fails, as without the [tfds] extra
    out = ["--out", str(tmp_path / "out")] if "--out" not in args else []
    assert main([*args, "--preset", "smoke", *out]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_list_presets_prints_the_table_that_docs_runner_md_shows(capsys):
    from cli_helpers import REPO

    from benchmarks.run import main
    from harness.settings import presets_table

    assert main(["--list-presets"]) == 0
    printed = capsys.readouterr().out
    assert printed.strip() == presets_table() and "| vit         | full" in printed
    assert presets_table() in (REPO / "docs" / "runner.md").read_text(), "regenerate docs/runner.md's presets table"


def test_a_run_that_did_not_learn_warns_in_its_report(tmp_path):
    """Adam at lr 1e4: the loss stays finite, the run finishes, and it says it learnt nothing."""
    proc = run_cli("--framework", "torch", "--preset", "smoke", "--epochs", "2", "--train-size", "512", "--val-size",
                   "100", "--test-size", "300", "--lr", "1e4", "--quiet", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    (run,) = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert any("near chance" in w for w in run["warnings"]), run["warnings"]
    assert "warning: cnn seed 0: test accuracy" in proc.stderr
    assert "## Warnings" in (tmp_path / "report.md").read_text()


def test_a_matrix_of_modes_in_one_command(tmp_path):
    """JAX stock and tuned against PyTorch eager and compiled, one command: one run per mode, and the two ratios."""
    proc = run_cli("--framework", "both", "--model", "cnn", "--preset", "smoke", "--epochs", "2", "--train-size",
                   "512", "--val-size", "100", "--test-size", "300", "--kernels", "stock,tuned", "--torch-compile",
                   "none,default", "--quiet", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    runs = results["runs"]
    assert [(r["framework"], r["mode"]) for r in runs] == [
        ("jax", "stock"), ("jax", "tuned"), ("torch", "eager"), ("torch", "compiled")]
    assert [r["kernels"] for r in runs[:2]] == ["stock", "tuned"]
    compiled, eager = runs[3], runs[2]
    assert compiled["torch_compile"] == "default" and compiled["compile_time_s"] > 0
    assert compiled["recompilations"] == 0 and eager["torch_compile"] == "none" and eager["compile_time_s"] == 0
    assert compiled["test_accuracy"] > 0.3 and eager["test_accuracy"] > 0.3  # (Inductor draws its own dropout masks)
    assert {r["kind"] for r in results["throughput_ratios"]} == {"best", "stock"}
    report = (tmp_path / "report.md").read_text()
    assert "cnn, each at its best: JAX" in report and "cnn, out of the box: JAX stock" in report
    assert "each at its best" in proc.stdout and "out of the box" in proc.stdout
