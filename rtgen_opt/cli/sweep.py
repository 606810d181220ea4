"""`rtgen-opt sweep`: many scenario variants, one table."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from rtgen_opt.cli.common import FormatOpt, QuietOpt, _check_format, _display_to, _write_text, app
from rtgen_opt.errors import InputError
from rtgen_opt.output import STDOUT
from rtgen_opt.report import formats
from rtgen_opt.report.tables import emit

# ----------------------------------------------------------------------------- sweep


@app.command()
def sweep(
    sweep_file: Annotated[str, typer.Argument(
        metavar="SWEEP", help="A sweep file (YAML) or a built-in example (seq_len).")],
    engine: Annotated[str, typer.Option(
        metavar="local|ray", help="local (a process pool on this machine) or ray (pip install "
        "'rtgen-opt[ray]').")] = "local",
    address: Annotated[Optional[str], typer.Option(
        help="With --engine ray: the cluster to join (host:port or auto; default "
        "$RAY_ADDRESS); without either, Ray starts locally, with token authentication "
        "and a token only this command holds.")] = None,
    workers: Annotated[int, typer.Option(
        help="Runs at a time: local processes, or the CPUs of a local Ray; 0 = one per "
        "core.")] = 0,
    out: Annotated[Optional[str], typer.Option(
        metavar="FILE", help="The results table: FILE.csv, or FILE.parquet (pip install "
        "'rtgen-opt[sweep]'); - writes the CSV to stdout. Default: NAME.csv, NAME from the "
        "sweep file.")] = None,
    report: Annotated[Optional[str], typer.Option(
        metavar="FILE", help="The HTML report with the plots; - writes it to stdout. "
        "Default: the table's name with .html (NAME.html when the table goes to "
        "stdout).")] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Write no report.")] = False,
    cache: Annotated[Optional[str], typer.Option(
        help="Folder of cached results (one file per run, by content hash). Default: "
        "$XDG_CACHE_HOME/rtgen-opt/sweep or ~/.cache/rtgen-opt/sweep.")] = None,
    no_cache: Annotated[bool, typer.Option(
        "--no-cache", help="Compute every run again; read and write no cache.")] = False,
    shared_cache: Annotated[bool, typer.Option(
        "--shared-cache", help="Accept a cache folder that other users can write (refused "
        "otherwise: a record planted there would be served as a result).")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the number of points and runs and the work left; run "
        "nothing.")] = False,
    stop_after: Annotated[Optional[int], typer.Option(
        "--stop-after", hidden=True, help="Test hook: stop as Ctrl-C does after N "
        "computed runs.")] = None,
    format: FormatOpt = "table",
    quiet: QuietOpt = False,
) -> None:
    """Run simulate, solve, check or gap over a grid of scenario overrides, on a local
    process pool or a Ray cluster, into one table (a row per point and policy, every
    override and every metric a column) and an HTML report.

    Finished runs are cached by content: a rerun (after Ctrl-C or a crash) computes only
    what is missing. Exit 0 when every run succeeded, 1 when some failed (each is
    recorded in the table's error column), 130 when interrupted, 2 on bad input.

    Example: rtgen-opt sweep examples/seq_len.yaml --workers 2
    """
    import os
    from pathlib import Path

    from rtgen_opt.sweep import run as sweeps
    from rtgen_opt.sweep.engines import require
    from rtgen_opt.sweep.spec import load_sweep

    _check_format(format)
    require(engine, address)
    if workers < 0:
        raise InputError("--workers", "", "an integer >= 0", workers)
    spec = load_sweep(sweep_file)
    table_path = out or f"{spec.name}.csv"
    sweeps.check_table_path(table_path)
    default_report = f"{spec.name}.html" if table_path == STDOUT \
        else str(Path(table_path).with_suffix(".html"))
    report_path = None if no_report else report or default_report
    to = _display_to(quiet, {"--out": table_path, "--report": report_path})
    store = sweeps.ResultCache(None if no_cache else Path(cache or sweeps.default_cache_dir()),
                               shared=shared_cache)
    runs = sweeps.plan(spec)
    if dry_run:
        data = sweeps.estimate(spec, runs, store, workers or os.cpu_count() or 1)
        emit(format, data, ["what", "how much"], _dry_run_rows(data),
             f"Sweep {spec.name} (dry run)", numeric_from=1, records=[data], to=to)
        return
    progress = sweeps.ProgressLine(sys.stderr, spec.name, enabled=not quiet)
    outcome = sweeps.run_sweep(spec, runs, engine, workers, address, store, progress,
                               stop_after)
    progress.close()
    sweeps.check_plots(spec, outcome.rows)
    sweeps.write_table(outcome.rows, table_path)
    if report_path:
        from rtgen_opt.sweep.report import html_page

        _write_text(report_path, html_page(spec, outcome.rows, table_path, outcome.interrupted))
    data = {"sweep": spec.name, "points": spec.num_points, "runs": outcome.runs,
            "cached": outcome.cached, "computed": outcome.computed, "failed": outcome.failed,
            "missing": outcome.missing, "cache_ignored": outcome.ignored,
            "interrupted": outcome.interrupted,
            "wall_s": round(outcome.wall_s, 3), "table": table_path, "report": report_path,
            "errors": outcome.errors, "rows": outcome.rows}
    frame = sweeps.to_frame(outcome.rows)
    if format == "csv" and to is not None:  # the table file's CSV
        (sys.stderr if to == "stderr" else sys.stdout).write(sweeps.table_csv(outcome.rows))
    elif format != "csv":
        varying = ([] if len(spec.scenarios) == 1 else ["scenario"]) + list(spec.axis_keys) \
            + ([] if len(spec.commands) == 1 else ["command"])
        shown = [c for c in [*varying, "policy"] if c in frame.columns]
        shown += sweeps.plot_columns(spec, list(frame.columns))
        shown += ["error"] if outcome.failed else []
        shown = [c for c in shown if c in frame.columns]
        rows = frame[shown].astype(object).where(frame[shown].notna(), None).values.tolist()
        metrics = set(shown) - set(varying) - {"policy", "error"}
        cells = [[formats.metric(c, v) if c in metrics else v for c, v in zip(shown, row)]
                 for row in rows]
        emit(format, data, [formats.metric_header(c) if c in metrics else c for c in shown],
             cells, f"Sweep {spec.name}: {outcome.runs} runs, "
             f"{outcome.cached} cached, {outcome.computed} computed, {outcome.failed} failed"
             + (", interrupted" if outcome.interrupted else ""),
             f"table: {table_path}" + (f"; report: {report_path}" if report_path else "")
             + "; %: shares as percentages", numeric_from=len(varying) + 1, to=to)
    if outcome.ignored and not quiet:
        print(f"rtgen-opt: sweep: {outcome.ignored} cache records ignored (another run's "
              "key, another format, or unreadable): computed again", file=sys.stderr)
    for line in outcome.errors[:10]:
        print(f"rtgen-opt: sweep: {line}", file=sys.stderr)
    if outcome.interrupted:
        print(f"rtgen-opt: sweep interrupted: {outcome.missing} runs missing; rerun to "
              "finish them (finished runs are cached)", file=sys.stderr)
        raise typer.Exit(130)
    raise typer.Exit(1 if outcome.failed else 0)


def _dry_run_rows(data: dict) -> list[list]:
    """The dry run's quantities for people: lists as words, seconds with one decimal."""
    rows = []
    for key, value in data.items():
        words = key.split("_")
        if isinstance(value, list):
            value = ", ".join(map(str, value)) or "-"
        elif "s" in words:  # seconds: the unit in the name, one decimal
            words = [w for w in words if w != "s"] + ["(s)"]
            value = f"{value:.1f}"
        rows.append([" ".join(words), value])
    return rows
