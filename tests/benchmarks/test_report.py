"""Reports from a results.json fixture: statistics, tables, CSV, plots, comparison, README section."""

from __future__ import annotations

import copy
import csv
import io
import json
import math

import pytest
from cli_helpers import assert_one_line_error, run_cli
from report_records import sample_results

from harness.report import blocks, compare, files, summary, tables
from harness.stats import format_ci, format_mean_std, summarize, summary_by_group

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def results():
    return sample_results()


def test_summarize_matches_hand_arithmetic():
    s = summarize([0.9934, 0.9931, 0.9935])
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.99333333333)
    std = math.sqrt(((0.9934 - s["mean"]) ** 2 + (0.9931 - s["mean"]) ** 2 + (0.9935 - s["mean"]) ** 2) / 2)
    assert s["std"] == pytest.approx(std)
    half = 4.302652729911275 * std / math.sqrt(3)  # t(0.975, 2)
    assert s["ci95"] == pytest.approx([s["mean"] - half, s["mean"] + half])


def test_summarize_edge_cases():
    assert summarize([0.5]) == {"n": 1, "mean": 0.5, "std": None, "ci95": None, "values": [0.5]}
    assert summarize([None, float("nan")])["mean"] is None
    assert summarize([1.0, 1.0, 1.0])["ci95"] == [1.0, 1.0]
    two = summarize([0.9, 0.95], bounds=(0.0, 1.0))  # t(0.975, 1) = 12.7: no interval, and the table says why
    assert two["ci95"] is None and format_ci(two) == "n < 3"
    wide = summarize([0.2, 0.9, 0.99], bounds=(0.0, 1.0))  # clipped to what an accuracy can be
    assert wide["ci95"][0] == 0.0 and wide["ci95"][1] == 1.0
    assert format_mean_std(summarize([0.99, 0.98]), "{:.2f}", 100) == "98.50 ± 0.71"
    assert format_mean_std(summarize([]), "{:.2f}") == "-"
    assert format_ci(summarize([1.0])) == "-"


def test_groups_pool_seeds_per_model_and_framework(results):
    groups = summary_by_group(results["runs"])
    assert [(g["model"], g["framework"], g["seeds"]) for g in groups] == [
        ("cnn", "jax", [0, 1, 2]), ("cnn", "torch", [0, 1, 2]), ("vit tiny/7", "torch", [0])]
    assert groups[0]["weights"] == ["random init"]
    assert groups[1]["metrics"]["test_accuracy"]["mean"] == pytest.approx((0.9924 + 0.9919 + 0.9926) / 3)


def test_csv_has_one_row_per_run_with_the_columns(results):
    rows = list(csv.DictReader(io.StringIO(tables.results_csv(results["runs"]))))
    assert len(rows) == 7 and list(rows[0]) == list(tables.CSV_COLUMNS)
    assert rows[0]["framework"] == "jax" and float(rows[0]["test_accuracy"]) == 0.9934
    assert rows[-1]["variant"] == "tiny/7" and rows[0]["variant"] == "" and rows[0]["image_size"] == ""


def test_summary_table_rows(results):
    lines = summary.summary_table(results["runs"]).splitlines()
    assert lines[0].split("|")[1].strip() == "model" and "test acc 95% CI" in lines[0]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    cnn_jax = dict(zip(header, (c.strip() for c in lines[2].strip("|").split("|"))))
    assert [cnn_jax[k] for k in ("model", "framework", "mode", "devices", "weights", "seeds")] == [
        "cnn", "jax", "tuned", "1", "random init", "0,1,2"]  # a record from before the modes: JAX ran tuned
    assert cnn_jax["test acc (%)"] == "99.33 ± 0.02"
    vit = dict(zip(header, (c.strip() for c in lines[4].strip("|").split("|"))))
    assert vit["test acc (%)"] == "97.80" and vit["mode"] == "eager"  # one seed: no spread


