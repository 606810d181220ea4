"""The optimum and the deployment gate from Python.

    python examples/library/solve_and_check.py
"""

import rtgen_opt as rt

scenario = rt.load_scenario("scenario_a")
ts = rt.build_taskset(scenario, horizon=1)
result, _outcome, _baseline = rt.solve(ts, time_limit_s=20, workers=1)
print(f"optimum: {result['violations']:g} violations ({result['status']}), "
      f"lower bound {result['violations_lower_bound']:g}")

uncertain = rt.build_taskset(rt.load_scenario("scenario_c", ["platform.npu=2",
                                                            "execution=[0.9,1.1]"]), horizon=2)
answer = rt.check_every_realization(uncertain, "ftf", time_limit_s=60)
print(f"ftf for every +-10 % realization: {answer.verdict} — {answer.reason}")
