"""What every command shares: the Typer apps, the common options, loading a scenario and
its task set, running under the wall clock and Ctrl-C, the tables several commands print."""

from __future__ import annotations

import contextlib
import os
import sys
from fractions import Fraction
from typing import Annotated, Optional

import typer

from rtgen_opt import limits
from rtgen_opt.errors import InputError
from rtgen_opt.model.latency import LATENCY_STATISTICS
from rtgen_opt.model.scenario import Scenario, load_scenario
from rtgen_opt.model.size import check_size
from rtgen_opt.model.taskset import TaskSet, build_taskset
from rtgen_opt.output import STDOUT, write_file
from rtgen_opt.report import formats
from rtgen_opt.report.tables import FORMATS, NOWHERE, STDERR
from rtgen_opt.report.tables import STDOUT as STDOUT_STREAM
from rtgen_opt.safeload import load_yaml
from rtgen_opt.supervise import EXIT_INTERRUPTED, Budget, Reporter, supervise
from rtgen_opt.units import parse_duration

app = typer.Typer(
    name="rtgen-opt",
    help="How well can real-time generative-AI workloads be scheduled on a heterogeneous "
    "laptop SoC (CPU + GPU + NPU)?\n\nSCENARIO is a built-in name (scenario_a ... "
    "scenario_d, see `rtgen-opt scenarios list`) or the path of a YAML file.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion: scenario and policy names complete
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
scenarios_app = typer.Typer(help="List and inspect scenarios.", no_args_is_help=True)
db_app = typer.Typer(help="Inspect latency databases.", no_args_is_help=True)
app.add_typer(scenarios_app, name="scenarios")
app.add_typer(db_app, name="db")

FormatOpt = Annotated[str, typer.Option("--format", "-f", metavar="table|json|csv",
                                        help="Output: a table for people, JSON or CSV.")]
SetOpt = Annotated[Optional[list[str]], typer.Option(
    "--set", metavar="KEY=VALUE", help="Override a scenario field, KEY=VALUE; repeatable. "
    "KEY is a top-level key (granularity=model, platform.npu=2) or TASK.FIELD "
    "(llm.input_tokens=2048).")]
HorizonOpt = Annotated[Optional[str], typer.Option(
    "--horizon", metavar="DURATION", help="Requests arrive in [0, horizon), e.g. 60s or 500ms "
    "(default: the scenario's `horizon`); frames go on through the drain after it "
    "(after_horizon: continue).")]


def _check_workers(value: int) -> int:
    if not 0 <= value <= limits.MAX_WORKERS:
        raise InputError("--workers", "", f"an integer from 0 (one per core) to "
                         f"{limits.MAX_WORKERS}", value)
    return value


def _check_seed(value: int) -> int:
    if not 0 <= value <= limits.MAX_SOLVER_SEED:
        raise InputError("--seed", "", f"an integer from 0 to {limits.MAX_SOLVER_SEED}", value)
    return value


LatencyOpt = Annotated[str, typer.Option(
    "--latency", metavar="median|p99", help="Latency statistic of the database to schedule "
    "with: median (latency_ms) or p99 (latency_p99_ms, as measured by `db profile`; the "
    "conservative gate).")]
ScheduleOutOpt = Annotated[Optional[str], typer.Option(
    "--schedule-out", metavar="FILE", help="Write the schedule table (one row per executed "
    "segment): FILE.csv or FILE.json, the extension picks the format; - writes CSV to "
    "stdout.")]
ReportOpt = Annotated[Optional[str], typer.Option(
    "--report", metavar="FILE", help="Also write a report: FILE.html (one self-contained "
    "interactive page, needs the 'report' extra: pip install 'rtgen-opt[report]') or FILE.md "
    "(Markdown); - writes the Markdown to stdout.")]
QuietOpt = Annotated[bool, typer.Option(
    "--quiet", "-q", help="Print nothing but errors: no progress, no table. The files asked "
    "for are written and the exit code still tells the answer.")]
def complete_scenario(incomplete: str) -> list[str]:
    """Shell completion: the built-in scenario names (paths complete as files)."""
    from rtgen_opt.model.scenario import builtin_scenarios

    return [name for name in builtin_scenarios() if name.startswith(incomplete)]


def complete_policy(incomplete: str) -> list[str]:
    """Shell completion: all and the built-in policy names."""
    from rtgen_opt.simulation.policies.classic import POLICIES

    return [n for n in ("all", *POLICIES) if n.startswith(incomplete)]


ScenarioArg = Annotated[str, typer.Argument(
    metavar="SCENARIO", autocompletion=complete_scenario,
    help="A built-in name (scenario_c) or the path of a YAML file.")]
TimeLimitOpt = Annotated[str, typer.Option(
    "--time-limit", metavar="DURATION", help="Wall-clock limit of the whole command, e.g. "
    "60s: the answer comes within it, split a priori between the phases.")]
WorkersOpt = Annotated[int, typer.Option(
    metavar="N", help="CP-SAT workers; 0 = one per core. With 1 the result is reproducible "
    "bit for bit (the search stops on deterministic time).", callback=_check_workers)]


def _check_format(value: str) -> str:
    if value not in FORMATS:
        raise InputError("--format", "", f"one of {', '.join(FORMATS)}", value)
    return value


def _check_trace_format(value: str, schedule_out: str | None = None) -> None:
    """``--schedule-format`` and the ``--schedule-out`` it shapes: chrome without a file
    would be ignored, and a name of another extension (x.txt) would get CSV unsaid."""
    if value not in ("table", "chrome"):
        raise InputError("--schedule-format", "", "table or chrome", value)
    if value == "chrome" and schedule_out is None:
        raise InputError("--schedule-format", "", "--schedule-out FILE beside chrome (the "
                         "format is that file's; without one nothing is written)", value)
    if schedule_out is None or schedule_out == STDOUT:
        return
    if value == "chrome" and not schedule_out.endswith(".json"):
        raise InputError("--schedule-out", "", "a file name ending in .json with "
                         "--schedule-format chrome (trace events are JSON), or -", schedule_out)
    if value == "table" and not schedule_out.endswith((".csv", ".json")):
        raise InputError("--schedule-out", "", "a file name ending in .csv or .json (the "
                         "extension picks the format), or - (CSV on stdout)", schedule_out)


def _horizon(text: str | None, overrides: list[str] | None = None) -> Fraction | None:
    """``--horizon``, checked against a ``--set horizon=...`` beside it: the option wins
    over the scenario's field, so two different values would silently drop the --set."""
    if text is None:
        return None
    try:
        horizon = parse_duration(text, positive=True)
    except ValueError as exc:
        raise InputError("--horizon", "", str(exc), text) from None
    if horizon <= 0:
        raise InputError("--horizon", "", "a positive duration", text)
    assigned = [a.partition("=")[2] for a in overrides or () if a.partition("=")[1]
                and a.partition("=")[0].strip() == "horizon"]
    if assigned:
        try:
            other = parse_duration(load_yaml(assigned[-1], "--set", "horizon"))
        except (InputError, ValueError):
            other = None  # the scenario's validation names what is wrong with it
        if other is not None and other != horizon:
            raise InputError("--horizon", "", f"one horizon: --set horizon={assigned[-1].strip()}"
                             " says another (give one of them, or the same value)", text)
    return horizon


def _run_length(ts: TaskSet) -> str:
    """"60 s + 7.3 s drain": the horizon and the continuing load after it."""
    if getattr(ts, "after_horizon", "continue") == "stop":
        return f"{formats.seconds(ts.horizon_us / 1e6)} (frames stop at the horizon)"
    return (f"{formats.seconds(ts.horizon_us / 1e6)} + {ts.drain_us / 1e6:.1f} s drain")


def _scenario(ref: str, overrides: list[str] | None, latency: str = "median") -> Scenario:
    if latency not in LATENCY_STATISTICS:
        raise InputError("--latency", "", "median or p99", latency)
    return load_scenario(ref, overrides or (), latency)


def _taskset(scenario: Scenario, horizon: Fraction | None, quiet: bool = False) -> TaskSet:
    """Build the task set after its size estimate passed the memory limit; unless
    ``quiet``, say on stderr which declared request arrivals the horizon leaves out."""
    check_size(scenario, horizon)
    ts = build_taskset(scenario, horizon)
    if not quiet:
        for line in late_arrivals(scenario, horizon if horizon is not None
                                  else scenario.horizon):
            print(f"rtgen-opt: warning: {line}", file=sys.stderr)
    return ts


def late_arrivals(scenario: Scenario, horizon: Fraction) -> list[str]:
    """Declared request arrivals at or after the horizon, which release nothing (a run
    that silently served one request of two looked like a result). A task with `after`
    inherits the arrivals of the one it follows: named once, there."""
    lines = []
    for spec in scenario.tasks:
        arrivals = getattr(spec, "arrivals", None)
        if arrivals is None or spec.after is not None:
            continue
        field = f"{scenario.source}: tasks.{spec.name}.arrivals"
        if arrivals.kind == "times":
            late = [t for t in arrivals.times if t >= horizon]
            if late:
                what = (f"{field}.file ({arrivals.file})" if arrivals.file
                        else f"{field}.times")
                lines.append(f"{what}: {len(late)} of {len(arrivals.times)} requests at or "
                             f"after the horizon ({formats.seconds(float(horizon))}) are not "
                             f"released (the first at {formats.seconds(float(late[0]))}); "
                             "lengthen --horizon to run them")
        elif arrivals.start >= horizon:
            lines.append(f"{field}.start: {formats.seconds(float(arrivals.start))} is at or "
                         f"after the horizon ({formats.seconds(float(horizon))}): no request "
                         "is released")
    return lines


def _display_to(quiet: bool, outputs: dict[str, str | None]) -> str | None:
    """Where the command's own output (table, JSON or CSV) goes: nowhere with --quiet;
    to stderr when an output option is ``-`` (stdout carries that file, unmixed); else to
    stdout. ``outputs``: option name -> path. At most one of them may be ``-``."""
    dashes = [option for option, path in outputs.items() if path == STDOUT]
    if len(dashes) > 1:
        raise InputError(dashes[1], "", f"a file path: only one output can go to stdout, "
                         f"and {dashes[0]} is already -", STDOUT)
    _distinct_files(outputs)
    if quiet:
        return NOWHERE
    return STDERR if dashes else STDOUT_STREAM


def _distinct_files(outputs: dict[str, str | None]) -> None:
    """Two output options naming one file: the second write would replace the first
    (``--schedule-out x.json --bound-out x.json`` lost the schedule). Refused before any
    work. Paths are compared with their folder resolved (``./x`` and ``d/../x`` are ``x``),
    not the name itself: a planted link at the name is replaced, never written through."""
    seen: dict[str, str] = {}
    for option, path in outputs.items():
        if not path or path == STDOUT:
            continue
        try:
            folder, name = os.path.split(os.path.abspath(path))
            key = os.path.normcase(os.path.join(os.path.realpath(folder), name))
        except (OSError, ValueError):  # a NUL byte...: check_writable names the problem
            continue
        if key in seen:
            raise InputError(option, "", f"a file other than {seen[key]}'s: both would write "
                             "the same file, and the second would replace the first", path)
        seen[key] = option


def _one_file(option: str, path: str | None, files: int, why: str) -> None:
    """``-`` carries one file: refuse it where the option writes several (one per policy)."""
    if path == STDOUT and files > 1:
        raise InputError(option, "", f"a file name (- is one file on stdout; {why})", path)


def _interrupted_mark(budget: Budget) -> str:
    return " [INTERRUPTED: best answer so far]" if budget.interrupted.is_set() else ""


@contextlib.contextmanager
def _supervised(command: str, limit_s: float | None, quiet: bool = False):
    """Run a command's work under its wall clock, with progress (none with --quiet) and
    Ctrl-C (supervise.py). A second Ctrl-C aborts without an answer: exit 130."""
    budget = Budget(limit_s)  # from the command's start (after Python's ~1 s of imports)
    reporter = Reporter(command, budget, enabled=not quiet)
    try:
        with supervise(budget, reporter):
            yield budget, reporter
    except KeyboardInterrupt:
        print(f"rtgen-opt: {command}: interrupted before an answer", file=sys.stderr)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _policy_rows(ts: TaskSet, runs: list[dict]) -> tuple[list[str], list[list]]:
    frame_tasks = list(runs[0]["tasks"]) if runs else []
    llm_tasks = list(runs[0]["llm"]) if runs else []
    # the drain's share of the violations: what the frames after the horizon cost
    drain = ts.after_horizon == "continue"
    columns = ["policy", "violations %"] + [f"{t} %" for t in frame_tasks]
    columns += ["drain violations"] if drain else []
    for t in llm_tasks:
        columns += [f"{t} TTFT ms", f"{t} TPT ms", f"{t} starved"]
    rows = []
    for run in runs:
        starved = sum(llm["starved"] for llm in run["llm"].values())
        requests = sum(llm["requests"] for llm in run["llm"].values())
        # a policy that starves requests buys its low rate by not serving them: say so
        name = run["policy"] + (f" (starves {starved}/{requests})" if starved else "")
        row = [name, formats.pct(run["violation_rate"])]
        row += [formats.pct(run["tasks"][t]["violation_rate"]) for t in frame_tasks]
        if drain:
            counts = [(run["tasks"][t].get("drain_violations", 0),
                       run["tasks"][t].get("drain_released", 0)) for t in frame_tasks]
            row.append(f"{sum(v for v, _ in counts)}/{sum(r for _, r in counts)}")
        for t in llm_tasks:
            llm = run["llm"][t]
            row += [formats.ms(llm["ttft_ms"]["mean"]), formats.ms(llm["tpt_ms"]["mean"]),
                    f"{llm['starved']}/{llm['requests']}"]
        rows.append(row)
    return columns, rows


def _suffixed(path: str, name: str) -> str:
    stem, dot, ext = path.rpartition(".")
    return f"{stem}.{name}.{ext}" if dot and "/" not in ext else f"{path}.{name}"


STATUS_TEXT = {"OPTIMAL": "OPTIMAL: the fewest violations, proven",
               "FEASIBLE": "FEASIBLE: best found, not proven optimal",
               "INFEASIBLE": "INFEASIBLE: no schedule serves every request",
               "UNKNOWN": "UNKNOWN: no schedule found within the limit"}


def solve_summary_rows(data: dict) -> tuple[list[str], list[list]]:
    """The solve result as quantity/value rows: what was found, what was proven, how."""
    released = data["released"]

    def share(x: float | None) -> str:
        return "-" if x is None else (f"{formats.count(x)} "
                                      f"({formats.pct(x / max(1, released))} % of frames)")

    rows = [["status", STATUS_TEXT.get(data["status"], data["status"])
             + _later_stages(data)]]
    up = data["upper_bound_method"]
    rows.append(["violations" if data["proven"] else "violations (best found)",
                 share(data["violations"]) + (f"; by {up}" if up else "")])
    low = data["lower_bound_method"]
    rows.append(["lower bound (proven)", formats.count(data["violations_lower_bound"])
                 + (f"; by {low}" if low else "")])
    if data["gap_violations"] is not None:
        rows.append(["gap", "0 (proven optimal)" if data["proven"] else
                     f"at most {formats.count(data['gap_violations'])} violation"
                     f"{'' if data['gap_violations'] == 1 else 's'}, "
                     f"{formats.pp(data['gap_pp'])} pp of frames"])
    best = data["best_policy"]
    if best:
        llm = "; ".join(f"{n} TTFT {formats.ms_unit(x['ttft_ms']['mean'])}"
                        for n, x in best["llm"].items())
        rows.append(["best policy", f"{best['policy']}: {formats.count(best['violations'])} "
                     f"violations ({formats.pct(best['violation_rate'])} %)"
                     + (f", {llm}" if llm else "")])
    for stage in data["stages"] or []:  # each objective of the lexicographic solve
        if "value" in stage:
            value = (f"{formats.count(stage['value'])} (bound {formats.count(stage['bound'])}, "
                     f"{stage['status']})")
            rows.append([f"objective {stage['name']}", value])
    rows.append(["replay", "ok" if data["replay_ok"] else "FAILED"])
    if data["interrupted"]:
        rows.append(["interrupted", "yes: the best answer so far"])
    return ["quantity", "value"], rows


def _later_stages(data: dict) -> str:
    """Whether the objectives after the violations (TTFT, TPT) were proven too: the status
    is the violations' alone."""
    if data["status"] != "OPTIMAL":
        return ""
    later = [s for s in data["stages"] or [] if s.get("name") != "violations"]
    open_ = [s["name"] for s in later if s.get("status") != "OPTIMAL"]
    if open_:
        return f" ({' and '.join(open_)}: not proven)"
    return " (and every later objective)" if later else ""


def solve_hint(data: dict) -> str | None:
    """What to do next, and the solver's notes."""
    notes = list(data["notes"] or [])
    if not data["proven"] and data["violations"] is not None:
        notes.append(f"Not proven: the optimum lies between "
                     f"{formats.count(data['violations_lower_bound'])} and "
                     f"{formats.count(data['violations'])}. A coarser --set granularity=group:N, or "
                     "on small instances a longer --time-limit, may close it; "
                     "docs/optimum.md says what each bound can and cannot see.")
    return "\n".join(notes) or None


def _duration_option(option: str, text: str) -> Fraction:
    try:
        value = parse_duration(text, positive=True)
    except ValueError as exc:
        raise InputError(option, "", str(exc), text) from None
    if value <= 0:
        raise InputError(option, "", "a positive duration", text)
    return value


def _check_report_name(report: str | None) -> None:
    if report is not None and report != STDOUT \
            and not report.endswith((".html", ".htm", ".md")):
        raise InputError("--report", "", "a file name ending in .html or .md, or - (the "
                         "Markdown on stdout)", report)


def _write_report(report: str, kind: str, ts: TaskSet, data: dict, schedules: dict,
                  window_us: tuple[int, int] | None = None) -> None:
    """Markdown (gap: its tables; also on stdout, ``-``) or the interactive HTML page
    (report/html.py)."""
    if report.endswith(".md") or report == STDOUT:
        from rtgen_opt.report.gap import markdown
        from rtgen_opt.report.tables import markdown_table

        if kind == "gap":
            text = markdown(data)
        elif kind == "solve":
            text = markdown_table(f"solve: {data['scenario']}, {_run_length(ts)}",
                                  *solve_summary_rows(data))
        else:
            text = markdown_table(f"simulate: {data['scenario']}, {_run_length(ts)}",
                                  *_policy_rows(ts, data["runs"]))
        _write_text(report, text)
        return
    from rtgen_opt.report.html import render

    if kind == "gap":
        from rtgen_opt.report.gap import gap_rows

        tables = [("Each policy against its service-matched optimum (a…b: not proven)",
                   *gap_rows(data))]
    elif kind == "solve":
        tables = [("What was found and what was proven", *solve_summary_rows(data))]
        runs = [{"policy": "optimum" if data["proven"] else "best found", **data}]
        if data["best_policy"]:
            runs.append({**data["best_policy"], "policy": data["best_policy"]["policy"]
                         + " (best policy)"})
        tables.append(("Per task", *_policy_rows(ts, runs)))
    else:
        tables = [("Policies", *_policy_rows(ts, data["runs"]))]
    _write_text(report, render(kind, ts, data, schedules, tables, window_us))


def _write_text(path: str, text: str) -> None:
    """Write a whole file at once (nothing half-written on error)."""
    write_file(path, text)
