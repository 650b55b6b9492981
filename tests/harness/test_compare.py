"""Comparing two report folders says when they are not like for like; runs record how busy the machine was."""

from __future__ import annotations

import subprocess
import sys
import time

from report_records import sample_results

from harness.environment import BUSY_SHARE, MachineLoad, _live_children_cpu_s, busy_machine
from harness.report.compare import caveats, compare


def test_two_like_folders_compare_without_caveats():
    a, b = sample_results(), sample_results()
    assert caveats(a, b) == ([], {})
    text = compare(a, b, "before", "after")
    assert "Not like for like" not in text and "not comparable" not in text and "1.00x" in text


def test_another_host_and_other_versions_are_stated_above_the_ratios():
    a, b = sample_results(), sample_results()
    b["environment"]["host"] |= {"cpu": "Other CPU", "cpu_count": 16}
    b["environment"]["frameworks"]["jax"]["versions"]["jax"] = "0.11.0"
    text = compare(a, b, "A", "B")
    above = text.split("| model")[0]
    assert "different hosts (cpu 'Test CPU' in A, 'Other CPU' in B; cpu_count 2 in A, 16 in B)" in above
    assert "different jax libraries (jax 0.10.2 in A, 0.11.0 in B)" in above


def test_a_recipe_a_resumed_run_or_a_busy_machine_make_that_ratio_not_comparable():
    a, b = sample_results(), sample_results()
    for run in b["runs"]:
        if run["model"] == "cnn" and run["framework"] == "jax":
            run["epochs"] = 6
    b["runs"][1]["resumed_from"] = {"epoch": 1, "step": 0}  # the PyTorch CNN, seed 0
    b["runs"][-1] |= {"other_cpu_share": BUSY_SHARE + 0.3, "load_average": [0.1, 2.5]}  # the ViT
    general, reasons = caveats(a, b)
    assert general == []
    assert reasons[("cnn", "jax", "tuned")] == ["epochs 2 in A, 6 in B"]
    assert "resumed in B" in reasons[("cnn", "torch", "eager")][0]
    assert "a busy machine in B" in reasons[("vit tiny/7", "torch", "eager")][0]
    text = compare(a, b, "A", "B")
    assert text.count("(not comparable)") == 3
    assert text.index("Not like for like") < text.index("| model")


def test_the_machine_load_counts_other_processes_not_this_one():
    load = MachineLoad()
    t = time.perf_counter()
    while time.perf_counter() - t < 0.3:  # this process busy: not "other processes"
        sum(range(1000))
    seen = load.end()
    assert seen["other_cpu_share"] is not None and 0 <= seen["other_cpu_share"] <= 1
    assert seen["load_average"] is not None and len(seen["load_average"]) == 2


BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass"


def test_a_live_childs_finished_children_are_this_runs_own_time():
    """A compile worker's processes (a grandchild that has ended, reaped by its live parent) are counted as this
    run's CPU time, not as another process's."""
    parent = f"import subprocess, sys, time\nsubprocess.run([sys.executable, '-c', {BURN!r}])\nprint(1, flush=True)\n" \
             "time.sleep(60)"
    before = _live_children_cpu_s()
    with subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE) as child:
        try:
            child.stdout.readline()  # the grandchild has burned its 0.5 CPU seconds and ended
            assert _live_children_cpu_s() - before >= 0.45
        finally:
            child.kill()


def test_sibling_workers_are_not_a_busy_machine():
    assert busy_machine({"other_cpu_share": 0.05}) is None
    assert "other processes took 60%" in busy_machine({"other_cpu_share": 0.6, "load_average": [1.0, 2.0]})
    assert busy_machine({"other_cpu_share": 0.6, "processes": 2}) is None  # the other worker took its half
    assert busy_machine({"other_cpu_share": 0.9, "processes": 2}) is not None
    assert busy_machine({}) is None  # an older record


def test_other_modes_are_said_not_set_side_by_side():
    a, b = sample_results(), sample_results()
    for run in b["runs"]:
        if run["model"] == "cnn" and run["framework"] == "jax":
            run["mode"] = "stock"
    general, _ = caveats(a, b)
    assert general == ["cnn (jax) ran in other modes: tuned in A, stock in B; only a mode both ran is set side by "
                       "side"]
    assert "In one run only: cnn (jax, stock), cnn (jax, tuned)." in compare(a, b, "A", "B")
