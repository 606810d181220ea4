"""The `rtgen-opt` command line (Typer). Commands only parse, call the library and render.

Exit codes: 0 success, 1 a check failed, 2 bad input (one message naming the file, the
field and what was expected; never a traceback), 70 an internal error (one line saying how
to report it; ``--debug`` shows the traceback), 130 interrupted.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections import defaultdict
from fractions import Fraction
from typing import Annotated, Optional

import typer

from . import __version__, limits
from .errors import InputError, SolverCrash, printable
from .latency import LATENCY_STATISTICS, load_db, resolve_db
from .report import FORMATS, emit
from .scenario import Scenario, builtin_scenarios, load_scenario
from .executor import simulate as run_policy
from .metrics import evaluate
from .policies import POLICIES
from .policy_loader import load_policy
from .progress import EXIT_INTERRUPTED, Budget, Reporter, budget_kwargs, supervise
from .replay import replay as replay_schedule
from .output import check_writable, write_file, write_files
from .schedule import read_schedule, read_schedule_meta, replay_settings
from .taskset import STAGE_NAMES, TaskSet, build_taskset
from .units import parse_duration

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
    "segment): CSV, or JSON if FILE ends in .json.")]
ReportOpt = Annotated[Optional[str], typer.Option(
    "--report", metavar="FILE", help="Also write a report: FILE.html (one self-contained "
    "interactive page, needs the 'report' extra: pip install 'rtgen-opt[report]') or FILE.md "
    "(Markdown).")]
ScenarioArg = Annotated[str, typer.Argument(
    metavar="SCENARIO", help="A built-in name (scenario_c) or the path of a YAML file.")]
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


def _check_trace_format(value: str) -> None:
    if value not in ("table", "chrome"):
        raise InputError("--trace-format", "", "table or chrome", value)


def _horizon(text: str | None) -> Fraction | None:
    if text is None:
        return None
    try:
        horizon = parse_duration(text)
    except ValueError as exc:
        raise InputError("--horizon", "", str(exc), text) from None
    if horizon <= 0:
        raise InputError("--horizon", "", "a positive duration", text)
    return horizon


def _run_length(ts: TaskSet) -> str:
    """"60 s + 7.3 s drain": the horizon and the continuing load after it."""
    if getattr(ts, "after_horizon", "continue") == "stop":
        return f"{ts.horizon_us / 1e6:g} s (frames stop at the horizon)"
    return f"{ts.horizon_us / 1e6:g} s + {ts.drain_us / 1e6:.1f} s drain"


def _scenario(ref: str, overrides: list[str] | None, latency: str = "median") -> Scenario:
    if latency not in LATENCY_STATISTICS:
        raise InputError("--latency", "", "median or p99", latency)
    return load_scenario(ref, overrides or (), latency)


def _taskset(scenario: Scenario, horizon: Fraction | None) -> TaskSet:
    """Build the task set after its size estimate passed the memory limit."""
    limits.check_size(scenario, horizon)
    return build_taskset(scenario, horizon)


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
def scenarios_show(scenario: ScenarioArg, set_: SetOpt = None,
                   format: FormatOpt = "table") -> None:
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
    columns = ["task", "model", "kind", "rate", "deadline", "weight", "tokens in/out",
               "TTFT SLO", "TPT SLO", "after"]
    rows = [[t["name"], t["model"], t["kind"], t["rate"], t["deadline"], f"{t['weight']:g}",
             t["tokens"], t["ttft"], t["tpt"], t["after"]] for t in tasks]
    platform = ", ".join(f"{b} x{n}" for b, n in s.platform.items())
    horizon = "-" if s.horizon is None else f"{float(s.horizon):g} s"
    caption = (f"{s.description}\nhorizon {horizon}; platform {platform}; granularity "
               f"{s.granularity}; on_miss {s.on_miss}; preemption {s.preemption}; latency "
               f"database {s.db.name}")
    emit(format, data, columns, rows, f"Scenario {s.name} ({s.source})", caption, 9)


def _task_dict(t) -> dict:
    ms = lambda x: None if x is None else f"{float(x) * 1000:.4g} ms"  # noqa: E731
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


# ----------------------------------------------------------------------------- simulate


@app.command()
def simulate(
    scenario: ScenarioArg,
    policy: Annotated[str, typer.Option(
        metavar="POLICY", help="all, or one of " + ", ".join(POLICIES) + ", or your own: "
        "FILE.py:CLASS (or a package's entry point of the group rtgen_opt.policies).")]
    = "all",
    horizon: HorizonOpt = None,
    set_: SetOpt = None,
    schedule_out: Annotated[Optional[str], typer.Option(
        "--schedule-out", "--trace", metavar="FILE", help="Write the schedule table (one "
        "row per executed segment): CSV, or JSON if FILE ends in .json. With --policy all, "
        "one file per policy (out.csv -> out.ftf.csv ...). (--trace: the old name, kept for "
        "one release.)")] = None,
    trace_format: Annotated[str, typer.Option(
        "--trace-format", metavar="table|chrome", help="table (the schedule table, CSV or "
        "JSON) or chrome (trace events for chrome://tracing or Perfetto).")] = "table",
    report: ReportOpt = None,
    latency: LatencyOpt = "median",
    format: FormatOpt = "table",
) -> None:
    """Run the heuristic policies of the paper in the event-driven executor.

    Example: rtgen-opt simulate scenario_c --policy all --horizon 60s --report sim.html
    """
    _check_format(format)
    policies = list(POLICIES.values()) if policy == "all" else [load_policy(policy)]
    _check_trace_format(trace_format)
    _check_report_name(report)
    if report:
        check_writable(report, "--report")
    for chosen in policies if schedule_out else ():  # every target, before any work
        check_writable(schedule_out if len(policies) == 1
                       else _suffixed(schedule_out, chosen.name), "--schedule-out")
    runs, outputs, traces = [], {}, {}
    with _supervised("simulate", None) as (budget, say):
        ts = _taskset(_scenario(scenario, set_, latency), _horizon(horizon))
        for chosen in policies:
            if budget.interrupted.is_set():
                break
            name = chosen.name
            say.phase(f"simulating {name}")
            result = run_policy(ts, chosen)
            runs.append({"policy": name, **evaluate(ts, result.schedule),
                         "events": result.events, "wall_s": round(result.wall_s, 4)})
            traces[name] = result.schedule
            if schedule_out:
                target = schedule_out if len(policies) == 1 else _suffixed(schedule_out, name)
                outputs[target] = result.schedule.to_text(ts, target, trace_format,
                                                             set_ or ())
    interrupted = budget.interrupted.is_set()
    write_files(outputs)  # all runs succeeded: now every trace, or none
    data = {"scenario": ts.scenario, "horizon_s": ts.horizon_us / 1e6,
            "drain_s": ts.drain_us / 1e6, "after_horizon": ts.after_horizon, "runs": runs,
            "interrupted": interrupted}
    if report:
        _write_report(report, "simulate", ts, data, traces)
    columns, rows = _policy_rows(ts, runs)
    emit(format, data, columns, rows, f"{ts.scenario}: {_run_length(ts)}, "
         f"{ts.num_jobs} jobs, granularity {ts.granularity}, on_miss {ts.on_miss}, "
         f"preemption {ts.preemption}" + _interrupted_mark(budget),
         "violations: frames dropped or late / released, over the whole run; "
         + ("drain violations: those of frames released after the horizon; "
            if ts.after_horizon == "continue" else "")
         + "TTFT, TPT: means over served requests; starved: no first token within the "
         "request's give-up time",
         numeric_from=1)
    if interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)


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
        row = [run["policy"], _pct(run["violation_rate"])]
        row += [_pct(run["tasks"][t]["violation_rate"]) for t in frame_tasks]
        if drain:
            counts = [(run["tasks"][t].get("drain_violations", 0),
                       run["tasks"][t].get("drain_released", 0)) for t in frame_tasks]
            row.append(f"{sum(v for v, _ in counts)}/{sum(r for _, r in counts)}")
        for t in llm_tasks:
            llm = run["llm"][t]
            row += [_num(llm["ttft_ms"]["mean"]), _num(llm["tpt_ms"]["mean"]),
                    f"{llm['starved']}/{llm['requests']}"]
        rows.append(row)
    return columns, rows


def _pct(rate: float | None) -> str | None:
    """A rate as a percentage with one decimal (the one format of every percentage)."""
    return None if rate is None else f"{100 * rate:.1f}"


def _num(value: float | None) -> str | None:
    """Milliseconds with one decimal (the one format of every time in ms)."""
    return None if value is None else f"{value:.1f}"


def _suffixed(path: str, name: str) -> str:
    stem, dot, ext = path.rpartition(".")
    return f"{stem}.{name}.{ext}" if dot and "/" not in ext else f"{path}.{name}"


# ----------------------------------------------------------------------------- solve


@app.command()
def solve(
    scenario: ScenarioArg,
    horizon: HorizonOpt = None,
    solver: Annotated[str, typer.Option(metavar="ENGINE",
                                        help="cpsat (OR-Tools CP-SAT) or milp (PuLP).")]
    = "cpsat",
    mip_solver: Annotated[str, typer.Option(
        "--mip-solver", metavar="ENGINE", help="MILP engine: cbc (ships with PuLP) or highs "
        "(pip install 'rtgen-opt[highs]').")] = "cbc",
    time_limit: TimeLimitOpt = "60s",
    workers: WorkersOpt = 0,
    seed: Annotated[int, typer.Option(metavar="N", help="Random seed of the solver.",
                                      callback=_check_seed)] = 0,
    ttft: Annotated[str, typer.Option(metavar="sum|max", help="Second objective: sum or "
                                      "max of the LLM TTFTs.")] = "sum",
    schedule_out: ScheduleOutOpt = None,
    report: ReportOpt = None,
    export_model: Annotated[Optional[str], typer.Option(
        "--model-out", "--export-model", metavar="FILE", help="Write the model for "
        "debugging: the CP-SAT proto, or the MILP as an LP file (instances solved as one "
        "model; long horizons are built by construction and write none). (--export-model: the old name, kept for one release.)")] = None,
    export_bound: Annotated[Optional[str], typer.Option(
        "--bound-out", "--export-bound", metavar="FILE", help="Write the lower bound's "
        "certificate (JSON: the prices on backend time and the value they prove), for anyone "
        "to re-check. (--export-bound: the first name, kept for one release.)")]
    = None,
    trace_format: Annotated[str, typer.Option(
        "--trace-format", metavar="table|chrome", help="Format of --schedule-out: table (CSV "
        "or JSON) or chrome.")] = "table",
    latency: LatencyOpt = "median",
    set_: SetOpt = None,
    format: FormatOpt = "table",
) -> None:
    """Compute the best schedule any scheduler could achieve, or a schedule with a proven
    lower bound and the gap between them.

    Frames are firm (on time or dropped); every LLM request is served. Objectives, in
    order: weighted frame violations, LLM TTFT, TPT. The output says what was proven
    (status, lower bound and the method behind it) and puts the best policy beside it.
    The schedule is replayed by the executor's checker: exit 1 if it breaks a constraint
    or its metrics disagree; 130 when interrupted (the best schedule so far is printed).

    Example: rtgen-opt solve scenario_c --horizon 60s --report solve.html
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
    _check_report_name(report)
    limit = _duration_option("--time-limit", time_limit)
    for option, path in (("--schedule-out", schedule_out), ("--model-out", export_model),
                         ("--bound-out", export_bound), ("--report", report)):
        if path:
            check_writable(path, option)
    with _supervised("solve", float(limit)) as (budget, say):
        say.phase("building the task set")
        ts = _taskset(_scenario(scenario, set_, latency), _horizon(horizon))
        say.phase("solving")
        out = run_solver(ts, budget.share(1.0), workers, seed, ttft, progress=say,
                         export_model=export_model, solver=solver, mip_solver=mip_solver,
                         **budget_kwargs(run_solver, budget))
        say.phase("measuring the best policy beside it")
        baseline = _baseline(ts, out.warm_start)
    if schedule_out and out.schedule is not None:
        _write_text(schedule_out, out.schedule.to_text(ts, schedule_out, trace_format,
                                                       set_ or ()))
    if export_bound and getattr(out, "bound", None) is not None \
            and out.bound.prices is not None:
        from .formulations.bounds.certificate import certificate_json
        from .formulations.problem import Problem

        _write_text(export_bound, certificate_json(Problem(ts, ttft=ttft), out.bound.prices,
                                                   out.bound.exact))
    data = solve_data(ts, out, solver, mip_solver, baseline, budget)
    if report:
        _write_report(report, "solve", ts, data, {"best found": out.schedule,
                                                  **({baseline["policy"]: baseline["trace"]}
                                                     if baseline else {})})
    data["best_policy"] = data["best_policy"] and {k: v for k, v in data["best_policy"].items()
                                                   if k != "trace"}
    engine = ("kill-aware construction" if out.method == "construction" else "CP-SAT model"
              if solver == "cpsat" else f"MILP/{mip_solver} model")
    title = (f"{ts.scenario}: {_run_length(ts)}, {ts.num_jobs} jobs, {engine}, "
             f"{out.wall_s:.1f} s of {float(limit):g} s"
             + _interrupted_mark(budget))
    columns, rows = solve_summary_rows(data)
    emit(format, data, columns, rows, title, solve_hint(data), numeric_from=9)
    if format == "table" and out.metrics:
        label = "optimum (proven)" if out.status.value == "OPTIMAL" else "best found"
        runs = [{"policy": label, **out.metrics}]
        if baseline:
            runs.append({"policy": f"{baseline['policy']} (best policy)", **baseline["metrics"]})
        columns, rows = _policy_rows(ts, runs)
        emit(format, data, columns, rows, "Per task: the schedule found beside the best policy")
    if not out.replay_ok and out.schedule is not None:
        for problem in out.replay_violations[:10]:
            print(f"rtgen-opt: replay: {problem}", file=sys.stderr)
        raise typer.Exit(EXIT_INTERRUPTED if data["interrupted"] else 1)
    if data["interrupted"]:
        raise typer.Exit(EXIT_INTERRUPTED)


