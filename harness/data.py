"""MNIST for the harness: framework-neutral NumPy, verified before use.

Two sources:

* ``idx`` (default): the four standard IDX files, gzipped or raw, from any
  folder holding them or torchvision's ``MNIST/raw`` layout; without a folder,
  the shipped copy, looked up in this order: ``$MNIST_DATA_DIR``, the
  repository's ``data/mnist/``, then the copy an install of this project
  carries (the ``mnist_data`` package). Every file is parsed strictly (magic number, header,
  length), checked against ``SHA256SUMS`` when the folder has one, and its
  decompressed records are checked against the digests of the standard MNIST
  records, so a run can say exactly which data it saw.
* ``tfds``: ``tfds.data_source("mnist")`` over a prepared TFDS copy
  (array_record format). It reads without TensorFlow; preparing the copy needs
  TensorFlow and the internet, which is why it is optional.

Every problem a user can cause is raised as :class:`DataError` whose message
names the file and the problem in one line; the runner turns it into exit 2.

Arrays returned: images ``uint8 [N, 28, 28, 1]`` (NHWC), labels ``int32 [N]``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import zlib
from pathlib import Path

import numpy as np

from mnist_common.errors import UserError

#: The shipped copy in a checkout of the repository.
DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "mnist"
#: An environment variable naming the folder to use when no ``--data-dir`` is given.
DATA_DIR_ENV = "MNIST_DATA_DIR"

IMAGE_MAGIC = 2051  # IDX: unsigned byte, 3 dimensions
LABEL_MAGIC = 2049  # IDX: unsigned byte, 1 dimension
NUM_CLASSES = 10

#: name -> (IDX magic, number of records) for the four standard files.
MNIST_FILES = {
    "train-images-idx3-ubyte": (IMAGE_MAGIC, 60000),
    "train-labels-idx1-ubyte": (LABEL_MAGIC, 60000),
    "t10k-images-idx3-ubyte": (IMAGE_MAGIC, 10000),
    "t10k-labels-idx1-ubyte": (LABEL_MAGIC, 10000),
}

#: SHA-256 of the *decompressed* standard MNIST files. These identify the
#: records whatever the wrapper (gzip level, raw, torchvision's copy).
MNIST_RECORD_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

DATA_SOURCES = ("idx", "tfds")


class DataError(UserError):
    """A problem with the user's data: one line naming the file and the problem."""


@dataclasses.dataclass(frozen=True)
class MNIST:
    """The full train and test sets plus where they came from."""

    train_images: np.ndarray  # uint8 [60000, 28, 28, 1]
    train_labels: np.ndarray  # int32 [60000]
    test_images: np.ndarray  # uint8 [10000, 28, 28, 1]
    test_labels: np.ndarray  # int32 [10000]
    source: str  # "idx" or "tfds"
    location: str  # folder the files were read from
    checksums: dict  # file name -> sha256 of the file as read (and of its records)


@dataclasses.dataclass(frozen=True)
class Split:
    """Index sets into ``MNIST.train_*``: what trains, what validates."""

    train: np.ndarray  # int64 indices
    val: np.ndarray  # int64 indices, disjoint from ``train``


# --------------------------------------------------------------------------- IDX


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def shipped_data_dir() -> Path:
    """The shipped MNIST: ``$MNIST_DATA_DIR``, else the repository's ``data/mnist``, else the installed copy.

    Raises DataError naming all three when none holds the files.
    """
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV])
    if (DEFAULT_DATA_DIR / "SHA256SUMS").is_file():
        return DEFAULT_DATA_DIR
    installed = installed_data_dir()
    if installed is not None:
        return installed
    raise DataError(f"no MNIST found: pass --data-dir DIR, set {DATA_DIR_ENV}=DIR, or run from a checkout of the "
                    f"repository (looked in {DEFAULT_DATA_DIR}) or an install of it (the mnist_data package)")


def installed_data_dir() -> Path | None:
    """The copy an install of this project carries (the ``mnist_data`` package), if there is one."""

    try:
        spec = importlib.util.find_spec("mnist_data")
    except (ImportError, ValueError):
        return None
    folders = [Path(p) for p in (spec.submodule_search_locations or [])] if spec is not None else []
    return next((folder for folder in folders if (folder / "SHA256SUMS").is_file()), None)


