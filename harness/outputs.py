"""Where a run's files go, so that no finished run's files are ever replaced by surprise.

Without ``--out`` every invocation gets a new folder, ``results/<date>-<time>``,
and ``results/latest`` points at the newest. An ``--out`` that already holds
results is refused unless ``--overwrite`` (replace them) or ``--resume``
(continue that run) says otherwise. Inside it: ``checkpoints/<run>/`` (unless
``--checkpoint-dir``) and ``models/<run>/``, one ``<run>`` per model, framework,
mode and seed.

One run writes to a folder at a time: :class:`FolderLock` holds ``.lock`` in it
(an ``flock``, which the kernel drops however the holder ends, so a killed
run never blocks the next), and names the holder to whoever is refused.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Self

from mnist_common.errors import UserError

DEFAULT_ROOT = Path("results")
LATEST = "latest"


class OutputError(UserError):
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
    FolderLock(folder, "--out").check()  # a live run's folder: say whose, before anything else
    if checkpoints and Path(checkpoints).is_dir():
        FolderLock(Path(checkpoints), "--checkpoint-dir").check()
    kept = Path(checkpoints) if checkpoints else folder / "checkpoints"
    if resume and not ((folder / "results.json").is_file() or kept.is_dir()):
        raise OutputError(f"--resume: {folder} holds no results.json and {kept} no checkpoints to resume")
    if (folder / "results.json").is_file() and not (resume or overwrite):
        held = runs_in(folder / "results.json")
        what = (f"already holds {held} finished run(s)" if held else
                "holds a command that finished no run yet (it was stopped, or failed)")
        raise OutputError(f"--out {folder} {what}: add --resume to continue it, or --overwrite to start again")
    return folder


def runs_in(path: Path) -> int:
    """How many finished runs a results.json holds (0 when it cannot say: missing, damaged, another shape)."""
    try:
        runs = json.loads(path.read_text()).get("runs")
    except (OSError, ValueError, AttributeError):
        return 0
    return len(runs) if isinstance(runs, list) else 0


def create(folder: Path, *, fresh: bool, what: str = "--out") -> Path:
    """Create ``folder`` (``fresh``: a new default folder, given the next free ``-2``, ``-3`` ... suffix if
    another invocation took its name, so that two never share one) and return it; ``what`` names it in errors."""
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
        raise OutputError(f"{what} {folder}: cannot create folder ({err.strerror})") from None
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
    """The results a resumed run already has, if any (None when there is no results.json); OutputError for a file
    that is not one (not JSON, or not an object whose ``runs`` is a list of runs with their names)."""
    path = folder / "results.json"
    try:
        results = json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        raise OutputError(f"--resume: {path} is not readable JSON") from None
    if results is None:
        return None
    runs = results.get("runs") if isinstance(results, dict) else None
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs) \
            or not isinstance(results.get("settings", {}), dict) \
            or not isinstance(results.get("environment", {}), dict):
        raise OutputError(f"--resume: {path} is not a results file of benchmarks.run (no list of runs); start again "
                          "with --overwrite")
    return results


def run_name(model: str, framework: str, mode: str, seed: int, *, with_mode: bool) -> str:
    """``cnn-jax-seed0``, or with several modes of a framework ``cnn-jax-stock-bf16-seed0``."""
    slug = "-" + mode.replace(", ", "-").replace(" ", "-") if with_mode else ""
    return f"{model}-{framework}{slug}-seed{seed}"


#: The lock file in a locked folder: removed when its holder lets go; one a killed run left is taken over.
LOCK_FILE = ".lock"
#: Seconds an acquire waits before it refuses: another process's look (``FolderLock.check``) holds it for an instant.
LOOK_S = 1.0
#: Set by the launcher of several worker processes: the folders whose locks it holds for them.
HELD_FOR_WORKERS = "BENCHMARKS_HELD_LOCKS"


class FolderLock:
    """The one-writer lock of a folder: ``acquire`` or an OutputError naming the run that holds it.

    ``what`` names the folder in messages (``--out``, ``--checkpoint-dir``). The lock is
    an ``flock`` on ``FOLDER/.lock``, released when :meth:`release` is called or the process
    ends in any way (SIGKILL included: the file it leaves is then taken over); the file records
    the holder's pid and command.
    A folder listed in ``$BENCHMARKS_HELD_LOCKS`` by this process's launcher is already
    held for it, and is not taken again.
    """

    def __init__(self, folder: Path, what: str = "--out"):
        self.folder, self.what, self.fd = Path(folder), what, None

    def _held_for_us(self) -> bool:
        """Held by this process already, or by the launcher that started it."""
        held = json.loads(os.environ.get(HELD_FOR_WORKERS) or "[]")  # (JSON: a path may hold any character)
        return str(self.folder.resolve()) in held or self.folder.resolve() in _HELD_HERE

    def check(self) -> None:
        """OutputError naming the holder when a live run holds the folder; takes nothing (a look, not a lock)."""
        path = self.folder / LOCK_FILE
        if self._held_for_us() or not path.is_file():
            return
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return  # (gone meanwhile: nobody holds it)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            raise OutputError(f"{self.what} {self.folder} is in use by another run ({_read_holder(fd)}): wait for it "
                              "to end, or choose another folder") from None
        finally:
            os.close(fd)

    def acquire(self) -> FolderLock:
        if self._held_for_us():
            return self
        path = self.folder / LOCK_FILE
        deadline = time.monotonic() + LOOK_S
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as err:
                raise OutputError(f"{self.what} {self.folder}: cannot create {LOCK_FILE} ({err.strerror})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_holder(fd)
                os.close(fd)
                if time.monotonic() < deadline:  # another process's look (check) holds it for an instant
                    time.sleep(0.05)
                    continue
                raise OutputError(f"{self.what} {self.folder} is in use by another run ({holder}): wait for it to "
                                  "end, or choose another folder") from None
            try:  # the file a holder removed as it let go is not the lock any more: take the new one
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        command = shlex.join(["python", *getattr(sys, "orig_argv", sys.argv)[1:]])  # as it was typed
        record = {"pid": os.getpid(), "command": command,
                  "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        self.fd, self.path = fd, path
        _HELD_HERE.add(self.folder.resolve())
        return self

    def release(self) -> None:
        """Let go: the lock file is removed while still held (so no stale file is left), then closed."""
        if self.fd is not None:
            Path(self.path).unlink(missing_ok=True)
            os.close(self.fd)  # (closing drops the flock)
            self.fd = None
            _HELD_HERE.discard(self.folder.resolve())

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


#: The folders this process holds (a look at one of them is no conflict).
_HELD_HERE: set[Path] = set()


def _read_holder(fd: int) -> str:
    """'pid N: COMMAND' of a lock file's holder, as far as it has written it."""
    try:
        record = json.loads(os.pread(fd, 65536, 0).decode() or "{}")
        return f"pid {record['pid']}: {record['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not yet said which"


#: What a run writes at the top of its folder (``--overwrite`` clears these, and only these).
RUN_FILES = ("results.json", "results.md", "results.csv", "report.md", "history.jsonl", "training_curves.png",
             "throughput.png", "accuracy_vs_time.png", "confusion_matrices.png")
RUN_FOLDERS = ("models", "checkpoints", "tensorboard")


def clear(folder: Path) -> list[str]:
    """Remove what an earlier run left in ``folder`` (its files and its models/, checkpoints/ and tensorboard/
    folders; nothing else a user may keep there); the names removed."""
    removed = []
    for name in RUN_FILES + RUN_FOLDERS:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(name + ("/" if name in RUN_FOLDERS else ""))
    return removed
