"""The interactive HTML report of `simulate`, `solve` and `gap` (``--report FILE.html``).

One self-contained page: Plotly's JavaScript is embedded (it works offline, no CDN), the
figures are Plotly charts. Why Plotly: it zooms and pans every axis out of the box (a 60 s
schedule of 20,000 segments can be read down to one frame), shows hover details, draws
legends, axes and ticks with no hand layout, and ships its whole JavaScript bundle inside
the Python wheel — so the page needs no network. (Hand-made SVG, which this replaces,
had none of that; Bokeh would do too but needs its own server or CDN resources for
the same interactivity; Altair/Vega-Lite gets slow beyond a few thousand marks.)

What the page shows:

* the command's summary tables;
* per schedule, a Gantt chart with one lane per backend instance (each task a colour,
  aborted work dark grey, a row of deadline misses at the top; hover a bar's middle for
  task, job, segment, stage, start, end, deadline) and, under it on the same time axis,
  the utilization of each backend over time — drag to zoom, double-click for the whole
  run;
* the violation rate per task and schedule, with the values on the bars;
* the trade-off between frame violations and the LLM's TTFT: the Pareto front (`gap`:
  minimum violations under a TTFT cap, unproven points with their lower bound) and the
  policies as labelled points.

Needs the ``report`` extra (``pip install 'rtgen-opt[report]'``, i.e. plotly).
"""

from __future__ import annotations

import html

import numpy as np

from rtgen_opt.errors import InputError
from rtgen_opt.model.schedule import Schedule
from rtgen_opt.model.taskset import NO_DEADLINE, STAGE_NAMES, TaskSet

# Okabe-Ito colours, without the vermillion (no red anywhere), dark grey kept for aborted
# work; a missed deadline is a cross in its task's colour on the "misses" row.
TASK_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#F0E442",
                "#8C564B", "#17BECF", "#BCBD22", "#7F7F7F"]
ABORTED_COLOUR = "#3b3b3b"
LANE_HALF = 0.38  # half the height of a bar, in lanes
UTIL_BINS = 3000  # at most; bins are at least 1 ms
DEFAULT_WINDOW_US = 1_000_000  # the Gantt charts open on the first second; zoom out for all
BACKEND_DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
CONFIG = {"displaylogo": False, "scrollZoom": True, "responsive": True,
          "toImageButtonOptions": {"format": "png", "scale": 2}}


def _plotly():
    try:
        import plotly.graph_objects as go
        from plotly.offline import get_plotlyjs
        from plotly.subplots import make_subplots
    except ImportError:
        raise InputError("--report", "", "the 'report' extra for an HTML report (pip install "
                         "'rtgen-opt[report]'), or a FILE.md report") from None
    return go, make_subplots, get_plotlyjs


def optional_plotly():
    """(plotly.graph_objects, get_plotlyjs), or None without the ``report`` extra: for a
    page that has a fallback (the sweep report draws SVG then)."""
    try:
        import plotly.graph_objects as go
        from plotly.offline import get_plotlyjs
    except ImportError:
        return None
    return go, get_plotlyjs


def plotly_text(value) -> str:
    """User text for a Plotly label, legend or hover: Plotly reads tags in them and decodes
    only &amp;, &lt; and &gt;, so those are escaped and quotes left as they are. Never put
    user text in a hover template itself: ``%{...}`` there is substituted."""
    return html.escape(str(value), quote=False)


def figure_div(fig, div_id: str, width: str = "100%", height: str = "100%") -> str:
    """One figure as a div and its script, for a page that embeds Plotly's JavaScript
    once; a fixed ``div_id`` keeps the page the same on every run."""
    return fig.to_html(full_html=False, include_plotlyjs=False, config=CONFIG,
                       div_id=div_id, default_width=width, default_height=height)


