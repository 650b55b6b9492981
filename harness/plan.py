"""The plan of a command: every run with its complete settings, where the results go, the processes and devices.

:func:`make` turns the command line into a :class:`Plan` and makes every check
once, before any data is loaded or any model trained: the options, each
model's settings and every combination of its mode lists, the split and the
batch over the processes, the weights of every torchvision model, the output
folder (and the run it continues, with ``--resume``). A mistake anywhere stops
the command before the first model starts. What consumes a plan: training
(``harness.runner.train``), testing an exported model (``harness.runner.test_exported``)
and starting worker processes (``harness.launch.start``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path

from harness import outputs, settings
from harness.backends import BACKENDS, FRAMEWORKS, check_torchvision_weights
from harness.cli import UsageError, parse_seeds
from harness.data import train_val_split
from harness.launch import visible_gpus
from harness.record import mode_label
from harness.registry import MODELS, parse_models
from harness.settings import NUM_TRAIN, Settings
from mnist_common.export import ExportError, check_fits, read_config
from mnist_common.processes import World, world_from_environment
from mnist_common.settings import ConfigError

#: The mode fields each framework runs a list of; a run of one framework ignores the other's.
MODE_FIELDS = {"jax": ("kernels", "precision"), "torch": ("torch_compile", "channels_last", "precision")}


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    """One run: a model, framework, mode and seed, with its settings as its backend runs them."""

    model: str
    framework: str
    seed: int
    settings: Settings
    mode: str
    key: str  # its name in results.json, models/ and checkpoints/: ``cnn-jax-seed0``


@dataclasses.dataclass
class Plan:
    """What a command will do, every part checked. ``backends`` are the frameworks, started (none when this
    process only starts workers); ``out`` is chosen, not yet created (the runner creates and locks it)."""

    args: argparse.Namespace  # the options that are not settings: --quiet, --checkpoint-every, --malloc...
    argv: list[str]
    world: World
    models: list[tuple[str, list[str]]]  # (model, the frameworks that implement it)
    seeds: list[int]
    preset: str
    settings: dict[str, Settings]  # per model: seed 0, the first value of each mode list
    runs: list[PlannedRun]
    out: Path
    previous: dict | None  # the results a resume continues
    backends: dict
    launching: bool  # this process starts --processes workers and trains nothing itself

    @property
    def frameworks(self) -> list[str]:
        return [fw for fw in FRAMEWORKS if any(fw in fws for _, fws in self.models)]

    @property
    def checkpoints(self) -> Path:
        return Path(self.args.checkpoint_dir) if self.args.checkpoint_dir else self.out / "checkpoints"

    @property
    def command(self) -> str:
        """The command as it would be typed again, without ``--resume`` and ``--overwrite``."""
        return "python -m benchmarks.run " + shlex.join(a for a in self.argv if a not in ("--resume", "--overwrite"))

    def identity(self) -> dict:
        """What makes this command's runs these runs: a resume must match it (``check_same_command``)."""
        return {"models": [name for name, _ in self.models], "frameworks": self.frameworks,
                "settings": {name: s.as_dict() | {"seeds": self.seeds} for name, s in self.settings.items()},
                "processes": self.world.size if self.world.size > 1 else self.args.processes}


