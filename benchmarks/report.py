"""Reports from run records: results.json, results.md, results.csv, report.md and the plots.

``python -m benchmarks.report DIR`` renders DIR's report files again from its
``results.json``; ``python -m benchmarks.report DIR_A DIR_B`` compares two
runs (CPU against GPU, before against after); ``--readme README.md`` writes
DIR's summary into the README between its results markers.

A *collection* is a folder of report folders (one per command, as a GPU
session's time-boxed stages make them, see ``benchmarks/gpu_study.sh``):
``python -m benchmarks.report DIR`` re-renders each, and ``--readme`` writes
one block with every folder's summary and a time-to-accuracy table.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.stats import format_ci, format_mean_std, group_key, model_label, summary_by_group

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


def results_table(runs: list[dict]) -> str:
    """A Markdown table, one row per run; readable as plain text too."""
    return _table(runs, COLUMNS)


def _table(runs: list[dict], columns) -> str:
    header = [h for h, _, _ in columns]
    rows = [[_cell(fmt, model_label(run) if key == "model_label" else run.get(key)) for _, key, fmt in columns]
            for run in runs]
    return _markdown(header, rows)


COMPARISON_COLUMNS = (
    ("model", "model_label", "{}"),
    ("framework", "framework", "{}"),
    ("weights", "weights", "{}"),
    ("training loss", "train_loss", "{:.4f}"),
    ("test acc (%)", "test_accuracy", "{:.2%}"),
    ("macro-F1", "test_macro_f1", "{:.4f}"),
    ("training time (s)", "train_time_s", "{:.1f}"),
)


def comparison_table(runs: list[dict]) -> str:
    """The lab's table: model, training loss, accuracy, macro-F1, training time (and framework, weights)."""
    return _table(runs, COMPARISON_COLUMNS)


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
    out += ["", "## Comparison", "", comparison_table(runs), ""]
    out += ["## Results", "", results_table(runs), ""]
    out += [f"- {line}" for line in ratio_lines(results.get("throughput_ratios", []))]
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
        out += [
            f"## {run['framework']} / {model_label(run)} (seed {run['seed']}, preset {run['preset']})",
            "",
            f"Weights: {run['weights']}. Optimizer {run['optimizer']} lr {run['lr']} "
            f"({run['schedule']} schedule, {run['warmup_steps']} warm-up steps), weight decay "
            f"{run.get('weight_decay', 0)}, label smoothing {run.get('label_smoothing', 0)}, random shifts "
            f"up to {run.get('augment_shift', 0)} px, batch {run['batch_size']}, {run['epochs']} epochs on "
            f"{run['train_size']} images, validation on {run['val_size']}, test on {run.get('test_size', 10000)}; "
            f"warm-up (first step) {run['warmup_time_s']:.3f} s."
            + (f" Input resized to {run['image_size']} px" + (", feature extractor frozen" if run.get("freeze_features") else "")
               + (", bfloat16 autocast" if run.get("amp") else "") + "." if run.get("image_size") else ""),
            "",
            *([f"Detection read as classification: {run['no_detection_rate']:.2%} of test images had no detection "
               "(counted wrong); mean IoU of the top box with the digit's box "
               + (f"{run['mean_top_box_iou']:.3f}." if run.get("mean_top_box_iou") is not None else "- (no detections).")
               , ""] if run.get("no_detection_rate") is not None else []),
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


CSV_COLUMNS = (
    "framework", "model", "variant", "seed", "preset", "weights", "optimizer", "lr", "epochs", "batch_size",
    "train_size", "val_size", "test_size", "image_size", "train_loss", "val_accuracy", "test_loss", "test_accuracy",
    "test_macro_f1", "no_detection_rate", "mean_top_box_iou", "train_time_s", "compile_time_s", "warmup_time_s",
    "images_per_s", "train_flops_per_image", "achieved_gflop_s", "devices", "steps_per_call", "test_eval_time_s", "params", "device",
)


def counted_flops(run: dict) -> float | None:
    """XLA's FLOP count per training image, where it is complete: on a CPU. XLA GPU's cost analysis
    leaves out library calls (cuDNN convolutions, cuBLAS products): it said 3.0 MFLOP per CNN image
    on the H100 against 23.6 on the CPU, so GPU runs (and any files that recorded it) get None."""
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


def summary_table(runs: list[dict]) -> str:
    """The lab's table extended, one row per model and framework, mean ± std over seeds."""
    header = ["model", "framework", "weights", "seeds", "training loss", "test acc (%)", "test acc 95% CI",
              "macro-F1", "training time (s)", "compile (s)", "images/s", "params"]
    rows = []
    for g in summary_by_group(runs):
        m = g["metrics"]
        rows.append([
            g["model"], g["framework"], ", ".join(g["weights"]), ",".join(map(str, g["seeds"])),
            format_mean_std(m["train_loss"]), format_mean_std(m["test_accuracy"], "{:.2f}", 100),
            format_ci(m["test_accuracy"], "{:.2f}", 100), format_mean_std(m["test_macro_f1"]),
            format_mean_std(m["train_time_s"], "{:.1f}"), format_mean_std(m["compile_time_s"], "{:.2f}"),
            format_mean_std(m["images_per_s"], "{:.0f}"), f"{g['params']:,}" if g["params"] else "-",
        ])
    return _markdown(header, rows)


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


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
                       f"{j['mean'] / t['mean']:.2f}x (mean over {j['n']} seed(s); compile "
                       f"{g['metrics']['compile_time_s']['mean']:.2f} s, not in the training time{work})")
    return out


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
    """The glibc malloc settings the run used (``benchmarks.malloc``); older files did not record them."""
    if "malloc" not in host:
        return ""
    settings = ", ".join(f"{k} {v}" for k, v in host["malloc"].items())
    return f"; malloc: {settings or 'glibc defaults'}"


