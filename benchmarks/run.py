"""Train, evaluate and report: ``python -m benchmarks.run --framework jax|torch|both``.

Loads (and verifies) MNIST, resolves each model's settings from its preset and
the flags (``benchmarks.settings``), then for every seed and framework asked
for trains and tests one model (``benchmarks.experiment``). Both frameworks
draw the same epoch orders and shifts from the seed. After every finished run
``OUT/results.json`` and the report files are rewritten atomically, so a
failure later never loses a finished run.

With ``--processes N`` it checks the command, then starts N workers of
itself (``benchmarks.launch``) that train each run data-parallel over the
processes (JAX's distributed runtime, PyTorch DDP); launched by torchrun or
SLURM it is one such worker. Process 0 prints and writes; the others train.

User mistakes (bad flags, bad data) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import shlex
import sys
from pathlib import Path

from tqdm.auto import tqdm

from benchmarks import cli, outputs
from benchmarks import settings as settings_lib
from benchmarks.backends import BACKENDS, DEVICES, FRAMEWORKS, DeviceError, ModelBuildError
from benchmarks.cli import Parser, UsageError
from benchmarks.data import DATA_SOURCES, NUM_CLASSES, DataError, load_mnist, train_val_split
from benchmarks.environment import data_environment, host_environment
from benchmarks.experiment import evaluate_exported, run_one
from benchmarks.launch import LaunchError, choose_port, end_with_launcher, launch, visible_gpus
from benchmarks.malloc import keep_large_buffers
from benchmarks.presets import PRESET_NAMES, presets_table
from benchmarks.registry import MODELS, parse_models
from benchmarks.report.files import HistoryLog, write_results
from benchmarks.report.summary import ratio_lines, summary_table, throughput_ratios
from benchmarks.report.tables import results_table
from benchmarks.stats import mode_label
from mnist_common.architectures import MIN_IMAGE_SIZE
from mnist_common.checkpointing import CheckpointError, Checkpointing
from mnist_common.config import KERNELS, OPTIMIZERS, PRECISIONS, TORCH_COMPILE_MODES, ConfigError
from mnist_common.export import ExportError, read_config
from mnist_common.interrupt import STOP, StopRequested, handling_signals
from mnist_common.processes import ProcessesError, World, world_from_environment
from mnist_common.progress import epoch_line
from mnist_common.schedules import SCHEDULES

FINETUNE_MODELS = tuple(name for name, spec in MODELS.items() if spec.finetune)


_PRESET = "(default: from the preset, see --list-presets)"


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m benchmarks.run",
        description="Train and evaluate MNIST classifiers in JAX/Flax and PyTorch, and report accuracy, macro-F1, "
        "loss and timing. Settings marked 'from the preset' take the preset's value unless given; "
        "--list-presets shows them. Every flag: docs/runner.md.",
    )
    p.add_argument("--framework", default="jax", metavar="{jax,torch,both}",
                   help="framework to run; both runs each on the same data and devices and prints the throughput "
                   "ratio (default: jax)")
    p.add_argument("--model", default="cnn", metavar="{" + ",".join(MODELS) + ",all}",
                   help="model to train: one name, a comma-separated list, or all; "
                   f"{', '.join(FINETUNE_MODELS)} are torchvision models (VGG16 and AlexNet also ported to Flax; "
                   "Faster R-CNN PyTorch only, and --model all skips it for --framework jax) (default: cnn)")
    p.add_argument("--preset", default=None, metavar="{" + ",".join(PRESET_NAMES) + "}",
                   help="hyperparameter preset (default: full when the framework sees a GPU, else cpu)")
    p.add_argument("--list-presets", action="store_true", help="print every model's presets and exit (default: off)")
    p.add_argument("--optimizer", default=None, metavar="{" + ",".join(OPTIMIZERS) + "}", help=f"optimizer {_PRESET}")
    p.add_argument("--epochs", type=int, default=None, help=f"training epochs {_PRESET}")
    p.add_argument("--batch-size", type=int, default=None, help=f"training batch size {_PRESET}")
    p.add_argument("--lr", type=float, default=None, help=f"base learning rate, per optimizer {_PRESET}")
    p.add_argument("--momentum", type=float, default=None, help=f"SGD momentum {_PRESET}")
    p.add_argument("--schedule", default=None, metavar="{" + ",".join(SCHEDULES) + "}",
                   help=f"learning-rate schedule, per step {_PRESET}")
    p.add_argument("--warmup-epochs", type=float, default=None, help=f"linear warm-up before the cosine decay {_PRESET}")
    p.add_argument("--variant", default=None,
                   help="model size from the model's variants table ("
                   + "; ".join(f"{n}: {', '.join(m.variants)}" for n, m in MODELS.items() if m.variants)
                   + f") {_PRESET}")
    p.add_argument("--weight-decay", type=float, default=None,
                   help=f"AdamW weight decay, kept off norms, biases and embeddings {_PRESET}")
    p.add_argument("--label-smoothing", type=float, default=None,
                   help=f"label smoothing of the training loss {_PRESET}")
    p.add_argument("--augment-shift", type=int, default=None, metavar="PIXELS",
                   help=f"random shifts of up to PIXELS each way, the same in both frameworks; 0: none {_PRESET}")
    p.add_argument("--device", default="auto", metavar="{" + ",".join(DEVICES) + "}",
                   help="where both frameworks train: auto (a GPU when the framework sees one), cpu, or gpu (an "
                   "error when there is none) (default: auto)")
    p.add_argument("--devices", type=int, default=None, metavar="N",
                   help="devices per run, the same for both frameworks: JAX splits each batch over N local devices "
                   "(data parallelism); PyTorch trains on one (default: 1 with --framework both, else every local "
                   "device that divides the batch)")
    p.add_argument("--kernels", default=None, metavar="{" + ",".join(KERNELS) + "}[,...]",
                   help="JAX models' layers: stock (Flax's own), tuned (jax_impl.kernels, the XLA-CPU fast paths: "
                   "same parameters and values), auto (tuned on a CPU, stock elsewhere); a list runs each; "
                   "each run records the choice it resolved to (default: auto)")
    p.add_argument("--torch-compile", default=None, metavar="{" + ",".join(TORCH_COMPILE_MODES) + "}[,...]",
                   help="PyTorch: torch.compile the training step (forward, loss, backward, optimizer update) and "
                   "the evaluation forward pass in this mode, or none for eager; a list runs each (default: none)")
    p.add_argument("--channels-last", default=None, nargs="?", const="on", metavar="{on,off}[,...]",
                   help="PyTorch convnets (CNN, VGG16, AlexNet): channels-last memory format; a list runs each "
                   "(default: off)")
    p.add_argument("--precision", default=None, metavar="{" + ",".join(PRECISIONS) + "}[,...]",
                   help="computation precision, both frameworks: bfloat16 computes in bfloat16 with float32 "
                   "parameters and optimizer state (Flax dtype, PyTorch autocast); a list runs each "
                   f"{_PRESET}")
    p.add_argument("--processes", type=int, default=1, metavar="N",
                   help="train each run data-parallel over N worker processes on this machine (JAX's distributed "
                   "runtime, PyTorch DDP; CPU cores shared out as threads, or one GPU each); the global batch is "
                   "--batch-size; multi-host runs: docs/runner.md (default: 1)")
    p.add_argument("--port", type=int, default=None, metavar="PORT",
                   help="with --processes: the port process 0 listens on (JAX's coordinator takes PORT + 1) "
                   "(default: a free one)")
    p.add_argument("--pin-cores", action="store_true",
                   help="with --processes on a CPU: bind each worker to its own share of the cores (measured slower "
                   "for JAX, see docs/performance.md) (default: off)")
    p.add_argument("--steps-per-call", type=int, default=None, metavar="N",
                   help="JAX: N training steps per compiled call (a lax.fori_loop: the same updates, fewer "
                   "dispatches, for GPUs); PyTorch ignores it (default: 1)")
    p.add_argument("--weights", default=None, metavar="{auto,pretrained,none,PATH}",
                   help="torchvision models' initial weights: pretrained (torchvision's, from the TORCH_HOME cache "
                   "or downloaded), none (random init), auto (pretrained when available, else random init with a "
                   f"warning), or a state-dict file (torch.save or .safetensors) {_PRESET}")
    p.add_argument("--image-size", type=int, default=None, metavar="PX",
                   help="torchvision models: MNIST is resized to PX x PX ("
                   + ", ".join(f"{m} needs >= {px}" for m, px in MIN_IMAGE_SIZE.items()) + f") {_PRESET}")
    p.add_argument("--freeze-features", action=argparse.BooleanOptionalAction, default=None,
                   help=f"VGG16/AlexNet: train only the classifier layers {_PRESET}")
    p.add_argument("--detector", default=None, metavar="{" + ",".join(MODELS["faster_rcnn"].variants) + "}",
                   help=f"Faster R-CNN detector (default: {MODELS['faster_rcnn'].variants[0]})")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the initial weights, the dropout stream and the epoch order (default: 0)")
    p.add_argument("--seeds", default=None, metavar="S1,S2,...",
                   help="run every model and framework once per seed, for statistics over seeds; "
                   "replaces --seed (default: just --seed)")
    p.add_argument("--train-size", type=int, default=None, metavar="N",
                   help=f"train on the first N images of the shuffled training split {_PRESET}")
    p.add_argument("--val-size", type=int, default=None, metavar="N",
                   help=f"validation images held out of the 60,000 training images {_PRESET}")
    p.add_argument("--test-size", type=int, default=None, metavar="N",
                   help=f"evaluate on a fixed random subset of N test images {_PRESET}")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder with the MNIST IDX files, or torchvision's MNIST/raw; with --data-source tfds, the "
                   "TFDS data dir (default: $MNIST_DATA_DIR, else the shipped copy)")
    p.add_argument("--data-source", default="idx", metavar="{" + ",".join(DATA_SOURCES) + "}",
                   help="where MNIST comes from; tfds needs the [tfds] extra (default: idx)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="folder for results.json, history.jsonl, the reports, plots, checkpoints and models; one that "
                   "already holds results is refused unless --overwrite or --resume (default: a new folder "
                   "results/<date>-<time>, with results/latest pointing at the newest)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the results already in --out (default: refuse to)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out (or results/latest): finished runs are kept, the one in progress "
                   "restarts from its newest checkpoint; use the same command plus --resume (default: off)")
    p.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                   help="where training checkpoints go, one folder per run (default: OUT/checkpoints)")
    p.add_argument("--checkpoint-every", type=int, default=1, metavar="EPOCHS",
                   help="keep a checkpoint every EPOCHS epochs (and on SIGINT/SIGTERM); the last 3 are kept; "
                   "0: none (default: 1)")
    p.add_argument("--save-model", action=argparse.BooleanOptionalAction, default=None,
                   help="write each trained model to OUT/models/<run>/ (model.safetensors, config.json) (default: on "
                   "for the CNN and the ViT, off for the large torchvision models)")
    p.add_argument("--test-only", action="store_true",
                   help="evaluate the exported model of --model-dir on the test set, no training (default: off)")
    p.add_argument("--model-dir", default=None, metavar="DIR",
                   help="an exported model folder (model.safetensors, config.json), for --test-only (default: none)")
    p.add_argument("--malloc", default="tuned", metavar="{tuned,default}",
                   help="glibc malloc settings for both frameworks: tuned keeps large buffers in the heap between "
                   "steps (benchmarks/malloc.py), default leaves glibc's own (default: tuned)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar; one line per epoch is still printed (default: bar shown)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch lines (default: off)")
    return p


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def resolve_settings(args, name: str, preset: str, strict: bool = True) -> settings_lib.Settings:
    """``benchmarks.settings.resolve`` with the flags as overrides; errors name the flag.

    ``strict`` (one model runs): a flag that does not apply to it is an error.
    """
    overrides = {field: getattr(args, field, None) for field in settings_lib.OVERRIDABLE}
    for field, values in _mode_lists(args).items():  # the first of each list; modes() makes the others
        overrides[field] = values[0] if values else None
    if args.detector is not None:  # --detector is Faster R-CNN's name for --variant
        if name != "faster_rcnn":
            if strict:
                raise UsageError(f"--detector does not apply to {name}")
        elif args.variant not in (None, args.detector):
            raise UsageError(f"--detector {args.detector} and --variant {args.variant} disagree")
        else:
            overrides["variant"] = args.detector
    try:
        return settings_lib.resolve(name, preset, overrides, strict=strict)
    except ConfigError as err:
        raise UsageError(f"{_flag(err.field)} {err.problem}") from None


def _mode_lists(args) -> dict[str, list | None]:
    """The comma-separated mode flags as lists (None: not given)."""
    def values(text: str | None) -> list[str] | None:
        return None if text is None else [v.strip() for v in text.split(",") if v.strip()] or [""]

    lists = {"kernels": values(args.kernels), "precision": values(args.precision),
             "torch_compile": values(args.torch_compile), "channels_last": values(args.channels_last)}
    if lists["channels_last"] is not None:
        bad = [v for v in lists["channels_last"] if v not in ("on", "off")]
        if bad:
            raise UsageError(f"--channels-last {bad[0]!r} is unknown (choose from on, off)")
        lists["channels_last"] = [v == "on" for v in lists["channels_last"]]
    for field, given in lists.items():
        if given is not None and len(set(given)) != len(given):
            raise UsageError(f"{_flag(field)} lists a mode twice")
    return lists


#: The mode fields each framework runs a list of; a run of one framework ignores the other's.
MODE_FIELDS = {"jax": ("kernels", "precision"), "torch": ("torch_compile", "channels_last", "precision")}


def modes(args, base: settings_lib.Settings, framework: str) -> list[settings_lib.Settings]:
    """``base`` once per combination of the mode lists that apply to ``framework`` and the model, each checked."""
    lists = _mode_lists(args)
    runs = [base]
    for field in MODE_FIELDS[framework]:
        values = lists[field]
        if values is None or not settings_lib.applies(field, base.model):
            continue
        runs = [s.replace(**{field: v}) for s in runs for v in values]
    for s in runs:
        try:
            settings_lib.check(s)
        except ConfigError as err:
            raise UsageError(f"{_flag(err.field)} {err.problem}") from None
    return runs


def parse_seeds(args) -> list[int]:
    """``--seeds`` (or ``--seed``) as a list: distinct integers in [0, MAX_SEED], no empty entries."""
    return cli.parse_seeds(str(args.seed), "--seed") if args.seeds is None else cli.parse_seeds(args.seeds)


def parse_frameworks(value: str) -> list[str]:
    if value == "both":
        return list(FRAMEWORKS)
    if value not in FRAMEWORKS:
        raise UsageError(f"unknown framework {value!r} (choose from {', '.join(FRAMEWORKS)}, both)")
    return [value]


def main(argv: list[str] | None = None) -> int:
    """The command: its status (0 done, 1 training diverged, 2 a mistake, 128 + N a signal)."""
    try:
        return cli.run(_main, argv, mistakes=(DataError, ModelBuildError, DeviceError, CheckpointError, ExportError,
                                              ProcessesError, LaunchError))
    except FloatingPointError as err:
        print(f"error: training diverged: {err}", file=sys.stderr)
        return 1
    finally:
        for lock in _LOCKS:
            lock.release()
        _LOCKS.clear()


def _plan(args, frameworks: list[str], *, quiet: bool = False) -> list[tuple[str, list[str]]]:
    """(model, frameworks that implement it) for every model asked for; ``quiet``: no note on what is skipped
    (a process that does not speak for the run)."""
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
                raise UsageError(f"{name} is a torchvision model with no JAX port: use --framework torch")
            raise UsageError(f"model {name!r} has no {missing[0]} implementation")
        fws = [fw for fw in frameworks if getattr(spec, fw) is not None]
        if fws:
            plan.append((name, fws))
        else:
            if not quiet:
                print(f"note: skipping {name}: no {' or '.join(missing)} implementation", file=sys.stderr)
    return plan


def _devices(args, backends: dict) -> int | None:
    """Devices per run: ``--devices`` for every framework, or with ``--framework both`` the smaller of
    the two frameworks' counts, so that a speed ratio compares equal hardware; None: JAX's default."""
    counts = {fw: b.device_count() for fw, b in backends.items()}
    if args.devices is not None:
        for fw, count in counts.items():
            if args.devices > count:
                what = "trains on one device per process" if fw == "torch" else f"sees {count} local device(s)"
                raise UsageError(f"--devices {args.devices}: {backends[fw].label} {what}")
        return args.devices
    return min(counts.values()) if len(counts) > 1 else None


def _epoch_logger(args, history: HistoryLog, backend, s):
    """Per finished epoch: one line on stderr (unless --quiet) and one line in history.jsonl."""
    mode = mode_label(backend.name, s)
    label = f"{backend.name} {s.model} ({mode}) seed {s.seed}"

    def log(stats) -> None:
        if not args.quiet:
            tqdm.write(epoch_line(label, s.epochs, stats), file=sys.stderr)
        history.write({"framework": backend.name, "model": s.model, "variant": s.variant, "mode": mode,
                       "seed": s.seed, **stats.as_dict(),
                       "time": datetime.datetime.now().astimezone().isoformat(timespec="seconds")})

    return log


def _main(argv: list[str]) -> int:
    end_with_launcher()  # a worker of --processes: not one moment past its launcher
    args = build_parser().parse_args(argv)
    if args.list_presets:
        print(presets_table())
        return 0
    if args.malloc not in ("tuned", "default"):
        raise UsageError(f"unknown --malloc {args.malloc!r} (choose from tuned, default)")
    if args.device not in DEVICES:
        raise UsageError(f"--device {args.device!r} is unknown (choose from {', '.join(DEVICES)})")
    if args.checkpoint_every < 0:
        raise UsageError(f"--checkpoint-every must be >= 0 (0: no checkpoints), got {args.checkpoint_every}")
    if args.resume and args.overwrite:
        raise UsageError("--resume continues what --out holds and --overwrite replaces it: give one")
    world = _world(args)
    if args.test_only or args.model_dir is not None:
        if args.processes > 1 or world.size > 1:
            raise UsageError("--processes does not apply to --test-only (testing runs in one process)")
        return run_test_only(args, argv)
    launching = args.processes > 1 and world.size == 1
    if world.size > 1:
        _silence_workers(args, world)
    # before any framework allocates, so the same for both (see benchmarks.malloc)
    malloc = keep_large_buffers() if args.malloc == "tuned" else {}
    frameworks = parse_frameworks(args.framework)
    seeds = parse_seeds(args)
    plan = _plan(args, frameworks, quiet=launching or not world.main)
    strict = len(plan) == 1
    if args.data_source not in DATA_SOURCES:
        raise UsageError(f"unknown data source {args.data_source!r} (choose from {', '.join(DATA_SOURCES)})")
    for name, _ in plan:  # reject bad values before any work
        _check_processes(args, name, resolve_settings(args, name, args.preset or "cpu", strict), world)
    try:
        # every process checks the folder (only reading), so that none goes on to wait for a process 0 that quit
        out_dir = outputs.choose(args.out, resume=args.resume, overwrite=args.overwrite,
                                 checkpoints=args.checkpoint_dir)
        previous = outputs.previous_results(out_dir) if args.resume else None
    except outputs.OutputError as err:
        raise UsageError(str(err)) from None
    if args.data_dir is not None and not args.data_dir.strip():
        raise UsageError("--data-dir must name a folder, got an empty path")
    if args.checkpoint_dir is not None and not args.checkpoint_dir.strip():
        raise UsageError("--checkpoint-dir must name a folder, got an empty path")
    if args.checkpoint_dir is not None and Path(args.checkpoint_dir).exists() \
            and not Path(args.checkpoint_dir).is_dir():
        raise UsageError(f"--checkpoint-dir {args.checkpoint_dir} exists and is not a folder")

    data = load_mnist(args.data_dir, args.data_source)
    if launching:  # the workers do the rest: check what needs no framework, then start them
        use_gpus = args.device == "gpu" or (args.device == "auto" and bool(visible_gpus()))
        preset = args.preset or ("full" if use_gpus else "cpu")
        for name, fws in plan:
            s = resolve_settings(args, name, preset, strict)
            _check_processes(args, name, s, world)
            _check_split(s, data)
            for fw in fws:
                modes(args, s, fw)  # every combination checked before any worker starts
        port = choose_port(args.port)
        if use_gpus and len(visible_gpus()) < args.processes:
            raise UsageError(f"--processes {args.processes}: one GPU per process, and {len(visible_gpus())} are "
                             "visible (--device cpu divides the CPU cores instead)")
        if previous is not None:  # what can be compared without the frameworks, before any worker starts
            settings = {name: resolve_settings(args, name, preset, strict) for name, _ in plan}
            _check_same_run(previous, {"models": [name for name, _ in plan],
                                       "frameworks": [fw for fw in FRAMEWORKS if any(fw in fws for _, fws in plan)],
                                       "settings": {n: s.as_dict() | {"seeds": seeds} for n, s in settings.items()}},
                            out_dir, World(size=args.processes), skip=("devices",))
        out_dir, locks = _create_output(args, out_dir)
        again = [] if args.out is not None else ["--out", str(out_dir)]  # every worker writes to the same folder
        held = json.dumps([str(lock.folder.resolve()) for lock in locks])  # held here, for the workers
        return launch([sys.executable, "-m", "benchmarks.run", *argv, *again], args.processes, port=port,
                      use_gpus=use_gpus, pin=args.pin_cores, env=dict(os.environ, **{outputs.HELD_FOR_WORKERS: held}),
                      outcome=lambda: _finished_runs(out_dir))
    needed = [fw for fw in FRAMEWORKS if any(fw in fws for _, fws in plan)]
    backends = {fw: BACKENDS[fw](args.device, world) for fw in needed}  # imports each framework lazily
    devices = _devices(args, backends)
    has_gpu = any(b.has_gpu() for b in backends.values())
    preset = args.preset or ("full" if has_gpu else "cpu")
    settings, fws_of = {}, dict(plan)
    for name, _ in plan:
        s = resolve_settings(args, name, preset, strict).replace(devices=devices)
        _check_processes(args, name, s, world)
        _check_split(s, data)
        for fw in fws_of[name]:
            modes(args, s, fw)  # every combination checked before any training
        if MODELS[name].finetune:
            backends[fws_of[name][0]].check_weights(name, s.variant, s.weights, s.image_size)
        settings[name] = s
    runs = _planned_runs(args, plan, settings, seeds, backends)
    if world.main:
        out_dir, _ = _create_output(args, out_dir)  # locked until this process ends
        previous = outputs.previous_results(out_dir) if args.resume else None  # read again, under the lock
    checkpoints = Path(args.checkpoint_dir) if args.checkpoint_dir else out_dir / "checkpoints"

    results = {
        "command": "python -m benchmarks.run " + shlex.join(a for a in argv if a not in ("--resume", "--overwrite")),
        "models": [name for name, _ in plan],
        "frameworks": [fw for fw in FRAMEWORKS if any(fw in fws for _, fws in plan)],
        "settings": {name: s.as_dict() | {"seeds": seeds} for name, s in settings.items()},
        "environment": {
            "host": host_environment() | {"malloc": malloc, "processes": world.size,
                                          "cpu_cores_per_process": _cores()},
            "data": data_environment(data),
            "frameworks": {fw: b.environment() for fw, b in backends.items()},
        },
        "runs": [],
        "throughput_ratios": [],
    }
    if previous is not None:
        _check_same_run(previous, results, out_dir, world)
    finished = {run["run"]: run for run in (previous or {}).get("runs", []) if "run" in run}
    if previous is not None and runs and all(run.key in finished for run in runs):
        _say(world, f"nothing to resume: every run of this command in {out_dir} is finished ({len(runs)} run(s)); "
             "its results are as they were")
        return 0
    if world.main:  # the command's identity, before any training: a resume is checked against it
        write_results(out_dir, results | {"runs": list(finished.values())}, plots=False)
    history = HistoryLog(out_dir / "history.jsonl", append=args.resume) if world.main else _NoHistory()
    again = [a for a in argv if a not in ("--resume", "--overwrite")]
    if args.out is None:
        again += ["--out", str(out_dir)]  # results/latest may name a later run by then
    in_progress = {"run": None}  # the run a signal stopped, if it stopped one
    try:  # a signal stops one process at a step boundary; several processes are stopped by their launcher
        with handling_signals() if world.size == 1 else contextlib.nullcontext():
            for name, fws in plan:
                _train_model(args, name, settings[name], seeds, preset, data, backends, results, finished,
                             history, out_dir, checkpoints, world, [run for run in runs if run.model == name],
                             in_progress)
    except StopRequested as err:
        if world.main:
            write_results(out_dir, results)
        resume = shlex.join(["python", "-m", "benchmarks.run", *again, "--resume"])
        left = len(runs) - len(results["runs"])
        if not left:
            _say(world, f"interrupted ({err}) after the last run finished: every result is in {out_dir}")
        else:
            kept = f" and a checkpoint of {in_progress['run']}" if args.checkpoint_every and in_progress["run"] \
                else ""
            _say(world, f"interrupted ({err}): {len(results['runs'])} finished run(s){kept} are in {out_dir} "
                 f"({left} to go); continue with: {resume}")
        return err.exit_code

    if not world.main:
        return 0
    print(results_table(results["runs"]))
    if len(seeds) > 1:
        print()
        print(summary_table(results["runs"]))
    for line in ratio_lines(results["throughput_ratios"]):
        print(line)
    print(f"wrote results.json, history.jsonl, results.md, results.csv, report.md and plots in {out_dir}")
    return 0


def _world(args) -> World:
    """This process's place in a multi-process run (one process unless launched as a worker), flags checked."""
    world = world_from_environment()
    if args.processes < 1:
        raise UsageError(f"--processes must be at least 1, got {args.processes}")
    if world.size > 1 and args.processes not in (1, world.size):
        raise UsageError(f"--processes {args.processes}: this is already process {world.rank} of {world.size} "
                         "(launched by torchrun, SLURM or benchmarks.launch)")
    if args.port is not None and args.processes == 1:
        raise UsageError("--port applies to --processes N (N > 1)")
    if args.pin_cores and args.processes == 1:
        raise UsageError("--pin-cores applies to --processes N (N > 1)")
    if world.size > 1 and args.out is None:
        raise UsageError("a multi-process run needs --out DIR, the same folder for every process")
    return world


