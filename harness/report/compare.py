"""Runs side by side: two report folders (before/after, CPU/GPU), and collections of report folders
(one per command, as a time-boxed GPU session makes them) with their time-to-accuracy table."""

from __future__ import annotations

from pathlib import Path

from harness.record import read_results
from harness.report.markdown import table
from harness.stats import format_mean_std, summary_by_group

#: Test accuracies for the time-to-accuracy table of a collection.
ACCURACY_MARKS = (0.99, 0.994, 0.995)


def compare(a: dict, b: dict, name_a: str, name_b: str) -> str:
    """Two runs side by side, per model, framework and mode: accuracy, training time, images/s and B over A."""
    sa = {(g["model"], g["framework"], g["mode"]): g for g in summary_by_group(a["runs"])}
    sb = {(g["model"], g["framework"], g["mode"]): g for g in summary_by_group(b["runs"])}
    header = ["model", "framework", "mode", f"test acc (%) {name_a}", f"test acc (%) {name_b}",
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
    only = [f"{m} ({fw}, {mode})" for m, fw, mode in list(sa.keys() - sb.keys()) + list(sb.keys() - sa.keys())]

    def devices(r):
        return ", ".join(sorted({run.get("device", "?") for run in r["runs"]}))

    out = [f"# {name_a} (A) against {name_b} (B)", "",
           f"- A: `{a['command']}` on {devices(a)}, commit {a['environment']['host'].get('git_commit')}",
           f"- B: `{b['command']}` on {devices(b)}, commit {b['environment']['host'].get('git_commit')}", ""]
    out += [table(header, rows) if rows else "No model and framework ran in both.", ""]
    if only:
        out += [f"In one run only: {', '.join(sorted(only))}.", ""]
    return "\n".join(out)


def load_collection(folder: Path) -> list[tuple[str, dict]]:
    """(name, results) of each report folder directly under ``folder``, by name; [] if there are none."""
    if not folder.is_dir():
        return []
    return [(p.name, read_results(p)) for p in sorted(folder.iterdir()) if (p / "results.json").is_file()]


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
                    f" (best: {name}, {g['mode']}, mean {best:.2%})" if best is not None else ""), "-", "-", "-", "-",
                    "-"])
                break
            t, name, g = min(reached, key=lambda item: item[0])
            m = g["metrics"]
            rows.append([model, framework, f"{mark:.1%}", name, g["mode"], str(m["test_accuracy"]["n"]),
                         f"{min(m['test_accuracy']['values']):.2%}".rstrip("%"),
                         format_mean_std(m["train_time_s"], "{:.2f}"), format_mean_std(m["compile_time_s"], "{:.2f}")])
    header = ["model", "framework", "test accuracy", "quickest setting (folder)", "mode", "seeds",
              "lowest seed (%)", "training time (s)", "compile (s)"]
    return table(header, rows)
