"""One path from a preset and overrides to checked settings: the runner, the parity suite and scripts use it.

``resolve("vit", "cpu", {"epochs": 10})`` starts from the model's preset,
applies the overrides that are given (None means "not given"), checks every
value, and returns a frozen :class:`Settings`. ``settings.train_config(n)`` is
the :class:`~mnist_common.TrainConfig` both frameworks' ``fit`` take. A bad
value raises :class:`~mnist_common.ConfigError` naming the field, which the
runner prints as its flag.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path

from benchmarks.presets import PRESET_NAMES
from benchmarks.registry import MODELS
from mnist_common.architectures import MIN_IMAGE_SIZE, WEIGHTS_CHOICES
from mnist_common.config import KERNELS, OPTIMIZERS, ConfigError, TrainConfig

NUM_TEST = 10000  # MNIST's test images


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything one model's runs are made from (a seed at a time); see ``python -m benchmarks.run --help``."""

    model: str
    preset: str
    optimizer: str
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    schedule: str
    warmup_epochs: float
    weight_decay: float
    label_smoothing: float
    augment_shift: int
    train_size: int | None  # None: the whole training split
    val_size: int
    test_size: int | None  # None: all 10,000 test images
    eval_batch_size: int
    variant: str | None = None
    weights: str | None = None  # torchvision models: auto | pretrained | none | a path
    image_size: int | None = None  # torchvision models
    freeze_features: bool = False  # VGG16, AlexNet
    precision: str = "float32"  # or bfloat16: mixed precision, both frameworks
    kernels: str = "auto"  # JAX models
    steps_per_call: int = 1  # JAX
    torch_compile: str = "none"  # PyTorch: a torch.compile mode
    channels_last: bool = False  # PyTorch convnets
    devices: int | None = None
    seed: int = 0

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)

    def train_config(self, num_train: int) -> TrainConfig:
        """The training settings for ``num_train`` training images (warm-up epochs become steps)."""
        steps = num_train // max(self.batch_size, 1)  # (a batch size below 1 is TrainConfig's to refuse)
        return TrainConfig(
            epochs=self.epochs, batch_size=self.batch_size, optimizer=self.optimizer, lr=self.lr,
            momentum=self.momentum, weight_decay=self.weight_decay, schedule=self.schedule,
            warmup_steps=round(self.warmup_epochs * steps), label_smoothing=self.label_smoothing,
            augment_shift=self.augment_shift, seed=self.seed, eval_batch_size=self.eval_batch_size,
            precision=self.precision, steps_per_call=self.steps_per_call, devices=self.devices,
            torch_compile=self.torch_compile, channels_last=self.channels_last,
        )

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


#: Fields an override may set (everything but which model and preset).
OVERRIDABLE = tuple(f.name for f in dataclasses.fields(Settings) if f.name not in ("model", "preset"))

#: Fields only some models have: field -> does it apply to this model?
_APPLIES = {
    "weights": lambda name, spec: spec.finetune,
    "image_size": lambda name, spec: spec.finetune,
    "freeze_features": lambda name, spec: name in ("vgg16", "alexnet"),
    "kernels": lambda name, spec: spec.jax is not None and not spec.finetune,  # the ports have stock layers only
    "torch_compile": lambda name, spec: spec.torch_task is None,  # not the detector
    "channels_last": lambda name, spec: spec.convnet,
    "variant": lambda name, spec: bool(spec.variants),
}


