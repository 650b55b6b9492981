"""results.json, results.md and the stdout table, from the run records."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

COLUMNS = (
    # header, key, format
    ("framework", "framework", "{}"),
    ("model", "model_label", "{}"),
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
    ("device", "device", "{}"),
)


def _cell(fmt: str, value) -> str:
    if value is None:
        return "-"
    text = fmt.format(value)
    return text.rstrip("%") if fmt == "{:.2%}" else text


def model_label(run: dict) -> str:
    """``vit tiny/7`` for a model with a variant, else the model name."""
    return f"{run['model']} {run['variant']}" if run.get("variant") else run["model"]


def results_table(runs: list[dict]) -> str:
    """A Markdown table, one row per run; readable as plain text too."""
    header = [h for h, _, _ in COLUMNS]
    rows = [[_cell(fmt, run.get(key, model_label(run) if key == "model_label" else None)) for _, key, fmt in COLUMNS]
            for run in runs]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def throughput_ratios(runs: list[dict]) -> list[dict]:
    """JAX/PyTorch steady-state images/s for every model run in both frameworks."""
    by_key = {}
    for run in runs:
        by_key.setdefault((model_label(run), run["optimizer"], run["seed"]), {})[run["framework"]] = run
    ratios = []
    for (model, optimizer, seed), pair in by_key.items():
        if "jax" in pair and "torch" in pair and pair["torch"]["images_per_s"]:
            ratios.append({
                "model": model, "optimizer": optimizer, "seed": seed,
                "jax_images_per_s": pair["jax"]["images_per_s"],
                "torch_images_per_s": pair["torch"]["images_per_s"],
                "jax_over_torch": pair["jax"]["images_per_s"] / pair["torch"]["images_per_s"],
            })
    return ratios


def ratio_lines(ratios: list[dict]) -> list[str]:
    return [
        f"JAX/PyTorch steady-state throughput, {r['model']} ({r['optimizer']}, seed {r['seed']}): "
        f"{r['jax_over_torch']:.2f}x ({r['jax_images_per_s']:.0f} vs {r['torch_images_per_s']:.0f} images/s)"
        for r in ratios
    ]


def atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a report."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def markdown_report(results: dict) -> str:
    env, runs = results["environment"], results["runs"]
    out = [
        "# MNIST benchmark results",
        "",
        f"Command: `{results['command']}`",
        "",
        f"Host: {env['host']['cpu']} ({env['host']['cpu_count']} logical CPUs), "
        f"Python {env['host']['python']}, commit {env['host']['git_commit'] or 'unknown'}.",
        f"Data: {env['data']['source']} from `{env['data']['location']}`; "
        f"{env['data']['train']} train / {env['data']['test']} test images, checksums verified.",
        "",
    ]
    for fw, info in env.get("frameworks", {}).items():
        versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
        out.append(f"- {fw}: {versions}; device {info['device']}")
    out += ["", "## Results", "", results_table(runs), ""]
    out += [f"- {line}" for line in ratio_lines(results.get("throughput_ratios", []))]
    out += [
        "",
        "Test accuracy and macro-F1 are on the 10,000 test images; training loss is the mean over",
        "the last epoch (dropout on); train time excludes compilation and validation; images/s is",
        "steady state (epochs after the first).",
        "",
    ]
    for run in runs:
        out += [
            f"## {run['framework']} / {model_label(run)} (seed {run['seed']}, preset {run['preset']})",
            "",
            f"Weights: {run['weights']}. Optimizer {run['optimizer']} lr {run['lr']} "
            f"({run['schedule']} schedule, {run['warmup_steps']} warm-up steps), weight decay "
            f"{run.get('weight_decay', 0)}, label smoothing {run.get('label_smoothing', 0)}, random shifts "
            f"up to {run.get('augment_shift', 0)} px, batch {run['batch_size']}, {run['epochs']} epochs on "
            f"{run['train_size']} images, validation on {run['val_size']}; warm-up (first step) "
            f"{run['warmup_time_s']:.3f} s.",
            "",
            "| epoch | train loss | val loss | val acc | epoch time (s) | images/s | lr |",
            "|---|---|---|---|---|---|---|",
        ]
        for h in run["history"]:
            out.append(
                f"| {h['epoch']} | {h['train_loss']:.4f} | {h.get('val_loss', float('nan')):.4f} | "
                f"{h.get('val_accuracy', float('nan')):.4f} | {h['epoch_time_s']:.2f} | "
                f"{h['images_per_s']:.0f} | {h['lr']:.2e} |"
            )
        out += ["", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for c, r in run["per_class"].items():
            out.append(f"| {c} | {r['precision']:.4f} | {r['recall']:.4f} | {r['f1-score']:.4f} | {r['support']} |")
        out += ["", "Confusion matrix (rows: true digit, columns: predicted):", "", "```"]
        out += [" ".join(f"{v:5d}" for v in row) for row in run["confusion_matrix"]]
        out += ["```", ""]
    return "\n".join(out)


def write_results(out_dir: Path, results: dict) -> None:
    """``results.json`` and ``results.md`` in ``out_dir``, each replaced atomically."""
    atomic_write(out_dir / "results.json", json.dumps(results, indent=2, allow_nan=True) + "\n")
    atomic_write(out_dir / "results.md", markdown_report(results))
