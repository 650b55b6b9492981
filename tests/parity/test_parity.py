"""The parity suite in CI: forward, gradients, short trajectories, round trip, and that a wrong
conversion is caught with the path named."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, run_cli

from jax_impl.models.layout import cnn_table, vit_table
from parity import checks
from parity.compare import TreeMismatch, compare_trees
from parity.convert import ConversionError, torch_to_flax

pytestmark = pytest.mark.parity
MODELS = ["cnn", "vit"]


def _assert_all_pass(records):
    failed = [f"{r['check']}: {r['detail']}" for r in records if not r["passed"]]
    assert not failed, failed


@pytest.mark.parametrize("model", MODELS)
def test_forward_agrees_both_directions_on_real_and_edge_inputs(mnist, model):
    records = checks.forward(model, mnist.test_images[:64])
    assert len(records) == 8  # 2 directions x (batch, zeros, saturated, one image)
    _assert_all_pass(records)
    assert max(r["max_abs_diff"] for r in records) <= 1e-5


@pytest.mark.parametrize("model", MODELS)
def test_loss_and_every_gradient_agree(mnist, model):
    """In the precision the plan asserts: float64 through the CNN's ReLUs and max pools, float32 for the ViT."""
    dtype, _ = checks.gradient_dtypes(model)
    records = checks.gradients(model, mnist.test_images[:64], mnist.test_labels[:64], dtype=dtype)
    _assert_all_pass(records)
    assert all(r["dtype"] == dtype for r in records)


def test_float64_is_asserted_where_float32_rounding_is_amplified():
    """Gradients through ReLU or max pooling and every trajectory: float64 asserted, float32 only measured;
    the ViT's smooth gradients and every forward pass stay asserted in float32."""
    from parity.run import trajectory_plan

    assert [checks.gradient_dtypes(m) for m in ("cnn", "vgg16", "alexnet", "vit")] == \
        [("float64", "float32")] * 3 + [("float32", None)]
    for model in MODELS:
        plan = trajectory_plan(model)
        assert {(p["dtype"], p["asserted"]) for p in plan} == {("float64", True), ("float32", False)}
    assert checks.FLOAT64_TOLERANCES.gradients < checks.CPU_TOLERANCES.gradients


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("optimizer,lr", [("sgd", 0.05), ("adam", 1e-3)])
def test_short_trajectory_agrees_in_float64(mnist, model, optimizer, lr):
    records = checks.trajectory(model, mnist.train_images[:320], mnist.train_labels[:320], optimizer=optimizer,
                                lr=lr, steps=20, dtype="float64")
    _assert_all_pass(records)
    assert max(r["max_abs_diff"] for r in records) < 1e-9  # float64 really ran: float32 would part by 1e-7 and more


def test_adamw_trajectory_agrees_in_float64(mnist):
    _assert_all_pass(checks.trajectory("vit", mnist.train_images[:320], mnist.train_labels[:320],
                                       optimizer="adamw", lr=1e-3, weight_decay=0.05, steps=20, dtype="float64"))


@pytest.mark.parametrize("model", MODELS)
def test_round_trip_is_bit_exact(model):
    (record,) = checks.round_trip(model)
    assert record["passed"] and record["max_abs_diff"] == 0.0


def _with_rule(table, path, rule):
    return [dataclasses.replace(r, rule=rule) if r.flax == path else r for r in table]


def test_skipped_conv_transpose_is_a_shape_error_naming_the_path():
    flax_model, torch_model = checks.build_pair("cnn")
    with pytest.raises(ConversionError, match=r"^conv1\.kernel: converted shape"):
        torch_to_flax(torch_model, flax_model, table=_with_rule(cnn_table(flax_model), "conv1.kernel", "copy"))


def test_skipped_flatten_permutation_fails_the_forward_check(mnist):
    flax_model, _ = checks.build_pair("cnn")
    wrong = _with_rule(cnn_table(flax_model), "fc1.kernel", "dense")  # same shape, wrong row order
    records = checks.forward("cnn", mnist.test_images[:16], table=wrong)
    failed = [r for r in records if not r["passed"]]
    assert failed and all(r["detail"].startswith("logits:") for r in failed)


def test_skipped_attention_transpose_is_located_at_its_block(mnist):
    flax_model, _ = checks.build_pair("vit")
    wrong = _with_rule(vit_table(flax_model), "blocks.0.attn.q.kernel", "copy")  # square: shape passes
    records = checks.forward("vit", mnist.test_images[:16], table=wrong)
    batch = next(r for r in records if r["check"].endswith("mnist_batch)"))
    assert not batch["passed"]
    assert batch["detail"].startswith("block_0:"), batch["detail"]  # embeddings agree; block 0 is where it breaks


def test_missing_table_row_and_wrong_twin_are_named():
    flax_model, torch_model = checks.build_pair("cnn")
    table = [r for r in cnn_table(flax_model) if r.flax != "fc2.bias"]
    with pytest.raises(ConversionError, match="fc2.bias"):
        torch_to_flax(torch_model, flax_model, table=table)
    _, torch_vit = checks.build_pair("vit")
    with pytest.raises(ConversionError, match="not the PyTorch twin"):
        torch_to_flax(torch_vit, flax_model)


