"""Photographed digits back to MNIST's: every paper, light, polarity and size gives the digit it was made from."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression

from harness.images import dark_ink, from_pixels, load_inputs, read_grey
from harness.photos import STYLES, Style, photograph, photographs

DIGITS = 16


def _likeness(converted: np.ndarray, digits: np.ndarray) -> np.ndarray:
    """Each converted digit's correlation with the MNIST digit it was photographed from."""
    a, b = converted.reshape(len(converted), -1).astype(float), digits.reshape(len(digits), -1).astype(float)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))


@pytest.mark.parametrize("size", [64, 200, 640])
@pytest.mark.parametrize("style", STYLES)
def test_a_photographed_digit_comes_back_as_the_digit(style, size, mnist):
    digits = mnist.test_images[:DIGITS, :, :, 0]
    photos = photographs(digits, STYLES[style], size, seed=size)
    likeness = _likeness(np.stack([from_pixels(p) for p in photos]), digits)
    assert likeness.mean() > 0.85 and likeness.min() > 0.4, np.round(likeness, 2)


@pytest.mark.parametrize("style", STYLES)
def test_the_inks_polarity_is_found(style, mnist):
    photos = photographs(mnist.test_images[:DIGITS, :, :, 0], STYLES[style], 200, seed=1)
    light_ink = sum(STYLES[style].ink) > sum(STYLES[style].paper)
    assert [dark_ink(np.asarray(Image.fromarray(p).convert("L"), float) / 255) for p in photos] == \
        [not light_ink] * DIGITS


def test_grey_paper_reads_as_white_paper(tmp_path, mnist):
    """The same dark digit on paper of 255 and of 230 becomes the same MNIST digit."""
    digit = mnist.test_images[0, :, :, 0]
    for paper in (255, 230):
        picture = np.full((200, 200), paper, np.float64)
        ink = np.asarray(Image.fromarray(digit).resize((150, 150), Image.BICUBIC), np.float64) / 255
        picture[25:175, 25:175] = paper * (1 - ink) + 20 * ink
        Image.fromarray(np.round(picture).astype(np.uint8)).save(tmp_path / f"{paper}.png")
    white, grey = (load_inputs([str(tmp_path / f"{p}.png")])[1][0] for p in (255, 230))
    assert np.abs(white.astype(int) - grey.astype(int)).max() <= 8
    assert _likeness(grey[None], digit[None])[0] > 0.9


def test_specks_and_a_table_at_the_edge_are_left_out(mnist):
    digit = mnist.test_images[1, :, :, 0]
    rng = np.random.default_rng(0)
    clean = photograph(digit, Style(paper=(0.9,) * 3, ink=(0.1,) * 3, noise=0.0), 200, rng)
    rng = np.random.default_rng(0)
    messy = photograph(digit, Style(paper=(0.9,) * 3, ink=(0.1,) * 3, margin=0.1, noise=0.0), 220, rng)
    for y, x in ((15, 200), (190, 40), (30, 60)):  # three specks of dust on the paper
        messy[y:y + 2, x:x + 2] = 30
    assert _likeness(from_pixels(messy)[None], from_pixels(clean)[None])[0] > 0.95


def test_blank_and_uniform_pictures_give_a_black_digit(tmp_path):
    for value in (0, 128, 255):
        Image.fromarray(np.full((100, 80), value, np.uint8)).save(tmp_path / "blank.png")
        digit = load_inputs([str(tmp_path / "blank.png")])[1][0]
        assert digit.shape == (28, 28, 1) and digit.max() == 0
    noise = np.random.default_rng(0).integers(120, 136, (100, 100)).astype(np.uint8)  # paper, no digit
    assert from_pixels(noise).shape == (28, 28, 1)


def test_a_colour_photo_reads_like_its_grey_copy(tmp_path, mnist):
    photo = photograph(mnist.test_images[2, :, :, 0], STYLES["tinted paper, blue ink"], 200, np.random.default_rng(3))
    Image.fromarray(photo).save(tmp_path / "colour.png")
    Image.fromarray(photo).convert("L").save(tmp_path / "grey.png")
    np.testing.assert_array_equal(load_inputs([str(tmp_path / "colour.png")])[1],
                                  load_inputs([str(tmp_path / "grey.png")])[1])
    np.testing.assert_array_equal(from_pixels(photo), load_inputs([str(tmp_path / "colour.png")])[1][0])
    assert read_grey(tmp_path / "colour.png").shape == (200, 200)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # (100 iterations: enough here)
def test_a_classifier_reads_photographs_about_as_well_as_the_test_set(mnist):
    """A linear classifier (trained in seconds) loses at most 3 points on 300 photographed digits, in every style
    (a linear model is thrown by a shift of one pixel that a CNN shrugs off: the trained CNN's own figure is in the
    slow tier)."""
    model = LogisticRegression(max_iter=100).fit(mnist.train_images[:3000].reshape(3000, -1) / 255,
                                                  mnist.train_labels[:3000])
    digits, labels = mnist.test_images[:300], mnist.test_labels[:300]

    def accuracy(images):
        return (model.predict(images.reshape(len(images), -1) / 255) == labels).mean() * 100

    as_mnist = accuracy(digits)
    for name, style in STYLES.items():
        photos = photographs(digits[..., 0], style, 96, seed=0)
        assert accuracy(np.stack([from_pixels(p) for p in photos])) >= as_mnist - 3, name


def _cropped_tightly(digit: np.ndarray, dark: bool) -> np.ndarray:
    """An MNIST digit cut to its strokes' bounding box, enlarged 8 times: a digit drawn or scanned and cropped."""
    rows, cols = np.flatnonzero(digit.any(1)), np.flatnonzero(digit.any(0))
    crop = digit[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    crop = np.asarray(Image.fromarray(crop).resize((crop.shape[1] * 8, crop.shape[0] * 8), Image.BICUBIC))
    return 255 - crop if dark else crop


@pytest.mark.parametrize("dark", [True, False], ids=["dark on light", "light on dark"])
def test_a_digit_cropped_to_its_strokes_is_read_whole(dark, mnist):
    """Strokes that reach the picture's edge are the digit's, not paper or a margin: no digit comes back blank or
    cut (a digit that fills its picture, a 1, once did; and one whose pieces touch the edges lost them)."""
    digits = mnist.test_images[:120, :, :, 0]
    converted = np.stack([from_pixels(_cropped_tightly(d, dark)) for d in digits])
    likeness = _likeness(converted, digits)
    assert converted.reshape(len(digits), -1).max(1).min() == 255
    assert likeness.mean() > 0.93 and likeness.min() > 0.5, np.round(np.sort(likeness)[:5], 2)
