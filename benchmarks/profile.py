"""Step times per framework and mode: ``python -m benchmarks.profile --model cnn|vit --framework jax|torch|both``.

For each mode asked for (``--kernels``, ``--torch-compile``, ``--channels-last``,
``--precision``, lists as in the runner) it builds the model, compiles or warms
it up, then times ``--steps`` training steps on real MNIST batches, each
synchronised, and prints the median: the whole step, the forward pass with the
loss alone, and the difference (backward and update). The work per step is
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
import statistics
import sys
import time
from pathlib import Path

from harness import cli
from harness.backends import BACKENDS, DEVICES, DeviceError
from harness.cli import Parser, UsageError
from harness.data import DataError, load_mnist
from harness.malloc import keep_large_buffers
from harness.registry import MODELS
from harness.report.markdown import table
from harness.settings import Settings, resolve
from harness.record import mode_label
from mnist_common import normalize
from mnist_common.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m benchmarks.profile", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="cnn", metavar="{cnn,vit}", help="model to time (default: cnn)")
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
    return p


TRACE_STEPS = 5  # steps per profiler trace


def xla_operations(folder: Path, steps: int = TRACE_STEPS) -> list[tuple[str, float, float]]:
    """``(operation, calls per step, ms per step)`` from the JAX profiler trace under ``folder``, costliest first.

    An operation is an XLA instruction of the compiled step (a fusion, a product,
    a copy...: the events that name an ``hlo_op``), its numbered instances summed
    (``ynn_fusion.3`` and ``ynn_fusion.7`` are ``ynn_fusion``). A loop's instruction
    (``while``) includes the time of those in its body, which are listed too.
    """
    import gzip
    import json
    import re
    from collections import defaultdict

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


def _list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _time(fn, steps: int, sync) -> float:
    """Median seconds of ``fn()`` over ``steps`` calls, each synchronised."""
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _mode(framework: str, s: Settings) -> str:
    return mode_label(framework, kernels=s.kernels, precision=s.precision, torch_compile=s.torch_compile,
                      channels_last=s.channels_last)


def jax_modes(backend, s: Settings, images, labels, args, flops: dict) -> list[dict]:
    """Median step, forward and backward+update times of the JAX model per kernels choice and precision."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from jax_impl import train
    from jax_impl.optim import make_optimizer

    out = []
    for kernels in _list(args.kernels):
        for precision in _list(args.precision):
            run = backend.resolve(s.replace(kernels=kernels, precision=precision))
            model = backend.build(MODELS[s.model], run)
            tx, _ = make_optimizer(s.optimizer, s.lr, model=model, weight_decay=s.weight_decay)
            opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
            model.train()
            graphdef, state = nnx.split((model, opt))
            x = jax.device_put(normalize(images))
            y = jax.device_put(np.asarray(labels, np.int32))
            order = jnp.arange(args.batch_size, dtype=jnp.int32)[None]  # one batch: the first B images
            shifts = jnp.zeros((1, args.batch_size, 2), jnp.int8)
            recipe = train.StepRecipe(label_smoothing=s.label_smoothing)
            args_ = (state, jnp.zeros((), jnp.float32), x, y, order, shifts, np.int32(0))
            t0 = time.perf_counter()
            step = train.train_step.lower(graphdef, recipe, *args_).compile()
            compile_s = time.perf_counter() - t0
            if precision == "float32":  # the float32 step's work: the algorithm's, whatever runs it
                flops.setdefault(s.model, train.step_flops(step))
            holder = {"state": state, "loss": args_[1]}

            def one_step():
                holder["state"], holder["loss"] = step(holder["state"], holder["loss"], x, y, order, shifts,
                                                       np.int32(0))

            @jax.jit
            def forward(state, xb, yb):
                m, _ = nnx.merge(graphdef, state)
                return train.loss_fn(m, xb, yb, s.label_smoothing)

            xb, yb = x[: args.batch_size], y[: args.batch_size]
            jax.block_until_ready(forward(holder["state"], xb, yb))
            for _ in range(args.warmup):
                one_step()
            jax.block_until_ready(holder["loss"])
            sync = lambda: jax.block_until_ready(holder["loss"])  # noqa: E731
            step_s = _time(one_step, args.steps, sync)
            fwd_s = _time(lambda: jax.block_until_ready(forward(holder["state"], xb, yb)), args.steps, lambda: None)
            ops = None
            if args.trace:
                folder = Path(args.trace) / f"jax-{s.model}-{kernels}-{precision}"
                with jax.profiler.trace(str(folder)):
                    for _ in range(TRACE_STEPS):
                        one_step()
                    sync()
                ops = [(op, f"{calls:g}", f"{ms:.2f}") for op, calls, ms in xla_operations(folder)[: args.top]]
            out.append({"framework": "jax", "mode": _mode("jax", run), "compile_s": compile_s,
                        "step_s": step_s, "forward_s": fwd_s, "ops": ops})
    return out


