"""Classify images with an exported model: ``python -m benchmarks.predict MODEL_DIR INPUT... [--framework jax|torch]``.

MODEL_DIR is an exported model (``OUT/models/<run>/``: ``model.safetensors`` and
``config.json``), trained by either framework and loaded by the one asked for.
Each INPUT is an image file of any size, turned into a 28x28 MNIST-style digit
as ``harness.images`` says, or an IDX images file (each of its images). For
each input it prints the class and its probability (``--top K``: the K most
likely), or JSON with ``--json``. Mistakes print one line and exit 2.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from harness import cli
from harness.backends import BACKENDS
from harness.cli import Parser, UsageError
from harness.images import SIDE, load_inputs
from mnist_common.export import read_config


def build_parser() -> Parser:
    p = Parser(prog="python -m benchmarks.predict", description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir", metavar="MODEL_DIR", help="an exported model folder")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files (PNG, JPEG, ...) or IDX image files")
    p.add_argument("--framework", default="jax", metavar="{jax,torch}",
                   help="which framework loads and runs the model (default: jax)")
    p.add_argument("--top", type=int, default=1, metavar="K", help="print the K most likely classes (default: 1)")
    p.add_argument("--json", action="store_true", help="print one JSON document (default: lines of text)")
    return p


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax over the classes, in float64."""
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def main(argv: list[str] | None = None) -> int:
    return cli.run(_main, argv)


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.framework not in BACKENDS:
        raise UsageError(f"--framework {args.framework!r} is unknown (choose from {', '.join(BACKENDS)})")
    config = read_config(args.model_dir)
    if config["image_size"] != SIDE:
        raise UsageError(f"{args.model_dir}: the model takes {config['image_size']} px images; inputs here become "
                         f"{SIDE} px MNIST digits")
    if not 1 <= args.top <= config["num_classes"]:
        raise UsageError(f"--top must be in [1, {config['num_classes']}], got {args.top}")
    names, images = load_inputs(args.inputs)
    backend = BACKENDS[args.framework]()
    model = backend.load(args.model_dir)
    probs = probabilities(backend.train.predict(model, images))
    classes = config["class_names"]
    top = np.argsort(-probs, axis=1, kind="stable")[:, : args.top]
    if args.json:
        print(json.dumps({"model": args.model_dir, "framework": args.framework, "predictions": [
            {"input": name, "class": classes[t[0]], "probability": float(p[t[0]]),
             "top": [{"class": classes[i], "probability": float(p[i])} for i in t],
             "probabilities": [float(v) for v in p]} for name, p, t in zip(names, probs, top)]}, indent=2))
    else:
        for name, p, t in zip(names, probs, top):
            print(f"{name}: " + ", ".join(f"{classes[i]} ({p[i]:.4f})" for i in t))
    return 0


if __name__ == "__main__":
    sys.exit(main())
