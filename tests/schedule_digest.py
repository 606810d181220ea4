"""A digest of a schedule that survives changes to what happens after the horizon.

Used by the golden test that pins the five policies' schedules: the executor is causal,
so every row that ends before the horizon is decided by jobs released before it. Rows are
keyed by (task, job index within its task, segment index within its job) rather than by
global ids, which shift when a task gains jobs after the horizon.

Regenerate the golden file (only after a deliberate change of the policies' behaviour):
``python -m tests.schedule_digest > tests/golden/policy_schedules.json``.
"""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction

from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.model.taskset import TaskSet, build_taskset
from rtgen_opt.simulation.executor import simulate

CLASSIC = ("fcfs-aot", "fcfs-dyn", "edf-aot", "edf-dyn", "ftf")
CASES = {  # name -> (scenario, --set overrides, horizon in seconds)
    "a": ("scenario_a", (), 10), "b": ("scenario_b", (), 10),
    "c": ("scenario_c", (), 10), "d": ("scenario_d", (), 10),
    "c-2048": ("scenario_c", ("llm.input_tokens=2048",), 6),
    "c-npu2": ("scenario_c", ("platform.npu=2",), 6),
    "d-32-model": ("scenario_d", ("llm.input_tokens=32", "granularity=model"), 6),
}


def case_taskset(name: str) -> TaskSet:
    scenario, overrides, horizon = CASES[name]
    return build_taskset(load_scenario(scenario, overrides), Fraction(horizon))


def digest(ts: TaskSet, policy: str) -> dict:
    s = simulate(ts, policy).schedule
    job = ts.seg_job[s.seg]
    keep = s.end_us < ts.horizon_us
    rows = sorted(zip(ts.job_task[job][keep].tolist(), ts.job_index[job][keep].tolist(),
                      (s.seg - ts.job_seg_start[job])[keep].tolist(), s.backend[keep].tolist(),
                      s.instance[keep].tolist(), s.start_us[keep].tolist(),
                      s.end_us[keep].tolist(), s.aborted[keep].tolist()))
    text = json.dumps(rows, separators=(",", ":"))
    return {"rows": len(rows), "sha256": hashlib.sha256(text.encode()).hexdigest()}


if __name__ == "__main__":
    print(json.dumps({name: {p: digest(case_taskset(name), p) for p in CLASSIC}
                      for name in CASES}, indent=1))