def render(kind: str, ts: TaskSet, data: dict, schedules: dict[str, Schedule | None],
           tables: list[tuple[str, list[str], list[list]]],
           window_us: tuple[int, int] | None = None) -> str:
    """The whole page for command ``kind`` ("simulate", "solve" or "gap")."""
    go, make_subplots, get_plotlyjs = _plotly()
    end_us = ts.horizon_us + (getattr(ts, "drain_us", 0) or 0)
    window = window_us or (0, min(end_us, DEFAULT_WINDOW_US))
    figures = []
    for name, schedule in schedules.items():
        if schedule is not None:
            figures.append((f"Schedule: {name}",
                            gantt(go, make_subplots, ts, schedule, name, window, end_us)))
    rates = violation_rates(go, ts, _rate_groups(kind, data))
    if rates is not None:
        figures.append(("Violation rate per task", rates))
    cdf = sample_distributions(go, data.get("sample_values") or {})
    if cdf is not None:
        figures.append(("Sampled realizations: violations per run (CDF per policy)", cdf))
    front = tradeoff(go, kind, data)
    if front is not None:
        figures.append(("Frame violations against the LLM's TTFT", front))
    parts = [_head(kind, ts, data)]
    parts += [_table_html(title, columns, rows) for title, columns, rows in tables]
    for i, (title, fig) in enumerate(figures):
        parts.append(f'<h2 id="section-{i}">{html.escape(title)}</h2>')
        parts.append(figure_div(fig, f"figure-{i}"))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f"<title>rtgen-opt {kind}: {html.escape(ts.scenario)}</title>\n"
            f"<style>{STYLE}</style>\n"
            f'<script type="text/javascript">{get_plotlyjs()}</script>\n'
            f"</head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1250px;
padding:0 1em;color:#222}h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}td:first-child,th:first-child{text-align:left}th{background:#f4f4f4}
caption{text-align:left;font-weight:600;padding:4px 0}.note{color:#555;max-width:60em}
.interrupted{color:#a00;font-weight:600}"""


def _head(kind: str, ts: TaskSet, data: dict) -> str:
    drain = getattr(ts, "drain_us", 0) or 0
    length = f"{ts.horizon_us / 1e6:g} s" + (f" + {drain / 1e6:.3g} s drain" if drain else "")
    what = {"simulate": "Policies simulated", "solve": "Solver result",
            "gap": "Optimality gap"}[kind]
    out = [f"<h1>{what}: {html.escape(ts.scenario)}, {length}</h1>",
           f'<p class="note">{ts.num_jobs} jobs, granularity {html.escape(ts.granularity)}, '
           f"on_miss {html.escape(ts.on_miss)}, preemption {html.escape(ts.preemption)}. "
           "Charts: drag to zoom, double-click to see everything, hover for details; the "
           "legend hides and shows a series.</p>"]
    if data.get("interrupted"):
        out.append('<p class="interrupted">Interrupted: the best answer so far.</p>')
    return "\n".join(out)


def _table_html(title: str, columns: list[str], rows: list[list]) -> str:
    from rtgen_opt.report.tables import fmt

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(fmt(c)) for c in row) + "</tr>" for row in rows)
    return (f"<table><caption>{html.escape(title)}</caption><tr>{head}</tr>{body}</table>")


def _cell(text: str) -> str:
    """Numbers (and ranges, counts like 0/12) to the right, words to the left."""
    numeric = text.replace("…", "").replace("/", "").replace(".", "").replace("-", "")
    align = "right" if numeric.isdigit() or text == "-" else "left"
    return f'<td style="text-align:{align}">{html.escape(text)}</td>'


# ----------------------------------------------------------------------------- Gantt


def lanes_of(ts: TaskSet) -> list[tuple[int, int, str]]:
    """(backend, instance, label) per lane, top to bottom."""
    return [(b, k, ts.backends[b] + (f" #{k}" if n > 1 else ""))
            for b, n in enumerate(ts.instances) for k in range(n)]


def missed_jobs(ts: TaskSet, schedule: Schedule) -> np.ndarray:
    """Frame jobs that did not complete by their deadline (dropped or late)."""
    last_seg = ts.job_seg_start[1:] - 1
    done = schedule.done
    finish = np.full(ts.num_segments, -1, dtype=np.int64)
    finish[schedule.seg[done]] = schedule.end_us[done]
    end = finish[last_seg]
    firm = ts.job_deadline_us != NO_DEADLINE
    return np.flatnonzero(firm & ((end < 0) | (end > ts.job_deadline_us)))


