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
from benchmarks.backends import BACKENDS, FRAMEWORKS, ModelBuildError
from benchmarks.data import (
    DATA_SOURCES,
    DataError,
    epoch_orders,
    load_mnist,
    random_shifts,
    test_subset,
    train_val_split,
)
from benchmarks.environment import data_environment, host_environment
from benchmarks.malloc import keep_large_buffers
from benchmarks.metrics import (
    classification_metrics,
    detection_metrics,
    prediction_metrics,
    steady_state_images_per_s,
)
from benchmarks.presets import PRESET_NAMES
from benchmarks.registry import MODELS, parse_models

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine")
WEIGHTS_CHOICES = ("auto", "pretrained", "none")  # or a path (torch_ref.finetune.weights)
FINETUNE_MODELS = tuple(name for name, spec in MODELS.items() if spec.finetune)


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
        return ("all" if field in ("train_size", "test_size") else "-") if v is None else f"{v}"
    return "; ".join(
        f"{name}: " + ", ".join(f"{p} {value(spec.presets[p])}" for p in PRESET_NAMES)
        for name, spec in MODELS.items()
        if spec.finetune or field not in _FINETUNE_FIELDS
    )


_FINETUNE_FIELDS = ("image_size", "weights", "freeze_features", "amp")


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
    p.add_argument("--model", default="cnn", metavar="{" + ",".join(MODELS) + ",all}",
                   help="model to train: one name, a comma-separated list, or all; "
                   f"{', '.join(FINETUNE_MODELS)} are torchvision models, PyTorch only, and --model all "
                   "skips them for --framework jax (default: cnn)")
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
    p.add_argument("--devices", type=int, default=None, metavar="N",
                   help="JAX: split each batch over N local devices (data parallelism, e.g. several GPUs; a CPU is one "
                   "device only unless XLA_FLAGS makes more); 1 turns it off; PyTorch ignores it (default: "
                   "all local devices that divide the batch size)")
    p.add_argument("--steps-per-call", type=int, default=1, metavar="N",
                   help="JAX: N training steps per compiled call (a lax.fori_loop; the same updates, fewer "
                   "dispatches, for GPUs; on XLA CPU about as fast as one call per step); PyTorch ignores it (default: 1)")
    p.add_argument("--weights", default=None, metavar="{auto,pretrained,none,PATH}",
                   help="torchvision models' initial weights: pretrained (the torchvision weights enum, from the "
                   "TORCH_HOME cache or downloaded), none (random init), auto (pretrained when available, else "
                   "random init with a warning), or a state-dict file (torch.save or .safetensors) "
                   f"(default: from the preset; {_preset_default('weights')})")
    p.add_argument("--image-size", type=int, default=None, metavar="PX",
                   help="torchvision models: MNIST is resized to PX x PX (VGG16 needs >= 32, AlexNet >= 63, "
                   f"Faster R-CNN >= 32) (default: from the preset; {_preset_default('image_size')})")
    p.add_argument("--freeze-features", action=argparse.BooleanOptionalAction, default=None,
                   help="VGG16/AlexNet: train only the classifier layers, keeping the convolutional feature "
                   f"extractor fixed (default: from the preset; {_preset_default('freeze_features')})")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="torchvision models: bfloat16 mixed precision, on a CUDA GPU only (default: from the "
                   f"preset, on where a GPU runs it; {_preset_default('amp')})")
    p.add_argument("--detector", default=None, metavar="{" + ",".join(MODELS["faster_rcnn"].variants) + "}",
                   help=f"Faster R-CNN detector (default: {MODELS['faster_rcnn'].variants[0]})")
    p.add_argument("--test-size", type=int, default=None, metavar="N",
                   help="evaluate on a fixed random subset of N test images (split seed 0) "
                   f"(default: from the preset; {_preset_default('test_size')})")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the initial weights, the dropout stream and the epoch order (default: 0)")
    p.add_argument("--seeds", default=None, metavar="S1,S2,...",
                   help="run every model and framework once per seed, for statistics over seeds; "
                   "replaces --seed (default: just --seed)")
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
    p.add_argument("--malloc", default="tuned", metavar="{tuned,default}",
                   help="glibc malloc settings for both frameworks: tuned keeps large buffers in the heap between "
                   "steps (see benchmarks/malloc.py; faster on a CPU), default leaves glibc's own (default: tuned)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown)")
    return p


