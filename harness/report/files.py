"""Reading a report folder's ``results.json`` and writing every report file, each atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness.record import RunRecord
from harness.report.plots import write_plots
from harness.report.summary import ratio_lines, study_report
from harness.report.tables import markdown_report, results_csv
from mnist_common.files import atomic_write


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


def render(out_dir: Path, results: dict, *, plots: bool = True) -> list[str]:
    """Every report file but ``results.json``, from ``results`` (its runs completed as ``RunRecord`` reads them);
    returns the file names written."""
    results = results | {"runs": [RunRecord.from_json(run).to_json() for run in results["runs"]]}
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
