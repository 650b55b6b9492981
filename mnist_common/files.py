"""Writing files so that a crash never leaves half of one, with the permissions an ordinary file gets."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path


def _mode_for(path: Path) -> int:
    """The mode ``path`` has, or the one ``open()`` would give a new file under the current umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, content: str | bytes) -> None:
    """Write via a temporary file in the same folder and rename it into place.

    The file gets the mode an ordinary ``open()`` would give it (an existing file keeps its own),
    not the 0600 of a temporary file.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "wb" if isinstance(content, bytes) else "w") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_via(path: str | os.PathLike, write) -> None:
    """``write(tmp)`` writes a file at the temporary path it is given; it then gets an ordinary file's mode and is
    renamed to ``path``, so a kill while writing leaves the previous file whole (for writers that take a path,
    such as safetensors', which would otherwise leave its 0600)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(str(tmp))
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks (weights files are large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
