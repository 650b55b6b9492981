"""How well a model reads photographed digits: ``python -m benchmarks.photos MODEL_DIR [--count N] [--sizes PX,...]``.

Takes the first N MNIST test digits, photographs each in every style of
``harness.photos`` (white, grey and tinted paper, uneven light, a table at the
margins, chalk on a board; pixel noise) at each size, turns the photographs back
into MNIST digits as ``benchmarks.predict`` does (``harness.images``), and
prints, per style and size, the model's accuracy on them beside its accuracy on
the same digits as MNIST has them. ``--save DIR`` writes the first photographs
of each as PNG files, to look at or to give to ``benchmarks.predict``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from harness import cli
from harness.backends import BACKENDS
from harness.cli import Parser, UsageError
from harness.data import load_mnist
from harness.images import SIDE, from_pixels
from harness.photos import STYLES, photographs
from mnist_common.export import read_config

#: Photographs written per style and size with ``--save``.
SAVED = 10


def build_parser() -> Parser:
    p = Parser(prog="python -m benchmarks.photos", description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir", metavar="MODEL_DIR", help="an exported model folder")
    p.add_argument("--framework", default="jax", choices=tuple(BACKENDS),
                   help="which framework loads and runs the model (default: jax)")
    p.add_argument("--count", type=int, default=1000, metavar="N",
                   help="how many test digits to photograph in each style (default: 1000)")
    p.add_argument("--sizes", default="200", metavar="PX,...",
                   help="the photographs' sides in pixels, comma-separated (default: 200)")
    p.add_argument("--seed", type=int, default=0, help="the photographs' randomness (default: 0)")
    p.add_argument("--data-dir", default=None, metavar="DIR", help="MNIST's IDX files (default: the shipped copy)")
    p.add_argument("--save", default=None, metavar="DIR", help=f"write the first {SAVED} photographs of each as PNG")
    return p


def parse_sizes(text: str) -> list[int]:
    """``"64,200"`` -> ``[64, 200]``: sides from 32 to 4096 pixels."""
    try:
        sizes = [int(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"--sizes must be comma-separated integers, got {text!r}") from None
    if not all(32 <= s <= 4096 for s in sizes):
        raise UsageError(f"--sizes must be in [32, 4096] pixels, got {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> int:
    return cli.run(_main, argv)


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    sizes = parse_sizes(args.sizes)
    if not 1 <= args.count <= 10_000:
        raise UsageError(f"--count must be in [1, 10000] (the test set's size), got {args.count}")
    config = read_config(args.model_dir)
    if config["image_size"] != SIDE or config["num_classes"] != 10:
        raise UsageError(f"{args.model_dir}: not an MNIST digit classifier of {SIDE} px images")
    mnist = load_mnist(args.data_dir)
    digits, labels = mnist.test_images[:args.count], mnist.test_labels[:args.count]
    backend = BACKENDS[args.framework]()
    model = backend.load(args.model_dir)

    def accuracy(images: np.ndarray) -> float:
        return float((backend.train.predict(model, images).argmax(axis=1) == labels).mean() * 100)

    print(f"{args.model_dir} ({args.framework}), the first {args.count} test digits: {accuracy(digits):.2f}% "
          "as MNIST has them")
    print("| style | size (px) | accuracy (%) |")
    print("|---|---|---|")
    for name, style in STYLES.items():
        for size in sizes:
            photos = photographs(digits[..., 0], style, size, seed=args.seed)
            if args.save:
                _save(Path(args.save), name, size, photos[:SAVED], labels[:SAVED])
            print(f"| {name} | {size} | {accuracy(np.stack([from_pixels(p) for p in photos])):.2f} |", flush=True)
    return 0


def _save(folder: Path, style: str, size: int, photos: np.ndarray, labels: np.ndarray) -> None:
    """``folder/<style>-<size>px-<i>-<label>.png``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for i, (photo, label) in enumerate(zip(photos, labels)):
            Image.fromarray(photo).save(folder / f"{style.replace(' ', '-').replace(',', '')}-{size}px-{i}-{label}.png")
    except OSError as err:
        raise UsageError(f"--save {folder}: cannot write there ({err.strerror or err})") from None


if __name__ == "__main__":
    sys.exit(main())
