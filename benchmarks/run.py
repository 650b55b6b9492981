"""Train, evaluate and report: ``python -m benchmarks.run --framework jax|torch|both``.

Loads (and verifies) MNIST, carves the validation split, computes the epoch
orders once, then for each framework asked for: builds the model from the
seed, trains it, evaluates it on the test set and records the run. After
every finished run ``OUT/results.json`` and ``OUT/results.md`` are rewritten
atomically, so a failure later never loses a finished run.

User mistakes (bad flags, bad data) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from benchmarks import report
from benchmarks.backends import BACKENDS, FRAMEWORKS
from benchmarks.data import DATA_SOURCES, DataError, epoch_orders, load_mnist, random_shifts, train_val_split
from benchmarks.environment import data_environment, host_environment
from benchmarks.metrics import classification_metrics, steady_state_images_per_s
from benchmarks.presets import PRESET_NAMES
from benchmarks.registry import MODELS

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine")


class UsageError(Exception):
    """A bad command line or setting: printed as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + error
        raise UsageError(f"{message} (see --help)")


def _preset_default(field: str) -> str:
    """'cnn: smoke 2, cpu 5, full 15' for the help text, read from the presets."""
    def value(preset):
        v = getattr(preset, field)
        if isinstance(v, dict):
            return "/".join(f"{k} {x:g}" for k, x in v.items())
        return ("all" if field == "train_size" else "-") if v is None else f"{v}"
    return "; ".join(
        f"{name}: " + ", ".join(f"{p} {value(spec.presets[p])}" for p in PRESET_NAMES) for name, spec in MODELS.items()
    )


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m benchmarks.run",
        description="Train and evaluate MNIST classifiers in JAX/Flax and PyTorch, and report "
        "accuracy, macro-F1, loss and timing. Flags marked 'from the preset' take the preset's "
        "value unless given.",
    )
    p.add_argument("--framework", default="jax", metavar="{jax,torch,both}",
                   help="framework to run; both runs each on the same data and prints the throughput ratio "
                   "(default: jax)")
    p.add_argument("--model", default="cnn", metavar="{" + ",".join(MODELS) + "}",
                   help="model to train (default: cnn)")
    p.add_argument("--preset", default=None, metavar="{" + ",".join(PRESET_NAMES) + "}",
                   help="hyperparameter preset (default: full when the framework sees a GPU, else cpu)")
    p.add_argument("--optimizer", default=None, metavar="{" + ",".join(OPTIMIZERS) + "}",
                   help=f"optimizer (default: from the preset; {_preset_default('optimizer')})")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"training epochs (default: from the preset; {_preset_default('epochs')})")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"training batch size (default: from the preset; {_preset_default('batch_size')})")
    p.add_argument("--lr", type=float, default=None,
                   help=f"base learning rate (default: from the preset, per optimizer; {_preset_default('lr')})")
    p.add_argument("--momentum", type=float, default=None,
                   help=f"SGD momentum (default: from the preset; {_preset_default('momentum')})")
    p.add_argument("--schedule", default=None, metavar="{" + ",".join(SCHEDULES) + "}",
                   help=f"learning-rate schedule, per step (default: from the preset; {_preset_default('schedule')})")
    p.add_argument("--warmup-epochs", type=float, default=None,
                   help=f"linear warm-up before the cosine decay (default: from the preset; "
                   f"{_preset_default('warmup_epochs')})")
    p.add_argument("--variant", default=None,
                   help="model size from the model's variants table ("
                   + "; ".join(f"{n}: {', '.join(m.variants)}" for n, m in MODELS.items() if m.variants)
                   + f") (default: from the preset; {_preset_default('variant')})")
    p.add_argument("--weight-decay", type=float, default=None,
                   help="AdamW weight decay, kept off norms, biases and embeddings (default: from the preset; "
                   f"{_preset_default('weight_decay')})")
    p.add_argument("--label-smoothing", type=float, default=None,
                   help=f"label smoothing of the training loss (default: from the preset; "
                   f"{_preset_default('label_smoothing')})")
    p.add_argument("--augment-shift", type=int, default=None, metavar="PIXELS",
                   help="random shifts of up to PIXELS in each direction, drawn once in NumPy so both frameworks "
                   f"see the same images; 0 turns them off (default: from the preset; {_preset_default('augment_shift')})")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the initial weights, the dropout stream and the epoch order (default: 0)")
    p.add_argument("--train-size", type=int, default=None, metavar="N",
                   help="train on the first N images of the shuffled training split; the split itself is "
                   f"fixed (split seed 0) (default: from the preset; {_preset_default('train_size')})")
    p.add_argument("--val-size", type=int, default=None, metavar="N",
                   help="validation images held out of the 60,000 training images, for per-epoch monitoring "
                   f"(default: from the preset; {_preset_default('val_size')})")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder with the MNIST IDX files, gzipped or raw, or torchvision's MNIST/raw; with "
                   "--data-source tfds, the TFDS data dir (default: the shipped data/mnist; for tfds, "
                   "~/tensorflow_datasets)")
    p.add_argument("--data-source", default="idx", metavar="{" + ",".join(DATA_SOURCES) + "}",
                   help="where MNIST comes from (default: idx)")
    p.add_argument("--out", default="results", metavar="DIR",
                   help="folder for results.json and results.md (default: results)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown)")
    return p