def find_idx_folder(data_dir: str | os.PathLike) -> Path:
    """The folder holding the IDX files: ``data_dir`` itself, or torchvision's
    ``data_dir/MNIST/raw`` or ``data_dir/raw`` when those hold them."""
    root = Path(data_dir)
    if not str(data_dir).strip():
        raise DataError("the data folder is an empty path")
    if root.is_file():
        raise DataError(f"{root}: a file, not a data folder")
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found")
    for candidate in (root, root / "MNIST" / "raw", root / "raw"):
        if candidate.is_dir() and any(_file_in(candidate, name) for name in MNIST_FILES):
            return candidate
    raise DataError(
        f"{root}: no MNIST IDX files found (looked for train-images-idx3-ubyte[.gz] "
        "and the other three here, in MNIST/raw and in raw)"
    )


def _file_in(folder: Path, name: str) -> Path | None:
    """``name.gz`` if present, else raw ``name``, else None."""
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def _read_sha256sums(folder: Path) -> dict[str, str]:
    sums_path = folder / "SHA256SUMS"
    if not sums_path.is_file():
        return {}
    sums = {}
    for lineno, line in enumerate(sums_path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 64:
            raise DataError(f"{sums_path}: line {lineno} is not '<sha256>  <file>'")
        sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


#: The most an IDX file may hold once decompressed (1 GiB: MNIST's largest file is 47 MB, EMNIST's 547 MB).
MAX_IDX_BYTES = 1 << 30
_CHUNK = 1 << 20


def idx_size(path: Path, header: bytes) -> int:
    """The length in bytes that an IDX file with this header (its first 4 + 4 * dims bytes) declares: the
    header plus the product of its dimensions times the element size. DataError when the header is not an
    IDX header or declares more than :data:`MAX_IDX_BYTES`."""
    if len(header) < 4 or header[:2] != b"\x00\x00":
        raise DataError(f"{path}: not an IDX file (no IDX magic number)")
    itemsize = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}.get(header[2])
    ndim = header[3]
    if itemsize is None or ndim == 0:
        raise DataError(f"{path}: not an IDX file (magic number {int.from_bytes(header[:4], 'big')})")
    head = 4 + 4 * ndim
    if len(header) < head:
        raise DataError(f"{path}: truncated: {len(header)} bytes, shorter than the IDX header")
    size = itemsize
    for i in range(ndim):
        size *= int.from_bytes(header[4 + 4 * i:8 + 4 * i], "big")
    if head + size > MAX_IDX_BYTES:
        raise DataError(f"{path}: its header declares {head + size:,} bytes, more than the {MAX_IDX_BYTES:,} an "
                        "IDX file may hold here")
    return head + size


def _check_magic(path: Path, found: int, magic: int) -> None:
    if found != magic:
        kind = "image" if magic == IMAGE_MAGIC else "label"
        raise DataError(f"{path}: wrong magic number {found} (expected {magic} for an IDX {kind} file)")


def decompress(path: Path, raw: bytes, *, gzipped: bool | None = None, magic: int | None = None) -> bytes:
    """``raw`` decompressed when gzipped (by default: when ``path`` ends in .gz); DataError naming ``path``.

    Bounded: decompression stops one byte past the length the IDX header declares
    (:func:`idx_size`, at most :data:`MAX_IDX_BYTES`), so a small file that expands
    to gigabytes is refused before it is held in memory. ``magic``: the IDX magic number
    the file must have (checked first, so that a file of the wrong kind says so).
    """
    if not (path.suffix == ".gz" if gzipped is None else gzipped):
        if len(raw) > MAX_IDX_BYTES:
            raise DataError(f"{path}: {len(raw):,} bytes, more than the {MAX_IDX_BYTES:,} an IDX file may hold here")
        return raw
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # the gzip wrapper
    try:
        out = bytearray(inflate.decompress(raw, 4))
        if len(out) == 4 and out[3]:  # (a max_length of 0 would mean no limit)
            out += inflate.decompress(inflate.unconsumed_tail, 4 * out[3])  # the dimensions
        if magic is not None and len(out) >= 4:
            _check_magic(path, int.from_bytes(out[:4], "big"), magic)
        whole_header = len(out) >= 4 and len(out) == 4 + 4 * out[3]
        limit = idx_size(path, bytes(out)) if whole_header else MAX_IDX_BYTES  # (else the stream ended early)
        while len(out) <= limit and inflate.unconsumed_tail:
            out += inflate.decompress(inflate.unconsumed_tail, min(_CHUNK, limit + 1 - len(out)))
        if len(out) <= limit and not inflate.eof:
            out += inflate.flush()
        if len(out) > limit:
            raise DataError(f"{path}: expands past the {limit:,} bytes its IDX header declares")
        if not inflate.eof:
            raise DataError(f"{path}: truncated gzip stream")
    except zlib.error as err:
        raise DataError(f"{path}: not a valid gzip file ({err})") from None
    if inflate.unused_data.strip(b"\x00"):  # another gzip member after the first: not an IDX file we wrote
        raise DataError(f"{path}: data after the gzip stream (a file of several gzip members)")
    return bytes(out)


