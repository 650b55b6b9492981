"""What a run records of its checkout and process: never an exception, whatever git or /proc do."""

from __future__ import annotations

import subprocess

from harness import environment


def test_git_commit_names_head_and_says_when_the_tree_could_not_be_checked(monkeypatch):
    """A git status that times out (a fresh clone's first, on a busy machine) or fails leaves HEAD marked
    unchecked; a rev-parse that cannot run leaves no commit; neither raises."""
    monkeypatch.delenv("BENCH_GIT_COMMIT", raising=False)
    real = subprocess.run

    def slow_status(args, **kwargs):
        if args[:2] == ["git", "status"]:
            raise subprocess.TimeoutExpired(args, kwargs.get("timeout"))
        return real(args, **kwargs)

    head = real(["git", "rev-parse", "HEAD"], cwd=environment.REPO_ROOT, capture_output=True, text=True).stdout.strip()
    monkeypatch.setattr(environment.subprocess, "run", slow_status)
    assert environment.git_commit() == head + "+unchecked"

    def no_git(args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(environment.subprocess, "run", no_git)
    assert environment.git_commit() is None
    monkeypatch.setenv("BENCH_GIT_COMMIT", "abc123")
    assert environment.git_commit() == "abc123"


def test_seconds_since_launch_is_this_process_age():
    age = environment.seconds_since_launch()
    assert age is not None and 0 <= age < 24 * 3600
