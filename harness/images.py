"""Any image file to a 28x28 MNIST-style digit: grey, a light digit on black, fitted and centred as MNIST's were.

MNIST's digits were made by fitting each one's bounding box into 20x20 pixels
(aspect kept, anti-aliased) and placing that in a 28x28 frame so that the
digit's centre of mass is at the frame's centre. :func:`to_mnist` does the
same to a picture as people take them (grey or coloured paper, uneven light,
noise, margins):

1. read it as grey, by luminance (an alpha channel is laid on white paper first);
2. work on a copy at most :data:`LEVEL_SIDE` pixels a side, a 3x3 median taking
   out pixel noise;
3. level the background: the paper's brightness is estimated everywhere by a
   morphological closing (dark ink) or opening (light ink) wider than a stroke,
   smoothed, and subtracted, which takes out grey or tinted paper, shadows and
   light gradients; the polarity is the one whose ink stands out more;
4. stretch the contrast robustly: what is left of the paper (its median and
   spread) becomes black, the ink's 99th percentile white;
5. crop to the digit: connected marks weaker than a tenth of the strongest are
   specks, and marks running along a third of one of the picture's sides (a
   table, a paper edge) are margins when anything else is left. A picture
   cropped tightly to its digit (strokes crossing two opposite sides), or one
   whose digit reaches its edge or is not found, is read again laid in a margin
   of its paper (the border's median), since the levelling takes strokes that
   run into the edge for paper; where that digit reaches the picture's edge,
   it is the one used;
6. resize that crop so its longer side is 20 pixels (Lanczos), aspect kept,
   its brightest pixel made white;
7. place it in a black 28x28 frame with its centre of mass at (14, 14).

An image that is already 28x28 with a dark border (an MNIST digit saved as a
picture) is used as it is; one with a light border is inverted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy import ndimage

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


#: Pictures are levelled and cropped on a copy at most this many pixels a side (area-averaged): a digit ends up 20
#: pixels tall, so this keeps ten times the detail it needs while the filters stay fast.
LEVEL_SIDE = 256
#: The background's window, as a fraction of the working copy's longer side: wider than any pen or marker stroke
#: of a digit that fills the picture (MNIST's strokes are about an eighth of the digit's height), narrow enough to
#: follow a shadow.
WINDOW = 1 / 4
#: Strokes are where the ink map is above this: the digit's connected marks are found there.
STROKE = 0.25
#: Marks whose ink is below this fraction of the strongest mark's are specks, not part of the digit.
SPECK = 0.1
#: A mark covering this share of one side of the picture runs along its edge: a margin (a table, the paper's edge),
#: where a digit cropped tightly touches its picture's sides at a few points only.
ALONG_EDGE = 1 / 3
#: A picture's side is crossed by a stroke where a pixel on it is this far from the paper towards the ink (a fifth:
#: the faint edge of an anti-aliased stroke, five times a photograph's pixel noise).
TOUCH = 0.2
#: A side is inked along nearly its whole length (a table's edge, a shadow) where this share of it is: such a
#: picture is not a tight crop of its digit, whose strokes cross a side and leave paper beside them.
ACROSS = 0.9
#: The paper margin laid around a picture for its second reading, as a share of its longer side.
MARGIN = 1 / 3


def to_mnist(grey: np.ndarray) -> np.ndarray:
    """Grey values in [0, 1], any size -> uint8 ``[28, 28, 1]``, a light digit on black, MNIST's framing (the
    steps are the module's)."""
    if grey.shape == (SIDE, SIDE):  # already an MNIST-sized digit: only its polarity is MNIST's
        digit = 1.0 - grey if np.median(border(grey)) > 0.5 else grey
        return np.round(np.clip(digit, 0, 1) * 255).astype(np.uint8)[..., None]
    crop, reaches = crop_to_digit(ink_map(grey))
    if reaches or not crop.any() or cropped_tightly(grey):
        width = max(1, round(max(grey.shape) * MARGIN))
        ink = ink_map(with_paper_margin(grey, width))
        inset = round(width * ink.shape[0] / (grey.shape[0] + 2 * width))  # the ink map is a reduced copy
        tight, reaches = crop_to_digit(ink, (inset, inset, ink.shape[0] - inset, ink.shape[1] - inset))
        if reaches:
            return frame(tight)
    return frame(crop)


def border(grey: np.ndarray) -> np.ndarray:
    """The pixels along a picture's four sides (where its paper shows, unless cropped tightly)."""
    return np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])


