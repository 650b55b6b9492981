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

from harness.data import IMAGE_MAGIC, DataError, decompress, parse_idx
from mnist_common.errors import UserError

SIDE, BOX = 28, 20


class ImageError(UserError, ValueError):
    """An input that is not an image, or cannot be read: one line naming it."""


#: The largest picture read, in pixels (50 megapixels: a phone camera's full resolution); larger ones are refused
#: from their header, before any pixel is decoded.
MAX_PIXELS = 50_000_000
#: The largest input file read (an IDX file's own limit is its header's size, at most 1 GiB decompressed).
MAX_FILE_BYTES = 1 << 30
#: Pictures are reduced to at most this many pixels a side once decoded (JPEGs as they are decoded): a digit ends up
#: 20 pixels tall, and what follows then works on at most a million pixels whatever the picture's size.
WORKING_SIDE = 1024


def read_grey(path: Path) -> np.ndarray:
    """The image at ``path`` as float grey values in [0, 1]; transparency becomes white paper.

    Pictures over :data:`MAX_PIXELS` are refused before decoding; larger sides than
    :data:`WORKING_SIDE` are reduced by whole factors, averaging (a JPEG while it is
    decoded, other formats once decoded: up to 4 bytes a pixel, 200 MB at the limit).
    Deep images (16-bit grey, 32-bit integer or float) are scaled to [0, 1] by their
    format's range, not clipped to 8 bits.
    """
    from PIL import Image, UnidentifiedImageError

    pillows_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # this function's own limit applies
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ImageError(f"{path}: {width}x{height} pixels, more than the {MAX_PIXELS:,} a picture may have "
                                 "here: scale it down first")
            factor = max(1, -(-max(width, height) // WORKING_SIDE))
            if factor > 1 and img.format == "JPEG":
                img.draft(img.mode, (width // factor, height // factor))  # JPEG decodes at a reduced scale itself
            img.load()
            factor = max(1, -(-max(img.size) // WORKING_SIDE))
            grey = _grey(_reducible(img).reduce(factor) if factor > 1 else img)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image (PNG, JPEG or another format Pillow reads)") from None
    except (OSError, ValueError) as err:  # a damaged or truncated file; a mode Pillow cannot convert
        raise ImageError(f"{path}: cannot be read ({getattr(err, 'strerror', None) or err})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pillows_limit
    if grey.size == 0:
        raise ImageError(f"{path}: an empty image")
    return grey


def _reducible(img):
    """``img`` in a mode ``Image.reduce`` takes, values kept: 1-bit and palette images as grey or colour (with
    their transparency), 16-bit grey as 32-bit integers."""
    if img.mode == "1":
        return img.convert("L")
    if img.mode == "P":
        return img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode.startswith("I;16"):
        return img.convert("I")
    return img


#: The full scale of Pillow's deep grey modes: 16-bit PNG and TIFF, 32-bit integers.
_DEEP_SCALE = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535}


def _grey(img) -> np.ndarray:
    """A loaded Pillow image as float64 grey in [0, 1]: 8-bit modes through Pillow's own conversion (alpha over
    white paper), deep ones scaled by their range."""
    from PIL import Image

    if img.mode in _DEEP_SCALE:
        return np.asarray(img, dtype=np.float64) / _DEEP_SCALE[img.mode]
    if img.mode == "I":  # 32-bit integers: a 16-bit file as Pillow often opens it, or a true 32-bit one
        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if values.min() >= 0 and values.max() <= 65535 else float(values.max() - values.min()) or 1.0
        return np.clip((values - min(0.0, values.min())) / top, 0.0, 1.0)
    if img.mode == "F":  # floats: [0, 1] as they are, else stretched to their range
        values = np.nan_to_num(np.asarray(img, dtype=np.float64))
        if values.min() >= 0 and values.max() <= 1:
            return values
        span = float(values.max() - values.min()) or 1.0
        return (values - values.min()) / span
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(paper, rgba)
    return np.asarray(img.convert("L"), dtype=np.float64) / 255.0


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

    names, images = [], []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            raise ImageError(f"{path}: a folder, not an image or IDX file")
        if not path.is_file():
            raise ImageError(f"{path}: no such file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ImageError(f"{path}: {path.stat().st_size:,} bytes, more than the {MAX_FILE_BYTES:,} an input "
                             "file may have here")
        raw = path.read_bytes()
        gzipped = raw[:2] == b"\x1f\x8b"
        if gzipped or raw[:4] == IMAGE_MAGIC.to_bytes(4, "big"):  # IDX, plain or gzip, by content not name
            try:
                batch = parse_idx(path, decompress(path, raw, gzipped=gzipped, magic=IMAGE_MAGIC), magic=IMAGE_MAGIC)
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
