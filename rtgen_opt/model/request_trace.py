"""Request traces: arrival times replayed from production logs (``arrivals: {file:
requests.csv}``), a CSV with a header ``time`` and one duration per row (``0.5s``,
``1250ms``). Bounded by the count of explicit arrival times, not by the scenario file's
size: a trace of thousands of requests does not fit in a page of YAML."""

from __future__ import annotations

import csv
import io
from fractions import Fraction
from pathlib import Path

from rtgen_opt import limits
from rtgen_opt.errors import InputError
from rtgen_opt.safeload import read_limited
from rtgen_opt.units import parse_duration

MAX_TRACE_BYTES = 64 * limits.MAX_ARRIVAL_TIMES  # a time per line


def read_request_trace(path: Path) -> tuple[Fraction, ...]:
    """The sorted arrival times of a request trace (InputError, exit 2, naming the file
    and the line, on anything else)."""
    text = read_limited(path, str(path), "a request trace (CSV)", MAX_TRACE_BYTES)
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip() for c in rows[0]] != ["time"]:
        # the first line is not shown: a scenario (untrusted) names this file, and may name
        # any file the user can read (/etc/passwd, /proc/self/environ)
        raise InputError(str(path), "header", "a single column named time (per-request "
                         "tokens are not supported: give the task's input_tokens)",
                         f"{len(rows[0])} column(s), not time" if rows else "an empty file")
    body = [r for r in rows[1:] if any(c.strip() for c in r)]
    if not body or len(body) > limits.MAX_ARRIVAL_TIMES:
        raise InputError(str(path), "rows", f"1 to {limits.MAX_ARRIVAL_TIMES:,} arrival times",
                         len(body))
    times = []
    for line, row in enumerate(body, start=2):
        if len(row) != 1:
            raise InputError(str(path), f"line {line}", "one duration", ",".join(row))
        try:
            times.append(parse_duration(row[0].strip()))
        except ValueError as exc:
            raise InputError(str(path), f"line {line}, time", str(exc), row[0]) from None
    return tuple(sorted(times))
