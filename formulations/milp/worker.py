"""Solve one pickled PuLP problem in a clean interpreter: ``python -m
rtgen_opt.formulations.milp.worker`` reads (problem, engine, limit, threads, warm) from
stdin and writes the pickled answer to stdout.

A separate interpreter, not a forked or spawned child, because OR-Tools bundles its own
HiGHS build and the two cannot be loaded in one process; and because the parent can then
kill it at a hard time limit (HiGHS has ignored its own limit in some versions).
"""

from __future__ import annotations

import math
import pickle
import re
import sys
import tempfile
from pathlib import Path

import pulp

OPTIMAL, FEASIBLE, INFEASIBLE, UNKNOWN = "OPTIMAL", "FEASIBLE", "INFEASIBLE", "UNKNOWN"


def solve(prob: pulp.LpProblem, engine: str, limit: float, threads: int, warm: bool):
    """(status, objective, dual bound, {variable: value})."""
    log = Path(tempfile.mkstemp(suffix=".log")[1])
    try:
        # every objective is integer-valued: an absolute gap below 1 proves optimality,
        # while the engines' default relative gaps (1e-4) would accept 6001 for 6000
        exact = dict(gapRel=0.0, gapAbs=0.99)
        if engine == "highs":
            solver = pulp.HiGHS(msg=False, timeLimit=limit, threads=threads, warmStart=warm,
                                **exact)
        else:
            solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=limit, threads=threads,
                                       warmStart=warm, logPath=str(log), **exact)
        prob.solve(solver)
        status = {pulp.LpSolutionOptimal: OPTIMAL, pulp.LpSolutionIntegerFeasible: FEASIBLE,
                  pulp.LpSolutionInfeasible: INFEASIBLE}.get(prob.sol_status, UNKNOWN)
        if prob.status == pulp.LpStatusInfeasible:
            status = INFEASIBLE
        if status not in (OPTIMAL, FEASIBLE):
            return status, None, 0, {}
        value = pulp.value(prob.objective) or 0.0
        bound = value if status == OPTIMAL else dual_bound(prob, engine, log)
        return (status, value, math.ceil(bound - 1e-6),
                {v.name: v.varValue for v in prob.variables()})
    finally:
        log.unlink(missing_ok=True)


def dual_bound(prob: pulp.LpProblem, engine: str, log: Path) -> float:
    """The MIP dual bound: HiGHS reports it; CBC prints it in its log when it stops early."""
    if engine == "highs":
        return max(0.0, float(prob.solverModel.getInfo().mip_dual_bound))
    text = log.read_text(errors="replace") if log.exists() else ""
    match = re.search(r"Lower bound:\s*(-?[\d.eE+]+)", text)
    return max(0.0, float(match.group(1))) if match else 0.0


def main() -> None:
    prob, engine, limit, threads, warm = pickle.load(sys.stdin.buffer)
    answer = solve(prob, engine, limit, threads, warm)
    sys.stdout.buffer.write(pickle.dumps(answer))


if __name__ == "__main__":
    main()