def make(args: argparse.Namespace, argv: list[str]) -> Plan:
    """The plan of ``benchmarks.run``'s command line, every check made; UsageError (one line) on the first mistake."""
    _check_options(args)
    world = _world(args)
    frameworks = ["jax", "torch"] if args.framework == "both" else [args.framework]
    seeds = parse_seeds(str(args.seed), "--seed") if args.seeds is None else parse_seeds(args.seeds)
    launching = args.processes > 1 and world.size == 1
    if world.size > 1 and not world.main:  # one voice: the other processes train without a bar or lines
        args.quiet = args.no_progress = True
    models = _models(args, frameworks, quiet=launching or not world.main)
    backends = {} if launching else {fw: BACKENDS[fw](args.device, world) for fw in FRAMEWORKS
                                     if any(fw in fws for _, fws in models)}  # imports each framework asked for
    gpus = any(b.has_gpu() for b in backends.values()) if backends else \
        args.device == "gpu" or (args.device == "auto" and bool(visible_gpus()))
    preset = args.preset or ("full" if gpus else "cpu")
    devices = _devices(args, backends)
    model_settings = {}
    for name, fws in models:
        s = resolve(args, name, preset, strict=len(models) == 1).replace(devices=devices)
        _check_processes(args, name, s, world)
        _check_split(s)
        for fw in fws:
            modes(args, s, fw)  # every combination, checked
        check_weights(name, s)
        model_settings[name] = s
    if launching and gpus and len(visible_gpus()) < args.processes:
        raise UsageError(f"--processes {args.processes}: one GPU per process, and {len(visible_gpus())} are visible "
                         "(--device cpu divides the CPU cores instead)")
    out = outputs.choose(args.out, resume=args.resume, overwrite=args.overwrite, checkpoints=args.checkpoint_dir)
    previous = outputs.previous_results(out) if args.resume else None
    runs = planned_runs(args, models, model_settings, seeds, backends)
    plan = Plan(args, argv, world, models, seeds, preset, model_settings, runs, out, previous, backends, launching)
    if previous is not None:
        check_same_command(previous, plan)
    return plan


def _check_options(args) -> None:
    """The options that need nothing else to be checked."""
    if args.checkpoint_every < 0:
        raise UsageError(f"--checkpoint-every must be >= 0 (0: no checkpoints), got {args.checkpoint_every}")
    if args.resume and args.overwrite:
        raise UsageError("--resume continues what --out holds and --overwrite replaces it: give one")
    for name, value in (("--data-dir", args.data_dir), ("--checkpoint-dir", args.checkpoint_dir)):
        if value is not None and not value.strip():
            raise UsageError(f"{name} must name a folder, got an empty path")
    if args.checkpoint_dir is not None and Path(args.checkpoint_dir).exists() \
            and not Path(args.checkpoint_dir).is_dir():
        raise UsageError(f"--checkpoint-dir {args.checkpoint_dir} exists and is not a folder")


def _world(args) -> World:
    """This process's place in a multi-process run (one process unless launched as a worker), flags checked."""
    world = world_from_environment()
    if args.processes < 1:
        raise UsageError(f"--processes must be at least 1, got {args.processes}")
    if world.size > 1 and args.processes not in (1, world.size):
        raise UsageError(f"--processes {args.processes}: this is already process {world.rank} of {world.size} "
                         "(launched by torchrun or SLURM)")
    if args.port is not None and args.processes == 1:
        raise UsageError("--port applies to --processes N (N > 1)")
    if args.pin_cores and args.processes == 1:
        raise UsageError("--pin-cores applies to --processes N (N > 1)")
    if world.size > 1 and args.out is None:
        raise UsageError("a multi-process run needs --out DIR, the same folder for every process")
    return world


def _models(args, frameworks: list[str], *, quiet: bool) -> list[tuple[str, list[str]]]:
    """(model, frameworks that implement it) for every model asked for; ``--model all`` skips, with a note unless
    ``quiet``, what a framework lacks."""
    try:
        names = parse_models(args.model)
    except ValueError as err:
        raise UsageError(str(err)) from None
    models = []
    for name in names:
        spec = MODELS[name]
        missing = [fw for fw in frameworks if getattr(spec, fw) is None]
        if missing and args.model != "all":
            if spec.finetune:
                raise UsageError(f"{name} is a torchvision model with no JAX port: use --framework torch")
            raise UsageError(f"model {name!r} has no {missing[0]} implementation")
        fws = [fw for fw in frameworks if getattr(spec, fw) is not None]
        if fws:
            models.append((name, fws))
        elif not quiet:
            print(f"note: skipping {name}: no {' or '.join(missing)} implementation", file=sys.stderr)
    return models