def _model_options(args, spec, name: str, preset, strict: bool) -> dict:
    """The settings only torchvision models have, and the variant; flags that do not apply are
    errors for a single model (``strict``) and ignored when several models run."""
    def given(flag: str, value, applies: bool):
        if value is None or applies:
            return value
        if strict:
            raise UsageError(f"{flag} does not apply to {name}")
        return None

    detector = given("--detector", args.detector, name == "faster_rcnn")
    variant = args.variant if (strict or (args.variant in spec.variants)) else None
    if detector is not None and variant is not None and detector != variant:
        raise UsageError(f"--detector {detector} and --variant {variant} disagree")
    weights = given("--weights", args.weights, spec.finetune)
    image_size = given("--image-size", args.image_size, spec.finetune)
    freeze = given("--freeze-features", args.freeze_features, name in ("vgg16", "alexnet"))
    amp = given("--amp", args.amp, spec.finetune)
    out = {
        "variant": detector or variant or preset.variant,
        "weights": (weights or preset.weights) if spec.finetune else None,
        "image_size": (image_size or preset.image_size) if spec.finetune else None,
        "freeze_features": bool(preset.freeze_features if freeze is None else freeze),
        "amp": bool(preset.amp if amp is None else amp),
        "amp_requested": amp is True,
    }
    if spec.finetune and out["image_size"] < spec.min_image_size:
        raise UsageError(f"{name} needs --image-size >= {spec.min_image_size} px, got {out['image_size']}")
    if out["weights"] is not None and out["weights"] not in WEIGHTS_CHOICES and not Path(out["weights"]).is_file():
        raise UsageError(f"--weights {out['weights']}: no such file (expected auto, pretrained, none or a "
                         "state-dict file)")
    return out


def resolve_settings(args, spec, preset_name: str, name: str | None = None, strict: bool = True) -> dict:
    """The preset, overridden by the flags that were given, validated.

    ``strict``: one model runs, so a flag that does not apply to it is an error.
    """
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
        "test_size": preset.test_size if args.test_size is None else args.test_size,
        "devices": args.devices,
        "steps_per_call": args.steps_per_call,
        "eval_batch_size": preset.eval_batch_size,
        "weight_decay": preset.weight_decay if args.weight_decay is None else args.weight_decay,
        "label_smoothing": preset.label_smoothing if args.label_smoothing is None else args.label_smoothing,
        "augment_shift": preset.augment_shift if args.augment_shift is None else args.augment_shift,
        "seed": args.seed,
    } | _model_options(args, spec, name, preset, strict)
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
    if s["devices"] is not None and s["devices"] < 1:
        raise UsageError(f"--devices must be at least 1, got {s['devices']}")
    if s["steps_per_call"] < 1:
        raise UsageError(f"--steps-per-call must be at least 1, got {s['steps_per_call']}")
    if s["test_size"] is not None and not 0 < s["test_size"] <= 10000:
        raise UsageError(f"--test-size must be in [1, 10000], got {s['test_size']}")
    if name == "faster_rcnn" and s["label_smoothing"]:
        raise UsageError("--label-smoothing does not apply to faster_rcnn (its losses are the detector's own)")
    return s


