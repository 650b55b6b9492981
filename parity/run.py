"""The parity suite from the command line: ``python -m parity.run --model cnn,vit,vgg16,alexnet|all [--train] --out DIR``.

The twins get every check (``parity.checks``, ``parity.modes``) and timing; the
Flax ports of VGG16 and AlexNet their forward passes at the presets' image
sizes, gradients and round trip (``parity.torchvision``).

Writes ``DIR/parity.json`` (``{"checks": [...], "timing": {...}, ...}``), a
readable ``DIR/parity.md`` and ``DIR/summary.md`` (the README's parity tables,
inserted there by ``python -m benchmarks.report DIR --readme README.md``). Exits 1 when any asserted numerical check fails,
2 on a usage error. On a GPU, PyTorch's TF32 is turned off and JAX's matmul
precision set to "highest", and the GPU tolerances apply (stated in the report).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

from harness import cli
from harness.cli import Parser, UsageError
from harness.presets import PRESET_NAMES
from harness.report.markdown import table
from mnist_common.config import TORCH_COMPILE_MODES

MODELS = ("cnn", "vit")  # the twins (parity.checks.MODELS, kept here so --help loads no framework)
TORCHVISION_MODELS = ("vgg16", "alexnet")  # the Flax ports of torchvision's (parity.torchvision.MODELS)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m parity.run",
                description="Check that the Flax and PyTorch twins agree: forward, gradients, optimizer "
                "trajectories, round trip, timing; with --train, full training over several seeds.")
    p.add_argument("--model", default="all", metavar="{cnn,vit,vgg16,alexnet,all}[,...]",
                   help="which twins to check: one, a comma-separated list, or all (default: all)")
    p.add_argument("--train", action="store_true",
                   help="also train both frameworks from the same initial weights at --preset over --seeds "
                   "(minutes per seed; default: off)")
    p.add_argument("--train-kernels", action="store_true",
                   help="also train JAX's tuned kernels against its stock layers at --preset over --seeds, from "
                   "the same weights: are their accuracies equivalent? (minutes per seed; default: off)")
    p.add_argument("--seeds", default=None,
                   help="seeds for --train and --train-kernels, comma-separated (default: each model's declared plan: "
                   "parity.checks.TRAINING_PLANS)")
    p.add_argument("--torch-compile", default="default", metavar="{none,default,reduce-overhead,max-autotune}",
                   help="the torch.compile mode checked against eager PyTorch; none skips the check (default: default)")
    p.add_argument("--preset", default="cpu", metavar="{smoke,cpu,full}",
                   help="preset for --train and --train-kernels (default: cpu)")
    p.add_argument("--trajectory-steps", type=int, default=100, metavar="N",
                   help="optimizer steps in each trajectory check (default: 100)")
    p.add_argument("--timing-steps", type=int, default=20, metavar="N",
                   help="steps per epoch of the timing check (default: 20)")
    p.add_argument("--out", default="parity-results", metavar="DIR",
                   help="folder for parity.json and parity.md (default: parity-results)")
    return p


def trajectory_plan(model: str) -> list[dict]:
    """The optimizer trajectories checked per model, each asserted in float64 and measured (reported, not
    asserted) in float32: training amplifies float32 rounding into differences that depend on the CPU's
    kernels (``parity.checks.PRECISION_REASONS``). SGD and Adam; for the ViT AdamW too."""
    recipes = [dict(optimizer="sgd", lr=0.05), dict(optimizer="adam", lr=1e-3)]
    if model == "vit":
        recipes.append(dict(optimizer="adamw", lr=1e-3, weight_decay=0.05))
    return [recipe | dict(dtype=dtype, asserted=dtype == "float64") for recipe in recipes
            for dtype in ("float64", "float32")]


#: The modes each framework's faster paths are checked in (against its plain mode, or in bfloat16 against the
#: other framework): named in every report.
MODES_CHECKED = ("JAX stock and tuned kernels (float32, bfloat16)", "PyTorch eager and torch.compile "
                 "(mode default; bfloat16 autocast)", "exported files read by the other framework")


def run_checks(model: str, data, *, tol, steps: int, compile_mode: str = "default",
               timing_steps: int = 20) -> tuple[list[dict], dict]:
    from parity import checks, modes

    batch_x, batch_y = data.test_images[:64], data.test_labels[:64]
    train_x, train_y = data.train_images[:640], data.train_labels[:640]
    records = checks.forward(model, batch_x, tol=tol)
    asserted_dtype, measured_dtype = checks.gradient_dtypes(model)
    records += checks.gradients(model, batch_x, batch_y, tol=tol, dtype=asserted_dtype)
    if measured_dtype:
        records += [r | {"asserted": False} for r in checks.gradients(model, batch_x, batch_y, tol=tol,
                                                                        dtype=measured_dtype)]
    for item in trajectory_plan(model):
        asserted = item.pop("asserted")
        for record in checks.trajectory(model, train_x, train_y, steps=steps, tol=tol, **item):
            records.append(record | {"asserted": asserted})
    records += checks.round_trip(model)
    for dtype, asserted in (("float64", True), ("float32", False)):  # modes' trajectories: as the twins'
        first = dtype == "float64"  # the forward check (float32, asserted) once
        records += [r | {"asserted": asserted or "forward" in r["check"]} for r in
                    modes.jax_kernels(model, train_x, train_y, steps=steps, tol=tol, dtype=dtype, forward=first)]
        if compile_mode != "none":
            records += [r | {"asserted": asserted or "forward" in r["check"]} for r in
                        modes.torch_compiled(model, train_x, train_y, mode=compile_mode, steps=steps, tol=tol,
                                             dtype=dtype, forward=first)]
    records += modes.bfloat16_forward(model, batch_x)
    with tempfile.TemporaryDirectory() as folder:
        records += checks.exported_files(model, batch_x, folder, tol=tol)
    for record in records:
        record.setdefault("asserted", True)
    return records, checks.timing(model, data.train_images, data.train_labels, steps=timing_steps)


def _family(check: str) -> str:
    """The row a check belongs to in the summary: inputs and directions pooled."""
    if check.startswith("forward") and " px)" in check:
        return "forward (VGG16, AlexNet): logits / max abs logit, both directions, at the presets' image sizes"
    if check.startswith("forward"):
        return "forward: logits (ViT: and intermediates), both directions, batch / zeros / saturated / one image"
    for part in (": losses", ": final parameters"):
        check = check.removesuffix(part)
    return check


def summary(report: dict) -> str:
    """The README's parity tables: worst max|diff| per kind of check and model, timing, training parity."""
    models = list(dict.fromkeys(c["model"] for c in report["checks"]))
    rows: dict[str, dict] = {}
    for c in report["checks"]:
        key = (_family(c["check"]), c["asserted"])  # a check asserted for one model, measured for another: 2 rows
        row = rows.setdefault(key, {"tolerance": c["tolerance"], "asserted": c["asserted"],
                                    "dtype": c.get("dtype", "float32")})
        row[c["model"]] = max(row.get(c["model"], 0.0), c["max_abs_diff"])
        row["passed"] = row.get("passed", True) and c["passed"]
    checks = [[name, row["dtype"], f"{row['tolerance']:.0e}", *(f"{row[m]:.2g}" if m in row else "-" for m in models),
               ("passed" if row["passed"] else "FAILED") if row["asserted"] else "measured, not asserted"]
              for (name, _), row in rows.items()]
    modes = f" Modes checked: {'; '.join(report['modes'])}." if report.get("modes") else ""
    isa = f" {report['isa']}." if report.get("isa") else ""
    lines = [f"From `{report['command']}` on {report['device']}.{isa}{modes}", "",
             table(["check", "precision", "tolerance", *(f"{m} max abs diff" for m in models), "verdict"], checks)]
    if report["timing"]:
        timing = [[model, f"{t['jax']['compile_time_s']:.2f}", f"{t['jax']['step_time_ms']:.1f}",
                   f"{t['torch']['step_time_ms']:.1f}", f"{t['jax_over_torch_speed']:.2f}x"]
                  for model, t in report["timing"].items()]
        lines += ["", table(["model", "JAX compile (s)", "JAX step (ms)", "PyTorch step (ms)", "JAX/PyTorch speed"],
                            timing)]
    for model, tr in report.get("training", {}).items():
        lines += ["", f"Training parity, {model} at `--preset {tr['preset']}` (same initial weights and data order, "
                  "dropout on; paired equivalence test over the seeds):", "", _training_table(tr)]
    return "\n".join(lines) + "\n"


