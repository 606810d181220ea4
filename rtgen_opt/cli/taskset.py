"""`rtgen-opt taskset`."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from rtgen_opt.cli.common import (
    FormatOpt,
    HorizonOpt,
    ScenarioArg,
    SetOpt,
    _check_format,
    _horizon,
    _run_length,
    _scenario,
    _taskset,
    _write_text,
    app,
)
from rtgen_opt.output import check_writable
from rtgen_opt.report.tables import emit

# ----------------------------------------------------------------------------- taskset


@app.command()
def taskset(
    scenario: ScenarioArg,
    horizon: HorizonOpt = None,
    set_: SetOpt = None,
    export: Annotated[Optional[str], typer.Option(
        "--taskset-out", "--export", metavar="FILE", help="Also write the complete task set "
        "(every job and segment) as JSON to FILE. (--export: the old name, kept for one "
        "release.)")] = None,
    format: FormatOpt = "table",
) -> None:
    """Expand a scenario into jobs and segments over a horizon.

    Example: rtgen-opt taskset scenario_c --horizon 1s --format json
    """
    _check_format(format)
    if export:
        check_writable(export, "--export")
    ts = _taskset(_scenario(scenario, set_), _horizon(horizon))
    data = ts.summary()
    columns = ["task", "model", "kind", "jobs", "in drain", "segments/job", "deadline_ms",
               "standalone_ms", "best-backend util"]
    rows = []
    for t in ts.tasks:
        util = (t.standalone_us / t.period_us) if t.period_us else None
        rows.append([t.name, t.model, t.kind, t.num_jobs, data["tasks"][t.name]["drain_jobs"],
                     t.segs_per_job, None if t.deadline_us is None else t.deadline_us / 1000,
                     t.standalone_us / 1000, util])
    hp = "-" if ts.hyperperiod_s is None else f"{float(ts.hyperperiod_s) * 1000:.6g} ms"
    caption = (f"{ts.num_jobs} jobs, {ts.num_segments} segments over {_run_length(ts)}; "
               f"hyperperiod {hp}; granularity {ts.granularity}")
    if export:
        _write_text(export, ts.to_json())
    emit(format, data, columns, rows, f"Task set of {ts.scenario}", caption, numeric_from=3)
