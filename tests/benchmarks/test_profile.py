"""The profiler command: a row of step times per framework and mode, traces on request, one-line errors."""

from __future__ import annotations

import re

import pytest

from tests.cli_helpers import assert_one_line_error, run_cli


def test_prints_step_times_per_mode_and_writes_traces(tmp_path):
    proc = run_cli("--model", "cnn", "--framework", "both", "--kernels", "tuned", "--torch-compile", "none",
                   "--steps", "2", "--warmup", "0", "--trace", str(tmp_path), module="benchmarks.profile")
    assert proc.returncode == 0, proc.stderr
    rows = {tuple(cell.strip() for cell in line.strip("|").split("|")[:2]): line
            for line in proc.stdout.splitlines() if line.startswith("| jax") or line.startswith("| torch")}
    assert set(rows) == {("jax", "tuned"), ("torch", "eager")}, proc.stdout
    for line in rows.values():
        step_ms, forward_ms, backward_ms, update_ms = (float(v) for v in line.strip("|").split("|")[3:7])
        assert 0 < forward_ms and 0 < step_ms and 0 < update_ms
        assert backward_ms == pytest.approx(step_ms - forward_ms - update_ms, abs=0.02)
    assert "MFLOP per training image" in proc.stdout
    assert list(tmp_path.glob("jax-cnn-tuned-float32/**/*.xplane.pb"))
    assert (tmp_path / "torch-cnn-none-nchw-float32.json").stat().st_size > 0
    assert "jax tuned: costliest XLA operations, per step" in proc.stdout
    assert "torch eager: costliest PyTorch operators" in proc.stdout


def test_xla_operations_sum_numbered_instances(tmp_path):
    import gzip
    import json

    from benchmarks.profile import xla_operations

    events = [{"ph": "X", "name": "ynn_fusion", "dur": 400, "args": {"hlo_op": "ynn_fusion.3"}},
              {"ph": "X", "name": "ynn_fusion", "dur": 600, "args": {"hlo_op": "ynn_fusion.7"}},
              {"ph": "X", "name": "copy", "dur": 5000, "args": {"hlo_op": "copy"}},
              {"ph": "X", "name": "ThunkExecutor::Execute", "dur": 90000},
              {"ph": "X", "name": "$profile.py:1 step", "dur": 90000}]
    (tmp_path / "run").mkdir()
    with gzip.open(tmp_path / "run" / "host.trace.json.gz", "wt") as f:
        json.dump({"traceEvents": events}, f)
    assert xla_operations(tmp_path, steps=2) == [("copy", 0.5, 2.5), ("ynn_fusion", 1.0, 0.5)]
    assert xla_operations(tmp_path / "nothing") == []


def test_ceiling_rows_per_framework_and_precision():
    from benchmarks.profile import ceilings

    rows = ceilings(["jax", "torch"], n=64, steps=2)
    assert [r[:2] for r in rows] == [["jax", "float32"], ["jax", "bfloat16"], ["jax", "bfloat16 -> float32"],
                                     ["torch", "float32"], ["torch", "bfloat16"]]
    assert all(float(r[2]) > 0 for r in rows)


@pytest.mark.parametrize("args, needle", [
    (["--model", "faster_rcnn"], "--model 'faster_rcnn' is unknown"),
    (["--optimizer", "lbfgs"], "--optimizer 'lbfgs' is unknown"),
    (["--framework", "tf"], "--framework 'tf' is unknown"),
    (["--steps", "0"], "--steps and --top must be at least 1"),
    (["--top", "0"], "--steps and --top must be at least 1"),
    (["--precision", "float16"], "--precision"),
    (["--convolutions", "--dense"], "--convolutions and --dense each replace the step table"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle):
    assert_one_line_error(run_cli(*args, module="benchmarks.profile"), re.sub(r"\s+", " ", needle))


def test_convolutions_lists_each_distinct_convolution_with_every_variant():
    """The CNN's two convolutions read from its computation, each timed in the JAX variants and PyTorch, the tuned
    layer's choice named, and the sums printed."""
    proc = run_cli("--model", "cnn", "--convolutions", "--batch-size", "8", "--steps", "1", module="benchmarks.profile")
    assert proc.returncode == 0, proc.stderr
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in proc.stdout.splitlines()
            if re.match(r"\| 8x", line)]
    assert [r[:4] for r in rows] == [["8x28x28x1", "3x3x1x32", "1/1", "1"], ["8x14x14x32", "3x3x32x64", "1/1", "1"]]
    assert all(float(v) > 0 for r in rows for v in (r[4], r[5], r[6], r[8])) and {r[7] for r in rows} == {"XLA"}
    assert re.search(r"Summed over the model's convolutions \(ms\): XLA [\d.]+, canonical [\d.]+, patches [\d.]+, "
                     r"PyTorch [\d.]+, tuned [\d.]+", proc.stdout), proc.stdout


def test_dense_lists_each_dense_layer_with_its_three_products_in_both_frameworks():
    """The CNN's two dense layers read from its computation, each product timed in JAX and PyTorch, and the sums
    printed."""
    proc = run_cli("--model", "cnn", "--dense", "--batch-size", "8", "--steps", "1", module="benchmarks.profile")
    assert proc.returncode == 0, proc.stderr
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in proc.stdout.splitlines()
            if re.match(r"\| 8 ", line)]
    assert [r[:3] for r in rows] == [["8", "3136x128", "1"], ["8", "128x10", "1"]]
    assert all(len(r) == 9 and float(v) >= 0 for r in rows for v in r[3:]) and all(float(r[3]) > 0 for r in rows)
    assert re.search(r"Summed over the model's dense layers, the three products \(ms\): JAX [\d.]+, PyTorch [\d.]+",
                     proc.stdout), proc.stdout


def test_dense_shapes_come_from_the_models_own_computation():
    import jax.numpy as jnp
    from flax import nnx

    from benchmarks.dense import shapes
    from jax_impl.models import AlexNet, MNISTClassifier

    net = MNISTClassifier(AlexNet(num_classes=10, kernels="stock", rngs=nnx.Rngs(0)), "alexnet", 63)
    net.eval()
    assert shapes(net, jnp.zeros((2, 28, 28, 1))) == [(2, 9216, 4096, 1), (2, 4096, 4096, 1), (2, 4096, 10, 1)]


def test_convolution_shapes_come_from_the_models_own_computation():
    import jax.numpy as jnp
    from flax import nnx

    from benchmarks.convolutions import shapes
    from jax_impl.models import VGG16, MNISTClassifier

    net = MNISTClassifier(VGG16(num_classes=10, kernels="stock", rngs=nnx.Rngs(0)), "vgg16", 32)
    net.eval()
    found = shapes(net, jnp.zeros((2, 28, 28, 1)))
    assert sum(n for *_, n in found) == 13 and found[0][:2] == ((2, 32, 32, 3), (3, 3, 3, 64))
    assert found[-1] == ((2, 2, 2, 512), (3, 3, 512, 512), 1, 1, 3)  # the last block's three, on 2 x 2 maps
