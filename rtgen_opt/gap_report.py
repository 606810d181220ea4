"""The gap report: Markdown for a PR comment, or one self-contained HTML page whose charts
are inline SVG (no script, no network): the gap table, a Gantt chart of the optimum beside
the best and the worst policy, violation rates per task, and the Pareto front."""

from __future__ import annotations

import html

from .taskset import TaskSet

PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
           "#9c755f"]


def gap_rows(data: dict) -> tuple[list[str], list[list]]:
    """The gap table: one row per policy, then the plain optimum."""
    columns = ["policy", "violations", "rate %", "matched optimum", "gap", "gap pp",
               "TTFT ms", "TPT ms", "starved"]
    rows = []
    for p in data["policies"]:
        m = p["matched_optimum"]
        opt = (f"{m['violations']:g} (proven)" if m["status"] == "OPTIMAL" else
               f"{m['violations_lower_bound']:g}…{m['violations']:g}")
        gap = (f"{p['gap_violations']:g}" if p["gap_exact"] else
               f"{p['gap_violations']:g}…{p['gap_violations_max']:g}")
        rows.append([p["policy"], f"{p['violations']:g}", f"{100 * p['violation_rate']:.1f}",
                     opt, gap, f"{p['gap_pp']:.1f}", _mean(p["ttft_ms"]), _mean(p["tpt_ms"]),
                     p["starved"]])
    o = data["optimum"]
    llm = next(iter(o.get("llm", {}).values()), None) if o.get("llm") else None
    rows.append(["optimum (every request served)",
                 "-" if o["violations"] is None else f"{o['violations']:g}",
                 "-" if o.get("violation_rate") is None else f"{100 * o['violation_rate']:.1f}",
                 o["status"].lower() + ("" if o["status"] == "OPTIMAL" else
                                        f" (LB {o['violations_lower_bound']:g})"),
                 "-", "-", _mean(llm["ttft_ms"]) if llm else "-",
                 _mean(llm["tpt_ms"]) if llm else "-", 0])
    return columns, rows


def _mean(stat) -> str:
    if not stat or stat.get("mean") is None:
        return "-"
    return f"{stat['mean']:.1f}"


def markdown(data: dict) -> str:
    columns, rows = gap_rows(data)
    out = [f"## Optimality gap: {data['scenario']}, {data['horizon_s']:g} s", "",
           "Each policy against its service-matched optimum: the fewest violations of any "
           "schedule that serves every request at least as fast as the policy did. "
           "`a…b`: not proven, the optimum lies between. Gap in violations and in "
           "percentage points of the violation rate.", "",
           "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    if data["pareto"]:
        out += ["", "### Pareto front: violations under a TTFT cap", "",
                "| TTFT cap ms | violations | status |", "|---|---|---|"]
        out += [f"| {p['ttft_cap_ms']:.0f} | "
                f"{'-' if p['violations'] is None else format(p['violations'], 'g')} | "
                f"{p['status'].lower()} |" for p in data["pareto"]]
    return "\n".join(out) + "\n"


def html_page(data: dict, ts: TaskSet, window_us: tuple[int, int]) -> str:
    columns, rows = gap_rows(data)
    table = ("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>"
             + "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row)
                       + "</tr>" for row in rows) + "</table>")
    ranked = sorted(data["policies"], key=lambda p: p["violations"])
    best, worst = ranked[0]["policy"], ranked[-1]["policy"]
    schedules = data["_schedules"]
    gantt = "".join(
        f"<h3>{html.escape(title)}</h3>" + gantt_svg(ts, schedules[key], window_us)
        for key, title in (("optimum", "Optimum"), (best, f"Best policy: {best}"),
                           (worst, f"Worst policy: {worst}")) if schedules.get(key) is not None)
    legend = " ".join(f'<span style="color:{PALETTE[i % len(PALETTE)]}">■</span> '
                      f"{html.escape(t.name)}" for i, t in enumerate(ts.tasks))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>rtgen-opt gap report: {html.escape(data['scenario'])}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