#: How the reports name the sides of a training-parity record (``parity.checks.SIDES``).
SIDE_NAMES = {"jax": "JAX", "torch": "PyTorch", "tuned": "JAX tuned", "stock": "JAX stock"}


def training_key(model: str, compare: str) -> str:
    """A training-parity record's name in the report: the model, and what it compares unless frameworks."""
    return model if compare == "frameworks" else f"{model}, tuned against stock JAX"


def _training_table(tr: dict) -> str:
    """Per-seed test accuracy on each side and their difference, then the equivalence test over seeds."""
    a, b = tr.get("sides", ("jax", "torch"))  # (reports from before other comparisons: the frameworks)
    rows = []
    for i, seed in enumerate(tr["seeds"]):
        j, t = tr["test_accuracy"][a][i], tr["test_accuracy"][b][i]
        rows.append([str(seed), f"{100 * j:.2f}", f"{100 * t:.2f}", f"{100 * (j - t):+.2f}"])
    m = tr["mean_test_accuracy"]
    eq = tr.get("equivalence")
    if eq:
        lo, hi = eq["interval_pp"]
        verdict = (f"mean {eq['mean_pp']:+.2f} (SD {eq['sd_pp']:.2f}); {100 * (1 - 2 * eq['alpha']):.0f}% interval "
                   f"[{lo:+.2f}, {hi:+.2f}] within +-{eq['margin_pp']}: "
                   f"{'equivalent' if eq['equivalent'] else 'equivalence NOT shown'}")
    else:  # reports from before the equivalence test
        verdict = f"gap {tr['gap_pp']:.2f} (tolerance {tr['tolerance_pp']}: {'passed' if tr['passed'] else 'FAILED'})"
    rows.append(["mean", f"{100 * m[a]:.2f}", f"{100 * m[b]:.2f}", verdict])
    return table(["seed", f"{SIDE_NAMES[a]} test acc (%)", f"{SIDE_NAMES[b]} test acc (%)", "difference (pp)"], rows)


