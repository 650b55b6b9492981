"""Any image file to a 28x28 MNIST-style digit: grey, a light digit on black, fitted and centred as MNIST's were.

MNIST's digits were made by fitting each one's bounding box into 20x20 pixels
(aspect kept, anti-aliased) and placing that in a 28x28 frame so that the
digit's centre of mass is at the frame's centre. :func:`to_mnist` does the
same to an arbitrary picture:

1. read it as grey (an alpha channel is laid on white paper first);
2. invert it if its border is light (a dark digit on light paper, as drawn or
   scanned), so that the digit is light on black as in MNIST;
3. crop to the pixels brighter than a tenth of the brightest (the ink);
4. resize that crop so its longer side is 20 pixels (Lanczos), aspect kept;
5. place it in a black 28x28 frame with its centre of mass at (14, 14).

An image that is already 28x28 with a dark border (an MNIST digit saved as a
picture) is used as it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIDE, BOX = 28, 20


class ImageError(ValueError):
    """An input that is not an image, or cannot be read: one line naming it."""


def read_grey(path: Path) -> np.ndarray:
    """The image at ``path`` as float grey values in [0, 1]; transparency becomes white paper."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                rgba = img.convert("RGBA")
                paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(paper, rgba)
            grey = np.asarray(img.convert("L"), dtype=np.float64) / 255.0
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image (PNG, JPEG or another format Pillow reads)") from None
    except OSError as err:
        raise ImageError(f"{path}: cannot be read ({err.strerror or err})") from None
    if grey.size == 0:
        raise ImageError(f"{path}: an empty image")
    return grey


def to_mnist(grey: np.ndarray) -> np.ndarray:
    """Grey values in [0, 1], any size -> uint8 ``[28, 28, 1]``, a light digit on black, MNIST's framing."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) > 0.5:  # light paper: invert, so the digit is light on black
        grey = 1.0 - grey
    if grey.shape == (SIDE, SIDE):  # already an MNIST-sized digit on black
        return np.round(grey * 255).astype(np.uint8)[..., None]
    ink = grey > 0.1 * grey.max() if grey.max() > 0 else np.ones_like(grey, bool)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = grey[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    from PIL import Image

    h, w = crop.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # PIL's (width, height)
    digit = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize(size, Image.LANCZOS), np.float64)
    frame = np.zeros((SIDE, SIDE))
    mass = digit.sum()
    cy, cx = ((np.indices(digit.shape) * digit).reshape(2, -1).sum(1) / mass) if mass else (size[1] / 2, size[0] / 2)
    top, left = int(round(SIDE / 2 - cy)), int(round(SIDE / 2 - cx))
    top, left = min(max(top, 0), SIDE - digit.shape[0]), min(max(left, 0), SIDE - digit.shape[1])
    frame[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    return np.clip(np.round(frame), 0, 255).astype(np.uint8)[..., None]


def load_inputs(paths: list[str]) -> tuple[list[str], np.ndarray]:
    """Names and uint8 ``[N, 28, 28, 1]`` images of every input: image files, or IDX image files (every
    image in them, named ``file[i]``)."""
    from benchmarks.data import IMAGE_MAGIC, DataError, decompress, parse_idx

    names, images = [], []
    for text in paths:
        path = Path(text)
        if not path.is_file():
            raise ImageError(f"{path}: no such file")
        raw = path.read_bytes()
        gzipped = raw[:2] == b"\x1f\x8b"
        if gzipped or raw[:4] == IMAGE_MAGIC.to_bytes(4, "big"):  # IDX, plain or gzip, by content not name
            try:
                batch = parse_idx(path, decompress(path, raw, gzipped=gzipped), magic=IMAGE_MAGIC)
            except DataError as err:
                raise ImageError(str(err)) from None
            if len(batch) == 0:
                raise ImageError(f"{path}: an IDX file with no images")
            names += [f"{path}[{i}]" for i in range(len(batch))]
            images += list(batch)
        else:
            names.append(str(path))
            images.append(to_mnist(read_grey(path)))
    return names, np.stack(images)
