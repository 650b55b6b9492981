"""Per-run tables: the results table, the lab's comparison table, ``results.md`` and ``results.csv``."""

from __future__ import annotations

import csv
import io

from harness.report.markdown import cell, table
from harness.stats import model_label

COLUMNS = (
    # header, key, format
    ("framework", "framework", "{}"),
    ("model", "model_label", "{}"),
    ("mode", "mode", "{}"),
    ("optimizer", "optimizer", "{}"),
    ("epochs", "epochs", "{}"),
    ("train loss", "train_loss", "{:.4f}"),
    ("test loss", "test_loss", "{:.4f}"),
    ("test acc (%)", "test_accuracy", "{:.2%}"),
    ("macro-F1", "test_macro_f1", "{:.4f}"),
    ("train time (s)", "train_time_s", "{:.1f}"),
    ("compile (s)", "compile_time_s", "{:.2f}"),
    ("images/s", "images_per_s", "{:.0f}"),
    ("params", "params", "{:,}"),
    ("devices", "devices", "{}"),
    ("device", "device", "{}"),
)

COMPARISON_COLUMNS = (
    ("model", "model_label", "{}"),
    ("framework", "framework", "{}"),
    ("mode", "mode", "{}"),
    ("weights", "weights", "{}"),
    ("training loss", "train_loss", "{:.4f}"),
    ("test acc (%)", "test_accuracy", "{:.2%}"),
    ("macro-F1", "test_macro_f1", "{:.4f}"),
    ("training time (s)", "train_time_s", "{:.1f}"),
)

CSV_COLUMNS = (
    "framework", "model", "variant", "mode", "kernels", "precision", "torch_compile", "channels_last", "seed",
    "preset", "weights", "optimizer", "lr", "epochs", "batch_size", "train_size", "val_size", "test_size",
    "image_size", "train_loss", "val_accuracy", "test_loss", "test_accuracy", "test_macro_f1", "no_detection_rate",
    "mean_top_box_iou", "train_time_s", "compile_time_s", "recompilations", "warmup_time_s", "images_per_s",
    "train_flops_per_image", "achieved_gflop_s", "devices", "steps_per_call", "test_eval_time_s", "params", "device",
)


def _runs_table(runs: list[dict], columns) -> str:
    header = [h for h, _, _ in columns]
    labels = {"model_label": model_label}
    rows = [[cell(fmt, labels[key](run) if key in labels else run.get(key)) for _, key, fmt in columns]
            for run in runs]
    return table(header, rows)


def results_table(runs: list[dict]) -> str:
    """One row per run: losses, accuracy, macro-F1, times, throughput, size, device."""
    return _runs_table(runs, COLUMNS)


def comparison_table(runs: list[dict]) -> str:
    """The lab's table: model, training loss, accuracy, macro-F1, training time (and framework, weights)."""
    return _runs_table(runs, COMPARISON_COLUMNS)


def counted_flops(run: dict) -> float | None:
    """XLA's FLOP count per training image, where it is complete: on a CPU. XLA GPU's cost analysis
    leaves out library calls (cuDNN convolutions, cuBLAS products), so GPU runs get None."""
    return run.get("train_flops_per_image") if str(run.get("device", "")).startswith("cpu") else None


def results_csv(runs: list[dict]) -> str:
    """One row per run, the columns of :data:`CSV_COLUMNS` (empty where a run has no value)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for run in runs:
        if counted_flops(run) is None:  # an incomplete count is no count
            run = dict(run, train_flops_per_image=None, achieved_gflop_s=None)
        writer.writerow({k: ("" if run.get(k) is None else run.get(k)) for k in CSV_COLUMNS})
    return buf.getvalue()


def _precision(info: dict) -> str:
    """How a GPU run did float32 products: the setting that decides TF32 against full float32."""
    if not info.get("device", "").startswith(("cuda", "gpu")):
        return ""
    if "float32_matmul_precision" in info:  # PyTorch
        return (f"; float32 matmul precision {info['float32_matmul_precision']}, cuDNN TF32 "
                f"{'on' if info.get('cudnn_allow_tf32') else 'off'}, cudnn.benchmark "
                f"{'on' if info.get('cudnn_benchmark') else 'off'}")
    if "default_matmul_precision" in info:  # JAX
        return f"; default matmul precision {info['default_matmul_precision'] or 'XLA default (TF32)'}"
    return ""


def _malloc(host: dict) -> str:
    """The glibc malloc settings the run used (``harness.malloc``); older files did not record them."""
    if "malloc" not in host:
        return ""
    settings = ", ".join(f"{k} {v}" for k, v in host["malloc"].items())
    return f"; malloc: {settings or 'glibc defaults'}"


def environment_lines(env: dict) -> list[str]:
    """Bullet lines: host, commit and flags, each framework's versions and device, the data and its checksums."""
    host, data = env["host"], env["data"]
    isa = f", {host['cpu_isa']}" if host.get("cpu_isa") else ""
    caps = host.get("isa_caps") or {}
    held = f", held to {', '.join(f'{k}={v}' for k, v in caps.items())}" if caps else ""
    lines = [
        f"- host: {host['cpu']} ({host['cpu_count']} logical CPUs{isa}{held}), {host.get('platform', '')}, "
        f"Python {host['python']}, NumPy {host.get('numpy', '?')}",
        f"- git commit: {host.get('git_commit') or 'unknown'}; XLA_FLAGS: `{host.get('xla_flags') or '(none)'}`"
        + _malloc(host),
    ]
    for fw, info in env.get("frameworks", {}).items():
        versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
        threads = f", {info['threads']} threads" if info.get("threads") else ""
        count = f", {info['device_count']} device(s)" if info.get("device_count") else ""
        lines.append(f"- {fw}: {versions}; device {info['device']}{count}{threads}{_precision(info)}")

    def sha(v) -> str:
        return ((v.get("sha256") or v.get("records_sha256") or "?") if isinstance(v, dict) else str(v))[:12]

    checksums = ", ".join(f"{k} {sha(v)}" for k, v in sorted(data.get("checksums", {}).items()))
    lines.append(f"- data: {data['source']} from `{data['location']}`, {data['train']} train / {data['test']} test "
                 f"images, SHA-256 verified ({checksums})")
    return lines


