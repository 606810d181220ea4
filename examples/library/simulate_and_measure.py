"""The library path: scenario -> task set -> simulate -> metrics.

    python examples/library/simulate_and_measure.py
"""

import rtgen_opt as rt

scenario = rt.load_scenario("scenario_c", ["platform.npu=2"])
ts = rt.build_taskset(scenario, horizon=2)  # seconds
for name in ("ftf", "kill-aware"):
    metrics = rt.evaluate(ts, rt.simulate(ts, name).schedule)
    llm = metrics["llm"]["llm"]
    released = sum(t["released"] for t in metrics["tasks"].values())
    print(f"{name}: {metrics['violations']} of {released} frames miss, "
          f"TTFT {llm['ttft_ms']['mean']:.0f} ms, TPT {llm['tpt_ms']['mean']:.1f} ms")
