"""Scaling over processes: each framework's images/s at every process count measured, against linear.

The folders of a scaling study hold one ``benchmarks.run`` each, the same
command at a different ``--processes`` (or CPU cores: ``taskset``). Linear is
measured from the run with the fewest cores in all: ``k`` times its cores
should give ``k`` times its images/s.
"""

from __future__ import annotations

from harness.report.markdown import table
from harness.stats import model_label


def _setting(results: dict) -> tuple[int, int | None]:
    """(processes, CPU cores they ran on in all): processes that share their cores count them once."""
    host = results["environment"]["host"]
    processes, each = host.get("processes", 1), host.get("cpu_cores_per_process")
    if each is None:
        return processes, None
    return processes, min(processes * each, host.get("cpu_count") or processes * each)


def scaling_summary(named: list[tuple[str, dict]]) -> str:
    """The scaling table of report folders ``(name, results)``, with the commands that made them."""
    groups: dict[tuple, list] = {}
    for name, results in named:
        processes, cores = _setting(results)
        for run in results["runs"]:
            if run.get("images_per_s"):
                key = (model_label(run), run["framework"], run["mode"])
                groups.setdefault(key, []).append((name, processes, cores, run["images_per_s"], run["test_accuracy"]))
    rows = []
    for (model, framework, mode), entries in groups.items():
        by_setting: dict[tuple, list] = {}
        for name, processes, cores, ips, accuracy in entries:  # several seeds: their mean
            by_setting.setdefault((name, processes, cores), []).append((ips, accuracy))
        points = sorted(((p, c or 0, name, *(sum(x) / len(v) for x in zip(*v))) for (name, p, c), v in
                         by_setting.items()), key=lambda t: (t[1], t[0]))
        base_processes, base_cores, _, base, _ = points[0]
        for processes, cores, name, ips, accuracy in points:
            speedup = ips / base
            hardware = cores / base_cores if cores and base_cores else processes / base_processes
            rows.append([model, framework, mode, name, str(processes), str(cores or "-"), f"{ips:.0f}",
                         f"{speedup:.2f}x", f"{speedup / hardware:.0%}", f"{accuracy:.2%}".rstrip("%")])
    header = ["model", "framework", "mode", "setting", "processes", "CPU cores", "images/s", "speedup",
              "efficiency vs linear", "test acc (%)"]
    commands = "\n".join(f"- {name}: `{results['command']}`" for name, results in named)
    return (table(header, rows) + "\n\nLinear: images/s in proportion to the CPU cores (or the processes, where "
            "the cores are not known), from the first row of each group. Commands:\n\n" + commands + "\n")
