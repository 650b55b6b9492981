"""Keeping what is trained: checkpoints and resume after a kill or a signal, exported models, prediction from
either framework, and output folders that are never replaced by surprise."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import numpy as np
import pytest
from cli_helpers import REPO, assert_one_line_error, cli_command, cli_env, run_cli

SMALL = ["--preset", "smoke", "--train-size", "512", "--val-size", "100", "--test-size", "300", "--no-progress"]
METRICS = ("train_loss", "test_accuracy", "test_macro_f1", "test_loss")


def _results(folder):
    return json.loads((folder / "results.json").read_text())


def _wait_for(path_glob, folder, proc, timeout=120, *, holding=None):
    """Wait until ``folder`` holds a path matching ``path_glob`` (or the process ends); ``holding``: the text that
    path must hold as well."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        for path in folder.glob(path_glob):
            if holding is None or holding in _text(path):
                return True
        time.sleep(0.01)
    return False


def _text(path):
    try:
        return path.read_text()
    except OSError:
        return ""


def _caught(path_glob, folder, proc, **kwargs):
    """Wait as :func:`_wait_for`, then freeze the process (SIGSTOP) where it is, so that what a test does next
    finds it there however fast the machine ran on; the caller sends its signal, then :func:`_thaw`."""
    if not _wait_for(path_glob, folder, proc, **kwargs):
        return False
    proc.send_signal(signal.SIGSTOP)
    return True


def _thaw(proc):
    proc.send_signal(signal.SIGCONT)


@pytest.mark.parametrize("framework,first_checkpoint", [
    ("jax", "checkpoints/cnn-jax-seed0/*[0-9]"),
    ("torch", "checkpoints/cnn-torch-seed0/checkpoint-*.pt")])
