"""Pictures to MNIST-style digits: polarity, fitting into 20x20, centring by the centre of mass."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from harness.images import ImageError, load_inputs, read_grey, to_mnist


def test_a_dark_digit_on_light_paper_is_inverted_fitted_and_centred(tmp_path):
    paper = np.full((120, 90), 255, np.uint8)
    paper[20:100, 30:50] = 0  # a dark vertical bar, off centre
    Image.fromarray(paper).save(tmp_path / "bar.png")
    digit = to_mnist(read_grey(tmp_path / "bar.png"))[..., 0].astype(float)
    assert digit.shape == (28, 28) and digit[0].max() == 0  # light on black, black border
    rows, cols = np.flatnonzero(digit.any(1)), np.flatnonzero(digit.any(0))
    assert rows[-1] - rows[0] + 1 == 20 and cols[-1] - cols[0] + 1 <= 7  # the longer side fitted to 20 pixels
    cy, cx = (np.indices(digit.shape) * digit).reshape(2, -1).sum(1) / digit.sum()
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1  # centre of mass in the middle


def test_an_mnist_digit_saved_as_png_comes_back_unchanged(tmp_path, mnist):
    Image.fromarray(mnist.test_images[3, :, :, 0]).save(tmp_path / "d.png")
    names, images = load_inputs([str(tmp_path / "d.png")])
    np.testing.assert_array_equal(images[0], mnist.test_images[3])
    assert names == [str(tmp_path / "d.png")]


def test_transparent_png_is_read_on_white_and_idx_files_give_every_image(tmp_path):
    from harness.data import DEFAULT_DATA_DIR

    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[10:30, 18:22] = (0, 0, 0, 255)  # black ink, transparent elsewhere
    Image.fromarray(rgba, "RGBA").save(tmp_path / "ink.png")
    assert to_mnist(read_grey(tmp_path / "ink.png")).max() > 200
    names, images = load_inputs([str(DEFAULT_DATA_DIR / "t10k-images-idx3-ubyte.gz")])
    assert images.shape == (10000, 28, 28, 1) and names[2].endswith("[2]")
    with pytest.raises(ImageError, match="not an image"):
        (tmp_path / "x.png").write_text("no")
        read_grey(tmp_path / "x.png")


def test_idx_is_told_by_content_not_by_name(tmp_path, mnist):
    import gzip

    Image.fromarray(mnist.test_images[5, :, :, 0]).save(tmp_path / "digit-idx.png")  # a PNG with "idx" in its name
    _, images = load_inputs([str(tmp_path / "digit-idx.png")])
    np.testing.assert_array_equal(images[0], mnist.test_images[5])
    header = (2051).to_bytes(4, "big") + (0).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    (tmp_path / "none").write_bytes(gzip.compress(header))  # gzipped, no .gz suffix, no images
    with pytest.raises(ImageError, match="no images"):
        load_inputs([str(tmp_path / "none")])


def _png_header_only(path, width, height):
    """A PNG whose header says ``width`` x ``height`` grey pixels, with almost no pixel data behind it."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [10_000, 40_000])
def test_a_picture_over_the_pixel_limit_is_refused_from_its_header(tmp_path, side):
    from harness.images import MAX_PIXELS

    _png_header_only(tmp_path / "huge.png", side, side)
    with pytest.raises(ImageError, match=f"{side}x{side} pixels, more than the {MAX_PIXELS:,}"):
        read_grey(tmp_path / "huge.png")


def test_a_large_picture_is_reduced_as_it_is_read(tmp_path):
    from harness.images import WORKING_SIDE

    paper = np.full((3000, 2000), 255, np.uint8)
    paper[600:2400, 900:1100] = 0
    Image.fromarray(paper).save(tmp_path / "big.png")
    grey = read_grey(tmp_path / "big.png")
    assert max(grey.shape) <= WORKING_SIDE and to_mnist(grey).max() > 200


def test_a_16_bit_picture_is_scaled_not_clipped(tmp_path, mnist):
    """A 16-bit grey PNG of a digit becomes exactly what its 8-bit copy becomes (Pillow alone would clip it)."""
    digit = mnist.test_images[7, :, :, 0]
    paper = np.full((140, 140), 255, np.uint8)  # white paper, dark ink, the digit 3x larger
    paper[28:112, 28:112] = 255 - np.kron(digit, np.ones((3, 3), np.uint8))
    Image.fromarray(paper).save(tmp_path / "8.png")
    Image.fromarray(paper.astype(np.uint16) * 257).save(tmp_path / "16.png")  # the same values on 16 bits
    with Image.open(tmp_path / "16.png") as img:
        assert img.mode.startswith("I")  # Pillow reads it as 16-bit: the case being tested
    np.testing.assert_allclose(read_grey(tmp_path / "16.png"), read_grey(tmp_path / "8.png"), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(to_mnist(read_grey(tmp_path / "16.png")), to_mnist(read_grey(tmp_path / "8.png")))


def test_a_folder_is_named_as_a_folder(tmp_path):
    with pytest.raises(ImageError, match="a folder, not an image or IDX file"):
        load_inputs([str(tmp_path)])


@pytest.mark.parametrize("mode", ["I;16", "P", "1"])
def test_a_large_picture_of_any_mode_is_reduced_and_read(tmp_path, mode):
    """16-bit grey, palette and 1-bit pictures over 1024 px a side: reduced in a mode that keeps their values."""
    paper = np.full((1500, 1200), 255, np.uint8)
    paper[300:1200, 500:700] = 0  # a dark bar
    img = Image.fromarray(paper.astype(np.uint16) * 257) if mode == "I;16" else Image.fromarray(paper).convert(mode)
    img.save(tmp_path / "big.png")
    digit = to_mnist(read_grey(tmp_path / "big.png"))
    assert digit.max() > 200 and digit[0].max() == 0  # a light bar on black