def _baseline(ts: TaskSet, name: str | None) -> dict | None:
    """The best policy that serves every request, measured for comparison: the solver's
    warm start when that was a policy, else found again."""
    if name not in POLICIES:
        from .solve import best_policy_schedule

        name = best_policy_schedule(ts)[0]
    if name is None:
        return None
    trace = run_policy(ts, name).schedule
    return {"policy": name, "metrics": evaluate(ts, trace), "trace": trace}


def solve_data(ts: TaskSet, out, solver: str, mip_solver: str, baseline: dict | None,
               budget: Budget) -> dict:
    """The `solve` JSON (docs/files-and-output.md) with what was proven and how."""
    metrics = out.metrics or {}
    released = (sum(t["released"] for t in metrics["tasks"].values()) if metrics.get("tasks")
                else int(sum(t.num_jobs for t in ts.tasks if t.deadline_us is not None)))
    gap = (None if out.violations is None
           else max(0.0, out.violations - out.violations_lower_bound))
    best = None
    if baseline:
        m = baseline["metrics"]
        best = {"policy": baseline["policy"], "violations": m["weighted_violations"],
                "violation_rate": m["violation_rate"], "tasks": m["tasks"],
                "llm": {n: {k: x[k] for k in ("requests", "ttft_ms", "tpt_ms", "starved")}
                        for n, x in m["llm"].items()},
                "trace": baseline["trace"]}
    return {
        "scenario": ts.scenario, "horizon_s": ts.horizon_us / 1e6,
        "drain_s": getattr(ts, "drain_us", 0) / 1e6, "solver": solver,
        "mip_solver": mip_solver if solver == "milp" else None,
        "status": out.status.value, "proven": out.status.value == "OPTIMAL",
        "violations": out.violations, "violations_lower_bound": out.violations_lower_bound,
        "gap": out.gap, "gap_violations": gap,
        "gap_pp": None if gap is None else 100 * gap / max(1, released),
        "gap_pct_of_frames": None if gap is None else 100 * gap / max(1, released),
        "released": released,
        "lower_bound_method": getattr(out, "lower_bound_method", None) or None,
        "upper_bound_method": getattr(out, "upper_bound_method", None) or None,
        "time_to_first_solution_s": getattr(out, "time_to_first_solution_s", None),
        "tasks": metrics.get("tasks"), "llm": metrics.get("llm"),
        "violation_rate": metrics.get("violation_rate"),
        "utilization": metrics.get("utilization"), "placement": metrics.get("placement"),
        "best_policy": best,
        "replay_ok": out.replay_ok, "replay_violations": out.replay_violations,
        "method": out.method, "warm_start": out.warm_start, "granularity": ts.granularity,
        "stages": out.stages, "notes": out.notes,
        "time_limit_s": budget.total_s, "interrupted": budget.interrupted.is_set(),
        "wall_s": round(out.wall_s, 3),
    }


