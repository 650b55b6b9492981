"""Runs side by side: two report folders (before/after, CPU/GPU), and collections of report folders
(one per command, as a time-boxed GPU session makes them) with their time-to-accuracy table."""

from __future__ import annotations

from pathlib import Path

from harness.environment import busy_machine
from harness.record import read_results
from harness.report.markdown import table
from harness.stats import format_mean_std, group_key, summary_by_group

#: Test accuracies for the time-to-accuracy table of a collection.
ACCURACY_MARKS = (0.99, 0.994, 0.995)


#: The settings of a recipe: two groups of runs that differ in any of them are not timed like for like.
RECIPE = ("variant", "weights", "epochs", "batch_size", "train_size", "val_size", "test_size", "optimizer", "lr",
          "schedule", "warmup_steps", "weight_decay", "label_smoothing", "augment_shift", "precision", "image_size",
          "freeze_features", "processes", "devices", "steps_per_call")
#: What tells two hosts apart in a results file's environment.
HOST = ("cpu", "cpu_count", "cpu_isa", "isa_caps")


def caveats(a: dict, b: dict) -> tuple[list[str], dict[tuple, list[str]]]:
    """Why A and B are not like for like: (lines about the whole comparison: hosts and library versions that
    differ; ``{(model, framework, mode): reasons}`` for groups whose recipes differ, or that hold a resumed run or
    one timed on a busy machine, whose speed ratio is therefore not comparable)."""
    lines = []
    host_a, host_b = a["environment"]["host"], b["environment"]["host"]
    differ = [f"{k} {host_a.get(k)!r} in A, {host_b.get(k)!r} in B" for k in HOST if host_a.get(k) != host_b.get(k)]
    if differ:
        lines.append(f"different hosts ({'; '.join(differ)}): every speed ratio compares the machines too")
    fw_a, fw_b = a["environment"].get("frameworks", {}), b["environment"].get("frameworks", {})
    for fw in [f for f in fw_a if f in fw_b]:
        va, vb = fw_a[fw].get("versions", {}), fw_b[fw].get("versions", {})
        changed = [f"{k} {va.get(k)} in A, {vb.get(k)} in B" for k in dict.fromkeys([*va, *vb])
                   if va.get(k) != vb.get(k)]
        if changed:
            lines.append(f"different {fw} libraries ({'; '.join(changed)}): its ratios compare the versions too")
    groups_a, groups_b = _groups(a["runs"]), _groups(b["runs"])
    for model, framework in dict.fromkeys(k[:2] for k in [*groups_a, *groups_b]):
        ma, mb = ([k[2] for k in g if k[:2] == (model, framework)] for g in (groups_a, groups_b))
        if ma and mb and set(ma) != set(mb):
            lines.append(f"{model} ({framework}) ran in other modes: {', '.join(ma)} in A, {', '.join(mb)} in B; "
                         "only a mode both ran is set side by side")
    reasons: dict[tuple, list[str]] = {}
    for key in [k for k in groups_a if k in groups_b]:
        ra, rb = groups_a[key], groups_b[key]
        why = []
        for field in RECIPE:
            va, vb = _values(ra, field), _values(rb, field)
            if va != vb:
                why.append(f"{field} {va} in A, {vb} in B")
        for side, runs in (("A", ra), ("B", rb)):
            resumed = [r.get("run") or f"seed {r.get('seed')}" for r in runs if r.get("resumed_from")]
            if resumed:
                why.append(f"resumed in {side} ({', '.join(map(str, resumed))}): its time mixes two sessions")
            busy = [f"{r.get('run') or 'seed ' + str(r.get('seed'))}: {b}" for r in runs if (b := busy_machine(r))]
            if busy:
                why.append(f"a busy machine in {side} ({'; '.join(busy)})")
        if why:
            reasons[key] = why
    return lines, reasons


def _groups(runs: list[dict]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    return groups


def _values(runs: list[dict], field: str) -> str:
    """The values ``runs`` hold for ``field``, as one text (one value, or several joined by slashes)."""
    values = list(dict.fromkeys(_shown(r.get(field)) for r in runs))
    return "/".join(values)


def _shown(value) -> str:
    return "-" if value is None else str(value).split(" (seed")[0]  # "random init (seed 0)": the kind, not the seed


def compare(a: dict, b: dict, name_a: str, name_b: str) -> str:
    """Two runs side by side, per model, framework and mode: accuracy, training time, images/s and B over A; above
    the table, what makes them not like for like (:func:`caveats`), and each ratio that is not comparable says so."""
    sa = {(g["model"], g["framework"], g["mode"]): g for g in summary_by_group(a["runs"])}
    sb = {(g["model"], g["framework"], g["mode"]): g for g in summary_by_group(b["runs"])}
    header = ["model", "framework", "mode", f"test acc (%) {name_a}", f"test acc (%) {name_b}",
              f"training time (s) {name_a}", f"training time (s) {name_b}", f"images/s {name_a}",
              f"images/s {name_b}", "speed B/A"]
    general, reasons = caveats(a, b)
    rows = []
    for key in [k for k in sa if k in sb]:
        ma, mb = sa[key]["metrics"], sb[key]["metrics"]
        ia, ib = ma["images_per_s"]["mean"], mb["images_per_s"]["mean"]
        rows.append([
            *key, format_mean_std(ma["test_accuracy"], "{:.2f}", 100), format_mean_std(mb["test_accuracy"], "{:.2f}", 100),
            format_mean_std(ma["train_time_s"], "{:.1f}"), format_mean_std(mb["train_time_s"], "{:.1f}"),
            format_mean_std(ma["images_per_s"], "{:.0f}"), format_mean_std(mb["images_per_s"], "{:.0f}"),
            (f"{ib / ia:.2f}x" + (" (not comparable)" if key in reasons else "")) if ia and ib else "-",
        ])
    only = [f"{m} ({fw}, {mode})" for m, fw, mode in list(sa.keys() - sb.keys()) + list(sb.keys() - sa.keys())]

    def devices(r):
        return ", ".join(sorted({run.get("device", "?") for run in r["runs"]}))

    out = [f"# {name_a} (A) against {name_b} (B)", "",
           f"- A: `{a['command']}` on {devices(a)}, commit {a['environment']['host'].get('git_commit')}",
           f"- B: `{b['command']}` on {devices(b)}, commit {b['environment']['host'].get('git_commit')}", ""]
    if general or reasons:
        out += ["Not like for like:", ""]
        out += [f"- {line}" for line in general]
        out += [f"- {model} ({framework}, {mode}): {'; '.join(why)}: its speed ratio is not comparable"
                for (model, framework, mode), why in reasons.items()]
        out += [""]
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
