"""`solve` as a function: the optimum (or a bounded schedule) and its JSON result. The CLI
and the sweep both call :func:`solve_command`, so a sweep row carries every key of
`rtgen-opt solve --format json`."""

from __future__ import annotations

from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.model.taskset import TaskSet
from rtgen_opt.simulation.executor import simulate
from rtgen_opt.simulation.policies.classic import POLICIES


def best_policy_baseline(ts: TaskSet, name: str | None, trace=None) -> dict | None:
    """The best policy that serves every request, measured for comparison: the solver's
    warm start when that was a policy (its run ``trace`` when given), else found again."""
    if name not in POLICIES:
        from rtgen_opt.optimisation.solve import best_policy_schedule

        name, _, _, trace = best_policy_schedule(ts)
    if name is None:
        return None
    if trace is None:
        trace = simulate(ts, name).schedule
    return {"policy": name, "metrics": evaluate(ts, trace), "trace": trace}


def solve_command(ts: TaskSet, time_limit_s: float, workers: int = 0, seed: int = 0,
                  ttft: str = "sum", solver: str = "cpsat", mip_solver: str = "cbc",
                  progress=None, export_model: str | None = None, budget=None, **limits
                  ) -> tuple[dict, object, dict | None]:
    """Solve and measure the best policy beside it: (the JSON result, the solver's
    outcome, the baseline with its trace)."""
    from rtgen_opt.optimisation.solve import solve
    from rtgen_opt.supervise import clock_cuts, track_cpsat_for_good

    track_cpsat_for_good()
    cuts = clock_cuts()
    out = solve(ts, time_limit_s, workers, seed, ttft, progress=progress,
                export_model=export_model, solver=solver, mip_solver=mip_solver, **limits)
    interrupted = bool(budget is not None and budget.interrupted.is_set())
    if progress and not interrupted:
        progress("measuring the best policy beside it")
    baseline = (None if interrupted else
                best_policy_baseline(ts, out.warm_start, getattr(out, "warm_trace", None)))
    total = budget.total_s if budget is not None else time_limit_s
    data = solve_result(ts, out, solver, mip_solver, baseline, total, interrupted)
    # with --workers 1 the deterministic budgets alone decide, unless a clock stopped a search
    data["reproducible"] = workers == 1 and clock_cuts() == cuts and solver == "cpsat"
    return data, out, baseline


def solve_result(ts: TaskSet, out, solver: str, mip_solver: str, baseline: dict | None,
                 time_limit_s: float | None, interrupted: bool) -> dict:
    """The `solve` JSON (docs/files-and-output.md) with what was proven and how."""
    metrics = out.metrics or {}
    released = (sum(t["released"] for t in metrics["tasks"].values()) if metrics.get("tasks")
                else int(sum(t.num_jobs for t in ts.tasks if t.deadline_us is not None)))
    # not clamped: solve asserts the bound never exceeds the schedule it bounds
    gap = None if out.violations is None else out.violations - out.violations_lower_bound
    best = None
    if baseline:
        m = baseline["metrics"]
        best = {"policy": baseline["policy"], "violations": m["weighted_violations"],
                "violation_rate": m["violation_rate"], "tasks": m["tasks"],
                "llm": {n: {k: x[k] for k in ("requests", "ttft_ms", "tpt_ms", "starved")}
                        for n, x in m["llm"].items()}}
    return {
        "scenario": ts.scenario, "horizon_s": ts.horizon_us / 1e6,
        "drain_s": ts.drain_us / 1e6, "solver": solver,
        "mip_solver": mip_solver if solver == "milp" else None,
        "status": out.status.value, "proven": out.status.value == "OPTIMAL",
        "violations": out.violations, "violations_lower_bound": out.violations_lower_bound,
        "gap": out.gap, "gap_violations": gap,
        "gap_pp": None if gap is None else 100 * gap / max(1, released),
        "gap_pct_of_frames": None if gap is None else 100 * gap / max(1, released),
        "released": released,
        "lower_bound_method": getattr(out, "lower_bound_method", None) or None,
        "upper_bound_method": getattr(out, "upper_bound_method", None) or None,
        "tasks": metrics.get("tasks"), "llm": metrics.get("llm"),
        "violation_rate": metrics.get("violation_rate"),
        "utilization": metrics.get("utilization"), "placement": metrics.get("placement"),
        "best_policy": best,
        "replay_ok": out.replay_ok, "replay_violations": out.replay_violations,
        "method": out.method, "warm_start": out.warm_start, "granularity": ts.granularity,
        "stages": out.stages, "notes": out.notes,
        "time_limit_s": time_limit_s, "interrupted": interrupted,
        "wall_s": round(out.wall_s, 3),
    }
