"""The gap table (terminal, CSV) and its Markdown report for a PR comment. The HTML report
of every command is html_report.py.

Every gap that is not proven is a range ``min…max``: the policy's violations minus the
matched optimum's best schedule (a proven minimum of the gap) up to its violations minus
the matched optimum's lower bound (the maximum); in violations and in percentage points of
the frames released."""

from __future__ import annotations

from rtgen_opt.report.tables import md_escape


def gap_rows(data: dict) -> tuple[list[str], list[list]]:
    """The gap table: one row per policy, then the plain optimum."""
    columns = ["policy", "violations", "rate %", "matched optimum", "gap", "gap pp",
               "proven", "TTFT ms", "TPT ms", "starved"]
    rows = []
    for p in data["policies"]:
        m = p["matched_optimum"]
        opt = (f"{m['violations']:g}" if p["proven"] else
               _range(m["violations_lower_bound"], m["violations"], "g"))
        gap = (f"{p['gap_violations']:g}" if p["proven"] else
               _range(p["gap_violations"], p["gap_violations_max"], "g"))
        pp = (f"{p['gap_pp_min']:.1f}" if p["proven"] else
              _range(p["gap_pp_min"], p["gap_pp_max"], ".1f"))
        rows.append([p["policy"], f"{p['violations']:g}", f"{100 * p['violation_rate']:.1f}",
                     opt, gap, pp, "yes" if p["proven"] else "no", _mean(p["ttft_ms"]),
                     _mean(p["tpt_ms"]), p["starved"]])
    o = data["optimum"]
    llm = next(iter(o.get("llm", {}).values()), None) if o.get("llm") else None
    proven = o["status"] == "OPTIMAL"
    rows.append(["optimum (every request served)",
                 "-" if o["violations"] is None else
                 (f"{o['violations']:g}" if proven else
                  _range(o["violations_lower_bound"], o["violations"], "g")),
                 "-" if o.get("violation_rate") is None else f"{100 * o['violation_rate']:.1f}",
                 "-", "-", "-", "yes" if proven else "no",
                 _mean(llm["ttft_ms"]) if llm else "-", _mean(llm["tpt_ms"]) if llm else "-",
                 0])
    return columns, rows


def gap_caption(data: dict) -> str:
    unproven = [p["policy"] for p in data["policies"] if not p["proven"]]
    text = ("matched optimum: fewest violations serving every request at least as fast as "
            "the policy; gap pp: percentage points of the frames released; a…b: not proven, "
            "the true value lies between")
    if unproven:
        text += f"\nnot proven: {', '.join(unproven)} (a longer --time-limit may close them)"
    if not data.get("complete", True):
        text += "\nincomplete: stopped before every policy and the Pareto front were done"
    return text


def _range(low: float | None, high: float | None, spec: str) -> str:
    if low is None or high is None:  # no gap: the matched optimum failed replay
        return "-"
    return format(low, spec) if high == low else f"{format(low, spec)}…{format(high, spec)}"


def _mean(stat) -> str:
    if not stat or stat.get("mean") is None:
        return "-"
    return f"{stat['mean']:.1f}"


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
        out += ["", "### Pareto front: violations under a TTFT cap", "",
                "| TTFT cap ms | violations | status |", "|---|---|---|"]
        out += [f"| {p['ttft_cap_ms']:.0f} | "
                f"{'-' if p['violations'] is None else _pareto_value(p)} | "
                f"{p['status'].lower()} |" for p in data["pareto"]]
    return "\n".join(out) + "\n"


def _pareto_value(point: dict) -> str:
    if point["status"] == "OPTIMAL":
        return format(point["violations"], "g")
    return _range(point["violations_lower_bound"], point["violations"], "g")
