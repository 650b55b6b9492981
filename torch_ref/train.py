"""Training and evaluation for the PyTorch models, the twin of ``jax_impl.train``.

:func:`fit` trains a model in place as a :class:`~mnist_common.TrainConfig`
says and returns a :class:`~mnist_common.FitResult`. It runs
:func:`train_epoch` once per epoch, which calls :func:`train_step` per batch;
:func:`evaluate` and :func:`predict` run the model in evaluation mode. Images
are uint8 NHWC NumPy arrays, labels integers.

The timing discipline matches the JAX side: the training set is moved to the
device once, the loss is summed on the device and read only every
``log_every`` steps, and the device is synchronised before every clock read.
Eager PyTorch compiles nothing (``compile_time_s`` 0) and the first step's cost
(allocator, cuDNN heuristics) is ``warmup_time_s``; compiled PyTorch
(``config.torch_compile``, see ``torch_ref.compiled``) compiles during its first
steps, which are timed apart as ``compile_time_s``.

What is learnt, and how a prediction is read, is a :class:`Task`: by default
:data:`CLASSIFICATION` (cross-entropy of the logits, their argmax); the Faster
R-CNN of ``torch_ref.finetune.detection`` brings its own.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterable
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mnist_common import BACKGROUND, EpochStats, FitResult, TrainConfig, normalize, training_tables
from mnist_common.checkpointing import CheckpointError, Checkpointing, Progress
from mnist_common.epochs import Epochs, WarmUp
from mnist_common.interrupt import STOP
from mnist_common.processes import World
from mnist_common.progress import EpochProgress, speaker
from torch_ref import compiled, parallel
from torch_ref.augment import shift_images
from torch_ref.optim import make_optimizer

#: A caller's optimizer: called with the trainable parameters, as ``torch.optim`` classes are.
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


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

    Normalised in NumPy (``mnist_common.normalize``), as the JAX side does, so both
    frameworks see bit-identical inputs.
    """
    return torch.from_numpy(np.ascontiguousarray(normalize(images).transpose(0, 3, 1, 2))).to(device)  # NHWC -> NCHW


