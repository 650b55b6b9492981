"""N processes against one: the same optimizer steps of one model in one framework, compared.

``python -m parity.processes --framework jax|torch|both --model cnn|vit|all --processes 2``
trains each model for ``--steps`` SGD steps (momentum, float32) in
this process, then again as ``--processes`` data-parallel workers
(``harness.launch``, PyTorch's elastic launcher: JAX's distributed runtime over gloo, PyTorch DDP), on the
same global batches in the same order, and compares the loss of every step and
the final parameters. Data parallelism changes only the order in which the
gradient is summed, so the trajectories must agree to float32 rounding: losses
within 1e-5, parameters within 1e-4. JAX trains with the models' dropout on:
its workers draw their rows of the whole batch's masks, whichever all-reduce
sums the gradients (``--all-reduce``). PyTorch's DDP draws each process's own
masks, so it trains with dropout off. Exits 1 when a check fails, 2 on a usage error.

Each step is one epoch over ``2 * batch - 1`` images (one full batch, a
different one each epoch), so every step's loss is the epoch loss ``fit``
reports, read without a host sync inside the epoch.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np

from harness import cli
from harness.cli import Parser, UsageError
from harness.launch import LaunchError, choose_port, run_workers, setup_worker
from mnist_common.config import ALL_REDUCES
from mnist_common.processes import world_from_environment
from parity.compare import compare_trees
from parity.run import MODELS

FRAMEWORKS = ("jax", "torch")
LOSS_TOLERANCE, PARAM_TOLERANCE = 1e-5, 1e-4


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m parity.processes",
                description="Check that data-parallel training over several processes follows the one-process "
                "trajectory: per-step losses and final parameters.")
    p.add_argument("--framework", default="both", metavar="{jax,torch,both}", help="framework(s) (default: both)")
    p.add_argument("--model", default="cnn", metavar="{cnn,vit,all}", help="model(s) (default: cnn)")
    p.add_argument("--processes", type=int, default=2, metavar="N", help="worker processes (default: 2)")
    p.add_argument("--steps", type=int, default=20, metavar="N", help="SGD steps (default: 20)")
    p.add_argument("--batch-size", type=int, default=64, metavar="B", help="global batch (default: 64)")
    p.add_argument("--all-reduce", default="auto", choices=ALL_REDUCES,
                   help="JAX: how the workers sum the gradients (jax_impl.parallel.all_reduce_for; default: auto)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="folder for processes.json, parity.md and summary.md (default: print only)")
    p.add_argument("--worker", default=None, metavar="FILE", help=argparse.SUPPRESS)  # set by the launch
    return p


def _choice(value: str, names: tuple[str, ...], all_name: str, flag: str) -> list[str]:
    if value == all_name:
        return list(names)
    if value not in names:
        raise UsageError(f"unknown {flag} {value!r} (choose from {', '.join(names)}, {all_name})")
    return [value]


def trajectory(framework: str, model: str, images: np.ndarray, labels: np.ndarray, *, steps: int, batch_size: int,
               seed: int = 0, all_reduce: str = "auto") -> tuple[np.ndarray, dict[str, np.ndarray], str]:
    """(loss of each step ``[steps]``, final parameters by path, how the gradients were summed: ``fit``'s
    ``all_reduce`` or ``"-"``) of ``steps`` SGD steps in ``framework``, in however many processes this one
    belongs to (its framework's parallel runtime joined already): JAX with the tuned layers and dropout on,
    PyTorch with dropout off."""
    from mnist_common import TrainConfig

    config = TrainConfig(epochs=steps, batch_size=batch_size, optimizer="sgd", lr=0.05, momentum=0.9, seed=seed,
                         all_reduce=all_reduce)
    if framework == "jax":
        from flax import nnx

        import jax_impl.models
        import jax_impl.train
        from parity.convert import flax_params

        net = getattr(jax_impl.models, model.upper() if model == "cnn" else "ViT")(kernels="tuned",
                                                                                   rngs=nnx.Rngs(seed))
        fit = jax_impl.train.fit(net, images, labels, config, progress=False)
        params = flax_params(net)
    else:
        import torch

        import torch_ref.models
        import torch_ref.train
        from parity.convert import torch_params

        torch.manual_seed(seed)
        net = getattr(torch_ref.models, model.upper() if model == "cnn" else "ViT")(dropout=0.0)
        fit = torch_ref.train.fit(net, images, labels, config, progress=False)
        params = torch_params(net)
    losses = np.array([h.train_loss for h in fit.history], np.float64)
    return losses, {k: np.asarray(v, np.float64) for k, v in params.items()}, fit.all_reduce or "-"


def _training_data(batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    from harness.data import load_mnist

    data = load_mnist()
    n = 2 * batch_size - 1  # one full batch per epoch, a different one each epoch
    return data.train_images[:n], data.train_labels[:n]


def _worker(args) -> int:
    """One of the launched processes: join the runtime, train, and (process 0) save the trajectory."""
    setup_worker()
    world = world_from_environment()
    (framework,), (model,) = args.framework.split(","), args.model.split(",")
    if framework == "jax":
        from jax_impl import parallel, xla_cpu

        xla_cpu.apply()
        parallel.initialize(world)
    else:
        import torch

        from torch_ref import parallel

        parallel.initialize(world, torch.device("cpu"))
    losses, params, summed = trajectory(framework, model, *_training_data(args.batch_size), steps=args.steps,
                                batch_size=args.batch_size, all_reduce=args.all_reduce)
    if world.main:
        np.savez(args.worker, losses=losses, all_reduce=summed, **{f"param:{k}": v for k, v in params.items()})
    return 0


def check(framework: str, model: str, *, processes: int = 2, steps: int = 20, batch_size: int = 64,
          all_reduce: str = "auto") -> list[dict]:
    """Parity records (``parity.checks`` style) of ``processes`` workers against this process: losses, parameters
    (``all_reduce``: how JAX's workers sum the gradients).

    Raises RuntimeError when the workers fail.
    """
    images, labels = _training_data(batch_size)
    losses, params, _ = trajectory(framework, model, images, labels, steps=steps, batch_size=batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "trajectory.npz"
        command = ["-m", "parity.processes", "--worker", str(out), "--framework", framework, "--model", model,
                   "--steps", str(steps), "--batch-size", str(batch_size), "--all-reduce", all_reduce]
        code = run_workers(command, processes, port=choose_port(), say=lambda line: None)
        if code != 0 or not out.is_file():
            raise RuntimeError(f"{processes} {framework} worker processes failed (status {code})")
        with np.load(out) as saved:
            theirs, summed = {"losses": saved["losses"]}, str(saved["all_reduce"])
            their_params = {k.removeprefix("param:"): saved[k] for k in saved.files if k.startswith("param:")}
    name = f"{processes} processes vs 1" + (f" ({summed} all-reduce)" if framework == "jax" else "")
    records = []
    for what, actual, reference, tolerance in (
            ("losses", theirs, {"losses": losses}, LOSS_TOLERANCE),
            ("parameters", their_params, params, PARAM_TOLERANCE)):
        cmp = compare_trees(actual, reference, tolerance=tolerance)
        records.append({"framework": framework, "model": model, "check": f"{name}: {steps} SGD steps, {what}",
                        "processes": processes, "max_abs_diff": cmp.max_abs_diff, "tolerance": tolerance,
                        "passed": cmp.passed, "detail": cmp.message()})
    return records


def summary(records: list[dict], command: str) -> str:
    """The checks as a Markdown table with the command that produced them."""
    from harness.report.markdown import table

    rows = [[r["framework"], r["model"], r["check"], f"{r['max_abs_diff']:.2e}", f"{r['tolerance']:.0e}",
             "pass" if r["passed"] else "FAIL"] for r in records]
    return (f"Command: `{command}`\n\n"
            + table(["framework", "model", "check", "max\\|diff\\|", "tolerance", "result"], rows) + "\n")


def main(argv: list[str] | None = None) -> int:
    return cli.run(_main, argv)


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.worker is not None:
        return _worker(args)
    frameworks = _choice(args.framework, FRAMEWORKS, "both", "--framework")
    models = _choice(args.model, MODELS, "all", "--model")
    for flag, value, least in (("--processes", args.processes, 2), ("--steps", args.steps, 1),
                               ("--batch-size", args.batch_size, 1)):
        if value < least:
            raise UsageError(f"{flag} must be at least {least}, got {value}")
    if args.batch_size % args.processes:
        raise UsageError(f"--batch-size {args.batch_size} does not split over {args.processes} processes")
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    from jax_impl import xla_cpu

    xla_cpu.apply()  # as the workers and the runner have it
    records = []
    for framework in frameworks:
        for model in models:
            try:
                found = check(framework, model, processes=args.processes, steps=args.steps,
                              batch_size=args.batch_size, all_reduce=args.all_reduce)
            except (RuntimeError, LaunchError) as err:
                print(f"error: {framework} {model}: {err}", file=sys.stderr)
                return 2 if isinstance(err, LaunchError) else 1
            for r in found:
                records.append(r)
                print(f"{'ok  ' if r['passed'] else 'FAIL'} {framework} {model} {r['check']}: {r['detail']}")
    if out is not None:
        from mnist_common.files import atomic_write

        out.mkdir(parents=True, exist_ok=True)
        command = "python -m parity.processes " + shlex.join(argv)
        atomic_write(out / "processes.json", json.dumps({"command": command, "checks": records}, indent=2) + "\n")
        atomic_write(out / "summary.md", summary(records, command))  # what benchmarks.report --readme inserts
        intro = (f"# Several processes against one\n\n{args.steps} SGD steps (momentum 0.9, float32, global batch "
                 f"{args.batch_size}; JAX: tuned layers, dropout on; PyTorch: dropout off) in one process and in {args.processes} data-parallel worker "
                 "processes (JAX's distributed runtime, PyTorch DDP; gloo on a CPU), on the same batches in the same "
                 "order: the loss of every step and the final parameters, max abs diff.\n\n")
        atomic_write(out / "parity.md", intro + summary(records, command))
        print(f"wrote {out / 'processes.json'}, {out / 'parity.md'} and {out / 'summary.md'}")
    failed = [r for r in records if not r["passed"]]
    print(f"{len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
