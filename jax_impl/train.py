"""Jit-compiled training and evaluation for the Flax NNX models.

The verbs mirror ``torch_ref.train``: :func:`make_optimizer`, :func:`fit`,
:func:`evaluate`, :func:`predict`. They take NumPy arrays (uint8 NHWC images,
int labels) and keyword arguments; the epoch orders come from the caller so
that both frameworks see identical batches.

How the loop is kept honest and fast:

* The model and optimizer are split once (``nnx.split``) and the pure state
  goes through a plain ``jax.jit`` whose graph definition is static and whose
  state is donated: no Python graph walk per step.
* Both steps are compiled ahead of time (``.lower().compile()``), so compile
  time is measured on its own and never leaks into the first epoch.
* The training set lives on the device for the whole run; each epoch's order
  goes over once as an index table, and the step gathers its batch inside
  the compiled function.
* The loss is summed on the device; the host reads it only every
  ``log_every`` steps (progress bar, non-finite check) and at the end of an
  epoch, after which the clock is read.
* With several local devices (several GPUs), each batch is split across
  them (data parallelism through ``NamedSharding``; XLA inserts the gradient
  all-reduce) and the state is replicated. The mathematics is that of one
  device; only summation order differs. (Virtual CPU devices, one per core,
  made the CNN's step 27 -> 17 ms on the 2-core CPU, but XLA CPU's in-process
  all-reduce intermittently deadlocked there; see ``jax_impl.xla_cpu``.)
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from jax_impl.augment import shift_images
from jax_impl.optim import make_optimizer

#: MNIST pixel statistics, applied after scaling to [0, 1] (same in torch_ref).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

#: The normalised value of a black pixel: what shifted-in borders are filled with.
BACKGROUND = float((np.float32(0.0) - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD))


def preprocess_host(images: np.ndarray) -> np.ndarray:
    """uint8 NHWC ``[N, 28, 28, 1]`` -> normalised float32 NHWC, in NumPy.

    Computed in NumPy float32 before the transfer, like ``torch_ref``'s, so
    both frameworks train on bit-identical inputs (XLA would fuse the divisions
    into multiplications and differ in the last bit).
    """
    x = np.asarray(images, dtype=np.float32) / np.float32(255.0)
    return (x - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)


def preprocess(images: np.ndarray) -> jax.Array:
    """:func:`preprocess_host`, on the default device."""
    return jnp.asarray(preprocess_host(images))


@dataclasses.dataclass(frozen=True)
class _Recipe:
    """The static parts of a training step (hashable: part of the compiled step's key)."""

    label_smoothing: float = 0.0
    max_shift: int = 0  # 0: no augmentation


def _loss(model, x, y, label_smoothing: float):
    logits = model(x)
    if label_smoothing:
        targets = optax.smooth_labels(jax.nn.one_hot(y, logits.shape[-1]), label_smoothing)
        return optax.softmax_cross_entropy(logits, targets).mean()
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def _update(graphdef, recipe: _Recipe, state, loss_sum, images, labels, order, shifts, step):
    """One update on batch ``order[step]``; returns the new state and the running loss sum."""
    model, optimizer = nnx.merge(graphdef, state)
    idx = order[step]  # [B] indices into the device-resident training set
    x = images[idx]  # [B, 28, 28, 1]
    if recipe.max_shift:
        x = shift_images(x, shifts[step], recipe.max_shift, BACKGROUND)
    loss, grads = nnx.value_and_grad(_loss)(model, x, labels[idx], recipe.label_smoothing)
    optimizer.update(model, grads)
    return nnx.state((model, optimizer)), loss_sum + loss


#: One update per call: the default.
_train_step = jax.jit(_update, static_argnums=(0, 1), donate_argnums=(2, 3))


@functools.partial(jax.jit, static_argnums=(0, 1, 2), donate_argnums=(3, 4))
def _train_steps(graphdef, recipe: _Recipe, count: int, state, loss_sum, images, labels, order, shifts, first):
    """Updates on batches ``first .. first + count - 1`` in one compiled call (a ``lax.fori_loop``).

    One dispatch instead of ``count``: for a model this small a GPU can finish a step
    faster than Python launches the next one. The same updates as ``count`` calls
    of :func:`_train_step`.
    """
    def body(i, carry):
        return _update(graphdef, recipe, *carry, images, labels, order, shifts, first + i)

    return jax.lax.fori_loop(0, count, body, (state, loss_sum))


@functools.partial(jax.jit, static_argnums=(0, 5))
def _eval_step(graphdef, state, images, labels, start, batch_size):
    """Logits and per-example losses for ``images[start:start + batch_size]``."""
    model = nnx.merge(graphdef, state)
    x = jax.lax.dynamic_slice_in_dim(images, start, batch_size)
    y = jax.lax.dynamic_slice_in_dim(labels, start, batch_size)
    logits = model(x)
    return logits, optax.softmax_cross_entropy_with_integer_labels(logits, y)


class _Evaluator:
    """Evaluation-mode forward passes over a device-resident, padded dataset."""

    def __init__(self, model: nnx.Module, images: np.ndarray, labels: np.ndarray | None, batch_size: int):
        self.n = len(images)
        self.batch_size = batch_size = max(1, min(batch_size, self.n))
        padded = -(-self.n // batch_size) * batch_size
        pad = padded - self.n
        labels = np.zeros(self.n, np.int32) if labels is None else np.asarray(labels, np.int32)
        self.images = preprocess(np.pad(images, ((0, pad), (0, 0), (0, 0), (0, 0))))
        self.labels = jnp.asarray(np.pad(labels, (0, pad)))
        self._compiled = None  # set by compile()
        model.eval()  # dropout off: a different (static) graph definition
        self.graphdef, _ = nnx.split(model)
        model.train()

    def compile(self, model_state) -> float:
        """Compile the eval step ahead of time, keep the executable for later calls; return the seconds taken."""
        t0 = time.perf_counter()
        self._compiled = _eval_step.lower(
            self.graphdef, model_state, self.images, self.labels, np.int32(0), self.batch_size
        ).compile()
        return time.perf_counter() - t0

    def _step(self, model_state, start):
        if self._compiled is not None:
            return self._compiled(model_state, self.images, self.labels, start)
        return _eval_step(self.graphdef, model_state, self.images, self.labels, start, self.batch_size)

    def __call__(self, model_state) -> tuple[np.ndarray, np.ndarray]:
        outs = [
            self._step(model_state, np.int32(start))
            for start in range(0, len(self.images), self.batch_size)
        ]
        logits = np.asarray(jnp.concatenate([o[0] for o in outs]))[: self.n]
        losses = np.asarray(jnp.concatenate([o[1] for o in outs]))[: self.n]
        return logits, losses


def _summary(logits: np.ndarray, losses: np.ndarray, labels: np.ndarray) -> dict:
    return {
        "loss": float(losses.mean()),
        "accuracy": float((logits.argmax(axis=1) == labels).mean()),
    }


def _flops(compiled) -> float | None:
    """The ``flops`` of XLA's cost analysis of a compiled step (None where the backend gives none)."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # noqa: BLE001 - an optional measurement; some backends have none
        return None
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    flops = (cost or {}).get("flops")
    return float(flops) if flops and flops > 0 else None


def batch_mesh(batch_size: int, devices: int | None = None) -> Mesh | None:
    """A 1-D ``("batch",)`` mesh over the local devices that divide ``batch_size``; None for one device.

    ``devices`` caps the count (1: no data parallelism).
    """
    local = jax.local_devices()
    n = min(len(local), devices or len(local))
    while n > 1 and batch_size % n:
        n -= 1
    return Mesh(np.array(local[:n]), ("batch",)) if n > 1 else None


def evaluate(model: nnx.Module, images: np.ndarray, labels: np.ndarray, *, batch_size: int = 1000) -> dict:
    """Evaluation-mode loss, accuracy and logits (NumPy) on ``images``/``labels``."""
    evaluator = _Evaluator(model, images, labels, batch_size)
    logits, losses = evaluator(nnx.state(model))
    return _summary(logits, losses, np.asarray(labels)) | {"logits": logits}


def predict(model: nnx.Module, images: np.ndarray, *, batch_size: int = 1000) -> np.ndarray:
    """Evaluation-mode logits ``[N, num_classes]`` as NumPy."""
    return _Evaluator(model, images, None, batch_size)(nnx.state(model))[0]


def fit(
    model: nnx.Module,
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
    devices: int | None = None,
    steps_per_call: int = 1,
) -> dict:
    """Train ``model`` in place, one epoch per row of ``orders``.

    ``orders`` is ``[epochs, N]``: each row a permutation of ``range(N)``. Each
    epoch runs ``N // batch_size`` full batches in that order (the remainder
    is dropped, so every step has one compiled shape). Dropout is on while
    training and off for the per-epoch validation.

    ``shifts`` (optional, ``[epochs, N, 2]`` integers) translates the image at
    position j of epoch e's order by ``shifts[e, j]`` pixels (augmentation);
    ``label_smoothing`` smooths the training targets (not the evaluation loss).
    ``devices`` caps how many local devices share each batch (default: all that
    divide the batch size; 1 turns data parallelism off). ``steps_per_call``
    runs that many updates per compiled call (a ``lax.fori_loop``; the last call
    of an epoch takes the remainder): the same updates with fewer dispatches, for
    accelerators. On XLA CPU the loop ran about as fast as one call per step
    (docs/results/cpu-2core-steps-per-call), so 1 stays the default.

    Returns a dict with ``history`` (one entry per epoch), ``train_time_s``
    (training epochs only, no compile, no validation), ``compile_time_s``,
    ``warmup_time_s`` (the first call, synchronised: ``steps_per_call`` steps), ``steps_per_epoch``,
    ``images_per_epoch``, ``steps_per_call`` (as used: at most one epoch's steps)
    and ``train_loss`` (mean over the last epoch).
    """
    orders = np.asarray(orders)
    epochs, n = orders.shape
    steps = n // batch_size
    if steps == 0:
        raise ValueError(f"batch_size {batch_size} is larger than the {n} training images")
    if steps_per_call < 1:
        raise ValueError(f"steps_per_call must be at least 1, got {steps_per_call}")
    per_call = min(steps_per_call, steps)
    tx, sched = make_optimizer(
        optimizer, lr, model=model, momentum=momentum, weight_decay=weight_decay, schedule=schedule,
        total_steps=epochs * steps, warmup_steps=warmup_steps,
    )
    recipe = _Recipe(label_smoothing=float(label_smoothing),
                     max_shift=int(np.abs(shifts).max()) if shifts is not None and shifts.size else 0)
    opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
    model.train()
    graphdef, state = nnx.split((model, opt))
    state = jax.tree.map(jnp.copy, state)  # donated below; keep the model's own arrays valid
    mesh = batch_mesh(batch_size, devices)
    replicated = NamedSharding(mesh, P()) if mesh else jax.local_devices()[0]
    by_batch = NamedSharding(mesh, P(None, "batch")) if mesh else jax.local_devices()[0]  # [steps, B, ...]
    # Everything reaches the devices from the host: a device-to-device resharding is a
    # cross-device collective, which deadlocked on XLA CPU when PyTorch later held the cores.
    state = jax.device_put(jax.device_get(state) if mesh else state, replicated)

    x_train = jax.device_put(preprocess_host(images), replicated)  # on the device(s) once, [N, 28, 28, 1]
    y_train = jax.device_put(np.asarray(labels, np.int32), replicated)
    loss_sum = jax.device_put(np.zeros((), np.float32), replicated)
    single = jax.local_devices()[0]  # validation runs on one device

    def to_one(tree):
        """A copy on ``single``. Through the host when sharded: a device-to-device resharding is a
        cross-device collective, which deadlocked on XLA CPU when measured (2 virtual devices, 2 cores)."""
        return jax.device_put(jax.device_get(tree) if mesh else tree, single)
    evaluator = _Evaluator(model, val_images, val_labels, eval_batch_size) if val_images is not None else None

    def epoch_tables(epoch):  # order [steps, B] int32 and shifts [steps, B, 2]: one transfer per epoch
        order = orders[epoch, : steps * batch_size].reshape(steps, batch_size).astype(np.int32)
        if not recipe.max_shift:
            shift = np.zeros((steps, batch_size, 2), np.int8)
        else:
            shift = shifts[epoch, : steps * batch_size].reshape(steps, batch_size, 2).astype(np.int8)
        return jax.device_put(order, by_batch), jax.device_put(shift, by_batch)

    args = (state, loss_sum, x_train, y_train, *epoch_tables(0), np.int32(0))
    t0 = time.perf_counter()
    calls = {}  # updates per call -> compiled function: per_call, and the epoch's remainder
    for count in {per_call, steps % per_call} - {0}:
        calls[count] = (_train_step.lower(graphdef, recipe, *args) if count == 1
                        else _train_steps.lower(graphdef, recipe, count, *args)).compile()
    compile_time = time.perf_counter() - t0
    # per device, so per batch_size / devices images. Only on a CPU: XLA GPU's cost analysis leaves
    # out library calls (cuDNN convolutions, cuBLAS products) and undercounts several-fold. Counted
    # on the one-update step (a loop's cost is not its body's times its trip count).
    flops = None
    if jax.default_backend() == "cpu":
        flops = _flops(calls[1] if 1 in calls else _train_step.lower(graphdef, recipe, *args).compile())
    if evaluator is not None:
        compile_time += evaluator.compile(to_one(state[0]))

    history, warmup_time = [], 0.0
    for epoch in range(epochs):
        order, shift = epoch_tables(epoch)
        loss_sum = jax.device_put(np.zeros((), np.float32), replicated)
        bar = tqdm(total=steps, desc=f"jax   epoch {epoch + 1}/{epochs}", disable=not progress, leave=False)
        t_epoch = time.perf_counter()
        last_logged, t_last = 0, t_epoch
        for first in range(0, steps, per_call):
            count = min(per_call, steps - first)
            state, loss_sum = calls[count](state, loss_sum, x_train, y_train, order, shift, np.int32(first))
            done = first + count
            if epoch == 0 and first == 0:
                jax.block_until_ready(loss_sum)
                warmup_time = time.perf_counter() - t_epoch
            if done // log_every > first // log_every or done == steps:
                running = float(loss_sum) / done  # host sync about every log_every steps only
                if not math.isfinite(running):
                    bar.close()
                    raise FloatingPointError(f"non-finite training loss at epoch {epoch + 1}, step {done}")
                now = time.perf_counter()
                bar.update(done - last_logged)
                bar.set_postfix(loss=f"{running:.4f}", img_s=f"{(done - last_logged) * batch_size / (now - t_last):.0f}")
                last_logged, t_last = done, now
        jax.block_until_ready(state)
        epoch_time = time.perf_counter() - t_epoch
        bar.close()
        entry = {
            "epoch": epoch + 1,
            "train_loss": float(loss_sum) / steps,
            "epoch_time_s": epoch_time,
            "images_per_s": steps * batch_size / epoch_time,
            "lr": float(sched((epoch + 1) * steps - 1)),
        }
        if evaluator is not None:
            model_state = to_one(state[0])
            entry |= {f"val_{k}": v for k, v in _summary(*evaluator(model_state), np.asarray(val_labels)).items()}
        history.append(entry)
        if progress:
            val = f", val acc {entry['val_accuracy']:.2%}" if "val_accuracy" in entry else ""
            tqdm.write(f"jax   epoch {epoch + 1}/{epochs}: loss {entry['train_loss']:.4f}{val}, "
                       f"{epoch_time:.1f} s, {entry['images_per_s']:.0f} images/s", file=sys.stderr)

    nnx.update((model, opt), to_one(state))  # the model lives on one device again
    return {
        "history": history,
        "train_loss": history[-1]["train_loss"] if history else float("nan"),
        "train_time_s": sum(h["epoch_time_s"] for h in history),
        "compile_time_s": compile_time,
        "warmup_time_s": warmup_time,
        "steps_per_epoch": steps,
        "images_per_epoch": steps * batch_size,
        "devices": mesh.size if mesh else 1,
        "steps_per_call": per_call,
        # XLA's own count of the compiled step's floating-point operations, per training image
        "train_flops_per_image": flops / (batch_size / (mesh.size if mesh else 1)) if flops else None,
    }