def markdown(report: dict) -> str:
    """``parity.md``: every check with its difference, tolerance, verdict and where it was worst; timing; training."""
    checks = []
    for c in report["checks"]:
        verdict = (("yes" if c["passed"] else "**NO**") if c["asserted"]
                   else ("yes" if c["passed"] else "no") + " (measured, not asserted)")
        checks.append([c["model"], c["check"], c.get("dtype", "float32"), f"{c['max_abs_diff']:.3g}",
                       f"{c['tolerance']:.0e}", verdict, c["detail"]])
    timing = []
    for model, t in report["timing"].items():
        for fw in ("jax", "torch"):
            timing.append([model, fw, f"{t[fw]['compile_time_s']:.2f}", f"{t[fw]['warmup_time_s']:.3f}",
                           f"{t[fw]['step_time_ms']:.1f}"])
        timing.append([model, "JAX speed / PyTorch speed", "", "", f"{t['jax_over_torch_speed']:.2f}x"])
    lines = [
        "# Parity: Flax NNX vs PyTorch", "",
        f"Command: `{report['command']}`", "",
        f"Device: {report['device']}. Tolerances: {report['tolerances']}.", "",
        *([f"{report['isa'][0].upper()}{report['isa'][1:]}.", ""] if report.get("isa") else []),
        *([f"Modes checked: {'; '.join(report['modes'])}.", ""] if report.get("modes") else []),
        table(["model", "check", "precision", "max abs diff", "tolerance", "passed", "where"], checks), "",
        *precision_notes(), "", "## Timing (reported, not asserted)", "",
        table(["model", "framework", "compile (s)", "warm-up step (s)", "steady step (ms)"], timing),
    ]
    for model, tr in report.get("training", {}).items():
        lines += ["", f"## Training parity: {model} at preset {tr['preset']}", "", _training_table(tr)]
    return "\n".join(lines) + "\n"


def precision_notes() -> list[str]:
    """Why each check is asserted in the precision it is (``parity.checks.PRECISION_REASONS``)."""
    from parity.checks import FLOAT64_TOLERANCES, PRECISION_REASONS, RELU_MODELS

    return [
        "Precision: a check is asserted in float32 where it is "
        f"{PRECISION_REASONS['float32']} (forward passes; the ViT's gradients, through smooth GELU, softmax and",
        "LayerNorm), and in float64 where "
        f"{PRECISION_REASONS['float64']}: the gradients of {', '.join(RELU_MODELS)} (a ReLU's or max pool's",
        "derivative jumps where a pre-activation crosses 0 or a window ties, and a pre-activation within float32",
        "rounding of 0 flips one), and every trajectory (training feeds each difference back). Their float32",
        "figures are measured beside them, not asserted. float64 tolerances: "
        f"{vars(FLOAT64_TOLERANCES)}.",
    ]


