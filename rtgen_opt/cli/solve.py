"""`rtgen-opt solve`: the optimum and its proven bound."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from rtgen_opt.cli.common import (
    FormatOpt,
    HorizonOpt,
    LatencyOpt,
    QuietOpt,
    ReportOpt,
    ScenarioArg,
    ScheduleOutOpt,
    SetOpt,
    TimeLimitOpt,
    WorkersOpt,
    _check_format,
    _check_report_name,
    _check_seed,
    _check_trace_format,
    _display_to,
    _duration_option,
    _horizon,
    _interrupted_mark,
    _policy_rows,
    _run_length,
    _scenario,
    _supervised,
    _taskset,
    _write_report,
    _write_text,
    app,
    solve_hint,
    solve_summary_rows,
)
from rtgen_opt.errors import InputError
from rtgen_opt.output import check_writable
from rtgen_opt.report.tables import emit
from rtgen_opt.supervise import EXIT_INTERRUPTED, budget_kwargs

# ----------------------------------------------------------------------------- solve


@app.command()
def solve(
    scenario: ScenarioArg,
    horizon: HorizonOpt = None,
    solver: Annotated[str, typer.Option(metavar="ENGINE",
                                        help="cpsat (OR-Tools CP-SAT) or milp (PuLP).")]
    = "cpsat",
    mip_solver: Annotated[str, typer.Option(
        "--mip-solver", metavar="ENGINE", help="MILP engine: cbc (ships with PuLP) or highs "
        "(pip install 'rtgen-opt[highs]').")] = "cbc",
    time_limit: TimeLimitOpt = "60s",
    workers: WorkersOpt = 0,
    seed: Annotated[int, typer.Option(metavar="N", help="Random seed of the solver.",
                                      callback=_check_seed)] = 0,
    ttft: Annotated[str, typer.Option(metavar="sum|max", help="Second objective: sum or "
                                      "max of the LLM TTFTs.")] = "sum",
    schedule_out: ScheduleOutOpt = None,
    report: ReportOpt = None,
    export_model: Annotated[Optional[str], typer.Option(
        "--model-out", "--export-model", metavar="FILE", help="Write the model for "
        "debugging: the CP-SAT proto (text if FILE ends in .pbtxt or .txt), or the MILP as an "
        "LP file (instances solved as one model; long horizons are built by construction "
        "and write none); - writes the text form to stdout. (--export-model: the old name, "
        "kept for one release.)")] = None,
    export_bound: Annotated[Optional[str], typer.Option(
        "--bound-out", "--export-bound", metavar="FILE", help="Write the lower bound's "
        "certificate (JSON: the prices and the value they prove, the task set's hash), for "
        "anyone to re-check with verify-bound; - writes it to stdout. (--export-bound: the "
        "first name, kept for one release.)")]
    = None,
    trace_format: Annotated[str, typer.Option(
        "--schedule-format", "--trace-format", metavar="table|chrome",
        help="Format of --schedule-out: table (CSV or JSON) or chrome (--trace-format: the "
        "old name, kept for one release).")] = "table",
    latency: LatencyOpt = "median",
    set_: SetOpt = None,
    format: FormatOpt = "table",
    quiet: QuietOpt = False,
) -> None:
    """Compute the best schedule any scheduler could achieve, or a schedule with a proven
    lower bound and the gap between them.

    Frames are firm (on time or dropped); every LLM request is served. Objectives, in
    order: weighted frame violations, LLM TTFT, TPT. The output says what was proven
    (status, lower bound and the method behind it) and puts the best policy beside it.
    The schedule is replayed by the executor's checker: exit 1 if it breaks a constraint
    or its metrics disagree; 130 when interrupted (the best schedule so far is printed).

    Example: rtgen-opt solve scenario_c --horizon 60s --report solve.html
    """
    from rtgen_opt.commands.solve import solve_command
    from rtgen_opt.optimisation.solve import solve as run_solver

    _check_format(format)
    from rtgen_opt.formulations.milp import available_engines

    if solver not in ("cpsat", "milp"):
        raise InputError("--solver", "", "cpsat or milp", solver)
    if solver == "milp" and mip_solver not in available_engines():
        raise InputError("--mip-solver", "", f"an installed MILP engine "
                         f"({', '.join(available_engines()) or 'none'}; HiGHS: pip install "
                         "'rtgen-opt[highs]')", mip_solver)
    if ttft not in ("sum", "max"):
        raise InputError("--ttft", "", "sum or max", ttft)
    _check_trace_format(trace_format, schedule_out)
    _check_report_name(report)
    limit = _duration_option("--time-limit", time_limit)
    outputs = {"--schedule-out": schedule_out, "--model-out": export_model,
               "--bound-out": export_bound, "--report": report}
    to = _display_to(quiet, outputs)
    for option, path in outputs.items():
        if path:
            check_writable(path, option)
    with _supervised("solve", float(limit), quiet) as (budget, say):
        say.phase("building the task set")
        ts = _taskset(_scenario(scenario, set_, latency), _horizon(horizon, set_), quiet)
        say.phase("solving")
        data, out, baseline = solve_command(
            ts, budget.share(1.0), workers, seed, ttft, solver, mip_solver, progress=say,
            export_model=export_model, budget=budget, **budget_kwargs(run_solver, budget))
    if schedule_out and out.schedule is not None:
        _write_text(schedule_out, out.schedule.to_text(ts, schedule_out, trace_format,
                                                       set_ or ()))
    if export_bound and getattr(out, "bound", None) is not None \
            and (out.bound.prices is not None or out.bound.blocks is not None):
        from rtgen_opt.formulations.bounds.certificate import certificate_json
        from rtgen_opt.formulations.problem import Problem

        _write_text(export_bound, certificate_json(
            Problem(ts, ttft=ttft), out.bound.prices, out.bound.exact, out.bound.blocks,
            scenario, tuple(set_ or ()), latency))
        if out.bound.certified is not None and not quiet:
            print(f"rtgen-opt: solve: --bound-out: the lower bound {out.bound.value:g} (chain-"
                  f"block bound) has no certificate; {export_bound} certifies "
                  f"{out.bound.certified:g}", file=sys.stderr)
    if report:
        _write_report(report, "solve", ts, data, {"best found": out.schedule,
                                                  **({baseline["policy"]: baseline["trace"]}
                                                     if baseline else {})})
    engine = ("kill-aware construction" if out.method == "construction" else "CP-SAT model"
              if solver == "cpsat" else f"MILP/{mip_solver} model")
    title = (f"{ts.scenario}: {_run_length(ts)}, {ts.num_jobs} jobs, {engine}, "
             f"in {out.wall_s:.1f} s (time limit {float(limit):g} s)"
             + _interrupted_mark(budget))
    if not data["reproducible"] and workers == 1 and not quiet:
        print("rtgen-opt: solve: a clock stopped a search (the time limit or a busy machine): "
              "this answer may differ on a rerun (JSON reproducible: false)", file=sys.stderr)
    columns, rows = solve_summary_rows(data)
    emit(format, data, columns, rows, title, solve_hint(data), numeric_from=9,
         records=[data], to=to)
    if format == "table" and out.metrics:
        label = "optimum (proven)" if out.status.value == "OPTIMAL" else "best found"
        runs = [{"policy": label, **out.metrics}]
        if baseline:
            runs.append({"policy": f"{baseline['policy']} (best policy)", **baseline["metrics"]})
        columns, rows = _policy_rows(ts, runs)
        emit(format, data, columns, rows, "Per task: the schedule found beside the best policy",
             to=to)
    if not out.replay_ok and out.schedule is not None:
        for problem in out.replay_violations[:10]:
            print(f"rtgen-opt: replay: {problem}", file=sys.stderr)
        raise typer.Exit(EXIT_INTERRUPTED if data["interrupted"] else 1)
    if data["interrupted"]:
        raise typer.Exit(EXIT_INTERRUPTED)