def gantt(go, make_subplots, ts: TaskSet, schedule: Schedule, name: str,
          window: tuple[int, int], end_us: int):
    """Lanes of bars (one filled path per task: cheap to draw at any size), invisible
    hover points at the bars' middles, misses on the top row; utilization below."""
    lanes = lanes_of(ts)
    lane_of = {(b, k): i for i, (b, k, _) in enumerate(lanes)}
    miss_row = len(lanes)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.74, 0.26],
                        vertical_spacing=0.06)
    job = ts.seg_job[schedule.seg]
    task = ts.job_task[job]
    inst = np.maximum(schedule.instance, 0)
    y = np.array([lane_of.get((int(b), int(k)), 0) for b, k in zip(schedule.backend, inst)],
                 dtype=float)
    start_ms, end_ms = schedule.start_us / 1000, schedule.end_us / 1000
    for t, info in enumerate(ts.tasks):
        rows = np.flatnonzero((task == t) & schedule.done)
        if not len(rows):
            continue
        colour = TASK_COLOURS[t % len(TASK_COLOURS)]
        fig.add_trace(_bars(go, start_ms[rows], end_ms[rows], y[rows], colour, f"task-{t}",
                            plotly_text(f"task {info.name}")), row=1, col=1)
        fig.add_trace(_hover_points(go, ts, schedule, rows, y, colour, f"task-{t}"), row=1,
                      col=1)
    aborted = np.flatnonzero(schedule.aborted)
    if len(aborted):
        fig.add_trace(_bars(go, start_ms[aborted], end_ms[aborted], y[aborted],
                            ABORTED_COLOUR, "aborted", "aborted work (wasted)"), row=1, col=1)
        fig.add_trace(_hover_points(go, ts, schedule, aborted, y, ABORTED_COLOUR, "aborted"),
                      row=1, col=1)
    missed = missed_jobs(ts, schedule)
    missed_tasks = sorted(set(ts.job_task[missed].tolist()))
    for k, t in enumerate(missed_tasks):  # one row offset per task: equal deadlines stay apart
        jobs = missed[ts.job_task[missed] == t]
        offset = (k - (len(missed_tasks) - 1) / 2) * min(0.25, 0.7 / len(missed_tasks))
        name = ts.tasks[t].name
        fig.add_trace(go.Scatter(
            x=ts.job_deadline_us[jobs] / 1000, y=np.full(len(jobs), miss_row + offset),
            mode="markers", marker={"symbol": "x-thin", "size": 9,
                                    "line": {"width": 2.5,
                                             "color": TASK_COLOURS[t % len(TASK_COLOURS)]}},
            name=plotly_text(f"{name}: deadline missed ({len(jobs)})"),
            legendgroup=f"miss-{t}", text=[plotly_text(name)] * len(jobs),
            customdata=np.stack([jobs, ts.job_release_us[jobs] / 1000], axis=1),
            hovertemplate="missed: %{text} job %{customdata[0]}<br>released "
            "%{customdata[1]:.3f} ms<br>deadline %{x:.3f} ms<extra></extra>"), row=1, col=1)
    for trace in utilization_traces(go, ts, schedule, end_us):
        fig.add_trace(trace, row=2, col=1)
    labels = [plotly_text(label) for _, _, label in lanes] + ["misses"]
    fig.update_yaxes(tickvals=list(range(len(labels))), ticktext=labels,
                     range=[len(labels) - 0.5, -0.5], autorange=False, fixedrange=True,
                     showgrid=False, zeroline=False, row=1, col=1)
    fig.update_yaxes(title_text="busy %", range=[0, 105], fixedrange=True, row=2, col=1)
    fig.update_xaxes(range=[window[0] / 1000, window[1] / 1000], showticklabels=True,
                     nticks=14, showgrid=True, gridcolor="#eeeeee")
    fig.update_xaxes(title_text="time (ms)", row=2, col=1)
    if getattr(ts, "drain_us", 0):
        for row in (1, 2):
            fig.add_vline(x=ts.horizon_us / 1000, line={"dash": "dot", "color": "#888"},
                          row=row, col=1)
        fig.add_annotation(x=ts.horizon_us / 1000, y=1.0, yref="paper", text="horizon",
                           showarrow=False, xanchor="left", font={"size": 10})
    fig.update_layout(height=200 + 46 * len(labels) + 150, margin={"l": 70, "r": 20,
                                                                   "t": 80, "b": 40},
                      hovermode="closest", hoverdistance=-1, dragmode="zoom",
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0,
                              "bgcolor": "rgba(255,255,255,0.8)"},
                      plot_bgcolor="white")
    return fig


