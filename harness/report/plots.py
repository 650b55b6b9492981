"""The study's pictures, as PNG files, from run records.

Uses matplotlib's object API (``Figure`` + Agg canvas) rather than pyplot, so
drawing a report never touches a global backend or opens a window.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.stats import group_key, summary_by_group
from mnist_common.files import atomic_write

COLORS = {"jax": "tab:blue", "torch": "tab:orange"}
NAMES = {"jax": "JAX/Flax", "torch": "PyTorch"}
LINESTYLES = ("-", "--", ":", "-.")


def _save(fig: Figure, path: Path) -> Path:
    """Draw ``fig`` as a PNG at ``path``, written atomically like every report file."""

    FigureCanvasAgg(fig)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110, bbox_inches="tight")
    atomic_write(path, png.getvalue())
    return path


def _groups(runs: list[dict]) -> dict[tuple[str, str, str], list[dict]]:
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    return groups


def _per_epoch(members: list[dict], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Epochs and the mean/min/max of ``key`` over seeds (epochs all seeds have)."""
    epochs = min(len(r["history"]) for r in members)
    if epochs == 0 or any(key not in h for r in members for h in r["history"][:epochs]):
        return None
    values = np.array([[h[key] for h in r["history"][:epochs]] for r in members], dtype=np.float64)
    return np.arange(1, epochs + 1), values.mean(0), values.min(0), values.max(0)


def training_curves(runs: list[dict], path: Path) -> Path:
    """Training loss and validation accuracy per epoch, per model and framework (mean over seeds, min-max band)."""
    fig = Figure(figsize=(11, 4.2))
    ax_loss, ax_acc = fig.subplots(1, 2)
    models = list(dict.fromkeys(model for model, _, _ in _groups(runs)))
    for (model, framework, mode), members in _groups(runs).items():
        style = LINESTYLES[models.index(model) % len(LINESTYLES)]
        label = f"{model} ({framework} {mode}, {len(members)} seed{'s' if len(members) > 1 else ''})"
        for ax, key in ((ax_loss, "train_loss"), (ax_acc, "val_accuracy")):
            curve = _per_epoch(members, key)
            if curve is None:
                continue
            x, mean, lo, hi = curve
            ax.plot(x, mean, style, marker="o", ms=3, color=COLORS.get(framework), label=label)
            if len(members) > 1:
                ax.fill_between(x, lo, hi, color=COLORS.get(framework), alpha=0.15)
    ax_loss.set(xlabel="epoch", ylabel="training loss (epoch mean)", yscale="log", title="Training loss")
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy", title="Validation accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if ax_acc.get_legend_handles_labels()[0]:
        ax_acc.legend(fontsize=7, loc="lower right")
    else:  # no validation split: the legend goes with the loss curves, and the empty panel says why
        ax_loss.legend(fontsize=7, loc="upper right")
        ax_acc.text(0.5, 0.5, "no validation split (--val-size 0)", ha="center", va="center",
                    transform=ax_acc.transAxes)
    return _save(fig, path)


def confusion_matrices(runs: list[dict], path: Path) -> Path:
    """One test-set confusion matrix per model and framework, summed over seeds."""
    groups = _groups(runs)
    cols = min(3, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.9 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, ((model, framework, mode), members) in zip(axes, groups.items()):
        cm = np.sum([np.asarray(r["confusion_matrix"]) for r in members], axis=0)
        ax.imshow(np.log1p(cm), cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            if v and i != j:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=6, color="firebrick")
        ax.set(title=f"{model} ({framework} {mode}), {len(members)} seed(s)", xlabel="predicted", ylabel="true",
               xticks=range(10), yticks=range(10))
        ax.title.set_fontsize(9)
    for ax in axes[len(groups):]:
        ax.set_axis_off()
    fig.suptitle("Test confusion matrices (off-diagonal counts in red; colour: log(1 + count))", fontsize=10)
    return _save(fig, path)


def accuracy_vs_time(runs: list[dict], path: Path) -> Path:
    """Mean test accuracy against mean training time, with their standard deviations over seeds."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for group in summary_by_group(runs):
        acc, time = group["metrics"]["test_accuracy"], group["metrics"]["train_time_s"]
        if acc["mean"] is None or time["mean"] is None:
            continue
        ax.errorbar(time["mean"], acc["mean"] * 100, xerr=time["std"] or 0, yerr=(acc["std"] or 0) * 100,
                    fmt="o", color=COLORS.get(group["framework"]), capsize=3)
        ax.annotate(f"{group['model']} ({group['framework']} {group['mode']})", (time["mean"], acc["mean"] * 100),
                    textcoords="offset points", xytext=(5, 4), fontsize=7)
    ax.set(xscale="log", xlabel="training time (s, log scale)", ylabel="test accuracy (%)",
           title="Accuracy against training time (mean ± std over seeds)")
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def throughput(runs: list[dict], path: Path) -> Path:
    """Steady-state training images/s per model, one bar per framework and mode, JAX's fastest over PyTorch's
    fastest written above."""
    summaries = summary_by_group(runs)
    models = list(dict.fromkeys(g["model"] for g in summaries))
    bars = list(dict.fromkeys((g["framework"], g["mode"]) for g in summaries))
    fig = Figure(figsize=(max(5, 0.8 * len(models) * len(bars) + 2), 4.2))
    ax = fig.subplots()
    width = 0.8 / len(bars)
    by = {(g["model"], g["framework"], g["mode"]): g["metrics"]["images_per_s"] for g in summaries}
    for k, (framework, mode) in enumerate(bars):
        xs, means, stds = [], [], []
        for i, model in enumerate(models):
            m = by.get((model, framework, mode))
            if m and m["mean"] is not None:
                xs.append(i + (k - (len(bars) - 1) / 2) * width)
                means.append(m["mean"])
                stds.append(m["std"] or 0)
        if xs:
            same_fw = [b for b in bars if b[0] == framework]
            ax.bar(xs, means, width, yerr=stds, capsize=3, color=COLORS.get(framework),
                   alpha=1.0 - 0.5 * same_fw.index((framework, mode)) / max(1, len(same_fw)),
                   label=f"{NAMES.get(framework, framework)} ({mode})")
    for i, model in enumerate(models):
        best = {fw: max((m["mean"] for (mo, f, _), m in by.items() if mo == model and f == fw and m["mean"]),
                        default=None) for fw in ("jax", "torch")}
        if best["jax"] and best["torch"]:
            top = max(m["mean"] or 0 for (mo, _, _), m in by.items() if mo == model)
            ax.text(i, top * 1.04, f"{best['jax'] / best['torch']:.2f}x", ha="center", fontsize=9)
    ax.set(xticks=range(len(models)), ylabel="training images/s (steady state)",
           title="Throughput; above: JAX's fastest over PyTorch's fastest")
    ax.set_xticklabels(models, fontsize=8)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.1)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


PLOTS = {
    "training_curves.png": training_curves,
    "confusion_matrices.png": confusion_matrices,
    "accuracy_vs_time.png": accuracy_vs_time,
    "throughput.png": throughput,
}


def write_plots(runs: list[dict], out_dir: Path) -> list[str]:
    """Every plot that has data, into ``out_dir``; returns the file names written."""
    if not runs:
        return []
    written = []
    for name, draw in PLOTS.items():
        draw(runs, out_dir / name)
        written.append(name)
    return written
