"""Train, evaluate and report: ``python -m benchmarks.run --framework jax|torch|both``.

The command line becomes a plan (``harness.plan``): every run with its complete
settings, the output folder, the processes and devices, all checked before any
data is loaded or any model trained. The plan is then carried out in this
process (``harness.runner``), started as ``--processes N`` workers under
PyTorch's elastic launcher (``harness.runner.start_workers``), or, with ``--test-only``, an
exported model is tested. Both frameworks draw the same epoch orders and shifts
from the seed; after every finished run ``OUT/results.json`` and the reports are
rewritten atomically. Mistakes print one line and exit 2 (``harness.cli``).
"""

from __future__ import annotations

import argparse
import sys

from harness import cli, plan, runner
from harness.backends import DEVICES
from harness.cli import Parser
from harness.data import DATA_SOURCES
from harness.launch import setup_worker
from harness.malloc import keep_large_buffers
from harness.presets import PRESET_NAMES
from harness.registry import MODELS
from harness.settings import add_flags, presets_table

FINETUNE = ", ".join(name for name, spec in MODELS.items() if spec.finetune)


def build_parser() -> argparse.ArgumentParser:
    """The command's options, then a flag for every declared setting (``harness.settings.add_flags``)."""
    p = Parser(prog="python -m benchmarks.run", description="Train and evaluate MNIST classifiers in JAX/Flax and "
               "PyTorch, and report accuracy, macro-F1, loss and timing. Settings marked 'from the preset' take the "
               "preset's value unless given; --list-presets shows them. Every flag: docs/runner.md.")
    p.add_argument("--framework", default="jax", choices=("jax", "torch", "both"),
                   help="framework to run; both runs each on the same data and devices and prints the throughput "
                   "ratio (default: jax)")
    p.add_argument("--model", default="cnn", metavar="{" + ",".join(MODELS) + ",all}",
                   help=f"model to train: one name, a comma-separated list, or all; {FINETUNE} are torchvision models "
                   "(VGG16 and AlexNet also ported to Flax; Faster R-CNN PyTorch only, and --model all skips it for "
                   "--framework jax) (default: cnn)")
    p.add_argument("--preset", default=None, choices=PRESET_NAMES,
                   help="hyperparameter preset (default: full when the framework sees a GPU, else cpu)")
    p.add_argument("--list-presets", action="store_true", help="print every model's presets and exit (default: off)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the initial weights, the dropout stream and the epoch order (default: 0)")
    p.add_argument("--seeds", default=None, metavar="S1,S2,...", help="run every model and framework once per "
                   "seed, for statistics over seeds; replaces --seed (default: just --seed)")
    p.add_argument("--detector", default=None, choices=MODELS["faster_rcnn"].variants,
                   help=f"Faster R-CNN's name for --variant (default: {MODELS['faster_rcnn'].variants[0]})")
    add_flags(p)  # --epochs, --lr, --kernels, ...: one per declared setting
    p.add_argument("--device", default="auto", choices=DEVICES, help="where both frameworks train: auto (a GPU when "
                   "the framework sees one), cpu, or gpu (an error when there is none) (default: auto)")
    p.add_argument("--processes", type=int, default=1, metavar="N", help="train each run data-parallel over N worker "
                   "processes on this machine, started by PyTorch's elastic launcher (JAX's distributed runtime, "
                   "PyTorch DDP; CPU cores shared out as threads, or one GPU each); the global batch is --batch-size; "
                   "several hosts: docs/runner.md (default: 1)")
    p.add_argument("--port", type=int, default=None, metavar="PORT", help="with --processes: the port process 0 "
                   "listens on (JAX's coordinator takes PORT + 1) (default: a free one)")
    p.add_argument("--pin-cores", action="store_true", help="with --processes on a CPU: bind each worker to its own "
                   "share of the cores (measured slower for JAX, see docs/performance.md) (default: off)")
    p.add_argument("--data-dir", default=None, metavar="DIR", help="folder with the MNIST IDX files, or torchvision's "
                   "MNIST/raw; with --data-source tfds, the TFDS data dir (default: $MNIST_DATA_DIR, else the shipped "
                   "copy)")
    p.add_argument("--data-source", default="idx", choices=DATA_SOURCES,
                   help="where MNIST comes from; tfds needs the [tfds] extra (default: idx)")
    p.add_argument("--out", default=None, metavar="DIR", help="folder for results.json, history.jsonl, the reports, "
                   "plots, checkpoints and models; one that already holds results is refused unless --overwrite or "
                   "--resume (default: a new folder results/<date>-<time>, with results/latest pointing at it)")
    p.add_argument("--overwrite", action="store_true", help="replace the results already in --out (default: refuse "
                   "to)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (or results/latest): finished "
                   "runs are kept, the one in progress restarts from its newest checkpoint; use the same command plus "
                   "--resume (default: off)")
    p.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                   help="where training checkpoints go, one folder per run (default: OUT/checkpoints)")
    p.add_argument("--checkpoint-every", type=int, default=1, metavar="EPOCHS", help="keep a checkpoint every "
                   "EPOCHS epochs (and on SIGINT/SIGTERM); the last 3 are kept; 0: none (default: 1)")
    p.add_argument("--save-model", action=argparse.BooleanOptionalAction, default=None, help="write each trained "
                   "model to OUT/models/<run>/ (model.safetensors, config.json) (default: on for the CNN and the ViT, "
                   "off for the large torchvision models)")
    p.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, default=True, help="write TensorBoard "
                   "event files of every run to OUT/tensorboard/<run>/ (default: on)")
    p.add_argument("--test-only", action="store_true",
                   help="evaluate the exported model of --model-dir on the test set, no training (default: off)")
    p.add_argument("--model-dir", default=None, metavar="DIR",
                   help="an exported model folder (model.safetensors, config.json), for --test-only (default: none)")
    p.add_argument("--malloc", default="tuned", choices=("tuned", "default"), help="glibc malloc settings for both "
                   "frameworks: tuned keeps large buffers in the heap between steps (harness/malloc.py), default "
                   "leaves glibc's own (default: tuned)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar; one line per epoch is still printed (default: bar shown)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch lines (default: off)")
    return p


def main(argv: list[str] | None = None) -> int:
    """The command's exit status: 0 done, 1 training diverged, 2 a mistake, 128 + N a signal."""
    try:
        return cli.run(_main, argv)
    except FloatingPointError as err:
        print(f"error: training diverged: {err}", file=sys.stderr)
        return 1
    finally:
        runner.release_locks()


def _main(argv: list[str]) -> int:
    setup_worker()  # a worker of --processes or torchrun: its GPU or cores, before any framework is imported
    args = build_parser().parse_args(argv)
    if args.list_presets:
        print(presets_table())
        return 0
    if args.test_only or args.model_dir is not None:
        return runner.test_exported(plan.make_test(args, argv))
    malloc = keep_large_buffers() if args.malloc == "tuned" else {}  # before any framework allocates
    the_plan = plan.make(args, argv)  # every check, before any data or model
    if the_plan.launching:
        return runner.start_workers(the_plan)
    return runner.train(the_plan, malloc)


if __name__ == "__main__":
    sys.exit(main())
