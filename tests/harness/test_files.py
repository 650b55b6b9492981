"""Report files: written atomically with ordinary permissions; history lines; results checked before rendering."""

from __future__ import annotations

import json
import os
import stat

import pytest
from report_records import sample_run

from harness.record import ReportError, check_results
from harness.report.files import HistoryLog
from mnist_common.files import atomic_write


@pytest.fixture
def umask():
    def set_umask(value):
        return os.umask(value)

    old = os.umask(0o022)
    yield set_umask
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_new_files_get_the_mode_open_would_give(tmp_path, umask):
    atomic_write(tmp_path / "a.md", "text")
    atomic_write(tmp_path / "b.png", b"\x89PNG")
    assert _mode(tmp_path / "a.md") == 0o644 and _mode(tmp_path / "b.png") == 0o644
    umask(0o077)
    atomic_write(tmp_path / "private.md", "text")
    assert _mode(tmp_path / "private.md") == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_an_existing_file_keeps_its_mode(tmp_path, umask):
    path = tmp_path / "README.md"
    path.write_text("old")
    path.chmod(0o664)
    atomic_write(path, "new")
    assert path.read_text() == "new" and _mode(path) == 0o664


def test_history_log_appends_one_json_line_per_record(tmp_path):
    log = HistoryLog(tmp_path / "history.jsonl")
    log.write({"epoch": 1, "train_loss": 0.5})
    log.write({"epoch": 2, "train_loss": 0.25})
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    HistoryLog(tmp_path / "history.jsonl")  # a new log starts empty
    assert (tmp_path / "history.jsonl").read_text() == ""


def test_results_missing_what_reports_read_are_named(tmp_path):
    good = {"command": "c", "runs": [sample_run("jax", "cnn", 0, 0.99, 1000.0)],
            "environment": {"host": {"cpu": "x", "cpu_count": 2, "python": "3.11"},
                            "data": {"source": "idx", "location": "d", "train": 1, "test": 1}}}
    check_results(good, tmp_path)
    broken = json.loads(json.dumps(good))
    del broken["runs"][0]["images_per_s"]
    with pytest.raises(ReportError, match=r"runs\[0\] has no 'images_per_s'"):
        check_results(broken, tmp_path)
    broken = json.loads(json.dumps(good))
    del broken["runs"][0]["history"][1]["epoch_time_s"]
    with pytest.raises(ReportError, match=r"runs\[0\]\.history\[1\] has no 'epoch_time_s'"):
        check_results(broken, tmp_path)
    with pytest.raises(ReportError, match="environment.host has no 'cpu'"):
        check_results(dict(good, environment={"host": {}, "data": {}}), tmp_path)


def test_history_holds_each_epoch_of_a_run_once_whatever_was_resumed(tmp_path):
    from harness.report.files import HistoryLog

    def line(seed, epoch):
        return {"framework": "jax", "model": "cnn", "variant": None, "mode": "tuned", "seed": seed, "epoch": epoch}

    log = HistoryLog(tmp_path / "history.jsonl")
    for record in (line(0, 1), line(0, 2), line(1, 1), line(1, 2), line(1, 3)):
        log.write(record)
    with open(tmp_path / "history.jsonl", "a") as f:
        f.write('{"framework": "jax", "mod')  # a line cut short by a kill
    again = HistoryLog(tmp_path / "history.jsonl", append=True)  # seed 1 resumed from its epoch-1 checkpoint
    again.write(line(1, 2))
    again.write(line(1, 3))
    seen = [(r["seed"], r["epoch"]) for r in map(json.loads, (tmp_path / "history.jsonl").read_text().splitlines())]
    assert seen == [(0, 1), (0, 2), (1, 1), (1, 2), (1, 3)]
