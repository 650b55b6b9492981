"""Classify images with an exported model: ``python -m benchmarks.predict MODEL_DIR INPUT... [--framework jax|torch]``.

MODEL_DIR is an exported model (``OUT/models/<run>/``: ``model.safetensors`` and
``config.json``), trained by either framework and loaded by the one asked for.
Each INPUT is an image file of any size, turned into a 28x28 MNIST-style digit
as ``harness.images`` says, or an IDX images file (each of its images). For
each input it prints the class and its probability (``--top K``: the K most
likely) as soon as it is classified; ``--jsonl`` prints one JSON object per
input instead, streamed the same way (what pipelines read), and ``--json`` one
JSON document at the end. Mistakes print one line and exit 2; a reader that
stops reading (``| head``) ends it quietly.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from harness import cli
from harness.backends import BACKENDS
from harness.cli import Parser, UsageError
from harness.images import CHUNK, SIDE, check_inputs, iter_inputs
from mnist_common.export import read_config


def build_parser() -> Parser:
    p = Parser(prog="python -m benchmarks.predict", description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir", metavar="MODEL_DIR", help="an exported model folder")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files (PNG, JPEG, ...) or IDX image files")
    p.add_argument("--framework", default="jax", metavar="{jax,torch}",
                   help="which framework loads and runs the model (default: jax)")
    p.add_argument("--top", type=int, default=1, metavar="K", help="print the K most likely classes (default: 1)")
    output = p.add_mutually_exclusive_group()
    output.add_argument("--jsonl", action="store_true", help="print one JSON object per input, as it is classified")
    output.add_argument("--json", action="store_true", help="print one JSON document at the end")
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
    check_inputs(args.inputs)  # every input's name, before the model loads
    backend = BACKENDS[args.framework]()
    model = backend.load(args.model_dir)
    document = []
    for names, images in iter_inputs(args.inputs):
        for name, result in zip(names, _classify(backend, model, images, config["class_names"], args.top)):
            if args.json:
                document.append({"input": name} | result)
            elif args.jsonl:
                print(json.dumps({"input": name} | result), flush=True)
            else:
                print(f"{name}: " + ", ".join(f"{t['class']} ({t['probability']:.4f})" for t in result["top"]),
                      flush=True)
    if args.json:
        print(json.dumps({"model": args.model_dir, "framework": args.framework, "predictions": document}, indent=2))
    return 0


def _classify(backend, model, images: np.ndarray, classes: list[str], top: int) -> list[dict]:
    """Each image's class, probability, ``top`` most likely classes and every probability. A chunk shorter than
    ``harness.images.CHUNK`` (the last of an IDX file) is padded to it, so that JAX compiles two shapes at most:
    a whole chunk and a single picture."""
    n = len(images)
    if 1 < n < CHUNK:
        images = np.concatenate([images, np.zeros((CHUNK - n, *images.shape[1:]), images.dtype)])
    probs = probabilities(backend.train.predict(model, images, batch_size=CHUNK))[:n]
    order = np.argsort(-probs, axis=1, kind="stable")[:, :top]
    return [{"class": classes[t[0]], "probability": float(p[t[0]]),
             "top": [{"class": classes[i], "probability": float(p[i])} for i in t],
             "probabilities": [float(v) for v in p]} for p, t in zip(probs, order)]


if __name__ == "__main__":
    sys.exit(main())