def resolve(args, name: str, preset: str, *, strict: bool = True) -> Settings:
    """``harness.settings.resolve`` with the command line's settings; an error names the flag. ``strict`` (one
    model): a flag that does not apply to it is an error, not left out."""
    given = _checked(lambda: settings.overrides(args))
    if args.detector is not None:  # --detector is Faster R-CNN's name for --variant
        if name != "faster_rcnn":
            if strict:
                raise UsageError(f"--detector does not apply to {name}")
        elif args.variant not in (None, args.detector):
            raise UsageError(f"--detector {args.detector} and --variant {args.variant} disagree")
        else:
            given["variant"] = args.detector
    return _checked(lambda: settings.resolve(name, preset, given, strict=strict))


def _checked(make):
    """``make()``, a ConfigError turned into a UsageError naming the field's flag."""
    try:
        return make()
    except ConfigError as err:
        raise UsageError(f"{settings.flag(err.field)} {err.problem}") from None


def modes(args, base: Settings, framework: str) -> list[Settings]:
    """``base`` once per combination of the mode lists that apply to ``framework`` and the model, each checked."""
    lists = _checked(lambda: settings.mode_lists(args))
    runs = [base]
    for field in MODE_FIELDS[framework]:
        if lists[field] is not None and settings.applies(field, base.model):
            runs = [_checked(lambda s=s, v=v: s.replace(**{field: v})) for s in runs for v in lists[field]]
    return runs


def _check_processes(args, name: str, s: Settings, world: World) -> None:
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


def _check_split(s: Settings) -> None:
    """The split the settings ask for, of MNIST's 60,000 training images (the loader accepts no other set)."""
    try:
        split = train_val_split(NUM_TRAIN, val_size=s.val_size, train_size=s.train_size)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if len(split.train) < s.batch_size:
        raise UsageError(f"--batch-size {s.batch_size} is larger than the {len(split.train)} training images")


def check_weights(name: str, s: Settings) -> None:
    """Fail now on weights that cannot be had or do not fit: torchvision's (``torch_ref.finetune.check_weights``),
    or an exported model to start a CNN or ViT from (its config, the weights' SHA-256, and that it is the model and
    variant asked for: ``mnist_common.export.check_fits``)."""
    if MODELS[name].finetune:
        check_torchvision_weights(name, s.variant, s.weights, s.image_size)
    elif s.weights not in (None, "none"):
        try:
            check_fits(read_config(s.weights), s.weights, model=name, variant=s.variant)
        except ExportError as err:
            raise UsageError(f"--weights {err}") from None


def _devices(args, backends: dict) -> int | None:
    """Devices per run: ``--devices`` for every framework, or with ``--framework both`` the smaller of the two
    frameworks' counts, so that a speed ratio compares equal hardware; None: JAX's default."""
    counts = {fw: b.device_count() for fw, b in backends.items()}
    if args.devices is not None:
        for fw, count in counts.items():
            if args.devices > count:
                what = "trains on one device per process" if fw == "torch" else f"sees {count} local device(s)"
                raise UsageError(f"--devices {args.devices}: {backends[fw].label} {what}")
        return args.devices
    return min(counts.values()) if len(counts) > 1 else None


def planned_runs(args, models, model_settings: dict, seeds: list[int], backends: dict) -> list[PlannedRun]:
    """Every run of the command, in the order they run: per model, seed, framework and mode. Without backends
    (a launcher) the settings stay as given (``kernels="auto"`` unresolved)."""
    runs = []
    for name, fws in models:
        for seed in seeds:
            for fw in fws:
                per_fw = modes(args, model_settings[name].replace(seed=seed), fw)
                for run_settings in per_fw:
                    if fw in backends:
                        run_settings = backends[fw].resolve(run_settings)
                    mode = mode_label(fw, kernels=run_settings.kernels, precision=run_settings.precision,
                                      torch_compile=run_settings.torch_compile,
                                      channels_last=run_settings.channels_last)
                    runs.append(PlannedRun(name, fw, seed, run_settings, mode,
                                           outputs.run_name(name, fw, mode, seed, with_mode=len(per_fw) > 1)))
    return runs