def cropped_tightly(grey: np.ndarray) -> bool:
    """Whether a picture is cropped to its digit's bounding box: strokes cross two opposite sides (a shadow darkens
    two adjacent ones), none along :data:`ACROSS` of a side or more (a table or a shadow would). A stroke is a pixel
    :data:`TOUCH` of the way from the paper (the border's median) to the ink (the 1st or 99th percentile, whichever
    is farther from the paper)."""
    paper = np.median(border(grey))
    darkest, lightest = np.percentile(grey, [1, 99])
    extreme = darkest if paper - darkest > lightest - paper else lightest
    if abs(paper - extreme) < 0.1:
        return False
    ink = (grey - paper) / (extreme - paper) > TOUCH
    top, bottom, left, right = (side.mean() for side in (ink[0], ink[-1], ink[:, 0], ink[:, -1]))
    return ((top > 0 and bottom > 0) or (left > 0 and right > 0)) and max(top, bottom, left, right) < ACROSS


def with_paper_margin(grey: np.ndarray, width: int) -> np.ndarray:
    """``grey`` inside a margin ``width`` pixels wide of its paper (its border's median): a digit cropped tightly
    to its bounding box then lies on paper as a photographed one does, and its strokes that reach the picture's
    edge are told from the paper as the others are."""
    paper = np.median(border(grey))
    return np.pad(grey, width, constant_values=paper)


def reduced(grey: np.ndarray, side: int) -> np.ndarray:
    """``grey`` area-averaged to at most ``side`` pixels a side (as it is when already that small)."""
    factor = max(grey.shape) / side
    if factor <= 1:
        return grey
    size = (max(1, round(grey.shape[1] / factor)), max(1, round(grey.shape[0] / factor)))  # PIL's (width, height)
    return np.asarray(Image.fromarray(grey.astype(np.float32), "F").resize(size, Image.BOX), np.float64)


def dark_ink(grey: np.ndarray) -> bool:
    """Whether the ink is darker than the paper. The paper is most of the picture, so the ink is the longer tail
    of its brightness around the median (1st and 99th percentiles, on a 64-pixel copy); when neither tail is
    clearly longer, a light border means light paper."""
    small = reduced(grey, 64)
    middle = np.median(small)
    darker, lighter = middle - np.percentile(small, 1), np.percentile(small, 99) - middle
    if abs(darker - lighter) > 0.1 * max(darker, lighter, 1e-6):
        return bool(darker > lighter)
    return bool(np.median(border(grey)) > 0.5)


def ink_map(grey: np.ndarray) -> np.ndarray:
    """The ink of a picture in [0, 1] (0 the paper, 1 the ink's 99th percentile), whatever the paper's colour and
    light and the ink's polarity: steps 2-4 of the module's."""
    dark = dark_ink(grey)
    grey = ndimage.median_filter(reduced(grey, LEVEL_SIDE), size=3, mode="nearest")
    window = max(3, round(max(grey.shape) * WINDOW)) | 1
    envelope = ndimage.grey_closing if dark else ndimage.grey_opening  # the strokes taken out: the paper alone
    paper = ndimage.gaussian_filter(envelope(grey, size=window, mode="nearest"), window / 4, mode="nearest")
    # Light multiplies: ink over the paper's own brightness is the same in a shadow as in full light.
    signal = np.maximum(paper - grey if dark else grey - paper, 0.0) / np.maximum(paper, 0.02)
    level = np.median(signal)
    spread = 1.4826 * np.median(np.abs(signal - level))  # the paper's noise, robustly (MAD as a std)
    floor = level + 3 * spread
    top = np.percentile(signal[signal > floor], 99) if (signal > floor).any() else floor
    if top - floor < 1e-3:  # no mark stands out of the paper: a blank picture
        return np.zeros_like(signal)
    return np.clip((signal - floor) / (top - floor), 0.0, 1.0)


def crop_to_digit(ink: np.ndarray, picture: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, bool]:
    """The digit's bounding box in an ink map (step 5 of the module's), everything else in it blacked out, and
    whether the digit's strokes reach the picture's edge.

    ``picture`` is the box (top, left, bottom, right; bottom and right exclusive) of the picture itself in the
    map, when the map holds a margin around it (default: the whole map): margins run along its sides.
    Marks are the connected strokes brighter than :data:`STROKE` (so that faint edges and paper texture do not
    join a digit to a margin), each kept with the soft edge around it."""
    labels, count = ndimage.label(ink > STROKE, structure=np.ones((3, 3)))
    if count == 0:
        return ink, False
    index = np.arange(1, count + 1)
    mass = np.asarray(ndimage.sum_labels(ink, labels, index))
    keep = mass >= SPECK * mass.max()
    top, left, bottom, right = picture or (0, 0, *ink.shape)
    band = max(2, round(max(bottom - top, right - left) / 50))  # a side's edge, a few pixels deep

    def sides(a: np.ndarray) -> tuple[np.ndarray, ...]:  # the picture's four edge bands of ``a``, each [band, length]
        a = a[top:bottom, left:right]
        return a[:band], a[-band:], a[:, :band].T, a[:, -band:].T

    along = np.zeros(count + 1, bool)
    for side in sides(labels):
        for label in np.unique(side[side > 0]):
            along[label] |= (side == label).any(axis=0).sum() >= ALONG_EDGE * side.shape[1]
    inside = keep & ~along[1:]
    if inside.any():  # marks along the edge are margins (a table, the paper's edge) when the digit is elsewhere
        keep = inside
    strokes = np.isin(labels, index[keep])
    reaches = any(side.any() for side in sides(strokes))
    near = ndimage.binary_dilation(strokes, structure=np.ones((3, 3)), iterations=max(1, round(max(ink.shape) / 100)))
    digit = np.where(near, ink, 0.0)
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    return digit[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], reaches