def torch_modes(backend, s: Settings, images, labels, args) -> list[dict]:
    """Median step, forward and backward+update times of the PyTorch model per compile mode, memory format and
    precision."""
    import torch

    from torch_ref import compiled, train
    from torch_ref.optim import make_optimizer

    out = []
    formats = [v == "on" for v in _list(args.channels_last)] if MODELS[s.model].convnet else [False]
    for mode in _list(args.torch_compile):
        for channels_last in formats:
            for precision in _list(args.precision):
                run = s.replace(torch_compile=mode, channels_last=channels_last, precision=precision)
                model = backend.build(MODELS[s.model], run)
                device = next(model.parameters()).device
                opt, _ = make_optimizer(s.optimizer, model, s.lr, weight_decay=s.weight_decay,
                                        tensor_lr=mode != "none")
                if channels_last:
                    model.to(memory_format=torch.channels_last)
                loss_fn = compiled.loss_function(model, train.CLASSIFICATION, label_smoothing=s.label_smoothing,
                                                 precision=precision, mode=mode)
                opt_step = compiled.optimizer_step(opt, mode=mode)
                x = train.preprocess(images[: args.batch_size], device)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                y = torch.as_tensor(labels[: args.batch_size], dtype=torch.long, device=device)
                model.train()
                t0 = time.perf_counter()
                train.train_step(loss_fn, opt, opt_step, None, x, y)  # compiles, for a compiled mode
                train.synchronize(device)
                compile_s = time.perf_counter() - t0 if mode != "none" else 0.0
                for _ in range(args.warmup):
                    train.train_step(loss_fn, opt, opt_step, None, x, y)
                sync = lambda: train.synchronize(device)  # noqa: E731
                step_s = _time(lambda: train.train_step(loss_fn, opt, opt_step, None, x, y), args.steps, sync)

                def forward():
                    with torch.no_grad():
                        loss_fn(x, y)

                forward()
                fwd_s = _time(forward, args.steps, sync)
                if args.trace:
                    from torch.profiler import ProfilerActivity, profile

                    with profile(activities=[ProfilerActivity.CPU]) as prof:
                        for _ in range(TRACE_STEPS):
                            train.train_step(loss_fn, opt, opt_step, None, x, y)
                        sync()
                    label = f"torch-{s.model}-{mode}-{'cl' if channels_last else 'nchw'}-{precision}"
                    Path(args.trace).mkdir(parents=True, exist_ok=True)
                    prof.export_chrome_trace(str(Path(args.trace) / f"{label}.json"))
                    ops = sorted(prof.key_averages(), key=lambda a: -a.self_cpu_time_total)[: args.top]
                    ops = [(a.key, f"{a.count / TRACE_STEPS:g}", f"{a.self_cpu_time_total / 1000 / TRACE_STEPS:.2f}")
                           for a in ops]
                out.append({"framework": "torch", "mode": _mode("torch", run), "compile_s": compile_s,
                            "step_s": step_s, "forward_s": fwd_s, "ops": ops if args.trace else None})
    return out


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
    return cli.run(_main, argv, mistakes=(DataError, DeviceError))


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.model not in ("cnn", "vit"):
        raise UsageError(f"--model {args.model!r} is unknown (choose from cnn, vit)")
    frameworks = ["jax", "torch"] if args.framework == "both" else [args.framework]
    if any(fw not in BACKENDS for fw in frameworks):
        raise UsageError(f"--framework {args.framework!r} is unknown (choose from jax, torch, both)")
    if args.batch_size < 1 or args.steps < 1 or args.warmup < 0 or args.top < 1:
        raise UsageError("--batch-size, --steps and --top must be at least 1, --warmup at least 0")
    try:
        base = resolve(args.model, "cpu", {"batch_size": args.batch_size, "devices": 1})
        for precision in _list(args.precision):
            resolve(args.model, "cpu", {"precision": precision})
        for mode in _list(args.torch_compile):
            resolve(args.model, "cpu", {"torch_compile": mode})
        for kernels in _list(args.kernels):
            resolve(args.model, "cpu", {"kernels": kernels})
    except ConfigError as err:
        raise UsageError(f"--{err.field.replace('_', '-')} {err.problem}") from None
    keep_large_buffers()  # as the runner does, for both frameworks
    data = load_mnist()
    images, labels = data.train_images[:4096], data.train_labels[:4096]
    backends = {fw: BACKENDS[fw](args.device) for fw in frameworks}
    flops: dict = {}
    rows = []
    for fw, backend in backends.items():
        if fw == "jax":
            rows += jax_modes(backend, base, images, labels, args, flops)
        else:
            rows += torch_modes(backend, base, images, labels, args)
    per_image = flops.get(args.model)
    per_image = per_image / args.batch_size if per_image else None
    header = ["framework", "mode", "compile (s)", "step (ms)", "forward + loss (ms)", "backward + update (ms)",
              "images/s", "GFLOP/s"]
    table_rows = [[r["framework"], r["mode"], f"{r['compile_s']:.2f}", f"{1000 * r['step_s']:.2f}",
                   f"{1000 * r['forward_s']:.2f}", f"{1000 * (r['step_s'] - r['forward_s']):.2f}",
                   f"{args.batch_size / r['step_s']:.0f}",
                   f"{per_image * args.batch_size / r['step_s'] / 1e9:.0f}" if per_image else "-"] for r in rows]
    print(f"{args.model}, batch {args.batch_size}, median of {args.steps} steps after {args.warmup} warm-up steps "
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


if __name__ == "__main__":
    sys.exit(main())
