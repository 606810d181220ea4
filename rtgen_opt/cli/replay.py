"""`rtgen-opt replay`: validate a schedule table."""

from __future__ import annotations

from typing import Annotated

import typer

from rtgen_opt.cli.common import (
    FormatOpt,
    HorizonOpt,
    ScenarioArg,
    SetOpt,
    _check_format,
    _horizon,
    _policy_rows,
    _scenario,
    _taskset,
    app,
)
from rtgen_opt.evaluation.replay import ServiceRules
from rtgen_opt.evaluation.replay import replay as replay_schedule
from rtgen_opt.model.schedule import read_schedule, read_schedule_meta, replay_settings
from rtgen_opt.report.tables import emit

# ----------------------------------------------------------------------------- replay


@app.command()
def replay(
    scenario: ScenarioArg,
    schedule: Annotated[str, typer.Option(metavar="FILE", help="Schedule table (CSV or "
                                          "JSON) to check, as written by --schedule-out.")],
    horizon: HorizonOpt = None,
    set_: SetOpt = None,
    format: FormatOpt = "table",
) -> None:
    """Check a schedule against every constraint of the task set, then evaluate it.

    Exit 0 when the schedule is valid (its metrics are printed), 1 when it violates a
    constraint (each violation is listed). Requests may be left unserved (counted as
    starved); a served one must get its first token by its give-up time and finish by the
    end of the drain. The horizon and --set overrides default to
    those recorded in the schedule file.

    Example: rtgen-opt replay scenario_a --schedule trace.csv
    """
    _check_format(format)
    recorded_horizon, recorded_set = replay_settings(read_schedule_meta(schedule), schedule)
    span = _horizon(horizon) if horizon is not None else recorded_horizon
    ts = _taskset(_scenario(scenario, set_ if set_ else recorded_set), span)
    result = replay_schedule(ts, read_schedule(schedule, ts), ServiceRules.when_served(ts))
    if not result.ok:
        data = {"scenario": ts.scenario, "valid": False, "violations": result.violations}
        emit(format, data, ["violated constraint"], [[v] for v in result.violations],
             f"{schedule}: {len(result.violations)} violated constraints", numeric_from=9)
        raise typer.Exit(1)
    run = {"policy": "replay", **result.metrics}
    data = {"scenario": ts.scenario, "valid": True, **result.metrics}
    columns, rows = _policy_rows(ts, [run])
    emit(format, data, columns, rows, f"{schedule}: valid schedule for {ts.scenario}")
