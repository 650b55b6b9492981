"""The data layer on the shipped MNIST, other layouts, splits, orders and TFDS."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
from cli_helpers import run_python

from harness.data import (
    DEFAULT_DATA_DIR,
    MNIST_FILES,
    DataError,
    load_idx,
    load_mnist,
    load_tfds,
    train_val_split,
)


def test_shipped_mnist_shapes_dtypes_and_counts(mnist):
    assert mnist.train_images.shape == (60000, 28, 28, 1)
    assert mnist.test_images.shape == (10000, 28, 28, 1)
    assert mnist.train_images.dtype == np.uint8 and mnist.test_images.dtype == np.uint8
    assert mnist.train_labels.shape == (60000,) and mnist.test_labels.shape == (10000,)
    assert np.issubdtype(mnist.train_labels.dtype, np.integer)
    assert np.bincount(mnist.train_labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert mnist.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert mnist.train_images.max() == 255 and mnist.train_images.min() == 0


def test_shipped_checksums_are_verified_and_recorded(mnist):
    assert mnist.source == "idx"
    assert set(mnist.checksums) == {f"{name}.gz" for name in MNIST_FILES}
    assert all(c["verified_by_sha256sums"] for c in mnist.checksums.values())
    assert (DEFAULT_DATA_DIR / "README.md").read_text().count("Creative Commons") == 1


def test_raw_files_and_torchvision_layout_load_the_same(tmp_path, mnist):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES:
        (raw / name).write_bytes(gzip.decompress((DEFAULT_DATA_DIR / f"{name}.gz").read_bytes()))
    for data_dir in (tmp_path, tmp_path / "MNIST", raw):
        data = load_idx(data_dir)
        assert data.location == str(raw)
        np.testing.assert_array_equal(data.train_images, mnist.train_images)
        np.testing.assert_array_equal(data.test_labels, mnist.test_labels)
        assert not any(c["verified_by_sha256sums"] for c in data.checksums.values())


def test_split_is_seeded_disjoint_and_subsettable():
    a = train_val_split(60000, val_size=5000)
    b = train_val_split(60000, val_size=5000)
    np.testing.assert_array_equal(a.train, b.train)
    assert len(a.train) == 55000 and len(a.val) == 5000
    assert not set(a.train) & set(a.val)
    sub = train_val_split(60000, val_size=5000, train_size=1000)
    assert len(sub.train) == 1000 and set(sub.train) <= set(a.train)
    np.testing.assert_array_equal(sub.val, a.val)  # the subset never changes what validates
    other = train_val_split(60000, val_size=5000, split_seed=1)
    assert not np.array_equal(other.val, a.val)
    with pytest.raises(ValueError):
        train_val_split(60000, val_size=5000, train_size=55001)


def test_missing_folder_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="data folder not found"):
        load_mnist(tmp_path / "nope")


def test_tfds_source_reads_through_data_source_under_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=64):
        data = load_mnist(source="tfds")
    assert data.source == "tfds"
    assert data.train_images.shape == (64, 28, 28, 1) and data.train_images.dtype == np.uint8
    assert data.test_labels.shape == (64,) and data.test_labels.min() >= 0 and data.test_labels.max() <= 9
    assert set(data.checksums) == {"tfds:mnist/train", "tfds:mnist/test"}


def test_tfds_without_a_prepared_copy_explains_what_is_needed(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(DataError, match="no TFDS MNIST prepared") as err:
        load_tfds(tmp_path)
    assert "\n" not in str(err.value) and "tfds build mnist" in str(err.value)


@pytest.fixture()
def copy_of_mnist(tmp_path):
    """A writable copy of the shipped folder, without SHA256SUMS unless a test keeps it."""
    folder = tmp_path / "mnist"
    shutil.copytree(DEFAULT_DATA_DIR, folder)
    return folder


def test_the_shipped_copy_is_looked_up_in_order(tmp_path, monkeypatch):
    """$MNIST_DATA_DIR, then the repository's data/mnist, then an install's mnist_data package; else one line
    naming all three."""
    import harness.data as data

    copy = tmp_path / "elsewhere"
    shutil.copytree(DEFAULT_DATA_DIR, copy)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(copy))
    assert data.shipped_data_dir() == copy and load_mnist().location == str(copy)
    monkeypatch.delenv(data.DATA_DIR_ENV)
    assert data.shipped_data_dir() == DEFAULT_DATA_DIR
    monkeypatch.setattr(data, "DEFAULT_DATA_DIR", tmp_path / "no-checkout")
    monkeypatch.setattr(data, "installed_data_dir", lambda: None)
    with pytest.raises(DataError) as err:
        data.shipped_data_dir()
    message = str(err.value)
    assert "--data-dir" in message and "MNIST_DATA_DIR" in message and "mnist_data" in message
    assert str(tmp_path / "no-checkout") in message


def test_a_gzip_idx_that_expands_past_its_header_is_refused_in_bounded_memory(tmp_path):
    """A 10-image header followed by 1 GB of zeros (a 1 MB file): refused after reading one byte past what the
    header declares, with the peak memory of the process far below the expansion."""
    import zlib

    header = (2051).to_bytes(4, "big") + (10).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    with open(tmp_path / "bomb.gz", "wb") as f:
        f.write(deflate.compress(header))
        zeros = bytes(1 << 24)
        for _ in range(64):  # 1 GiB
            f.write(deflate.compress(zeros))
        f.write(deflate.flush())
    code = (f"import json; from pathlib import Path; from harness.data import DataError, decompress\n"
            f"p = Path({str(tmp_path / 'bomb.gz')!r})\n"
            "try:\n    decompress(p, p.read_bytes()); said = None\nexcept DataError as err:\n    said = str(err)\n"
            "peak = next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM'))\n"
            "print(json.dumps({'said': said, 'peak_mb': peak / 1024}))")  # (this process's own peak, not its parent's)
    found = run_python(code)
    assert found["said"] and "expands past the 7,856 bytes its IDX header declares" in found["said"]
    assert found["peak_mb"] < 500, found


def test_an_idx_header_declaring_too_much_is_refused_before_reading_on(tmp_path):
    import gzip

    from harness.data import MAX_IDX_BYTES, DataError, decompress

    header = (2051).to_bytes(4, "big") + (2**31 - 1).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    with pytest.raises(DataError, match=f"more than the {MAX_IDX_BYTES:,}"):
        decompress(tmp_path / "x.gz", gzip.compress(header))
