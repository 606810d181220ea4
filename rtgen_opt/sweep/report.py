"""The sweep report: one self-contained HTML page, no network.

With the ``report`` extra (plotly) the charts are interactive Plotly figures, its
JavaScript embedded as in the other reports (zoom, hover values, legend toggles);
without it, inline SVG and no script. The same charts either way — for each command of
the sweep and each plotted metric:

* one varying axis — a line chart of the metric against it, one line per policy (or
  method); a log scale when the axis spans a factor of 16 or more (prompt lengths);
* two or more — a heatmap over the first two varying axes per policy (and per value of
  the others), the value written in each cell;
* `check` verdicts — a verdict map: yes / no / unknown / failed as colours, over the
  axes, one row per method.

Failed runs leave gaps and are listed at the end. The full table is the CSV/Parquet file.
User text (names, axis values) is HTML-escaped in both: Plotly draws labels as a subset of
HTML and shows the entities as the text they stand for.
"""

from __future__ import annotations

import html
import itertools
import math
from collections import defaultdict

from rtgen_opt.report.html import figure_div, optional_plotly
from rtgen_opt.sweep.run import ID_COLUMNS, plot_columns
from rtgen_opt.sweep.spec import SweepSpec

PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
           "#9c755f"]  # Tableau 10: one colour per policy
WIDTH, HEIGHT, MARGIN = 560, 300, (48, 16, 40, 64)  # top, right, bottom, left
VERDICT_COLOURS = {"yes": "#59a14f", "no": "#e15759", "unknown": "#bab0ac", "failed": "#333"}
MAX_PANELS = 36  # heatmaps per metric; beyond it the page points to the table


def html_page(spec: SweepSpec, rows: list[dict], table_path: str | None = None,
              interrupted: bool = False) -> str:
    """The whole page for the rows of a sweep (those computed so far if interrupted):
    Plotly charts when plotly is installed, SVG otherwise."""
    plotly = optional_plotly()
    charts = SvgCharts() if plotly is None else PlotlyCharts(plotly[0])
    script = "" if plotly is None else f'<script type="text/javascript">{plotly[1]()}</script>'
    sections = []
    for command in spec.commands:
        mine = [r for r in rows if r["command"] == command.name]
        if mine:
            sections.append(_command_section(spec, command.name, mine, charts))
    errors = [r for r in rows if r.get("error")]
    note = (f"<p>Full table: <code>{html.escape(table_path)}</code> (one row per point × "
            "policy or method; every metric a column).</p>" if table_path else "")
    if interrupted:
        note += "<p><b>Interrupted:</b> only the runs finished so far are shown.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Sweep {html.escape(spec.name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1200px; }}
