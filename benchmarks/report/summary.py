"""Statistics over seeds as tables, JAX/PyTorch speed ratios, and the study's ``report.md``."""

from __future__ import annotations

from benchmarks.report.markdown import table
from benchmarks.report.tables import counted_flops, environment_lines
from benchmarks.stats import format_ci, format_mean_std, group_key, model_label, summary_by_group


def throughput_ratios(runs: list[dict]) -> list[dict]:
    """JAX/PyTorch steady-state images/s for every model, optimizer and seed run in both frameworks."""
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
                "jax_devices": pair["jax"].get("devices", 1), "torch_devices": pair["torch"].get("devices", 1),
            })
    return ratios


def devices_phrase(jax_devices, torch_devices) -> str:
    """``1 device each`` or ``JAX on 4 devices, PyTorch on 1``: what a speed ratio compares."""
    j, t = jax_devices or 1, torch_devices or 1
    return f"{j} device{'s' if j > 1 else ''} each" if j == t else f"JAX on {j} devices, PyTorch on {t}"


def ratio_lines(ratios: list[dict]) -> list[str]:
    return [
        f"JAX/PyTorch steady-state throughput, {r['model']} ({r['optimizer']}, seed {r['seed']}): "
        f"{r['jax_over_torch']:.2f}x ({r['jax_images_per_s']:.0f} vs {r['torch_images_per_s']:.0f} images/s, "
        f"{devices_phrase(r.get('jax_devices'), r.get('torch_devices'))})"
        for r in ratios
    ]


def summary_table(runs: list[dict]) -> str:
    """The lab's table extended, one row per model and framework, mean ± std over seeds."""
    header = ["model", "framework", "devices", "weights", "seeds", "training loss", "test acc (%)", "test acc 95% CI",
              "macro-F1", "training time (s)", "compile (s)", "images/s", "params"]
    rows = []
    for g in summary_by_group(runs):
        m = g["metrics"]
        rows.append([
            g["model"], g["framework"], str(g["devices"] or 1), ", ".join(g["weights"]), ",".join(map(str, g["seeds"])),
            format_mean_std(m["train_loss"]), format_mean_std(m["test_accuracy"], "{:.2f}", 100),
            format_ci(m["test_accuracy"], "{:.2f}", 100), format_mean_std(m["test_macro_f1"]),
            format_mean_std(m["train_time_s"], "{:.1f}"), format_mean_std(m["compile_time_s"], "{:.2f}"),
            format_mean_std(m["images_per_s"], "{:.0f}"), f"{g['params']:,}" if g["params"] else "-",
        ])
    return table(header, rows)


def speed_lines(runs: list[dict]) -> list[str]:
    """JAX over PyTorch in mean steady-state images/s, per model run in both."""
    by = {(g["model"], g["framework"]): g for g in summary_by_group(runs)}
    out = []
    for (model, fw), g in by.items():
        other = by.get((model, "torch"))
        if fw != "jax" or other is None:
            continue
        j, t = g["metrics"]["images_per_s"], other["metrics"]["images_per_s"]
        if j["mean"] and t["mean"]:
            flops = [counted_flops(r) for r in runs if group_key(r) == (model, "jax")]
            work = (f"; XLA counts {flops[0] / 1e6:.1f} MFLOP per training image, so JAX sustains "
                    f"{flops[0] * j['mean'] / 1e9:.0f} GFLOP/s" if flops and flops[0] else "")
            out.append(f"{model}: JAX {j['mean']:.0f} vs PyTorch {t['mean']:.0f} images/s, "
                       f"{j['mean'] / t['mean']:.2f}x ({devices_phrase(g['devices'], other['devices'])}; mean over "
                       f"{j['n']} seed(s); compile {g['metrics']['compile_time_s']['mean']:.2f} s, not in the "
                       f"training time{work})")
    return out


def study_report(results: dict, plots: list[str]) -> str:
    """``report.md``: the command, the environment, the summary over seeds, the speed ratios and the plots."""
    runs = results["runs"]
    out = [
        "# MNIST comparison study",
        "",
        f"Command: `{results['command']}`",
        "",
        *environment_lines(results["environment"]),
        "",
        "## Summary over seeds",
        "",
        summary_table(runs),
        "",
        "Mean ± sample standard deviation over the seeds listed; the 95% interval is the t-interval of",
        "the mean (with 3 seeds, ± 4.30 standard errors). Training time excludes compilation and",
        "validation; images/s is steady state. Per-run numbers: `results.csv`, `results.md`.",
        "",
    ]
    warnings = [f"{r['framework']} {model_label(r)} seed {r['seed']}: {w}" for r in runs for w in r.get("warnings", [])]
    if warnings:
        out += ["## Warnings", "", *(f"- {w}" for w in warnings), ""]
    speed = speed_lines(runs)
    if speed:
        out += ["## JAX vs PyTorch speed", "", *(f"- {line}" for line in speed), ""]
    if plots:
        out += ["## Plots", ""]
        out += [f"![{name[:-4].replace('_', ' ')}]({name})" for name in plots]
        out.append("")
    return "\n".join(out)
