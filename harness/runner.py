"""Carrying a plan out: the data, the output folder, every run trained, tested and recorded, and the reports.

:func:`train` runs a ``harness.plan.Plan`` in this process (one of several, when
started by :func:`start_workers`): it loads and verifies MNIST, creates and locks the output
folder, writes the command's identity, then trains, tests and exports each
planned run (``harness.experiment``), rewriting ``results.json`` and the reports
after each, and keeps ``history.jsonl``. Finished runs of a resumed folder are
kept; a signal stops at a step boundary with a checkpoint and the line that
resumes it. :func:`test_exported` tests an exported model instead.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shlex
import sys
from pathlib import Path

from tqdm.auto import tqdm

from harness import outputs
from harness.data import load_mnist
from harness.environment import data_environment, host_environment
from harness.experiment import evaluate_exported, run_one
from harness.launch import choose_port, run_workers, visible_gpus
from harness.plan import Plan, PlannedRun, TestPlan, check_same_command, held_for_workers
from harness.registry import MODELS
from harness.report.files import HistoryLog, write_results
from harness.report.summary import ratio_lines, summary_table, throughput_ratios
from harness.report.tables import results_table
from harness.tensorboard import FOLDER as TENSORBOARD
from harness.tensorboard import MISSING, RunBoard
from mnist_common.checkpointing import Checkpointing
from mnist_common.interrupt import STOP, StopRequested, handling_signals
from mnist_common.progress import epoch_line

#: The folders this process holds (``harness.outputs.FolderLock``), let go when the command ends.
LOCKS: list[outputs.FolderLock] = []


def release_locks() -> None:
    while LOCKS:
        LOCKS.pop().release()


def open_output(out: Path, *, fresh: bool, resume: bool, overwrite: bool, checkpoint_dir: str | None,
                latest: bool = True) -> Path:
    """The results folder, created (``harness.outputs.create``) and locked for this process (and
    ``checkpoint_dir``, when given), with results/latest pointing at it. Under the lock the folder is looked at
    again (another run may have finished into it meanwhile); ``overwrite`` clears what the old run left, after
    making sure no live run holds ``checkpoint_dir``. ``latest``: point results/latest at it."""
    out = outputs.create(out, fresh=fresh)
    LOCKS.append(outputs.FolderLock(out, "--out").acquire())
    outputs.choose(str(out), resume=resume, overwrite=overwrite, checkpoints=checkpoint_dir)
    if checkpoint_dir:
        outputs.FolderLock(Path(checkpoint_dir), "--checkpoint-dir").check()
    if overwrite and (removed := outputs.clear(out)):
        print(f"--overwrite: removed the earlier run's {', '.join(removed)} from {out}", file=sys.stderr)
    if checkpoint_dir:
        outputs.create(Path(checkpoint_dir), fresh=False, what="--checkpoint-dir")
        LOCKS.append(outputs.FolderLock(Path(checkpoint_dir), "--checkpoint-dir").acquire())
    if latest:
        outputs.point_latest(out)
    return out


class _NoHistory:
    """history.jsonl as a process other than 0 keeps it: not at all."""

    def write(self, record: dict) -> None:
        pass


def train(plan: Plan, malloc: dict) -> int:
    """Every planned run, trained, tested, exported and recorded; the command's exit status."""
    args, world = plan.args, plan.world
    data = load_mnist(args.data_dir, args.data_source)
    out, previous = plan.out, plan.previous
    if world.main:
        out = open_output(out, fresh=args.out is None and not args.resume, resume=args.resume,
                          overwrite=args.overwrite, checkpoint_dir=args.checkpoint_dir)
        previous = outputs.previous_results(out) if args.resume else None  # read again, under the lock
        if previous is not None:  # (another command may have written it since the plan read it)
            check_same_command(previous, plan)
    identity = plan.identity()
    results = {
        "command": plan.command, "models": identity["models"], "frameworks": identity["frameworks"],
        "settings": identity["settings"],
        "environment": {
            "host": host_environment() | {"malloc": malloc, "processes": world.size,
                                          "cpu_cores_per_process": _cores()},
            "data": data_environment(data),
            "frameworks": {fw: b.environment() for fw, b in plan.backends.items()},
        },
        "runs": [], "throughput_ratios": [],
    }
    finished = {run["run"]: run for run in (previous or {}).get("runs", []) if "run" in run}
    if previous is not None and plan.runs and all(run.key in finished for run in plan.runs):
        _say(plan, f"nothing to resume: every run of this command in {out} is finished ({len(plan.runs)} run(s)); "
             "its results are as they were")
        if world.main:
            closing(out, list(finished.values()), "nothing new",
                    checkpoints=plan.checkpoints if args.checkpoint_every else None)
        return 0
    if world.main:  # the command's identity, before any training: a resume is checked against it
        write_results(out, results | {"runs": list(finished.values())}, plots=False)
    history = HistoryLog(out / "history.jsonl", append=args.resume) if world.main else _NoHistory()
    if args.tensorboard and not RunBoard.available:
        _say(plan, MISSING)
    state = {"in_progress": None}  # the run a signal stopped, if it stopped one
    try:  # a signal stops one process at a step boundary; several processes are stopped by their launcher
        with handling_signals() if world.size == 1 else contextlib.nullcontext():
            for name, _ in plan.models:
                _announce(plan, name, data)
                for planned in (run for run in plan.runs if run.model == name):
                    _train_one(plan, planned, data, results, finished, history, out, state)
    except StopRequested as err:
        if world.main:
            write_results(out, results)
        again = [a for a in plan.argv if a not in ("--resume", "--overwrite")]
        if args.out is None:
            again += ["--out", str(out)]  # results/latest may name a later run by then
        resume = shlex.join(["python", "-m", "benchmarks.run", *again, "--resume"])
        left = len(plan.runs) - len(results["runs"])
        if not left:
            _say(plan, f"interrupted ({err}) after the last run finished: every result is in {out}")
        else:
            kept = f" and a checkpoint of {state['in_progress']}" if args.checkpoint_every and state["in_progress"] \
                else ""
            _say(plan, f"interrupted ({err}): {len(results['runs'])} finished run(s){kept} are in {out} "
                 f"({left} to go); continue with: {resume}")
        return err.exit_code
    if world.main:
        print(results_table(results["runs"]))
        if len(plan.seeds) > 1:
            print()
            print(summary_table(results["runs"]))
        for line in ratio_lines(results["throughput_ratios"]):
            print(line)
        closing(out, results["runs"], "results.json, history.jsonl, results.md, results.csv, report.md and plots",
                checkpoints=plan.checkpoints if args.checkpoint_every else None)
    return 0


