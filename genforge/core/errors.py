"""User-facing errors.

Every problem a user can fix (bad path, bad value, corrupt file) is raised as a
:class:`GenforgeError` whose message is one line naming the problem and the fix.
The CLI prints that line and exits non-zero; it never shows a traceback for them.
"""

from __future__ import annotations


class GenforgeError(Exception):
    """A problem the user can fix; ``str(err)`` is a one-line message with the fix."""


class DataError(GenforgeError):
    """The input data is missing, empty, corrupt or inconsistent."""


class ConfigError(GenforgeError):
    """A configuration value is invalid (unknown model, bad option, bad number)."""


class RunDirError(GenforgeError):
    """A path that should be a genforge run directory is not one, or is damaged."""


class OutputError(GenforgeError):
    """A file or folder could not be written (full disk, read-only place, bad name, an existing file of
    another kind); the old file, if any, is left as it was."""


class LimitError(GenforgeError):
    """A request would need more memory (or disk) than the set limit; nothing was started."""


class TrainingDiverged(GenforgeError):
    """Training produced NaN/inf losses; the last good checkpoint was kept."""


class GenforgeWarning(UserWarning):
    """Something the user should know that does not stop the command (the CLI prints it as one
    ``warning:`` line)."""


def describe_error(err: BaseException) -> str:
    """An exception as ``Type: message`` on one line (white space folded), to embed in a GenforgeError."""
    return f"{type(err).__name__}: " + " ".join(str(err).split())