def frame(crop: np.ndarray) -> np.ndarray:
    """A digit's crop in [0, 1] -> uint8 ``[28, 28, 1]``: fitted into 20x20 (aspect kept, Lanczos), its brightest
    pixel white, placed with its centre of mass at the centre (steps 6-7 of the module's)."""
    h, w = crop.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # PIL's (width, height)
    digit = np.asarray(Image.fromarray(crop.astype(np.float32), "F").resize(size, Image.LANCZOS), np.float64)
    digit = np.clip(digit, 0.0, None)
    if digit.max() > 0:
        digit *= 255.0 / digit.max()
    out = np.zeros((SIDE, SIDE))
    mass = digit.sum()
    cy, cx = ((np.indices(digit.shape) * digit).reshape(2, -1).sum(1) / mass) if mass else (size[1] / 2, size[0] / 2)
    top, left = int(round(SIDE / 2 - cy)), int(round(SIDE / 2 - cx))
    top, left = min(max(top, 0), SIDE - digit.shape[0]), min(max(left, 0), SIDE - digit.shape[1])
    out[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    return np.clip(np.round(out), 0, 255).astype(np.uint8)[..., None]


def from_pixels(pixels: np.ndarray) -> np.ndarray:
    """A picture already in memory (uint8 ``[H, W]`` grey or ``[H, W, 3]`` RGB) -> uint8 ``[28, 28, 1]``, as
    the same picture read from a file would become."""
    return to_mnist(_grey(Image.fromarray(np.asarray(pixels, np.uint8))))


#: IDX inputs are classified this many images at a time, so that results stream out while the rest waits.
CHUNK = 256


def check_inputs(paths: list[str]) -> None:
    """ImageError naming the first input that is a folder, missing, or over :data:`MAX_FILE_BYTES`: checked for
    every input before the first is read, so that a typo in the last one stops the command before any output."""
    for text in paths:
        path = Path(text)
        if path.is_dir():
            raise ImageError(f"{path}: a folder, not an image or IDX file")
        if not path.is_file():
            raise ImageError(f"{path}: no such file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ImageError(f"{path}: {path.stat().st_size:,} bytes, more than the {MAX_FILE_BYTES:,} an input "
                             "file may have here")


def iter_inputs(paths: list[str]) -> Iterator[tuple[list[str], np.ndarray]]:
    """``(names, uint8 [n, 28, 28, 1] images)`` for the inputs in order, as they are read: a picture file alone,
    an IDX image file (told by its content, plain or gzip) :data:`CHUNK` images at a time, named ``file[i]``."""
    check_inputs(paths)
    for text in paths:
        path = Path(text)
        raw = path.read_bytes()
        gzipped = raw[:2] == b"\x1f\x8b"
        if gzipped or raw[:4] == IMAGE_MAGIC.to_bytes(4, "big"):  # IDX, plain or gzip, by content not name
            try:
                batch = parse_idx(path, decompress(path, raw, gzipped=gzipped, magic=IMAGE_MAGIC), magic=IMAGE_MAGIC)
            except DataError as err:
                raise ImageError(str(err)) from None
            if len(batch) == 0:
                raise ImageError(f"{path}: an IDX file with no images")
            for start in range(0, len(batch), CHUNK):
                chunk = batch[start:start + CHUNK]
                yield [f"{path}[{i}]" for i in range(start, start + len(chunk))], chunk
        else:
            yield [str(path)], to_mnist(read_grey(path))[None]


def load_inputs(paths: list[str]) -> tuple[list[str], np.ndarray]:
    """Names and uint8 ``[N, 28, 28, 1]`` images of every input (:func:`iter_inputs`), all at once."""
    names, images = [], []
    for chunk_names, chunk in iter_inputs(paths):
        names += chunk_names
        images.append(chunk)
    return names, np.concatenate(images)