def _bars(go, start, end, lane, colour, group, label):
    """Rectangles as one closed path with gaps (fill 'toself' closes each piece)."""
    n = len(start)
    x = np.empty(n * 6, dtype=np.float32)  # drawing only: float32 halves the page
    yv = np.empty(n * 6, dtype=np.float32)
    x[0::6], x[1::6], x[2::6], x[3::6], x[4::6] = start, end, end, start, start
    yv[0::6] = yv[1::6] = lane - LANE_HALF
    yv[2::6] = yv[3::6] = lane + LANE_HALF
    yv[4::6] = lane - LANE_HALF
    x[5::6] = np.nan
    yv[5::6] = np.nan
    return go.Scatter(x=x, y=yv, mode="lines", fill="toself", fillcolor=colour,
                      line={"width": 0.5, "color": colour}, name=label, legendgroup=group,
                      hoverinfo="skip", connectgaps=False)


def _hover_points(go, ts, schedule, rows, lane, colour, group):
    seg = schedule.seg[rows]
    job = ts.seg_job[seg]
    index = seg - ts.job_seg_start[job]
    deadline = ts.job_deadline_us[job]
    custom = np.stack([job, index, schedule.start_us[rows] / 1000,
                       schedule.end_us[rows] / 1000,
                       np.where(deadline == NO_DEADLINE, np.nan, deadline / 1000)], axis=1)
    names = [t.name for t in ts.tasks]
    stage = [STAGE_NAMES[s] for s in ts.seg_stage[seg]] if hasattr(ts, "seg_stage") else None
    text = [plotly_text(f"{names[ts.job_task[j]]} {st}" if stage else names[ts.job_task[j]])
            for j, st in zip(job.tolist(), stage or [""] * len(job))]
    aborted = " (aborted)" if group == "aborted" else ""
    cls = go.Scattergl if len(rows) > 4000 else go.Scatter
    return cls(x=(schedule.start_us[rows] + schedule.end_us[rows]) / 2000, y=lane[rows],
               mode="markers", marker={"size": 6, "color": colour, "opacity": 0.0},
               showlegend=False, legendgroup=group, text=text, customdata=custom,
               hovertemplate="%{text}" + aborted + "<br>job %{customdata[0]}, segment "
               "%{customdata[1]}<br>%{customdata[2]:.3f} to %{customdata[3]:.3f} ms<br>"
               "deadline %{customdata[4]:.3f} ms<extra></extra>")


