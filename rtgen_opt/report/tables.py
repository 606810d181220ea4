"""Rendering: tables for people, JSON and CSV for programs.

Every command builds one plain dict (the JSON of docs/files-and-output.md) plus, for the
table and CSV formats, a list of rows; this module turns them into output. Nothing here
computes.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from rtgen_opt.output import csv_cell
from rtgen_opt.report.formats import cell

FORMATS = ("table", "json", "csv")


def to_json(data: dict) -> str:
    """One JSON object; NaN/inf become null (strict JSON)."""
    return json.dumps(_finite(data), indent=2, sort_keys=False)


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def to_csv(columns: Sequence[str], rows: Sequence[Sequence]) -> str:
    """CSV whose text cells a spreadsheet shows as text (``csv_cell``: a name like
    ``=HYPERLINK(...)`` gets a leading ``'``; numbers stay numbers)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([csv_cell(c) for c in columns])
    writer.writerows([csv_cell(_raw(c)) for c in row] for row in rows)
    return out.getvalue()


def records_csv(records: Sequence[dict]) -> str:
    """Records (a dict per row, nested JSON allowed) as CSV of raw data: nested keys
    become dotted columns (``llm.llm.ttft_ms.mean``, as in a sweep's table), in order of
    first appearance; lists become JSON text; a missing value is an empty cell."""
    flat = [flatten(r) for r in records]
    columns = list(dict.fromkeys(k for r in flat for k in r))
    return to_csv(columns, [[r.get(c) for c in columns] for r in flat])


def flatten(data: dict, prefix: str = "") -> dict:
    """Nested dicts -> dotted columns; lists -> JSON text; non-finite floats -> None; an
    empty dict -> one empty column (``check``'s jitter per task when no task has any), so
    the columns do not depend on the values."""
    out = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and not value:
            out[name] = None
        elif isinstance(value, dict):
            out.update(flatten(value, name + "."))
        elif isinstance(value, (list, tuple)):
            out[name] = json.dumps(value, default=str)
        elif isinstance(value, float) and not math.isfinite(value):
            out[name] = None
        elif value is None or isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = str(value)
    return out


def _raw(value):
    """A CSV cell: non-finite numbers empty, like missing ones."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence],
                caption: str | None = None, numeric_from: int = 1, stream=None) -> None:
    """A rich table on ``stream`` (stdout by default); columns from ``numeric_from`` on
    are right-aligned. A header too long for its column wraps, never cut.

    Every text is shown literally: names come from files (a scenario named
    ``[link=https://x]a[/link]`` must not print a hidden link, a task named ``[/x]`` must
    not crash the table), so all of it is escaped for rich's markup."""
    table = Table(title=escape(title), caption=None if caption is None else escape(caption),
                  title_justify="left", caption_justify="left", min_width=len(title))
    for i, column in enumerate(columns):
        longest_word = max(map(len, str(column).split() or [""]))
        table.add_column(escape(str(column)), justify="right" if i >= numeric_from else "left",
                         overflow="fold", min_width=longest_word)
    for row in rows:
        table.add_row(*(escape(fmt(v)) for v in row))
    console = Console(file=stream or sys.stdout, width=max(120, Console().width))
    if not console.is_terminal:  # a log or a file: whole rows, however wide
        wide = console.options.update_width(100_000)
        console.width = max(console.width, Measurement.get(console, wide, table).maximum)
    console.print(table)


fmt = cell  # cell text: the one number format of every table (formats.py)

STDOUT, STDERR, NOWHERE = "stdout", "stderr", None


def emit(fmt_name: str, data: dict, columns: Sequence[str], rows: Sequence[Sequence],
         title: str, caption: str | None = None, numeric_from: int = 1, *,
         records: Sequence[dict] | None = None, to: str | None = STDOUT) -> None:
    """Write ``data`` as JSON, ``records`` as CSV (raw numbers; the table's ``rows`` when
    the command has no records), or ``rows`` as a table — to stdout, to stderr (when
    stdout carries a file: ``--schedule-out -``), or nowhere (``--quiet``)."""
    if to is NOWHERE:
        return
    stream = sys.stderr if to == STDERR else sys.stdout
    if fmt_name == "json":
        stream.write(to_json(data) + "\n")
    elif fmt_name == "csv":
        stream.write(records_csv(records) if records is not None else to_csv(columns, rows))
    else:
        print_table(title, columns, rows, caption, numeric_from, stream)


def markdown_table(title: str, columns: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A Markdown section: a heading and one table (cells formatted as in the terminal)."""
    out = [f"## {md_escape(title)}", "", "| " + " | ".join(map(md_escape, columns)) + " |",
           "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(md_escape(fmt(c)) for c in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


# what makes markup inside a line: emphasis, code, links and images ("![" needs "["),
# raw HTML, table cells, strikethrough ("(" and "#" matter only after "]" or at a line start)
_MD_SPECIAL = set("\\`*_[]<>|~")


def md_escape(text: object) -> str:
    """Text shown literally in Markdown (a table cell, a heading): markup characters
    backslash-escaped, ``&`` as an entity, a line break as a space."""
    out = str(text).replace("&", "&amp;").replace("\r", " ").replace("\n", " ")
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in out)
