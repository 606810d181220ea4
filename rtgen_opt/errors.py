"""The one error type users see: bad input, reported as file, field and expectation."""

from __future__ import annotations


class InputError(Exception):
    """Invalid input. The CLI prints ``str(error)`` and exits with code 2.

    Parameters
    ----------
    source
        Where the input came from: a file path, ``--set``, ``--horizon`` ...
    field
        The offending field, as a path (``tasks[1].fps``); empty for the whole source.
    expected
        What would have been valid, phrased to complete "expected ...".
    got
        The value found, if it helps the reader.
    """

    def __init__(self, source: str, field: str, expected: str, got: object = ...):
        self.source, self.field, self.expected, self.got = source, field, expected, got
        where = f"{source}: {field}" if field else source
        found = "" if got is ... else f", got {got!r}"
        super().__init__(f"{where}: expected {expected}{found}")
