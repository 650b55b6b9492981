"""Every setting of a run, declared once, and what is derived from the declarations.

:class:`Settings` is :class:`~mnist_common.TrainConfig` (the training settings) plus
what the harness adds (the model, its size and weights, the data sizes, the JAX
layers). Each field is declared with :func:`mnist_common.settings.setting`: its
type, default, checks, help, whether the presets set it, which models it applies
to, how a run record holds it and how the presets table shows it. From those
declarations come:

* the command line: :func:`add_flags` and :func:`overrides` (``--epochs``, ``--lr``...);
* the checks: a ``Settings`` is checked when made (:class:`~mnist_common.ConfigError`,
  which the runner prints with the field's flag);
* ``TrainConfig``: :meth:`Settings.train_config`, every training field as it is;
* the run record's settings: :meth:`Settings.record`;
* the presets table: :func:`presets_table` (``--list-presets``).

Adding a hyperparameter is one field: in ``TrainConfig`` when both frameworks'
``fit`` read it, else in ``Settings``; a preset that wants another default than the
field's names it in ``harness.presets``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from pathlib import Path

from harness.presets import COMMON, PRESET_NAMES
from harness.registry import MODELS
from harness.report.markdown import table
from mnist_common.architectures import MIN_IMAGE_SIZE, WEIGHTS_CHOICES
from mnist_common.config import KERNELS, TrainConfig
from mnist_common.settings import FINITE, NON_NEGATIVE, ConfigError, at_least, declared, in_range, setting

NUM_TRAIN, NUM_TEST = 60000, 10000  # MNIST's training and test images (the loader refuses any other set)

_VARIANTS = "; ".join(f"{n}: {', '.join(m.variants)}" for n, m in MODELS.items() if m.variants)
_MINIMUM = ", ".join(f"{m} needs >= {px}" for m, px in MIN_IMAGE_SIZE.items())


@dataclasses.dataclass(frozen=True)
class Settings(TrainConfig):
    """Everything one run is made from: the training settings (``TrainConfig``'s fields) and the harness's own.

    Made by :func:`resolve` from a model's preset and overrides; see ``python -m benchmarks.run --help``.
    """

    model: str = setting("cnn", "model", flag=False)
    preset: str = setting("cpu", "hyperparameter preset", flag=False)
    warmup_epochs: float = setting(0.0, "linear warm-up before the cosine decay, in epochs",
                                   check=(FINITE, NON_NEGATIVE), record=None,
                                   shown=lambda v: f"{v:g} warm-up epoch{'' if v == 1 else 's'}")
    train_size: int | None = setting(None, "train on the first N images of the shuffled training split",
                                     check=at_least(1), metavar="N", record=None)
    val_size: int = setting(5000, "validation images held out of the 60,000 training images", check=NON_NEGATIVE,
                            metavar="N", record=None)
    test_size: int | None = setting(None, "evaluate on a fixed random subset of N test images",
                                    check=in_range(1, NUM_TEST, high_included=True), metavar="N", record=None)
    variant: str | None = setting(None, f"model size from the model's variants table ({_VARIANTS})",
                                  applies="variants", shown="variant {}")
    weights: str | None = setting(None, "initial weights. CNN and ViT: an exported model folder (OUT/models/<run>, "
                                  "trained by either framework) to start from, or none (random init, the default). "
                                  "torchvision models: pretrained (torchvision's, from the TORCH_HOME cache or "
                                  "downloaded), none (random init), auto (pretrained when available, else random "
                                  "init with a warning), or a state-dict file (torch.save or .safetensors)",
                                  applies="finetune", metavar="{auto,pretrained,none,PATH}", record=None,
                                  shown="weights {}")  # (a record names the weights it really used; a CNN or ViT
    # takes it too when it names a folder: harness.settings.warm_start)
    image_size: int | None = setting(None, f"torchvision models: MNIST is resized to PX x PX ({_MINIMUM})",
                                     applies="finetune", metavar="PX", shown="{} px")
    freeze_features: bool = setting(False, "VGG16/AlexNet: train only the classifier layers", applies="freezable",
                                    shown="features frozen")
    kernels: str = setting("auto", "JAX models' layers: stock (Flax's own), tuned (jax_impl.kernels, the XLA-CPU "
                           "fast paths: same parameters and values), auto (tuned on a CPU, stock elsewhere); each run "
                           "records the choice it resolved to", choices=KERNELS, modes=True, from_preset=False,
                           applies="jax_layers", record="jax")

    def __post_init__(self):
        super().__post_init__()  # every declared field's checks, TrainConfig's own
        if self.model not in MODELS:
            raise ConfigError("model", f"{self.model!r} is unknown (choose from {', '.join(MODELS)})")
        if self.preset not in PRESET_NAMES:
            raise ConfigError("preset", f"{self.preset!r} is unknown (choose from {', '.join(PRESET_NAMES)})")
        spec = MODELS[self.model]
        if self.variant is not None and self.variant not in spec.variants:
            known = f"choose from {', '.join(spec.variants)}" if spec.variants else "this model has no variants"
            raise ConfigError("variant", f"{self.variant!r} is unknown for {self.model} ({known})")
        if self.all_reduce == "flat" and self.kernels == "stock":
            raise ConfigError("all_reduce", "flat needs the tuned layers (each device draws its rows of the batch's "
                              "dropout masks; Flax's own dropout cannot): use --kernels tuned, or --all-reduce xla")
        if self.label_smoothing and self.model == "faster_rcnn":
            raise ConfigError("label_smoothing", "does not apply to faster_rcnn (its losses are the detector's own)")
        if spec.finetune:
            minimum = MIN_IMAGE_SIZE[self.model]
            if self.image_size is None or self.image_size < minimum:
                raise ConfigError("image_size", f"must be >= {minimum} px for {self.model}, got {self.image_size}")
            if self.weights not in WEIGHTS_CHOICES and not Path(self.weights).is_file():
                what = "is a folder, not a file" if Path(self.weights).is_dir() else "no such file"
                raise ConfigError("weights", f"{self.weights}: {what} (expected {', '.join(WEIGHTS_CHOICES)} "
                                  "or a state-dict file)")
        elif self.weights == "none":  # random initialisation, as when no weights are given
            object.__setattr__(self, "weights", None)
        elif self.weights is not None and not Path(self.weights).is_dir():
            what = "is a file, not a model folder" if Path(self.weights).is_file() else "no such model folder"
            raise ConfigError("weights", f"{self.weights}: {what} (a {self.model} starts from an exported model "
                              "folder, OUT/models/<run>)")

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)

    def train_config(self, num_train: int) -> TrainConfig:
        """The training settings for ``num_train`` training images: ``TrainConfig``'s fields as they are, the
        warm-up epochs as steps."""
        steps = num_train // self.batch_size
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(TrainConfig)}
        return TrainConfig(**values | {"warmup_steps": round(self.warmup_epochs * steps)})

    def num_train(self) -> int:
        """The training images: ``train_size``, or the training split without its validation images."""
        return self.train_size or NUM_TRAIN - self.val_size

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f, _ in declared(self) if f.name != "warmup_steps"}

    def record(self, framework: str) -> dict:
        """The settings as a run record holds them (each field's ``record`` rule): the value, or None where the
        setting does not apply to this model, framework or optimizer; counts and derived values are the
        record's own (``harness.record``)."""
        spec = MODELS[self.model]
        out = {}
        for field, meta in declared(self):
            rule = meta["record"]
            if rule is None:
                continue
            value = getattr(self, field.name)
            if rule in ("jax", "torch") and framework != rule or rule == "sgd" and self.optimizer != "sgd" \
                    or not spec.can(meta["applies"]):
                value = None
            out[field.name] = value
        return out


#: Fields an override may set (everything but which model and preset); flags are the ones with a flag.
OVERRIDABLE = tuple(f.name for f, _ in declared(Settings) if f.name not in ("model", "preset", "warmup_steps"))


def resolve(model: str, preset: str, overrides: Mapping[str, object] | None = None, *,
            strict: bool = True) -> Settings:
    """The preset's settings for ``model``, with ``overrides`` applied (None means "not given"), every value checked.

    ``strict`` (one model): an override that does not apply to ``model`` (``weights``
    ``pretrained`` or a file for the CNN, whose ``weights`` can only name an exported model
    folder, :func:`warm_start`, or be none, its random start) is an error; otherwise (several models share the
    overrides) it is left out for this model. Raises :class:`~mnist_common.ConfigError`.
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
    for field in list(given):
        if applies(field, model) or field == "weights" and (given[field] == "none" or warm_start(model, given[field])):
            continue
        if strict and field == "weights" and Path(given[field]).is_file():
            raise ConfigError(field, f"{given[field]}: is a file, not a model folder (a {model} starts from an "
                              "exported model folder, OUT/models/<run>)")
        if strict and field == "variant":
            raise ConfigError(field, f"{given[field]!r} is unknown for {model} (this model has no variants)")
        if strict:
            raise ConfigError(field, f"does not apply to {model}")
        del given[field]
    if not strict and given.get("variant") not in (None, *spec.variants):
        del given["variant"]  # meant for another model of the list
    values = COMMON | spec.presets[preset] | given
    optimizer = values.get("optimizer", TrainConfig.optimizer)
    if isinstance(values.get("lr"), Mapping):  # the preset's rate for this optimizer
        if optimizer not in values["lr"]:
            raise ConfigError("optimizer", f"{optimizer!r} is unknown (choose from {', '.join(values['lr'])})")
        values["lr"] = values["lr"][optimizer]
    return Settings(model=model, preset=preset, **values)


def warm_start(model: str, weights: str) -> bool:
    """Whether ``weights`` asks ``model`` to start from an exported model: a CNN or ViT, and a value that is neither
    a torchvision choice nor a file (those are the torchvision models'): a folder, checked later."""
    return not MODELS[model].finetune and weights not in WEIGHTS_CHOICES and not Path(weights).is_file()


def applies(field: str, model: str) -> bool:
    """Whether ``field`` is a setting of ``model`` (its declaration's ``applies``, a capability of the model)."""
    meta = next(m for f, m in declared(Settings) if f.name == field)
    return MODELS[model].can(meta["applies"])


# ----------------------------------------------------------------------------------------------- command line


def flag(field: str) -> str:
    """``--batch-size`` for ``batch_size``."""
    return "--" + field.replace("_", "-")


_FROM_PRESET = "(default: from the preset, see --list-presets)"


def add_flags(parser: argparse.ArgumentParser, settings: type = Settings) -> None:
    """A flag for every declared setting that has one, its help and metavar from the declaration. Every default
    is None ("not given"): the preset, then the field, decide; a mode flag takes a comma-separated list."""
    for field, meta in declared(settings):
        if not meta["flag"]:
            continue
        default = "" if meta["from_preset"] else f"(default: {meta['default_text'] or _shown_default(field)})"
        help_text = f"{meta['help']}{'; a list runs each' if meta['modes'] else ''} {default or _FROM_PRESET}"
        choices = "{" + ",".join(meta["choices"] or ("on", "off")) + "}"
        if meta["modes"]:
            kwargs = {"metavar": choices + "[,...]"}
            if field.type in ("bool", bool):
                kwargs |= {"nargs": "?", "const": "on"}  # --channels-last alone means on
        elif field.type in ("bool", bool):
            kwargs = {"action": argparse.BooleanOptionalAction}
        else:
            kind = {"int": int, "int | None": int, "float": float}.get(str(field.type), str)
            kwargs = {"type": kind, "metavar": meta["metavar"] or (choices if meta["choices"] else None)}
        parser.add_argument(flag(field.name), default=None, help=help_text, **kwargs)


def _shown_default(field: dataclasses.Field) -> str:
    return {None: "none", False: "off"}.get(field.default, str(field.default))


def mode_lists(args: argparse.Namespace, settings: type = Settings) -> dict[str, list | None]:
    """The mode flags (``--kernels stock,tuned``...) as lists of values (None: not given); ConfigError for an
    unknown value or one listed twice."""
    lists = {}
    for field, meta in declared(settings):
        if not meta["modes"]:
            continue
        text = getattr(args, field.name, None)
        if text is None:
            lists[field.name] = None
            continue
        values = [v.strip() for v in str(text).split(",") if v.strip()] or [""]
        if field.type in ("bool", bool):
            bad = [v for v in values if v not in ("on", "off")]
            if bad:
                raise ConfigError(field.name, f"{bad[0]!r} is unknown (choose from on, off)")
            values = [v == "on" for v in values]
        if len(set(values)) != len(values):
            raise ConfigError(field.name, "lists a mode twice")
        lists[field.name] = values
    return lists


def overrides(args: argparse.Namespace, settings: type = Settings) -> dict:
    """The settings the command line gives (None where not given); a mode list gives its first value."""
    given = {f.name: getattr(args, f.name, None) for f, meta in declared(settings) if meta["flag"]}
    for name, values in mode_lists(args, settings).items():
        given[name] = values[0] if values else None
    return given


# ----------------------------------------------------------------------------------------------- presets table


def presets_table() -> str:
    """Every model's presets as one Markdown table (``python -m benchmarks.run --list-presets``): the sizes, then
    each declared setting with a ``shown`` form whose value the preset changes (training ones as the recipe)."""

    def size(n, whole):
        return whole if n is None else f"{n:,}"

    training = {f.name for f in dataclasses.fields(TrainConfig)}
    rows = []
    for name, spec in MODELS.items():
        for preset in spec.presets:
            s = resolve(name, preset)
            recipe, extras = [f"{s.optimizer} {s.lr:g}", s.schedule], []
            for field, meta in declared(s):
                value = getattr(s, field.name)
                if meta["shown"] and value not in (None, False, field.default) and spec.can(meta["applies"]):
                    (recipe if field.name in training or field.name == "warmup_epochs" else extras).append(
                        meta["shown"](value))
            rows.append([name, preset, str(s.epochs), str(s.batch_size), size(s.train_size, "all"), f"{s.val_size:,}",
                         size(s.test_size, "10,000"), ", ".join(recipe), ", ".join(extras) or "-"])
    return table(["model", "preset", "epochs", "batch", "training images", "validation", "test", "recipe",
                  "model settings"], rows)
