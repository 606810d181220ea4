"""`rtgen-opt replay`: validate a schedule table."""

from __future__ import annotations

from typing import Annotated

import typer

from rtgen_opt.cli.common import (
    FormatOpt,
    HorizonOpt,
    LatencyOpt,
    QuietOpt,
    ScenarioArg,
    SetOpt,
    _check_format,
    _display_to,
    _horizon,
    _policy_rows,
    _scenario,
    _taskset,
    app,
)
from rtgen_opt.errors import InputError
from rtgen_opt.evaluation.replay import ServiceRules
from rtgen_opt.evaluation.replay import replay as replay_schedule
from rtgen_opt.model.overrides import blame_metadata
from rtgen_opt.model.schedule import read_schedule, read_schedule_meta, replay_settings
from rtgen_opt.report.tables import emit
from rtgen_opt.safeload import input_name

# ----------------------------------------------------------------------------- replay


@app.command()
def replay(
    scenario: ScenarioArg,
    schedule: Annotated[str, typer.Option(metavar="FILE", help="Schedule table (CSV or "
                                          "JSON) to check, as written by --schedule-out; "
                                          "- reads it from stdin.")],
    horizon: HorizonOpt = None,
    latency: LatencyOpt = "median",
    set_: SetOpt = None,
    from_schedule: Annotated[bool, typer.Option(
        "--settings-from-schedule", help="Take the horizon and --set overrides from the "
        "schedule file's metadata (printed with the answer) instead of the command line.")]
    = False,
    format: FormatOpt = "table",
    quiet: QuietOpt = False,
) -> None:
    """Check a schedule against every constraint of the task set, then evaluate it.

    Exit 0 when the schedule is valid (its metrics are printed), 1 when it violates a
    constraint (each violation is listed), 2 when the file was written for another task
    set. The task set is the command line's: SCENARIO, --horizon (default: the scenario's)
    and --set; a schedule whose metadata records other settings is refused, naming both —
    a file cannot loosen the check it is replayed against. --settings-from-schedule applies
    the file's settings instead, and says so. Requests may be left unserved (counted as
    starved); a served one must get its first token by its give-up time and finish by the
    end of the drain.

    Example: rtgen-opt replay scenario_a --schedule trace.csv --horizon 1s
    """
    _check_format(format)
    to = _display_to(quiet, {})
    span, overrides, applied = _horizon(horizon, set_), list(set_ or []), None
    if from_schedule:
        if horizon is not None or set_:
            raise InputError("--settings-from-schedule", "", "no --horizon or --set beside "
                             "it (the settings come from the schedule file)", schedule)
        meta = read_schedule_meta(schedule)
        if meta is None:
            raise InputError(schedule, "", "a schedule file with metadata for "
                             "--settings-from-schedule (as rtgen-opt writes it)")
        span, overrides = replay_settings(meta, schedule)
        applied = {"horizon_s": float(span), "set": overrides}
    try:
        ts = _taskset(_scenario(scenario, overrides, latency), span, quiet)
    except InputError as exc:
        if applied is None:
            raise
        raise blame_metadata(exc, input_name(schedule), overrides) from None
    result = replay_schedule(ts, read_schedule(schedule, ts, overrides),
                             ServiceRules.when_served(ts))
    name = input_name(schedule)
    said = "" if applied is None else (f" (settings from the schedule file: horizon "
                                       f"{applied['horizon_s']:g} s, --set "
                                       f"{' '.join(overrides) or 'none'})")
    extra = {} if applied is None else {"settings_from_schedule": applied}
    if not result.ok:
        data = {"scenario": ts.scenario, "valid": False, **extra,
                "violations": result.violations}
        emit(format, data, ["violated constraint"], [[v] for v in result.violations],
             f"{name}: {len(result.violations)} violated constraints{said}",
             numeric_from=9, records=[{"violation": v} for v in result.violations], to=to)
        raise typer.Exit(1)
    run = {"policy": "replay", **result.metrics}
    data = {"scenario": ts.scenario, "valid": True, **extra, **result.metrics}
    columns, rows = _policy_rows(ts, [run])
    emit(format, data, columns, rows, f"{name}: valid schedule for {ts.scenario}{said}",
         records=[run], to=to)