def resolve_settings(args, spec, preset_name: str) -> dict:
    """The preset, overridden by the flags that were given, validated."""
    if preset_name not in PRESET_NAMES:
        raise UsageError(f"unknown preset {preset_name!r} (choose from {', '.join(PRESET_NAMES)})")
    preset = spec.presets[preset_name]
    optimizer = args.optimizer or preset.optimizer
    if optimizer not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {optimizer!r} (choose from {', '.join(OPTIMIZERS)})")
    s = {
        "preset": preset_name,
        "optimizer": optimizer,
        "epochs": preset.epochs if args.epochs is None else args.epochs,
        "batch_size": preset.batch_size if args.batch_size is None else args.batch_size,
        "lr": preset.lr[optimizer] if args.lr is None else args.lr,
        "momentum": preset.momentum if args.momentum is None else args.momentum,
        "schedule": args.schedule or preset.schedule,
        "warmup_epochs": preset.warmup_epochs if args.warmup_epochs is None else args.warmup_epochs,
        "train_size": preset.train_size if args.train_size is None else args.train_size,
        "val_size": preset.val_size if args.val_size is None else args.val_size,
        "eval_batch_size": preset.eval_batch_size,
        "variant": args.variant or preset.variant,
        "weight_decay": preset.weight_decay if args.weight_decay is None else args.weight_decay,
        "label_smoothing": preset.label_smoothing if args.label_smoothing is None else args.label_smoothing,
        "augment_shift": preset.augment_shift if args.augment_shift is None else args.augment_shift,
        "seed": args.seed,
    }
    if s["variant"] is not None and s["variant"] not in spec.variants:
        choices = ", ".join(spec.variants) if spec.variants else "none: this model has no variants"
        raise UsageError(f"unknown variant {s['variant']!r} for this model (choose from {choices})")
    if s["weight_decay"] < 0:
        raise UsageError(f"--weight-decay must be >= 0, got {s['weight_decay']}")
    if s["weight_decay"] and s["optimizer"] != "adamw":
        raise UsageError(f"--weight-decay needs --optimizer adamw (got {s['optimizer']}); set --weight-decay 0")
    if not 0 <= s["label_smoothing"] < 1:
        raise UsageError(f"--label-smoothing must be in [0, 1), got {s['label_smoothing']}")
    if not 0 <= s["augment_shift"] <= 8:
        raise UsageError(f"--augment-shift must be in [0, 8] pixels, got {s['augment_shift']}")
    if s["epochs"] < 1:
        raise UsageError(f"--epochs must be at least 1, got {s['epochs']}")
    if s["batch_size"] < 1:
        raise UsageError(f"--batch-size must be at least 1, got {s['batch_size']}")
    if not s["lr"] > 0:
        raise UsageError(f"--lr must be positive, got {s['lr']}")
    if not 0 <= s["momentum"] < 1:
        raise UsageError(f"--momentum must be in [0, 1), got {s['momentum']}")
    if s["schedule"] not in SCHEDULES:
        raise UsageError(f"unknown schedule {s['schedule']!r} (choose from {', '.join(SCHEDULES)})")
    if s["warmup_epochs"] < 0:
        raise UsageError(f"--warmup-epochs must be >= 0, got {s['warmup_epochs']}")
    if s["seed"] < 0:
        raise UsageError(f"--seed must be >= 0, got {s['seed']}")
    return s


def parse_frameworks(value: str) -> list[str]:
    if value == "both":
        return list(FRAMEWORKS)
    if value not in FRAMEWORKS:
        raise UsageError(f"unknown framework {value!r} (choose from {', '.join(FRAMEWORKS)}, both)")
    return [value]