def _silence_workers(args, world: World) -> None:
    """One voice: every process but 0 trains without a bar or lines (its errors still show)."""
    if not world.main:
        args.quiet = args.no_progress = True


def _say(world: World, text: str) -> None:
    """A line on stderr, from process 0 only."""
    if world.main:
        print(text, file=sys.stderr)


def _check_processes(args, name: str, s: settings_lib.Settings, world: World) -> None:
    """UsageError when ``name`` cannot train over the processes asked for."""
    processes = world.size if world.size > 1 else args.processes
    if processes == 1:
        return
    if not MODELS[name].processes:
        supported = ", ".join(n for n, spec in MODELS.items() if spec.processes)
        raise UsageError(f"--processes: {name} trains in one process only (multi-process: {supported})")
    if s.batch_size % processes:
        raise UsageError(f"--batch-size {s.batch_size} does not split over {processes} processes: give a multiple "
                         f"of {processes}")


def _check_split(s: settings_lib.Settings, data) -> None:
    try:
        split = train_val_split(len(data.train_labels), val_size=s.val_size, train_size=s.train_size)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if len(split.train) < s.batch_size:
        raise UsageError(f"--batch-size {s.batch_size} is larger than the {len(split.train)} training images")


def _create_output(args, out_dir: Path, *, latest: bool = True) -> tuple[Path, list[outputs.FolderLock]]:
    """The results folder, created (see ``benchmarks.outputs.create``) and locked for this run (and
    ``--checkpoint-dir``, when given), with results/latest pointing at it (unless not ``latest``). Under the lock
    the folder is looked at again (another run may have finished into it meanwhile), and ``--overwrite`` clears
    what the old run left, once no live run holds ``--checkpoint-dir``. Each lock is kept as soon as it is taken,
    so that a mistake after it still lets it go."""
    locks = []
    try:
        out_dir = outputs.create(out_dir, fresh=args.out is None and not args.resume)
        locks.append(outputs.FolderLock(out_dir, "--out").acquire())
        _LOCKS.append(locks[-1])
        outputs.choose(str(out_dir), resume=args.resume, overwrite=args.overwrite, checkpoints=args.checkpoint_dir)
        if args.checkpoint_dir:
            outputs.FolderLock(Path(args.checkpoint_dir), "--checkpoint-dir").check()
        if args.overwrite and (removed := outputs.clear(out_dir)):
            print(f"--overwrite: removed the earlier run's {', '.join(removed)} from {out_dir}", file=sys.stderr)
        if args.checkpoint_dir:
            outputs.create(Path(args.checkpoint_dir), fresh=False, what="--checkpoint-dir")
            locks.append(outputs.FolderLock(Path(args.checkpoint_dir), "--checkpoint-dir").acquire())
            _LOCKS.append(locks[-1])
    except outputs.OutputError as err:
        raise UsageError(str(err)) from None
    if latest:
        outputs.point_latest(out_dir)
    return out_dir, locks


