"""One run of a sweep, computed in a worker: the unit that engines distribute, the cache
keeps and the table records. A failure is caught and described, never raised: one bad point
must not stop the sweep."""

from __future__ import annotations

import json
import math
import traceback
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from rtgen_opt.errors import InputError
from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.sweep.spec import Command


@dataclass(frozen=True)
class Run:
    """One command at one point: the unit that is computed, cached and recorded."""

    point: int
    scenario: str  # as written in the sweep file
    scenario_path: str
    assignments: tuple[tuple[str, object], ...]  # axis key -> value, for the columns
    overrides: tuple[str, ...]  # every --set assignment, base first
    command: Command
    key: str = ""  # content hash, filled in by `plan`



# ----------------------------------------------------------------------------- one run


def compute(run: Run) -> dict:
    """Compute one run (in a worker): ``{"rows": [...]}`` or ``{"error": "..."}``. Every
    failure is caught and described: one bad point must not stop the sweep."""
    try:
        from rtgen_opt.model.taskset import build_taskset

        scenario = load_scenario(run.scenario_path, run.overrides)
        ts = build_taskset(scenario)
        rows = RUNNERS[run.command.name](ts, scenario, run.command.options)
        return {"rows": [flatten(row) for row in rows], "error": None}
    except InputError as exc:
        return {"rows": None, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 (recorded in the table, the sweep goes on)
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return {"rows": None, "error": f"{type(exc).__name__}: {exc} "
                f"({Path(where.filename).name}:{where.lineno})"}


def _policy(name: str, options: dict):
    """A built-in policy by name, or a user's FILE.py:CLASS (loaded in this worker)."""
    from rtgen_opt.simulation.policies.classic import POLICIES
    from rtgen_opt.simulation.policies.loader import load_policy

    return name if name in POLICIES else load_policy(options["policy_files"][name])


def _simulate(ts, scenario, options: dict) -> list[dict]:
    from rtgen_opt.evaluation.metrics import evaluate
    from rtgen_opt.simulation.executor import simulate

    rows = []
    for name in options["policies"]:
        result = simulate(ts, _policy(name, options))
        rows.append({"policy": name, **evaluate(ts, result.schedule), "events": result.events,
                     "wall_s": round(result.wall_s, 4)})
    return rows


def _solve(ts, scenario, options: dict) -> list[dict]:
    from rtgen_opt.optimisation.solve import solve

    out = solve(ts, options["time_limit_s"], options["workers"], options["seed"],
                options["ttft"], solver=options["solver"], mip_solver=options["mip_solver"])
    # The schedule's metrics first: the solver's own `violations` (weighted, the
    # objective) is the one the solve command reports under that name.
    return [{"policy": "optimum", **(out.metrics or {}), "status": out.status.value,
             "violations": out.violations, "violations_lower_bound": out.violations_lower_bound,
             "gap": out.gap, "replay_ok": out.replay_ok, "method": out.method,
             "warm_start": out.warm_start, "notes": out.notes, "wall_s": round(out.wall_s, 3)}]


def _check(ts, scenario, options: dict) -> list[dict]:
    from rtgen_opt.analysis import check as checks

    rows = []
    for label in options["policies"]:
        policy = None if label == "optimal" else _policy(label, options)
        if options["max_fps"] is not None:
            horizon = Fraction(ts.horizon_us, 1_000_000)
            bracket = checks.max_fps(scenario, options["max_fps"], horizon, policy,
                                     options["time_limit_s"], options["workers"],
                                     slo=options["slo"])
            data = bracket.as_dict(ts.scenario, label)
            rows.append({"policy": label, **{k: v for k, v in data.items() if k != "scenario"}})
            continue
        verdict = checks.check(ts, policy, options["time_limit_s"], options["workers"],
                               options["slo"])
        data = {k: v for k, v in verdict.as_dict(ts.scenario).items() if k != "scenario"}
        data.setdefault("verdict", "yes" if verdict.schedulable else
                        ("no" if verdict.proven else "unknown"))
        data.setdefault("proven", verdict.proven)
        rows.append({"policy": label, **data})
    return rows


def _gap(ts, scenario, options: dict) -> list[dict]:
    from rtgen_opt.analysis.gap import gap_analysis

    data = gap_analysis(ts, options["time_limit_s"], options["workers"])
    data.pop("_schedules", None)
    common = {"released": data.get("released"), "analysis_wall_s": data.get("wall_s")}
    rows = [{**p, **common} for p in data["policies"]]
    rows.append({"policy": "optimum", **data["optimum"], "pareto": data["pareto"], **common})
    return rows


RUNNERS = {"simulate": _simulate, "solve": _solve, "check": _check, "gap": _gap}


def flatten(data: dict, prefix: str = "") -> dict:
    """Nested dicts -> dotted columns; lists -> JSON text; non-finite floats -> None."""
    out = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        elif isinstance(value, (list, tuple)):
            out[name] = json.dumps(value, default=str)
        elif isinstance(value, float) and not math.isfinite(value):
            out[name] = None
        elif value is None or isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = str(value)
    return out


