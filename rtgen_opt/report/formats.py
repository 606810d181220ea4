"""Number formats for people, in one place (the README's rule): percentages and
milliseconds with one decimal, counts as integers, frame rates with at most two decimals.
Every table formats its cells here; missing values stay None (the table prints '-').

CSV and JSON never go through this module: they carry the numbers themselves."""

from __future__ import annotations

import math


def pct(rate: float | None) -> str | None:
    """A rate (0.123) as a percentage with one decimal ("12.3")."""
    return None if rate is None else f"{100 * rate:.1f}"


def pp(value: float | None) -> str | None:
    """Percentage points with one decimal; a small positive gap is not rounded to 0."""
    if value is None:
        return None
    return "< 0.1" if 0 < value < 0.05 else f"{value:.1f}"


def ms(value: float | None) -> str | None:
    """Milliseconds with one decimal ("7.6")."""
    return None if value is None else f"{value:.1f}"


def ms_unit(value: float | None) -> str:
    """Milliseconds with one decimal and the unit ("16.7 ms"), '-' when missing."""
    return "-" if value is None else f"{value:.1f} ms"


def seconds(value: float) -> str:
    """Seconds as given when round ("60 s", "0.5 s"), else with one decimal ("7.3 s")."""
    return f"{value:g} s" if round(value, 3) == value else f"{value:.1f} s"


def count(value: float | None) -> str | None:
    """A count as an integer; a weighted count keeps its fraction ("2.5")."""
    if value is None:
        return None
    return f"{value:.0f}" if float(value).is_integer() else f"{value:g}"


def fps(value: float | None, unit: bool = True) -> str:
    """A frame rate with at most two decimals ("29.97 FPS", "60 FPS"), '-' when missing."""
    if value is None:
        return "-"
    text = f"{round(value, 2):g}"
    return f"{text} FPS" if unit else text


def factor(value: float) -> str:
    """A scaling factor or a probability: three significant digits ("1.23")."""
    return f"{value:.3g}"


def cell(value) -> str:
    """Any other cell: '-' for missing, counts as integers, other numbers with four
    significant digits, texts as they are."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return f"{value:.0f}"
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(cell, value))
    return str(value)


# ----------------------------------------------------------------------------- metric columns

# Columns named after JSON keys (the sweep's table): the unit is in the name. A share is
# a key ending in one of these, or a key under utilization or placement (task names in
# between are not looked at: a task may be called "separate").
_SHARE_ENDS = ("rate", "probability", "share")
_SHARE_GROUPS = ("utilization", "placement")


def metric(column: str, value) -> str | None:
    """A cell of a column named by a dotted JSON key (``llm.llm.ttft_ms.mean``,
    ``violation_rate``): milliseconds, shares as percentages, percentage points, frame
    rates, seconds and counts by the rule; other values by ``cell``."""
    if value is None or isinstance(value, (bool, str)) or (
            isinstance(value, float) and not math.isfinite(value)):
        return None if value is None or isinstance(value, float) else cell(value)
    kind = metric_kind(column)
    if kind == "ms":
        return ms(value)
    if kind == "share":
        return pct(value)
    if kind == "pp":
        return pp(value)
    if kind == "fps":
        return fps(value, unit=False)
    if kind == "s":
        return f"{value:.1f}"
    return count(value) if float(value).is_integer() else cell(value)


def metric_header(column: str) -> str:
    """The header of a ``metric`` column: a share gets " %" (its cells are percentages)."""
    return f"{column} %" if metric_kind(column) == "share" else column


def metric_kind(column: str) -> str:
    """ms, share, pp, fps, s or plain, from a dotted column name."""
    parts = column.split(".")
    if any(p.endswith("_ms") or p == "ms" for p in parts):
        return "ms"
    if parts[0] in _SHARE_GROUPS or any(w in parts[-1] for w in _SHARE_ENDS):
        return "share"
    if any(w in parts[-1] for w in ("_pp", "pct")) or parts[-1] == "pp":
        return "pp"  # already in percent (gap_pp, gap_pct_of_frames)
    if "fps" in parts[-1]:
        return "fps"
    if parts[-1].endswith("_s"):
        return "s"
    return "plain"
