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
from rich.table import Table

from rtgen_opt.output import csv_cell

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
    writer.writerows([csv_cell(c) for c in row] for row in rows)
    return out.getvalue()


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence],
                caption: str | None = None, numeric_from: int = 1) -> None:
    """A rich table on stdout; columns from ``numeric_from`` on are right-aligned.

    Every text is shown literally: names come from files (a scenario named
    ``[link=https://x]a[/link]`` must not print a hidden link, a task named ``[/x]`` must
    not crash the table), so all of it is escaped for rich's markup."""
    table = Table(title=escape(title), caption=None if caption is None else escape(caption),
                  title_justify="left", caption_justify="left")
    for i, column in enumerate(columns):
        table.add_column(escape(str(column)), justify="right" if i >= numeric_from else "left")
    for row in rows:
        table.add_row(*(escape(fmt(v)) for v in row))
    Console(file=sys.stdout, width=max(120, Console().width)).print(table)


def fmt(value) -> str:
    """Cell text: compact numbers, '-' for missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"
    return str(value)


def emit(fmt_name: str, data: dict, columns: Sequence[str], rows: Sequence[Sequence],
         title: str, caption: str | None = None, numeric_from: int = 1) -> None:
    """Write ``data`` as JSON, or ``rows`` as CSV or a table, to stdout."""
    if fmt_name == "json":
        sys.stdout.write(to_json(data) + "\n")
    elif fmt_name == "csv":
        sys.stdout.write(to_csv(columns, rows))
    else:
        print_table(title, columns, rows, caption, numeric_from)


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
