"""Reading a report folder's ``results.json`` and writing every report file, each atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

from benchmarks.report.summary import ratio_lines, study_report
from benchmarks.report.tables import markdown_report, results_csv
from mnist_common.files import atomic_write


class ReportError(Exception):
    """A report that cannot be made (no results.json, a bad one, no markers): one line, exit 2."""


class HistoryLog:
    """``OUT/history.jsonl``: one JSON line per finished epoch, flushed as it ends, so a long run can be
    followed with ``tail -f`` and a killed one keeps its finished epochs."""

    def __init__(self, path: Path, *, append: bool = False):
        self.path = Path(path)
        if not append:
            self.path.write_text("")

    def write(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())


#: What the report renderers read from every run record and every epoch of its history.
RUN_FIELDS = ("framework", "model", "seed", "optimizer", "epochs", "batch_size", "lr", "schedule", "warmup_steps",
              "preset", "weights", "train_size", "val_size", "device", "train_loss", "test_loss", "test_accuracy",
              "test_macro_f1", "train_time_s", "compile_time_s", "warmup_time_s", "images_per_s", "params",
              "per_class", "confusion_matrix", "history")
EPOCH_FIELDS = ("epoch", "train_loss", "epoch_time_s", "images_per_s")


def check_results(results, path: Path) -> None:
    """ReportError naming the first field a report needs and ``results`` lacks."""
    if not isinstance(results, dict) or not isinstance(results.get("runs"), list) or "environment" not in results:
        raise ReportError(f"{path}: not a benchmarks.run results file (no runs/environment)")
    env = results["environment"]
    for where, fields in (("environment", ("host", "data")), ("environment.host", ("cpu", "cpu_count", "python")),
                          ("environment.data", ("source", "location", "train", "test"))):
        part = env if where == "environment" else env.get(where.split(".")[1], {})
        missing = [f for f in fields if not isinstance(part, dict) or f not in part]
        if missing:
            raise ReportError(f"{path}: {where} has no {missing[0]!r}")
    if "command" not in results:
        raise ReportError(f"{path}: no 'command'")
    for i, run in enumerate(results["runs"]):
        missing = [f for f in RUN_FIELDS if not isinstance(run, dict) or f not in run]
        if missing:
            raise ReportError(f"{path}: runs[{i}] has no {missing[0]!r}")
        for j, epoch in enumerate(run["history"]):
            missing = [f for f in EPOCH_FIELDS if not isinstance(epoch, dict) or f not in epoch]
            if missing:
                raise ReportError(f"{path}: runs[{i}].history[{j}] has no {missing[0]!r}")


def load_results(folder: Path) -> dict:
    """``folder/results.json``, checked to hold what the reports read."""
    path = folder / "results.json"
    if not path.is_file():
        raise ReportError(f"{folder}: no results.json (run python -m benchmarks.run --out {folder} first)")
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ReportError(f"{path}: not readable JSON ({err})") from None
    check_results(results, path)
    return results


def render(out_dir: Path, results: dict, *, plots: bool = True) -> list[str]:
    """Every report file but ``results.json``, from ``results``; returns the file names written."""
    from benchmarks.report.plots import write_plots  # matplotlib only when drawing

    ratios = ratio_lines(results.get("throughput_ratios", []))
    atomic_write(out_dir / "results.md", markdown_report(results, ratios))
    atomic_write(out_dir / "results.csv", results_csv(results["runs"]))
    drawn = write_plots(results["runs"], out_dir) if plots else []
    atomic_write(out_dir / "report.md", study_report(results, drawn))
    return ["results.md", "results.csv", "report.md", *drawn]


def write_results(out_dir: Path, results: dict, *, plots: bool = True) -> None:
    """``results.json``, ``results.md``, ``results.csv``, ``report.md`` and the PNG plots."""
    atomic_write(out_dir / "results.json", json.dumps(results, indent=2, allow_nan=True) + "\n")
    render(out_dir, results, plots=plots)