def _announce(plan: Plan, name: str, data) -> None:
    """One line on what a model's runs train: its recipe, sizes, seeds and data."""
    s, spec = plan.settings[name], MODELS[name]
    extra = f" | {s.image_size} px | weights {s.weights}" if spec.finetune else \
        f" | starting from {s.weights}" if s.weights not in (None, "none") else ""
    across = f" | {plan.world.size} processes" if plan.world.size > 1 else ""
    _say(plan, f"{name}{' ' + s.variant if s.variant else ''} | preset {plan.preset} | {s.optimizer} lr {s.lr} | "
         f"{s.epochs} epochs | batch {s.batch_size}{across} | {s.num_train()} train / {s.val_size} val images{extra} "
         f"| seeds {','.join(map(str, plan.seeds))} | data {data.source} ({data.location})")


def _train_one(plan: Plan, planned: PlannedRun, data, results: dict, finished: dict, history, out: Path,
               state: dict) -> None:
    """One planned run: kept when it finished before, else trained, tested, exported and recorded. A signal that
    arrived during it stops the command once its results are written."""
    args = plan.args
    STOP.check()  # a signal between runs: stop here
    backend, key, s = plan.backends[planned.framework], planned.key, planned.settings
    if key in finished:
        results["runs"].append(finished[key])
        _say(plan, f"[{backend.label}] {key}: finished before, kept")
        return
    _say(plan, f"[{backend.label}] training {s.model} ({planned.mode}), seed {s.seed}, on {backend.device()}")
    checkpointing = Checkpointing(plan.checkpoints / key, every=args.checkpoint_every, resume=args.resume,
                                  identity={"framework": planned.framework, **s.as_dict()}) \
        if args.checkpoint_every else None
    spec = MODELS[s.model]
    save_model = (args.save_model if args.save_model is not None else not spec.finetune) and plan.world.main
    state["in_progress"] = key
    board = RunBoard(out / TENSORBOARD / key, {"run": key, "framework": planned.framework, "mode": planned.mode,
                                                 **s.as_dict()}) \
        if args.tensorboard and plan.world.main and RunBoard.available else None
    logger = _epoch_logger(args, history, planned)
    try:
        run = run_one(backend, s, data, progress=not (args.no_progress or args.quiet),
                      on_epoch=logger if board is None else (lambda stats: (logger(stats), board.epoch(stats))),
                      say=_teller(args, planned), on_log=board.interval if board is not None else None,
                      checkpointing=checkpointing, export_dir=out / "models" / key if save_model else None)
        if board is not None:
            board.finished(run.to_json())
    finally:
        if board is not None:
            board.close()
    state["in_progress"] = None
    run.run = key
    results["runs"].append(run.to_json())
    results["throughput_ratios"] = throughput_ratios(results["runs"])
    if plan.world.main:
        write_results(out, results)
    _say(plan, f"[{backend.label}] {s.model} ({run.mode}) seed {s.seed}: test accuracy {run.test_accuracy:.2%}, "
         f"macro-F1 {run.test_macro_f1:.4f}, {run.train_time_s:.1f} s training on {run.devices} device(s)"
         + (f" (first epoch's line after {run.first_epoch_s:.1f} s)" if run.first_epoch_s is not None else "")
         + "; weights "
         f"{run.weights}" + (f", {run.start_test_accuracy:.2%} test accuracy before training"
                             if run.start_test_accuracy is not None else ""))
    for warning in run.warnings:
        _say(plan, f"[{backend.label}] warning: {s.model} seed {s.seed}: {warning}")
    STOP.check()  # a signal during the run (its test pass, say): its results are written; stop here