def test_write_results_makes_every_file_and_valid_pngs(tmp_path, results):
    files.write_results(tmp_path, results)
    for name in ("results.json", "results.md", "results.csv", "report.md", *report_plots()):
        assert (tmp_path / name).is_file(), name
    for name in report_plots():
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, name
    md = (tmp_path / "report.md").read_text()
    assert "## Summary over seeds" in md
    assert "cnn, each at its best: JAX tuned 6100 vs PyTorch eager 5000 images/s, 1.22x (1 device each" in md
    for name in report_plots():
        assert f"]({name})" in md
    assert "git commit: abc123" in md and "2 threads" in md


def report_plots():
    from harness.report.plots import PLOTS

    return list(PLOTS)


def test_report_cli_rerenders_from_results_json(tmp_path, results):
    (tmp_path / "results.json").write_text(json.dumps(results))
    proc = run_cli(str(tmp_path), module="benchmarks.report")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "report.md").is_file() and (tmp_path / "throughput.png").is_file()


def test_report_cli_compares_two_runs(tmp_path, results):
    a, b = tmp_path / "cpu", tmp_path / "gpu"
    a.mkdir(), b.mkdir()
    faster = copy.deepcopy(results)
    for run in faster["runs"]:
        run["images_per_s"] *= 10
        run["device"] = "cuda: Test GPU"
    (a / "results.json").write_text(json.dumps(results))
    (b / "results.json").write_text(json.dumps(faster))
    proc = run_cli(str(a), str(b), "--out", str(tmp_path / "cmp.md"), module="benchmarks.report")
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "cmp.md").read_text()
    assert text.strip() in proc.stdout
    row = next(line for line in text.splitlines() if line.startswith("| cnn ") and "| jax " in line)
    assert row.rstrip(" |").endswith("10.00x")
    assert "cuda: Test GPU" in text


def test_readme_section_is_replaced_between_markers(tmp_path, results):
    (tmp_path / "results.json").write_text(json.dumps(results))
    readme = tmp_path / "README.md"
    begin, end = blocks.markers(tmp_path.as_posix())
    other = blocks.markers("docs/results/other")
    readme.write_text(f"# Title\n\nbefore\n\n{begin}\nold text\n{end}\n\n{other[0]}\nkeep\n{other[1]}\nafter\n")
    proc = run_cli(str(tmp_path), "--readme", str(readme), "--no-plots", module="benchmarks.report")
    assert proc.returncode == 0, proc.stderr
    text = readme.read_text()
    assert "old text" not in text and text.startswith("# Title\n\nbefore\n") and text.endswith("\nafter\n")
    assert "\nkeep\n" in text  # another folder's block is left alone
    assert "99.33 ± 0.02" in text and results["command"] in text
    # idempotent: a second render gives the same file
    run_cli(str(tmp_path), "--readme", str(readme), "--no-plots", module="benchmarks.report")
    assert readme.read_text() == text


@pytest.mark.parametrize("setup,needle", [
    ("missing", "no results.json"),
    ("garbage", "not readable JSON"),
    ("wrong", "not a benchmarks.run results file"),
])
def test_report_cli_errors_are_one_line(tmp_path, setup, needle):
    if setup == "garbage":
        (tmp_path / "results.json").write_text("{not json")
    elif setup == "wrong":
        (tmp_path / "results.json").write_text(json.dumps({"checks": []}))
    assert_one_line_error(run_cli(str(tmp_path), module="benchmarks.report"), needle)


def test_readme_without_markers_is_refused_and_left_alone(tmp_path, results):
    (tmp_path / "results.json").write_text(json.dumps(results))
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    assert_one_line_error(run_cli(str(tmp_path), "--readme", str(readme), "--no-plots", module="benchmarks.report"),
                          "no results markers")
    assert readme.read_text() == "# no markers\n"


