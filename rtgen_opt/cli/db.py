"""`rtgen-opt db show|profile`."""

from __future__ import annotations

import sys
from collections import defaultdict
from typing import Annotated, Optional

import typer

from rtgen_opt.cli.common import FormatOpt, QuietOpt, _check_format, _display_to, db_app
from rtgen_opt.errors import InputError
from rtgen_opt.model.latency import load_db, resolve_db
from rtgen_opt.model.taskset import STAGE_NAMES
from rtgen_opt.output import STDOUT
from rtgen_opt.report import formats
from rtgen_opt.report.tables import emit

# ----------------------------------------------------------------------------- db


@db_app.command("show")
def db_show(
    db: Annotated[str, typer.Option(metavar="DB", help="Built-in database name or path.")]
    = "ryzen_ai_9_365",
    model: Annotated[Optional[str], typer.Option(metavar="MODEL", help="Only this model.")]
    = None,
    backend: Annotated[Optional[str], typer.Option(metavar="BACKEND",
                                                   help="Only this backend.")] = None,
    stage: Annotated[Optional[str], typer.Option(metavar="STAGE", help="Only this stage: "
                                                 "frame, prefill or decode.")] = None,
    layers: Annotated[bool, typer.Option("--layers", help="Table: one row per layer "
                                         "instead of stage totals.")] = False,
    format: FormatOpt = "table",
    quiet: QuietOpt = False,
) -> None:
    """Show a latency database: rows as stored (JSON; CSV: the columns of latency.csv) or
    stage totals (table).

    Example: rtgen-opt db show --model llama3.2-1b --stage prefill
    """
    _check_format(format)
    to = _display_to(quiet, {})
    path = resolve_db(db)
    if path is None:
        raise InputError("--db", "", "a built-in database name or a path", db)
    database = load_db(path)
    for option, value, known in (("--model", model, database.models),
                                 ("--backend", backend, database.backends),
                                 ("--stage", stage, STAGE_NAMES)):
        if value is not None and value not in known:
            raise InputError(option, "", f"one of {', '.join(known)}", value)
    keep = [r for r in database.rows if (model is None or r["model"] == model)
            and (backend is None or r["backend"] == backend)
            and (stage is None or r["stage"] == stage)]
    totals: dict[tuple, dict] = defaultdict(lambda: {"latency_ms": 0.0})
    for r in keep:
        key = (r["model"], r["stage"], r["backend"], r["seq_len"])
        totals[key].update(layers=r["layers"], source=r["source"])
        totals[key]["latency_ms"] += r["latency_ms"]
    stage_rows = [{"model": k[0], "stage": k[1], "backend": k[2], "seq_len": k[3],
                   "layers": v["layers"], "latency_ms": round(v["latency_ms"], 4)}
                  for k, v in totals.items()]
    data = {"db": database.name, "rows": [dict(r) for r in keep], "stages": stage_rows}
    columns = ["model", "stage", "backend", "seq_len", "layers", "latency_ms", "layer", "source"]
    shown = keep if layers else stage_rows
    if not layers:
        columns = columns[:6]
    rows = [[formats.ms(r[c]) if c == "latency_ms" else r[c] for c in columns] for r in shown]
    emit(format, data, [c.replace("_ms", " ms") for c in columns], rows,
         f"Latency database {database.name} ({path})",
         "latency ms: the whole stage (one token for decode); derivation in the database "
         "README" if not layers else None, numeric_from=3, records=data["rows"], to=to)


