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
    followed with ``tail -f`` and a killed one keeps its finished epochs.

    Each epoch of a run is there once: a run that resumes from an earlier checkpoint
    (or starts over) logs again from that epoch, and the lines it had logged from there
    on are dropped first (the file is then rewritten atomically).
    """

    #: What names a run in a line: two lines with these and the same epoch are the same epoch.
    RUN_KEYS = ("framework", "model", "variant", "mode", "seed")

    def __init__(self, path: Path, *, append: bool = False):
        self.path = Path(path)
        if not append or not self.path.is_file():
            self.path.write_text("")

    def _run(self, record: dict) -> tuple:
        return tuple(record.get(k) for k in self.RUN_KEYS)

    def write(self, record: dict) -> None:
        run, epoch = self._run(record), record.get("epoch")
        lines = self.path.read_text().splitlines(keepends=True) if self.path.is_file() else []
        kept = [line for line in lines if not self._same_run_from(line, run, epoch)]
        if len(kept) != len(lines):
            atomic_write(self.path, "".join(kept))
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _same_run_from(self, line: str, run: tuple, epoch) -> bool:
        try:
            old = json.loads(line)
        except ValueError:  # a line cut short by a kill mid-write: dropped with the rest of its run's tail
            return True
        return isinstance(old, dict) and self._run(old) == run and isinstance(old.get("epoch"), int) \
            and isinstance(epoch, int) and old["epoch"] >= epoch


#: What the report renderers read from every run record, and of which type: a field is checked before any report
#: is written, so that a damaged results.json is one line, not a traceback halfway through a rewrite.
_NUMBER, _OPT_NUMBER, _INT, _OPT_INT, _STR, _OPT_STR = "number", "number or null", "integer", "integer or null", \
    "string", "string or null"
RUN_TYPES = {
    "framework": _STR, "model": _STR, "seed": _OPT_INT, "optimizer": _STR, "epochs": _INT, "batch_size": _OPT_INT,
    "lr": _OPT_NUMBER, "schedule": _STR, "warmup_steps": _INT, "preset": _STR, "weights": _STR, "train_size": _INT,
    "val_size": _INT, "device": _STR, "train_loss": _OPT_NUMBER, "test_loss": _OPT_NUMBER,
    "test_accuracy": _NUMBER, "test_macro_f1": _NUMBER, "train_time_s": _OPT_NUMBER, "compile_time_s": _OPT_NUMBER,
    "warmup_time_s": _OPT_NUMBER, "images_per_s": _OPT_NUMBER, "params": _INT, "per_class": "object",
    "confusion_matrix": "list", "history": "list",
}
RUN_FIELDS = tuple(RUN_TYPES)
EPOCH_TYPES = {"epoch": _INT, "train_loss": _NUMBER, "epoch_time_s": _NUMBER, "images_per_s": _NUMBER}
EPOCH_FIELDS = tuple(EPOCH_TYPES)
_OPTIONAL_RUN_TYPES = {"variant": _OPT_STR, "mode": _OPT_STR, "val_accuracy": _OPT_NUMBER, "devices": _OPT_INT,
                       "test_size": _OPT_INT, "warnings": "list"}


def _fits(value, kind: str) -> bool:
    if value is None and kind.endswith("or null"):
        return True
    base = kind.removesuffix(" or null")
    if base == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, {"string": str, "object": dict, "list": list}[base])


def check_results(results, path: Path) -> None:
    """ReportError naming the first field a report needs that ``results`` lacks or holds in another type (each
    run's fields and epochs, and a confusion matrix that is square with one row per class)."""
    if not isinstance(results, dict) or not isinstance(results.get("runs"), list) or "environment" not in results:
        raise ReportError(f"{path}: not a benchmarks.run results file (no runs/environment)")
    env = results["environment"]
    if not isinstance(env, dict):
        raise ReportError(f"{path}: environment is not an object")
    for where, fields in (("environment", ("host", "data")), ("environment.host", ("cpu", "cpu_count", "python")),
                          ("environment.data", ("source", "location", "train", "test"))):
        part = env if where == "environment" else env.get(where.split(".")[1], {})
        missing = [f for f in fields if not isinstance(part, dict) or f not in part]
        if missing:
            raise ReportError(f"{path}: {where} has no {missing[0]!r}")
    if not isinstance(results.get("command"), str):
        raise ReportError(f"{path}: no 'command' (a string)")
    if not isinstance(results.get("throughput_ratios", []), list):
        raise ReportError(f"{path}: throughput_ratios is not a list")
    for i, run in enumerate(results["runs"]):
        if not isinstance(run, dict):
            raise ReportError(f"{path}: runs[{i}] is not an object")
        for field, kind in RUN_TYPES.items():
            if field not in run:
                raise ReportError(f"{path}: runs[{i}] has no {field!r}")
            if not _fits(run[field], kind):
                raise ReportError(f"{path}: runs[{i}].{field} must be a {kind}, got {_brief(run[field])}")
        for field, kind in _OPTIONAL_RUN_TYPES.items():
            if field in run and not _fits(run[field], kind):
                raise ReportError(f"{path}: runs[{i}].{field} must be a {kind}, got {_brief(run[field])}")
        for j, epoch in enumerate(run["history"]):
            if not isinstance(epoch, dict):
                raise ReportError(f"{path}: runs[{i}].history[{j}] is not an object")
            for field, kind in EPOCH_TYPES.items():
                if field not in epoch:
                    raise ReportError(f"{path}: runs[{i}].history[{j}] has no {field!r}")
                if not _fits(epoch[field], kind):
                    raise ReportError(f"{path}: runs[{i}].history[{j}].{field} must be a {kind}, got "
                                      f"{_brief(epoch[field])}")
        matrix, classes = run["confusion_matrix"], len(run["per_class"])
        if len(matrix) != classes or not all(isinstance(row, list) and len(row) == classes
                                             and all(_fits(v, _INT) for v in row) for row in matrix):
            raise ReportError(f"{path}: runs[{i}].confusion_matrix must be {classes} rows of {classes} integers "
                              "(one per class)")


def _brief(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