def parse_idx(path: Path, data: bytes, *, magic: int) -> np.ndarray:
    """Parse one decompressed IDX file strictly: magic number, header, length.

    Images come back as ``uint8 [N, 28, 28, 1]``, labels as ``int32 [N]``.
    """
    header_len = 16 if magic == IMAGE_MAGIC else 8
    if len(data) < header_len:
        raise DataError(f"{path}: truncated: {len(data)} bytes, shorter than the IDX header")
    _check_magic(path, int.from_bytes(data[:4], "big"), magic)
    n = int.from_bytes(data[4:8], "big")
    shape: tuple[int, ...] = (n,)
    if magic == IMAGE_MAGIC:
        rows, cols = int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
        if (rows, cols) != (28, 28):
            raise DataError(f"{path}: images are {rows}x{cols}, expected 28x28")
        shape = (n, rows, cols, 1)  # NHWC with one grey channel
    expected = header_len + int(np.prod(shape))
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(
            f"{path}: {problem}: {len(data)} bytes, the header's {n} records need {expected}"
        )
    array = np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(shape)
    return array.copy() if magic == IMAGE_MAGIC else array.astype(np.int32)


def load_idx(data_dir: str | os.PathLike | None = None) -> MNIST:
    """Load and verify the four MNIST IDX files from ``data_dir``.

    Checks run from the most specific to the most general, so the message
    names the actual problem: gzip and IDX structure, then image/label counts
    and label range, then ``SHA256SUMS``, then the standard MNIST records.
    ``data_dir`` None: the shipped copy (:func:`shipped_data_dir`).
    """
    folder = find_idx_folder(shipped_data_dir() if data_dir is None else data_dir)
    paths, arrays, file_shas, record_shas = {}, {}, {}, {}
    for name, (magic, _) in MNIST_FILES.items():
        path = paths[name] = _file_in(folder, name)
        if path is None:
            raise DataError(f"{folder / name}[.gz]: file not found")
        raw = path.read_bytes()
        records = decompress(path, raw, magic=magic)
        arrays[name] = parse_idx(path, records, magic=magic)
        file_shas[name] = _sha256(raw)
        record_shas[name] = _sha256(records) if path.suffix == ".gz" else file_shas[name]
    for split in ("train", "t10k"):
        images, labels = f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte"
        _check_labels(paths[labels], arrays[labels], len(arrays[images]))
    sums = _read_sha256sums(folder)
    for name, path in paths.items():
        if path.name in sums and sums[path.name] != file_shas[name]:
            raise DataError(
                f"{path}: checksum mismatch (sha256 {file_shas[name]}, SHA256SUMS says {sums[path.name]})"
            )
    for name, (_, count) in MNIST_FILES.items():
        if len(arrays[name]) != count:
            raise DataError(f"{paths[name]}: {len(arrays[name])} records, standard MNIST has {count}")
        if record_shas[name] != MNIST_RECORD_SHA256[name]:
            raise DataError(
                f"{paths[name]}: records differ from the standard MNIST "
                f"(sha256 of the decompressed file {record_shas[name]}, expected {MNIST_RECORD_SHA256[name]})"
            )
    return MNIST(
        train_images=arrays["train-images-idx3-ubyte"],
        train_labels=arrays["train-labels-idx1-ubyte"],
        test_images=arrays["t10k-images-idx3-ubyte"],
        test_labels=arrays["t10k-labels-idx1-ubyte"],
        source="idx",
        location=str(folder),
        checksums={
            paths[name].name: {"sha256": file_shas[name], "records_sha256": record_shas[name],
                               "verified_by_sha256sums": paths[name].name in sums}
            for name in MNIST_FILES
        },
    )


def _check_labels(path, labels: np.ndarray, num_images: int) -> None:
    if len(labels) != num_images:
        raise DataError(f"{path}: {len(labels)} labels for {num_images} images")
    bad = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
    if bad.size:
        raise DataError(
            f"{path}: label {int(labels[bad[0]])} at record {int(bad[0])} is outside 0-9 "
            f"({bad.size} such labels)"
        )


