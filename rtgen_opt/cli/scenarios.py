"""`rtgen-opt scenarios list|show`."""

from __future__ import annotations

from rtgen_opt.cli.common import (
    FormatOpt,
    QuietOpt,
    ScenarioArg,
    SetOpt,
    _check_format,
    _display_to,
    _scenario,
    scenarios_app,
)
from rtgen_opt.model.scenario import TaskSpec, builtin_scenarios, load_scenario
from rtgen_opt.report import formats
from rtgen_opt.report.tables import emit

# ----------------------------------------------------------------------------- scenarios


@scenarios_app.command("list")
def scenarios_list(format: FormatOpt = "table", quiet: QuietOpt = False) -> None:
    """List the built-in scenarios.

    Example: rtgen-opt scenarios list --format json
    """
    _check_format(format)
    items = []
    for name, path in builtin_scenarios().items():
        items.append({"name": name, "description": load_scenario(str(path)).description,
                      "path": str(path)})
    emit(format, {"scenarios": items}, ["name", "description"],
         [[s["name"], s["description"]] for s in items], "Built-in scenarios", numeric_from=9,
         records=items, to=_display_to(quiet, {}))


@scenarios_app.command("show")
def scenarios_show(scenario: ScenarioArg, set_: SetOpt = None,
                   format: FormatOpt = "table", quiet: QuietOpt = False) -> None:
    """Show a scenario after validation and overrides: settings and tasks.

    Example: rtgen-opt scenarios show scenario_d --set llm.input_tokens=32
    """
    _check_format(format)
    s = _scenario(scenario, set_)
    tasks = [_task_dict(t) for t in s.tasks]
    records = [task_record(t) for t in s.tasks]
    # JSON: numbers (null where the table shows "-"), the tasks as the CSV's records
    data = {
        "name": s.name, "description": _described(s.description, set_), "path": s.source,
        "latency_db": s.db.name, "platform": s.platform,
        "horizon_s": None if s.horizon is None else float(s.horizon),
        "drain_s": None if s.drain is None else float(s.drain),
        "after_horizon": s.after_horizon, "granularity": s.granularity,
        "on_miss": s.on_miss, "preemption": s.preemption, "execution": list(s.execution),
        "mapping": {f"{m}/{st}": b for (m, st), b in s.mapping.items()}, "tasks": records,
    }
    columns = ["task", "model", "kind", "rate", "deadline", "weight", "tokens in/out",
               "TTFT SLO", "TPT SLO", "after"]
    rows = [[t["name"], t["model"], t["kind"], _rate(spec), _ms(spec.deadline),
             formats.cell(t["weight"]), t["tokens"], _ms(spec.ttft), _ms(spec.tpt), t["after"]]
            for t, spec in zip(tasks, s.tasks)]
    platform = ", ".join(f"{b} x{n}" for b, n in s.platform.items())
    horizon = "-" if s.horizon is None else formats.seconds(float(s.horizon))
    caption = (f"{data['description']}\nhorizon {horizon}; platform {platform}; granularity "
               f"{s.granularity}; on_miss {s.on_miss}; preemption {s.preemption}; latency "
               f"database {s.db.name}")
    emit(format, data, columns, rows, f"Scenario {s.name} ({s.source})", caption, 10,
         records=records, to=_display_to(quiet, {}))


def task_record(t: TaskSpec) -> dict:
    """One task as raw numbers (the CSV): times in ms, rates per second."""
    a = t.arrivals
    ms = lambda x: None if x is None else float(x) * 1000
    return {"name": t.name, "model": t.model, "kind": t.kind,
            "fps": None if t.period is None else float(1 / t.period),
            "period_ms": ms(t.period), "deadline_ms": ms(t.deadline), "phase_ms": ms(t.phase),
            "jitter_ms": ms(t.jitter), "weight": t.weight,
            "arrivals": None if a is None else a.kind,
            "every_ms": None if a is None else ms(a.every),
            "arrival_times": None if a is None or a.kind not in ("times", "file")
            else len(a.times),
            "poisson_rate_per_s": None if a is None else a.rate,
            "input_tokens": t.input_tokens, "output_tokens": t.output_tokens,
            "ttft_slo_ms": ms(t.ttft), "tpt_slo_ms": ms(t.tpt), "after": t.after}


def _rate(t: TaskSpec) -> str:
    if t.kind == "periodic":
        return formats.fps(float(1 / t.period))
    a = t.arrivals
    if a is None:
        return "-"
    if a.kind == "every":
        return f"every {formats.seconds(float(a.every))}"
    if a.kind in ("times", "file"):
        return f"{len(a.times)} times"
    return f"poisson {a.rate:g}/s"


def _ms(value) -> str:
    return formats.ms_unit(None if value is None else float(value) * 1000)


def _task_dict(t) -> dict:
    """One task's cells of the table (for people: units in the text)."""
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


def _described(description: str, overrides: list[str] | None) -> str:
    """The file's description, which the overrides may contradict ("(1024/64)" after
    --set llm.input_tokens=32): say which values were overridden."""
    if not overrides:
        return description
    return f"{description} [overridden: {', '.join(overrides)}]"
