"""Jit-compiled training and evaluation for the Flax NNX models, the twin of ``torch_ref.train``.

:func:`fit` trains a model in place as a :class:`~mnist_common.TrainConfig`
says and returns a :class:`~mnist_common.FitResult`. It runs
:func:`train_epoch` once per epoch, which calls the compiled update
(:data:`train_step`, or :func:`train_steps` for several updates per call);
:func:`evaluate` and :func:`predict` run the model in evaluation mode. Images
are uint8 NHWC NumPy arrays, labels integers.

How the loop stays honest and fast, as the PyTorch twin's does:

* the model and optimizer are split once (``nnx.split``); the pure state goes
  through a plain ``jax.jit`` with a static graph definition and donated
  state, so no Python graph walk happens per step;
* the steps are compiled ahead of time (``.lower().compile()``), so compile
  time is measured apart and never leaks into the first epoch;
* the training set is put on the device once; each epoch's order goes over as
  one index table and the step gathers its batch inside the compiled function;
* the loss is summed on the device and read by the host only every
  ``log_every`` steps; the device is synchronised before every clock read.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jax_impl.augment import shift_images
from jax_impl.kernels.dropout import batch_split
from jax_impl.optim import make_optimizer
from jax_impl.parallel import all_reduce_for, batch_mesh, place
from mnist_common import BACKGROUND, EpochStats, FitResult, TrainConfig, normalize, training_tables
from mnist_common.checkpointing import Checkpointing, Progress
from mnist_common.epochs import Epochs, WarmUp
from mnist_common.interrupt import STOP
from mnist_common.progress import EpochProgress, speaker


def preprocess(images: np.ndarray) -> jax.Array:
    """uint8 NHWC ``[N, 28, 28, 1]`` -> normalised float32 NHWC on the default device (``mnist_common.normalize``)."""
    return jnp.asarray(normalize(images))


@dataclasses.dataclass(frozen=True)
class StepRecipe:
    """The static parts of a training step (hashable: part of the compiled step's key)."""

    label_smoothing: float = 0.0
    max_shift: int = 0  # 0: no augmentation
    flat_over: Mesh | None = None  # sum the gradients over this batch mesh as one flat buffer; None: XLA's own


def _at_least_float32(x: jax.Array) -> jax.Array:
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def loss_fn(model: nnx.Module, x: jax.Array, y: jax.Array, label_smoothing: float = 0.0) -> jax.Array:
    """Mean softmax cross-entropy of ``model(x)`` against integer labels, optionally label-smoothed, in float32
    at least (bfloat16 logits are widened)."""
    logits = _at_least_float32(model(x))
    if label_smoothing:
        targets = optax.smooth_labels(jax.nn.one_hot(y, logits.shape[-1]), label_smoothing)
        return optax.softmax_cross_entropy(logits, targets).mean()
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def _batch(recipe: StepRecipe, images, labels, order, shifts, step):
    """The images and labels of batch ``order[step]``, shifted where the recipe augments."""
    idx = order[step]  # [B] indices into the device-resident training set
    x = images[idx]  # [B, 28, 28, 1]
    if recipe.max_shift:
        x = shift_images(x, shifts[step], recipe.max_shift, BACKGROUND)
    return x, labels[idx]


def _flat_loss_and_grads(model, recipe: StepRecipe, images, labels, order, shifts, step):
    """The batch's mean loss and its gradients (as ``nnx.value_and_grad``), each device computing those of its
    rows and the gradients summed over the mesh as ONE raveled buffer: one all-reduce per step.

    XLA's own partitioning sums the same gradients with one all-reduce of many
    operands, which gloo (XLA CPU across processes) reduces one tensor at a
    time. Each device draws its rows of the whole batch's dropout masks
    (``jax_impl.kernels.dropout.batch_split``), so the step is the unsplit step's
    up to the order of its sums.
    """
    mesh = recipe.flat_over
    count = mesh.shape["batch"]
    graphdef, model_state = nnx.split(model)

    def share(model_state, images, labels, order, shifts, step):  # one device: order, shifts [steps, B/count, ...]
        model = nnx.merge(graphdef, model_state)
        x, y = _batch(recipe, images, labels, order, shifts, step)
        with batch_split("batch", count):
            loss, grads = nnx.value_and_grad(loss_fn)(model, x, y, recipe.label_smoothing)
        flat, unravel = ravel_pytree(grads)  # every gradient in one [P] vector
        flat, loss = jax.lax.psum((flat, loss), "batch")
        return loss / count, unravel(flat / count), nnx.state(model)  # the state: the random streams moved on

    split = jax.shard_map(share, mesh=mesh, in_specs=(P(), P(), P(), P(None, "batch"), P(None, "batch"), P()),
                          out_specs=P(), check_vma=False)  # (custom gradients give varying for unvarying)
    loss, grads, model_state = split(model_state, images, labels, order, shifts, step)
    nnx.update(model, model_state)
    return loss, grads


def _update(graphdef, recipe: StepRecipe, state, loss_sum, images, labels, order, shifts, step):
    """One update on batch ``order[step]``; returns the new state and the running loss sum."""
    model, optimizer = nnx.merge(graphdef, state)
    if recipe.flat_over is not None:
        loss, grads = _flat_loss_and_grads(model, recipe, images, labels, order, shifts, step)
    else:
        x, y = _batch(recipe, images, labels, order, shifts, step)
        loss, grads = nnx.value_and_grad(loss_fn)(model, x, y, recipe.label_smoothing)
    optimizer.update(model, grads)
    return nnx.state((model, optimizer)), loss_sum + loss


#: One update per call: ``(graphdef, recipe, state, loss_sum, images, labels, order, shifts, step)
#: -> (state, loss_sum)``, the state and loss sum donated.
train_step = jax.jit(_update, static_argnums=(0, 1), donate_argnums=(2, 3))


@functools.partial(jax.jit, static_argnums=(0, 1, 2), donate_argnums=(3, 4))
def train_steps(graphdef, recipe: StepRecipe, count: int, state, loss_sum, images, labels, order, shifts, first):
    """Updates on batches ``first .. first + count - 1`` in one compiled call (a ``lax.fori_loop``).

    The same updates as ``count`` calls of :data:`train_step` with one dispatch
    instead of ``count``: for a model this small a GPU finishes a step faster than
    Python launches the next.
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
    logits = _at_least_float32(model(x))
    return logits, optax.softmax_cross_entropy_with_integer_labels(logits, y)


class _Evaluator:
    """Evaluation-mode forward passes over a device-resident dataset, padded to whole batches."""

    def __init__(self, model: nnx.Module, images: np.ndarray, labels: np.ndarray | None, batch_size: int):
        self.n = len(images)
        self.batch_size = batch_size = max(1, min(batch_size, self.n))
        pad = -(-self.n // batch_size) * batch_size - self.n
        labels = np.zeros(self.n, np.int32) if labels is None else np.asarray(labels, np.int32)
        self.images = preprocess(np.pad(images, ((0, pad), (0, 0), (0, 0), (0, 0))))
        self.labels = jnp.asarray(np.pad(labels, (0, pad)))
        self._compiled = None  # set by compile()
        self.graphdef, _ = nnx.split(evaluation_view(model))  # dropout off: a different (static) graph definition

    def compile(self, model_state) -> float:
        """Compile the evaluation step ahead of time for later calls; return the seconds taken."""
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
        """(logits ``[N, classes]``, per-example losses ``[N]``) as NumPy."""
        outs = [self._step(model_state, np.int32(start)) for start in range(0, len(self.images), self.batch_size)]
        logits = np.asarray(jnp.concatenate([o[0] for o in outs]))[: self.n]
        losses = np.asarray(jnp.concatenate([o[1] for o in outs]))[: self.n]
        return logits, losses


def evaluation_view(model: nnx.Module) -> nnx.Module:
    """``model`` in evaluation mode (dropout off, running averages used) as a view over the same variables: the
    model itself keeps the mode it was in, so a library call never changes how a caller's model behaves."""
    return nnx.view(model, deterministic=True, use_running_average=True, raise_if_not_found=False)


def training_view(model: nnx.Module) -> nnx.Module:
    """``model`` in training mode (dropout on), a view over the same variables; the model keeps its own mode."""
    return nnx.view(model, deterministic=False, use_running_average=False, raise_if_not_found=False)


def _summary(logits: np.ndarray, losses: np.ndarray, labels: np.ndarray) -> dict:
    return {"loss": float(losses.mean()), "accuracy": float((logits.argmax(axis=1) == labels).mean())}


def step_flops(compiled) -> float | None:
    """The ``flops`` of XLA's cost analysis of a compiled step (None where the backend gives none)."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # noqa: BLE001 - an optional measurement; some backends have none
        return None
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    flops = (cost or {}).get("flops")
    return float(flops) if flops and flops > 0 else None


def evaluate(model: nnx.Module, images: np.ndarray, labels: np.ndarray, *, batch_size: int = 1000) -> dict:
    """Evaluation-mode ``loss`` (mean cross-entropy), ``accuracy`` (a fraction) and ``logits`` (NumPy).

    The model is left as it was found: its mode, parameters and random streams."""
    logits, losses = _Evaluator(model, images, labels, batch_size)(nnx.state(model))
    return _summary(logits, losses, np.asarray(labels)) | {"logits": logits}


def predict(model: nnx.Module, images: np.ndarray, *, batch_size: int = 1000) -> np.ndarray:
    """Evaluation-mode logits ``[N, num_classes]`` as NumPy; the model is left as it was found."""
    return _Evaluator(model, images, None, batch_size)(nnx.state(model))[0]


def _apply_gradients(graphdef, state, grads):
    model, optimizer = nnx.merge(graphdef, state)
    optimizer.update(model, grads)
    return nnx.state((model, optimizer))


class TrainStep:
    """One training update of ``model`` on one batch, compiled as :func:`fit` compiles its step (the config's
    optimizer, dropout on, the loss in float32): to time or profile a step outside ``fit``.

    Calling it runs one update and returns the loss (on the device, not waited for);
    :meth:`forward` the forward pass and loss alone, :meth:`update` the optimizer's update alone;
    :meth:`sync` waits for the device. ``compile_s`` is the ahead-of-time compilation, ``flops`` XLA's count for one update (on a CPU; None on a
    GPU, where XLA's cost analysis leaves out library calls). The model's
    own arrays are left as they are: the step trains a copy.
    """

    def __init__(self, model: nnx.Module, config: TrainConfig, images: np.ndarray, labels: np.ndarray):
        tx, _ = make_optimizer(config.optimizer, config.lr, model=model, momentum=config.momentum,
                               weight_decay=config.weight_decay)
        opt = nnx.Optimizer(model, tx, wrt=getattr(model, "trainable", nnx.Param))
        graphdef, state = nnx.split((training_view(model), opt))
        self.state = _donatable(state, keep=nnx.state(model))  # donated at each call
        self.x, self.y = jax.device_put(normalize(images)), jax.device_put(np.asarray(labels, np.int32))
        batch = (jnp.arange(len(images), dtype=jnp.int32)[None],  # order [1, B]: the batch as given
                 jnp.zeros((1, len(images), 2), jnp.int8))  # shifts [1, B, 2]: none
        self.loss = jnp.zeros((), jnp.float32)
        recipe = StepRecipe(label_smoothing=float(config.label_smoothing))
        t0 = time.perf_counter()
        step = train_step.lower(graphdef, recipe, self.state, self.loss, self.x, self.y, *batch, np.int32(0)).compile()
        self.compile_s = time.perf_counter() - t0
        self.flops = step_flops(step) if jax.default_backend() == "cpu" else None
        self._update = lambda: step(self.state, self.loss, self.x, self.y, *batch, np.int32(0))
        smoothing = float(config.label_smoothing)
        self._forward = jax.jit(lambda state, x, y: loss_fn(nnx.merge(graphdef, state)[0], x, y, smoothing))
        wrt = getattr(model, "trainable", nnx.Param)
        self._grads = jax.tree.map(jnp.ones_like, nnx.state(model, wrt))  # stand-ins: the update's cost is the same
        self._apply = jax.jit(functools.partial(_apply_gradients, graphdef), donate_argnums=0)

    def __call__(self) -> jax.Array:
        self.state, self.loss = self._update()
        return self.loss

    def forward(self) -> jax.Array:
        """The forward pass and loss on the batch, no update, synchronised."""
        return jax.block_until_ready(self._forward(self.state, self.x, self.y))

    def update(self) -> None:
        """The optimizer's update alone (gradients of ones, the same work as real ones), synchronised."""
        self.state = jax.block_until_ready(self._apply(self.state, self._grads))

    def sync(self) -> None:
        jax.block_until_ready((self.state, self.loss))


def train_epoch(calls: dict, state, loss_sum, data: tuple, order, shift, *, steps: int, per_call: int,
                progress: EpochProgress, warm_up: bool = False, start: int = 0):
    """One epoch: updates on the batches ``start ..`` of ``order`` (``[steps, B]``), ``per_call`` per call.

    ``calls[count]`` is the compiled function for ``count`` updates; ``data`` is
    the device-resident ``(images, labels)``. Stops early, at a call boundary, when a
    signal asks (``mnist_common.interrupt.STOP``). Returns the new state, the loss
    summed over the epoch (on the device), with ``warm_up`` a :class:`~mnist_common.epochs.WarmUp`
    holding the seconds until the first call finished, synchronised (else None), and the steps done.
    """
    t0 = time.perf_counter()
    warm, done = None, start
    for first in range(start, steps, per_call):
        count = min(per_call, steps - first)
        state, loss_sum = calls[count](state, loss_sum, *data, order, shift, np.int32(first))
        done = first + count
        if warm_up and first == start:  # (compiled ahead of time: the first call compiles nothing)
            jax.block_until_ready(loss_sum)
            warm = WarmUp(time.perf_counter() - t0)
        if progress.due(first, done, by_time=jax.process_count() == 1):  # (processes stop alike on a NaN)
            progress.log(done, float(loss_sum))  # a host sync, every log_every steps only
        if STOP.signum is not None:
            break
    return state, loss_sum, warm, done


def _donatable(state, keep):
    """``state`` with a copy of every array that is also in ``keep`` or earlier in ``state``: each array left is
    donated once, and none the caller holds. The optimizer's fresh state is not copied: for Adam two copies of
    the parameters less in memory (1.07 GB for VGG16)."""
    seen = {id(leaf) for leaf in jax.tree.leaves(keep)}

    def own(x):
        if id(x) in seen:
            return jnp.copy(x)
        seen.add(id(x))
        return x

    return jax.tree.map(own, state)


def fit(
    model: nnx.Module,
    images: np.ndarray,
    labels: np.ndarray,
    config: TrainConfig = TrainConfig(),
    *,
    orders: np.ndarray | None = None,
    shifts: np.ndarray | None = None,
    val_images: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    optimizer: optax.GradientTransformation | None = None,
    progress: bool = True,
    log_every: int = 50,
    on_epoch: Callable[[EpochStats], None] | None = None,
    checkpointing: Checkpointing | None = None,
    say: Callable[[str], None] | None = None,
    on_log: Callable[[int, float, float | None], None] | None = None,
) -> FitResult:
    """Train ``model`` in place for ``config.epochs`` epochs; validate after each when given a validation set.

    Each epoch runs ``N // batch_size`` full batches (the remainder is dropped, so
    every step has one compiled shape) in that epoch's order: ``orders``
    (``[epochs, N]``, each row a permutation), or drawn from ``config.seed`` as
    ``torch_ref.train.fit`` draws them. ``shifts`` (``[epochs, N, 2]``) translates
    the image at position j of epoch e's order; by default they are drawn when
    ``config.augment_shift`` is set. Dropout is on in training and off in validation,
    through views of the model (:func:`training_view`): the model keeps the mode it
    came in with; its parameters and its dropout stream are what training changes.
    ``config.precision`` must be the model's ``dtype`` (Flax decides precision when
    the model is built); the loss is computed in float32 either way.
    ``optimizer``: an optax transformation used as it is, instead of the one the
    config names (its learning rate is then not recorded). With several local
    devices each batch is split over them (``config.devices`` caps how many); in a
    multi-process run (``jax_impl.parallel.initialize``) over every process's devices,
    each process placing only its rows, and every process must call ``fit`` alike.
    ``on_epoch`` is called with each epoch's :class:`~mnist_common.EpochStats` as it ends
    (by default, with ``progress``, one line is printed); ``say`` with the lines before the first (compiling, and
    how long it took; by default printed with ``progress``); ``on_log(step, loss, lr)`` at every progress log
    (every ``log_every`` steps or second) with the mean training loss since the last. ``checkpointing`` keeps Orbax
    checkpoints (``jax_impl.checkpoint``) and, with ``resume``, continues from the newest.
    Raises FloatingPointError when the running loss stops being finite, and
    ``StopRequested`` (after a checkpoint) when a signal asked to stop.
    """
    n = len(images)
    if len(labels) != n:
        raise ValueError(f"{n} images but {len(labels)} labels")
    computes_in = jnp.dtype(getattr(model, "dtype", None) or jnp.float32)  # a Flax model's precision: its dtype
    if computes_in != jnp.dtype(config.precision):
        raise ValueError(f"the config asks for {config.precision} but the model computes in {computes_in}: "
                         f"build it with dtype=jnp.{config.precision}")
    orders, shifts, max_shift = training_tables(n, config, orders, shifts)
    batch_size = config.batch_size
    steps = n // batch_size
    if steps == 0:
        raise ValueError(f"batch_size {batch_size} is larger than the {n} training images")
    per_call = min(config.steps_per_call, steps)
    total_steps = config.epochs * steps
    if optimizer is None:
        optimizer, _ = make_optimizer(
            config.optimizer, config.lr, model=model, momentum=config.momentum, weight_decay=config.weight_decay,
            schedule=config.schedule, total_steps=total_steps, warmup_steps=config.warmup_steps,
        )
        lr_at = functools.partial(config.lr_at, total_steps=total_steps)
    else:
        lr_at = lambda step: None  # noqa: E731 - the caller's schedule is not ours to read
    opt = nnx.Optimizer(model, optimizer, wrt=getattr(model, "trainable", nnx.Param))  # frozen layers: not in it
    graphdef, state = nnx.split((training_view(model), opt))  # the model's own mode is left as it is
    state = _donatable(state, keep=nnx.state(model))  # donated below; the model's own arrays stay valid
    mesh = batch_mesh(batch_size, config.devices)
    replicated = NamedSharding(mesh, P()) if mesh else jax.local_devices()[0]
    by_batch = NamedSharding(mesh, P(None, "batch")) if mesh else jax.local_devices()[0]  # [steps, B, ...]
    single = jax.local_devices()[0]  # validation runs on one device

    def placed(tree, where):
        """``tree`` on ``where``: with a mesh through the host (``jax_impl.parallel.place``)."""
        return place(tree, where) if mesh else jax.device_put(tree, where)

    checkpointer, done_before = None, Progress()
    if checkpointing is not None:
        from jax_impl.checkpoint import Checkpointer

        checkpointer = Checkpointer(checkpointing)
        if checkpointing.resume:
            state, done_before = checkpointer.restore(state, steps) or (state, done_before)
    state = placed(state, replicated)
    x_train = placed(normalize(images), replicated)  # on the device(s) once, [N, 28, 28, 1]
    y_train = placed(np.asarray(labels, np.int32), replicated)
    if val_images is not None:
        evaluator = _Evaluator(model, val_images, val_labels, config.eval_batch_size)

    def epoch_tables(epoch):  # order [steps, B] int32 and shifts [steps, B, 2]: one transfer per epoch
        order = orders[epoch, : steps * batch_size].reshape(steps, batch_size).astype(np.int32)
        if shifts is None:
            return placed(order, by_batch), placed(np.zeros((steps, batch_size, 2), np.int8), by_batch)
        shift = shifts[epoch, : steps * batch_size].reshape(steps, batch_size, 2).astype(np.int8)
        return placed(order, by_batch), placed(shift, by_batch)

    def loss_start(value: float = 0.0):  # the epoch's running loss sum, on the device(s)
        return placed(np.asarray(value, np.float32), replicated)

    all_reduce = all_reduce_for(config.all_reduce, mesh, model)
    recipe = StepRecipe(label_smoothing=float(config.label_smoothing), max_shift=max_shift,
                        flat_over=mesh if all_reduce == "flat" else None)
    args = (state, loss_start(), x_train, y_train, *epoch_tables(0), np.int32(0))
    say = speaker("jax", say, progress)
    say("compiling the training step" + (" and the evaluation step" if val_images is not None else "") + " (XLA)")
    t0 = time.perf_counter()
    calls = {}  # updates per call -> compiled function: per_call, and the epoch's remainder
    for count in {per_call, steps % per_call} - {0}:
        calls[count] = (train_step.lower(graphdef, recipe, *args) if count == 1
                        else train_steps.lower(graphdef, recipe, count, *args)).compile()
    compile_time = time.perf_counter() - t0
    if val_images is not None:  # the evaluation step, compiled before the clock starts
        compile_time += evaluator.compile(placed(state[0], single))
    say(f"compiled in {compile_time:.1f} s")
    # Per device (batch_size / devices images). Only on a CPU: XLA GPU's cost analysis leaves out library
    # calls (cuDNN, cuBLAS). Counted on the one-update step: a loop's cost is not its body's times its trips.
    flops = None
    if jax.default_backend() == "cpu":
        flops = step_flops(calls[1] if 1 in calls else train_step.lower(graphdef, recipe, *args).compile())

    def save(kept: Progress) -> None:
        checkpointer.save(state, kept, steps)

    def validate() -> dict:
        if val_images is None:
            return {}
        summary = _summary(*evaluator(placed(state[0], single)), np.asarray(val_labels))
        return {"val_loss": summary["loss"], "val_accuracy": summary["accuracy"]}

    epochs = Epochs("jax", config, steps, done_before=done_before, checkpointing=checkpointing,
                    save=save if checkpointer is not None else None, lr_at=lr_at, on_epoch=on_epoch,
                    progress=progress, log_every=log_every, say=say, on_log=on_log,
                    on_stop=lambda: nnx.update((model, opt), placed(state, single)))  # what was trained, kept
    warm = None
    for epoch, start in epochs:
        order, shift = epoch_tables(epoch)
        loss_sum = loss_start(epochs.loss_before(epoch, start))
        bar = epochs.bar(epoch, start)
        t0 = time.perf_counter()
        state, loss_sum, warm_up, done = train_epoch(
            calls, state, loss_sum, (x_train, y_train), order, shift, steps=steps, per_call=per_call,
            progress=bar, warm_up=epochs.first(epoch), start=start)
        jax.block_until_ready(state)
        epoch_time = epochs.elapsed(start, t0)
        bar.close()
        if epochs.first(epoch):
            warm = warm_up or WarmUp(0.0)  # (a signal before the first call)
        if done < steps:  # a signal asked to stop: keep where we are, then say so
            epochs.stop_inside(epoch, done, float(loss_sum), epoch_time)
        epochs.end(epoch, float(loss_sum), epoch_time, steps * batch_size, validate())

    nnx.update((model, opt), placed(state, single))  # the model lives on one device again
    warm = warm or WarmUp(0.0)  # (a resumed run that had nothing left to train)
    return FitResult(
        history=epochs.history,
        train_time_s=epochs.train_time_s,
        compile_time_s=compile_time,
        warmup_time_s=warm.first_step_s,
        steps_per_epoch=steps,
        batch_size=batch_size,
        steps_per_call=per_call,
        devices=mesh.size if mesh else 1,
        all_reduce=all_reduce,
        processes=jax.process_count(),
        # XLA's own count of the compiled step's floating-point operations, per training image
        train_flops_per_image=flops / (batch_size / (mesh.size if mesh else 1)) if flops else None,
        resumed_from=epochs.resumed_from,
    )
