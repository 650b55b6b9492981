"""The PyTorch training step and evaluation forward pass, eager or through ``torch.compile``.

``mode`` is a ``torch.compile`` mode, or ``"none"`` for eager PyTorch:

* the forward pass and the loss are one compiled function, whose backward
  AOTAutograd compiles with it (``loss.backward()`` runs the compiled backward);
* the optimizer's update is a second compiled function. Its learning rate is a
  tensor (``make_optimizer(..., tensor_lr=True)``), so the schedule changes it
  without a recompilation, as PyTorch's compiled-optimizer recipe does;
* what stays eager: ``zero_grad``, the scheduler's step (one tensor write), the
  Python loop, and the batch gather and shifts;
* the evaluation forward pass is the compiled model, cached per model and mode
  so that validation and the test pass share it.

``"reduce-overhead"`` records CUDA graphs on a CUDA GPU; on a CPU, ``"default"``
and ``"reduce-overhead"`` give the same Inductor C++ kernels, and
``"max-autotune"`` also tries other matrix-multiply and convolution choices.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
from torch import nn

_EVAL_FORWARD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {mode: compiled model}


def compilations() -> int:
    """Graphs compiled so far in this process (Dynamo's counter; 0 while nothing was compiled)."""
    from torch._dynamo.utils import counters  # private: the count has no public API yet

    return int(counters["stats"]["unique_graphs"])


def autocast(device: torch.device, precision: str):
    """The autocast context of ``precision``: bfloat16 computation, or a no-op for float32."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")


def loss_function(model: nn.Module, task, *, label_smoothing: float, precision: str, mode: str) -> Callable:
    """``(x, y) -> loss`` of ``task`` for ``model`` in ``precision``, compiled unless ``mode`` is ``"none"``."""
    device = next(model.parameters()).device

    def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with autocast(device, precision):
            return task.loss(model, x, y, label_smoothing)

    return loss if mode == "none" else torch.compile(loss, mode=mode)


def optimizer_step(optimizer: torch.optim.Optimizer, *, mode: str,
                   zero_lr: Callable[[], bool] | None = None) -> Callable[[], None]:
    """``optimizer.step`` as a function of nothing, compiled unless ``mode`` is ``"none"``.

    ``zero_lr()`` says, on the host and without reading the device, whether this step's
    learning rate is exactly 0 (a linear warm-up's first step). The compiled step then
    keeps the parameters as they were and updates only the optimizer's state, which is
    what a step at learning rate 0 does: PyTorch's compiled Adam and AdamW fold the rate
    into a divisor, ``sqrt(v) / (sqrt(1 - beta2^t) * -lr / (1 - beta1^t))``, which is
    0 / -0 = NaN for a parameter whose gradient, and so ``v``, is exactly 0
    (pytorch/pytorch#126514). The ViT's attention key biases have such a gradient
    (softmax ignores a shift shared by every key); on AVX2 CPUs it comes out as exact
    zeros, elsewhere as rounding noise, which is why the same run diverged on one CPU only.
    """
    if mode == "none":
        return optimizer.step

    def step() -> None:
        optimizer.step()

    compiled = torch.compile(step, mode=mode)
    if zero_lr is None:
        return compiled
    params = [p for group in optimizer.param_groups for p in group["params"]]

    def guarded() -> None:
        if not zero_lr():
            compiled()
            return
        kept = [p.detach().clone() for p in params]
        compiled()  # the optimizer's state advances as at any step
        with torch.no_grad():
            for p, before in zip(params, kept):
                p.copy_(before)

    return guarded


def eval_forward(model: nn.Module, mode: str) -> nn.Module:
    """The model for evaluation-mode forward passes: itself, or its compiled wrapper (one per model and mode)."""
    if mode == "none":
        return model
    per_mode = _EVAL_FORWARD.setdefault(model, {})
    if mode not in per_mode:
        per_mode[mode] = torch.compile(model, mode=mode)
    return per_mode[mode]