def test_compare_trees_checks_keys_and_shapes_first():
    with pytest.raises(TreeMismatch, match="a.b: shape"):
        compare_trees({"a.b": np.zeros(3)}, {"a.b": np.zeros(4)}, tolerance=1.0)
    with pytest.raises(TreeMismatch, match="missing"):
        compare_trees({}, {"x": np.zeros(1)}, tolerance=1.0)
    c = compare_trees({"x": np.array([1.0, 2.0]), "y": np.array([5.0])}, {"x": np.array([1.0, 2.5]), "y": np.array([5.0])},
                      tolerance=0.1)
    assert not c.passed and c.worst_path == "x" and c.max_abs_diff == 0.5 and c.message().startswith("x:")
    scaled = compare_trees({"g": np.array([100.5])}, {"g": np.array([100.0])}, tolerance=0.01, scaled=True)
    assert scaled.passed and scaled.max_abs_diff == pytest.approx(0.005)


@pytest.mark.e2e
def test_parity_cli_writes_json_and_markdown(tmp_path):
    proc = run_cli("--model", "cnn", "--trajectory-steps", "3", "--timing-steps", "3", "--torch-compile", "none",
                   "--out", str(tmp_path), module="parity.run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "parity.json").read_text())
    assert {"checks", "timing", "tolerances", "isa"} <= set(report)
    for check in report["checks"]:
        assert {"model", "check", "max_abs_diff", "tolerance", "passed", "dtype", "asserted"} <= set(check)
    measured = {c["check"] for c in report["checks"] if not c["asserted"]}
    assert measured and all("float32" in c for c in measured)  # float32 trajectories: reported beside float64
    assert report["device"].startswith("cpu: ") and "instruction-set caps" in report["isa"]
    assert report["timing"]["cnn"]["jax"]["step_time_ms"] > 0
    assert (tmp_path / "parity.md").read_text().startswith("# Parity")


@pytest.mark.parametrize("args,needle", [(["--model", "resnet"], "unknown model"), (["--seeds", "a"], "--seeds"),
                                         (["--trajectory-steps", "0"], "at least 1")])
@pytest.mark.e2e
def test_parity_cli_usage_errors(tmp_path, args, needle):
    assert_one_line_error(run_cli(*args, "--out", str(tmp_path), module="parity.run"), needle)


@pytest.mark.parametrize("model", MODELS)
def test_tuned_jax_follows_stock_jax(mnist, model):
    from parity import modes

    _assert_all_pass(modes.jax_kernels(model, mnist.train_images[:320], mnist.train_labels[:320], steps=20,
                                       dtype="float64"))


@pytest.mark.parametrize("model", MODELS)
def test_bfloat16_forward_passes_agree_within_their_tolerance(mnist, model):
    from parity import modes

    (record,) = modes.bfloat16_forward(model, mnist.test_images[:64])
    assert record["passed"], record["detail"]
    assert record["max_abs_diff"] > 1e-5  # bfloat16 really ran: float32 would agree to rounding
    assert record["agreement"] >= 0.9


@pytest.mark.slow
def test_compiled_pytorch_follows_eager(mnist):
    """torch.compile (Inductor, on this CPU) against eager from the same weights: logits and 20 SGD steps."""
    from parity import modes

    _assert_all_pass(modes.torch_compiled("cnn", mnist.train_images[:320], mnist.train_labels[:320], steps=20,
                                          dtype="float64"))


@pytest.mark.parametrize("model", MODELS)
def test_exported_files_load_in_the_other_framework(mnist, model, tmp_path):
    """Through the files, not only in memory: each framework's export loads in the other with the same logits."""
    records = checks.exported_files(model, mnist.test_images[:64], tmp_path)
    _assert_all_pass(records)
    assert len(records) == 2


@pytest.mark.slow  # two seeds of the CNN in both frameworks at the smoke preset; the declared plans take ~80 min
def test_training_parity_trains_both_from_one_init_and_tests_equivalence(mnist):
    result = checks.training("cnn", mnist, seeds=[0, 1], preset="smoke")
    assert result["seeds"] == [0, 1] and [len(result["test_accuracy"][fw]) for fw in ("jax", "torch")] == [2, 2]
    low, high = result["equivalence"]["interval_pp"]
    assert low <= result["gap_pp"] <= high
    assert result["passed"] == result["equivalence"]["equivalent"]


def test_tuned_against_stock_training_trains_both_kernels_from_one_seed_and_tests_equivalence(mnist):
    result = checks.training("cnn", mnist, seeds=[0, 1], preset="smoke", compare="kernels")
    assert result["sides"] == ["tuned", "stock"] and result["compare"] == "kernels"
    assert [(r["side"], r["kernels"], r["seed"]) for r in result["runs"]] == [
        ("tuned", "tuned", 0), ("stock", "stock", 0), ("tuned", "tuned", 1), ("stock", "stock", 1)]
    assert all(r["weights"] == f"random init (seed {r['seed']})" for r in result["runs"])
    diffs = [100 * (a - b) for a, b in zip(result["test_accuracy"]["tuned"], result["test_accuracy"]["stock"])]
    assert result["equivalence"]["mean_pp"] == pytest.approx(sum(diffs) / 2)
    assert result["passed"] == result["equivalence"]["equivalent"]