STATUS_TEXT = {"OPTIMAL": "OPTIMAL: proven optimal",
               "FEASIBLE": "FEASIBLE: best found, not proven optimal",
               "INFEASIBLE": "INFEASIBLE: no schedule serves every request",
               "UNKNOWN": "UNKNOWN: no schedule found within the limit"}


def solve_summary_rows(data: dict) -> tuple[list[str], list[list]]:
    """The solve result as quantity/value rows: what was found, what was proven, how."""
    released = data["released"]

    def share(x: float | None) -> str:
        return "-" if x is None else f"{x:g} ({100 * x / max(1, released):.1f} % of frames)"

    rows = [["status", STATUS_TEXT.get(data["status"], data["status"])]]
    up = data["upper_bound_method"]
    rows.append(["violations" if data["proven"] else "violations (best found)",
                 share(data["violations"]) + (f"; by {up}" if up else "")])
    low = data["lower_bound_method"]
    rows.append(["lower bound (proven)", f"{data['violations_lower_bound']:g}"
                 + (f"; by {low}" if low else "")])
    if data["gap_violations"] is not None:
        rows.append(["gap", "0 (proven optimal)" if data["proven"] else
                     f"at most {data['gap_violations']:g} violation"
                     f"{'' if data['gap_violations'] == 1 else 's'}, "
                     f"{_pp(data['gap_pp'])} pp of frames"])
    best = data["best_policy"]
    if best:
        llm = "; ".join(f"{n} TTFT {_ms(x['ttft_ms']['mean'])}"
                        for n, x in best["llm"].items())
        rows.append(["best policy", f"{best['policy']}: {best['violations']:g} violations "
                     f"({100 * best['violation_rate']:.1f} %)" + (f", {llm}" if llm else "")])
    for stage in data["stages"] or []:  # each objective of the lexicographic solve
        if "value" in stage:
            rows.append([f"objective {stage['name']}", f"{stage['value']:g} (bound "
                         f"{stage['bound']:g}, {stage['status']})"])
    if data["time_to_first_solution_s"] is not None:
        rows.append(["first solution", f"{data['time_to_first_solution_s']:.1f} s"])
    rows.append(["replay", "ok" if data["replay_ok"] else "FAILED"])
    if data["interrupted"]:
        rows.append(["interrupted", "yes: the best answer so far"])
    return ["quantity", "value"], rows


