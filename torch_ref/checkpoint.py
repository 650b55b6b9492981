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
import os

import torch

from mnist_common.checkpointing import (
    CheckpointError,
    Checkpointing,
    Progress,
    check_identity,
    start_over,
    warn_skipped,
)

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
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(payload, tmp)
        os.replace(tmp, path)
        for old in self._files()[self.plan.keep:]:
            old.unlink(missing_ok=True)

    def restore(self, model, optimizer, scheduler) -> Progress | None:
        """Load the newest usable checkpoint into the model, optimizer, scheduler and random generators and
        return its progress; None when there is none. A damaged file is skipped with a warning; one from
        another run is a CheckpointError."""
        files = self._files()
        for i, path in enumerate(files):
            try:
                # on the CPU: load_state_dict moves each tensor where its model or optimizer keeps it
                payload = torch.load(path, map_location="cpu", weights_only=True)
                meta = json.loads(payload["meta"])
                check_identity(meta["identity"], self.plan.identity, path)
                model.load_state_dict(payload["model"])
                optimizer.load_state_dict(payload["optimizer"])
                if scheduler is not None:
                    scheduler.load_state_dict(payload["scheduler"])
                torch.set_rng_state(payload["rng_cpu"].cpu())
                if payload["rng_cuda"]:
                    torch.cuda.set_rng_state_all([s.cpu() for s in payload["rng_cuda"]])
            except CheckpointError:
                raise
            except Exception as err:  # noqa: BLE001 - any damage: fall back to the one before
                warn_skipped(path, err)
                continue
            for later in files[:i]:  # skipped as damaged: this run's next saves take their numbers
                later.unlink(missing_ok=True)
            return Progress.from_dict(meta["progress"])
        return None
