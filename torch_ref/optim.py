"""Optimizers and learning-rate schedules (torch.optim), mirroring ``jax_impl.optim``.

* ``adam``, ``sgd`` (with momentum) and ``adamw``; AdamW's decoupled weight
  decay is multiplied by the scheduled learning rate, as in ``optax.adamw``.
* Weight decay applies to weight matrices and kernels only: never to norms,
  biases (both 1-D) or the parameters a model lists in ``no_weight_decay``.
* The learning rate follows ``mnist_common.schedules.schedule_factor``, per step,
  the curve the JAX side builds from optax's schedules.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from mnist_common.config import OPTIMIZERS
from mnist_common.schedules import schedule_factor


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: decaying (2-D and up, not in ``model.no_weight_decay``) and the rest."""
    excluded = set(getattr(model, "no_weight_decay", ()))
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or set(name.split(".")) & excluded else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(
    name: str, model: nn.Module, lr: float, *, momentum: float = 0.9, weight_decay: float = 0.0,
    schedule: str = "constant", total_steps: int = 1, warmup_steps: int = 0, tensor_lr: bool = False,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """The optimizer over ``model``'s parameters and its per-step scheduler.

    ``tensor_lr`` holds the learning rate in a tensor on the parameters' device, so that
    a compiled optimizer step reads the scheduled rate without recompiling.
    """
    factor = functools.partial(schedule_factor, schedule=schedule, total_steps=total_steps, warmup_steps=warmup_steps)
    factor(0)  # rejects an unknown schedule before anything is built
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r} (choose from {', '.join(OPTIMIZERS)})")
    if weight_decay and name != "adamw":
        raise ValueError(f"weight decay needs adamw, not {name}")
    trainable = [p for p in model.parameters() if p.requires_grad]  # frozen layers stay out
    rate = torch.tensor(lr, device=trainable[0].device) if tensor_lr else lr
    if name == "adam":
        opt = torch.optim.Adam(trainable, lr=rate)
    elif name == "sgd":
        opt = torch.optim.SGD(trainable, lr=rate, momentum=momentum)
    else:
        opt = torch.optim.AdamW(parameter_groups(model, weight_decay), lr=rate)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)
