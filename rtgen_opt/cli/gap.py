"""`rtgen-opt gap`: each policy against its service-matched optimum."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from rtgen_opt.cli.common import (
    FormatOpt,
    HorizonOpt,
    LatencyOpt,
    QuietOpt,
    ReportOpt,
    ScenarioArg,
    SetOpt,
    TimeLimitOpt,
    WorkersOpt,
    _check_format,
    _check_report_name,
    _display_to,
    _duration_option,
    _horizon,
    _interrupted_mark,
    _run_length,
    _scenario,
    _supervised,
    _taskset,
    _write_report,
    app,
)
from rtgen_opt.errors import InputError
from rtgen_opt.model.taskset import TaskSet
from rtgen_opt.output import check_writable
from rtgen_opt.report.tables import emit
from rtgen_opt.simulation.policies.classic import POLICIES
from rtgen_opt.simulation.policies.loader import load_policy
from rtgen_opt.supervise import EXIT_INTERRUPTED
from rtgen_opt.units import parse_duration

# ----------------------------------------------------------------------------- gap


@app.command()
def gap(
    scenario: ScenarioArg,
    horizon: HorizonOpt = None,
    report: ReportOpt = None,
    window: Annotated[str | None, typer.Option(
        metavar="START..END", help="Time window first shown in the report's Gantt charts, "
        "e.g. 2s..3s (default: the first 200 ms; the HTML charts zoom out to the whole "
        "run).")] = None,
    time_limit: TimeLimitOpt = "120s",
    workers: WorkersOpt = 0,
    latency: LatencyOpt = "median",
    set_: SetOpt = None,
    policy: Annotated[list[str] | None, typer.Option(
        metavar="FILE.py:CLASS", help="Also compare this policy: your own FILE.py:CLASS (or "
        "an entry point); repeatable.")] = None,
    format: FormatOpt = "table",
    quiet: QuietOpt = False,
) -> None:
    """How far is each policy from the best possible schedule?

    Runs the built-in policies (the paper's five, kill-aware and kill-aware-fast) and the
    solver on the same task
    set: per policy its violations, its service-matched optimum (the fewest violations of
    any schedule that serves every request at least as fast as the policy did) and the gap — a range
    min…max where the matched optimum is not proven; the plain optimum; the Pareto front
    of violations against the LLM's TTFT. Exit 130 when interrupted (the policies done
    so far are printed).

    Example: rtgen-opt gap scenario_c --horizon 2s --report report.html
    """
    from rtgen_opt.analysis.gap import gap_analysis
    from rtgen_opt.report.gap import gap_caption, gap_records, gap_rows, pareto_rows

    _check_format(format)
    _check_report_name(report)
    limit = float(_duration_option("--time-limit", time_limit))
    to = _display_to(quiet, {"--report": report})
    if report:
        check_writable(report, "--report")
    with _supervised("gap", limit, quiet) as (budget, say):
        say.phase("building the task set")
        ts = _taskset(_scenario(scenario, set_, latency), _horizon(horizon, set_), quiet)
        span = _window(window, ts)
        extra = [p for p in map(load_policy, policy or ()) if p.name not in POLICIES]
        data = gap_analysis(ts, budget.share(1.0), workers, progress=say, budget=budget,
                            policies=list(POLICIES.values()) + extra)
    data["interrupted"] = budget.interrupted.is_set()
    data["time_limit_s"] = limit
    if report:
        _write_report(report, "gap", ts, data, data["_schedules"], span)
    data.pop("_schedules")
    columns, rows = gap_rows(data)
    emit(format, data, columns, rows, f"Optimality gap: {ts.scenario}, {_run_length(ts)} "
         f"(in {data['wall_s']:.0f} s, time limit {limit:g} s)" + _interrupted_mark(budget),
         gap_caption(data), numeric_from=1, records=gap_records(data), to=to)
    if format == "table" and data["pareto"]:
        emit(format, data, *pareto_rows(data), "Pareto front: violations under a TTFT cap",
             "every request served; a…b: not proven", numeric_from=0, to=to)
    if data["interrupted"]:
        raise typer.Exit(EXIT_INTERRUPTED)
    for failure in data["replay_failed"]:  # a schedule that proves nothing: exit 1
        print(f"rtgen-opt: REPLAY_FAILED: {failure}", file=sys.stderr)
    if data["replay_failed"]:
        raise typer.Exit(1)


def _window(text: str | None, ts: TaskSet) -> tuple[int, int]:
    if text is None:
        return 0, min(ts.horizon_us, 200_000)
    start, sep, end = text.partition("..")
    try:
        a, b = parse_duration(start.strip()), parse_duration(end.strip())
    except ValueError:
        raise InputError("--window", "", "START..END with durations, like 2s..3s", text) from None
    if not sep or b <= a:
        raise InputError("--window", "", "START..END with START < END, like 2s..3s", text)
    return int(a * 1_000_000), int(b * 1_000_000)