th{{background:#f4f4f4}}svg{{background:#fff;border:1px solid #ddd}}</style></head>
<body><h1>Optimality gap: {html.escape(data['scenario'])}, {data['horizon_s']:g} s</h1>
<p>Each policy against its service-matched optimum (the fewest frame violations of any
schedule that serves every request at least as fast as the policy did). A gap written
<code>a…b</code> is not proven: the optimum lies between.</p>
<h2>Gap</h2>{table}
<h2>Schedules, {window_us[0] / 1e6:g} s to {window_us[1] / 1e6:g} s</h2>
<p>Backends as lanes, tasks as colours ({legend}); red outline: work aborted at a missed
deadline or by preemption.</p>{gantt}
<h2>Violation rate per task</h2>{bars_svg(data, ts)}
<h2>Pareto front: frame violations against LLM TTFT</h2>
<p>Line: the minimum violations for each cap on every request's TTFT (solver).
Points: the policies (mean TTFT, violations).</p>{pareto_svg(data)}
</body></html>
"""


def gantt_svg(ts: TaskSet, schedule, window_us: tuple[int, int], width: int = 1000) -> str:
    lanes = [(b, k) for b, n in enumerate(ts.instances) for k in range(n)]
    lane_h, left = 26, 90
    a, b = window_us
    scale = (width - left - 10) / max(1, b - a)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{lane_h * len(lanes) + 24}" role="img" aria-label="Gantt chart">']
    for i, (backend, inst) in enumerate(lanes):
        y = i * lane_h + 4
        label = ts.backends[backend] + (f"#{inst}" if ts.instances[backend] > 1 else "")
        parts.append(f'<text x="4" y="{y + 16}" font-size="12">{html.escape(label)}</text>')
        parts.append(f'<line x1="{left}" y1="{y + lane_h - 2}" x2="{width - 10}" '
                     f'y2="{y + lane_h - 2}" stroke="#eee"/>')
    for seg, backend, inst, start, end, aborted in zip(
            schedule.seg.tolist(), schedule.backend.tolist(), schedule.instance.tolist(),
            schedule.start_us.tolist(), schedule.end_us.tolist(), schedule.aborted.tolist()):
        if end <= a or start >= b:
            continue
        lane = lanes.index((backend, max(0, inst)))
        x = left + (max(start, a) - a) * scale
        w = max(1.0, (min(end, b) - max(start, a)) * scale)
        task = int(ts.job_task[ts.seg_job[seg]])
        stroke = ' stroke="#d00" stroke-width="2"' if aborted else ""
        parts.append(f'<rect x="{x:.1f}" y="{lane * lane_h + 6}" width="{w:.1f}" '
                     f'height="{lane_h - 10}" fill="{PALETTE[task % len(PALETTE)]}"{stroke}>'
                     f"<title>{html.escape(ts.tasks[task].name)} job {int(ts.seg_job[seg])}"
                     f"{' (aborted)' if aborted else ''}</title></rect>")
    for t in range(5):  # time axis
        x = left + t * (width - left - 10) / 4
        parts.append(f'<text x="{x:.0f}" y="{lane_h * len(lanes) + 20}" font-size="11">'
                     f"{(a + t * (b - a) / 4) / 1000:.0f} ms</text>")
    return "".join(parts) + "</svg>"


def bars_svg(data: dict, ts: TaskSet, width: int = 1000) -> str:
    tasks = [t.name for t in ts.tasks if t.deadline_us is not None]
    groups = [(p["policy"], p["tasks"]) for p in data["policies"]]
    if data["optimum"].get("tasks"):
        groups.append(("optimum", data["optimum"]["tasks"]))
    height, bottom, left = 220, 30, 40
    slot = (width - left) / max(1, len(groups))
    bar = slot * 0.8 / max(1, len(tasks))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'role="img" aria-label="Violation rate per task and policy">']
    for g, (name, rates) in enumerate(groups):
        for i, task in enumerate(tasks):
            rate = rates.get(task, {}).get("violation_rate", 0.0)
            h = rate * (height - bottom - 10)
            x = left + g * slot + i * bar
            parts.append(f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" '
                         f'width="{bar * 0.9:.1f}" height="{h:.1f}" '
                         f'fill="{PALETTE[ts.task_index(task) % len(PALETTE)]}">'
                         f"<title>{html.escape(name)} {html.escape(task)}: "
                         f"{100 * rate:.1f} %</title></rect>")
        parts.append(f'<text x="{left + g * slot:.0f}" y="{height - 10}" font-size="12">'
                     f"{html.escape(name)}</text>")
    parts.append('<text x="2" y="14" font-size="11">100 %</text>')
    return "".join(parts) + "</svg>"


def pareto_svg(data: dict, width: int = 700, height: int = 320) -> str:
    front = [p for p in data["pareto"] if p["violations"] is not None]
    points = [(p["policy"], p["ttft_ms"]["mean"], p["violations"]) for p in data["policies"]
              if p["ttft_ms"] and p["ttft_ms"].get("mean") is not None]
    xs = [p["ttft_cap_ms"] for p in front] + [x for _, x, _ in points] or [1]
    ys = [p["violations"] for p in front] + [y for _, _, y in points] or [1]
    x_max, y_max = max(xs) * 1.1 or 1, max(ys) * 1.1 or 1
    left, bottom = 50, 30
    sx = lambda x: left + x / x_max * (width - left - 20)  # noqa: E731
    sy = lambda y: height - bottom - y / y_max * (height - bottom - 20)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'role="img" aria-label="Pareto front">',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" '
             f'y2="{height - bottom}" stroke="#888"/>',
             f'<line x1="{left}" y1="10" x2="{left}" y2="{height - bottom}" stroke="#888"/>',
             f'<text x="{width / 2:.0f}" y="{height - 6}" font-size="12">TTFT (ms)</text>',
             '<text x="4" y="14" font-size="12">violations</text>']
    if front:
        path = " ".join(f"{sx(p['ttft_cap_ms']):.1f},{sy(p['violations']):.1f}" for p in front)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#4e79a7" '
                     'stroke-width="2"/>')
        parts += [f'<circle cx="{sx(p["ttft_cap_ms"]):.1f}" cy="{sy(p["violations"]):.1f}" '
                  f'r="3" fill="#4e79a7"><title>cap {p["ttft_cap_ms"]:.0f} ms: '
                  f'{p["violations"]:g} ({p["status"].lower()})</title></circle>' for p in front]
    for name, x, y in points:
        parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="5" fill="#e15759">'
                     f"<title>{html.escape(name)}</title></circle>"
                     f'<text x="{sx(x) + 6:.1f}" y="{sy(y) - 6:.1f}" font-size="11">'
                     f"{html.escape(name)}</text>")
    parts.append(f'<text x="{left - 4}" y="{sy(0) + 4:.1f}" font-size="10" '
                 'text-anchor="end">0</text>')
    return "".join(parts) + "</svg>"