h2 {{ border-bottom: 1px solid #ccc; padding-bottom: .2em; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 1em; }}
figure {{ margin: 0; }} figcaption {{ font-size: 90%; font-weight: 600; }}
svg text {{ font-size: 11px; fill: #333; }}
table {{ border-collapse: collapse; font-size: 90%; }}
td, th {{ border: 1px solid #ddd; padding: 2px 6px; text-align: left; }}
</style>{script}</head><body>
<h1>Sweep {html.escape(spec.name)}</h1>
<p>{html.escape(spec.description)}</p>
<p>{spec.num_points} points: {html.escape(_axes_text(spec))}; ran
{html.escape(", ".join(c.name for c in spec.commands))}.{charts.hint}</p>
{note}
{"".join(sections)}
{_errors(errors)}
</body></html>
"""


def _axes_text(spec: SweepSpec) -> str:
    parts = [f"scenario {', '.join(spec.scenarios)}"]
    parts += [f"{k} ∈ {{{', '.join(str(step[i]) for step in axis.values)}}}"
              for axis in spec.axes for i, k in enumerate(axis.keys)]
    return "; ".join(parts)


def _command_section(spec: SweepSpec, command: str, rows: list[dict], draw) -> str:
    """``draw``: SvgCharts or PlotlyCharts."""
    columns = list(dict.fromkeys(c for r in rows for c in r))
    axes = varying_axes(spec, rows)
    charts = []
    for metric in plot_columns(spec, columns):
        if metric == "verdict":
            charts.append(draw.verdicts(rows, axes))
        elif axes and _numeric(rows, metric):
            charts.append(draw.line(rows, axes[0], metric) if len(axes) == 1 else
                          draw.heatmaps(rows, axes, metric))
    body = "".join(charts) or "<p>Nothing to plot: no axis varies or no numeric metric.</p>"
    return f"<h2>{html.escape(command)}</h2><div class='charts'>{body}</div>"


def varying_axes(spec: SweepSpec, rows: list[dict]) -> list[str]:
    """The scenario column and the axis columns that take more than one value."""
    keys = [ID_COLUMNS[1], *spec.axis_keys]
    return [k for k in keys if len({_key(r.get(k)) for r in rows}) > 1]


def _key(value) -> str:
    return repr(value)


def _numeric(rows: list[dict], metric: str) -> bool:
    values = [r.get(metric) for r in rows if r.get(metric) is not None]
    return bool(values) and all(isinstance(v, (int, float)) for v in values)


def _series(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["policy"] for r in rows))


def _scaled(metric: str, value):
    """Rates are shown in percent."""
    if value is None or not isinstance(value, (int, float)):
        return None
    return 100 * value if metric.endswith("rate") else float(value)


def _label(metric: str) -> str:
    return f"{metric} (%)" if metric.endswith("rate") else metric


# ----------------------------------------------------------------------------- lines


def _line_chart(rows: list[dict], axis: str, metric: str) -> str:
    xs = list(dict.fromkeys(r[axis] for r in rows))
    position = _x_scale(xs)
    series = _series(rows)
    points = defaultdict(list)
    for r in rows:
        y = _scaled(metric, r.get(metric))
        if y is not None:
            points[r["policy"]].append((position[_key(r[axis])], y))
    values = [y for pts in points.values() for _, y in pts]
    if not values:
        return ""
    low, high = min(0.0, min(values)), max(values)
    ticks = _nice_ticks(low, high)
    top, right, bottom, left = MARGIN
    plot_h = HEIGHT - top - bottom

    def y_of(v: float) -> float:
        return top + plot_h * (1 - (v - ticks[0]) / ((ticks[-1] - ticks[0]) or 1))

    parts = [f'<line x1="{left}" y1="{y_of(t):.1f}" x2="{WIDTH - right}" y2="{y_of(t):.1f}" '
             f'stroke="#eee"/><text x="{left - 4}" y="{y_of(t) + 4:.1f}" '
             f'text-anchor="end">{_num(t)}</text>' for t in ticks]
    parts += [f'<text x="{position[_key(x)]:.1f}" y="{HEIGHT - bottom + 14}" '
              f'text-anchor="middle">{html.escape(str(x))}</text>' for x in xs]
    parts.append(f'<text x="{(left + WIDTH - right) / 2}" y="{HEIGHT - 6}" '
                 f'text-anchor="middle">{html.escape(axis)}</text>')
    for i, name in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        pts = sorted(points.get(name, []))
        path = " ".join(f"{x:.1f},{y_of(y):.1f}" for x, y in pts)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                     f'stroke-width="2"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y_of(y):.1f}" r="3" fill="{colour}">'
                  f"<title>{html.escape(name)}: {_num(y)}</title></circle>" for x, y in pts]
        parts.append(f'<text x="{left + 8 + 96 * i}" y="{top - 10}" fill="{colour}" '
                     f'style="fill:{colour}">■ {html.escape(name)}</text>')
    return _figure(_label(metric), WIDTH, HEIGHT, "".join(parts))


def _x_scale(xs: list) -> dict[str, float]:
    """Axis value -> x pixel: by value (log when it spans 16x or more), else evenly."""
    top, right, bottom, left = MARGIN
    span = WIDTH - left - right - 24
    if _numbers(xs) and len(xs) > 1 and min(xs) != max(xs):
        f = math.log if _log_scale(xs) else float
        lo, hi = f(min(xs)), f(max(xs))
        return {_key(x): left + 12 + span * (f(x) - lo) / (hi - lo) for x in xs}
    return {_key(x): left + 12 + span * (i / max(1, len(xs) - 1)) for i, x in enumerate(xs)}


def _numbers(xs: list) -> bool:
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)


def _log_scale(xs: list) -> bool:
    """Positive numbers spanning a factor of 16 or more (prompt lengths)."""
    return _numbers(xs) and min(xs) > 0 and max(xs) / min(xs) >= 16


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if step * m >= raw)
    start = math.floor(low / step) * step
    ticks = [start]
    while ticks[-1] < high - 1e-12:
        ticks.append(ticks[-1] + step)
    return ticks


def _num(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _figure(title: str, width: int, height: int, body: str) -> str:
    return (f"<figure><figcaption>{html.escape(title)}</figcaption>"
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">{body}</svg></figure>')


# ----------------------------------------------------------------------------- heatmaps


def _heatmaps(rows: list[dict], axes: list[str], metric: str) -> str:
    """One heatmap over the first two varying axes per policy and value of the others."""
    x_axis, y_axis, others = axes[0], axes[1], axes[2:]
    values = [_scaled(metric, r.get(metric)) for r in rows]
    values = [v for v in values if v is not None]
    if not values:
        return ""
    low, high = min(values), max(values)
    panels = []
    groups = defaultdict(list)
    for r in rows:
        groups[(r["policy"], *(_key(r.get(k)) for k in others))].append(r)
    for (policy, *_), group in itertools.islice(groups.items(), MAX_PANELS):
        fixed = ", ".join(f"{k}={group[0].get(k)}" for k in others)
        cells = {(_key(r[x_axis]), _key(r[y_axis])): _scaled(metric, r.get(metric))
                 for r in group}
        panels.append(_grid(f"{_label(metric)}: {policy}" + (f" ({fixed})" if fixed else ""),
                            group, x_axis, y_axis, lambda c, cells=cells: cells.get(c),
                            lambda v: _heat_colour(v, low, high), _num))
    if len(groups) > MAX_PANELS:
        panels.append(f"<p>{len(groups) - MAX_PANELS} more panels of {html.escape(metric)}: "
                      "see the table.</p>")
    return "".join(panels)


def _grid(title, rows, x_axis, y_axis, value_at, colour_of, text_of) -> str:
    xs = list(dict.fromkeys(r[x_axis] for r in rows))
    ys = list(dict.fromkeys(r[y_axis] for r in rows))
    cell_w, cell_h, left, top = max(36, min(72, 480 // max(1, len(xs)))), 22, 110, 10
    caption = f"{x_axis} →, {y_axis} ↓"
    width = max(left + cell_w * len(xs) + 10, 8 + 7 * len(caption))
    height = top + cell_h * len(ys) + 40
    parts = []
    for j, y in enumerate(ys):
        parts.append(f'<text x="{left - 4}" y="{top + cell_h * j + 15}" text-anchor="end">'
                     f"{html.escape(str(y))}</text>")
        for i, x in enumerate(xs):
            value = value_at((_key(x), _key(y)))
            fill = colour_of(value)
            text = "" if value is None else text_of(value)
            parts.append(f'<rect x="{left + cell_w * i}" y="{top + cell_h * j}" '
                         f'width="{cell_w - 1}" height="{cell_h - 1}" fill="{fill}" stroke="#ddd">'
                         f"<title>{html.escape(f'{x_axis}={x}, {y_axis}={y}: {text}')}"
                         f'</title></rect><text x="{left + cell_w * i + cell_w / 2}" '
                         f'y="{top + cell_h * j + 15}" text-anchor="middle">'
                         f"{html.escape(text)}</text>")
    parts += [f'<text x="{left + cell_w * i + cell_w / 2}" y="{top + cell_h * len(ys) + 14}" '
              f'text-anchor="middle">{html.escape(str(x))}</text>' for i, x in enumerate(xs)]
    parts.append(f'<text x="4" y="{height - 6}">{html.escape(caption)}</text>')
    return _figure(title, width, height, "".join(parts))


def _heat_colour(value, low: float, high: float) -> str:
    """White (low) to dark orange (high); grey for a missing cell."""
    if value is None:
        return "#f4f4f4"
    share = 0.0 if high <= low else (value - low) / (high - low)
    red, green, blue = 255 - int(18 * share), 255 - int(150 * share), 255 - int(230 * share)
    return f"#{red:02x}{green:02x}{blue:02x}"


# ----------------------------------------------------------------------------- verdicts


def _verdict(r: dict) -> str:
    return "failed" if r.get("error") else (r.get("verdict") or "unknown")


def _verdict_legend() -> str:
    return " ".join(f'<span style="color:{c}">■</span> {v}' for v, c in VERDICT_COLOURS.items())


def _verdict_map(rows: list[dict], axes: list[str]) -> str:
    """check: verdict per point as a colour; one row per method over one axis, or a grid
    per method over two."""
    verdict, legend = _verdict, _verdict_legend()
    if not axes:
        return ""
    if len(axes) == 1:
        cells = {(_key(r[axes[0]]), _key(r["policy"])): verdict(r) for r in rows}
        chart = _grid("verdicts", rows, axes[0], "policy", lambda c: cells.get(c),
                      lambda v: VERDICT_COLOURS.get(v, "#fff"), str)
        return f"<div>{chart}<p>{legend}</p></div>"
    charts = []
    for policy in _series(rows):
        mine = [r for r in rows if r["policy"] == policy]
        cells = {(_key(r[axes[0]]), _key(r[axes[1]])): verdict(r) for r in mine}
        charts.append(_grid(f"verdicts: {policy}", mine, axes[0], axes[1],
                            lambda c, cells=cells: cells.get(c),
                            lambda v: VERDICT_COLOURS.get(v, "#fff"), str))
    return f"<div>{''.join(charts)}<p>{legend}</p></div>"


def _errors(rows: list[dict]) -> str:
    if not rows:
        return ""
    seen = list(dict.fromkeys((r["point"], r["command"], r["error"]) for r in rows))
    items = "".join(f"<li>point {p} ({html.escape(c)}): {html.escape(e)}</li>"
                    for p, c, e in seen)
    return f"<h2>Failed runs ({len(seen)})</h2><ul>{items}</ul>"


# ----------------------------------------------------------------------------- renderers


class SvgCharts:
    """The charts as inline SVG (no script): without the ``report`` extra."""

    hint = ""
    line = staticmethod(_line_chart)
    heatmaps = staticmethod(_heatmaps)
    verdicts = staticmethod(_verdict_map)


HEAT_SCALE = [[0.0, _heat_colour(0.0, 0.0, 1.0)], [1.0, _heat_colour(1.0, 0.0, 1.0)]]


class PlotlyCharts:
    """The same charts as Plotly figures. Every text that may come from the user goes in
    HTML-escaped (``_esc``), as data — never into a template, where ``%{...}`` would be
    read as a field (nor as a line's ``meta``: Plotly then reads its name as one)."""

    hint = " Charts: drag to zoom, double-click to reset, hover for values."

    def __init__(self, go):
        self.go = go
        self.ids = itertools.count()  # div ids in page order: the same page every run

    def _figure(self, title: str, fig, width: int, height: int) -> str:
        fig.update_layout(template="none", plot_bgcolor="white", font={"size": 11},
                          margin={"l": 10, "r": 10, "t": 30, "b": 10})
        fig.update_xaxes(automargin=True, gridcolor="#eee")
        fig.update_yaxes(automargin=True, gridcolor="#eee")
        div = figure_div(fig, f"sweep-figure-{next(self.ids)}", f"{width}px", f"{height}px")
        return f"<figure><figcaption>{html.escape(title)}</figcaption>{div}</figure>"

    def line(self, rows: list[dict], axis: str, metric: str) -> str:
        xs = list(dict.fromkeys(r[axis] for r in rows))
        numeric = _numbers(xs)
        order = {_key(x): i for i, x in enumerate(sorted(xs) if numeric else xs)}
        fig, drawn = self.go.Figure(), False
        for i, name in enumerate(_series(rows)):
            points = sorted(((order[_key(r[axis])], r[axis], _scaled(metric, r.get(metric)))
                             for r in rows if r["policy"] == name), key=lambda p: p[0])
            points = [(x, y) for _, x, y in points if y is not None]
            drawn |= bool(points)
            fig.add_trace(self.go.Scatter(
                x=[x if numeric else _esc(x) for x, _ in points], y=[y for _, y in points],
                mode="lines+markers", name=_esc(name), customdata=[_esc(axis)] * len(points),
                line={"color": PALETTE[i % len(PALETTE)], "width": 2},
                hovertemplate="%{fullData.name}<br>%{customdata} = %{x}<br>%{y:.3g}"
                              "<extra></extra>"))
        if not drawn:
            return ""
        if numeric:  # a tick at each value of the axis, as in the SVG
            fig.update_xaxes(type="log" if _log_scale(xs) else "linear", tickvals=xs,
                             ticktext=[str(x) for x in xs])
        else:
            fig.update_xaxes(type="category", categoryorder="array",
                             categoryarray=[_esc(x) for x in xs])
        fig.update_xaxes(title_text=_esc(axis))
        fig.update_yaxes(title_text=_esc(_label(metric)), rangemode="tozero")
        fig.update_layout(legend={"orientation": "h", "y": -0.25, "yanchor": "top"})
        return self._figure(_label(metric), fig, WIDTH, HEIGHT + 60)

    def heatmaps(self, rows: list[dict], axes: list[str], metric: str) -> str:
        """One heatmap over the first two varying axes per policy and value of the
        others, on one colour scale."""
        x_axis, y_axis, others = axes[0], axes[1], axes[2:]
        values = [v for v in (_scaled(metric, r.get(metric)) for r in rows) if v is not None]
        if not values:
            return ""
        style = {"colorscale": HEAT_SCALE, "zmin": min(values), "zmax": max(values),
                 "colorbar": {"thickness": 10}}
        groups = defaultdict(list)
        for r in rows:
            groups[(r["policy"], *(_key(r.get(k)) for k in others))].append(r)
        panels = []
        for (policy, *_), group in itertools.islice(groups.items(), MAX_PANELS):
            fixed = ", ".join(f"{k}={group[0].get(k)}" for k in others)
            cells = {(_key(r[x_axis]), _key(r[y_axis])): _scaled(metric, r.get(metric))
                     for r in group}
            title = f"{_label(metric)}: {policy}" + (f" ({fixed})" if fixed else "")
            panels.append(self._grid(title, group, x_axis, y_axis, cells, float, _num, style))
        if len(groups) > MAX_PANELS:
            panels.append(f"<p>{len(groups) - MAX_PANELS} more panels of "
                          f"{html.escape(metric)}: see the table.</p>")
        return "".join(panels)

    def verdicts(self, rows: list[dict], axes: list[str]) -> str:
        """check: a verdict per point as a colour (a step colour scale over their codes)."""
        if not axes:
            return ""
        names = list(VERDICT_COLOURS)
        steps = [[edge, VERDICT_COLOURS[v]] for i, v in enumerate(names)
                 for edge in (i / len(names), (i + 1) / len(names))]
        style = {"colorscale": steps, "zmin": -0.5, "zmax": len(names) - 0.5,
                 "showscale": False}
        code = {v: i for i, v in enumerate(names)}.get  # another text: a blank cell
        if len(axes) == 1:
            cells = {(_key(r[axes[0]]), _key(r["policy"])): _verdict(r) for r in rows}
            charts = [self._grid("verdicts", rows, axes[0], "policy", cells, code, str, style)]
        else:
            charts = []
            for policy in _series(rows):
                mine = [r for r in rows if r["policy"] == policy]
                cells = {(_key(r[axes[0]]), _key(r[axes[1]])): _verdict(r) for r in mine}
                charts.append(self._grid(f"verdicts: {policy}", mine, axes[0], axes[1], cells,
                                         code, str, style))
        return f"<div>{''.join(charts)}<p>{_verdict_legend()}</p></div>"

    def _grid(self, title, rows, x_axis, y_axis, cells, z_of, text_of, style) -> str:
        """A heatmap of ``cells`` ((x key, y key) -> value; missing cells left blank)."""
        xs = list(dict.fromkeys(r[x_axis] for r in rows))
        ys = list(dict.fromkeys(r[y_axis] for r in rows))
        grid = [[cells.get((_key(x), _key(y))) for x in xs] for y in ys]
        fig = self.go.Figure(self.go.Heatmap(
            z=[[None if c is None else z_of(c) for c in row] for row in grid],
            text=[["" if c is None else _esc(text_of(c)) for c in row] for row in grid],
            x=[_esc(x) for x in xs], y=[_esc(y) for y in ys], texttemplate="%{text}",
            xgap=1, ygap=1, meta=[_esc(x_axis), _esc(y_axis)],
            hovertemplate="%{meta[0]} = %{x}<br>%{meta[1]} = %{y}<br>%{text}<extra></extra>",
            **style))
        fig.update_xaxes(type="category", title_text=_esc(x_axis), showgrid=False)
        fig.update_yaxes(type="category", title_text=_esc(y_axis), autorange="reversed",
                         showgrid=False)
        width = max(360, 200 + 72 * len(xs))
        return self._figure(title, fig, width, 150 + 30 * len(ys))


def _esc(value) -> str:
    """Text for Plotly: it reads tags in labels and decodes only a few entities (&amp;,
    &lt;, &gt; but not &quot;), so quotes stay as they are."""
    return html.escape(str(value), quote=False)
