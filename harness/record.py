"""The record of one run, typed, and the one reader of ``results.json`` in every format the harness has written.

:class:`RunRecord` is what ``results.json`` holds per run: the settings it ran with
(``Settings.record``), what ``fit`` measured (``FitResult``), the test metrics, and
where it ran. ``RunRecord.from_json`` is the only place that knows the older
formats (a record without ``mode``, with ``amp`` instead of ``precision``, from
before the ``kernels`` switch...): it fills what they lack, so that every report
reads complete records. :func:`read_results` checks a whole file before anything
is made from it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from mnist_common.errors import UserError


class ReportError(UserError):
    """A results file that cannot be read or reported (no results.json, a bad one, no markers): one line, exit 2."""


def mode_label(framework: str, *, kernels: str | None = None, precision: str = "float32",
               torch_compile: str | None = None, channels_last: bool | None = None) -> str:
    """How a framework ran: JAX ``tuned`` / ``stock`` (+ ``bf16``), PyTorch ``eager`` / ``compiled`` (+ its mode,
    ``channels-last``, ``bf16``)."""
    if framework == "jax":
        parts = [kernels or "tuned"]
    else:
        compile_mode = torch_compile or "none"
        parts = ["eager" if compile_mode == "none" else
                 "compiled" + ("" if compile_mode == "default" else f" {compile_mode}")]
        if channels_last:
            parts.append("channels-last")
    if precision == "bfloat16":
        parts.append("bf16")
    return ", ".join(parts)


@dataclasses.dataclass
class RunRecord:
    """One run as ``results.json`` holds it (a key per field, in this order; ``extra`` holds keys a newer
    harness wrote, kept as they are)."""

    framework: str
    model: str
    run: str | None = None  # its name in models/ and checkpoints/: cnn-jax-seed0
    mode: str = ""  # how it computed: tuned, stock, eager, compiled, with channels-last and bf16
    test_only: bool | None = None  # an exported model tested, not trained
    # the settings it ran with (harness.settings.Settings.record; None where one does not apply)
    preset: str = "-"
    variant: str | None = None
    kernels: str | None = None
    precision: str = "float32"
    torch_compile: str | None = None
    channels_last: bool | None = None
    all_reduce: str | None = None  # JAX over several devices: "flat" (one buffer) or "xla" (per tensor)
    optimizer: str = "-"
    epochs: int = 0
    batch_size: int | None = None
    lr: float | None = None
    momentum: float | None = None
    schedule: str = "-"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    augment_shift: int = 0
    seed: int | None = None
    image_size: int | None = None
    freeze_features: bool | None = None
    # what it started from and saw
    weights: str = "-"
    weights_info: dict | None = None
    start_test_accuracy: float | None = None  # a warm start's test accuracy before training
    train_size: int = 0
    val_size: int = 0
    test_size: int = 0
    device: str = "-"
    # what training measured (mnist_common.FitResult)
    train_loss: float | None = None
    val_accuracy: float | None = None
    train_time_s: float | None = None
    compile_time_s: float | None = None
    recompilations: int = 0
    warmup_time_s: float | None = None
    first_epoch_s: float | None = None  # from the run's start (model built, step compiled) to its first epoch's end
    launch_to_run_s: float | None = None  # from the process's launch to the run's start (imports, data)
    images_per_s: float | None = None
    steps_per_epoch: int | None = None
    devices: int = 1
    processes: int = 1
    steps_per_call: int = 1
    train_flops_per_image: float | None = None
    achieved_gflop_s: float | None = None
    history: list = dataclasses.field(default_factory=list)
    resumed_from: dict | None = None  # {"epoch", "step"} of the checkpoint training went on from
    # the machine while it ran (harness.environment.MachineLoad)
    load_average: list | None = None  # the 1-minute load average at the run's start and end
    other_cpu_share: float | None = None  # the share of the machine's CPU time other processes took
    # the test
    test_loss: float | None = None
    test_accuracy: float = float("nan")
    test_macro_f1: float = float("nan")
    no_detection_rate: float | None = None
    mean_top_box_iou: float | None = None
    test_eval_time_s: float | None = None
    per_class: dict = dataclasses.field(default_factory=dict)
    confusion_matrix: list = dataclasses.field(default_factory=list)
    # the rest
    params: int = 0
    warnings: list = dataclasses.field(default_factory=list)
    exported: dict | None = None
    extra: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not self.mode:
            self.mode = mode_label(self.framework, kernels=self.kernels, precision=self.precision,
                                   torch_compile=self.torch_compile, channels_last=self.channels_last)

    def to_json(self) -> dict:
        """The record as ``results.json`` holds it: every field but ``extra``, then ``extra``'s keys."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return out | self.extra

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunRecord:
        """A record of any format this harness has written, complete: older ones lack ``mode`` (it is made from
        their fields), hold ``amp: true`` for bfloat16, and ran the tuned JAX layers before ``kernels`` existed."""
        d = dict(d)
        if d.pop("amp", False) and d.get("precision") in (None, "float32"):
            d["precision"] = "bfloat16"
        if d.get("framework") == "jax" and not d.get("kernels"):
            d["kernels"] = "tuned"
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in d.items() if k in names and v is not None},
                   extra={k: v for k, v in d.items() if k not in names})


