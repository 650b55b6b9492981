"""Reading a report folder's ``results.json`` and writing every report file, each atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from benchmarks.report.summary import ratio_lines, study_report
from benchmarks.report.tables import markdown_report, results_csv


class ReportError(Exception):
    """A report that cannot be made (no results.json, a bad one, no markers): one line, exit 2."""


def atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_results(folder: Path) -> dict:
    """``folder/results.json``, checked to be a runner's results file."""
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