def _number(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _run_section(run: dict) -> list[str]:
    """One run in ``results.md``: its recipe, per-epoch history, per-class scores and confusion matrix."""
    if run.get("test_only"):
        out = [f"## {run['framework']} / {model_label(run)} ({run['mode']}; tested only)", "",
               f"Weights: {run['weights']}. No training: the exported model on {run['test_size']} test images.", ""]
        return out + _class_tables(run)
    out = [
        f"## {run['framework']} / {model_label(run)} ({run['mode']}; seed {run['seed']}, preset {run['preset']})",
        "",
        f"Weights: {run['weights']}. Optimizer {run['optimizer']} lr {run['lr']} "
        f"({run['schedule']} schedule, {run['warmup_steps']} warm-up steps), weight decay "
        f"{run.get('weight_decay', 0)}, label smoothing {run.get('label_smoothing', 0)}, random shifts "
        f"up to {run.get('augment_shift', 0)} px, batch {run['batch_size']}, {run['epochs']} epochs on "
        f"{run['train_size']} images, validation on {run['val_size']}, test on {run.get('test_size', 10000)}; "
        f"warm-up (first step) {run['warmup_time_s']:.3f} s." + _first_epoch(run)
        + (f" Input resized to {run['image_size']} px" + (", feature extractor frozen" if run.get("freeze_features")
                                                           else "") + "." if run.get("image_size") else "")
        + (f" {run['recompilations']} recompilation(s) after warm-up." if run.get("recompilations") else ""),
        "",
    ]
    if run.get("warnings"):
        out += [f"**Warning:** {w}." for w in run["warnings"]] + [""]
    if run.get("no_detection_rate") is not None:
        iou = run.get("mean_top_box_iou")
        out += [f"Detection read as classification: {run['no_detection_rate']:.2%} of test images had no detection "
                "(counted wrong); mean IoU of the top box with the digit's box "
                + (f"{iou:.3f}." if iou is not None else "- (no detections)."), ""]
    rows = [[str(h["epoch"]), f"{h['train_loss']:.4f}", _number(h.get("val_loss"), "{:.4f}"),
             _number(h.get("val_accuracy"), "{:.4f}"), f"{h['epoch_time_s']:.2f}", f"{h['images_per_s']:.0f}",
             _number(h.get("lr"), "{:.2e}")] for h in run["history"]]
    out += [table(["epoch", "train loss", "val loss", "val acc", "epoch time (s)", "images/s", "lr"], rows), ""]
    return out + _class_tables(run)


def _class_tables(run: dict) -> list[str]:
    """Per-class precision, recall and F1, and the confusion matrix."""
    rows = [[c, f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1-score']:.4f}", str(r["support"])]
            for c, r in run["per_class"].items()]
    out = [table(["class", "precision", "recall", "F1", "support"], rows), "",
           "Confusion matrix (rows: true digit, columns: predicted):", "", "```"]
    out += [" ".join(f"{v:5d}" for v in row) for row in run["confusion_matrix"]]
    return [*out, "```", ""]


def markdown_report(results: dict, ratio_lines: list[str]) -> str:
    """``results.md``: the command, the environment, the comparison and results tables, then every run."""
    env, runs = results["environment"], results["runs"]
    out = [
        "# MNIST benchmark results",
        "",
        f"Command: `{results['command']}`",
        "",
        *environment_lines(env),
        "",
        "## Comparison", "", comparison_table(runs), "",
        "## Results", "", results_table(runs), "",
        *(f"- {line}" for line in ratio_lines),
    ]
    test_sizes = sorted({run.get("test_size", 10000) for run in runs})
    out += [
        "",
        "Test accuracy and macro-F1 are on "
        + ("the 10,000 test images" if test_sizes == [10000] else
           "the test images each run names below (all 10,000, or a fixed random subset)")
        + "; training loss is the mean over",
        "the last epoch (dropout on); train time excludes compilation and validation; images/s is",
        "steady state (epochs after the first). Weights say what each model started from: a",
        "torchvision enum and the SHA-256 of its file, a file, or random init.",
        "",
    ]
    for run in runs:
        out += _run_section(run)
    return "\n".join(out)


def _first_epoch(run: dict) -> str:
    """How long its first epoch's line was waited for, where the record says (records before it did not)."""
    if run.get("first_epoch_s") is None:
        return ""
    launch = run.get("launch_to_run_s")
    since = f", {run['first_epoch_s'] + launch:.1f} s after the process started" if launch is not None else ""
    return f" First epoch's line {run['first_epoch_s']:.1f} s after the run began (building, compiling){since}."
