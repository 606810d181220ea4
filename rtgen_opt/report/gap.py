"""The gap table (terminal, CSV) and its Markdown report for a PR comment. The HTML report
of every command is html_report.py.

Every gap that is not proven is a range ``min…max``: the policy's violations minus the
matched optimum's best schedule (a proven minimum of the gap) up to its violations minus
the matched optimum's lower bound (the maximum); in violations and in percentage points of
the frames released."""

from __future__ import annotations

from rtgen_opt.report import formats
from rtgen_opt.report.tables import md_escape


TOLERANCE_PP = 1.0  # a gap known to within this many points of the frames is an answer


def gap_rows(data: dict) -> tuple[list[str], list[list]]:
    """The gap table: one row per policy, then the plain optimum."""
    columns = ["policy", "violations", "rate %", "matched optimum", "gap", "gap pp",
               "proven", "TTFT ms", "TPT ms", "starved"]
    rows = []
    for p in data["policies"]:
        m = p["matched_optimum"]
        opt = (formats.count(m["violations"]) if p["proven"] else
               _range(m["violations_lower_bound"], m["violations"], formats.count))
        gap = (formats.count(p["gap_violations"]) if p["proven"] else
               _range(p["gap_violations"], p["gap_violations_max"], formats.count))
        pp = (formats.pp(p["gap_pp_min"]) if p["proven"] else
              _range(p["gap_pp_min"], p["gap_pp_max"], formats.pp))
        rows.append([_named(p), formats.count(p["violations"]),
                     formats.pct(p["violation_rate"]),
                     opt, gap, pp, proven_cell(p), _mean(p["ttft_ms"]),
                     _mean(p["tpt_ms"]), p["starved"]])
    o = data["optimum"]
    llm = next(iter(o.get("llm", {}).values()), None) if o.get("llm") else None
    proven = o["status"] == "OPTIMAL"
    rows.append(["optimum (every request served)",
                 "-" if o["violations"] is None else
                 (formats.count(o["violations"]) if proven else
                  _range(o["violations_lower_bound"], o["violations"], formats.count)),
                 "-" if o.get("violation_rate") is None else formats.pct(o["violation_rate"]),
                 "-", "-", "-", "yes" if proven else "no",
                 _mean(llm["ttft_ms"]) if llm else "-", _mean(llm["tpt_ms"]) if llm else "-",
                 0])
    return columns, rows




def width_pp(p: dict) -> float | None:
    """How wide the policy's gap range is, in points of the frames (None: no range)."""
    if p["gap_pp_min"] is None or p["gap_pp_max"] is None:
        return None
    return p["gap_pp_max"] - p["gap_pp_min"]


def _named(p: dict) -> str:
    """The policy's name, and the requests it starves: its gap of 0 to a matched optimum
    that serves nothing is no achievement (as ``simulate`` marks it)."""
    starved, requests = p["starved"], p.get("requests")
    return p["policy"] + (f" (starves {starved}/{requests})" if starved else "")


def proven_cell(p: dict) -> str:
    if p["proven"]:
        return "yes"
    width = width_pp(p)
    return f"within {TOLERANCE_PP:g} pp" if width is not None and width <= TOLERANCE_PP \
        else "no"


def weak_bound(p: dict) -> str:
    """Which side of an open gap is weak, and why, in one line."""
    m = p["matched_optimum"]
    if m["violations"] is None or p["gap_pp_min"] is None:
        return "its matched optimum has no schedule that replays (see replay_failed)"
    method = m.get("lower_bound_method") or "the lower bound"
    if m["violations"] >= p["violations"]:
        return ("the upper bound is the policy's own schedule: nothing better was found "
                f"under its token deadlines (lower bound: {method})")
    if "window bound" in method:
        return ("the lower bound is the window bound, a preemptive relaxation (a layer may "
                "use slack shorter than itself); the best schedule found may be near optimal")
    return f"lower bound ({method}) and best schedule still apart at the time limit"


def gap_caption(data: dict) -> str:
    open_rows = [p for p in data["policies"] if proven_cell(p) == "no"]
    text = ("matched optimum: fewest violations serving every request at least as fast as "
            "the policy; gap pp: percentage points of the frames released; a…b: not proven, "
            f"the true value lies between; within {TOLERANCE_PP:g} pp: the range is that "
            "narrow")
    for p in open_rows:
        text += f"\n{p['policy']}: open by {formats.pp(width_pp(p) or 0)} pp: {weak_bound(p)}"
    if not data.get("complete", True):
        text += "\nincomplete: stopped before every policy and the Pareto front were done"
    return text


def gap_records(data: dict) -> list[dict]:
    """The CSV rows: one per policy as in the JSON, then the plain optimum (policy
    "optimum", its Pareto front as JSON text) — the rows a sweep's gap run records."""
    return [*data["policies"], {"policy": "optimum", **data["optimum"],
                                "pareto": data["pareto"]}]


def pareto_rows(data: dict) -> tuple[list[str], list[list]]:
    """The Pareto front: the fewest violations under each cap on the LLM's TTFT."""
    return (["TTFT cap ms", "violations", "status"],
            [[formats.ms(p["ttft_cap_ms"]), _pareto_value(p), p["status"].lower()]
             for p in data["pareto"]])


def _range(low: float | None, high: float | None, show) -> str:
    if low is None or high is None:  # no gap: the matched optimum failed replay
        return "-"
    return show(low) if high == low else f"{show(low)}…{show(high)}"


def _mean(stat) -> str:
    if not stat or stat.get("mean") is None:
        return "-"
    return formats.ms(stat["mean"])


def markdown(data: dict) -> str:
    columns, rows = gap_rows(data)
    out = [f"## Optimality gap: {md_escape(data['scenario'])}, {data['horizon_s']:g} s", "",
           "Each policy against its service-matched optimum: the fewest violations of any "
           "schedule that serves every request at least as fast as the policy did. "
           "`a…b`: not proven, the true value lies between. Gap in violations and in "
           "percentage points of the frames released.", "",
           "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]  # names
    if data["pareto"]:
        columns, rows = pareto_rows(data)
        out += ["", "### Pareto front: violations under a TTFT cap", "",
                "| " + " | ".join(columns) + " |", "|---|---|---|"]
        out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def _pareto_value(point: dict) -> str:
    if point["violations"] is None:
        return "-"
    if point["status"] == "OPTIMAL":
        return formats.count(point["violations"])
    return _range(point["violations_lower_bound"], point["violations"], formats.count)
