"""`rtgen-opt simulate`: run policies in the executor."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from rtgen_opt.cli.common import (
    FormatOpt,
    HorizonOpt,
    LatencyOpt,
    ReportOpt,
    ScenarioArg,
    SetOpt,
    _check_format,
    _check_report_name,
    _check_trace_format,
    _horizon,
    _interrupted_mark,
    _policy_rows,
    _run_length,
    _scenario,
    _suffixed,
    _supervised,
    _taskset,
    _write_report,
    app,
)
from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.output import check_writable, write_files
from rtgen_opt.report.tables import emit
from rtgen_opt.simulation.executor import simulate as run_policy
from rtgen_opt.simulation.policies.classic import POLICIES
from rtgen_opt.simulation.policies.loader import load_policy
from rtgen_opt.supervise import EXIT_INTERRUPTED

# ----------------------------------------------------------------------------- simulate


@app.command()
def simulate(
    scenario: ScenarioArg,
    policy: Annotated[str, typer.Option(
        metavar="POLICY", help="all, or one of " + ", ".join(POLICIES) + ", or your own: "
        "FILE.py:CLASS (or a package's entry point of the group rtgen_opt.policies).")]
    = "all",
    horizon: HorizonOpt = None,
    set_: SetOpt = None,
    schedule_out: Annotated[Optional[str], typer.Option(
        "--schedule-out", "--trace", metavar="FILE", help="Write the schedule table (one "
        "row per executed segment): CSV, or JSON if FILE ends in .json. With --policy all, "
        "one file per policy (out.csv -> out.ftf.csv ...). (--trace: the old name, kept for "
        "one release.)")] = None,
    trace_format: Annotated[str, typer.Option(
        "--trace-format", metavar="table|chrome", help="table (the schedule table, CSV or "
        "JSON) or chrome (trace events for chrome://tracing or Perfetto).")] = "table",
    report: ReportOpt = None,
    latency: LatencyOpt = "median",
    format: FormatOpt = "table",
) -> None:
    """Run the heuristic policies of the paper in the event-driven executor.

    Example: rtgen-opt simulate scenario_c --policy all --horizon 60s --report sim.html
    """
    _check_format(format)
    policies = list(POLICIES.values()) if policy == "all" else [load_policy(policy)]
    _check_trace_format(trace_format)
    _check_report_name(report)
    if report:
        check_writable(report, "--report")
    for chosen in policies if schedule_out else ():  # every target, before any work
        check_writable(schedule_out if len(policies) == 1
                       else _suffixed(schedule_out, chosen.name), "--schedule-out")
    runs, outputs, traces = [], {}, {}
    with _supervised("simulate", None) as (budget, say):
        ts = _taskset(_scenario(scenario, set_, latency), _horizon(horizon))
        for chosen in policies:
            if budget.interrupted.is_set():
                break
            name = chosen.name
            say.phase(f"simulating {name}")
            result = run_policy(ts, chosen)
            runs.append({"policy": name, **evaluate(ts, result.schedule),
                         "events": result.events, "wall_s": round(result.wall_s, 4)})
            traces[name] = result.schedule
            if schedule_out:
                target = schedule_out if len(policies) == 1 else _suffixed(schedule_out, name)
                outputs[target] = result.schedule.to_text(ts, target, trace_format,
                                                             set_ or ())
    interrupted = budget.interrupted.is_set()
    write_files(outputs)  # all runs succeeded: now every trace, or none
    data = {"scenario": ts.scenario, "horizon_s": ts.horizon_us / 1e6,
            "drain_s": ts.drain_us / 1e6, "after_horizon": ts.after_horizon, "runs": runs,
            "interrupted": interrupted}
    if report:
        _write_report(report, "simulate", ts, data, traces)
    columns, rows = _policy_rows(ts, runs)
    emit(format, data, columns, rows, f"{ts.scenario}: {_run_length(ts)}, "
         f"{ts.num_jobs} jobs, granularity {ts.granularity}, on_miss {ts.on_miss}, "
         f"preemption {ts.preemption}" + _interrupted_mark(budget),
         "violations: frames dropped or late / released, over the whole run; "
         + ("drain violations: those of frames released after the horizon; "
            if ts.after_horizon == "continue" else "")
         + "TTFT, TPT: means over served requests; starved: no first token within the "
         "request's give-up time",
         numeric_from=1)
    if interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