def parse_seeds(args) -> list[int]:
    if args.seeds is None:
        return [args.seed]
    try:
        seeds = [int(v) for v in args.seeds.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    if not seeds or any(v < 0 for v in seeds) or len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds must be distinct integers >= 0, got {args.seeds!r}")
    return seeds


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
        options = None
        if spec.finetune:
            options = {"weights": s["weights"], "image_size": s["image_size"], "progress": progress}
            if s["freeze_features"]:
                options["freeze_features"] = True
        model = backend.build(spec, s["seed"], s["variant"], options)
    info = getattr(model, "weights_info", None)  # torchvision models say what they loaded
    if weights is None and info is not None:
        weights = info.label(s["seed"])
    test_idx = test_subset(len(data.test_labels), s["test_size"])
    test_images, test_labels = data.test_images[test_idx], data.test_labels[test_idx]
    x_train, y_train = data.train_images[split.train], data.train_labels[split.train]
    steps = len(split.train) // s["batch_size"]
    fit = backend.train.fit(
        model, x_train, y_train,
        orders=orders, batch_size=s["batch_size"], optimizer=s["optimizer"], lr=s["lr"],
        momentum=s["momentum"], weight_decay=s["weight_decay"], schedule=s["schedule"],
        warmup_steps=round(s["warmup_epochs"] * steps), label_smoothing=s["label_smoothing"], shifts=shifts,
        val_images=data.train_images[split.val] if len(split.val) else None,
        val_labels=data.train_labels[split.val] if len(split.val) else None,
        eval_batch_size=s["eval_batch_size"], progress=progress, **({"amp": True} if s["amp"] else {}),
        **({"devices": s["devices"], "steps_per_call": s["steps_per_call"]} if backend.name == "jax" else {}),
    )
    # the timed warm-up is the first call: steps_per_call steps for JAX
    ips = steady_state_images_per_s(fit["history"], images_per_epoch=fit["images_per_epoch"],
                                    batch_size=s["batch_size"] * fit.get("steps_per_call", 1),
                                    warmup_time_s=fit["warmup_time_s"])
    t0 = time.perf_counter()
    test = backend.train.evaluate(model, test_images, test_labels, batch_size=s["eval_batch_size"])
    eval_time = time.perf_counter() - t0
    if "predictions" in test:  # a detector read as a classifier
        metrics = prediction_metrics(test["predictions"], test_labels) | detection_metrics(test["outputs"])
    else:
        metrics = classification_metrics(test["logits"], test_labels)
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
        "weights_info": info.as_dict() if info is not None else None,
        "image_size": s["image_size"],
        "freeze_features": s["freeze_features"] if spec.finetune else None,
        "amp": s["amp"],
        "train_size": int(len(split.train)),
        "val_size": int(len(split.val)),
        "test_size": int(len(test_idx)),
        "device": backend.device(),
        "train_loss": fit["train_loss"],
        "val_accuracy": fit["history"][-1].get("val_accuracy"),
        "test_loss": test["loss"],
        "test_accuracy": metrics["accuracy"],
        "test_macro_f1": metrics["macro_f1"],
        "no_detection_rate": metrics.get("no_detection_rate"),
        "mean_top_box_iou": metrics.get("mean_top_box_iou"),
        "train_time_s": fit["train_time_s"],
        "compile_time_s": fit["compile_time_s"],
        "warmup_time_s": fit["warmup_time_s"],
        "images_per_s": ips,
        "test_eval_time_s": eval_time,
        "steps_per_epoch": fit["steps_per_epoch"],
        "devices": fit.get("devices", 1),
        "steps_per_call": fit.get("steps_per_call", 1),
        "train_flops_per_image": fit.get("train_flops_per_image"),
        "achieved_gflop_s": (fit["train_flops_per_image"] * ips / 1e9) if fit.get("train_flops_per_image") else None,
        "params": backend.count_params(model),
        "per_class": metrics["per_class"],
        "confusion_matrix": metrics["confusion_matrix"],
        "history": fit["history"],
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _main(argv)
    except (UsageError, DataError, ModelBuildError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except FloatingPointError as err:
        print(f"error: training diverged: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; finished runs are in the results folder", file=sys.stderr)
        return 130


def _plan(args, frameworks: list[str]) -> list[tuple[str, list[str]]]:
    """(model, frameworks that implement it) for every model asked for."""
    try:
        names = parse_models(args.model)
    except ValueError as err:
        raise UsageError(str(err)) from None
    plan = []
    for name in names:
        spec = MODELS[name]
        missing = [fw for fw in frameworks if getattr(spec, fw) is None]
        if missing and args.model != "all":
            if spec.finetune:
                raise UsageError(f"{name} is a torchvision model with no JAX port yet: use --framework torch")
            raise UsageError(f"model {name!r} has no {missing[0]} implementation")
        fws = [fw for fw in frameworks if getattr(spec, fw) is not None]
        if fws:
            plan.append((name, fws))
        else:
            print(f"note: skipping {name}: no {' or '.join(missing)} implementation", file=sys.stderr)
    return plan


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.malloc not in ("tuned", "default"):
        raise UsageError(f"unknown --malloc {args.malloc!r} (choose from tuned, default)")
    # before any framework allocates, so the same for both (see benchmarks.malloc)
    malloc = keep_large_buffers() if args.malloc == "tuned" else {}
    frameworks = parse_frameworks(args.framework)
    seeds = parse_seeds(args)
    plan = _plan(args, frameworks)
    strict = len(plan) == 1
    if args.data_source not in DATA_SOURCES:
        raise UsageError(f"unknown data source {args.data_source!r} (choose from {', '.join(DATA_SOURCES)})")
    if args.preset is not None and args.preset not in PRESET_NAMES:
        raise UsageError(f"unknown preset {args.preset!r} (choose from {', '.join(PRESET_NAMES)})")
    for name, _ in plan:  # reject bad values before any work
        resolve_settings(args, MODELS[name], args.preset or "cpu", name, strict)
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} exists and is not a folder")

    data = load_mnist(args.data_dir, args.data_source)
    needed = [fw for fw in FRAMEWORKS if any(fw in fws for _, fws in plan)]
    backends = {fw: BACKENDS[fw]() for fw in needed}  # imports each framework lazily
    has_gpu = any(b.has_gpu() for b in backends.values())
    preset = args.preset or ("full" if has_gpu else "cpu")
    settings = {}
    for name, _ in plan:
        s = settings[name] = resolve_settings(args, MODELS[name], preset, name, strict) | {"seeds": seeds}
        if s["amp"] and not backends["torch"].has_gpu():
            if s["amp_requested"]:
                raise UsageError("--amp needs a CUDA GPU; PyTorch sees none")
            s["amp"] = False  # the preset's mixed precision is for GPUs
        if MODELS[name].finetune:
            backends["torch"].check_weights(name, s["variant"], s["weights"])
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"--out {out_dir}: cannot create folder ({err.strerror})") from None

    results = {
        "command": "python -m benchmarks.run " + shlex.join(argv),
        "settings": settings,
        "environment": {
            "host": host_environment() | {"malloc": malloc},
            "data": data_environment(data),
            "frameworks": {fw: b.environment() for fw, b in backends.items()},
        },
        "runs": [],
        "throughput_ratios": [],
    }
    for name, fws in plan:
        spec, s = MODELS[name], settings[name]
        try:
            split = train_val_split(len(data.train_labels), val_size=s["val_size"], train_size=s["train_size"])
        except ValueError as err:
            raise UsageError(str(err)) from None
        if len(split.train) < s["batch_size"]:
            raise UsageError(f"--batch-size {s['batch_size']} is larger than the {len(split.train)} training images")
        extra = (f" | {s['image_size']} px | weights {s['weights']}" if spec.finetune else "")
        print(f"{name}{' ' + s['variant'] if s['variant'] else ''} | preset {preset} | {s['optimizer']} lr {s['lr']} | "
              f"{s['epochs']} epochs | batch {s['batch_size']} | {len(split.train)} train / {len(split.val)} val "
              f"images{extra} | seeds {','.join(map(str, seeds))} | data {data.source} ({data.location})",
              file=sys.stderr)
        for seed in seeds:
            s_seed = dict(s, seed=seed)
            orders = epoch_orders(len(split.train), s["epochs"], seed)  # the same for every framework
            shifts = (random_shifts(len(split.train), s["epochs"], s["augment_shift"], seed)
                      if s["augment_shift"] else None)
            for fw in fws:
                backend = backends[fw]
                print(f"[{backend.label}] training {name}, seed {seed}, on {backend.device()}", file=sys.stderr)
                run = run_one(backend, spec, name, s_seed, data, split, orders, shifts,
                              progress=not args.no_progress)
                results["runs"].append(run)
                results["throughput_ratios"] = report.throughput_ratios(results["runs"])
                report.write_results(out_dir, results)
                print(f"[{backend.label}] {name} seed {seed}: test accuracy {run['test_accuracy']:.2%}, macro-F1 "
                      f"{run['test_macro_f1']:.4f}, {run['train_time_s']:.1f} s training; weights {run['weights']}",
                      file=sys.stderr)

    print(report.results_table(results["runs"]))
    if len(seeds) > 1:
        print()
        print(report.summary_table(results["runs"]))
    for line in report.ratio_lines(results["throughput_ratios"]):
        print(line)
    print(f"wrote results.json, results.md, results.csv, report.md and plots in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