def check_same_command(previous: dict, plan: Plan) -> None:
    """UsageError naming the first thing in which this command differs from the one that started the folder: a
    resume continues the same runs, or it would mix two experiments in one folder. A launcher compares what it
    can without the frameworks (their device counts aside)."""
    before = {"--model": previous.get("models"), "--framework": previous.get("frameworks"),
              "--processes": previous.get("environment", {}).get("host", {}).get("processes", 1)}
    identity = plan.identity()
    now = {"--model": identity["models"], "--framework": identity["frameworks"], "--processes": identity["processes"]}
    for name in before:
        if before[name] is not None and before[name] != now[name]:
            _different(plan.out, previous, name, before[name], now[name])
    old, new = previous.get("settings") or {}, json.loads(json.dumps(identity["settings"]))
    for model in sorted(set(old) | set(new)):
        if model not in old or model not in new:
            _different(plan.out, previous, "--model", sorted(old), sorted(new))
        for field in sorted(set(old[model]) | set(new[model])):
            if plan.launching and field == "devices":
                continue  # (the workers, which see the devices, compare it)
            if old[model].get(field) != new[model].get(field):
                _different(plan.out, previous, settings.flag(field), old[model].get(field), new[model].get(field),
                           model)


def _different(out: Path, previous: dict, flag: str, before, now, model: str | None = None):
    which = f" of {model}" if model else ""
    raise UsageError(f"--resume: {out} holds a run of another command: its {flag}{which} was {before!r}, this "
                     f"command's is {now!r}; resume with the command that started it ({previous.get('command')})")


# ------------------------------------------------------------------------------------------------ test only


@dataclasses.dataclass
class TestPlan:
    """``--test-only --model-dir DIR``: one exported model, tested in each framework asked for."""

    args: argparse.Namespace
    argv: list[str]
    config: dict  # the model's config.json, checked
    settings: Settings
    frameworks: list[str]
    out: Path
    backends: dict

    @property
    def command(self) -> str:
        return "python -m benchmarks.run " + shlex.join(self.argv)


def make_test(args: argparse.Namespace, argv: list[str]) -> TestPlan:
    """The plan of ``--test-only``, every check made (the folder, its config and weights, the output folder)."""
    if args.model_dir is None or not args.test_only:
        raise UsageError("--test-only and --model-dir go together: --test-only --model-dir DIR (an exported model)")
    _check_options(args)
    _world(args)
    if args.processes > 1 or world_from_environment().size > 1:
        raise UsageError("--processes does not apply to --test-only (testing runs in one process)")
    config = read_config(args.model_dir)  # the folder, every field of its config, the weights' SHA-256
    if (config["image_size"], config["num_classes"]) != (28, 10):
        raise UsageError(f"--model-dir {args.model_dir}: a model of {config['num_classes']} classes on "
                         f"{config['image_size']} px images cannot be tested on MNIST (10 classes, 28 px)")
    out = outputs.choose(args.out, resume=False, overwrite=args.overwrite)
    if args.overwrite and Path(args.model_dir).resolve().is_relative_to(out.resolve()):
        raise UsageError(f"--overwrite would clear {out}, which holds the model to test ({args.model_dir}): give "
                         "another --out")
    frameworks = ["jax", "torch"] if args.framework == "both" else [args.framework]
    model_args = argparse.Namespace(**(vars(args) | {"variant": config["variant"]}))
    s = resolve(model_args, config["model"], args.preset or "cpu")
    backends = {fw: BACKENDS[fw](args.device) for fw in frameworks}
    return TestPlan(args, argv, config, s, frameworks, out, backends)


def held_for_workers(locks: list[outputs.FolderLock]) -> dict:
    """The environment that tells a launcher's workers which folders it holds for them."""
    return {outputs.HELD_FOR_WORKERS: json.dumps([str(lock.folder.resolve()) for lock in locks])}