def resolve(model: str, preset: str, overrides: Mapping[str, object] | None = None, *,
            strict: bool = True) -> Settings:
    """The preset's settings for ``model``, with ``overrides`` applied and every value checked.

    ``strict`` (one model): an override that does not apply to ``model`` (``weights``
    for the CNN) is an error; otherwise (several models share the overrides) it is
    left out for this model. Raises :class:`~mnist_common.ConfigError`.
    """
    if model not in MODELS:
        raise ConfigError("model", f"{model!r} is unknown (choose from {', '.join(MODELS)})")
    if preset not in PRESET_NAMES:
        raise ConfigError("preset", f"{preset!r} is unknown (choose from {', '.join(PRESET_NAMES)})")
    spec = MODELS[model]
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(given) - set(OVERRIDABLE))
    if unknown:
        raise ConfigError(unknown[0], "is not a setting")
    for field, applies in _APPLIES.items():
        if field in given and not applies(model, spec):
            if strict and field != "variant":
                raise ConfigError(field, f"does not apply to {model}")
            if strict:
                raise ConfigError(field, f"{given[field]!r} is unknown for {model} (this model has no variants)")
            del given[field]
    if not strict and given.get("variant") not in (None, *spec.variants):
        del given["variant"]  # meant for another model of the list
    p = spec.presets[preset]
    optimizer = given.get("optimizer", p.optimizer)
    if optimizer not in OPTIMIZERS:
        raise ConfigError("optimizer", f"{optimizer!r} is unknown (choose from {', '.join(OPTIMIZERS)})")
    base = dict(
        optimizer=optimizer, epochs=p.epochs, batch_size=p.batch_size, lr=p.lr[optimizer], momentum=p.momentum,
        schedule=p.schedule, warmup_epochs=p.warmup_epochs, weight_decay=p.weight_decay,
        label_smoothing=p.label_smoothing, augment_shift=p.augment_shift, train_size=p.train_size,
        val_size=p.val_size, test_size=p.test_size, eval_batch_size=p.eval_batch_size, variant=p.variant,
        weights=p.weights, image_size=p.image_size, freeze_features=p.freeze_features, precision=p.precision,
    )
    settings = Settings(model=model, preset=preset, **(base | given))
    _check(settings, spec)
    return settings


def applies(field: str, model: str) -> bool:
    """Whether ``field`` is a setting of ``model`` (the fields only some models have; all others apply)."""
    rule = _APPLIES.get(field)
    return rule is None or rule(model, MODELS[model])


def check(s: Settings) -> None:
    """Raise ConfigError for the first value of ``s`` out of range."""
    _check(s, MODELS[s.model])


def _check(s: Settings, spec) -> None:
    """Raise ConfigError for the first value out of range (TrainConfig checks the training ones)."""
    if not math.isfinite(s.warmup_epochs):
        raise ConfigError("warmup_epochs", f"must be a finite number, got {s.warmup_epochs}")
    s.train_config(num_train=0)  # checks the training settings (warm-up steps aside, which need the data)
    if s.variant is not None and s.variant not in spec.variants:
        raise ConfigError("variant", f"{s.variant!r} is unknown for {s.model} (choose from {', '.join(spec.variants)})")
    checks = (
        ("warmup_epochs", s.warmup_epochs >= 0, f"must be >= 0, got {s.warmup_epochs}"),
        ("val_size", s.val_size >= 0, f"must be >= 0, got {s.val_size}"),
        ("train_size", s.train_size is None or s.train_size >= 1, f"must be at least 1, got {s.train_size}"),
        ("test_size", s.test_size is None or 0 < s.test_size <= NUM_TEST,
         f"must be in [1, {NUM_TEST}], got {s.test_size}"),
        ("kernels", s.kernels in KERNELS, f"{s.kernels!r} is unknown (choose from {', '.join(KERNELS)})"),
        ("label_smoothing", not (s.label_smoothing and s.model == "faster_rcnn"),
         "does not apply to faster_rcnn (its losses are the detector's own)"),
    )
    for field, ok, problem in checks:
        if not ok:
            raise ConfigError(field, problem)
    if spec.finetune:
        minimum = MIN_IMAGE_SIZE[s.model]
        if s.image_size is None or s.image_size < minimum:
            raise ConfigError("image_size", f"must be >= {minimum} px for {s.model}, got {s.image_size}")
        if s.weights not in WEIGHTS_CHOICES and not Path(s.weights).is_file():
            what = "is a folder, not a file" if Path(s.weights).is_dir() else "no such file"
            raise ConfigError("weights", f"{s.weights}: {what} (expected {', '.join(WEIGHTS_CHOICES)} "
                              "or a state-dict file)")
