"""The errors users see: bad input (exit 2), reported as file, field and expectation; and a
solver engine that crashed (one line naming the engine and the signal)."""

from __future__ import annotations

MAX_SHOWN = 80  # characters of an offending value echoed in a message


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
        The value found, if it helps the reader. At most ``MAX_SHOWN`` characters of it
        are shown, whatever its size (a billion-laughs YAML value must not be printed).
    """

    def __init__(self, source: str, field: str, expected: str, got: object = ...):
        self.source, self.field, self.expected, self.got = source, field, expected, got
        source, field = printable(str(source), 300), printable(str(field), 160)
        where = f"{source}: {field}" if field else source
        found = "" if got is ... else f", got {short_repr(got)}"
        super().__init__(f"{where}: expected {expected}{found}")


class SolverCrash(RuntimeError):
    """A solver engine died (a signal, or an exit without an answer), twice in a row.

    The message is one line naming the engine and how it ended; the CLI prints it and exits
    with code 70 (an internal failure, not bad input).
    """


class Terminated(SystemExit):
    """The SystemExit of the SIGTERM handler: code a user's policy runs may not swallow it
    (the policy guard turns any other SystemExit into bad input naming the file)."""


def printable(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` on one line, control characters escaped, cut to about ``limit`` chars."""
    if len(text) > 4 * limit:
        text = text[:4 * limit]
    clean = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return clean if len(clean) <= limit else clean[:limit - 1] + "…"


def short_repr(value: object, limit: int = MAX_SHOWN) -> str:
    """``repr(value)`` cut to ``limit`` characters, built lazily: a value made of shared
    references (YAML aliases) can have an exponential repr, so the walk stops as soon as
    ``limit`` characters exist instead of building the whole text first."""
    parts: list[str] = []
    size = 0

    def add(text: str) -> bool:
        nonlocal size
        parts.append(text)
        size += len(text)
        return size <= limit

    def walk(v: object, depth: int) -> bool:
        if depth > 20:
            return add("…")
        if isinstance(v, dict):
            if not add("{"):
                return False
            for i, (k, item) in enumerate(v.items()):
                if (i and not add(", ")) or not walk(k, depth + 1) or not add(": ") \
                        or not walk(item, depth + 1):
                    return False
            return add("}")
        if isinstance(v, (list, tuple)):
            open_, close = ("[", "]") if isinstance(v, list) else ("(", ")")
            if not add(open_):
                return False
            for i, item in enumerate(v):
                if (i and not add(", ")) or not walk(item, depth + 1):
                    return False
            return add(close)
        if isinstance(v, str):
            return add(repr(v[:limit + 1]) if len(v) > limit else repr(v))
        if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 4 * limit:
            return add(f"<an integer of {v.bit_length()} bits>")
        return add(repr(v))

    walk(value, 0)
    return printable("".join(parts), limit)