# -------------------------------------------------------------------------- TFDS


def load_tfds(data_dir: str | os.PathLike | None = None) -> MNIST:
    """Load MNIST through ``tfds.data_source`` (no TensorFlow needed to read).

    Needs a copy prepared in array_record format under ``data_dir`` (TFDS's
    default ``~/tensorflow_datasets`` when None); nothing is downloaded.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataError("--data-source tfds needs tensorflow-datasets, an optional extra: "
                        "pip install 'mnist-jax-torch[tfds]' (or -e '.[tfds]' in a checkout)") from None
    where = str(data_dir) if data_dir is not None else "~/tensorflow_datasets"
    splits = {}
    for split in ("train", "test"):
        try:
            source = tfds.data_source(
                "mnist", split=split, data_dir=None if data_dir is None else str(data_dir),
                download=False,
            )
            records = [source[i] for i in range(len(source))]
        except Exception as err:  # tfds raises many types for a missing copy
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise DataError(
                f"{where}: no TFDS MNIST prepared in array_record format ({reason}); "
                "prepare it where TensorFlow and the internet are available with "
                "`tfds build mnist --file_format=array_record`, or use --data-source idx"
            ) from None
        if not records:
            raise DataError(f"{where}: TFDS MNIST split {split!r} is empty")
        images = np.stack([np.asarray(r["image"], dtype=np.uint8) for r in records])
        labels = np.asarray([int(r["label"]) for r in records], dtype=np.int32)
        if images.shape[1:] != (28, 28, 1):
            raise DataError(f"{where}: TFDS MNIST {split} images have shape {images.shape[1:]}")
        _check_labels(f"{where} (tfds mnist {split})", labels, len(images))
        splits[split] = (images, labels)
    checksums = {
        f"tfds:mnist/{split}": {"records_sha256": _sha256(images.tobytes() + labels.tobytes())}
        for split, (images, labels) in splits.items()
    }
    return MNIST(
        train_images=splits["train"][0],
        train_labels=splits["train"][1],
        test_images=splits["test"][0],
        test_labels=splits["test"][1],
        source="tfds",
        location=where,
        checksums=checksums,
    )


def load_mnist(data_dir: str | os.PathLike | None = None, source: str = "idx") -> MNIST:
    """Load MNIST from ``source`` ("idx" or "tfds"); see the module docstring."""
    if source == "idx":
        return load_idx(data_dir)
    if source == "tfds":
        return load_tfds(data_dir)
    raise DataError(f"unknown data source {source!r} (choose from {', '.join(DATA_SOURCES)})")


# ------------------------------------------------------------------------ splits

#: The validation split does not move with ``--seed``: every run, whatever its
#: seed, monitors the same held-out training images.
SPLIT_SEED = 0


def train_val_split(
    num_train: int, *, val_size: int, train_size: int | None = None, split_seed: int = SPLIT_SEED
) -> Split:
    """Carve a validation set out of the training set.

    One seeded permutation of ``range(num_train)``: its first ``val_size``
    indices validate, the rest train. ``train_size`` keeps only the first N of
    the training part (still in shuffled order, so a subset is class-balanced
    in expectation). The test set is never touched here.
    """
    if val_size < 0 or val_size >= num_train:
        raise ValueError(f"val_size must be in [0, {num_train}), got {val_size}")
    perm = np.random.default_rng(split_seed).permutation(num_train)
    val, train = perm[:val_size], perm[val_size:]
    if train_size is not None:
        if train_size <= 0 or train_size > len(train):
            raise ValueError(
                f"train_size must be in [1, {len(train)}] with val_size {val_size}, got {train_size}"
            )
        train = train[:train_size]
    return Split(train=np.sort(train), val=np.sort(val))


def test_subset(num_test: int, test_size: int | None, *, split_seed: int = SPLIT_SEED) -> np.ndarray:
    """Indices of the test images to evaluate: all of them, or a fixed random ``test_size`` subset.

    A seeded permutation rather than the first N: MNIST's test file is not
    shuffled (its halves come from different groups of writers).
    """
    if test_size is None or test_size == num_test:
        return np.arange(num_test)
    if not 0 < test_size <= num_test:
        raise ValueError(f"test_size must be in [1, {num_test}], got {test_size}")
    return np.sort(np.random.default_rng(split_seed).permutation(num_test)[:test_size])