def _pp(value: float) -> str:
    """Percentage points with one decimal; a small positive gap is not rounded to 0."""
    return "< 0.1" if 0 < value < 0.05 else f"{value:.1f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def solve_hint(data: dict) -> str | None:
    """What to do next, and the solver's notes."""
    notes = list(data["notes"] or [])
    if not data["proven"] and data["violations"] is not None:
        notes.append(f"Not proven: the optimum lies between {data['violations_lower_bound']:g} "
                     f"and {data['violations']:g}. A coarser --set granularity=group:N, or "
                     "on small instances a longer --time-limit, may close it; "
                     "docs/optimum.md says what each bound can and cannot see.")
    return "\n".join(notes) or None


def _duration_option(option: str, text: str) -> Fraction:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise InputError(option, "", str(exc), text) from None
    if value <= 0:
        raise InputError(option, "", "a positive duration", text)
    return value


# ----------------------------------------------------------------------------- gap


@app.command()
def gap(
    scenario: ScenarioArg,
    horizon: HorizonOpt = None,
    report: ReportOpt = None,
    window: Annotated[Optional[str], typer.Option(
        metavar="START..END", help="Time window first shown in the report's Gantt charts, "
        "e.g. 2s..3s (default: the first 200 ms; the HTML charts zoom out to the whole "
        "run).")] = None,
    time_limit: TimeLimitOpt = "120s",
    workers: WorkersOpt = 0,
    set_: SetOpt = None,
    policy: Annotated[Optional[list[str]], typer.Option(
        metavar="FILE.py:CLASS", help="Also compare this policy: your own FILE.py:CLASS (or "
        "an entry point); repeatable.")] = None,
    format: FormatOpt = "table",
) -> None:
    """How far is each policy from the best possible schedule?

    Runs the five policies and the solver on the same task set: per policy its
    violations, its service-matched optimum (the fewest violations of any schedule that
    serves every request at least as fast as the policy did) and the gap — a range
    min…max where the matched optimum is not proven; the plain optimum; the Pareto front
    of violations against the LLM's TTFT. Exit 130 when interrupted (the policies done
    so far are printed).

    Example: rtgen-opt gap scenario_c --horizon 2s --report report.html
    """
    from .gap import gap_analysis
    from .gap_report import gap_caption, gap_rows

    _check_format(format)
    _check_report_name(report)
    limit = float(_duration_option("--time-limit", time_limit))
    if report:
        check_writable(report, "--report")
    with _supervised("gap", limit) as (budget, say):
        say.phase("building the task set")
        ts = _taskset(_scenario(scenario, set_), _horizon(horizon))
        span = _window(window, ts)
        extra = [p for p in map(load_policy, policy or ()) if p.name not in POLICIES]
        data = gap_analysis(ts, budget.share(1.0), workers, progress=say, budget=budget,
                            policies=list(POLICIES.values()) + extra)
    data["interrupted"] = budget.interrupted.is_set()
    data["time_limit_s"] = limit
    if report:
        _write_report(report, "gap", ts, data, data["_schedules"], span)
    data.pop("_schedules")
    columns, rows = gap_rows(data)
    emit(format, data, columns, rows, f"Optimality gap: {ts.scenario}, {_run_length(ts)} "
         f"({data['wall_s']:.0f} s of {limit:g} s)" + _interrupted_mark(budget),
         gap_caption(data), numeric_from=1)
    if data["interrupted"]:
        raise typer.Exit(EXIT_INTERRUPTED)