class Task(Protocol):
    """What a model learns and how its predictions are read; :func:`fit` and :func:`evaluate` use nothing else."""

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, label_smoothing: float) -> torch.Tensor:
        """The scalar training loss of a batch (training mode, gradients on)."""

    def outputs(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Per-example outputs of a batch in evaluation mode (``y`` None when only predicting)."""

    def summary(self, outputs: dict[str, np.ndarray], labels: np.ndarray) -> dict:
        """``loss`` (or None), ``accuracy`` and what a caller needs of ``outputs``, over a whole set."""


class Classification:
    """The default task: cross-entropy of the logits (label-smoothed in training if asked); the argmax predicts."""

    def loss(self, model, x, y, label_smoothing=0.0):
        return F.cross_entropy(model(x), y, label_smoothing=label_smoothing)

    def outputs(self, model, x, y):
        logits = model(x)
        return {"logits": logits} | ({} if y is None else {"loss": F.cross_entropy(logits, y, reduction="none")})

    def summary(self, outputs, labels):
        return {"loss": float(outputs["loss"].mean()),
                "accuracy": float((outputs["logits"].argmax(axis=1) == labels).mean()),
                "logits": outputs["logits"]}


CLASSIFICATION = Classification()


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _memory_format(p: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if p.dim() == 4 and not p.is_contiguous() \
        and p.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


@contextlib.contextmanager
def as_found(model: nn.Module):
    """Whatever happens inside (a return, an error, a signal), ``model`` leaves with each module's mode and each
    parameter's memory format as it came in: a library call changes what it is for (the parameters, when it
    trains), nothing else."""
    modes = [(m, m.training) for m in model.modules()]
    formats = [(p, _memory_format(p)) for p in model.parameters()]
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training
        for p, memory_format in formats:
            if _memory_format(p) != memory_format:
                p.data = p.data.contiguous(memory_format=memory_format)


@torch.no_grad()
def _outputs(model: nn.Module, task: Task, x: torch.Tensor, y: torch.Tensor | None, batch_size: int, *,
             precision: str = "float32", compile: str = "none", channels_last: bool = False):
    """``task.outputs`` in evaluation mode, batch by batch, as NumPy; the model's mode is restored.

    Every batch has ``batch_size`` rows (the last is padded, then cut), so a compiled
    forward pass sees one shape.
    """
    forward = compiled.eval_forward(model, compile)
    n, parts = len(x), []
    with as_found(model), compiled.autocast(x.device, precision):
        model.eval()
        for i in range(0, n, batch_size):
            xb = x[i : i + batch_size]
            yb = None if y is None else y[i : i + batch_size]
            if len(xb) < batch_size and n > batch_size:  # pad the ragged last batch with copies of its first row
                pad = batch_size - len(xb)
                xb = torch.cat([xb, xb[:1].expand(pad, *xb.shape[1:])])
                yb = None if yb is None else torch.cat([yb, yb[:1].expand(pad)])
            if channels_last and xb.dim() == 4:
                xb = xb.contiguous(memory_format=torch.channels_last)
            parts.append({k: v[: min(batch_size, n - i)] for k, v in task.outputs(forward, xb, yb).items()})
    joined = {k: torch.cat([part[k] for part in parts]) for k in parts[0]}
    return {k: (v.float() if v.is_floating_point() else v).cpu().numpy() for k, v in joined.items()}


def _labels(labels: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(labels), dtype=torch.long, device=device)


def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray, *, batch_size: int = 1000,
             task: Task = CLASSIFICATION, precision: str = "float32", compile: str = "none",
             channels_last: bool = False) -> dict:
    """Evaluation-mode ``task.summary``: for a classifier ``loss``, ``accuracy`` (a fraction) and ``logits``.

    ``precision``, ``compile`` and ``channels_last`` as in :func:`fit` (the compiled model is shared with it).
    """
    device = _model_device(model)
    outputs = _outputs(model, task, preprocess(images, device), _labels(labels, device), batch_size,
                       precision=precision, compile=compile, channels_last=channels_last)
    return task.summary(outputs, np.asarray(labels))


def predict(model: nn.Module, images: np.ndarray, *, batch_size: int = 1000) -> np.ndarray:
    """Evaluation-mode logits ``[N, num_classes]`` as NumPy."""
    return _outputs(model, CLASSIFICATION, preprocess(images, _model_device(model)), None, batch_size)["logits"]


def train_step(loss_fn: Callable, optimizer: torch.optim.Optimizer, optimizer_step: Callable[[], None], scheduler,
               x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One update on the batch ``(x, y)``; returns its loss, detached and still on the device.

    ``loss_fn(x, y)`` and ``optimizer_step()`` come from ``torch_ref.compiled`` (eager or compiled).
    """
    loss = loss_fn(x, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer_step()
    if scheduler is not None:
        scheduler.step()
    return loss.detach()


class TrainStep:
    """One training update of ``model`` on one batch, as :func:`fit` runs its step (the config's optimizer,
    precision, compile mode and memory format; dropout on): to time or profile a step outside ``fit``.

    Calling it runs one update and returns the loss (on the device, not waited for);
    :meth:`forward` the forward pass and loss alone, :meth:`update` the optimizer's update alone;
    :meth:`sync` waits for the device. ``compile_s`` is the first step's time for a compiled mode (0 for
    eager), ``flops`` None (XLA's count, the JAX twin's, is the algorithm's). The model trains in place, in training mode and
    the config's memory format, for the step's life.
    """

    flops = None

    def __init__(self, model: nn.Module, config: TrainConfig, images: np.ndarray, labels: np.ndarray):
        mode = config.torch_compile
        opt, _ = make_optimizer(config.optimizer, model, config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay, tensor_lr=mode != "none")
        if config.channels_last:
            model.to(memory_format=torch.channels_last)
        self.device = _model_device(model)
        self.x, self.y = preprocess(images, self.device), _labels(labels, self.device)
        if config.channels_last:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.loss_fn = compiled.loss_function(model, CLASSIFICATION, label_smoothing=config.label_smoothing,
                                              precision=config.precision, mode=mode)
        opt_step = compiled.optimizer_step(opt, mode=mode)
        self._update = lambda: train_step(self.loss_fn, opt, opt_step, None, self.x, self.y)
        self._opt_step = opt_step
        model.train()
        t0 = time.perf_counter()
        self()  # compiles, for a compiled mode
        self.sync()
        self.compile_s = time.perf_counter() - t0 if mode != "none" else 0.0

    def __call__(self) -> torch.Tensor:
        return self._update()

    def forward(self) -> torch.Tensor:
        """The forward pass and loss on the batch, no update, synchronised."""
        with torch.no_grad():
            loss = self.loss_fn(self.x, self.y)
        self.sync()
        return loss

    def update(self) -> None:
        """The optimizer's update alone, with the last step's gradients, synchronised."""
        self._opt_step()
        self.sync()

    def sync(self) -> None:
        synchronize(self.device)


def train_epoch(step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], data: tuple, order: torch.Tensor,
                shift: torch.Tensor | None, *, max_shift: int, channels_last: bool, progress: EpochProgress,
                warm_up: bool = False, compiled_step: bool = False, start: int = 0,
                loss_sum: float = 0.0, across: Callable[[torch.Tensor], torch.Tensor] | None = None,
                ) -> tuple[torch.Tensor, WarmUp | None, int]:
    """One epoch of ``step(x, y)`` (:func:`train_step` bound to its model) on the batches ``start ..`` of ``order``.

    ``order`` is ``[steps, B]``, ``shift`` ``[steps, B, 2]`` (or None); ``data`` the
    device-resident ``(images, labels)``; ``loss_sum`` what the steps before ``start``
    summed to. With ``warm_up`` the first steps are timed one by one, synchronised (a
    :class:`WarmUp`): the first only, or with ``compiled_step`` every step until one
    compiles nothing new. Stops early, at a step boundary, when a signal asks
    (``mnist_common.interrupt.STOP``). ``across`` (several processes) turns this process's
    loss sum into the mean over the processes before it is shown. Returns this
    process's loss summed over the epoch (on the device), the warm-up (None without
    ``warm_up``) and the steps done.
    """
    x_train, y_train = data
    device = x_train.device
    loss_sum = torch.full((), loss_sum, device=device)
    first_step_s, compiling_s, compiling_steps, warm, done = None, 0.0, 0, None, start
    for i in range(start, len(order)):
        idx = order[i]
        x = x_train[idx]  # [B, 1, 28, 28]
        if max_shift:
            x = shift_images(x, shift[i], max_shift, BACKGROUND)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if warm_up and warm is None:
            before = compiled.compilations() if compiled_step else 0
            t0 = time.perf_counter()
        loss_sum += step(x, y_train[idx])
        if warm_up and warm is None:
            synchronize(device)
            took = time.perf_counter() - t0
            first_step_s = took if first_step_s is None else first_step_s
            now = compiled.compilations() if compiled_step else 0
            if now > before:
                compiling_s += took
                compiling_steps += 1
            else:
                warm = WarmUp(first_step_s, compiling_s, now, compiling_steps)
                if compiled_step:
                    progress.say(f"compiled the training step in {compiling_s:.1f} s ({compiling_steps} steps)")
        done = i + 1
        if progress.due(i, done, by_time=across is None):  # (an all-reduce: every process must log alike)
            shown = loss_sum if across is None else across(loss_sum)
            progress.log(done, shown.item())  # a host sync, every log_every steps only
        if STOP.signum is not None:
            break
    if warm_up and warm is None:  # every step of the epoch compiled something (or it stopped at once)
        warm = WarmUp(first_step_s or 0.0, compiling_s, compiled.compilations() if compiled_step else 0,
                      compiling_steps)
    return loss_sum, warm, done


