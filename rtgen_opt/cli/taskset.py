"""`rtgen-opt taskset`."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from rtgen_opt.cli.common import (
    FormatOpt,
    HorizonOpt,
    QuietOpt,
    ScenarioArg,
    SetOpt,
    _check_format,
    _display_to,
    _horizon,
    _run_length,
    _scenario,
    _taskset,
    _write_text,
    app,
)
from rtgen_opt.output import check_writable
from rtgen_opt.report import formats
from rtgen_opt.report.tables import emit

# ----------------------------------------------------------------------------- taskset


@app.command()
def taskset(
    scenario: ScenarioArg,
    horizon: HorizonOpt = None,
    set_: SetOpt = None,
    export: Annotated[Optional[str], typer.Option(
        "--taskset-out", "--export", metavar="FILE", help="Also write the complete task set "
        "(every job and segment) as JSON to FILE; - writes it to stdout. (--export: the old "
        "name, kept for one release.)")] = None,
    format: FormatOpt = "table",
    quiet: QuietOpt = False,
) -> None:
    """Expand a scenario into jobs and segments over a horizon.

    Example: rtgen-opt taskset scenario_c --horizon 1s --format json
    """
    _check_format(format)
    to = _display_to(quiet, {"--taskset-out": export})
    if export:
        check_writable(export, "--taskset-out")
    ts = _taskset(_scenario(scenario, set_), _horizon(horizon, set_), quiet)
    data = ts.summary()
    records = task_records(ts, data)
    columns = ["task", "model", "kind", "jobs", "in drain", "segments/job", "period ms",
               "deadline ms", "standalone ms", "best-backend util %"]
    rows = [[r["task"], r["model"], r["kind"], r["jobs"], r["drain_jobs"],
             r["segments_per_job"], formats.ms(r["period_ms"]), formats.ms(r["deadline_ms"]),
             formats.ms(r["standalone_ms"]), formats.pct(r["utilization"])] for r in records]
    hp = "-" if ts.hyperperiod_s is None else formats.ms_unit(float(ts.hyperperiod_s) * 1000)
    caption = (f"{ts.num_jobs} jobs, {ts.num_segments} segments over {_run_length(ts)}; "
               f"hyperperiod {hp}; granularity {ts.granularity}; best-backend util: the "
               "standalone time over the period")
    if export:
        _write_text(export, ts.to_json())
    emit(format, data, columns, rows, f"Task set of {ts.scenario}", caption, numeric_from=3,
         records=records, to=to)


def task_records(ts, data: dict) -> list[dict]:
    """One row per task, raw numbers (the CSV): its jobs, those in the drain, segments per
    job, period, deadline and standalone time in ms, standalone time over the period."""
    return [{"task": t.name, "model": t.model, "kind": t.kind, "jobs": t.num_jobs,
             "drain_jobs": data["tasks"][t.name]["drain_jobs"],
             "segments_per_job": t.segs_per_job,
             "period_ms": t.period_us / 1000 if t.period_us else None,
             "deadline_ms": None if t.deadline_us is None else t.deadline_us / 1000,
             "standalone_ms": t.standalone_us / 1000,
             "utilization": t.standalone_us / t.period_us if t.period_us else None}
            for t in ts.tasks]