def _check_report_name(report: str | None) -> None:
    if report is not None and not report.endswith((".html", ".htm", ".md")):
        raise InputError("--report", "", "a file name ending in .html or .md", report)


def _write_report(report: str, kind: str, ts: TaskSet, data: dict, schedules: dict,
                  window_us: tuple[int, int] | None = None) -> None:
    """Markdown (gap: its tables) or the interactive HTML page (html_report.py)."""
    if report.endswith(".md"):
        from .gap_report import markdown
        from .report import markdown_table

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
    from .html_report import render

    if kind == "gap":
        from .gap_report import gap_rows

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
    scenario: ScenarioArg,
    policy: Annotated[Optional[str], typer.Option(
        metavar="POLICY", help="Check this policy (simulated; a name, or your own "
        "FILE.py:CLASS) instead of asking the solver whether any schedule works.")] = None,
    optimal: Annotated[bool, typer.Option(
        "--optimal", help="Ask the solver whether any schedule works: the default, so this "
        "flag only documents it in scripts.")] = False,
    horizon: HorizonOpt = None,
    slo: Annotated[bool, typer.Option(
        "--slo", help="Also require every request's TTFT and TPT within its SLOs (with the "
        "solver: TTFT SLOs become constraints; TPT is checked on the schedule found).")]
    = False,
    max_fps: Annotated[Optional[str], typer.Option(
        "--max-fps", metavar="TASK", help="Bracket the highest frame rate of this periodic "
        "task that stays schedulable (deadline = period): highest rate proven, lowest "
        "refuted, the unknown band between; the whole search within --time-limit.")] = None,
    time_limit: TimeLimitOpt = "60s",
    workers: WorkersOpt = 0,
    latency: LatencyOpt = "median",
    set_: SetOpt = None,
    format: FormatOpt = "table",
) -> None:
    """The deployment gate: exit 0 when the scenario is proven schedulable, 1 when it is
    proven not, 3 when it was not decided within the time limit, 2 on bad input, 130 when
    interrupted.

    Schedulable: no frame misses its deadline and no request starves. Cheap analytical
    necessary conditions run first; then the policy, or the solver: a schedule without
    violation proves yes, a lower bound of one violation or more proves no.

    Example: rtgen-opt check scenario_a --horizon 2s --policy edf-dyn
    """
    from . import check as checks

    _check_format(format)
    chosen = None if policy is None else load_policy(policy)
    if policy is not None and optimal:
        raise InputError("--optimal", "", "either --policy P or --optimal, not both")
    limit = float(_duration_option("--time-limit", time_limit))
    with _supervised("check", limit) as (budget, say):
        s = _scenario(scenario, set_, latency)
        ts = _taskset(s, _horizon(horizon))
        if max_fps is not None:
            _check_max_fps(checks, s, ts, max_fps, chosen, slo, budget, say, workers, format)
        say.phase("analytical tests, then " + (f"simulating {chosen.name}" if chosen else
                                               "the solver"))
        verdict = checks.guarded_check(ts, chosen, budget.share(1.0), workers, slo,
                                       progress=say, budget=budget)
        verdict.interrupted = budget.interrupted.is_set()
    data = verdict.as_dict(ts.scenario)
    emit(format, data, ["verdict", "proven", "method", "reason"],
         [[verdict.verdict, _yes_no(verdict.proven), verdict.method, verdict.reason]],
         f"{ts.scenario}: {_run_length(ts)}, schedulable?" + _interrupted_mark(budget),
         numeric_from=9)
    raise typer.Exit(EXIT_INTERRUPTED if verdict.interrupted else verdict.exit_code)


