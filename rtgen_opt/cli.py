"""The `rtgen-opt` command line (Typer). Commands only parse, call the library and render.

Exit codes: 0 success, 1 a check failed, 2 bad input (one message naming the file, the
field and what was expected; never a traceback).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from fractions import Fraction
from typing import Annotated, Optional

import typer

from . import __version__
from .errors import InputError
from .latency import LATENCY_STATISTICS, load_db, resolve_db
from .report import FORMATS, emit
from .scenario import Scenario, builtin_scenarios, load_scenario
from .executor import simulate as run_policy
from .metrics import evaluate
from .policies import POLICIES
from .policy_loader import load_policy
from .replay import replay as replay_schedule
from .schedule import read_schedule
from .taskset import STAGE_NAMES, TaskSet, build_taskset
from .units import DURATION_HELP, parse_duration

app = typer.Typer(
    name="rtgen-opt",
    help="How well can real-time generative-AI workloads be scheduled on a heterogeneous "
    "laptop SoC (CPU + GPU + NPU)?\n\nSCENARIO is a built-in name (scenario_a ... "
    "scenario_d, see `rtgen-opt scenarios list`) or the path of a YAML file.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
scenarios_app = typer.Typer(help="List and inspect scenarios.", no_args_is_help=True)
db_app = typer.Typer(help="Inspect latency databases.", no_args_is_help=True)
app.add_typer(scenarios_app, name="scenarios")
app.add_typer(db_app, name="db")

FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table | json | csv")]
SetOpt = Annotated[Optional[list[str]], typer.Option(
    "--set", help="Override a scenario field, KEY=VALUE; repeatable. KEY is a top-level key "
    "(granularity=model, platform.npu=2) or TASK.FIELD (llm.input_tokens=2048).")]
HorizonOpt = Annotated[Optional[str], typer.Option(
    "--horizon", help="Jobs are released in [0, horizon), e.g. 60s or 500ms "
    "(default: the scenario's `horizon`).")]
LatencyOpt = Annotated[str, typer.Option(
    "--latency", help="Latency statistic of the database to schedule with: median "
    "(latency_ms) or p99 (latency_p99_ms, as measured by `db profile`; the conservative "
    "gate).")]
WorkersOpt = Annotated[int, typer.Option(
    help="CP-SAT workers; 0 = one per core. With 1 the result is reproducible bit for bit "
    "(the search stops on deterministic time).")]


def _check_format(value: str) -> str:
    if value not in FORMATS:
        raise InputError("--format", "", f"one of {', '.join(FORMATS)}", value)
    return value


def _check_trace_format(value: str) -> None:
    if value not in ("table", "chrome"):
        raise InputError("--trace-format", "", "table or chrome", value)


def _horizon(text: str | None) -> Fraction | None:
    if text is None:
        return None
    try:
        horizon = parse_duration(text)
    except ValueError:
        raise InputError("--horizon", "", DURATION_HELP, text) from None
    if horizon <= 0:
        raise InputError("--horizon", "", "a positive duration", text)
    return horizon


def _scenario(ref: str, overrides: list[str] | None, latency: str = "median") -> Scenario:
    if latency not in LATENCY_STATISTICS:
        raise InputError("--latency", "", "median or p99", latency)
    return load_scenario(ref, overrides or (), latency)


# ----------------------------------------------------------------------------- scenarios


@scenarios_app.command("list")
def scenarios_list(format: FormatOpt = "table") -> None:
    """List the built-in scenarios.

    Example: rtgen-opt scenarios list --format json
    """
    _check_format(format)
    items = []
    for name, path in builtin_scenarios().items():
        items.append({"name": name, "description": load_scenario(str(path)).description,
                      "path": str(path)})
    emit(format, {"scenarios": items}, ["name", "description"],
         [[s["name"], s["description"]] for s in items], "Built-in scenarios", numeric_from=9)


@scenarios_app.command("show")
def scenarios_show(scenario: str, set_: SetOpt = None, format: FormatOpt = "table") -> None:
    """Show a scenario after validation and overrides: settings and tasks.

    Example: rtgen-opt scenarios show scenario_d --set llm.input_tokens=32
    """
    _check_format(format)
    s = _scenario(scenario, set_)
    tasks = [_task_dict(t) for t in s.tasks]
    data = {
        "name": s.name, "description": s.description, "path": s.source,
        "latency_db": s.db.name, "platform": s.platform,
        "horizon_s": None if s.horizon is None else float(s.horizon),
        "granularity": s.granularity, "on_miss": s.on_miss, "preemption": s.preemption,
        "mapping": {f"{m}/{st}": b for (m, st), b in s.mapping.items()}, "tasks": tasks,
    }
    columns = ["task", "model", "kind", "rate", "deadline", "tokens in/out", "after"]
    rows = [[t["name"], t["model"], t["kind"], t["rate"], t["deadline"], t["tokens"],
             t["after"]] for t in tasks]
    caption = (f"{s.description}\nplatform {s.platform}, granularity {s.granularity}, "
               f"on_miss {s.on_miss}, preemption {s.preemption}, db {s.db.name}")
    emit(format, data, columns, rows, f"Scenario {s.name} ({s.source})", caption, 9)


def _task_dict(t) -> dict:
    ms = lambda x: None if x is None else f"{float(x) * 1000:.6g}ms"  # noqa: E731
    if t.kind == "periodic":
        rate = f"{float(1 / t.period):.6g} FPS"
    elif t.arrivals.kind == "every":
        rate = f"every {float(t.arrivals.every):g}s"
    elif t.arrivals.kind == "times":
        rate = f"{len(t.arrivals.times)} times"
    else:
        rate = f"poisson {t.arrivals.rate}/s"
    tokens = (f"{t.input_tokens or '-'}/{t.output_tokens or '-'}"
              if t.input_tokens or t.output_tokens else None)
    return {"name": t.name, "model": t.model, "kind": t.kind, "rate": rate,
            "deadline": ms(t.deadline), "tokens": tokens, "after": t.after,
            "weight": t.weight, "ttft": ms(t.ttft), "tpt": ms(t.tpt)}


# ----------------------------------------------------------------------------- db


@db_app.command("show")
def db_show(
    db: Annotated[str, typer.Option(help="Built-in database name or path.")] = "ryzen_ai_9_365",
    model: Annotated[Optional[str], typer.Option(help="Only this model.")] = None,
    backend: Annotated[Optional[str], typer.Option(help="Only this backend.")] = None,
    stage: Annotated[Optional[str], typer.Option(help="Only this stage.")] = None,
    layers: Annotated[bool, typer.Option("--layers", help="Table: one row per layer "
                                         "instead of stage totals.")] = False,
    format: FormatOpt = "table",
) -> None:
    """Show a latency database: rows as stored (JSON, CSV) or stage totals (table).

    Example: rtgen-opt db show --model llama3.2-1b --stage prefill
    """
    _check_format(format)
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
    if format == "csv" or layers:
        rows = [[r[c] for c in columns] for r in keep]
    else:
        columns = columns[:6]
        rows = [[r[c] for c in columns] for r in stage_rows]
    emit(format, data, columns, rows, f"Latency database {database.name} ({path})",
         "latency_ms: the whole stage (one token for decode); derivation in the database "
         "README" if not layers else None, numeric_from=3)


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
) -> None:
    """Measure latencies on this device with ONNX Runtime and write a latency database.

    Needs the extra: pip install 'rtgen-opt[profile]'. Ctrl-C stops it (exit 130);
    the same command resumes where it stopped.

    Example: rtgen-opt db profile yolo.onnx --llm llama3.2-1b=llama3.2-1b --out my_laptop
    """
    from .profile import profile

    _check_format(format)
    try:
        data = profile([*(models or ()), *(model or ())], llm or [], out,
                       providers=providers.split(",") if providers else None,
                       backends=backend, provider_options=provider_option,
                       seq_lens=seq_lens, context_lens=context_lens, shapes=shape, dims=dim,
                       threads=threads, warmup=warmup, runs=runs)
    except KeyboardInterrupt:
        print(f"rtgen-opt: interrupted; the points measured so far are kept in {out}: rerun "
              "the same command to finish", file=sys.stderr)
        raise typer.Exit(130) from None
    columns = ["model", "stage", "backend", "unit", "seq_len", "median_ms", "p99_ms",
               "samples"]
    emit(format, data, columns, [[p[c] for c in columns] for p in data["points"]],
         f"Profiled into {data['db']}: {data['rows_written']} rows ({data['rows_kept']} "
         "kept from before)", data["points"][0]["source"] if data["points"] else None,
         numeric_from=4)


# ----------------------------------------------------------------------------- taskset


@app.command()
def taskset(
    scenario: str,
    horizon: HorizonOpt = None,
    set_: SetOpt = None,
    export: Annotated[Optional[str], typer.Option(
        help="Also write the complete task set (every job and segment) as JSON to this "
        "file.")] = None,
    format: FormatOpt = "table",
) -> None:
    """Expand a scenario into jobs and segments over a horizon.

    Example: rtgen-opt taskset scenario_c --horizon 1s --format json
    """
    _check_format(format)
    ts = build_taskset(_scenario(scenario, set_), _horizon(horizon))
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


# ----------------------------------------------------------------------------- simulate


def _run_length(ts) -> str:
    """"60 s + 8.5 s drain": the horizon and the continuing load after it."""
    if ts.after_horizon == "stop":
        return f"{ts.horizon_us / 1e6:g} s (frames stop at the horizon)"
    return f"{ts.horizon_us / 1e6:g} s + {ts.drain_us / 1e6:.1f} s drain"


@app.command()
def simulate(
    scenario: str,
    policy: Annotated[str, typer.Option(
        help="all, or one of " + ", ".join(POLICIES) + ", or your own: FILE.py:CLASS "
        "(or a package's entry point of the group rtgen_opt.policies).")] = "all",
    horizon: HorizonOpt = None,
    set_: SetOpt = None,
    trace: Annotated[Optional[str], typer.Option(
        help="Write the schedule table (one row per executed segment) to this file: CSV, "
        "or JSON if it ends in .json. With --policy all, one file per policy "
        "(trace.csv -> trace.ftf.csv ...).")] = None,
    trace_format: Annotated[str, typer.Option(
        "--trace-format", help="table (the schedule table, CSV or JSON) or chrome (trace "
        "events for chrome://tracing or Perfetto).")] = "table",
    latency: LatencyOpt = "median",
    format: FormatOpt = "table",
) -> None:
    """Run the heuristic policies of the paper in the event-driven executor.

    Example: rtgen-opt simulate scenario_c --policy all --horizon 60s
    """
    _check_format(format)
    policies = list(POLICIES.values()) if policy == "all" else [load_policy(policy)]
    _check_trace_format(trace_format)
    ts = build_taskset(_scenario(scenario, set_, latency), _horizon(horizon))
    runs, outputs = [], {}
    for chosen in _progress(policies, f"simulating {ts.scenario}"):
        name = chosen.name
        result = run_policy(ts, chosen)
        runs.append({"policy": name, **evaluate(ts, result.schedule), "events": result.events,
                     "wall_s": round(result.wall_s, 4)})
        if trace:
            target = trace if len(policies) == 1 else _suffixed(trace, name)
            outputs[target] = result.schedule.to_text(ts, target, trace_format)
    for target, text in outputs.items():  # all runs succeeded: now write
        _write_text(target, text)
    data = {"scenario": ts.scenario, "horizon_s": ts.horizon_us / 1e6,
            "drain_s": ts.drain_us / 1e6, "after_horizon": ts.after_horizon, "runs": runs}
    columns, rows = _policy_rows(ts, runs)
    emit(format, data, columns, rows, f"{ts.scenario}: {_run_length(ts)}, "
         f"{ts.num_jobs} jobs, granularity {ts.granularity}, on_miss {ts.on_miss}, "
         f"preemption {ts.preemption}",
         "violations: frames dropped or late / released, over the whole run; "
         + ("drain violations: those of frames released after the horizon; "
            if ts.after_horizon == "continue" else "")
         + "TTFT, TPT: means over served requests; starved: no first token within the "
         "request's give-up time",
         numeric_from=1)


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
        row = [run["policy"], 100 * run["violation_rate"]]
        row += [100 * run["tasks"][t]["violation_rate"] for t in frame_tasks]
        if drain:
            counts = [(run["tasks"][t]["drain_violations"], run["tasks"][t]["drain_released"])
                      for t in frame_tasks]
            row.append(f"{sum(v for v, _ in counts)}/{sum(r for _, r in counts)}")
        for t in llm_tasks:
            llm = run["llm"][t]
            row += [llm["ttft_ms"]["mean"], llm["tpt_ms"]["mean"],
                    f"{llm['starved']}/{llm['requests']}"]
        rows.append(row)
    return columns, rows


def _suffixed(path: str, name: str) -> str:
    stem, dot, ext = path.rpartition(".")
    return f"{stem}.{name}.{ext}" if dot and "/" not in ext else f"{path}.{name}"


def _progress(items: list, label: str):
    """Iterate with a progress bar on stderr when it is a terminal."""
    if not sys.stderr.isatty() or len(items) < 2:
        yield from items
        return
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        bar = progress.add_task(label, total=len(items))
        for item in items:
            progress.update(bar, description=f"{label}: {item}")
            yield item
            progress.advance(bar)


# ----------------------------------------------------------------------------- solve


@app.command()
def solve(
    scenario: str,
    horizon: HorizonOpt = None,
    solver: Annotated[str, typer.Option(help="cpsat (OR-Tools CP-SAT) or milp (PuLP).")]
    = "cpsat",
    mip_solver: Annotated[str, typer.Option(
        "--mip-solver", help="MILP engine: cbc (ships with PuLP) or highs (pip install "
        "'rtgen-opt[highs]').")] = "cbc",
    time_limit: Annotated[str, typer.Option(
        "--time-limit", help="Wall-clock limit for the whole command, e.g. 60s.")] = "60s",
    workers: WorkersOpt = 0,
    seed: Annotated[int, typer.Option(help="Random seed of the solver.")] = 0,
    ttft: Annotated[str, typer.Option(help="Second objective: sum or max of the LLM "
                                      "TTFTs.")] = "sum",
    schedule_out: Annotated[Optional[str], typer.Option(
        "--schedule-out", help="Write the schedule (CSV, or JSON if it ends in .json).")] = None,
    export_model: Annotated[Optional[str], typer.Option(
        "--export-model", help="Write the model for debugging: the CP-SAT proto (of the "
        "first window for long horizons), or the MILP as an LP file.")] = None,
    export_bound: Annotated[Optional[str], typer.Option(
        "--export-bound", metavar="FILE", help="Write the lower bound's certificate (JSON: "
        "the prices on backend time and the value they prove), for anyone to re-check.")]
    = None,
    trace_format: Annotated[str, typer.Option(
        "--trace-format", help="Format of --schedule-out: table (CSV or JSON) or chrome.")]
    = "table",
    latency: LatencyOpt = "median",
    set_: SetOpt = None,
    format: FormatOpt = "table",
) -> None:
    """Compute the best schedule any scheduler could achieve, or a schedule with a proven
    lower bound and the gap between them.

    Frames are firm (on time or dropped); every LLM request is served. Objectives, in
    order: weighted frame violations, LLM TTFT, TPT. The schedule is replayed by the
    executor's checker: exit 1 if it breaks a constraint or its metrics disagree.

    Example: rtgen-opt solve scenario_c --horizon 1s --time-limit 30s
    """
    from .solve import solve as run_solver

    _check_format(format)
    from .formulations.milp import available_engines

    if solver not in ("cpsat", "milp"):
        raise InputError("--solver", "", "cpsat or milp", solver)
    if solver == "milp" and mip_solver not in available_engines():
        raise InputError("--mip-solver", "", f"an installed MILP engine "
                         f"({', '.join(available_engines()) or 'none'}; HiGHS: pip install "
                         "'rtgen-opt[highs]')", mip_solver)
    if ttft not in ("sum", "max"):
        raise InputError("--ttft", "", "sum or max", ttft)
    _check_trace_format(trace_format)
    if workers < 0:
        raise InputError("--workers", "", "an integer >= 0", workers)
    limit = _duration_option("--time-limit", time_limit)
    ts = build_taskset(_scenario(scenario, set_, latency), _horizon(horizon))
    say = (lambda m: print(f"[solve] {m}", file=sys.stderr)) if format == "table" else None
    out = run_solver(ts, float(limit), workers, seed, ttft, progress=say,
                     export_model=export_model, solver=solver, mip_solver=mip_solver)
    if schedule_out and out.schedule is not None:
        _write_text(schedule_out, out.schedule.to_text(ts, schedule_out, trace_format))
    if export_bound and out.bound is not None and out.bound.prices is not None:
        from .formulations.bounds.certificate import certificate_json
        from .formulations.problem import Problem

        _write_text(export_bound, certificate_json(Problem(ts, ttft=ttft), out.bound.prices,
                                                   out.bound.exact))
    metrics = out.metrics or {}
    data = {
        "scenario": ts.scenario, "horizon_s": ts.horizon_us / 1e6, "solver": solver,
        "mip_solver": mip_solver if solver == "milp" else None,
        "status": out.status.value, "violations": out.violations,
        "violations_lower_bound": out.violations_lower_bound, "gap": out.gap,
        "tasks": metrics.get("tasks"), "llm": metrics.get("llm"),
        "violation_rate": metrics.get("violation_rate"),
        "utilization": metrics.get("utilization"), "placement": metrics.get("placement"),
        "replay_ok": out.replay_ok, "replay_violations": out.replay_violations,
        "method": out.method, "warm_start": out.warm_start, "granularity": ts.granularity,
        "lower_bound_method": out.lower_bound_method,
        "upper_bound_method": out.upper_bound_method,
        "gap_violations": None if out.violations is None
        else out.violations - out.violations_lower_bound,
        "gap_pct_of_frames": None if out.violations is None or not metrics.get("tasks")
        else 100 * (out.violations - out.violations_lower_bound)
        / max(1, sum(t["released"] for t in metrics["tasks"].values())),
        "stages": out.stages, "windows": out.windows, "notes": out.notes,
        "wall_s": round(out.wall_s, 3),
    }
    columns, rows = ["status", "violations", "lower bound", "gap", "replay"], [[
        out.status.value, out.violations, out.violations_lower_bound,
        None if out.gap is None else f"{100 * out.gap:.1f} %",
        "ok" if out.replay_ok else "FAILED"]]
    engine = "CP-SAT" if solver == "cpsat" else f"MILP/{mip_solver}"
    emit(format, data, columns, rows, f"{ts.scenario}: {ts.horizon_us / 1e6:g} s, "
         f"{ts.num_jobs} jobs, {engine} ({out.method}), {out.wall_s:.1f} s",
         "; ".join(out.notes) or None)
    if format == "table" and metrics:
        columns, rows = _policy_rows(ts, [{"policy": "optimum", **metrics}])
        emit(format, data, columns, rows, "Schedule found")
    if not out.replay_ok:
        for problem in out.replay_violations[:10]:
            print(f"rtgen-opt: replay: {problem}", file=sys.stderr)
        raise typer.Exit(1)


def _duration_option(option: str, text: str) -> Fraction:
    try:
        value = parse_duration(text)
    except ValueError:
        raise InputError(option, "", DURATION_HELP, text) from None
    if value <= 0:
        raise InputError(option, "", "a positive duration", text)
    return value


# ----------------------------------------------------------------------------- gap


@app.command()
def gap(
    scenario: str,
    horizon: HorizonOpt = None,
    report: Annotated[Optional[str], typer.Option(
        help="Also write a report: FILE.html (self-contained page with charts) or FILE.md "
        "(Markdown for a PR comment).")] = None,
    window: Annotated[Optional[str], typer.Option(
        help="Time window of the report's Gantt charts, e.g. 2s..3s (default: the first "
        "200 ms).")] = None,
    time_limit: Annotated[str, typer.Option(
        "--time-limit", help="Solver time for the whole analysis, e.g. 120s.")] = "120s",
    workers: WorkersOpt = 0,
    set_: SetOpt = None,
    policy: Annotated[Optional[list[str]], typer.Option(
        help="Also compare this policy: your own FILE.py:CLASS (or an entry point); "
        "repeatable.")] = None,
    format: FormatOpt = "table",
) -> None:
    """How far is each policy from the best possible schedule?

    Runs the five policies and the solver on the same task set: per policy its
    violations, its service-matched optimum (the fewest violations of any schedule that
    serves every request at least as fast as the policy did) and the gap; the plain
    optimum; the Pareto front of violations against the LLM's TTFT.

    Example: rtgen-opt gap scenario_c --horizon 2s --report report.html
    """
    from .gap import gap_analysis
    from .gap_report import gap_rows, html_page, markdown

    _check_format(format)
    if report is not None and not report.endswith((".html", ".htm", ".md")):
        raise InputError("--report", "", "a file name ending in .html or .md", report)
    limit = float(_duration_option("--time-limit", time_limit))
    ts = build_taskset(_scenario(scenario, set_), _horizon(horizon))
    span = _window(window, ts)
    say = (lambda m: print(f"[gap] {m}", file=sys.stderr)) if format == "table" else None
    extra = [p for p in map(load_policy, policy or ()) if p.name not in POLICIES]
    data = gap_analysis(ts, limit, workers, progress=say,
                        policies=list(POLICIES.values()) + extra)
    if report:
        text = markdown(data) if report.endswith(".md") else html_page(data, ts, span)
        _write_text(report, text)
    data.pop("_schedules")
    columns, rows = gap_rows(data)
    emit(format, data, columns, rows, f"Optimality gap: {ts.scenario}, "
         f"{ts.horizon_us / 1e6:g} s ({data['wall_s']:.0f} s)",
         "matched optimum: fewest violations serving every request at least as fast as the "
         "policy; a…b: not proven", numeric_from=1)


def _window(text: str | None, ts: TaskSet) -> tuple[int, int]:
    if text is None:
        return 0, min(ts.horizon_us, 200_000)
    start, sep, end = text.partition("..")
    try:
        a, b = parse_duration(start.strip()), parse_duration(end.strip())
    except ValueError:
        raise InputError("--window", "", "START..END with durations, like 2s..3s", text) from None
    if not sep or b <= a:
        raise InputError("--window", "", "START..END with START < END, like 2s..3s", text)
    return int(a * 1_000_000), int(b * 1_000_000)


# ----------------------------------------------------------------------------- check


@app.command()
def check(
    scenario: str,
    policy: Annotated[Optional[str], typer.Option(
        help="Check this policy (simulated; a name, or your own FILE.py:CLASS) instead of "
        "asking whether any schedule works.")] = None,
    optimal: Annotated[bool, typer.Option(
        "--optimal", help="Ask the solver whether any schedule meets every deadline "
        "(the default).")] = False,
    horizon: HorizonOpt = None,
    slo: Annotated[bool, typer.Option(
        "--slo", help="With --policy: also require every request's TTFT and TPT within "
        "its SLOs.")] = False,
    max_fps: Annotated[Optional[str], typer.Option(
        "--max-fps", help="Find, by bisection, the highest frame rate of this task that "
        "stays schedulable (deadline = period).")] = None,
    time_limit: Annotated[str, typer.Option(
        "--time-limit", help="Solver limit per check, e.g. 60s.")] = "60s",
    workers: WorkersOpt = 0,
    latency: LatencyOpt = "median",
    set_: SetOpt = None,
    format: FormatOpt = "table",
) -> None:
    """The deployment gate: exit 0 when the scenario is schedulable, 1 when it is not (or
    when the solver cannot tell within the time limit), 2 on bad input.

    Schedulable: no frame misses its deadline and no request starves. Cheap analytical
    necessary conditions run first; then the policy, or the solver.

    Example: rtgen-opt check scenario_a --horizon 2s --policy edf-dyn
    """
    from . import check as checks

    _check_format(format)
    chosen = None if policy is None else load_policy(policy)
    if policy is not None and optimal:
        raise InputError("--optimal", "", "either --policy P or --optimal, not both")
    limit = float(_duration_option("--time-limit", time_limit))
    s = _scenario(scenario, set_, latency)
    ts = build_taskset(s, _horizon(horizon))
    if max_fps is not None:
        if max_fps not in [t.name for t in s.tasks if t.kind == "periodic"]:
            raise InputError("--max-fps", "", "the name of a periodic task of the scenario "
                             f"({', '.join(t.name for t in s.tasks if t.kind == 'periodic')})",
                             max_fps)
        fps, tried = checks.max_fps(s, max_fps, Fraction(ts.horizon_us, 1_000_000), chosen,
                                    limit, workers)
        method = f"policy:{policy}" if policy else "optimal"
        data = {"scenario": ts.scenario, "task": max_fps, "max_fps": fps, "method": method,
                "tried": [{"fps": f, "schedulable": ok} for f, ok in tried]}
        emit(format, data, ["fps", "schedulable"], [[f, ok] for f, ok in tried],
             f"{ts.scenario}: highest schedulable rate of {max_fps} ({method}): "
             f"{'none' if fps is None else f'{fps:g} FPS'}", numeric_from=0)
        raise typer.Exit(0 if fps is not None else 1)
    verdict = checks.check(ts, chosen, limit, workers, slo)
    data = verdict.as_dict(ts.scenario)
    emit(format, data, ["schedulable", "method", "reason"],
         [["yes" if verdict.schedulable else ("unknown" if not verdict.proven else "no"),
           verdict.method, verdict.reason]],
         f"{ts.scenario}: {_run_length(ts)}", numeric_from=9)
    raise typer.Exit(0 if verdict.schedulable else 1)


# ----------------------------------------------------------------------------- replay


@app.command()
def replay(
    scenario: str,
    schedule: Annotated[str, typer.Option(help="Schedule table (CSV or JSON) to check, as "
                                          "written by --trace or --schedule-out.")],
    horizon: HorizonOpt = None,
    set_: SetOpt = None,
    format: FormatOpt = "table",
) -> None:
    """Check a schedule against every constraint of the task set, then evaluate it.

    Exit 0 when the schedule is valid (its metrics are printed), 1 when it violates a
    constraint (each violation is listed).

    Example: rtgen-opt replay scenario_a --horizon 1s --schedule trace.csv
    """
    _check_format(format)
    ts = build_taskset(_scenario(scenario, set_), _horizon(horizon))
    result = replay_schedule(ts, read_schedule(schedule, ts))
    if not result.ok:
        data = {"scenario": ts.scenario, "valid": False, "violations": result.violations}
        emit(format, data, ["violated constraint"], [[v] for v in result.violations],
             f"{schedule}: {len(result.violations)} violated constraints", numeric_from=9)
        raise typer.Exit(1)
    run = {"policy": "replay", **result.metrics}
    data = {"scenario": ts.scenario, "valid": True, **result.metrics}
    columns, rows = _policy_rows(ts, [run])
    emit(format, data, columns, rows, f"{schedule}: valid schedule for {ts.scenario}")


# ----------------------------------------------------------------------------- sweep


@app.command()
def sweep(
    sweep_file: Annotated[str, typer.Argument(
        metavar="SWEEP", help="A sweep file (YAML) or a built-in example (seq_len).")],
    engine: Annotated[str, typer.Option(
        help="local (a process pool on this machine) or ray (pip install "
        "'rtgen-opt[ray]').")] = "local",
    address: Annotated[Optional[str], typer.Option(
        help="With --engine ray: the cluster to join (host:port or auto; default "
        "$RAY_ADDRESS); without either, Ray starts locally.")] = None,
    workers: Annotated[int, typer.Option(
        help="Runs at a time: local processes, or the CPUs of a local Ray; 0 = one per "
        "core.")] = 0,
    out: Annotated[Optional[str], typer.Option(
        help="The results table: FILE.csv, or FILE.parquet (pip install "
        "'rtgen-opt[sweep]'). Default: NAME.csv, NAME from the sweep file.")] = None,
    report: Annotated[Optional[str], typer.Option(
        help="The HTML report with the plots. Default: the table's name with .html.")] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Write no report.")] = False,
    cache: Annotated[Optional[str], typer.Option(
        help="Folder of cached results (one file per run, by content hash). Default: "
        "$XDG_CACHE_HOME/rtgen-opt/sweep or ~/.cache/rtgen-opt/sweep.")] = None,
    no_cache: Annotated[bool, typer.Option(
        "--no-cache", help="Compute every run again; read and write no cache.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the number of points and runs and the work left; run "
        "nothing.")] = False,
    stop_after: Annotated[Optional[int], typer.Option(
        "--stop-after", hidden=True, help="Test hook: stop as Ctrl-C does after N "
        "computed runs.")] = None,
    format: FormatOpt = "table",
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

    from . import sweep as sweeps
    from .sweep_engines import require
    from .sweep_file import load_sweep

    _check_format(format)
    require(engine, address)
    if workers < 0:
        raise InputError("--workers", "", "an integer >= 0", workers)
    spec = load_sweep(sweep_file)
    table_path = out or f"{spec.name}.csv"
    sweeps.check_table_path(table_path)
    report_path = None if no_report else report or str(Path(table_path).with_suffix(".html"))
    store = sweeps.ResultCache(None if no_cache else Path(cache or sweeps.default_cache_dir()))
    runs = sweeps.plan(spec)
    if dry_run:
        data = sweeps.estimate(spec, runs, store, workers or os.cpu_count() or 1)
        emit(format, data, ["what", "how much"], [[k, v] for k, v in data.items()],
             f"Sweep {spec.name} (dry run)", numeric_from=1)
        return
    progress = sweeps.ProgressLine(sys.stderr, spec.name)
    outcome = sweeps.run_sweep(spec, runs, engine, workers, address, store, progress,
                               stop_after)
    progress.close()
    sweeps.write_table(outcome.rows, table_path)
    if report_path:
        from .sweep_report import html_page

        _write_text(report_path, html_page(spec, outcome.rows, table_path, outcome.interrupted))
    data = {"sweep": spec.name, "points": spec.num_points, "runs": outcome.runs,
            "cached": outcome.cached, "computed": outcome.computed, "failed": outcome.failed,
            "missing": outcome.missing, "interrupted": outcome.interrupted,
            "wall_s": round(outcome.wall_s, 3), "table": table_path, "report": report_path,
            "errors": outcome.errors, "rows": outcome.rows}
    frame = sweeps.to_frame(outcome.rows)
    if format == "csv":
        sys.stdout.write(frame.to_csv(index=False))
    else:
        varying = ([] if len(spec.scenarios) == 1 else ["scenario"]) + list(spec.axis_keys) \
            + ([] if len(spec.commands) == 1 else ["command"])
        shown = [c for c in [*varying, "policy"] if c in frame.columns]
        shown += sweeps.plot_columns(spec, list(frame.columns))
        shown += ["error"] if outcome.failed else []
        shown = [c for c in shown if c in frame.columns]
        rows = frame[shown].astype(object).where(frame[shown].notna(), None).values.tolist()
        emit(format, data, shown, rows, f"Sweep {spec.name}: {outcome.runs} runs, "
             f"{outcome.cached} cached, {outcome.computed} computed, {outcome.failed} failed"
             + (", interrupted" if outcome.interrupted else ""),
             f"table: {table_path}" + (f"; report: {report_path}" if report_path else ""),
             numeric_from=len(varying) + 1)
    for line in outcome.errors[:10]:
        print(f"rtgen-opt: sweep: {line}", file=sys.stderr)
    if outcome.interrupted:
        print(f"rtgen-opt: sweep interrupted: {outcome.missing} runs missing; rerun to "
              "finish them (finished runs are cached)", file=sys.stderr)
        raise typer.Exit(130)
    raise typer.Exit(1 if outcome.failed else 0)


def _write_text(path: str, text: str) -> None:
    """Write a whole file at once (nothing half-written on error)."""
    import os
    import tempfile

    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".rtgen-opt-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a report is not
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(path, "", "a writable file path", str(exc)) from None


@app.callback(invoke_without_command=True)
def _root(version: Annotated[bool, typer.Option("--version", help="Print the version.")]
          = False) -> None:
    if version:
        typer.echo(f"rtgen-opt {__version__}")
        raise typer.Exit()


def main() -> None:
    """Console-script entry point: bad input -> one line on stderr and exit code 2.

    Typer handles usage errors (exit 2) and --help itself; our own input errors are raised
    from deep inside the library and end here.
    """
    try:
        app(prog_name="rtgen-opt")
    except InputError as exc:
        print(f"rtgen-opt: error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