def fit(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    config: TrainConfig = TrainConfig(),
    *,
    orders: np.ndarray | None = None,
    shifts: np.ndarray | None = None,
    val_images: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    optimizer: OptimizerFactory | None = None,
    task: Task = CLASSIFICATION,
    progress: bool = True,
    log_every: int = 50,
    on_epoch: Callable[[EpochStats], None] | None = None,
    checkpointing: Checkpointing | None = None,
    say: Callable[[str], None] | None = None,
    on_log: Callable[[int, float, float | None], None] | None = None,
) -> FitResult:
    """Train ``model`` in place (on its current device); the same contract as ``jax_impl.train.fit``.

    ``N // batch_size`` full batches per epoch in that epoch's order (``orders``,
    or drawn from ``config.seed`` exactly as the JAX side draws them), optional
    ``shifts`` (drawn likewise when ``config.augment_shift`` is set), dropout on in
    training and off in validation. ``optimizer``: a factory called with the
    trainable parameters (``functools.partial(torch.optim.RMSprop, lr=1e-3)``), used
    as it is instead of the one the config names. ``config.precision``: bfloat16
    autocast for ``bfloat16``; ``config.torch_compile``: the forward pass, loss and
    backward, and the optimizer's update, through ``torch.compile`` (``torch_ref.compiled``);
    ``config.channels_last``: the model and batches in channels-last memory format.
    ``on_epoch`` is called with each epoch's stats as it ends (by default, with
    ``progress``, one line is printed); ``say`` with the lines about compiling (``torch.compile``: when it starts
    and how long it took; by default printed with ``progress``); ``on_log(step, loss, lr)`` at every progress log
    (every ``log_every`` steps or second) with the mean training loss since the last. ``checkpointing`` keeps
    checkpoints (``torch_ref.checkpoint``) and, with ``resume``, continues from the newest. In a
    process group (``torch_ref.parallel.initialize``) the model trains as a DDP replica
    on this process's rows of each batch, losses are averaged over the processes, only
    process 0 writes checkpoints and every process restores them. Raises
    FloatingPointError when the running loss stops being finite, and ``StopRequested``
    (after a checkpoint) when a signal asked to stop. The model comes back in the mode and
    memory format it came in; its parameters and the random streams are what training changes.
    """
    with as_found(model):  # its mode and memory format back, however fit ends
        return _fit(model, images, labels, config, orders=orders, shifts=shifts, val_images=val_images,
                    val_labels=val_labels, optimizer=optimizer, task=task, progress=progress, log_every=log_every,
                    on_epoch=on_epoch, checkpointing=checkpointing, say=say, on_log=on_log)