def test_parity_summary_goes_into_the_readme(tmp_path):
    from parity.run import summary as parity_summary

    report = {"command": "python -m parity.run --model cnn", "device": "cpu", "tolerances": {},
              "checks": [{"model": "cnn", "check": "forward (torch init, mnist_batch)", "max_abs_diff": 1.2e-7,
                          "tolerance": 1e-5, "passed": True, "asserted": True, "detail": ""},
                         {"model": "cnn", "check": "forward (flax init, zeros)", "max_abs_diff": 3e-7,
                          "tolerance": 1e-5, "passed": True, "asserted": True, "detail": ""}],
              "timing": {"cnn": {"jax": {"compile_time_s": 0.8, "step_time_ms": 17.0},
                                 "torch": {"compile_time_s": 0.0, "step_time_ms": 19.0}, "jax_over_torch_speed": 1.12}},
              "training": {}}
    text = parity_summary(report)
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines() if line.startswith("|")]
    assert ["float32", "1e-05", "3e-07", "passed"] == rows[2][1:] and ["cnn", "0.80", "17.0", "19.0", "1.12x"] in rows
    folder = tmp_path / "parity"
    folder.mkdir()
    (folder / "summary.md").write_text(text)
    readme = tmp_path / "README.md"
    begin, end = blocks.markers(folder.as_posix())
    readme.write_text(f"x\n{begin}\n{end}\ny\n")
    proc = run_cli(str(folder), "--readme", str(readme), module="benchmarks.report")
    assert proc.returncode == 0, proc.stderr
    assert "1.12x" in readme.read_text() and readme.read_text().endswith("\ny\n")
    assert blocks.markers(folder.as_posix(), str(readme))[0] in readme.read_text()  # names the file it is in


def _collection(tmp_path, results):
    """Two report folders under one: a fast setting (lower accuracy) and a slow, accurate one."""
    fast, slow = copy.deepcopy(results), copy.deepcopy(results)
    for run in fast["runs"]:
        run["test_accuracy"] -= 0.003  # cnn: 99.04-99.05% / 98.89-98.96%
        run["train_time_s"] /= 10
    for name, res in (("fast", fast), ("slow", slow)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(res))
    return [("fast", fast), ("slow", slow)]


def test_time_to_accuracy_picks_the_quickest_setting_where_every_seed_reached_the_mark(tmp_path, results):
    named = _collection(tmp_path, results)
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:4])
            for line in compare.time_to_accuracy_table(named).splitlines()[2:]}
    assert ("cnn", "jax", "99.0%", "fast") in rows  # every JAX seed >= 99.0% in the fast folder
    assert ("cnn", "jax", "99.4%", "not reached (best: slow, tuned, mean 99.33%)") in rows
    assert ("cnn", "torch", "99.0%", "slow") in rows  # fast torch seeds are below 99.0%
    assert not any(r[:3] == ("cnn", "jax", "99.5%") for r in rows)  # one row for the first mark missed


def test_collection_rerenders_each_folder_and_writes_one_readme_block(tmp_path, results):
    _collection(tmp_path, results)
    readme = tmp_path / "README.md"
    begin, end = blocks.markers(tmp_path.as_posix())
    readme.write_text(f"# T\n\n{begin}\n{end}\n")
    proc = run_cli(str(tmp_path), "--readme", str(readme), "--no-plots", module="benchmarks.report")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "fast" / "report.md").is_file() and (tmp_path / "slow" / "results.csv").is_file()
    text = readme.read_text()
    assert text.count("**fast**") == 1 and text.count("**slow**") == 1 and "Time to accuracy" in text


def test_flop_counts_are_reported_for_cpu_runs_only(results):
    cpu = dict(results["runs"][0], train_flops_per_image=23.6e6, achieved_gflop_s=140.0)
    gpu = dict(cpu, device="gpu: Test GPU")
    assert tables.counted_flops(cpu) == 23.6e6 and tables.counted_flops(gpu) is None
    rows = list(csv.DictReader(io.StringIO(tables.results_csv([cpu, gpu]))))
    assert rows[0]["train_flops_per_image"] == "23600000.0" and rows[1]["train_flops_per_image"] == ""


