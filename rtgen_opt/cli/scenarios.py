"""`rtgen-opt scenarios list|show`."""

from __future__ import annotations

from rtgen_opt.cli.common import (
    FormatOpt,
    ScenarioArg,
    SetOpt,
    _check_format,
    _scenario,
    scenarios_app,
)
from rtgen_opt.model.scenario import builtin_scenarios, load_scenario
from rtgen_opt.report.tables import emit

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
        "name": s.name, "description": _described(s.description, set_), "path": s.source,
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
    caption = (f"{data['description']}\nhorizon {horizon}; platform {platform}; granularity "
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


def _described(description: str, overrides: list[str] | None) -> str:
    """The file's description, which the overrides may contradict ("(1024/64)" after
    --set llm.input_tokens=32): say which values were overridden."""
    if not overrides:
        return description
    return f"{description} [overridden: {', '.join(overrides)}]"
