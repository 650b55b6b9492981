"""Training checkpoints of the PyTorch models: one ``torch.save`` file per checkpoint, safe to load.

Each file holds the model's, the optimizer's and the scheduler's state dicts,
the random number generators' states (CPU, and CUDA where used), and the run's
identity and :class:`~mnist_common.checkpointing.Progress` as a JSON string:
only tensors, numbers, strings and containers, so it loads with
``torch.load(weights_only=True)``, which refuses arbitrary pickled objects. It
is written to a temporary file and renamed, so a kill during a save leaves the
previous checkpoints whole; the last ``keep`` are kept.
"""

from __future__ import annotations

import json

import torch

from mnist_common.checkpointing import (
    CheckpointError,
    Checkpointing,
    Progress,
    check_identity,
    say_resumed,
    set_aside,
    start_over,
)
from mnist_common.files import write_via

_PREFIX, _SUFFIX = "checkpoint-", ".pt"


class Checkpointer:
    """Saves and restores one run's training state in ``plan.directory``."""

    def __init__(self, plan: Checkpointing):
        self.plan = plan
        start_over(plan.directory, plan.resume)
        plan.directory.mkdir(parents=True, exist_ok=True)

    def _files(self) -> list:
        """The checkpoint files, newest first."""
        return sorted((p for p in self.plan.directory.glob(f"{_PREFIX}*{_SUFFIX}")), reverse=True)

    def save(self, model, optimizer, scheduler, progress: Progress, steps_per_epoch: int) -> None:
        payload = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else {},
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "meta": json.dumps({"identity": self.plan.identity, "progress": progress.as_dict()}),
        }
        path = self.plan.directory / f"{_PREFIX}{progress.number(steps_per_epoch):09d}{_SUFFIX}"
        write_via(path, lambda tmp: torch.save(payload, tmp))
        for old in self._files()[self.plan.keep:]:
            old.unlink(missing_ok=True)

    def restore(self, model, optimizer, scheduler, steps_per_epoch: int, *, speak: bool = True) -> Progress | None:
        """Load the newest usable checkpoint into the model, optimizer, scheduler and random generators and
        return its progress; None when there is none. A damaged file (unreadable, truncated, missing an entry) is
        set aside as ``<name>.damaged`` and said in one line, so that the run goes on from the one before it, or
        from the start; one from another run, or whose tensors do not fit this model, is a CheckpointError.
        ``speak``: this process speaks for the run (and sets damaged files aside)."""
        found = None
        for path in self._files():
            try:
                # on the CPU: load_state_dict moves each tensor where its model or optimizer keeps it
                payload = torch.load(path, map_location="cpu", weights_only=True)
                meta = json.loads(payload["meta"])
                states = {key: payload[key] for key in ("model", "optimizer", "scheduler", "rng_cpu", "rng_cuda")}
            except Exception as err:  # noqa: BLE001 - any way a file can be damaged: the one before it, then
                if speak:
                    set_aside(path, err)
                continue
            check_identity(meta["identity"], self.plan.identity, path)
            try:
                model.load_state_dict(states["model"])
                optimizer.load_state_dict(states["optimizer"])
                if scheduler is not None:
                    scheduler.load_state_dict(states["scheduler"])
            except (RuntimeError, ValueError, KeyError) as err:  # written by another version of the model
                raise CheckpointError(f"{path} does not fit this model ({_first_line(err)}): resume with the code "
                                      "that wrote it, or start again with --overwrite") from None
            torch.set_rng_state(states["rng_cpu"].cpu())
            if states["rng_cuda"]:
                torch.cuda.set_rng_state_all([s.cpu() for s in states["rng_cuda"]])
            found = Progress.from_dict(meta["progress"])
            break
        if speak:
            say_resumed(self.plan.directory, found, steps_per_epoch)
        return found


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:200]