def run_one(backend, spec, model_name: str, s: dict, data, split, orders, shifts, progress: bool,
            model=None, weights: str | None = None) -> dict:
    """Build (unless ``model`` is given), train and test one model in one framework; return its run record."""
    if model is None:
        model = backend.build(spec, s["seed"], s["variant"])
    x_train, y_train = data.train_images[split.train], data.train_labels[split.train]
    steps = len(split.train) // s["batch_size"]
    fit = backend.train.fit(
        model, x_train, y_train,
        orders=orders, batch_size=s["batch_size"], optimizer=s["optimizer"], lr=s["lr"],
        momentum=s["momentum"], weight_decay=s["weight_decay"], schedule=s["schedule"],
        warmup_steps=round(s["warmup_epochs"] * steps), label_smoothing=s["label_smoothing"], shifts=shifts,
        val_images=data.train_images[split.val] if len(split.val) else None,
        val_labels=data.train_labels[split.val] if len(split.val) else None,
        eval_batch_size=s["eval_batch_size"], progress=progress,
    )
    t0 = time.perf_counter()
    test = backend.train.evaluate(model, data.test_images, data.test_labels, batch_size=s["eval_batch_size"])
    eval_time = time.perf_counter() - t0
    metrics = classification_metrics(test["logits"], data.test_labels)
    return {
        "framework": backend.name,
        "model": model_name,
        "variant": s["variant"],
        "optimizer": s["optimizer"],
        "epochs": s["epochs"],
        "batch_size": s["batch_size"],
        "lr": s["lr"],
        "momentum": s["momentum"] if s["optimizer"] == "sgd" else None,
        "schedule": s["schedule"],
        "warmup_steps": round(s["warmup_epochs"] * steps),
        "weight_decay": s["weight_decay"],
        "label_smoothing": s["label_smoothing"],
        "augment_shift": s["augment_shift"],
        "seed": s["seed"],
        "preset": s["preset"],
        "weights": weights or f"random init (seed {s['seed']})",
        "train_size": int(len(split.train)),
        "val_size": int(len(split.val)),
        "device": backend.device(),
        "train_loss": fit["train_loss"],
        "val_accuracy": fit["history"][-1].get("val_accuracy"),
        "test_loss": test["loss"],
        "test_accuracy": metrics["accuracy"],
        "test_macro_f1": metrics["macro_f1"],
        "train_time_s": fit["train_time_s"],
        "compile_time_s": fit["compile_time_s"],
        "warmup_time_s": fit["warmup_time_s"],
        "images_per_s": steady_state_images_per_s(
            fit["history"], images_per_epoch=fit["images_per_epoch"], batch_size=s["batch_size"],
            warmup_time_s=fit["warmup_time_s"],
        ),
        "test_eval_time_s": eval_time,
        "steps_per_epoch": fit["steps_per_epoch"],
        "params": backend.count_params(model),
        "per_class": metrics["per_class"],
        "confusion_matrix": metrics["confusion_matrix"],
        "history": fit["history"],
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _main(argv)
    except (UsageError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except FloatingPointError as err:
        print(f"error: training diverged: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; finished runs are in the results folder", file=sys.stderr)
        return 130


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    frameworks = parse_frameworks(args.framework)
    if args.model not in MODELS:
        raise UsageError(f"unknown model {args.model!r} (choose from {', '.join(MODELS)})")
    spec = MODELS[args.model]
    for fw in frameworks:
        if getattr(spec, fw) is None:
            raise UsageError(f"model {args.model!r} has no {fw} implementation")
    if args.data_source not in DATA_SOURCES:
        raise UsageError(f"unknown data source {args.data_source!r} (choose from {', '.join(DATA_SOURCES)})")
    if args.preset is not None and args.preset not in PRESET_NAMES:
        raise UsageError(f"unknown preset {args.preset!r} (choose from {', '.join(PRESET_NAMES)})")
    resolve_settings(args, spec, args.preset or "cpu")  # reject bad values before any work
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} exists and is not a folder")

    data = load_mnist(args.data_dir, args.data_source)
    backends = {fw: BACKENDS[fw]() for fw in frameworks}  # imports each framework lazily
    preset = args.preset or ("full" if any(b.has_gpu() for b in backends.values()) else "cpu")
    s = resolve_settings(args, spec, preset)
    try:
        split = train_val_split(len(data.train_labels), val_size=s["val_size"], train_size=s["train_size"])
    except ValueError as err:
        raise UsageError(str(err)) from None
    orders = epoch_orders(len(split.train), s["epochs"], s["seed"])
    shifts = random_shifts(len(split.train), s["epochs"], s["augment_shift"], s["seed"]) if s["augment_shift"] else None
    if len(split.train) < s["batch_size"]:
        raise UsageError(f"--batch-size {s['batch_size']} is larger than the {len(split.train)} training images")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"--out {out_dir}: cannot create folder ({err.strerror})") from None

    results = {
        "command": "python -m benchmarks.run " + shlex.join(argv),
        "settings": s,
        "environment": {
            "host": host_environment(),
            "data": data_environment(data),
            "frameworks": {fw: b.environment() for fw, b in backends.items()},
        },
        "runs": [],
        "throughput_ratios": [],
    }
    print(f"{args.model}{' ' + s['variant'] if s['variant'] else ''} | preset {preset} | {s['optimizer']} lr {s['lr']} | {s['epochs']} epochs | "
          f"batch {s['batch_size']} | {len(split.train)} train / {len(split.val)} val images | "
          f"data {data.source} ({data.location})", file=sys.stderr)
    for fw, backend in backends.items():
        print(f"[{backend.label}] training on {backend.device()}", file=sys.stderr)
        run = run_one(backend, spec, args.model, s, data, split, orders, shifts, progress=not args.no_progress)
        results["runs"].append(run)
        results["throughput_ratios"] = report.throughput_ratios(results["runs"])
        report.write_results(out_dir, results)
        print(f"[{backend.label}] test accuracy {run['test_accuracy']:.2%}, macro-F1 "
              f"{run['test_macro_f1']:.4f}, {run['train_time_s']:.1f} s training", file=sys.stderr)

    print(report.results_table(results["runs"]))
    for line in report.ratio_lines(results["throughput_ratios"]):
        print(line)
    print(f"wrote {out_dir / 'results.json'} and {out_dir / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