def test_malloc_settings_are_shown_in_the_environment(results):
    host = dict(results["environment"]["host"], malloc={"M_MMAP_MAX": 0, "M_ARENA_MAX": 1})
    line = tables.environment_lines(dict(results["environment"], host=host))[1]
    assert line.endswith("; malloc: M_MMAP_MAX 0, M_ARENA_MAX 1")
    assert "malloc" not in tables.environment_lines(results["environment"])[1]  # older files: nothing claimed


def test_git_commit_prefers_the_commit_the_caller_names(monkeypatch):
    """A copy of the tree with a stale .git (a lent GPU machine) reports the commit it was sent as."""
    from harness.environment import git_commit

    monkeypatch.delenv("BENCH_GIT_COMMIT", raising=False)
    head = git_commit()
    monkeypatch.setenv("BENCH_GIT_COMMIT", "b917be2")
    assert git_commit() == "b917be2" and head != "b917be2"


def test_report_cli_on_a_results_file_missing_fields_is_one_line(tmp_path, results):
    del results["runs"][1]["test_accuracy"]
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert_one_line_error(run_cli(str(tmp_path), module="benchmarks.report"), "runs[1] has no 'test_accuracy'")


def test_readme_keeps_its_mode_after_a_generated_block(tmp_path, results):
    import stat

    (tmp_path / "results.json").write_text(json.dumps(results))
    readme = tmp_path / "README.md"
    begin, end = blocks.markers(tmp_path.as_posix())
    readme.write_text(f"{begin}\n{end}\n")
    readme.chmod(0o644)
    assert run_cli(str(tmp_path), "--readme", str(readme), "--no-plots", module="benchmarks.report").returncode == 0
    assert stat.S_IMODE(readme.stat().st_mode) == 0o644 and "99.33" in readme.read_text()


def test_warnings_and_device_counts_reach_the_reports(tmp_path, results):
    results["runs"][0]["warnings"] = ["test accuracy 9.80% is near chance (10%): the model did not learn"]
    files.write_results(tmp_path, results, plots=False)
    assert "## Warnings" in (tmp_path / "report.md").read_text()
    assert "**Warning:** test accuracy 9.80%" in (tmp_path / "results.md").read_text()
    assert "1 device each" in (tmp_path / "report.md").read_text()
    runs = [dict(results["runs"][0], devices=4), dict(results["runs"][1], devices=1)]
    assert "JAX on 4 devices, PyTorch on 1" in summary.speed_lines(runs)[0]
    assert summary.ratio_lines(summary.throughput_ratios(runs))[0].endswith("JAX on 4 devices, PyTorch on 1)")


def test_ratios_name_each_framework_at_its_best_in_float32_too_when_bfloat16_won():
    """Best against best may pair bfloat16 runs; the float32 pair is then shown beside it, and stock too."""
    from report_records import sample_run

    jax_stock = dict(sample_run("jax", "cnn", 0, 0.99, 1500.0), kernels="stock", precision="float32", mode="stock")
    jax_tuned = dict(sample_run("jax", "cnn", 0, 0.99, 3000.0), kernels="tuned", precision="float32", mode="tuned")
    eager = dict(sample_run("torch", "cnn", 0, 0.99, 2800.0), torch_compile="none", precision="float32",
                 mode="eager")
    eager_bf16 = dict(sample_run("torch", "cnn", 0, 0.99, 6000.0), torch_compile="none", precision="bfloat16",
                      mode="eager, bf16")
    ratios = {r["kind"]: r for r in summary.throughput_ratios([jax_stock, jax_tuned, eager, eager_bf16])}
    assert set(ratios) == {"best", "float32", "stock"}
    assert (ratios["best"]["jax_mode"], ratios["best"]["torch_mode"]) == ("tuned", "eager, bf16")
    assert ratios["float32"]["jax_over_torch"] == pytest.approx(3000 / 2800)
    assert ratios["stock"]["jax_over_torch"] == pytest.approx(1500 / 2800)
    lines = summary.speed_lines([jax_stock, jax_tuned, eager, eager_bf16])
    assert [line.split(":")[0] for line in lines] == ["cnn, each at its best", "cnn, each at its best in float32",
                                                      "cnn, out of the box"]
    assert "0.50x" in lines[0] and "1.07x" in lines[1] and "0.54x" in lines[2]