def _check_max_fps(checks, s, ts, task, policy, slo, budget, say, workers, format) -> None:
    periodic = [t.name for t in s.tasks if t.kind == "periodic"]
    if task not in periodic:
        raise InputError("--max-fps", "", "the name of a periodic task of the scenario "
                         f"({', '.join(periodic)})", task)
    say.phase(f"bracketing the rate of {task}")
    bracket = checks.max_fps(s, task, Fraction(ts.horizon_us, 1_000_000), policy,
                             budget.share(1.0), workers, slo=slo, budget=budget, progress=say)
    method = f"policy:{policy.name}" if policy else "optimal"
    data = bracket.as_dict(ts.scenario, method)
    rows = [[f"{fps:g}", v.verdict, v.method, v.reason]
            for fps, v in sorted(bracket.tried, key=lambda x: x[0])]
    band = bracket.unknown_between
    title = (f"{ts.scenario}: rate of {task} ({method}): proven schedulable up to "
             f"{_fps(bracket.max_fps_proven)}, refuted from {_fps(bracket.min_fps_refuted)}"
             + (_unknown_band(band) if band else "")
             + _interrupted_mark(budget))
    emit(format, data, ["fps", "verdict", "method", "reason"], rows, title,
         "rates tried, in order of rate; the bracket assumes a higher rate is never easier",
         numeric_from=9)
    raise typer.Exit(EXIT_INTERRUPTED if bracket.interrupted else bracket.exit_code)