_LOCKS: list[outputs.FolderLock] = []


def _finished_runs(out_dir: Path) -> str:
    """How many finished runs ``out_dir``'s results.json holds, as a launcher reports it."""
    try:
        runs = json.loads((out_dir / "results.json").read_text()).get("runs", [])
    except (OSError, ValueError, AttributeError):
        runs = []
    return f"{out_dir}/results.json holds {len(runs)} finished run(s)"


def _check_same_run(previous: dict, results: dict, out_dir: Path, world: World, skip: tuple = ()) -> None:
    """UsageError naming the first thing in which this command differs from the one that started ``out_dir``:
    a resume continues the same runs, or it would mix two experiments in one folder."""
    before = {"--model": previous.get("models"), "--framework": previous.get("frameworks"),
              "--processes": previous.get("environment", {}).get("host", {}).get("processes", 1)}
    now = {"--model": results["models"], "--framework": results["frameworks"], "--processes": world.size}
    for flag in before:
        if before[flag] is not None and before[flag] != now[flag]:
            _different(out_dir, previous, flag, before[flag], now[flag])
    old, new = previous.get("settings") or {}, json.loads(json.dumps(results["settings"]))
    for model in sorted(set(old) | set(new)):
        if model not in old or model not in new:
            _different(out_dir, previous, "--model", sorted(old), sorted(new))
        for field in sorted((set(old[model]) | set(new[model])) - set(skip)):
            if old[model].get(field) != new[model].get(field):
                _different(out_dir, previous, _flag(field), old[model].get(field), new[model].get(field), model)


