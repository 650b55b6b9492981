"""Training settings and results, one definition for both frameworks' ``fit``.

:class:`TrainConfig` is what a training run is (checked when made: a bad
value fails before anything is built); :class:`FitResult` is what ``fit``
returns, with one :class:`EpochStats` per epoch. Both frameworks fill the same
fields the same way, so a report never has to ask which framework it reads.
"""

from __future__ import annotations

import dataclasses

from mnist_common.schedules import SCHEDULES, schedule_factor
from mnist_common.settings import FINITE, NON_NEGATIVE, POSITIVE, ConfigError, at_least, check_fields, in_range, setting

OPTIMIZERS = ("adam", "adamw", "sgd")
#: JAX models' layer implementations (``jax_impl.kernels``): auto (tuned on a CPU), stock Flax, tuned for XLA CPU.
KERNELS = ("auto", "stock", "tuned")
#: How JAX sums gradients over devices: auto (flat across processes where the model allows), one flat buffer, XLA's own.
ALL_REDUCES = ("auto", "flat", "xla")
#: Computation precision: parameters and optimizer state stay float32 either way.
PRECISIONS = ("float32", "bfloat16")
#: ``torch.compile`` modes for the PyTorch training step (``none``: eager).
TORCH_COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")
MAX_AUGMENT_SHIFT = 8  # pixels; beyond that a 28 px digit leaves the frame
MAX_SEED = 2**32 - 1  # seeds are unsigned 32-bit integers, as NumPy's, PyTorch's and JAX's generators all take


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train: one frozen value that both ``jax_impl.train.fit`` and ``torch_ref.train.fit`` take.

    Each field is a setting declared once (:func:`mnist_common.settings.setting`):
    its default, its check and what it means, which the harness's command line and
    reports take from here. A bad value fails when the config is made, before
    anything is built. ``optimizer`` may instead be an optax transformation or a
    ``torch.optim`` factory handed to ``fit``; ``seed`` draws the epoch orders and
    shifts when ``fit`` is not given them (the same draw in both frameworks);
    ``precision`` bfloat16 computes in bfloat16 with float32 parameters and optimizer
    state (PyTorch: autocast in ``fit``; JAX: the model is built with
    ``dtype=jnp.bfloat16``, which ``fit`` checks). ``steps_per_call`` and ``devices``
    are JAX's, ``torch_compile`` and ``channels_last`` PyTorch's: a framework ignores
    the other's fields.
    """

    epochs: int = setting(1, "training epochs", check=at_least(1))
    batch_size: int = setting(128, "training batch size", check=at_least(1))
    optimizer: str = setting("adam", "optimizer", choices=OPTIMIZERS)
    lr: float = setting(1e-3, "base learning rate, per optimizer", check=(FINITE, POSITIVE))
    momentum: float = setting(0.9, "SGD momentum", check=(FINITE, in_range(0, 1)), record="sgd")
    weight_decay: float = setting(0.0, "AdamW weight decay, kept off norms, biases and embeddings",
                                  check=(FINITE, NON_NEGATIVE), shown="weight decay {:g}")
    schedule: str = setting("constant", "learning-rate schedule, per step", choices=SCHEDULES)
    warmup_steps: int = setting(0, "linear warm-up steps before the schedule", check=NON_NEGATIVE, flag=False,
                                record=None)  # the harness sets it from --warmup-epochs
    label_smoothing: float = setting(0.0, "label smoothing of the training loss", check=(FINITE, in_range(0, 1)),
                                     shown="label smoothing {:g}")
    augment_shift: int = setting(0, "random shifts of up to PIXELS each way, the same in both frameworks; 0: none",
                                 check=in_range(0, MAX_AUGMENT_SHIFT, high_included=True), metavar="PIXELS",
                                 shown="shifts up to {} px")
    seed: int = setting(0, "seed of the initial weights, the dropout stream and the epoch order",
                        check=in_range(0, MAX_SEED, high_included=True), flag=False)  # the runner's --seed/--seeds
    eval_batch_size: int = setting(1000, "evaluation batch size", check=at_least(1), flag=False, record=None)
    precision: str = setting("float32", "computation precision, both frameworks: bfloat16 computes in bfloat16 with "
                             "float32 parameters and optimizer state (Flax dtype, PyTorch autocast)",
                             choices=PRECISIONS, modes=True, shown="{}")
    steps_per_call: int = setting(1, "JAX: N training steps per compiled call (a lax.fori_loop: the same updates, "
                                  "fewer dispatches, for GPUs); PyTorch ignores it", check=at_least(1),
                                  from_preset=False, metavar="N", record=None)
    devices: int | None = setting(None, "devices per run, the same for both frameworks: JAX splits each batch over "
                                  "N local devices (data parallelism); PyTorch trains on one", check=at_least(1),
                                  from_preset=False, metavar="N", record=None,
                                  default_text="1 with --framework both, else every local device that divides the "
                                  "batch")
    all_reduce: str = setting("auto", "JAX over several devices or processes: sum the gradients raveled into one "
                              "buffer, one all-reduce per step (flat), or as XLA partitions the step, one all-reduce "
                              "of every tensor (xla); auto: flat across processes where the model allows it (tuned "
                              "dropout, no batch statistics), else xla; each run records the choice it resolved to",
                              choices=ALL_REDUCES, from_preset=False, record="jax")
    torch_compile: str = setting("none", "PyTorch: torch.compile the training step (forward, loss, backward, "
                                 "optimizer update) and the evaluation forward pass in this mode, or none for eager",
                                 choices=TORCH_COMPILE_MODES, modes=True, from_preset=False, applies="compilable",
                                 record="torch")
    channels_last: bool = setting(False, "PyTorch convnets (CNN, VGG16, AlexNet): channels-last memory format",
                                  modes=True, from_preset=False, applies="convnet", record="torch")

    def __post_init__(self):
        check_fields(self)
        if self.weight_decay and self.optimizer != "adamw":
            raise ConfigError("weight_decay", f"needs optimizer adamw, not {self.optimizer} (or set weight decay 0)")

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def lr_at(self, step: int, total_steps: int) -> float:
        """The scheduled learning rate of update ``step`` (from 0) in a run of ``total_steps``."""
        return self.lr * schedule_factor(step, schedule=self.schedule, total_steps=total_steps,
                                         warmup_steps=self.warmup_steps)


@dataclasses.dataclass(frozen=True)
class EpochStats:
    """One training epoch: mean training loss (dropout on), wall time, the last step's learning rate
    (None when the caller supplied the optimizer and it is unknown), and validation when there was some."""

    epoch: int
    train_loss: float
    epoch_time_s: float
    images_per_s: float
    lr: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None

    def as_dict(self) -> dict:
        """The record written to results.json: fields that are None are left out."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What ``fit`` measured. ``train_time_s`` is the training epochs only (no compilation, no
    validation); ``compile_time_s`` is ahead-of-time compilation (0 for eager PyTorch);
    ``warmup_time_s`` is the first call, synchronised (``steps_per_call`` updates). Compiled PyTorch
    compiles during its first calls: those, until a call compiles nothing new, are its
    ``compile_time_s`` and are not in ``train_time_s``; later compilations are ``recompilations``."""

    history: list[EpochStats]
    train_time_s: float
    compile_time_s: float
    warmup_time_s: float
    steps_per_epoch: int
    batch_size: int
    steps_per_call: int = 1
    devices: int = 1  # devices sharing each batch, over every process
    processes: int = 1  # processes of a multi-process run (harness.launch, torchrun, SLURM)
    all_reduce: str | None = None  # JAX over several devices: how the gradients were summed ("flat", "xla")
    compiled_steps: int = 0  # compiled PyTorch: the first steps, which compiled; their time is compile_time_s
    train_flops_per_image: float | None = None  # XLA's count of the compiled step, where it is complete
    recompilations: int = 0  # compilations after warm-up (compiled PyTorch)
    resumed_from: tuple[int, int] | None = None  # (epoch, step) of the checkpoint it went on from; None: from start

    @property
    def images_per_epoch(self) -> int:
        return self.steps_per_epoch * self.batch_size

    @property
    def train_loss(self) -> float:
        """The last epoch's mean training loss."""
        return self.history[-1].train_loss if self.history else float("nan")

    @property
    def images_per_s(self) -> float:
        """Steady-state training throughput: epochs 2.. over their time; with one epoch, the
        epoch without its first (separately timed) call."""
        if not self.history:
            return float("nan")
        if len(self.history) > 1:
            return self.images_per_epoch * (len(self.history) - 1) / sum(h.epoch_time_s for h in self.history[1:])
        if self.compiled_steps:  # compiled PyTorch: those steps are out of the epoch's time already
            rest = self.history[0].epoch_time_s
            images = self.images_per_epoch - self.batch_size * self.compiled_steps
        else:
            rest = self.history[0].epoch_time_s - self.warmup_time_s
            images = self.images_per_epoch - self.batch_size * self.steps_per_call
        return images / rest if rest > 0 and images > 0 else self.history[0].images_per_s
