"""Where a run's files go, so that no finished run's files are ever replaced by surprise.

Without ``--out`` every invocation gets a new folder, ``results/<date>-<time>``,
and ``results/latest`` points at the newest. An ``--out`` that already holds
results is refused unless ``--overwrite`` (replace them) or ``--resume``
(continue that run) says otherwise. Inside it: ``checkpoints/<run>/`` (unless
``--checkpoint-dir``) and ``models/<run>/``, one ``<run>`` per model, framework,
mode and seed.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

DEFAULT_ROOT = Path("results")
LATEST = "latest"


class OutputError(Exception):
    """An output folder that cannot be used as asked: one line, exit 2."""


def choose(out: str | None, *, resume: bool, overwrite: bool, checkpoints: str | None = None,
           root: Path = DEFAULT_ROOT) -> Path:
    """The folder this invocation writes to, checked but not created (:func:`create` does that once the
    run's settings are known good, so a mistake leaves no empty folder behind)."""
    if out is None:
        if resume:
            latest = root / LATEST
            if not latest.exists():
                raise OutputError(f"--resume: nothing to resume ({latest} does not exist); give --out DIR")
            return latest.resolve()
        return root / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    if not out.strip():
        raise OutputError("--out must name a folder, got an empty path")
    folder = Path(out).resolve() if Path(out).is_symlink() else Path(out)  # results/latest: the folder it names
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"--out {folder} exists and is not a folder")
    kept = Path(checkpoints) if checkpoints else folder / "checkpoints"
    if resume and not ((folder / "results.json").is_file() or kept.is_dir()):
        raise OutputError(f"--resume: {folder} holds no results.json and {kept} no checkpoints to resume")
    if (folder / "results.json").is_file() and not (resume or overwrite):
        raise OutputError(f"--out {folder} already holds results (results.json): add --overwrite to replace them "
                          "or --resume to continue that run")
    return folder


def create(folder: Path, *, fresh: bool) -> Path:
    """Create ``folder`` (``fresh``: a new default folder, given the next free ``-2``, ``-3`` ... suffix if
    another invocation took its name, so that two never share one) and return it."""
    try:
        if not fresh:
            folder.mkdir(parents=True, exist_ok=True)
            return folder
        for n in range(1, 1000):
            candidate = folder if n == 1 else folder.with_name(f"{folder.name}-{n}")
            try:
                candidate.mkdir(parents=True)
            except FileExistsError:
                continue
            return candidate
    except OSError as err:
        raise OutputError(f"--out {folder}: cannot create folder ({err.strerror})") from None
    raise OutputError(f"cannot find a free folder name next to {folder}; give --out DIR")


def point_latest(folder: Path, root: Path = DEFAULT_ROOT) -> None:
    """Make ``root/latest`` point at ``folder`` (when ``folder`` is in ``root``), replacing the old link at once."""
    if folder.is_symlink() or folder.parent.resolve() != root.resolve():
        return
    link, tmp = root / LATEST, root / f".{LATEST}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(folder.name)
    os.replace(tmp, link)


def previous_results(folder: Path) -> dict | None:
    """The results a resumed run already has, if any (None when there is no readable results.json)."""
    path = folder / "results.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        raise OutputError(f"--resume: {path} is not readable JSON") from None


def run_name(model: str, framework: str, mode: str, seed: int, *, with_mode: bool) -> str:
    """``cnn-jax-seed0``, or with several modes of a framework ``cnn-jax-stock-bf16-seed0``."""
    slug = "-" + mode.replace(", ", "-").replace(" ", "-") if with_mode else ""
    return f"{model}-{framework}{slug}-seed{seed}"