@db_app.command("profile")
def db_profile(
    out: Annotated[str, typer.Option(help="Database folder to write or merge into (rows "
                                     "of the profiled models and backends are replaced).",
                                     show_default=False)],
    models: Annotated[Optional[list[str]], typer.Argument(
        help="ONNX models to time, FILE.onnx (named after the file) or NAME=FILE.onnx.",
        show_default=False)] = None,
    model: Annotated[Optional[list[str]], typer.Option(
        "--model", help="NAME=FILE.onnx: a vision model or encoder; repeatable.")] = None,
    llm: Annotated[Optional[list[str]], typer.Option(
        "--llm", help="NAME=ARCH: an LLM decoder layer synthesised from an architecture "
        "description (built-in: llama3.2-1b; or a YAML file), or NAME=LAYER.onnx@LAYERS: "
        "your own exported decoder layer with past key/value inputs; repeatable.")] = None,
    providers: Annotated[Optional[str], typer.Option(
        help="Execution providers, comma-separated (cpu, cuda, rocm, dml, migraphx, "
        "vitisai, openvino, qnn, ...); default: every available one.")] = None,
    backend: Annotated[Optional[list[str]], typer.Option(
        "--backend", help="EP=BACKEND: the backend a provider's rows go to (default: "
        "cpu; cuda/rocm/dml/migraphx/tensorrt -> gpu; vitisai/openvino/qnn -> npu).")] = None,
    provider_option: Annotated[Optional[list[str]], typer.Option(
        "--provider-option", help="EP:KEY=VALUE passed to the provider, e.g. "
        "vitisai:config_file=vaip_config.json; repeatable.")] = None,
    seq_lens: Annotated[Optional[str], typer.Option(
        "--seq-lens", help="Input lengths, comma-separated: the sweep of encoders' "
        "sequence axes, and LLM prefill lengths (default for LLMs 128,512,1024).")] = None,
    context_lens: Annotated[Optional[str], typer.Option(
        "--context-lens", help="LLM decode context lengths (default 128,1024,2048).")] = None,
    shape: Annotated[Optional[list[str]], typer.Option(
        "--shape", help="INPUT=1x3x224x224: the shape of a model input; repeatable.")] = None,
    dim: Annotated[Optional[list[str]], typer.Option(
        "--dim", help="AXIS=N: a value for a named dynamic axis; repeatable.")] = None,
    threads: Annotated[Optional[int], typer.Option(
        help="Intra-op threads (default: the CPUs this process may use).")] = None,
    warmup: Annotated[int, typer.Option(help="Untimed runs per point first.")] = 2,
    runs: Annotated[int, typer.Option(help="Timed runs per point (median and p99 of "
                                      "them).")] = 20,
    format: FormatOpt = "table",
    quiet: QuietOpt = False,
) -> None:
    """Measure latencies on this device with ONNX Runtime and write a latency database.

    Needs the extra: pip install 'rtgen-opt[profile]'. Ctrl-C stops it (exit 130);
    the same command resumes where it stopped.

    Example: rtgen-opt db profile yolo.onnx --llm llama3.2-1b=llama3.2-1b --out my_laptop
    """
    from rtgen_opt.profile import profile

    _check_format(format)
    to = _display_to(quiet, {})
    if out == STDOUT:
        raise InputError("--out", "", "a database folder (a database is several files: "
                         "not -)", out)
    try:
        data = profile([*(models or ()), *(model or ())], llm or [], out,
                       providers=providers.split(",") if providers else None,
                       backends=backend, provider_options=provider_option,
                       seq_lens=seq_lens, context_lens=context_lens, shapes=shape, dims=dim,
                       threads=threads, warmup=warmup, runs=runs, show_progress=not quiet)
    except KeyboardInterrupt:
        print(f"rtgen-opt: interrupted; the points measured so far are kept in {out}: rerun "
              "the same command to finish", file=sys.stderr)
        raise typer.Exit(130) from None
    columns = ["model", "stage", "backend", "unit", "seq_len", "median_ms", "p99_ms",
               "samples"]
    rows = [[formats.ms(p[c]) if c.endswith("_ms") else p[c] for c in columns]
            for p in data["points"]]
    emit(format, data, [c.replace("_ms", " ms") for c in columns], rows,
         f"Profiled into {data['db']}: {data['rows_written']} rows ({data['rows_kept']} "
         "kept from before)", data["points"][0]["source"] if data["points"] else None,
         numeric_from=4, records=[{c: p[c] for c in columns} for p in data["points"]], to=to)