def _different(out_dir: Path, previous: dict, flag: str, before, now, model: str | None = None):
    which = f" of {model}" if model else ""
    raise UsageError(f"--resume: {out_dir} holds a run of another command: its {flag}{which} was {before!r}, this "
                     f"command's is {now!r}; resume with the command that started it ({previous.get('command')})")


def _cores() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


class _NoHistory:
    """history.jsonl as a process other than 0 keeps it: not at all."""

    def write(self, record: dict) -> None:
        pass


def run_test_only(args, argv: list[str]) -> int:
    """``--test-only --model-dir DIR``: an exported model tested in each framework asked for, with the usual report."""
    if args.model_dir is None or not args.test_only:
        raise UsageError("--test-only and --model-dir go together: --test-only --model-dir DIR (an exported model)")
    config = read_config(args.model_dir)  # checks the folder, the config and the weights' SHA-256
    if (config["image_size"], config["num_classes"]) != (28, NUM_CLASSES):
        raise UsageError(f"--model-dir {args.model_dir}: a model of {config['num_classes']} classes on "
                         f"{config['image_size']} px images cannot be tested on MNIST (10 classes, 28 px)")
    frameworks = parse_frameworks(args.framework)
    try:
        out_dir = outputs.choose(args.out, resume=False, overwrite=args.overwrite)
    except outputs.OutputError as err:
        raise UsageError(str(err)) from None
    if args.overwrite and Path(args.model_dir).resolve().is_relative_to(out_dir.resolve()):
        raise UsageError(f"--overwrite would clear {out_dir}, which holds the model to test ({args.model_dir}): give "
                         "another --out")
    s = resolve_settings(argparse.Namespace(**(vars(args) | {"model": config["model"], "variant": config["variant"]})),
                         config["model"], args.preset or "cpu")
    data = load_mnist(args.data_dir, args.data_source)
    backends = {fw: BACKENDS[fw](args.device) for fw in frameworks}
    out_dir, _ = _create_output(argparse.Namespace(**(vars(args) | {"resume": False, "checkpoint_dir": None})),
                                out_dir, latest=False)
    # results/latest stays on the last training run: its models/ are what --model-dir and predict name
    weights = f"exported model {args.model_dir} (sha256 {config['weights']['sha256'][:12]})"
    results = {"command": "python -m benchmarks.run " + shlex.join(argv), "settings": {s.model: s.as_dict()},
               "environment": {"host": host_environment(), "data": data_environment(data),
                               "frameworks": {fw: b.environment() for fw, b in backends.items()}},
               "runs": [], "throughput_ratios": []}
    for backend in backends.values():
        run = evaluate_exported(backend, s.replace(precision="float32"), backend.load(args.model_dir), data,
                            weights=weights)
        results["runs"].append(run)
        write_results(out_dir, results)
        print(f"[{backend.label}] {s.model} from {args.model_dir}: test accuracy {run['test_accuracy']:.2%}, "
              f"macro-F1 {run['test_macro_f1']:.4f}", file=sys.stderr)
    print(results_table(results["runs"]))
    print(f"wrote results.json, results.md, results.csv, report.md and plots in {out_dir}")
    return 0


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    """One run of the command: a model, framework, mode and seed, its settings as the backend runs them."""

    model: str
    framework: str
    seed: int
    settings: settings_lib.Settings
    mode: str
    key: str  # its name in results.json, models/ and checkpoints/: ``cnn-jax-seed0``


