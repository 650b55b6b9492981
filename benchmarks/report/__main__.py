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
import sys
from pathlib import Path

from benchmarks.report import blocks
from benchmarks.report.compare import compare, load_collection
from benchmarks.report.files import ReportError, atomic_write, load_results, render
from benchmarks.report.scaling import scaling_summary


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + error
        raise ReportError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m benchmarks.report",
                     description="Render a report folder again from its results.json, or compare two of them.")
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="one folder to re-render (a folder of report folders: "
                        "each of them), or two to compare (A B)")
    parser.add_argument("--out", metavar="FILE", help="with two folders: also write the comparison here "
                        "(default: print only)")
    parser.add_argument("--readme", metavar="FILE", help="with one folder: rewrite its generated block in FILE "
                        "(README.md or a docs/ page) between its results markers; a parity folder (parity.run's "
                        "summary.md) works too (default: no file touched)")
    parser.add_argument("--scaling", action="store_true", help="with one folder of report folders (one run at each "
                        "process count): write its scaling table to FOLDER/summary.md (default: off)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots (default: drawn)")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _update_block(target: str, content, folder: Path) -> None:
    path = Path(target)
    if not path.is_file():
        raise ReportError(f"--readme {path}: no such file")
    blocks.update(path, content, folder.as_posix())
    print(f"updated {path}")


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if len(args.dirs) > 2:
        raise ReportError("give one folder to re-render or two to compare")
    folders = [Path(d) for d in args.dirs]
    if len(folders) == 2:
        a, b = (load_results(f) for f in folders)
        text = compare(a, b, folders[0].name or str(folders[0]), folders[1].name or str(folders[1]))
        print(text)
        if args.out:
            atomic_write(Path(args.out), text)
        return 0
    (folder,) = folders
    if args.scaling:
        named = load_collection(folder)
        if len(named) < 2:
            raise ReportError(f"--scaling: {folder} needs two or more report folders (one per process count)")
        text = scaling_summary(named)
        atomic_write(folder / "summary.md", text)
        print(text)
        if args.readme:
            _update_block(args.readme, text, folder)
        return 0
    has_results = (folder / "results.json").is_file()
    if args.readme and not has_results and (folder / "summary.md").is_file():  # a parity folder
        _update_block(args.readme, (folder / "summary.md").read_text(), folder)
        return 0
    named = [] if has_results else load_collection(folder)
    renders = named or [(None, load_results(folder))]
    for name, results in renders:
        where = folder / name if name else folder
        written = render(where, results, plots=not args.no_plots)
        print(f"wrote {', '.join(str(where / w) for w in written)}")
    if args.readme:
        _update_block(args.readme, named or renders[0][1], folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