#: What the report renderers read from every run record, and of which type: a field is checked before any report
#: is written, so that a damaged results.json is one line, not a traceback halfway through a rewrite.
_NUMBER, _OPT_NUMBER, _INT, _OPT_INT, _STR, _OPT_STR = "number", "number or null", "integer", "integer or null", \
    "string", "string or null"
RUN_TYPES = {
    "framework": _STR, "model": _STR, "seed": _OPT_INT, "optimizer": _STR, "epochs": _INT, "batch_size": _OPT_INT,
    "lr": _OPT_NUMBER, "schedule": _STR, "warmup_steps": _INT, "preset": _STR, "weights": _STR, "train_size": _INT,
    "val_size": _INT, "device": _STR, "train_loss": _OPT_NUMBER, "test_loss": _OPT_NUMBER,
    "test_accuracy": _NUMBER, "test_macro_f1": _NUMBER, "train_time_s": _OPT_NUMBER, "compile_time_s": _OPT_NUMBER,
    "warmup_time_s": _OPT_NUMBER, "images_per_s": _OPT_NUMBER, "params": _INT, "per_class": "object",
    "confusion_matrix": "list", "history": "list",
}
RUN_FIELDS = tuple(RUN_TYPES)
EPOCH_TYPES = {"epoch": _INT, "train_loss": _NUMBER, "epoch_time_s": _NUMBER, "images_per_s": _NUMBER}
EPOCH_FIELDS = tuple(EPOCH_TYPES)
_OPTIONAL_RUN_TYPES = {"variant": _OPT_STR, "mode": _OPT_STR, "val_accuracy": _OPT_NUMBER, "devices": _OPT_INT,
                       "test_size": _OPT_INT, "warnings": "list", "resumed_from": "object or null",
                       "load_average": "list or null", "other_cpu_share": _OPT_NUMBER,
                       "first_epoch_s": _OPT_NUMBER, "launch_to_run_s": _OPT_NUMBER}


def _fits(value, kind: str) -> bool:
    if value is None and kind.endswith("or null"):
        return True
    base = kind.removesuffix(" or null")
    if base == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, {"string": str, "object": dict, "list": list}[base])


def check_results(results, path: Path) -> None:
    """ReportError naming the first field a report needs that ``results`` lacks or holds in another type (each
    run's fields and epochs, and a confusion matrix that is square with one row per class)."""
    if not isinstance(results, dict) or not isinstance(results.get("runs"), list) or "environment" not in results:
        raise ReportError(f"{path}: not a benchmarks.run results file (no runs/environment)")
    env = results["environment"]
    if not isinstance(env, dict):
        raise ReportError(f"{path}: environment is not an object")
    for where, fields in (("environment", ("host", "data")), ("environment.host", ("cpu", "cpu_count", "python")),
                          ("environment.data", ("source", "location", "train", "test"))):
        part = env if where == "environment" else env.get(where.split(".")[1], {})
        missing = [f for f in fields if not isinstance(part, dict) or f not in part]
        if missing:
            raise ReportError(f"{path}: {where} has no {missing[0]!r}")
    if not isinstance(results.get("command"), str):
        raise ReportError(f"{path}: no 'command' (a string)")
    if not isinstance(results.get("throughput_ratios", []), list):
        raise ReportError(f"{path}: throughput_ratios is not a list")
    for i, run in enumerate(results["runs"]):
        _check_fields(run, f"runs[{i}]", RUN_TYPES, path)
        _check_fields(run, f"runs[{i}]", _OPTIONAL_RUN_TYPES, path, required=False)
        for j, epoch in enumerate(run["history"]):
            _check_fields(epoch, f"runs[{i}].history[{j}]", EPOCH_TYPES, path)
        matrix, classes = run["confusion_matrix"], len(run["per_class"])
        if len(matrix) != classes or not all(isinstance(row, list) and len(row) == classes
                                             and all(_fits(v, _INT) for v in row) for row in matrix):
            raise ReportError(f"{path}: runs[{i}].confusion_matrix must be {classes} rows of {classes} integers "
                              "(one per class)")


def _check_fields(part, where: str, types: dict, path: Path, *, required: bool = True) -> None:
    """ReportError unless ``part`` is an object whose fields named in ``types`` are there (when ``required``)
    and each of its kind."""
    if not isinstance(part, dict):
        raise ReportError(f"{path}: {where} is not an object")
    for field, kind in types.items():
        if field not in part:
            if required:
                raise ReportError(f"{path}: {where} has no {field!r}")
        elif not _fits(part[field], kind):
            raise ReportError(f"{path}: {where}.{field} must be a {kind}, got {_brief(part[field])}")


def _brief(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_results(folder: Path) -> dict:
    """``folder/results.json``, checked field by field (:func:`check_results`) and with every run
    completed by :meth:`RunRecord.from_json`: what every report reads. ReportError otherwise."""
    path = folder / "results.json"
    if not path.is_file():
        raise ReportError(f"{folder}: no results.json (run python -m benchmarks.run --out {folder} first)")
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ReportError(f"{path}: not readable JSON ({err})") from None
    check_results(results, path)
    return results | {"runs": [RunRecord.from_json(run).to_json() for run in results["runs"]]}
