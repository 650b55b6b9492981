"""Training settings and results, one definition for both frameworks' ``fit``.

:class:`TrainConfig` is what a training run is (checked when made: a bad
value fails before anything is built); :class:`FitResult` is what ``fit``
returns, with one :class:`EpochStats` per epoch. Both frameworks fill the same
fields the same way, so a report never has to ask which framework it reads.
"""

from __future__ import annotations

import dataclasses
import math

from mnist_common.schedules import SCHEDULES, schedule_factor

OPTIMIZERS = ("adam", "adamw", "sgd")
#: JAX models' layer implementations (``jax_impl.kernels``): auto (tuned on a CPU), stock Flax, tuned for XLA CPU.
KERNELS = ("auto", "stock", "tuned")
#: Computation precision: parameters and optimizer state stay float32 either way.
PRECISIONS = ("float32", "bfloat16")
#: ``torch.compile`` modes for the PyTorch training step (``none``: eager).
TORCH_COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")
MAX_AUGMENT_SHIFT = 8  # pixels; beyond that a 28 px digit leaves the frame
MAX_SEED = 2**32 - 1  # seeds are unsigned 32-bit integers, as NumPy's, PyTorch's and JAX's generators all take


class ConfigError(ValueError):
    """A setting out of range: ``field`` names it, ``problem`` says what is wrong (one line)."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field} {problem}")
        self.field, self.problem = field, problem


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train: one frozen value that both ``jax_impl.train.fit`` and ``torch_ref.train.fit`` take.

    ``optimizer`` names one of :data:`OPTIMIZERS` (a caller may instead hand
    ``fit`` an optax transformation or a ``torch.optim`` factory);
    ``weight_decay`` is AdamW's, kept off norms, biases and embeddings;
    ``schedule`` is per step (:data:`SCHEDULES`), after ``warmup_steps`` of
    linear warm-up; ``augment_shift`` shifts each training image by up to that
    many pixels. ``seed`` draws the epoch orders and shifts when ``fit`` is not
    given them (the same draw in both frameworks). ``precision`` is where the
    arithmetic happens: ``bfloat16`` computes in bfloat16 with float32
    parameters and optimizer state (PyTorch: autocast in ``fit``; JAX: the
    model is built with ``dtype=jnp.bfloat16``, which ``fit`` checks).
    ``steps_per_call`` and ``devices`` are JAX's (updates per compiled call;
    local devices sharing each batch, None for all that divide it);
    ``torch_compile`` (a ``torch.compile`` mode, ``none`` for eager) and
    ``channels_last`` (the convolutions' memory format) are PyTorch's. A
    framework ignores the other's fields.
    """

    epochs: int = 1
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    label_smoothing: float = 0.0
    augment_shift: int = 0
    seed: int = 0
    eval_batch_size: int = 1000
    precision: str = "float32"
    steps_per_call: int = 1
    devices: int | None = None
    torch_compile: str = "none"
    channels_last: bool = False

    def __post_init__(self):
        for field in ("lr", "momentum", "weight_decay", "label_smoothing"):
            value = getattr(self, field)
            if not math.isfinite(value):
                raise ConfigError(field, f"must be a finite number, got {value}")
        checks = (
            ("epochs", self.epochs >= 1, f"must be at least 1, got {self.epochs}"),
            ("batch_size", self.batch_size >= 1, f"must be at least 1, got {self.batch_size}"),
            ("optimizer", self.optimizer in OPTIMIZERS,
             f"{self.optimizer!r} is unknown (choose from {', '.join(OPTIMIZERS)})"),
            ("lr", self.lr > 0, f"must be positive, got {self.lr}"),
            ("momentum", 0 <= self.momentum < 1, f"must be in [0, 1), got {self.momentum}"),
            ("weight_decay", self.weight_decay >= 0, f"must be >= 0, got {self.weight_decay}"),
            ("weight_decay", not self.weight_decay or self.optimizer == "adamw",
             f"needs optimizer adamw, not {self.optimizer} (or set weight decay 0)"),
            ("schedule", self.schedule in SCHEDULES,
             f"{self.schedule!r} is unknown (choose from {', '.join(SCHEDULES)})"),
            ("warmup_steps", self.warmup_steps >= 0, f"must be >= 0, got {self.warmup_steps}"),
            ("label_smoothing", 0 <= self.label_smoothing < 1, f"must be in [0, 1), got {self.label_smoothing}"),
            ("augment_shift", 0 <= self.augment_shift <= MAX_AUGMENT_SHIFT,
             f"must be in [0, {MAX_AUGMENT_SHIFT}] pixels, got {self.augment_shift}"),
            ("seed", 0 <= self.seed <= MAX_SEED, f"must be in [0, {MAX_SEED}], got {self.seed}"),
            ("eval_batch_size", self.eval_batch_size >= 1, f"must be at least 1, got {self.eval_batch_size}"),
            ("steps_per_call", self.steps_per_call >= 1, f"must be at least 1, got {self.steps_per_call}"),
            ("devices", self.devices is None or self.devices >= 1, f"must be at least 1, got {self.devices}"),
            ("precision", self.precision in PRECISIONS,
             f"{self.precision!r} is unknown (choose from {', '.join(PRECISIONS)})"),
            ("torch_compile", self.torch_compile in TORCH_COMPILE_MODES,
             f"{self.torch_compile!r} is unknown (choose from {', '.join(TORCH_COMPILE_MODES)})"),
        )
        for field, ok, problem in checks:
            if not ok:
                raise ConfigError(field, problem)

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
    processes: int = 1  # processes of a multi-process run (benchmarks.launch, torchrun, SLURM)
    compiled_steps: int = 0  # compiled PyTorch: the first steps, which compiled; their time is compile_time_s
    train_flops_per_image: float | None = None  # XLA's count of the compiled step, where it is complete
    recompilations: int = 0  # compilations after warm-up (compiled PyTorch)

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