def main(argv: list[str] | None = None) -> int:
    return cli.run(_main, argv)


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    known = MODELS + TORCHVISION_MODELS
    models = list(known) if args.model == "all" else [m.strip() for m in args.model.split(",") if m.strip()]
    unknown = [m for m in models if m not in known]
    if unknown or not models:
        raise UsageError(f"unknown model {(unknown or [args.model])[0]!r} (choose from {', '.join(known)}, all)")
    if len(set(models)) != len(models):
        raise UsageError(f"--model {args.model!r} names a model twice")
    seeds = None if args.seeds is None else cli.parse_seeds(args.seeds, at_least=2)  # an equivalence test needs 2
    if args.torch_compile not in TORCH_COMPILE_MODES:
        raise UsageError(f"unknown --torch-compile {args.torch_compile!r} "
                         f"(choose from {', '.join(TORCH_COMPILE_MODES)})")
    if args.preset not in PRESET_NAMES:
        raise UsageError(f"unknown preset {args.preset!r} (choose from {', '.join(PRESET_NAMES)})")
    if args.trajectory_steps < 1:
        raise UsageError(f"--trajectory-steps must be at least 1, got {args.trajectory_steps}")
    if args.timing_steps < 1:
        raise UsageError(f"--timing-steps must be at least 1, got {args.timing_steps}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    from harness.data import load_mnist

    data = load_mnist()

    from harness.malloc import keep_large_buffers
    from jax_impl import xla_cpu

    malloc = keep_large_buffers()  # the runner's allocator and XLA CPU settings, so timings compare
    xla_cpu.apply()
    from mnist_common.files import atomic_write
    from parity import checks

    tol = checks.strict_precision()
    from harness.environment import cpu_label
    from parity import isa

    report = {"command": "python -m parity.run " + shlex.join(argv),
              "device": ("gpu, host " if checks.on_gpu() else "cpu: ") + cpu_label(), "malloc": malloc,
              "isa": isa.describe(isa.effective()),
              "modes": list(MODES_CHECKED) if any(m in MODELS for m in models) else [],  # the twins' modes
              "tolerances": vars(tol), "checks": [], "timing": {}, "training": {}}
    out.mkdir(parents=True, exist_ok=True)

    def write():
        atomic_write(out / "parity.json", json.dumps(report, indent=2) + "\n")
        atomic_write(out / "parity.md", markdown(report))
        atomic_write(out / "summary.md", summary(report))  # what benchmarks.report --readme inserts

    for model in models:
        if model in TORCHVISION_MODELS:  # forward at the presets' sizes, gradients, round trip; no timing
            from parity import torchvision

            records = torchvision.run(model, data.test_images[:8], data.test_labels[:8], tol=tol)
        else:
            records, report["timing"][model] = run_checks(model, data, tol=tol, steps=args.trajectory_steps,
                                                          compile_mode=args.torch_compile,
                                                          timing_steps=args.timing_steps)
        report["checks"] += records
        write()
        for r in records:
            flag = "ok  " if r["passed"] else ("FAIL" if r["asserted"] else "note")
            print(f"{flag} {model} {r['check']}: {r['detail']}")
    comparisons = ["frameworks"] * args.train + ["kernels"] * args.train_kernels
    for compare in comparisons:
        for model in (m for m in models if m in MODELS):  # training parity: the twins' declared plans
            tr = checks.training(model, data, seeds=seeds, preset=args.preset, compare=compare)
            report["training"][training_key(model, compare)] = tr
            write()
            eq = tr["equivalence"]
            print(f"{'ok  ' if tr['passed'] else 'FAIL'} {training_key(model, compare)} training parity: mean "
                  f"difference {eq['mean_pp']:+.2f} pp, 90% interval [{eq['interval_pp'][0]:+.2f}, "
                  f"{eq['interval_pp'][1]:+.2f}] within +-{eq['margin_pp']} pp: "
                  f"{'equivalent' if tr['passed'] else 'not shown'}")
    failed = [r for r in report["checks"] if r["asserted"] and not r["passed"]]
    failed += [t for t in report["training"].values() if not t["passed"]]
    print(f"{len(failed)} failed; wrote {out / 'parity.json'} and {out / 'parity.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
