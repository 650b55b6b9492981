"""Output folders: a new one per invocation, never shared; results/latest followed, never looped; resume checks."""

from __future__ import annotations

import pytest

from harness import outputs


def test_without_out_each_invocation_gets_its_own_new_folder(tmp_path):
    chosen = outputs.choose(None, resume=False, overwrite=False, root=tmp_path)
    assert not chosen.exists()  # nothing is created before the settings are known good
    first = outputs.create(chosen, fresh=True)
    second = outputs.create(outputs.choose(None, resume=False, overwrite=False, root=tmp_path), fresh=True)
    if second.name.startswith(first.name):  # the same second: the next free suffix
        assert second.name == f"{first.name}-2"
    assert first != second and first.is_dir() and second.is_dir()
    outputs.point_latest(second, root=tmp_path)
    assert (tmp_path / "latest").resolve() == second.resolve()


def test_out_naming_the_latest_link_means_the_folder_it_points_at(tmp_path):
    folder = outputs.create(outputs.choose(None, resume=False, overwrite=False, root=tmp_path), fresh=True)
    outputs.point_latest(folder, root=tmp_path)
    (folder / "results.json").write_text("{}")
    chosen = outputs.choose(str(tmp_path / "latest"), resume=True, overwrite=False, root=tmp_path)
    assert chosen == folder.resolve()
    outputs.point_latest(tmp_path / "latest", root=tmp_path)  # never a link to itself
    assert (tmp_path / "latest").resolve() == folder.resolve()


def test_resume_looks_for_checkpoints_where_they_were_kept(tmp_path):
    out, kept = tmp_path / "out", tmp_path / "kept"
    out.mkdir()
    with pytest.raises(outputs.OutputError, match="no checkpoints to resume"):
        outputs.choose(str(out), resume=True, overwrite=False, checkpoints=str(kept))
    (kept / "cnn-jax-seed0").mkdir(parents=True)
    assert outputs.choose(str(out), resume=True, overwrite=False, checkpoints=str(kept)) == out


def test_a_mistake_leaves_no_empty_default_folder(tmp_path, monkeypatch, capsys):
    from benchmarks.run import main

    monkeypatch.chdir(tmp_path)
    assert main(["--preset", "smoke", "--batch-size", "100000"]) == 2  # found after the folder is chosen
    assert "larger than the" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


@pytest.mark.e2e  # another process holds the folder
def test_a_folder_has_one_writer_and_a_dead_holder_does_not_block(tmp_path):
    import subprocess
    import sys

    from cli_helpers import REPO

    hold = (f"import time; from pathlib import Path; from harness.outputs import FolderLock; "
            f"FolderLock(Path({str(tmp_path)!r})).acquire(); print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", hold], cwd=REPO, env={"PYTHONPATH": str(REPO)},
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    for attempt in (outputs.FolderLock(tmp_path, "--out").check, outputs.FolderLock(tmp_path, "--out").acquire):
        with pytest.raises(outputs.OutputError, match=rf"--out .* is in use by another run \(pid {holder.pid}: python "):
            attempt()
    holder.kill()
    holder.wait()
    lock = outputs.FolderLock(tmp_path).acquire()  # the holder died: taken over
    lock.release()
    assert not (tmp_path / outputs.LOCK_FILE).exists()  # let go: nothing left behind
    # a holder killed with SIGKILL leaves its file; the kernel has dropped its lock, so the next run takes over
    code = (f"import os, signal; from pathlib import Path; from harness.outputs import FolderLock; "
            f"FolderLock(Path({str(tmp_path)!r})).acquire(); os.kill(os.getpid(), signal.SIGKILL)")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env={"PYTHONPATH": str(REPO)}, check=False)
    assert (tmp_path / outputs.LOCK_FILE).exists()
    outputs.FolderLock(tmp_path).acquire().release()


def test_overwrite_clears_what_a_run_wrote_and_nothing_else(tmp_path):
    for name in ("results.json", "history.jsonl", "report.md", "notes.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "models" / "cnn-jax-seed1").mkdir(parents=True)
    (tmp_path / "checkpoints").mkdir()
    removed = outputs.clear(tmp_path)
    assert set(removed) == {"results.json", "history.jsonl", "report.md", "models/", "checkpoints/"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # the user's own file stays


def test_a_held_folder_with_any_character_in_its_path_is_known_to_the_workers(tmp_path, monkeypatch):
    import json

    folder = tmp_path / "a:b,c"
    folder.mkdir()
    monkeypatch.setenv(outputs.HELD_FOR_WORKERS, json.dumps([str(folder.resolve())]))
    lock = outputs.FolderLock(folder).acquire()  # held for this process by its launcher: nothing taken
    assert lock.fd is None and not (folder / outputs.LOCK_FILE).exists()


@pytest.mark.e2e  # another process holds the folder
def test_a_report_into_a_folder_a_live_run_holds_is_refused(tmp_path):
    import json
    import subprocess
    import sys

    from cli_helpers import REPO, assert_one_line_error, run_cli
    from report_records import sample_results

    (tmp_path / "results.json").write_text(json.dumps(sample_results()))
    hold = (f"import time; from pathlib import Path; from harness.outputs import FolderLock; "
            f"FolderLock(Path({str(tmp_path)!r})).acquire(); print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", hold], cwd=REPO, env={"PYTHONPATH": str(REPO)},
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert_one_line_error(run_cli(str(tmp_path), "--no-plots", module="benchmarks.report"),
                              f"the report folder {tmp_path} is in use by another run (pid {holder.pid}")
    finally:
        holder.kill()
        holder.wait()
