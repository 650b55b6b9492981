"""What every command of the project shares: a parser whose mistakes are one line, and one way to end.

``Parser`` is argparse's, except that a bad flag raises :class:`UsageError`
instead of printing the usage. :func:`run` calls a command's ``main`` and turns
what it raises into the exit status users can rely on: a mistake is one line
on stderr and status 2; a second Ctrl-C is 130; a reader that closed the pipe
(``... | head``) ends the command quietly, as ``cat`` does, with status 0.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence

from mnist_common.config import MAX_SEED
from mnist_common.errors import UserError


class UsageError(UserError):
    """A mistake of the user's (a flag, a file, a folder): printed as one line, exit 2."""


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are :class:`UsageError` (one line) instead of usage + exit."""

    def error(self, message):
        choice = re.fullmatch(r"argument (\S+?)(?:/\S+)?: invalid choice: (.+) \(choose from (.+)\)", message)
        if choice:  # in the words every other setting uses: --device 'tpu' is unknown (choose from auto, cpu, gpu)
            flag, value, choices = choice.groups()
            raise UsageError(f"{flag} {value} is unknown (choose from {choices.replace(chr(39), '')})")
        raise UsageError(f"{message} (see --help)")


def parse_seeds(text: str, flag: str = "--seeds", *, at_least: int = 1) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``: distinct integers in [0, MAX_SEED], no empty entries; UsageError naming ``flag``."""

    try:
        seeds = [int(v.strip()) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"{flag} must be comma-separated integers with no empty entries, got {text!r}") from None
    if any(not 0 <= v <= MAX_SEED for v in seeds):
        raise UsageError(f"{flag} must be integers in [0, {MAX_SEED}], got {text!r}")
    if len(set(seeds)) != len(seeds):
        raise UsageError(f"{flag} names a seed twice: {text!r}")
    if len(seeds) < at_least:
        raise UsageError(f"{flag} must hold at least {at_least} seeds, got {text!r}")
    return seeds


#: Exit statuses.
MISTAKE, INTERRUPTED = 2, 130


def run(main: Callable[[list[str]], int], argv: Sequence[str] | None = None) -> int:
    """``main(argv)``'s status; a ``UserError`` (a mistake, or a problem with the user's input) is one ``error:``
    line and 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        status = main(argv)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return MISTAKE
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's own flush at exit finds no closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
