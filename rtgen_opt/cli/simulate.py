"""`rtgen-opt simulate`: run policies in the executor."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from rtgen_opt import limits
from rtgen_opt.analysis.sampling import draw, run_samples, summarize
from rtgen_opt.cli.common import (
    FormatOpt,
    HorizonOpt,
    LatencyOpt,
    QuietOpt,
    ReportOpt,
    ScenarioArg,
    SetOpt,
    _check_format,
    _check_report_name,
    _check_trace_format,
    _display_to,
    _horizon,
    _interrupted_mark,
    _one_file,
    _policy_rows,
    _run_length,
    _scenario,
    _suffixed,
    _supervised,
    _taskset,
    _write_report,
    app,
    complete_policy,
)
from rtgen_opt.commands.simulate import simulate_run
from rtgen_opt.errors import InputError
from rtgen_opt.model.realization import read_realization, realization_text
from rtgen_opt.output import check_writable, write_files
from rtgen_opt.report import formats
from rtgen_opt.report.tables import emit
from rtgen_opt.simulation.policies.classic import POLICIES
from rtgen_opt.simulation.policies.loader import load_policy
from rtgen_opt.supervise import EXIT_INTERRUPTED

# ----------------------------------------------------------------------------- simulate


@app.command()
def simulate(
    scenario: ScenarioArg,
    policy: Annotated[Optional[list[str]], typer.Option(
        metavar="POLICY", autocompletion=complete_policy,
        help="all, or one of " + ", ".join(POLICIES) + ", or your own: "
        "FILE.py:CLASS (or a package's entry point of the group rtgen_opt.policies); "
        "repeatable and comma-separated: --policy ftf,kill-aware (default: all).")] = None,
    horizon: HorizonOpt = None,
    set_: SetOpt = None,
    schedule_out: Annotated[Optional[str], typer.Option(
        "--schedule-out", "--trace", metavar="FILE", help="Write the schedule table (one "
        "row per executed segment): FILE.csv or FILE.json, the extension picks the format; - "
        "writes CSV to stdout (one policy). With --policy all, one file per policy (out.csv -> out.ftf.csv "
        "...). (--trace: the old name, kept for one release.)")] = None,
    trace_format: Annotated[str, typer.Option(
        "--schedule-format", "--trace-format", metavar="table|chrome",
        help="table (the schedule table, CSV or JSON) or chrome (trace events for "
        "chrome://tracing or Perfetto; --trace-format: the old name).")] = "table",
    report: ReportOpt = None,
    latency: LatencyOpt = "median",
    realization: Annotated[Optional[str], typer.Option(
        "--realization", metavar="FILE", help="Run this realization (ready time per job, "
        "duration per segment; absent entries nominal), e.g. a witness of check or of "
        "--samples --witness-out; - reads it from stdin.")] = None,
    samples: Annotated[Optional[int], typer.Option(
        "--samples", metavar="N", help="Monte Carlo: run N random realizations per policy "
        "(durations and ready times uniform in their ranges) and report each metric's "
        "distribution.")] = None,
    seed: Annotated[int, typer.Option(
        "--seed", metavar="S", help="Seed of --samples (same seed, same samples, whatever "
        "the number of workers).")] = 0,
    workers: Annotated[int, typer.Option(
        "--workers", metavar="W", help="Processes for --samples (0: one per core).")] = 0,
    witness_out: Annotated[Optional[str], typer.Option(
        "--witness-out", metavar="FILE", help="With --samples: write the worst sampled "
        "realization (most violations, then starved requests) as a realization file; "
        "--realization FILE replays it. With several policies, one file per policy; - "
        "writes it to stdout (one policy).")] = None,
    format: FormatOpt = "table",
    quiet: QuietOpt = False,
) -> None:
    """Run the heuristic policies of the paper in the event-driven executor.

    Example: rtgen-opt simulate scenario_c --policy all --horizon 60s --report sim.html
    """
    _check_format(format)
    specs, loaded = {}, {}
    for name in policy_names(policy):
        chosen = load_policy(name)
        if chosen.name not in specs:  # a policy named twice runs once
            specs[chosen.name], loaded[chosen.name] = name, chosen
    policies = list(loaded.values())
    _check_trace_format(trace_format, schedule_out)
    _check_report_name(report)
    _check_sampling(realization, samples, seed, workers, witness_out)
    to = _display_to(quiet, {"--schedule-out": schedule_out, "--witness-out": witness_out,
                             "--report": report})
    _one_file("--schedule-out", schedule_out, len(policies), "give one --policy")
    _one_file("--witness-out", witness_out, len(policies), "give one --policy")
    if report:
        check_writable(report, "--report")
    for chosen in policies if schedule_out else ():  # every target, before any work
        check_writable(schedule_out if len(policies) == 1
                       else _suffixed(schedule_out, chosen.name), "--schedule-out")
    for chosen in policies if witness_out else ():
        check_writable(witness_out if len(policies) == 1
                       else _suffixed(witness_out, chosen.name), "--witness-out")
    runs, outputs, traces, sample_values = [], {}, {}, {}
    with _supervised("simulate", None, quiet) as (budget, say):
        ts = _taskset(_scenario(scenario, set_, latency), _horizon(horizon, set_), quiet)
        given = None if realization is None else read_realization(realization, ts, scenario,
                                                                  set_ or ())
        for chosen in policies:
            if budget.interrupted.is_set():
                break
            name = chosen.name
            say.phase(f"simulating {name}")
            run, result = simulate_run(ts, chosen, name, given)
            runs.append(run)
            if given is not None:
                runs[-1]["realization"] = realization
            traces[name] = result.schedule
            if schedule_out:
                target = schedule_out if len(policies) == 1 else _suffixed(schedule_out, name)
                outputs[target] = result.schedule.to_text(ts, target, trace_format,
                                                             set_ or ())
            if samples:
                say.phase(f"sampling {name}")
                sampled = run_samples(ts, specs[name], samples, seed, workers, say,
                                      budget.interrupted.is_set)
                runs[-1]["samples"] = summarize(sampled)
                sample_values[name] = [x["violations"] for x in sampled.samples]
                worst = sampled.worst_index()
                if witness_out and worst is not None:
                    target = witness_out if len(policies) == 1 else _suffixed(witness_out,
                                                                              name)
                    runs[-1]["samples"]["witness"] = target
                    outputs[target] = realization_text(ts, draw(ts, seed, worst), scenario,
                                                       set_ or ())
    interrupted = budget.interrupted.is_set()
    write_files(outputs)  # all runs succeeded: now every trace, or none
    data = {"scenario": ts.scenario, "horizon_s": ts.horizon_us / 1e6,
            "drain_s": ts.drain_us / 1e6, "after_horizon": ts.after_horizon, "runs": runs,
            "interrupted": interrupted}
    if given is not None:
        data["realization"] = realization
    if report:
        _write_report(report, "simulate", ts, {**data, "sample_values": sample_values},
                      traces)
    columns, rows = _policy_rows(ts, runs)
    if samples:
        columns, rows = _with_sample_columns(columns, rows, runs)
    emit(format, data, columns, rows, f"{ts.scenario}: {_run_length(ts)}, "
         f"{ts.num_jobs} jobs, granularity {ts.granularity}, on_miss {ts.on_miss}, "
         f"preemption {ts.preemption}" + _realization_mark(realization, samples, seed)
         + _interrupted_mark(budget),
         "violations: frames dropped or late / released, over the whole run; "
         + ("drain violations: those of frames released after the horizon; "
            if ts.after_horizon == "continue" else "")
         + "TTFT, TPT: means over served requests; starved: no first token within the "
         "request's give-up time"
         + (_SAMPLE_NOTE if samples else ""),
         numeric_from=1, records=runs, to=to)
    if interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)


_SAMPLE_NOTE = ("; the policy's row is the nominal run; sampled: violations over the "
                "realizations (mean, p99, max) and how many had a miss, with a 95 % bound "
                "on the miss probability: below it, or at least it when every sample missed "
                "(sampling evidence, not a proof)")


def policy_names(given: list[str] | None) -> list[str]:
    """--policy values: repeatable, comma-separated, "all" for every built-in policy."""
    names = []
    for value in given or ["all"]:
        for name in (n.strip() for n in value.split(",")):
            if not name:
                raise InputError("--policy", "", "a policy name (an empty name between "
                                 "commas)", value)
            names += list(POLICIES) if name == "all" else [name]
    return list(dict.fromkeys(names))


def _check_sampling(realization, samples, seed, workers, witness_out) -> None:
    if realization is not None and samples is not None:
        raise InputError("--realization", "", "either --realization FILE or --samples N, "
                         "not both", realization)
    if samples is not None and not 1 <= samples <= MAX_SAMPLES:
        raise InputError("--samples", "", f"an integer from 1 to {MAX_SAMPLES:,}", samples)
    if not 0 <= seed <= limits.MAX_SEED:
        raise InputError("--seed", "", f"an integer from 0 to {limits.MAX_SEED}", seed)
    if not 0 <= workers <= limits.MAX_WORKERS:
        raise InputError("--workers", "", f"an integer from 0 to {limits.MAX_WORKERS}",
                         workers)
    if witness_out is not None and samples is None:
        raise InputError("--witness-out", "", "--samples N with it (the worst of the "
                         "sampled realizations is the witness)", witness_out)


MAX_SAMPLES = 10**7


def _realization_mark(realization, samples, seed) -> str:
    if realization is not None:
        return f", realization {realization}"
    if samples:
        return f", nominal run + {samples} sampled realizations (seed {seed})"
    return ""


def _with_sample_columns(columns: list, rows: list, runs: list) -> tuple[list, list]:
    columns = columns + ["sampled violations mean/p99/max", "samples with a miss",
                         "miss probability (95 %)"]
    out = []
    for row, run in zip(rows, runs):
        s = run.get("samples")
        if s is None or not s["n"]:
            out.append(row + [None, None, None])
            continue
        v = s["violations"]
        # mean and p99 are statistics of counts (fractional); the max is a count
        spread = f"{v['mean']:.1f}/{v['p99']:.1f}/{formats.count(v['max'])}"
        out.append(row + [spread, f"{s['miss']['samples_with_miss']}/{s['n']}",
                          _probability_cell(s["miss"], s["n"])])
    return columns, out


def _probability_cell(miss: dict, n: int) -> str:
    """The informative side of the 95 % interval, as the JSON statement says it."""
    if miss["samples_with_miss"] == n:
        return f"≥ {formats.factor(miss['probability_lower_95'])}"
    upper = miss["probability_upper_95"]
    return "not below 1 (too few samples)" if upper >= 1 else f"< {formats.factor(upper)}"