def test_scaling_table_measures_speedup_and_efficiency_against_the_fewest_cores(tmp_path, results):
    settings = {"1-core": (1, 1, 1000.0), "2-cores": (1, 2, 1600.0), "2-processes": (2, 2, 1200.0)}
    for name, (processes, cores_each, ips) in settings.items():
        r = copy.deepcopy(results)
        r["runs"] = [run for run in r["runs"] if run["model"] == "cnn" and run["framework"] == "jax"][:1]
        r["runs"][0] |= {"images_per_s": ips, "processes": processes, "mode": "tuned"}
        r["environment"]["host"] |= {"processes": processes, "cpu_cores_per_process": cores_each}
        (tmp_path / name).mkdir()
        files.write_results(tmp_path / name, r, plots=False)
    proc = run_cli(str(tmp_path), "--scaling", module="benchmarks.report")
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("|")[4].strip(): [c.strip() for c in line.split("|")[5:10]]
            for line in (tmp_path / "summary.md").read_text().splitlines() if "| cnn" in line}
    assert rows["1-core"] == ["1", "1", "1000", "1.00x", "100%"]
    assert rows["2-cores"] == ["1", "2", "1600", "1.60x", "80%"]
    assert rows["2-processes"] == ["2", "2", "1200", "1.20x", "60%"]  # two processes sharing 2 cores: 2 cores
    assert_one_line_error(run_cli(str(tmp_path / "1-core"), "--scaling", module="benchmarks.report"),
                          "needs two or more report folders")


@pytest.mark.parametrize("damage,needle", [
    (lambda r: r["runs"][0].update(test_accuracy="99%"), "runs[0].test_accuracy must be a number, got \"99%\""),
    (lambda r: r["runs"][1].update(history=None), "runs[1].history must be a list, got null"),
    (lambda r: r["runs"][2]["confusion_matrix"][3].pop(), "runs[2].confusion_matrix must be 10 rows of 10 integers"),
    (lambda r: r["runs"][0]["history"][1].update(epoch_time_s=None), "runs[0].history[1].epoch_time_s must be a number"),
    (lambda r: r.update(environment=[]), "environment is not an object"),
])
def test_a_damaged_results_file_is_one_line_and_nothing_is_rewritten(tmp_path, results, damage, needle):
    """Every run is checked before any report file is written: a report set is never left half rewritten."""
    files.write_results(tmp_path, results, plots=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    damage(results)
    (tmp_path / "results.json").write_text(json.dumps(results))
    before["results.json"] = (tmp_path / "results.json").read_bytes()
    assert_one_line_error(run_cli(str(tmp_path), "--no-plots", module="benchmarks.report"), needle)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_out_with_one_folder_writes_only_there(tmp_path, results):
    source, elsewhere = tmp_path / "source", tmp_path / "elsewhere"
    source.mkdir()
    (source / "results.json").write_text(json.dumps(results))
    proc = run_cli(str(source), "--out", str(elsewhere), "--no-plots", module="benchmarks.report")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in source.iterdir()) == ["results.json"]  # left as it was
    assert {"results.md", "report.md", "results.csv"} <= {p.name for p in elsewhere.iterdir()}


def test_a_folder_named_as_the_readme_is_named_as_a_folder(tmp_path, results):
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert_one_line_error(run_cli(str(tmp_path), "--readme", str(tmp_path), module="benchmarks.report"),
                          "a folder, not a file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # checked before anything is written
