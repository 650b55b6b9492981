"""Every bad-input case through the CLI: exit 2, one line naming the file, no traceback."""

from __future__ import annotations

import gzip
import shutil

import pytest
from cli_helpers import assert_one_line_error, run_cli

from harness.data import DEFAULT_DATA_DIR


def _records(name: str) -> bytearray:
    return bytearray(gzip.decompress((DEFAULT_DATA_DIR / f"{name}.gz").read_bytes()))


def _missing_file(folder):
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    return "t10k-labels-idx1-ubyte", "file not found"


def _truncated_raw(folder):
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    (folder / "train-labels-idx1-ubyte").write_bytes(_records("train-labels-idx1-ubyte")[:30000])
    return "train-labels-idx1-ubyte", "truncated"


def _truncated_gzip(folder):
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100000])
    return "t10k-images-idx3-ubyte.gz", "truncated gzip"


def _wrong_magic(folder):
    data = _records("t10k-images-idx3-ubyte")
    data[:4] = (2049).to_bytes(4, "big")
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(data)))
    return "t10k-images-idx3-ubyte.gz", "wrong magic number 2049"


def _checksum_mismatch(folder):
    # Same records, different gzip bytes: only SHA256SUMS can tell.
    path = folder / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=1, mtime=0))
    return "train-labels-idx1-ubyte.gz", "checksum mismatch"


def _count_mismatch(folder):
    data = _records("train-labels-idx1-ubyte")
    data[4:8] = (59999).to_bytes(4, "big")
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(data[:-1])))
    return "train-labels-idx1-ubyte.gz", "59999 labels for 60000 images"


def _label_out_of_range(folder):
    data = _records("t10k-labels-idx1-ubyte")
    data[8] = 11  # record 0
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(data)))
    return "t10k-labels-idx1-ubyte.gz", "label 11 at record 0 is outside 0-9"


def _not_standard_records(folder):
    data = _records("train-images-idx3-ubyte")
    data[16 + 14 * 28 + 14] ^= 0xFF  # one pixel of image 0
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(data), compresslevel=1))
    return "train-images-idx3-ubyte.gz", "records differ from the standard MNIST"


CASES = [
    _missing_file, _truncated_raw, _truncated_gzip, _wrong_magic, _checksum_mismatch,
    _count_mismatch, _label_out_of_range, _not_standard_records,
]


@pytest.mark.parametrize("corrupt", CASES, ids=[c.__name__.strip("_") for c in CASES])
def test_bad_data_dir_exits_2_with_one_line_naming_the_file(tmp_path, corrupt):
    folder = tmp_path / "mnist"
    shutil.copytree(DEFAULT_DATA_DIR, folder)
    if corrupt is not _checksum_mismatch:
        (folder / "SHA256SUMS").unlink()  # let the specific structural check speak
    file_name, problem = corrupt(folder)
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("earlier results\n")
    proc = run_cli("--data-dir", str(folder), "--preset", "smoke", "--out", str(out), "--overwrite")
    assert_one_line_error(proc, file_name, problem)
    assert (out / "results.json").read_text() == "earlier results\n"  # nothing written is lost


def test_missing_data_folder(tmp_path):
    proc = run_cli("--data-dir", str(tmp_path / "absent"), "--preset", "smoke", "--out", str(tmp_path / "o"))
    assert_one_line_error(proc, str(tmp_path / "absent"), "data folder not found")
    assert not (tmp_path / "o").exists()


def test_folder_without_mnist_files(tmp_path):
    proc = run_cli("--data-dir", str(tmp_path), "--preset", "smoke")
    assert_one_line_error(proc, str(tmp_path), "no MNIST IDX files found")
