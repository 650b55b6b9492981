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

from benchmarks.presets import PRESET_NAMES
from benchmarks.report.markdown import table
from mnist_common.config import TORCH_COMPILE_MODES

MODELS = ("cnn", "vit")  # the twins (parity.checks.MODELS, kept here so --help loads no framework)
TORCHVISION_MODELS = ("vgg16", "alexnet")  # the Flax ports of torchvision's (parity.torchvision.MODELS)


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m parity.run",
                description="Check that the Flax and PyTorch twins agree: forward, gradients, optimizer "
                "trajectories, round trip, timing; with --train, full training over several seeds.")
    p.add_argument("--model", default="all", metavar="{cnn,vit,vgg16,alexnet,all}[,...]",
                   help="which twins to check: one, a comma-separated list, or all (default: all)")
    p.add_argument("--train", action="store_true",
                   help="also train both frameworks from the same initial weights at --preset over --seeds "
                   "(minutes per seed; default: off)")
    p.add_argument("--seeds", default=None,
                   help="seeds for --train, comma-separated (default: each model's declared plan: "
                   "parity.checks.TRAINING_PLANS)")
    p.add_argument("--torch-compile", default="default", metavar="{none,default,reduce-overhead,max-autotune}",
                   help="the torch.compile mode checked against eager PyTorch; none skips the check (default: default)")
    p.add_argument("--preset", default="cpu", metavar="{smoke,cpu,full}", help="preset for --train (default: cpu)")
    p.add_argument("--trajectory-steps", type=int, default=100, metavar="N",
                   help="optimizer steps in each trajectory check (default: 100)")
    p.add_argument("--timing-steps", type=int, default=20, metavar="N",
                   help="steps per epoch of the timing check (default: 20)")
    p.add_argument("--out", default="parity-results", metavar="DIR",
                   help="folder for parity.json and parity.md (default: parity-results)")
    return p


def trajectory_plan(model: str) -> list[dict]:
    """The optimizer trajectories checked per model: SGD in float32; Adam (and the ViT's AdamW)
    in float64, and again in float32 as a measurement that is reported but not asserted."""
    plan = [dict(optimizer="sgd", lr=0.05, dtype="float32", asserted=True),
            dict(optimizer="adam", lr=1e-3, dtype="float64", asserted=True),
            dict(optimizer="adam", lr=1e-3, dtype="float32", asserted=False)]
    if model == "vit":
        plan += [dict(optimizer="adamw", lr=1e-3, weight_decay=0.05, dtype="float64", asserted=True),
                 dict(optimizer="adamw", lr=1e-3, weight_decay=0.05, dtype="float32", asserted=False)]
    return plan


#: The modes each framework's faster paths are checked in (against its plain mode, or in bfloat16 against the
#: other framework): named in every report.
MODES_CHECKED = ("JAX stock and tuned kernels (float32, bfloat16)", "PyTorch eager and torch.compile "
                 "(mode default; bfloat16 autocast)", "exported files read by the other framework")


def run_checks(model: str, data, *, tol, steps: int, compile_mode: str = "default",
               timing_steps: int = 20) -> tuple[list[dict], dict]:
    from parity import checks, modes

    batch_x, batch_y = data.test_images[:64], data.test_labels[:64]
    train_x, train_y = data.train_images[:640], data.train_labels[:640]
    records = checks.forward(model, batch_x, tol=tol) + checks.gradients(model, batch_x, batch_y, tol=tol)
    for item in trajectory_plan(model):
        asserted = item.pop("asserted")
        for record in checks.trajectory(model, train_x, train_y, steps=steps, tol=tol, **item):
            records.append(record | {"asserted": asserted})
    records += checks.round_trip(model)
    records += modes.jax_kernels(model, train_x, train_y, steps=steps, tol=tol)
    if compile_mode != "none":
        records += modes.torch_compiled(model, train_x, train_y, mode=compile_mode, steps=steps, tol=tol)
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
    return check.split(":")[0]


def summary(report: dict) -> str:
    """The README's parity tables: worst max|diff| per kind of check and model, timing, training parity."""
    models = list(dict.fromkeys(c["model"] for c in report["checks"]))
    rows: dict[str, dict] = {}
    for c in report["checks"]:
        row = rows.setdefault(_family(c["check"]), {"tolerance": c["tolerance"], "asserted": c["asserted"]})
        row[c["model"]] = max(row.get(c["model"], 0.0), c["max_abs_diff"])
        row["passed"] = row.get("passed", True) and c["passed"]
    checks = [[name, f"{row['tolerance']:.0e}", *(f"{row[m]:.2g}" if m in row else "-" for m in models),
               ("passed" if row["passed"] else "FAILED") if row["asserted"] else "measured, not asserted"]
              for name, row in rows.items()]
    modes = f" Modes checked: {'; '.join(report['modes'])}." if report.get("modes") else ""
    lines = [f"From `{report['command']}` on {report['device']}.{modes}", "",
             table(["check", "tolerance", *(f"{m} max abs diff" for m in models), "verdict"], checks)]
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