def _unknown_band(band: list) -> str:
    low, high = band
    if high is None:
        return f", unknown from {low:g} FPS up"
    return f", unknown between {low:g} and {high:g} FPS"


def _fps(value: float | None) -> str:
    return "-" if value is None else f"{value:g} FPS"


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _interrupted_mark(budget: Budget) -> str:
    return " [INTERRUPTED: best answer so far]" if budget.interrupted.is_set() else ""


@contextlib.contextmanager
def _supervised(command: str, limit_s: float | None):
    """Run a command's work under its wall clock, with progress and Ctrl-C (progress.py).
    A second Ctrl-C aborts without an answer: exit 130."""
    budget = Budget(limit_s)  # from the command's start (after Python's ~1 s of imports)
    reporter = Reporter(command, budget)
    try:
        with supervise(budget, reporter):
            yield budget, reporter
    except KeyboardInterrupt:
        print(f"rtgen-opt: {command}: interrupted before an answer", file=sys.stderr)
        raise typer.Exit(EXIT_INTERRUPTED) from None


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
    constraint (each violation is listed). The horizon and --set overrides default to
    those recorded in the schedule file.

    Example: rtgen-opt replay scenario_a --schedule trace.csv
    """
    _check_format(format)
    recorded_horizon, recorded_set = replay_settings(read_schedule_meta(schedule), schedule)
    span = _horizon(horizon) if horizon is not None else recorded_horizon
    ts = _taskset(_scenario(scenario, set_ if set_ else recorded_set), span)
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
    write_file(path, text)


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
    debug: Annotated[bool, typer.Option(
        "--debug", help="On an internal error, show the Python traceback.")] = False,
    max_memory: Annotated[Optional[str], typer.Option(
        "--max-memory", metavar="SIZE", help="Refuse task sets estimated to need more "
        "memory than this, e.g. 16GiB (default: half the physical memory, at most 8GiB; also "
        f"{limits.MAX_MEMORY_ENV}).")] = None,
) -> None:
    del debug  # read by main() from the command line: it matters when parsing failed too
    limits.set_max_memory(None if max_memory is None
                          else limits.parse_size(max_memory, "--max-memory"))
    if version:
        typer.echo(f"rtgen-opt {__version__}")
        raise typer.Exit()


REPORT_HINT = ("a bug in rtgen-opt: please report it to the maintainers with the command "
               "line and the output of the same command with --debug")


def main() -> None:
    """Console-script entry point; every way a command can end maps to an exit code.

    0/1/3 come from the commands; 2: bad input, one line on stderr (usage errors, our
    ``InputError``, a task set too large for memory); 70: an internal error, one line and
    how to report it (``--debug`` shows the traceback); 130: interrupted (Ctrl-C).
    """
    # the click that typer runs on (typer >= 0.20 vendors its own copy)
    click = sys.modules[typer.BadParameter.__module__]
    no_args = getattr(click, "NoArgsIsHelpError", ())
    debug = "--debug" in sys.argv[1:]
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)
    try:
        code = app(prog_name="rtgen-opt", standalone_mode=False)
    except InputError as exc:
        _fail(2, f"error: {exc}")
    except no_args as exc:  # `rtgen-opt db`: the help is the answer
        print(exc.ctx.get_help() if exc.ctx else str(exc), file=sys.stderr)
        sys.exit(2)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "rtgen-opt"
        _fail(2, f"error: {printable(exc.format_message(), 300)} (see {command} --help)")
    except click.ClickException as exc:
        _fail(2, f"error: {printable(exc.format_message(), 300)}")
    except (KeyboardInterrupt, typer.Abort):
        _fail(130, "interrupted")
    except MemoryError:
        _fail(2, "error: out of memory: the task set or the model is too large for this "
              "machine; shorten --horizon, coarsen granularity, or lower --max-memory so "
              "the size check refuses it before building", debug)
    except SolverCrash as exc:
        _fail(70, f"error: {exc}", debug)
    except BrokenPipeError:  # `rtgen-opt ... | head`
        sys.stderr.close()
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - the last resort: never a raw traceback
        kind = type(exc).__name__
        _fail(70, f"internal error ({kind}: {printable(str(exc), 120)}); {REPORT_HINT}", debug)
    sys.exit(code if isinstance(code, int) else 0)


def _terminated(signum, frame) -> None:
    """SIGTERM: leave through SystemExit, so that every `finally` runs (solver process
    groups killed, temporary files removed)."""
    print("rtgen-opt: terminated", file=sys.stderr)
    sys.exit(128 + signum)


def _fail(code: int, message: str, debug: bool = False) -> None:
    if debug:
        import traceback

        traceback.print_exc()
    print(f"rtgen-opt: {message}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
