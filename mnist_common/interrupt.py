"""Stopping a run on SIGINT or SIGTERM at the next step boundary, never in the middle of a framework's C++ work.

:func:`handling_signals` installs handlers that only set :data:`STOP`; the
training loops look at it between steps, checkpoint and raise
:class:`StopRequested`, and the runner looks at it between runs. A second
Ctrl-C raises ``KeyboardInterrupt`` at once, for the impatient. (Letting the
first Ctrl-C raise ``KeyboardInterrupt`` wherever Python happened to be, as
the default handler does, could leave JAX work in flight while the
interpreter tore down, which crashed it.)
"""

from __future__ import annotations

import contextlib
import signal


class StopRequested(Exception):
    """A signal asked the run to stop; it stopped at a step boundary. ``exit_code`` is 128 + the signal."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = 128 + signum


class _Stop:
    """The stop request: None, or the number of the signal that asked for it."""

    signum: int | None = None

    def request(self, signum: int, frame=None) -> None:
        if self.signum == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signum = signum

    def check(self) -> None:
        """Raise StopRequested if a signal asked to stop."""
        if self.signum is not None:
            raise StopRequested(self.signum)

    def clear(self) -> None:
        self.signum = None


STOP = _Stop()


@contextlib.contextmanager
def handling_signals():
    """SIGINT and SIGTERM set :data:`STOP` while inside; the previous handlers come back after."""
    previous = {sig: signal.signal(sig, STOP.request) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield STOP
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        STOP.clear()
