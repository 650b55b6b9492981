"""``python -m benchmarks.report DIR [DIR_B] [--readme FILE]``: re-render, compare, update generated blocks.

One folder: its report files are rendered again from ``results.json`` (a
folder of report folders: each of them); with ``--readme FILE`` its block in
FILE is rewritten (a parity folder, with ``summary.md``, works too). With
``--scaling``, a folder of report folders at several process counts gets its
scaling table as ``summary.md``. Two folders: A and B side by side. User
mistakes print one line and exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import nullcontext
from pathlib import Path

from harness import cli
from harness.cli import Parser
from harness.outputs import FolderLock
from harness.record import ReportError, read_results
from harness.report import blocks
from harness.report.compare import compare, load_collection
from harness.report.files import render
from harness.report.scaling import scaling_summary
from mnist_common.files import atomic_write


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m benchmarks.report",
                     description="Render a report folder again from its results.json, or compare two of them.")
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="one folder to re-render (a folder of report folders: "
                        "each of them), or two to compare (A B)")
    parser.add_argument("--out", metavar="PATH", help="with two folders: a file to write the comparison to as "
                        "well; with one folder: a folder to write its re-rendered reports to, leaving DIR as it is "
                        "(default: print the comparison only; re-render DIR in place)")
    parser.add_argument("--readme", metavar="FILE", help="with one folder: rewrite its generated block in FILE "
                        "(README.md or a docs/ page) between its results markers; a parity folder (parity.run's "
                        "summary.md) works too (default: no file touched)")
    parser.add_argument("--scaling", action="store_true", help="with one folder of report folders (one run at each "
                        "process count): write its scaling table to FOLDER/summary.md (default: off)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots (default: drawn)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli.run(_main, argv)


def _check_target(target: str, folder: Path) -> Path:
    """``--readme FILE``, checked before anything is written: a file holding the markers of ``folder``'s block."""
    path = Path(target)
    if path.is_dir():
        raise ReportError(f"--readme {path}: a folder, not a file (give README.md or a docs/ page)")
    if not path.is_file():
        raise ReportError(f"--readme {path}: no such file")
    blocks.check_markers(path, folder.as_posix())
    return path


def _update_block(path: Path, content, folder: Path) -> None:
    blocks.update(path, content, folder.as_posix())
    print(f"updated {path}")


def _out_folder(out: str) -> Path:
    """``--out DIR`` for re-rendered reports: a folder (created), never a file."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ReportError(f"--out {path}: exists and is not a folder (one folder's reports are several files)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ReportError(f"--out {path}: cannot create folder ({err.strerror})") from None
    return path


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if len(args.dirs) > 2:
        raise ReportError("give one folder to re-render or two to compare")
    folders = [Path(d) for d in args.dirs]
    for folder in folders:
        if folder.is_file():
            raise ReportError(f"{folder}: a file, not a report folder")
        if not folder.is_dir():
            raise ReportError(f"{folder}: no such folder")
    if len(folders) == 2:
        if args.readme or args.scaling:
            raise ReportError("--readme and --scaling take one folder")
        out = Path(args.out) if args.out else None
        if out is not None and out.is_dir():
            raise ReportError(f"--out {out}: a folder; with two folders --out names the file for the comparison")
        a, b = (read_results(f) for f in folders)
        text = compare(a, b, folders[0].name or str(folders[0]), folders[1].name or str(folders[1]))
        print(text)
        if out is not None:
            atomic_write(out, text)
        return 0
    (folder,) = folders
    target = _check_target(args.readme, folder) if args.readme else None
    if args.scaling:
        named = load_collection(folder)
        if len(named) < 2:
            raise ReportError(f"--scaling: {folder} needs two or more report folders (one per process count)")
        text = scaling_summary(named)
        where = _out_folder(args.out) if args.out else folder
        with _writing(where):
            atomic_write(where / "summary.md", text)
        print(text)
        if target:
            _update_block(target, text, folder)
        return 0
    has_results = (folder / "results.json").is_file()
    if target and not has_results and (folder / "summary.md").is_file():  # a parity folder
        _update_block(target, (folder / "summary.md").read_text(), folder)
        return 0
    named = [] if has_results else load_collection(folder)  # every results.json read and checked, then written
    renders = named or [(None, read_results(folder))]
    root = _out_folder(args.out) if args.out else folder
    for name, results in renders:
        where = root / name if name else root
        where.mkdir(exist_ok=True)
        with _writing(where):
            written = render(where, results, plots=not args.no_plots)
        print(f"wrote {', '.join(str(where / w) for w in written)}")
    if target:
        _update_block(target, named or renders[0][1], folder)
    return 0


def _writing(folder: Path):
    """The lock of a folder reports are written into: refused, naming the run, while a live run holds it (a folder
    this user cannot write to is left to the write's own error)."""
    return FolderLock(folder, "the report folder") if os.access(folder, os.W_OK) else nullcontext()


if __name__ == "__main__":
    sys.exit(main())
