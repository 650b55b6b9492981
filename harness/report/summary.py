"""Statistics over seeds as tables, JAX/PyTorch speed ratios, and the study's ``report.md``."""

from __future__ import annotations

from harness.report.markdown import table
from harness.report.tables import counted_flops, environment_lines
from harness.stats import format_ci, format_mean_std, group_key, model_label, summary_by_group

#: Each framework out of the box: Flax's own layers in float32, eager PyTorch in float32.
STOCK_MODES = {"jax": "stock", "torch": "eager"}


def _fastest(runs: list[dict]) -> dict:
    return max(runs, key=lambda r: r["images_per_s"] or 0)


def throughput_ratios(runs: list[dict]) -> list[dict]:
    """JAX/PyTorch steady-state images/s per model, optimizer and seed run in both frameworks: ``best`` (each
    framework's fastest mode), ``float32`` (the fastest float32 modes, when bfloat16 was the faster: it computes
    other numbers) and, where both ran out of the box, ``stock`` (JAX stock against PyTorch eager)."""
    by_key: dict[tuple, dict[str, list[dict]]] = {}
    for run in runs:
        by_key.setdefault((model_label(run), run["optimizer"], run["seed"]), {}).setdefault(run["framework"], []).append(run)
    ratios = []
    for (model, optimizer, seed), per_fw in by_key.items():
        if "jax" not in per_fw or "torch" not in per_fw:
            continue
        pairs = {"best": (_fastest(per_fw["jax"]), _fastest(per_fw["torch"]))}
        full = [[r for r in per_fw[fw] if r.get("precision", "float32") == "float32"] for fw in ("jax", "torch")]
        if all(full) and (_fastest(full[0]), _fastest(full[1])) != pairs["best"]:
            pairs["float32"] = (_fastest(full[0]), _fastest(full[1]))
        stock = [[r for r in per_fw[fw] if r["mode"] == STOCK_MODES[fw]] for fw in ("jax", "torch")]
        if all(stock):
            pairs["stock"] = (stock[0][0], stock[1][0])
        for kind, (j, t) in pairs.items():
            if not t["images_per_s"]:
                continue
            ratios.append({
                "model": model, "optimizer": optimizer, "seed": seed, "kind": kind,
                "jax_mode": j["mode"], "torch_mode": t["mode"],
                "jax_images_per_s": j["images_per_s"], "torch_images_per_s": t["images_per_s"],
                "jax_over_torch": j["images_per_s"] / t["images_per_s"],
                "jax_devices": j.get("devices", 1), "torch_devices": t.get("devices", 1),
            })
    return ratios


def devices_phrase(jax_devices, torch_devices) -> str:
    """``1 device each`` or ``JAX on 4 devices, PyTorch on 1``: what a speed ratio compares."""
    j, t = jax_devices or 1, torch_devices or 1
    return f"{j} device{'s' if j > 1 else ''} each" if j == t else f"JAX on {j} devices, PyTorch on {t}"


KIND_PHRASES = {"best": "each at its best", "float32": "each at its best in float32", "stock": "out of the box"}


def ratio_lines(ratios: list[dict]) -> list[str]:
    return [
        f"JAX/PyTorch steady-state throughput, {r['model']} ({r['optimizer']}, seed {r['seed']}), "
        f"{KIND_PHRASES[r.get('kind', 'best')]}: {r['jax_over_torch']:.2f}x (JAX {r.get('jax_mode', '-')} "
        f"{r['jax_images_per_s']:.0f} vs PyTorch {r.get('torch_mode', '-')} {r['torch_images_per_s']:.0f} images/s, "
        f"{devices_phrase(r.get('jax_devices'), r.get('torch_devices'))})"
        for r in ratios
    ]


def summary_table(runs: list[dict]) -> str:
    """The lab's table extended, one row per model and framework, mean ± std over seeds."""
    header = ["model", "framework", "mode", "devices", "weights", "seeds", "training loss", "test acc (%)",
              "test acc 95% CI", "macro-F1", "training time (s)", "compile (s)", "images/s", "params"]
    rows = []
    for g in summary_by_group(runs):
        m = g["metrics"]
        rows.append([
            g["model"], g["framework"], g["mode"], str(g["devices"] or 1), ", ".join(g["weights"]),
            ",".join(map(str, g["seeds"])),
            format_mean_std(m["train_loss"]), format_mean_std(m["test_accuracy"], "{:.2f}", 100),
            format_ci(m["test_accuracy"], "{:.2f}", 100), format_mean_std(m["test_macro_f1"]),
            format_mean_std(m["train_time_s"], "{:.1f}"), format_mean_std(m["compile_time_s"], "{:.2f}"),
            format_mean_std(m["images_per_s"], "{:.0f}"), f"{g['params']:,}" if g["params"] else "-",
        ])
    return table(header, rows)


def speed_lines(runs: list[dict]) -> list[str]:
    """JAX over PyTorch in mean steady-state images/s, per model run in both: each framework at its best
    (its fastest mode), at its best in float32 when bfloat16 was faster, and, where both ran it, out of the box
    (JAX stock against PyTorch eager)."""
    per_model: dict[str, dict[str, list[dict]]] = {}
    for g in summary_by_group(runs):
        per_model.setdefault(g["model"], {}).setdefault(g["framework"], []).append(g)
    out = []
    for model, per_fw in per_model.items():
        if "jax" not in per_fw or "torch" not in per_fw:
            continue
        def fastest(groups):
            return max(groups, key=lambda g: g["metrics"]["images_per_s"]["mean"] or 0)

        pairs = {"best": tuple(fastest(per_fw[fw]) for fw in ("jax", "torch"))}
        full = [[g for g in per_fw[fw] if "bf16" not in g["mode"]] for fw in ("jax", "torch")]
        if all(full) and (fastest(full[0]), fastest(full[1])) != pairs["best"]:
            pairs["float32"] = (fastest(full[0]), fastest(full[1]))
        stock = [[g for g in per_fw[fw] if g["mode"] == STOCK_MODES[fw]] for fw in ("jax", "torch")]
        if all(stock) and (stock[0][0], stock[1][0]) != pairs["best"]:
            pairs["stock"] = (stock[0][0], stock[1][0])
        for kind, (jg, tg) in pairs.items():
            j, t = jg["metrics"]["images_per_s"], tg["metrics"]["images_per_s"]
            if not (j["mean"] and t["mean"]):
                continue
            flops = [counted_flops(r) for r in runs if group_key(r) == (model, "jax", jg["mode"])]
            work = (f"; XLA counts {flops[0] / 1e6:.1f} MFLOP per training image, so JAX sustains "
                    f"{flops[0] * j['mean'] / 1e9:.0f} GFLOP/s" if flops and flops[0] else "")
            compile_s = (jg["metrics"]["compile_time_s"]["mean"], tg["metrics"]["compile_time_s"]["mean"])
            out.append(f"{model}, {KIND_PHRASES[kind]}: JAX {jg['mode']} {j['mean']:.0f} vs PyTorch {tg['mode']} "
                       f"{t['mean']:.0f} images/s, {j['mean'] / t['mean']:.2f}x "
                       f"({devices_phrase(jg['devices'], tg['devices'])}; mean over {j['n']} seed(s); compile "
                       f"{compile_s[0]:.2f} s and {compile_s[1]:.2f} s, not in the training time{work})")
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
        "the mean (with 3 seeds, ± 4.30 standard errors), clipped to [0, 100]%, and given from three seeds on",
        "(`n < 3`: with two, ± 12.7 standard errors says nothing). Training time excludes compilation and",
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
