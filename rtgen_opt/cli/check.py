"""`rtgen-opt check`: the deployment gate."""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated, Optional

import typer

from rtgen_opt.cli.common import (
    FormatOpt,
    HorizonOpt,
    LatencyOpt,
    QuietOpt,
    ScenarioArg,
    SetOpt,
    TimeLimitOpt,
    WorkersOpt,
    _check_format,
    _display_to,
    _duration_option,
    _horizon,
    _interrupted_mark,
    _run_length,
    _scenario,
    _supervised,
    _taskset,
    app,
    complete_policy,
)
from rtgen_opt.errors import InputError
from rtgen_opt.model.realization import realization_text
from rtgen_opt.output import check_writable, write_file
from rtgen_opt.report import formats
from rtgen_opt.report.tables import emit
from rtgen_opt.simulation.policies.loader import load_policy
from rtgen_opt.supervise import EXIT_INTERRUPTED

# ----------------------------------------------------------------------------- check


@app.command()
def check(
    scenario: ScenarioArg,
    policy: Annotated[Optional[str], typer.Option(
        metavar="POLICY", autocompletion=complete_policy, help="Check this policy (a "
        "name, or your own FILE.py:CLASS), for every realization of the timing ranges, "
        "instead of asking the solver whether any schedule works.")] = None,
    optimal: Annotated[bool, typer.Option(
        "--optimal", help="Ask the solver whether any schedule works (a time-triggered "
        "table): the explicit form of the default without --policy, for scripts; refused "
        "beside --policy, --witness-out and --margin (a policy's).")] = False,
    horizon: HorizonOpt = None,
    slo: Annotated[bool, typer.Option(
        "--slo", help="Also require every request's TTFT and TPT within its SLOs (with the "
        "solver: TTFT SLOs become constraints; TPT is checked on the schedule found).")]
    = False,
    max_fps: Annotated[Optional[str], typer.Option(
        "--max-fps", metavar="TASK", help="Bracket the highest frame rate of this periodic "
        "task that stays schedulable (deadline = period): highest rate proven, lowest "
        "refuted, the unknown band between; the whole search within --time-limit.")] = None,
    witness_out: Annotated[Optional[str], typer.Option(
        "--witness-out", metavar="FILE", help="With --policy: when the answer is no, write "
        "the realization (ready times, durations) under which the policy misses; `simulate "
        "--realization FILE` replays it; - writes it to stdout.")] = None,
    margin: Annotated[bool, typer.Option(
        "--margin", help="With --policy: also bracket the critical scaling factor — how far "
        "every duration's upper end may grow while the policy stays schedulable (shares "
        "--time-limit with the verdict).")] = False,
    junit: Annotated[Optional[str], typer.Option(
        "--junit", metavar="FILE", help="Also write the answer as JUnit XML (one test case; "
        "a failure for no, an error for unknown), which every CI system renders; - writes "
        "it to stdout.")] = None,
    time_limit: TimeLimitOpt = "60s",
    workers: WorkersOpt = 0,
    latency: LatencyOpt = "median",
    set_: SetOpt = None,
    format: FormatOpt = "table",
    quiet: QuietOpt = False,
) -> None:
    """The deployment gate: exit 0 when the scenario is proven schedulable, 1 when it is
    proven not, 3 when it was not decided within the time limit, 2 on bad input, 130 when
    interrupted.

    Schedulable: no frame misses its deadline, every request gets its first token by its
    give-up time and completes by the end of the drain. Cheap analytical necessary
    conditions run first.

    With --policy P the question is "does P meet every deadline for every realization":
    every ready time within [arrival, arrival + jitter] and every duration within its range
    (scenario key execution: [lo, hi], database columns latency_min_ms/latency_max_ms).
    yes is proven for all of them (exact analysis); no comes with a witness realization
    (--witness-out); unknown otherwise. Without ranges there is one realization.

    Without --policy the solver answers a narrower question: yes, a time-triggered table
    works with every segment at its longest and every job ready at its latest; no, no
    schedule exists even at the shortest durations; for these request arrivals only.

    Example: rtgen-opt check scenario_a --horizon 2s --policy edf-dyn
    """
    from rtgen_opt.analysis import check as checks
    from rtgen_opt.commands.check import check_command

    _check_format(format)
    chosen = None if policy is None else load_policy(policy)
    if policy is not None and optimal:
        raise InputError("--optimal", "", "either --policy P or --optimal, not both")
    for flag, given in (("--witness-out", witness_out), ("--margin", margin)):
        if given and chosen is None:
            raise InputError(flag, "", "--policy P (a witness and a margin are a policy's; "
                             + ("--optimal asks the solver)" if optimal else
                                "without it the solver answers)"))
    if max_fps is not None:  # a bracket of rates: no single answer to witness or export
        for flag, given in (("--witness-out", witness_out), ("--margin", margin),
                            ("--junit", junit)):
            if given:
                raise InputError(flag, "", "no --max-fps (it brackets a rate: no single "
                                 "verdict to witness, bracket or write as JUnit)")
    outputs = {"--witness-out": witness_out, "--junit": junit}
    to = _display_to(quiet, outputs)
    for flag, path in outputs.items():
        if path is not None:
            check_writable(path, flag)
    limit = float(_duration_option("--time-limit", time_limit))
    with _supervised("check", limit, quiet) as (budget, say):
        s = _scenario(scenario, set_, latency)
        ts = _taskset(s, _horizon(horizon, set_), quiet)
        if max_fps is not None:
            _check_max_fps(checks, s, ts, max_fps, chosen, slo, budget, say, workers, format,
                           to)
        say.phase("analytical tests, then " + (f"{chosen.name} in every realization"
                                               if chosen else "the solver"))
        data, verdict = check_command(ts, chosen, budget.share(1.0), workers, slo, margin,
                                      s.execution, latency, progress=say, budget=budget)
    if margin:
        data["margin"] = verdict.margin  # null: the time limit ran out before the bracket
    if witness_out is not None and verdict.witness is not None:
        write_file(witness_out, realization_text(ts, verdict.witness, scenario, set_ or ()))
        data["witness"] = witness_out
    if junit is not None:
        write_file(junit, junit_xml(data, ts))
    rows = [[verdict.verdict, _yes_no(verdict.proven), verdict.method, verdict.reason]]
    if margin and verdict.margin:
        rows.append(["margin", "", "scaling of upper ends", _margin_text(verdict.margin)])
    emit(format, data, ["verdict", "proven", "method", "reason"], rows,
         f"{ts.scenario}: {_run_length(ts)}, schedulable? ({verdict.question})"
         + _interrupted_mark(budget), _assumption_text(data["assumptions"]), numeric_from=9,
         records=[data], to=to)
    raise typer.Exit(EXIT_INTERRUPTED if verdict.interrupted else verdict.exit_code)


