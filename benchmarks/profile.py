"""Step times per framework and mode: ``python -m benchmarks.profile --model cnn --framework jax|torch|both``.

For each mode asked for (``--kernels``, ``--torch-compile``, ``--channels-last``,
``--precision``, lists as in the runner) it builds the model (``cnn``, ``vit``,
``vgg16``, ``alexnet``; the last two random, at the cpu preset's image size),
compiles or warms it up, then times ``--steps`` training steps on real MNIST
batches, each synchronised, and prints the medians of the step's parts: the
whole step, the forward pass with the loss alone, the optimizer's update alone,
and what is left (the backward pass). The work per step is
XLA's FLOP count of the float32 training step, the same algorithm in both
frameworks, so each mode's achieved GFLOP/s can be set against ``--ceiling``:
the median GFLOP/s of a large ``jnp.dot`` and ``torch.mm`` on this machine.
``--trace DIR`` writes a JAX profiler trace and a PyTorch profiler trace of a
few steps and prints each mode's costliest operations (``--top``): XLA's
instructions from the JAX trace, PyTorch's operators by self CPU time. Timing
single steps is a development tool: the runner's epochs are the measurements
that count (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from harness import cli, plan
from harness.backends import BACKENDS, DEVICES
from harness.cli import Parser, UsageError
from harness.data import load_mnist
from harness.malloc import keep_large_buffers
from harness.record import mode_label
from harness.registry import MODELS
from harness.report.markdown import table
from harness.settings import Settings, flag, resolve
from mnist_common.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m benchmarks.profile", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="cnn", metavar="{" + ",".join(PROFILED) + "}",
                   help="model to time (default: cnn)")
    p.add_argument("--optimizer", default=None, help="the optimizer (default: the cpu preset's)")
    p.add_argument("--framework", default="both", metavar="{jax,torch,both}", help="framework (default: both)")
    p.add_argument("--kernels", default="stock,tuned", help="JAX modes, comma-separated (default: stock,tuned)")
    p.add_argument("--torch-compile", default="none,default",
                   help="PyTorch modes, comma-separated (default: none,default)")
    p.add_argument("--channels-last", default="off", help="PyTorch memory formats: off, on or off,on (default: off)")
    p.add_argument("--precision", default="float32", help="float32, bfloat16 or both, comma-separated "
                   "(default: float32)")
    p.add_argument("--batch-size", type=int, default=128, help="training batch size (default: 128)")
    p.add_argument("--steps", type=int, default=30, help="timed steps per mode (default: 30)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first, after compiling (default: 5)")
    p.add_argument("--device", default="auto", metavar="{" + ",".join(DEVICES) + "}", help="(default: auto)")
    p.add_argument("--ceiling", action="store_true",
                   help="also measure the matrix-multiply ceiling (jnp.dot, torch.mm, float32 and bfloat16; "
                   "JAX's bfloat16 also accumulated into float32) (default: off)")
    p.add_argument("--trace", default=None, metavar="DIR",
                   help=f"write a JAX and a PyTorch profiler trace of {TRACE_STEPS} steps per mode into DIR and print "
                   "each mode's costliest operations (default: none)")
    p.add_argument("--top", type=int, default=15, help="operations listed per traced mode (default: 15)")
    p.add_argument("--convolutions", action="store_true",
                   help="instead of whole steps, time each of the model's convolutions (forward and both "
                   "gradients) in every JAX variant and in PyTorch: benchmarks.convolutions (default: off)")
    p.add_argument("--dense", action="store_true",
                   help="instead of whole steps, time each of the model's dense layers (the forward product and "
                   "both gradients' products) in JAX and in PyTorch: benchmarks.dense (default: off)")
    return p


TRACE_STEPS = 5  # steps per profiler trace
PROFILED = ("cnn", "vit", "vgg16", "alexnet")  # the classifiers with a step in both frameworks


def xla_operations(folder: Path, steps: int = TRACE_STEPS) -> list[tuple[str, float, float]]:
    """``(operation, calls per step, ms per step)`` from the JAX profiler trace under ``folder``, costliest first.

    An operation is an XLA instruction of the compiled step (a fusion, a product,
    a copy...: the events that name an ``hlo_op``), its numbered instances summed
    (``ynn_fusion.3`` and ``ynn_fusion.7`` are ``ynn_fusion``). A loop's instruction
    (``while``) includes the time of those in its body, which are listed too.
    """
    files = sorted(folder.glob("**/*.trace.json.gz"))
    if not files:
        return []
    events = json.loads(gzip.open(files[-1]).read())["traceEvents"]
    totals: dict = defaultdict(lambda: [0, 0.0])
    for e in events:
        op = (e.get("args") or {}).get("hlo_op") if e.get("ph") == "X" else None
        if not op:
            continue  # Python frames, the runtime's own phases
        total = totals[re.sub(r"\.\d+$", "", op)]
        total[0] += 1
        total[1] += e.get("dur", 0.0)
    rows = [(op, n / steps, us / 1000 / steps) for op, (n, us) in totals.items()]
    return sorted(rows, key=lambda r: -r[2])


def _time(fn, steps: int, sync) -> float:
    """Median seconds of ``fn()`` over ``steps`` calls, each synchronised."""
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def profile_modes(framework: str, backend, base: Settings, images, labels, args) -> list[dict]:
    """Median step and forward times of one framework's model in every mode asked for (``harness.plan.modes``),
    each step built as ``fit`` builds it (the backend's ``training_step``)."""
    out = []
    for run in plan.modes(args, base, framework):
        run = backend.resolve(run)
        step = backend.training_step(backend.build(MODELS[run.model], run), run, images, labels)
        for _ in range(args.warmup):
            step()
        step.sync()
        step_s = _time(step, args.steps, step.sync)
        step.forward()
        fwd_s = _time(step.forward, args.steps, lambda: None)
        step.update()
        update_s = _time(step.update, args.steps, lambda: None)
        mode = mode_label(framework, kernels=run.kernels, precision=run.precision, torch_compile=run.torch_compile,
                          channels_last=run.channels_last)
        out.append({"framework": framework, "mode": mode, "compile_s": step.compile_s, "step_s": step_s,
                    "forward_s": fwd_s, "update_s": update_s,
                    "ops": _trace(framework, step, mode, run, args) if args.trace else None,
                    "flops": step.flops if run.precision == "float32" else None})
    return out


def _trace(framework: str, step, mode: str, run: Settings, args) -> list[tuple[str, str, str]]:
    """The costliest operations of ``TRACE_STEPS`` steps, from a profiler trace written under ``--trace``."""
    label = (f"jax-{run.model}-{run.kernels}-{run.precision}" if framework == "jax" else
             f"torch-{run.model}-{run.torch_compile}-{'cl' if run.channels_last else 'nchw'}-{run.precision}")
    if framework == "jax":
        import jax

        folder = Path(args.trace) / label
        with jax.profiler.trace(str(folder)):
            for _ in range(TRACE_STEPS):
                step()
            step.sync()
        return [(op, f"{calls:g}", f"{ms:.2f}") for op, calls, ms in xla_operations(folder)[: args.top]]
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(TRACE_STEPS):
            step()
        step.sync()
    Path(args.trace).mkdir(parents=True, exist_ok=True)
    prof.export_chrome_trace(str(Path(args.trace) / f"{label}.json"))
    ops = sorted(prof.key_averages(), key=lambda a: -a.self_cpu_time_total)[: args.top]
    return [(a.key, f"{a.count / TRACE_STEPS:g}", f"{a.self_cpu_time_total / 1000 / TRACE_STEPS:.2f}") for a in ops]


def ceilings(frameworks: list[str], n: int = 2048, steps: int = 10) -> list[list[str]]:
    """Rows of the matrix-multiply ceiling: median GFLOP/s of an n x n product, per framework and precision.

    JAX's bfloat16 product is measured twice: with a bfloat16 result (``jnp.dot``) and accumulated into a
    float32 result (``preferred_element_type``), which XLA CPU runs through other kernels.
    """
    rows = []
    for fw in frameworks:
        for precision in ("float32", "bfloat16") + (("bfloat16 -> float32",) if fw == "jax" else ()):
            if fw == "jax":
                import jax
                import jax.numpy as jnp

                a = jnp.ones((n, n), jnp.dtype(precision.split()[0]))
                out = jnp.float32 if "->" in precision else None
                dot = jax.jit(lambda x, y, out=out: jnp.dot(x, y, preferred_element_type=out))
                dot(a, a).block_until_ready()
                seconds = _time(lambda: dot(a, a).block_until_ready(), steps, lambda: None)
            else:  # torch.mm of bfloat16 accumulates in float32 and returns bfloat16
                import torch

                a = torch.ones(n, n, dtype=getattr(torch, precision))
                torch.mm(a, a)
                seconds = _time(lambda: torch.mm(a, a), steps, lambda: None)
            rows.append([fw, precision, f"{2 * n ** 3 / seconds / 1e9:.3g}"])  # (a slow one is not 0)
    return rows


def main(argv: list[str] | None = None) -> int:
    return cli.run(_main, argv)


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.model not in PROFILED:
        raise UsageError(f"--model {args.model!r} is unknown (choose from {', '.join(PROFILED)})")
    frameworks = ["jax", "torch"] if args.framework == "both" else [args.framework]
    if any(fw not in BACKENDS for fw in frameworks):
        raise UsageError(f"--framework {args.framework!r} is unknown (choose from jax, torch, both)")
    if args.batch_size < 1 or args.steps < 1 or args.warmup < 0 or args.top < 1:
        raise UsageError("--batch-size, --steps and --top must be at least 1, --warmup at least 0")
    try:
        given = {"batch_size": args.batch_size, "devices": 1, "weights": "none"}
        base = resolve(args.model, "cpu", given | ({"optimizer": args.optimizer} if args.optimizer else {}))
    except ConfigError as err:
        raise UsageError(f"{flag(err.field)} {err.problem}") from None
    if args.convolutions and args.dense:
        raise UsageError("--convolutions and --dense each replace the step table: give one")
    for fw in frameworks:
        plan.modes(args, base, fw)  # every combination checked before any model is built
    keep_large_buffers()  # as the runner does, for both frameworks
    if args.convolutions:
        return _convolutions(base, frameworks, args)
    if args.dense:
        return _dense(base, frameworks, args)
    data = load_mnist()
    images, labels = data.train_images[: args.batch_size], data.train_labels[: args.batch_size]  # one batch
    backends = {fw: BACKENDS[fw](args.device) for fw in frameworks}
    rows = [row for fw, backend in backends.items() for row in profile_modes(fw, backend, base, images, labels, args)]
    counted = [r["flops"] for r in rows if r["flops"]]  # the float32 step's work: the algorithm's, whatever runs it
    per_image = counted[0] / args.batch_size if counted else None
    header = ["framework", "mode", "compile (s)", "step (ms)", "forward + loss (ms)", "backward (ms)", "update (ms)",
              "images/s", "GFLOP/s"]
    table_rows = [[r["framework"], r["mode"], f"{r['compile_s']:.2f}", f"{1000 * r['step_s']:.2f}",
                   f"{1000 * r['forward_s']:.2f}", f"{1000 * (r['step_s'] - r['forward_s'] - r['update_s']):.2f}",
                   f"{1000 * r['update_s']:.2f}",
                   f"{args.batch_size / r['step_s']:.0f}",
                   f"{per_image * args.batch_size / r['step_s'] / 1e9:.0f}" if per_image else "-"] for r in rows]
    size = f" at {base.image_size} px" if base.image_size else ""
    print(f"{args.model}{size}, {base.optimizer}, batch {args.batch_size}, median of {args.steps} steps after "
          f"{args.warmup} warm-up steps "
          f"on {', '.join(b.device() for b in backends.values())}"
          + (f"; XLA counts {per_image / 1e6:.1f} MFLOP per training image (float32 step)" if per_image else ""))
    print(table(header, table_rows))
    for r in rows:
        if r["ops"]:
            kind = "XLA operations" if r["framework"] == "jax" else "PyTorch operators (self CPU time)"
            print(f"\n{r['framework']} {r['mode']}: costliest {kind}, per step over {TRACE_STEPS} traced steps")
            print(table(["operation", "calls", "ms"], [list(op) for op in r["ops"]]))
    if args.ceiling:
        print()
        print("Matrix-multiply ceiling (2048 x 2048, median of 10):")
        print(table(["framework", "precision", "GFLOP/s"], ceilings(frameworks)))
    return 0


def _per_layer(base: Settings, frameworks: list[str], args, make_table, what: str) -> tuple[list, list]:
    """Build the stock model (its computation names the layers), print ``make_table``'s table of them under a
    title saying ``what`` was timed, and return its header and rows."""
    import jax.numpy as jnp

    backend = BACKENDS["jax"](args.device)
    model = backend.build(MODELS[base.model], backend.resolve(base.replace(kernels="stock")), progress=False)
    model.eval()
    header, rows = make_table(model, jnp.zeros((args.batch_size, 28, 28, 1)), frameworks=frameworks,
                              time_s=lambda fn: _time(fn, args.steps, lambda: None))
    size = f" at {base.image_size} px" if base.image_size else ""
    print(f"{base.model}{size}, batch {args.batch_size}: {what}, median of {args.steps} calls, on {backend.device()}")
    print(table(header, rows))
    return header, rows


def _convolutions(base: Settings, frameworks: list[str], args) -> int:
    """``--convolutions``: the model's convolutions, one row per shape, every variant side by side."""
    from benchmarks import convolutions

    header, rows = _per_layer(base, frameworks, args, convolutions.table,
                              "each convolution's forward pass and both gradients")
    totals = {c.removesuffix(" (ms)"): convolutions.total_ms(rows, header, c) for c in header if c.endswith("(ms)")}
    if "jax" in frameworks:
        totals["tuned"] = convolutions.tuned_total_ms(rows, header)
    if rows:
        print("\nSummed over the model's convolutions (ms): "
              + ", ".join(f"{name} {ms:.0f}" for name, ms in totals.items()))
    return 0


def _dense(base: Settings, frameworks: list[str], args) -> int:
    """``--dense``: the model's dense layers, one row per shape, each product in each framework."""
    from benchmarks import dense

    header, rows = _per_layer(base, frameworks, args, dense.table,
                              "each dense layer's forward product and both gradients' products")
    if rows:
        print("\nSummed over the model's dense layers, the three products (ms): "
              + ", ".join(f"{label} {dense.total_ms(rows, header, label):.0f}"
                          for fw, label in (("jax", "JAX"), ("torch", "PyTorch")) if fw in frameworks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
