"""Durations and the integer-microsecond time base.

Files and the command line give durations as strings with a unit (``60s``, ``16.67ms``,
``500us``, ``2min``). Internally time is integer microseconds; exact values are kept as
``Fraction`` until the one place where they are rounded (docs/semantics.md: releases to the
nearest microsecond, durations up, relative deadlines down, so "schedulable" stays safe).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from rtgen_opt.limits import MAX_DURATION_S

US_PER_S = 1_000_000

_UNIT_SECONDS = {
    "us": Fraction(1, 10**6),
    "µs": Fraction(1, 10**6),
    "ms": Fraction(1, 10**3),
    "s": Fraction(1),
    "min": Fraction(60),
    "h": Fraction(3600),
}
# ASCII digits only: `\d` would take "١s" (an Arabic-Indic one) for 1 s. The scenario
# schema (model/schema.py) builds its duration pattern from the same text.
DURATION_BODY = r"[ \t]*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)[ \t]*(us|µs|ms|s|min|h)[ \t]*"
_DURATION = re.compile("^" + DURATION_BODY + r"\Z")
MAX_DURATION_CHARS = 40  # a longer text is no duration; refusing it early keeps Fraction() cheap
_MAX_CHARS = MAX_DURATION_CHARS

DURATION_HELP = "a duration with a unit, like '60s', '16.67ms', '500us' or '2min'"
DURATION_RANGE_HELP = f"a duration of at most {MAX_DURATION_S:,} s"


def parse_duration(text: object, positive: bool = False) -> Fraction:
    """Parse a non-negative duration into exact seconds.

    The number ``0`` (or ``0.0``) is accepted without a unit; any other bare number is ambiguous and
    rejected. Durations above ``limits.MAX_DURATION_S`` are refused (time is int64 µs).
    Raises ``ValueError`` with the expectation as message: a negative duration (``-1s``)
    says so ("a positive duration" when ``positive``: the caller refuses 0 too), not that
    a unit is missing.
    """
    if isinstance(text, bool):
        raise ValueError(DURATION_HELP)
    if isinstance(text, (int, float)) and text == 0:  # 0 or 0.0 (JSON: the same number)
        return Fraction(0)
    if not isinstance(text, str):
        raise ValueError(DURATION_HELP)
    match = _DURATION.match(text) if len(text) <= _MAX_CHARS else None
    if not match:
        if len(text) <= _MAX_CHARS and _DURATION.match(text.strip().removeprefix("-")):
            raise ValueError(("a positive" if positive else "a non-negative")
                             + " duration (no minus sign)")
        raise ValueError(DURATION_HELP)
    number, unit = match.groups()
    seconds = Fraction(number) * _UNIT_SECONDS[unit]
    if seconds > MAX_DURATION_S:
        raise ValueError(DURATION_RANGE_HELP)
    return seconds


def to_us_nearest(seconds: Fraction) -> int:
    """Exact seconds -> integer microseconds, rounded half up (used for release times)."""
    return math.floor(seconds * US_PER_S + Fraction(1, 2))


def to_us_down(seconds: Fraction) -> int:
    """Exact seconds -> integer microseconds, rounded down (relative deadlines)."""
    return math.floor(seconds * US_PER_S)


def to_us_up(seconds: Fraction) -> int:
    """Exact seconds -> integer microseconds, rounded up (durations)."""
    return math.ceil(seconds * US_PER_S)


def lcm_fraction(a: Fraction, b: Fraction) -> Fraction:
    """Least common multiple of two positive rationals (for exact hyperperiods)."""
    return Fraction(math.lcm(a.numerator, b.numerator), math.gcd(a.denominator, b.denominator))