def _training_table(tr: dict) -> str:
    """Per-seed test accuracy in each framework and their difference, then the equivalence test over seeds."""
    rows = []
    for i, seed in enumerate(tr["seeds"]):
        j, t = tr["test_accuracy"]["jax"][i], tr["test_accuracy"]["torch"][i]
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
    rows.append(["mean", f"{100 * m['jax']:.2f}", f"{100 * m['torch']:.2f}", verdict])
    return table(["seed", "JAX test acc (%)", "PyTorch test acc (%)", "difference (pp)"], rows)


def markdown(report: dict) -> str:
    """``parity.md``: every check with its difference, tolerance, verdict and where it was worst; timing; training."""
    checks = []
    for c in report["checks"]:
        verdict = (("yes" if c["passed"] else "**NO**") if c["asserted"]
                   else ("yes" if c["passed"] else "no") + " (measured, not asserted)")
        checks.append([c["model"], c["check"], f"{c['max_abs_diff']:.3g}", f"{c['tolerance']:.0e}", verdict,
                       c["detail"]])
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
        *([f"Modes checked: {'; '.join(report['modes'])}.", ""] if report.get("modes") else []),
        table(["model", "check", "max abs diff", "tolerance", "passed", "where"], checks), "",
        "Adam in float32 is measured but not asserted: Adam divides each gradient by its running RMS, so",
        "float32 rounding noise in near-zero gradients (about 1e-8, the size of Adam's epsilon) becomes an",
        "update-sized difference that training then amplifies. The same trajectories in float64 are asserted.",
        "", "## Timing (reported, not asserted)", "",
        table(["model", "framework", "compile (s)", "warm-up step (s)", "steady step (ms)"], timing),
    ]
    for model, tr in report.get("training", {}).items():
        lines += ["", f"## Training parity: {model} at preset {tr['preset']}", "", _training_table(tr)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
        known = MODELS + TORCHVISION_MODELS
        models = list(known) if args.model == "all" else [m.strip() for m in args.model.split(",") if m.strip()]
        unknown = [m for m in models if m not in known]
        if unknown or not models:
            raise UsageError(f"unknown model {(unknown or [args.model])[0]!r} (choose from {', '.join(known)}, all)")
        if len(set(models)) != len(models):
            raise UsageError(f"--model {args.model!r} names a model twice")
        seeds = None
        if args.seeds is not None:
            try:
                seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
            except ValueError:
                raise UsageError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
            if len(seeds) < 2 or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
                raise UsageError(f"--seeds must hold two or more distinct integers >= 0, got {args.seeds!r}")
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
        from benchmarks.data import DataError, load_mnist

        try:
            data = load_mnist()
        except DataError as err:
            raise UsageError(str(err)) from None
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    from benchmarks.malloc import keep_large_buffers
    from jax_impl import xla_cpu

    malloc = keep_large_buffers()  # the runner's allocator and XLA CPU settings, so timings compare
    xla_cpu.apply()
    from benchmarks.report.files import atomic_write
    from parity import checks

    tol = checks.strict_precision()
    report = {"command": "python -m parity.run " + shlex.join(argv),
              "device": "gpu" if checks.on_gpu() else "cpu", "malloc": malloc,
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

            records = [r | {"asserted": True} for r in
                       torchvision.run(model, data.test_images[:8], data.test_labels[:8], tol=tol)]
        else:
            records, report["timing"][model] = run_checks(model, data, tol=tol, steps=args.trajectory_steps,
                                                          compile_mode=args.torch_compile,
                                                          timing_steps=args.timing_steps)
        report["checks"] += records
        write()
        for r in records:
            flag = "ok  " if r["passed"] else ("FAIL" if r["asserted"] else "note")
            print(f"{flag} {model} {r['check']}: {r['detail']}")
    if args.train:
        for model in (m for m in models if m in MODELS):  # training parity: the twins' declared plans
            report["training"][model] = checks.training(model, data, seeds=seeds, preset=args.preset)
            write()
            tr = report["training"][model]
            eq = tr["equivalence"]
            print(f"{'ok  ' if tr['passed'] else 'FAIL'} {model} training parity: mean difference "
                  f"{eq['mean_pp']:+.2f} pp, 90% interval [{eq['interval_pp'][0]:+.2f}, {eq['interval_pp'][1]:+.2f}] "
                  f"within +-{eq['margin_pp']} pp: {'equivalent' if tr['passed'] else 'not shown'}")
    failed = [r for r in report["checks"] if r["asserted"] and not r["passed"]]
    failed += [t for t in report["training"].values() if not t["passed"]]
    print(f"{len(failed)} failed; wrote {out / 'parity.json'} and {out / 'parity.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