def utilization_traces(go, ts: TaskSet, schedule: Schedule, end_us: int) -> list:
    """Busy share of each backend (all its instances) per time bin, aborted work
    included (it held the backend)."""
    edges = np.linspace(0, max(1, end_us), min(UTIL_BINS, max(2, end_us // 1000)) + 1)
    traces = []
    for b, name in enumerate(ts.backends):
        rows = schedule.backend == b
        per_bin = np.diff(busy_before(schedule.start_us[rows], schedule.end_us[rows], edges))
        per_bin = per_bin / (np.diff(edges) * ts.instances[b])
        middle = (edges[:-1] + edges[1:]) / 2000
        traces.append(go.Scatter(x=middle, y=100 * per_bin, mode="lines",
                                 name=plotly_text(f"{name} busy"), hovertext=plotly_text(name),
                                 line={"width": 1.5, "shape": "hv", "color": "#444444",
                                       "dash": BACKEND_DASHES[b % len(BACKEND_DASHES)]},
                                 legendgroup=f"util-{b}",
                                 hovertemplate="%{hovertext}: %{y:.0f} % busy around "
                                 "%{x:.0f} ms<extra></extra>"))
    return traces


def busy_before(start: np.ndarray, end: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Busy time before each instant of ``at``: Σ over intervals of |[s, e) ∩ [0, t)| =
    Σ_{s<t} (t - s) - Σ_{e<t} (t - e), from sorted starts and ends."""
    s, e = np.sort(start).astype(float), np.sort(end).astype(float)
    s_sum, e_sum = np.concatenate([[0.0], np.cumsum(s)]), np.concatenate([[0.0], np.cumsum(e)])
    ns, ne = np.searchsorted(s, at, "left"), np.searchsorted(e, at, "left")
    return (ns * at - s_sum[ns]) - (ne * at - e_sum[ne])


# ----------------------------------------------------------------------------- rates


def _rate_groups(kind: str, data: dict) -> list[tuple[str, dict]]:
    if kind == "simulate":
        return [(r["policy"], r["tasks"]) for r in data["runs"]]
    if kind == "solve":
        groups = [("best found" if not data.get("proven") else "optimum", data.get("tasks"))]
        best = data.get("best_policy")
        if best and best.get("tasks"):
            groups.append((best["policy"], best["tasks"]))
        return [g for g in groups if g[1]]
    groups = [(p["policy"], p["tasks"]) for p in data["policies"]]
    if data["optimum"].get("tasks"):
        groups.append(("optimum", data["optimum"]["tasks"]))
    return groups


def violation_rates(go, ts: TaskSet, groups: list[tuple[str, dict]]):
    """Grouped bars: x the schedules, one bar per frame task, the rate written on it."""
    if not groups:
        return None
    fig = go.Figure()
    tasks = [t for t in ts.tasks if t.deadline_us is not None]
    for task in tasks:
        # a task that released nothing has no rate (None): an empty bar, "-" on it
        values = [100 * (rates.get(task.name, {}).get("violation_rate") or 0.0)
                  for _, rates in groups]
        labels = ["-" if rates.get(task.name, {}).get("violation_rate") is None
                  else f"{v:.1f} %" for v, (_, rates) in zip(values, groups)]
        fig.add_trace(go.Bar(x=[plotly_text(g) for g, _ in groups], y=values,
                             name=plotly_text(task.name), hovertext=plotly_text(task.name),
                             marker_color=TASK_COLOURS[ts.task_index(task.name)
                                                       % len(TASK_COLOURS)],
                             text=labels, textposition="outside",
                             hovertemplate="%{hovertext}, %{x}: %{y:.2f} %<extra></extra>"))
    top = max([0.0] + [100 * (r.get(t.name, {}).get("violation_rate") or 0.0)
                       for _, r in groups for t in tasks])
    fig.update_layout(barmode="group", height=380, plot_bgcolor="white",
                      yaxis={"title": {"text": "frames violated (% of released)"},
                             "range": [0, max(5.0, top * 1.18)], "gridcolor": "#e5e5e5"},
                      xaxis={"title": {"text": "schedule"}},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0,
                              "title": {"text": "task"}},
                      margin={"l": 70, "r": 20, "t": 40, "b": 50})
    return fig


# ----------------------------------------------------------------------------- trade-off


def _policy_points(kind: str, data: dict) -> list[tuple[str, float, float]]:
    """(name, mean TTFT ms of the first LLM task, frame violations)."""
    if kind == "gap":
        items = [(p["policy"], p["ttft_ms"], p["violations"]) for p in data["policies"]]
    elif kind == "simulate":
        items = [(r["policy"], next(iter(r["llm"].values()))["ttft_ms"] if r["llm"] else None,
                  r["weighted_violations"]) for r in data["runs"]]
    else:
        return []
    return [(n, t["mean"], v) for n, t, v in items
            if t and isinstance(t, dict) and t.get("mean") is not None]


def tradeoff(go, kind: str, data: dict):
    """The Pareto front (gap) and the policies as labelled points (gap, simulate);
    policies no other beats on both axes are marked."""
    points = _policy_points(kind, data)
    front = [p for p in data.get("pareto", []) if p.get("violations") is not None]
    if not points and not front:
        return None
    fig = go.Figure()
    if front:
        lower = [p["violations"] - p["violations_lower_bound"] for p in front]
        fig.add_trace(go.Scatter(
            x=[p["ttft_cap_ms"] for p in front], y=[p["violations"] for p in front],
            mode="lines+markers", line={"shape": "hv", "color": "#0072B2", "width": 2},
            name="Pareto front: min violations under a TTFT cap (bar: down to the proven bound)",
            error_y={"type": "data", "symmetric": False, "array": [0] * len(front),
                     "arrayminus": lower, "color": "#0072B2"},
            customdata=[[p["status"].lower(), p["violations_lower_bound"]] for p in front],
            hovertemplate="cap %{x:.0f} ms: %{y:g} violations (%{customdata[0]}, bound "
            "%{customdata[1]:g})<extra></extra>"))
    if points:
        points = _merge_equal(points)
        best = _non_dominated([(t, v) for _, t, v in points])
        fig.add_trace(go.Scatter(
            x=[t for _, t, _ in points], y=[v for _, _, v in points], mode="markers+text",
            text=[plotly_text(n) for n, _, _ in points],
            textposition=[LABEL_SPOTS[i % len(LABEL_SPOTS)] for i in range(len(points))],
            marker={"size": 11, "color": ["#E69F00" if i in best else "#999999"
                                          for i in range(len(points))],
                    "line": {"width": 1, "color": "#333"}},
            name="policies (orange: no other policy is better on both axes)",
            hovertemplate="%{text}: mean TTFT %{x:.1f} ms, %{y:g} violations<extra></extra>"))
    fig.update_layout(height=420, plot_bgcolor="white",
                      xaxis={"title": {"text": "LLM time to first token (ms): the cap, or a "
                                               "policy's mean"},
                             "gridcolor": "#e5e5e5", "rangemode": "tozero"},
                      yaxis={"title": {"text": "frame violations (weighted)"},
                             "gridcolor": "#e5e5e5", "rangemode": "tozero"},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
                      margin={"l": 70, "r": 20, "t": 50, "b": 50})
    return fig


LABEL_SPOTS = ["top left", "bottom right", "top right", "bottom left"]  # near points apart


def _merge_equal(points: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Policies at the same point share one marker and one label ("fcfs-dyn = edf-dyn"),
    sorted by TTFT so that neighbours get different label spots."""
    merged: dict[tuple[float, float], list[str]] = {}
    for name, t, v in points:
        merged.setdefault((round(t, 6), v), []).append(name)
    return sorted(((" = ".join(names), t, v) for (t, v), names in merged.items()),
                  key=lambda p: (p[1], p[2]))


def _non_dominated(points: list[tuple[float, float]]) -> set[int]:
    return {i for i, (t, v) in enumerate(points)
            if not any((t2 <= t and v2 <= v) and (t2 < t or v2 < v) for t2, v2 in points)}


def sample_distributions(go, values: dict[str, list[int]]):
    """``simulate --samples``: the empirical CDF of the frame violations over the sampled
    realizations, one line per policy (None without samples)."""
    if not any(values.values()):
        return None
    fig = go.Figure()
    for i, (policy, counts) in enumerate(values.items()):
        if not counts:
            continue
        xs = np.sort(np.asarray(counts))
        ys = np.arange(1, len(xs) + 1) / len(xs)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line_shape="hv",
                                 name=plotly_text(policy), hovertext=plotly_text(policy),
                                 line={"color": TASK_COLOURS[i % len(TASK_COLOURS)]},
                                 hovertemplate="%{x} violations or fewer in %{y:.1%} of "
                                 "the samples<extra>%{hovertext}</extra>"))
    fig.update_layout(xaxis_title="frame violations in one realization",
                      yaxis_title="share of samples", yaxis_range=[0, 1.02], height=380,
                      margin={"t": 30})
    return fig
