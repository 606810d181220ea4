"""One run of a sweep, computed in a worker: the unit that engines distribute, the cache
keeps and the table records. A failure is caught and described, never raised: one bad point
must not stop the sweep."""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from rtgen_opt.errors import InputError
from rtgen_opt.model.scenario import Scenario
from rtgen_opt.report.tables import flatten  # the CLI's CSV flattens the same way
from rtgen_opt.sweep.spec import Command


@dataclass(frozen=True)
class Run:
    """One command at one point: the unit that is computed, cached and recorded.

    It carries the content its key hashed — the validated scenario (overrides applied,
    its latency database and request traces read) and each user policy's source — and
    the worker computes from that alone: a file edited during the sweep cannot be cached
    under the old content's key, and a Ray node reads nothing from its own disk."""

    point: int
    scenario: str  # as written in the sweep file
    scenario_path: str
    assignments: tuple[tuple[str, object], ...]  # axis key -> value, for the columns
    overrides: tuple[str, ...]  # every --set assignment, base first
    command: Command
    key: str = ""  # content hash, filled in by `plan`
    loaded: Scenario | None = None  # the scenario as hashed, filled in by `plan`
    policy_sources: tuple[tuple[str, str], ...] = ()  # (label, source text) as hashed


# ----------------------------------------------------------------------------- one run


def compute(run: Run) -> dict:
    """Compute one run (in a worker): ``{"rows": [...]}`` or ``{"error": "..."}``. Every
    failure is caught and described: one bad point must not stop the sweep."""
    try:
        from rtgen_opt.model.size import check_size
        from rtgen_opt.model.taskset import build_taskset

        scenario = run.loaded
        if scenario is None:
            raise InputError(run.scenario_path, "", "a run planned by sweep.plan (it carries "
                             "the scenario it was keyed with)")
        check_size(scenario, None)  # refused like the command line's, before building
        ts = build_taskset(scenario)
        options = {**run.command.options, "policy_sources": dict(run.policy_sources)}
        rows = RUNNERS[run.command.name](ts, scenario, options)
        return {"rows": [flatten(row) for row in rows], "error": None}
    except InputError as exc:
        return {"rows": None, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 (recorded in the table, the sweep goes on)
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return {"rows": None, "error": f"{type(exc).__name__}: {exc} "
                f"({Path(where.filename).name}:{where.lineno})"}


def _policy(name: str, options: dict):
    """A built-in policy by name, or a user's FILE.py:CLASS built from the source the run
    carries (the file is not read again)."""
    from rtgen_opt.simulation.policies.classic import POLICIES
    from rtgen_opt.simulation.policies.loader import load_policy_source

    if name in POLICIES:
        return name
    return load_policy_source(options["policy_files"][name], options["policy_sources"][name])


def _simulate(ts, scenario, options: dict) -> list[dict]:
    from rtgen_opt.commands.simulate import simulate_run

    return [simulate_run(ts, _policy(name, options), name)[0] for name in options["policies"]]


def _solve(ts, scenario, options: dict) -> list[dict]:
    """The row is `rtgen-opt solve --format json` (the same function builds both)."""
    from rtgen_opt.commands.solve import solve_command

    data, _out, _baseline = solve_command(
        ts, options["time_limit_s"], options["workers"], options["seed"], options["ttft"],
        options["solver"], options["mip_solver"])
    return [{"policy": "optimum", **data}]


def _check(ts, scenario, options: dict) -> list[dict]:
    """Each row is `rtgen-opt check --format json` for one policy (or the solver's
    question), guarded by the time limit like the command line's."""
    from rtgen_opt.analysis import check as checks
    from rtgen_opt.commands.check import check_command

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
        data, _verdict = check_command(ts, policy, options["time_limit_s"], options["workers"],
                                       options["slo"], execution=scenario.execution)
        rows.append({"policy": label, **{k: v for k, v in data.items() if k != "scenario"}})
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