def _planned_runs(args, plan, settings: dict, seeds: list[int], backends: dict) -> list[PlannedRun]:
    """Every run of the command, in the order they run: per model, seed, framework and mode."""
    runs = []
    for name, fws in plan:
        for seed in seeds:
            for fw in fws:
                per_fw = modes(args, settings[name].replace(seed=seed), fw)
                for run_settings in per_fw:
                    run_settings = backends[fw].resolve(run_settings)
                    mode = mode_label(fw, run_settings)
                    runs.append(PlannedRun(name, fw, seed, run_settings, mode,
                                           outputs.run_name(name, fw, mode, seed, with_mode=len(per_fw) > 1)))
    return runs


def _train_model(args, name, s, seeds, preset, data, backends, results, finished, history, out_dir,
                 checkpoints, world: World, runs: list[PlannedRun], in_progress: dict) -> None:
    """Every planned run of one model: train, test, export, record; finished runs are kept. Process 0 writes and
    speaks for all. A signal that arrived during a run stops the command once that run's results are written."""
    spec = MODELS[name]
    extra = f" | {s.image_size} px | weights {s.weights}" if spec.finetune else ""
    train = s.train_size or len(data.train_labels) - s.val_size
    across = f" | {world.size} processes" if world.size > 1 else ""
    _say(world, f"{name}{' ' + s.variant if s.variant else ''} | preset {preset} | {s.optimizer} lr {s.lr} | "
         f"{s.epochs} epochs | batch {s.batch_size}{across} | {train} train / {s.val_size} val images{extra} | "
         f"seeds {','.join(map(str, seeds))} | data {data.source} ({data.location})")
    save_model = (args.save_model if args.save_model is not None else not spec.finetune) and world.main
    for planned in runs:
        STOP.check()  # a signal between runs: stop here
        backend, key, run_settings, seed = backends[planned.framework], planned.key, planned.settings, planned.seed
        if key in finished:
            results["runs"].append(finished[key])
            _say(world, f"[{backend.label}] {key}: finished before, kept")
            continue
        _say(world, f"[{backend.label}] training {name} ({planned.mode}), seed {seed}, on {backend.device()}")
        checkpointing = Checkpointing(checkpoints / key, every=args.checkpoint_every, resume=args.resume,
                                      identity={"framework": planned.framework, **run_settings.as_dict()}) \
            if args.checkpoint_every else None
        in_progress["run"] = key
        run = run_one(backend, run_settings, data, progress=not (args.no_progress or args.quiet),
                      on_epoch=_epoch_logger(args, history, backend, run_settings),
                      checkpointing=checkpointing, export_dir=out_dir / "models" / key if save_model else None)
        in_progress["run"] = None
        run["run"] = key
        results["runs"].append(run)
        results["throughput_ratios"] = throughput_ratios(results["runs"])
        if world.main:
            write_results(out_dir, results)
        _say(world, f"[{backend.label}] {name} ({run['mode']}) seed {seed}: test accuracy "
             f"{run['test_accuracy']:.2%}, macro-F1 {run['test_macro_f1']:.4f}, {run['train_time_s']:.1f} s "
             f"training on {run['devices']} device(s); weights {run['weights']}")
        for warning in run["warnings"]:
            _say(world, f"[{backend.label}] warning: {name} seed {seed}: {warning}")
        STOP.check()  # a signal during the run (its test pass, say): its results are written; stop here


if __name__ == "__main__":
    sys.exit(main())