def junit_xml(data: dict, ts) -> str:
    """The answer as a JUnit XML report: one test suite, one test case (its name the
    question), a <failure> for no and an <error> for unknown, the reason as the message."""
    from xml.sax.saxutils import quoteattr

    verdict = data["verdict"]
    name = f"{data['scenario']}: {data.get('question') or data['method']}"
    message = data["reason"] + (f" (witness: {data['witness']})" if data.get("witness") else "")
    failures, errors = int(verdict == "no"), int(verdict == "unknown")
    body = ""
    if failures:
        body = f"<failure message={quoteattr(message)} type=\"not schedulable\"/>"
    elif errors:
        body = f"<error message={quoteattr(message)} type=\"undecided\"/>"
    props = "".join(f"<property name={quoteattr(k)} value={quoteattr(str(v))}/>"
                    for k, v in (data.get("assumptions") or {}).items())
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            f"<testsuites><testsuite name=\"rtgen-opt check\" tests=\"1\" "
            f"failures=\"{failures}\" errors=\"{errors}\">"
            f"<properties>{props}</properties>"
            f"<testcase classname={quoteattr(data['scenario'])} name={quoteattr(name)}>"
            f"{body}<system-out>{_escape(data['reason'])}</system-out></testcase>"
            "</testsuite></testsuites>\n")


def _escape(text: str) -> str:
    from xml.sax.saxutils import escape

    return escape(text)


def _assumption_text(a: dict) -> str:
    lo, hi = a["execution"]
    jitter = ", ".join(f"{k} {formats.ms_unit(v)}" for k, v in a["jitter_ms"].items()) \
        or "none"
    return (f"assumes: durations within [{lo:g}, {hi:g}] x the {a['latency']} latency, "
            f"release jitter {jitter}, request arrivals as declared")


def _margin_text(m: dict) -> str:
    proven, refuted = m["scaling_proven"], m["scaling_refuted"]
    safe = "none proven" if proven is None else f"safe up to {formats.factor(proven)}x"
    broken = ("not refuted up to 4x" if refuted is None
              else f"misses from {formats.factor(refuted)}x")
    return f"{safe}; {broken}"


def _check_max_fps(checks, s, ts, task, policy, slo, budget, say, workers, format,
                   to) -> None:
    periodic = [t.name for t in s.tasks if t.kind == "periodic"]
    if task not in periodic:
        raise InputError("--max-fps", "", "the name of a periodic task of the scenario "
                         f"({', '.join(periodic)})", task)
    say.phase(f"bracketing the rate of {task}")
    bracket = checks.max_fps(s, task, Fraction(ts.horizon_us, 1_000_000), policy,
                             budget.share(1.0), workers, slo=slo, budget=budget, progress=say)
    method = f"policy:{policy.name}" if policy else "optimal"
    data = bracket.as_dict(ts.scenario, method)
    rows = [[formats.fps(fps, unit=False), v.verdict, v.method, v.reason]
            for fps, v in sorted(bracket.tried, key=lambda x: x[0])]
    band = bracket.unknown_between
    title = (f"{ts.scenario}: rate of {task} ({method}): proven schedulable up to "
             f"{_fps(bracket.max_fps_proven)}, refuted from {_fps(bracket.min_fps_refuted)}"
             + (_unknown_band(band) if band else "")
             + _interrupted_mark(budget))
    emit(format, data, ["fps", "verdict", "method", "reason"], rows, title,
         "rates tried, in order of rate; the bracket assumes a higher rate is never easier",
         numeric_from=9, records=sorted(data["tried"], key=lambda t: t["fps"]), to=to)
    raise typer.Exit(EXIT_INTERRUPTED if bracket.interrupted else bracket.exit_code)


def _unknown_band(band: list) -> str:
    low, high = band
    if high is None:
        return f", unknown from {formats.fps(low)} up"
    return f", unknown between {formats.fps(low, unit=False)} and {formats.fps(high)}"


def _fps(value: float | None) -> str:
    return formats.fps(value)


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"
