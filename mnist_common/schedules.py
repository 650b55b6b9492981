"""Learning-rate schedules as plain arithmetic: the one definition both frameworks follow.

``torch_ref.optim`` drives ``LambdaLR`` with :func:`schedule_factor`;
``jax_impl.optim`` builds the same curve from optax's schedules, and a test
holds the two equal step for step.
"""

from __future__ import annotations

import math

SCHEDULES = ("constant", "cosine")


def schedule_factor(step: int, *, schedule: str, total_steps: int, warmup_steps: int = 0) -> float:
    """Multiplier of the base learning rate at ``step``: 1, or cosine decay to 0 after a linear warm-up from 0.

    Equals optax's ``cosine_decay_schedule`` (no warm-up) and
    ``warmup_cosine_decay_schedule`` (with one), which keep the end value after ``total_steps``.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r} (choose from {', '.join(SCHEDULES)})")
    if schedule == "constant":
        return 1.0
    if warmup_steps > 0:
        total = max(total_steps, warmup_steps + 1)
        if step < warmup_steps:
            return step / warmup_steps
        t = min(step - warmup_steps, total - warmup_steps) / (total - warmup_steps)
    else:
        total = max(total_steps, 1)
        t = min(step, total) / total
    return 0.5 * (1.0 + math.cos(math.pi * t))