def environment_lines(env: dict) -> list[str]:
    host, data = env["host"], env["data"]
    lines = [
        f"- host: {host['cpu']} ({host['cpu_count']} logical CPUs), {host.get('platform', '')}, "
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


def study_report(results: dict, plots: list[str]) -> str:
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
    speed = speed_lines(runs)
    if speed:
        out += ["## JAX vs PyTorch speed", "", *(f"- {line}" for line in speed), ""]
    if plots:
        out += ["## Plots", ""]
        out += [f"![{name[:-4].replace('_', ' ')}]({name})" for name in plots]
        out.append("")
    return "\n".join(out)


def write_results(out_dir: Path, results: dict, *, plots: bool = True) -> None:
    """``results.json``, ``results.md``, ``results.csv``, ``report.md`` and the PNG plots, each written atomically."""
    atomic_write(out_dir / "results.json", json.dumps(results, indent=2, allow_nan=True) + "\n")
    render(out_dir, results, plots=plots)


def render(out_dir: Path, results: dict, *, plots: bool = True) -> list[str]:
    """Every report file but ``results.json``, from ``results``; returns the file names written."""
    from benchmarks.plots import write_plots  # matplotlib only when drawing

    atomic_write(out_dir / "results.md", markdown_report(results))
    atomic_write(out_dir / "results.csv", results_csv(results["runs"]))
    drawn = write_plots(results["runs"], out_dir) if plots else []
    atomic_write(out_dir / "report.md", study_report(results, drawn))
    return ["results.md", "results.csv", "report.md", *drawn]


def compare(a: dict, b: dict, name_a: str, name_b: str) -> str:
    """Two runs side by side, per model and framework: accuracy, training time, images/s and B over A."""
    sa = {(g["model"], g["framework"]): g for g in summary_by_group(a["runs"])}
    sb = {(g["model"], g["framework"]): g for g in summary_by_group(b["runs"])}
    header = ["model", "framework", f"test acc (%) {name_a}", f"test acc (%) {name_b}",
              f"training time (s) {name_a}", f"training time (s) {name_b}", f"images/s {name_a}",
              f"images/s {name_b}", "speed B/A"]
    rows = []
    for key in [k for k in sa if k in sb]:
        ma, mb = sa[key]["metrics"], sb[key]["metrics"]
        ia, ib = ma["images_per_s"]["mean"], mb["images_per_s"]["mean"]
        rows.append([
            *key, format_mean_std(ma["test_accuracy"], "{:.2f}", 100), format_mean_std(mb["test_accuracy"], "{:.2f}", 100),
            format_mean_std(ma["train_time_s"], "{:.1f}"), format_mean_std(mb["train_time_s"], "{:.1f}"),
            format_mean_std(ma["images_per_s"], "{:.0f}"), format_mean_std(mb["images_per_s"], "{:.0f}"),
            f"{ib / ia:.2f}x" if ia and ib else "-",
        ])
    only = [f"{m} ({fw})" for m, fw in list(sa.keys() - sb.keys()) + list(sb.keys() - sa.keys())]
    devices = lambda r: ", ".join(sorted({run.get("device", "?") for run in r["runs"]}))  # noqa: E731
    out = [f"# {name_a} (A) against {name_b} (B)", "",
           f"- A: `{a['command']}` on {devices(a)}, commit {a['environment']['host'].get('git_commit')}",
           f"- B: `{b['command']}` on {devices(b)}, commit {b['environment']['host'].get('git_commit')}", ""]
    out += [_markdown(header, rows) if rows else "No model and framework ran in both.", ""]
    if only:
        out += [f"In one run only: {', '.join(sorted(only))}.", ""]
    return "\n".join(out)


#: Test accuracies for the time-to-accuracy table of a collection.
ACCURACY_MARKS = (0.99, 0.994, 0.995)


def load_collection(folder: Path) -> list[tuple[str, dict]]:
    """(name, results) of each report folder directly under ``folder``, by name; [] if there are none."""
    if not folder.is_dir():
        return []
    return [(p.name, load_results(p)) for p in sorted(folder.iterdir()) if (p / "results.json").is_file()]


def time_to_accuracy_table(named: list[tuple[str, dict]]) -> str:
    """Per model, framework and accuracy mark: the setting (report folder) with the shortest mean
    training time among those where every seed reached the mark; else the best mean accuracy seen."""
    groups = [(name, g) for name, results in named for g in summary_by_group(results["runs"])]
    rows = []
    for model, framework in dict.fromkeys((g["model"], g["framework"]) for _, g in groups):
        mine = [(name, g) for name, g in groups if (g["model"], g["framework"]) == (model, framework)]
        for mark in ACCURACY_MARKS:
            reached = [(g["metrics"]["train_time_s"]["mean"], name, g) for name, g in mine
                       if g["metrics"]["test_accuracy"]["values"]
                       and min(g["metrics"]["test_accuracy"]["values"]) >= mark]
            if not reached:  # one row for the first mark missed, with the best accuracy seen
                name, g = max(mine, key=lambda item: item[1]["metrics"]["test_accuracy"]["mean"] or 0)
                best = g["metrics"]["test_accuracy"]["mean"]
                rows.append([model, framework, f"{mark:.1%}", "not reached" + (
                    f" (best: {name}, mean {best:.2%})" if best is not None else ""), "-", "-", "-", "-"])
                break
            t, name, g = min(reached, key=lambda item: item[0])
            m = g["metrics"]
            rows.append([model, framework, f"{mark:.1%}", name, str(m["test_accuracy"]["n"]),
                         f"{min(m['test_accuracy']['values']):.2%}".rstrip("%"),
                         format_mean_std(m["train_time_s"], "{:.2f}"), format_mean_std(m["compile_time_s"], "{:.2f}")])
    header = ["model", "framework", "test accuracy", "quickest setting (folder)", "seeds", "lowest seed (%)",
              "training time (s)", "compile (s)"]
    return _markdown(header, rows)


def collection_section(named: list[tuple[str, dict]], folder: str) -> str:
    """The README block for a collection: time to accuracy, then each folder's command and summary."""
    begin, end = readme_markers(folder)
    first = named[0][1]
    out = [
        begin,
        f"Generated from the report folders under [`{folder}`]({folder}) (each has its report.md and plots).",
        "",
        *environment_lines(first["environment"]),
        "",
        "Time to accuracy: for each mark, the setting with the shortest mean training time (compilation",
        "excluded, shown apart) among those where every seed reached it on the 10,000 test images.",
        "",
        time_to_accuracy_table(named),
    ]
    for name, results in named:
        out += ["", f"**{name}** ([report]({folder}/{name}/report.md)): `{results['command']}`", "",
                summary_table(results["runs"])]
        out += [f"- {line}" for line in speed_lines(results["runs"])]
    return "\n".join([*out, end])


def readme_markers(folder: str) -> tuple[str, str]:
    """The pair of HTML comments around the README block generated from ``folder``."""
    return (f"<!-- results:begin {folder} (generated by python -m benchmarks.report {folder} --readme README.md) -->",
            f"<!-- results:end {folder} -->")


def readme_section(results: dict | str | list, folder: str) -> str:
    """The README block for ``folder``: its study summary, (a parity folder) its ``summary.md`` text,
    or (a collection: a list of (name, results)) :func:`collection_section`."""
    if isinstance(results, list):
        return collection_section(results, folder)
    begin, end = readme_markers(folder)
    if isinstance(results, str):
        return "\n".join([begin, f"Generated from [`{folder}`]({folder}/parity.md).", "", results.rstrip("\n"), end])
    runs = results["runs"]
    return "\n".join([
        begin,
        f"Generated from [`{folder}/report.md`]({folder}/report.md), made by:",
        "",
        "```bash",
        results["command"],
        "```",
        "",
        *environment_lines(results["environment"]),
        "",
        summary_table(runs),
        "",
        *(f"- {line}" for line in speed_lines(runs)),
        end,
    ])


def update_readme(readme: Path, results: dict | str | list, folder: str) -> None:
    """Replace the block generated from ``folder`` (its markers must already be in the README)."""
    text = readme.read_text()
    begin, end = readme_markers(folder)
    head_marker = begin.split(" (")[0]
    if head_marker not in text or end not in text:
        raise ReportError(f"{readme} has no results markers for {folder} (a line starting '{head_marker}' "
                          f"and a line '{end}')")
    head, rest = text.split(head_marker, 1)
    _, tail = rest.split(end, 1)
    atomic_write(readme, head + readme_section(results, folder) + tail)


class ReportError(Exception):
    """A report that cannot be made (no results.json, a bad one): one line, exit 2."""


def load_results(folder: Path) -> dict:
    path = folder / "results.json"
    if not path.is_file():
        raise ReportError(f"{folder}: no results.json (run python -m benchmarks.run --out {folder} first)")
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ReportError(f"{path}: not readable JSON ({err})") from None
    if not isinstance(results, dict) or not isinstance(results.get("runs"), list) or "environment" not in results:
        raise ReportError(f"{path}: not a benchmarks.run results file (no runs/environment)")
    return results


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + error
        raise ReportError(f"{message} (see --help)")


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None) -> int:
    parser = _Parser(
        prog="python -m benchmarks.report",
        description="Render a report folder again from its results.json, or compare two of them.")
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="one folder to re-render (a folder of report folders: each of them), or two to "
                        "compare (A B)")
    parser.add_argument("--out", metavar="FILE", help="with two folders: also write the comparison here "
                        "(default: print only)")
    parser.add_argument("--readme", metavar="FILE", help="with one folder: write its summary into FILE between "
                        "its results markers; a parity folder (parity.run's summary.md) works too "
                        "(default: README untouched)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots (default: drawn)")
    args = parser.parse_args(argv)
    if len(args.dirs) > 2:
        raise ReportError("give one folder to re-render or two to compare")
    folders = [Path(d) for d in args.dirs]
    if len(folders) == 1 and args.readme and (folders[0] / "summary.md").is_file() \
            and not (folders[0] / "results.json").is_file():  # a parity folder (python -m parity.run)
        readme = Path(args.readme)
        if not readme.is_file():
            raise ReportError(f"--readme {readme}: no such file")
        update_readme(readme, (folders[0] / "summary.md").read_text(), folders[0].as_posix())
        print(f"updated {readme}")
        return 0
    named = load_collection(folders[0]) if len(folders) == 1 and not (folders[0] / "results.json").is_file() else []
    if named:  # a collection: a folder of report folders
        for name, results in named:
            written = render(folders[0] / name, results, plots=not args.no_plots)
            print(f"wrote {', '.join(str(folders[0] / name / w) for w in written)}")
        if args.readme:
            readme = Path(args.readme)
            if not readme.is_file():
                raise ReportError(f"--readme {readme}: no such file")
            update_readme(readme, named, folders[0].as_posix())
            print(f"updated {readme}")
        return 0
    results = [load_results(f) for f in folders]
    if len(folders) == 1:
        written = render(folders[0], results[0], plots=not args.no_plots)
        print(f"wrote {', '.join(str(folders[0] / w) for w in written)}")
        if args.readme:
            readme = Path(args.readme)
            if not readme.is_file():
                raise ReportError(f"--readme {readme}: no such file")
            update_readme(readme, results[0], folders[0].as_posix())
            print(f"updated {readme}")
    else:
        text = compare(results[0], results[1], folders[0].name or str(folders[0]), folders[1].name or str(folders[1]))
        print(text)
        if args.out:
            atomic_write(Path(args.out), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