def _teller(args, planned: PlannedRun):
    """The lines a fit says before its first epoch (compiling, and how long it took), labelled as the epoch lines
    are; none with --quiet."""
    s = planned.settings
    label = f"{planned.framework} {s.model} ({planned.mode}) seed {s.seed}"
    return (lambda text: None) if args.quiet else (lambda text: tqdm.write(f"{label}: {text}", file=sys.stderr))


def _epoch_logger(args, history, planned: PlannedRun):
    """Per finished epoch: one line on stderr (unless --quiet) and one line in history.jsonl."""
    s = planned.settings
    label = f"{planned.framework} {s.model} ({planned.mode}) seed {s.seed}"

    def log(stats) -> None:
        if not args.quiet:
            tqdm.write(epoch_line(label, s.epochs, stats), file=sys.stderr)
        history.write({"framework": planned.framework, "model": s.model, "variant": s.variant, "mode": planned.mode,
                       "seed": s.seed, **stats.as_dict(),
                       "time": datetime.datetime.now().astimezone().isoformat(timespec="seconds")})

    return log


def closing(out: Path, runs: list[dict], files: str, *, checkpoints: Path | None = None) -> None:
    """The command's last two lines on stdout: what it wrote and where (the trained models and the checkpoints
    and TensorBoard logs too), then the same as one JSON object that scripts can read (``... | tail -n 1``):
    ``folder``, ``results``, ``models`` (a list), ``checkpoints`` and ``tensorboard`` (null when there are none),
    as absolute paths."""
    models = [run["exported"]["folder"] for run in runs if run.get("exported")]
    kept = checkpoints if checkpoints is not None and checkpoints.is_dir() and any(checkpoints.iterdir()) else None
    line = f"wrote {files} in {out}"
    if models:
        line += f"; the trained models in {out / 'models'}/"
    if kept is not None:
        line += f"; checkpoints in {kept}/"
    board = out / TENSORBOARD if (out / TENSORBOARD).is_dir() else None
    if board is not None:
        line += f"; TensorBoard logs in {board}/"
    print(line)
    print(json.dumps({"folder": str(out.resolve()), "results": str((out / "results.json").resolve()),
                      "models": [str(Path(m).resolve()) for m in models],
                      "checkpoints": str(kept.resolve()) if kept is not None else None,
                      "tensorboard": str(board.resolve()) if board is not None else None}))


def _say(plan: Plan, text: str) -> None:
    """A line on stderr, from process 0 only."""
    if plan.world.main:
        print(text, file=sys.stderr)


def _cores() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def test_exported(plan: TestPlan) -> int:
    """An exported model tested in each framework asked for, with the usual reports."""
    args = plan.args
    data = load_mnist(args.data_dir, args.data_source)
    out = open_output(plan.out, fresh=args.out is None, resume=False, overwrite=args.overwrite, checkpoint_dir=None,
                      latest=False)  # (results/latest keeps naming the last training run, whose models/ these are)
    weights = f"exported model {args.model_dir} (sha256 {plan.config['weights']['sha256'][:12]})"
    results = {"command": plan.command, "settings": {plan.settings.model: plan.settings.as_dict()},
               "environment": {"host": host_environment(), "data": data_environment(data),
                               "frameworks": {fw: b.environment() for fw, b in plan.backends.items()}},
               "runs": [], "throughput_ratios": []}
    for backend in plan.backends.values():
        run = evaluate_exported(backend, plan.settings.replace(precision="float32"), backend.load(args.model_dir),
                                data, weights=weights)
        results["runs"].append(run.to_json())
        write_results(out, results)
        print(f"[{backend.label}] {plan.settings.model} from {args.model_dir}: test accuracy "
              f"{run.test_accuracy:.2%}, macro-F1 {run.test_macro_f1:.4f}", file=sys.stderr)
    print(results_table(results["runs"]))
    closing(out, results["runs"], "results.json, results.md, results.csv, report.md and plots")
    return 0


def start_workers(plan: Plan) -> int:
    """``--processes N``: the plan's output folder created and locked here, then N workers of the same command
    under PyTorch's elastic launcher (``harness.launch``), told that this process holds the folder for them."""
    args = plan.args
    load_mnist(args.data_dir, args.data_source)  # the data checked here, one line, before any folder or worker
    port = choose_port(args.port)
    out = open_output(plan.out, fresh=args.out is None and not args.resume, resume=args.resume,
                      overwrite=args.overwrite, checkpoint_dir=args.checkpoint_dir)
    again = [] if args.out is not None else ["--out", str(out)]  # every worker writes to the same folder
    use_gpus = args.device == "gpu" or (args.device == "auto" and bool(visible_gpus()))
    return run_workers(["-m", "benchmarks.run", *plan.argv, *again], args.processes, port=port, use_gpus=use_gpus,
                       pin=args.pin_cores, env=held_for_workers(LOCKS), outcome=lambda: _finished(out))


def _finished(out: Path) -> str:
    """How many finished runs ``out``'s results.json holds, as the launcher reports it."""
    return f"{out}/results.json holds {outputs.runs_in(out / 'results.json')} finished run(s)"