def test_killed_and_resumed_equals_uninterrupted(tmp_path, framework, first_checkpoint):
    """SIGKILL after the first checkpoint (end of epoch 1 of 3), then the same command plus --resume: the same
    final loss and test metrics as the run that was never interrupted (both backends are deterministic on a CPU)."""
    args = ["--framework", framework, "--model", "cnn", *SMALL, "--epochs", "3"]
    whole = run_cli(*args, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen(cli_command(*args, "--out", str(out)), cwd=REPO, env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert _caught(first_checkpoint, out, proc), "no checkpoint appeared"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert _results(out)["runs"] == [], "killed before the run finished"  # (the command's identity is written first)
    resumed = run_cli(*args, "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    (a,), (b,) = _results(tmp_path / "whole")["runs"], _results(out)["runs"]
    for key in METRICS:
        assert a[key] == b[key], key
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]


def test_sigterm_and_sigint_stop_at_a_step_with_a_checkpoint(tmp_path):
    args = ["--framework", "torch", "--model", "cnn", *SMALL, "--epochs", "60"]
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        out = tmp_path / sig.name
        proc = subprocess.Popen(cli_command(*args, "--out", str(out)), cwd=REPO, env=cli_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert _wait_for("history.jsonl", out, proc) and _caught("checkpoints/*/checkpoint-*.pt", out, proc)
        proc.send_signal(sig)
        _thaw(proc)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == code, err
        assert "Traceback" not in err and "continue with:" in err and "--resume" in err
        assert (out / "results.json").is_file()  # the results so far (none finished: an empty list)
        steps = sorted(int(p.stem.split("-")[1]) for p in (out / "checkpoints" / "cnn-torch-seed0").glob("*.pt"))
        assert steps[-1] % 4 != 0 or len(steps) > 1  # a checkpoint where it stopped (4 steps an epoch)


def test_ctrl_c_between_seeds_exits_130(tmp_path):
    """Ctrl-C just after a seed finished, while JAX's next run is starting: one line and exit 130."""
    out = tmp_path / "out"
    proc = subprocess.Popen(cli_command("--framework", "jax", "--model", "cnn", *SMALL, "--epochs", "1", "--seeds",
                                        "0,1,2,3", "--out", str(out)), cwd=REPO, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert _caught("models/cnn-jax-seed0/config.json", out, proc)
    proc.send_signal(signal.SIGINT)
    _thaw(proc)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err)
    assert "interrupted" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("exported")
    proc = run_cli("--framework", "both", "--model", "cnn", *SMALL, "--epochs", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def test_every_cnn_run_is_exported_with_its_config(exported):
    for fw in ("jax", "torch"):
        folder = exported / "models" / f"cnn-{fw}-seed0"
        config = json.loads((folder / "config.json").read_text())
        assert (folder / "model.safetensors").is_file() and config["model"] == "cnn"
        assert config["trained_with"]["framework"] == fw and config["preprocessing"]["mean"] == 0.1307
        run = next(r for r in _results(exported)["runs"] if r["framework"] == fw)
        assert config["metrics"]["test_accuracy"] == run["test_accuracy"]
        assert run["exported"]["sha256"] == config["weights"]["sha256"]


def test_predict_a_png_the_same_in_both_frameworks(exported, tmp_path, mnist):
    from PIL import Image

    png = tmp_path / "digit.png"
    Image.fromarray(mnist.test_images[0, :, :, 0]).save(png)  # a 7
    folder = exported / "models" / "cnn-jax-seed0"
    outs = {}
    for fw in ("jax", "torch"):
        proc = run_cli(str(folder), str(png), "--framework", fw, "--json", module="benchmarks.predict")
        assert proc.returncode == 0, proc.stderr
        outs[fw] = json.loads(proc.stdout)["predictions"][0]
    assert outs["jax"]["class"] == outs["torch"]["class"] == str(mnist.test_labels[0])
    np.testing.assert_allclose(outs["jax"]["probabilities"], outs["torch"]["probabilities"], rtol=0, atol=1e-5)


def test_test_only_evaluates_an_exported_model(exported, tmp_path):
    folder = exported / "models" / "cnn-torch-seed0"
    proc = run_cli("--test-only", "--model-dir", str(folder), "--framework", "both", "--test-size", "300",
                   "--out", str(tmp_path / "t"))
    assert proc.returncode == 0, proc.stderr
    runs = _results(tmp_path / "t")["runs"]
    trained = next(r for r in _results(exported)["runs"] if r["framework"] == "torch")
    assert [r["framework"] for r in runs] == ["jax", "torch"]
    for run in runs:  # the same model, whichever framework loads it, on the same 300 images
        assert run["test_accuracy"] == pytest.approx(trained["test_accuracy"], abs=1e-9) and run["test_only"]
    for flags, needle in ((("--checkpoint-every", "-1"), "--checkpoint-every must be >= 0"),
                          (("--resume", "--overwrite"), "give one"), (("--port", "29500"), "--port applies to")):
        assert_one_line_error(run_cli("--test-only", "--model-dir", str(folder), *flags, "--out", str(tmp_path / "u")),
                              needle)  # the options checked as for training


def test_damaged_files_are_one_line_errors(exported, tmp_path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(exported / "models" / "cnn-jax-seed0", folder)
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-10] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))
    assert_one_line_error(run_cli(str(folder), str(REPO / "README.md"), module="benchmarks.predict"),
                          "model.safetensors: SHA-256", "does not match")
    good = exported / "models" / "cnn-jax-seed0"
    assert_one_line_error(run_cli(str(good), str(REPO / "README.md"), module="benchmarks.predict"),
                          "README.md: not an image")
    assert_one_line_error(run_cli(str(good), str(tmp_path / "none.png"), module="benchmarks.predict"), "no such file")
    assert_one_line_error(run_cli("--test-only", "--model-dir", str(tmp_path / "nothing"), "--out",
                                  str(tmp_path / "o")), "no such model folder")


def test_results_are_never_replaced_by_surprise(exported, tmp_path):
    before = (exported / "results.json").read_text()
    assert_one_line_error(run_cli("--framework", "torch", *SMALL, "--epochs", "1", "--out", str(exported)),
                          "already holds 2 finished run(s)", "--overwrite", "--resume")
    assert (exported / "results.json").read_text() == before
    for _ in range(2):  # the default folder never collides: the quick start can run twice
        proc = run_cli("--framework", "torch", *SMALL, "--epochs", "1", "--quiet", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    folders = [p for p in (tmp_path / "results").iterdir() if p.name != "latest"]
    assert len(folders) == 2 and (tmp_path / "results" / "latest").resolve() == max(folders)


def test_resume_problems_are_one_line_errors(exported, tmp_path):
    assert_one_line_error(run_cli("--framework", "jax", *SMALL, "--out", str(tmp_path / "empty"), "--resume"),
                          "holds no results.json and", "no checkpoints to resume")
    other = run_cli("--framework", "both", "--model", "cnn", *SMALL, "--epochs", "3", "--out", str(exported),
                    "--resume")
    assert_one_line_error(other, "holds a run of another command: its --epochs of cnn was 2, this command's is 3",
                          "resume with the command that started it")
    other = run_cli("--framework", "jax", "--model", "cnn", *SMALL, "--epochs", "2", "--out", str(exported),
                    "--resume")
    assert_one_line_error(other, "its --framework was ['jax', 'torch'], this command's is ['jax']")


def _history(folder):
    return [json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines()]


def test_two_runs_into_one_folder_one_is_refused_the_other_completes(tmp_path):
    out = tmp_path / "out"
    args = ["--framework", "torch", "--model", "cnn", *SMALL, "--epochs", "4", "--out", str(out)]
    first = subprocess.Popen(cli_command(*args), cwd=REPO, env=cli_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert _caught(".lock", out, first, holding=f'"pid": {first.pid}'), "the first run never took the folder"
    try:  # (frozen while the second looks: however fast the first would have finished)
        second = run_cli(*args)
    finally:
        _thaw(first)
    assert_one_line_error(second, f"--out {out} is in use by another run (pid {first.pid}: python ",
                          "benchmarks.run")
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    (run,) = _results(out)["runs"]
    assert [h["epoch"] for h in _history(out)] == [1, 2, 3, 4] and len(run["history"]) == 4
    assert not (out / ".lock").exists()


def test_sigint_in_the_last_jax_epoch_stops_with_a_checkpoint_and_resume_finishes(tmp_path):
    """With asynchronous dispatch every step of the last epoch is queued before the signal arrives: it is still
    answered, at the epoch's end, with a checkpoint, the interrupted line and 130; --resume then finishes."""
    args = ["--framework", "jax", "--model", "cnn", *SMALL, "--train-size", "8192", "--epochs", "2"]
    whole = run_cli(*args, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "stopped"
    proc = subprocess.Popen(cli_command(*args, "--out", str(out)), cwd=REPO, env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert _caught("history.jsonl", out, proc, holding='"epoch"')  # the last epoch has begun: epoch 1 is logged
    proc.send_signal(signal.SIGINT)
    _thaw(proc)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted (stopped by SIGINT)" in err and "Traceback" not in err
    assert "a checkpoint of cnn-jax-seed0" in err and "(1 to go)" in err  # stopped in training, not after it
    assert list((out / "checkpoints" / "cnn-jax-seed0").glob("*[0-9]"))
    resumed = run_cli(*args, "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "nothing to resume" not in resumed.stderr and "resuming from checkpoint" in resumed.stderr
    (a,), (b,) = _results(tmp_path / "whole")["runs"], _results(out)["runs"]
    assert [a[k] for k in METRICS] == [b[k] for k in METRICS]
    assert [h["epoch"] for h in _history(out)] == [1, 2]


def _unfinished(folder):
    """The folder as a kill before the run's results were written leaves it: results.json without the run."""
    results = _results(folder)
    (folder / "results.json").write_text(json.dumps(results | {"runs": []}))


def test_a_damaged_newest_jax_checkpoint_is_removed_and_the_run_goes_on_from_the_one_before(tmp_path):
    args = ["--framework", "jax", "--model", "cnn", *SMALL, "--epochs", "3"]
    out = tmp_path / "out"
    whole = run_cli(*args, "--out", str(out))
    assert whole.returncode == 0, whole.stderr
    finished = _results(out)["runs"][0]
    folder = out / "checkpoints" / "cnn-jax-seed0"
    newest = max(folder.glob("*[0-9]"), key=lambda p: int(p.name))
    for f in (p for p in newest.rglob("*") if p.is_file()):
        f.write_bytes(b"damaged")
    _unfinished(out)
    resumed = run_cli(*args, "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"checkpoint {newest} is damaged" in resumed.stderr and f"set it aside as {newest.name}.damaged" \
        in resumed.stderr
    assert (folder / f"{newest.name}.damaged").is_dir()  # nothing deleted
    assert "resuming from checkpoint" in resumed.stderr and "(the end of epoch 2)" in resumed.stderr
    (again,) = _results(out)["runs"]
    assert [again[k] for k in METRICS] == [finished[k] for k in METRICS]  # as if never interrupted
    assert [h["epoch"] for h in _history(out)] == [1, 2, 3]  # each epoch once
    nothing = run_cli(*args, "--out", str(out), "--resume")
    assert nothing.returncode == 0 and "nothing to resume" in nothing.stderr


def test_a_damaged_only_torch_checkpoint_means_training_from_the_start(tmp_path):
    args = ["--framework", "torch", "--model", "cnn", *SMALL, "--epochs", "2", "--checkpoint-every", "2"]
    out = tmp_path / "out"
    assert run_cli(*args, "--out", str(out)).returncode == 0
    (only,) = (out / "checkpoints" / "cnn-torch-seed0").glob("checkpoint-*.pt")
    only.write_bytes(b"damaged")
    _unfinished(out)
    resumed = run_cli(*args, "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "is damaged" in resumed.stderr and "no usable checkpoint" in resumed.stderr
    assert "trains from the start" in resumed.stderr and "the one before it" not in resumed.stderr
    assert [h["epoch"] for h in _history(out)] == [1, 2]  # each epoch once


def test_a_resume_with_other_seeds_is_refused_naming_them(tmp_path):
    args = ["--framework", "torch", "--model", "cnn", *SMALL, "--epochs", "1"]
    out = tmp_path / "out"
    assert run_cli(*args, "--seeds", "0", "--out", str(out)).returncode == 0
    assert_one_line_error(run_cli(*args, "--seeds", "0,1", "--out", str(out), "--resume"),
                          "its --seeds of cnn was [0], this command's is [0, 1]")


def test_overwrite_leaves_nothing_of_the_old_run(tmp_path):
    out = tmp_path / "out"
    args = ["--framework", "torch", "--model", "cnn", *SMALL, "--epochs", "1", "--out", str(out)]
    assert run_cli(*args, "--seeds", "0,1").returncode == 0
    again = run_cli(*args, "--seed", "2", "--overwrite")
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in (out / "models").iterdir()) == ["cnn-torch-seed2"]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["cnn-torch-seed2"]
    assert {h["seed"] for h in _history(out)} == {2}
    assert oct((out / "models" / "cnn-torch-seed2" / "model.safetensors").stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize("field,value,needle", [
    ("model", "resnet", "a resnet model loads with --weights"),
    ("image_size", -28, "field 'image_size' must be an integer in [4, 256] pixels, got -28"),
    ("image_size", 10**9, "field 'image_size' must be an integer in [4, 256] pixels"),
    ("class_names", ["0", "1"], "field 'class_names' must list 10 names (one per class)"),
    ("num_classes", "10", "field 'num_classes' must be an integer in [2, 1000]"),
    ("variant", "tiny/7", "field 'variant' must be null for a cnn"),
    ("preprocessing", {"mean": 0.5, "std": 0.5}, "field 'preprocessing' must hold MNIST's mean"),
])
def test_a_hand_edited_config_is_one_line_before_anything_is_built(exported, tmp_path, field, value, needle):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(exported / "models" / "cnn-torch-seed0", folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {field: value}))
    png = tmp_path / "d.png"
    from PIL import Image

    Image.fromarray(np.zeros((28, 28), np.uint8)).save(png)
    assert_one_line_error(run_cli(str(folder), str(png), module="benchmarks.predict"), needle)
    assert_one_line_error(run_cli("--test-only", "--model-dir", str(folder), "--out", str(tmp_path / "t")), needle)
    assert not (tmp_path / "t").exists()


def test_a_reader_that_closes_the_pipe_ends_the_command_quietly(exported):
    idx = REPO / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"
    model = exported / "models" / "cnn-torch-seed0"
    for command in (cli_command("--list-presets"),
                    cli_command(str(model), str(idx), "--framework", "torch", module="benchmarks.predict")):
        shell = f"{' '.join(map(str, command))} | head -n 1; echo status ${{PIPESTATUS[0]}} >&2"
        proc = subprocess.run(["bash", "-c", shell], cwd=REPO, env=cli_env(), capture_output=True, text=True,
                              timeout=300)
        assert len(proc.stdout.splitlines()) == 1
        assert "status 0" in proc.stderr and "Traceback" not in proc.stderr and "Broken" not in proc.stderr, proc.stderr


def test_a_folder_given_as_an_input_or_a_model_is_named_as_a_folder(exported, tmp_path):
    model = exported / "models" / "cnn-torch-seed0"
    assert_one_line_error(run_cli(str(model), str(tmp_path), module="benchmarks.predict"),
                          "a folder, not an image or IDX file")
    assert_one_line_error(run_cli(str(model / "config.json"), str(tmp_path), module="benchmarks.predict"),
                          "a file, not a model folder")


def test_a_folder_whose_command_finished_no_run_says_so(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text(json.dumps({"command": "python -m benchmarks.run", "runs": []}))
    assert_one_line_error(run_cli("--framework", "torch", *SMALL, "--out", str(out)),
                          "holds a command that finished no run yet", "--resume", "--overwrite")
    (out / "results.json").write_text("[]")  # not a results file at all
    assert_one_line_error(run_cli("--framework", "torch", *SMALL, "--out", str(out), "--resume"),
                          "is not a results file of benchmarks.run")


def test_test_only_never_clears_the_folder_that_holds_its_model(exported, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(exported, out)
    assert_one_line_error(run_cli("--test-only", "--model-dir", str(out / "models" / "cnn-torch-seed0"), "--out",
                                  str(out), "--overwrite"), "--overwrite would clear", "holds the model to test")
    assert (out / "models" / "cnn-torch-seed0" / "model.safetensors").is_file()


def test_a_processes_resume_of_another_command_is_refused_by_the_launcher(exported, tmp_path):
    """Before any worker starts: one line, not one per worker."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(exported, out)
    proc = run_cli("--framework", "both", "--model", "cnn", *SMALL, "--epochs", "2", "--out", str(out), "--resume",
                   "--processes", "2")
    line = assert_one_line_error(proc, "its --processes was 1, this command's is 2")
    assert "worker" not in proc.stderr and line
