"""Exceptions that carry a one-line, user-facing message.

The command line prints ``BreastlibError`` messages without a traceback; every other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class BreastlibError(Exception):
    """An error caused by the user's input or environment, with a readable message."""


class InputError(BreastlibError, ValueError):
    """A file or array that cannot be used as given.

    Parameters
    ----------
    message
        What is wrong, in one line.
    path
        The offending file, named first in the message when given.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        super().__init__(f"{path}: {message}" if path is not None else message)


class MissingDependencyError(BreastlibError, ImportError):
    """An optional package is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"this feature needs the optional package '{package}': "
            f"pip install 'breastlib[{extra}]'"
        )


def require(module: str, extra: str):
    """Import an optional module or raise :class:`MissingDependencyError`.

    Parameters
    ----------
    module
        Importable module name, e.g. ``"ants"``.
    extra
        The ``breastlib`` extra that installs it, e.g. ``"baselines"``.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(module, extra) from exc
