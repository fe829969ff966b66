"""Exceptions shared by the package."""

from __future__ import annotations


class UserError(ValueError):
    """Bad user input (a path, an id, an option, an audio file).

    The CLI prints it as one line naming the problem, without a traceback.
    """
