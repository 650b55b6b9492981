"""The one kind of error a user is shown as a single line: a mistake of theirs, or a problem with what they gave.

Every such error in the project derives from :class:`UserError` (a setting out of
range, a damaged file, a folder another run holds...): each command prints its
message as ``error: ...`` and exits with status 2, and never a traceback. Bugs
stay ordinary exceptions, with their tracebacks.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake of the user's, or a problem with their input: the message says what and where, in one line."""