def _fit(model, images, labels, config, *, orders, shifts, val_images, val_labels, optimizer, task, progress,
         log_every, on_epoch, checkpointing, say, on_log) -> FitResult:
    n = len(images)
    if len(labels) != n:
        raise ValueError(f"{n} images but {len(labels)} labels")
    orders, shifts, max_shift = training_tables(n, config, orders, shifts)
    batch_size = config.batch_size
    steps = n // batch_size
    if steps == 0:
        raise ValueError(f"batch_size {batch_size} is larger than the {n} training images")
    mode = config.torch_compile
    total_steps = config.epochs * steps
    if optimizer is None:
        opt, sched = make_optimizer(
            config.optimizer, model, config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
            schedule=config.schedule, total_steps=total_steps, warmup_steps=config.warmup_steps,
            tensor_lr=mode != "none",
        )
        lr_at = functools.partial(config.lr_at, total_steps=total_steps)
    else:
        opt, sched = optimizer([p for p in model.parameters() if p.requires_grad]), None
        lr_at = lambda step: float(opt.param_groups[0]["lr"])  # noqa: E731 - the caller's optimizer says
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    processes, rank = parallel.world()
    rows = World(processes, rank).share(batch_size)  # this process's rows of each global batch
    trained = parallel.replicate(model) if processes > 1 else model
    device = _model_device(model)

    checkpointer, done_before = None, Progress()
    if checkpointing is not None and (rank == 0 or checkpointing.resume):  # process 0 writes, all restore
        from torch_ref.checkpoint import Checkpointer

        checkpointer = Checkpointer(checkpointing)
        if checkpointing.resume:
            done_before = checkpointer.restore(model, opt, sched, steps, speak=rank == 0) or done_before
        if rank:
            checkpointer = None
    if processes > 1 and checkpointing is not None and checkpointing.resume \
            and not parallel.agreed((done_before.epoch, done_before.step)):
        raise CheckpointError(f"the processes restored different checkpoints from {checkpointing.directory}: "
                              "it must be one folder that every process reads (a shared --out or --checkpoint-dir)")
    x_train = preprocess(images, device)  # on the device once, [N, 1, 28, 28]
    y_train = _labels(labels, device)
    if val_images is not None:
        x_val, y_val = preprocess(val_images, device), _labels(val_labels, device)
    evaluation = dict(precision=config.precision, compile=mode, channels_last=config.channels_last)

    def epoch_tables(epoch):  # order [steps, B / P] and shifts [steps, B / P, 2], P processes: one transfer per epoch
        order = orders[epoch, : steps * batch_size].reshape(steps, batch_size)[:, rows]
        order = torch.from_numpy(np.ascontiguousarray(order)).to(device)
        if shifts is None:
            return order, None
        shift = shifts[epoch, : steps * batch_size].reshape(steps, batch_size, 2)[:, rows]
        return order, torch.from_numpy(np.ascontiguousarray(shift)).to(device)

    across = parallel.mean if processes > 1 else None  # this process's loss sum -> the mean over the processes
    loss_fn = compiled.loss_function(trained, task, label_smoothing=config.label_smoothing,
                                     precision=config.precision, mode=mode)
    zero_lr = (lambda: sched.lr_lambdas[0](sched.last_epoch) == 0) if sched is not None else None  # noqa: E731
    opt_step = compiled.optimizer_step(opt, mode=mode, zero_lr=zero_lr)

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return train_step(loss_fn, opt, opt_step, sched, x, y)

    compile_time = 0.0  # (the training step compiles as it runs: its first steps, timed in the first epoch)
    say = speaker("torch", say, progress)
    if mode != "none":
        say(f"compiling (torch.compile, mode {mode}): " + ("the evaluation step now, " if val_images is not None
                                                            else "") + "the training step in its first steps")
    if val_images is not None and mode != "none":  # the evaluation graph, compiled before the clock starts
        t0 = time.perf_counter()
        first = min(config.eval_batch_size, len(x_val))
        _outputs(model, task, x_val[:first], y_val[:first], config.eval_batch_size, **evaluation)
        synchronize(device)
        compile_time = time.perf_counter() - t0
        say(f"compiled the evaluation step in {compile_time:.1f} s")

    def save(kept: Progress) -> None:
        checkpointer.save(model, opt, sched, kept, steps)

    def validate() -> dict:
        if val_images is None:
            return {}
        summary = task.summary(_outputs(model, task, x_val, y_val, config.eval_batch_size, **evaluation),
                               np.asarray(val_labels))
        return {"val_loss": summary["loss"], "val_accuracy": summary["accuracy"]}

    epochs = Epochs("torch", config, steps, done_before=done_before, checkpointing=checkpointing,
                    save=save if checkpointer is not None else None, lr_at=lr_at, on_epoch=on_epoch,
                    progress=progress, log_every=log_every, say=say, on_log=on_log)
    warm = None
    model.train()
    for epoch, start in epochs:
        if rank:  # a dropout stream of its own per process and epoch (process 0's is in its checkpoints)
            torch.manual_seed(int(np.random.SeedSequence([config.seed, rank, epoch]).generate_state(1)[0]))
        order, shift = epoch_tables(epoch)
        loss_sum = epochs.loss_before(epoch, start)
        bar = epochs.bar(epoch, start)
        synchronize(device)
        t0 = time.perf_counter()
        loss_sum, warm_up, done = train_epoch(
            step, (x_train, y_train), order, shift, max_shift=max_shift, channels_last=config.channels_last,
            progress=bar, warm_up=epochs.first(epoch), compiled_step=mode != "none", start=start,
            loss_sum=loss_sum, across=across)
        if across is not None:
            loss_sum = across(loss_sum)
        synchronize(device)
        epoch_time = epochs.elapsed(start, t0)
        bar.close()
        if epochs.first(epoch):
            warm = warm_up
            epoch_time -= warm.compiling_s  # compilation is reported apart, as JAX's is
        if done < steps:  # a signal asked to stop: keep where we are, then say so
            epochs.stop_inside(epoch, done, loss_sum.item(), epoch_time)
        timed = steps - (warm.compiling_steps if epochs.first(epoch) else 0)  # compiling steps: not timed
        epochs.end(epoch, loss_sum.item(), epoch_time, timed * batch_size, validate())

    warm = warm or WarmUp(0.0)  # (a resumed run that had nothing left to train)
    return FitResult(history=epochs.history, train_time_s=epochs.train_time_s,
                     compile_time_s=compile_time + warm.compiling_s, warmup_time_s=warm.first_step_s,
                     steps_per_epoch=steps, batch_size=batch_size, devices=processes, processes=processes,
                     compiled_steps=warm.compiling_steps,
                     recompilations=(compiled.compilations() - warm.compilations) if mode != "none" else 0,
                     resumed_from=epochs.resumed_from)
