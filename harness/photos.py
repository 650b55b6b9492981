"""MNIST digits as people photograph them: dark ink on grey, tinted or unevenly lit paper, chalk on a board, with
noise and margins, at any size, to measure how well a model reads real pictures.

:func:`photograph` lays one MNIST digit (light on black, 28x28) on a picture of
``size`` x ``size`` RGB pixels: the digit is enlarged (bicubic) to fill about
three quarters of the picture at a random place, its grey level used as the
ink's coverage over the paper, then pixel noise is added. :data:`STYLES` are
the papers and lights measured; :func:`photographs` makes a batch.
Converting a photograph back (``harness.images.to_mnist``) should give the
digit again, which is what the tests and ``python -m benchmarks.photos`` check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Style:
    """A paper, an ink and a light: ``paper`` and ``ink`` RGB in [0, 1]; ``light`` the darkest corner's share
    of the light (1: even light); ``margin`` the share of the picture's side a dark table takes at its left and
    bottom edges; ``noise`` the pixel noise's standard deviation."""

    paper: tuple[float, float, float]
    ink: tuple[float, float, float]
    light: float = 1.0
    margin: float = 0.0
    noise: float = 0.03


STYLES = {
    "white paper": Style(paper=(1.0, 1.0, 1.0), ink=(0.08, 0.08, 0.1), noise=0.02),
    "grey paper": Style(paper=(0.9, 0.9, 0.9), ink=(0.15, 0.15, 0.15)),
    "tinted paper, blue ink": Style(paper=(0.95, 0.88, 0.68), ink=(0.15, 0.2, 0.5)),
    "uneven light": Style(paper=(0.95, 0.95, 0.93), ink=(0.1, 0.1, 0.1), light=0.45),
    "margins": Style(paper=(0.92, 0.92, 0.9), ink=(0.12, 0.12, 0.12), margin=0.08, light=0.7),
    "chalk on a board": Style(paper=(0.2, 0.24, 0.22), ink=(0.88, 0.88, 0.86), noise=0.04),
}


def photograph(digit: np.ndarray, style: Style, size: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 ``[size, size, 3]``: ``digit`` (uint8 ``[28, 28]`` or ``[28, 28, 1]``, light on black) photographed
    in ``style``."""
    digit = np.asarray(digit).reshape(28, 28)
    table = round(style.margin * size)
    room = size - table  # the paper's side; the digit's frame fills about three quarters of it
    side = max(28, round(room * rng.uniform(0.65, 0.85)))
    cover = np.asarray(Image.fromarray(digit).resize((side, side), Image.BICUBIC), np.float64) / 255.0
    cover = np.clip(cover, 0.0, 1.0)[..., None]
    top, left = rng.integers(0, room - side + 1), table + rng.integers(0, room - side + 1)
    alpha = np.zeros((size, size, 1))
    alpha[top:top + side, left:left + side] = cover
    paper, ink = np.asarray(style.paper), np.asarray(style.ink)
    picture = paper * (1 - alpha) + ink * alpha
    if table:  # a dark table at the left and bottom edges, outside the paper
        picture[:, :table] = 0.15
        picture[size - table:] = 0.15
    y, x = np.mgrid[0:size, 0:size] / max(1, size - 1)
    angle = rng.uniform(0, 2 * np.pi)  # the light falls off evenly towards a random side
    ramp = np.cos(angle) * x + np.sin(angle) * y
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
    picture = picture * (1 - (1 - style.light) * ramp)[..., None]
    picture = picture + rng.normal(0.0, style.noise, picture.shape)
    return np.round(np.clip(picture, 0.0, 1.0) * 255).astype(np.uint8)


def photographs(digits: np.ndarray, style: Style, size: int, seed: int = 0) -> np.ndarray:
    """uint8 ``[N, size, size, 3]``: each of ``digits`` photographed in ``style``, reproducibly from ``seed``."""
    rng = np.random.default_rng(seed)
    return np.stack([photograph(d, style, size, rng) for d in digits])
