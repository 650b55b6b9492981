"""Optimizers and learning-rate schedules in optax, the twin of ``torch_ref.optim``.

* ``adam``, ``sgd`` (with momentum) and ``adamw`` (decoupled weight decay,
  multiplied by the scheduled learning rate, as in ``torch.optim.AdamW``).
* Weight decay applies to weight matrices and kernels only: never to norms,
  biases (both 1-D) or the parameters a model lists in ``no_weight_decay``
  (the ViT's class token and position embeddings).
* ``constant``, or per-step ``cosine`` decay to 0 after an optional linear
  warm-up from 0: the curve of ``mnist_common.schedules``, built from optax's schedules.
"""

from __future__ import annotations

import jax
import optax
from flax import nnx

from mnist_common.config import OPTIMIZERS
from mnist_common.schedules import SCHEDULES


def make_schedule(lr: float, *, schedule: str, total_steps: int, warmup_steps: int = 0) -> optax.Schedule:
    """Learning rate per step: ``constant``, or ``cosine`` decay to 0 with linear warmup."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r} (choose from {', '.join(SCHEDULES)})")
    if schedule == "constant":
        return optax.constant_schedule(lr)
    if warmup_steps > 0:
        return optax.warmup_cosine_decay_schedule(0.0, lr, warmup_steps, max(total_steps, warmup_steps + 1))
    return optax.cosine_decay_schedule(lr, max(total_steps, 1))


def weight_decay_mask(model: nnx.Module):
    """A mask function for optax: True for the parameters that decay (2-D and up, not in ``no_weight_decay``)."""
    excluded = set(getattr(model, "no_weight_decay", ()))

    def mask(params):
        def decays(path, leaf):
            names = {str(getattr(k, "key", getattr(k, "name", k))) for k in path}
            return leaf.ndim >= 2 and not (names & excluded)

        return jax.tree_util.tree_map_with_path(decays, params)

    return mask


def make_optimizer(
    name: str, lr: float, *, model: nnx.Module | None = None, momentum: float = 0.9, weight_decay: float = 0.0,
    schedule: str = "constant", total_steps: int = 1, warmup_steps: int = 0,
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """The optax transformation and its schedule. ``model`` gives the weight-decay mask for adamw."""
    sched = make_schedule(lr, schedule=schedule, total_steps=total_steps, warmup_steps=warmup_steps)
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r} (choose from {', '.join(OPTIMIZERS)})")
    if weight_decay and name != "adamw":
        raise ValueError(f"weight decay needs adamw, not {name}")
    if name == "adam":
        return optax.adam(sched), sched
    if name == "sgd":
        return optax.sgd(sched, momentum=momentum), sched
    mask = weight_decay_mask(model) if model is not None else None
    return optax.adamw(sched, weight_decay=weight_decay, mask=mask), sched
