"""Training and evaluation for the PyTorch models: the same verbs as ``jax_impl.train``.

:func:`make_optimizer`, :func:`fit`, :func:`evaluate`, :func:`predict` take
NumPy arrays (uint8 NHWC images, int labels) and keyword arguments, and the
epoch orders come from the caller, so both frameworks see identical batches.

The timing discipline matches the JAX side: the training set is moved to the
device once, the loss is summed on the device and read only every
``log_every`` steps, and the device is synchronised before every clock read.
Eager PyTorch compiles nothing, so ``compile_time_s`` is 0; the first step's
cost (allocator, cuDNN heuristics) is reported as ``warmup_time_s``.

Models that are not plain classifiers (the Faster R-CNN of ``torch_ref.finetune``)
plug into the same loop through two methods: ``training_loss(x, y)`` replaces
the cross-entropy of the logits, and ``predict_batch(x)`` (a dict of per-image
tensors with a ``"prediction"`` key, -1 for "no answer") replaces the argmax of
the logits in validation and :func:`evaluate`.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from torch_ref.augment import shift_images
from torch_ref.optim import make_optimizer

#: MNIST pixel statistics, applied after scaling to [0, 1] (same in jax_impl).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

#: The normalised value of a black pixel: what shifted-in borders are filled with.
BACKGROUND = float((np.float32(0.0) - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD))


def default_device() -> torch.device:
    """CUDA when present, else Apple MPS, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` before a clock is read."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def preprocess(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 NHWC ``[N, 28, 28, 1]`` -> normalised float32 NCHW ``[N, 1, 28, 28]`` on ``device``.

    Computed in NumPy float32 before the transfer, like ``jax_impl``'s, so both
    frameworks train on bit-identical inputs.
    """
    x = np.asarray(images, dtype=np.float32) / np.float32(255.0)
    x = (x - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(device)  # NHWC -> NCHW


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def _forward_eval(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, batch_size: int):
    """Evaluation-mode logits and per-example losses, batch by batch, kept on the device."""
    was_training = model.training
    model.eval()
    logits, losses = [], []
    for start in range(0, len(x), batch_size):
        out = model(x[start : start + batch_size])
        logits.append(out)
        if y is not None:
            losses.append(F.cross_entropy(out, y[start : start + batch_size], reduction="none"))
    model.train(was_training)
    logits = torch.cat(logits).float().cpu().numpy()
    return logits, (torch.cat(losses).cpu().numpy() if y is not None else None)


@torch.no_grad()
def _predict_eval(model: nn.Module, x: torch.Tensor, batch_size: int) -> dict[str, np.ndarray]:
    """Evaluation-mode ``model.predict_batch`` outputs, batch by batch, as NumPy."""
    was_training = model.training
    model.eval()
    parts = [model.predict_batch(x[start : start + batch_size]) for start in range(0, len(x), batch_size)]
    model.train(was_training)
    return {k: torch.cat([part[k] for part in parts]).cpu().numpy() for k in parts[0]}


def _predicts(model: nn.Module) -> bool:
    return callable(getattr(model, "predict_batch", None))


def _training_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """The model's own ``training_loss`` when it has one (a detector), else cross-entropy of its logits."""
    own = getattr(model, "training_loss", None)
    if callable(own):
        return own(x, y)
    return F.cross_entropy(model(x), y, label_smoothing=label_smoothing)


def _summary(logits: np.ndarray, losses: np.ndarray, labels: np.ndarray) -> dict:
    return {
        "loss": float(losses.mean()),
        "accuracy": float((logits.argmax(axis=1) == labels).mean()),
    }


def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray, *, batch_size: int = 1000) -> dict:
    """Evaluation-mode loss, accuracy and logits (NumPy) on ``images``/``labels``.

    For a ``predict_batch`` model: accuracy, ``predictions`` and all its
    per-image ``outputs``; ``loss`` is None (an evaluation-mode detector has none).
    """
    device = _model_device(model)
    if _predicts(model):
        outputs = _predict_eval(model, preprocess(images, device), batch_size)
        accuracy = float((outputs["prediction"] == np.asarray(labels)).mean())
        return {"loss": None, "accuracy": accuracy, "predictions": outputs["prediction"], "outputs": outputs}
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=device)
    logits, losses = _forward_eval(model, preprocess(images, device), y, batch_size)
    return _summary(logits, losses, np.asarray(labels)) | {"logits": logits}


def predict(model: nn.Module, images: np.ndarray, *, batch_size: int = 1000) -> np.ndarray:
    """Evaluation-mode logits ``[N, num_classes]`` as NumPy."""
    return _forward_eval(model, preprocess(images, _model_device(model)), None, batch_size)[0]


def fit(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    orders: np.ndarray,
    batch_size: int,
    optimizer: str = "adam",
    lr: float = 1e-3,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    schedule: str = "constant",
    warmup_steps: int = 0,
    label_smoothing: float = 0.0,
    shifts: np.ndarray | None = None,
    val_images: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    eval_batch_size: int = 1000,
    log_every: int = 50,
    progress: bool = True,
    amp: bool = False,
) -> dict:
    """Train ``model`` in place (on its current device), one epoch per row of ``orders``.

    Same contract and return value as ``jax_impl.train.fit``: ``N // batch_size``
    full batches per epoch in the given order, dropout on in training and off
    in validation, optional ``shifts`` (``[epochs, N, 2]``, augmentation) and
    ``label_smoothing`` (training loss only); ``amp``: bfloat16 autocast on a CUDA
    device (no loss scaling needed). Returns ``history``, ``train_time_s``, ``compile_time_s`` (0 in
    eager mode), ``warmup_time_s``, ``steps_per_epoch``, ``images_per_epoch``,
    ``train_loss``.
    """
    orders = np.asarray(orders)
    epochs, n = orders.shape
    steps = n // batch_size
    if steps == 0:
        raise ValueError(f"batch_size {batch_size} is larger than the {n} training images")
    device = _model_device(model)
    if amp and device.type != "cuda":
        raise ValueError(f"mixed precision (amp) needs a CUDA device, not {device.type}")
    opt, sched = make_optimizer(
        optimizer, model, lr, momentum=momentum, weight_decay=weight_decay, schedule=schedule,
        total_steps=epochs * steps, warmup_steps=warmup_steps,
    )
    max_shift = int(np.abs(shifts).max()) if shifts is not None and shifts.size else 0
    x_train = preprocess(images, device)  # on the device once, [N, 1, 28, 28]
    y_train = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=device)
    if val_images is not None:
        x_val = preprocess(val_images, device)
        y_val = torch.as_tensor(np.asarray(val_labels), dtype=torch.long, device=device)

    history, warmup_time = [], 0.0
    model.train()
    for epoch in range(epochs):
        # order [steps, B] and shifts [steps, B, 2]: one transfer per epoch
        order = torch.from_numpy(orders[epoch, : steps * batch_size].reshape(steps, batch_size)).to(device)
        if max_shift:
            shift = torch.from_numpy(shifts[epoch, : steps * batch_size].reshape(steps, batch_size, 2)).to(device)
        loss_sum = torch.zeros((), device=device)
        bar = tqdm(total=steps, desc=f"torch epoch {epoch + 1}/{epochs}", disable=not progress, leave=False)
        synchronize(device)
        t_epoch = time.perf_counter()
        last_logged, t_last = 0, t_epoch
        for step in range(steps):
            idx = order[step]
            x = x_train[idx]  # [B, 1, 28, 28]
            if max_shift:
                x = shift_images(x, shift[step], max_shift, BACKGROUND)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = _training_loss(model, x, y_train[idx], label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.detach()
            if epoch == 0 and step == 0:
                synchronize(device)
                warmup_time = time.perf_counter() - t_epoch
            if (step + 1) % log_every == 0 or step + 1 == steps:
                running = loss_sum.item() / (step + 1)  # host sync every log_every steps only
                if not math.isfinite(running):
                    bar.close()
                    raise FloatingPointError(f"non-finite training loss at epoch {epoch + 1}, step {step + 1}")
                now = time.perf_counter()
                bar.update(step + 1 - last_logged)
                bar.set_postfix(loss=f"{running:.4f}", img_s=f"{(step + 1 - last_logged) * batch_size / (now - t_last):.0f}")
                last_logged, t_last = step + 1, now
        synchronize(device)
        epoch_time = time.perf_counter() - t_epoch
        bar.close()
        entry = {
            "epoch": epoch + 1,
            "train_loss": loss_sum.item() / steps,
            "epoch_time_s": epoch_time,
            "images_per_s": steps * batch_size / epoch_time,
            "lr": lr * sched.lr_lambdas[0]((epoch + 1) * steps - 1),  # the last step's rate
        }
        if val_images is not None and _predicts(model):
            predictions = _predict_eval(model, x_val, eval_batch_size)["prediction"]
            entry["val_accuracy"] = float((predictions == np.asarray(val_labels)).mean())
        elif val_images is not None:
            entry |= {f"val_{k}": v for k, v in _summary(*_forward_eval(model, x_val, y_val, eval_batch_size), np.asarray(val_labels)).items()}
        history.append(entry)
        if progress:
            val = f", val acc {entry['val_accuracy']:.2%}" if "val_accuracy" in entry else ""
            tqdm.write(f"torch epoch {epoch + 1}/{epochs}: loss {entry['train_loss']:.4f}{val}, "
                       f"{epoch_time:.1f} s, {entry['images_per_s']:.0f} images/s", file=sys.stderr)

    return {
        "history": history,
        "train_loss": history[-1]["train_loss"] if history else float("nan"),
        "train_time_s": sum(h["epoch_time_s"] for h in history),
        "compile_time_s": 0.0,
        "warmup_time_s": warmup_time,
        "steps_per_epoch": steps,
        "images_per_epoch": steps * batch_size,
    }
